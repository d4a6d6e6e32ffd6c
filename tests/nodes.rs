//! The embedded cluster split into virtual nodes with node groups, and
//! node online/offline/listcores.

use crate::common::{Cluster, host, output_of, wait_until};
use std::time::Duration;

#[test]
fn four_virtual_nodes_of_a_group() {
    let c = Cluster::with_layout(&["--nodes", "4", "--cores-per-node", "1", "--node-group", "azurenodes"]);
    let list = c.ok("node", &["list", "/group:azurenodes"]);
    let names: Vec<&str> = list.lines().skip(2).map(|l| l.split_whitespace().next().unwrap()).collect();
    let h = host();
    assert_eq!(names, [format!("{h}-1"), format!("{h}-2"), format!("{h}-3"), format!("{h}-4")]);
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:4", "echo $CCP_NODES"]);
    assert_eq!(c.wait(id), "Finished");
    let out = output_of(&c.ok("task", &["view", &format!("{id}.1")]));
    assert_eq!(out.trim(), format!("4 {h}-1 1 {h}-2 1 {h}-3 1 {h}-4 1"));
    // Five nodes do not exist: refused at submission.
    let (code, err) = c.fails("job", &["submit", "/nodegroup:azurenodes", "/numnodes:5", "hostname"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn offline_drains_then_online() {
    let c = Cluster::with_layout(&["--nodes", "2", "--cores-per-node", "1"]);
    let h = host();
    let n1 = format!("{h}-1");
    let id = c.submit(&[&format!("/askednodes:{n1}"), "sleep 1"]);
    assert!(wait_until(Duration::from_secs(10), || c.prop("job", &["view", &id.to_string()], "State") == "Running"));
    let cores = c.ok("node", &["listcores", &format!("/jobid:{id}")]);
    assert!(cores.lines().nth(2).unwrap().contains("TaskRunning"), "{cores}");
    assert_eq!(c.ok("node", &["offline", &n1]), format!("Node {n1} is Draining.\n"));
    // A new job may not use a draining node.
    let other = c.submit(&["/numnodes:1", "hostname"]);
    assert_eq!(c.wait(other), "Finished");
    assert_eq!(c.prop("job", &["view", &other.to_string()], "Allocated Nodes"), format!("{h}-2"));
    assert_eq!(c.wait(id), "Finished", "a draining node lets its job finish");
    assert!(wait_until(Duration::from_secs(5), || c.prop("node", &["view", &n1], "State") == "Offline"));
    let waiting = c.submit(&[&format!("/askednodes:{n1}"), "true"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.prop("job", &["view", &waiting.to_string()], "State"), "Queued");
    assert_eq!(c.ok("node", &["online", &n1]), format!("Node {n1} is Online.\n"));
    assert_eq!(c.wait(waiting), "Finished");
}

/// A node that goes away while an MPI job runs on it (here: taken offline
/// with /force, as a reprovisioned node would): a job whose task may run
/// again is requeued and runs on the other nodes; one that may not fails,
/// naming the node, and no rank is left on any node.
#[test]
fn a_node_gone_requeues_a_rerunnable_job_and_fails_the_others() {
    let c = Cluster::with_layout(&["--nodes", "3", "--cores-per-node", "1"]);
    let h = host();
    let (n1, n2, n3) = (format!("{h}-1"), format!("{h}-2"), format!("{h}-3"));
    let mpiexec = env!("CARGO_BIN_EXE_mpiexec");
    // The ranks: sleep's command line, mpiexec's aside.
    let ranks = || crate::common::pids_matching("bin/sleep 313.7").len();
    let id = c.submit(&["/numnodes:2", "/rerunnable:false", mpiexec, "-c", "1", "sleep", "313.7"]);
    assert!(wait_until(Duration::from_secs(10), || ranks() == 2), "two ranks running");
    assert_eq!(c.prop("job", &["view", &id.to_string()], "Allocated Nodes"), format!("{n1},{n2}"));
    assert_eq!(c.ok("node", &["offline", "/force", &n2]), format!("Node {n2} is Offline.\n"));
    assert_eq!(c.wait(id), "Failed");
    let msg = c.prop("job", &["view", &id.to_string()], "Error Message");
    assert!(msg.contains(&format!("node {n2} went away while task {id}.1 ran there (it was taken offline with /force); the task is not rerunnable")), "{msg}");
    assert!(wait_until(Duration::from_secs(10), || ranks() == 0), "no rank left");
    c.ok("node", &["online", &n2]);

    // Rerunnable (the default): requeued, and its second run is on the nodes left.
    let first = c.dir.path().join("first-run");
    let script = format!("if [ -e {f} ]; then echo again on $CCP_NODES; else touch {f}; exec sleep 300; fi", f = first.display());
    let id = c.submit(&["/numnodes:2", &script]);
    assert!(wait_until(Duration::from_secs(10), || first.exists()), "the first run started");
    assert_eq!(c.prop("job", &["view", &id.to_string()], "Allocated Nodes"), format!("{n1},{n2}"));
    c.ok("node", &["offline", "/force", &n1]);
    assert_eq!(c.wait(id), "Finished");
    let view = c.ok("job", &["view", &id.to_string()]);
    assert_eq!(crate::common::property(&view, "Allocated Nodes").as_deref(), Some(format!("{n2},{n3}").as_str()), "{view}");
    let out = output_of(&c.ok("task", &["view", &format!("{id}.1")]));
    assert_eq!(out.trim(), format!("again on 2 {n2} 1 {n3} 1"));
    let msg = c.prop("job", &["view", &id.to_string(), "/detailed"], "Requeue Count");
    assert_eq!(msg, "1");
    c.ok("node", &["online", "/all"]);
    assert_eq!(c.prop("node", &["view", &n1], "State"), "Online");
}
