//! Bootstrap: starting the ranks of a prepared job on their hosts, with
//! their environment and a way to reach mpiexec's PMI server, and bringing
//! their output and exits back. [`super::run`]'s supervisor talks to one
//! [`Bootstrap`] and sees only [`Started`] ranks and [`Report`]s, so every
//! way of starting a rank ends a job the same way.
//!
//! [`pick`] chooses the bootstrap from the environment mpiexec runs in:
//!
//! * [`LaunchService`]: inside a job of the embedded head, which names the
//!   launch service of each of the task's nodes (`HPCPACK_LAUNCH`) and gives
//!   the job's credential (`HPCPACK_JOB_CREDENTIAL`). A rank on a served
//!   node is started by that node agent ([`crate::node::launch`]) and
//!   reaches PMI over TCP ([`PmiListener`]); a rank on this host that no
//!   service serves is started as [`Children`] start it.
//! * [`Srun`]: inside a Slurm allocation (`SLURM_JOB_ID`) without launch
//!   services. The ranks of this host are [`Children`]; those of the
//!   allocation's other nodes are started by one proxy per node (mpiexec
//!   itself, `--hpcpack-proxy`, see [`proxy`]), all started by one `srun`
//!   step in `open`, each proxy connecting back to mpiexec with the
//!   launch's secret and then treated as a launch service is. PMI over TCP
//!   ([`PmiListener`]), from the proxy's address only. A host outside the
//!   allocation is refused before anything starts.
//! * [`Ssh`]: everywhere else. The ranks of this host are [`Children`]
//!   (PMI over a socket pair); those of each other host are started by the
//!   same proxies, one per host, each started by its own `ssh` in `open`
//!   (`HPCPACK_SSH` names the command). A host ssh cannot reach fails the
//!   launch before any rank starts.
//!
//! A bootstrap is asked, in order: [`Bootstrap::reach`] for every placed
//! host (while the launches are prepared, so a host no bootstrap reaches is
//! refused before any rank starts), [`Bootstrap::open`] once with every
//! launch (what the ranks need before the first starts, such as a PMI
//! listener they can reach from their hosts), then [`Bootstrap::start`] for
//! each rank in rank order. A bootstrap that starts many ranks with one
//! command (one step of a workload manager, one remote shell per host) does
//! so in `open` and hands out each rank's [`Started`] in `start`.
//!
//! Either way a rank's exit arrives as [`Report::Exited`] with the code a
//! shell would show (128 + signal when killed), after its output.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;

use super::local::Local;
use crate::env;
use crate::mpi::pmi::Event as PmiEvent;
use crate::node::protocol::Frame;
use crate::node::sys;

mod children;
mod pmi;
pub mod proxy;
mod remote;
mod service;
mod srun;
mod ssh;

pub use children::Children;
pub use pmi::{Pmi, PmiListener, PortPeer, SharedPmi};
pub use proxy::{ProxySource, proxy_main};
pub use service::{LaunchService, parse_launch};
pub use srun::Srun;
pub use ssh::Ssh;

/// How long a launch service may take to answer a request, and a PMI
/// connection to send its handshake.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything needed to start one rank, wherever it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub rank: u32,
    /// The host (or node) the rank was placed on.
    pub host: String,
    /// The executable as the user wrote it (for messages).
    pub exe: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub dir: PathBuf,
    /// Variables set on top of mpiexec's own environment, in order (the last
    /// of a name wins), PMI's included.
    pub env: Vec<(String, String)>,
    /// The logical CPU the rank is bound to, with `-affinity`.
    pub cpu: Option<u32>,
    /// The nice value of its section's `-priority`.
    pub nice: Option<i32>,
}

/// Why a rank could not be started.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(
        "Error: cannot launch on host '{host}': it is not this host ({local}) and no node agent's launch service serves it (inside a job, HPCPACK_LAUNCH names the services of the job's nodes)."
    )]
    RemoteHost { host: String, local: String },
    #[error("Error: cannot launch on host '{host}': a host name cannot start with '-' (ssh would read it as an option).")]
    NotAHost { host: String },
    #[error(
        "Error: cannot launch rank {rank} on {node} through the launch service at {addr}: {message}."
    )]
    Service {
        rank: u32,
        node: String,
        addr: String,
        message: String,
    },
    #[error(
        "Error: cannot launch on host '{host}': it is not a node of Slurm job {job}'s allocation ({nodes})."
    )]
    NotAllocated {
        host: String,
        job: String,
        nodes: String,
    },
    #[error("Error: cannot start the ranks on {hosts} through srun: {reason}.{}", srun_said(output))]
    Srun {
        hosts: String,
        reason: String,
        /// What srun (and the proxies) printed.
        output: String,
    },
    #[error(
        "Error: cannot start the proxy on host '{host}' through ssh: {reason}.{}",
        ssh_said(said)
    )]
    Ssh {
        host: String,
        reason: String,
        /// The last line ssh (or the proxy) printed.
        said: String,
    },
    #[error("Error: cannot launch rank {rank} on {node} through its {via} proxy: {message}.")]
    Proxy {
        rank: u32,
        node: String,
        /// What started the proxy: `srun`, `ssh`.
        via: &'static str,
        message: String,
    },
    #[error("Error: cannot launch '{exe}' on {host}: {source}.")]
    Spawn {
        exe: String,
        host: String,
        source: io::Error,
    },
    #[error("Error: {what}: {source}.")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

/// srun's output for [`StartError::Srun`]'s message, on lines of its own.
fn srun_said(output: &str) -> String {
    if output.is_empty() {
        " srun printed nothing.".to_string()
    } else {
        format!(" srun printed:\n{output}")
    }
}

/// The last line ssh printed, for [`StartError::Ssh`]'s message (on the
/// same line).
fn ssh_said(said: &str) -> String {
    if said.is_empty() {
        " ssh printed nothing.".to_string()
    } else {
        format!(" ssh said: {said}")
    }
}

/// What the helper threads tell the supervisor.
pub enum Report {
    /// The rank ended: its code, 128 + the signal if killed.
    Exited { rank: u32, code: i32 },
    Pmi(PmiEvent),
    Signal,
}

/// What the ranks of one job share while they start: mpiexec's PMI server,
/// the supervisor's channel, `-lines`, and the threads that forward output
/// (joined by the supervisor before it prints its reports).
pub struct Job {
    pub pmi: SharedPmi,
    pub tx: Sender<Report>,
    /// `-lines`: prefix each output line with `[rank]`.
    pub lines: bool,
    pub outputs: Vec<JoinHandle<()>>,
}

/// One way of starting ranks; see the module doc for the order of calls.
pub trait Bootstrap {
    /// Whether a rank placed on `host` can be started, and if not, why.
    fn reach(&self, host: &str) -> Result<(), StartError>;

    /// How `launch` is started, for the debug log (`by mpiexec`).
    fn how(&self, launch: &Launch) -> String;

    /// Readies what the ranks need before the first one starts; `launches`
    /// are all of the job's, in rank order.
    fn open(&mut self, launches: &[Launch], job: &Job) -> Result<(), StartError>;

    /// Starts one rank. Its PMI traffic is served by `job.pmi`, its exit and
    /// PMI events reach `job.tx`, its output threads go to `job.outputs`.
    /// On an error the supervisor kills the ranks started so far.
    fn start(&self, launch: &Launch, job: &mut Job) -> Result<Started, StartError>;
}

/// The bootstrap for the environment mpiexec runs in (`var` reads it):
/// the node agents' launch services when `HPCPACK_LAUNCH` names any, else
/// srun inside a Slurm allocation (`SLURM_JOB_ID`), else mpiexec's own
/// children and ssh (`HPCPACK_SSH`) for other hosts.
pub fn pick(local: &Local, var: impl Fn(&str) -> Option<String>) -> Box<dyn Bootstrap> {
    let services = var(env::HPCPACK_LAUNCH)
        .map(|v| parse_launch(&v))
        .unwrap_or_default();
    if services.is_empty() {
        if let Some(job) = var(env::SLURM_JOB_ID) {
            let nodes = var(env::SLURM_JOB_NODELIST);
            return Box::new(Srun::new(local.clone(), job, nodes.as_deref()));
        }
        let ssh = var(env::HPCPACK_SSH);
        return Box::new(Ssh::new(local.clone(), ssh.as_deref()));
    }
    let children = Children::new(local.clone());
    let credential = var(env::HPCPACK_JOB_CREDENTIAL);
    Box::new(LaunchService::new(services, credential, children))
}

/// How to stop a started rank.
enum Handle {
    /// A child of mpiexec leading its own process group.
    Child { pid: u32 },
    /// A rank started by another process (a launch service, a proxy): our
    /// end of its connection.
    Remote { conn: TcpStream },
}

/// One started rank.
pub struct Started {
    handle: Handle,
    /// Its exit code, once reported.
    pub exited: Option<i32>,
}

impl Started {
    /// Kills the rank (and what it started) with SIGKILL; its exit is then
    /// reported as usual.
    pub fn kill(&self) {
        match &self.handle {
            Handle::Child { pid } => {
                let _ = sys::killpg(*pid, libc::SIGKILL);
            }
            Handle::Remote { conn } => {
                // The other side kills on either; the frame says it was meant.
                let _ = Frame::Kill.write_to(&mut &*conn);
                let _ = conn.shutdown(Shutdown::Write);
            }
        }
    }
}

/// Copies a rank's output to ours, with `[rank]` before each line when
/// `lines` is set.
fn forward(rank: u32, from: impl Read, stderr: bool, lines: bool) {
    let write = |bytes: &[u8]| {
        let _ = if stderr {
            io::stderr().lock().write_all(bytes)
        } else {
            let mut out = io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        };
    };
    let mut from = BufReader::new(from);
    if lines {
        let mut line = Vec::new();
        loop {
            line.clear();
            match from.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if !line.ends_with(b"\n") {
                line.push(b'\n');
            }
            let mut buf = format!("[{rank}]").into_bytes();
            buf.extend_from_slice(&line);
            write(&buf);
        }
    }
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => write(&buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_reads_the_environment() {
        let local = Local {
            host: "node1".into(),
            cpus: vec![0],
            dir: PathBuf::from("/"),
            path: None,
            netmask: None,
            workdir: None,
            nodes: Vec::new(),
        };
        let launch = |host: &str| Launch {
            rank: 0,
            host: host.into(),
            exe: "sh".into(),
            program: PathBuf::from("/bin/sh"),
            args: Vec::new(),
            dir: PathBuf::from("/"),
            env: Vec::new(),
            cpu: None,
            nice: None,
        };
        let outside = pick(&local, |_| None);
        assert_eq!(outside.how(&launch("node1")), "by mpiexec");
        assert!(outside.reach("node2").is_ok());
        assert_eq!(outside.how(&launch("node2")), "through ssh, by the proxy on node2");
        let inside = pick(&local, |name| {
            (name == env::HPCPACK_LAUNCH).then(|| "node2=127.0.0.1:4000".to_string())
        });
        assert!(inside.reach("node2").is_ok());
        assert_eq!(
            inside.how(&launch("node2")),
            "through the launch service at 127.0.0.1:4000"
        );
        assert_eq!(inside.how(&launch("node1")), "by mpiexec");
        let slurm = |name: &str| match name {
            env::SLURM_JOB_ID => Some("7".to_string()),
            env::SLURM_JOB_NODELIST => Some("node[1-3]".to_string()),
            _ => None,
        };
        let allocated = pick(&local, slurm);
        assert!(allocated.reach("node3").is_ok());
        assert!(allocated.reach("NODE2").is_ok());
        let e = allocated.reach("node4").unwrap_err().to_string();
        assert!(e.contains("not a node of Slurm job 7's allocation (node1, node2, node3)"), "{e}");
        assert_eq!(allocated.how(&launch("node2")), "through srun, by the proxy on node2");
        assert_eq!(allocated.how(&launch("node1")), "by mpiexec");
        // Launch services win over the allocation (a job of the embedded
        // head node run inside one).
        let both = pick(&local, |name| {
            (name == env::HPCPACK_LAUNCH)
                .then(|| "node2=127.0.0.1:4000".to_string())
                .or_else(|| slurm(name))
        });
        assert_eq!(
            both.how(&launch("node2")),
            "through the launch service at 127.0.0.1:4000"
        );
        assert!(both.reach("node3").is_err());
    }
}
