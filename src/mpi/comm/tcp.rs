//! The TCP transport: one connection per pair of ranks, opened on first use.
//!
//! Each rank listens on `127.0.0.1` (every rank runs on this host for now:
//! mpiexec starts no remote ranks, and `MPICH_NETMASK` is not applied yet;
//! picking the interface inside the netmask comes with remote ranks). The
//! lower rank of a pair connects to the higher one and introduces itself
//! with its rank (8 bytes, little-endian); the higher one accepts until
//! that rank arrives, keeping other early connections for later. Connecting
//! never waits for the peer to accept (the kernel completes the handshake),
//! so this order cannot deadlock. `TCP_NODELAY` is set on every connection.
//!
//! A message is a 12-byte header (tag: u32, length: u64, little-endian)
//! followed by the bytes.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use super::{CommError, Transport};

const HEADER: usize = 12;
/// Messages up to this size are copied behind their header and written with
/// one call, so a small message is one TCP segment.
const COALESCE: usize = 16 * 1024;

struct Peer {
    reader: BufReader<TcpStream>,
}

/// [`Transport`] over TCP sockets (see the module doc).
pub struct TcpTransport {
    rank: usize,
    listener: TcpListener,
    endpoint: String,
    addrs: Vec<String>,
    peers: Vec<Option<Peer>>,
    scratch: Vec<u8>,
}

impl TcpTransport {
    /// Opens this rank's listening socket; returns the transport and the
    /// `host:port` to publish. Call [`TcpTransport::with_peers`] once every
    /// rank's endpoint is known.
    pub fn listen(rank: usize, size: usize) -> Result<(TcpTransport, String), CommError> {
        let want = "127.0.0.1:0";
        let listener = TcpListener::bind(want).map_err(|source| CommError::Listen {
            addr: want.to_string(),
            source,
        })?;
        let endpoint = listener
            .local_addr()
            .map_err(|source| CommError::Listen {
                addr: want.to_string(),
                source,
            })?
            .to_string();
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

    /// Every rank's endpoint, indexed by rank.
    pub fn with_peers(mut self, addrs: Vec<String>) -> TcpTransport {
        self.addrs = addrs;
        self
    }

    fn addr(&self, rank: usize) -> String {
        self.addrs.get(rank).cloned().unwrap_or_default()
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
        let addr = self.addr(rank);
        let err = |source| CommError::Connect {
            rank,
            addr: addr.clone(),
            source,
        };
        let mut s = TcpStream::connect(&addr).map_err(err)?;
        s.set_nodelay(true).map_err(err)?;
        s.write_all(&(self.rank as u64).to_le_bytes())
            .map_err(err)?;
        self.peers[rank] = Some(Peer {
            reader: BufReader::with_capacity(64 * 1024, s),
        });
        Ok(())
    }

    fn accept_until(&mut self, rank: usize) -> Result<(), CommError> {
        while self.peers[rank].is_none() {
            let err = |source| CommError::Accept {
                rank,
                addr: self.endpoint.clone(),
                source,
            };
            let (mut s, from) = self.listener.accept().map_err(err)?;
            s.set_nodelay(true).map_err(err)?;
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
            self.peers[slot] = Some(Peer {
                reader: BufReader::with_capacity(64 * 1024, s),
            });
        }
        Ok(())
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
        let s = peer.reader.get_mut();
        let result = if data.len() <= COALESCE {
            scratch.clear();
            scratch.extend_from_slice(&header);
            scratch.extend_from_slice(data);
            s.write_all(&scratch)
        } else {
            s.write_all(&header).and_then(|()| s.write_all(data))
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
        let read =
            |r: &mut BufReader<TcpStream>, b: &mut [u8]| -> io::Result<()> { r.read_exact(b) };
        let result = read(&mut peer.reader, &mut header);
        let got_tag = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let got_len = u64::from_le_bytes(header[4..].try_into().expect("8 bytes"));
        let result = result.and_then(|()| {
            if got_tag == tag && got_len == buf.len() as u64 {
                read(&mut peer.reader, buf).map(|()| true)
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
