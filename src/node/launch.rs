//! The MPI launch service of a node agent: `mpiexec`, running as a task of a
//! job, asks it over TCP to start one rank of that job on one of the job's
//! nodes, and gets the rank's output and exit back on the same connection.
//!
//! The embedded cluster (`hpcd local`) runs one service per host, bound to
//! `127.0.0.1`, serving all of the host's virtual nodes; the bind address is a
//! parameter so an agent on another host can bind a real interface. The head
//! node tells each task where the services are (`HPCPACK_LAUNCH`) and gives
//! it a per-job credential (`HPCPACK_JOB_CREDENTIAL`): HMAC-SHA256 of the job
//! id and its owner's uid under the cluster key, a 32-byte secret kept in the
//! state directory (mode 0600, made at first start, kept across restarts so
//! the credentials of running jobs stay valid). Being a network service, it
//! trusts nothing about its peer: a request is served only when
//!
//! 1. the credential is the one of the job it names (checked in constant
//!    time, [`ClusterKey::verify`]),
//! 2. the head node says the job is Running and the node is in its
//!    allocation ([`Jobs`], a view the head node passes in), and
//! 3. the service may act as the job's owner: it runs as root, or as the
//!    owner (a service run by a user serves that user's jobs only).
//!
//! Otherwise the reply is a `Refused` frame with a message for mpiexec to
//! print. The wire format is in [`super::protocol`] ([`Frame`]).
//!
//! A rank runs as its job's owner, never as the service's user: the owner's
//! uid comes from the head node's view of the checked job (never from the
//! request), and a service run by root gives the rank that user's uid,
//! primary group and supplementary groups (looked up before the fork), then
//! enters the rank's working directory as that user, so a directory the
//! owner may not enter refuses the rank as it would refuse the owner. A uid
//! without an account on the host (no passwd entry) is refused, not run as
//! root. Failures come back to mpiexec as a `Refused` frame naming the
//! program, node, user, directory and the system's reason.
//!
//! Until its request is checked a connection is anyone's, so the handshake
//! is bounded: one thread for all connections, a deadline for the whole
//! handshake, a cap on pending connections that evicts the oldest, and
//! limits on request and buffered bytes ([`Limits`]; the `handshake` module).
//!
//! A granted request and its connection are handed to a process of their
//! own, `hpcd run-rank` ([`run_rank_main`]), which starts the rank and relays
//! its output and exit: like a task's supervisor, it does not depend on the
//! head node, so the ranks of a running job survive a restart of the head
//! node (whose cluster key and port are kept, so the job's mpiexec can go on
//! starting ranks afterwards too).
//!
//! The rank runs in its own session (so its process group is the rank and
//! whatever it starts), bound to the requested CPU, with stdin `/dev/null`
//! and `PMI_PORT`/`PMI_ID` pointing at mpiexec's PMI server. The connection
//! is the rank's lifeline: when it closes (mpiexec exited, was killed, or its
//! task was canceled) or mpiexec sends `Kill`, the rank's process group gets
//! SIGKILL at once. The other way round, a rank dies with its `run-rank`
//! (parent-death signal), so no rank is left that nobody would report or
//! kill. When the rank exits, what it left in its group is killed too, as
//! the task supervisor does for a task.
//!
//! Threads, not tokio: the service is one thread with a `poll(2)` loop and
//! a short check per complete request, and `run-rank` is a blocking
//! conversation tied to one child process (spawn with a `pre_exec`, wait,
//! two output pipes), the same shape as mpiexec's side. Neither belongs on
//! the head node's async runtime, which serves the REST API and must not
//! block on a rank.

mod handshake;

pub use handshake::Limits;

use super::protocol::{Frame, RankExit, RankRequest};
use super::sys;
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

/// The cluster key's file in the state directory.
pub const KEY_FILE: &str = "launch.key";
/// The port the service last listened on, reused after a restart so the
/// `HPCPACK_LAUNCH` of running tasks still points at it.
pub const PORT_FILE: &str = "launch.port";
/// Bytes of the cluster key.
pub const KEY_LEN: usize = 32;

/// The cluster's secret for job credentials.
#[derive(Clone)]
pub struct ClusterKey(hmac::Key);

impl ClusterKey {
    pub fn from_bytes(bytes: &[u8]) -> ClusterKey {
        ClusterKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// Reads the key in `state_dir`, or makes one (32 random bytes, mode 0600)
    /// if there is none yet.
    pub fn load_or_create(state_dir: &Path) -> io::Result<ClusterKey> {
        let path = state_dir.join(KEY_FILE);
        let named = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot {what} the cluster key {}: {e}", path.display()),
            )
        };
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == KEY_LEN => return Ok(ClusterKey::from_bytes(&bytes)),
            Ok(bytes) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the cluster key {} has {} bytes instead of {KEY_LEN}; remove it (the credentials of running jobs become invalid) and start hpcd again",
                        path.display(),
                        bytes.len()
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(named("read", e)),
        }
        let mut bytes = [0u8; KEY_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| io::Error::other("cannot draw random bytes for the cluster key"))?;
        // Written under a temporary name and linked into place, so a reader
        // never sees half a key and two first starts agree on one key.
        let tmp = state_dir.join(format!("{KEY_FILE}.{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| named("create", e))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| named("write", e))?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(ClusterKey::from_bytes(&bytes)),
            // Another start won the race: use its key.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                ClusterKey::load_or_create(state_dir)
            }
            Err(e) => Err(named("create", e)),
        }
    }

    fn message(job: u64, owner_uid: u32) -> String {
        format!("hpcpack-job:{job}:{owner_uid}")
    }

    /// `HPCPACK_JOB_CREDENTIAL` of a job: `<job id>:<hex HMAC-SHA256>`.
    pub fn credential(&self, job: u64, owner_uid: u32) -> String {
        let tag = hmac::sign(&self.0, ClusterKey::message(job, owner_uid).as_bytes());
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{job}:{hex}")
    }

    /// Whether `credential` is the one of `job` owned by `owner_uid`; the MAC
    /// is compared in constant time.
    pub fn verify(&self, credential: &str, job: u64, owner_uid: u32) -> bool {
        let Some((id, hex)) = credential.split_once(':') else {
            return false;
        };
        if id.parse::<u64>().ok() != Some(job) {
            return false;
        }
        let Some(tag) = decode_hex(hex) else {
            return false;
        };
        hmac::verify(
            &self.0,
            ClusterKey::message(job, owner_uid).as_bytes(),
            &tag,
        )
        .is_ok()
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// What the service needs to know about a job, from the head node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobView {
    /// The job's state as the CLIs print it (`Running`, `Finished`, …).
    pub state: String,
    pub owner_uid: u32,
    /// The nodes of the job's allocation.
    pub nodes: Vec<String>,
}

impl JobView {
    pub fn running(&self) -> bool {
        self.state == "Running"
    }
}

/// The head node, as the service asks it about jobs.
pub trait Jobs: Send + Sync + 'static {
    fn job(&self, id: u64) -> Option<JobView>;
}

impl<F: Fn(u64) -> Option<JobView> + Send + Sync + 'static> Jobs for F {
    fn job(&self, id: u64) -> Option<JobView> {
        self(id)
    }
}

/// Whether the service (running as `service_uid`) may start `req`: the uid
/// the rank runs as, its job's owner as the head node knows it, or the
/// message mpiexec prints.
pub fn check(
    req: &RankRequest,
    key: &ClusterKey,
    jobs: &dyn Jobs,
    service_uid: u32,
) -> Result<u32, String> {
    let job = req.job;
    if req.credential.is_empty() {
        return Err(format!(
            "no job credential was given for job {job}; mpiexec gets one (HPCPACK_JOB_CREDENTIAL) only inside a task of the job"
        ));
    }
    let Some(view) = jobs.job(job) else {
        return Err(format!("job {job} does not exist on this cluster"));
    };
    if !key.verify(&req.credential, job, view.owner_uid) {
        return Err(format!(
            "the job credential is not valid for job {job} (HPCPACK_JOB_CREDENTIAL must be the one the head node set in the job's task)"
        ));
    }
    if !view.running() {
        return Err(format!(
            "job {job} is {}, not Running; ranks start only for running jobs",
            view.state
        ));
    }
    if !view.nodes.iter().any(|n| n.eq_ignore_ascii_case(&req.node)) {
        return Err(format!(
            "node {} is not in the allocation of job {job} ({}); mpiexec may start ranks on the job's nodes only",
            req.node,
            view.nodes.join(", ")
        ));
    }
    if service_uid != 0 && view.owner_uid != service_uid {
        return Err(format!(
            "job {job} belongs to uid {} but this launch service runs as uid {service_uid}; a launch service not run by root starts ranks for its own user's jobs only",
            view.owner_uid
        ));
    }
    Ok(view.owner_uid)
}

/// Binds the service's listener on `ip`: on the port it had before the last
/// restart (kept in `state_dir`) if that port is free, else on any port.
/// Records the port.
pub fn bind(ip: IpAddr, state_dir: &Path) -> io::Result<TcpListener> {
    let port_file = state_dir.join(PORT_FILE);
    let previous = std::fs::read_to_string(&port_file)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok());
    let listener = match previous.map(|p| crate::net::bind(SocketAddr::new(ip, p))) {
        Some(Ok(l)) => l,
        _ => crate::net::bind(SocketAddr::new(ip, 0)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen for the MPI launch service on {ip}: {e}"),
            )
        })?,
    };
    let port = listener.local_addr()?.port();
    if previous != Some(port) {
        std::fs::write(&port_file, format!("{port}\n")).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot write {}: {e}", port_file.display()),
            )
        })?;
    }
    Ok(listener)
}

/// Serves connections on `listener` in a thread of its own, for as long as
/// the process lives, with the default [`Limits`]; `runner` is the `hpcd`
/// binary whose `run-rank` a granted connection is handed to. Returns the
/// address served.
pub fn start(
    listener: TcpListener,
    key: ClusterKey,
    jobs: Arc<dyn Jobs>,
    runner: PathBuf,
) -> io::Result<SocketAddr> {
    start_with(listener, key, jobs, runner, Limits::default())
}

/// [`start`] with the given limits on unauthenticated connections.
pub fn start_with(
    listener: TcpListener,
    key: ClusterKey,
    jobs: Arc<dyn Jobs>,
    runner: PathBuf,
    limits: Limits,
) -> io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let service = handshake::Service::new(listener, key, jobs, runner, limits);
    thread::Builder::new()
        .name("launch-service".into())
        .spawn(move || service.run())?;
    Ok(addr)
}

fn log(msg: &str) {
    eprintln!("hpcd: launch service: {msg}");
}

/// What the service gives `run-rank` on its stdin.
#[derive(Serialize, Deserialize)]
struct Grant {
    request: RankRequest,
    /// The uid the rank runs as: the owner of the checked job as the head
    /// node knows it ([`check`]), never a field of the request.
    run_as_uid: u32,
}

/// The descriptor a `run-rank` process finds its connection on.
const RANK_CONN_FD: RawFd = 3;

/// Starts `runner run-rank` with the connection (blocking) as descriptor 3
/// and the grant on its stdin. Once started, it owns the rank; the caller
/// reaps it.
fn hand_over(conn: &TcpStream, grant: &Grant, runner: &Path) -> io::Result<Child> {
    let json = serde_json::to_vec(grant).map_err(io::Error::other)?;
    let mut cmd = Command::new(runner);
    // `runner` may be the multi-call `hpcpack`, which is `hpcd` by this name.
    std::os::unix::process::CommandExt::arg0(&mut cmd, "hpcd");
    cmd.arg(RUN_RANK)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        // Its log lines join the head node's.
        .stderr(Stdio::inherit())
        // Away from the head node's process group, so a Ctrl-C meant for a
        // foreground `hpcd head` does not end the ranks.
        .process_group(0);
    let fd = conn.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (dup2, fcntl).
    unsafe {
        cmd.pre_exec(move || sys::inherit_fd_as(fd, RANK_CONN_FD));
    }
    let mut child = cmd.spawn()?;
    // run-rank reads its stdin first thing, so this does not wait long.
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(&json),
        None => Ok(()),
    };
    if let Err(e) = written {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(child)
}

/// The `hpcd` subcommand that supervises one rank.
pub const RUN_RANK: &str = "run-rank";

/// `hpcd run-rank`: started by the service with a granted request on stdin
/// and mpiexec's connection as descriptor 3; runs the rank until it ends.
///
/// A process of its own rather than a thread of the head node, so ranks,
/// like tasks, outlive a restart of the head node: the connection and the
/// rank's lifeline stay with this process.
pub fn run_rank_main() -> std::process::ExitCode {
    let mut json = Vec::new();
    let grant = io::stdin()
        .read_to_end(&mut json)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice::<Grant>(&json).map_err(|e| e.to_string()));
    let conn = sys::take_inherited_fd(RANK_CONN_FD).map(TcpStream::from);
    match (grant, conn) {
        (Ok(grant), Ok(conn)) => {
            run_rank(conn, grant);
            std::process::ExitCode::SUCCESS
        }
        (Err(e), _) => {
            log(&format!(
                "run-rank: cannot read the rank request on stdin: {e}"
            ));
            std::process::ExitCode::FAILURE
        }
        (_, Err(e)) => {
            log(&format!(
                "run-rank: no connection on descriptor {RANK_CONN_FD}: {e}"
            ));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Who a rank runs as.
struct RunAs {
    /// The user's name (the uid when it has none), for messages.
    name: String,
    /// The uid, primary gid and groups to switch to; `None` when the
    /// service runs as the user already.
    ids: Option<(u32, u32, Vec<libc::gid_t>)>,
}

/// Resolves `uid` before the fork (the user and group databases are not
/// async-signal-safe to read after it); the error says why it cannot run
/// ranks.
fn run_as(uid: u32) -> Result<RunAs, String> {
    let me = sys::uid();
    if uid == me {
        return Ok(RunAs {
            name: sys::user_name(uid),
            ids: None,
        });
    }
    if me != 0 {
        return Err(format!(
            "this launch service runs as uid {me}, not root, and cannot start ranks as uid {uid}"
        ));
    }
    let Some(user) = sys::user_by_uid(uid) else {
        return Err(format!(
            "the job's owner, uid {uid}, has no account on this host (no passwd entry); its ranks cannot run here"
        ));
    };
    let groups = sys::group_list(&user.name, user.gid)
        .map_err(|e| format!("cannot read the groups of user {}: {e}", user.name))?;
    Ok(RunAs {
        ids: Some((uid, user.gid, groups)),
        name: user.name,
    })
}

/// Starts the rank as its job's owner and relays its output and exit until
/// it ends; kills it when the connection closes or asks so.
fn run_rank(conn: TcpStream, grant: Grant) {
    serve_rank(conn, grant.request, grant.run_as_uid, &log);
}

/// Starts the rank of `req` as `run_as_uid` and relays its output and exit
/// on `conn` until it ends; kills it when the connection closes or asks
/// so. What `run-rank` does with a granted request, and mpiexec's proxy
/// (as its own user) with the request mpiexec sent it; `log` takes the
/// lines worth a log.
pub(crate) fn serve_rank(conn: TcpStream, req: RankRequest, run_as_uid: u32, log: &dyn Fn(&str)) {
    let what = format!("job {} rank {} on {}", req.job, req.rank, req.node);
    let writer = match conn.try_clone() {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(e) => return log(&format!("{what}: cannot use the connection: {e}")),
    };
    let send = {
        let writer = Arc::clone(&writer);
        move |f: Frame| {
            let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
            // mpiexec gone: the rank is being killed; nothing to tell.
            let _ = f.write_to(&mut *w);
        }
    };
    let refuse = |message: String| {
        log(&format!("{what}: {message}"));
        send(Frame::Refused { message });
    };
    let user = match run_as(run_as_uid) {
        Ok(u) => u,
        Err(e) => {
            return refuse(format!(
                "cannot start '{}' on {}: {e}",
                req.program, req.node
            ));
        }
    };
    // Made before the fork: the child may not allocate.
    let Ok(work_dir) = CString::new(req.work_dir.as_bytes()) else {
        return refuse(format!(
            "cannot start '{}' on {}: the working directory has a NUL byte",
            req.program, req.node
        ));
    };
    let mut cmd = Command::new(&req.program);
    // No current_dir: std would enter it before pre_exec, as root.
    cmd.args(&req.args)
        .env_clear()
        .envs(req.env.iter().map(|(k, v)| (k, v)))
        .env_remove(crate::env::PMI_FD)
        .env(crate::env::PMI_PORT, &req.pmi_port)
        .env(crate::env::PMI_ID, req.pmi_id.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (cpu, nice, ids) = (req.cpu, req.nice, user.ids);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (setsid, sigprocmask, signal,
    // setgroups, setgid, setuid, chdir, prctl, sched_setaffinity,
    // setpriority) on memory made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            sys::setsid()?;
            sys::reset_signals()?;
            if let Some((uid, gid, groups)) = &ids {
                sys::set_ids(*uid, *gid, groups)?;
            }
            // As the owner, so a directory the owner may not enter fails.
            sys::chdir(&work_dir)?;
            // After set_ids, which clears it.
            sys::die_with_parent()?;
            if let Some(cpu) = cpu {
                sys::set_affinity(&[cpu])?;
            }
            // As the owner too: a higher priority takes the owner's
            // privilege (RLIMIT_NICE), not the service's.
            if let Some(n) = nice {
                sys::set_nice(n)?;
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return refuse(format!(
                "cannot start '{}' on {} as user {} in '{}': {e}",
                req.program, req.node, user.name, req.work_dir
            ));
        }
    };
    let pid = child.id();
    log(&format!(
        "{what}: started pid {pid} for {}",
        conn.peer_addr().map(|a| a.to_string()).unwrap_or_default()
    ));
    send(Frame::Started { pid });

    // True while the rank's leader is not yet reaped, so its pid (and
    // process group id) cannot belong to anyone else.
    let alive = Arc::new(Mutex::new(true));
    {
        let alive = Arc::clone(&alive);
        let mut conn = conn;
        thread::spawn(move || {
            loop {
                match Frame::read_from(&mut conn) {
                    Ok(Frame::Kill) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
            if *alive.lock().unwrap_or_else(|p| p.into_inner()) {
                let _ = sys::killpg(pid, libc::SIGKILL);
            }
        });
    }
    let mut outputs = Vec::new();
    if let Some(out) = child.stdout.take() {
        let send = send.clone();
        outputs.push(thread::spawn(move || {
            relay(out, |b| send(Frame::Stdout(b)))
        }));
    }
    if let Some(err) = child.stderr.take() {
        let send = send.clone();
        outputs.push(thread::spawn(move || {
            relay(err, |b| send(Frame::Stderr(b)))
        }));
    }
    // Wait without reaping, so the kill above can never hit a reused pid
    // (without pidfds, reap first: a narrow window, on old kernels only).
    let reaped = match sys::pidfd_open(pid) {
        Ok(fd) => {
            let _ = sys::poll(&[&fd], -1);
            None
        }
        Err(_) => Some(child.wait()),
    };
    {
        let mut alive = alive.lock().unwrap_or_else(|p| p.into_inner());
        *alive = false;
        // The leader is a zombie until reaped below; what it left in its
        // group goes now (and with it the last holders of its output pipes).
        let _ = sys::killpg(pid, libc::SIGKILL);
    }
    let exit = match reaped.unwrap_or_else(|| child.wait()) {
        Ok(s) => RankExit {
            code: s.code(),
            signal: s.signal(),
        },
        Err(_) => RankExit {
            code: None,
            signal: None,
        },
    };
    for h in outputs {
        let _ = h.join();
    }
    log(&format!(
        "{what}: pid {pid} ended with exit code {}",
        exit.shell_code()
    ));
    send(Frame::Exited(exit));
}

/// Copies a pipe into frames until it ends.
fn relay(mut from: impl Read, mut send: impl FnMut(Vec<u8>)) {
    let mut buf = vec![0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => send(buf[..n].to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::protocol::FrameError;

    pub(super) fn key() -> ClusterKey {
        ClusterKey::from_bytes(&[7u8; KEY_LEN])
    }

    pub(super) fn request(job: u64, credential: String, node: &str) -> RankRequest {
        RankRequest {
            job,
            credential,
            node: node.into(),
            rank: 0,
            program: "/bin/true".into(),
            args: vec![],
            work_dir: "/".into(),
            env: vec![],
            cpu: None,
            nice: None,
            pmi_port: "127.0.0.1:1".into(),
            pmi_id: 0,
        }
    }

    fn jobs(id: u64) -> Option<JobView> {
        match id {
            5 => Some(JobView {
                state: "Running".into(),
                owner_uid: 1000,
                nodes: vec!["node1".into(), "node2".into()],
            }),
            6 => Some(JobView {
                state: "Finished".into(),
                owner_uid: 1000,
                nodes: vec!["node1".into()],
            }),
            _ => None,
        }
    }

    #[test]
    fn credential_is_job_and_hex_mac() {
        let c = key().credential(5, 1000);
        let (job, hex) = c.split_once(':').unwrap();
        assert_eq!(job, "5");
        assert_eq!(hex.len(), 64);
        assert!(key().verify(&c, 5, 1000));
        // Another job, owner, key, or a flipped digit does not verify.
        assert!(!key().verify(&c, 6, 1000));
        assert!(!key().verify(&c, 5, 1001));
        assert!(!ClusterKey::from_bytes(&[8u8; KEY_LEN]).verify(&c, 5, 1000));
        let mut forged = c.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
        assert!(!key().verify(std::str::from_utf8(&forged).unwrap(), 5, 1000));
        for bad in ["", "5", "5:", "5:zz", "x:00", &c[..c.len() - 1]] {
            assert!(!key().verify(bad, 5, 1000), "{bad}");
        }
    }

    #[test]
    fn check_refuses_with_reasons() {
        let k = key();
        let good = k.credential(5, 1000);
        assert_eq!(
            check(&request(5, good.clone(), "NODE2"), &k, &jobs, 1000),
            Ok(1000)
        );
        // Root serves every user's jobs, as their owner.
        assert_eq!(
            check(&request(5, good.clone(), "node1"), &k, &jobs, 0),
            Ok(1000)
        );
        let refused = |req: RankRequest, uid: u32| check(&req, &k, &jobs, uid).unwrap_err();
        assert!(refused(request(5, String::new(), "node1"), 1000).contains("no job credential"));
        assert!(
            refused(request(9, k.credential(9, 1000), "node1"), 1000)
                .contains("job 9 does not exist")
        );
        assert!(
            refused(request(5, k.credential(5, 0), "node1"), 1000).contains("not valid for job 5")
        );
        assert!(refused(request(5, "5:00".into(), "node1"), 1000).contains("not valid for job 5"));
        assert!(
            refused(request(6, k.credential(6, 1000), "node1"), 1000)
                .contains("job 6 is Finished, not Running")
        );
        let e = refused(request(5, good.clone(), "node3"), 1000);
        assert!(
            e.contains("node node3 is not in the allocation of job 5 (node1, node2)"),
            "{e}"
        );
        let e = refused(request(5, good, "node1"), 1001);
        assert!(
            e.contains("belongs to uid 1000 but this launch service runs as uid 1001; a launch service not run by root starts ranks for its own user's jobs only"),
            "{e}"
        );
    }

    #[test]
    fn ranks_run_as_a_user_with_an_account_only() {
        let me = sys::uid();
        let mine = run_as(me).unwrap();
        assert!(mine.ids.is_none(), "no switch to the service's own user");
        // A uid no passwd entry names: never run (as root, or at all).
        let e = run_as(3_999_999_999).err().unwrap();
        if me == 0 {
            assert!(
                e.contains("uid 3999999999, has no account on this host (no passwd entry)"),
                "{e}"
            );
            let nobody = run_as(65534).unwrap();
            let (uid, gid, groups) = nobody.ids.unwrap();
            assert_eq!(uid, 65534);
            assert!(
                groups.contains(&gid),
                "{groups:?} lacks the primary group {gid}"
            );
        } else {
            assert!(
                e.contains("not root, and cannot start ranks as uid 3999999999"),
                "{e}"
            );
        }
    }

    #[test]
    fn key_is_made_once_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = ClusterKey::load_or_create(dir.path())
            .unwrap()
            .credential(1, 2);
        let meta = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEY_LEN as u64);
        assert_eq!(
            ClusterKey::load_or_create(dir.path())
                .unwrap()
                .credential(1, 2),
            a
        );
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let e = ClusterKey::load_or_create(dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("has 5 bytes instead of 32"), "{e}");
    }

    #[test]
    fn bind_reuses_the_recorded_port() {
        let dir = tempfile::tempdir().unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let port = bind(ip, dir.path()).unwrap().local_addr().unwrap().port();
        // The first listener is closed: the restart gets the same port.
        assert_eq!(
            bind(ip, dir.path()).unwrap().local_addr().unwrap().port(),
            port
        );
    }

    /// A service whose job 5 runs on node1 as this user, and whose granted
    /// requests fail to start (no runner): every answer is a refusal.
    pub(super) fn serve_refusing(limits: Limits) -> std::net::SocketAddr {
        let me = sys::uid();
        let jobs = move |id: u64| {
            (id == 5).then(|| JobView {
                state: "Running".into(),
                owner_uid: me,
                nodes: vec!["node1".into()],
            })
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        start_with(listener, key(), Arc::new(jobs), PathBuf::from("/no/such/hpcd"), limits).unwrap()
    }

    /// A request for job 5 with a forged credential.
    pub(super) fn forged() -> RankRequest {
        request(5, format!("5:{}", "0".repeat(64)), "node1")
    }

    #[test]
    fn refusals_come_back_as_frames() {
        let me = sys::uid();
        let addr = serve_refusing(Limits::default());
        let ask = |req: RankRequest| {
            let mut c = TcpStream::connect(addr).unwrap();
            Frame::Request(req).write_to(&mut c).unwrap();
            let reply = Frame::read_from(&mut c).unwrap();
            assert!(matches!(Frame::read_from(&mut c), Err(FrameError::Closed)));
            match reply {
                Frame::Refused { message } => message,
                other => panic!("not refused: {other:?}"),
            }
        };
        let forged = ask(forged());
        assert!(forged.contains("not valid for job 5"), "{forged}");
        // Granted, but the rank's supervisor cannot start: said so, by name.
        let granted = ask(request(5, key().credential(5, me), "node1"));
        assert!(
            granted.contains("cannot start the rank's supervisor /no/such/hpcd"),
            "{granted}"
        );
        // Not a request first.
        let mut c = TcpStream::connect(addr).unwrap();
        Frame::Kill.write_to(&mut c).unwrap();
        assert!(matches!(
            Frame::read_from(&mut c),
            Ok(Frame::Refused { .. })
        ));
    }
}
