//! Node groups as separate sets of nodes: from the configuration
//! (`NAME:COUNT`), changed at run time by `node group` and the REST API,
//! kept across restarts, and changed by administrators only.

use crate::common::{Cluster, NOBODY, SharedHead, host, output_of, rest};
use serde_json::{Value, json};

const MPIEXEC: &str = env!("CARGO_BIN_EXE_mpiexec");
const PINGPONG: &str = env!("CARGO_BIN_EXE_mpipingpong");

fn members(c: &Cluster, group: &str) -> String {
    c.prop("node", &["group", "view", group], "Nodes")
}

/// The seed command on the 2 nodes of `group`: the nodes its ranks ran on.
fn seed_on(c: &Cluster, group: &str) -> (String, String) {
    let ng = format!("/nodegroup:{group}");
    let id = c.submit(&[&ng, "/numnodes:2", MPIEXEC, "-c", "1", "-affinity", PINGPONG, "-p", "1:100000", "-op", "-s", "nul"]);
    let state = c.wait(id);
    let view = c.ok("task", &["view", &format!("{id}.1")]);
    assert_eq!(state, "Finished", "{view}");
    (c.prop("job", &["view", &id.to_string()], "Allocated Nodes"), output_of(&view))
}

#[test]
fn two_groups_of_two_nodes_each_run_the_seed_command_on_their_own_nodes() {
    let c = Cluster::with_layout(&["--nodes", "4", "--cores-per-node", "1", "--node-group", "azurenodes:2", "--node-group", "vmcomputenodes:2"]);
    let h = host();
    assert_eq!(members(&c, "azurenodes"), format!("{h}-1,{h}-2"));
    assert_eq!(members(&c, "VMComputeNodes"), format!("{h}-3,{h}-4"));
    let list = c.ok("node", &["list", "/group:vmcomputenodes"]);
    assert_eq!(list.lines().skip(2).map(|l| l.split_whitespace().next().unwrap()).collect::<Vec<_>>(), [format!("{h}-3"), format!("{h}-4")]);
    for (group, nodes) in [("azurenodes", [1, 2]), ("vmcomputenodes", [3, 4])] {
        let (allocated, output) = seed_on(&c, group);
        assert_eq!(allocated, format!("{h}-{}, {h}-{}", nodes[0], nodes[1]).replace(", ", ","), "{group}: {output}");
        let pair = format!("{h}-{} <-> {h}-{}", nodes[0], nodes[1]);
        assert!(output.contains(&pair), "{group}: the pair {pair} in\n{output}");
        assert!(output.contains("Latency (usec) for packet size 1 byte"), "{output}");
    }
    // Three nodes of a group of two: refused, nothing queued.
    let (code, err) = c.fails("job", &["submit", "/nodegroup:azurenodes", "/numnodes:3", "hostname"]);
    assert_eq!(code, 2, "{err}");
    assert!(c.ok("job", &["list", "/all"]).lines().count() == 4, "two jobs only");
    // The built-in groups: every node is a compute node and a Linux node.
    let groups = c.ok("node", &["group", "list"]);
    for line in ["HeadNodes             True     0", "ComputeNodes          True     4", "LinuxNodes            True     4", "azurenodes            False    2"] {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(groups.lines().any(|l| l.split_whitespace().take(3).eq(words.iter().copied())), "{line} in\n{groups}");
    }
}

#[test]
fn groups_changed_at_run_time_last_until_the_configuration_changes() {
    let c = Cluster::with_layout(&["--nodes", "4", "--cores-per-node", "1", "--node-group", "azurenodes:2"]);
    let h = host();
    assert_eq!(c.ok("node", &["group", "create", "ib", "/description:nodes with InfiniBand"]), "Node group ib was created.\n");
    assert_eq!(c.ok("node", &["group", "add", "ib", &format!("{h}-4"), &format!("{h}-3")]), format!("Node group ib has 2 nodes: {h}-3, {h}-4.\n"));
    assert_eq!(c.ok("node", &["group", "add", "azurenodes", &format!("{h}-3")]), format!("Node group azurenodes has 3 nodes: {h}-1, {h}-2, {h}-3.\n"));
    let id = c.submit(&["/nodegroup:ib", "/numnodes:2", "echo $CCP_NODES"]);
    assert_eq!(c.wait(id), "Finished");
    assert_eq!(output_of(&c.ok("task", &["view", &format!("{id}.1")])).trim(), format!("2 {h}-3 1 {h}-4 1"));
    // Intersect (the default) of two groups: the node in both.
    let id = c.submit(&["/nodegroup:ib,azurenodes", "hostname"]);
    assert_eq!(c.wait(id), "Finished");
    assert_eq!(c.prop("job", &["view", &id.to_string()], "Allocated Nodes"), format!("{h}-3"));

    // A restart with the same configuration keeps the changes.
    c.ok("hpcd", &["local", "stop"]);
    assert_eq!(members(&c, "ib"), format!("{h}-3,{h}-4"));
    assert_eq!(members(&c, "azurenodes"), format!("{h}-1,{h}-2,{h}-3"));
    assert_eq!(c.prop("node", &["group", "view", "ib"], "Description"), "nodes with InfiniBand");
    // `hpcd local start` with the layout it runs: no restart, though members changed.
    let again = c.ok("hpcd", &["local", "start"]);
    assert!(again.contains("already runs"), "{again}");
    // A new configuration of azurenodes applies to it; ib, made at run time, stays.
    let out = c.ok("hpcd", &["local", "start", "--node-group", "azurenodes:1"]);
    assert!(out.contains("node groups azurenodes:2, asked for 4 nodes of 1 core, node groups azurenodes:1"), "{out}");
    assert_eq!(members(&c, "azurenodes"), format!("{h}-1"));
    assert_eq!(members(&c, "ib"), format!("{h}-3,{h}-4"));

    // Built-in groups stay as they are; a deleted group leaves its nodes.
    let (code, err) = c.fails("node", &["group", "delete", "computenodes"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("ComputeNodes is built in and cannot be deleted"), "{err}");
    let (_, err) = c.fails("node", &["group", "remove", "LinuxNodes", &format!("{h}-1")]);
    assert!(err.contains("LinuxNodes is built in"), "{err}");
    assert_eq!(c.ok("node", &["group", "delete", "ib"]), "Node group ib was deleted.\n");
    assert_eq!(c.prop("node", &["view", &format!("{h}-4")], "Node Groups"), "ComputeNodes,LinuxNodes");
    let (code, err) = c.fails("job", &["submit", "/nodegroup:ib", "hostname"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("node group 'ib' does not exist"), "{err}");

    // Bad input: named, refused, nothing changed.
    let (code, err) = c.fails("hpcd", &["local", "start", "--node-group", "azurenodes:9"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'azurenodes:9': 4 of the 4 nodes are left after the groups before it, not 9"), "{err}");
    assert_eq!(members(&c, "azurenodes"), format!("{h}-1"));
    let (code, err) = c.fails("node", &["group", "create", "bad name"]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = c.fails("node", &["group", "add", "azurenodes", "nosuch"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(members(&c, "azurenodes"), format!("{h}-1"));
}

#[test]
fn the_rest_api_answers_node_group_changes_as_the_spec_says() {
    let c = Cluster::with_layout(&["--nodes", "2", "--cores-per-node", "1"]);
    let h = host();
    let (client, base) = rest(&c);
    let r = client.post(format!("{base}/hpc/cluster/nodeGroups")).json(&json!({"Name": "azurenodes", "Description": "burst"})).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().unwrap(), json!({"Name": "azurenodes", "Description": "burst", "Managed": false}));
    let r = client
        .patch(format!("{base}/hpc/cluster/nodeGroups/azurenodes/nodes"))
        .json(&json!({"Operation": "add", "NodeNames": [format!("{h}-2")]}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().unwrap(), json!([format!("{h}-2")]));
    let r = client.put(format!("{base}/hpc/cluster/nodeGroups/azurenodes")).json(&json!({"Description": "Azure burst nodes"})).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().unwrap()["Description"], "Azure burst nodes");
    let list: Value = client.get(format!("{base}/hpc/cluster/nodeGroups")).send().unwrap().json().unwrap();
    assert_eq!(list[0], json!({"Name": "HeadNodes", "Description": "The head nodes in the cluster", "Managed": true}));
    assert_eq!(list[3], json!({"Name": "azurenodes", "Description": "Azure burst nodes", "Managed": false}));
    let r = client.delete(format!("{base}/hpc/cluster/nodeGroups/ComputeNodes")).send().unwrap();
    assert_eq!(r.status().as_u16(), 409, "built in");
    let r = client.delete(format!("{base}/hpc/cluster/nodeGroups/azurenodes")).send().unwrap();
    assert_eq!(r.status().as_u16(), 204);
}

#[test]
fn only_administrators_change_node_groups() {
    let Some(head) = SharedHead::start() else { return };
    let as_nobody = |args: &[&str]| {
        let out = head.run_as(Some(NOBODY), "node", args);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let before = head.run_as(None, "node", &["group", "list"]);
    assert!(before.status.success());
    let node = hpcpack::node::sys::hostname();
    for args in [
        vec!["group", "create", "mine"],
        vec!["group", "add", "ComputeNodes", node.as_str()],
        vec!["group", "delete", "LinuxNodes"],
    ] {
        let (code, out, err) = as_nobody(&args);
        assert_eq!(code, Some(5), "{args:?}: {out}{err}");
        assert!(err.contains("administrator"), "{args:?}: {err}");
    }
    // Reading is for everyone.
    let (code, out, _) = as_nobody(&["group", "list"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, String::from_utf8_lossy(&before.stdout), "nothing changed");
    // Root administers it.
    let out = head.run_as(None, "node", &["group", "create", "mine"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
