//! The node agent: what runs on each compute node. It starts task runs under
//! a supervisor (CPU affinity, `CCP_*` environment, full output kept), ends
//! them on cancel with nothing left behind, and reports how they ended. It
//! also serves the MPI launch service ([`launch`]) through which `mpiexec`
//! starts the ranks of a job on the job's nodes.

pub mod agent;
pub mod launch;
pub mod protocol;
pub mod supervisor;
pub mod sys;
