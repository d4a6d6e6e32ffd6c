//! What a task's environment holds (README, "A task's environment"):
//! a login's variables, the submitter's PATH/HOME/language, this
//! installation's programs first on PATH, whatever the environment the head
//! node was started in.

use crate::common::{Cluster, bin, output_of, parse_submitted};
use std::collections::HashMap;

/// The directory of the programs under test (`mpiexec`, `mpipingpong` …).
fn tools_dir() -> String {
    bin("job").parent().unwrap().to_str().unwrap().to_string()
}

/// `printenv`'s output as a map.
fn vars(out: &str) -> HashMap<String, String> {
    out.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Starts `c`'s head node from an environment unlike any shell's: a PATH
/// without this installation, a language and a variable of its own.
fn start_from_odd_environment(c: &Cluster, layout: &[&str]) {
    let out = c
        .command("hpcd")
        .args(["local", "start", "--quiet"])
        .args(layout)
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C")
        .env("ONLY_IN_THE_DAEMON", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The job's (one) task's output after it finished.
fn finished_output(c: &Cluster, id: u64) -> String {
    assert_eq!(c.wait(id), "Finished", "{}", c.ok("task", &["view", &format!("{id}.1")]));
    output_of(&c.ok("task", &["view", &format!("{id}.1")]))
}

#[test]
fn the_seed_command_with_bare_names_runs_this_installations_mpiexec() {
    // Debian's MPICH (installed by .ci/run) owns /usr/bin/mpiexec; its Hydra
    // rejects `-c` ("unrecognized argument c", exit 255).
    let c = Cluster::unstarted();
    start_from_odd_environment(&c, &["--nodes", "4", "--node-group", "azurenodes"]);
    let out = c
        .command("job")
        .env("PATH", "/usr/bin:/bin")
        .args(["submit", "/nodegroup:azurenodes", "/numnodes:4"])
        .args("mpiexec -c 1 -affinity mpipingpong -p 1:100000 -op -s nul".split(' '))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = parse_submitted(&String::from_utf8_lossy(&out.stdout));
    let output = finished_output(&c, id);
    assert!(output.contains("Latency (usec) for packet size 1 byte, 100000 iterations"), "{output}");
    assert_eq!(output.lines().filter(|l| l.starts_with("  ") && l.contains(" <-> ")).count(), 6, "every pair of 4 nodes:\n{output}");
}

#[test]
fn a_task_gets_the_submitters_path_home_and_language_not_the_daemons() {
    let c = Cluster::unstarted();
    start_from_odd_environment(&c, &[]);
    let home = c.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let submit = |args: &[&str]| {
        let out = c
            .command("job")
            .env("PATH", "/opt/fixed-in-my-shell:/usr/bin:/bin")
            .env("HOME", &home)
            .env("LANG", "C.UTF-8")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let id = parse_submitted(&submit(&["submit", "printenv"]));
    let env = vars(&finished_output(&c, id));
    assert_eq!(env["PATH"], format!("{}:/opt/fixed-in-my-shell:/usr/bin:/bin", tools_dir()));
    assert_eq!(env["HOME"], home.to_str().unwrap());
    assert_eq!(env["LANG"], "C.UTF-8");
    let me = hpcpack::node::sys::user_name(hpcpack::node::sys::uid());
    assert_eq!(env["USER"], me);
    assert_eq!(env["LOGNAME"], me);
    assert_eq!(env["CCP_JOBID"], id.to_string());
    assert!(!env.contains_key("ONLY_IN_THE_DAEMON"), "the daemon's own variables stay out: {env:?}");

    // A relative /stdout goes to the submitter's HOME (the default working
    // directory), not to the home directory of the passwd entry.
    let id = parse_submitted(&submit(&["submit", "/stdout:relative.txt", "echo", "here"]));
    assert_eq!(c.wait(id), "Finished");
    assert_eq!(std::fs::read_to_string(home.join("relative.txt")).unwrap(), "here\n");

    // job new / job add / job submit: the environment of `job new`.
    let id = parse_created(&submit(&["new"]));
    submit(&["add", &id.to_string(), "printenv", "PATH"]);
    submit(&["submit", &format!("/id:{id}")]);
    assert_eq!(finished_output(&c, id).trim(), format!("{}:/opt/fixed-in-my-shell:/usr/bin:/bin", tools_dir()));

    // A PATH of the task's own that names this installation keeps its order.
    let mine = format!("/usr/bin:{}", tools_dir());
    let id = parse_submitted(&submit(&["submit", &format!("/env:PATH={mine}"), "printenv", "PATH"]));
    assert_eq!(finished_output(&c, id).trim(), mine);
}

/// The id in `Created job, ID: N`.
fn parse_created(out: &str) -> u64 {
    out.trim().rsplit(' ').next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no job id in {out}"))
}
