//! Job, task, node and node-group records.

use super::state::{JobState, NodeHealth, NodeState, TaskState};
use super::values::{ExitCodes, NodeGroupOp, Priority, Range, UnitType};
use super::Millis;
use serde::{Deserialize, Serialize};

/// The group every compute node belongs to.
pub const COMPUTE_NODES: &str = "ComputeNodes";
/// The group of every Linux node: here, every node.
pub const LINUX_NODES: &str = "LinuxNodes";
/// The group of head nodes: the embedded cluster's nodes are compute nodes,
/// so it has none.
pub const HEAD_NODES: &str = "HeadNodes";

/// HPC Pack's built-in ("managed") node groups, with their descriptions:
/// they always exist, and their members follow from what a node is, so they
/// can be neither deleted nor changed.
pub const BUILTIN_GROUPS: [(&str, &str); 3] = [
    (HEAD_NODES, "The head nodes in the cluster"),
    (COMPUTE_NODES, "The compute nodes in the cluster"),
    (LINUX_NODES, "The Linux nodes in the cluster"),
];

/// The built-in group `name` names (any case), as it is spelled.
pub fn builtin_group(name: &str) -> Option<&'static str> {
    BUILTIN_GROUPS.iter().map(|(g, _)| *g).find(|g| g.eq_ignore_ascii_case(name))
}
/// The only job template this head node has.
pub const DEFAULT_TEMPLATE: &str = "Default";

/// Cores given to a job or task on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAlloc {
    pub node: String,
    /// Core indexes within the node (0-based).
    pub cores: Vec<u32>,
}

/// A job: a resource request and the tasks that run in it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub name: String,
    pub owner: String,
    pub owner_uid: u32,
    pub state: JobState,
    pub previous_state: JobState,
    pub priority: Priority,
    pub project: String,
    pub template: String,
    pub unit: UnitType,
    /// `None`: computed from the tasks when the job is submitted.
    pub count: Option<Range>,
    pub node_groups: Vec<String>,
    pub node_group_op: NodeGroupOp,
    pub requested_nodes: Vec<String>,
    pub exclusive: bool,
    pub cores_per_node: Option<Range>,
    /// Megabytes.
    pub memory_per_node: Option<Range>,
    /// Seconds; `None` is Infinite.
    pub runtime: Option<u64>,
    pub fail_on_task_failure: bool,
    /// Default for tasks that set none.
    pub valid_exit_codes: Option<ExitCodes>,
    /// `/jobenv`: set in every task.
    pub env: Vec<(String, String)>,
    pub custom_properties: Vec<(String, String)>,
    pub hold_until: Option<Millis>,
    pub create_time: Millis,
    pub submit_time: Option<Millis>,
    pub start_time: Option<Millis>,
    pub end_time: Option<Millis>,
    pub change_time: Millis,
    pub error_message: String,
    pub pending_reason: String,
    pub progress: u32,
    pub progress_message: String,
    /// Resources the job holds while it runs.
    pub allocation: Vec<NodeAlloc>,
    pub requeue_count: u32,
    pub next_task_id: u32,
    /// While Canceling or Finishing: the final state once its tasks ended.
    #[serde(default)]
    pub target_state: Option<JobState>,
    /// The id the submitting client gave its request: the same request
    /// sent again (after the head node died before answering) finds this
    /// job instead of making a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The submitter's `HOME`, `PATH`, … at submission: the base of every
    /// task's environment (see [`crate::env::is_submit_variable`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub submit_environment: Vec<(String, String)>,
}

impl Job {
    /// A new Configuring job owned by `owner`.
    pub fn new(id: u64, owner: &str, owner_uid: u32, now: Millis) -> Job {
        Job {
            id,
            name: String::new(),
            owner: owner.to_string(),
            owner_uid,
            state: JobState::Configuring,
            previous_state: JobState::Configuring,
            priority: Priority::NORMAL,
            project: String::new(),
            template: DEFAULT_TEMPLATE.into(),
            unit: UnitType::Core,
            count: None,
            node_groups: Vec::new(),
            node_group_op: NodeGroupOp::Intersect,
            requested_nodes: Vec::new(),
            exclusive: false,
            cores_per_node: None,
            memory_per_node: None,
            runtime: None,
            fail_on_task_failure: false,
            valid_exit_codes: None,
            env: Vec::new(),
            custom_properties: Vec::new(),
            hold_until: None,
            create_time: now,
            submit_time: None,
            start_time: None,
            end_time: None,
            change_time: now,
            error_message: String::new(),
            pending_reason: String::new(),
            progress: 0,
            progress_message: String::new(),
            allocation: Vec::new(),
            requeue_count: 0,
            next_task_id: 1,
            target_state: None,
            request_id: None,
            submit_environment: Vec::new(),
        }
    }

    /// Moves to `state`, remembering the previous one.
    pub fn set_state(&mut self, state: JobState, now: Millis) {
        if self.state != state {
            self.previous_state = self.state;
            self.state = state;
        }
        self.change_time = now;
    }

    /// The request as HPC Pack lists it, e.g. `4-4 Nodes` (`*` when open).
    pub fn resource_request(&self) -> String {
        match self.count {
            Some(r) => format!(
                "{}-{} {}",
                r.min,
                r.max.map(|m| m.to_string()).unwrap_or_else(|| "*".into()),
                self.unit.plural()
            ),
            None => format!("* {}", self.unit.plural()),
        }
    }

    /// The job holds its allocation: it runs, or its tasks are ending.
    pub fn holds_resources(&self) -> bool {
        matches!(self.state, JobState::Running | JobState::Canceling | JobState::Finishing)
    }

    /// `NODE1,NODE2` of the job's allocation.
    pub fn allocated_node_names(&self) -> String {
        alloc_names(&self.allocation)
    }
}

/// Comma-separated node names of an allocation.
pub fn alloc_names(a: &[NodeAlloc]) -> String {
    a.iter().map(|n| n.node.as_str()).collect::<Vec<_>>().join(",")
}

/// The kinds of task HPC Pack has; this head node runs Basic tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskType {
    #[default]
    Basic,
}

/// A task: one command line run in its job's allocation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Task {
    pub job_id: u64,
    pub id: u32,
    pub name: String,
    pub state: TaskState,
    pub previous_state: TaskState,
    pub command_line: String,
    pub work_dir: String,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub env: Vec<(String, String)>,
    pub unit: UnitType,
    /// `None`: one unit.
    pub count: Option<Range>,
    pub required_nodes: Vec<String>,
    pub depends_on: Vec<String>,
    pub rerunnable: bool,
    pub exclusive: bool,
    pub runtime: Option<u64>,
    pub valid_exit_codes: Option<ExitCodes>,
    pub task_type: TaskType,
    pub exit_code: Option<i64>,
    pub error_message: String,
    pub allocation: Vec<NodeAlloc>,
    pub create_time: Millis,
    pub submit_time: Option<Millis>,
    pub start_time: Option<Millis>,
    pub end_time: Option<Millis>,
    pub change_time: Millis,
    pub requeue_count: u32,
    /// Increases each time the task is dispatched; names its run directory.
    pub attempt: u32,
}

impl Task {
    pub fn new(job_id: u64, id: u32, now: Millis) -> Task {
        Task {
            job_id,
            id,
            name: String::new(),
            state: TaskState::Configuring,
            previous_state: TaskState::Configuring,
            command_line: String::new(),
            work_dir: String::new(),
            stdin: String::new(),
            stdout: String::new(),
            stderr: String::new(),
            env: Vec::new(),
            unit: UnitType::Core,
            count: None,
            required_nodes: Vec::new(),
            depends_on: Vec::new(),
            rerunnable: true,
            exclusive: false,
            runtime: None,
            valid_exit_codes: None,
            task_type: TaskType::Basic,
            exit_code: None,
            error_message: String::new(),
            allocation: Vec::new(),
            create_time: now,
            submit_time: None,
            start_time: None,
            end_time: None,
            change_time: now,
            requeue_count: 0,
            attempt: 0,
        }
    }

    pub fn set_state(&mut self, state: TaskState, now: Millis) {
        if self.state != state {
            self.previous_state = self.state;
            self.state = state;
        }
        self.change_time = now;
    }

    /// `job.task`, the id users type.
    pub fn display_id(&self) -> String {
        format!("{}.{}", self.job_id, self.id)
    }
}

/// A compute node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub state: NodeState,
    pub health: NodeHealth,
    pub reachable: bool,
    pub cores: u32,
    pub sockets: u32,
    pub memory_mb: u64,
    pub groups: Vec<String>,
    /// Logical CPU of the host that each core index runs on.
    pub cpus: Vec<u32>,
    /// Host that runs this node's tasks (virtual nodes share one).
    pub host: String,
    pub online_time: Option<Millis>,
    pub offline_time: Option<Millis>,
}

impl Node {
    pub fn in_group(&self, g: &str) -> bool {
        self.groups.iter().any(|x| x.eq_ignore_ascii_case(g))
    }

    pub fn cores_per_socket(&self) -> u32 {
        (self.cores / self.sockets.max(1)).max(1)
    }
}

/// A named set of nodes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeGroup {
    pub name: String,
    pub description: String,
}

impl NodeGroup {
    /// Built in (HPC Pack's `Managed`): see [`BUILTIN_GROUPS`].
    pub fn managed(&self) -> bool {
        builtin_group(&self.name).is_some()
    }
}
