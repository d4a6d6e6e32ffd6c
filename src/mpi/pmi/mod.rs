//! MPICH's "simple PMI" (PMI-1) protocol: how a launcher hands an MPI rank its
//! rank, world size and a key-value space shared by the job.
//!
//! The protocol (see `spec/pmi.md`) is line-based text over one connection per
//! rank. It is split in three parts so each can be tested without the others:
//!
//! - [`wire`]: parsing and formatting of one line, and the exact reply strings
//!   hydra sends, which MPICH's client checks byte for byte in places.
//! - [`server`]: a pure state machine for one job (lines in, lines out to
//!   ranks), so the launcher owns all sockets and threads.
//! - [`client`]: a blocking client over any stream, for our own ranks.

pub mod client;
pub mod server;
pub mod wire;

pub use client::{Client, ClientError, EnvStream, Maxes};
pub use server::{Event, Server, process_mapping, process_mapping_of};
pub use wire::{Message, Request, WireError};

// The environment variables of PMI-1 live in `crate::env` with every other
// variable; re-exported here for the protocol's users.
pub use crate::env::{PMI_FD, PMI_ID, PMI_PORT, PMI_RANK, PMI_SIZE};
