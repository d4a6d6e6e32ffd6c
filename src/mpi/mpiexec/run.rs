//! The launcher behind `mpiexec`: starts the ranks of a parsed [`Plan`] on
//! this host, serves them PMI-1 over one socket pair each (`PMI_FD`, see
//! `spec/pmi.md`), forwards their output and ends the job as MS-MPI does.
//!
//! Only the local host is supported: every host [`place`] chose must be this
//! machine (its name, its short name or `localhost`). Ranks on other hosts
//! need the node agents' launch service, which does not exist yet; such a
//! plan fails before anything is started.
//!
//! How a job ends (MS-MPI's `mpiexec_handle_command.cpp`, §7.5 of
//! `spec/hpcpack-cli.md`):
//!
//! * Every rank exits after `MPI_Finalize` (or without ever calling
//!   `MPI_Init`, like `hostname`): mpiexec's exit code is the first non-zero
//!   rank exit code, else 0.
//! * A rank calls `MPI_Abort` (PMI `abort`), is killed, exits non-zero before
//!   finalizing, or exits 0 after init but before finalize: every other rank's
//!   process group gets SIGKILL, the `job aborted:` and `---- error analysis
//!   -----` blocks are printed, and the exit code is that rank's (128 + signal
//!   for a signal, as a shell reports it).
//! * `-timeout`/`MPIEXEC_TIMEOUT` expires, or mpiexec gets SIGINT, SIGTERM or
//!   SIGHUP: every rank is killed, exit code [`TIMEOUT_EXIT`] or
//!   [`CANCEL_EXIT`].
//!
//! Threads, not a poll loop: one per rank connection for PMI (all sharing one
//! `Mutex<Server>`, the pure state machine of [`crate::mpi::pmi::server`]),
//! one per output pipe, one per child to wait for it, and one for signals.
//! They all report to the main thread through one channel.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::affinity::Algorithm;
use super::{Command, Help, HostRanks, MpiexecError, OsInputs, Plan, help, parse, place};
use crate::env;
use crate::mpi::pmi::{self, Event as PmiEvent, Server};
use crate::node::sys;

use crate::env::{CCP_MPI_WORKDIR, MPI_LOCALNRANKS, MPI_LOCALRANKID, MPICH_NETMASK};
/// MS-MPI ignores a `CCP_MPI_NETMASK` longer than this.
const MAX_NETMASK_LEN: usize = 31;

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
        "Error: cannot launch on host '{host}': this mpiexec starts ranks on the local host ({local}) only; launching on other hosts needs the node agents' launch service, which is not available yet."
    )]
    RemoteHost { host: String, local: String },
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
}

/// Parses `HPCPACK_LOCAL_NODES` (`<node>=<cpu>,<cpu> …`); malformed items are
/// skipped (the variable is set by the head node, not typed by users).
pub fn parse_local_nodes(v: &str) -> Vec<(String, Vec<u32>)> {
    v.split_whitespace()
        .filter_map(|item| {
            let (name, cpus) = item.split_once('=')?;
            let cpus: Vec<u32> = cpus.split(',').filter_map(|c| c.trim().parse().ok()).collect();
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
            nodes: std::env::var(env::HPCPACK_LOCAL_NODES).map(|v| parse_local_nodes(&v)).unwrap_or_default(),
        }
    }

    /// The CPUs of a node of this host, if the head node named it.
    fn node_cpus(&self, name: &str) -> Option<&[u32]> {
        self.nodes.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, c)| c.as_slice()).filter(|c| !c.is_empty())
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
            if !local.is_local(&h.host) {
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
            if let Some(mask) = local
                .netmask
                .as_ref()
                .filter(|m| m.len() <= MAX_NETMASK_LEN)
            {
                env.push((MPICH_NETMASK.to_string(), mask.clone()));
            }
            env.extend(plan.global.env.iter().cloned());
            env.extend(section.env.iter().cloned());
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
            let count = per_node.iter().find(|(h, _)| *h == l.host).map(|(_, n)| *n).unwrap_or(1);
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

/// A process's exit code, 128 + the signal if a signal ended it.
fn status_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}

/// What the helper threads tell the main thread.
enum Report {
    Exited {
        rank: u32,
        status: io::Result<ExitStatus>,
    },
    Pmi(PmiEvent),
    Signal,
}

/// The PMI side of the job, shared by the connection threads.
struct Pmi {
    server: Server,
    /// The launcher's end of each rank's socket pair, to reply on.
    streams: Vec<UnixStream>,
    /// Ranks that sent `cmd=init`.
    initialized: Vec<bool>,
}

/// Reads one rank's PMI requests and sends the replies, until the rank
/// closes its end.
fn serve_pmi(rank: u32, stream: UnixStream, pmi: Arc<Mutex<Pmi>>, tx: Sender<Report>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut pmi = pmi.lock().unwrap_or_else(|e| e.into_inner());
        if line.starts_with("cmd=init ") {
            pmi.initialized[rank as usize] = true;
        }
        let replies = pmi.server.handle(rank, &line);
        for (to, reply) in replies {
            // A rank that is gone cannot be answered; its exit is reported
            // by its waiter.
            let _ = (&pmi.streams[to as usize]).write_all(format!("{reply}\n").as_bytes());
        }
        for event in pmi.server.take_events() {
            let _ = tx.send(Report::Pmi(event));
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

/// In the child, between fork and exec: keep the PMI descriptor across
/// exec, start a session of its own (so the whole rank can be killed as a
/// group and the terminal's Ctrl-C reaches only mpiexec), bind to `cpu`.
/// Only async-signal-safe system calls, no allocation.
fn child_setup(pmi_fd: RawFd, cpu: Option<u32>) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns (the child's copy of
    // the socket pair end); clearing FD_CLOEXEC touches no memory.
    if unsafe { libc::fcntl(pmi_fd, libc::F_SETFD, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    sys::setsid()?;
    if let Some(cpu) = cpu {
        sys::set_affinity(&[cpu])?;
    }
    Ok(())
}

/// One started rank.
struct Started {
    pid: u32,
    exited: Option<i32>,
}

fn kill_all(ranks: &[Started]) {
    for r in ranks.iter().filter(|r| r.exited.is_none()) {
        // Each rank leads its own process group (setsid in child_setup).
        let _ = sys::killpg(r.pid, libc::SIGKILL);
    }
}

/// Runs a plan on this host; returns mpiexec's exit code.
pub fn run(plan: &Plan, local: &Local, ccp_nodes: Option<&str>) -> Result<i32, RunOrParseError> {
    let placement = place(plan, ccp_nodes, &local.host, local.cpus.len() as u32)?;
    let launches = prepare(plan, &placement, local)?;
    Ok(supervise(plan, launches)?)
}

/// A failure before or while starting the job.
#[derive(Debug, Error)]
pub enum RunOrParseError {
    #[error(transparent)]
    Place(#[from] MpiexecError),
    #[error(transparent)]
    Run(#[from] RunError),
}

fn supervise(plan: &Plan, launches: Vec<Launch>) -> Result<i32, RunError> {
    let size = launches.len() as u32;
    let io_err = |what| move |source| RunError::Io { what, source };
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

    let mut pairs = Vec::with_capacity(launches.len());
    for _ in &launches {
        pairs.push(UnixStream::pair().map_err(io_err("creating a PMI socket pair"))?);
    }
    let kvsname = format!("kvs_{}_0", std::process::id());
    let pmi = Arc::new(Mutex::new(Pmi {
        server: Server::new(size, kvsname, pmi::process_mapping(&[size])),
        streams: pairs
            .iter()
            .map(|(ours, _)| ours.try_clone())
            .collect::<io::Result<_>>()
            .map_err(io_err("cloning a PMI socket"))?,
        initialized: vec![false; size as usize],
    }));

    let mut started: Vec<Started> = Vec::with_capacity(launches.len());
    let mut outputs: Vec<JoinHandle<()>> = Vec::new();
    for (launch, (ours, theirs)) in launches.iter().zip(pairs) {
        let fd = theirs.as_raw_fd();
        let mut cmd = std::process::Command::new(&launch.program);
        cmd.args(&launch.args)
            .current_dir(&launch.dir)
            .envs(
                launch
                    .env
                    .iter()
                    .map(|(k, v)| (OsStr::new(k), OsStr::new(v))),
            )
            .env(pmi::PMI_FD, fd.to_string())
            .stdin(if launch.rank == 0 {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let cpu = launch.cpu;
        // SAFETY: the closure runs in the forked child before exec and only
        // makes async-signal-safe system calls (see `child_setup`).
        unsafe {
            cmd.pre_exec(move || child_setup(fd, cpu));
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(source) => {
                kill_all(&started);
                return Err(RunError::Spawn {
                    exe: launch.exe.clone(),
                    host: launch.host.clone(),
                    source,
                });
            }
        };
        // Our copy of the rank's end must go, or its end of file never comes.
        drop(theirs);
        let rank = launch.rank;
        let lines = plan.global.lines;
        if let Some(out) = child.stdout.take() {
            outputs.push(thread::spawn(move || forward(rank, out, false, lines)));
        }
        if let Some(err) = child.stderr.take() {
            outputs.push(thread::spawn(move || forward(rank, err, true, lines)));
        }
        {
            let (pmi, tx) = (Arc::clone(&pmi), tx.clone());
            thread::spawn(move || serve_pmi(rank, ours, pmi, tx));
        }
        started.push(Started {
            pid: child.id(),
            exited: None,
        });
        let tx = tx.clone();
        thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(Report::Exited { rank, status });
        });
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
            Report::Exited { rank, status } => {
                let code = status.map_or(1, status_code);
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
