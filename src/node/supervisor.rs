//! The supervisor of one task run (`hpcd run-task <dir>`).
//!
//! The agent starts one per task. It outlives a crash of the head node, so a
//! restarted head node finds each run's outcome in its directory:
//!
//! | file       | written when |
//! |------------|--------------|
//! | `spec.json`| by the agent, before the supervisor starts |
//! | `started`  | the task's process exists (holds its pid) |
//! | `output`   | the task's stdout and stderr, unless redirected |
//! | `exit.json`| the run is over; [`RunOutcome`] |
//!
//! The task runs as `/bin/sh -c <command line>` (or, when the command line
//! has no shell syntax, directly with the same words: one process less) in
//! its own session (so its process group is the task), bound to its CPUs. On SIGTERM the supervisor
//! sends SIGTERM to the group, then SIGKILL after the grace period, and kills
//! any descendant that left the group (it is their subreaper), so no process
//! of a canceled task survives. When the task's main process exits, what it
//! left behind is killed too.

use super::protocol::Launch;
use super::sys;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
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
}

pub const SPEC: &str = "spec.json";
pub const STARTED: &str = "started";
pub const OUTPUT: &str = "output";
pub const EXIT: &str = "exit.json";
pub const HOSTFILE: &str = "mpi_hostfile";
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
            eprintln!("usage: hpcd-task <run directory> (started by the node agent, one per task run)");
            std::process::ExitCode::from(crate::error::exit::USAGE)
        }
    }
}

/// Entry point of `hpcd run-task <dir>`; returns the process exit code.
pub fn main(dir: &Path) -> i32 {
    let outcome = match run(dir) {
        Ok(o) => o,
        Err(e) => RunOutcome { exit_code: -1, canceled: false, error: e },
    };
    match serde_json::to_vec(&outcome).map_err(std::io::Error::other).and_then(|b| write_atomic(&dir.join(EXIT), &b, true)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hpcd run-task: cannot write {}: {e}", dir.join(EXIT).display());
            1
        }
    }
}

fn run(dir: &Path) -> Result<RunOutcome, String> {
    let spec: Launch = fs::read(dir.join(SPEC))
        .map_err(|e| format!("cannot read the task spec {}: {e}", dir.join(SPEC).display()))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("bad task spec: {e}")))?;
    // Signals first, so a cancel that arrives during start-up is not lost.
    let signals = sys::signal_fd().map_err(|e| format!("cannot set up signals: {e}"))?;
    sys::set_child_subreaper().map_err(|e| format!("cannot become subreaper: {e}"))?;
    let grace = Duration::from_secs(
        crate::env::var(crate::env::HPCPACK_CANCEL_GRACE).and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_GRACE_SECS),
    );

    let user = sys::user_by_uid(spec.owner_uid);
    let work_dir = if spec.work_dir.is_empty() {
        user.as_ref().map(|u| PathBuf::from(&u.home)).filter(|p| p.is_dir()).unwrap_or_else(|| PathBuf::from("/"))
    } else {
        PathBuf::from(&spec.work_dir)
    };
    if !work_dir.is_dir() {
        return Err(format!("the working directory {} does not exist", work_dir.display()));
    }
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
    cmd.current_dir(&work_dir).env_clear();
    let hostfile = dir.join(HOSTFILE);
    write_hostfile(&hostfile, &spec).map_err(|e| format!("cannot write {}: {e}", hostfile.display()))?;
    for (k, v) in base_env(user.as_ref()) {
        cmd.env(k, v);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd.env(crate::env::CCP_MPI_HOSTFILE, &hostfile);
    if spec.work_dir.is_empty() {
        cmd.env(crate::env::CCP_WORKDIR, &work_dir);
    }
    let output = dir.join(OUTPUT);
    let open_out = |p: &str| -> Result<File, String> {
        let path = if p.is_empty() { output.clone() } else { work_dir.join(p) };
        OpenOptions::new().create(true).append(true).open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))
    };
    let out = open_out(&spec.stdout)?;
    let err = if spec.stderr.is_empty() && !spec.stdout.is_empty() { open_out("")? } else { open_out(&spec.stderr)? };
    let err_copy = err.try_clone().ok();
    let stdin = if spec.stdin.is_empty() {
        Stdio::null()
    } else {
        let p = work_dir.join(&spec.stdin);
        Stdio::from(File::open(&p).map_err(|e| format!("cannot open stdin file {}: {e}", p.display()))?)
    };
    cmd.stdin(stdin).stdout(out).stderr(err);
    let cpus = spec.cpus.clone();
    let switch_user = user.filter(|u| sys::uid() == 0 && u.uid != 0);
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe system calls (setsid, sched_setaffinity,
    // sigprocmask, signal, initgroups/setgid/setuid).
    unsafe {
        cmd.pre_exec(move || {
            sys::setsid()?;
            sys::reset_signals()?;
            sys::set_affinity(&cpus)?;
            if let Some(u) = &switch_user {
                sys::become_user(u)?;
            }
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        // Run directly, a command that cannot be found or executed ends as
        // it would under the shell: a message on stderr, exit code 127 or 126.
        Err(e) if direct.is_some() && matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            let what = if code == 127 { "not found" } else { "Permission denied" };
            let _ = write_atomic(&dir.join(STARTED), b"0", false);
            if let Some(mut f) = err_copy {
                let _ = writeln!(f, "{}: {what}", direct.as_ref().map(|w| w[0].as_str()).unwrap_or(""));
            }
            return Ok(RunOutcome { exit_code: code, canceled: false, error: String::new() });
        }
        Err(e) => return Err(format!("cannot start the task: {e}")),
    };
    let pid = child.id();
    // The Child handle is not used to wait: the loop below reaps with waitpid.
    std::mem::forget(child);
    let _ = write_atomic(&dir.join(STARTED), pid.to_string().as_bytes(), false);
    supervise(pid, &signals, grace)
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
    Ok(RunOutcome { exit_code: exit.code(), canceled: canceled_at.is_some(), error: String::new() })
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

/// The variables a task starts from before the cluster's and its own.
fn base_env(user: Option<&sys::User>) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let path = std::env::var(crate::env::PATH).unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    env.push((crate::env::PATH.to_string(), path));
    for k in ["LANG", "LC_ALL", "TZ", "TMPDIR", crate::env::HPCPACK_STATE_DIR] {
        if let Ok(v) = std::env::var(k) {
            env.push((k.to_string(), v));
        }
    }
    if let Some(u) = user {
        env.push((crate::env::HOME.into(), u.home.clone()));
        env.push((crate::env::USER.into(), u.name.clone()));
        env.push(("LOGNAME".into(), u.name.clone()));
    }
    env
}

/// `CCP_MPI_HOSTFILE` in the format `CCP_MPI_HOSTFILE_FORMAT` asks for.
fn write_hostfile(path: &Path, spec: &Launch) -> std::io::Result<()> {
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
    fs::write(path, s)
}

#[cfg(test)]
mod tests {
    use super::simple_words;

    #[test]
    fn only_plain_command_lines_skip_the_shell() {
        assert_eq!(simple_words("mpiexec -c 1 -affinity mpipingpong -p 1:100000 -op -s nul").unwrap().len(), 10);
        assert_eq!(simple_words("true").unwrap(), vec!["true"]);
        for shell in ["exit 3", "echo $HOME", "a && b", "echo 'x'", "ls *", "A=1 env", "cd /tmp", "echo a > f", "sleep 1; true", "~/bin/x"] {
            assert!(simple_words(shell).is_none(), "{shell}");
        }
    }
}
