//! Non-blocking point-to-point messages: [`Comm::isend`], [`Comm::irecv`],
//! [`Comm::test`], [`Comm::wait`] and [`Comm::waitall`].
//!
//! A request owns its buffer (a [`Buffer`] from [`Comm::alloc_mem`], or
//! any `Vec<u8>`) until [`Comm::wait`] hands it back, so no message can
//! outlive the memory it is sent from or received into.
//!
//! # Progress
//!
//! The engine keeps, per peer and per direction, a queue of operations in
//! the order they were posted. Only the head of a queue moves: messages
//! between two ranks keep their order, as the blocking calls do. Moving
//! an operation is one call of the transport's [`Transport::try_send`] or
//! [`Transport::try_recv`], which never waits for the peer; the engine
//! moves every queue whenever this rank is in [`Comm::test`],
//! [`Comm::wait`], [`Comm::barrier`] or a blocking call made while
//! requests are pending (which then goes through the engine too, so it
//! cannot overtake them). So two ranks that each send a large message to
//! the other before receiving finish on every transport.
//!
//! A rank with nothing to move spins briefly, then yields for 2 ms, then
//! naps 50 µs at a time, and every 100 ms asks the transports whether the
//! peers it waits for are still alive ([`Transport::check_peer`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::{Buffer, Comm, CommError, Partial};

/// A message posted by [`Comm::isend`] or [`Comm::irecv`]; [`Comm::wait`]
/// completes it and gives its buffer back.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a request's buffer comes back only through Comm::wait"]
pub struct Request {
    id: u64,
    peer: usize,
}

impl Request {
    /// The rank this request sends to or receives from.
    pub fn peer(&self) -> usize {
        self.peer
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Send,
    Recv,
}

struct Op {
    id: u64,
    tag: u32,
    buf: Buffer,
    state: Partial,
}

/// Operations in progress and finished ones not yet waited for.
#[derive(Default)]
pub(super) struct Engine {
    next: u64,
    sends: Vec<VecDeque<Op>>,
    recvs: Vec<VecDeque<Op>>,
    finished: HashMap<u64, Result<Buffer, CommError>>,
    /// Operations in the queues.
    queued: usize,
}

impl Engine {
    pub(super) fn new(size: usize) -> Engine {
        Engine {
            sends: (0..size).map(|_| VecDeque::new()).collect(),
            recvs: (0..size).map(|_| VecDeque::new()).collect(),
            ..Engine::default()
        }
    }

    /// Whether any operation is still in progress.
    pub(super) fn busy(&self) -> bool {
        self.queued > 0
    }

    fn queue(&mut self, dir: Dir, peer: usize) -> &mut VecDeque<Op> {
        match dir {
            Dir::Send => &mut self.sends[peer],
            Dir::Recv => &mut self.recvs[peer],
        }
    }
}

/// Spin, yield, then nap while nothing moves (see the module doc).
struct Idle {
    spins: u32,
    since: Option<Instant>,
    checked: Option<Instant>,
}

const SPIN: u32 = 64;
const YIELD_FOR: Duration = Duration::from_millis(2);
const NAP: Duration = Duration::from_micros(50);
const CHECK_EVERY: Duration = Duration::from_millis(100);

impl Idle {
    fn new() -> Idle {
        Idle {
            spins: 0,
            since: None,
            checked: None,
        }
    }

    fn moved(&mut self) {
        self.spins = 0;
        self.since = None;
        self.checked = None;
    }

    /// Waits a little; true when it is time to check the peers.
    fn pause(&mut self) -> bool {
        if self.spins < SPIN {
            self.spins += 1;
            std::hint::spin_loop();
            return false;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() < YIELD_FOR {
            std::thread::yield_now();
        } else {
            std::thread::sleep(NAP);
        }
        let checked = *self.checked.get_or_insert(since);
        if checked.elapsed() >= CHECK_EVERY {
            self.checked = Some(Instant::now());
            return true;
        }
        false
    }
}

impl Comm {
    /// Starts sending `data` to `dest` under `tag`; [`Comm::wait`] on the
    /// request gives the buffer back once it may be reused.
    pub fn isend(
        &mut self,
        dest: usize,
        tag: u32,
        data: impl Into<Buffer>,
    ) -> Result<Request, CommError> {
        self.post(Dir::Send, dest, tag, data.into())
    }

    /// Starts receiving exactly `buf.len()` bytes from `src` under `tag`;
    /// [`Comm::wait`] on the request gives the buffer back holding them.
    pub fn irecv(
        &mut self,
        src: usize,
        tag: u32,
        buf: impl Into<Buffer>,
    ) -> Result<Request, CommError> {
        self.post(Dir::Recv, src, tag, buf.into())
    }

    fn post(&mut self, dir: Dir, peer: usize, tag: u32, buf: Buffer) -> Result<Request, CommError> {
        // A bad rank or a pair without a channel fails now, not at wait.
        self.via(peer)?;
        let e = &mut self.engine;
        e.next += 1;
        let id = e.next;
        e.queue(dir, peer).push_back(Op {
            id,
            tag,
            buf,
            state: Partial::default(),
        });
        e.queued += 1;
        // Small messages usually complete at once.
        self.advance(dir, peer);
        Ok(Request { id, peer })
    }

    /// Moves the queue of `peer` in direction `dir` as far as it goes
    /// without waiting; true if anything moved.
    fn advance(&mut self, dir: Dir, peer: usize) -> bool {
        let mut moved = false;
        while let Some(mut op) = self.engine.queue(dir, peer).pop_front() {
            let before = op.state.clone();
            let step = self.via(peer).and_then(|t| match dir {
                Dir::Send => t.try_send(peer, op.tag, &op.buf, &mut op.state),
                Dir::Recv => t.try_recv(peer, op.tag, &mut op.buf, &mut op.state),
            });
            let result = match step {
                Ok(false) => {
                    moved |= op.state != before;
                    self.engine.queue(dir, peer).push_front(op);
                    break;
                }
                Ok(true) => {
                    self.used[peer] = true;
                    Ok(op.buf)
                }
                Err(e) => Err(e),
            };
            moved = true;
            self.engine.queued -= 1;
            self.engine.finished.insert(op.id, result);
        }
        moved
    }

    /// Moves every queue once; true if anything moved.
    fn progress(&mut self) -> bool {
        let mut moved = false;
        for peer in 0..self.size {
            for dir in [Dir::Send, Dir::Recv] {
                if !self.engine.queue(dir, peer).is_empty() {
                    moved |= self.advance(dir, peer);
                }
            }
        }
        moved
    }

    /// [`Transport::check_peer`] for every peer with an operation queued.
    ///
    /// [`Transport::check_peer`]: super::Transport::check_peer
    fn check_peers(&mut self) -> Result<(), CommError> {
        for peer in 0..self.size {
            if !self.engine.sends[peer].is_empty() || !self.engine.recvs[peer].is_empty() {
                self.via(peer)?.check_peer(peer)?;
            }
        }
        Ok(())
    }

    /// Moves the queues until `done` says so (checked before each round).
    fn progress_until(
        &mut self,
        mut done: impl FnMut(&mut Comm) -> Result<bool, CommError>,
    ) -> Result<(), CommError> {
        let mut idle = Idle::new();
        while !done(self)? {
            if self.progress() {
                idle.moved();
            } else if idle.pause() {
                self.check_peers()?;
            }
        }
        Ok(())
    }

    /// Whether `request` has completed (moving every queue once first);
    /// [`Comm::wait`] then returns at once.
    pub fn test(&mut self, request: &Request) -> bool {
        if !self.engine.finished.contains_key(&request.id) {
            self.progress();
        }
        self.engine.finished.contains_key(&request.id)
    }

    /// Completes `request`, moving every other request meanwhile; returns
    /// its buffer (for a receive, holding the message).
    pub fn wait(&mut self, request: Request) -> Result<Buffer, CommError> {
        let id = request.id;
        self.progress_until(|c| Ok(c.engine.finished.contains_key(&id)))?;
        self.engine
            .finished
            .remove(&id)
            .expect("finished just above")
    }

    /// Completes every request; the buffers in the requests' order. The
    /// first failure is returned, after every request has completed.
    pub fn waitall(&mut self, requests: Vec<Request>) -> Result<Vec<Buffer>, CommError> {
        let ids: Vec<u64> = requests.iter().map(|r| r.id).collect();
        self.progress_until(|c| Ok(ids.iter().all(|id| c.engine.finished.contains_key(id))))?;
        let results: Vec<_> = ids
            .iter()
            .map(|id| {
                self.engine
                    .finished
                    .remove(id)
                    .expect("finished just above")
            })
            .collect();
        results.into_iter().collect()
    }

    /// Completes whatever is queued, discarding the results of requests
    /// nobody waited for (before [`Comm::finalize`]); the first failure.
    pub(super) fn drain(&mut self) -> Result<(), CommError> {
        self.progress_until(|c| Ok(!c.engine.busy()))?;
        let results: Vec<_> = self.engine.finished.drain().map(|(_, r)| r).collect();
        results.into_iter().try_for_each(|r| r.map(drop))
    }

    /// The barrier while requests are pending: enters the PMI barrier, then
    /// moves the queues until every rank has entered.
    pub(super) fn barrier_with_progress(&mut self) -> Result<(), CommError> {
        self.pmi.barrier_begin()?;
        self.progress_until(|c| Ok(c.pmi.reply_ready()?))?;
        Ok(self.pmi.barrier_end()?)
    }

    /// A blocking send while requests are pending: posted behind them.
    pub(super) fn send_queued(
        &mut self,
        dest: usize,
        tag: u32,
        data: &[u8],
    ) -> Result<(), CommError> {
        let r = self.isend(dest, tag, data.to_vec())?;
        self.wait(r).map(drop)
    }

    /// A blocking receive while requests are pending: posted behind them.
    pub(super) fn recv_queued(
        &mut self,
        src: usize,
        tag: u32,
        buf: &mut [u8],
    ) -> Result<(), CommError> {
        let r = self.irecv(src, tag, vec![0; buf.len()])?;
        let got = self.wait(r)?;
        buf.copy_from_slice(&got);
        Ok(())
    }
}

impl From<Vec<u8>> for Buffer {
    fn from(v: Vec<u8>) -> Buffer {
        Buffer::Plain(v)
    }
}
