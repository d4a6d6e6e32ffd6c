//! The node agent: starts each task run under its own supervisor process,
//! signals runs on cancel, reports how they ended, and after a head node
//! restart finds the runs that were going on.
//!
//! The embedded cluster runs one agent inside `hpcd local` for all its
//! virtual nodes; every report goes through the same [`AgentEvent`] channel a
//! remote agent's would.

use super::protocol::{AgentEvent, Launch, RunId};
use super::supervisor::{self, RunOutcome};
use super::sys;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// Where a run keeps its files: `<root>/<job>/<task>.<attempt>`.
pub fn run_dir(root: &Path, run: RunId) -> PathBuf {
    root.join(run.job.to_string()).join(format!("{}.{}", run.task, run.attempt))
}

#[derive(Clone)]
pub struct LocalAgent {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    hpcd: PathBuf,
    /// `hpcd-task` beside `hpcd`: the same supervisor in a binary that starts
    /// faster; without it, `hpcd run-task`.
    task_bin: Option<PathBuf>,
    events: UnboundedSender<AgentEvent>,
    /// Supervisor pid of each live run.
    pids: Mutex<HashMap<RunId, u32>>,
    /// The file mode creation mask tasks start with.
    task_umask: u32,
}

impl LocalAgent {
    /// `hpcd` is the binary that provides `run-task`; `root` holds run
    /// directories; tasks start with the file mode creation mask
    /// `task_umask` (the one `hpcd` was started with: the head node itself
    /// runs with 077).
    pub fn new(root: PathBuf, hpcd: PathBuf, events: UnboundedSender<AgentEvent>, task_umask: u32) -> LocalAgent {
        let task_bin = hpcd.parent().map(|d| d.join("hpcd-task")).filter(|p| p.is_file());
        LocalAgent { inner: Arc::new(Inner { root, hpcd, task_bin, events, pids: Mutex::new(HashMap::new()), task_umask }) }
    }

    fn send(&self, ev: AgentEvent) {
        // The receiver lives as long as the server; after shutdown, reports
        // are moot (the restarted head node reattaches).
        let _ = self.inner.events.send(ev);
    }

    /// Starts a run. Failures to start are reported as an exit with an error.
    pub fn launch(&self, l: Launch) {
        let run = l.run;
        match self.spawn(&l) {
            Ok(child) => {
                self.send(AgentEvent::Started { run });
                let me = self.clone();
                tokio::spawn(async move { me.watch_child(run, child).await });
            }
            Err(error) => {
                self.send(AgentEvent::Exited { run, exit_code: -1, canceled: false, error, reason: String::new() })
            }
        }
    }

    /// Why something in the run directory could not be written: a full
    /// disk is named as such (which filesystem, what to do).
    fn cannot(&self, what: &str, path: &Path, e: std::io::Error) -> String {
        if sys::is_disk_full(&e) {
            return format!("the task could not start: {}", sys::disk_full_message("the state directory", &self.inner.root));
        }
        format!("cannot {what} {}: {e}", path.display())
    }

    fn spawn(&self, l: &Launch) -> Result<tokio::process::Child, String> {
        let dir = run_dir(&self.inner.root, l.run);
        // A job's directory may be removed by `settled` of its last run
        // just as this makes it: try again once.
        std::fs::create_dir_all(&dir)
            .or_else(|_| std::fs::create_dir_all(&dir))
            .map_err(|e| self.cannot("create", &dir, e))?;
        let spec = serde_json::to_vec(&Launch { umask: self.inner.task_umask, ..l.clone() }).map_err(|e| e.to_string())?;
        let spec_path = dir.join(supervisor::SPEC);
        supervisor::write_atomic(&spec_path, &spec, false).map_err(|e| self.cannot("write the task spec", &spec_path, e))?;
        let log_path = dir.join(supervisor::LOG);
        let log = std::fs::File::create(&log_path).map_err(|e| self.cannot("create", &log_path, e))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = match &self.inner.task_bin {
            Some(bin) => tokio::process::Command::new(bin),
            None => {
                let mut c = tokio::process::Command::new(&self.inner.hpcd);
                // `hpcd` may be the multi-call `hpcpack`, `hpcd` by this name.
                c.arg0("hpcd").arg("run-task");
                c
            }
        };
        cmd.arg(&dir).stdin(Stdio::null()).stdout(log).stderr(log2).process_group(0).kill_on_drop(false);
        // The supervisor must start with the cancel signals blocked, so a
        // cancel that arrives before it reads its signal descriptor waits for
        // it instead of killing it. A child inherits the spawning thread's
        // mask (blocked signals stay blocked across exec); doing it here
        // rather than between fork and exec lets std use posix_spawn, which
        // does not copy the head node's address space. Other threads keep
        // receiving the head node's own signals.
        let _blocked = sys::CancelSignalsBlocked::new();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the task supervisor {}: {e}", self.inner.hpcd.display()))?;
        if let Some(pid) = child.id() {
            self.inner.pids.lock().unwrap_or_else(|p| p.into_inner()).insert(l.run, pid);
        }
        Ok(child)
    }

    async fn watch_child(&self, run: RunId, mut child: tokio::process::Child) {
        let status = child.wait().await.ok().and_then(|s| s.code());
        self.finished(run, status);
    }

    /// Reports a run whose supervisor has ended (with exit code `status`,
    /// when it is known).
    fn finished(&self, run: RunId, status: Option<i32>) {
        self.inner.pids.lock().unwrap_or_else(|p| p.into_inner()).remove(&run);
        let dir = run_dir(&self.inner.root, run);
        let ev = match supervisor::read_outcome(&dir) {
            Some(RunOutcome { exit_code, canceled, error, reason }) => {
                AgentEvent::Exited { run, exit_code, canceled, error, reason }
            }
            None if status == Some(supervisor::NOT_STARTED_NO_SPACE) => AgentEvent::Exited {
                run,
                exit_code: -1,
                canceled: false,
                error: format!("the task could not start: {}", sys::disk_full_message("the state directory", &self.inner.root)),
                reason: String::new(),
            },
            None => {
                let full = sys::filesystem_of(&self.inner.root).1 == Some(0);
                let why = if full {
                    format!(": {}", sys::disk_full_message("the state directory", &self.inner.root))
                } else {
                    log_tail(&dir).map(|t| format!(": {t}")).unwrap_or_default()
                };
                AgentEvent::Exited {
                    run,
                    exit_code: -1,
                    canceled: false,
                    error: format!("the task supervisor ended without a result{why}"),
                    reason: String::new(),
                }
            }
        };
        self.send(ev);
    }

    /// After the head node recorded how a run ended: removes the run's
    /// bookkeeping (spec, markers, result, the supervisor's log), and its
    /// output when it is empty, so what a run leaves behind is what it
    /// printed (an empty run leaves nothing, not a directory of small
    /// files).
    pub fn settled(&self, run: RunId) {
        let dir = run_dir(&self.inner.root, run);
        for f in [supervisor::SPEC, supervisor::STARTED, supervisor::EXIT, supervisor::LOG] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let output = dir.join(supervisor::OUTPUT);
        if std::fs::metadata(&output).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&output);
        }
        // Each only when empty.
        if std::fs::remove_dir(&dir).is_ok() {
            if let Some(job_dir) = dir.parent() {
                let _ = std::fs::remove_dir(job_dir);
            }
        }
    }

    /// Cancels a run: SIGTERM to its supervisor, which ends the task.
    pub fn kill(&self, run: RunId) {
        let pid = self.inner.pids.lock().unwrap_or_else(|p| p.into_inner()).get(&run).copied();
        let pid = pid.or_else(|| supervisor_pid(&run_dir(&self.inner.root, run)));
        if let Some(pid) = pid {
            let _ = sys::kill(pid, libc::SIGTERM);
        }
    }

    /// After a restart: reports what became of a run the head node believes
    /// started, or watches it until it ends.
    pub fn reattach(&self, run: RunId) {
        let dir = run_dir(&self.inner.root, run);
        if supervisor::read_outcome(&dir).is_some() {
            return self.finished(run, None);
        }
        if let Some(pid) = supervisor_pid(&dir) {
            if let Ok(fd) = sys::pidfd_open(pid) {
                self.inner.pids.lock().unwrap_or_else(|p| p.into_inner()).insert(run, pid);
                self.send(AgentEvent::Started { run });
                let me = self.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = sys::poll(&[&fd], -1);
                    me.finished(run, None);
                });
                return;
            }
        }
        // The supervisor may have recorded the end and exited between the
        // first look and the search for it: its result is there now.
        if supervisor::read_outcome(&dir).is_some() {
            return self.finished(run, None);
        }
        if dir.join(supervisor::STARTED).exists() {
            self.send(AgentEvent::Exited {
                run,
                exit_code: -1,
                canceled: false,
                error: "the task's processes were lost while the head node was down".into(),
                reason: String::new(),
            });
        } else {
            self.send(AgentEvent::NeverStarted { run });
        }
    }

    /// The file that holds a run's output (it may not exist: a run that
    /// printed nothing keeps none).
    pub fn output_file(&self, run: RunId) -> PathBuf {
        run_dir(&self.inner.root, run).join(supervisor::OUTPUT)
    }
}

/// The pid of the live supervisor of the run in `dir`, found through /proc
/// (its command line names the directory, so a reused pid is not mistaken).
fn supervisor_pid(dir: &Path) -> Option<u32> {
    let want = dir.as_os_str().as_encoded_bytes();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let named = (args.len() >= 3 && args[1] == b"run-task" && args[2] == want)
            || (args.len() >= 2 && args[0].ends_with(b"hpcd-task") && args[1] == want);
        if named {
            return Some(pid);
        }
    }
    None
}

fn log_tail(dir: &Path) -> Option<String> {
    let s = std::fs::read_to_string(dir.join(supervisor::LOG)).ok()?;
    let t = s.trim();
    (!t.is_empty()).then(|| t.lines().last().unwrap_or(t).to_string())
}
