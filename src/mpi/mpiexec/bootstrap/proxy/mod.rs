//! Ranks started on other hosts by proxies, what [`super::Srun`] and
//! [`super::Ssh`] share. A proxy is mpiexec itself in a hidden mode
//! ([`serve`]), started on each remote host by a launcher command
//! ([`launcher`]: one `srun` step for all hosts, or one `ssh` per host);
//! the hosts share mpiexec's filesystem, so the proxy is the same
//! executable at the same path, as MPICH's Hydra assumes of its own.
//!
//! [`Proxies::open`] listens on every interface, makes a secret for this
//! launch and starts the launchers with each proxy's [`Settings`]: the
//! secret, mpiexec's addresses, which ranks run where and the CPUs of
//! `-affinity`. They travel in the proxy's environment (srun passes
//! mpiexec's) or on its standard input (ssh passes no environment), never
//! in argv, which other users can read through `ps`.
//!
//! A proxy opens one connection per rank of its host and sends one line,
//! `hpcpack-proxy <secret> <host> <rank>`; mpiexec keeps a connection whose
//! secret matches (compared in constant time), whose rank is placed on that
//! host and not yet connected. Once every proxied rank is connected (or a
//! launcher ended, or [`PROXY_TIMEOUT`] passed: then the launch fails with
//! a [`Failure`] naming the launcher, and no rank has started),
//! [`Proxies::start`] sends each rank's request on its connection and the
//! rank is relayed as a launch service's is ([`super::remote`]); the proxy
//! runs it as the launch service's `run-rank` does
//! ([`crate::node::launch::serve_rank`]): its own session, killed when the
//! connection closes or says `Kill`, dead with its proxy.
//!
//! PMI is over TCP: a proxied rank's `PMI_PORT` is the address its proxy
//! reached mpiexec on, and mpiexec's PMI listener takes that rank's
//! connection from the proxy's address only ([`PortPeer::From`]).
//!
//! When the launch ends the launchers are ended ([`launcher::end_all`]);
//! if mpiexec dies they get SIGTERM, and each proxy loses its connections
//! (and, under ssh, its standard input) and kills its ranks.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use ring::hmac;

use super::children::Children;
use super::pmi::{PmiListener, PortPeer, lock};
use super::remote::{own_environment, request, start_remote};
use super::{Bootstrap, Job, Launch, StartError, Started};
use crate::env;
use crate::mpi::mpiexec::local::Local;
use crate::node::protocol::RankRequest;
use crate::node::sys;

mod launcher;
mod serve;

pub use serve::{PROXY_ARG, PROXY_STDIN_ARG, ProxySource, proxy_main};

/// How long the proxies have to start and connect back, all of them.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection may take to send its first line.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest first line a proxy sends.
const MAX_HANDSHAKE: u64 = 512;

/// What the first line of a proxy's connection starts with.
const HELLO: &str = "hpcpack-proxy";

/// What a proxy needs to know, each under the name of its variable.
pub(super) struct Settings {
    /// [`env::HPCPACK_PROXY_SECRET`].
    secret: String,
    /// [`env::HPCPACK_PROXY_ADDRS`].
    addrs: String,
    /// [`env::HPCPACK_PROXY_RANKS`].
    ranks: String,
    /// [`env::HPCPACK_PROXY_CPUS`].
    cpus: String,
}

impl Settings {
    /// As variables of the proxies' environment.
    pub(super) fn vars(&self) -> [(&'static str, &str); 4] {
        [
            (env::HPCPACK_PROXY_SECRET, &self.secret),
            (env::HPCPACK_PROXY_ADDRS, &self.addrs),
            (env::HPCPACK_PROXY_RANKS, &self.ranks),
            (env::HPCPACK_PROXY_CPUS, &self.cpus),
        ]
    }

    /// As the standard input of the proxy on `host` ([`PROXY_STDIN_ARG`]):
    /// one `NAME=value` line each, its host's name as mpiexec knows it
    /// ([`env::HPCPACK_PROXY_HOST`]) among them, then an empty line.
    pub(super) fn input_for(&self, host: &str) -> String {
        let mut text = format!("{}={host}\n", env::HPCPACK_PROXY_HOST);
        for (name, value) in self.vars() {
            text.push_str(&format!("{name}={value}\n"));
        }
        text.push('\n');
        text
    }
}

/// One command that starts the proxies of `hosts`, given `stdin` (then
/// held open until the launch ends) or no input.
pub(super) struct LaunchCommand {
    pub cmd: Command,
    pub stdin: Option<String>,
    pub hosts: Vec<String>,
}

/// Why the proxies of a launch did not all connect back; nothing started.
pub(super) struct Failure {
    /// The hosts of the launcher at fault: the one that ended or could not
    /// start, else the first whose proxies are missing.
    pub hosts: Vec<String>,
    /// Why, as a sentence without its full stop.
    pub reason: String,
    /// What that launcher printed on its standard error (all of it when it
    /// ended).
    pub output: String,
}

/// The proxies of a launch: their connections until `start` takes them,
/// and the launchers until they end.
pub(super) struct Proxies {
    conns: Arc<Mutex<Vec<Option<TcpStream>>>>,
    /// Each rank's host when a proxy runs it.
    hosts: Vec<Option<String>>,
    /// mpiexec's environment, which the ranks start from as children do.
    env: Vec<(String, String)>,
    /// The PMI listener's port.
    pmi_port: u16,
    /// The job id the ranks' requests carry.
    job: u64,
    /// The launcher's name, for messages (`srun`, `ssh`).
    via: &'static str,
    launchers: Vec<Arc<launcher::Process>>,
    /// Tells the acceptor to stop.
    done: Arc<AtomicBool>,
}

/// The ranks of a bootstrap that starts those of this host as
/// [`Children`] and the others through proxies: what [`super::Srun`] and
/// [`super::Ssh`] hold alike.
pub(super) struct Split {
    pub children: Children,
    /// The CPUs mpiexec may run on, which `-affinity` spreads ranks over.
    cpus: Vec<u32>,
    /// What starts the proxies (`srun`, `ssh`), for messages.
    via: &'static str,
    /// Set by `open` once some rank goes through a proxy.
    proxies: Option<Proxies>,
}

impl Split {
    pub(super) fn new(local: Local, via: &'static str) -> Split {
        Split {
            cpus: local.cpus.clone(),
            children: Children::new(local),
            via,
            proxies: None,
        }
    }

    /// Whether `launch` goes through a proxy rather than being a child.
    pub(super) fn proxied(&self, launch: &Launch) -> bool {
        self.children.reach(&launch.host).is_err()
    }

    pub(super) fn how(&self, launch: &Launch) -> String {
        if self.proxied(launch) {
            format!("through {}, by the proxy on {}", self.via, launch.host)
        } else {
            self.children.how(launch)
        }
    }

    /// Starts the proxies of the launches not on this host, each on the
    /// host `host_of` names for it, as [`Proxies::open`] does with
    /// `slurm_job`, `commands` and `failed`; nothing when every rank is a
    /// child.
    pub(super) fn open(
        &mut self,
        launches: &[Launch],
        host_of: impl Fn(&Launch) -> String,
        slurm_job: u64,
        job: &Job,
        commands: impl FnOnce(&Settings, &[&str], &Path) -> Vec<LaunchCommand>,
        failed: impl Fn(Failure) -> StartError,
    ) -> Result<(), StartError> {
        let mut hosts: Vec<Option<String>> = Vec::new();
        for l in launches {
            let r = l.rank as usize;
            if hosts.len() <= r {
                hosts.resize(r + 1, None);
            }
            hosts[r] = self.proxied(l).then(|| host_of(l));
        }
        if hosts.iter().all(Option::is_none) {
            return Ok(());
        }
        let proxies = Proxies::open(hosts, &self.cpus, slurm_job, job, self.via, commands, failed)?;
        self.proxies = Some(proxies);
        Ok(())
    }

    pub(super) fn start(&self, launch: &Launch, job: &mut Job) -> Result<Started, StartError> {
        match &self.proxies {
            Some(p) if self.proxied(launch) => p.start(launch, job),
            _ => self.children.start(launch, job),
        }
    }
}

/// What the acceptor and the launchers' waiters tell `open`.
pub(super) enum Event {
    Connected(u32),
    /// Launcher number `launcher` ended, as `how` says.
    Ended { launcher: usize, how: String },
}

impl Proxies {
    /// Listens, starts the launchers that `commands` makes from the
    /// proxies' settings, their hosts (in the order they first appear among
    /// `hosts`) and mpiexec's executable, and waits until every proxied
    /// rank's connection is in. `hosts` are each rank's host when a proxy
    /// runs it, `cpus` those mpiexec may run on, `slurm_job` the id the
    /// requests carry, `via` the launcher's name; `failed` makes the error
    /// of a launch whose proxies did not all connect.
    fn open(
        hosts: Vec<Option<String>>,
        cpus: &[u32],
        slurm_job: u64,
        job: &Job,
        via: &'static str,
        commands: impl FnOnce(&Settings, &[&str], &Path) -> Vec<LaunchCommand>,
        failed: impl Fn(Failure) -> StartError,
    ) -> Result<Proxies, StartError> {
        let io = |what| move |source| StartError::Io { what, source };
        let listener = crate::net::bind_in(Ipv4Addr::UNSPECIFIED.into(), super::pmi::launcher_ports()?)
            .map_err(io("listening for the proxies"))?;
        let port = listener
            .local_addr()
            .map_err(io("listening for the proxies"))?
            .port();
        let secret = secret().map_err(io("drawing the launch's secret"))?;
        let addrs: Vec<String> = serve::own_ipv4()
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
        let exe = std::env::current_exe().map_err(io("finding mpiexec's own executable"))?;
        let settings = Settings {
            secret,
            addrs: addrs.join(","),
            ranks: ranks_by_host(&hosts),
            cpus: cpus.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
        };
        // One proxy per host, in the order the hosts first appear.
        let mut nodes: Vec<&str> = Vec::new();
        for h in hosts.iter().flatten() {
            if !nodes.contains(&h.as_str()) {
                nodes.push(h);
            }
        }
        let commands = commands(&settings, &nodes, &exe);

        let (tx, rx) = mpsc::channel();
        let conns = Arc::new(Mutex::new((0..hosts.len()).map(|_| None).collect()));
        let done = Arc::new(AtomicBool::new(false));
        {
            let waiting = Waiting {
                key: hmac::Key::new(hmac::HMAC_SHA256, settings.secret.as_bytes()),
                hosts: hosts.clone(),
                conns: Arc::clone(&conns),
                tx: tx.clone(),
            };
            let done = Arc::clone(&done);
            thread::spawn(move || accept(listener, waiting, &done));
        }
        let mut proxies = Proxies {
            conns,
            hosts,
            env: own_environment(),
            pmi_port: pmi.number,
            job: slurm_job,
            via,
            launchers: Vec::new(),
            done,
        };
        let mut outputs = Vec::new();
        let mut served = Vec::new();
        for (i, c) in commands.into_iter().enumerate() {
            match launcher::Process::spawn(c.cmd, c.stdin.as_deref(), i, tx.clone()) {
                Ok((process, output)) => {
                    proxies.launchers.push(process);
                    outputs.push(output);
                }
                // Dropping the proxies ends the launchers started so far.
                Err(e) => {
                    return Err(failed(Failure {
                        hosts: c.hosts,
                        reason: format!("cannot run {via}: {e}"),
                        output: String::new(),
                    }));
                }
            }
            served.push(c.hosts);
        }
        drop(tx);
        // On a failure the proxies are dropped, which ends the launchers.
        if let Err((launcher, reason, ended)) = proxies.wait_for_proxies(&rx, &served) {
            let output = outputs
                .get_mut(launcher)
                .map(|o| o.text(ended))
                .unwrap_or_default();
            return Err(failed(Failure {
                hosts: served.get(launcher).cloned().unwrap_or_default(),
                reason,
                output,
            }));
        }
        proxies.done.store(true, Ordering::Relaxed);
        Ok(proxies)
    }

    /// Waits until every proxied rank is connected; else the launcher at
    /// fault (`served` are the hosts of each), why, and whether it ended
    /// (then its output is complete).
    fn wait_for_proxies(
        &self,
        rx: &Receiver<Event>,
        served: &[Vec<String>],
    ) -> Result<(), (usize, String, bool)> {
        let mut missing: Vec<u32> = (0..self.hosts.len() as u32)
            .filter(|&r| self.hosts[r as usize].is_some())
            .collect();
        let deadline = Instant::now() + PROXY_TIMEOUT;
        // The hosts of the missing ranks, those of launcher `of` only when
        // it has any.
        let which = |missing: &[u32], of: Option<usize>| {
            let mut hosts: Vec<&str> = Vec::new();
            for &r in missing {
                if let Some(h) = self.hosts[r as usize].as_deref().filter(|h| !hosts.contains(h)) {
                    hosts.push(h);
                }
            }
            let theirs: Vec<&str> = match of.and_then(|l| served.get(l)) {
                Some(s) => hosts.iter().copied().filter(|h| s.iter().any(|x| x == h)).collect(),
                None => Vec::new(),
            };
            if theirs.is_empty() { hosts } else { theirs }.join(", ")
        };
        while !missing.is_empty() {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Event::Connected(rank)) => missing.retain(|&r| r != rank),
                Ok(Event::Ended { launcher, how }) => {
                    let hosts = which(&missing, Some(launcher));
                    let reason = format!("{} {how} before the proxies on {hosts} connected", self.via);
                    return Err((launcher, reason, true));
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    let first = missing.first().and_then(|&r| self.hosts[r as usize].as_deref());
                    let launcher = served
                        .iter()
                        .position(|s| first.is_some_and(|f| s.iter().any(|h| h == f)))
                        .unwrap_or(0);
                    let reason = format!(
                        "the proxies on {} did not connect back within {} s",
                        which(&missing, None),
                        PROXY_TIMEOUT.as_secs()
                    );
                    return Err((launcher, reason, false));
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
            via: self.via,
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

impl Drop for Proxies {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        // Proxies not sent a request see their connection close and end.
        lock_conns(&self.conns).clear();
        launcher::end_all(&self.launchers);
    }
}

fn lock_conns(conns: &Mutex<Vec<Option<TcpStream>>>) -> MutexGuard<'_, Vec<Option<TcpStream>>> {
    conns.lock().unwrap_or_else(|e| e.into_inner())
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

/// 32 random bytes as hex.
fn secret() -> std::io::Result<String> {
    crate::node::sys::random_hex(32)
}

/// What a proxy's proof is computed over.
const PROOF: &[u8] = b"hpcpack-proxy";

/// Whether `given` is the secret `key` was made from, in constant time:
/// ring compares the HMAC-SHA256 of one message under each key.
fn is_secret(key: &hmac::Key, given: &str) -> bool {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, given.as_bytes()), PROOF);
    hmac::verify(key, PROOF, tag.as_ref()).is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use super::serve::ranks_of;

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
}
