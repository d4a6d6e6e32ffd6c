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
    COMPUTE_NODES, Job, JobState, Millis, Node, NodeAlloc, NodeGroup, NodeState, Task, TaskState,
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
    env: BTreeMap<String, String>,
    next_job_id: u64,
    /// Jobs the scheduler looks at (submitted and not ended), so its passes
    /// do not walk the whole history.
    active: std::collections::BTreeSet<u64>,
    /// Where task runs keep their output.
    pub run_root: PathBuf,
    pub cluster_name: String,
}

impl Cluster {
    /// Loads the state from `store`.
    pub fn load(store: Store, run_root: PathBuf, cluster_name: String) -> Result<Cluster> {
        let snap = store.load()?;
        let mut tasks: BTreeMap<u64, Vec<Task>> = BTreeMap::new();
        for t in snap.tasks {
            tasks.entry(t.job_id).or_default().push(t);
        }
        let active = snap.jobs.iter().filter(|j| is_active(j)).map(|j| j.id).collect();
        Ok(Cluster {
            store,
            active,
            jobs: snap.jobs.into_iter().map(|j| (j.id, j)).collect(),
            tasks,
            nodes: snap.nodes,
            groups: snap.groups,
            env: snap.env.into_iter().collect(),
            next_job_id: snap.next_job_id,
            run_root,
            cluster_name,
        })
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
        self.jobs = snap.jobs.into_iter().map(|j| (j.id, j)).collect();
        self.tasks = tasks;
        self.nodes = snap.nodes;
        self.groups = snap.groups;
        self.env = snap.env.into_iter().collect();
        self.next_job_id = snap.next_job_id;
        Ok(())
    }

    // ----- reading -----

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

    pub fn groups(&self) -> Vec<NodeGroup> {
        let mut g = self.groups.clone();
        if !g.iter().any(|g| g.name == COMPUTE_NODES) {
            g.insert(0, NodeGroup { name: COMPUTE_NODES.into(), description: "All compute nodes".into() });
        }
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

    // ----- checks -----

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
        if let Decision::Never(why) = &scheduler::schedule_jobs(&self.nodes, &BTreeMap::new(), &[&probe])[0].1 {
            return Err(Error::InvalidArgument(format!("the job cannot run on this cluster: {why}")));
        }
        Ok(())
    }

    fn validate_task(job: &Job, t: &Task) -> Result<()> {
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

    // ----- committing -----

    fn commit(&mut self, jobs: Vec<Job>, tasks: Vec<Task>) -> Result<()> {
        self.store.commit(&Changes { jobs: jobs.iter().collect(), tasks: tasks.iter().collect(), ..Default::default() })?;
        self.install(jobs, tasks);
        Ok(())
    }

    fn install(&mut self, jobs: Vec<Job>, tasks: Vec<Task>) {
        for j in jobs {
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

    // ----- jobs -----

    /// `POST /jobs`: a new Configuring job.
    pub fn create_job(&mut self, caller: &Caller, props: &[RestProperty], now: Millis) -> Result<u64> {
        let id = self.next_job_id;
        let job = self.build_job(caller, id, props, now)?;
        self.validate_job(&job, &[])?;
        self.store.commit(&Changes { jobs: vec![&job], next_job_id: Some(id + 1), ..Default::default() })?;
        self.next_job_id = id + 1;
        self.jobs.insert(id, job);
        Ok(id)
    }

    fn build_job(&self, caller: &Caller, id: u64, props: &[RestProperty], now: Millis) -> Result<Job> {
        let mut job = Job::new(id, &caller.name, caller.uid, now);
        props::apply(props::job_props(), &mut job, props).map_err(Error::InvalidArgument)?;
        Ok(job)
    }

    fn build_task(job: &Job, id: u32, spec: &TaskSpec, now: Millis) -> Result<Task> {
        let mut t = Task::new(job.id, id, now);
        props::apply(props::task_props(), &mut t, &spec.properties).map_err(Error::InvalidArgument)?;
        t.env = props::props_env(&spec.env).map_err(Error::InvalidArgument)?;
        Self::validate_task(job, &t)?;
        Ok(t)
    }

    /// The extension `POST /hpcpack/v1/jobs`: create, add tasks and submit in
    /// one durable step, so a bad task leaves no half-made job behind.
    pub fn submit_new(&mut self, caller: &Caller, spec: &JobSpec, now: Millis) -> Result<(u64, Effects)> {
        let id = self.next_job_id;
        let mut job = self.build_job(caller, id, &spec.properties, now)?;
        job.env = props::props_env(&spec.env).map_err(Error::InvalidArgument)?;
        job.custom_properties = spec.custom_properties.iter().map(|p| (p.name.clone(), p.value.clone())).collect();
        if spec.tasks.is_empty() {
            return Err(Error::InvalidArgument("a job needs at least one task".into()));
        }
        let mut tasks = Vec::with_capacity(spec.tasks.len());
        for (i, ts) in spec.tasks.iter().enumerate() {
            tasks.push(Self::build_task(&job, i as u32 + 1, ts, now)?);
        }
        job.next_task_id = tasks.len() as u32 + 1;
        let refs: Vec<&Task> = tasks.iter().collect();
        self.validate_job(&job, &refs)?;
        Self::mark_submitted(&mut job, &mut tasks, now);
        self.store.commit(&Changes {
            jobs: vec![&job],
            tasks: tasks.iter().collect(),
            next_job_id: Some(id + 1),
            ..Default::default()
        })?;
        self.next_job_id = id + 1;
        self.install(vec![job], tasks);
        Ok((id, Effects { reschedule: true, ..Default::default() }))
    }

    fn mark_submitted(job: &mut Job, tasks: &mut [Task], now: Millis) {
        // HPC Pack computes an automatic minimum and maximum at submission;
        // from then on the job shows and keeps that request.
        if job.count.is_none() {
            let refs: Vec<&Task> = tasks.iter().collect();
            let (unit, count) = scheduler::effective_request(job, &refs);
            job.unit = unit;
            job.count = Some(count);
        }
        job.set_state(JobState::Queued, now);
        job.submit_time = Some(now);
        job.pending_reason.clear();
        job.error_message.clear();
        for t in tasks.iter_mut().filter(|t| t.state == TaskState::Configuring) {
            t.set_state(TaskState::Queued, now);
            t.submit_time = Some(now);
        }
    }

    /// `POST /jobs/jobFile`: a Configuring job with the file's tasks.
    pub fn create_from_spec(&mut self, caller: &Caller, spec: &JobSpec, now: Millis) -> Result<u64> {
        let id = self.next_job_id;
        let mut job = self.build_job(caller, id, &spec.properties, now)?;
        job.env = props::props_env(&spec.env).map_err(Error::InvalidArgument)?;
        let mut tasks = Vec::with_capacity(spec.tasks.len());
        for (i, ts) in spec.tasks.iter().enumerate() {
            tasks.push(Self::build_task(&job, i as u32 + 1, ts, now)?);
        }
        job.next_task_id = tasks.len() as u32 + 1;
        let refs: Vec<&Task> = tasks.iter().collect();
        self.validate_job(&job, &refs)?;
        self.store.commit(&Changes {
            jobs: vec![&job],
            tasks: tasks.iter().collect(),
            next_job_id: Some(id + 1),
            ..Default::default()
        })?;
        self.next_job_id = id + 1;
        self.install(vec![job], tasks);
        Ok(id)
    }

    /// `POST /jobs/{id}/customProperties`.
    pub fn set_custom_properties(&mut self, caller: &Caller, id: u64, vars: &[RestProperty], now: Millis) -> Result<()> {
        let mut j = self.owned_job(caller, id, "set custom properties of")?.clone();
        for p in vars {
            j.custom_properties.retain(|(k, _)| !k.eq_ignore_ascii_case(&p.name));
            if !p.value.is_empty() {
                j.custom_properties.push((p.name.clone(), p.value.clone()));
            }
        }
        j.change_time = now;
        self.commit(vec![j], vec![])
    }

    /// `POST /jobs/{id}/tasks`.
    pub fn add_task(&mut self, caller: &Caller, job_id: u64, spec: &TaskSpec, now: Millis) -> Result<u32> {
        let job = self.owned_job(caller, job_id, "add a task to")?;
        if job.state != JobState::Configuring {
            return Err(Error::InvalidState(format!(
                "cannot add a task to job {job_id}: it is {}; tasks can be added while a job is Configuring (see job new)",
                job.state
            )));
        }
        let mut job = job.clone();
        let id = job.next_task_id;
        let task = Self::build_task(&job, id, spec, now)?;
        job.next_task_id += 1;
        job.change_time = now;
        self.commit(vec![job], vec![task])?;
        Ok(id)
    }

    /// `POST /jobs/{id}/submit`.
    pub fn submit_job(&mut self, caller: &Caller, id: u64, props_in: &[RestProperty], now: Millis) -> Result<Effects> {
        let job = self.owned_job(caller, id, "submit")?;
        if job.state != JobState::Configuring {
            return Err(Error::InvalidState(format!(
                "cannot submit job {id}: it is {}, and only a Configuring job can be submitted",
                job.state
            )));
        }
        let mut job = job.clone();
        props::apply(props::job_props(), &mut job, props_in).map_err(Error::InvalidArgument)?;
        let mut tasks = self.tasks.get(&id).cloned().unwrap_or_default();
        if tasks.is_empty() {
            return Err(Error::InvalidState(format!("cannot submit job {id}: it has no tasks; add one with job add {id} <command>")));
        }
        for t in &tasks {
            Self::validate_task(&job, t)?;
        }
        let refs: Vec<&Task> = tasks.iter().collect();
        self.validate_job(&job, &refs)?;
        Self::mark_submitted(&mut job, &mut tasks, now);
        self.commit(vec![job], tasks)?;
        Ok(Effects { reschedule: true, ..Default::default() })
    }

    /// `PUT /jobs/{id}`: `job modify`.
    pub fn modify_job(&mut self, caller: &Caller, id: u64, props_in: &[RestProperty], now: Millis) -> Result<Effects> {
        let job = self.owned_job(caller, id, "modify")?;
        let resources_fixed = !matches!(job.state, JobState::Configuring | JobState::Queued | JobState::Submitted);
        if job.state.is_final() {
            return Err(Error::InvalidState(format!(
                "cannot modify job {id}: it is {}; requeue it first (job requeue {id})",
                job.state
            )));
        }
        let mut new = job.clone();
        props::apply(props::job_props(), &mut new, props_in).map_err(Error::InvalidArgument)?;
        if resources_fixed {
            let changed = new.count != job.count
                || new.unit != job.unit
                || new.node_groups != job.node_groups
                || new.requested_nodes != job.requested_nodes
                || new.exclusive != job.exclusive;
            if changed {
                return Err(Error::InvalidState(format!(
                    "cannot change the resources of job {id}: it is {}; resources can change while a job is Configuring or Queued",
                    job.state
                )));
            }
        }
        let tasks = self.tasks.get(&id).cloned().unwrap_or_default();
        let refs: Vec<&Task> = tasks.iter().collect();
        self.validate_job(&new, &refs)?;
        new.change_time = now;
        self.commit(vec![new], vec![])?;
        Ok(Effects { reschedule: true, ..Default::default() })
    }

    /// `POST /jobs/{id}/envVariables` (job) and `.../tasks/{t}/envVariables`.
    pub fn set_env(&mut self, caller: &Caller, job_id: u64, task: Option<u32>, vars: &[RestProperty], now: Millis) -> Result<()> {
        self.owned_job(caller, job_id, "set the environment of")?;
        let vars = props::props_env(vars).map_err(Error::InvalidArgument)?;
        let merge = |env: &mut Vec<(String, String)>| {
            for (k, v) in &vars {
                env.retain(|(n, _)| n != k);
                if !v.is_empty() {
                    env.push((k.clone(), v.clone()));
                }
            }
        };
        match task {
            None => {
                let mut j = self.job(job_id)?.clone();
                merge(&mut j.env);
                j.change_time = now;
                self.commit(vec![j], vec![])
            }
            Some(t) => {
                let mut tk = self.task(job_id, t)?.clone();
                merge(&mut tk.env);
                tk.change_time = now;
                self.commit(vec![], vec![tk])
            }
        }
    }

    /// `PUT /jobs/{id}/tasks/{t}`.
    pub fn modify_task(&mut self, caller: &Caller, job_id: u64, task: u32, props_in: &[RestProperty], now: Millis) -> Result<()> {
        let job = self.owned_job(caller, job_id, "modify a task of")?.clone();
        let t = self.task(job_id, task)?;
        if !matches!(t.state, TaskState::Configuring | TaskState::Queued) {
            return Err(Error::InvalidState(format!(
                "cannot modify task {}: it is {}; tasks can change while Configuring or Queued",
                t.display_id(),
                t.state
            )));
        }
        let mut t = t.clone();
        props::apply(props::task_props(), &mut t, props_in).map_err(Error::InvalidArgument)?;
        Self::validate_task(&job, &t)?;
        t.change_time = now;
        self.commit(vec![], vec![t])
    }

    /// `POST /jobs/{id}/cancel`. Queued tasks end at once; running ones are
    /// signalled and the job becomes Canceled when they have ended.
    pub fn cancel_job(&mut self, caller: &Caller, id: u64, message: &str, now: Millis) -> Result<Effects> {
        let job = self.owned_job(caller, id, "cancel")?;
        if job.state.is_final() || job.state == JobState::Canceling {
            return Err(Error::InvalidState(format!(
                "cannot cancel job {id}: it is already {}",
                job.state
            )));
        }
        let msg = if message.is_empty() { format!("canceled by {}", caller.name) } else { message.to_string() };
        self.end_job(id, JobState::Canceled, &msg, now)
    }

    /// `POST /jobs/{id}/finish`: the job ends as Finished; its running tasks
    /// are stopped.
    pub fn finish_job(&mut self, caller: &Caller, id: u64, message: &str, now: Millis) -> Result<Effects> {
        let job = self.owned_job(caller, id, "finish")?;
        if !matches!(job.state, JobState::Running | JobState::Queued) {
            return Err(Error::InvalidState(format!(
                "cannot finish job {id}: it is {}; only a Queued or Running job can be finished",
                job.state
            )));
        }
        self.end_job(id, JobState::Finished, message, now)
    }

    /// Ends a job with `target`: queued tasks are canceled, running tasks
    /// signalled; the job reaches `target` once no task runs.
    fn end_job(&mut self, id: u64, target: JobState, message: &str, now: Millis) -> Result<Effects> {
        let mut job = self.job(id)?.clone();
        let mut tasks = self.tasks.get(&id).cloned().unwrap_or_default();
        let mut effects = Effects { reschedule: true, ..Default::default() };
        for t in tasks.iter_mut() {
            if t.state.is_started() {
                if t.state != TaskState::Canceling {
                    t.set_state(TaskState::Canceling, now);
                }
                if target != JobState::Finished && t.error_message.is_empty() {
                    t.error_message = message.to_string();
                }
                effects.kills.push((first_node(&t.allocation), run_of(t)));
            } else if !t.state.is_final() {
                t.set_state(TaskState::Canceled, now);
                t.end_time = Some(now);
                if target != JobState::Finished {
                    t.error_message = message.to_string();
                }
            }
        }
        if target != JobState::Finished || !message.is_empty() {
            job.error_message = message.to_string();
        }
        if effects.kills.is_empty() {
            Self::close_job(&mut job, target, now);
        } else {
            job.set_state(if target == JobState::Canceled { JobState::Canceling } else { JobState::Finishing }, now);
            job.target_state = Some(target);
        }
        self.commit(vec![job], tasks)?;
        Ok(effects)
    }

    fn close_job(job: &mut Job, state: JobState, now: Millis) {
        job.set_state(state, now);
        job.target_state = None;
        job.end_time = Some(now);
        // The allocation stays as a record of where the job ran; only jobs
        // that hold resources count for scheduling.
        job.pending_reason.clear();
    }

    /// `POST /jobs/{id}/requeue`: a Running, Failed or Canceled job goes back
    /// to the queue; its unfinished tasks run again.
    pub fn requeue_job(&mut self, caller: &Caller, id: u64, now: Millis) -> Result<Effects> {
        let job = self.owned_job(caller, id, "requeue")?;
        if !matches!(job.state, JobState::Running | JobState::Failed | JobState::Canceled) {
            return Err(Error::InvalidState(format!(
                "cannot requeue job {id}: it is {}; only a Running, Failed or Canceled job can be requeued",
                job.state
            )));
        }
        let mut job = job.clone();
        let mut tasks = self.tasks.get(&id).cloned().unwrap_or_default();
        let mut effects = Effects { reschedule: true, ..Default::default() };
        for t in tasks.iter_mut().filter(|t| t.state != TaskState::Finished) {
            if t.state.is_started() {
                effects.kills.push((first_node(&t.allocation), run_of(t)));
            }
            Self::reset_task(t, now);
        }
        job.set_state(JobState::Queued, now);
        job.requeue_count += 1;
        job.target_state = None;
        job.allocation.clear();
        job.error_message.clear();
        job.start_time = None;
        job.end_time = None;
        self.commit(vec![job], tasks)?;
        Ok(effects)
    }

    fn reset_task(t: &mut Task, now: Millis) {
        t.set_state(TaskState::Queued, now);
        t.requeue_count += 1;
        t.exit_code = None;
        t.error_message.clear();
        t.allocation.clear();
        t.start_time = None;
        t.end_time = None;
    }

    // ----- tasks -----

    /// `POST /jobs/{id}/tasks/{t}/cancel`.
    pub fn cancel_task(&mut self, caller: &Caller, job_id: u64, task: u32, message: &str, now: Millis) -> Result<Effects> {
        self.end_task(caller, job_id, task, TaskState::Canceled, message, "cancel", now)
    }

    /// `POST /jobs/{id}/tasks/{t}/finish`.
    pub fn finish_task(&mut self, caller: &Caller, job_id: u64, task: u32, message: &str, now: Millis) -> Result<Effects> {
        self.end_task(caller, job_id, task, TaskState::Finished, message, "finish", now)
    }

    #[allow(clippy::too_many_arguments)]
    fn end_task(
        &mut self,
        caller: &Caller,
        job_id: u64,
        task: u32,
        target: TaskState,
        message: &str,
        verb: &str,
        now: Millis,
    ) -> Result<Effects> {
        self.owned_job(caller, job_id, &format!("{verb} a task of"))?;
        let t = self.task(job_id, task)?;
        if t.state.is_final() || t.state == TaskState::Canceling {
            return Err(Error::InvalidState(format!(
                "cannot {verb} task {}: it is already {}",
                t.display_id(),
                t.state
            )));
        }
        let mut t = t.clone();
        let mut effects = Effects { reschedule: true, ..Default::default() };
        if t.state.is_started() {
            effects.kills.push((first_node(&t.allocation), run_of(&t)));
            t.set_state(TaskState::Canceling, now);
            if target == TaskState::Finished {
                // Remember the wish: the exit report then finishes the task.
                t.error_message = FINISH_MARK.into();
            } else if !message.is_empty() {
                t.error_message = message.into();
            }
            self.commit(vec![], vec![t])?;
        } else {
            t.set_state(target, now);
            t.end_time = Some(now);
            if !message.is_empty() {
                t.error_message = message.into();
            } else if target == TaskState::Canceled {
                t.error_message = format!("canceled by {}", caller.name);
            }
            self.commit(vec![], vec![t])?;
            effects.merge(self.settle_job(job_id, now)?);
        }
        Ok(effects)
    }

    /// `POST /jobs/{id}/tasks/{t}/requeue`.
    pub fn requeue_task(&mut self, caller: &Caller, job_id: u64, task: u32, now: Millis) -> Result<Effects> {
        let job = self.owned_job(caller, job_id, "requeue a task of")?.clone();
        let t = self.task(job_id, task)?;
        if !matches!(t.state, TaskState::Failed | TaskState::Canceled | TaskState::Running | TaskState::Finished) {
            return Err(Error::InvalidState(format!(
                "cannot requeue task {}: it is {}; a Running, Finished, Failed or Canceled task can be requeued",
                t.display_id(),
                t.state
            )));
        }
        let mut t = t.clone();
        let mut effects = Effects { reschedule: true, ..Default::default() };
        if t.state.is_started() {
            effects.kills.push((first_node(&t.allocation), run_of(&t)));
        }
        Self::reset_task(&mut t, now);
        let mut jobs = vec![];
        if job.state.is_final() {
            let mut j = job;
            j.set_state(JobState::Queued, now);
            j.requeue_count += 1;
            j.end_time = None;
            j.error_message.clear();
            jobs.push(j);
        }
        self.commit(jobs, vec![t])?;
        Ok(effects)
    }

    // ----- the scheduler and the agents -----

    /// One scheduling pass: start queued jobs that fit, start the tasks of
    /// running jobs, fail what can never run. Returns the launches.
    pub fn schedule(&mut self, now: Millis) -> Result<Effects> {
        let mut effects = Effects::default();
        let usage = scheduler::usage_of(self.active_jobs().filter(|j| j.holds_resources()));
        // Submitted jobs carry their resolved request (see mark_submitted).
        let queued: Vec<&Job> = self
            .active_jobs()
            .filter(|j| j.state == JobState::Queued && j.hold_until.is_none_or(|h| h <= now))
            .collect();
        let decisions = scheduler::schedule_jobs(&self.nodes, &usage, &queued);
        let mut changed_jobs = Vec::new();
        for (id, d) in decisions {
            let mut j = self.jobs[&id].clone();
            match d {
                Decision::Start(alloc) => {
                    j.allocation = alloc;
                    j.set_state(JobState::Running, now);
                    j.start_time = Some(now);
                    j.pending_reason.clear();
                    changed_jobs.push(j);
                }
                Decision::Wait(why) => {
                    if j.pending_reason != why {
                        j.pending_reason = why;
                        changed_jobs.push(j);
                    }
                }
                Decision::Never(why) => {
                    j.error_message = why;
                    Self::close_job(&mut j, JobState::Failed, now);
                    let mut tasks = self.tasks.get(&id).cloned().unwrap_or_default();
                    for t in tasks.iter_mut().filter(|t| !t.state.is_final()) {
                        t.set_state(TaskState::Failed, now);
                        t.error_message = "the job could not be scheduled".into();
                        t.end_time = Some(now);
                    }
                    self.commit(vec![], tasks)?;
                    changed_jobs.push(j);
                }
            }
        }
        self.commit(changed_jobs, vec![])?;
        let running: Vec<u64> = self.active_jobs().filter(|j| j.state == JobState::Running).map(|j| j.id).collect();
        for id in running {
            effects.merge(self.dispatch_tasks(id, now)?);
        }
        Ok(effects)
    }

    fn dispatch_tasks(&mut self, job_id: u64, now: Millis) -> Result<Effects> {
        let job = self.jobs[&job_id].clone();
        let tasks = self.tasks.get(&job_id).cloned().unwrap_or_default();
        let refs: Vec<&Task> = tasks.iter().collect();
        let decisions = scheduler::place_tasks(&job, &refs);
        if decisions.is_empty() {
            return Ok(Effects::default());
        }
        let mut changed = Vec::new();
        let mut launches = Vec::new();
        for (tid, d) in decisions {
            let mut t = tasks[tid as usize - 1].clone();
            match d {
                TaskDecision::Start(alloc) => {
                    t.allocation = alloc;
                    t.attempt += 1;
                    t.set_state(TaskState::Dispatching, now);
                    t.start_time = Some(now);
                    launches.push(self.launch_for(&job, &t)?);
                }
                TaskDecision::DependencyFailed(why) | TaskDecision::TooLarge(why) => {
                    t.set_state(TaskState::Failed, now);
                    t.error_message = why;
                    t.end_time = Some(now);
                }
            }
            changed.push(t);
        }
        self.commit(vec![], changed)?;
        let mut effects = self.settle_job(job_id, now)?;
        effects.launches.extend(launches);
        Ok(effects)
    }

    /// The process a task runs as: command, environment, CPUs.
    fn launch_for(&self, job: &Job, t: &Task) -> Result<Launch> {
        let first = t.allocation.first().ok_or_else(|| Error::InvalidState(format!("task {} has no cores", t.display_id())))?;
        let node = self.node(&first.node)?;
        let cpus: Vec<u32> = first.cores.iter().filter_map(|c| node.cpus.get(*c as usize).copied()).collect();
        let nodes: Vec<(String, u32)> = t.allocation.iter().map(|a| (a.node.clone(), a.cores.len() as u32)).collect();
        let nodes_str = format!(
            "{} {}",
            nodes.len(),
            nodes.iter().map(|(n, c)| format!("{n} {c}")).collect::<Vec<_>>().join(" ")
        );
        use crate::env as e;
        let mut env: Vec<(String, String)> = self.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut set = |k: &str, v: String| {
            env.retain(|(n, _)| n != k);
            env.push((k.to_string(), v));
        };
        set(e::CCP_CLUSTER_NAME, self.cluster_name.clone());
        for (k, v) in &job.env {
            set(k, v.clone());
        }
        for (k, v) in &t.env {
            set(k, v.clone());
        }
        set(e::CCP_JOBID, job.id.to_string());
        set(e::CCP_TASKID, t.id.to_string());
        set(e::CCP_TASKINSTANCEID, "0".into());
        set(e::CCP_TASKSYSTEMID, format!("{}.{}.0", job.id, t.id));
        set(e::CCP_NODES, nodes_str.clone());
        set(e::CCP_NODES_CORES, nodes_str);
        set(e::CCP_NUMCPUS, first.cores.len().to_string());
        set(e::CCP_COREIDS, cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" "));
        set(e::CCP_AFFINITY, affinity_mask(&cpus));
        set(e::CCP_EXCLUSIVE, crate::model::values::format_bool(job.exclusive || t.exclusive).into());
        set(e::CCP_JOBNAME, job.name.clone());
        set(e::CCP_TASKNAME, t.name.clone());
        set(e::CCP_JOBTEMPLATE, job.template.clone());
        set(e::CCP_RETRY_COUNT, t.requeue_count.to_string());
        set(e::CCP_RERUNNABLE, crate::model::values::format_bool(t.rerunnable).into());
        set(e::CCP_ISADMIN, crate::model::values::format_bool(job.owner_uid == 0).into());
        set(e::CCP_SCHEDULER, self.cluster_name.clone());
        if let Some(r) = t.runtime.or(job.runtime) {
            set(e::CCP_RUNTIME, r.to_string());
        }
        if !t.work_dir.is_empty() {
            set(e::CCP_WORKDIR, t.work_dir.clone());
        }
        Ok(Launch {
            run: run_of(t),
            node: node.name.clone(),
            command_line: t.command_line.clone(),
            work_dir: t.work_dir.clone(),
            stdin: t.stdin.clone(),
            stdout: t.stdout.clone(),
            stderr: t.stderr.clone(),
            env,
            cpus,
            owner_uid: job.owner_uid,
            nodes,
        })
    }

    /// Applies an agent's report.
    pub fn agent_event(&mut self, ev: &AgentEvent, now: Millis) -> Result<Effects> {
        let run = match ev {
            AgentEvent::Started { run } | AgentEvent::Exited { run, .. } | AgentEvent::NeverStarted { run } => *run,
        };
        let Ok(t) = self.task(run.job, run.task) else { return Ok(Effects::default()) };
        if t.attempt != run.attempt || !t.state.is_started() {
            return Ok(Effects::default()); // a report about an earlier run
        }
        let mut t = t.clone();
        match ev {
            AgentEvent::Started { .. } => {
                if t.state == TaskState::Dispatching {
                    t.set_state(TaskState::Running, now);
                    self.commit(vec![], vec![t])?;
                }
                Ok(Effects::default())
            }
            AgentEvent::NeverStarted { .. } => {
                t.set_state(TaskState::Queued, now);
                t.allocation.clear();
                t.start_time = None;
                self.commit(vec![], vec![t])?;
                Ok(Effects { reschedule: true, ..Default::default() })
            }
            AgentEvent::Exited { exit_code, canceled, error, .. } => {
                let job = self.job(run.job)?.clone();
                t.exit_code = Some(*exit_code);
                t.end_time = Some(now);
                let finish_wish = t.error_message == FINISH_MARK;
                let state = if finish_wish {
                    t.error_message.clear();
                    TaskState::Finished
                } else if t.state == TaskState::Canceling || *canceled {
                    if t.error_message.is_empty() {
                        t.error_message = if error.is_empty() { "canceled".into() } else { error.clone() };
                    }
                    TaskState::Canceled
                } else if !error.is_empty() {
                    t.error_message = error.clone();
                    TaskState::Failed
                } else {
                    let codes = t.valid_exit_codes.clone().or(job.valid_exit_codes.clone()).unwrap_or_default();
                    if codes.accepts(*exit_code) {
                        TaskState::Finished
                    } else {
                        t.error_message = format!("exit code {exit_code} is not a valid exit code ({codes})");
                        TaskState::Failed
                    }
                };
                // A task that ended by its run time limit was canceled by us,
                // but it failed as far as the user is concerned.
                let state = if state == TaskState::Canceled && t.error_message.starts_with(RUNTIME_MARK) {
                    TaskState::Failed
                } else {
                    state
                };
                t.set_state(state, now);
                self.commit(vec![], vec![t])?;
                let mut effects = Effects { reschedule: true, ..Default::default() };
                if state == TaskState::Failed && job.fail_on_task_failure && job.state == JobState::Running {
                    effects.merge(self.end_job(run.job, JobState::Failed, &format!("task {}.{} failed and the job fails on task failure", run.job, run.task), now)?);
                }
                effects.merge(self.settle_job(run.job, now)?);
                Ok(effects)
            }
        }
    }

    /// Ends a job whose tasks have all ended.
    fn settle_job(&mut self, id: u64, now: Millis) -> Result<Effects> {
        let job = self.job(id)?;
        if !matches!(job.state, JobState::Running | JobState::Canceling | JobState::Finishing) {
            return Ok(Effects::default());
        }
        let tasks = self.tasks.get(&id).map(|v| v.as_slice()).unwrap_or(&[]);
        if tasks.iter().any(|t| !t.state.is_final()) {
            return Ok(Effects::default());
        }
        let failed = tasks.iter().find(|t| t.state == TaskState::Failed);
        let all_canceled = !tasks.is_empty() && tasks.iter().all(|t| t.state == TaskState::Canceled);
        let mut job = job.clone();
        let state = match job.target_state {
            Some(s) => s,
            None if all_canceled => {
                if job.error_message.is_empty() {
                    job.error_message = "every task of the job was canceled".into();
                }
                JobState::Canceled
            }
            None if failed.is_some() => {
                if job.error_message.is_empty() {
                    let f = failed.unwrap_or(&tasks[0]);
                    job.error_message = format!("task {} failed: {}", f.display_id(), f.error_message);
                }
                JobState::Failed
            }
            None => JobState::Finished,
        };
        Self::close_job(&mut job, state, now);
        self.commit(vec![job], vec![])?;
        Ok(Effects { reschedule: true, ..Default::default() })
    }

    /// Enforces run-time limits: jobs and tasks past their `/runtime` end.
    pub fn enforce_runtimes(&mut self, now: Millis) -> Result<Effects> {
        let mut effects = Effects::default();
        let over_jobs: Vec<(u64, u64)> = self
            .active_jobs()
            .filter(|j| j.state == JobState::Running)
            .filter_map(|j| Some((j.id, j.runtime?)).filter(|(_, r)| j.start_time.is_some_and(|s| now - s >= *r as i64 * 1000)))
            .collect();
        for (id, secs) in over_jobs {
            let msg = format!("{RUNTIME_MARK} of {}", crate::model::values::format_runtime(Some(secs)));
            effects.merge(self.end_job(id, JobState::Failed, &msg, now)?);
        }
        let over_tasks: Vec<(u64, u32, u64)> = self
            .running_tasks()
            .filter(|t| t.state == TaskState::Running)
            .filter_map(|t| Some((t.job_id, t.id, t.runtime?)).filter(|(_, _, r)| t.start_time.is_some_and(|s| now - s >= *r as i64 * 1000)))
            .collect();
        for (j, tid, secs) in over_tasks {
            let mut t = self.task(j, tid)?.clone();
            effects.kills.push((first_node(&t.allocation), run_of(&t)));
            t.set_state(TaskState::Canceling, now);
            t.error_message = format!("{RUNTIME_MARK} of {}", crate::model::values::format_runtime(Some(secs)));
            self.commit(vec![], vec![t])?;
        }
        Ok(effects)
    }

    /// Runs that a restarted head node must find again: every task whose
    /// process may exist.
    pub fn started_runs(&self) -> Vec<(String, RunId)> {
        self.running_tasks().map(|t| (first_node(&t.allocation), run_of(t))).collect()
    }

    // ----- nodes, groups, cluster variables -----

    /// Registers or updates the nodes this head node runs (the embedded
    /// cluster's virtual nodes). Existing nodes keep their Online/Offline state.
    pub fn register_nodes(&mut self, nodes: Vec<Node>, groups: Vec<NodeGroup>, now: Millis) -> Result<()> {
        let mut out = Vec::new();
        for mut n in nodes {
            if let Ok(old) = self.node(&n.name) {
                n.state = old.state;
                n.online_time = old.online_time;
                n.offline_time = old.offline_time;
            } else {
                n.online_time = Some(now);
            }
            out.push(n);
        }
        let new_groups: Vec<NodeGroup> =
            groups.into_iter().filter(|g| !self.groups.iter().any(|x| x.name.eq_ignore_ascii_case(&g.name))).collect();
        // Nodes of an earlier layout go, unless a job still holds them.
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !out.iter().any(|o| o.name == n.name))
            .filter(|n| !self.jobs.values().any(|j| j.holds_resources() && j.allocation.iter().any(|a| a.node == n.name)))
            .map(|n| n.name.clone())
            .collect();
        self.store.commit(&Changes {
            nodes: out.iter().collect(),
            groups: new_groups.iter().collect(),
            deleted_nodes: gone.clone(),
            ..Default::default()
        })?;
        self.nodes.retain(|n| !gone.contains(&n.name));
        for n in out {
            match self.nodes.iter_mut().find(|x| x.name == n.name) {
                Some(x) => *x = n,
                None => self.nodes.push(n),
            }
        }
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        self.groups.extend(new_groups);
        Ok(())
    }

    /// `bringOnline`: an Offline or Draining node takes work again.
    pub fn node_online(&mut self, caller: &Caller, name: &str, now: Millis) -> Result<Effects> {
        Self::require_admin_or_local(caller, &format!("bring node {name} online"))?;
        let n = self.node(name)?;
        if n.state == NodeState::Online {
            return Err(Error::InvalidState(format!("node {} is already Online; only an Offline or Draining node can be brought online", n.name)));
        }
        let mut n = n.clone();
        n.state = NodeState::Online;
        n.online_time = Some(now);
        self.commit_node(n)?;
        Ok(Effects { reschedule: true, ..Default::default() })
    }

    /// `takeOffline`: the node drains (no new work; Offline once its jobs
    /// end), or with `force` goes Offline at once and its tasks are canceled.
    pub fn node_offline(&mut self, caller: &Caller, name: &str, force: bool, now: Millis) -> Result<Effects> {
        Self::require_admin_or_local(caller, &format!("take node {name} offline"))?;
        let n = self.node(name)?;
        if n.state == NodeState::Offline || (n.state == NodeState::Draining && !force) {
            return Err(Error::InvalidState(format!("node {} is already {}", n.name, n.state)));
        }
        let mut n = n.clone();
        let busy_jobs: Vec<u64> = self
            .active_jobs()
            .filter(|j| j.holds_resources() && j.allocation.iter().any(|a| a.node == n.name))
            .map(|j| j.id)
            .collect();
        let mut effects = Effects { reschedule: true, ..Default::default() };
        if busy_jobs.is_empty() || force {
            n.state = NodeState::Offline;
            n.offline_time = Some(now);
            for id in busy_jobs {
                effects.merge(self.end_job(id, JobState::Canceled, &format!("node {} was taken offline", n.name), now)?);
            }
        } else {
            n.state = NodeState::Draining;
        }
        self.commit_node(n)?;
        Ok(effects)
    }

    /// Draining nodes whose jobs have ended go Offline.
    pub fn settle_draining(&mut self, now: Millis) -> Result<()> {
        let done: Vec<Node> = self
            .nodes
            .iter()
            .filter(|n| n.state == NodeState::Draining)
            .filter(|n| !self.active_jobs().any(|j| j.holds_resources() && j.allocation.iter().any(|a| a.node == n.name)))
            .cloned()
            .collect();
        for mut n in done {
            n.state = NodeState::Offline;
            n.offline_time = Some(now);
            self.commit_node(n)?;
        }
        Ok(())
    }

    fn commit_node(&mut self, n: Node) -> Result<()> {
        self.store.commit(&Changes { nodes: vec![&n], ..Default::default() })?;
        if let Some(x) = self.nodes.iter_mut().find(|x| x.name == n.name) {
            *x = n;
        }
        Ok(())
    }

    /// `POST /cluster/nodeGroups`.
    pub fn create_group(&mut self, caller: &Caller, g: NodeGroup) -> Result<()> {
        Self::require_admin_or_local(caller, &format!("create node group {}", g.name))?;
        if g.name.trim().is_empty() || g.name.contains([',', ' ']) {
            return Err(Error::InvalidArgument(format!("'{}' is not a node group name (no spaces or commas)", g.name)));
        }
        if self.find_group(&g.name).is_ok() {
            return Err(Error::InvalidState(format!("node group {} already exists", g.name)));
        }
        self.store.commit(&Changes { groups: vec![&g], ..Default::default() })?;
        self.groups.push(g);
        Ok(())
    }

    /// `DELETE /cluster/nodeGroups/{name}`.
    pub fn delete_group(&mut self, caller: &Caller, name: &str) -> Result<()> {
        Self::require_admin_or_local(caller, &format!("delete node group {name}"))?;
        let g = self.find_group(name)?;
        if g == COMPUTE_NODES {
            return Err(Error::InvalidState(format!("node group {g} is built in and cannot be deleted")));
        }
        let nodes: Vec<Node> = self
            .nodes
            .iter()
            .filter(|n| n.in_group(&g))
            .map(|n| Node { groups: n.groups.iter().filter(|x| **x != g).cloned().collect(), ..n.clone() })
            .collect();
        self.store.commit(&Changes { nodes: nodes.iter().collect(), deleted_groups: vec![g.clone()], ..Default::default() })?;
        self.groups.retain(|x| x.name != g);
        for n in nodes {
            self.commit_node_memory(n);
        }
        Ok(())
    }

    fn commit_node_memory(&mut self, n: Node) {
        if let Some(x) = self.nodes.iter_mut().find(|x| x.name == n.name) {
            *x = n;
        }
    }

    /// `PATCH /cluster/nodeGroups/{name}/nodes`.
    pub fn change_group_members(&mut self, caller: &Caller, group: &str, add: bool, names: &[String]) -> Result<Effects> {
        Self::require_admin_or_local(caller, &format!("change node group {group}"))?;
        let g = self.find_group(group)?;
        if g == COMPUTE_NODES {
            return Err(Error::InvalidState(format!("node group {g} always holds every compute node")));
        }
        let mut nodes = Vec::new();
        for name in names {
            let mut n = self.node(name)?.clone();
            n.groups.retain(|x| !x.eq_ignore_ascii_case(&g));
            if add {
                n.groups.push(g.clone());
            }
            nodes.push(n);
        }
        self.store.commit(&Changes { nodes: nodes.iter().collect(), ..Default::default() })?;
        for n in nodes {
            self.commit_node_memory(n);
        }
        Ok(Effects { reschedule: true, ..Default::default() })
    }

    /// `cluscfg setenvs`: an empty value unsets the variable.
    pub fn set_cluster_env(&mut self, caller: &Caller, vars: &[(String, String)]) -> Result<()> {
        Self::require_admin_or_local(caller, "set cluster environment variables")?;
        for (k, _) in vars {
            if !crate::model::values::valid_env_name(k) {
                return Err(Error::InvalidArgument(format!("'{k}' is not an environment variable name")));
            }
        }
        let changes: Vec<(String, Option<String>)> =
            vars.iter().map(|(k, v)| (k.clone(), if v.is_empty() { None } else { Some(v.clone()) })).collect();
        self.store.commit(&Changes { env: changes.clone(), ..Default::default() })?;
        for (k, v) in changes {
            match v {
                Some(v) => self.env.insert(k, v),
                None => self.env.remove(&k),
            };
        }
        Ok(())
    }

    fn require_admin_or_local(caller: &Caller, what: &str) -> Result<()> {
        // On the embedded cluster the head node runs as its user, who is its
        // administrator; `hpcd head` run by root needs root.
        if caller.is_admin() || caller.uid == current_uid() {
            return Ok(());
        }
        Self::require_admin(caller, what)
    }

}

/// The job is submitted and has not ended: the scheduler and the run-time
/// checks look at it.
fn is_active(j: &Job) -> bool {
    !matches!(j.state, JobState::Configuring) && !j.state.is_final()
}

/// Marks a task the user asked to finish while it ran.
const FINISH_MARK: &str = "\u{1}finish";
/// Starts the error of a task or job ended by its run time limit.
const RUNTIME_MARK: &str = "exceeded its run time";

fn run_of(t: &Task) -> RunId {
    RunId { job: t.job_id, task: t.id, attempt: t.attempt }
}

fn first_node(a: &[NodeAlloc]) -> String {
    a.first().map(|a| a.node.clone()).unwrap_or_default()
}

/// `CCP_AFFINITY`: a hex mask of the CPUs (64 per processor group, comma-separated).
fn affinity_mask(cpus: &[u32]) -> String {
    let groups = cpus.iter().map(|c| c / 64).max().map(|g| g as usize + 1).unwrap_or(1);
    let mut masks = vec![0u64; groups];
    for c in cpus {
        masks[(c / 64) as usize] |= 1u64 << (c % 64);
    }
    masks.iter().map(|m| format!("{m:x}")).collect::<Vec<_>>().join(",")
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NodeHealth;

    fn cluster() -> (tempfile::TempDir, Cluster) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let mut c = Cluster::load(store, dir.path().join("runs"), "HEAD".into()).unwrap();
        let nodes = (1..=2)
            .map(|i| Node {
                name: format!("N{i}"),
                state: NodeState::Online,
                health: NodeHealth::OK,
                reachable: true,
                cores: 2,
                sockets: 1,
                memory_mb: 1000,
                groups: vec![COMPUTE_NODES.into(), "g".into()],
                cpus: vec![0, 1],
                host: "h".into(),
                online_time: None,
                offline_time: None,
            })
            .collect();
        c.register_nodes(nodes, vec![NodeGroup { name: "g".into(), description: String::new() }], 0).unwrap();
        (dir, c)
    }

    fn alice() -> Caller {
        Caller { uid: 1000, name: "alice".into() }
    }

    fn spec(cmd: &str, job: &[(&str, &str)]) -> JobSpec {
        JobSpec {
            properties: job.iter().map(|(k, v)| RestProperty::new(*k, *v)).collect(),
            env: vec![],
            custom_properties: vec![],
            tasks: vec![TaskSpec { properties: vec![RestProperty::new("CommandLine", cmd)], env: vec![] }],
        }
    }

    #[test]
    fn a_job_runs_through_its_states() {
        let (_d, mut c) = cluster();
        let mut s = spec("true", &[("MinNodes", "2")]);
        s.tasks[0].properties.push(RestProperty::new("MinNodes", "2"));
        let (id, _) = c.submit_new(&alice(), &s, 1).unwrap();
        assert_eq!(c.job(id).unwrap().state, JobState::Queued);
        let eff = c.schedule(2).unwrap();
        assert_eq!(eff.launches.len(), 1);
        let l = &eff.launches[0];
        assert!(l.env.contains(&("CCP_NODES".into(), "2 N1 2 N2 2".into())));
        assert_eq!(c.task(id, 1).unwrap().state, TaskState::Dispatching);
        c.agent_event(&AgentEvent::Started { run: l.run }, 3).unwrap();
        assert_eq!(c.task(id, 1).unwrap().state, TaskState::Running);
        c.agent_event(&AgentEvent::Exited { run: l.run, exit_code: 0, canceled: false, error: String::new() }, 4).unwrap();
        assert_eq!(c.job(id).unwrap().state, JobState::Finished);
        assert!(!c.job(id).unwrap().holds_resources());
        assert_eq!(c.job(id).unwrap().allocated_node_names(), "N1,N2");
    }

    #[test]
    fn bad_input_changes_nothing() {
        let (_d, mut c) = cluster();
        let before = c.job_count();
        assert!(c.submit_new(&alice(), &spec("true", &[("MinNodes", "3")]), 1).is_err());
        assert!(c.submit_new(&alice(), &spec("true", &[("NodeGroups", "nosuch")]), 1).is_err());
        assert!(c.submit_new(&alice(), &spec("", &[]), 1).is_err());
        assert!(c.submit_new(&alice(), &spec("true", &[("Priority", "Urgent")]), 1).is_err());
        assert_eq!(c.job_count(), before);
        assert_eq!(c.next_job_id, 1);
    }

    #[test]
    fn only_the_owner_changes_a_job() {
        let (_d, mut c) = cluster();
        let (id, _) = c.submit_new(&alice(), &spec("true", &[]), 1).unwrap();
        let bob = Caller { uid: 1001, name: "bob".into() };
        assert!(matches!(c.cancel_job(&bob, id, "", 2), Err(Error::AccessDenied(_))));
        assert!(c.cancel_job(&Caller { uid: 0, name: "root".into() }, id, "", 2).is_ok());
        assert_eq!(c.job(id).unwrap().state, JobState::Canceled);
    }

    #[test]
    fn cancel_waits_for_running_tasks() {
        let (_d, mut c) = cluster();
        let (id, _) = c.submit_new(&alice(), &spec("sleep 100", &[]), 1).unwrap();
        let run = c.schedule(2).unwrap().launches[0].run;
        let eff = c.cancel_job(&alice(), id, "", 3).unwrap();
        assert_eq!(eff.kills.len(), 1);
        assert_eq!(c.job(id).unwrap().state, JobState::Canceling);
        assert!(c.cancel_job(&alice(), id, "", 3).is_err());
        c.agent_event(&AgentEvent::Exited { run, exit_code: 143, canceled: true, error: String::new() }, 4).unwrap();
        assert_eq!(c.job(id).unwrap().state, JobState::Canceled);
        assert_eq!(c.task(id, 1).unwrap().state, TaskState::Canceled);
    }

    #[test]
    fn exit_codes_decide_failure() {
        let (_d, mut c) = cluster();
        let mut s = spec("exit 3", &[]);
        s.tasks[0].properties.push(RestProperty::new("ValidExitCodes", "0,3"));
        let (id, _) = c.submit_new(&alice(), &s, 1).unwrap();
        let run = c.schedule(2).unwrap().launches[0].run;
        c.agent_event(&AgentEvent::Exited { run, exit_code: 3, canceled: false, error: String::new() }, 4).unwrap();
        assert_eq!(c.job(id).unwrap().state, JobState::Finished);
        let (id, _) = c.submit_new(&alice(), &spec("exit 1", &[]), 5).unwrap();
        let run = c.schedule(6).unwrap().launches[0].run;
        c.agent_event(&AgentEvent::Exited { run, exit_code: 1, canceled: false, error: String::new() }, 7).unwrap();
        assert_eq!(c.job(id).unwrap().state, JobState::Failed);
        assert!(c.job(id).unwrap().error_message.contains("exit code 1"));
        c.requeue_job(&alice(), id, 8).unwrap();
        assert_eq!(c.task(id, 1).unwrap().state, TaskState::Queued);
        assert_eq!(c.task(id, 1).unwrap().requeue_count, 1);
    }

    #[test]
    fn stale_reports_are_ignored() {
        let (_d, mut c) = cluster();
        let (id, _) = c.submit_new(&alice(), &spec("true", &[]), 1).unwrap();
        let run = c.schedule(2).unwrap().launches[0].run;
        c.requeue_job(&alice(), id, 3).unwrap();
        let run2 = c.schedule(4).unwrap().launches[0].run;
        assert_eq!(run2.attempt, run.attempt + 1);
        c.agent_event(&AgentEvent::Exited { run, exit_code: 1, canceled: true, error: String::new() }, 5).unwrap();
        assert_eq!(c.task(id, 1).unwrap().state, TaskState::Dispatching);
    }

    #[test]
    fn draining_then_offline() {
        let (_d, mut c) = cluster();
        let root = Caller { uid: 0, name: "root".into() };
        let (id, _) = c.submit_new(&alice(), &spec("true", &[("MinNodes", "2")]), 1).unwrap();
        let run = c.schedule(2).unwrap().launches[0].run;
        c.node_offline(&root, "n1", false, 3).unwrap();
        assert_eq!(c.node("N1").unwrap().state, NodeState::Draining);
        c.agent_event(&AgentEvent::Exited { run, exit_code: 0, canceled: false, error: String::new() }, 4).unwrap();
        c.settle_draining(5).unwrap();
        assert_eq!(c.node("N1").unwrap().state, NodeState::Offline);
        assert_eq!(c.job(id).unwrap().state, JobState::Finished);
        assert!(c.node_offline(&root, "N1", false, 6).is_err());
        assert!(c.node_online(&alice(), "N1", 6).is_err());
        c.node_online(&root, "N1", 6).unwrap();
    }
}
