//! The shared-memory transport between ranks on one host.
//!
//! # Segments and rings
//!
//! Each rank owns one inbound segment: a `memfd_create` file (so a crash
//! leaves nothing in `/dev/shm`; the memory goes when the last process that
//! maps it exits), mapped shared. It holds a small header and one
//! single-producer/single-consumer ring per sender rank, indexed by rank.
//! The endpoint published for the rank is `<pid>:<fd>:<probe-address-hex>`;
//! a sender opens `/proc/<pid>/fd/<fd>` and maps the segment the first time
//! it sends (or in [`Transport::connect`]). Receiving needs no mapping but
//! our own. A peer keeps its mapping valid even after the owner drops its
//! transport: the kernel frees the memory with the last mapping.
//!
//! A ring is a control block of four 64-byte lines (the producer's `head`;
//! the consumer's `tail` and rendezvous `done`; the consumer's futex word and
//! sleep flag; the producer's) followed by [`RING`] bytes. `head` and `tail`
//! are monotonic byte counters (positions modulo the ring size), published
//! with release stores and read with acquire loads, on separate cache lines
//! so the two sides never write the same line on the fast path. Memory cost
//! per rank: at most `(size - 1) ×` ([`RING`] + 256 B) of resident memory, and
//! only for the senders that actually write to it (the file is sparse;
//! untouched rings cost no pages).
//!
//! # Messages
//!
//! A frame is a 24-byte header (stamp: u64, kind: u32, tag: u32, length:
//! u64) and a body, padded to a multiple of 8 bytes: frames start 8-aligned,
//! so a stamp never wraps (header and body may; each copy is split in two at
//! the end of the ring), and `head` and `tail` stay multiples of 8.
//!
//! The producer writes a frame's header and body (the first piece of a
//! streamed one), the bytes on the stamp's cache line last, then its stamp,
//! the frame's ring position + 1, with a release store, then `head`. A blocking receive waits on the stamp word at
//! `tail`: the flag shares the line of a small message's bytes, so the
//! message costs the receiver one cache line where polling `head` cost two
//! (MPICH's fastbox cells carry their flag the same way). That word changes
//! only when the frame starting there is published, so once the receive
//! has seen another value there, the stamp it waits for can come only from
//! its frame. If its first look already finds the stamp (the frame came
//! first, or bytes of a frame one lap older happen to hold that value),
//! `head` decides. A frame that fits the ring is published whole, with its
//! stamp; a larger one is published piece by piece, and `head` says how far.
//! [`Transport::try_recv`] looks at `head` only.
//!
//! - `DATA`: the payload follows the header. Up to the eager limit this is
//!   one copy in, one copy out. A payload larger than the free space (or the
//!   ring) is streamed: the producer writes pieces as the consumer frees
//!   space, publishing `head` after each, and the consumer copies pieces out
//!   as they arrive, publishing `tail` after each.
//! - `RNDV` (above the eager limit, when cross-memory attach works): the body
//!   is the sender's pid, buffer address and a sequence number; the receiver
//!   copies straight from the sender's memory into the user buffer with
//!   `process_vm_readv` (one copy, no ring traffic) and stores the sequence
//!   number in `done`, which releases the blocked sender. If the read
//!   fails (`EPERM`, say), it stores the sequence with a "refused" bit instead
//!   and the sender falls back to a streamed `DATA` frame for that message
//!   and all later ones to that peer.
//!   A rank whose cross-memory attach is turned off refuses the same way.
//!
//! - `SHARED` (above the eager limit, when the message lies in a buffer from
//!   [`ShmTransport::alloc`], MPI_Alloc_mem's counterpart): such buffers live
//!   in memory files of their own, so the body names the sender's pid, the
//!   file's descriptor, the buffer's id and the message's offset; the
//!   receiver maps the file read-only once (kept per sender buffer) and
//!   copies with an ordinary `memcpy`, the one copy at memory speed that
//!   `process_vm_readv` (which pins every page) does not reach. Then `done`,
//!   as for `RNDV`, and the same refusal and fallback.
//!
//! Cross-memory attach is probed per pair when the sender attaches (it reads
//! the receiver's probe word, the segment's magic, with `process_vm_readv`).
//! `create` calls `prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY)`, so machines
//! with Yama's `ptrace_scope=1` allow it too.
//!
//! A receive peeks at the header: a frame whose tag or length differs from
//! the one expected is [`CommError::Mismatch`] and stays in the ring.
//!
//! # Non-blocking progress
//!
//! [`Transport::try_send`] and [`Transport::try_recv`] take the blocking
//! calls' steps one at a time, each only when it needs no wait, and keep
//! the message's place in the caller's [`Partial`]:
//!
//! - Sending, `stage` is the kind of the frame in progress (0 before one).
//!   A `DATA` frame goes in as the room it needs is free (a frame that fits
//!   the ring goes in whole, a larger one in pieces of at least a quarter
//!   ring, the first holding the header): `word` is its position, `moved`
//!   its bytes in. A rendezvous frame is posted once it fits (`word`: its
//!   sequence number) and later calls look at `done`; a refusal turns that
//!   way off for the pair, as in the blocking send, and the message starts
//!   again.
//! - Receiving, a published header is checked (a mismatch is an error and
//!   the frame stays). A rendezvous is taken at once: its copy is local
//!   work (`process_vm_readv` or a `memcpy` of a message already posted);
//!   after a refusal the call goes on with the message's next frame. A
//!   `DATA` body is copied as far as it is published, each piece released
//!   at once (`stage` is then `DATA`, `word` the body's position, `moved`
//!   the bytes copied).
//!
//! Each step publishes and wakes as the blocking calls do, so a peer asleep
//! in one of them wakes; blocking and non-blocking calls may alternate
//! between messages. [`Transport::check_peer`] reports a peer whose process
//! is gone ([`CommError::PeerGone`]); when it left bytes unread in our ring,
//! only if they are still there at the next check (it may have sent them
//! just before exiting).
//!
//! # Waiting
//!
//! Ranks are often oversubscribed (two ranks on one CPU), so waiting is
//! spin → yield → sleep: 32 polls with `spin_loop`, then
//! `sched_yield` for up to 2 ms (which lets a rank sharing the CPU
//! run and answer), then a futex wait on the ring's sequence word with a
//! "sleeping" flag, so the other side pays a `futex_wake` only when someone
//! sleeps. Sleeps time out every 100 ms to check that the peer still
//! exists (`kill(pid, 0)`), which turns a dead peer into
//! [`CommError::PeerGone`] rather than a hang.
//!
//! # Measurements
//!
//! `tests::timing` on a two-vCPU AMD EPYC VM, best of ten batches (other
//! builds were running, so single runs vary up to 2×):
//!
//! | 1-byte half round trip | two CPUs | one shared CPU |
//! |------------------------|----------|----------------|
//! | spin 32 polls (chosen) | 0.2 µs   | 2.9 µs         |
//! | spin 200 polls         | 0.8 µs   | 10 µs          |
//! | no spin (yield at once)| 3 µs     | 3.3 µs         |
//!
//! (A budget adapting between 8 and 1000 polls cost the shared CPU 30 µs.)
//!
//! The fast path since, same machine, quiet, alternate runs of each build
//! (best of ten batches each):
//!
//! | 1-byte half round trip                      | two CPUs | one shared CPU |
//! |---------------------------------------------|----------|----------------|
//! | endpoint parsed on every call, `head` polled | 0.16 µs  | 2.80 µs        |
//! | endpoints parsed once                        | 0.11 µs  | 2.74 µs        |
//! | stamp in the frame's line (now)              | 0.098 µs | 2.65 µs        |
//!
//! A 1 KiB ping-pong of this transport: 0.232 µs polling `head`, 0.233 µs
//! polling the stamp with its line written first, 0.198 µs with that line
//! written last (`Ring::put_first`). Eager messages of 8 and 16 KiB lost 3
//! to 4% to the stamp (0.73 → 0.75 µs; 11.6 → 11.0 GB/s in the table
//! below); 64 KiB and larger, nothing.
//!
//! | pingpong, GB/s | two CPUs: ring / cma | one CPU: ring / cma |
//! |----------------|----------------------|---------------------|
//! | 16 KiB         | 11.0 / 4.2           | 4.7 / 2.8           |
//! | 64 KiB         | 12.4 / 7.1           | 5.8 / 6.7           |
//! | 256 KiB        | 12.8 / 8.9           | 6.7 / 9.0           |
//! | 1 MiB          | 12.3 / 10.6          | 7.0 / 10.1          |
//! | 4 MB           | 12.3 / 10.7          | 7.1 / 10.4          |
//!
//! Two vCPUs of this VM share caches, which flatters the ring's two copies;
//! on one CPU (oversubscribed ranks) the single copy wins from 64 KiB,
//! and it leaves the sender's CPU and the ring free. Hence
//! [`DEFAULT_EAGER_LIMIT`] of 64 KiB (overridden by `MSMPI_SHM_EAGER_LIMIT`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sys::{self, OwnedShared, ReadOnlyMap, SharedMap};
use super::{CommError, Partial, Transport};
use crate::env;

/// Bytes of each ring's data area (a power of two).
pub const RING: usize = 64 * 1024;
/// Messages larger than this go by rendezvous (`process_vm_readv`) when the
/// pair allows it; `MSMPI_SHM_EAGER_LIMIT` overrides it.
pub const DEFAULT_EAGER_LIMIT: usize = 64 * 1024;
/// Messages larger than this, from a [`ShmBuffer`], are copied straight from
/// it (one `memcpy` beats the ring's two from about here, measured with
/// mpipingpong); `MSMPI_SHM_EAGER_LIMIT`, when set, is the limit for both.
pub const SHARED_LIMIT: usize = 16 * 1024;
/// Polls before yielding: about two round trips between CPUs (measured,
/// see the module doc). Longer spins only delay a rank whose peer shares
/// its CPU; on a CPU of its own, yielding with nothing else to run returns
/// at once, so the yield phase keeps polling there anyway.
const SPIN: u32 = 32;
/// How long to yield before sleeping.
const YIELD_FOR: Duration = Duration::from_millis(2);
/// Longest futex sleep between two liveness checks of the peer.
const SLEEP: Duration = Duration::from_millis(100);

const MAGIC: u64 = u64::from_le_bytes(*b"hpcshm01");
const LINE: usize = 64;
/// Segment header: magic (the probe word), ranks, ring size; one page so
/// the rings start page-aligned.
const SEG_HEADER: usize = 4096;
const CONTROL: usize = 4 * LINE;
const RING_STRIDE: usize = CONTROL + RING;

// Control block, relative to the ring's base.
const HEAD: usize = 0;
const TAIL: usize = LINE;
const DONE: usize = LINE + 8;
const DATA_SEQ: usize = 2 * LINE;
const DATA_SLEEPING: usize = 2 * LINE + 4;
const SPACE_SEQ: usize = 3 * LINE;
const SPACE_SLEEPING: usize = 3 * LINE + 4;

/// A frame's header: stamp (u64), kind (u32), tag (u32), length (u64).
const FRAME_HEADER: usize = 24;
/// Frames start and end at multiples of this (so a stamp never wraps).
const FRAME_ALIGN: usize = 8;
const KIND_DATA: u32 = 1;
const KIND_RNDV: u32 = 2;
const KIND_SHARED: u32 = 3;
const SHARED_FRAME: usize = rendezvous_frame(3);

/// A buffer of this rank that peers may read directly.
#[derive(Clone, Copy, Debug)]
struct Region {
    id: u64,
    fd: i32,
    start: usize,
    len: usize,
}

/// The live buffers from [`ShmTransport::alloc`], shared with them so each
/// leaves the list when dropped.
type Registry = Arc<Mutex<Vec<Region>>>;

/// Memory peers on this host read straight from (see the module doc),
/// from [`ShmTransport::alloc`]; a byte slice to its owner.
pub struct ShmBuffer {
    map: Option<OwnedShared>,
    /// Kept open: peers open it through `/proc/<pid>/fd`.
    file: File,
    len: usize,
    id: u64,
    registry: Registry,
}

impl std::fmt::Debug for ShmBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmBuffer")
            .field("len", &self.len)
            .field("fd", &self.file.as_raw_fd())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for ShmBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.map.as_ref().map_or(&[], |m| &m.as_slice()[..self.len])
    }
}

impl std::ops::DerefMut for ShmBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        self.map
            .as_mut()
            .map_or(&mut [], |m| &mut m.as_mut_slice()[..len])
    }
}

impl Drop for ShmBuffer {
    fn drop(&mut self) {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|x| x.id != self.id);
    }
}
/// Bit of `done` saying the receiver could not read the sender's memory.
const REFUSED: u64 = 1;

/// A peer's published endpoint.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    pid: u32,
    fd: i32,
    probe: usize,
}

impl Endpoint {
    fn parse(s: &str) -> Option<Endpoint> {
        let mut it = s.split(':');
        let pid = it.next()?.parse().ok()?;
        let fd = it.next()?.parse().ok()?;
        let probe = usize::from_str_radix(it.next()?, 16).ok()?;
        it.next().is_none().then_some(Endpoint { pid, fd, probe })
    }
}

/// One ring inside a mapped segment.
#[derive(Clone, Copy)]
struct Ring<'a> {
    map: &'a SharedMap,
    base: usize,
}

impl<'a> Ring<'a> {
    fn of(map: &'a SharedMap, sender: usize) -> Ring<'a> {
        Ring {
            map,
            base: SEG_HEADER + sender * RING_STRIDE,
        }
    }
    fn head(&self) -> &'a AtomicU64 {
        self.map.u64_at(self.base + HEAD)
    }
    fn tail(&self) -> &'a AtomicU64 {
        self.map.u64_at(self.base + TAIL)
    }
    fn done(&self) -> &'a AtomicU64 {
        self.map.u64_at(self.base + DONE)
    }
    fn data_seq(&self) -> &'a AtomicU32 {
        self.map.u32_at(self.base + DATA_SEQ)
    }
    fn data_sleeping(&self) -> &'a AtomicU32 {
        self.map.u32_at(self.base + DATA_SLEEPING)
    }
    fn space_seq(&self) -> &'a AtomicU32 {
        self.map.u32_at(self.base + SPACE_SEQ)
    }
    fn space_sleeping(&self) -> &'a AtomicU32 {
        self.map.u32_at(self.base + SPACE_SLEEPING)
    }

    /// Copies `src` to ring position `pos`, split at the end of the ring.
    fn write(&self, pos: u64, src: &[u8]) {
        let i = pos as usize & (RING - 1);
        let first = src.len().min(RING - i);
        let data = self.base + CONTROL;
        self.map.write(data + i, &src[..first]);
        self.map.write(data, &src[first..]);
    }

    /// Copies from ring position `pos` into `dst`, split at the end of the ring.
    fn read(&self, pos: u64, dst: &mut [u8]) {
        let i = pos as usize & (RING - 1);
        let first = dst.len().min(RING - i);
        let data = self.base + CONTROL;
        let (a, b) = dst.split_at_mut(first);
        self.map.read(data + i, a);
        self.map.read(data, b);
    }

    /// The stamp word of the frame at ring position `pos` (8-aligned):
    /// `pos + 1` once that frame is published (see the module doc).
    fn stamp(&self, pos: u64) -> &'a AtomicU64 {
        self.map
            .u64_at(self.base + CONTROL + (pos as usize & (RING - 1)))
    }

    /// Writes bytes 8 to `end` of the frame at `start` with `put(from, to)`
    /// (frame offsets), then its stamp. The bytes on the stamp's cache line
    /// go last, just before the stamp: the consumer polls that line, and
    /// writing it in one burst spares a transfer of the line back and forth
    /// while the rest of a larger frame is written.
    fn put_first(&self, start: u64, end: usize, put: impl Fn(usize, usize)) {
        let split = (LINE - start as usize % LINE).min(end);
        if split < end {
            put(split, end);
        }
        put(8, split);
        self.stamp(start).store(start + 1, Ordering::Release);
    }

    /// Releases the bytes before `pos` to the producer.
    fn release(&self, pos: u64) {
        debug_assert_eq!(pos % FRAME_ALIGN as u64, 0, "tail {pos} unaligned");
        self.tail().store(pos, Ordering::Release);
        notify(self.space_seq(), self.space_sleeping());
    }

    /// The consumer's answer to rendezvous `seq`: copied (`Some(true)`),
    /// refused (`Some(false)`), or not yet.
    fn answer(&self, seq: u64) -> Option<bool> {
        let d = self.done().load(Ordering::Acquire);
        (d >> 1 == seq).then_some(d & REFUSED == 0)
    }
}

/// Wakes the side sleeping on `seq` if its flag says it sleeps. The fence
/// pairs with the one in [`wait_for`]: either the sleeper sees our update
/// before sleeping, or we see its flag.
fn notify(seq: &AtomicU32, sleeping: &AtomicU32) {
    fence(Ordering::SeqCst);
    if sleeping.load(Ordering::Relaxed) != 0 {
        seq.fetch_add(1, Ordering::SeqCst);
        sys::futex_wake(seq);
    }
}

/// Who we wait for, to name in errors and to check for liveness.
#[derive(Clone, Copy)]
struct Peer {
    rank: usize,
    pid: u32,
}

/// Polls `ready` until it yields a value: spin, then yield, then futex
/// sleeps on `seq` with `sleeping` raised (see the module doc).
fn wait_for<T>(
    peer: Peer,
    seq: &AtomicU32,
    sleeping: &AtomicU32,
    mut ready: impl FnMut() -> Option<T>,
) -> Result<T, CommError> {
    for _ in 0..SPIN {
        if let Some(v) = ready() {
            return Ok(v);
        }
        std::hint::spin_loop();
    }
    let start = Instant::now();
    while start.elapsed() < YIELD_FOR {
        for _ in 0..16 {
            if let Some(v) = ready() {
                return Ok(v);
            }
            std::thread::yield_now();
        }
    }
    loop {
        sleeping.store(1, Ordering::Relaxed);
        let s = seq.load(Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if let Some(v) = ready() {
            sleeping.store(0, Ordering::Relaxed);
            return Ok(v);
        }
        let timed_out = sys::futex_wait(seq, s, SLEEP).map_err(|source| CommError::Shm {
            rank: peer.rank,
            what: "waiting on a futex".to_string(),
            source,
        })?;
        if timed_out && !sys::alive(peer.pid) {
            sleeping.store(0, Ordering::Relaxed);
            return ready().ok_or(CommError::PeerGone {
                rank: peer.rank,
                pid: peer.pid,
            });
        }
    }
}

/// Our ring in a peer's segment.
struct Outbound {
    map: SharedMap,
    sender: usize,
    /// Our copy of `head` (we are its only writer).
    head: u64,
    /// Last rendezvous sequence number used.
    seq: u64,
    /// The receiver's `tail` as last read (it only grows).
    tail_seen: u64,
    /// Whether the peer can read our memory (probed at attach).
    cma: bool,
    /// Whether the peer reads our [`ShmBuffer`]s (until it refuses one).
    shared: bool,
}

/// [`Transport`] over shared memory between ranks of one host (see the module doc).
pub struct ShmTransport {
    rank: usize,
    size: usize,
    /// Kept open: peers open it through `/proc/<pid>/fd`.
    file: File,
    inbound: SharedMap,
    endpoints: Vec<Option<String>>,
    /// The same, parsed once: a send or receive does not parse them again.
    parsed: Vec<Option<Endpoint>>,
    outbound: Vec<Option<Outbound>>,
    eager_limit: usize,
    /// Messages larger than this, sent from a [`ShmBuffer`], go by `SHARED`.
    shared_limit: usize,
    /// Whether large messages may use cross-memory attach, to send (after
    /// a successful probe) or to receive (else refused as if `EPERM`).
    /// Off in tests, to force the streamed path and the refusal.
    cma_allowed: bool,
    regions: Registry,
    next_region: u64,
    /// Peers' buffers mapped read-only, by (pid, descriptor): the buffer id
    /// (a descriptor number may be reused for a new buffer) and the map.
    peer_buffers: RefCell<HashMap<(u32, i32), (u64, ReadOnlyMap)>>,
    /// Per peer found dead by [`Transport::check_peer`] with bytes unread
    /// in our ring: our `tail` then.
    gone_tail: Vec<Option<u64>>,
}

impl std::fmt::Debug for ShmTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmTransport")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("fd", &self.file.as_raw_fd())
            .field("eager_limit", &self.eager_limit)
            .finish_non_exhaustive()
    }
}

impl ShmTransport {
    /// Creates this rank's inbound segment; returns the transport and the
    /// endpoint string to publish in the PMI key-value space.
    pub fn create(rank: usize, size: usize) -> Result<(ShmTransport, String), CommError> {
        let err = |what: &str| {
            let what = what.to_string();
            move |source| CommError::Shm { rank, what, source }
        };
        sys::allow_any_ptracer().map_err(err("allowing peers to read this rank's memory"))?;
        let len = SEG_HEADER + size * RING_STRIDE;
        let file = sys::memfd(&format!("hpcpack-shm-{rank}"), len)
            .map_err(err("creating the inbound segment"))?;
        let inbound = SharedMap::new(&file, len).map_err(err("mapping the inbound segment"))?;
        inbound.u64_at(8).store(size as u64, Ordering::Relaxed);
        inbound.u64_at(16).store(RING as u64, Ordering::Relaxed);
        inbound.u64_at(0).store(MAGIC, Ordering::Release);
        let endpoint = format!(
            "{}:{}:{:x}",
            std::process::id(),
            file.as_raw_fd(),
            inbound.addr(0)
        );
        let set_limit = env::var(env::MSMPI_SHM_EAGER_LIMIT).and_then(|v| v.trim().parse().ok());
        let eager_limit = set_limit.unwrap_or(DEFAULT_EAGER_LIMIT);
        let shared_limit = set_limit.unwrap_or(SHARED_LIMIT);
        let t = ShmTransport {
            rank,
            size,
            file,
            inbound,
            endpoints: vec![None; size],
            parsed: vec![None; size],
            outbound: (0..size).map(|_| None).collect(),
            eager_limit,
            shared_limit,
            cma_allowed: true,
            regions: Arc::new(Mutex::new(Vec::new())),
            next_region: 0,
            peer_buffers: RefCell::new(HashMap::new()),
            gone_tail: vec![None; size],
        };
        Ok((t, endpoint))
    }

    /// Every rank's endpoint, indexed by rank; `None` for ranks that will
    /// not be reached over shared memory (other host, or shm disabled).
    pub fn with_peers(mut self, endpoints: Vec<Option<String>>) -> ShmTransport {
        self.endpoints = endpoints;
        self.endpoints.resize(self.size, None);
        self.parsed = (self.endpoints.iter())
            .map(|e| e.as_deref().and_then(Endpoint::parse))
            .collect();
        self
    }

    /// A buffer of `len` bytes (zeroed) that peers on this host copy
    /// straight from when it is sent (see the module doc).
    pub fn alloc(&mut self, len: usize) -> Result<ShmBuffer, CommError> {
        let rank = self.rank;
        let err = |source| CommError::Shm {
            rank,
            what: format!("allocating a shared buffer of {len} bytes"),
            source,
        };
        self.next_region += 1;
        let id = self.next_region;
        let file = sys::memfd(&format!("hpcpack-buf-{rank}-{id}"), len.max(1)).map_err(err)?;
        let map = if len == 0 {
            None
        } else {
            Some(OwnedShared::new(&file, len).map_err(err)?)
        };
        let start = map.as_ref().map_or(0, |m| m.as_slice().as_ptr() as usize);
        if len > 0 {
            let mut r = self.regions.lock().unwrap_or_else(|e| e.into_inner());
            r.push(Region {
                id,
                fd: file.as_raw_fd(),
                start,
                len,
            });
        }
        Ok(ShmBuffer {
            map,
            file,
            len,
            id,
            registry: Arc::clone(&self.regions),
        })
    }

    /// The buffer `data` lies in, with its offset there.
    fn region_of(&self, data: &[u8]) -> Option<(Region, usize)> {
        let (a, n) = (data.as_ptr() as usize, data.len());
        let r = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        r.iter()
            .find(|r| a >= r.start && a + n <= r.start + r.len)
            .map(|r| (*r, a - r.start))
    }

    /// Copies `buf.len()` bytes at address `addr` of process `pid` into
    /// `buf` with `process_vm_readv`.
    fn read_cma(&self, pid: u32, addr: usize, buf: &mut [u8]) -> io::Result<()> {
        if !self.cma_allowed {
            // Refused as the kernel would refuse it.
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        let mut copied = 0;
        while copied < buf.len() {
            match sys::vm_read(pid, addr + copied, &mut buf[copied..]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(n) => copied += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes at `offset` of buffer `id` of process `pid`
    /// (descriptor `fd`) into `buf`.
    fn copy_shared(
        &self,
        pid: u32,
        fd: i32,
        id: u64,
        offset: usize,
        buf: &mut [u8],
    ) -> io::Result<()> {
        let mut cache = self.peer_buffers.borrow_mut();
        let fresh = !matches!(cache.get(&(pid, fd)), Some((have, _)) if *have == id);
        if fresh {
            let path = format!("/proc/{pid}/fd/{fd}");
            let file = File::open(&path)?;
            let len = file.metadata()?.len() as usize;
            cache.insert((pid, fd), (id, ReadOnlyMap::new(&file, len)?));
        }
        let (_, map) = cache.get(&(pid, fd)).expect("inserted just above");
        if map.read(offset, buf) {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{} bytes at {offset} are outside the sender's buffer of {} bytes",
                buf.len(),
                map.len()
            )))
        }
    }

    fn endpoint(&self, rank: usize) -> Result<Endpoint, CommError> {
        if let Some(Some(ep)) = self.parsed.get(rank) {
            return Ok(*ep);
        }
        let shm_err = |what: &str, msg: String| CommError::Shm {
            rank,
            what: what.to_string(),
            source: io::Error::other(msg),
        };
        if rank >= self.size {
            return Err(CommError::NoSuchRank {
                rank,
                size: self.size,
            });
        }
        let text = self.endpoints[rank].as_deref().ok_or_else(|| {
            shm_err(
                "no endpoint",
                format!("rank {rank} is not reachable over shared memory (another host, or shared memory disabled)"),
            )
        })?;
        Endpoint::parse(text).ok_or_else(|| {
            shm_err(
                "bad endpoint",
                format!("{text:?} is not <pid>:<fd>:<probe-address-hex>"),
            )
        })
    }

    fn addr(&self, rank: usize) -> String {
        match self.endpoints.get(rank).and_then(Option::as_deref) {
            Some(e) => format!("shm {e}"),
            None => "shm".to_string(),
        }
    }

    /// Maps `dest`'s segment and probes cross-memory attach, once.
    fn attach(&mut self, dest: usize) -> Result<(Peer, &mut Outbound), CommError> {
        let ep = self.endpoint(dest)?;
        let peer = Peer {
            rank: dest,
            pid: ep.pid,
        };
        if self.outbound[dest].is_none() {
            let path = format!("/proc/{}/fd/{}", ep.pid, ep.fd);
            let err = |what: String| {
                move |source| {
                    if sys::alive(ep.pid) {
                        CommError::Shm {
                            rank: dest,
                            what,
                            source,
                        }
                    } else {
                        CommError::PeerGone {
                            rank: dest,
                            pid: ep.pid,
                        }
                    }
                }
            };
            let file = File::options()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(err(format!("opening its segment {path}")))?;
            let len = file
                .metadata()
                .map_err(err(format!("reading the size of {path}")))?
                .len() as usize;
            let want = SEG_HEADER + self.size * RING_STRIDE;
            if len != want {
                return Err(CommError::Shm {
                    rank: dest,
                    what: format!("checking its segment {path}"),
                    source: io::Error::other(format!(
                        "{len} bytes, expected {want} (a job of {} ranks with {RING}-byte rings)",
                        self.size
                    )),
                });
            }
            let map = SharedMap::new(&file, len).map_err(err(format!("mapping {path}")))?;
            if map.u64_at(0).load(Ordering::Acquire) != MAGIC {
                return Err(CommError::Shm {
                    rank: dest,
                    what: format!("checking its segment {path}"),
                    source: io::Error::other("not an hpcpack shared-memory segment"),
                });
            }
            let mut probe = [0u8; 8];
            let cma = self.cma_allowed
                && sys::vm_read(ep.pid, ep.probe, &mut probe).is_ok_and(|n| n == 8)
                && u64::from_ne_bytes(probe) == MAGIC;
            let ring = Ring::of(&map, self.rank);
            let head = ring.head().load(Ordering::Acquire);
            let seq = ring.done().load(Ordering::Acquire) >> 1;
            let tail_seen = ring.tail().load(Ordering::Acquire);
            self.outbound[dest] = Some(Outbound {
                map,
                sender: self.rank,
                head,
                tail_seen,
                seq,
                cma,
                shared: true,
            });
        }
        let out = self.outbound[dest].as_mut().expect("attached just above");
        Ok((peer, out))
    }
}

/// A rendezvous frame to post: its kind and its fields besides the
/// sender's pid and the sequence number (`RNDV` uses the first only).
#[derive(Clone, Copy)]
struct Rendezvous {
    kind: u32,
    fields: [u64; 3],
}

impl Rendezvous {
    /// Bytes of the frame in the ring.
    fn size(&self) -> usize {
        rendezvous_frame(fields_of(self.kind))
    }
}

/// Fields of a rendezvous frame of `kind`, besides the pid and the
/// sequence number.
const fn fields_of(kind: u32) -> usize {
    if kind == KIND_RNDV { 1 } else { 3 }
}

/// Which ways besides `DATA` a message may take, decided before attaching.
struct Plan {
    /// The [`ShmBuffer`] the message lies in and its offset there, when it
    /// is large enough for `SHARED`.
    region: Option<(Region, usize)>,
    /// Whether it is large enough for `RNDV` (and cross-memory attach is
    /// allowed).
    cma: bool,
    /// Its address, for `RNDV`.
    addr: u64,
}

impl Plan {
    /// The rendezvous to try next through `out`: `SHARED` until the peer
    /// refuses one, then `RNDV` until it refuses one; `None`: a `DATA`
    /// frame.
    fn rendezvous(&self, out: &Outbound) -> Option<Rendezvous> {
        match self.region {
            Some((r, offset)) if out.shared => Some(Rendezvous {
                kind: KIND_SHARED,
                fields: [r.fd as u64, r.id, offset as u64],
            }),
            _ if self.cma && out.cma => Some(Rendezvous {
                kind: KIND_RNDV,
                fields: [self.addr, 0, 0],
            }),
            _ => None,
        }
    }
}

/// The free bytes of `ring` for a producer at `head`, if at least `need`,
/// without waiting. Most sends fit in the space seen last time: reading
/// `tail` (a line the receiver writes for every message) only when they do
/// not saves a cache miss per message.
fn free_space(ring: Ring<'_>, head: u64, tail_seen: &mut u64, need: usize) -> Option<usize> {
    let free = |tail: u64| RING.saturating_sub(head.wrapping_sub(tail) as usize);
    if free(*tail_seen) < need {
        *tail_seen = ring.tail().load(Ordering::Acquire);
    }
    let free = free(*tail_seen);
    (free >= need).then_some(free)
}

impl Outbound {
    fn ring(&self) -> Ring<'_> {
        Ring::of(&self.map, self.sender)
    }

    /// The free bytes if at least `need`, without waiting.
    fn free(&mut self, need: usize) -> Option<usize> {
        free_space(
            Ring::of(&self.map, self.sender),
            self.head,
            &mut self.tail_seen,
            need,
        )
    }

    /// Waits until `need` bytes are free; returns the free bytes.
    fn wait_space(&mut self, peer: Peer, need: usize) -> Result<usize, CommError> {
        if let Some(free) = self.free(need) {
            return Ok(free);
        }
        let ring = Ring::of(&self.map, self.sender);
        let (head, tail_seen) = (self.head, &mut self.tail_seen);
        wait_for(peer, ring.space_seq(), ring.space_sleeping(), || {
            free_space(ring, head, tail_seen, need)
        })
    }

    fn publish(&mut self, head: u64) {
        debug_assert_eq!(head % FRAME_ALIGN as u64, 0, "head {head} unaligned");
        self.head = head;
        let ring = self.ring();
        ring.head().store(head, Ordering::Release);
        notify(ring.data_seq(), ring.data_sleeping());
    }

    /// Writes the `DATA` frame of `data` that starts at ring position
    /// `start`, from its byte `*written` (header included) on, publishing
    /// each piece: `space(self, need)` gives the free bytes once at least
    /// `need`, or `None` to stop there for now. True once the whole frame
    /// is in.
    fn put_data(
        &mut self,
        tag: u32,
        data: &[u8],
        start: u64,
        written: &mut usize,
        mut space: impl FnMut(&mut Outbound, usize) -> Result<Option<usize>, CommError>,
    ) -> Result<bool, CommError> {
        let header = frame_header(KIND_DATA, tag, data.len());
        let body_end = FRAME_HEADER + data.len();
        let total = padded(body_end);
        while *written < total {
            let remaining = total - *written;
            // A frame that fits goes in one piece; a larger one in pieces of
            // at least a quarter ring, so neither side wakes for crumbs.
            let need = if fits(data.len()) {
                remaining
            } else {
                remaining
                    .min(RING / 4)
                    .max(FRAME_HEADER - (*written).min(FRAME_HEADER))
            };
            let Some(free) = space(self, need)? else {
                return Ok(false);
            };
            let ring = self.ring();
            let (at, end) = (*written, *written + free.min(remaining));
            // Frame bytes [from, to): header, then payload (not the padding).
            let put = |from: usize, to: usize| {
                if from < to.min(FRAME_HEADER) {
                    ring.write(start + from as u64, &header[from..to.min(FRAME_HEADER)]);
                }
                let (a, b) = (from.max(FRAME_HEADER), to.min(body_end));
                if a < b {
                    ring.write(start + a as u64, &data[a - FRAME_HEADER..b - FRAME_HEADER]);
                }
            };
            match at {
                // The first piece holds the whole header (see `need`).
                0 => ring.put_first(start, end, put),
                _ => put(at, end),
            }
            *written = end;
            self.publish(start + end as u64);
        }
        Ok(true)
    }

    /// Posts `r` for a message of `len` bytes under `tag` (the caller made
    /// sure it fits) with a new sequence number, which it returns.
    fn post(&mut self, r: Rendezvous, tag: u32, len: usize) -> u64 {
        self.seq += 1;
        let size = r.size();
        let mut frame = [0u8; SHARED_FRAME];
        frame[..FRAME_HEADER].copy_from_slice(&frame_header(r.kind, tag, len));
        let words = std::iter::once(u64::from(std::process::id()))
            .chain(r.fields[..fields_of(r.kind)].iter().copied())
            .chain(std::iter::once(self.seq));
        for (i, w) in words.enumerate() {
            let at = FRAME_HEADER + 8 * i;
            frame[at..at + 8].copy_from_slice(&w.to_le_bytes());
        }
        let (ring, start) = (self.ring(), self.head);
        ring.put_first(start, size, |from, to| {
            ring.write(start + from as u64, &frame[from..to]);
        });
        self.publish(start + size as u64);
        self.seq
    }

    /// After the receiver refused a rendezvous of `kind`: this message and
    /// the later ones to it go another way.
    fn refused(&mut self, kind: u32) {
        match kind {
            KIND_SHARED => self.shared = false,
            _ => self.cma = false,
        }
    }
}

/// Bytes of a rendezvous frame carrying `fields` words besides the pid and
/// the sequence number.
const fn rendezvous_frame(fields: usize) -> usize {
    FRAME_HEADER + 8 * (fields + 2)
}

/// A header with its stamp left zero (the stamp is stored on its own,
/// last).
fn frame_header(kind: u32, tag: u32, len: usize) -> [u8; FRAME_HEADER] {
    let mut h = [0u8; FRAME_HEADER];
    h[8..12].copy_from_slice(&kind.to_le_bytes());
    h[12..16].copy_from_slice(&tag.to_le_bytes());
    h[16..].copy_from_slice(&(len as u64).to_le_bytes());
    h
}

/// `n` rounded up to a whole number of [`FRAME_ALIGN`] units.
const fn padded(n: usize) -> usize {
    n.next_multiple_of(FRAME_ALIGN)
}

/// Whether a `DATA` frame of `len` payload bytes fits the ring, and so is
/// written and published in one piece.
const fn fits(len: usize) -> bool {
    padded(FRAME_HEADER + len) <= RING
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

/// Copies what it can of the `DATA` body at ring position `body` into
/// `buf` from byte `copied` on, given `avail` bytes published from there,
/// and releases them; returns the bytes copied so far.
#[inline]
fn take_data(ring: Ring<'_>, body: u64, buf: &mut [u8], copied: usize, avail: u64) -> usize {
    let n = avail.min((buf.len() - copied) as u64) as usize;
    ring.read(body + copied as u64, &mut buf[copied..copied + n]);
    let copied = copied + n;
    if n > 0 || copied == buf.len() {
        // The body's end rounded up is the frame's end; a piece ends
        // aligned, at `head`.
        ring.release(body + padded(copied) as u64);
    }
    copied
}

impl ShmTransport {
    /// Who `rank` is, from its endpoint.
    fn peer(&self, rank: usize) -> Result<Peer, CommError> {
        let ep = self.endpoint(rank)?;
        Ok(Peer { rank, pid: ep.pid })
    }

    /// How `data` may go besides `DATA` (see [`Plan`]).
    #[inline]
    fn plan(&self, data: &[u8]) -> Plan {
        Plan {
            region: (data.len() > self.shared_limit)
                .then(|| self.region_of(data))
                .flatten(),
            cma: data.len() > self.eager_limit && self.cma_allowed,
            addr: data.as_ptr() as u64,
        }
    }

    /// Reads the header of the frame at `start` of `src`'s ring (published
    /// already) and checks it against a receive of `len` bytes under `tag`:
    /// its kind, or [`CommError::Mismatch`] with the frame left in place.
    #[inline]
    fn check_header(
        &self,
        src: usize,
        ring: Ring<'_>,
        start: u64,
        tag: u32,
        len: usize,
    ) -> Result<u32, CommError> {
        let mut header = [0u8; FRAME_HEADER - 8];
        ring.read(start + 8, &mut header);
        let kind = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let got_tag = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let got_len = le_u64(&header[8..]);
        match kind {
            KIND_DATA | KIND_RNDV | KIND_SHARED if got_tag == tag && got_len == len as u64 => {
                Ok(kind)
            }
            _ => Err(self.bad_header(src, kind, tag, len, got_tag, got_len)),
        }
    }

    /// The error for a header [`ShmTransport::check_header`] rejects (out
    /// of the receive's fast path).
    #[cold]
    fn bad_header(
        &self,
        src: usize,
        kind: u32,
        tag: u32,
        len: usize,
        got_tag: u32,
        got_len: u64,
    ) -> CommError {
        if got_tag != tag || got_len != len as u64 {
            return CommError::Mismatch {
                rank: src,
                addr: self.addr(src),
                tag,
                len,
                got_tag,
                got_len,
            };
        }
        CommError::Shm {
            rank: src,
            what: "reading a frame".to_string(),
            source: io::Error::other(format!("unknown frame kind {kind}")),
        }
    }

    /// Takes the rendezvous frame of `kind` at `start` (published whole):
    /// releases it, copies the message from the sender's memory into `buf`
    /// and answers in `done`; `Ok(false)` if it refused (the sender then
    /// sends the message again another way).
    fn take_rendezvous(
        &self,
        peer: Peer,
        ring: Ring<'_>,
        kind: u32,
        start: u64,
        buf: &mut [u8],
    ) -> Result<bool, CommError> {
        let fields = fields_of(kind);
        let size = rendezvous_frame(fields);
        let mut body = [0u8; SHARED_FRAME - FRAME_HEADER];
        let body = &mut body[..size - FRAME_HEADER];
        ring.read(start + FRAME_HEADER as u64, body);
        let word = |i: usize| le_u64(&body[8 * i..]);
        let pid = word(0) as u32;
        let seq = word(fields + 1);
        ring.release(start + size as u64);
        let result = if kind == KIND_RNDV {
            self.read_cma(pid, word(1) as usize, buf)
        } else {
            self.copy_shared(pid, word(1) as i32, word(2), word(3) as usize, buf)
        };
        // Any failure but the sender's death (EPERM above all, also a
        // partial read) is answered "refused": the sender then tries its
        // other ways, so the message is delivered all the same.
        if result.is_err() && !sys::alive(pid) {
            return Err(CommError::PeerGone {
                rank: peer.rank,
                pid,
            });
        }
        let refused = result.is_err();
        ring.done()
            .store(seq << 1 | u64::from(refused), Ordering::Release);
        notify(ring.space_seq(), ring.space_sleeping());
        Ok(!refused)
    }

    /// Receives one frame from `peer` into `buf`; `Ok(false)` when it was
    /// a rendezvous we could not read (the sender then streams it).
    fn recv_frame(&self, peer: Peer, tag: u32, buf: &mut [u8]) -> Result<bool, CommError> {
        let ring = Ring::of(&self.inbound, peer.rank);
        let start = ring.tail().load(Ordering::Relaxed);
        let head = || ring.head().load(Ordering::Acquire);
        let (stamp, want) = (ring.stamp(start), start + 1);
        if stamp.load(Ordering::Acquire) == want {
            // The frame is there, or older bytes there look like its stamp:
            // `head` tells.
            wait_for(peer, ring.data_seq(), ring.data_sleeping(), || {
                (head() > start).then_some(())
            })?;
        } else {
            // The word changes only when this frame is published: poll the
            // frame's own line, not `head`'s.
            wait_for(peer, ring.data_seq(), ring.data_sleeping(), || {
                (stamp.load(Ordering::Acquire) == want).then_some(())
            })?;
        }
        let kind = self.check_header(peer.rank, ring, start, tag, buf.len())?;
        if kind != KIND_DATA {
            return self.take_rendezvous(peer, ring, kind, start, buf);
        }
        let body = start + FRAME_HEADER as u64;
        // A frame that fits the ring was published whole, with its stamp;
        // a larger one is published piece by piece (`head` may even lag
        // the stamp).
        let avail = match fits(buf.len()) {
            true => buf.len() as u64,
            false => head().saturating_sub(body),
        };
        let mut copied = take_data(ring, body, buf, 0, avail);
        while copied < buf.len() {
            let at = body + copied as u64;
            let avail = wait_for(peer, ring.data_seq(), ring.data_sleeping(), || {
                let a = head().saturating_sub(at);
                (a > 0).then_some(a)
            })?;
            copied = take_data(ring, body, buf, copied, avail);
        }
        Ok(true)
    }
}

impl Transport for ShmTransport {
    fn send(&mut self, dest: usize, tag: u32, data: &[u8]) -> Result<(), CommError> {
        let plan = self.plan(data);
        let (peer, out) = self.attach(dest)?;
        while let Some(r) = plan.rendezvous(out) {
            out.wait_space(peer, r.size())?;
            let seq = out.post(r, tag, data.len());
            let ring = out.ring();
            if wait_for(peer, ring.space_seq(), ring.space_sleeping(), || {
                ring.answer(seq)
            })? {
                return Ok(());
            }
            out.refused(r.kind);
        }
        let start = out.head;
        let wait = |o: &mut Outbound, need| o.wait_space(peer, need).map(Some);
        out.put_data(tag, data, start, &mut 0, wait).map(drop)
    }

    fn recv(&mut self, src: usize, tag: u32, buf: &mut [u8]) -> Result<(), CommError> {
        let peer = self.peer(src)?;
        // A refused rendezvous is followed by the same message another way.
        while !self.recv_frame(peer, tag, buf)? {}
        Ok(())
    }

    fn connect(&mut self, peer: usize) -> Result<(), CommError> {
        self.attach(peer).map(|_| ())
    }

    fn is_connected(&self, peer: usize) -> bool {
        self.outbound.get(peer).is_some_and(Option::is_some)
    }

    /// The blocking send's steps, each taken only when it needs no wait
    /// (see the module doc): `state.stage` is the kind of the frame in
    /// progress (0 before one), `word` the rendezvous sequence number or
    /// the `DATA` frame's position, `moved` the frame bytes written.
    fn try_send(
        &mut self,
        dest: usize,
        tag: u32,
        data: &[u8],
        state: &mut Partial,
    ) -> Result<bool, CommError> {
        let plan = self.plan(data);
        let (_, out) = self.attach(dest)?;
        loop {
            match state.stage {
                0 => match plan.rendezvous(out) {
                    Some(r) => {
                        if out.free(r.size()).is_none() {
                            return Ok(false);
                        }
                        state.word = out.post(r, tag, data.len());
                        state.stage = r.kind;
                    }
                    None => {
                        state.stage = KIND_DATA;
                        state.word = out.head;
                    }
                },
                KIND_DATA => {
                    let poll = |o: &mut Outbound, need| Ok(o.free(need));
                    return out.put_data(tag, data, state.word, &mut state.moved, poll);
                }
                kind => match out.ring().answer(state.word) {
                    None => return Ok(false),
                    Some(true) => return Ok(true),
                    Some(false) => {
                        out.refused(kind);
                        *state = Partial::default();
                    }
                },
            }
        }
    }

    /// The blocking receive's steps without waiting: `state.stage` is
    /// `KIND_DATA` once a `DATA` frame's header is taken (0 before), `word`
    /// its body's position, `moved` the bytes copied.
    fn try_recv(
        &mut self,
        src: usize,
        tag: u32,
        buf: &mut [u8],
        state: &mut Partial,
    ) -> Result<bool, CommError> {
        let peer = self.peer(src)?;
        let ring = Ring::of(&self.inbound, src);
        while state.stage == 0 {
            let start = ring.tail().load(Ordering::Relaxed);
            let avail = ring.head().load(Ordering::Acquire).wrapping_sub(start);
            if avail < FRAME_HEADER as u64 {
                return Ok(false);
            }
            match self.check_header(src, ring, start, tag, buf.len())? {
                KIND_DATA => {
                    state.stage = KIND_DATA;
                    state.word = start + FRAME_HEADER as u64;
                }
                // Refused: the same message comes again another way.
                kind => {
                    if self.take_rendezvous(peer, ring, kind, start, buf)? {
                        return Ok(true);
                    }
                }
            }
        }
        let at = state.word + state.moved as u64;
        let avail = ring.head().load(Ordering::Acquire).saturating_sub(at);
        state.moved = take_data(ring, state.word, buf, state.moved, avail);
        Ok(state.moved == buf.len())
    }

    /// [`CommError::PeerGone`] once `peer`'s process is gone. Bytes it left
    /// unread in our ring get one more round of receives first (it may have
    /// sent them just before exiting); if the next check finds them still
    /// there, nobody takes them.
    fn check_peer(&mut self, peer: usize) -> Result<(), CommError> {
        let p = self.peer(peer)?;
        if sys::alive(p.pid) {
            self.gone_tail[peer] = None;
            return Ok(());
        }
        let ring = Ring::of(&self.inbound, peer);
        let tail = ring.tail().load(Ordering::Relaxed);
        if ring.head().load(Ordering::Acquire) != tail && self.gone_tail[peer] != Some(tail) {
            self.gone_tail[peer] = Some(tail);
            return Ok(());
        }
        Err(CommError::PeerGone {
            rank: peer,
            pid: p.pid,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Lines, Write};
    use std::process::{Child, ChildStdout, Command, Stdio};
    use std::thread;

    use super::*;

    /// `n` ranks of one job in this process, endpoints exchanged directly
    /// (`/proc/<our pid>/fd/<fd>` works for our own pid).
    fn job(n: usize) -> Vec<ShmTransport> {
        let (ts, eps): (Vec<_>, Vec<_>) = (0..n)
            .map(|r| ShmTransport::create(r, n).expect("create"))
            .unzip();
        let eps: Vec<Option<String>> = eps.into_iter().map(Some).collect();
        ts.into_iter().map(|t| t.with_peers(eps.clone())).collect()
    }

    fn pair() -> (ShmTransport, ShmTransport) {
        let mut j = job(2);
        let b = j.pop().expect("rank 1");
        (j.pop().expect("rank 0"), b)
    }

    /// Bytes that differ at every offset modulo 251, so a shifted or
    /// truncated copy shows.
    fn pattern(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| ((i + seed) % 251) as u8).collect()
    }

    /// Rank 0 sends each size to rank 1, which echoes it back.
    fn echo(mut a: ShmTransport, mut b: ShmTransport, sizes: &[usize]) {
        let sizes = sizes.to_vec();
        let sizes_b = sizes.clone();
        let t = thread::spawn(move || {
            for (i, &n) in sizes_b.iter().enumerate() {
                let mut buf = vec![0u8; n];
                b.recv(0, i as u32, &mut buf).expect("rank 1 recv");
                assert!(buf == pattern(n, i), "rank 1 got wrong bytes for {n}");
                b.send(0, i as u32 + 1000, &buf).expect("rank 1 send");
            }
            b
        });
        for (i, &n) in sizes.iter().enumerate() {
            a.send(1, i as u32, &pattern(n, i)).expect("rank 0 send");
            let mut buf = vec![0u8; n];
            a.recv(1, i as u32 + 1000, &mut buf).expect("rank 0 recv");
            assert!(buf == pattern(n, i), "rank 0 got wrong bytes back for {n}");
        }
        let b = t.join().expect("rank 1 thread");
        assert!(a.is_connected(1) && b.is_connected(0));
    }

    const SIZES: &[usize] = &[
        0,
        1,
        100,
        4095,
        DEFAULT_EAGER_LIMIT,
        DEFAULT_EAGER_LIMIT + 1,
        RING - 1,
        RING + 17,
        1 << 20,
        (3 << 20) + 5,
    ];

    #[test]
    fn large_messages_from_shared_buffers_are_copied_straight() {
        let (mut a, mut b) = pair();
        // CMA off on both: any large message not read from the shared
        // buffer would have to be streamed, which the ring counters show.
        a.cma_allowed = false;
        b.cma_allowed = false;
        let sizes = [DEFAULT_EAGER_LIMIT + 1, 1 << 20, (3 << 20) + 5];
        let t = thread::spawn(move || {
            for (i, &n) in sizes.iter().enumerate() {
                let mut buf = b.alloc(n).expect("alloc");
                b.recv(0, i as u32, &mut buf).expect("rank 1 recv");
                assert!(*buf == pattern(n, i)[..], "rank 1 got wrong bytes for {n}");
                b.send(0, 1000 + i as u32, &buf[7..])
                    .expect("rank 1 send from an offset");
            }
            b
        });
        for (i, &n) in sizes.iter().enumerate() {
            // A new buffer each time: descriptor numbers get reused, ids not.
            let mut buf = a.alloc(n).expect("alloc");
            buf.copy_from_slice(&pattern(n, i));
            let head = a.outbound[1].as_ref().map(|o| o.head);
            a.send(1, i as u32, &buf).expect("rank 0 send");
            let frame = a.outbound[1].as_ref().map(|o| o.head).unwrap() - head.unwrap_or(0);
            assert!(
                head.is_none() || frame == SHARED_FRAME as u64,
                "{n}: {frame} ring bytes"
            );
            let mut back = vec![0u8; n - 7];
            a.recv(1, 1000 + i as u32, &mut back).expect("rank 0 recv");
            assert!(
                back == pattern(n, i)[7..],
                "rank 0 got wrong bytes back for {n}"
            );
        }
        let b = t.join().expect("rank 1 thread");
        assert_eq!(
            b.regions.lock().unwrap().len(),
            0,
            "dropped buffers leave the registry"
        );
    }

    #[test]
    fn a_refused_shared_buffer_falls_back() {
        let (mut a, b) = pair();
        let n = 1 << 20;
        let mut buf = a.alloc(n).expect("alloc");
        buf.copy_from_slice(&pattern(n, 3));
        // The receiver finds another buffer under the descriptor it is told
        // (as if the sender's descriptor table changed): it refuses.
        {
            let mut r = a.regions.lock().unwrap();
            r[0].fd = b.file.as_raw_fd();
        }
        let t = thread::spawn(move || {
            let mut b = b;
            let mut got = vec![0u8; n];
            b.recv(0, 5, &mut got).expect("recv");
            assert!(got == pattern(n, 3));
        });
        a.send(1, 5, &buf).expect("send");
        t.join().expect("receiver");
        assert!(
            !a.outbound[1].as_ref().unwrap().shared,
            "later sends skip the refused way"
        );
    }

    #[test]
    fn small_and_large_messages_both_ways_through_cma() {
        let (a, b) = pair();
        echo(a, b, SIZES);
    }

    #[test]
    fn streamed_path_when_cma_is_off() {
        let (mut a, mut b) = pair();
        a.cma_allowed = false;
        b.cma_allowed = false;
        a.connect(1).expect("connect");
        assert!(!a.outbound[1].as_ref().expect("attached").cma);
        echo(a, b, SIZES);
    }

    #[test]
    fn cma_is_probed_at_connect() {
        let (mut a, _b) = pair();
        assert!(!a.is_connected(1));
        a.connect(1).expect("connect");
        assert!(a.is_connected(1));
        assert!(a.outbound[1].as_ref().expect("attached").cma);
    }

    #[test]
    fn a_refused_rendezvous_falls_back_to_streaming() {
        let (mut a, mut b) = pair();
        a.connect(1).expect("connect");
        assert!(a.outbound[1].as_ref().expect("attached").cma);
        b.cma_allowed = false;
        let big = 4 * RING + 9;
        let t = thread::spawn(move || {
            for i in 0..2 {
                let mut buf = vec![0u8; big];
                b.recv(0, i, &mut buf).expect("recv");
                assert!(buf == pattern(big, i as usize), "message {i} corrupted");
            }
        });
        a.send(1, 0, &pattern(big, 0))
            .expect("refused, then streamed");
        assert!(!a.outbound[1].as_ref().expect("attached").cma);
        a.send(1, 1, &pattern(big, 1)).expect("streamed at once");
        t.join().expect("receiver");
    }

    #[test]
    fn each_sender_has_its_own_ring() {
        let mut j = job(3);
        let mut r0 = j.remove(0);
        let senders: Vec<_> = j
            .into_iter()
            .enumerate()
            .map(|(i, mut t)| {
                let rank = i + 1;
                thread::spawn(move || {
                    for k in 0..200 {
                        let n = (k * 131 + rank * 7) % 5000 + 1;
                        t.send(0, k as u32, &pattern(n, rank + k)).expect("send");
                    }
                    t.send(0, 999, &pattern(300_000, rank)).expect("large send");
                })
            })
            .collect();
        // Drain rank 2 first: rank 1 meanwhile fills its own ring and waits.
        for rank in [2, 1] {
            for k in 0..200 {
                let n = (k * 131 + rank * 7) % 5000 + 1;
                let mut buf = vec![0u8; n];
                r0.recv(rank, k as u32, &mut buf).expect("recv");
                assert!(buf == pattern(n, rank + k), "rank {rank} message {k}");
            }
            let mut buf = vec![0u8; 300_000];
            r0.recv(rank, 999, &mut buf).expect("large recv");
            assert!(buf == pattern(300_000, rank));
        }
        for s in senders {
            s.join().expect("sender");
        }
    }

    /// Waits long enough to sleep on the futex end by a wake, not by the
    /// [`SLEEP`] timeout: for data, for ring space and for a rendezvous.
    #[test]
    fn sleepers_are_woken_promptly() {
        let (mut a, mut b) = pair();
        let pause = Duration::from_millis(30);
        let prompt = pause + SLEEP / 2;
        let big = 3 * RING;
        let t = thread::spawn(move || {
            let started = Instant::now();
            b.recv(0, 1, &mut [0u8; 1]).expect("small");
            let waited = started.elapsed();
            thread::sleep(pause);
            let mut buf = vec![0u8; big];
            b.recv(0, 2, &mut buf).expect("streamed");
            thread::sleep(pause);
            b.recv(0, 3, &mut buf).expect("rendezvous");
            waited
        });
        thread::sleep(pause);
        a.send(1, 1, b"x").expect("small");
        a.cma_allowed = false;
        let started = Instant::now();
        a.send(1, 2, &pattern(big, 0)).expect("streamed");
        let streamed = started.elapsed();
        a.cma_allowed = true;
        let started = Instant::now();
        a.send(1, 3, &pattern(big, 0)).expect("rendezvous");
        let rendezvous = started.elapsed();
        let waited = t.join().expect("receiver");
        for (what, took) in [
            ("data", waited),
            ("space", streamed),
            ("rendezvous", rendezvous),
        ] {
            assert!(took < prompt, "waiting for {what} took {took:?}");
        }
    }

    #[test]
    fn eager_message_larger_than_the_ring_is_streamed() {
        let (mut a, b) = pair();
        a.eager_limit = usize::MAX;
        echo(a, b, &[5 * RING + 3, 1]);
    }

    #[test]
    fn many_odd_sizes_keep_order_across_wrap_around() {
        let (mut a, mut b) = pair();
        let count = 3000;
        let size = |i: usize| (i * 37) % 1500 + 1;
        let t = thread::spawn(move || {
            for i in 0..count {
                a.send(1, i as u32, &pattern(size(i), i)).expect("send");
            }
        });
        for i in 0..count {
            let mut buf = vec![0u8; size(i)];
            b.recv(0, i as u32, &mut buf).expect("recv");
            assert!(buf == pattern(size(i), i), "message {i} corrupted");
        }
        t.join().expect("sender");
        // Wrapped several times around the ring.
        let tail = Ring::of(&b.inbound, 0).tail().load(Ordering::Relaxed);
        assert!(tail > 10 * RING as u64, "only {tail} bytes went through");
    }

    /// Older bytes in the ring that look like the stamp of the frame a
    /// receive waits for (here, one lap earlier, a message's body holding
    /// that stamp and a plausible header) are not taken for the frame.
    #[test]
    fn a_stale_word_like_the_next_stamp_is_not_taken_for_it() {
        let (mut a, mut b) = pair();
        // The frame awaited will start one lap after position `p`.
        let p = 1024;
        let want = (p + RING + 1) as u64;
        let mut first = pattern(RING / 2, 0);
        let fake = p - FRAME_HEADER;
        first[fake..fake + 8].copy_from_slice(&want.to_le_bytes());
        first[fake + 8..fake + FRAME_HEADER].copy_from_slice(&frame_header(KIND_DATA, 99, 1)[8..]);
        first[p] = b'X';
        a.send(1, 0, &first).expect("send");
        b.recv(0, 0, &mut vec![0u8; RING / 2]).expect("recv");
        // A frame ending exactly at the next lap's `p`.
        let fill = p + RING - padded(FRAME_HEADER + RING / 2) - FRAME_HEADER;
        a.send(1, 1, &pattern(fill, 1)).expect("send");
        b.recv(0, 1, &mut vec![0u8; fill]).expect("recv");
        let ring = Ring::of(&b.inbound, 0);
        let start = ring.tail().load(Ordering::Relaxed);
        assert_eq!(start, (p + RING) as u64);
        assert_eq!(ring.stamp(start).load(Ordering::Relaxed), want);

        let mut got = [0u8; 1];
        assert!(
            !b.try_recv(0, 99, &mut got, &mut Partial::default())
                .expect("try_recv"),
            "nothing sent yet"
        );
        let (ready, receiving) = std::sync::mpsc::channel();
        let t = thread::spawn(move || {
            ready.send(()).expect("ready");
            b.recv(0, 99, &mut got).expect("recv");
            (got, Instant::now())
        });
        // The receive looks at the word before the frame comes.
        receiving.recv().expect("receiver started");
        thread::sleep(Duration::from_millis(20));
        let sent = Instant::now();
        a.send(1, 99, b"Z").expect("send");
        let (got, returned) = t.join().expect("receiver");
        assert_eq!(&got, b"Z");
        assert!(returned >= sent, "returned before the send");
    }

    /// Under [`Transport::recv`] and under [`Transport::try_recv`] alike.
    #[test]
    fn mismatched_tag_or_size_is_an_error_and_keeps_the_message() {
        type Recv = fn(&mut ShmTransport, u32, &mut [u8]) -> Result<bool, CommError>;
        let blocking: Recv = |t, tag, buf| t.recv(0, tag, buf).map(|()| true);
        let trying: Recv = |t, tag, buf| t.try_recv(0, tag, buf, &mut Partial::default());
        for recv in [blocking, trying] {
            let (mut a, mut b) = pair();
            a.send(1, 5, b"0123456789").expect("send");
            let mut buf = [0u8; 10];
            let err = recv(&mut b, 6, &mut buf).expect_err("wrong tag");
            assert!(matches!(
                err,
                CommError::Mismatch {
                    rank: 0,
                    tag: 6,
                    len: 10,
                    got_tag: 5,
                    got_len: 10,
                    ..
                }
            ));
            let err = recv(&mut b, 5, &mut [0u8; 9]).expect_err("wrong size");
            assert!(matches!(err, CommError::Mismatch { got_len: 10, .. }));
            assert!(recv(&mut b, 5, &mut buf).expect("the right receive still gets it"));
            assert_eq!(&buf, b"0123456789");
        }
    }

    #[test]
    fn a_rank_without_endpoint_is_an_error_naming_it() {
        let (t0, ep0) = ShmTransport::create(0, 2).expect("create");
        let mut t0 = t0.with_peers(vec![Some(ep0), None]);
        let err = t0.send(1, 0, b"x").expect_err("send to a rank without shm");
        assert!(matches!(err, CommError::Shm { rank: 1, .. }));
        assert!(err.to_string().contains("rank 1"), "{err}");
        let err = t0.recv(1, 0, &mut [0u8; 1]).expect_err("recv");
        assert!(matches!(err, CommError::Shm { rank: 1, .. }));
        assert!(!t0.is_connected(1));
        assert!(matches!(
            t0.send(7, 0, b"x"),
            Err(CommError::NoSuchRank { rank: 7, .. })
        ));
    }

    const CHILD_TEST: &str = "mpi::comm::shm::tests::child_rank";
    const BIG: usize = 1 << 20;

    /// Rank 1 of `peer_gone_when_a_child_rank_exits`, run in a child
    /// process: reads rank 0's endpoint on stdin, prints its own, sends a
    /// large and a small message and exits. Does nothing without input.
    #[test]
    #[ignore = "run by peer_gone_when_a_child_rank_exits in a child process"]
    fn child_rank() {
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (t, ep) = ShmTransport::create(1, 2).expect("child create");
        println!("\nendpoint={ep}");
        std::io::stdout().flush().expect("flush");
        let mut t = t.with_peers(vec![Some(line.trim().to_string()), Some(ep)]);
        t.send(0, 1, &pattern(BIG, 1)).expect("child large send");
        t.send(0, 2, b"bye").expect("child small send");
    }

    /// Rank 1 in a child process (`child_rank`) and rank 0 here: rank
    /// 0's transport, the child, its output (kept open until it exits)
    /// and its pid.
    fn child_pair() -> (ShmTransport, Child, Lines<BufReader<ChildStdout>>, u32) {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args([CHILD_TEST, "--exact", "--ignored", "--nocapture"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child rank");
        let (t, ep) = ShmTransport::create(0, 2).expect("create");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{ep}").expect("endpoint to child");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let child_ep = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split_once("endpoint=").map(|(_, e)| e.trim().to_string()))
            .expect("child endpoint");
        let child_pid = Endpoint::parse(&child_ep)
            .expect("child endpoint parses")
            .pid;
        assert_eq!(child_pid, child.id());
        let t = t.with_peers(vec![Some(ep), Some(child_ep)]);
        (t, child, lines, child_pid)
    }

    #[test]
    fn peer_gone_when_a_child_rank_exits() {
        let (mut t, mut child, lines, child_pid) = child_pair();

        // Both paths across two processes first.
        let mut big = vec![0u8; BIG];
        t.recv(1, 1, &mut big)
            .expect("large message from the child");
        assert!(big == pattern(BIG, 1));
        let mut small = [0u8; 3];
        t.recv(1, 2, &mut small)
            .expect("small message from the child");
        assert_eq!(&small, b"bye");

        // The child exits now; reap it while we wait, as a launcher would.
        let reaper = thread::spawn(move || {
            lines.for_each(drop);
            child.wait().expect("wait for the child")
        });
        let started = Instant::now();
        let err = t.recv(1, 3, &mut small).expect_err("the child is gone");
        assert!(
            matches!(err, CommError::PeerGone { rank: 1, pid } if pid == child_pid),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(reaper.join().expect("reaper").success());
        let err = t.send(1, 3, b"x").expect_err("send to the dead child");
        assert!(matches!(err, CommError::PeerGone { rank: 1, .. }), "{err}");
    }

    /// Calls `step` until it returns true; panics if that takes 20 s.
    fn until(what: &str, mut step: impl FnMut() -> bool) {
        let started = Instant::now();
        while !step() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{what}: no end"
            );
            thread::yield_now();
        }
    }

    #[test]
    fn check_peer_reports_a_dead_child_rank() {
        let (mut t, mut child, lines, child_pid) = child_pair();
        t.check_peer(1).expect("the child is alive");
        let mut big = vec![0u8; BIG];
        let mut state = Partial::default();
        until("large message from the child", || {
            t.try_recv(1, 1, &mut big, &mut state).expect("try_recv")
        });
        assert!(big == pattern(BIG, 1));
        // Read its output to the end (closing it early could fail the
        // child's last write), then reap it.
        lines.for_each(drop);
        assert!(child.wait().expect("wait for the child").success());
        // It left "bye" unread: one round for it, then the death counts.
        t.check_peer(1).expect("unread bytes get a round");
        let err = t.check_peer(1).expect_err("nobody took them");
        assert!(
            matches!(err, CommError::PeerGone { rank: 1, pid } if pid == child_pid),
            "{err}"
        );
        let mut small = [0u8; 3];
        let mut state = Partial::default();
        assert!(t.try_recv(1, 2, &mut small, &mut state).expect("bye"));
        assert_eq!(&small, b"bye");
        let err = t.check_peer(1).expect_err("nothing left");
        assert!(matches!(err, CommError::PeerGone { rank: 1, .. }), "{err}");
        let mut state = Partial::default();
        let err = t
            .try_send(1, 3, b"x", &mut state)
            .expect_err("try_send to the dead child");
        assert!(matches!(err, CommError::PeerGone { rank: 1, .. }), "{err}");
    }

    /// Both ranks try_send a message to the other and try_recv the
    /// other's, driven alternately from one thread: the order in which
    /// blocking calls deadlock once messages outgrow the ring. Returns
    /// what each received and the ring bytes each send took.
    fn exchange(
        a: &mut ShmTransport,
        b: &mut ShmTransport,
        to_b: &[u8],
        to_a: &[u8],
    ) -> (Vec<u8>, Vec<u8>, [u64; 2]) {
        a.connect(1).expect("connect");
        b.connect(0).expect("connect");
        let head = |t: &ShmTransport, p: usize| t.outbound[p].as_ref().expect("attached").head;
        let heads = [head(a, 1), head(b, 0)];
        let (mut at_a, mut at_b) = (vec![0u8; to_a.len()], vec![0u8; to_b.len()]);
        let mut states: [Partial; 4] = Default::default();
        let mut done = [false; 4];
        until("exchange", || {
            let [sa, sb, ra, rb] = &mut states;
            if !done[0] {
                done[0] = a.try_send(1, 7, to_b, sa).expect("a try_send");
            }
            if !done[1] {
                done[1] = b.try_send(0, 8, to_a, sb).expect("b try_send");
            }
            if !done[2] {
                done[2] = a.try_recv(1, 8, &mut at_a, ra).expect("a try_recv");
            }
            if !done[3] {
                done[3] = b.try_recv(0, 7, &mut at_b, rb).expect("b try_recv");
            }
            done == [true; 4]
        });
        let used = [head(a, 1) - heads[0], head(b, 0) - heads[1]];
        (at_a, at_b, used)
    }

    #[test]
    fn large_try_exchanges_finish_over_every_path() {
        for n in [1 << 20, 8 << 20] {
            // RNDV: each side reads the other's memory.
            let (mut a, mut b) = pair();
            let (at_a, at_b, used) = exchange(&mut a, &mut b, &pattern(n, 1), &pattern(n, 2));
            assert!(at_a == pattern(n, 2) && at_b == pattern(n, 1), "rndv {n}");
            assert_eq!(used, [rendezvous_frame(1) as u64; 2], "rndv {n}");

            // SHARED: from buffers of `alloc`, CMA off (else streamed).
            let (mut a, mut b) = pair();
            a.cma_allowed = false;
            b.cma_allowed = false;
            let mut from_a = a.alloc(n).expect("alloc");
            from_a.copy_from_slice(&pattern(n, 3));
            let mut from_b = b.alloc(n).expect("alloc");
            from_b.copy_from_slice(&pattern(n, 4));
            let (at_a, at_b, used) = exchange(&mut a, &mut b, &from_a, &from_b);
            assert!(at_a == pattern(n, 4) && at_b == pattern(n, 3), "shared {n}");
            assert_eq!(used, [SHARED_FRAME as u64; 2], "shared {n}");

            // Streamed DATA: CMA off, plain memory.
            let (mut a, mut b) = pair();
            a.cma_allowed = false;
            b.cma_allowed = false;
            let (at_a, at_b, used) = exchange(&mut a, &mut b, &pattern(n, 5), &pattern(n, 6));
            assert!(
                at_a == pattern(n, 6) && at_b == pattern(n, 5),
                "streamed {n}"
            );
            assert_eq!(used, [padded(FRAME_HEADER + n) as u64; 2], "streamed {n}");
        }
    }

    #[test]
    fn refused_rendezvous_under_try_fall_back_to_streaming() {
        let (mut a, mut b) = pair();
        let n = 3 * RING + 5;
        let mut buf = a.alloc(n).expect("alloc");
        buf.copy_from_slice(&pattern(n, 9));
        // The receiver refuses the SHARED frame (another buffer under that
        // descriptor, as in `a_refused_shared_buffer_falls_back`), then the
        // RNDV frame (CMA off on its side only).
        a.regions.lock().unwrap()[0].fd = b.file.as_raw_fd();
        b.cma_allowed = false;
        let (_, at_b, used) = exchange(&mut a, &mut b, &buf, b"");
        assert!(at_b == pattern(n, 9));
        let expected = SHARED_FRAME + rendezvous_frame(1) + padded(FRAME_HEADER + n);
        assert_eq!(used[0], expected as u64, "SHARED, RNDV, then DATA");
        let out = a.outbound[1].as_ref().expect("attached");
        assert!(!out.shared && !out.cma, "later sends skip both ways");
    }

    #[test]
    fn small_try_sends_queue_up_before_the_receiver_starts() {
        let (mut a, mut b) = pair();
        let count = 3000;
        let size = |i: usize| (i * 37) % 1500 + 1;
        let msg = |i: usize| pattern(size(i), i);
        let mut sent = 0;
        let mut state = Partial::default();
        while a
            .try_send(1, sent as u32, &msg(sent), &mut state)
            .expect("try_send")
        {
            sent += 1;
            state = Partial::default();
        }
        // The ring is full: the next frame waits whole, nothing written.
        assert!(sent > 20 && sent < count, "{sent} fit");
        assert_eq!((state.stage, state.moved), (KIND_DATA, 0));
        let mut got = 0;
        let mut rstate = Partial::default();
        let mut buf = vec![0u8; size(0)];
        until("draining", || {
            if sent < count
                && a.try_send(1, sent as u32, &msg(sent), &mut state)
                    .expect("try_send")
            {
                sent += 1;
                state = Partial::default();
            }
            if got < sent
                && b.try_recv(0, got as u32, &mut buf, &mut rstate)
                    .expect("try_recv")
            {
                assert!(buf == msg(got), "message {got} corrupted");
                got += 1;
                buf = vec![0u8; size(got)];
                rstate = Partial::default();
            }
            got == count
        });
        let tail = Ring::of(&b.inbound, 0).tail().load(Ordering::Relaxed);
        assert!(tail > 10 * RING as u64, "only {tail} bytes went through");
    }

    /// Each side alternates blocking calls and try_ loops between messages
    /// of every kind; the messages arrive in order, intact.
    #[test]
    fn try_and_blocking_calls_alternate_on_one_pair() {
        let (mut a, mut b) = pair();
        let sizes = [1, 3 * RING + 5, 100, 0, 1 << 20, 5000, RING + 17, 2];
        let count = 4 * sizes.len();
        let size = move |i: usize| sizes[i % sizes.len()];
        let receiver = thread::spawn(move || {
            for i in 0..count {
                let mut buf = vec![0u8; size(i)];
                if i % 3 == 0 {
                    b.recv(0, i as u32, &mut buf).expect("recv");
                } else {
                    let mut state = Partial::default();
                    until("try_recv", || {
                        b.try_recv(0, i as u32, &mut buf, &mut state)
                            .expect("try_recv")
                    });
                }
                assert!(buf == pattern(size(i), i), "message {i} corrupted");
            }
        });
        for i in 0..count {
            // Every fourth message without CMA: streamed when large.
            a.cma_allowed = i % 4 != 3;
            let data = pattern(size(i), i);
            if i % 2 == 0 {
                a.send(1, i as u32, &data).expect("send");
            } else {
                let mut state = Partial::default();
                until("try_send", || {
                    a.try_send(1, i as u32, &data, &mut state)
                        .expect("try_send")
                });
            }
        }
        receiver.join().expect("receiver");
    }

    /// A rank asleep in a blocking call is woken by the peer's try_ calls
    /// (not by the [`SLEEP`] timeout): for data, for space and for a
    /// rendezvous answer.
    #[test]
    fn try_calls_wake_blocking_sleepers() {
        let (mut a, mut b) = pair();
        let pause = Duration::from_millis(30);
        let big = 3 * RING;
        // Attached (and CMA probed) while CMA is allowed.
        b.connect(0).expect("connect");
        // When each blocking call of rank 1 started and returned.
        let t = thread::spawn(move || {
            let mut calls = Vec::new();
            let started = Instant::now();
            b.recv(0, 1, &mut [0u8; 1]).expect("small");
            calls.push(("data", started, Instant::now()));
            b.cma_allowed = false;
            let started = Instant::now();
            b.send(0, 2, &pattern(big, 2)).expect("streamed");
            calls.push(("space", started, Instant::now()));
            b.cma_allowed = true;
            let started = Instant::now();
            b.send(0, 3, &pattern(big, 3)).expect("rendezvous");
            calls.push(("rendezvous", started, Instant::now()));
            calls
        });
        // When rank 0 made the try_ call that lets each one go on.
        let mut acted = Vec::new();
        thread::sleep(pause);
        acted.push(Instant::now());
        assert!(
            a.try_send(1, 1, b"x", &mut Partial::default())
                .expect("small")
        );
        let mut buf = vec![0u8; big];
        for tag in [2, 3] {
            thread::sleep(pause);
            acted.push(Instant::now());
            let mut state = Partial::default();
            until("try_recv", || {
                a.try_recv(1, tag, &mut buf, &mut state).expect("try_recv")
            });
            assert!(buf == pattern(big, tag as usize));
        }
        let calls = t.join().expect("peer");
        for ((what, started, ended), acted) in calls.into_iter().zip(acted) {
            // It waited long enough to sleep, and woke soon after.
            assert!(acted - started > pause / 2, "{what} did not wait");
            let after = ended - acted;
            assert!(after < SLEEP / 2, "{what} went on {after:?} after");
        }
    }

    /// Not a test: prints latency and throughput (`cargo test --release
    /// --lib shm::tests::timing -- --ignored --nocapture`).
    #[test]
    #[ignore = "timing report, run by hand"]
    fn timing() {
        use crate::node::sys::set_affinity;
        // Half round trip of `size` bytes: the best of 10 batches, so
        // other work on the machine skews it less.
        fn pingpong(cpus: [u32; 2], size: usize, iters: usize, cma: bool, eager: usize) -> f64 {
            const BATCHES: usize = 10;
            let (mut a, mut b) = pair();
            a.cma_allowed = cma;
            b.cma_allowed = cma;
            a.eager_limit = eager;
            b.eager_limit = eager;
            let per_batch = iters.div_ceil(BATCHES);
            let t = thread::spawn(move || {
                set_affinity(&[cpus[1]]).expect("pin");
                let mut buf = vec![0u8; size];
                for _ in 0..(BATCHES + 1) * per_batch {
                    b.recv(0, 0, &mut buf).expect("recv");
                    b.send(0, 0, &buf).expect("send");
                }
            });
            set_affinity(&[cpus[0]]).expect("pin");
            let mut buf = vec![1u8; size];
            let mut best = f64::MAX;
            // The first batch warms up and is not counted.
            for batch in 0..=BATCHES {
                let start = Instant::now();
                for _ in 0..per_batch {
                    a.send(1, 0, &buf).expect("send");
                    a.recv(1, 0, &mut buf).expect("recv");
                }
                if batch > 0 {
                    best = best.min(start.elapsed().as_secs_f64() / per_batch as f64 / 2.0);
                }
            }
            t.join().expect("peer");
            best
        }
        for (name, cpus) in [("different CPUs", [0, 1]), ("same CPU", [0, 0])] {
            let us = pingpong(cpus, 1, 20_000, true, DEFAULT_EAGER_LIMIT) * 1e6;
            println!("1-byte half round trip, {name}: {us:.3} µs");
        }
        for size in [16 << 10, 64 << 10, 128 << 10, 256 << 10, 1 << 20] {
            let mb = |t: f64| size as f64 / t / 1e6;
            for (name, cpus) in [("different CPUs", [0, 1]), ("same CPU", [0, 0])] {
                let ring = pingpong(cpus, size, 1000, false, usize::MAX);
                let cma = pingpong(cpus, size, 1000, true, 0);
                println!(
                    "{size:>7} B pingpong, {name}: ring {:.0} MB/s, cma {:.0} MB/s",
                    mb(ring),
                    mb(cma)
                );
            }
        }
        for (name, cma) in [("cma", true), ("streamed", false)] {
            for (cpus_name, cpus) in [("different CPUs", [0, 1]), ("same CPU", [0, 0])] {
                let t = pingpong(cpus, 4 << 20, 100, cma, DEFAULT_EAGER_LIMIT);
                println!(
                    "4 MB {name}, {cpus_name}: {:.0} MB/s",
                    (4 << 20) as f64 / t / 1e6
                );
            }
        }
    }
}
