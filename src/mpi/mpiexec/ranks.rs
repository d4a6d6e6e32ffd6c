//! A started rank, for [`super::run`]'s supervisor, which sees only
//! [`Started`] and [`Report`]s and so treats every rank alike. A rank is
//! started one of two ways:
//!
//! * [`start_local`]: a child of mpiexec on this host, in a session of its
//!   own, PMI over a socket pair (`PMI_FD`), output through pipes. mpiexec
//!   outside a job, or a rank on a node no launch service serves.
//! * [`start_service`]: through a node agent's MPI launch service
//!   ([`crate::node::launch`]), which checks the job's credential and starts
//!   the rank on its node. PMI over TCP (`PMI_PORT`, `PMI_ID`, served by
//!   [`PmiListener`]); output and exit come back as frames on the service
//!   connection and go through the same [`forward`] as a child's pipes, so
//!   `-lines` behaves the same. Killing is a `Kill` frame and closing our
//!   half of the connection; the service also kills the rank if mpiexec
//!   dies, since the connection then closes.
//!
//! Either way the rank's exit arrives as [`Report::Exited`] with the code a
//! shell would show (128 + signal when killed).

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::run::{Launch, RunError};
use crate::mpi::pmi::{self, Event as PmiEvent, Server};
use crate::node::protocol::{Frame, RankRequest};
use crate::node::sys;

/// How long a launch service may take to answer a request, and a PMI
/// connection to send its handshake.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the helper threads tell the supervisor.
pub(super) enum Report {
    /// The rank ended: its code, 128 + the signal if killed.
    Exited {
        rank: u32,
        code: i32,
    },
    Pmi(PmiEvent),
    Signal,
}

/// The PMI side of the job, shared by the connection threads.
pub(super) struct Pmi {
    pub server: Server,
    /// Where to send each rank's replies, once it is connected.
    pub streams: Vec<Option<Box<dyn Write + Send>>>,
    /// Ranks that sent `cmd=init`.
    pub initialized: Vec<bool>,
    /// Ranks that connect over TCP (started by a launch service); the
    /// listener accepts one connection for each.
    pub by_port: Vec<bool>,
}

pub(super) type SharedPmi = Arc<Mutex<Pmi>>;

fn lock(pmi: &SharedPmi) -> std::sync::MutexGuard<'_, Pmi> {
    pmi.lock().unwrap_or_else(|e| e.into_inner())
}

/// Handles one PMI line from `rank`.
fn handle_line(rank: u32, line: &str, pmi: &SharedPmi, tx: &Sender<Report>) {
    let mut pmi = lock(pmi);
    if line.starts_with("cmd=init ") {
        pmi.initialized[rank as usize] = true;
    }
    let replies = pmi.server.handle(rank, line);
    for (to, reply) in replies {
        // A rank that is gone cannot be answered; its exit is reported
        // by its waiter.
        if let Some(s) = pmi.streams[to as usize].as_mut() {
            let _ = s.write_all(format!("{reply}\n").as_bytes());
        }
    }
    for event in pmi.server.take_events() {
        let _ = tx.send(Report::Pmi(event));
    }
}

/// Reads one rank's PMI requests and sends the replies, until the rank
/// closes its end.
fn serve_pmi(rank: u32, mut reader: impl BufRead, pmi: SharedPmi, tx: Sender<Report>) {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => handle_line(rank, &line, &pmi, &tx),
        }
    }
}

/// mpiexec's PMI server on TCP, for the ranks a launch service starts.
pub(super) struct PmiListener {
    /// `PMI_PORT` for the ranks.
    pub port: String,
}

impl PmiListener {
    /// Listens on loopback when every service is on this host, else on every
    /// interface (advertised by host name); accepts in a thread of its own.
    pub fn start(
        services: &[&str],
        pmi: SharedPmi,
        tx: Sender<Report>,
    ) -> Result<PmiListener, RunError> {
        let loopback = services.iter().all(|s| {
            s.to_socket_addrs()
                .map(|mut a| a.all(|a| a.ip().is_loopback()))
                .unwrap_or(false)
        });
        let ip: IpAddr = if loopback {
            Ipv4Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let listener =
            crate::net::bind(SocketAddr::new(ip, 0)).map_err(|source| RunError::Io {
                what: "listening for PMI connections",
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| RunError::Io {
                what: "listening for PMI connections",
                source,
            })?
            .port();
        let host = if loopback {
            ip.to_string()
        } else {
            sys::hostname()
        };
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (pmi, tx) = (Arc::clone(&pmi), tx.clone());
                thread::spawn(move || accept_pmi(conn, pmi, tx));
            }
        });
        Ok(PmiListener {
            port: format!("{host}:{port}"),
        })
    }
}

/// A PMI connection: its first line (`cmd=initack pmiid=<rank>`) says which
/// rank it is; a connection for a rank that is not expected, or that has
/// one already, is dropped.
fn accept_pmi(conn: TcpStream, pmi: SharedPmi, tx: Sender<Report>) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(ANSWER_TIMEOUT));
    let Ok(writer) = conn.try_clone() else { return };
    let mut reader = BufReader::new(conn);
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let rank = {
        let mut p = lock(&pmi);
        let Some(rank) = p.server.identify(&first) else {
            return;
        };
        let r = rank as usize;
        if !p.by_port[r] || p.streams[r].is_some() {
            return;
        }
        p.streams[r] = Some(Box::new(writer));
        rank
    };
    let _ = reader.get_ref().set_read_timeout(None);
    handle_line(rank, &first, &pmi, &tx);
    serve_pmi(rank, reader, pmi, tx);
}

/// Copies a rank's output to ours, with `[rank]` before each line when
/// `lines` is set.
pub(super) fn forward(rank: u32, from: impl Read, stderr: bool, lines: bool) {
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

/// How to stop a started rank.
enum Handle {
    /// A child of mpiexec leading its own process group.
    Local { pid: u32 },
    /// A rank of a launch service: our end of its connection.
    Service { conn: TcpStream },
}

/// One started rank.
pub(super) struct Started {
    handle: Handle,
    /// Its exit code, once reported.
    pub exited: Option<i32>,
}

impl Started {
    /// Kills the rank (and what it started) with SIGKILL; its exit is then
    /// reported as usual.
    pub fn kill(&self) {
        match &self.handle {
            Handle::Local { pid } => {
                let _ = sys::killpg(*pid, libc::SIGKILL);
            }
            Handle::Service { conn } => {
                // The service kills on either; the frame says it was meant.
                let _ = Frame::Kill.write_to(&mut &*conn);
                let _ = conn.shutdown(Shutdown::Write);
            }
        }
    }
}

/// A process's exit code, 128 + the signal if a signal ended it.
pub(super) fn status_code(status: ExitStatus) -> i32 {
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

/// Starts `launch` as a child of mpiexec; its output threads go to `outputs`.
pub(super) fn start_local(
    launch: &Launch,
    lines: bool,
    pmi: &SharedPmi,
    tx: &Sender<Report>,
    outputs: &mut Vec<JoinHandle<()>>,
) -> Result<Started, RunError> {
    let (ours, theirs) = UnixStream::pair().map_err(|source| RunError::Io {
        what: "creating a PMI socket pair",
        source,
    })?;
    let reply_to = ours.try_clone().map_err(|source| RunError::Io {
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
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        exe: launch.exe.clone(),
        host: launch.host.clone(),
        source,
    })?;
    // Our copy of the rank's end must go, or its end of file never comes.
    drop(theirs);
    let rank = launch.rank;
    lock(pmi).streams[rank as usize] = Some(Box::new(reply_to));
    if let Some(out) = child.stdout.take() {
        outputs.push(thread::spawn(move || forward(rank, out, false, lines)));
    }
    if let Some(err) = child.stderr.take() {
        outputs.push(thread::spawn(move || forward(rank, err, true, lines)));
    }
    {
        let (pmi, tx) = (Arc::clone(pmi), tx.clone());
        thread::spawn(move || serve_pmi(rank, BufReader::new(ours), pmi, tx));
    }
    let pid = child.id();
    let tx = tx.clone();
    thread::spawn(move || {
        let code = child.wait().map_or(1, status_code);
        let _ = tx.send(Report::Exited { rank, code });
    });
    Ok(Started {
        handle: Handle::Local { pid },
        exited: None,
    })
}

/// What every service request of the job shares.
pub(super) struct ServiceJob {
    pub job: u64,
    pub credential: String,
    /// mpiexec's environment, which the ranks start from as local ranks do.
    pub env: Vec<(String, String)>,
    pub pmi_port: String,
}

/// Asks the launch service at `addr` to start `launch`; returns once the
/// service started it or refused.
pub(super) fn start_service(
    launch: &Launch,
    addr: &str,
    job: &ServiceJob,
    lines: bool,
    tx: &Sender<Report>,
    outputs: &mut Vec<JoinHandle<()>>,
) -> Result<Started, RunError> {
    let rank = launch.rank;
    let failed = |message: String| RunError::Service {
        rank,
        node: launch.host.clone(),
        addr: addr.to_string(),
        message,
    };
    let target = addr
        .to_socket_addrs()
        .map_err(|e| failed(format!("cannot resolve the address: {e}")))?
        .next()
        .ok_or_else(|| failed("the address resolves to nothing".into()))?;
    let mut conn = TcpStream::connect_timeout(&target, ANSWER_TIMEOUT)
        .map_err(|e| failed(format!("cannot connect ({e}); is the node agent running?")))?;
    let _ = conn.set_nodelay(true);
    let mut env = job.env.clone();
    env.extend(launch.env.iter().cloned());
    let request = RankRequest {
        job: job.job,
        credential: job.credential.clone(),
        node: launch.host.clone(),
        rank,
        program: launch.program.display().to_string(),
        args: launch.args.clone(),
        work_dir: launch.dir.display().to_string(),
        env,
        cpu: launch.cpu,
        nice: launch.nice,
        pmi_port: job.pmi_port.clone(),
        pmi_id: rank,
    };
    Frame::Request(request)
        .write_to(&mut conn)
        .map_err(|e| failed(format!("cannot send the request: {e}")))?;
    let _ = conn.set_read_timeout(Some(ANSWER_TIMEOUT));
    match Frame::read_from(&mut conn) {
        Ok(Frame::Started { .. }) => {}
        Ok(Frame::Refused { message }) => return Err(failed(message)),
        Ok(_) => {
            return Err(failed(
                "the service answered out of turn (before saying the rank started)".into(),
            ));
        }
        Err(e) => return Err(failed(format!("no answer: {e}"))),
    }
    let _ = conn.set_read_timeout(None);
    // A socket pair as the pipe to `forward` (std's anonymous pipe needs a
    // newer Rust than the crate's minimum).
    let pipe = || {
        UnixStream::pair().map_err(|source| RunError::Io {
            what: "creating an output pipe",
            source,
        })
    };
    let (out_r, mut out_w) = pipe()?;
    let (err_r, mut err_w) = pipe()?;
    outputs.push(thread::spawn(move || forward(rank, out_r, false, lines)));
    outputs.push(thread::spawn(move || forward(rank, err_r, true, lines)));
    let handle = conn.try_clone().map_err(|source| RunError::Io {
        what: "cloning a launch service connection",
        source,
    })?;
    let (tx, addr) = (tx.clone(), addr.to_string());
    thread::spawn(move || {
        let code = loop {
            match Frame::read_from(&mut conn) {
                Ok(Frame::Stdout(b)) => {
                    let _ = out_w.write_all(&b);
                }
                Ok(Frame::Stderr(b)) => {
                    let _ = err_w.write_all(&b);
                }
                Ok(Frame::Exited(e)) => break e.shell_code(),
                Ok(_) => continue,
                Err(e) => {
                    eprintln!(
                        "mpiexec: lost the launch service connection of rank {rank} (at {addr}): {e}"
                    );
                    break 1;
                }
            }
        };
        // Output first, so the supervisor's joins find it complete.
        drop((out_w, err_w));
        let _ = tx.send(Report::Exited { rank, code });
    });
    Ok(Started {
        handle: Handle::Service { conn: handle },
        exited: None,
    })
}
