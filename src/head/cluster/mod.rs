//! The head node's state and every change to it.
//!
//! `Cluster` holds jobs, tasks, nodes, groups and cluster variables in memory
//! and in the [`Store`]. Each operation checks the caller and the states,
//! builds the changed records, commits them, and only then replaces them in
//! memory: a failed check or commit leaves both as they were. Operations that
//! need processes started or signalled return [`Effects`] for the server to
//! carry out after the change is durable.

use super::scheduler::{self, Decision, TaskDecision};
use super::store::{Changes, Store};
use crate::error::{Error, Result};
use crate::model::{
    Job, JobState, Millis, Node, NodeAlloc, NodeGroup, NodeState, Task, TaskState,
};
use crate::node::protocol::{AgentEvent, Launch, RunId};
use crate::wire::props::{self, TaskCounts};
use crate::wire::{JobSpec, RestProperty, TaskSpec, WireCore};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Who asks: from the Unix socket's peer credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub name: String,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.uid == 0
    }

    /// Root, or the user the head node runs as: on the embedded cluster its
    /// owner administers it.
    pub fn administers_this_head(&self) -> bool {
        self.is_admin() || self.uid == crate::node::sys::uid()
    }

    /// Whether the caller may read what a job of `owner_uid` printed (and
    /// its environment): its owner and administrators only.
    pub fn may_read_output_of(&self, owner_uid: u32) -> bool {
        self.uid == owner_uid || self.administers_this_head()
    }
}

/// Work for the server once a change is committed.
#[derive(Debug, Default)]
pub struct Effects {
    pub launches: Vec<Launch>,
    /// Runs to end: SIGTERM, then SIGKILL after the grace period.
    pub kills: Vec<(String, RunId)>,
    /// The queue or the nodes changed: run the scheduler.
    pub reschedule: bool,
}

impl Effects {
    pub fn merge(&mut self, other: Effects) {
        self.launches.extend(other.launches);
        self.kills.extend(other.kills);
        self.reschedule |= other.reschedule;
    }
}

pub struct Cluster {
    store: Store,
    jobs: BTreeMap<u64, Job>,
    /// Tasks by job, in task-id order (id = index + 1).
    tasks: BTreeMap<u64, Vec<Task>>,
    nodes: Vec<Node>,
    groups: Vec<NodeGroup>,
    /// Job templates besides Default (or Default as an administrator changed it).
    templates: Vec<crate::model::JobTemplate>,
    env: BTreeMap<String, String>,
    next_job_id: u64,
    /// Jobs the scheduler looks at (submitted and not ended), so its passes
    /// do not walk the whole history.
    active: std::collections::BTreeSet<u64>,
    /// Submissions by (owner uid, request id): see [`crate::wire::JobSpec::request_id`].
    requests: std::collections::HashMap<(u32, String), u64>,
    /// Where task runs keep their output.
    pub run_root: PathBuf,
    pub cluster_name: String,
}

impl Cluster {
    /// Loads the state from `store`.
    pub fn load(store: Store, run_root: PathBuf, cluster_name: String) -> Result<Cluster> {
        let mut c = Cluster {
            store,
            active: Default::default(),
            requests: Default::default(),
            jobs: BTreeMap::new(),
            tasks: BTreeMap::new(),
            nodes: Vec::new(),
            groups: Vec::new(),
            templates: Vec::new(),
            env: BTreeMap::new(),
            next_job_id: 1,
            run_root,
            cluster_name,
        };
        c.reload()?;
        Ok(c)
    }

    /// Runs `f` with all its commits in one transaction. If anything fails,
    /// the transaction is dropped and the memory is read back from the
    /// store, so the two never disagree.
    pub fn batch<T>(&mut self, f: impl FnOnce(&mut Cluster) -> Result<T>) -> Result<T> {
        self.store.begin()?;
        let r = f(self);
        let r = match r {
            Ok(v) => self.store.end().map(|_| v).map_err(Error::from),
            Err(e) => {
                self.store.rollback();
                Err(e)
            }
        };
        if r.is_err() {
            self.reload()?;
        }
        r
    }

    /// Reads the whole state back from the store.
    fn reload(&mut self) -> Result<()> {
        let snap = self.store.load()?;
        let mut tasks: BTreeMap<u64, Vec<Task>> = BTreeMap::new();
        for t in snap.tasks {
            tasks.entry(t.job_id).or_default().push(t);
        }
        self.active = snap.jobs.iter().filter(|j| is_active(j)).map(|j| j.id).collect();
        self.requests = snap.jobs.iter().filter_map(|j| Some(((j.owner_uid, j.request_id.clone()?), j.id))).collect();
        self.jobs = snap.jobs.into_iter().map(|j| (j.id, j)).collect();
        self.tasks = tasks;
        self.nodes = snap.nodes;
        self.groups = snap.groups;
        self.templates = snap.templates;
        self.env = snap.env.into_iter().collect();
        self.next_job_id = snap.next_job_id;
        Ok(())
    }

    pub fn job(&self, id: u64) -> Result<&Job> {
        self.jobs.get(&id).ok_or(Error::JobNotFound(id))
    }

    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values()
    }

    pub fn job_count(&self) -> u64 {
        self.jobs.len() as u64
    }

    pub fn tasks_of(&self, job: u64) -> Result<&[Task]> {
        self.job(job)?;
        Ok(self.tasks.get(&job).map(|v| v.as_slice()).unwrap_or(&[]))
    }

    pub fn task(&self, job: u64, task: u32) -> Result<&Task> {
        self.tasks_of(job)?
            .get((task as usize).wrapping_sub(1))
            .ok_or(Error::TaskNotFound(job, task))
    }

    pub fn counts(&self, job: u64) -> TaskCounts {
        let mut c = TaskCounts::default();
        for t in self.tasks.get(&job).map(|v| v.as_slice()).unwrap_or(&[]) {
            c.total += 1;
            match t.state {
                TaskState::Configuring => c.configuring += 1,
                TaskState::Submitted | TaskState::Validating | TaskState::Queued => c.queued += 1,
                TaskState::Finished => c.finished += 1,
                TaskState::Failed => c.failed += 1,
                TaskState::Canceled => c.canceled += 1,
                _ => c.running += 1,
            }
        }
        c
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::NodeNotFound(name.to_string()))
    }

    /// The built-in groups, then the others by name.
    pub fn groups(&self) -> Vec<NodeGroup> {
        let mut g: Vec<NodeGroup> = crate::model::BUILTIN_GROUPS
            .iter()
            .map(|(name, description)| NodeGroup { name: name.to_string(), description: description.to_string() })
            .collect();
        g.extend(self.groups.iter().filter(|x| !x.managed()).cloned());
        g
    }

    pub fn group_members(&self, name: &str) -> Result<Vec<String>> {
        let g = self.find_group(name)?;
        Ok(self.nodes.iter().filter(|n| n.in_group(&g)).map(|n| n.name.clone()).collect())
    }

    fn find_group(&self, name: &str) -> Result<String> {
        self.groups()
            .into_iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
            .map(|g| g.name)
            .ok_or_else(|| Error::GroupNotFound(name.to_string()))
    }

    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// Cores in use per node, by running jobs.
    pub fn cores_in_use(&self, node: &str) -> u32 {
        self.running_tasks()
            .flat_map(|t| t.allocation.iter())
            .filter(|a| a.node == node)
            .map(|a| a.cores.len() as u32)
            .sum()
    }

    fn running_tasks(&self) -> impl Iterator<Item = &Task> {
        self.active.iter().filter_map(|id| self.tasks.get(id)).flatten().filter(|t| t.state.is_started())
    }

    fn active_jobs(&self) -> impl Iterator<Item = &Job> {
        self.active.iter().filter_map(|id| self.jobs.get(id))
    }

    /// Every core with what it is doing, for `node listcores`.
    pub fn cores(&self) -> Vec<WireCore> {
        let mut out = Vec::new();
        for n in &self.nodes {
            for c in 0..n.cores {
                let job = self
                    .jobs
                    .values()
                    .filter(|j| j.holds_resources())
                    .find(|j| j.allocation.iter().any(|a| a.node == n.name && a.cores.contains(&c)));
                let task = job.and_then(|j| {
                    self.tasks.get(&j.id).and_then(|ts| {
                        ts.iter()
                            .filter(|t| t.state.is_started())
                            .find(|t| t.allocation.iter().any(|a| a.node == n.name && a.cores.contains(&c)))
                    })
                });
                let state = match (n.state, job, task) {
                    (NodeState::Offline, _, _) => "Offline",
                    (_, _, Some(_)) => "TaskRunning",
                    (_, Some(_), None) => "JobScheduled",
                    (NodeState::Draining, None, _) => "Offline",
                    (_, None, _) => "Idle",
                };
                out.push(WireCore {
                    node_name: n.name.clone(),
                    core_id: c,
                    state: state.into(),
                    job_id: job.map(|j| j.id),
                    task_id: task.map(|t| t.display_id()),
                });
            }
        }
        out
    }

    fn owned_job(&self, caller: &Caller, id: u64, what: &str) -> Result<&Job> {
        let j = self.job(id)?;
        if j.owner_uid != caller.uid && !caller.is_admin() {
            return Err(Error::AccessDenied(format!(
                "cannot {what} job {id}: it belongs to {}, and only its owner or root may change it",
                j.owner
            )));
        }
        Ok(j)
    }

    fn require_admin(caller: &Caller, what: &str) -> Result<()> {
        if caller.is_admin() {
            return Ok(());
        }
        Err(Error::AccessDenied(format!("cannot {what}: only a cluster administrator may (root, or the user the head node runs as)")))
    }

    /// Checks a job's settings against the cluster: its groups and nodes
    /// exist, and some set of nodes could ever run it.
    fn validate_job(&self, job: &Job, tasks: &[&Task]) -> Result<()> {
        if let Some(r) = job.count {
            if let Some(max) = r.max {
                if max < r.min {
                    return Err(Error::InvalidArgument(format!(
                        "job {}: the maximum {max} is below the minimum {}",
                        job.id, r.min
                    )));
                }
            }
        }
        for g in &job.node_groups {
            self.find_group(g).map_err(|_| {
                Error::InvalidArgument(format!(
                    "node group '{g}' does not exist; the groups are: {}",
                    self.groups().iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })?;
        }
        for n in &job.requested_nodes {
            self.node(n)
                .map_err(|_| Error::InvalidArgument(format!("requested node '{n}' does not exist; see node list")))?;
        }
        let mut probe = job.clone();
        let (unit, count) = scheduler::effective_request(job, tasks);
        probe.unit = unit;
        probe.count = Some(count);
        probe.submit_time = Some(0);
        self.check_template(&probe)?;
        if let Decision::Never(why) = &scheduler::schedule_jobs(&self.nodes, &BTreeMap::new(), &[&probe])[0].1 {
            return Err(Error::InvalidArgument(format!("the job cannot run on this cluster: {why}")));
        }
        Ok(())
    }

    pub fn validate_task(job: &Job, t: &Task) -> Result<()> {
        if t.command_line.trim().is_empty() {
            return Err(Error::InvalidArgument(format!("task {}: no command line; give the command to run", t.display_id())));
        }
        if let (Some(jc), Some(tc)) = (job.count, t.count) {
            if job.unit == t.unit && jc.max.is_some_and(|m| tc.min > m) {
                return Err(Error::InvalidArgument(format!(
                    "task {} asks for at least {} {} but job {} allows at most {}",
                    t.display_id(),
                    tc.min,
                    t.unit.plural().to_lowercase(),
                    job.id,
                    jc.max.unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    fn commit(&mut self, jobs: Vec<Job>, tasks: Vec<Task>) -> Result<()> {
        self.store.commit(&Changes { jobs: jobs.iter().collect(), tasks: tasks.iter().collect(), ..Default::default() })?;
        self.install(jobs, tasks);
        Ok(())
    }

    fn install(&mut self, jobs: Vec<Job>, tasks: Vec<Task>) {
        for j in jobs {
            if let Some(r) = &j.request_id {
                self.requests.insert((j.owner_uid, r.clone()), j.id);
            }
            if is_active(&j) {
                self.active.insert(j.id);
            } else {
                self.active.remove(&j.id);
            }
            self.jobs.insert(j.id, j);
        }
        for t in tasks {
            let list = self.tasks.entry(t.job_id).or_default();
            let i = t.id as usize - 1;
            if i < list.len() {
                list[i] = t;
            } else {
                list.push(t);
            }
        }
    }
}

/// The job is submitted and has not ended: the scheduler and the run-time
/// checks look at it.
fn is_active(j: &Job) -> bool {
    !matches!(j.state, JobState::Configuring) && !j.state.is_final()
}

/// Marks a task the user asked to finish while it ran.
pub const FINISH_MARK: &str = "\u{1}finish";
/// Starts the error of a task or job ended by its run time limit.
const RUNTIME_MARK: &str = "exceeded its run time";

fn run_of(t: &Task) -> RunId {
    RunId { job: t.job_id, task: t.id, attempt: t.attempt }
}

fn first_node(a: &[NodeAlloc]) -> String {
    a.first().map(|a| a.node.clone()).unwrap_or_default()
}

mod dispatch;
mod jobs;
mod nodes;
mod tasks;
mod templates;

#[cfg(test)]
mod tests;
