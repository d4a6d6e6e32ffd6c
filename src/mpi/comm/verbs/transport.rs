//! [`VerbsTransport`]: the device-facing half of the verbs channel (see the
//! parent module for the design and [`super::proto`] for the protocol).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use super::endpoint::{self, Endpoint, Want};
use super::proto::{
    self, Clearances, Cleared, Credits, EAGER_BUF, HEADER, Header, Kind, RECV_DEPTH, RecvRndv,
    RecvStage, RemoteBuf, RndvSend, SendNext,
};
use super::regcache::RegCache;
use super::sys::{self, Arena, Completion, Device, Qp, Region, Remote};
use super::{MAX_RANKS, SLEEP, SPIN, YIELD_FOR};
use crate::env;
use crate::mpi::comm::select::Netmask;
use crate::mpi::comm::{CommError, Partial, Transport};

/// Send slots per peer (eager messages too large to go inline).
const SEND_SLOTS: u32 = 16;
/// Send queue depth per queue pair.
const SEND_WR: u32 = 64;
/// Inline size asked of the queue pair.
const INLINE: u32 = 64;
/// Registration cache bounds.
const CACHE_ENTRIES: usize = 64;
const CACHE_BYTES: usize = 1 << 30;

// Work request ids: kind in the top byte, peer, then slot.
const WR_RECV: u64 = 1;
const WR_SLOT: u64 = 2;
const WR_INLINE: u64 = 3;
const WR_RDMA: u64 = 4;

fn wr(kind: u64, peer: usize, slot: u32) -> u64 {
    (kind << 56) | ((peer as u64) << 32) | u64::from(slot)
}

fn unwr(id: u64) -> (u64, usize, u32) {
    (id >> 56, ((id >> 32) & 0xff_ffff) as usize, id as u32)
}

struct Peer {
    qp: Qp,
    /// The peer's endpoint and its queue pair number for this rank.
    remote: Option<(Endpoint, u32)>,
    up: bool,
    credits: Credits,
    /// A batch of credits is due back and no message carried it yet.
    credit_due: bool,
    /// Receive slots holding eager messages not yet received, in arrival
    /// order.
    arrived: VecDeque<u32>,
    /// The peer's clearances for this rank's rendezvous sends.
    cleared: Clearances,
    rrndv: RecvRndv,
    free_slots: Vec<u32>,
    /// Work requests posted and not yet completed.
    sq_used: u32,
    /// RDMA WRITEs of the rendezvous send in progress that completed.
    rdma_done: u32,
    /// The registrations of the rendezvous in progress each way (this
    /// rank's send, its receive), held so that the cache evicting them
    /// cannot deregister memory the device still uses.
    send_mr: Option<Region>,
    recv_mr: Option<Region>,
    /// Why the pair is closed for good (what was being done, why it
    /// failed): the first failure seen; every later call fails with it.
    broken: Option<(String, String)>,
}

/// How long a blocking call has gone without progress (see the parent
/// module's "Waiting").
#[derive(Default)]
struct Waiter {
    spins: u32,
    idle_since: Option<Instant>,
}

/// [`Transport`] over RDMA verbs (see the parent module).
pub struct VerbsTransport {
    rank: usize,
    dev: Device,
    peers: Vec<Peer>,
    recv: Arena,
    send: Arena,
    cache: RegCache<Region>,
    host: u64,
    wcs: Vec<Completion>,
    /// Where the heap starts, once malloc keeps the memory it frees
    /// ([`sys::keep_heap`]): only buffers of the heap are cached.
    heap: Option<usize>,
}

/// This host's identity as a number (boot id and pid namespace), so a peer
/// can tell whether a rank's pid is one it may probe.
fn host_hash() -> u64 {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    // FNV-1a: stable across processes and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in boot.trim().bytes().chain(ns.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn local_ips() -> Vec<Ipv4Addr> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.ip() {
            IpAddr::V4(ip) if !ip.is_loopback() => Some(ip),
            _ => None,
        })
        .collect()
}

impl VerbsTransport {
    /// Opens the device and one queue pair per peer; returns the transport
    /// and its endpoint, or why this rank has no verbs (for its card).
    pub fn open(
        rank: usize,
        size: usize,
        netmask: Option<&Netmask>,
    ) -> Result<(VerbsTransport, String), String> {
        if size > MAX_RANKS {
            return Err(format!(
                "the verbs endpoint holds at most {MAX_RANKS} ranks (this job has {size})"
            ));
        }
        let ports = sys::discover()?;
        let device = match crate::env::var(env::HPCPACK_VERBS_DEVICE) {
            Some(v) if !v.trim().is_empty() => {
                Some(endpoint::parse_device(&v).ok_or_else(|| {
                    format!("HPCPACK_VERBS_DEVICE {v}: expected <device>[:<port>]")
                })?)
            }
            _ => None,
        };
        let ips = local_ips();
        let want = Want {
            device,
            netmask_ips: netmask
                .map(|m| ips.iter().copied().filter(|ip| m.contains(*ip)).collect()),
            local_ips: ips,
        };
        let (i, gid_index) = endpoint::pick(&ports, &want)?;
        let p = &ports[i];
        let what = |e: io::Error| format!("RDMA device {}:{}: {e}", p.device, p.port);
        let slots = size as u32 * (u32::from(RECV_DEPTH) + SEND_WR);
        let dev = Device::open(&p.device, p.port, gid_index, slots).map_err(what)?;
        let recv = dev
            .arena(size * usize::from(RECV_DEPTH) * EAGER_BUF)
            .map_err(what)?;
        let send = dev
            .arena(size * SEND_SLOTS as usize * EAGER_BUF)
            .map_err(what)?;
        let mut peers = Vec::with_capacity(size);
        for r in 0..size {
            let mut qp = dev
                .create_qp(SEND_WR, u32::from(RECV_DEPTH), INLINE)
                .map_err(what)?;
            if r != rank {
                for s in 0..u32::from(RECV_DEPTH) {
                    let slot = r as u32 * u32::from(RECV_DEPTH) + s;
                    qp.post_recv(
                        &recv,
                        slot as usize * EAGER_BUF,
                        EAGER_BUF,
                        wr(WR_RECV, r, slot),
                    )
                    .map_err(what)?;
                }
            }
            peers.push(Peer {
                qp,
                remote: None,
                up: false,
                credits: Credits::new(),
                credit_due: false,
                arrived: VecDeque::new(),
                cleared: Clearances::default(),
                rrndv: RecvRndv::Idle,
                free_slots: (0..SEND_SLOTS)
                    .map(|s| r as u32 * SEND_SLOTS + s)
                    .rev()
                    .collect(),
                sq_used: 0,
                rdma_done: 0,
                send_mr: None,
                recv_mr: None,
                broken: None,
            });
        }
        let host = host_hash();
        let ep = Endpoint {
            lid: dev.lid,
            gid: dev.gid,
            mtu: dev.mtu,
            host,
            pid: std::process::id(),
        };
        let t = VerbsTransport {
            rank,
            dev,
            peers,
            recv,
            send,
            cache: RegCache::new(CACHE_ENTRIES, CACHE_BYTES),
            host,
            wcs: Vec::new(),
            heap: None,
        };
        Ok((t, ep.encode()))
    }

    /// The PMI keys and values of this rank's queue pair numbers, one per
    /// peer ([`endpoint::qpn_values`]), to be put beside the card.
    pub fn qpn_entries(&self) -> Vec<(String, String)> {
        let qpns: Vec<u32> = (self.peers.iter().enumerate())
            .map(|(r, p)| if r == self.rank { 0 } else { p.qp.qpn() })
            .collect();
        endpoint::qpn_values(&qpns)
            .into_iter()
            .map(|(c, v)| (endpoint::qpn_key(self.rank, c), v))
            .collect()
    }

    /// Connects the queue pair of every peer given as (its endpoint, the
    /// value of its key holding its queue pair number for this rank).
    pub fn with_peers(
        mut self,
        endpoints: Vec<Option<(String, String)>>,
    ) -> Result<VerbsTransport, CommError> {
        for (r, ep) in endpoints.into_iter().enumerate() {
            let Some((ep, qpns)) = ep.filter(|_| r != self.rank && r < self.peers.len()) else {
                continue;
            };
            let (remote, qpn) = Endpoint::decode(&ep)
                .zip(endpoint::qpn_in(&qpns, self.rank))
                .ok_or_else(|| CommError::BadCard {
                    rank: r,
                    value: format!("{ep} (queue pairs {qpns})"),
                })?;
            let to = Remote {
                qpn,
                gid: remote.gid,
                lid: remote.lid,
                mtu: remote.mtu,
            };
            self.peers[r].remote = Some((remote, qpn));
            let dev = &self.dev;
            self.peers[r]
                .qp
                .connect(dev, &to)
                .map_err(|source| CommError::Verbs {
                    rank: r,
                    addr: self.addr(r),
                    what: "connecting the queue pair of".into(),
                    source,
                })?;
            self.peers[r].up = true;
        }
        if self.peers.iter().any(|p| p.up) {
            self.heap = sys::keep_heap();
        }
        Ok(self)
    }

    /// Both ends of the pair with `rank`, for messages.
    fn addr(&self, rank: usize) -> String {
        let gid = |g: &[u8; 16]| match endpoint::gid_ipv4(g) {
            Some(ip) => ip.to_string(),
            None => std::net::Ipv6Addr::from(*g).to_string(),
        };
        let p = &self.peers[rank];
        let remote = p.remote.as_ref().map_or("(no endpoint)".to_string(), |(r, qpn)| {
            format!("gid {} qpn {qpn:#x}", gid(&r.gid))
        });
        format!(
            "{}:{} gid {} qpn {:#x} -> {remote}",
            self.dev.name,
            self.dev.port,
            gid(&self.dev.gid),
            p.qp.qpn()
        )
    }

    fn err(&self, rank: usize, what: &str, source: io::Error) -> CommError {
        CommError::Verbs {
            rank,
            addr: self.addr(rank),
            what: what.to_string(),
            source,
        }
    }

    fn check_up(&self, rank: usize) -> Result<(), CommError> {
        match self.peers.get(rank) {
            Some(p) if p.up => Ok(()),
            _ => Err(self.err(
                rank,
                "reaching",
                io::Error::new(io::ErrorKind::NotConnected, "the pair is not over verbs"),
            )),
        }
    }

    /// [`Self::check_up`], and the pair not closed by an earlier failure.
    fn usable(&self, rank: usize) -> Result<(), CommError> {
        self.check_up(rank)?;
        match &self.peers[rank].broken {
            None => Ok(()),
            Some((what, why)) => Err(self.err(rank, what, io::Error::other(why.clone()))),
        }
    }

    /// Closes the pair with `peer` for good: its queue pair goes to the
    /// error state, so the device neither reads nor accepts writes for the
    /// messages in progress (whose registrations are let go), and every
    /// later call for the pair fails saying that `what` failed and `why`
    /// (the first failure is the one kept).
    fn close(&mut self, peer: usize, what: &str, why: String) {
        let p = &mut self.peers[peer];
        p.qp.fail();
        p.send_mr = None;
        p.recv_mr = None;
        if p.broken.is_none() {
            p.broken = Some((what.to_string(), why));
        }
    }

    /// [`Self::close`] for a failed device call, and the error to return.
    fn fail(&mut self, peer: usize, what: &str, e: io::Error) -> CommError {
        self.close(peer, what, e.to_string());
        self.err(peer, what, e)
    }

    /// After `e` ended a call with a rendezvous `in_flight` with `peer`:
    /// the caller lets go of the buffer, so the device must not touch it
    /// again, and the pair closes.
    fn close_in_flight(&mut self, peer: usize, in_flight: bool, e: &CommError) {
        if in_flight && self.peers[peer].broken.is_none() {
            self.close(peer, "reaching", format!("closed during a rendezvous: {e}"));
        }
    }

    /// Handles every completion available (after sleeping up to [`SLEEP`]
    /// for one when `block` names the peer waited for); true if any came.
    /// A failed completion closes its own pair rather than failing the
    /// call, so the other pairs go on.
    fn progress(&mut self, block: Option<usize>) -> Result<bool, CommError> {
        let mut wcs = std::mem::take(&mut self.wcs);
        wcs.clear();
        let polled = match block {
            None => self.dev.poll(&mut wcs),
            Some(_) => self
                .dev
                .wait(SLEEP, &mut wcs)
                .and_then(|()| self.dev.poll(&mut wcs)),
        };
        let mut result = polled
            .map_err(|e| self.err(block.unwrap_or(self.rank), "polling completions for", e))
            .map(|()| !wcs.is_empty());
        for wc in &wcs {
            if let (Err(e), Ok(_)) = (self.complete(wc), &result) {
                result = Err(e);
            }
        }
        if !wcs.is_empty() {
            // Completions free credits and send-queue room: return the
            // credits that could not go when they fell due.
            for peer in 0..self.peers.len() {
                if self.peers[peer].credit_due {
                    self.send_credit(peer);
                }
            }
        }
        self.wcs = wcs;
        result
    }

    fn complete(&mut self, wc: &Completion) -> Result<(), CommError> {
        let (kind, peer, slot) = unwr(wc.wr_id);
        if peer >= self.peers.len() {
            return Err(self.err(
                self.rank,
                "completion for",
                io::Error::other("unknown peer"),
            ));
        }
        let p = &mut self.peers[peer];
        // A send-side work request is over, whatever its status.
        match kind {
            WR_SLOT => {
                p.sq_used -= 1;
                p.free_slots.push(slot);
            }
            WR_INLINE => p.sq_used -= 1,
            WR_RDMA => {
                p.sq_used -= 1;
                p.rdma_done += u32::from(wc.ok());
            }
            _ => {}
        }
        if !wc.ok() {
            let what = match kind {
                WR_RECV => "receiving from",
                WR_RDMA => "writing (rendezvous) to",
                _ => "sending to",
            };
            self.close(peer, what, wc.status_text());
            return Ok(());
        }
        if kind != WR_RECV {
            return Ok(());
        }
        let off = slot as usize * EAGER_BUF;
        let msg = self.recv.read(off, (wc.byte_len as usize).min(EAGER_BUF));
        let Some(h) = Header::decode(msg) else {
            self.close(
                peer,
                "receiving from",
                "an unreadable message header".into(),
            );
            return Ok(());
        };
        let body = RemoteBuf::decode(&msg[HEADER..]);
        let whole = msg.len() as u64 == HEADER as u64 + h.len;
        let p = &mut self.peers[peer];
        p.credits.grant(h.credits);
        match h.kind {
            Kind::Eager if whole => p.arrived.push_back(slot),
            Kind::Eager => {
                let why = format!(
                    "an eager message of {} bytes announcing {}",
                    msg.len(),
                    h.len
                );
                self.close(peer, "receiving from", why);
            }
            Kind::Fin => match p.rrndv.fin() {
                Ok(()) => self.repost(peer, slot, true),
                Err(e) => self.close(peer, "receiving from", e.into()),
            },
            Kind::Cts => match body {
                Some(buf) => {
                    p.cleared.push(Cleared {
                        tag: h.tag,
                        len: h.len,
                        buf,
                    });
                    self.repost(peer, slot, true);
                }
                None => self.close(peer, "receiving from", "a short clear-to-send (cts)".into()),
            },
            Kind::Credit => self.repost(peer, slot, true),
            Kind::Rts => {
                let why = "an unexpected request-to-send (rts)".into();
                self.close(peer, "receiving from", why);
            }
        }
        Ok(())
    }

    /// Gives receive slot `slot` back to the queue pair of `peer`; owes the
    /// peer a credit (and returns a batch by message when due).
    fn repost(&mut self, peer: usize, slot: u32, quiet: bool) {
        let p = &mut self.peers[peer];
        let off = slot as usize * EAGER_BUF;
        if let Err(e) =
            p.qp.post_recv(&self.recv, off, EAGER_BUF, wr(WR_RECV, peer, slot))
        {
            self.close(peer, "re-posting a receive buffer for", e.to_string());
            return;
        }
        if quiet {
            p.credits.consumed_quietly();
        } else if p.credits.consumed() {
            p.credit_due = true;
            self.send_credit(peer);
        }
    }

    /// Sends the credits due to `peer` if a credit message can go now; if
    /// not, a later [`Self::progress`] tries again.
    fn send_credit(&mut self, peer: usize) {
        let p = &self.peers[peer];
        if p.credit_due && p.broken.is_none() && self.can_post(peer, HEADER, true) {
            // A failed post closes the pair; the pair's calls report it.
            let _ = self.post_small(peer, Kind::Credit, 0, 0, &[]);
        }
    }

    /// Whether a message of `total` bytes (header included) can be posted
    /// to `peer` now: a credit (data messages leave the last one to the
    /// `control` messages: credit, clearance, fin), room in the send queue,
    /// and a send slot unless it goes inline.
    fn can_post(&self, peer: usize, total: usize, control: bool) -> bool {
        let p = &self.peers[peer];
        let credit = match control {
            true => p.credits.can_send_credit(),
            false => p.credits.can_send(),
        };
        credit && p.sq_used < SEND_WR && (total <= p.qp.inline as usize || !p.free_slots.is_empty())
    }

    /// One round of a blocking call's wait for `peer`: handles the
    /// completions available; when none came for a while, spins, then
    /// yields, then sleeps on the completion channel and checks the peer
    /// ([`Transport::check_peer`]).
    fn wait(&mut self, peer: usize, w: &mut Waiter) -> Result<(), CommError> {
        if self.progress(None)? {
            *w = Waiter::default();
            return Ok(());
        }
        w.spins += 1;
        if w.spins < SPIN {
            std::hint::spin_loop();
            return Ok(());
        }
        let since = *w.idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() < YIELD_FOR {
            std::thread::yield_now();
            return Ok(());
        }
        if !self.progress(Some(peer))? {
            self.check(peer)?;
        }
        Ok(())
    }

    /// Runs `step` (a send or receive step) until it is done, waiting
    /// between rounds.
    fn block_on(
        &mut self,
        peer: usize,
        mut step: impl FnMut(&mut Self) -> Result<bool, CommError>,
    ) -> Result<(), CommError> {
        let mut w = Waiter::default();
        while !step(self)? {
            self.wait(peer, &mut w)?;
        }
        Ok(())
    }

    /// A peer on this host whose process is gone is an error rather than a
    /// hang.
    fn check_alive(&self, peer: usize) -> Result<(), CommError> {
        match &self.peers[peer].remote {
            Some((r, _)) if r.host == self.host && !sys::alive(r.pid) => Err(CommError::PeerGone {
                rank: peer,
                pid: r.pid,
            }),
            _ => Ok(()),
        }
    }

    /// What this rank can tell of `peer` without its help: the pair closed
    /// by a failure, its process gone (same host only), or its queue pair
    /// in the error state. Either of the last two closes the pair.
    fn check(&mut self, peer: usize) -> Result<(), CommError> {
        self.usable(peer)?;
        if let Err(e) = self.check_alive(peer) {
            self.close(peer, "waiting for", e.to_string());
            return Err(e);
        }
        if self.peers[peer].qp.in_error() {
            let why = "the queue pair went to the error state".to_string();
            self.close(peer, "reaching", why);
            return self.usable(peer);
        }
        Ok(())
    }

    /// Posts a header-only (or header + `body`) message of `kind`, inline
    /// when it fits, else from a send slot. The caller checked
    /// [`Self::can_post`].
    fn post_small(
        &mut self,
        peer: usize,
        kind: Kind,
        tag: u32,
        len: u64,
        body: &[u8],
    ) -> Result<(), CommError> {
        let p = &mut self.peers[peer];
        let h = Header {
            kind,
            credits: p.credits.take(),
            tag,
            len,
        };
        p.credit_due = false;
        let total = HEADER + body.len();
        let result = if total <= p.qp.inline as usize {
            let mut b = [0u8; 256];
            b[..HEADER].copy_from_slice(&h.encode());
            b[HEADER..total].copy_from_slice(body);
            p.qp.post_inline(&b[..total], wr(WR_INLINE, peer, 0))
        } else {
            let slot = p.free_slots.pop().expect("caller checked for a free slot");
            let off = slot as usize * EAGER_BUF;
            self.send.write(off, &h.encode());
            self.send.write(off + HEADER, body);
            p.qp.post_send(&self.send, off, total, wr(WR_SLOT, peer, slot))
        };
        match result {
            Ok(()) => {
                p.sq_used += 1;
                Ok(())
            }
            Err(e) => Err(self.fail(peer, "sending to", e)),
        }
    }

    /// The registration of a user buffer; the clone returned keeps it
    /// alive whatever the cache evicts. A buffer of the heap comes from the
    /// cache (or is registered and cached); any other memory may be
    /// unmapped and mapped again at the same address with other pages
    /// (a stale registration would move the wrong bytes), so it is
    /// registered for this message only.
    fn region(
        &mut self,
        peer: usize,
        addr: usize,
        len: usize,
        writable: bool,
    ) -> Result<Region, CommError> {
        let cached = self
            .heap
            .is_some_and(|start| start <= addr && addr + len <= sys::heap_end());
        if cached && let Some(r) = self.cache.get(addr, len) {
            return Ok(r.clone());
        }
        let r = self
            .dev
            .register(addr, len, true)
            .or_else(|e| match writable {
                true => Err(e),
                false => self.dev.register(addr, len, false),
            })
            .map_err(|e| self.err(peer, "registering a buffer for", e))?;
        if cached {
            drop(self.cache.insert(addr, len, r.clone()));
        }
        Ok(r)
    }

    /// Moves a send as far as it goes without waiting for the peer (see
    /// [`proto`]); true once `data` may be reused. An eager message is
    /// posted whole once a credit (and a slot) is free; a rendezvous moves
    /// through [`RndvSend`]'s stages, kept in `st`.
    fn send_step(
        &mut self,
        dest: usize,
        tag: u32,
        data: &[u8],
        st: &mut Partial,
    ) -> Result<bool, CommError> {
        self.usable(dest)?;
        if !proto::rendezvous(data.len()) {
            if !self.can_post(dest, HEADER + data.len(), false) {
                return Ok(false);
            }
            self.post_small(dest, Kind::Eager, tag, data.len() as u64, data)?;
            return Ok(true);
        }
        let mut s = RndvSend::load(st);
        let result = self.rndv_send_step(dest, tag, data, &mut s);
        s.store(st);
        result
    }

    fn rndv_send_step(
        &mut self,
        dest: usize,
        tag: u32,
        data: &[u8],
        s: &mut RndvSend,
    ) -> Result<bool, CommError> {
        let (base, len) = (data.as_ptr() as usize, data.len());
        loop {
            match s.next(len, self.peers[dest].rdma_done) {
                SendNext::Clearance => {
                    // Registered before the clearance is there, so that
                    // the cost overlaps the wait for it.
                    let mr = self.region(dest, base, len, false)?;
                    let to = match self.peers[dest].cleared.take(tag, len as u64) {
                        None => return Ok(false),
                        Some(Ok(to)) => to,
                        Some(Err(c)) => {
                            return Err(CommError::Mismatch {
                                rank: dest,
                                addr: self.addr(dest),
                                tag: c.tag,
                                len: c.len as usize,
                                got_tag: tag,
                                got_len: len as u64,
                            });
                        }
                    };
                    let p = &mut self.peers[dest];
                    p.send_mr = Some(mr);
                    p.rdma_done = 0;
                    s.cleared(to, len);
                }
                SendNext::Write { index, off, len: l } => {
                    let p = &mut self.peers[dest];
                    if p.sq_used >= SEND_WR {
                        return Ok(false);
                    }
                    let mr = p.send_mr.as_ref().expect("held since the clearance");
                    let raddr = s.to.addr + off as u64;
                    let id = wr(WR_RDMA, dest, index);
                    let posted =
                        p.qp.post_write(mr, (base + off) as u64, l, raddr, s.to.rkey, id);
                    if let Err(e) = posted {
                        return Err(self.fail(dest, "writing (rendezvous) to", e));
                    }
                    p.sq_used += 1;
                    s.wrote(l, len);
                }
                SendNext::Fin => {
                    // The FIN follows the writes on the connection, so the
                    // receiver sees it only once the bytes are in place.
                    if !self.can_post(dest, HEADER, true) {
                        return Ok(false);
                    }
                    self.post_small(dest, Kind::Fin, tag, 0, &[])?;
                    s.fin_sent();
                }
                SendNext::Wait => return Ok(false),
                SendNext::Done => {
                    self.peers[dest].send_mr = None;
                    return Ok(true);
                }
            }
        }
    }

    /// Moves a receive as far as it goes without waiting for the peer;
    /// true once `buf` holds the message. A rendezvous-sized receive with
    /// no eager message waiting clears the sender to write into `buf`
    /// ([`RecvStage::Cleared`], kept in `st`), then waits for its FIN.
    fn recv_step(
        &mut self,
        src: usize,
        tag: u32,
        buf: &mut [u8],
        st: &mut Partial,
    ) -> Result<bool, CommError> {
        if RecvStage::load(st) == RecvStage::Cleared {
            return self.await_fin(src, tag, buf.len());
        }
        self.usable(src)?;
        if proto::rendezvous(buf.len()) && self.peers[src].arrived.is_empty() {
            if !self.can_post(src, HEADER + RemoteBuf::LEN, true) {
                return Ok(false);
            }
            let base = buf.as_mut_ptr() as usize;
            let mr = self.region(src, base, buf.len(), true)?;
            let cts = RemoteBuf {
                addr: base as u64,
                rkey: mr.rkey(),
            };
            let p = &mut self.peers[src];
            p.recv_mr = Some(mr);
            p.rrndv = RecvRndv::AwaitFin;
            self.post_small(src, Kind::Cts, tag, buf.len() as u64, &cts.encode())?;
            RecvStage::Cleared.store(st);
            return self.await_fin(src, tag, buf.len());
        }
        let Some(&slot) = self.peers[src].arrived.front() else {
            return Ok(false);
        };
        let off = slot as usize * EAGER_BUF;
        let h = Header::decode(self.recv.read(off, HEADER)).expect("checked on arrival");
        if h.tag != tag || h.len != buf.len() as u64 {
            return Err(CommError::Mismatch {
                rank: src,
                addr: self.addr(src),
                tag,
                len: buf.len(),
                got_tag: h.tag,
                got_len: h.len,
            });
        }
        buf.copy_from_slice(self.recv.read(off + HEADER, buf.len()));
        self.peers[src].arrived.pop_front();
        self.repost(src, slot, false);
        Ok(true)
    }

    /// A cleared receive: done once the sender's FIN came. Any other
    /// message first means the two ranks disagree on the order; the sender
    /// must then never write into the buffer, so the pair closes.
    fn await_fin(&mut self, src: usize, tag: u32, len: usize) -> Result<bool, CommError> {
        let p = &mut self.peers[src];
        if p.rrndv == RecvRndv::Idle {
            p.recv_mr = None;
            return Ok(true);
        }
        self.usable(src)?;
        let Some(&slot) = self.peers[src].arrived.front() else {
            return Ok(false);
        };
        let h = Header::decode(self.recv.read(slot as usize * EAGER_BUF, HEADER))
            .expect("checked on arrival");
        let why = format!(
            "closed: tag {} with {} bytes came while a rendezvous of tag {tag} with {len} bytes waited for its data",
            h.tag, h.len
        );
        self.close(src, "receiving from", why);
        Err(CommError::Mismatch {
            rank: src,
            addr: self.addr(src),
            tag,
            len,
            got_tag: h.tag,
            got_len: h.len,
        })
    }

    /// Whether a send stopped at `st` may still have the device reading
    /// its buffer.
    fn sending(st: &Partial, len: usize) -> bool {
        proto::rendezvous(len) && RndvSend::load(st).in_flight()
    }

    /// Whether a receive stopped at `st` exposed its buffer to the peer.
    fn receiving(st: &Partial) -> bool {
        RecvStage::load(st) == RecvStage::Cleared
    }
}

impl Transport for VerbsTransport {
    fn connect(&mut self, peer: usize) -> Result<(), CommError> {
        self.check_up(peer)
    }

    fn is_connected(&self, peer: usize) -> bool {
        self.peers.get(peer).is_some_and(|p| p.up)
    }

    fn send(&mut self, dest: usize, tag: u32, data: &[u8]) -> Result<(), CommError> {
        self.check_up(dest)?;
        let mut st = Partial::default();
        let result = self.block_on(dest, |t| t.send_step(dest, tag, data, &mut st));
        if let Err(e) = &result {
            self.close_in_flight(dest, Self::sending(&st, data.len()), e);
        }
        result
    }

    fn recv(&mut self, src: usize, tag: u32, buf: &mut [u8]) -> Result<(), CommError> {
        self.check_up(src)?;
        let mut st = Partial::default();
        let result = self.block_on(src, |t| t.recv_step(src, tag, buf, &mut st));
        if let Err(e) = &result {
            self.close_in_flight(src, Self::receiving(&st), e);
        }
        result
    }

    fn try_send(
        &mut self,
        dest: usize,
        tag: u32,
        data: &[u8],
        state: &mut Partial,
    ) -> Result<bool, CommError> {
        self.check_up(dest)?;
        let result = self.send_step(dest, tag, data, state).and_then(|done| {
            match done || !self.progress(None)? {
                true => Ok(done),
                false => self.send_step(dest, tag, data, state),
            }
        });
        if let Err(e) = &result {
            self.close_in_flight(dest, Self::sending(state, data.len()), e);
        }
        result
    }

    fn try_recv(
        &mut self,
        src: usize,
        tag: u32,
        buf: &mut [u8],
        state: &mut Partial,
    ) -> Result<bool, CommError> {
        self.check_up(src)?;
        let result = self.recv_step(src, tag, buf, state).and_then(|done| {
            match done || !self.progress(None)? {
                true => Ok(done),
                false => self.recv_step(src, tag, buf, state),
            }
        });
        if let Err(e) = &result {
            self.close_in_flight(src, Self::receiving(state), e);
        }
        result
    }

    fn check_peer(&mut self, peer: usize) -> Result<(), CommError> {
        self.check_up(peer)?;
        self.progress(None)?;
        self.check(peer)
    }
}
