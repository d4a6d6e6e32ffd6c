//! The embedded cluster's nodes: this machine, whole or split into virtual
//! nodes so a job can ask for `/numnodes:4` on one host.
//!
//! Virtual node `i` of `n` is named `<host>-<i>` and gets `cores_per_node`
//! cores, mapped round-robin onto the CPUs `hpcd` may run on (so four nodes
//! of one core on a two-CPU machine share the CPUs pairwise).

use crate::model::{COMPUTE_NODES, Node, NodeGroup, NodeHealth, NodeState};
use serde::{Deserialize, Serialize};

/// How to split this machine, from the `[local]` table of the config file or
/// `hpcd` options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalLayout {
    /// Number of virtual nodes (default 1: the machine itself).
    pub nodes: Option<u32>,
    /// Cores of each virtual node (default: the CPUs divided evenly, at least 1).
    pub cores_per_node: Option<u32>,
    /// Node groups every virtual node joins, besides ComputeNodes.
    #[serde(default)]
    pub node_groups: Vec<String>,
}

impl LocalLayout {
    /// Fields set in `over` replace ours.
    pub fn overlay(&mut self, over: &LocalLayout) {
        if over.nodes.is_some() {
            self.nodes = over.nodes;
        }
        if over.cores_per_node.is_some() {
            self.cores_per_node = over.cores_per_node;
        }
        if !over.node_groups.is_empty() {
            self.node_groups = over.node_groups.clone();
        }
    }
}

/// The nodes and groups of the layout on a host with `cpus` and `memory_mb`.
pub fn virtual_nodes(layout: &LocalLayout, host: &str, cpus: &[u32], memory_mb: u64) -> (Vec<Node>, Vec<NodeGroup>) {
    let cpus: Vec<u32> = if cpus.is_empty() { vec![0] } else { cpus.to_vec() };
    let n = layout.nodes.unwrap_or(1).max(1);
    let per = layout.cores_per_node.unwrap_or((cpus.len() as u32 / n).max(1)).max(1);
    let mut groups: Vec<String> = vec![COMPUTE_NODES.into()];
    groups.extend(layout.node_groups.iter().filter(|g| !g.eq_ignore_ascii_case(COMPUTE_NODES)).cloned());
    let nodes = (0..n)
        .map(|i| Node {
            name: if n == 1 { host.to_string() } else { format!("{host}-{}", i + 1) },
            state: NodeState::Online,
            health: NodeHealth::OK,
            reachable: true,
            cores: per,
            sockets: 1,
            memory_mb: memory_mb / n as u64,
            groups: groups.clone(),
            cpus: (0..per).map(|k| cpus[((i * per + k) as usize) % cpus.len()]).collect(),
            host: host.to_string(),
            online_time: None,
            offline_time: None,
        })
        .collect();
    let defs = layout
        .node_groups
        .iter()
        .map(|g| NodeGroup { name: g.clone(), description: "virtual nodes of the embedded cluster".into() })
        .collect();
    (nodes, defs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_node_is_the_machine() {
        let (nodes, groups) = virtual_nodes(&LocalLayout::default(), "box", &[0, 1], 2048);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].name, "box");
        assert_eq!(nodes[0].cores, 2);
        assert_eq!(nodes[0].cpus, vec![0, 1]);
        assert!(groups.is_empty());
    }

    #[test]
    fn four_virtual_nodes_share_two_cpus() {
        let layout = LocalLayout { nodes: Some(4), cores_per_node: None, node_groups: vec!["azurenodes".into()] };
        let (nodes, groups) = virtual_nodes(&layout, "box", &[0, 1], 4096);
        assert_eq!(nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["box-1", "box-2", "box-3", "box-4"]);
        assert!(nodes.iter().all(|n| n.cores == 1 && n.in_group("AzureNodes") && n.in_group("ComputeNodes")));
        assert_eq!(nodes.iter().map(|n| n.cpus[0]).collect::<Vec<_>>(), [0, 1, 0, 1]);
        assert_eq!(groups[0].name, "azurenodes");
    }
}
