//! From a placed [`Plan`] to one [`Launch`] per rank: each rank's program
//! (found in `-path`, `PATH` or its working directory), working directory,
//! environment (`-genv`, `-env`, `CCP_MPI_NETMASK` as `MPICH_NETMASK`, PMI's
//! variables), CPU with `-affinity` and nice value with `-priority`. What
//! any bootstrap starts is decided here, so every bootstrap starts the
//! same ranks.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::affinity::Algorithm;
use super::bootstrap::{Bootstrap, Launch, StartError};
use super::local::Local;
use super::place::HostRanks;
use super::plan::Plan;
use crate::env::{self, MPI_LOCALNRANKS, MPI_LOCALRANKID, MPICH_NETMASK};
use crate::mpi::comm::select::NetmaskOrigin;
use crate::mpi::pmi;

/// Why the ranks of a plan could not be prepared.
#[derive(Debug, Error)]
pub enum PrepareError {
    /// A rank is placed on a host the bootstrap does not reach.
    #[error(transparent)]
    Unreachable(#[from] StartError),
    #[error(
        "Error: cannot launch '{exe}' on {host}: no such executable file in -path, PATH or the working directory '{dir}'."
    )]
    NotFound {
        exe: String,
        host: String,
        dir: String,
    },
}

/// MS-MPI ignores a `CCP_MPI_NETMASK` longer than this.
pub const MAX_NETMASK_LEN: usize = 31;

/// The Linux nice value of MS-MPI's `-priority` class: 0 idle (19), 1 below
/// normal (10), 2 normal (unchanged: mpiexec's own), 3 above normal (-5),
/// 4 high (-10).
pub fn priority_nice(priority: u8) -> Option<i32> {
    match priority {
        0 => Some(19),
        1 => Some(10),
        3 => Some(-5),
        4 => Some(-10),
        _ => None,
    }
}

/// Resolves a placed plan into one [`Launch`] per rank, in rank order;
/// every host must be one `boot` reaches. Pure apart from looking for the
/// executables.
pub fn prepare(
    plan: &Plan,
    placement: &[Vec<HostRanks>],
    local: &Local,
    boot: &dyn Bootstrap,
) -> Result<Vec<Launch>, PrepareError> {
    let size: u32 = placement
        .iter()
        .flatten()
        .map(|h| h.ranks.len() as u32)
        .sum();
    // Every host's ranks, over all sections, ascending: MPI_LOCALNRANKS and
    // MPI_LOCALRANKID count the ranks of one host, as Hydra's do.
    let mut on_host: Vec<(&str, Vec<u32>)> = Vec::new();
    for h in placement.iter().flatten() {
        match on_host.iter_mut().find(|(name, _)| *name == h.host) {
            Some((_, ranks)) => ranks.extend(&h.ranks),
            None => on_host.push((&h.host, h.ranks.clone())),
        }
    }
    on_host.iter_mut().for_each(|(_, ranks)| ranks.sort_unstable());
    let mut out = Vec::with_capacity(size as usize);
    for (section, hosts) in plan.sections.iter().zip(placement) {
        let wdir = section
            .wdir
            .as_deref()
            .or(plan.global.wdir.as_deref())
            .or(local.workdir.as_deref());
        let dir = wdir.map_or_else(|| local.dir.clone(), |w| local.dir.join(w));
        let search = section.path.as_deref().or(plan.global.path.as_deref());
        for h in hosts {
            boot.reach(&h.host)?;
            let program = resolve_exe(&section.exe, search, &dir, local.path.as_deref())
                .ok_or_else(|| PrepareError::NotFound {
                    exe: section.exe.clone(),
                    host: h.host.clone(),
                    dir: dir.display().to_string(),
                })?;
            let mut env = Vec::new();
            // The last of these that sets MPICH_NETMASK wins; the ranks are
            // told which, so their messages name what to change.
            let mut origin = NetmaskOrigin::Environment;
            if let Some(mask) = local
                .netmask
                .as_ref()
                .filter(|m| m.len() <= MAX_NETMASK_LEN)
            {
                env.push((MPICH_NETMASK.to_string(), mask.clone()));
                origin = NetmaskOrigin::Cluster;
            }
            for (list, from) in [
                (&plan.global.env, NetmaskOrigin::Genv),
                (&section.env, NetmaskOrigin::Env),
            ] {
                if list.iter().any(|(k, _)| k == MPICH_NETMASK) {
                    origin = from;
                }
                env.extend(list.iter().cloned());
            }
            env.push((
                env::HPCPACK_NETMASK_ORIGIN.to_string(),
                origin.code().to_string(),
            ));
            let host_ranks = on_host
                .iter()
                .find(|(name, _)| *name == h.host)
                .map_or(&[][..], |(_, ranks)| ranks.as_slice());
            for &rank in &h.ranks {
                let local_id = host_ranks.iter().position(|&r| r == rank).unwrap_or(0);
                let mut env = env.clone();
                env.push((env::HPCPACK_NODE_NAME.into(), h.host.clone()));
                env.push((pmi::PMI_RANK.into(), rank.to_string()));
                env.push((pmi::PMI_SIZE.into(), size.to_string()));
                env.push((MPI_LOCALNRANKS.into(), host_ranks.len().to_string()));
                env.push((MPI_LOCALRANKID.into(), local_id.to_string()));
                out.push(Launch {
                    rank,
                    host: h.host.clone(),
                    exe: section.exe.clone(),
                    program: program.clone(),
                    args: section.args.clone(),
                    dir: dir.clone(),
                    env,
                    cpu: None,
                    nice: section.priority.and_then(priority_nice),
                });
            }
        }
    }
    out.sort_by_key(|l| l.rank);
    if plan.global.affinity.algorithm != Algorithm::Disabled {
        // Ranks are spread over the CPUs of the node they were placed on: a
        // virtual node's own CPUs when the head node named them, else all of
        // this host's, counting the ranks on that node only.
        let mut per_node: Vec<(String, usize)> = Vec::new();
        for l in &out {
            match per_node.iter_mut().find(|(h, _)| *h == l.host) {
                Some((_, n)) => *n += 1,
                None => per_node.push((l.host.clone(), 1)),
            }
        }
        let mut seen: Vec<(String, usize)> = Vec::new();
        for l in out.iter_mut() {
            let count = per_node
                .iter()
                .find(|(h, _)| *h == l.host)
                .map(|(_, n)| *n)
                .unwrap_or(1);
            let index = match seen.iter_mut().find(|(h, _)| *h == l.host) {
                Some((_, i)) => {
                    *i += 1;
                    *i - 1
                }
                None => {
                    seen.push((l.host.clone(), 1));
                    0
                }
            };
            let cpus = local.node_cpus(&l.host).unwrap_or(&local.cpus);
            l.cpu = cpu_for(cpus, count, index, plan.global.affinity.algorithm);
        }
    }
    Ok(out)
}

/// The CPU of the `index`-th of `count` ranks on a host with `cpus`:
/// sequential fills the CPUs in order; spread (and balanced, for want of a
/// NUMA map) puts the ranks as far apart as the count allows. More ranks
/// than CPUs wrap around.
pub fn cpu_for(cpus: &[u32], count: usize, index: usize, algorithm: Algorithm) -> Option<u32> {
    if cpus.is_empty() || count == 0 {
        return None;
    }
    let i = match algorithm {
        Algorithm::Disabled => return None,
        Algorithm::Sequential => index % cpus.len(),
        Algorithm::Spread | Algorithm::Balanced if count <= cpus.len() => {
            index * cpus.len() / count
        }
        Algorithm::Spread | Algorithm::Balanced => index % cpus.len(),
    };
    Some(cpus[i])
}

/// Finds the executable: a name with a `/` is taken relative to the rank's
/// working directory; a bare name is looked for in `-path` (`;`-separated,
/// as MS-MPI writes it; relative entries from the working directory), then
/// in `PATH`, then in the working directory (Windows searches the current
/// directory, so `mpiexec -n 2 a.out` works as `mpiexec -n 2 a.exe` does).
pub fn resolve_exe(
    exe: &str,
    search: Option<&str>,
    dir: &Path,
    path: Option<&str>,
) -> Option<PathBuf> {
    if exe.contains('/') {
        let p = dir.join(exe);
        return is_executable(&p).then_some(p);
    }
    let from_search = search
        .into_iter()
        .flat_map(|s| s.split(';'))
        .filter(|d| !d.is_empty())
        .map(|d| dir.join(d));
    let from_path = path
        .into_iter()
        .flat_map(|s| s.split(':'))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    from_search
        .chain(from_path)
        .chain(std::iter::once(dir.to_path_buf()))
        .map(|d| d.join(exe))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
