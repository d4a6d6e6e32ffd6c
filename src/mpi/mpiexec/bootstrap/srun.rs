//! Ranks across the nodes of a Slurm allocation (mpiexec run by `salloc`,
//! `sbatch` or inside a step, `SLURM_JOB_ID` set), as MPICH's Hydra starts
//! them: the ranks of this host as [`Children`], the others by one proxy
//! per host, all proxies started by one `srun` step.
//!
//! The proxy is mpiexec itself in a hidden mode ([`PROXY_ARG`], then
//! [`proxy_main`]; the nodes share mpiexec's filesystem, as a Slurm site's
//! do). `open` listens on every interface, makes a secret for this launch
//! and starts
//!
//! ```text
//! srun --overlap --nodes=K --ntasks=K --ntasks-per-node=1 --nodelist=h1,…
//!      --kill-on-bad-exit=0 --input=none … mpiexec --hpcpack-proxy
//! ```
//!
//! with every count given, so the variables of an enclosing step
//! (`SLURM_NTASKS`, …) do not shape this one, and without `SLURM_JWT`
//! (with it srun authenticates to slurmd by JWT, which slurmd refuses). The
//! secret, mpiexec's addresses and which ranks run where travel in the
//! environment (`HPCPACK_PROXY_*`), never in argv, which other users can
//! read through `ps`.
//!
//! A proxy opens one connection per rank of its host and sends one line,
//! `hpcpack-proxy <secret> <host> <rank>`; mpiexec keeps a connection whose
//! secret matches (compared in constant time), whose rank is placed on that
//! host and not yet connected. Once every proxied rank is connected (or
//! srun ended, or [`PROXY_TIMEOUT`] passed: then the launch fails naming
//! the hosts and what srun printed), `start` sends each rank's request on
//! its connection and the rank is relayed as a launch service's is
//! ([`super::remote`]); the proxy runs it as the launch service's
//! `run-rank` does ([`crate::node::launch::serve_rank`]): its own session,
//! killed when the connection closes or says `Kill`, dead with its proxy.
//!
//! PMI is over TCP: a proxied rank's `PMI_PORT` is the address its proxy
//! reached mpiexec on, and mpiexec's PMI listener takes that rank's
//! connection from the proxy's address only ([`PortPeer::From`]).
//!
//! When mpiexec ends, so does the step: the proxies end once their ranks
//! have, and srun with them; an srun still running when the bootstrap is
//! dropped gets SIGTERM, then SIGKILL (and SIGTERM if mpiexec dies, as its
//! parent-death signal). Either way Slurm ends what is left of the step,
//! and each proxy's ranks die with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ring::hmac;

use super::children::Children;
use super::pmi::{PmiListener, PortPeer, lock};
use super::remote::{own_environment, request, start_remote};
use super::{Bootstrap, Job, Launch, StartError, Started};
use crate::env;
use crate::mpi::mpiexec::local::Local;
use crate::node::protocol::{Frame, RankRequest};
use crate::node::sys;
use crate::slurm::hostlist;

/// argv\[1\] of mpiexec run as a proxy (never in `-help`).
pub const PROXY_ARG: &str = "--hpcpack-proxy";

/// How long the proxies have to start and connect back, all of them.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection may take to send its first line.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest first line a proxy sends.
const MAX_HANDSHAKE: u64 = 512;

/// What the first line of a proxy's connection starts with.
const HELLO: &str = "hpcpack-proxy";

/// How much of srun's output is kept for an error message.
const MAX_SRUN_OUTPUT: usize = 16 << 10;

/// How long srun gets to end by itself once mpiexec is done, then after
/// SIGTERM, before SIGKILL.
const SRUN_GRACE: Duration = Duration::from_secs(2);

/// Starts the ranks of other nodes of the Slurm allocation through `srun`
/// and proxies, and the ranks of this host as [`Children`].
pub struct Srun {
    children: Children,
    /// The CPUs mpiexec may run on, which `-affinity` spreads ranks over.
    cpus: Vec<u32>,
    /// `SLURM_JOB_ID`.
    job: String,
    /// The allocation's nodes (`SLURM_JOB_NODELIST`), or why they are
    /// unknown.
    nodes: Result<Vec<String>, String>,
    /// Set by `open` once some rank goes through srun.
    step: Option<Step>,
}

impl Srun {
    /// The bootstrap of allocation `job` whose nodes are the host list
    /// `nodelist`; `local` is this host.
    pub fn new(local: Local, job: String, nodelist: Option<&str>) -> Srun {
        let nodes = match nodelist {
            Some(list) => hostlist::expand(list).map_err(|e| e.to_string()),
            None => Err(format!("{} is not set", env::SLURM_JOB_NODELIST)),
        };
        Srun {
            cpus: local.cpus.clone(),
            children: Children::new(local),
            job,
            nodes,
            step: None,
        }
    }

    /// The allocation's name of `host` (which may differ in case or
    /// domain), if the allocation has it.
    fn node(&self, host: &str) -> Option<&str> {
        let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
        let nodes = self.nodes.as_ref().ok()?;
        nodes
            .iter()
            .find(|n| n.eq_ignore_ascii_case(host))
            .or_else(|| nodes.iter().find(|n| short(n) == short(host)))
            .map(String::as_str)
    }

    /// Whether `launch` goes through srun rather than being a child.
    fn proxied(&self, launch: &Launch) -> bool {
        self.children.reach(&launch.host).is_err()
    }
}

impl Bootstrap for Srun {
    fn reach(&self, host: &str) -> Result<(), StartError> {
        if self.children.reach(host).is_ok() || self.node(host).is_some() {
            return Ok(());
        }
        Err(StartError::NotAllocated {
            host: host.to_string(),
            job: self.job.clone(),
            nodes: match &self.nodes {
                Ok(n) => n.join(", "),
                Err(e) => e.clone(),
            },
        })
    }

    fn how(&self, launch: &Launch) -> String {
        if self.proxied(launch) {
            format!("through srun, by the proxy on {}", launch.host)
        } else {
            self.children.how(launch)
        }
    }

    fn open(&mut self, launches: &[Launch], job: &Job) -> Result<(), StartError> {
        // Each proxied rank's Slurm node, by rank.
        let mut hosts: Vec<Option<String>> = Vec::new();
        for l in launches {
            let node = self
                .proxied(l)
                .then(|| self.node(&l.host).unwrap_or(&l.host).to_string());
            let r = l.rank as usize;
            if hosts.len() <= r {
                hosts.resize(r + 1, None);
            }
            hosts[r] = node;
        }
        if hosts.iter().all(Option::is_none) {
            return Ok(());
        }
        self.step = Some(Step::open(hosts, &self.cpus, &self.job, job)?);
        Ok(())
    }

    fn start(&self, launch: &Launch, job: &mut Job) -> Result<Started, StartError> {
        match &self.step {
            Some(step) if self.proxied(launch) => step.start(launch, job),
            _ => self.children.start(launch, job),
        }
    }
}

/// The srun step of a launch: its proxies' connections until `start`
/// takes them, and srun until it ends.
struct Step {
    conns: Arc<Mutex<Vec<Option<TcpStream>>>>,
    /// Each rank's Slurm node when a proxy runs it.
    hosts: Vec<Option<String>>,
    /// mpiexec's environment, which the ranks start from as children do.
    env: Vec<(String, String)>,
    /// The PMI listener's port.
    pmi_port: u16,
    job: u64,
    srun: Arc<Process>,
    /// Tells the acceptor to stop.
    done: Arc<AtomicBool>,
}

/// What the acceptor and srun's waiter tell `open`.
enum Event {
    Connected(u32),
    /// srun ended, as this sentence says.
    SrunEnded(String),
}

impl Step {
    /// Listens, starts srun and waits until every proxied rank's
    /// connection is in.
    fn open(
        hosts: Vec<Option<String>>,
        cpus: &[u32],
        slurm_job: &str,
        job: &Job,
    ) -> Result<Step, StartError> {
        let io = |what| move |source| StartError::Io { what, source };
        let listener = crate::net::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
            .map_err(io("listening for the srun proxies"))?;
        let port = listener
            .local_addr()
            .map_err(io("listening for the srun proxies"))?
            .port();
        let secret = secret().map_err(io("drawing the launch's secret"))?;
        let addrs: Vec<String> = own_ipv4()
            .into_iter()
            .filter(|(ip, _)| !ip.is_loopback())
            .map(|(ip, _)| format!("{ip}:{port}"))
            .collect();
        let pmi = PmiListener::bind(
            Ipv4Addr::UNSPECIFIED.into(),
            &sys::hostname(),
            Arc::clone(&job.pmi),
            job.tx.clone(),
        )?;

        // One proxy per host, in the order the hosts first appear.
        let mut nodes: Vec<&str> = Vec::new();
        for h in hosts.iter().flatten() {
            if !nodes.contains(&h.as_str()) {
                nodes.push(h);
            }
        }
        let exe = std::env::current_exe().map_err(io("finding mpiexec's own executable"))?;
        let (tx, rx) = mpsc::channel();
        let conns = Arc::new(Mutex::new((0..hosts.len()).map(|_| None).collect()));
        let done = Arc::new(AtomicBool::new(false));
        {
            let waiting = Waiting {
                key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
                hosts: hosts.clone(),
                conns: Arc::clone(&conns),
                tx: tx.clone(),
            };
            let done = Arc::clone(&done);
            thread::spawn(move || accept(listener, waiting, &done));
        }
        let mut cmd = srun_command(&nodes, &exe);
        cmd.env(env::HPCPACK_PROXY_SECRET, &secret)
            .env(env::HPCPACK_PROXY_ADDRS, addrs.join(","))
            .env(env::HPCPACK_PROXY_RANKS, ranks_by_host(&hosts))
            .env(
                env::HPCPACK_PROXY_CPUS,
                cpus.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
            );
        let hosts_text = nodes.join(", ");
        let failed = |reason: String, output: String| StartError::Srun {
            hosts: hosts_text.clone(),
            reason,
            output,
        };
        let (srun, output) = match Process::spawn(cmd, tx) {
            Ok(s) => s,
            Err(e) => {
                done.store(true, Ordering::Relaxed);
                return Err(failed(format!("cannot run srun: {e}"), String::new()));
            }
        };
        let step = Step {
            conns,
            hosts,
            env: own_environment(),
            pmi_port: pmi.number,
            job: slurm_job.parse().unwrap_or(0),
            srun,
            done,
        };
        // On an error the step is dropped, which ends srun.
        step.wait_for_proxies(&rx)
            .map_err(|(reason, ended)| failed(reason, output.text(ended)))?;
        step.done.store(true, Ordering::Relaxed);
        Ok(step)
    }

    /// Waits until every proxied rank is connected; else why not, and
    /// whether srun ended (then its output is complete).
    fn wait_for_proxies(&self, rx: &Receiver<Event>) -> Result<(), (String, bool)> {
        let mut missing: Vec<u32> = (0..self.hosts.len() as u32)
            .filter(|&r| self.hosts[r as usize].is_some())
            .collect();
        let deadline = Instant::now() + PROXY_TIMEOUT;
        let which = |missing: &[u32]| {
            let mut hosts: Vec<&str> = Vec::new();
            for &r in missing {
                if let Some(h) = self.hosts[r as usize].as_deref().filter(|h| !hosts.contains(h)) {
                    hosts.push(h);
                }
            }
            hosts.join(", ")
        };
        while !missing.is_empty() {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Event::Connected(rank)) => missing.retain(|&r| r != rank),
                Ok(Event::SrunEnded(how)) => {
                    return Err((
                        format!("srun {how} before the proxies on {} connected", which(&missing)),
                        true,
                    ));
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return Err((
                        format!(
                            "the proxies on {} did not connect back within {} s",
                            which(&missing),
                            PROXY_TIMEOUT.as_secs()
                        ),
                        false,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Sends `launch`'s request to its proxy and relays the rank.
    fn start(&self, launch: &Launch, job: &mut Job) -> Result<Started, StartError> {
        let rank = launch.rank;
        let node = self
            .hosts
            .get(rank as usize)
            .cloned()
            .flatten()
            .unwrap_or_else(|| launch.host.clone());
        let failed = |message: String| StartError::Proxy {
            rank,
            node: node.clone(),
            message,
        };
        let conn = lock_conns(&self.conns)
            .get_mut(rank as usize)
            .and_then(Option::take)
            .ok_or_else(|| failed("its proxy did not connect".into()))?;
        let (ours, theirs) = match (conn.local_addr(), conn.peer_addr()) {
            (Ok(o), Ok(t)) => (o.ip(), t.ip()),
            (Err(e), _) | (_, Err(e)) => return Err(failed(format!("its connection broke: {e}"))),
        };
        lock(&job.pmi).by_port[rank as usize] = PortPeer::From(theirs);
        let request = RankRequest {
            job: self.job,
            ..request(launch, &self.env, format!("{ours}:{}", self.pmi_port))
        };
        let via = format!("the proxy on {node}");
        start_remote(conn, request, launch, job, failed, via)
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        // Proxies not sent a request see their connection close and end.
        lock_conns(&self.conns).clear();
        self.srun.end();
    }
}

fn lock_conns(conns: &Mutex<Vec<Option<TcpStream>>>) -> MutexGuard<'_, Vec<Option<TcpStream>>> {
    conns.lock().unwrap_or_else(|e| e.into_inner())
}

/// `srun` starting `exe` as a proxy on each of `nodes`, with the counts
/// given rather than inherited.
fn srun_command(nodes: &[&str], exe: &std::path::Path) -> Command {
    let k = nodes.len();
    let mut cmd = Command::new("srun");
    cmd.args([
        "--overlap".to_string(),
        format!("--nodes={k}"),
        format!("--ntasks={k}"),
        "--ntasks-per-node=1".to_string(),
        format!("--nodelist={}", nodes.join(",")),
        "--kill-on-bad-exit=0".to_string(),
        "--input=none".to_string(),
        // The proxies' environment is mpiexec's, whatever the allocation's
        // --export said; the ranks inherit the proxy's CPUs, so srun binds
        // it to none; a proxy ending early does not end the others; no PMI
        // plugin (the ranks' PMI is mpiexec's).
        "--export=ALL".to_string(),
        "--cpu-bind=none".to_string(),
        "--wait=0".to_string(),
        "--mpi=none".to_string(),
        "--quiet".to_string(),
    ])
    .arg(exe)
    .arg(PROXY_ARG)
    .env_remove(env::SLURM_JWT)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    // Its own process group: a Ctrl-C at the terminal is mpiexec's to
    // handle, which then ends the step.
    .process_group(0);
    cmd
}

/// `HPCPACK_PROXY_RANKS`: `<host>=<rank>,<rank> …`, hosts in the order
/// they first appear.
fn ranks_by_host(hosts: &[Option<String>]) -> String {
    let mut by: Vec<(&str, Vec<String>)> = Vec::new();
    for (rank, host) in hosts.iter().enumerate() {
        let Some(host) = host else { continue };
        match by.iter_mut().find(|(h, _)| h == host) {
            Some((_, ranks)) => ranks.push(rank.to_string()),
            None => by.push((host, vec![rank.to_string()])),
        }
    }
    by.iter()
        .map(|(h, r)| format!("{h}={}", r.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ranks `HPCPACK_PROXY_RANKS` gives `host`.
fn ranks_of(v: &str, host: &str) -> Vec<u32> {
    v.split_whitespace()
        .filter_map(|item| item.split_once('='))
        .filter(|(h, _)| h.eq_ignore_ascii_case(host))
        .flat_map(|(_, ranks)| ranks.split(',').filter_map(|r| r.parse().ok()))
        .collect()
}

/// 32 random bytes as hex.
fn secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| std::io::Error::other("the system's random source failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What a proxy's proof is computed over.
const PROOF: &[u8] = b"hpcpack-proxy";

/// Whether `given` is the secret `key` was made from, in constant time:
/// ring compares the HMAC-SHA256 of one message under each key.
fn is_secret(key: &hmac::Key, given: &str) -> bool {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, given.as_bytes()), PROOF);
    hmac::verify(key, PROOF, tag.as_ref()).is_ok()
}

/// This host's IPv4 addresses, with their netmasks, in the system's order.
fn own_ipv4() -> Vec<(Ipv4Addr, Ipv4Addr)> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(a) => Some((a.ip, a.netmask)),
            if_addrs::IfAddr::V6(_) => None,
        })
        .collect()
}

/// What the acceptor needs to judge a proxy's connection.
struct Waiting {
    /// The launch's secret, as an HMAC key.
    key: hmac::Key,
    hosts: Vec<Option<String>>,
    conns: Arc<Mutex<Vec<Option<TcpStream>>>>,
    tx: Sender<Event>,
}

/// Accepts the proxies' connections until `done`; each first line is read
/// in a thread of its own, so a silent peer holds up no one.
fn accept(listener: TcpListener, waiting: Waiting, done: &AtomicBool) {
    let waiting = Arc::new(waiting);
    while !done.load(Ordering::Relaxed) {
        let mut fds = [libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // Wakes every 100 ms to see whether the launch is done.
        match sys::poll_raw(&mut fds, 100) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(_) => return,
        }
        if let Ok((conn, _)) = listener.accept() {
            let waiting = Arc::clone(&waiting);
            thread::spawn(move || handshake(conn, &waiting));
        }
    }
}

/// Keeps `conn` as its rank's when its first line is
/// `hpcpack-proxy <secret> <host> <rank>` with this launch's secret, and
/// the rank is a proxied rank of that host not connected yet.
fn handshake(conn: TcpStream, waiting: &Waiting) {
    let _ = conn.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let mut line = String::new();
    // The proxy sends nothing more before mpiexec answers, so the reader
    // buffers nothing past the line.
    if BufReader::new((&conn).take(MAX_HANDSHAKE))
        .read_line(&mut line)
        .is_err()
    {
        return;
    }
    let mut words = line.split_whitespace();
    let (Some(HELLO), Some(secret), Some(host), Some(rank), None) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return;
    };
    if !is_secret(&waiting.key, secret) {
        return;
    }
    let Ok(rank) = rank.parse::<u32>() else { return };
    let r = rank as usize;
    if !waiting
        .hosts
        .get(r)
        .and_then(Option::as_deref)
        .is_some_and(|h| h.eq_ignore_ascii_case(host))
    {
        return;
    }
    let mut conns = lock_conns(&waiting.conns);
    if r >= conns.len() || conns[r].is_some() {
        return;
    }
    let _ = conn.set_read_timeout(None);
    let _ = conn.set_nodelay(true);
    conns[r] = Some(conn);
    let _ = waiting.tx.send(Event::Connected(rank));
}

/// srun as a child: its pid until it is reaped, and its output.
struct Process {
    pid: u32,
    /// Set, under its lock, just before srun is reaped, so a signal never
    /// reaches a process that took its pid.
    ended: Mutex<bool>,
}

/// What srun printed, kept for an error message.
struct Output {
    text: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Output {
    /// The output so far; all of it once srun `ended` (its pipe then
    /// closes).
    fn text(mut self, ended: bool) -> String {
        if let Some(r) = self.reader.take().filter(|_| ended) {
            let _ = r.join();
        }
        let text = self.text.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&text)
            .lines()
            // What `--cpu-bind=none` makes srun say where Slurm binds no
            // tasks anyway: true, and no reason for a failure.
            .filter(|l| *l != "srun: cluster configuration lacks support for cpu binding")
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Process {
    /// Starts `cmd` (srun); its end is told to `tx`.
    fn spawn(mut cmd: Command, tx: Sender<Event>) -> std::io::Result<(Arc<Process>, Output)> {
        // SAFETY: the closure runs in the forked child before exec and only
        // makes an async-signal-safe system call (prctl).
        unsafe {
            cmd.pre_exec(|| sys::parent_death_signal(libc::SIGTERM));
        }
        let mut child = cmd.spawn()?;
        let process = Arc::new(Process {
            pid: child.id(),
            ended: Mutex::new(false),
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
                            let room = MAX_SRUN_OUTPUT.saturating_sub(t.len());
                            t.extend_from_slice(&buf[..n.min(room)]);
                        }
                    }
                }
            })
        });
        {
            let process = Arc::clone(&process);
            thread::spawn(move || process.wait(child, &tx));
        }
        Ok((process, Output { text, reader }))
    }

    /// Waits for srun to end, reaps it and says how it ended.
    fn wait(&self, mut child: Child, tx: &Sender<Event>) {
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
        let _ = tx.send(Event::SrunEnded(how));
    }

    fn ended(&self) -> bool {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `sig` to srun unless it ended.
    fn signal(&self, sig: i32) {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if !*ended {
            let _ = sys::kill(self.pid, sig);
        }
    }

    /// Lets srun end by itself for a moment (its proxies end once their
    /// ranks have), then SIGTERM (srun ends the step), then SIGKILL.
    fn end(&self) {
        for sig in [None, Some(libc::SIGTERM), Some(libc::SIGKILL)] {
            if let Some(sig) = sig {
                self.signal(sig);
            }
            let deadline = Instant::now() + SRUN_GRACE;
            while !self.ended() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if self.ended() {
                return;
            }
        }
    }
}

/// The CPU a proxy binds a rank to when mpiexec asked for `cpu`: itself
/// when the proxy may use it, else the proxy's CPU at the position `cpu`
/// has among mpiexec's `cpus` (its number when it is not among them).
fn proxy_cpu(cpu: u32, cpus: &[u32], allowed: &[u32]) -> u32 {
    if allowed.is_empty() || allowed.contains(&cpu) {
        return cpu;
    }
    let at = cpus.iter().position(|&c| c == cpu).unwrap_or(cpu as usize);
    allowed[at % allowed.len()]
}

/// mpiexec's addresses, those on a network of this host's first.
fn order_addrs(mut addrs: Vec<SocketAddrV4>, own: &[(Ipv4Addr, Ipv4Addr)]) -> Vec<SocketAddrV4> {
    let near = |a: &SocketAddrV4| {
        own.iter().any(|(ip, mask)| {
            let m = u32::from(*mask);
            !ip.is_loopback() && u32::from(*ip) & m == u32::from(*a.ip()) & m
        })
    };
    // Stable: the near ones first, each group in mpiexec's order.
    addrs.sort_by_key(|a| !near(a));
    addrs
}

/// How long a proxy tries one of mpiexec's addresses.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// mpiexec run as a proxy by srun on one node: connects back once per rank
/// of this node, runs each rank mpiexec asks for, and ends when they all
/// have. Everything it needs is in its environment (see the module doc).
pub fn proxy_main() -> ExitCode {
    let host = env::var(env::SLURMD_NODENAME).unwrap_or_else(sys::hostname);
    match proxy(&host) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpiexec: proxy on {host}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn proxy(host: &str) -> Result<(), String> {
    let need = |name: &str| env::var(name).ok_or_else(|| format!("{name} is not set"));
    let secret = need(env::HPCPACK_PROXY_SECRET)?;
    let ranks = ranks_of(&need(env::HPCPACK_PROXY_RANKS)?, host);
    if ranks.is_empty() {
        return Err(format!("{} gives no rank to this host", env::HPCPACK_PROXY_RANKS));
    }
    let addrs: Vec<SocketAddrV4> = need(env::HPCPACK_PROXY_ADDRS)?
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    let addrs = order_addrs(addrs, &own_ipv4());
    let cpus: Vec<u32> = env::var(env::HPCPACK_PROXY_CPUS)
        .unwrap_or_default()
        .split(',')
        .filter_map(|c| c.parse().ok())
        .collect();
    let allowed = sys::affinity().unwrap_or_default();
    // Every rank connects before any is asked for: mpiexec sends requests
    // once all proxies are in.
    let mut conns = Vec::with_capacity(ranks.len());
    for rank in ranks {
        let mut conn = connect(&addrs)?;
        conn.write_all(format!("{HELLO} {secret} {host} {rank}\n").as_bytes())
            .map_err(|e| format!("cannot reach mpiexec: {e}"))?;
        let _ = conn.set_nodelay(true);
        conns.push(conn);
    }
    let uid = sys::uid();
    let ranks: Vec<JoinHandle<()>> = conns
        .into_iter()
        .map(|mut conn| {
            let (cpus, allowed) = (cpus.clone(), allowed.clone());
            thread::spawn(move || {
                // mpiexec gone or its launch failed: nothing to run.
                let Ok(Frame::Request(mut req)) = Frame::read_from(&mut conn) else {
                    return;
                };
                req.cpu = req.cpu.map(|c| proxy_cpu(c, &cpus, &allowed));
                // Refusals go back to mpiexec, which prints them.
                crate::node::launch::serve_rank(conn, req, uid, &|_| {});
            })
        })
        .collect();
    for r in ranks {
        let _ = r.join();
    }
    Ok(())
}

/// A connection to mpiexec at the first of `addrs` that answers.
fn connect(addrs: &[SocketAddrV4]) -> Result<TcpStream, String> {
    let mut tried = Vec::new();
    for a in addrs {
        match TcpStream::connect_timeout(&SocketAddr::V4(*a), CONNECT_TIMEOUT) {
            Ok(c) => return Ok(c),
            Err(e) => tried.push(format!("{a}: {e}")),
        }
    }
    Err(format!("cannot reach mpiexec ({})", if tried.is_empty() {
        format!("{} names no address", env::HPCPACK_PROXY_ADDRS)
    } else {
        tried.join("; ")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_travel_by_host() {
        let hosts = [
            Some("node2".to_string()),
            None,
            Some("node3".to_string()),
            Some("node2".to_string()),
        ];
        let v = ranks_by_host(&hosts);
        assert_eq!(v, "node2=0,3 node3=2");
        assert_eq!(ranks_of(&v, "NODE2"), [0, 3]);
        assert_eq!(ranks_of(&v, "node3"), [2]);
        assert!(ranks_of(&v, "node1").is_empty());
    }

    #[test]
    fn the_secret_is_checked_whole() {
        let s = secret().unwrap();
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(s, secret().unwrap());
        let key = hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes());
        assert!(is_secret(&key, &s));
        assert!(!is_secret(&key, &s[..63]));
        assert!(!is_secret(&key, ""));
        let mut other = s.clone().into_bytes();
        other[0] = if other[0] == b'0' { b'1' } else { b'0' };
        assert!(!is_secret(&key, std::str::from_utf8(&other).unwrap()));
    }

    /// Sends `line` on a fresh connection and hands mpiexec's end to
    /// `handshake`; the rank it was kept for, as `rx` hears.
    fn hello(waiting: &Waiting, rx: &Receiver<Event>, line: &str) -> Option<u32> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut proxy = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        proxy.write_all(line.as_bytes()).unwrap();
        let (conn, _) = listener.accept().unwrap();
        handshake(conn, waiting);
        match rx.try_recv() {
            Ok(Event::Connected(rank)) => Some(rank),
            _ => None,
        }
    }

    #[test]
    fn a_connection_is_kept_for_the_secret_a_placed_rank_and_once() {
        let (tx, rx) = mpsc::channel();
        let s = secret().unwrap();
        let waiting = Waiting {
            key: hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes()),
            hosts: vec![Some("node2".into()), None, Some("node3".into())],
            conns: Arc::new(Mutex::new(vec![None, None, None])),
            tx,
        };
        let other = secret().unwrap();
        // Not this launch's secret, not the rank's host, a rank mpiexec
        // starts itself or has not, not the greeting, a word too many.
        for bad in [
            format!("hpcpack-proxy {other} node2 0\n"),
            format!("hpcpack-proxy {s} node3 0\n"),
            format!("hpcpack-proxy {s} node2 1\n"),
            format!("hpcpack-proxy {s} node2 9\n"),
            format!("hello {s} node2 0\n"),
            format!("hpcpack-proxy {s} node2 0 x\n"),
            "\n".to_string(),
        ] {
            assert_eq!(hello(&waiting, &rx, &bad), None, "{bad}");
        }
        let hi = |line: String| hello(&waiting, &rx, &line);
        assert_eq!(hi(format!("hpcpack-proxy {s} NODE2 0\n")), Some(0));
        // Once per rank.
        assert_eq!(hi(format!("hpcpack-proxy {s} node2 0\n")), None);
        assert_eq!(hi(format!("hpcpack-proxy {s} node3 2\n")), Some(2));
        let conns = lock_conns(&waiting.conns);
        assert!(conns[0].is_some() && conns[1].is_none() && conns[2].is_some());
    }

    #[test]
    fn a_cpu_the_proxy_may_not_use_maps_by_position() {
        // Allowed: kept.
        assert_eq!(proxy_cpu(1, &[0, 1], &[0, 1, 2, 3]), 1);
        // mpiexec's second CPU on a proxy limited to 4 and 5: the second.
        assert_eq!(proxy_cpu(3, &[2, 3], &[4, 5]), 5);
        // Past the proxy's CPUs: wraps around.
        assert_eq!(proxy_cpu(2, &[0, 1, 2], &[6, 7]), 6);
        // No list: the CPU's number is its position.
        assert_eq!(proxy_cpu(1, &[], &[8, 9]), 9);
        // The proxy's CPUs unknown: as asked.
        assert_eq!(proxy_cpu(5, &[5], &[]), 5);
    }

    #[test]
    fn addresses_on_a_network_of_this_host_come_first() {
        let a = |s: &str| s.parse::<SocketAddrV4>().unwrap();
        let own = [
            (Ipv4Addr::LOCALHOST, Ipv4Addr::new(255, 0, 0, 0)),
            (Ipv4Addr::new(10, 88, 0, 11), Ipv4Addr::new(255, 255, 255, 0)),
        ];
        let ordered = order_addrs(
            vec![a("192.0.2.2:7"), a("10.88.0.1:7"), a("127.0.0.1:7"), a("10.88.0.9:7")],
            &own,
        );
        assert_eq!(
            ordered,
            [a("10.88.0.1:7"), a("10.88.0.9:7"), a("192.0.2.2:7"), a("127.0.0.1:7")]
        );
    }
}
