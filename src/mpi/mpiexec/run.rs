//! The launcher behind `mpiexec`: starts the ranks of a parsed [`Plan`],
//! serves them PMI-1 (see `spec/pmi.md`), forwards their output and ends the
//! job as MS-MPI does.
//!
//! Where a rank starts: inside a job the head node names the launch service
//! of each of the task's nodes (`HPCPACK_LAUNCH`) and gives the job's
//! credential (`HPCPACK_JOB_CREDENTIAL`); a rank placed on such a node is
//! started by that node agent's service. Any other rank must be on this host
//! (its name, its short name, `localhost`, or one of `HPCPACK_LOCAL_NODES`)
//! and is started by mpiexec itself; a plan naming another host fails before
//! anything is started. [`super::ranks`] has the two kinds of started rank;
//! everything below treats them alike.
//!
//! How a job ends (MS-MPI's `mpiexec_handle_command.cpp`, §7.5 of
//! `spec/hpcpack-cli.md`):
//!
//! * Every rank exits after `MPI_Finalize` (or without ever calling
//!   `MPI_Init`, like `hostname`): mpiexec's exit code is the first non-zero
//!   rank exit code, else 0.
//! * A rank calls `MPI_Abort` (PMI `abort`), is killed, exits non-zero before
//!   finalizing, or exits 0 after init but before finalize: every other rank
//!   is killed, the `job aborted:` and `---- error analysis -----` blocks are
//!   printed, and the exit code is that rank's (128 + signal for a signal, as
//!   a shell reports it).
//! * `-timeout`/`MPIEXEC_TIMEOUT` expires, or mpiexec gets SIGINT, SIGTERM or
//!   SIGHUP: every rank is killed, exit code [`TIMEOUT_EXIT`] or
//!   [`CANCEL_EXIT`].
//! * A launch service refuses a rank (bad credential, node outside the job,
//!   job not running): the ranks started so far are killed and mpiexec
//!   prints the service's reason and exits 1.
//!
//! Threads, not a poll loop: one per rank connection for PMI (all sharing one
//! `Mutex<Server>`, the pure state machine of [`crate::mpi::pmi::server`]),
//! one per output stream, one per rank to wait for it, and one for signals.
//! They all report to the main thread through one channel.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::affinity::Algorithm;
use super::ranks::{self, Pmi, PmiListener, Report, ServiceJob, Started};
use super::{Command, Help, HostRanks, MpiexecError, OsInputs, Plan, help, parse, place};
use crate::env;
use crate::mpi::comm::select::NetmaskOrigin;
use crate::mpi::pmi::{self, Event as PmiEvent, Server};
use crate::node::sys;

use crate::env::{CCP_MPI_WORKDIR, MPI_LOCALNRANKS, MPI_LOCALRANKID, MPICH_NETMASK};
/// MS-MPI ignores a `CCP_MPI_NETMASK` longer than this.
pub const MAX_NETMASK_LEN: usize = 31;

/// Exit code after `-timeout` killed the job (ours: MS-MPI's is a Windows
/// error code).
pub const TIMEOUT_EXIT: i32 = 1;
/// Exit code after SIGINT/SIGTERM/SIGHUP ended the job, as a shell reports
/// a job ended by Ctrl-C.
pub const CANCEL_EXIT: i32 = 130;

/// Why a job could not be started.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(
        "Error: cannot launch on host '{host}': it is not this host ({local}) and no node agent's launch service serves it (inside a job, HPCPACK_LAUNCH names the services of the job's nodes)."
    )]
    RemoteHost { host: String, local: String },
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
        "Error: cannot launch '{exe}' on {host}: no such executable file in -path, PATH or the working directory '{dir}'."
    )]
    NotFound {
        exe: String,
        host: String,
        dir: String,
    },
    #[error("Error: cannot launch '{exe}' on {host}: {source}.")]
    Spawn {
        exe: String,
        host: String,
        source: io::Error,
    },
    #[error("Error: cannot open the -logfile '{path}': {source}.")]
    LogFile { path: String, source: io::Error },
    #[error("Error: {what}: {source}.")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

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
    /// The launch service of each node of the job (`HPCPACK_LAUNCH`).
    pub launch: Vec<(String, String)>,
    /// `HPCPACK_JOB_CREDENTIAL`.
    pub credential: Option<String>,
}

/// Parses `HPCPACK_LAUNCH` (`<node>=<host:port> …`); malformed items are
/// skipped.
pub fn parse_launch(v: &str) -> Vec<(String, String)> {
    v.split_whitespace()
        .filter_map(|item| {
            let (name, addr) = item.split_once('=')?;
            (!name.is_empty() && addr.contains(':')).then(|| (name.to_string(), addr.to_string()))
        })
        .collect()
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
            workdir: std::env::var(CCP_MPI_WORKDIR).ok(),
            nodes: std::env::var(env::HPCPACK_LOCAL_NODES)
                .map(|v| parse_local_nodes(&v))
                .unwrap_or_default(),
            launch: env::var(env::HPCPACK_LAUNCH)
                .map(|v| parse_launch(&v))
                .unwrap_or_default(),
            credential: env::var(env::HPCPACK_JOB_CREDENTIAL),
        }
    }

    /// The launch service serving node `name`, if the head node named one.
    pub fn service(&self, name: &str) -> Option<&str> {
        self.launch
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| a.as_str())
    }

    /// The CPUs of a node of this host, if the head node named it.
    fn node_cpus(&self, name: &str) -> Option<&[u32]> {
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

/// Everything needed to start one rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub rank: u32,
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
    /// The nice value of its section's `-priority` ([`priority_nice`]).
    pub nice: Option<i32>,
    /// The launch service that starts it (`host:port`); `None`: mpiexec
    /// starts it on this host.
    pub service: Option<String>,
}

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

/// Resolves a placed plan into one [`Launch`] per rank, in rank order, for
/// a job whose PMI server is `kvsname`. Pure apart from looking for the
/// executables.
pub fn prepare(
    plan: &Plan,
    placement: &[Vec<HostRanks>],
    local: &Local,
) -> Result<Vec<Launch>, RunError> {
    let size: u32 = placement
        .iter()
        .flatten()
        .map(|h| h.ranks.len() as u32)
        .sum();
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
            let service = local.service(&h.host).map(str::to_string);
            if service.is_none() && !local.is_local(&h.host) {
                return Err(RunError::RemoteHost {
                    host: h.host.clone(),
                    local: local.host.clone(),
                });
            }
            let program = resolve_exe(&section.exe, search, &dir, local.path.as_deref())
                .ok_or_else(|| RunError::NotFound {
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
                crate::env::HPCPACK_NETMASK_ORIGIN.to_string(),
                origin.code().to_string(),
            ));
            for &rank in &h.ranks {
                let mut env = env.clone();
                env.push((crate::env::HPCPACK_NODE_NAME.into(), h.host.clone()));
                env.push((pmi::PMI_RANK.into(), rank.to_string()));
                env.push((pmi::PMI_SIZE.into(), size.to_string()));
                env.push((MPI_LOCALNRANKS.into(), size.to_string()));
                env.push((MPI_LOCALRANKID.into(), rank.to_string()));
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
                    service: service.clone(),
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

/// `[0-3]`, `[0,2-3]`: ranks as MS-MPI prints a set of them.
pub fn rank_ranges(ranks: &[u32]) -> String {
    let mut ranks = ranks.to_vec();
    ranks.sort_unstable();
    ranks.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ranks.len() {
        let mut j = i;
        while j + 1 < ranks.len() && ranks[j + 1] == ranks[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            ranks[i].to_string()
        } else {
            format!("{}-{}", ranks[i], ranks[j])
        });
        i = j + 1;
    }
    format!("[{}]", parts.join(","))
}

/// Why the job was aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The rank ended before finalizing: `code` is its exit code (128 +
    /// signal if killed), `initialized` whether it had sent PMI `init`.
    Exited {
        rank: u32,
        code: i32,
        initialized: bool,
    },
    /// The rank called `MPI_Abort`.
    Aborted { rank: u32, code: i32 },
    /// The rank sent a PMI line we do not serve.
    Fatal { rank: u32, line: String },
    /// SIGINT, SIGTERM or SIGHUP.
    User,
    /// `-timeout` seconds passed.
    Timeout(u32),
}

impl Cause {
    /// mpiexec's exit code for this cause.
    pub fn exit_code(&self) -> i32 {
        match self {
            Cause::Exited { code, .. } => *code,
            Cause::Aborted { code, .. } => *code,
            Cause::Fatal { .. } => 1,
            Cause::User => CANCEL_EXIT,
            Cause::Timeout(_) => TIMEOUT_EXIT,
        }
    }

    /// One line for the debug log.
    fn summary(&self) -> String {
        match self {
            Cause::Exited { rank, code, .. } => {
                format!("rank {rank} exited with code {code} before finalizing")
            }
            Cause::Aborted { rank, code } => format!("rank {rank} aborted with code {code}"),
            Cause::Fatal { rank, line } => format!("rank {rank} sent an unexpected PMI request: {line}"),
            Cause::User => "mpiexec was interrupted".to_string(),
            Cause::Timeout(s) => format!("the job ran past -timeout {s}"),
        }
    }

    fn rank(&self) -> Option<u32> {
        match self {
            Cause::Exited { rank, .. }
            | Cause::Aborted { rank, .. }
            | Cause::Fatal { rank, .. } => Some(*rank),
            Cause::User | Cause::Timeout(_) => None,
        }
    }
}

/// The `job aborted:` and `---- error analysis -----` blocks of MS-MPI
/// (§7.5) for a job of `launches` ended by `cause`; every other rank is
/// reported `terminated`. The texts are MS-MPI's except the timeout line,
/// for which the source gives none.
pub fn abort_report(cause: &Cause, launches: &[Launch]) -> String {
    let culprit = cause.rank();
    let others: Vec<u32> = launches
        .iter()
        .map(|l| l.rank)
        .filter(|r| Some(*r) != culprit)
        .collect();
    let mut s = String::from("\njob aborted:\n[ranks] message\n");
    let rank_text = match cause {
        Cause::Exited {
            initialized: false, ..
        } => "process exited without calling init",
        Cause::Exited { .. } => "process exited without calling finalize",
        Cause::Aborted { .. } => "application aborted",
        Cause::Fatal { .. } => "fatal error",
        Cause::User => "job terminated by the user",
        Cause::Timeout(_) => "terminated",
    };
    let mut blocks: Vec<(Vec<u32>, String)> = Vec::new();
    match culprit {
        Some(r) => blocks.push((vec![r], rank_text.to_string())),
        None => blocks.push((others.clone(), rank_text.to_string())),
    }
    if culprit.is_some() && !others.is_empty() {
        blocks.push((others, "terminated".to_string()));
    }
    blocks.sort_by_key(|(r, _)| r.first().copied());
    for (ranks, text) in blocks {
        let _ = write!(s, "\n{} {}\n", rank_ranges(&ranks), text);
    }
    if let Cause::Fatal { line, .. } = cause {
        let _ = writeln!(s, "unexpected PMI request: {line}");
    }
    s.push_str("\n---- error analysis -----\n\n");
    let who = |rank: u32| launches.iter().find(|l| l.rank == rank);
    match cause {
        Cause::Exited {
            rank,
            code,
            initialized,
        } => {
            let (host, exe) = who(*rank).map_or(("?", "?"), |l| (l.host.as_str(), l.exe.as_str()));
            let when = if *initialized {
                "ended prematurely"
            } else {
                "ended before calling init"
            };
            let _ = writeln!(
                s,
                "[{rank}] on {host}\n{exe} {when} and may have crashed. exit code {code}"
            );
        }
        Cause::Aborted { rank, code } => {
            let (host, exe) = who(*rank).map_or(("?", "?"), |l| (l.host.as_str(), l.exe.as_str()));
            let _ = writeln!(
                s,
                "[{rank}] on {host}\n{exe} aborted the job. abort code {code}"
            );
        }
        Cause::Fatal { rank, .. } => {
            let host = who(*rank).map_or("?", |l| l.host.as_str());
            let _ = writeln!(
                s,
                "[{rank}] on {host}\nmpi has detected a fatal error and aborted {}",
                who(*rank).map_or("?", |l| l.exe.as_str())
            );
        }
        Cause::User => s.push_str("ctrl-c was hit. job aborted by the user.\n"),
        Cause::Timeout(secs) => {
            let _ = writeln!(
                s,
                "mpiexec timed out after {secs} seconds; the job was terminated."
            );
        }
    }
    s.push_str("\n---- error analysis -----\n");
    s
}

/// The `-exitcodes` block: each rank's exit code.
pub fn exit_codes_report(launches: &[Launch], codes: &[Option<i32>]) -> String {
    let mut s = String::from("\n---- exit code ----\n\n");
    for (l, c) in launches.iter().zip(codes) {
        let _ = writeln!(s, "[{}] on {}: {}", l.rank, l.host, c.unwrap_or(-1));
    }
    s.push_str("\n---- exit code ----\n");
    s
}

/// Runs a plan on this host; returns mpiexec's exit code.
pub fn run(plan: &Plan, local: &Local, ccp_nodes: Option<&str>) -> Result<i32, RunOrParseError> {
    let placement = place(plan, ccp_nodes, &local.host, local.cpus.len() as u32)?;
    let mut launches = prepare(plan, &placement, local)?;
    // Raising priority needs a privilege a user may lack; the ranks then run
    // at normal priority, and mpiexec says so once.
    for p in plan.sections.iter().filter_map(|s| s.priority).collect::<std::collections::BTreeSet<_>>() {
        if priority_nice(p).is_some_and(|n| !sys::may_set_nice(n)) {
            eprintln!(
                "mpiexec: -priority {p} needs permission to raise priority (root or RLIMIT_NICE); the ranks run at normal priority"
            );
            let n = priority_nice(p);
            launches.iter_mut().filter(|l| l.nice == n).for_each(|l| l.nice = None);
        }
    }
    // Rank output reaches our terminal unchanged: tell the ranks.
    if !plan.global.lines && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        for l in &mut launches {
            l.env.push((crate::env::HPCPACK_TTY.to_string(), "1".to_string()));
        }
    }
    Ok(supervise(plan, launches, local)?)
}

/// `-d`/`-debug` output: level 1 errors, 2 debug (the default of a bare
/// `-d`), 3 both; to stderr, or to the `-logfile` file.
pub struct DebugLog {
    level: u8,
    file: Option<Mutex<std::fs::File>>,
}

impl DebugLog {
    /// Opens the log of `plan` (creating or truncating `-logfile`).
    pub fn open(plan: &Plan) -> Result<DebugLog, RunError> {
        let level = plan.global.debug.unwrap_or(0);
        let file = match &plan.global.log_file {
            Some(path) => Some(Mutex::new(std::fs::File::create(path).map_err(|source| {
                RunError::LogFile {
                    path: path.clone(),
                    source,
                }
            })?)),
            None => None,
        };
        Ok(DebugLog { level, file })
    }

    fn write(&self, line: &str) {
        match &self.file {
            Some(f) => {
                let _ = writeln!(f.lock().unwrap_or_else(|e| e.into_inner()), "{line}");
            }
            None => eprintln!("{line}"),
        }
    }

    /// A debug line (levels 2 and 3).
    pub fn debug(&self, line: impl FnOnce() -> String) {
        if self.level & 2 != 0 {
            self.write(&format!("[mpiexec] {}", line()));
        }
    }

    /// An error line (levels 1 and 3).
    pub fn error(&self, line: impl FnOnce() -> String) {
        if self.level & 1 != 0 {
            self.write(&format!("[mpiexec] error: {}", line()));
        }
    }
}

/// How a rank is started, for the debug log.
fn describe_launch(l: &Launch) -> String {
    let mut s = format!("starting rank {} on {}: {}", l.rank, l.host, l.program.display());
    for a in &l.args {
        s.push(' ');
        s.push_str(a);
    }
    match &l.service {
        Some(addr) => {
            let _ = write!(s, " (through the launch service at {addr})");
        }
        None => s.push_str(" (by mpiexec)"),
    }
    if let Some(c) = l.cpu {
        let _ = write!(s, ", bound to CPU {c}");
    }
    if let Some(n) = l.nice {
        let _ = write!(s, ", nice {n}");
    }
    let _ = write!(s, ", in {}", l.dir.display());
    s
}

/// A failure before or while starting the job.
#[derive(Debug, Error)]
pub enum RunOrParseError {
    #[error(transparent)]
    Place(#[from] MpiexecError),
    #[error(transparent)]
    Run(#[from] RunError),
}

fn kill_all(ranks: &[Started]) {
    for r in ranks.iter().filter(|r| r.exited.is_none()) {
        r.kill();
    }
}

fn supervise(plan: &Plan, launches: Vec<Launch>, local: &Local) -> Result<i32, RunError> {
    let size = launches.len() as u32;
    let log = DebugLog::open(plan)?;
    let (tx, rx) = mpsc::channel::<Report>();

    // Signals first, so every thread started later has them blocked and
    // they are read from the descriptor only.
    if let Ok(fd) = sys::signal_fd() {
        let tx = tx.clone();
        thread::spawn(move || {
            loop {
                if sys::poll(&[&fd], -1).is_err() {
                    return;
                }
                if sys::read_signal(&fd) && tx.send(Report::Signal).is_err() {
                    return;
                }
            }
        });
    }

    let kvsname = format!("kvs_{}_0", std::process::id());
    let pmi = Arc::new(Mutex::new(Pmi {
        server: Server::new(size, kvsname, pmi::process_mapping(&[size])),
        streams: launches.iter().map(|_| None).collect(),
        initialized: vec![false; size as usize],
        by_port: launches.iter().map(|l| l.service.is_some()).collect(),
    }));
    let services: Vec<&str> = launches
        .iter()
        .filter_map(|l| l.service.as_deref())
        .collect();
    let service_job = if services.is_empty() {
        None
    } else {
        let listener = PmiListener::start(&services, Arc::clone(&pmi), tx.clone())?;
        let credential = local.credential.clone().unwrap_or_default();
        Some(ServiceJob {
            job: credential
                .split_once(':')
                .and_then(|(j, _)| j.parse().ok())
                .unwrap_or(0),
            credential,
            env: std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect(),
            pmi_port: listener.port,
        })
    };

    let lines = plan.global.lines;
    let mut started: Vec<Started> = Vec::with_capacity(launches.len());
    let mut outputs: Vec<JoinHandle<()>> = Vec::new();
    for launch in &launches {
        log.debug(|| describe_launch(launch));
        let result = match (&launch.service, &service_job) {
            (Some(addr), Some(job)) => {
                ranks::start_service(launch, addr, job, lines, &tx, &mut outputs)
            }
            _ => ranks::start_local(launch, lines, &pmi, &tx, &mut outputs),
        };
        match result {
            Ok(s) => started.push(s),
            Err(e) => {
                log.error(|| e.to_string());
                kill_all(&started);
                return Err(e);
            }
        }
    }
    drop(tx);

    let deadline = plan
        .global
        .timeout
        .map(|s| (s, Instant::now() + Duration::from_secs(u64::from(s))));
    let mut cause: Option<Cause> = None;
    let mut first_nonzero: Option<i32> = None;
    // The first cause wins; later ones are consequences of the killing.
    fn abort(cause_slot: &mut Option<Cause>, c: Cause, started: &[Started]) {
        if cause_slot.is_none() {
            *cause_slot = Some(c);
            kill_all(started);
        }
    }
    while started.iter().any(|s| s.exited.is_none()) {
        let report = match deadline {
            Some((secs, at)) => match rx.recv_timeout(at.saturating_duration_since(Instant::now()))
            {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => {
                    abort(&mut cause, Cause::Timeout(secs), &started);
                    // Keep waiting for the killed ranks, without a deadline.
                    match rx.recv() {
                        Ok(r) => r,
                        Err(_) => break,
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(r) => r,
                Err(_) => break,
            },
        };
        match report {
            Report::Exited { rank, code } => {
                log.debug(|| format!("rank {rank} exited with code {code}"));
                started[rank as usize].exited = Some(code);
                if code != 0 && first_nonzero.is_none() {
                    first_nonzero = Some(code);
                }
                let (initialized, finalized) = {
                    let pmi = pmi.lock().unwrap_or_else(|e| e.into_inner());
                    (
                        pmi.initialized[rank as usize],
                        pmi.server.is_finalized(rank),
                    )
                };
                if !finalized && (code != 0 || initialized) {
                    abort(
                        &mut cause,
                        Cause::Exited {
                            rank,
                            code,
                            initialized,
                        },
                        &started,
                    );
                }
            }
            Report::Pmi(PmiEvent::Abort { rank, code }) => {
                abort(&mut cause, Cause::Aborted { rank, code }, &started);
            }
            Report::Pmi(PmiEvent::BadRequest { rank, line, .. }) => {
                abort(&mut cause, Cause::Fatal { rank, line }, &started);
            }
            Report::Pmi(_) => {}
            Report::Signal => abort(&mut cause, Cause::User, &started),
        }
    }
    for h in outputs {
        let _ = h.join();
    }
    let mut out = io::stdout().lock();
    if let Some(c) = &cause {
        log.error(|| format!("job aborted: {}", c.summary()));
        let _ = out.write_all(abort_report(c, &launches).as_bytes());
    }
    if plan.global.exit_codes {
        let codes: Vec<Option<i32>> = started.iter().map(|s| s.exited).collect();
        let _ = out.write_all(exit_codes_report(&launches, &codes).as_bytes());
    }
    let _ = out.flush();
    Ok(match cause {
        Some(c) => c.exit_code(),
        None => first_nonzero.unwrap_or(0),
    })
}

/// A process exit code from an mpiexec one: the low byte, but never 0 for
/// a failure whose code is a multiple of 256.
fn exit_code(code: i32) -> ExitCode {
    match (code & 0xff) as u8 {
        0 if code != 0 => ExitCode::FAILURE,
        c => ExitCode::from(c),
    }
}

/// The `mpiexec` program.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let plan = match parse(&args, &OsInputs) {
        Ok(Command::Run(plan)) => plan,
        Ok(Command::Help(which)) => {
            let text = match which {
                Help::Common => help::common(&format!("{}.0", env!("CARGO_PKG_VERSION")), ""),
                Help::All => help::all().to_string(),
                Help::Environment => help::environment().to_string(),
            };
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let local = Local::from_os();
    let ccp_nodes = std::env::var(env::CCP_NODES).ok();
    match run(&plan, &local, ccp_nodes.as_deref()) {
        Ok(code) => exit_code(code),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
