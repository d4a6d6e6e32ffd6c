//! The TCP transport (MS-MPI's "sockets" channel): one connection per pair
//! of ranks, opened on first use or at init (`MSMPI_PRECONNECT`).
//!
//! Where a rank listens: with `MPICH_NETMASK`, on the first IPv4 address of
//! this host inside that network (no such interface is [`NoInterface`],
//! naming the host's addresses and where the netmask came from: the rank
//! then offers no sockets, see [`super`]); without it, on every interface, publishing its
//! non-loopback IPv4 addresses and then `127.0.0.1`. A peer on the same host
//! connects over loopback when it is published; a peer on another host
//! tries the published non-loopback addresses in order. Failures name every
//! address tried.
//!
//! The lower rank of a pair connects to the higher one and introduces itself
//! with its rank (8 bytes, little-endian); the higher one accepts until
//! that rank arrives, keeping other early connections for later. Connecting
//! never waits for the peer to accept (the kernel completes the handshake
//! from the listener's backlog), so this order cannot deadlock. The
//! listening socket is non-blocking: a rank takes whatever connections have
//! arrived and reads whatever introductions have come, keeping a connection
//! whose 8 bytes are not all there yet; a blocking call then sleeps in
//! `poll` on the listener (or on such a connection), while
//! [`Transport::try_send`] and [`Transport::try_recv`] toward a lower rank
//! that has not connected yet return at once with nothing done.
//! `TCP_NODELAY` is set on every connection.
//!
//! A message is a 12-byte header (tag: u32, length: u64, little-endian)
//! followed by the bytes; small ones are copied behind the header and
//! written in one call, large ones written with the header in one vectored
//! write (no copy). A receiver looks at the next header in its read-ahead
//! buffer before taking it: a header whose tag or length differs from the
//! receive's is [`CommError::Mismatch`] and stays where it is, so a later
//! receive with the right tag and size still gets the message.
//!
//! Sockets are non-blocking once connected, and the blocking and
//! non-blocking calls share every step: a step writes or reads what the
//! socket takes or has now and says "would block" when it can do no more.
//! [`Transport::try_send`] and [`Transport::try_recv`] stop there (the
//! caller's [`Partial`] keeps the cursor: `moved` counts the header and data
//! bytes written; for a receive, `stage` 1 means the header was taken and
//! `moved` counts the data bytes received, while a header that has come in
//! part waits in the read-ahead buffer). [`Transport::send`] and
//! [`Transport::recv`] wait and repeat the step, polling before they sleep,
//! as the shared-memory transport does: a few reads in a row, then reads
//! with `sched_yield` in between for up to [`YIELD_FOR`] (a rank sharing
//! the CPU gets it), then `poll(2)`. Sleeping in the kernel at once costs a
//! scheduler wake-up per message, which on loopback is most of a small
//! message's latency. Since both paths read and write the same stream
//! through the same read-ahead buffer, blocking and non-blocking messages
//! may alternate on one pair.
//!
//! [`Transport::check_peer`] peeks at a connection without waiting: end of
//! file or a reset means the peer closed it (it exited), an error naming the
//! rank. Socket buffers are left to the kernel's autotuning (setting them
//! caps them at `wmem_max`, 208 KiB on a stock kernel, and turns autotuning
//! off).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::select::{Netmask, NetmaskOrigin};
use super::sys::wait_fd;
use super::{CommError, Partial, Transport};

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
/// How long a rank waiting for a connection sleeps on one that has not
/// introduced itself before it looks at the listener again.
const HELLO_POLL: Duration = Duration::from_millis(1);
/// The longest sleep of a rank waiting for a connection (it then looks
/// again, so a wake-up it missed costs at most this).
const ACCEPT_POLL: Duration = Duration::from_millis(100);

/// `MPICH_NETMASK` matches none of this host's interfaces: the rank
/// offers no sockets endpoint, and this is why (in the card it publishes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "MPICH_NETMASK {netmask}, {origin}, matches no interface of host {host} (its IPv4 addresses: {found})"
)]
pub struct NoInterface {
    pub netmask: Netmask,
    pub origin: NetmaskOrigin,
    pub host: String,
    pub found: String,
}

/// The header of a message of `len` bytes under `tag`.
fn header_of(tag: u32, len: usize) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    header[..4].copy_from_slice(&tag.to_le_bytes());
    header[4..].copy_from_slice(&(len as u64).to_le_bytes());
    header
}

/// A header's tag and length.
fn parse_header(header: &[u8]) -> (u32, u64) {
    let tag = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let len = u64::from_le_bytes(header[4..HEADER].try_into().expect("8 bytes"));
    (tag, len)
}

/// One read from a non-blocking socket into `dst` (not empty): the bytes
/// that are there, `WouldBlock` when none are, end of file an error.
fn read_now(stream: &TcpStream, dst: &mut [u8]) -> io::Result<usize> {
    loop {
        match (&*stream).read(dst) {
            Ok(0) => return Err(closed()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The error of a connection the peer closed.
fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection was closed by the peer (did it exit?)",
    )
}

/// One connection: a non-blocking socket and the bytes read ahead of it
/// (`buf[pos..len]`).
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
            wait_fd(self.stream.as_raw_fd(), true, Duration::from_millis(100))?;
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
        wait_fd(self.stream.as_raw_fd(), false, Duration::from_millis(100))?;
        Ok(())
    }

    /// Runs `step` (which does what the socket allows now and says
    /// `WouldBlock` when it can do no more) until it is done: with `wait`,
    /// waiting for the socket between attempts; without, once, `Ok(None)`
    /// meaning not done yet. `write` says which way the step is blocked.
    fn progress<T>(
        &mut self,
        wait: bool,
        write: bool,
        mut step: impl FnMut(&mut Peer) -> io::Result<T>,
    ) -> io::Result<Option<T>> {
        let (mut spins, mut since) = (0, None);
        loop {
            match step(self) {
                Ok(done) => return Ok(Some(done)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && wait => {
                    self.wait(write, &mut spins, &mut since)?
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// The next message's tag and length, read into the read-ahead buffer
    /// as far as needed and left there (see [`Peer::take_header`]).
    fn peek_header(&mut self) -> io::Result<(u32, u64)> {
        while self.len - self.pos < HEADER {
            if self.pos == self.len {
                (self.pos, self.len) = (0, 0);
            } else if self.pos + HEADER > self.buf.len() {
                // A header cut by the end of the buffer moves to its start.
                self.buf.copy_within(self.pos..self.len, 0);
                (self.pos, self.len) = (0, self.len - self.pos);
            }
            self.len += read_now(&self.stream, &mut self.buf[self.len..])?;
        }
        Ok(parse_header(&self.buf[self.pos..self.pos + HEADER]))
    }

    /// Consumes the header [`Peer::peek_header`] returned.
    fn take_header(&mut self) {
        self.pos += HEADER;
    }

    /// Moves the bytes that are there into `dst` (not empty): the read-ahead
    /// buffer's, else one read, straight into `dst` when it is large.
    fn fill(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            if dst.len() >= READ_AHEAD {
                return read_now(&self.stream, dst);
            }
            let n = read_now(&self.stream, &mut self.buf)?;
            (self.pos, self.len) = (0, n);
        }
        let n = dst.len().min(self.len - self.pos);
        dst[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }

    /// Fills `dst` from byte `moved` on, advancing it.
    fn read_into(&mut self, dst: &mut [u8], moved: &mut usize) -> io::Result<()> {
        while *moved < dst.len() {
            *moved += self.fill(&mut dst[*moved..])?;
        }
        Ok(())
    }

    /// Writes `header` and `data` from byte `moved` of the two on, advancing
    /// it. A small message not begun yet is copied behind its header into
    /// `scratch` and written in one call; otherwise one vectored write
    /// takes what is left of both (no copy).
    fn write_from(
        &mut self,
        header: &[u8; HEADER],
        data: &[u8],
        moved: &mut usize,
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        let mut out = &self.stream;
        while *moved < HEADER + data.len() {
            let written = if *moved == 0 && data.len() <= COALESCE {
                scratch.clear();
                scratch.extend_from_slice(header);
                scratch.extend_from_slice(data);
                out.write(scratch)
            } else if *moved < HEADER {
                out.write_vectored(&[IoSlice::new(&header[*moved..]), IoSlice::new(data)])
            } else {
                out.write(&data[*moved - HEADER..])
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => *moved += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A connection accepted before its rank has introduced itself.
struct Hello {
    stream: TcpStream,
    from: SocketAddr,
    got: [u8; 8],
    n: usize,
}

/// [`Transport`] over TCP sockets (see the module doc).
pub struct TcpTransport {
    rank: usize,
    listener: TcpListener,
    endpoint: String,
    /// Per rank, the addresses to try, in order (empty: not over TCP).
    addrs: Vec<Vec<SocketAddr>>,
    peers: Vec<Option<Peer>>,
    /// Connections accepted whose rank has not introduced itself yet.
    hellos: Vec<Hello>,
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
        origin: NetmaskOrigin,
    ) -> Result<(TcpTransport, String), CommError> {
        let ips = interface_ips();
        let (bind, published): (Ipv4Addr, Vec<Ipv4Addr>) = match netmask {
            Some(m) => {
                let ip = ips
                    .iter()
                    .copied()
                    .find(|ip| m.contains(*ip))
                    .ok_or_else(|| NoInterface {
                        netmask: *m,
                        origin,
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
        // MPICH_PORT_RANGE, else this program's ports in the host's
        // firewall registry (crate::firewall), else any port.
        let range = crate::firewall::ports_for_this_program()
            .map_err(|m| err(io::Error::new(io::ErrorKind::InvalidInput, m)))?;
        let listener = crate::net::bind_in(bind.into(), range).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
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
            hellos: Vec::new(),
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

    /// The connection to `rank`, opened if need be: a higher `rank` is
    /// connected to; a lower one is waited for, or with `wait` false looked
    /// for among the connections that have arrived (`None` while it has not
    /// connected).
    fn open(&mut self, rank: usize, wait: bool) -> Result<Option<&mut Peer>, CommError> {
        if self.peers[rank].is_none() {
            if self.rank < rank {
                self.connect(rank)?;
            } else if wait {
                self.accept_until(rank)?;
            } else {
                self.accept_ready(rank)?;
            }
        }
        Ok(self.peers[rank].as_mut())
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

    /// Accepting failed while waiting for `rank`.
    fn accept_error(&self, rank: usize, source: io::Error) -> CommError {
        CommError::Accept {
            rank,
            addr: self.endpoint.clone(),
            source,
        }
    }

    /// Waits until `rank` has connected, keeping the other ranks that
    /// connect meanwhile.
    fn accept_until(&mut self, rank: usize) -> Result<(), CommError> {
        loop {
            self.accept_ready(rank)?;
            if self.peers[rank].is_some() {
                return Ok(());
            }
            let (fd, timeout) = match self.hellos.first() {
                Some(h) => (h.stream.as_raw_fd(), HELLO_POLL),
                None => (self.listener.as_raw_fd(), ACCEPT_POLL),
            };
            wait_fd(fd, false, timeout).map_err(|e| self.accept_error(rank, e))?;
        }
    }

    /// Without waiting: takes the connections that have arrived and reads
    /// what has come of their introductions; each connection introduced in
    /// full becomes its rank's (`rank`, the one looked for, names errors).
    fn accept_ready(&mut self, rank: usize) -> Result<(), CommError> {
        loop {
            match self.listener.accept() {
                Ok((stream, from)) => {
                    stream
                        .set_nonblocking(true)
                        .map_err(|e| self.accept_error(rank, e))?;
                    self.hellos.push(Hello {
                        stream,
                        from,
                        got: [0; 8],
                        n: 0,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.accept_error(rank, e)),
            }
        }
        let mut i = 0;
        while i < self.hellos.len() {
            let h = &mut self.hellos[i];
            let read = loop {
                if h.n == h.got.len() {
                    break Ok(());
                }
                match read_now(&h.stream, &mut h.got[h.n..]) {
                    Ok(n) => h.n += n,
                    Err(e) => break Err(e),
                }
            };
            match read {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    i += 1;
                    continue;
                }
                Err(e) => {
                    self.hellos.swap_remove(i);
                    return Err(self.accept_error(rank, e));
                }
                Ok(()) => {}
            }
            let h = self.hellos.swap_remove(i);
            let got = u64::from_le_bytes(h.got);
            let size = self.peers.len();
            let slot = usize::try_from(got)
                .ok()
                .filter(|&g| g < size && g != self.rank)
                .ok_or(CommError::BadHello {
                    addr: h.from.to_string(),
                    got,
                    size,
                })?;
            self.peers[slot] = Some(Peer::new(h.stream).map_err(|e| self.accept_error(rank, e))?);
        }
        Ok(())
    }

    /// Moves a send of `data` to `dest` under `tag` on from byte `moved` of
    /// header and data: to the end with `wait`, else as far as the socket
    /// takes now; whether it is done.
    fn send_from(
        &mut self,
        dest: usize,
        tag: u32,
        data: &[u8],
        moved: &mut usize,
        wait: bool,
    ) -> Result<bool, CommError> {
        let header = header_of(tag, data.len());
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.open(dest, wait).map(|peer| match peer {
            Some(p) => p.progress(wait, true, |p| {
                p.write_from(&header, data, moved, &mut scratch)
            }),
            None => Ok(None),
        });
        self.scratch = scratch;
        match result? {
            Ok(done) => Ok(done.is_some()),
            Err(source) => Err(CommError::Send {
                rank: dest,
                addr: self.addr(dest),
                source,
            }),
        }
    }

    /// Moves a receive into `buf` from `src` under `tag` on from `state`
    /// (see the module doc): to the end with `wait`, else as far as the
    /// bytes that have come allow; whether it is done.
    fn recv_from(
        &mut self,
        src: usize,
        tag: u32,
        buf: &mut [u8],
        state: &mut Partial,
        wait: bool,
    ) -> Result<bool, CommError> {
        let want = (tag, buf.len() as u64);
        let Some(peer) = self.open(src, wait)? else {
            return Ok(false);
        };
        let result = peer.progress(wait, false, |p| {
            if state.stage == 0 {
                let got = p.peek_header()?;
                if got != want {
                    return Ok(Some(got));
                }
                p.take_header();
                (state.stage, state.moved) = (1, 0);
            }
            p.read_into(buf, &mut state.moved).map(|()| None)
        });
        match result {
            Ok(None) => Ok(false),
            Ok(Some(None)) => Ok(true),
            Ok(Some(Some((got_tag, got_len)))) => Err(CommError::Mismatch {
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

/// The IPv4 addresses of this host's interfaces that are up, loopback
/// included (the order the system lists them in).
fn interface_ips() -> Vec<Ipv4Addr> {
    crate::net::ipv4_addresses().into_iter().map(|(_, ip)| ip).collect()
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
        self.open(peer, true).map(|_| ())
    }

    fn is_connected(&self, peer: usize) -> bool {
        self.peers.get(peer).is_some_and(Option::is_some)
    }

    fn send(&mut self, dest: usize, tag: u32, data: &[u8]) -> Result<(), CommError> {
        self.send_from(dest, tag, data, &mut 0, true).map(|_| ())
    }

    fn recv(&mut self, src: usize, tag: u32, buf: &mut [u8]) -> Result<(), CommError> {
        self.recv_from(src, tag, buf, &mut Partial::default(), true)
            .map(|_| ())
    }

    fn try_send(
        &mut self,
        dest: usize,
        tag: u32,
        data: &[u8],
        state: &mut Partial,
    ) -> Result<bool, CommError> {
        self.send_from(dest, tag, data, &mut state.moved, false)
    }

    fn try_recv(
        &mut self,
        src: usize,
        tag: u32,
        buf: &mut [u8],
        state: &mut Partial,
    ) -> Result<bool, CommError> {
        self.recv_from(src, tag, buf, state, false)
    }

    fn check_peer(&mut self, peer: usize) -> Result<(), CommError> {
        let Some(Some(p)) = self.peers.get(peer) else {
            return Ok(());
        };
        let gone = match p.stream.peek(&mut [0u8]) {
            Ok(0) => closed(),
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(());
            }
            Err(e) => e,
        };
        Err(CommError::Recv {
            rank: peer,
            addr: self.addr(peer),
            source: gone,
        })
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
        let (_, ep) = TcpTransport::listen(0, 2, Some(&lo), NetmaskOrigin::Env).unwrap();
        assert!(ep.starts_with("127.") && !ep.contains(','), "{ep}");
        let none = Netmask::parse("203.0.113.0/24").unwrap();
        let err = TcpTransport::listen(0, 2, Some(&none), NetmaskOrigin::Env)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(
                "MPICH_NETMASK 203.0.113.0/255.255.255.0, from mpiexec -env MPICH_NETMASK, matches no interface"
            ),
            "{err}"
        );
        assert!(err.contains("127.0.0.1"), "{err}");
    }

    #[test]
    fn a_pair_that_cannot_connect_names_the_channel_and_addresses() {
        let (a, ea) = TcpTransport::listen(0, 2, None, NetmaskOrigin::Environment).unwrap();
        // Rank 1's port is closed: bind one, note it, close it.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let peers = vec![(Some(ea), true), (Some(closed.to_string()), true)];
        let mut a = a.with_peers(&peers);
        let err = a.send(1, 1, b"x").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "comm: connecting to rank 1 over sockets (TCP) at {closed}: "
            )),
            "{err}"
        );
        assert!(err.contains("refused"), "{err}");
        assert!(!a.is_connected(1));
    }

    #[test]
    fn two_ranks_exchange_small_and_large_messages() {
        let (a, ea) = TcpTransport::listen(0, 2, None, NetmaskOrigin::Environment).unwrap();
        let (b, eb) = TcpTransport::listen(1, 2, None, NetmaskOrigin::Environment).unwrap();
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

    /// Transports for ranks `0..size` of one job on loopback.
    fn ranks(size: usize) -> Vec<TcpTransport> {
        let (ts, eps): (Vec<_>, Vec<_>) = (0..size)
            .map(|r| TcpTransport::listen(r, size, None, NetmaskOrigin::Environment).unwrap())
            .unzip();
        let peers: Vec<(Option<String>, bool)> = eps.into_iter().map(|e| (Some(e), true)).collect();
        ts.into_iter().map(|t| t.with_peers(&peers)).collect()
    }

    /// Runs `f` on a thread and fails when it has not returned within 60 s
    /// (a call that waited for a peer which only this thread drives).
    fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        let run = std::thread::spawn(move || tx.send(f()));
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(v) => v,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("the test did not finish: a non-blocking call waited")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match run.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(_) => unreachable!("the thread ended without sending"),
            },
        }
    }

    /// Calls `step` until it returns something other than `Ok(false)`,
    /// failing after 10 s.
    fn until<T>(mut step: impl FnMut() -> Result<bool, T>) -> Result<bool, T> {
        let start = Instant::now();
        loop {
            match step() {
                Ok(false) if start.elapsed() < Duration::from_secs(10) => {}
                Ok(false) => panic!("no progress in 10 s"),
                other => return other,
            }
        }
    }

    fn pattern(n: usize, seed: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * seed) % 251) as u8).collect()
    }

    #[test]
    fn crossing_large_sends_finish_when_both_ranks_are_driven_in_turn() {
        within(|| {
            let mut t = ranks(2);
            let (mut b, mut a) = (t.pop().unwrap(), t.pop().unwrap());
            let n = 8 << 20;
            let (da, db) = (pattern(n, 7), pattern(n, 13));
            let (mut ra, mut rb) = (vec![0u8; n], vec![0u8; n]);
            let mut st: [Partial; 4] = Default::default();
            let mut done = [false; 4];
            // Both send first: neither send fits in the socket buffers.
            done[0] = a.try_send(1, 3, &da, &mut st[0]).unwrap();
            done[1] = b.try_send(0, 4, &db, &mut st[1]).unwrap();
            assert!(!done[0] && st[0].moved > 0, "{:?}", st[0]);
            assert!(!done[1] && st[1].moved > 0, "{:?}", st[1]);
            while !done.iter().all(|&d| d) {
                if !done[0] {
                    done[0] = a.try_send(1, 3, &da, &mut st[0]).unwrap();
                }
                if !done[1] {
                    done[1] = b.try_send(0, 4, &db, &mut st[1]).unwrap();
                }
                if !done[2] {
                    done[2] = a.try_recv(1, 4, &mut ra, &mut st[2]).unwrap();
                }
                if !done[3] {
                    done[3] = b.try_recv(0, 3, &mut rb, &mut st[3]).unwrap();
                }
            }
            assert_eq!(st[0].moved, HEADER + n);
            assert!(ra == db, "rank 0 received other bytes");
            assert!(rb == da, "rank 1 received other bytes");
        });
    }

    #[test]
    fn many_queued_messages_arrive_in_order() {
        within(|| {
            let mut t = ranks(2);
            let (mut b, mut a) = (t.pop().unwrap(), t.pop().unwrap());
            // Sizes 0..60, one of 1 MiB and one just above COALESCE.
            let sizes: Vec<usize> = (0..3000)
                .map(|i| match i {
                    1000 => 1 << 20,
                    2000 => COALESCE + 1,
                    _ => i % 61,
                })
                .collect();
            let out: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| pattern(n, i + 1))
                .collect();
            let mut got: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0u8; n]).collect();
            let (mut s, mut r) = (0, 0);
            let (mut ss, mut rs) = (Partial::default(), Partial::default());
            // The receiver (the accepting side) starts before rank 0 connected.
            assert!(!b.try_recv(0, 0, &mut got[0], &mut rs).unwrap());
            while r < sizes.len() {
                while s < sizes.len() && a.try_send(1, s as u32, &out[s], &mut ss).unwrap() {
                    (s, ss) = (s + 1, Partial::default());
                }
                while r < sizes.len() && b.try_recv(0, r as u32, &mut got[r], &mut rs).unwrap() {
                    (r, rs) = (r + 1, Partial::default());
                }
            }
            assert!(got == out, "messages differ");
        });
    }

    /// Bytes of the stream from rank 0 that `t` has taken in so far: the
    /// introduction, the read-ahead buffer and a receive's cursor.
    fn taken(t: &TcpTransport, state: &Partial) -> usize {
        match &t.peers[0] {
            None => t.hellos.first().map_or(0, |h| h.n),
            Some(p) => {
                let body = if state.stage == 1 {
                    HEADER + state.moved
                } else {
                    0
                };
                8 + p.len - p.pos + body
            }
        }
    }

    #[test]
    fn an_introduction_and_a_header_that_come_a_byte_at_a_time_are_reassembled() {
        within(|| {
            let mut t = ranks(2);
            let mut b = t.pop().unwrap();
            let to = candidates(&b.endpoint, true)[0];
            let mut raw = TcpStream::connect(to).unwrap();
            raw.set_nodelay(true).unwrap();
            let mut stream = 0u64.to_le_bytes().to_vec();
            stream.extend_from_slice(&header_of(9, 5));
            stream.extend_from_slice(b"hello");
            let mut buf = [0u8; 5];
            let mut state = Partial::default();
            for (i, byte) in stream.iter().enumerate() {
                raw.write_all(&[*byte]).unwrap();
                let start = Instant::now();
                let mut done = false;
                while taken(&b, &state) < i + 1 {
                    done = b.try_recv(0, 9, &mut buf, &mut state).unwrap();
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "byte {i} never came"
                    );
                }
                assert_eq!(done, i + 1 == stream.len(), "after byte {i}");
                assert_eq!(taken(&b, &state), i + 1);
            }
            assert_eq!(&buf, b"hello");
            // The stream is still in step: a whole message after it.
            let mut next = header_of(10, 3).to_vec();
            next.extend_from_slice(b"end");
            raw.write_all(&next).unwrap();
            let mut end = [0u8; 3];
            b.recv(0, 10, &mut end).unwrap();
            assert_eq!(&end, b"end");
        });
    }

    #[test]
    fn non_blocking_and_blocking_messages_alternate_on_one_pair() {
        within(|| {
            let mut t = ranks(2);
            let (mut b, mut a) = (t.pop().unwrap(), t.pop().unwrap());
            let m1 = pattern(1 << 20, 3);
            let m3 = pattern(500, 5);
            let (mut r1, mut r2, mut r3) = (vec![0u8; m1.len()], [0u8; 100], vec![0u8; m3.len()]);
            let (mut s1, mut q1) = (Partial::default(), Partial::default());
            // m1 goes out in pieces while rank 1 takes it in.
            while !a.try_send(1, 1, &m1, &mut s1).unwrap() {
                b.try_recv(0, 1, &mut r1, &mut q1).unwrap();
            }
            // m2 blocking, m3 non-blocking, both sent before m1 is all in:
            // rank 1 reads them ahead with m1's last bytes.
            a.send(1, 2, &[42; 100]).unwrap();
            until(|| a.try_send(1, 3, &m3, &mut Partial::default())).unwrap();
            until(|| b.try_recv(0, 1, &mut r1, &mut q1)).unwrap();
            b.recv(0, 2, &mut r2).unwrap();
            until(|| b.try_recv(0, 3, &mut r3, &mut Partial::default())).unwrap();
            assert!(r1 == m1 && r2 == [42; 100] && r3 == m3);
            // And the other way round, starting blocking.
            b.send(0, 4, b"four").unwrap();
            until(|| b.try_send(0, 5, b"five", &mut Partial::default())).unwrap();
            b.send(0, 6, b"six").unwrap();
            let (mut f4, mut f5, mut f6) = ([0u8; 4], [0u8; 4], [0u8; 3]);
            until(|| a.try_recv(1, 4, &mut f4, &mut Partial::default())).unwrap();
            a.recv(1, 5, &mut f5).unwrap();
            until(|| a.try_recv(1, 6, &mut f6, &mut Partial::default())).unwrap();
            assert!(&f4 == b"four" && &f5 == b"five" && &f6 == b"six");
        });
    }

    #[test]
    fn a_mismatched_message_stays_for_the_right_receive() {
        within(|| {
            let mut t = ranks(2);
            let (mut b, mut a) = (t.pop().unwrap(), t.pop().unwrap());
            a.send(1, 5, b"abc").unwrap();
            a.send(1, 6, b"defg").unwrap();
            let mut state = Partial::default();
            let err = until(|| b.try_recv(0, 6, &mut [0u8; 4], &mut state)).unwrap_err();
            assert!(
                matches!(
                    err,
                    CommError::Mismatch {
                        rank: 0,
                        tag: 6,
                        len: 4,
                        got_tag: 5,
                        got_len: 3,
                        ..
                    }
                ),
                "{err}"
            );
            assert_eq!(state, Partial::default());
            let err = b.try_recv(0, 5, &mut [0u8; 4], &mut state).unwrap_err();
            assert!(
                matches!(err, CommError::Mismatch { got_len: 3, .. }),
                "{err}"
            );
            let err = b.recv(0, 7, &mut [0u8; 3]).unwrap_err().to_string();
            assert!(
                err.contains("rank 0") && err.contains("sent tag 5 with 3 bytes, expected tag 7"),
                "{err}"
            );
            let (mut abc, mut defg) = ([0u8; 3], [0u8; 4]);
            assert!(b.try_recv(0, 5, &mut abc, &mut state).unwrap());
            b.recv(0, 6, &mut defg).unwrap();
            assert!(&abc == b"abc" && &defg == b"defg");
        });
    }

    #[test]
    fn a_peer_that_closed_its_connection_is_an_error() {
        within(|| {
            let mut t = ranks(3);
            let (mut b, mut a) = (t.remove(1), t.remove(0));
            a.send(1, 1, b"x").unwrap();
            b.recv(0, 1, &mut [0u8; 1]).unwrap();
            b.check_peer(0).unwrap();
            // Unread bytes are no sign of death; an unconnected pair is left alone.
            b.send(0, 2, b"unread").unwrap();
            a.check_peer(1).unwrap();
            b.check_peer(2).unwrap();
            drop(a);
            let start = Instant::now();
            let err = loop {
                match b.check_peer(0) {
                    Ok(()) if start.elapsed() < Duration::from_secs(10) => {}
                    Ok(()) => panic!("the closed connection went unnoticed"),
                    Err(e) => break e.to_string(),
                }
            };
            assert!(
                err.starts_with("comm: receiving from rank 0 at 127.0.0.1:"),
                "{err}"
            );
            let err = b
                .try_recv(0, 3, &mut [0u8; 1], &mut Partial::default())
                .unwrap_err();
            assert!(
                err.to_string().starts_with("comm: receiving from rank 0"),
                "{err}"
            );
            let err = until(|| b.try_send(0, 4, b"y", &mut Partial::default())).unwrap_err();
            assert!(
                err.to_string().starts_with("comm: sending to rank 0"),
                "{err}"
            );
        });
    }

    #[test]
    fn the_accepting_side_does_not_wait_for_a_lower_rank_to_connect() {
        within(|| {
            let mut t = ranks(3);
            // Rank 0 is played by a raw socket below.
            let (mut c, mut b) = (t.pop().unwrap(), t.pop().unwrap());
            let mut x = [0u8; 1];
            let (mut rs, mut ss) = (Partial::default(), Partial::default());
            assert!(!c.try_recv(0, 1, &mut x, &mut rs).unwrap());
            assert!(!c.try_send(0, 2, b"y", &mut ss).unwrap());
            c.check_peer(0).unwrap();
            assert!(!c.is_connected(0) && rs == Partial::default() && ss.moved == 0);
            // Rank 1 connects first: kept while rank 2 still looks for rank 0.
            assert!(b.try_send(2, 3, b"z", &mut Partial::default()).unwrap());
            until(|| Ok::<_, CommError>(c.is_connected(1) || !c.try_recv(0, 1, &mut x, &mut rs)?))
                .unwrap();
            assert!(c.is_connected(1) && !c.is_connected(0));
            // Rank 0 introduces itself over two writes: the first half
            // leaves rank 2 with nothing to do, not waiting for the rest.
            let to = candidates(&c.endpoint, true)[0];
            let mut raw = TcpStream::connect(to).unwrap();
            raw.set_nodelay(true).unwrap();
            raw.write_all(&0u64.to_le_bytes()[..3]).unwrap();
            until(|| {
                assert!(!c.try_recv(0, 1, &mut x, &mut rs)?);
                Ok::<_, CommError>(c.hellos.first().is_some_and(|h| h.n == 3))
            })
            .unwrap();
            assert!(!c.try_recv(0, 1, &mut x, &mut rs).unwrap());
            let mut rest = 0u64.to_le_bytes()[3..].to_vec();
            rest.extend_from_slice(&header_of(1, 1));
            rest.push(b'w');
            raw.write_all(&rest).unwrap();
            until(|| c.try_recv(0, 1, &mut x, &mut rs)).unwrap();
            assert_eq!(&x, b"w");
            until(|| c.try_send(0, 2, b"y", &mut ss)).unwrap();
            let mut reply = [0u8; HEADER + 1];
            raw.read_exact(&mut reply).unwrap();
            assert_eq!(reply[..HEADER], header_of(2, 1));
            assert_eq!(reply[HEADER], b'y');
            c.recv(1, 3, &mut x).unwrap();
            assert_eq!(&x, b"z");
        });
    }
}
