//! MS-MPI's `mpiexec`: its command line, parsed as MS-MPI parses it, and the
//! launcher that starts the ranks, serves them PMI and ends the job as
//! MS-MPI does.
//!
//! The steps, in the order a run takes them; each module imports only
//! modules above it, so the command line stays testable on strings and the
//! ways of starting ranks stay behind one interface:
//!
//! - [`error`]: the command line's errors ([`MpiexecError`], [`HostsError`]),
//!   MS-MPI's exact messages. A leaf.
//! - [`affinity`]: `-affinity_layout` values.
//! - [`plan`]: what a command line asks for ([`Plan`]), pure data.
//! - [`hosts`]: the `n host1 [m1] …` host-list grammar shared by `-hosts`,
//!   `CCP_NODES` and machinefiles.
//! - [`options`]: argv (and configfiles, optionfiles) to a [`Plan`], with
//!   MS-MPI's exact option table.
//! - [`help`]: the `-help`, `-help2` and `-help3` texts.
//! - [`place`](mod@place): a plan and `CCP_NODES` (or, inside a Slurm
//!   allocation, its nodes) to the hosts of every rank.
//! - [`local`]: this host (name, CPUs, directory, virtual nodes).
//! - [`bootstrap`]: how ranks start on their hosts and report back (the
//!   [`bootstrap::Bootstrap`] interface: mpiexec's own children, the node
//!   agents' launch service, or, inside a Slurm allocation, proxies started
//!   by one `srun` step; picked from the environment), and the PMI server's
//!   connections.
//! - [`prepare`]: a placed plan to one [`bootstrap::Launch`] per rank.
//! - [`run`]: the supervisor (start through the bootstrap, PMI events,
//!   output, how a job ends) and the `mpiexec` program.
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
