//! [`VerbsTransport`]: the device-facing half of the verbs channel (see the
//! parent module for the design and [`super::proto`] for the protocol).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use super::endpoint::{self, Endpoint, Want};
use super::proto::{
    self, Credits, EAGER_BUF, HEADER, Header, Kind, RECV_DEPTH, Cleared, Clearances, RecvRndv, RemoteBuf,
};
use super::regcache::RegCache;
use super::sys::{self, Arena, Completion, Device, Qp, Region, Remote};
use super::{MAX_RANKS, SLEEP, SPIN, YIELD_FOR};
use crate::env;
use crate::mpi::comm::select::Netmask;
use crate::mpi::comm::{CommError, Transport};

/// Send slots per peer (eager messages too large to go inline).
const SEND_SLOTS: u32 = 16;
/// Send queue depth per queue pair.
const SEND_WR: u32 = 64;
/// RDMA WRITEs in flight per rendezvous.
const RDMA_WINDOW: u32 = 8;
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
    remote: Option<Endpoint>,
    up: bool,
    credits: Credits,
    /// Receive slots holding eager or rendezvous messages, in arrival order.
    arrived: VecDeque<u32>,
    /// The peer's clearances for this rank's rendezvous sends.
    cleared: Clearances,
    rrndv: RecvRndv,
    free_slots: Vec<u32>,
    /// Work requests posted and not yet completed.
    sq_used: u32,
    rdma_done: u32,
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
            Some(v) if !v.trim().is_empty() => Some(endpoint::parse_device(&v).ok_or_else(|| {
                format!("HPCPACK_VERBS_DEVICE {v}: expected <device>[:<port>]")
            })?),
            _ => None,
        };
        let ips = local_ips();
        let want = Want {
            device,
            netmask_ips: netmask.map(|m| ips.iter().copied().filter(|ip| m.contains(*ip)).collect()),
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
                    qp.post_recv(&recv, slot as usize * EAGER_BUF, EAGER_BUF, wr(WR_RECV, r, slot))
                        .map_err(what)?;
                }
            }
            peers.push(Peer {
                qp,
                remote: None,
                up: false,
                credits: Credits::new(),
                arrived: VecDeque::new(),
                cleared: Clearances::default(),
                rrndv: RecvRndv::Idle,
                free_slots: (0..SEND_SLOTS).map(|s| r as u32 * SEND_SLOTS + s).rev().collect(),
                sq_used: 0,
                rdma_done: 0,
            });
        }
        let host = host_hash();
        let ep = Endpoint {
            lid: dev.lid,
            gid: dev.gid,
            mtu: dev.mtu,
            host,
            pid: std::process::id(),
            qpns: peers
                .iter()
                .enumerate()
                .map(|(r, p)| if r == rank { 0 } else { p.qp.qpn() })
                .collect(),
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
        };
        Ok((t, ep.encode()))
    }

    /// Connects every queue pair whose peer is reached over verbs (its
    /// endpoint given, indexed by rank).
    pub fn with_peers(mut self, endpoints: Vec<Option<String>>) -> Result<VerbsTransport, CommError> {
        for (r, ep) in endpoints.into_iter().enumerate() {
            let Some(ep) = ep.filter(|_| r != self.rank && r < self.peers.len()) else {
                continue;
            };
            let remote = Endpoint::decode(&ep)
                .filter(|e| e.qpns.len() == self.peers.len())
                .ok_or_else(|| CommError::BadCard {
                    rank: r,
                    value: ep.clone(),
                })?;
            let to = Remote {
                qpn: remote.qpns[self.rank],
                gid: remote.gid,
                lid: remote.lid,
                mtu: remote.mtu,
            };
            self.peers[r].remote = Some(remote);
            let dev = &self.dev;
            self.peers[r].qp.connect(dev, &to).map_err(|source| CommError::Verbs {
                rank: r,
                addr: self.addr(r),
                what: "connecting the queue pair of".into(),
                source,
            })?;
            self.peers[r].up = true;
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
        let remote = p.remote.as_ref().map_or("(no endpoint)".to_string(), |r| {
            format!("gid {} qpn {:#x}", gid(&r.gid), r.qpns[self.rank])
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

    /// Handles every completion available; errors name the peer.
    fn progress(&mut self, block: Option<usize>) -> Result<bool, CommError> {
        let mut wcs = std::mem::take(&mut self.wcs);
        wcs.clear();
        let polled = match block {
            None => self.dev.poll(&mut wcs),
            Some(_) => self.dev.wait(SLEEP, &mut wcs).and_then(|()| self.dev.poll(&mut wcs)),
        };
        let result = polled
            .map_err(|e| self.err(block.unwrap_or(self.rank), "polling completions for", e))
            .and_then(|()| {
                for wc in &wcs {
                    self.complete(wc)?;
                }
                Ok(!wcs.is_empty())
            });
        self.wcs = wcs;
        result
    }

    fn complete(&mut self, wc: &Completion) -> Result<(), CommError> {
        let (kind, peer, slot) = unwr(wc.wr_id);
        if peer >= self.peers.len() {
            return Err(self.err(self.rank, "completion for", io::Error::other("unknown peer")));
        }
        if !wc.ok() {
            let what = match kind {
                WR_RECV => "receiving from",
                WR_RDMA => "writing (rendezvous) to",
                _ => "sending to",
            };
            return Err(self.err(peer, what, io::Error::other(wc.status_text())));
        }
        let p = &mut self.peers[peer];
        match kind {
            WR_RECV => {
                let off = slot as usize * EAGER_BUF;
                let h = Header::decode(self.recv.read(off, (wc.byte_len as usize).min(EAGER_BUF)))
                    .ok_or_else(|| io::Error::other("unreadable message header"));
                let h = match h {
                    Ok(h) => h,
                    Err(e) => return Err(self.err(peer, "receiving from", e)),
                };
                p.credits.grant(h.credits);
                match h.kind {
                    Kind::Eager => p.arrived.push_back(slot),
                    Kind::Fin => {
                        if let Err(e) = p.rrndv.fin() {
                            return Err(self.err(peer, "receiving from", io::Error::other(e)));
                        }
                        self.repost(peer, slot, true)?;
                    }
                    Kind::Cts => {
                        match RemoteBuf::decode(self.recv.read(off + HEADER, RemoteBuf::LEN)) {
                            Some(buf) => p.cleared.push(Cleared {
                                tag: h.tag,
                                len: h.len,
                                buf,
                            }),
                            None => {
                                let e = io::Error::other("a short clear-to-send (cts)");
                                return Err(self.err(peer, "receiving from", e));
                            }
                        }
                        self.repost(peer, slot, true)?;
                    }
                    Kind::Credit => self.repost(peer, slot, true)?,
                    Kind::Rts => {
                        let e = io::Error::other("an unexpected request-to-send (rts)");
                        return Err(self.err(peer, "receiving from", e));
                    }
                }
            }
            WR_SLOT => {
                p.sq_used -= 1;
                p.free_slots.push(slot);
            }
            WR_INLINE => p.sq_used -= 1,
            WR_RDMA => {
                p.sq_used -= 1;
                p.rdma_done += 1;
            }
            _ => {}
        }
        Ok(())
    }

    /// Gives receive slot `slot` back to the queue pair of `peer`; owes the
    /// peer a credit (and returns a batch by message when due).
    fn repost(&mut self, peer: usize, slot: u32, quiet: bool) -> Result<(), CommError> {
        let p = &mut self.peers[peer];
        let off = slot as usize * EAGER_BUF;
        if let Err(e) = p.qp.post_recv(&self.recv, off, EAGER_BUF, wr(WR_RECV, peer, slot)) {
            return Err(self.err(peer, "re-posting a receive buffer for", e));
        }
        if quiet {
            p.credits.consumed_quietly();
            Ok(())
        } else if p.credits.consumed() && p.credits.can_send_credit() && p.sq_used < SEND_WR {
            self.post_small(peer, Kind::Credit, 0, 0, &[])
        } else {
            Ok(())
        }
    }

    /// Progresses until `ready` holds for `peer`'s state, spinning, then
    /// yielding, then sleeping on the completion channel.
    fn wait_for(
        &mut self,
        peer: usize,
        ready: impl Fn(&Peer) -> bool,
    ) -> Result<(), CommError> {
        let mut spins = 0u32;
        let mut idle_since: Option<Instant> = None;
        while !ready(&self.peers[peer]) {
            if self.progress(None)? {
                spins = 0;
                idle_since = None;
                continue;
            }
            spins += 1;
            if spins < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < YIELD_FOR {
                std::thread::yield_now();
                continue;
            }
            if !self.progress(Some(peer))? {
                self.check_alive(peer)?;
            }
        }
        Ok(())
    }

    /// A peer on this host whose process is gone is an error rather than a
    /// hang.
    fn check_alive(&self, peer: usize) -> Result<(), CommError> {
        match &self.peers[peer].remote {
            Some(r) if r.host == self.host && !sys::alive(r.pid) => Err(CommError::PeerGone {
                rank: peer,
                pid: r.pid,
            }),
            _ => Ok(()),
        }
    }

    /// Posts a header-only (or header + `body`) message of `kind`, inline
    /// when it fits, else from a send slot. The caller checked credits and
    /// send-queue room.
    fn post_small(&mut self, peer: usize, kind: Kind, tag: u32, len: u64, body: &[u8]) -> Result<(), CommError> {
        let p = &mut self.peers[peer];
        let h = Header {
            kind,
            credits: p.credits.take(),
            tag,
            len,
        };
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
        p.sq_used += 1;
        result.map_err(|e| self.err(peer, "sending to", e))
    }

    /// The registration of a user buffer, from the cache or new.
    fn region(&mut self, peer: usize, addr: usize, len: usize, writable: bool) -> Result<&Region, CommError> {
        if self.cache.get(addr, len).is_none() {
            let r = self
                .dev
                .register(addr, len, true)
                .or_else(|e| if writable { Err(e) } else { self.dev.register(addr, len, false) })
                .map_err(|e| self.err(peer, "registering a buffer for", e))?;
            drop(self.cache.insert(addr, len, r));
        }
        Ok(self.cache.get(addr, len).expect("just inserted"))
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
        let big = proto::rendezvous(data.len());
        let needs_slot = !big && HEADER + data.len() > self.peers[dest].qp.inline as usize;
        self.wait_for(dest, |p| {
            p.credits.can_send() && p.sq_used < SEND_WR && (!needs_slot || !p.free_slots.is_empty())
        })?;
        if !big {
            return self.post_small(dest, Kind::Eager, tag, data.len() as u64, data);
        }
        let base = data.as_ptr() as usize;
        self.region(dest, base, data.len(), false)?;
        self.wait_for(dest, |p| !p.cleared.is_empty())?;
        let to = match self.peers[dest].cleared.take(tag, data.len() as u64) {
            Some(Ok(to)) => to,
            Some(Err(c)) => {
                return Err(CommError::Mismatch {
                    rank: dest,
                    addr: self.addr(dest),
                    tag: c.tag,
                    len: c.len as usize,
                    got_tag: tag,
                    got_len: data.len() as u64,
                });
            }
            None => unreachable!("waited for a clearance"),
        };
        self.peers[dest].rdma_done = 0;
        let mut posted = 0u32;
        for (o, l) in proto::chunks(data.len()) {
            self.wait_for(dest, |p| posted - p.rdma_done < RDMA_WINDOW && p.sq_used < SEND_WR)?;
            let region = self.cache.get(base, data.len()).expect("registered above");
            let p = &mut self.peers[dest];
            let r = p.qp.post_write(
                region,
                (base + o) as u64,
                l,
                to.addr + o as u64,
                to.rkey,
                wr(WR_RDMA, dest, posted),
            );
            if let Err(e) = r {
                p.qp.fail();
                return Err(self.err(dest, "writing (rendezvous) to", e));
            }
            p.sq_used += 1;
            posted += 1;
        }
        // The FIN follows the writes on the connection, so the receiver
        // sees it only once the bytes are in place.
        self.wait_for(dest, |p| p.credits.can_send_credit() && p.sq_used < SEND_WR)?;
        self.post_small(dest, Kind::Fin, tag, 0, &[])?;
        let n = posted;
        // `data` stays borrowed until the device has read it all.
        if let Err(e) = self.wait_for(dest, |p| p.rdma_done >= n) {
            self.peers[dest].qp.fail();
            return Err(e);
        }
        Ok(())
    }

    fn recv(&mut self, src: usize, tag: u32, buf: &mut [u8]) -> Result<(), CommError> {
        self.check_up(src)?;
        if proto::rendezvous(buf.len()) && self.peers[src].arrived.is_empty() {
            return self.recv_rendezvous(src, tag, buf);
        }
        self.wait_for(src, |p| !p.arrived.is_empty())?;
        let slot = *self.peers[src].arrived.front().expect("waited for it");
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
        self.repost(src, slot, false)
    }
}

impl VerbsTransport {
    /// Receives a rendezvous message: clears the sender to write into
    /// `buf`, then waits for its FIN (see [`proto`]).
    fn recv_rendezvous(&mut self, src: usize, tag: u32, buf: &mut [u8]) -> Result<(), CommError> {
        let base = buf.as_mut_ptr() as usize;
        let rkey = self.region(src, base, buf.len(), true)?.rkey();
        self.wait_for(src, |p| p.credits.can_send_credit() && p.sq_used < SEND_WR)?;
        let cts = RemoteBuf {
            addr: base as u64,
            rkey,
        };
        self.post_small(src, Kind::Cts, tag, buf.len() as u64, &cts.encode())?;
        self.peers[src].rrndv = RecvRndv::AwaitFin;
        let waited = self.wait_for(src, |p| p.rrndv == RecvRndv::Idle || !p.arrived.is_empty());
        if waited.is_ok() && self.peers[src].rrndv == RecvRndv::Idle {
            return Ok(());
        }
        // The peer sent something else, or failed: it must never write into
        // `buf` once we return, so this pair is closed for good.
        self.peers[src].qp.fail();
        let _ = self.progress(None);
        waited?;
        let slot = *self.peers[src].arrived.front().expect("arrived");
        let h = Header::decode(self.recv.read(slot as usize * EAGER_BUF, HEADER)).expect("checked");
        Err(CommError::Mismatch {
            rank: src,
            addr: self.addr(src),
            tag,
            len: buf.len(),
            got_tag: h.tag,
            got_len: h.len,
        })
    }
}
