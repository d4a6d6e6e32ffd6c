//! Ranks across the nodes of a Slurm allocation (mpiexec run by `salloc`,
//! `sbatch` or inside a step, `SLURM_JOB_ID` set), as MPICH's Hydra starts
//! them: the ranks of this host as children, the others by one proxy
//! per host ([`super::proxy`]), all proxies started by one `srun` step:
//!
//! ```text
//! srun --overlap --nodes=K --ntasks=K --ntasks-per-node=1 --nodelist=h1,…
//!      --kill-on-bad-exit=0 --input=none … mpiexec --hpcpack-proxy
//! ```
//!
//! with every count given, so the variables of an enclosing step
//! (`SLURM_NTASKS`, …) do not shape this one, and without `SLURM_JWT`
//! (with it srun authenticates to slurmd by JWT, which slurmd refuses). The
//! proxies' settings travel in the environment (`HPCPACK_PROXY_*`), which
//! srun passes on; a proxy finds its node by `SLURMD_NODENAME`. A host
//! outside the allocation is refused before anything starts.
//!
//! When mpiexec ends, so does the step: the proxies end once their ranks
//! have, and srun with them; an srun still running when the bootstrap is
//! dropped gets SIGTERM, then SIGKILL (and SIGTERM if mpiexec dies, as its
//! parent-death signal). Either way Slurm ends what is left of the step,
//! and each proxy's ranks die with it.

use std::path::Path;
use std::process::Command;

use super::proxy::{Failure, LaunchCommand, Settings, Split};
use super::{Bootstrap, Job, Launch, StartError, Started};
use crate::env;
use crate::mpi::mpiexec::local::Local;
use super::proxy::PROXY_ARG;
use crate::slurm::hostlist;

/// Starts the ranks of other nodes of the Slurm allocation through `srun`
/// and proxies, and the ranks of this host as children.
pub struct Srun {
    split: Split,
    /// `SLURM_JOB_ID`.
    job: String,
    /// The allocation's nodes (`SLURM_JOB_NODELIST`), or why they are
    /// unknown.
    nodes: Result<Vec<String>, String>,
}

impl Srun {
    /// The bootstrap of allocation `job` whose nodes are the host list
    /// `nodelist`; `local` is this host.
    pub fn new(local: Local, job: String, nodelist: Option<&str>) -> Srun {
        let nodes = match nodelist {
            Some(list) => hostlist::expand(list).map_err(|e| e.to_string()),
            None => Err(format!("{} is not set", env::SLURM_JOB_NODELIST)),
        };
        Srun {
            split: Split::new(local, "srun"),
            job,
            nodes,
        }
    }
}

/// The name among the allocation's `nodes` of `host` (which may differ in
/// case or domain), if the allocation has it.
fn node<'a>(nodes: &'a Result<Vec<String>, String>, host: &str) -> Option<&'a str> {
    let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
    let nodes = nodes.as_ref().ok()?;
    nodes
        .iter()
        .find(|n| n.eq_ignore_ascii_case(host))
        .or_else(|| nodes.iter().find(|n| short(n) == short(host)))
        .map(String::as_str)
}

impl Bootstrap for Srun {
    fn reach(&self, host: &str) -> Result<(), StartError> {
        if self.split.children.reach(host).is_ok() || node(&self.nodes, host).is_some() {
            return Ok(());
        }
        Err(StartError::NotAllocated {
            host: host.to_string(),
            job: self.job.clone(),
            nodes: match &self.nodes {
                Ok(n) => n.join(", "),
                Err(e) => e.clone(),
            },
        })
    }

    fn how(&self, launch: &Launch) -> String {
        self.split.how(launch)
    }

    fn open(&mut self, launches: &[Launch], job: &Job) -> Result<(), StartError> {
        // Each proxied rank runs on its host's Slurm name.
        let nodes = &self.nodes;
        let host_of = |l: &Launch| node(nodes, &l.host).unwrap_or(&l.host).to_string();
        let commands = |settings: &Settings, nodes: &[&str], exe: &Path| {
            let mut cmd = srun_command(nodes, exe);
            cmd.envs(settings.vars());
            vec![LaunchCommand {
                cmd,
                stdin: None,
                hosts: nodes.iter().map(|n| n.to_string()).collect(),
            }]
        };
        let failed = |f: Failure| StartError::Srun {
            hosts: f.hosts.join(", "),
            reason: f.reason,
            output: srun_output(&f.output),
        };
        let job_id = self.job.parse().unwrap_or(0);
        self.split.open(launches, host_of, job_id, job, commands, failed)
    }

    fn start(&self, launch: &Launch, job: &mut Job) -> Result<Started, StartError> {
        self.split.start(launch, job)
    }
}

/// `srun` starting `exe` as a proxy on each of `nodes`, with the counts
/// given rather than inherited.
fn srun_command(nodes: &[&str], exe: &Path) -> Command {
    let k = nodes.len();
    let mut cmd = Command::new("srun");
    cmd.args([
        "--overlap".to_string(),
        format!("--nodes={k}"),
        format!("--ntasks={k}"),
        "--ntasks-per-node=1".to_string(),
        format!("--nodelist={}", nodes.join(",")),
        "--kill-on-bad-exit=0".to_string(),
        "--input=none".to_string(),
        // The proxies' environment is mpiexec's, whatever the allocation's
        // --export said; the ranks inherit the proxy's CPUs, so srun binds
        // it to none; a proxy ending early does not end the others; no PMI
        // plugin (the ranks' PMI is mpiexec's).
        "--export=ALL".to_string(),
        "--cpu-bind=none".to_string(),
        "--wait=0".to_string(),
        "--mpi=none".to_string(),
        "--quiet".to_string(),
    ])
    .arg(exe)
    .arg(PROXY_ARG)
    .env_remove(env::SLURM_JWT);
    cmd
}

/// srun's output for an error message, without what `--cpu-bind=none`
/// makes it say where Slurm binds no tasks anyway: true, and no reason for
/// a failure.
fn srun_output(output: &str) -> String {
    output
        .lines()
        .filter(|l| *l != "srun: cluster configuration lacks support for cpu binding")
        .collect::<Vec<_>>()
        .join("\n")
}
