//! The supervisor of one task run (`hpcd run-task <dir>`).
//!
//! The agent starts one per task. It outlives a crash of the head node, so a
//! restarted head node finds each run's outcome in its directory (private
//! to the head node's user, like every file in it):
//!
//! | file       | written when |
//! |------------|--------------|
//! | `spec.json`| by the agent, before the supervisor starts |
//! | `exit.json.tmp`, `started.tmp` | first: room for the result, so a disk that fills up later cannot keep it from being recorded |
//! | `started`  | the task's process exists |
//! | `output`   | the task's stdout and stderr, unless redirected |
//! | `exit.json`| the run is over; [`RunOutcome`] |
//!
//! Once the head node has recorded the outcome, the agent removes all but
//! a non-empty `output` ([`super::agent::LocalAgent::settled`]).
//!
//! A supervisor run by root (a shared head node) runs the task as its
//! owner, and opens what the task names (`/stdout`, `/stderr`, `/stdin`,
//! `/workdir`, their `%NAME%` expanded first: [`expand_paths`]) acting as
//! the owner ([`sys::ActingAs`]), so the owner's rights decide, never
//! root's; a path the owner may not use fails the task with a message
//! naming it. The MPI host file (`CCP_MPI_HOSTFILE`)
//! is the owner's, in the temporary directory, removed when the run ends.
//!
//! The task runs as `/bin/sh -c <command line>` (or, when the command line
//! has no shell syntax, directly with the same words: one process less) in
//! its own session (so its process group is the task), bound to its CPUs. On SIGTERM the supervisor
//! sends SIGTERM to the group, then SIGKILL after the grace period, and kills
//! any descendant that left the group (it is their subreaper), so no process
//! of a canceled task survives. When the task's main process exits, what it
//! left behind is killed too.
//!
//! A run that ends with a non-zero exit code records the line of its
//! standard error that says why ([`reason_line`], from at most the last
//! 4 KiB the run wrote there), so the head node can put it in the task's
//! Error Message. A `/stderr` file is read acting as the owner, like every
//! file the task names; what is not a regular file is not read.

use super::protocol::Launch;
use super::sys;
use crate::model::values::expand_vars;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a run ended, as the supervisor writes it to `exit.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunOutcome {
    pub exit_code: i64,
    pub canceled: bool,
    /// Why the task could not start, if it could not.
    pub error: String,
    /// After a non-zero exit, the line of the task's standard error that
    /// says why ([`reason_line`]); empty when there is none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

pub const SPEC: &str = "spec.json";
pub const STARTED: &str = "started";
const STARTED_TMP: &str = "started.tmp";
const EXIT_TMP: &str = "exit.json.tmp";
pub const OUTPUT: &str = "output";
pub const EXIT: &str = "exit.json";
pub const LOG: &str = "supervisor.log";

/// Default seconds between SIGTERM and SIGKILL on cancel.
pub const DEFAULT_GRACE_SECS: u64 = 5;

/// Writes `data` to `path` so that readers see all or nothing (also after a
/// crash of the writer). With `durable`, the data is on disk before the
/// rename, so it also survives a crash of the machine.
pub fn write_atomic(path: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    if durable {
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Reads a run's outcome, if it has ended.
pub fn read_outcome(dir: &Path) -> Option<RunOutcome> {
    serde_json::from_slice(&fs::read(dir.join(EXIT)).ok()?).ok()
}

/// Entry point of the `hpcd-task` binary: `hpcd-task <run directory>`.
pub fn cli_main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.as_slice() {
        [_, dir] => std::process::ExitCode::from(main(Path::new(dir)) as u8),
        _ => {
            log("usage: hpcd-task <run directory> (started by the node agent, one per task run)");
            std::process::ExitCode::from(crate::error::exit::USAGE)
        }
    }
}

/// The supervisor's exit code when it could not make room for the run's
/// result (the disk is full) and so did not start the task.
pub const NOT_STARTED_NO_SPACE: i32 = 75;

/// The most bytes a result takes: the room kept for it at the start.
const OUTCOME_ROOM: usize = 4096;

/// A line in the run's `supervisor.log` (its stderr); a log that cannot be
/// written (a full disk) is no reason to stop.
fn log(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "hpcd run-task: {msg}");
}

/// Room for the run's result and its start marker, made before the task
/// runs: on a disk that fills up while it runs, recording how it ended
/// needs no space the disk no longer has (the result overwrites bytes
/// already allocated, the marker is a name given to an empty file).
struct Room {
    dir: PathBuf,
    outcome: File,
}

impl Room {
    fn make(dir: &Path) -> std::io::Result<Room> {
        let mut outcome = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(dir.join(EXIT_TMP))?;
        // Writing allocates (or, with delayed allocation, reserves) the
        // blocks, which is all this is for; no flush needed.
        outcome.write_all(&[b' '; OUTCOME_ROOM])?;
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(dir.join(STARTED_TMP))?;
        Ok(Room { dir: dir.to_path_buf(), outcome })
    }

    /// The task's process exists.
    fn started(&self) {
        let _ = fs::rename(self.dir.join(STARTED_TMP), self.dir.join(STARTED));
    }

    /// Records how the run ended, durably, in the room kept for it.
    fn record(mut self, outcome: &RunOutcome) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let mut o = outcome.clone();
        o.reason = crate::wire::props::truncate(&o.reason, REASON_MAX).to_string();
        let mut bytes = serde_json::to_vec(&o).map_err(std::io::Error::other)?;
        while bytes.len() > OUTCOME_ROOM {
            let keep = crate::wire::props::truncate(&o.error, o.error.len() / 2).to_string();
            o.error = keep + "…";
            bytes = serde_json::to_vec(&o).map_err(std::io::Error::other)?;
        }
        self.outcome.seek(SeekFrom::Start(0))?;
        self.outcome.write_all(&bytes)?;
        self.outcome.set_len(bytes.len() as u64)?;
        self.outcome.sync_all()?;
        fs::rename(self.dir.join(EXIT_TMP), self.dir.join(EXIT))
    }
}

/// Entry point of `hpcd run-task <dir>`; returns the process exit code.
pub fn main(dir: &Path) -> i32 {
    let room = match Room::make(dir) {
        Ok(r) => r,
        Err(e) => {
            log(&format!("cannot make room for the run's result in {}: {e}; the task was not started", dir.display()));
            return if sys::is_disk_full(&e) { NOT_STARTED_NO_SPACE } else { 1 };
        }
    };
    let outcome = match run(dir, &room) {
        Ok(o) => o,
        Err(e) => RunOutcome { exit_code: -1, canceled: false, error: e, reason: String::new() },
    };
    match room.record(&outcome) {
        Ok(()) => 0,
        Err(e) => {
            log(&format!("cannot write {}: {e}", dir.join(EXIT).display()));
            1
        }
    }
}

fn run(dir: &Path, room: &Room) -> Result<RunOutcome, String> {
    let spec: Launch = fs::read(dir.join(SPEC))
        .map_err(|e| format!("cannot read the task spec {}: {e}", dir.join(SPEC).display()))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("bad task spec: {e}")))?;
    // Signals first, so a cancel that arrives during start-up is not lost.
    let signals = sys::signal_fd().map_err(|e| format!("cannot set up signals: {e}"))?;
    sys::set_child_subreaper().map_err(|e| format!("cannot become subreaper: {e}"))?;
    let grace = Duration::from_secs(
        crate::env::var(crate::env::HPCPACK_CANCEL_GRACE).and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_GRACE_SECS),
    );

    let owner = Owner::of(spec.owner_uid)?;
    let env = task_env(&spec.env, owner.user.as_ref(), tools_dir().as_deref());
    let home = env.get(crate::env::HOME).map(PathBuf::from);
    let direct = simple_words(&spec.command_line);
    let mut cmd = match &direct {
        Some(words) => {
            let mut c = Command::new(&words[0]);
            c.args(&words[1..]);
            c
        }
        None => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(&spec.command_line);
            c
        }
    };
    let tmp = env.get(crate::env::TMPDIR).map(PathBuf::from).filter(|p| p.is_absolute()).unwrap_or_else(|| "/tmp".into());
    let hostfile = owner.acting(|| write_hostfile(&spec, &tmp))??;
    let _remove_hostfile = Removal { path: hostfile.clone(), owner: &owner };
    // PATH decides where a bare program name is looked up (execvp does it
    // with the PATH given to the child).
    cmd.env_clear().envs(&env);
    cmd.env(crate::env::CCP_MPI_HOSTFILE, &hostfile);
    let spec = expand_paths(spec, &cmd);
    let work_dir = owner.acting(|| work_dir(&spec, owner.user.as_ref(), home.as_deref()))??;
    cmd.env(crate::env::CCP_WORKDIR, &work_dir);
    // The run's own output file is the head node's (private to it); files
    // the task names are opened as its owner, so the owner's rights decide
    // what a task may read and write, never root's.
    let own_output = || {
        let path = dir.join(OUTPUT);
        OpenOptions::new().create(true).append(true).mode(0o600).open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))
    };
    let named = |p: &str, what: &str| -> Result<File, String> {
        let path = work_dir.join(p);
        owner
            .acting(|| OpenOptions::new().create(true).append(true).mode(0o666).open(&path))?
            .map_err(|e| format!("cannot open {} for the task's {what}{}: {e}", path.display(), owner.as_whom()))
    };
    let out = if spec.stdout.is_empty() { own_output()? } else { named(&spec.stdout, "standard output")? };
    let err = if spec.stderr.is_empty() {
        own_output()?
    } else {
        named(&spec.stderr, "standard error")?
    };
    let err_copy = err.try_clone().ok();
    // Where the run's standard error starts, to read it back should it fail.
    let err_start = err.metadata().map(|m| m.len()).unwrap_or(0);
    let err_path = if spec.stderr.is_empty() { dir.join(OUTPUT) } else { work_dir.join(&spec.stderr) };
    let stdin = if spec.stdin.is_empty() {
        Stdio::null()
    } else {
        let p = work_dir.join(&spec.stdin);
        Stdio::from(
            owner
                .acting(|| File::open(&p))?
                .map_err(|e| format!("cannot open {} for the task's standard input{}: {e}", p.display(), owner.as_whom()))?,
        )
    };
    cmd.stdin(stdin).stdout(out).stderr(err);
    let cpus = spec.cpus.clone();
    let ids = owner.switch.then(|| owner.user.as_ref().map(|u| (u.uid, u.gid, owner.groups.clone()))).flatten();
    let cwd = std::ffi::CString::new(work_dir.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("the working directory {} has a NUL byte", work_dir.display()))?;
    let umask = spec.umask;
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe system calls (setsid, sigprocmask, signal,
    // sched_setaffinity, setgroups/setgid/setuid, umask, chdir) on data
    // prepared before the fork. The directory is entered after the user is
    // taken, so its rights are the owner's.
    unsafe {
        cmd.pre_exec(move || {
            sys::setsid()?;
            sys::reset_signals()?;
            sys::set_affinity(&cpus)?;
            if let Some((uid, gid, groups)) = &ids {
                sys::set_ids(*uid, *gid, groups)?;
            }
            sys::set_umask(umask);
            sys::chdir(&cwd)
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        // Run directly, a command that cannot be found or executed ends as
        // it would under the shell: a message on stderr, exit code 127 or 126.
        Err(e) if direct.is_some() && matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            let what = if code == 127 { "not found" } else { "Permission denied" };
            room.started();
            let line = format!("{}: {what}", direct.as_ref().map(|w| w[0].as_str()).unwrap_or(""));
            if let Some(mut f) = err_copy {
                let _ = writeln!(f, "{line}");
            }
            return Ok(RunOutcome { exit_code: code, canceled: false, error: String::new(), reason: line });
        }
        Err(e) => return Err(format!("cannot start the task: {e}")),
    };
    let pid = child.id();
    // The Child handle is not used to wait: the loop below reaps with waitpid.
    std::mem::forget(child);
    room.started();
    let mut outcome = supervise(pid, &signals, grace)?;
    if outcome.exit_code != 0 && !outcome.canceled {
        // Its own output file is the head node's; a file it named, the owner's.
        let open = || stderr_tail(&err_path, err_start);
        let tail = if spec.stderr.is_empty() { open().ok() } else { owner.acting(open).ok().and_then(Result::ok) };
        outcome.reason = tail.and_then(|(bytes, whole)| reason_line(&bytes, whole)).unwrap_or_default();
    }
    Ok(outcome)
}

/// The most of a failed run's standard error read back for its reason.
const REASON_TAIL: u64 = 4096;
/// The longest reason line kept, in bytes (an MPI error names every
/// channel of a pair, and the one that matters may come last).
const REASON_MAX: usize = 1024;

/// The last [`REASON_TAIL`] bytes the run wrote to the file at `path`, which
/// held `start` bytes before it ran, and whether that is all it wrote. A
/// file that is not a regular file (a FIFO, `/dev/null`) is not read: it is
/// opened without waiting and refused.
fn stderr_tail(path: &Path, start: u64) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let from = meta.len().saturating_sub(REASON_TAIL).max(start);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.take(REASON_TAIL).read_to_end(&mut bytes)?;
    Ok((bytes, from == start))
}

/// The line of a failed run's standard error that says why it failed, from
/// `tail`, the last bytes the run wrote there (`whole`: all of them; else
/// the first line, cut by the tail's start, is skipped):
///
/// - when the text holds an mpiexec abort report (a line `job aborted:`),
///   the last non-blank line before the last report: mpiexec forwards what
///   the ranks printed before it prints the report, so that is what the
///   failing rank said (`mpipingpong: rank 1: comm: no channel …`); with
///   none, the report's own account (`… ended prematurely and may have
///   crashed. exit code 1`);
/// - otherwise the last non-blank line (`ls: cannot access 'x': No such
///   file or directory`).
///
/// The line is trimmed, control characters become `?`, and it is cut to
/// [`REASON_MAX`] bytes. Without `/stderr`, standard output shares the file,
/// so a task that printed nothing to standard error gets its last line of
/// output.
pub fn reason_line(tail: &[u8], whole: bool) -> Option<String> {
    let text = String::from_utf8_lossy(tail);
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    if !whole && !lines.is_empty() {
        lines.remove(0);
    }
    let last = |ls: &[&str]| ls.iter().rev().find(|l| !l.is_empty()).map(|l| l.to_string());
    let line = match lines.iter().rposition(|l| *l == "job aborted:") {
        Some(at) => last(&lines[..at]).or_else(|| {
            let report = &lines[at..];
            let analysis = report.iter().position(|l| l.starts_with("---- error analysis"))?;
            report[analysis + 1..]
                .iter()
                .find(|l| !l.is_empty() && !l.starts_with('[') && !l.starts_with("----"))
                .map(|l| l.to_string())
        }),
        None => last(&lines),
    }?;
    let clean: String = line.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    Some(crate::wire::props::truncate(&clean, REASON_MAX).to_string())
}

/// Who a task runs as. A supervisor run by root (a shared head node) runs
/// a task as its owner and acts as the owner whenever it touches a file
/// for the task; one run by a user (the embedded head node) runs only
/// that user's tasks.
struct Owner {
    user: Option<sys::User>,
    groups: Vec<libc::gid_t>,
    /// The supervisor is root and the owner is not: take the owner's ids.
    switch: bool,
}

impl Owner {
    fn of(uid: u32) -> Result<Owner, String> {
        let me = sys::uid();
        let user = sys::user_by_uid(uid);
        if me == 0 && uid != 0 {
            let u = user.ok_or_else(|| {
                format!("the job's owner (uid {uid}) has no account on this node, and a task runs only as its owner")
            })?;
            let groups = sys::group_list(&u.name, u.gid).map_err(|e| format!("cannot read the groups of user {}: {e}", u.name))?;
            return Ok(Owner { user: Some(u), groups, switch: true });
        }
        if uid != me {
            return Err(format!(
                "this node agent runs as uid {me} and runs tasks of its own user only, not of uid {uid}"
            ));
        }
        Ok(Owner { user, groups: Vec::new(), switch: false })
    }

    /// Runs `f` with the owner's rights on files.
    fn acting<T>(&self, f: impl FnOnce() -> T) -> Result<T, String> {
        match (&self.user, self.switch) {
            (Some(u), true) => {
                let _as = sys::ActingAs::new(u.uid, u.gid, &self.groups)
                    .map_err(|e| format!("cannot act as user {}: {e}", u.name))?;
                Ok(f())
            }
            _ => Ok(f()),
        }
    }

    /// ` as user <name>`, for messages about what the owner may not do.
    fn as_whom(&self) -> String {
        match &self.user {
            Some(u) if self.switch => format!(" as user {}", u.name),
            _ => String::new(),
        }
    }
}

/// The task's working directory: `/workdir`, else the owner's home (or
/// `/` when it has none it may enter). Called acting as the owner, so a
/// directory the owner may not enter is an error that says so.
/// The directory the task runs in: `/workdir` (a relative one taken from
/// `home`, the task's `HOME`), else `home`, else the owner's home
/// directory, else `/`.
fn work_dir(spec: &Launch, user: Option<&sys::User>, home: Option<&Path>) -> Result<PathBuf, String> {
    let enterable = |p: &Path| -> std::io::Result<()> {
        if !fs::metadata(p)?.is_dir() {
            return Err(std::io::Error::other("it is not a directory"));
        }
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
        sys::may_enter(&c)
    };
    if spec.work_dir.is_empty() {
        let found = [home.map(Path::to_path_buf), user.map(|u| PathBuf::from(&u.home))]
            .into_iter()
            .flatten()
            .find(|p| enterable(p).is_ok());
        return Ok(found.unwrap_or_else(|| PathBuf::from("/")));
    }
    let dir = match home {
        Some(h) => h.join(&spec.work_dir),
        None => PathBuf::from(&spec.work_dir),
    };
    enterable(&dir).map_err(|e| {
        let who = user.map(|u| format!(" as user {}", u.name)).unwrap_or_default();
        format!("cannot use the working directory {}{who}: {e}", dir.display())
    })?;
    Ok(dir)
}

/// The run with `%NAME%` expanded in the paths the task names
/// (`/workdir`, `/stdin`, `/stdout`, `/stderr`, however they were given:
/// job submit or add, a job file, REST), as HPC Pack does when a task
/// starts, from the environment the task starts with (`cmd`'s):
/// `%CCP_JOBID%`, `%CCP_TASKID%`, `%CCP_JOBNAME%`, `%HOME%`, a `/env`
/// variable… In the other three, `%CCP_WORKDIR%` is the expanded
/// `/workdir` when one was given. See [`expand_vars`] for the rules.
fn expand_paths(spec: Launch, cmd: &Command) -> Launch {
    let env: Vec<(String, String)> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    let work_dir = expand_vars(&spec.work_dir, |name| lookup(&env, name));
    let given = (!work_dir.is_empty()).then_some(work_dir.as_str());
    let var = |name: &str| match given {
        Some(dir) if name.eq_ignore_ascii_case(crate::env::CCP_WORKDIR) => Some(dir.to_string()),
        _ => lookup(&env, name),
    };
    Launch {
        stdin: expand_vars(&spec.stdin, var),
        stdout: expand_vars(&spec.stdout, var),
        stderr: expand_vars(&spec.stderr, var),
        work_dir,
        ..spec
    }
}

/// A variable of `env` by name: the exact name, else one that differs only
/// in case (names are case-insensitive on Windows, where these paths are
/// often written).
fn lookup(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter()
        .find(|(k, _)| k == name)
        .or_else(|| env.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .map(|(_, v)| v.clone())
}

/// Removes the task's host file (as its owner) when the run is over.
struct Removal<'a> {
    path: PathBuf,
    owner: &'a Owner,
}

impl Drop for Removal<'_> {
    fn drop(&mut self) {
        let _ = self.owner.acting(|| fs::remove_file(&self.path));
    }
}

/// Waits for the task's main process, handling cancel; then kills what is left.
fn supervise(pid: u32, signals: &std::os::fd::OwnedFd, grace: Duration) -> Result<RunOutcome, String> {
    let pidfd = sys::pidfd_open(pid).map_err(|e| format!("cannot watch the task process: {e}"))?;
    let mut canceled_at: Option<Instant> = None;
    let exit = loop {
        let timeout = match canceled_at {
            Some(t) => grace.saturating_sub(t.elapsed()).as_millis() as i32,
            None => -1,
        };
        let ready = sys::poll(&[&pidfd, signals], timeout).map_err(|e| format!("poll: {e}"))?;
        if ready[1] && sys::read_signal(signals) && canceled_at.is_none() {
            canceled_at = Some(Instant::now());
            let _ = sys::killpg(pid, libc::SIGTERM);
            let _ = sys::killpg(pid, libc::SIGCONT);
        }
        if ready[0] {
            if let Ok(Some((_, exit))) = sys::wait(Some(pid), true) {
                break exit;
            }
        }
        if canceled_at.is_some_and(|t| t.elapsed() >= grace) {
            let _ = sys::killpg(pid, libc::SIGKILL);
        }
    };
    kill_leftovers(pid);
    let canceled = canceled_at.is_some();
    Ok(RunOutcome { exit_code: exit.code(), canceled, error: String::new(), reason: String::new() })
}

/// Kills the task's process group and every descendant we adopted, and reaps
/// them, within a bounded time.
fn kill_leftovers(pgid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = sys::killpg(pgid, libc::SIGKILL);
        for p in children_of(std::process::id()) {
            let _ = sys::kill(p, libc::SIGKILL);
        }
        match sys::wait(None, false) {
            Ok(Some(_)) => continue,
            Err(_) => return, // no children left
            Ok(None) => {
                if Instant::now() > deadline {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Pids whose parent is `ppid` (this single-threaded process): the
/// kernel's list in /proc/<pid>/task/<pid>/children, else a scan of /proc.
fn children_of(ppid: u32) -> Vec<u32> {
    if let Ok(list) = fs::read_to_string(format!("/proc/{ppid}/task/{ppid}/children")) {
        return list.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    }
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The command name may hold spaces; fields resume after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        if rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
            out.push(pid);
        }
    }
    out
}

/// Shell builtins that are not programs, or that act on the shell itself:
/// a command line starting with one goes through the shell.
const BUILTINS: &[&str] = &[
    ".", ":", "alias", "bg", "break", "cd", "command", "continue", "eval", "exec", "exit", "export", "fg", "getopts",
    "hash", "jobs", "local", "read", "readonly", "return", "set", "shift", "source", "times", "trap", "type", "ulimit",
    "umask", "unalias", "unset", "wait",
];

/// The words of a command line with no shell syntax at all (no quotes,
/// variables, globs, redirections, separators or assignments): those run
/// directly, as `/bin/sh -c` would run them, without starting a shell.
/// `None`: the shell runs it.
pub fn simple_words(line: &str) -> Option<Vec<String>> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:,+@%".contains(c);
    let words: Vec<String> = line.split(' ').filter(|w| !w.is_empty()).map(String::from).collect();
    let first = words.first()?;
    let ok = line.chars().all(|c| c == ' ' || plain(c)) && !BUILTINS.contains(&first.as_str()) && !line.contains("=");
    ok.then_some(words)
}

/// The directory of this installation's programs (`mpiexec`,
/// `mpipingpong`, `job` …): the supervisor's own.
fn tools_dir() -> Option<PathBuf> {
    std::env::current_exe().ok()?.parent().map(Path::to_path_buf)
}

/// The PATH of a login with none given.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A task's environment, whatever the environment the head node was
/// started in (README, "A task's environment"), lowest layer first:
/// 1. a login's variables for its owner: `HOME`, `USER`, `LOGNAME` and
///    `SHELL` from the passwd entry, `PATH` [`DEFAULT_PATH`], and the head
///    node's `HPCPACK_STATE_DIR` (so `job` in a task finds its head node);
/// 2. the launch's variables, in their own order: the submitter's `HOME`,
///    `PATH`, `TMPDIR`, language and time zone, then the cluster's, the
///    job's, the task's and `CCP_*`;
/// 3. `tools` put first on `PATH`, unless `PATH` names it already: a task
///    finds this installation's `mpiexec` and `mpipingpong` as typed, the
///    way HPC Pack nodes put MS-MPI's first.
fn task_env(launch: &[(String, String)], user: Option<&sys::User>, tools: Option<&Path>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(crate::env::PATH.to_string(), DEFAULT_PATH.to_string());
    if let Some(d) = crate::env::var(crate::env::HPCPACK_STATE_DIR) {
        env.insert(crate::env::HPCPACK_STATE_DIR.to_string(), d);
    }
    if let Some(u) = user {
        env.insert(crate::env::HOME.into(), u.home.clone());
        env.insert(crate::env::USER.into(), u.name.clone());
        env.insert(crate::env::LOGNAME.into(), u.name.clone());
        if !u.shell.is_empty() {
            env.insert(crate::env::SHELL.into(), u.shell.clone());
        }
    }
    for (k, v) in launch {
        env.insert(k.clone(), v.clone());
    }
    if let Some(dir) = tools.and_then(Path::to_str) {
        let path = env.entry(crate::env::PATH.to_string()).or_default();
        if !path.split(':').any(|p| Path::new(p) == Path::new(dir)) {
            *path = if path.is_empty() { dir.to_string() } else { format!("{dir}:{path}") };
        }
    }
    env
}

/// Writes `CCP_MPI_HOSTFILE` in the format `CCP_MPI_HOSTFILE_FORMAT` asks
/// for, as a new file of the owner's (mode 0600) in the temporary directory
/// (`TMPDIR`, else `/tmp`): the task must read it, and the run's own
/// directory is the head node's, private to it. Called acting as the
/// owner; the name is random and the file new (`O_EXCL`), so nobody can
/// have put a link there first.
fn write_hostfile(spec: &Launch, tmp: &Path) -> Result<PathBuf, String> {
    let format = spec
        .env
        .iter()
        .find(|(k, _)| k == crate::env::CCP_MPI_HOSTFILE_FORMAT)
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let mut s = String::new();
    for (n, c) in &spec.nodes {
        s += &match format {
            "1" => format!("{n}:{c}\n"),
            "2" => format!("{n} slots={c}\n"),
            "3" => format!("{n} {c}\n"),
            _ => format!("{n}\n"),
        };
    }
    for _ in 0..16 {
        let hex = sys::random_hex(8).map_err(|_| "cannot draw a random name for the MPI host file".to_string())?;
        let path = tmp.join(format!("hpcpack-hosts-{}.{}.{}-{hex}", spec.run.job, spec.run.task, spec.run.attempt));
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(mut f) => {
                return f.write_all(s.as_bytes()).map(|()| path.clone()).map_err(|e| format!("cannot write {}: {e}", path.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create the MPI host file {}: {e}", path.display())),
        }
    }
    Err(format!("cannot create the MPI host file in {}: every name tried was taken", tmp.display()))
}

#[cfg(test)]
mod tests {
    use super::{reason_line, simple_words};

    #[test]
    fn the_reason_is_the_last_line_or_what_a_rank_said_before_mpiexec_aborted() {
        let r = |text: &str| reason_line(text.as_bytes(), true);
        let ls = "ls: cannot access 'x': No such file";
        assert_eq!(r(&format!("working\n{ls}\n\n")).as_deref(), Some(ls));
        assert_eq!(r(""), None);
        assert_eq!(r("\n  \n"), None);
        let aborted = "\
latency 1 byte: pair 1 of 3 done, vm[0] <-> vm[1] 2.75 usec
mpipingpong: rank 1: comm: no channel between rank 1 on n2 and rank 2 on n3

job aborted:
[ranks] message

[0,2] terminated

[1] process exited without calling finalize

---- error analysis -----

[1] on vm
/bin/mpipingpong ended prematurely and may have crashed. exit code 1

---- error analysis -----
";
        let rank_said = "mpipingpong: rank 1: comm: no channel between rank 1 on n2 and rank 2 on n3";
        assert_eq!(r(aborted).as_deref(), Some(rank_said));
        let silent = &aborted[aborted.find("\njob aborted:").unwrap()..];
        assert_eq!(r(silent).as_deref(), Some("/bin/mpipingpong ended prematurely and may have crashed. exit code 1"));
        // A tail cut mid-line skips the piece; controls are masked; long lines cut.
        assert_eq!(reason_line(b"ial line\nfatal: \x1b[31mred\n", false).as_deref(), Some("fatal: ?[31mred"));
        assert_eq!(reason_line(b"only a piece", false), None);
        assert_eq!(r(&"é".repeat(600)).unwrap().len(), 1024);
    }

    #[test]
    fn only_plain_command_lines_skip_the_shell() {
        assert_eq!(simple_words("mpiexec -c 1 -affinity mpipingpong -p 1:100000 -op -s nul").unwrap().len(), 10);
        assert_eq!(simple_words("true").unwrap(), vec!["true"]);
        for shell in ["exit 3", "echo $HOME", "a && b", "echo 'x'", "ls *", "A=1 env", "cd /tmp", "echo a > f", "sleep 1; true", "~/bin/x"] {
            assert!(simple_words(shell).is_none(), "{shell}");
        }
    }
}
