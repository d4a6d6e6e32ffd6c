//! The TCP transport (MS-MPI's "sockets" channel): one connection per pair
//! of ranks, opened on first use or at init (`MSMPI_PRECONNECT`).
//!
//! Where a rank listens: with `MPICH_NETMASK`, on the first IPv4 address of
//! this host inside that network (no such interface is an error naming the
//! host's addresses); without it, on every interface, publishing its
//! non-loopback IPv4 addresses and then `127.0.0.1`. A peer on the same host
//! connects over loopback when it is published; a peer on another host
//! tries the published non-loopback addresses in order. Failures name every
//! address tried.
//!
//! The lower rank of a pair connects to the higher one and introduces itself
//! with its rank (8 bytes, little-endian); the higher one accepts until
//! that rank arrives, keeping other early connections for later. Connecting
//! never waits for the peer to accept (the kernel completes the handshake),
//! so this order cannot deadlock. `TCP_NODELAY` is set on every connection.
//!
//! A message is a 12-byte header (tag: u32, length: u64, little-endian)
//! followed by the bytes; small ones are copied behind the header and
//! written in one call, large ones written with the header in one vectored
//! write (no copy).
//!
//! Sockets are non-blocking once connected, and a rank waiting for bytes
//! polls before it sleeps, as the shared-memory transport does: a few reads
//! in a row, then reads with `sched_yield` in between for up to
//! [`YIELD_FOR`] (a rank sharing the CPU gets it), then `poll(2)`. Sleeping
//! in the kernel at once costs a scheduler wake-up per message, which on
//! loopback is most of a small message's latency. Socket buffers are left
//! to the kernel's autotuning (setting them caps them at `wmem_max`, 208
//! KiB on a stock kernel, and turns autotuning off).

use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::select::Netmask;
use super::{CommError, Transport};

/// How long one connection attempt to one address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const HEADER: usize = 12;
/// Messages up to this size are copied behind their header and written with
/// one call, so a small message is one TCP segment.
const COALESCE: usize = 16 * 1024;

/// Reads before the first yield while waiting for bytes.
const SPIN_READS: u32 = 64;
/// How long a waiting rank keeps reading with yields in between before it
/// sleeps in `poll`.
const YIELD_FOR: Duration = Duration::from_millis(2);
/// Bytes read ahead per connection.
const READ_AHEAD: usize = 64 * 1024;

/// One connection: a non-blocking socket and the bytes read ahead of it.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl Peer {
    fn new(stream: TcpStream) -> io::Result<Peer> {
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        Ok(Peer {
            stream,
            buf: vec![0; READ_AHEAD],
            pos: 0,
            len: 0,
        })
    }

    /// Waits until the socket is ready (see the module doc); `spins`
    /// counts the failed attempts so far.
    fn wait(&self, write: bool, spins: &mut u32, since: &mut Option<Instant>) -> io::Result<()> {
        *spins += 1;
        if write {
            crate::mpi::comm::sys::wait_fd(self.stream.as_raw_fd(), true, Duration::from_millis(100))?;
            return Ok(());
        }
        if *spins <= SPIN_READS {
            std::hint::spin_loop();
            return Ok(());
        }
        let start = *since.get_or_insert_with(Instant::now);
        if start.elapsed() < YIELD_FOR {
            std::thread::yield_now();
            return Ok(());
        }
        crate::mpi::comm::sys::wait_fd(self.stream.as_raw_fd(), false, Duration::from_millis(100))?;
        Ok(())
    }

    /// One non-blocking read into `dst`, waiting as needed; 0 is end of file.
    fn read_some(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let (mut spins, mut since) = (0, None);
        loop {
            match (&self.stream).read(dst) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(false, &mut spins, &mut since)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Fills `dst` from the read-ahead buffer, then the socket (straight
    /// into `dst` for large reads).
    fn read_exact(&mut self, mut dst: &mut [u8]) -> io::Result<()> {
        while !dst.is_empty() {
            if self.pos < self.len {
                let n = dst.len().min(self.len - self.pos);
                dst[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                dst = &mut dst[n..];
                continue;
            }
            let n = if dst.len() >= READ_AHEAD {
                let n = self.read_some(dst)?;
                dst = &mut dst[n..];
                n
            } else {
                let mut buf = std::mem::take(&mut self.buf);
                let n = self.read_some(&mut buf);
                self.buf = buf;
                let n = n?;
                (self.pos, self.len) = (0, n);
                n
            };
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// Writes every byte of `bufs`, waiting for room as needed.
    fn write_all(&mut self, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        let (mut spins, mut since) = (0, None);
        while !bufs.is_empty() {
            match (&self.stream).write_vectored(bufs) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(true, &mut spins, &mut since)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}


/// [`Transport`] over TCP sockets (see the module doc).
pub struct TcpTransport {
    rank: usize,
    listener: TcpListener,
    endpoint: String,
    /// Per rank, the addresses to try, in order (empty: not over TCP).
    addrs: Vec<Vec<SocketAddr>>,
    peers: Vec<Option<Peer>>,
    scratch: Vec<u8>,
}

impl TcpTransport {
    /// Opens this rank's listening socket (see the module doc for where);
    /// returns the transport and the endpoint to publish: `ip:port`
    /// addresses separated by commas. Call [`TcpTransport::with_peers`]
    /// once every rank's endpoint is known.
    pub fn listen(
        rank: usize,
        size: usize,
        netmask: Option<&Netmask>,
    ) -> Result<(TcpTransport, String), CommError> {
        let ips = interface_ips();
        let (bind, published): (Ipv4Addr, Vec<Ipv4Addr>) = match netmask {
            Some(m) => {
                let ip = ips
                    .iter()
                    .copied()
                    .find(|ip| m.contains(*ip))
                    .ok_or_else(|| CommError::NoInterface {
                        netmask: m.to_string(),
                        host: crate::node::sys::hostname(),
                        found: ips
                            .iter()
                            .map(Ipv4Addr::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                (ip, vec![ip])
            }
            None => {
                let mut p: Vec<Ipv4Addr> =
                    ips.iter().copied().filter(|ip| !ip.is_loopback()).collect();
                p.push(Ipv4Addr::LOCALHOST);
                (Ipv4Addr::UNSPECIFIED, p)
            }
        };
        let want = SocketAddr::from((bind, 0));
        let err = |source| CommError::Listen {
            addr: want.to_string(),
            source,
        };
        let listener = TcpListener::bind(want).map_err(err)?;
        let port = listener.local_addr().map_err(err)?.port();
        let endpoint = published
            .iter()
            .map(|ip| format!("{ip}:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let t = TcpTransport {
            rank,
            listener,
            endpoint: endpoint.clone(),
            addrs: Vec::new(),
            peers: (0..size).map(|_| None).collect(),
            scratch: Vec::new(),
        };
        Ok((t, endpoint))
    }

    /// Every rank's endpoint, indexed by rank (None: not reached over TCP),
    /// and whether it runs on this host.
    pub fn with_peers(mut self, peers: &[(Option<String>, bool)]) -> TcpTransport {
        self.addrs = peers
            .iter()
            .map(|(ep, same_host)| candidates(ep.as_deref().unwrap_or(""), *same_host))
            .collect();
        self
    }

    /// The addresses of `rank`, for messages.
    fn addr(&self, rank: usize) -> String {
        match self.addrs.get(rank) {
            Some(a) if !a.is_empty() => a
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            _ => "(no address)".to_string(),
        }
    }

    /// The connection to `rank`, opened if need be.
    fn peer(&mut self, rank: usize) -> Result<&mut Peer, CommError> {
        if self.peers[rank].is_none() {
            if self.rank < rank {
                self.connect(rank)?;
            } else {
                self.accept_until(rank)?;
            }
        }
        Ok(self.peers[rank]
            .as_mut()
            .expect("connection opened just above"))
    }

    fn connect(&mut self, rank: usize) -> Result<(), CommError> {
        let addrs = self.addrs.get(rank).cloned().unwrap_or_default();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "rank published no TCP address");
        for a in &addrs {
            let attempt = TcpStream::connect_timeout(a, CONNECT_TIMEOUT).and_then(|mut s| {
                s.write_all(&(self.rank as u64).to_le_bytes())?;
                Peer::new(s)
            });
            match attempt {
                Ok(p) => {
                    self.peers[rank] = Some(p);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(CommError::Connect {
            rank,
            addr: self.addr(rank),
            source: last,
        })
    }

    fn accept_until(&mut self, rank: usize) -> Result<(), CommError> {
        while self.peers[rank].is_none() {
            let err = |source| CommError::Accept {
                rank,
                addr: self.endpoint.clone(),
                source,
            };
            let (mut s, from) = self.listener.accept().map_err(err)?;
            let mut hello = [0u8; 8];
            s.read_exact(&mut hello).map_err(err)?;
            let got = u64::from_le_bytes(hello);
            let size = self.peers.len();
            let slot = usize::try_from(got)
                .ok()
                .filter(|&g| g < size && g != self.rank)
                .ok_or(CommError::BadHello {
                    addr: from.to_string(),
                    got,
                    size,
                })?;
            self.peers[slot] = Some(Peer::new(s).map_err(err)?);
        }
        Ok(())
    }
}

/// The IPv4 addresses of this host's interfaces that are up, loopback
/// included (the order the system lists them in).
fn interface_ips() -> Vec<Ipv4Addr> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// The addresses to try for a peer that published `endpoint`: loopback only
/// when it runs on this host and published it, else its other addresses.
fn candidates(endpoint: &str, same_host: bool) -> Vec<SocketAddr> {
    let all: Vec<SocketAddr> = endpoint
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    let (lo, other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        all.iter().partition(|a| a.ip().is_loopback());
    if same_host && !lo.is_empty() {
        lo
    } else if other.is_empty() {
        all
    } else {
        other
    }
}

impl Transport for TcpTransport {
    fn connect(&mut self, peer: usize) -> Result<(), CommError> {
        self.peer(peer).map(|_| ())
    }

    fn is_connected(&self, peer: usize) -> bool {
        self.peers.get(peer).is_some_and(Option::is_some)
    }

    fn send(&mut self, dest: usize, tag: u32, data: &[u8]) -> Result<(), CommError> {
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&tag.to_le_bytes());
        header[4..].copy_from_slice(&(data.len() as u64).to_le_bytes());
        let mut scratch = std::mem::take(&mut self.scratch);
        let peer = self.peer(dest)?;
        let result = if data.len() <= COALESCE {
            scratch.clear();
            scratch.extend_from_slice(&header);
            scratch.extend_from_slice(data);
            peer.write_all(&mut [IoSlice::new(&scratch)])
        } else {
            peer.write_all(&mut [IoSlice::new(&header), IoSlice::new(data)])
        };
        self.scratch = scratch;
        result.map_err(|source| CommError::Send {
            rank: dest,
            addr: self.addr(dest),
            source,
        })
    }

    fn recv(&mut self, src: usize, tag: u32, buf: &mut [u8]) -> Result<(), CommError> {
        let peer = self.peer(src)?;
        let mut header = [0u8; HEADER];
        let result = peer.read_exact(&mut header);
        let got_tag = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let got_len = u64::from_le_bytes(header[4..].try_into().expect("8 bytes"));
        let result = result.and_then(|()| {
            if got_tag == tag && got_len == buf.len() as u64 {
                peer.read_exact(buf).map(|()| true)
            } else {
                Ok(false)
            }
        });
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(CommError::Mismatch {
                rank: src,
                addr: self.addr(src),
                tag,
                len: buf.len(),
                got_tag,
                got_len,
            }),
            Err(source) => Err(CommError::Recv {
                rank: src,
                addr: self.addr(src),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_for_the_same_host_other_addresses_otherwise() {
        let ep = "10.1.2.3:4000,172.16.0.9:4000,127.0.0.1:4000";
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(candidates(ep, true), vec![addr("127.0.0.1:4000")]);
        assert_eq!(
            candidates(ep, false),
            vec![addr("10.1.2.3:4000"), addr("172.16.0.9:4000")]
        );
        // A netmask-bound rank publishes one address, used from anywhere.
        assert_eq!(candidates("10.1.2.3:5", true), vec![addr("10.1.2.3:5")]);
        assert_eq!(candidates("127.0.0.1:5", false), vec![addr("127.0.0.1:5")]);
        assert!(candidates("", true).is_empty());
    }

    #[test]
    fn netmask_picks_the_interface_or_names_the_addresses() {
        let lo = Netmask::parse("127.0.0.0/8").unwrap();
        let (_, ep) = TcpTransport::listen(0, 2, Some(&lo)).unwrap();
        assert!(ep.starts_with("127.") && !ep.contains(','), "{ep}");
        let none = Netmask::parse("203.0.113.0/24").unwrap();
        let err = TcpTransport::listen(0, 2, Some(&none))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("MPICH_NETMASK 203.0.113.0/255.255.255.0 matches no interface"),
            "{err}"
        );
        assert!(err.contains("127.0.0.1"), "{err}");
    }

    #[test]
    fn a_pair_that_cannot_connect_names_the_channel_and_addresses() {
        let (a, ea) = TcpTransport::listen(0, 2, None).unwrap();
        // Rank 1's port is closed: bind one, note it, close it.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let peers = vec![(Some(ea), true), (Some(closed.to_string()), true)];
        let mut a = a.with_peers(&peers);
        let err = a.send(1, 1, b"x").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("comm: connecting to rank 1 over sockets (TCP) at {closed}: ")),
            "{err}"
        );
        assert!(err.contains("refused"), "{err}");
        assert!(!a.is_connected(1));
    }

    #[test]
    fn two_ranks_exchange_small_and_large_messages() {
        let (a, ea) = TcpTransport::listen(0, 2, None).unwrap();
        let (b, eb) = TcpTransport::listen(1, 2, None).unwrap();
        let peers = vec![(Some(ea), true), (Some(eb), true)];
        let mut a = a.with_peers(&peers);
        let mut b = b.with_peers(&peers);
        let big: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let big2 = big.clone();
        let t = std::thread::spawn(move || {
            let mut small = [0u8; 3];
            b.recv(0, 7, &mut small).unwrap();
            let mut large = vec![0u8; big2.len()];
            b.recv(0, 8, &mut large).unwrap();
            assert!(small == *b"abc" && large == big2);
            b.send(0, 9, b"ok").unwrap();
            assert!(b.is_connected(0));
        });
        a.send(1, 7, b"abc").unwrap();
        a.send(1, 8, &big).unwrap();
        let mut ok = [0u8; 2];
        a.recv(1, 9, &mut ok).unwrap();
        t.join().unwrap();
        assert_eq!(&ok, b"ok");
    }
}
