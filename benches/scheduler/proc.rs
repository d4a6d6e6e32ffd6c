//! Running child processes with a time limit, and noticing Ctrl-C.
//!
//! The measured commands (`job submit`, `sbatch`, ...) run through [`run`], which reads the
//! child's stdout and stderr with `poll(2)` until both close: the bench sees the end of the
//! child at once (no sleep-and-retry skew in the timings), yet a hung child is killed when
//! its time is up. Daemon launchers (`hpcd local start`, `start.sh`) leave processes behind
//! that may hold pipes open, so they run through [`status`] instead, with their output sent
//! to a file or the terminal.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // A second Ctrl-C kills the bench outright.
    // SAFETY: signal(2) is async-signal-safe.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Turns SIGINT and SIGTERM into an error at the next check, so that the clean-up guards
/// (which stop `hpcd` and Slurm) run instead of the process dying on the spot.
pub fn catch_interrupt() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic and calls signal(2).
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Fails once Ctrl-C (or SIGTERM) has been received.
pub fn check_interrupt() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Runs `cmd` to completion with stdin from /dev/null and stdout and stderr captured;
/// kills it if it is still running after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let what = describe(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    match read_until_closed(&mut child, Instant::now() + timeout) {
        Ok((stdout, stderr)) => {
            let status = child
                .wait()
                .with_context(|| format!("waiting for {what}"))?;
            Ok(Output {
                status,
                stdout,
                stderr,
            })
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e.context(format!("running {what}")))
        }
    }
}

/// Like [`run`], but fails unless the command exits 0, and returns its stdout as text.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let out = run(cmd, timeout)?;
    if !out.status.success() {
        let said = if out.stderr.trim_ascii().is_empty() {
            &out.stdout
        } else {
            &out.stderr
        };
        bail!(
            "{} failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(said).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with stdin from /dev/null and stdout and stderr appended to `log` (or left as
/// set by the caller when `log` is None), waiting at most `timeout` for it to exit.
pub fn status(cmd: &mut Command, log: Option<&Path>, timeout: Duration) -> Result<ExitStatus> {
    let what = describe(cmd);
    cmd.stdin(Stdio::null());
    if let Some(log) = log {
        let file = File::options().create(true).append(true).open(log)?;
        cmd.stdout(file.try_clone()?).stderr(file);
    }
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        // Not interruptible: clean-up (stop.sh, `hpcd local stop`) runs through here after
        // Ctrl-C; the launched script receives the terminal's SIGINT itself anyway.
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {timeout:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `program arg1 arg2`, for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy()
        .into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    format!("`{s}`")
}

/// Collects stdout and stderr until the child closes both (normally: exits).
fn read_until_closed(child: &mut Child, deadline: Instant) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut out: Option<ChildStdout> = child.stdout.take();
    let mut err: Option<ChildStderr> = child.stderr.take();
    let (mut out_buf, mut err_buf) = (Vec::new(), Vec::new());
    while out.is_some() || err.is_some() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out");
        }
        let mut fds = [
            pollfd(out.as_ref().map(|p| p.as_raw_fd())),
            pollfd(err.as_ref().map(|p| p.as_raw_fd())),
        ];
        let ms = left.as_millis().min(1000) as libc::c_int;
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms.max(1)) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e).context("poll");
            }
        }
        check_interrupt()?;
        if fds[0].revents != 0 {
            drain_once(&mut out, &mut out_buf)?;
        }
        if fds[1].revents != 0 {
            drain_once(&mut err, &mut err_buf)?;
        }
    }
    Ok((out_buf, err_buf))
}

/// A pollfd waiting for input on `fd`; a negative fd is ignored by poll(2).
fn pollfd(fd: Option<std::os::fd::RawFd>) -> libc::pollfd {
    libc::pollfd {
        fd: fd.unwrap_or(-1),
        events: libc::POLLIN,
        revents: 0,
    }
}

/// One read from a pipe poll(2) said was ready; drops the pipe at end of file.
fn drain_once<R: Read>(pipe: &mut Option<R>, buf: &mut Vec<u8>) -> Result<()> {
    let Some(p) = pipe.as_mut() else {
        return Ok(());
    };
    let mut chunk = [0u8; 16 * 1024];
    match p.read(&mut chunk) {
        Ok(0) => *pipe = None,
        Ok(n) => buf.extend_from_slice(&chunk[..n]),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(e) => return Err(e).context("reading a child's output"),
    }
    Ok(())
}
