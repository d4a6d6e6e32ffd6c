//! The RDMA verbs transport (MS-MPI's "Network Direct" channel), behind the
//! cargo feature `verbs`; without it [`VerbsTransport::open`] answers
//! "built without verbs".
//!
//! # Setup
//!
//! [`VerbsTransport::open`] lists the devices (libibverbs is loaded at run
//! time by the binding in `ffi`, so a machine without it, or whose kernel
//! has no RDMA, only loses this channel, and the card says why), picks an
//! active port ([`endpoint::pick`]: `HPCPACK_VERBS_DEVICE`, else the port
//! carrying the IPv4-mapped RoCE v2 GID of an address in `MPICH_NETMASK`,
//! else of any address of this rank's network namespace, else the first
//! active port), and creates one reliable-connected queue pair per peer
//! with its receive buffers posted. Its endpoint goes in the card
//! ([`endpoint::Endpoint`]) and its queue pair numbers under PMI keys of
//! their own ([`VerbsTransport::qpn_entries`]), so once they are exchanged,
//! [`VerbsTransport::with_peers`] brings every pair to ready-to-send at
//! once. Connecting eagerly is deliberate: a
//! reliable-connected peer drops packets until its queue pair is up, and
//! with every pair up at init `MSMPI_PRECONNECT` has nothing left to do.
//! Every pair costs each rank a queue pair and about 384 KiB of registered
//! (pinned) buffers, so jobs of more than [`MAX_RANKS`] ranks go without
//! verbs (the card says so).
//!
//! # Data path
//!
//! See [`proto`]: eager sends into pre-posted buffers (inline when they
//! fit the queue pair's inline size), credits returned in headers or by
//! credit messages, rendezvous by RDMA WRITE straight from the sender's
//! user buffer into the receiver's. Heap buffers are registered through a
//! [`regcache::RegCache`] (once the first pair is up, malloc is told to
//! keep the memory it frees, so a cached registration never goes stale),
//! other memory for one message at a time.
//!
//! # Progress without waiting
//!
//! A send or receive is a sequence of steps that never wait for the peer
//! (post an eager message once a credit and a slot are free; take the
//! clearance; post the writes, at most [`proto::RDMA_WINDOW`] in flight;
//! post the FIN; see the writes complete; on the receiving side, post the
//! clearance; see the FIN), with the message's stage kept in the caller's
//! [`Partial`](crate::mpi::comm::Partial). `try_send` and `try_recv` run
//! the steps that can run now, poll the completion queue once, and try
//! again; the blocking `send` and `recv` run the same steps with the
//! waiting below in between. The queue is shared by every pair, so each
//! completion updates its own pair's state (credits, arrived messages,
//! clearances, writes done), whichever call polled it.
//!
//! A failed completion, a protocol error, or an error while a rendezvous
//! is under way (the caller then lets go of its buffer) closes that pair
//! alone for good: its queue pair goes to the error state, so the device
//! stops touching the buffers, and every later call for the pair says what
//! failed first. `check_peer` reports that, a peer on the same host whose
//! process is gone, or a queue pair found in the error state; a dead peer
//! on another host with nothing in flight towards it shows nothing (the
//! launcher ends the job).
//!
//! # Waiting
//!
//! Spin on the completion queue ([`SPIN`] polls), then yield for
//! [`YIELD_FOR`] (ranks sharing a CPU), then arm the queue and sleep on its
//! completion channel for at most [`SLEEP`], checking after each sleep what
//! `check_peer` checks.

//!
//! # Measurements
//!
//! `benches/verbs.sh` in the Soft-RoCE rig (TCG guest, 2 vCPUs, release
//! build, best of 3 alternating rounds; emulated, so only ratios count):
//!
//! | mpipingpong over verbs         | value      | perftest, same devices           | ratio |
//! |--------------------------------|------------|----------------------------------|-------|
//! | 1 B, half round trip           | 184 µs     | `ib_send_lat` t_avg 186 µs       | 0.99  |
//! | 4 MB pingpong                  | 23.7 MB/s  | `ib_write_bw` (streaming) 29.4   | 0.81  |
//! | 4 MB pingpong                  | 23.7 MB/s  | `ib_write_lat` 4 MB (pingpong) 24.3 | 0.98 |
//!
//! The gap to `ib_write_bw` is the pingpong itself (one message in flight,
//! the direction turning each time), as perftest's own pingpong of RDMA
//! writes shows; neither the rendezvous' chunk size (1 vs 16 MiB) nor a
//! 50 ms busy phase instead of sleeping changed it.

pub mod endpoint;
pub mod proto;
pub mod regcache;
#[cfg(feature = "verbs")]
mod ffi;
#[cfg(feature = "verbs")]
mod sys;
#[cfg(feature = "verbs")]
mod transport;

use std::time::Duration;

/// Largest job that uses verbs: 1023 peers pin about 384 MB per rank.
pub const MAX_RANKS: usize = 1024;
/// Completion-queue polls before yielding.
pub const SPIN: u32 = 64;
/// How long to yield before sleeping.
pub const YIELD_FOR: Duration = Duration::from_millis(1);
/// Longest sleep on the completion channel between liveness checks.
pub const SLEEP: Duration = Duration::from_millis(100);

#[cfg(feature = "verbs")]
pub use transport::VerbsTransport;

#[cfg(not(feature = "verbs"))]
mod disabled {
    use super::super::select::Netmask;
    use super::super::{CommError, Partial, Transport};

    /// The verbs transport of a build without the `verbs` feature.
    pub struct VerbsTransport(());

    impl VerbsTransport {
        pub fn open(
            _rank: usize,
            _size: usize,
            _netmask: Option<&Netmask>,
        ) -> Result<(VerbsTransport, String), String> {
            Err("built without verbs (cargo feature `verbs`)".to_string())
        }

        pub fn qpn_entries(&self) -> Vec<(String, String)> {
            Vec::new()
        }

        pub fn with_peers(
            self,
            _endpoints: Vec<Option<(String, String)>>,
        ) -> Result<VerbsTransport, CommError> {
            Ok(self)
        }
    }

    impl Transport for VerbsTransport {
        fn send(&mut self, _: usize, _: u32, _: &[u8]) -> Result<(), CommError> {
            unreachable!("no verbs transport is ever opened in this build")
        }
        fn recv(&mut self, _: usize, _: u32, _: &mut [u8]) -> Result<(), CommError> {
            unreachable!("no verbs transport is ever opened in this build")
        }
        fn connect(&mut self, _: usize) -> Result<(), CommError> {
            unreachable!("no verbs transport is ever opened in this build")
        }
        fn is_connected(&self, _: usize) -> bool {
            false
        }
        fn try_send(
            &mut self,
            _: usize,
            _: u32,
            _: &[u8],
            _: &mut Partial,
        ) -> Result<bool, CommError> {
            unreachable!("no verbs transport is ever opened in this build")
        }
        fn try_recv(
            &mut self,
            _: usize,
            _: u32,
            _: &mut [u8],
            _: &mut Partial,
        ) -> Result<bool, CommError> {
            unreachable!("no verbs transport is ever opened in this build")
        }
        fn check_peer(&mut self, _: usize) -> Result<(), CommError> {
            unreachable!("no verbs transport is ever opened in this build")
        }
    }
}

#[cfg(not(feature = "verbs"))]
pub use disabled::VerbsTransport;

#[cfg(all(test, not(feature = "verbs")))]
mod tests {
    #[test]
    fn a_build_without_verbs_says_so() {
        let err = super::VerbsTransport::open(0, 2, None).err().unwrap();
        assert_eq!(err, "built without verbs (cargo feature `verbs`)");
    }
}
