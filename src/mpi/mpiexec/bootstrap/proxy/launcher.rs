//! The commands that start the proxies (one `srun` for all hosts, one `ssh`
//! per host), as children of mpiexec: each in its own process group (a
//! Ctrl-C at the terminal is mpiexec's to handle), sent SIGTERM if mpiexec
//! dies, its standard error kept for an error message, its standard input
//! (the proxy's settings, for ssh) held open until the launch ends, and
//! its end told to the launch. Ended together: their input closed, a moment
//! to end by themselves, then SIGTERM, then SIGKILL.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::Event;
use crate::node::sys;

/// How much of a launcher's output is kept for an error message.
const MAX_OUTPUT: usize = 16 << 10;

/// How long the launchers get to end by themselves once mpiexec is done,
/// then after SIGTERM, before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// A launcher command as a child: its pid until it is reaped.
pub(super) struct Process {
    pid: u32,
    /// Set, under its lock, just before it is reaped, so a signal never
    /// reaches a process that took its pid.
    ended: Mutex<bool>,
    /// Its standard input, when it was given one, until the launch ends.
    stdin: Mutex<Option<ChildStdin>>,
}

/// What a launcher printed on its standard error, kept for an error
/// message.
pub(super) struct Output {
    text: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Output {
    /// The output so far; all of it once the launcher `ended` (its pipe
    /// then closes).
    pub(super) fn text(&mut self, ended: bool) -> String {
        if let Some(r) = self.reader.take().filter(|_| ended) {
            let _ = r.join();
        }
        let text = self.text.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&text).into_owned()
    }
}

impl Process {
    /// Starts launcher number `index` with `stdin` written to its standard
    /// input (then held open), or none; its end is told to `tx`.
    pub(super) fn spawn(
        mut cmd: Command,
        stdin: Option<&str>,
        index: usize,
        tx: Sender<Event>,
    ) -> std::io::Result<(Arc<Process>, Output)> {
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only
        // makes an async-signal-safe system call (prctl).
        unsafe {
            cmd.pre_exec(|| sys::parent_death_signal(libc::SIGTERM));
        }
        let mut child = cmd.spawn()?;
        let mut input = child.stdin.take();
        if let (Some(text), Some(pipe)) = (stdin, input.as_mut()) {
            // A few hundred bytes: the pipe takes them whole. A launcher
            // that ended already says so through `tx`.
            let _ = pipe.write_all(text.as_bytes());
        }
        let process = Arc::new(Process {
            pid: child.id(),
            ended: Mutex::new(false),
            stdin: Mutex::new(input),
        });
        let text = Arc::new(Mutex::new(Vec::new()));
        let reader = child.stderr.take().map(|mut err| {
            let text = Arc::clone(&text);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match err.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let mut t = text.lock().unwrap_or_else(|e| e.into_inner());
                            let room = MAX_OUTPUT.saturating_sub(t.len());
                            t.extend_from_slice(&buf[..n.min(room)]);
                        }
                    }
                }
            })
        });
        {
            let process = Arc::clone(&process);
            thread::spawn(move || process.wait(child, index, &tx));
        }
        Ok((process, Output { text, reader }))
    }

    /// Waits for the launcher to end, reaps it and says how it ended.
    fn wait(&self, mut child: Child, index: usize, tx: &Sender<Event>) {
        // Wait without reaping where the kernel can, so `signal` never hits
        // a reused pid.
        if let Ok(fd) = sys::pidfd_open(self.pid) {
            let _ = sys::poll(&[&fd], -1);
        }
        let status = {
            let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
            *ended = true;
            child.wait()
        };
        let how = match status {
            Ok(s) => format!("ended ({s})"),
            Err(e) => format!("could not be waited for ({e})"),
        };
        let _ = tx.send(Event::Ended {
            launcher: index,
            how,
        });
    }

    fn ended(&self) -> bool {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `sig` to the launcher unless it ended.
    fn signal(&self, sig: i32) {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if !*ended {
            let _ = sys::kill(self.pid, sig);
        }
    }
}

/// Ends `launchers`: closes their input (a proxy started by ssh ends, and
/// kills its ranks, when it reads the end of it), lets them end by
/// themselves for a moment (the proxies end once their ranks have), then
/// SIGTERM (srun ends its step, ssh its session), then SIGKILL.
pub(super) fn end_all(launchers: &[Arc<Process>]) {
    for l in launchers {
        l.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
    for sig in [None, Some(libc::SIGTERM), Some(libc::SIGKILL)] {
        if let Some(sig) = sig {
            for l in launchers {
                l.signal(sig);
            }
        }
        let deadline = Instant::now() + GRACE;
        while !launchers.iter().all(|l| l.ended()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        if launchers.iter().all(|l| l.ended()) {
            return;
        }
    }
}
