//! This host as mpiexec sees it: its name, the CPUs mpiexec may run on, the
//! working directory, and the environment that shapes every rank wherever
//! it starts (`PATH`, `CCP_MPI_NETMASK`, `CCP_MPI_WORKDIR`, and the embedded
//! cluster's virtual nodes, `HPCPACK_LOCAL_NODES`).
//!
//! Which bootstrap starts the ranks is not decided here, but in
//! [`super::bootstrap::pick`].

use std::path::PathBuf;

use crate::env;
use crate::node::sys;

/// This host as the launcher sees it.
#[derive(Debug, Clone)]
pub struct Local {
    pub host: String,
    /// The CPUs mpiexec may run on, which the ranks are bound to.
    pub cpus: Vec<u32>,
    pub dir: PathBuf,
    /// `PATH`, for finding the executables.
    pub path: Option<String>,
    /// `CCP_MPI_NETMASK`.
    pub netmask: Option<String>,
    /// `CCP_MPI_WORKDIR`.
    pub workdir: Option<String>,
    /// Nodes of the job that run on this host, with their CPUs
    /// (`HPCPACK_LOCAL_NODES`: the embedded cluster's virtual nodes).
    pub nodes: Vec<(String, Vec<u32>)>,
}

/// Parses `HPCPACK_LOCAL_NODES` (`<node>=<cpu>,<cpu> …`); malformed items are
/// skipped (the variable is set by the head node, not typed by users).
pub fn parse_local_nodes(v: &str) -> Vec<(String, Vec<u32>)> {
    v.split_whitespace()
        .filter_map(|item| {
            let (name, cpus) = item.split_once('=')?;
            let cpus: Vec<u32> = cpus
                .split(',')
                .filter_map(|c| c.trim().parse().ok())
                .collect();
            (!name.is_empty()).then(|| (name.to_string(), cpus))
        })
        .collect()
}

impl Local {
    /// This process's host, CPUs, directory and environment.
    pub fn from_os() -> Local {
        let cpus = sys::affinity()
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| (0..sys::online_cpus()).collect());
        Local {
            host: sys::hostname(),
            cpus,
            dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            path: std::env::var(env::PATH).ok(),
            netmask: std::env::var(env::CCP_MPI_NETMASK).ok(),
            workdir: std::env::var(env::CCP_MPI_WORKDIR).ok(),
            nodes: std::env::var(env::HPCPACK_LOCAL_NODES)
                .map(|v| parse_local_nodes(&v))
                .unwrap_or_default(),
        }
    }

    /// The CPUs of a node of this host, if the head node named it.
    pub fn node_cpus(&self, name: &str) -> Option<&[u32]> {
        self.nodes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| c.as_slice())
            .filter(|c| !c.is_empty())
    }

    /// Whether `name` means this host.
    pub fn is_local(&self, name: &str) -> bool {
        let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
        name.eq_ignore_ascii_case(&self.host)
            || short(name) == short(&self.host)
            || self.nodes.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
            || ["localhost", "127.0.0.1", "::1", "."]
                .iter()
                .any(|l| name.eq_ignore_ascii_case(l))
    }
}
