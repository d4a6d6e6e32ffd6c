//! A minimal communicator for our own ranks (`mpipingpong`): rank, size,
//! blocking point-to-point messages and a barrier.
//!
//! [`Comm::init`] connects to the launcher's PMI server
//! ([`crate::mpi::pmi::Client::from_env`]), opens the rank's endpoint,
//! publishes it and the rank's node name in the job's key-value space
//! (`addr-<rank>`, `node-<rank>`) and waits at a PMI barrier, so every rank
//! can reach every other afterwards. Messages go through a [`Transport`];
//! [`tcp::TcpTransport`] is the only one for now (shared memory and verbs
//! come later).
//!
//! Semantics are deliberately smaller than MPI's: a receive names its source,
//! tag and exact size, and messages between two ranks are received in the
//! order they were sent; a message whose tag or size differs from the one
//! expected is an error ([`CommError::Mismatch`]), not queued.

pub mod shm;
mod sys;
pub mod tcp;

use std::io;

use thiserror::Error;

use crate::env;
use crate::mpi::pmi::{Client, ClientError, EnvStream};

pub use tcp::TcpTransport;

/// Why a communicator call failed; messages name the peer rank and address.
#[derive(Debug, Error)]
pub enum CommError {
    #[error("comm init: {0}")]
    Pmi(#[from] ClientError),
    #[error("comm: listening on {addr}: {source}")]
    Listen { addr: String, source: io::Error },
    #[error("comm: rank {rank} published no address (key {key}) in the pmi key-value space")]
    NoAddress { rank: usize, key: String },
    #[error("comm: connecting to rank {rank} at {addr}: {source}")]
    Connect {
        rank: usize,
        addr: String,
        source: io::Error,
    },
    #[error("comm: accepting a connection on {addr} while waiting for rank {rank}: {source}")]
    Accept {
        rank: usize,
        addr: String,
        source: io::Error,
    },
    #[error("comm: sending to rank {rank} at {addr}: {source}")]
    Send {
        rank: usize,
        addr: String,
        source: io::Error,
    },
    #[error("comm: receiving from rank {rank} at {addr}: {source}")]
    Recv {
        rank: usize,
        addr: String,
        source: io::Error,
    },
    #[error(
        "comm: rank {rank} at {addr} sent tag {got_tag} with {got_len} bytes, expected tag {tag} with {len} bytes"
    )]
    Mismatch {
        rank: usize,
        addr: String,
        tag: u32,
        len: usize,
        got_tag: u32,
        got_len: u64,
    },
    #[error("comm: a peer on {addr} introduced itself as rank {got}, which is not in 0..{size}")]
    BadHello { addr: String, got: u64, size: usize },
    #[error("comm: rank {rank} is not in this job of {size} ranks")]
    NoSuchRank { rank: usize, size: usize },
    #[error("comm: shared memory with rank {rank}: {what}: {source}")]
    Shm {
        rank: usize,
        what: String,
        source: io::Error,
    },
    #[error("comm: rank {rank} (pid {pid}) exited while this rank was waiting for it")]
    PeerGone { rank: usize, pid: u32 },
}

/// How bytes move between two ranks: a few required methods, so shared
/// memory and verbs can sit beside [`TcpTransport`].
pub trait Transport {
    /// Sends `data` to `dest` under `tag`; returns once the buffer may be
    /// reused (not necessarily once `dest` received it).
    fn send(&mut self, dest: usize, tag: u32, data: &[u8]) -> Result<(), CommError>;
    /// Receives exactly `buf.len()` bytes sent by `src` under `tag`.
    fn recv(&mut self, src: usize, tag: u32, buf: &mut [u8]) -> Result<(), CommError>;
    /// Opens the way to `peer` now rather than on first use
    /// (`MSMPI_PRECONNECT`). Both ends call it for their pair.
    fn connect(&mut self, peer: usize) -> Result<(), CommError>;
    /// Whether the way to `peer` is open (for the connectivity table).
    fn is_connected(&self, peer: usize) -> bool;
}

/// One rank's view of the job.
pub struct Comm {
    pmi: Client<EnvStream>,
    rank: usize,
    size: usize,
    nodes: Vec<String>,
    transport: Box<dyn Transport>,
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comm")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl Comm {
    /// Joins the job started by the launcher (see the module doc).
    pub fn init() -> Result<Comm, CommError> {
        let mut pmi = Client::<EnvStream>::from_env()?;
        pmi.init()?;
        let rank = pmi.rank() as usize;
        let size = pmi.size() as usize;
        let node = own_node_name();
        let (transport, endpoint) = TcpTransport::listen(rank, size)?;
        pmi.put(&format!("addr-{rank}"), &endpoint)?;
        pmi.put(&format!("node-{rank}"), &node)?;
        pmi.barrier()?;
        let mut addrs = Vec::with_capacity(size);
        let mut nodes = Vec::with_capacity(size);
        for r in 0..size {
            let key = format!("addr-{r}");
            let addr = pmi
                .get(&key)?
                .ok_or(CommError::NoAddress { rank: r, key })?;
            addrs.push(addr);
            let key = format!("node-{r}");
            nodes.push(pmi.get(&key)?.unwrap_or_else(|| format!("rank {r}")));
        }
        let transport = transport.with_peers(addrs);
        Ok(Comm {
            pmi,
            rank,
            size,
            nodes,
            transport: Box::new(transport),
        })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The node `rank` runs on, as that rank published it (see
    /// [`own_node_name`]); `?` past the end.
    pub fn host_of(&self, rank: usize) -> &str {
        self.nodes.get(rank).map(String::as_str).unwrap_or("?")
    }

    fn check(&self, rank: usize) -> Result<(), CommError> {
        if rank < self.size {
            Ok(())
        } else {
            Err(CommError::NoSuchRank {
                rank,
                size: self.size,
            })
        }
    }

    /// Blocking send of `data` to `dest` under `tag`.
    pub fn send(&mut self, dest: usize, tag: u32, data: &[u8]) -> Result<(), CommError> {
        self.check(dest)?;
        self.transport.send(dest, tag, data)
    }

    /// Blocking receive of exactly `buf.len()` bytes from `src` under `tag`.
    pub fn recv(&mut self, src: usize, tag: u32, buf: &mut [u8]) -> Result<(), CommError> {
        self.check(src)?;
        self.transport.recv(src, tag, buf)
    }

    /// Waits for every rank (a PMI barrier).
    pub fn barrier(&mut self) -> Result<(), CommError> {
        Ok(self.pmi.barrier()?)
    }

    /// Leaves the job: a last barrier, so no rank closes its sockets while
    /// a peer still reads, then `PMI_Finalize`.
    pub fn finalize(mut self) -> Result<(), CommError> {
        self.pmi.barrier()?;
        drop(self.transport);
        Ok(self.pmi.finalize()?)
    }

    /// Asks the launcher to end the whole job with `code`; the caller exits
    /// with `code` right after.
    pub fn abort(self, code: i32) -> Result<(), CommError> {
        Ok(self.pmi.abort(code)?)
    }
}

/// The node this rank runs on: the name mpiexec placed it on
/// (`HPCPACK_NODE_NAME`), else this host's name (another launcher).
pub fn own_node_name() -> String {
    crate::env::var(env::HPCPACK_NODE_NAME).unwrap_or_else(crate::node::sys::hostname)
}
