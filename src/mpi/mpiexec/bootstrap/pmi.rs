//! mpiexec's PMI server as the ranks reach it: one thread per rank
//! connection, all sharing one [`Pmi`] (the pure state machine of
//! [`crate::mpi::pmi::server`] and where each rank's replies go). A rank
//! started as mpiexec's child speaks over a socket pair ([`serve_pmi`]); a
//! rank started elsewhere connects to a [`PmiListener`] over TCP and says
//! which rank it is in its first line. MPICH's PMI client cannot present a
//! secret, so what guards a TCP rank is [`PortPeer`]: a rank is accepted
//! once, and, when its bootstrap knows where it runs, from that address
//! only.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use super::{ANSWER_TIMEOUT, Report, StartError};
use crate::mpi::pmi::Server;
use crate::node::sys;

/// The PMI side of the job, shared by the connection threads.
pub struct Pmi {
    pub server: Server,
    /// Where to send each rank's replies, once it is connected.
    pub streams: Vec<Option<Box<dyn Write + Send>>>,
    /// Ranks that sent `cmd=init`.
    pub initialized: Vec<bool>,
    /// Which ranks the listener accepts a connection for (one each), and
    /// from where.
    pub by_port: Vec<PortPeer>,
}

/// Whether, and from where, a rank may connect to the [`PmiListener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPeer {
    /// Not over TCP (a socket pair), or not yet: no connection is accepted.
    No,
    /// From any address (a launch service started it, having checked the
    /// job's credential).
    Any,
    /// From this address only: the one the rank's proxy connected to
    /// mpiexec from.
    From(IpAddr),
}

impl PortPeer {
    /// Whether a connection from `ip` may be this rank's.
    pub fn admits(self, ip: Option<IpAddr>) -> bool {
        match self {
            PortPeer::No => false,
            PortPeer::Any => true,
            PortPeer::From(want) => ip == Some(want),
        }
    }
}

impl Pmi {
    /// The PMI side of a job of `size` ranks, none connected yet.
    pub fn new(server: Server, size: u32) -> Pmi {
        Pmi {
            server,
            streams: (0..size).map(|_| None).collect(),
            initialized: vec![false; size as usize],
            by_port: vec![PortPeer::No; size as usize],
        }
    }
}

pub type SharedPmi = Arc<Mutex<Pmi>>;

/// The shared PMI state, also after a thread panicked holding it.
pub fn lock(pmi: &SharedPmi) -> MutexGuard<'_, Pmi> {
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
pub(super) fn serve_pmi(rank: u32, mut reader: impl BufRead, pmi: SharedPmi, tx: Sender<Report>) {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => handle_line(rank, &line, &pmi, &tx),
        }
    }
}

/// mpiexec's PMI server on TCP, for the ranks started on other hosts or by
/// another process.
pub struct PmiListener {
    /// `PMI_PORT` for the ranks: `host:port`.
    pub port: String,
    /// The port alone, for ranks told another host part.
    pub number: u16,
}

impl PmiListener {
    /// Listens on loopback when every one of `peers` (the `host:port`
    /// addresses the ranks are started through) is on this host, else on
    /// every interface (advertised by host name); accepts in a thread of
    /// its own.
    pub fn start(
        peers: &[&str],
        pmi: SharedPmi,
        tx: Sender<Report>,
    ) -> Result<PmiListener, StartError> {
        let loopback = peers.iter().all(|s| {
            s.to_socket_addrs()
                .map(|mut a| a.all(|a| a.ip().is_loopback()))
                .unwrap_or(false)
        });
        let ip: IpAddr = if loopback {
            Ipv4Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let host = if loopback {
            ip.to_string()
        } else {
            sys::hostname()
        };
        PmiListener::bind(ip, &host, pmi, tx)
    }

    /// Listens on `ip` (in the launcher's registered ports, see
    /// [`launcher_ports`]), advertised as `host`; accepts in a thread of
    /// its own.
    pub fn bind(
        ip: IpAddr,
        host: &str,
        pmi: SharedPmi,
        tx: Sender<Report>,
    ) -> Result<PmiListener, StartError> {
        let listener = crate::net::bind_in(ip, launcher_ports()?).map_err(|source| StartError::Io {
            what: "listening for PMI connections",
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Io {
                what: "listening for PMI connections",
                source,
            })?
            .port();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (pmi, tx) = (Arc::clone(&pmi), tx.clone());
                thread::spawn(move || accept_pmi(conn, pmi, tx));
            }
        });
        Ok(PmiListener {
            port: format!("{host}:{port}"),
            number: port,
        })
    }
}

/// A PMI connection: its first line (`cmd=initack pmiid=<rank>`) says which
/// rank it is; a connection for a rank that is not expected (or not from
/// where it runs), or that has one already, is dropped.
fn accept_pmi(conn: TcpStream, pmi: SharedPmi, tx: Sender<Report>) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(ANSWER_TIMEOUT));
    let from = conn.peer_addr().ok().map(|a| a.ip());
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
        if !p.by_port[r].admits(from) || p.streams[r].is_some() {
            return;
        }
        p.streams[r] = Some(Box::new(writer));
        rank
    };
    let _ = reader.get_ref().set_read_timeout(None);
    handle_line(rank, &first, &pmi, &tx);
    serve_pmi(rank, reader, pmi, tx);
}

/// The ports mpiexec's listeners take: its registration with `hpcfwutil`
/// on this host (open in the host's HPC firewall rules), else any.
pub fn launcher_ports() -> Result<Option<(u16, u16)>, StartError> {
    crate::firewall::ports_for_this_program().map_err(|m| StartError::Io {
        what: "choosing the ports to listen on",
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, m),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rank_connects_from_where_its_bootstrap_says() {
        let proxy: IpAddr = "10.88.0.12".parse().unwrap();
        let other: IpAddr = "10.88.0.13".parse().unwrap();
        assert!(!PortPeer::No.admits(Some(proxy)));
        assert!(PortPeer::Any.admits(Some(other)));
        assert!(PortPeer::Any.admits(None));
        assert!(PortPeer::From(proxy).admits(Some(proxy)));
        assert!(!PortPeer::From(proxy).admits(Some(other)));
        assert!(!PortPeer::From(proxy).admits(None));
    }
}

