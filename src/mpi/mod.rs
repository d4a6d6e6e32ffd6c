//! The MPI runtime: what `mpiexec` needs to start MPI programs and what our
//! own ranks need to find each other.
//!
//! For now this is only [`pmi`], MPICH's "simple PMI" (PMI-1) wire protocol,
//! because it is the contract between a launcher and an unmodified MPICH
//! program: a launcher that speaks it can run Debian's MPICH binaries without
//! hydra. Communication layers and transports will sit beside it.

pub mod comm;
pub mod mpiexec;
pub mod pmi;
