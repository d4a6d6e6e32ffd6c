//! A minimal communicator for our own ranks (`mpipingpong`): rank, size,
//! blocking and non-blocking ([`requests`]) point-to-point messages and a
//! barrier, over a channel chosen per pair of ranks.
//!
//! [`Comm::init`] connects to the launcher's PMI server
//! ([`crate::mpi::pmi::Client::from_env`]), reads the channel settings
//! ([`select::Settings`]: `MSMPI_DISABLE_SHM`, `MSMPI_DISABLE_SOCK`,
//! `MSMPI_PRECONNECT`, `MPICH_NETMASK`, `MSMPI_CONNECTIVITY_TABLE`), opens an
//! endpoint per enabled channel, publishes them with its node and host in
//! the job's key-value space (`card-<rank>`, a [`select::Card`]) and waits
//! at a PMI barrier. Then each pair's channel is fixed by
//! [`select::choose`]: [`ShmTransport`] between ranks of one host,
//! [`VerbsTransport`] (RDMA, MS-MPI's Network Direct) when both ranks have
//! a usable device, [`TcpTransport`] otherwise. A
//! pair with no channel fails on first use with a message naming each
//! channel and why it was out; nothing falls back silently.
//!
//! `MPICH_NETMASK` concerns sockets (and picks the verbs port): a rank with
//! no interface in it offers no sockets endpoint and publishes why, naming
//! where the netmask came from ([`select::NetmaskOrigin`]); only a pair
//! that then has no other channel fails. The card also carries the CPUs the
//! rank may run on, so `mpipingpong` can tell pairs that share one.
//!
//! Semantics are deliberately smaller than MPI's: a receive names its source,
//! tag and exact size, and messages between two ranks are received in the
//! order they were sent; a message whose tag or size differs from the one
//! expected is an error ([`CommError::Mismatch`]) and stays where it is, to
//! be received by the call that names it.

mod requests;
pub mod select;
pub mod shm;
pub(crate) mod sys;
pub mod tcp;
pub mod verbs;

use std::io::{self, Write};

use thiserror::Error;

use crate::env;
use crate::mpi::pmi::{Client, ClientError, EnvStream};

pub use requests::Request;
pub use select::Channel;
use select::{Card, NoPath, Row, Settings};
pub use shm::ShmTransport;
pub use tcp::TcpTransport;
pub use verbs::VerbsTransport;

/// Why a communicator call failed; messages name the peer rank and address.
#[derive(Debug, Error)]
pub enum CommError {
    #[error("comm init: {0}")]
    Pmi(#[from] ClientError),
    #[error("comm: listening on {addr}: {source}")]
    Listen { addr: String, source: io::Error },
    #[error("comm: rank {rank} published no address (key {key}) in the pmi key-value space")]
    NoAddress { rank: usize, key: String },
    #[error("comm: connecting to rank {rank} over sockets (TCP) at {addr}: {source}{}", firewall_hint(.source))]
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
    #[error("comm: {0}")]
    NoInterface(#[from] tcp::NoInterface),
    #[error("comm: {0}")]
    Setting(#[from] select::SettingError),
    #[error("comm: {0}")]
    NoPath(#[from] select::NoPath),
    #[error("comm: rank {rank} published an unreadable card {value:?} in the pmi key-value space")]
    BadCard { rank: usize, value: String },
    #[error("comm: {what} rank {rank} over network direct (RDMA verbs) at {addr}: {source}")]
    Verbs {
        rank: usize,
        addr: String,
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
    /// Moves a send of `data` to `dest` under `tag` forward without waiting
    /// for the peer; `Ok(true)` once `data` may be reused. The caller
    /// (the request engine of [`Comm`]) starts with `Partial::default()` and
    /// passes the same `data` and `state` until then; it has at most one
    /// send per peer in progress and calls no blocking [`Transport::send`]
    /// toward that peer meanwhile.
    fn try_send(
        &mut self,
        dest: usize,
        tag: u32,
        data: &[u8],
        state: &mut Partial,
    ) -> Result<bool, CommError>;
    /// Moves a receive of exactly `buf.len()` bytes from `src` under `tag`
    /// forward without waiting; `Ok(true)` once `buf` holds the message.
    /// Same contract as [`Transport::try_send`], per direction.
    fn try_recv(
        &mut self,
        src: usize,
        tag: u32,
        buf: &mut [u8],
        state: &mut Partial,
    ) -> Result<bool, CommError>;
    /// [`CommError::PeerGone`] when `peer` is known to have exited. The
    /// request engine asks after about 100 ms without progress, since
    /// `try_*` never waits long enough to notice a dead peer by itself.
    fn check_peer(&mut self, peer: usize) -> Result<(), CommError>;
}

/// Where a message under [`Transport::try_send`] or
/// [`Transport::try_recv`] stands: the transport's cursor, which the caller
/// keeps between calls. The fields mean what the transport says; a new
/// message starts from `Partial::default()`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Partial {
    /// The message's stage (0: not started).
    pub stage: u32,
    /// Bytes moved so far.
    pub moved: usize,
    /// A word of the transport's (a rendezvous sequence number, say).
    pub word: u64,
    /// Bytes of the transport's (a partly read header, say).
    pub bytes: [u8; 32],
}

/// One rank's view of the job.
pub struct Comm {
    pmi: Client<EnvStream>,
    rank: usize,
    size: usize,
    settings: Settings,
    cards: Vec<Card>,
    /// The channel to each rank (this rank's own entry is never used).
    routes: Vec<Result<Channel, NoPath>>,
    shm: Option<ShmTransport>,
    tcp: Option<TcpTransport>,
    nd: Option<VerbsTransport>,
    /// Ranks a message went to or came from: their channel is open in both
    /// directions as far as the connectivity table is concerned, even when
    /// the transport opens a direction lazily (shared memory maps a peer's
    /// segment only to send to it).
    used: Vec<bool>,
    /// Non-blocking requests in progress ([`requests`]).
    engine: requests::Engine,
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comm")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("cards", &self.cards)
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
        let settings = Settings::from_env(&|k| crate::env::var(k), size)?;
        let (shm, shm_ep) = match settings.shm {
            true => {
                let (t, ep) = ShmTransport::create(rank, size)?;
                (Some(t), Some(ep))
            }
            false => (None, None),
        };
        let netmask = settings.netmask.as_ref();
        let (tcp, sock_ep, sock_missing) = match settings.sock {
            true => match TcpTransport::listen(rank, size, netmask, settings.netmask_origin) {
                Ok((t, ep)) => (Some(t), Some(ep), String::new()),
                // A netmask concerns sockets only: this rank offers none,
                // and only a pair that needs them fails, saying why.
                Err(CommError::NoInterface(why)) => (None, None, why.to_string()),
                Err(e) => return Err(e),
            },
            false => (
                None,
                None,
                format!("disabled by {}=1", env::MSMPI_DISABLE_SOCK),
            ),
        };
        let (nd, nd_ep, nd_missing) = match settings.nd {
            true => match VerbsTransport::open(rank, size, settings.netmask.as_ref()) {
                Ok((t, ep)) => (Some(t), Some(ep), String::new()),
                Err(why) => (None, None, why),
            },
            false => (
                None,
                None,
                format!("disabled by {}=1", env::MSMPI_DISABLE_ND),
            ),
        };
        let card = Card {
            node: own_node_name(),
            host: this_host(),
            shm: shm_ep,
            sock: sock_ep,
            nd: nd_ep,
            nd_missing,
            sock_missing,
            cpus: crate::node::sys::affinity().unwrap_or_default(),
        };
        if let Some(t) = &nd {
            for (key, value) in t.qpn_entries() {
                pmi.put(&key, &value)?;
            }
        }
        pmi.put(&format!("card-{rank}"), &card.encode())?;
        pmi.barrier()?;
        let mut cards = Vec::with_capacity(size);
        for r in 0..size {
            let key = format!("card-{r}");
            let value = pmi
                .get(&key)?
                .ok_or(CommError::NoAddress { rank: r, key })?;
            cards.push(Card::decode(&value).ok_or(CommError::BadCard { rank: r, value })?);
        }
        let routes: Vec<Result<Channel, NoPath>> = (0..size)
            .map(|p| select::choose(rank, &cards[rank], p, &cards[p]))
            .collect();
        let on = |c: Channel, p: usize| matches!(routes[p], Ok(x) if x == c) && p != rank;
        let shm = shm.map(|t| {
            t.with_peers(
                (0..size)
                    .map(|p| on(Channel::Shm, p).then(|| cards[p].shm.clone()).flatten())
                    .collect(),
            )
        });
        let tcp = tcp.map(|t| {
            let peers: Vec<(Option<String>, bool)> = (0..size)
                .map(|p| {
                    let ep = on(Channel::Sock, p)
                        .then(|| cards[p].sock.clone())
                        .flatten();
                    // Loopback reaches ranks of this network namespace only.
                    (ep, cards[p].host == cards[rank].host)
                })
                .collect();
            t.with_peers(&peers)
        });
        let nd = match nd {
            Some(t) => {
                // Of each peer, its endpoint and the key with its queue
                // pair number for this rank.
                let peers = (cards.iter().enumerate())
                    .map(|(p, card)| {
                        let Some(ep) = card.nd.clone().filter(|_| on(Channel::Nd, p)) else {
                            return Ok(None);
                        };
                        let key = verbs::endpoint::qpn_key(p, verbs::endpoint::chunk_of(rank));
                        let qpns = pmi
                            .get(&key)?
                            .ok_or(CommError::NoAddress { rank: p, key })?;
                        Ok(Some((ep, qpns)))
                    })
                    .collect::<Result<Vec<_>, CommError>>()?;
                Some(t.with_peers(peers)?)
            }
            None => None,
        };
        let mut comm = Comm {
            pmi,
            rank,
            size,
            settings,
            cards,
            routes,
            shm,
            tcp,
            nd,
            used: vec![false; size],
            engine: requests::Engine::new(size),
        };
        comm.preconnect()?;
        Ok(comm)
    }

    /// `MSMPI_PRECONNECT`: opens the way to every rank of a chosen pair, in
    /// rank order (a rank accepts from lower ranks and connects to higher
    /// ones, so no two ranks wait for each other).
    fn preconnect(&mut self) -> Result<(), CommError> {
        for p in 0..self.size {
            if self.settings.preconnect.pair(self.rank, p) {
                self.via(p)?.connect(p)?;
            }
        }
        Ok(())
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
        self.cards.get(rank).map_or("?", |c| c.node.as_str())
    }

    /// The CPUs `rank` may run on, as it published them (its affinity mask
    /// at init); empty when unknown.
    pub fn cpus_of(&self, rank: usize) -> &[u32] {
        self.cards.get(rank).map_or(&[], |c| c.cpus.as_slice())
    }

    /// Whether ranks `a` and `b` run on one machine (one kernel), so their
    /// CPU numbers name the same CPUs ([`select::same_machine`]).
    pub fn same_machine(&self, a: usize, b: usize) -> bool {
        match (self.cards.get(a), self.cards.get(b)) {
            (Some(x), Some(y)) => select::same_machine(&x.host, &y.host),
            _ => false,
        }
    }

    /// The channel this rank uses to reach `rank`.
    pub fn channel_to(&self, rank: usize) -> Result<Channel, CommError> {
        self.check(rank)?;
        self.routes[rank].clone().map_err(CommError::from)
    }

    fn check(&self, rank: usize) -> Result<(), CommError> {
        if rank < self.size && rank != self.rank {
            Ok(())
        } else {
            Err(CommError::NoSuchRank {
                rank,
                size: self.size,
            })
        }
    }

    /// The transport of the channel to `peer`.
    fn via(&mut self, peer: usize) -> Result<&mut dyn Transport, CommError> {
        self.check(peer)?;
        let t: Option<&mut dyn Transport> = match &self.routes[peer] {
            Ok(Channel::Shm) => self.shm.as_mut().map(|t| t as &mut dyn Transport),
            Ok(Channel::Sock) => self.tcp.as_mut().map(|t| t as &mut dyn Transport),
            Ok(Channel::Nd) => self.nd.as_mut().map(|t| t as &mut dyn Transport),
            Err(_) => None,
        };
        match (t, &self.routes[peer]) {
            (Some(t), _) => Ok(t),
            (None, Err(e)) => Err(e.clone().into()),
            (None, Ok(c)) => unreachable!("channel {c:?} chosen without its transport"),
        }
    }

    /// Blocking send of `data` to `dest` under `tag`.
    pub fn send(&mut self, dest: usize, tag: u32, data: &[u8]) -> Result<(), CommError> {
        if self.engine.busy() {
            return self.send_queued(dest, tag, data);
        }
        self.via(dest)?.send(dest, tag, data)?;
        self.used[dest] = true;
        Ok(())
    }

    /// Blocking receive of exactly `buf.len()` bytes from `src` under `tag`.
    pub fn recv(&mut self, src: usize, tag: u32, buf: &mut [u8]) -> Result<(), CommError> {
        if self.engine.busy() {
            return self.recv_queued(src, tag, buf);
        }
        self.via(src)?.recv(src, tag, buf)?;
        self.used[src] = true;
        Ok(())
    }

    /// `len` zeroed bytes to send from and receive into, MPI_Alloc_mem's
    /// counterpart: with shared memory on, peers on this host copy large
    /// messages straight out of it (see [`shm`]); otherwise plain memory.
    pub fn alloc_mem(&mut self, len: usize) -> Result<Buffer, CommError> {
        Ok(match self.shm.as_mut() {
            Some(t) => Buffer::Shared(t.alloc(len)?),
            None => Buffer::Plain(vec![0; len]),
        })
    }

    /// Waits for every rank (a PMI barrier), moving pending requests
    /// meanwhile.
    pub fn barrier(&mut self) -> Result<(), CommError> {
        if self.engine.busy() {
            return self.barrier_with_progress();
        }
        Ok(self.pmi.barrier()?)
    }

    /// This rank's row of the connectivity table.
    fn table_row(&self) -> Row {
        let indicators = (0..self.size)
            .map(|p| {
                let open = match &self.routes[p] {
                    _ if p == self.rank => None,
                    Ok(Channel::Shm) => self.shm.as_ref().map(|t| t.is_connected(p)),
                    Ok(Channel::Sock) => self.tcp.as_ref().map(|t| t.is_connected(p)),
                    Ok(Channel::Nd) => self.nd.as_ref().map(|t| t.is_connected(p)),
                    _ => None,
                };
                match (open.map(|o| o || self.used[p]), &self.routes[p]) {
                    (Some(true), Ok(c)) => c.indicator(),
                    _ => select::NOT_CONNECTED,
                }
            })
            .collect();
        Row {
            node: self.cards[self.rank].node.clone(),
            indicators,
        }
    }

    /// Leaves the job: completes the requests still pending (MPI wants
    /// them waited for; their results are dropped), then with
    /// `MSMPI_CONNECTIVITY_TABLE=1` rank 0 prints the
    /// connectivity table; then a last barrier, so no rank closes its
    /// connections while a peer still reads, then `PMI_Finalize`.
    pub fn finalize(mut self) -> Result<(), CommError> {
        self.drain()?;
        if self.settings.table {
            let row: String = self.table_row().indicators.iter().collect();
            self.pmi.put(&format!("conn-{}", self.rank), &row)?;
        }
        self.pmi.barrier()?;
        if self.settings.table && self.rank == 0 {
            let mut rows = Vec::with_capacity(self.size);
            for r in 0..self.size {
                let indicators = self
                    .pmi
                    .get(&format!("conn-{r}"))?
                    .unwrap_or_default()
                    .chars()
                    .collect();
                rows.push(Row {
                    node: self.cards[r].node.clone(),
                    indicators,
                });
            }
            let mut text = select::render_table(&rows);
            text.push_str(&self.nd_notes());
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        drop(self.shm.take());
        drop(self.tcp.take());
        self.nd = None;
        Ok(self.pmi.finalize()?)
    }

    /// Under the connectivity table, why the ranks of pairs that fell back
    /// from Network Direct to sockets went without it (so the fallback is
    /// never silent).
    fn nd_notes(&self) -> String {
        if !self.settings.nd {
            return String::new();
        }
        let c = &self.cards;
        let mut fell_back = vec![false; self.size];
        for a in 0..self.size {
            for b in a + 1..self.size {
                if select::choose(a, &c[a], b, &c[b]) == Ok(Channel::Sock) {
                    fell_back[a] = true;
                    fell_back[b] = true;
                }
            }
        }
        let lines: Vec<String> = (0..self.size)
            .filter(|&r| fell_back[r] && c[r].nd.is_none())
            .filter(|&r| !c[r].nd_missing.starts_with("disabled by"))
            .map(|r| format!("  rank {r} ({}): {}\n", c[r].node, c[r].nd_missing))
            .collect();
        match lines.is_empty() {
            true => String::new(),
            false => format!("Network Direct unavailable:\n{}\n", lines.concat()),
        }
    }

    /// Asks the launcher to end the whole job with `code`; the caller exits
    /// with `code` right after.
    pub fn abort(self, code: i32) -> Result<(), CommError> {
        Ok(self.pmi.abort(code)?)
    }
}

/// Memory from [`Comm::alloc_mem`].
#[derive(Debug)]
pub enum Buffer {
    Shared(shm::ShmBuffer),
    Plain(Vec<u8>),
}

impl std::ops::Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Buffer::Shared(b) => b,
            Buffer::Plain(v) => v,
        }
    }
}

impl std::ops::DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Buffer::Shared(b) => b,
            Buffer::Plain(v) => v,
        }
    }
}

/// This host's identity for choosing shared memory and loopback
/// ([`select::host_identity`]).
fn this_host() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let ns = |which: &str| {
        std::fs::read_link(format!("/proc/self/ns/{which}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    select::host_identity(
        &crate::node::sys::hostname(),
        &read("/proc/sys/kernel/random/boot_id"),
        &ns("pid"),
        &ns("net"),
    )
}

/// The node this rank runs on: the name mpiexec placed it on
/// (`HPCPACK_NODE_NAME`), else this host's name (another launcher).
pub fn own_node_name() -> String {
    crate::env::var(env::HPCPACK_NODE_NAME).unwrap_or_else(crate::node::sys::hostname)
}

/// For a connection nothing answered: the likely cause, and its remedy.
fn firewall_hint(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::TimedOut {
        "; nothing answered, so a firewall on that rank's host may drop connections to it: \
         register the program there (hpcfwutil register <name> <path>) or open its ports (MPICH_PORT_RANGE)"
    } else {
        ""
    }
}

