//! hpcpack: Microsoft HPC Pack's command line (`job`, `task`, `node`,
//! `cluscfg`) for Linux, with a head node of its own (`hpcd`).
//!
//! # Layout
//!
//! - [`model`]: jobs, tasks, nodes, states and value grammars, as pure data.
//! - [`wire`]: the HTTP shapes shared by client and server (HPC Pack's REST
//!   API and this project's extensions).
//! - [`head`]: the head node: REST server, SQLite store, the pure scheduler,
//!   and the embedded cluster's layout.
//! - [`node`]: the node agent and its per-task supervisor.
//! - [`mpi`]: the MPI runtime; for now MPICH's PMI-1 protocol (server and
//!   client) that `mpiexec` and our own ranks will speak.
//! - [`client`]: the `Backend` trait the CLIs use, and the HPC Pack REST
//!   backend that talks to our head node or a real one.
//! - [`cli`]: HPC Pack's `/name:value` grammar, one module per tool, output.
//! - [`slurm`]: Slurm's node lists, states and options in HPC Pack's terms.
//! - [`net`]: TCP listeners with a deep accept queue.
//! - [`multicall`]: the `hpcpack` program that is `job`, `task`, `node`,
//!   `cluscfg` and `hpcd` by the name it is started under.
//! - [`env`]: every environment variable read or set.
//! - [`config`]: settings files and their precedence.
//! - [`error`]: error kinds and the CLIs' exit codes.
//! - [`firewall`]: `hpcfwutil`'s rules in nftables, and the ports a
//!   registered program's ranks listen in.

pub mod cli;
pub mod client;
pub mod config;
pub mod env;
pub mod error;
pub mod firewall;
pub mod head;
pub mod model;
pub mod mpi;
pub mod multicall;
pub mod net;
pub mod node;
pub mod pingpong;
pub mod slurm;
pub mod wire;

/// This build's version, reported as the cluster version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
