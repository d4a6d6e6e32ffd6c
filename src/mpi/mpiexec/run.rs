//! The launcher behind `mpiexec`: starts the ranks of a parsed [`Plan`],
//! serves them PMI-1 (see `spec/pmi.md`), forwards their output and ends the
//! job as MS-MPI does.
//!
//! The steps, each its own module: [`super::options`] parses the command
//! line into a [`Plan`], [`super::place`](mod@super::place) puts its ranks on hosts
//! (the pool of `CCP_NODES` or a Slurm allocation, [`environment_pool`]),
//! [`super::bootstrap::pick`] chooses how ranks start in the environment
//! mpiexec runs in, [`super::prepare`] resolves each rank's program and
//! environment, and the supervisor below starts the ranks through the
//! bootstrap and watches them; it treats every started rank alike.
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
//! * A rank cannot be started (a launch service refuses it: bad credential,
//!   node outside the job, job not running; srun or its proxies do not
//!   start): the ranks started so far are killed and mpiexec prints the
//!   reason and exits 1.
//!
//! Threads, not a poll loop: one per rank connection for PMI (all sharing one
//! `Mutex<Server>`, the pure state machine of [`crate::mpi::pmi::server`]),
//! one per output stream, one per rank to wait for it, and one for signals.
//! They all report to the main thread through one channel.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::bootstrap::{self, Bootstrap, Job, Launch, Pmi, Report, StartError, Started};
use super::error::MpiexecError;
use super::help;
use super::local::Local;
use super::options::{OsInputs, parse};
use super::place::place;
use super::plan::{Command, Help, Plan};
use super::prepare::{PrepareError, prepare, priority_nice};
use crate::env;
use crate::mpi::pmi::{self, Event as PmiEvent, Server};
use crate::node::sys;

/// Exit code after `-timeout` killed the job (ours: MS-MPI's is a Windows
/// error code).
pub const TIMEOUT_EXIT: i32 = 1;
/// Exit code after SIGINT/SIGTERM/SIGHUP ended the job, as a shell reports
/// a job ended by Ctrl-C.
pub const CANCEL_EXIT: i32 = 130;

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

/// Why a job could not be started.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Place(#[from] MpiexecError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("Error: cannot open the -logfile '{path}': {source}.")]
    LogFile { path: String, source: io::Error },
}

/// Runs a plan, starting its ranks through `boot`; returns mpiexec's exit
/// code.
pub fn run(
    plan: &Plan,
    local: &Local,
    boot: &mut dyn Bootstrap,
    ccp_nodes: Option<&str>,
) -> Result<i32, RunError> {
    let placement = place(plan, ccp_nodes, &local.host, local.cpus.len() as u32)?;
    let mut launches = prepare(plan, &placement, local, boot)?;
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
            l.env.push((env::HPCPACK_TTY.to_string(), "1".to_string()));
        }
    }
    // MPICH's node map: the ranks of this host (its virtual nodes share its
    // memory) are one node, every other host one of its own.
    let hosts: Vec<&str> = launches.iter().map(|l| if local.is_local(&l.host) { "" } else { l.host.as_str() }).collect();
    let mapping = pmi::process_mapping_of(&hosts);
    supervise(plan, launches, boot, mapping)
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
fn describe_launch(l: &Launch, boot: &dyn Bootstrap) -> String {
    let mut s = format!("starting rank {} on {}: {}", l.rank, l.host, l.program.display());
    for a in &l.args {
        s.push(' ');
        s.push_str(a);
    }
    let _ = write!(s, " ({})", boot.how(l));
    if let Some(c) = l.cpu {
        let _ = write!(s, ", bound to CPU {c}");
    }
    if let Some(n) = l.nice {
        let _ = write!(s, ", nice {n}");
    }
    let _ = write!(s, ", in {}", l.dir.display());
    s
}

fn kill_all(ranks: &[Started]) {
    for r in ranks.iter().filter(|r| r.exited.is_none()) {
        r.kill();
    }
}

fn supervise(plan: &Plan, launches: Vec<Launch>, boot: &mut dyn Bootstrap, mapping: String) -> Result<i32, RunError> {
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
    let server = Server::new(size, kvsname, mapping);
    let mut job = Job {
        pmi: Arc::new(Mutex::new(Pmi::new(server, size))),
        tx,
        lines: plan.global.lines,
        outputs: Vec::new(),
    };
    let mut started: Vec<Started> = Vec::with_capacity(launches.len());
    boot.open(&launches, &job)?;
    for launch in &launches {
        log.debug(|| describe_launch(launch, boot));
        match boot.start(launch, &mut job) {
            Ok(s) => started.push(s),
            Err(e) => {
                log.error(|| e.to_string());
                kill_all(&started);
                return Err(e.into());
            }
        }
    }
    // The supervisor's end of the channel closes once every helper's does.
    let Job { pmi, outputs, .. } = job;

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

/// The host pool mpiexec's environment gives, as a `CCP_NODES` value:
/// `CCP_NODES` itself when set (a job runner sets it), else, inside a Slurm
/// allocation that the srun bootstrap serves (`SLURM_JOB_ID`, no launch
/// services), the allocation's nodes ([`super::place::slurm_nodes`]).
/// `var` reads the environment; `CCP_NODES` counts whenever it is set (the
/// placement judges its value), the other variables when not empty.
pub fn environment_pool(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, MpiexecError> {
    if let Some(v) = var(env::CCP_NODES) {
        return Ok(Some(v));
    }
    let set = |name| var(name).filter(|v| !v.is_empty());
    let served = set(env::HPCPACK_LAUNCH).is_some_and(|v| !bootstrap::parse_launch(&v).is_empty());
    match (set(env::SLURM_JOB_ID), set(env::SLURM_JOB_NODELIST)) {
        (Some(_), Some(list)) if !served => {
            super::place::slurm_nodes(&list, set(env::SLURM_TASKS_PER_NODE).as_deref()).map(Some)
        }
        _ => Ok(None),
    }
}

/// The `mpiexec` program (also its own proxy on the nodes of a Slurm
/// allocation and on the hosts it reaches by ssh, see
/// [`bootstrap::proxy`]).
pub fn main() -> ExitCode {
    if let Some(source) = std::env::args_os()
        .nth(1)
        .and_then(|a| bootstrap::ProxySource::of(&a))
    {
        return bootstrap::proxy_main(source);
    }
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
    let mut boot = bootstrap::pick(&local, env::var);
    let ccp_nodes = match environment_pool(|name| std::env::var(name).ok()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&plan, &local, boot.as_mut(), ccp_nodes.as_deref()) {
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
