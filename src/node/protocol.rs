//! What the head node and a node agent say to each other: start this task,
//! signal that one, and what became of them. Serde types, so the same
//! messages serve the in-process agent of the embedded cluster and, later,
//! agents on other hosts.

use serde::{Deserialize, Serialize};

/// Identifies one run of a task: the attempt grows with every dispatch, so a
/// report about an earlier run is recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunId {
    pub job: u64,
    pub task: u32,
    pub attempt: u32,
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{} (attempt {})", self.job, self.task, self.attempt)
    }
}

/// Start a task's process on a node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Launch {
    pub run: RunId,
    pub node: String,
    /// Run through `/bin/sh -c`, as a command line typed at a shell.
    pub command_line: String,
    /// Empty: the owner's home directory.
    pub work_dir: String,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    /// The whole environment of the task (the agent adds nothing).
    pub env: Vec<(String, String)>,
    /// Host logical CPUs the task is bound to.
    pub cpus: Vec<u32>,
    pub owner_uid: u32,
    /// `CCP_NODES`-style node list for the MPI host file.
    pub nodes: Vec<(String, u32)>,
}

/// What an agent reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AgentEvent {
    /// The task's process runs.
    Started { run: RunId },
    /// The task's process ended (or could not start: `error` says why).
    Exited { run: RunId, exit_code: i64, canceled: bool, error: String },
    /// After a restart: this run never started, so it may be dispatched again.
    NeverStarted { run: RunId },
}
