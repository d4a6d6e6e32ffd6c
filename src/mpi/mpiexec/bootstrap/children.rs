//! Ranks as children of mpiexec on this host: each in a session of its own,
//! PMI over a socket pair (`PMI_FD`), output through pipes. The bootstrap
//! outside a job, and for the ranks on this host that no launch service
//! serves inside one.

use std::ffi::OsStr;
use std::io::{self, BufReader};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;

use super::pmi::{lock, serve_pmi};
use super::{Bootstrap, Handle, Job, Launch, Report, StartError, Started, forward};
use crate::mpi::mpiexec::local::Local;
use crate::mpi::pmi;
use crate::node::sys;

/// Starts every rank as a child of mpiexec; reaches this host only.
pub struct Children {
    local: Local,
}

impl Children {
    /// Children of this host.
    pub fn new(local: Local) -> Children {
        Children { local }
    }
}

impl Bootstrap for Children {
    fn reach(&self, host: &str) -> Result<(), StartError> {
        if self.local.is_local(host) {
            Ok(())
        } else {
            Err(StartError::RemoteHost {
                host: host.to_string(),
                local: self.local.host.clone(),
            })
        }
    }

    fn how(&self, _: &Launch) -> String {
        "by mpiexec".to_string()
    }

    fn open(&mut self, _: &[Launch], _: &Job) -> Result<(), StartError> {
        Ok(())
    }

    fn start(&self, launch: &Launch, job: &mut Job) -> Result<Started, StartError> {
        start_child(launch, job)
    }
}

/// A process's exit code, 128 + the signal if a signal ended it.
fn status_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}

/// In the child, between fork and exec: keep the PMI descriptor across
/// exec, start a session of its own (so the whole rank can be killed as a
/// group and the terminal's Ctrl-C reaches only mpiexec), bind to `cpu`,
/// take the nice value of `-priority`. Only async-signal-safe system calls,
/// no allocation.
fn child_setup(pmi_fd: RawFd, cpu: Option<u32>, nice: Option<i32>) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns (the child's copy of
    // the socket pair end); clearing FD_CLOEXEC touches no memory.
    if unsafe { libc::fcntl(pmi_fd, libc::F_SETFD, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    sys::setsid()?;
    if let Some(cpu) = cpu {
        sys::set_affinity(&[cpu])?;
    }
    if let Some(n) = nice {
        sys::set_nice(n)?;
    }
    Ok(())
}

/// Starts `launch` as a child of mpiexec.
fn start_child(launch: &Launch, job: &mut Job) -> Result<Started, StartError> {
    let (ours, theirs) = UnixStream::pair().map_err(|source| StartError::Io {
        what: "creating a PMI socket pair",
        source,
    })?;
    let reply_to = ours.try_clone().map_err(|source| StartError::Io {
        what: "cloning a PMI socket",
        source,
    })?;
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
    let (cpu, nice) = (launch.cpu, launch.nice);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (see `child_setup`).
    unsafe {
        cmd.pre_exec(move || child_setup(fd, cpu, nice));
    }
    let mut child = cmd.spawn().map_err(|source| StartError::Spawn {
        exe: launch.exe.clone(),
        host: launch.host.clone(),
        source,
    })?;
    // Our copy of the rank's end must go, or its end of file never comes.
    drop(theirs);
    let (rank, lines) = (launch.rank, job.lines);
    lock(&job.pmi).streams[rank as usize] = Some(Box::new(reply_to));
    if let Some(out) = child.stdout.take() {
        job.outputs
            .push(thread::spawn(move || forward(rank, out, false, lines)));
    }
    if let Some(err) = child.stderr.take() {
        job.outputs
            .push(thread::spawn(move || forward(rank, err, true, lines)));
    }
    {
        let (pmi, tx) = (Arc::clone(&job.pmi), job.tx.clone());
        thread::spawn(move || serve_pmi(rank, BufReader::new(ours), pmi, tx));
    }
    let pid = child.id();
    let tx = job.tx.clone();
    thread::spawn(move || {
        let code = child.wait().map_or(1, status_code);
        let _ = tx.send(Report::Exited { rank, code });
    });
    Ok(Started {
        handle: Handle::Child { pid },
        exited: None,
    })
}
