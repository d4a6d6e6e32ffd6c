//! The embedded cluster's nodes: this machine, whole or split into virtual
//! nodes so a job can ask for `/numnodes:4` on one host.
//!
//! Virtual node `i` of `n` is named `<host>-<i>` and gets `cores_per_node`
//! cores, mapped round-robin onto the CPUs `hpcd` may run on (so four nodes
//! of one core on a two-CPU machine share the CPUs pairwise). Every node is
//! in the built-in groups ComputeNodes and LinuxNodes, and in the groups of
//! the layout that take it ([`GroupSpec`]).

use crate::model::{COMPUTE_NODES, LINUX_NODES, Node, NodeGroup, NodeHealth, NodeState, builtin_group};
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
    /// Node groups of the virtual nodes, besides the built-in ones: each
    /// `NAME`, `NAME:COUNT` or `NAME:FIRST-LAST` (see [`GroupSpec`]).
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

/// Which virtual nodes a configured node group holds: an entry of
/// `node_groups` is `NAME` (every node), `NAME:COUNT` (the next COUNT nodes,
/// counting on after the nodes earlier `NAME:COUNT` entries took) or
/// `NAME:FIRST-LAST` (nodes FIRST to LAST, numbered from 1). A name given
/// more than once gets the nodes of every entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub name: String,
    pub members: Members,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Members {
    All,
    Count(u32),
    Range(u32, u32),
}

impl GroupSpec {
    pub fn parse(entry: &str) -> Result<GroupSpec, String> {
        let (name, members) = match entry.split_once(':') {
            None => (entry, Members::All),
            Some((name, m)) => {
                let bad = || {
                    format!(
                        "node group '{entry}': after the ':' give a count of nodes (azurenodes:2) \
                         or a range of node numbers (azurenodes:3-4)"
                    )
                };
                let members = match m.split_once('-') {
                    None => Members::Count(m.trim().parse().map_err(|_| bad())?),
                    Some((a, b)) => {
                        let (a, b): (u32, u32) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
                        if a == 0 || b < a {
                            return Err(format!("node group '{entry}': nodes are numbered from 1, and the range must not run backwards"));
                        }
                        Members::Range(a, b)
                    }
                };
                (name, members)
            }
        };
        crate::model::values::check_group_name(name)?;
        if let Some(g) = builtin_group(name) {
            return Err(format!("node group '{entry}': {g} is built in and holds the nodes it always holds; leave it out"));
        }
        Ok(GroupSpec { name: name.to_string(), members })
    }
}

/// The nodes and groups of the layout on a host with `cpus` and
/// `memory_mb`; a group entry that does not fit the nodes is an error naming it.
pub fn virtual_nodes(layout: &LocalLayout, host: &str, cpus: &[u32], memory_mb: u64) -> Result<(Vec<Node>, Vec<NodeGroup>), String> {
    let cpus: Vec<u32> = if cpus.is_empty() { vec![0] } else { cpus.to_vec() };
    let n = layout.nodes.unwrap_or(1).max(1);
    let per = layout.cores_per_node.unwrap_or((cpus.len() as u32 / n).max(1)).max(1);
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| Node {
            name: if n == 1 { host.to_string() } else { format!("{host}-{}", i + 1) },
            state: NodeState::Online,
            health: NodeHealth::OK,
            reachable: true,
            cores: per,
            sockets: 1,
            memory_mb: memory_mb / n as u64,
            groups: vec![COMPUTE_NODES.into(), LINUX_NODES.into()],
            cpus: (0..per).map(|k| cpus[((i * per + k) as usize) % cpus.len()]).collect(),
            host: host.to_string(),
            online_time: None,
            offline_time: None,
        })
        .collect();
    let mut defs: Vec<NodeGroup> = Vec::new();
    let mut next = 0u32;
    for entry in &layout.node_groups {
        let spec = GroupSpec::parse(entry)?;
        let (first, last) = match spec.members {
            Members::All => (0, n),
            Members::Count(c) => {
                if c > n - next {
                    return Err(format!(
                        "node group '{entry}': {} of the {n} nodes are left after the groups before it, not {c}",
                        n - next
                    ));
                }
                next += c;
                (next - c, next)
            }
            Members::Range(a, b) => {
                if b > n {
                    return Err(format!("node group '{entry}': there are {n} nodes, numbered 1 to {n}"));
                }
                (a - 1, b)
            }
        };
        for node in &mut nodes[first as usize..last as usize] {
            if !node.in_group(&spec.name) {
                node.groups.push(spec.name.clone());
            }
        }
        if !defs.iter().any(|d| d.name.eq_ignore_ascii_case(&spec.name)) {
            defs.push(NodeGroup { name: spec.name, description: "virtual nodes of the embedded cluster".into() });
        }
    }
    Ok((nodes, defs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_node_is_the_machine() {
        let (nodes, groups) = virtual_nodes(&LocalLayout::default(), "box", &[0, 1], 2048).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].name, "box");
        assert_eq!(nodes[0].cores, 2);
        assert_eq!(nodes[0].cpus, vec![0, 1]);
        assert!(groups.is_empty());
    }

    #[test]
    fn four_virtual_nodes_share_two_cpus() {
        let layout = LocalLayout { nodes: Some(4), cores_per_node: None, node_groups: vec!["azurenodes".into()] };
        let (nodes, groups) = virtual_nodes(&layout, "box", &[0, 1], 4096).unwrap();
        assert_eq!(nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["box-1", "box-2", "box-3", "box-4"]);
        assert!(nodes.iter().all(|n| n.cores == 1 && n.in_group("AzureNodes") && n.in_group("ComputeNodes")));
        assert_eq!(nodes.iter().map(|n| n.cpus[0]).collect::<Vec<_>>(), [0, 1, 0, 1]);
        assert_eq!(groups[0].name, "azurenodes");
    }

    fn members(layout: &[&str], n: u32) -> Result<Vec<Vec<String>>, String> {
        let layout = LocalLayout { nodes: Some(n), node_groups: layout.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        let (nodes, _) = virtual_nodes(&layout, "box", &[0, 1], 0)?;
        Ok(nodes.into_iter().map(|n| n.groups[2..].to_vec()).collect())
    }

    #[test]
    fn counted_groups_take_the_next_nodes_and_ranges_name_them() {
        let m = members(&["azurenodes:2", "vmcomputenodes:2"], 4).unwrap();
        assert_eq!(m, [vec!["azurenodes"], vec!["azurenodes"], vec!["vmcomputenodes"], vec!["vmcomputenodes"]]);
        let m = members(&["ib:2-3", "all", "ib:1-1"], 3).unwrap();
        assert_eq!(m, [vec!["all", "ib"], vec!["ib", "all"], vec!["ib", "all"]]);
    }

    #[test]
    fn group_entries_that_do_not_fit_are_named() {
        assert!(members(&["a:3", "b:2"], 4).unwrap_err().contains("'b:2': 1 of the 4 nodes are left"));
        assert!(members(&["a:2-5"], 4).unwrap_err().contains("numbered 1 to 4"));
        assert!(members(&["a:0-1"], 4).unwrap_err().contains("numbered from 1"));
        assert!(members(&["a:x"], 4).unwrap_err().contains("count of nodes"));
        assert!(members(&["computenodes:1"], 4).unwrap_err().contains("ComputeNodes is built in"));
        assert!(members(&["bad name"], 4).unwrap_err().contains("not a node group name"));
    }
}
