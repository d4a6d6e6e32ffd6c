//! Running one measured command with a time limit.
//!
//! The numbers come from the commands' own reports (mpipingpong's JSON file, the C program's
//! lines, iperf3's JSON), not from timing the processes, so waiting by polling is harmless.
//! Each command gets its own process group, so that a hung MPI job is killed with its ranks.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// What a command left behind.
pub struct Ran {
    /// `None`: killed when its time was up.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Why it failed, with its stderr (or stdout when stderr is empty), for the notes.
    pub fn failure(&self, what: &str) -> String {
        let how = match self.status {
            None => "timed out".to_string(),
            Some(s) => format!("failed ({s})"),
        };
        let said = if self.stderr.trim().is_empty() {
            self.stdout.trim()
        } else {
            self.stderr.trim()
        };
        if said.is_empty() {
            format!("{what} {how}")
        } else {
            format!("{what} {how}:\n{said}")
        }
    }
}

/// Runs `cmd` with stdin from /dev/null and its output captured in files under `dir`;
/// kills its process group after `timeout`.
pub fn run(cmd: &mut Command, dir: &Path, timeout: Duration) -> Result<Ran> {
    let what = describe(cmd);
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let out =
        File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
    let err =
        File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .with_context(|| format!("waiting for {what}"))?
        {
            break Some(s);
        }
        if Instant::now() >= deadline {
            // SAFETY: kill(2) on the process group this command leads (process_group(0)).
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Ok(Ran {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    })
}

/// The command line, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!("{}={} ", k.to_string_lossy(), v.to_string_lossy()));
        }
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The program's path when `name` is on `PATH`.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
