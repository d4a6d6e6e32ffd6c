//! MS-MPI's `mpiexec` command line: options, host lists and sections, as
//! MS-MPI parses them (work in progress for issue 3).
//!
//! This is the pure front half of a launcher, kept apart from any process
//! launching so every rule can be tested on strings:
//!
//! - [`options`]: argv (and configfiles, optionfiles) to a [`Plan`], with
//!   MS-MPI's exact option table and error messages ([`MpiexecError`]).
//! - [`hosts`]: the `n host1 [m1] …` host-list grammar shared by `-hosts`,
//!   `CCP_NODES` and machinefiles, and [`hosts::place`], which turns a plan
//!   and `CCP_NODES` into the hosts of every rank.
//! - [`affinity`]: `-affinity_layout` values.
//! - [`help`]: the `-help`, `-help2` and `-help3` texts.
//!
//! Behind it, [`run`] is the launcher itself (starting ranks, PMI, output,
//! how a job ends), with `ranks`, the two kinds of started rank: mpiexec's
//! own child, or one a node agent's launch service started.
//!
//! The behaviour follows MS-MPI's source (`src/mpi/mpiexec/
//! mp_parse_command_line.cpp`, `smpd_get_hosts_from_file`,
//! `smpd_get_argv_from_file`) where it is more precise than
//! `spec/hpcpack-cli.md` §6-§7; each module says where that matters.

pub mod affinity;
pub mod bootstrap;
pub mod error;
pub mod help;
pub mod hosts;
pub mod local;
pub mod options;
pub mod place;
pub mod plan;
pub mod prepare;
pub mod run;

pub use error::{HostsError, MpiexecError};
pub use options::{Inputs, OsInputs, parse};
pub use place::{HostRanks, place};
pub use plan::{Command, Global, Help, Host, MAX_RANKS, Plan, Section};

// The variables mpiexec reads live in `crate::env`; re-exported here.
pub use crate::env::{MPIEXEC_AFFINITY, MPIEXEC_TIMEOUT};
