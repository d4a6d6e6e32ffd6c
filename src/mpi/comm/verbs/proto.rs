//! The verbs transport's wire protocol and flow control, with no device:
//! message headers, credits, and the rendezvous steps, so every rule is
//! unit-tested on a machine without RDMA.
//!
//! Every message is one SEND into a pre-posted receive buffer of
//! [`EAGER_BUF`] bytes, starting with a [`HEADER`]-byte header (kind: u8,
//! unused: u8, returned credits: u16, tag: u32, length: u64, little-endian):
//!
//! - [`Kind::Eager`]: the payload follows (up to [`EAGER_MAX`] bytes).
//! - Rendezvous (larger messages), driven by the receiver: a receive
//!   names its size, so once a receive of a message above [`EAGER_MAX`]
//!   starts, the receiver registers the user's buffer and sends
//!   [`Kind::Cts`] ("clear to send": tag, length, and the buffer's address
//!   and remote key, [`RemoteBuf`]) without waiting to hear from the sender.
//!   The sender takes the oldest clearance ([`Clearances`]), checks its tag
//!   and length, RDMA WRITEs the bytes straight from its user buffer into
//!   the receiver's in pieces of at most [`RDMA_CHUNK`], at most
//!   [`RDMA_WINDOW`] in flight, then sends [`Kind::Fin`]. A reliable
//!   connection delivers the FIN after the writes, so its arrival means the
//!   data is in place. One message each way and no request-to-send: in a
//!   pingpong the clearance is usually waiting when the sender gets there.
//!   (WRITE rather than READ: a read-based rendezvous needs the sender's
//!   request-to-send first; on Soft-RoCE the two verbs measured alike on a
//!   quiet machine.) [`Kind::Rts`] is reserved.
//!
//!   Both sides are stage machines that never wait: the sender's
//!   [`RndvSend`] (clearance awaited, writes being posted, FIN due, writes
//!   draining) and the receiver's [`RecvStage`] (not started, clearance
//!   sent). Their state lives in the caller's [`Partial`] between calls, so
//!   the non-blocking `try_send`/`try_recv` move them one step at a time
//!   and the blocking `send`/`recv` run the same steps with waiting in
//!   between. The user buffer stays borrowed (and its registration held)
//!   from the clearance until the FIN arrived (receiver) or every write
//!   completed (sender).
//! - [`Kind::Credit`]: returns receive buffers when no other message
//!   carries them back (see [`Credits`]).
//!
//! The receiver owns [`RECV_DEPTH`] buffers per peer; a sender holds one
//! credit per buffer it may fill and gets them back in the header of any
//! message coming the other way. Because a SEND never arrives without a
//! posted buffer, the queue pair never sees receiver-not-ready.

use crate::mpi::comm::Partial;

/// Bytes of the message header.
pub const HEADER: usize = 16;
/// Bytes of each pre-posted receive buffer (and send slot).
pub const EAGER_BUF: usize = 8 * 1024;
/// Largest payload sent eagerly; larger ones go by rendezvous.
pub const EAGER_MAX: usize = EAGER_BUF - HEADER;
/// Receive buffers per peer (the sender's initial credits).
pub const RECV_DEPTH: u16 = 32;
/// Largest single RDMA WRITE of a rendezvous.
pub const RDMA_CHUNK: usize = 1 << 20;
/// RDMA WRITEs in flight per rendezvous.
pub const RDMA_WINDOW: u32 = 8;

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Eager = 1,
    Rts = 2,
    Fin = 3,
    Credit = 4,
    Cts = 5,
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// Receive buffers of the sender of this message freed since its last
    /// message: credits for the receiver of it.
    pub credits: u16,
    pub tag: u32,
    /// Payload length (the full message length for [`Kind::Rts`]).
    pub len: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER] {
        let mut b = [0u8; HEADER];
        b[0] = self.kind as u8;
        b[2..4].copy_from_slice(&self.credits.to_le_bytes());
        b[4..8].copy_from_slice(&self.tag.to_le_bytes());
        b[8..16].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// `None` for a short or unknown message (a protocol error).
    pub fn decode(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER {
            return None;
        }
        let kind = match b[0] {
            1 => Kind::Eager,
            2 => Kind::Rts,
            3 => Kind::Fin,
            4 => Kind::Credit,
            5 => Kind::Cts,
            _ => return None,
        };
        Some(Header {
            kind,
            credits: u16::from_le_bytes([b[2], b[3]]),
            tag: u32::from_le_bytes(b[4..8].try_into().ok()?),
            len: u64::from_le_bytes(b[8..16].try_into().ok()?),
        })
    }
}

/// The body of a [`Kind::Cts`]: where the receiver's buffer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteBuf {
    pub addr: u64,
    pub rkey: u32,
}

impl RemoteBuf {
    pub const LEN: usize = 12;

    pub fn encode(&self) -> [u8; RemoteBuf::LEN] {
        let mut b = [0u8; RemoteBuf::LEN];
        b[..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..].copy_from_slice(&self.rkey.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<RemoteBuf> {
        Some(RemoteBuf {
            addr: u64::from_le_bytes(b.get(..8)?.try_into().ok()?),
            rkey: u32::from_le_bytes(b.get(8..12)?.try_into().ok()?),
        })
    }
}

/// Whether a message of `len` bytes goes by rendezvous.
pub fn rendezvous(len: usize) -> bool {
    len > EAGER_MAX
}

/// Where a rendezvous send stands; kept in a [`Partial`] between calls
/// (`stage`, `word` = writes posted, `moved` = bytes they cover, `bytes` =
/// the receiver's buffer once cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RndvSend {
    pub stage: SendStage,
    /// The receiver's buffer (meaningful from [`SendStage::Writing`] on).
    pub to: RemoteBuf,
    /// RDMA WRITEs posted.
    pub posted: u32,
    /// Bytes those writes cover.
    pub moved: usize,
}

/// The stages of a rendezvous send, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendStage {
    /// Waiting for the receiver's clearance (where every send starts).
    AwaitCts = 0,
    /// Cleared: posting the writes.
    Writing = 1,
    /// Every write is posted; the FIN goes next.
    Fin = 2,
    /// The FIN is posted; the device may still read the buffer until every
    /// write completed.
    Drain = 3,
}

/// What a rendezvous send does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendNext {
    /// Take the receiver's clearance ([`RndvSend::cleared`]).
    Clearance,
    /// Post write number `index`: `len` bytes at `off` of both buffers
    /// ([`RndvSend::wrote`] once posted).
    Write { index: u32, off: usize, len: usize },
    /// Post the FIN ([`RndvSend::fin_sent`] once posted).
    Fin,
    /// Nothing until a completion comes (a write finishing).
    Wait,
    /// Every write completed: the buffer may be reused.
    Done,
}

impl RndvSend {
    /// The send `p` describes (`Partial::default()`: a new one).
    pub fn load(p: &Partial) -> RndvSend {
        let stage = match p.stage {
            1 => SendStage::Writing,
            2 => SendStage::Fin,
            3 => SendStage::Drain,
            _ => SendStage::AwaitCts,
        };
        RndvSend {
            stage,
            to: RemoteBuf::decode(&p.bytes).expect("32 bytes hold a remote buffer"),
            posted: p.word as u32,
            moved: p.moved,
        }
    }

    pub fn store(&self, p: &mut Partial) {
        p.stage = self.stage as u32;
        p.word = u64::from(self.posted);
        p.moved = self.moved;
        p.bytes[..RemoteBuf::LEN].copy_from_slice(&self.to.encode());
    }

    /// Whether the device may still use the buffers (a failure from here
    /// on must close the pair).
    pub fn in_flight(&self) -> bool {
        self.stage != SendStage::AwaitCts
    }

    /// The next step for a message of `len` bytes once `completed` of its
    /// writes completed.
    pub fn next(&self, len: usize, completed: u32) -> SendNext {
        match self.stage {
            SendStage::AwaitCts => SendNext::Clearance,
            SendStage::Writing if self.posted - completed.min(self.posted) < RDMA_WINDOW => {
                SendNext::Write {
                    index: self.posted,
                    off: self.moved,
                    len: RDMA_CHUNK.min(len - self.moved),
                }
            }
            SendStage::Writing => SendNext::Wait,
            SendStage::Fin => SendNext::Fin,
            SendStage::Drain if completed >= self.posted => SendNext::Done,
            SendStage::Drain => SendNext::Wait,
        }
    }

    /// The receiver cleared the message for its buffer `to`.
    pub fn cleared(&mut self, to: RemoteBuf, len: usize) {
        debug_assert_eq!(self.stage, SendStage::AwaitCts);
        self.to = to;
        self.stage = if len == 0 {
            SendStage::Fin
        } else {
            SendStage::Writing
        };
    }

    /// A write of `len` bytes was posted for a message of `total` bytes.
    pub fn wrote(&mut self, len: usize, total: usize) {
        self.posted += 1;
        self.moved += len;
        if self.moved >= total {
            self.stage = SendStage::Fin;
        }
    }

    pub fn fin_sent(&mut self) {
        self.stage = SendStage::Drain;
    }
}

/// Where a receive stands; kept in [`Partial::stage`] between calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvStage {
    /// Nothing sent yet (an eager receive stays here until its message).
    Start = 0,
    /// The clearance went out: the buffer is the peer's to write until its
    /// FIN ([`RecvRndv::AwaitFin`] on the pair).
    Cleared = 1,
}

impl RecvStage {
    pub fn load(p: &Partial) -> RecvStage {
        match p.stage {
            1 => RecvStage::Cleared,
            _ => RecvStage::Start,
        }
    }

    pub fn store(self, p: &mut Partial) {
        p.stage = self as u32;
    }
}

/// One direction's flow control with one peer.
///
/// `avail` counts the peer's free receive buffers this rank may fill.
/// Data messages leave the last credit unused, so a [`Kind::Credit`]
/// message can always be sent; `owed` counts this rank's buffers that were
/// consumed and re-posted but not yet reported to the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credits {
    avail: u16,
    owed: u16,
}

impl Default for Credits {
    fn default() -> Self {
        Credits::new()
    }
}

impl Credits {
    pub fn new() -> Credits {
        Credits {
            avail: RECV_DEPTH,
            owed: 0,
        }
    }

    /// Whether a data message (eager, rendezvous or fin) may be sent now.
    pub fn can_send(&self) -> bool {
        self.avail >= 2
    }

    /// Whether an explicit credit message may be sent now.
    pub fn can_send_credit(&self) -> bool {
        self.avail >= 1
    }

    /// Takes a credit for a message about to be posted, and the owed
    /// credits it carries back.
    pub fn take(&mut self) -> u16 {
        debug_assert!(self.avail > 0, "a send without credit");
        self.avail -= 1;
        std::mem::take(&mut self.owed)
    }

    /// Credits the peer returned in a header.
    pub fn grant(&mut self, n: u16) {
        self.avail = self.avail.saturating_add(n).min(RECV_DEPTH);
    }

    /// One of this rank's buffers was consumed and re-posted. Returns true
    /// when enough are owed that an explicit credit message should carry
    /// them back (no data message may be coming soon to piggyback them).
    pub fn consumed(&mut self) -> bool {
        self.owed += 1;
        self.owed >= RECV_DEPTH / 2
    }

    /// A re-posted buffer whose message was itself a credit or fin: owed,
    /// but never worth a message of its own (which would answer credits
    /// with credits forever).
    pub fn consumed_quietly(&mut self) {
        self.owed += 1;
    }

    pub fn avail(&self) -> u16 {
        self.avail
    }

    pub fn owed(&self) -> u16 {
        self.owed
    }
}

/// A receiver's clearance: where the message `tag` of `len` bytes goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cleared {
    pub tag: u32,
    pub len: u64,
    pub buf: RemoteBuf,
}

/// The clearances a sender holds from one peer, oldest first (the peer's
/// receives, in the order it posted them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clearances(std::collections::VecDeque<Cleared>);

impl Clearances {
    pub fn push(&mut self, c: Cleared) {
        self.0.push_back(c);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The buffer for the message `tag` of `len` bytes being sent: `None`
    /// while no clearance came; `Err` with the oldest clearance when it is
    /// for another message (the two ranks disagree on the order; it stays).
    pub fn take(&mut self, tag: u32, len: u64) -> Option<Result<RemoteBuf, Cleared>> {
        let c = *self.0.front()?;
        if c.tag != tag || c.len != len {
            return Some(Err(c));
        }
        self.0.pop_front();
        Some(Ok(c.buf))
    }
}

/// How far the receiver of a rendezvous is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvRndv {
    Idle,
    /// The CTS went out; the user's buffer stays borrowed and registered
    /// until the sender's FIN.
    AwaitFin,
}

impl RecvRndv {
    /// A FIN arrived: the data is in place. A FIN with no CTS out is a
    /// protocol error.
    pub fn fin(&mut self) -> Result<(), &'static str> {
        match self {
            RecvRndv::AwaitFin => {
                *self = RecvRndv::Idle;
                Ok(())
            }
            RecvRndv::Idle => Err("a rendezvous completion (fin) with no rendezvous in flight"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_reject_garbage() {
        let h = Header {
            kind: Kind::Rts,
            credits: 7,
            tag: 0xdead_beef,
            len: 1 << 40,
        };
        assert_eq!(Header::decode(&h.encode()), Some(h));
        assert_eq!(Header::decode(&[1u8; 15]), None);
        let mut bad = h.encode();
        bad[0] = 9;
        assert_eq!(Header::decode(&bad), None);
        let r = RemoteBuf {
            addr: 0x7fff_0000_1234,
            rkey: 42,
        };
        assert_eq!(RemoteBuf::decode(&r.encode()), Some(r));
        assert_eq!(RemoteBuf::decode(&[0u8; 11]), None);
    }

    #[test]
    fn eager_up_to_the_buffer_rendezvous_above() {
        assert!(!rendezvous(0));
        assert!(!rendezvous(EAGER_MAX));
        assert!(rendezvous(EAGER_MAX + 1));
    }

    /// Drives a rendezvous send of `len` bytes through a [`Partial`] the
    /// way the transport does, with a device completing one write whenever
    /// nothing else can move; returns the writes posted.
    fn drive(len: usize) -> Vec<(u32, usize, usize)> {
        let to = RemoteBuf {
            addr: 4096,
            rkey: 7,
        };
        let mut p = Partial::default();
        let (mut writes, mut completed, mut fin) = (Vec::new(), 0u32, false);
        loop {
            // Every step starts from the caller's cursor, as after a return.
            let mut s = RndvSend::load(&p);
            match s.next(len, completed) {
                SendNext::Clearance => s.cleared(to, len),
                SendNext::Write { index, off, len: l } => {
                    assert!(!fin, "a write after the fin");
                    assert!(s.posted - completed < RDMA_WINDOW, "window exceeded");
                    assert_eq!(index as usize, writes.len());
                    writes.push((index, off, l));
                    s.wrote(l, len);
                }
                SendNext::Fin => {
                    assert_eq!(s.moved, len, "the fin before every write");
                    fin = true;
                    s.fin_sent();
                }
                SendNext::Wait => {
                    assert!(completed < s.posted, "waiting with nothing in flight");
                    completed += 1;
                }
                SendNext::Done => {
                    assert!(fin && completed == s.posted);
                    return writes;
                }
            }
            assert_eq!(s.in_flight(), s.stage != SendStage::AwaitCts);
            s.store(&mut p);
            assert_eq!(RndvSend::load(&p), s, "the cursor holds the whole state");
        }
    }

    #[test]
    fn a_rendezvous_send_writes_in_chunks_within_its_window_then_fins_then_drains() {
        let w = drive(2 * RDMA_CHUNK + 3);
        assert_eq!(
            w,
            vec![
                (0, 0, RDMA_CHUNK),
                (1, RDMA_CHUNK, RDMA_CHUNK),
                (2, 2 * RDMA_CHUNK, 3)
            ]
        );
        assert_eq!(
            drive(4_000_000).iter().map(|w| w.2).sum::<usize>(),
            4_000_000
        );
        assert_eq!(drive(EAGER_MAX + 1), vec![(0, 0, EAGER_MAX + 1)]);
        // More chunks than the window: the ninth waits for a completion.
        let n = RDMA_WINDOW as usize + 3;
        assert_eq!(drive(n * RDMA_CHUNK).len(), n);
        let s = RndvSend {
            stage: SendStage::Writing,
            to: RemoteBuf { addr: 0, rkey: 0 },
            posted: RDMA_WINDOW,
            moved: RDMA_WINDOW as usize * RDMA_CHUNK,
        };
        assert_eq!(s.next(n * RDMA_CHUNK, 0), SendNext::Wait);
        assert!(
            matches!(s.next(n * RDMA_CHUNK, 1), SendNext::Write { index, .. } if index == RDMA_WINDOW)
        );
        // A new send starts by waiting for its clearance.
        let fresh = RndvSend::load(&Partial::default());
        assert_eq!(fresh.next(1 << 30, 0), SendNext::Clearance);
        assert!(!fresh.in_flight());
    }

    #[test]
    fn a_receive_keeps_its_stage_in_the_cursor() {
        let mut p = Partial::default();
        assert_eq!(RecvStage::load(&p), RecvStage::Start);
        RecvStage::Cleared.store(&mut p);
        assert_eq!(RecvStage::load(&p), RecvStage::Cleared);
        assert_eq!(p.stage, 1);
    }

    #[test]
    fn credits_run_out_keep_one_for_a_credit_message_and_come_back() {
        let mut c = Credits::new();
        let mut sent = 0;
        while c.can_send() {
            assert_eq!(c.take(), 0);
            sent += 1;
        }
        // Every buffer but one may hold data; the last is for credits.
        assert_eq!(sent, RECV_DEPTH - 1);
        assert!(c.can_send_credit());
        c.take();
        assert!(!c.can_send_credit());
        c.grant(3);
        assert!(c.can_send());
        // Never more than the peer's buffers, whatever a header claims.
        c.grant(u16::MAX);
        assert_eq!(c.avail(), RECV_DEPTH);
    }

    #[test]
    fn owed_credits_ride_on_the_next_message_or_ask_for_one() {
        let mut c = Credits::new();
        for _ in 0..RECV_DEPTH / 2 - 1 {
            assert!(!c.consumed());
        }
        c.consumed_quietly();
        assert_eq!(c.owed(), RECV_DEPTH / 2);
        // The next message carries them all back.
        assert_eq!(c.take(), RECV_DEPTH / 2);
        assert_eq!(c.owed(), 0);
        for _ in 0..RECV_DEPTH / 2 - 1 {
            assert!(!c.consumed());
        }
        assert!(
            c.consumed(),
            "half the buffers owed asks for a credit message"
        );
    }

    #[test]
    fn rendezvous_steps_in_order_and_reject_strays() {
        let b = RemoteBuf { addr: 64, rkey: 9 };
        let mut c = Clearances::default();
        assert_eq!(c.take(1, 100), None, "no clearance yet");
        c.push(Cleared {
            tag: 1,
            len: 100,
            buf: b,
        });
        c.push(Cleared {
            tag: 2,
            len: 200,
            buf: b,
        });
        // Out of order: the oldest is named and stays.
        assert_eq!(
            c.take(2, 200),
            Some(Err(Cleared {
                tag: 1,
                len: 100,
                buf: b
            }))
        );
        assert_eq!(c.take(1, 100), Some(Ok(b)));
        assert_eq!(c.take(2, 200), Some(Ok(b)));
        assert!(c.is_empty());
        let mut r = RecvRndv::Idle;
        assert!(r.fin().is_err());
        r = RecvRndv::AwaitFin;
        assert!(r.fin().is_ok());
        assert_eq!(r, RecvRndv::Idle);
    }
}
