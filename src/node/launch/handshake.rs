//! The launch service's front door: one thread that accepts connections,
//! gathers each one's request with non-blocking reads in a `poll(2)` loop,
//! and passes a complete request to [`check`] and [`hand_over`].
//!
//! Anyone who can reach the port can connect, and nothing is known about a
//! connection until its request is complete and checked, so what such a
//! connection may cost is bounded ([`Limits`]; with a thread each, 3,000
//! idle connections would starve the head node's other clients):
//!
//! - no thread per connection: a pending connection is a descriptor and a
//!   buffer that grows as its bytes arrive, never to the length its header
//!   claims;
//! - a deadline for the whole handshake, counted from accept, so bytes
//!   trickled in one at a time do not extend it;
//! - at most [`Limits::max_pending`] pending connections; one more evicts
//!   the oldest. A real mpiexec sends its request as it connects, and a
//!   connection is read as soon as it is accepted, so in a flood it is served
//!   and the flood's idle connections are the ones that go (refusing new
//!   connections instead would refuse it too);
//! - a request of at most [`Limits::max_request`] bytes, and at most
//!   [`Limits::max_buffered`] bytes buffered for all pending connections;
//! - out of descriptors (`EMFILE`, `ENFILE`), the oldest pending connection
//!   goes to make room; when there is none, accepting pauses for a moment
//!   instead of the loop spinning on the error.
//!
//! Evictions, expiries and accept errors are logged as one summary line
//! every [`REPORT_EVERY`] at most, so a flood does not flood the log too.
//!
//! The `run-rank` processes of granted requests are reaped here as well,
//! through a pidfd each in the same poll set: no thread per rank either.

use super::{ClusterKey, Grant, Jobs, check, hand_over, log};
use crate::node::protocol::{Frame, HEADER_LEN, Header};
use crate::node::sys;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What an unauthenticated connection may cost the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From accept to a complete request, however its bytes arrive.
    pub handshake: Duration,
    /// Connections accepted whose request is not complete yet; one more
    /// evicts the oldest.
    pub max_pending: usize,
    /// Bytes of a request's payload: its program, arguments and environment
    /// (the kernel limits a process's arguments and environment to a few
    /// MiB anyway).
    pub max_request: usize,
    /// Bytes buffered for all pending connections together; a connection
    /// that would go past it is dropped.
    pub max_buffered: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            handshake: Duration::from_secs(10),
            max_pending: 256,
            max_request: 4 << 20,
            max_buffered: 64 << 20,
        }
    }
}

/// Connections accepted in one go before the pending ones are read again.
const ACCEPT_BATCH: usize = 64;
/// How long accepting pauses when the process is out of descriptors.
const OUT_OF_FDS_PAUSE: Duration = Duration::from_millis(20);
/// How long it pauses after another accept error (ENOBUFS, ENOMEM…).
const ERROR_PAUSE: Duration = Duration::from_millis(5);
/// How often a `run-rank` without a pidfd (kernels before 5.3) is checked.
const REAP_EVERY: Duration = Duration::from_secs(1);
/// The most often connections dropped in the handshake are logged.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Bytes read in one call.
const SCRATCH: usize = 64 << 10;

/// One accepted connection whose request is not complete yet.
struct Pending {
    conn: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    /// What arrived of the request frame, header first.
    buf: Vec<u8>,
}

/// Where a pending connection is after a read.
enum Step {
    /// Waiting for more bytes.
    Waiting,
    /// The request frame is in the buffer.
    Complete,
    /// The peer closed or reset the connection: nothing to answer.
    Closed,
    /// Cannot go on: tell the peer why.
    Refuse(String),
}

impl Pending {
    fn header(&self) -> Option<Header> {
        let head: [u8; HEADER_LEN] = self.buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header::parse(head))
    }

    /// Bytes of the whole frame as far as known: the header's until it has
    /// arrived.
    fn frame_len(&self) -> usize {
        self.header()
            .map_or(HEADER_LEN, |h| HEADER_LEN + h.len as usize)
    }

    /// Reads what has arrived, never past the request frame (the rest of the
    /// stream is `run-rank`'s), growing the buffer only for bytes that came;
    /// `buffered` counts the capacity of all pending buffers.
    fn read(&mut self, scratch: &mut [u8], buffered: &mut usize, limits: &Limits) -> Step {
        loop {
            let total = self.frame_len();
            let want = total - self.buf.len();
            if want == 0 {
                return Step::Complete;
            }
            let room = want.min(scratch.len());
            let n = match self.conn.read(&mut scratch[..room]) {
                Ok(0) => return Step::Closed,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Waiting,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Step::Closed,
            };
            let need = self.buf.len() + n;
            let old = self.buf.capacity();
            if need > old {
                // Doubling, for few copies, but never past the frame itself.
                let cap = need.max(old * 2).min(total);
                if *buffered + (cap - old) > limits.max_buffered {
                    return Step::Refuse(format!(
                        "the launch service already holds {} of requests still arriving; try again",
                        size(limits.max_buffered)
                    ));
                }
                self.buf.reserve_exact(cap - self.buf.len());
                *buffered += self.buf.capacity() - old;
            }
            self.buf.extend_from_slice(&scratch[..n]);
            if self.buf.len() == HEADER_LEN {
                let Some(h) = self.header() else { continue };
                if !h.is_request() {
                    return Step::Refuse(format!(
                        "the first frame must be a rank request (this one is of kind {})",
                        h.kind
                    ));
                }
                if h.len as usize > limits.max_request {
                    return Step::Refuse(format!(
                        "a rank request of {} bytes is larger than the {} a request may have (its program, arguments and environment); start the rank with a smaller environment",
                        h.len,
                        size(limits.max_request)
                    ));
                }
            }
        }
    }
}

/// A `run-rank` process that was handed a connection, until it is reaped.
struct Runner {
    child: Child,
    /// Readable once it exited; `None` on kernels without pidfds.
    pidfd: Option<OwnedFd>,
}

/// Connections dropped in the handshake since the last log line.
#[derive(Default)]
struct Dropped {
    since: Option<Instant>,
    /// As the oldest when more than the cap were pending.
    evicted: u64,
    /// As the oldest when the process ran out of descriptors.
    evicted_for_fds: u64,
    expired: u64,
    accept_errors: u64,
    last_accept_error: String,
}

impl Dropped {
    fn count(&mut self, now: Instant) {
        self.since.get_or_insert(now);
    }
}

/// The service's state, owned by its one thread.
pub(super) struct Service {
    listener: TcpListener,
    limits: Limits,
    key: ClusterKey,
    jobs: Arc<dyn Jobs>,
    runner: PathBuf,
    /// Oldest first: accept order is deadline order, so expiry and eviction
    /// both take from the front.
    pending: VecDeque<Pending>,
    /// Capacity of all pending buffers, in bytes.
    buffered: usize,
    runners: Vec<Runner>,
    /// Accepting pauses until then after an accept error.
    paused_until: Option<Instant>,
    scratch: Vec<u8>,
    dropped: Dropped,
}

impl Service {
    /// The service on `listener`, which must be non-blocking.
    pub(super) fn new(
        listener: TcpListener,
        key: ClusterKey,
        jobs: Arc<dyn Jobs>,
        runner: PathBuf,
        limits: Limits,
    ) -> Service {
        Service {
            listener,
            limits: Limits {
                max_pending: limits.max_pending.max(1),
                ..limits
            },
            key,
            jobs,
            runner,
            pending: VecDeque::new(),
            buffered: 0,
            runners: Vec::new(),
            paused_until: None,
            scratch: vec![0; SCRATCH],
            dropped: Dropped::default(),
        }
    }

    /// Serves for as long as the process lives.
    pub(super) fn run(mut self) {
        loop {
            let now = Instant::now();
            self.expire(now);
            self.report(now);
            let accepting = self.paused_until.is_none_or(|t| t <= now);
            if accepting {
                self.paused_until = None;
            }
            let watch = |fd: RawFd, events| libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            let mut fds = Vec::with_capacity(1 + self.pending.len() + self.runners.len());
            // Not watched while paused: out of descriptors, it stays readable.
            let events = if accepting { libc::POLLIN } else { 0 };
            fds.push(watch(self.listener.as_raw_fd(), events));
            fds.extend(
                self.pending
                    .iter()
                    .map(|p| watch(p.conn.as_raw_fd(), libc::POLLIN)),
            );
            // poll ignores a negative descriptor: those are checked on a timer.
            fds.extend(
                self.runners
                    .iter()
                    .map(|r| watch(r.pidfd.as_ref().map_or(-1, |f| f.as_raw_fd()), libc::POLLIN)),
            );
            if let Err(e) = sys::poll_raw(&mut fds, self.timeout(now)) {
                log(&format!("cannot wait for connections: {e}"));
                std::thread::sleep(ERROR_PAUSE);
                continue;
            }
            let ready = |f: &libc::pollfd| f.revents != 0;
            let pending_ready: Vec<bool> =
                fds[1..1 + self.pending.len()].iter().map(ready).collect();
            let runners_ready: Vec<bool> =
                fds[1 + self.pending.len()..].iter().map(ready).collect();
            // Runners first: serving a request below adds to them.
            self.reap(&runners_ready);
            self.read_pending(&pending_ready);
            if ready(&fds[0]) {
                self.accept();
            }
        }
    }

    /// Milliseconds until the next deadline, pause end, reap or report.
    fn timeout(&self, now: Instant) -> i32 {
        let mut next = self.pending.front().map(|p| p.deadline);
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(t) = self.paused_until {
            at(t);
        }
        if self.runners.iter().any(|r| r.pidfd.is_none()) {
            at(now + REAP_EVERY);
        }
        if let Some(since) = self.dropped.since {
            at(since + REPORT_EVERY);
        }
        match next {
            None => -1,
            // Rounded up, so the loop does not wake just before a deadline.
            Some(t) => t
                .saturating_duration_since(now)
                .as_micros()
                .div_ceil(1000)
                .min(i32::MAX as u128) as i32,
        }
    }

    fn read_pending(&mut self, ready: &[bool]) {
        let before = std::mem::take(&mut self.pending);
        for (i, mut p) in before.into_iter().enumerate() {
            if !ready.get(i).copied().unwrap_or(false) {
                self.pending.push_back(p);
                continue;
            }
            match p.read(&mut self.scratch, &mut self.buffered, &self.limits) {
                Step::Waiting => self.pending.push_back(p),
                step => self.finish(p, step),
            }
        }
    }

    fn accept(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((conn, peer)) => self.admit(conn, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // A peer that reset before it was accepted.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    let now = Instant::now();
                    self.dropped.count(now);
                    self.dropped.accept_errors += 1;
                    self.dropped.last_accept_error = e.to_string();
                    let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                    // Out of descriptors, the oldest pending connection
                    // makes room for the one waiting, at once: pausing
                    // after each would let a real request that waits
                    // behind a flood in the accept queue in only after
                    // the whole flood, some 50 connections a second.
                    if out_of_fds && !self.pending.is_empty() {
                        self.dropped.evicted_for_fds += 1;
                        self.evict_oldest(format!(
                            "the launch service ran out of descriptors ({e}), and closes the oldest connections that have not sent their request; try again"
                        ));
                        continue;
                    }
                    // Nothing to give back (the descriptors are held
                    // elsewhere), or another error: the listener stays
                    // readable, so pause rather than spin.
                    let pause = if out_of_fds {
                        OUT_OF_FDS_PAUSE
                    } else {
                        ERROR_PAUSE
                    };
                    self.paused_until = Some(now + pause);
                    return;
                }
            }
        }
    }

    fn admit(&mut self, conn: TcpStream, peer: SocketAddr) {
        // accept(2) does not pass the listener's O_NONBLOCK on.
        if conn.set_nonblocking(true).is_err() {
            return;
        }
        let _ = conn.set_nodelay(true);
        let now = Instant::now();
        let mut p = Pending {
            conn,
            peer,
            deadline: now + self.limits.handshake,
            buf: Vec::new(),
        };
        // A real mpiexec sends its request as it connects: read it now,
        // before the connections behind it in the accept queue could evict
        // it.
        match p.read(&mut self.scratch, &mut self.buffered, &self.limits) {
            Step::Waiting => {
                if self.pending.len() >= self.limits.max_pending {
                    self.dropped.count(now);
                    self.dropped.evicted += 1;
                    self.evict_oldest(format!(
                        "the launch service has {} connections that have not sent their request, and closes the oldest; try again",
                        self.limits.max_pending
                    ));
                }
                self.pending.push_back(p);
            }
            step => self.finish(p, step),
        }
    }

    /// Drops the oldest pending connection, telling it why.
    fn evict_oldest(&mut self, message: String) {
        if let Some(p) = self.pending.pop_front() {
            self.release(&p);
            tell(p.conn, message);
        }
    }

    /// Drops the pending connections whose handshake is over time.
    fn expire(&mut self, now: Instant) {
        while self.pending.front().is_some_and(|p| p.deadline <= now) {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            self.dropped.count(now);
            self.dropped.expired += 1;
            self.release(&p);
            let message = format!(
                "no complete rank request within {} of connecting",
                duration(self.limits.handshake)
            );
            tell(p.conn, message);
        }
    }

    /// Forgets `p`'s buffer in the count of buffered bytes.
    fn release(&mut self, p: &Pending) {
        self.buffered = self.buffered.saturating_sub(p.buf.capacity());
    }

    /// Ends the handshake of a connection that is no longer pending.
    fn finish(&mut self, p: Pending, step: Step) {
        self.release(&p);
        let peer = p.peer.to_string();
        match step {
            Step::Waiting | Step::Closed => {}
            Step::Refuse(message) => refuse(p.conn, &peer, message),
            Step::Complete => self.serve(p.conn, &peer, &p.buf),
        }
    }

    /// Checks a complete request and hands it with its connection to a
    /// `run-rank` process, or refuses it.
    fn serve(&mut self, conn: TcpStream, peer: &str, frame: &[u8]) {
        let request = match Frame::read_from(&mut &frame[..]) {
            Ok(Frame::Request(r)) => r,
            Ok(_) => return refuse(conn, peer, "the first frame must be a rank request".into()),
            Err(e) => return refuse(conn, peer, format!("cannot read the rank request: {e}")),
        };
        let run_as_uid = match check(&request, &self.key, &*self.jobs, sys::uid()) {
            Ok(uid) => uid,
            Err(message) => return refuse(conn, peer, message),
        };
        let grant = Grant {
            request,
            run_as_uid,
        };
        // run-rank talks to mpiexec with blocking reads and writes.
        let handed = conn
            .set_nonblocking(false)
            .and_then(|()| hand_over(&conn, &grant, &self.runner));
        match handed {
            Ok(child) => {
                let pidfd = sys::pidfd_open(child.id()).ok();
                self.runners.push(Runner { child, pidfd });
            }
            Err(e) => {
                let _ = conn.set_nonblocking(true);
                let message = format!(
                    "cannot start the rank's supervisor {}: {e}",
                    self.runner.display()
                );
                refuse(conn, peer, message);
            }
        }
    }

    /// Reaps the `run-rank` processes that exited.
    fn reap(&mut self, ready: &[bool]) {
        let mut i = 0;
        self.runners.retain_mut(|r| {
            let due = r.pidfd.is_none() || ready.get(i).copied().unwrap_or(false);
            i += 1;
            // Reaped, or not ours to wait for any more: forget it.
            !due || matches!(r.child.try_wait(), Ok(None))
        });
    }

    /// Logs what was dropped in the handshake, at most every
    /// [`REPORT_EVERY`].
    fn report(&mut self, now: Instant) {
        let Some(since) = self.dropped.since else {
            return;
        };
        if now < since + REPORT_EVERY {
            return;
        }
        let d = std::mem::take(&mut self.dropped);
        let mut parts = Vec::new();
        if d.evicted > 0 {
            parts.push(format!(
                "closed {} connections as the oldest of more than {} without a request",
                d.evicted, self.limits.max_pending
            ));
        }
        if d.evicted_for_fds > 0 {
            parts.push(format!(
                "closed {} as the oldest without a request when out of descriptors",
                d.evicted_for_fds
            ));
        }
        if d.expired > 0 {
            parts.push(format!(
                "closed {} that sent no complete request within {}",
                d.expired,
                duration(self.limits.handshake)
            ));
        }
        if d.accept_errors > 0 {
            parts.push(format!(
                "{} accept errors (the last: {})",
                d.accept_errors, d.last_accept_error
            ));
        }
        log(&format!(
            "in the last {} s: {}",
            now.duration_since(since).as_secs(),
            parts.join("; ")
        ));
    }
}

/// Refuses a connection, with a log line.
pub(super) fn refuse(conn: TcpStream, peer: &str, message: String) {
    log(&format!("refused a request from {peer}: {message}"));
    tell(conn, message);
}

/// Sends a `Refused` frame and closes. The connection may be non-blocking:
/// a peer that does not read gets nothing, and the service never waits.
fn tell(mut conn: TcpStream, message: String) {
    let _ = Frame::Refused { message }.write_to(&mut conn);
}

/// `4 MiB`, or bytes when not a whole number of MiB.
fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// `10 s`, or milliseconds when not a whole number of seconds.
fn duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::thread;

    /// The service of the launch tests, every answer a refusal.
    fn serve(limits: Limits) -> SocketAddr {
        super::super::tests::serve_refusing(limits)
    }

    /// A request for job 5 with a forged credential, as bytes on the wire.
    fn forged() -> Vec<u8> {
        Frame::Request(super::super::tests::forged()).encode()
    }

    /// The refusal the service sends on `c`, after which it closes.
    fn refusal(c: &mut TcpStream) -> String {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let message = match Frame::read_from(c) {
            Ok(Frame::Refused { message }) => message,
            other => panic!("not refused: {other:?}"),
        };
        assert!(matches!(
            Frame::read_from(c),
            Err(crate::node::protocol::FrameError::Closed)
        ));
        message
    }

    fn short(handshake: Duration) -> Limits {
        Limits {
            handshake,
            ..Limits::default()
        }
    }

    #[test]
    fn a_silent_connection_is_closed_at_the_deadline() {
        let addr = serve(short(Duration::from_millis(500)));
        let started = Instant::now();
        let mut c = TcpStream::connect(addr).unwrap();
        let message = refusal(&mut c);
        let took = started.elapsed();
        assert_eq!(
            message,
            "no complete rank request within 500 ms of connecting"
        );
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_millis(1500),
            "{took:?}"
        );
    }

    #[test]
    fn a_trickle_does_not_extend_the_deadline() {
        let addr = serve(short(Duration::from_millis(500)));
        let started = Instant::now();
        let mut c = TcpStream::connect(addr).unwrap();
        let mut w = c.try_clone().unwrap();
        // One byte of a real request every 100 ms: its ~300 bytes would
        // take half a minute.
        let trickle = thread::spawn(move || {
            for b in forged() {
                if w.write_all(&[b]).is_err() || started.elapsed() > Duration::from_secs(5) {
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
        });
        let message = refusal(&mut c);
        let took = started.elapsed();
        assert!(
            message.starts_with("no complete rank request within 500 ms"),
            "{message}"
        );
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_millis(1500),
            "closed after {took:?}"
        );
        trickle.join().unwrap();
    }

    #[test]
    fn a_request_in_pieces_is_put_together() {
        let addr = serve(Limits::default());
        let mut c = TcpStream::connect(addr).unwrap();
        let bytes = forged();
        for piece in [&bytes[..3], &bytes[3..40], &bytes[40..]] {
            c.write_all(piece).unwrap();
            thread::sleep(Duration::from_millis(50));
        }
        let message = refusal(&mut c);
        assert!(
            message.contains("the job credential is not valid for job 5"),
            "{message}"
        );
    }

    #[test]
    fn a_full_pending_cap_evicts_the_oldest_and_serves_a_new_request() {
        let addr = serve(Limits {
            max_pending: 8,
            handshake: Duration::from_secs(30),
            ..Limits::default()
        });
        let mut idle: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let started = Instant::now();
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(&forged()).unwrap();
        let message = refusal(&mut c);
        let took = started.elapsed();
        assert!(message.contains("not valid for job 5"), "{message}");
        assert!(took < Duration::from_secs(1), "answered after {took:?}");
        // The oldest idle connections were told why they went…
        let evicted = refusal(&mut idle[0]);
        assert!(
            evicted.contains(
                "has 8 connections that have not sent their request, and closes the oldest"
            ),
            "{evicted}"
        );
        // …the newest still wait.
        let last = idle.last_mut().unwrap();
        last.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let e = last.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
    }

    #[test]
    fn an_oversized_request_is_refused_by_its_header() {
        let addr = serve(Limits::default());
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(&[1, 0xff, 0xff, 0xff, 0xff]).unwrap();
        let message = refusal(&mut c);
        assert!(
            message.starts_with(
                "a rank request of 4294967295 bytes is larger than the 4 MiB a request may have"
            ),
            "{message}"
        );
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(&[99, 0, 0, 0, 0]).unwrap();
        let message = refusal(&mut c);
        assert!(
            message.contains("the first frame must be a rank request (this one is of kind 99)"),
            "{message}"
        );
    }

    #[test]
    fn buffered_bytes_are_bounded() {
        let addr = serve(Limits {
            max_buffered: 1000,
            ..Limits::default()
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&100_000u32.to_be_bytes());
        bytes.extend_from_slice(&[b' '; 5000]);
        // The service may close before it has read all of it.
        let _ = c.write_all(&bytes);
        let message = refusal(&mut c);
        assert!(
            message.contains("already holds 1000 bytes of requests still arriving"),
            "{message}"
        );
    }
}
