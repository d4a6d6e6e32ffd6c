//! Bad input: a one-line message naming what was wrong, a non-zero exit
//! code, and no change on the head node.

use crate::common::Cluster;

/// Runs a failing command and checks the state did not move.
fn refused(c: &Cluster, tool: &str, args: &[&str], code: i32, needle: &str) {
    let before = c.snapshot_state();
    let (got, err) = c.fails(tool, args);
    assert_eq!(got, code, "{tool} {args:?}: {err}");
    assert!(err.contains(needle), "{tool} {args:?}: expected '{needle}' in: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert_eq!(c.snapshot_state(), before, "{tool} {args:?} changed the state");
}

#[test]
fn bad_options_and_values() {
    let c = Cluster::new();
    let done = c.submit(&["true"]);
    assert_eq!(c.wait(done), "Finished");
    refused(&c, "job", &["submit", "/bogus", "hostname"], 2, "unknown option '/bogus'");
    refused(&c, "job", &["submit", "/numnode:4", "hostname"], 2, "did you mean /numnodes?");
    refused(&c, "job", &["submit", "/numnodes:abc", "hostname"], 2, "'abc' is not a range");
    refused(&c, "job", &["submit", "/priority:Urgent", "hostname"], 2, "'Urgent' is not a priority");
    refused(&c, "job", &["submit", "/numcores:4-2", "hostname"], 2, "below the minimum");
    refused(&c, "job", &["submit", "/numcores:1", "/numnodes:1", "hostname"], 2, "cannot be used with");
    refused(&c, "job", &["submit", "/nodegroupop:Sideways", "hostname"], 2, "not a node group operation");
    refused(&c, "job", &["submit", "/runtime:1:2:3:4", "hostname"], 2, "not a run time");
    refused(&c, "job", &["submit", "/validexitcodes:x", "hostname"], 2, "not an exit code");
    refused(&c, "job", &["submit", "/jobenv:NOEQUALS", "hostname"], 2, "not name=value");
    refused(&c, "job", &["submit", "/nodegroup:nosuch", "hostname"], 2, "node group 'nosuch' does not exist");
    refused(&c, "job", &["submit", "/numnodes:64", "hostname"], 2, "cannot run on this cluster");
    refused(&c, "job", &["submit", "/askednodes:nosuchnode", "hostname"], 2, "does not exist");
    refused(&c, "job", &["submit"], 2, "nothing to submit");
    refused(&c, "job", &["frobnicate"], 2, "unknown subcommand 'frobnicate'");
    refused(&c, "job", &["view", "abc"], 2, "not a job id");
    refused(&c, "task", &["view", "1"], 2, "not a task id");
    refused(&c, "job", &["list", "/state:Sleeping"], 2, "not a state");
    refused(&c, "cluscfg", &["setenvs", "1BAD=x"], 2, "not an environment variable name");
    refused(&c, "node", &["listcores", "/state:dancing"], 2, "not a core state");
}

#[test]
fn unknown_objects() {
    let c = Cluster::new();
    refused(&c, "job", &["view", "999"], 3, "job 999 does not exist");
    refused(&c, "job", &["cancel", "999"], 3, "job 999 does not exist");
    refused(&c, "task", &["view", "999.1"], 3, "job 999 does not exist");
    let id = c.submit(&["true"]);
    c.wait(id);
    refused(&c, "task", &["view", &format!("{id}.7")], 3, &format!("task {id}.7 does not exist"));
    refused(&c, "node", &["view", "nosuchnode"], 3, "node nosuchnode does not exist");
    refused(&c, "job", &["add", "999", "true"], 3, "job 999 does not exist");
}

#[test]
fn state_changes_the_state_forbids() {
    let c = Cluster::new();
    let id = c.submit(&["true"]);
    assert_eq!(c.wait(id), "Finished");
    let s = id.to_string();
    refused(&c, "job", &["cancel", &s], 4, "it is already Finished");
    refused(&c, "job", &["requeue", &s], 4, "only a Running, Failed or Canceled job can be requeued");
    refused(&c, "job", &["add", &s, "true"], 4, "tasks can be added while a job is Configuring");
    refused(&c, "job", &["submit", &format!("/id:{s}")], 4, "only a Configuring job can be submitted");
    refused(&c, "job", &["modify", &s, "/priority:Highest"], 4, "requeue it first");
    refused(&c, "task", &["cancel", &format!("{s}.1")], 4, "already Finished");
    let node = c.ok("node", &["list"]).lines().nth(2).unwrap().split_whitespace().next().unwrap().to_string();
    refused(&c, "node", &["online", &node], 4, "already Online");
    let new: u64 = c.ok("job", &["new"]).trim().rsplit(' ').next().unwrap().parse().unwrap();
    refused(&c, "job", &["submit", &format!("/id:{new}")], 4, "it has no tasks");
}
