//! Tests of the option grammar: the seed commands of the spec, every MS-MPI
//! message the parser can give, configfiles and optionfiles.

use std::collections::HashMap;
use std::io;

use super::*;
use crate::mpi::mpiexec::affinity::{Algorithm, Unit};

/// Environment and files held in memory.
#[derive(Default)]
pub(crate) struct Fake {
    pub vars: HashMap<String, String>,
    pub files: HashMap<String, String>,
}

impl Fake {
    pub fn var(mut self, k: &str, v: &str) -> Fake {
        self.vars.insert(k.into(), v.into());
        self
    }
    pub fn file(mut self, k: &str, v: &str) -> Fake {
        self.files.insert(k.into(), v.into());
        self
    }
}

impl Inputs for Fake {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn read_file(&self, path: &str) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }
}

pub(crate) fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub(crate) fn plan_with(s: &str, inputs: &Fake) -> Plan {
    match parse(&argv(s), inputs).unwrap() {
        Command::Run(p) => p,
        other => panic!("expected a plan, got {other:?}"),
    }
}

fn plan(s: &str) -> Plan {
    plan_with(s, &Fake::default())
}

fn err_with(s: &str, inputs: &Fake) -> String {
    parse(&argv(s), inputs).unwrap_err().to_string()
}

fn err(s: &str) -> String {
    err_with(s, &Fake::default())
}

#[test]
fn seed_pingpong_command_keeps_the_programs_arguments() {
    let p = plan("-c 1 -affinity mpipingpong -p 1:100000 -op -s nul");
    assert_eq!(p.global.cores_per_host, Some(1));
    assert_eq!(p.global.affinity, Layout::SPREAD);
    assert_eq!(
        p.global.port, None,
        "-p after the exe belongs to mpipingpong"
    );
    assert_eq!(p.sections.len(), 1);
    assert_eq!(p.sections[0].exe, "mpipingpong");
    assert_eq!(p.sections[0].args, argv("-p 1:100000 -op -s nul"));
    assert_eq!(p.sections[0].processes, None);
}

#[test]
fn env_takes_two_tokens_in_order() {
    let p = plan(
        "-env MSMPI_DISABLE_SOCK 1 -env MSMPI_PRECONNECT all -env MPICH_NETMASK 172.16.0.0/255.255.0.0 a.out",
    );
    let env: Vec<(&str, &str)> = p.sections[0]
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("MSMPI_DISABLE_SOCK", "1"),
            ("MSMPI_PRECONNECT", "all"),
            ("MPICH_NETMASK", "172.16.0.0/255.255.0.0")
        ]
    );
    assert_eq!(p.sections[0].exe, "a.out");
    let p = plan("-genv A 1 -genv B 2 x");
    assert_eq!(
        p.global.env,
        [("A".into(), "1".into()), ("B".into(), "2".into())]
    );
}

#[test]
fn slash_and_case_are_the_same_option_but_abbreviations_are_not() {
    assert_eq!(plan("/np 2 x"), plan("-NP 2 x"));
    assert_eq!(plan("/np 2 x").sections[0].processes, Some(2));
    assert_eq!(plan("-Hosts 1 h x"), plan("/HOSTS 1 h x"));
    assert_eq!(err("-numproc 2 x"), "Unknown option: -numproc");
    assert_eq!(err("-foo x"), "Unknown option: -foo");
    assert_eq!(err("/foo x"), "Unknown option: /foo");
    assert_eq!(err("-"), "Unknown option: -");
}

#[test]
fn an_absolute_path_is_the_executable() {
    let p = plan("-n 2 /usr/bin/hostname -s");
    assert_eq!(p.sections[0].exe, "/usr/bin/hostname");
    assert_eq!(p.sections[0].args, ["-s"]);
}

#[test]
fn mpmd_sections_split_at_a_lone_colon() {
    let p = plan("-n 1 a : -n 2 b x:y");
    assert_eq!(p.sections.len(), 2);
    assert_eq!(
        (p.sections[0].exe.as_str(), p.sections[0].processes),
        ("a", Some(1))
    );
    assert_eq!(
        (p.sections[1].exe.as_str(), p.sections[1].processes),
        ("b", Some(2))
    );
    assert_eq!(p.sections[1].args, ["x:y"]);
    // A trailing colon ends nothing; an empty section has no executable.
    assert_eq!(plan("a :").sections.len(), 1);
    assert_eq!(err(": a"), "Error: no executable specified.");
    assert_eq!(err("a : : b"), "Error: no executable specified.");
}

#[test]
fn counts_and_their_errors() {
    assert_eq!(plan("-n * x").sections[0].processes, None);
    assert_eq!(
        err("-n x"),
        "Error: expecting a positive number of processes following the -n option."
    );
    assert_eq!(
        err("-np 0 x"),
        "Error: expecting a positive number of processes following the -np option."
    );
    assert_eq!(
        err("-n"),
        "Error: expecting a positive number of processes following the -n option."
    );
    assert_eq!(
        err("-n 2 -np 3 x"),
        "Error: unexpected -np option; only one of -n, -np or -hosts can specify the number of processes."
    );
    assert_eq!(
        err("-hosts 1 h -n 2 x"),
        "Error: unexpected -n option; only one of -n, -np or -hosts can specify the number of processes."
    );
    assert_eq!(
        err("-n 40000 x"),
        "Error: exceeding the maximum supported ranks."
    );
    // "-n *" counts as no count, as in MS-MPI.
    assert_eq!(
        plan("-n * -hosts 1 h x").sections[0]
            .hosts
            .as_ref()
            .unwrap()[0]
            .name,
        "h"
    );
    assert_eq!(
        err("-c 1 -cores 2 x"),
        "Error: unexpected -cores option; this option can be specifed only once."
    );
    assert_eq!(
        err("-c 2 a : -c 1 b"),
        "Error: unexpected -c option; this option can be specifed only once."
    );
    assert_eq!(
        err("-c -1 x"),
        "Error: expecting a positive number of cores following the -c option."
    );
    assert_eq!(err("-n 2"), "Error: no executable specified.");
}

#[test]
fn every_argument_error_names_the_option_as_typed() {
    let cases = [
        (
            "-env A",
            "Error: expecting environment variable name and value following the -env option.",
        ),
        (
            "-GENV",
            "Error: expecting environment variable name and value following the -GENV option.",
        ),
        (
            "-genvlist",
            "Error: expecting environment variables list following the -genvlist option.",
        ),
        (
            "-hosts x h a",
            "Error: expecting a positive number of hosts following the -hosts option.",
        ),
        (
            "-hosts 2 h",
            "Error: expecting a host name following the -hosts option.",
        ),
        (
            "-timeout 0 x",
            "Error: expecting a positive timeout value following the -timeout option.",
        ),
        (
            "-priority 5 x",
            "Error: expecting a priority value in the range [0:4] following the -priority option.",
        ),
        (
            "-priority +1 x",
            "Error: expecting a priority value in the range [0:4] following the -priority option.",
        ),
        (
            "-wdir",
            "Error: expecting a directory name following the -wdir option.",
        ),
        (
            "-gdir",
            "Error: expecting a directory name following the -gdir option.",
        ),
        (
            "-path",
            "Error: expecting a path string following the -path option.",
        ),
        (
            "-job",
            "Error: expecting job context string following the -job option.",
        ),
        (
            "-host",
            "Error: expecting host name following the -host option.",
        ),
        (
            "-machinefile",
            "Error: expecting a filename following the -machinefile option.",
        ),
        (
            "-port x y",
            "Error: expecting a positive port number following the -port option.",
        ),
        (
            "-p 65536 x",
            "Error: expecting a valid TCP port number following the -p option.",
        ),
        (
            "-logfile",
            "Error: expecting a fileName following the -logfile option.",
        ),
        (
            "-pwd",
            "Error: expecting a password string for the -pwd option.",
        ),
        (
            "-al",
            "Error: expecting a layout format string for the -al option.",
        ),
        (
            "-optionfile",
            "Error: expecting filename following the -optionfile option.",
        ),
        (
            "-host a -host b x",
            "Error: unexpected -host option; only one of -host, -hosts or -machinefile can be specified.",
        ),
        (
            "-ghost a -ghost b x",
            "Error: unexpected -ghost option; only one of -ghost or -gmachinefile can be specified.",
        ),
        (
            "-n 1 -configfile f",
            "Error: the -configfile option must be the first and only option specified.",
        ),
        (
            "-ConfigFile f",
            "Error: the -ConfigFile option must be the first and only option specified.",
        ),
        (
            "-configfile",
            "Error: expecting filename following the -configfile option.",
        ),
        (
            "-configfile a b",
            "Error: too many arguments following the -configfile option; only filename is expected.",
        ),
        (
            "-configfile nope",
            "Error: while parsing configfile 'nope': No such file or directory",
        ),
        (
            "-machinefile nope x",
            "Error: while reading machinefile 'nope': No such file or directory.",
        ),
    ];
    for (line, msg) in cases {
        assert_eq!(err(line), msg, "for {line:?}");
    }
}

#[test]
fn global_and_flag_options() {
    let p = plan(
        "-gwdir /w -gpath /a;/b -exitcodes -l -unicode -saveCreds -pwd pw -job ctx -p 8677 \
         -timeout 30 -logFile log -aa -d -priority 0 -dir d -path q x",
    );
    let g = &p.global;
    assert_eq!(
        (g.wdir.as_deref(), g.path.as_deref()),
        (Some("/w"), Some("/a;/b"))
    );
    assert!(g.exit_codes && g.lines && g.unicode && g.save_creds && g.affinity_auto);
    assert_eq!(
        (g.password.as_deref(), g.job.as_deref()),
        (Some("pw"), Some("ctx"))
    );
    assert_eq!(
        (g.port, g.timeout, g.debug),
        (Some(8677), Some(30), Some(2))
    );
    assert_eq!(g.log_file.as_deref(), Some("log"));
    let s = &p.sections[0];
    assert_eq!(
        (s.priority, s.wdir.as_deref(), s.path.as_deref()),
        (Some(0), Some("d"), Some("q"))
    );
    assert_eq!(plan("-debug 3 x").global.debug, Some(3));
    assert_eq!(plan("-d x").sections[0].exe, "x");
}

#[test]
fn timeout_comes_from_the_environment_unless_given() {
    let env = Fake::default().var(MPIEXEC_TIMEOUT, "60");
    assert_eq!(plan_with("x", &env).global.timeout, Some(60));
    assert_eq!(plan_with("-timeout 5 x", &env).global.timeout, Some(5));
    let bad = Fake::default().var(MPIEXEC_TIMEOUT, "soon");
    assert_eq!(plan_with("x", &bad).global.timeout, None);
}

#[test]
fn genvlist_passes_only_set_variables() {
    let env = Fake::default().var("A", "1").var("C", "3");
    let p = plan_with("-genvlist A,B,,C x", &env);
    assert_eq!(
        p.global.env,
        [("A".into(), "1".into()), ("C".into(), "3".into())]
    );
}

#[test]
fn affinity_options() {
    let p = plan("-al seq:P:n x");
    assert_eq!(p.global.affinity.algorithm, Algorithm::Sequential);
    assert_eq!(
        (p.global.affinity.stride, p.global.affinity.target),
        (Unit::Physical, Unit::Numa)
    );
    // -a does not undo an earlier layout.
    assert_eq!(
        plan("-al bal -a x").global.affinity.algorithm,
        Algorithm::Balanced
    );
    assert_eq!(
        plan("-AFFINITY_LAYOUT SPR:L x").global.affinity,
        Layout::SPREAD
    );
    assert_eq!(
        err("-al warp x"),
        "Unable to parse algorithm specified in -affinity_layout argument."
    );
    let env = Fake::default().var(MPIEXEC_AFFINITY, "seq:p");
    assert_eq!(
        plan_with("x", &env).global.affinity.algorithm,
        Algorithm::Sequential
    );
    assert_eq!(
        plan_with("-al 0 x", &env).global.affinity.algorithm,
        Algorithm::Disabled
    );
    assert_eq!(
        err("-hosts 1 h 1,0x1 -a x"),
        "Error: Explicit affinity options cannot be combined with other affinity options."
    );
    assert_eq!(
        err("-hosts 1 h 1,0x1 -al spr x"),
        "Error: Explicit affinity options can not be combined with other affinity options."
    );
}

#[test]
fn help_stops_parsing_where_it_is_reached() {
    let none = Fake::default();
    assert_eq!(
        parse(&argv("-?"), &none).unwrap(),
        Command::Help(Help::Common)
    );
    assert_eq!(
        parse(&argv("/HELP2"), &none).unwrap(),
        Command::Help(Help::All)
    );
    assert_eq!(
        parse(&argv("-n 2 -???"), &none).unwrap(),
        Command::Help(Help::Environment)
    );
    assert_eq!(
        parse(&argv("-help3"), &none).unwrap(),
        Command::Help(Help::Environment)
    );
    assert_eq!(parse(&[], &none).unwrap(), Command::Help(Help::Common));
    assert_eq!(err("-bad -?"), "Unknown option: -bad");
}

#[test]
fn configfile_lines_are_sections() {
    let text =
        "# master first\n-n 1 master --role \\\n  boss\n\n  # workers\n-n 4 \"my worker\" a b\n";
    assert_eq!(
        configfile_argv(text).unwrap(),
        [
            "-n",
            "1",
            "master",
            "--role",
            "boss",
            ":",
            "-n",
            "4",
            "my worker",
            "a",
            "b"
        ]
    );
    let files = Fake::default().file("cfg", text);
    let p = plan_with("-configfile cfg", &files);
    assert_eq!(p.sections.len(), 2);
    assert_eq!(p.sections[0].args, ["--role", "boss"]);
    assert_eq!(
        (p.sections[1].exe.as_str(), p.sections[1].processes),
        ("my worker", Some(4))
    );
    let empty = Fake::default().file("cfg", "# nothing\n\n");
    assert_eq!(
        err_with("/configfile cfg", &empty),
        "Error: while parsing configfile 'cfg': no commands in file"
    );
}

#[test]
fn optionfile_adds_options_to_its_section() {
    let files = Fake::default()
        .file("opts", "-env A 1 \\\n -n 3\n-env IGNORED 1\n")
        .file("bad", "-nope")
        .file("help", "-help2");
    let p = plan_with("-optionfile opts -env B 2 x", &files);
    let s = &p.sections[0];
    assert_eq!(s.processes, Some(3));
    assert_eq!(s.env, [("A".into(), "1".into()), ("B".into(), "2".into())]);
    assert_eq!(
        err_with("-optionfile bad x", &files),
        "Unknown option: -nope"
    );
    assert_eq!(
        err_with("-optionfile none x", &files),
        "No such file or directory"
    );
    assert_eq!(
        parse(&argv("-optionfile help x"), &files).unwrap(),
        Command::Help(Help::All)
    );
    let looped = Fake::default().file("self", "-optionfile self");
    assert!(parse(&argv("-optionfile self x"), &looped).is_err());
}

#[test]
fn machinefile_is_read_through_inputs() {
    let files = Fake::default().file("hosts.txt", "# cluster\nn1 4\nn2   # one core\n\n");
    let p = plan_with("-machinefile hosts.txt x", &files);
    let hosts = p.sections[0].hosts.as_ref().unwrap();
    assert_eq!(
        hosts
            .iter()
            .map(|h| (h.name.as_str(), h.cores))
            .collect::<Vec<_>>(),
        [("n1", 4), ("n2", 1)]
    );
    assert!(p.global.machinefile_given);
    let p = plan_with("-gmachinefile hosts.txt x", &files);
    assert_eq!(p.global.hosts.as_ref().unwrap().len(), 2);
    let bad = Fake::default().file("m", "n1 four\n");
    assert_eq!(
        err_with("-machinefile m x", &bad),
        "Error: while reading machinefile 'm': expecting a positive number of cores following the host name."
    );
    let zero = Fake::default().file("m", "n1 0\n");
    assert_eq!(
        err_with("-machinefile m x", &zero),
        "Error: while parsing machinefile 'm': Error: expecting a positive number of cores following the host name."
    );
}
