//! Rank placement: which host runs which rank, as MS-MPI's
//! `post_process_cmdline` and `create_launch_list` decide it.
//!
//! * The *global pool* is `-ghost`/`-gmachinefile`, else `CCP_NODES`, else
//!   the local host with all its logical CPUs. Inside a Slurm allocation
//!   without `CCP_NODES`, the allocation's nodes stand for `CCP_NODES`
//!   ([`slurm_nodes`]). `CCP_NODES` is read (and a bad
//!   value is an error) whenever there is no `-ghost`/`-gmachinefile`, even if
//!   every section has its own hosts; `CCP_NODES=Overflow` is only tolerated
//!   when some `-machinefile`/`-gmachinefile` was given (then the local host
//!   is the pool). This is the source's behaviour, a little stricter than the
//!   spec's summary.
//! * `-c N` sets every host of every pool to N cores.
//! * A section's rank count is its `-n`; else the sum of its own hosts; else,
//!   for at most one section, *what the other global-pool sections leave of
//!   the global pool* — if they leave nothing, that is the "not enough cores
//!   left" error. A second such section is "expecting one of -n …".
//! * Ranks fill each host up to its count, in order, wrapping around to the
//!   first host when a section asks for more ranks than its pool has cores.
//!   Sections using the global pool share one cursor, so section 2 starts
//!   where section 1 stopped; a section's own host list starts afresh.

use super::error::MpiexecError;
use super::hosts::parse_hosts_string;
use super::plan::{Host, MAX_RANKS, Plan};

/// Ranks of one section on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRanks {
    pub host: String,
    /// World ranks, ascending.
    pub ranks: Vec<u32>,
}

/// The global pool: `-ghost`/`-gmachinefile`, else `CCP_NODES`, else the
/// local host with `local_cpus` cores.
fn global_pool(
    plan: &Plan,
    ccp_nodes: Option<&str>,
    local_host: &str,
    local_cpus: u32,
) -> Result<Vec<Host>, MpiexecError> {
    if let Some(pool) = &plan.global.hosts {
        return Ok(pool.clone());
    }
    let from_env = match ccp_nodes {
        Some(v) if v.eq_ignore_ascii_case("Overflow") => {
            if !plan.global.machinefile_given {
                return Err(MpiexecError::CcpNodesOverflow);
            }
            Vec::new()
        }
        Some(v) => parse_hosts_string(v).map_err(MpiexecError::CcpNodes)?,
        None => Vec::new(),
    };
    if from_env.is_empty() {
        return Ok(vec![Host::new(local_host, local_cpus.max(1))]);
    }
    Ok(from_env)
}

/// A Slurm allocation's nodes as a `CCP_NODES` value (`<n> <node> <cores>
/// …`): the nodes of `SLURM_JOB_NODELIST`, each with its count of
/// `SLURM_TASKS_PER_NODE` (1 without one), as MPICH's Hydra reads them.
pub fn slurm_nodes(nodelist: &str, tasks_per_node: Option<&str>) -> Result<String, MpiexecError> {
    use crate::slurm::hostlist;
    let err = |e: hostlist::ListError| MpiexecError::SlurmNodes(e.to_string());
    let nodes = hostlist::expand(nodelist).map_err(err)?;
    if nodes.is_empty() {
        return Err(MpiexecError::SlurmNodes(format!(
            "the node list '{nodelist}' names no node"
        )));
    }
    let counts = match tasks_per_node {
        Some(t) => hostlist::tasks_per_node(t).map_err(err)?,
        None => vec![1; nodes.len()],
    };
    if counts.len() != nodes.len() {
        return Err(MpiexecError::SlurmNodes(format!(
            "'{nodelist}' names {} nodes but the task counts '{}' are for {}",
            nodes.len(),
            tasks_per_node.unwrap_or_default(),
            counts.len()
        )));
    }
    let mut v = nodes.len().to_string();
    for (n, c) in nodes.iter().zip(&counts) {
        v.push_str(&format!(" {n} {}", c.max(&1)));
    }
    Ok(v)
}

/// A cursor over a pool: the host being filled and how many ranks it has.
struct Cursor {
    host: usize,
    used: u32,
}

/// Decides the hosts of every rank: one list per section, hosts in the order
/// they are first used. See the module doc for the rules.
pub fn place(
    plan: &Plan,
    ccp_nodes: Option<&str>,
    local_host: &str,
    local_cpus: u32,
) -> Result<Vec<Vec<HostRanks>>, MpiexecError> {
    let cores = plan.global.cores_per_host;
    let with_cores = |pool: &[Host]| -> Vec<Host> {
        let mut pool = pool.to_vec();
        if let Some(n) = cores {
            pool.iter_mut().for_each(|h| h.cores = n);
        }
        pool
    };
    let global = with_cores(&global_pool(plan, ccp_nodes, local_host, local_cpus)?);
    let global_cores: u32 = global.iter().map(|h| h.cores).sum();

    let mut counts = Vec::with_capacity(plan.sections.len());
    let mut rest: Option<usize> = None;
    for (i, s) in plan.sections.iter().enumerate() {
        let own: u32 = s
            .hosts
            .as_deref()
            .map_or(0, |h| with_cores(h).iter().map(|h| h.cores).sum());
        match (s.processes, own) {
            (Some(n), _) => counts.push(n),
            (None, own) if own > 0 => counts.push(own),
            (None, _) if rest.is_none() => {
                rest = Some(i);
                counts.push(0);
            }
            _ => return Err(MpiexecError::SectionWithoutCount(i + 1)),
        }
    }
    let total: u32 = counts.iter().sum();
    if total > MAX_RANKS {
        return Err(MpiexecError::TooManyRanks);
    }
    let on_global: u32 = plan
        .sections
        .iter()
        .zip(&counts)
        .filter(|(s, _)| s.hosts.is_none())
        .map(|(_, n)| n)
        .sum();
    if let Some(i) = rest {
        if on_global >= global_cores {
            return Err(MpiexecError::NotEnoughCores {
                exe: plan.sections[i].exe.clone(),
                section: i + 1,
                processes: total,
                cores: global_cores + total - on_global,
            });
        }
        counts[i] = global_cores - on_global;
    }
    if counts.iter().sum::<u32>() > MAX_RANKS {
        return Err(MpiexecError::TooManyRanks);
    }

    let mut shared = Cursor { host: 0, used: 0 };
    let mut next_rank = 0;
    let mut out = Vec::with_capacity(plan.sections.len());
    for (s, &n) in plan.sections.iter().zip(&counts) {
        let own = s.hosts.as_deref().map(with_cores);
        let mut fresh = Cursor { host: 0, used: 0 };
        let (pool, cursor) = match &own {
            Some(pool) => (pool.as_slice(), &mut fresh),
            None => (global.as_slice(), &mut shared),
        };
        out.push(fill(pool, cursor, n, &mut next_rank));
    }
    Ok(out)
}

/// Places `n` ranks on `pool` from `cursor`, wrapping around at the end.
fn fill(pool: &[Host], cursor: &mut Cursor, n: u32, next_rank: &mut u32) -> Vec<HostRanks> {
    let mut out: Vec<HostRanks> = Vec::new();
    for _ in 0..n {
        if cursor.host < pool.len() && cursor.used == pool[cursor.host].cores {
            cursor.host += 1;
            cursor.used = 0;
        }
        if cursor.host >= pool.len() {
            cursor.host = 0;
            cursor.used = 0;
        }
        cursor.used += 1;
        let name = &pool[cursor.host].name;
        match out.iter_mut().find(|h| &h.host == name) {
            Some(h) => h.ranks.push(*next_rank),
            None => out.push(HostRanks {
                host: name.clone(),
                ranks: vec![*next_rank],
            }),
        }
        *next_rank += 1;
    }
    out
}

#[cfg(test)]
#[path = "place_tests.rs"]
mod tests;
