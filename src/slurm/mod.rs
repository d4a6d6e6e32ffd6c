//! What Slurm's formats and states mean in HPC Pack's terms, for the Slurm
//! backend of the CLIs and for `mpiexec` inside a Slurm allocation:
//! [`hostlist`] reads Slurm's compact node lists and task counts, [`json`]
//! its JSON node lists, [`map`]
//! maps states and turns a job's request into `sbatch` options.

pub mod hostlist;
pub mod json;
pub mod map;
pub mod record;
pub mod runner;
pub mod text;
