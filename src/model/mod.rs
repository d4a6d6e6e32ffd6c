//! The cluster's objects as pure data: jobs, tasks, nodes, node groups and
//! job templates, and
//! the value grammars they share. No I/O here; the head node stores these,
//! the scheduler reads them, and the wire module turns them into HPC Pack's
//! `{Name, Value}` properties.

pub mod ccp;
pub mod objects;
pub mod state;
pub mod template;
pub mod values;

pub use objects::*;
pub use state::{JobState, NodeHealth, NodeState, TaskState};
pub use template::{JobTemplate, TemplateItem};
pub use values::{ExitCodes, NodeGroupOp, Priority, Range, UnitType};

/// Milliseconds since the Unix epoch; every time in the model is one of these.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
