//! Completion against a fake head node (and none).

use super::values::{JobInfo, Source, TaskInfo};
use super::*;
use crate::wire::{RestProperty, WireNode, WireNodeGroup};
use clap::CommandFactory;

/// A head node with jobs 1 (Finished, 1 task), 2 (Running, 2 tasks) and 3
/// (Configuring), nodes n1 (Online) and n2 (Offline), groups azurenodes
/// and ComputeNodes.
struct Fake;

fn node(name: &str, state: &str) -> WireNode {
    WireNode {
        name: name.into(),
        state: state.into(),
        health: "OK".into(),
        template: String::new(),
        location: String::new(),
        memory_size: 0,
        cores: 2,
        sockets: 1,
        hpc_pack_version: String::new(),
        on_azure: false,
        groups: vec!["ComputeNodes".into()],
        roles: Vec::new(),
        cores_in_use: 0,
        reachable: None,
        online_time: String::new(),
        offline_time: String::new(),
    }
}

impl Source for Fake {
    fn jobs(&self) -> Vec<JobInfo> {
        [(1, "Finished", 1), (2, "Running", 2), (3, "Configuring", 0)]
            .iter()
            .map(|(id, state, tasks)| JobInfo { id: *id, name: format!("j{id}"), state: state.to_string(), tasks: *tasks })
            .collect()
    }
    fn tasks(&self, job: u64) -> Vec<TaskInfo> {
        match job {
            1 => vec![TaskInfo { id: 1, name: String::new(), state: "Finished".into() }],
            2 => vec![
                TaskInfo { id: 1, name: "a".into(), state: "Finished".into() },
                TaskInfo { id: 2, name: "b".into(), state: "Running".into() },
            ],
            _ => Vec::new(),
        }
    }
    fn nodes(&self) -> Vec<WireNode> {
        vec![node("n1", "Online"), node("n2", "Offline")]
    }
    fn templates(&self) -> Vec<String> {
        vec!["Default".into(), "AzureTemplate".into()]
    }
    fn groups(&self) -> Vec<WireNodeGroup> {
        ["azurenodes", "ComputeNodes"].iter().map(|g| WireNodeGroup { name: g.to_string(), description: String::new(), managed: false }).collect()
    }
    fn cluster_env(&self) -> Vec<RestProperty> {
        vec![RestProperty::new("CCP_CLUSTER_NAME", "c")]
    }
}

/// No head node.
struct None_;

impl Source for None_ {
    fn jobs(&self) -> Vec<JobInfo> {
        Vec::new()
    }
    fn tasks(&self, _: u64) -> Vec<TaskInfo> {
        Vec::new()
    }
    fn nodes(&self) -> Vec<WireNode> {
        Vec::new()
    }
    fn groups(&self) -> Vec<WireNodeGroup> {
        Vec::new()
    }
    fn templates(&self) -> Vec<String> {
        vec!["Default".into()]
    }
    fn cluster_env(&self) -> Vec<RestProperty> {
        Vec::new()
    }
}

fn tool(name: &str) -> (&'static ToolSpec, clap::Command) {
    match name {
        "job" => (&crate::cli::job::SPEC, crate::cli::job::Cli::command()),
        "task" => (&crate::cli::task::SPEC, crate::cli::task::Cli::command()),
        "node" => (&crate::cli::node::SPEC, crate::cli::node::Cli::command()),
        _ => (&crate::cli::cluscfg::SPEC, crate::cli::cluscfg::Cli::command()),
    }
}

/// The reply for `line` (a trailing space starts an empty word).
fn reply_from(src: &dyn Source, line: &str) -> Reply {
    let mut words: Vec<String> = line.split(' ').map(String::from).collect();
    let name = words.remove(0);
    let (spec, cmd) = tool(&name);
    complete(spec, cmd, &words, src)
}

fn reply(line: &str) -> Reply {
    reply_from(&Fake, line)
}

/// The words offered for `line`.
fn offered(line: &str) -> Vec<String> {
    match reply(line) {
        Reply::Words(c) => c.into_iter().map(|c| c.value).collect(),
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn hpc_pack_option_names() {
    assert_eq!(offered("job submit /nod"), ["/nodegroup:", "/nodegroupop:"]);
    assert_eq!(offered("job submit /NodeG"), ["/nodegroup:", "/nodegroupop:"], "any case");
    assert_eq!(offered("job submit --nod"), ["--nodegroup=", "--nodegroupop="]);
    assert_eq!(offered("job view 1 /det"), ["/detailed"], "an optional true|false is a switch");
    assert_eq!(offered("job list /a"), ["/all"]);
    assert!(!offered("job submit /numnodes:2 /num").contains(&"/numnodes:".to_string()), "given once");
    assert!(offered("job submit /").len() > 30);
    assert_eq!(offered("job sub"), ["submit"]);
    assert_eq!(offered("job LIST /form"), ["/format:"]);
}

#[test]
fn fixed_values() {
    assert_eq!(offered("job list /format:"), ["/format:list", "/format:table", "/format:json"]);
    assert_eq!(offered("job view 1 /format:"), ["/format:list", "/format:json"]);
    assert_eq!(offered("job list --format="), ["--format=list", "--format=table", "--format=json"]);
    assert_eq!(offered("job list --format t"), ["table"]);
    assert_eq!(offered("job submit /priority:a"), ["/priority:AboveNormal"]);
    assert_eq!(offered("job submit /exclusive:"), ["/exclusive:true", "/exclusive:false"]);
    assert_eq!(offered("job submit /nodegroupop:u"), ["/nodegroupop:Uniform", "/nodegroupop:Union"]);
    assert_eq!(offered("job list /state:Running,Fin"), ["/state:Running,Finishing", "/state:Running,Finished"]);
    assert!(!offered("job list /state:Running,").iter().any(|w| w.ends_with(",Running")), "listed once");
    assert_eq!(offered("node list /state:"), ["/state:Offline", "/state:Draining", "/state:Online"]);
    assert!(offered("node listcores /state:").contains(&"/state:taskrunning".to_string()));
    assert_eq!(offered("job submit /scheduler:"), ["/scheduler:local", "/scheduler:unix:"]);
}

#[test]
fn head_node_values() {
    assert_eq!(offered("job submit /nodegroup:"), ["/nodegroup:azurenodes", "/nodegroup:ComputeNodes"]);
    assert_eq!(offered("job submit /nodegroup:azurenodes,c"), ["/nodegroup:azurenodes,ComputeNodes"]);
    assert_eq!(offered("job submit /NODEGROUP:Azure"), ["/NODEGROUP:azurenodes"], "the option as typed, the value as the head node spells it");
    assert_eq!(offered("node list /group:a"), ["/group:azurenodes"]);
    assert_eq!(offered("job submit /askednodes:n1,"), ["/askednodes:n1,n2"]);
    assert_eq!(offered("job submit /numnodes:"), ["/numnodes:1", "/numnodes:2"]);
    assert_eq!(offered("job submit /numcores:"), ["/numcores:1", "/numcores:2", "/numcores:3", "/numcores:4"]);
    assert_eq!(offered("job view "), ["3", "2", "1"], "newest first");
    assert_eq!(offered("job cancel "), ["3", "2"], "not the finished job");
    assert_eq!(offered("job add "), ["3"], "only a Configuring job takes tasks");
    assert_eq!(offered("job submit /id:"), ["/id:3"]);
    assert_eq!(offered("node listcores /jobid:"), ["/jobid:2"]);
    assert_eq!(offered("task view "), ["2.", "1.1"], "a job's only task at once, else the job");
    assert_eq!(offered("task view 2."), ["2.1", "2.2"]);
    assert_eq!(offered("task cancel 2."), ["2.2"], "only tasks that may be canceled");
    assert_eq!(offered("node online "), ["n2"]);
    assert_eq!(offered("node offline "), ["n1"]);
    assert_eq!(offered("node view n"), ["n1", "n2"]);
    assert_eq!(offered("cluscfg setenvs "), ["CCP_CLUSTER_NAME=", "CCP_MPI_NETMASK="]);
    assert_eq!(offered("cluscfg setenvs A=1 CCP_M"), ["CCP_MPI_NETMASK="]);
}

#[test]
fn without_a_head_node_no_ids() {
    for line in ["job view ", "task view ", "task view 2.", "node view ", "job submit /nodegroup:", "job submit /numnodes:"] {
        assert_eq!(reply_from(&None_, line), Reply::Words(Vec::new()), "{line}");
    }
    assert_eq!(reply_from(&None_, "job list /format:").clone(), reply("job list /format:"), "fixed values need no head node");
}

#[test]
fn files_and_the_tasks_command() {
    assert_eq!(reply("job submit /stdout:ou"), Reply::Files { prefix: "/stdout:".into(), dirs: false });
    assert_eq!(reply("job submit /workdir:"), Reply::Files { prefix: "/workdir:".into(), dirs: true });
    assert_eq!(reply("job submit /scheduler:unix:/r"), Reply::Files { prefix: "/scheduler:unix:".into(), dirs: false });
    assert_eq!(reply("job submit /numnodes:4 mp"), Reply::Commands);
    assert_eq!(reply("job submit /bin/hostn"), Reply::Files { prefix: String::new(), dirs: false });
    assert_eq!(reply("job submit /numnodes:4 mpiexec -c 1 /nod"), Reply::Files { prefix: String::new(), dirs: false }, "the task's own words");
    assert_eq!(reply("job add 3 /name:x ech"), Reply::Commands);
    assert_eq!(offered("job add 3 /stde"), ["/stderr:"]);
    assert_eq!(offered("job list /jobname:"), Vec::<String>::new(), "free text");
}

/// Every fixed value offered for an option is one its parser takes.
#[test]
fn offered_values_parse() {
    for name in ["job", "task", "node", "cluscfg"] {
        let (spec, mut cmd) = tool(name);
        cmd.build();
        for sub in cmd.get_subcommands() {
            for a in sub.get_arguments().filter(|a| a.get_long().is_some()) {
                let long = a.get_long().unwrap_or("");
                let line = vec![sub.get_name().to_string(), format!("/{long}:")];
                let Reply::Words(cands) = complete(spec, cmd.clone(), &line, &None_) else { continue };
                for c in cands {
                    let value = &c.value[long.len() + 2..];
                    // The option's parser alone (its conflicts name options of its subcommand).
                    let probe = clap::Command::new("probe").arg(clap::Arg::new("v").long("v").value_parser(a.get_value_parser().clone()));
                    let parsed = probe.try_get_matches_from(["probe", &format!("--v={value}")]);
                    assert!(parsed.is_ok(), "{name} {} /{long}:{value} is offered but refused: {parsed:?}", sub.get_name());
                }
            }
        }
    }
}
