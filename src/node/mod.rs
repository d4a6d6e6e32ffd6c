//! The node agent: what runs on each compute node. It starts task runs under
//! a supervisor (CPU affinity, `CCP_*` environment, full output kept), ends
//! them on cancel with nothing left behind, and reports how they ended.

pub mod agent;
pub mod protocol;
pub mod supervisor;
pub mod sys;
