//! Scheduling passes, task launches, agents' reports and run-time limits.

use super::*;

impl Cluster {
    /// One scheduling pass: start queued jobs that fit, start the tasks of
    /// running jobs, fail what can never run. Returns the launches.
    pub fn schedule(&mut self, now: Millis) -> Result<Effects> {
        let mut effects = Effects::default();
        let usage = scheduler::usage_of(self.active_jobs().filter(|j| j.holds_resources()));
        let queued = self.schedulable(now);
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
                // Computed when asked: see `pending_reasons`.
                Decision::Wait(_) => {}
                Decision::Never(why) => {
                    j.error_message = format!("the job cannot run on this cluster: {why}");
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

    /// The Queued jobs a scheduling pass looks at: all but those held by
    /// `/holduntil`. Submitted jobs carry their resolved request (see
    /// mark_submitted).
    fn schedulable(&self, now: Millis) -> Vec<&Job> {
        self.active_jobs().filter(|j| j.state == JobState::Queued && j.hold_until.is_none_or(|h| h <= now)).collect()
    }

    /// Why each Queued job has not started (its `PendingReason`), as the
    /// scheduler sees the queue and the nodes at `now`; a job held by
    /// `/holduntil` says until when. Computed when a job is read rather
    /// than stored by each pass, so it follows every change at once and a
    /// long queue behind a full cluster costs nothing.
    pub fn pending_reasons(&self, now: Millis) -> BTreeMap<u64, String> {
        let usage = scheduler::usage_of(self.active_jobs().filter(|j| j.holds_resources()));
        let mut out = scheduler::pending_reasons(&self.nodes, &usage, &self.schedulable(now));
        for j in self.active_jobs().filter(|j| j.state == JobState::Queued) {
            if let Some(h) = j.hold_until.filter(|h| *h > now) {
                out.insert(j.id, format!("held until {} (/holduntil)", crate::wire::format_time(Some(h))));
            }
        }
        out
    }

    pub(super) fn dispatch_tasks(&mut self, job_id: u64, now: Millis) -> Result<Effects> {
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
    pub(super) fn launch_for(&self, job: &Job, t: &Task) -> Result<Launch> {
        let first = t.allocation.first().ok_or_else(|| Error::InvalidState(format!("task {} has no cores", t.display_id())))?;
        let node = self.node(&first.node)?;
        let cpus: Vec<u32> = first.cores.iter().filter_map(|c| node.cpus.get(*c as usize).copied()).collect();
        // The task's nodes that run on the same host as its first one (the
        // virtual nodes of the embedded cluster), with their host CPUs: the
        // task may use all of them, and mpiexec starts those nodes' ranks
        // here, each within its node's CPUs.
        let mut same_host: Vec<(String, Vec<u32>)> = Vec::new();
        for a in &t.allocation {
            let n = self.node(&a.node)?;
            if n.host == node.host {
                same_host.push((n.name.clone(), a.cores.iter().filter_map(|c| n.cpus.get(*c as usize).copied()).collect()));
            }
        }
        let mut bind: Vec<u32> = same_host.iter().flat_map(|(_, c)| c.iter().copied()).collect();
        bind.sort_unstable();
        bind.dedup();
        let nodes: Vec<(String, u32)> = t.allocation.iter().map(|a| (a.node.clone(), a.cores.len() as u32)).collect();
        let cluster_env: Vec<(String, String)> = self.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let placement = crate::model::ccp::Placement {
            cluster_env: &cluster_env,
            cluster_name: &self.cluster_name,
            nodes: &nodes,
            cpus: &cpus,
            first_cores: first.cores.len() as u32,
        };
        let mut env = crate::model::ccp::task_env(job, t, &placement);
        // HPCPACK_JOB_CREDENTIAL and HPCPACK_LAUNCH join these when the
        // launch is carried out: see `Cluster::add_launch_env`.
        env.push((
            crate::env::HPCPACK_LOCAL_NODES.to_string(),
            same_host
                .iter()
                .map(|(n, c)| format!("{n}={}", c.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")))
                .collect::<Vec<_>>()
                .join(" "),
        ));
        Ok(Launch::of_task(t, run_of(t), node.name.clone(), env, bind, job.owner_uid, nodes))
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
            AgentEvent::Exited { exit_code, canceled, error, reason, .. } => {
                let job = self.job(run.job)?.clone();
                let state = Self::ended_state(&job, &mut t, *exit_code, *canceled, error, reason, now);
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
    pub(super) fn settle_job(&mut self, id: u64, now: Millis) -> Result<Effects> {
        let job = self.job(id)?;
        if !matches!(job.state, JobState::Running | JobState::Canceling | JobState::Finishing) {
            return Ok(Effects::default());
        }
        let tasks = self.tasks.get(&id).map(|v| v.as_slice()).unwrap_or(&[]);
        if tasks.iter().any(|t| !t.state.is_final()) {
            return Ok(Effects::default());
        }
        let mut job = job.clone();
        let state = Self::settled_state(&mut job, tasks);
        Self::close_job(&mut job, state, now);
        self.commit(vec![job], vec![])?;
        Ok(Effects { reschedule: true, ..Default::default() })
    }

    /// A run's end as its task's state (also setting its exit code, end
    /// time and error message): finished when its exit code is valid (the
    /// task's codes, else the job's), failed with the reason otherwise,
    /// canceled when canceled. Every backend judges a run this way.
    pub fn ended_state(job: &Job, t: &mut Task, exit_code: i64, canceled: bool, error: &str, reason: &str, now: Millis) -> TaskState {
        t.exit_code = Some(exit_code);
        t.end_time = Some(now);
        let finish_wish = t.error_message == FINISH_MARK;
        let state = if finish_wish {
            t.error_message.clear();
            TaskState::Finished
        } else if t.state == TaskState::Canceling || canceled {
            if t.error_message.is_empty() {
                t.error_message = if error.is_empty() { "canceled".into() } else { error.to_string() };
            }
            TaskState::Canceled
        } else if !error.is_empty() {
            t.error_message = error.to_string();
            TaskState::Failed
        } else {
            let codes = t.valid_exit_codes.clone().or(job.valid_exit_codes.clone()).unwrap_or_default();
            if codes.accepts(exit_code) {
                TaskState::Finished
            } else {
                // The line of its standard error that says why, if any.
                let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
                t.error_message = format!("exit code {exit_code} is not a valid exit code ({codes}){why}");
                TaskState::Failed
            }
        };
        // A task that ended by its run time limit was canceled by us, but
        // it failed as far as the user is concerned.
        if state == TaskState::Canceled && t.error_message.starts_with(RUNTIME_MARK) {
            TaskState::Failed
        } else {
            state
        }
    }

    /// The final state of a job whose tasks have all ended (its
    /// `target_state` when canceled or finished on request), with the error
    /// message that says why when it did not finish.
    pub fn settled_state(job: &mut Job, tasks: &[Task]) -> JobState {
        let failed = tasks.iter().find(|t| t.state == TaskState::Failed);
        let all_canceled = !tasks.is_empty() && tasks.iter().all(|t| t.state == TaskState::Canceled);
        match job.target_state {
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
        }
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
}

impl Cluster {
    /// Adds what a task needs to start ranks through the MPI launch service:
    /// the job's credential and, for each node of the task's allocation, the
    /// service serving it (`service_of`; `None` leaves the node out, and
    /// mpiexec starts its ranks itself). Done when the launch is carried out
    /// rather than in [`Cluster::launch_for`], so the cluster key never enters
    /// the cluster's state (nor `job view`): the credential exists only in the
    /// task's environment.
    pub fn add_launch_env(
        l: &mut Launch,
        credential: String,
        service_of: impl Fn(&str) -> Option<String>,
    ) {
        use crate::env as e;
        let services: Vec<String> = l
            .nodes
            .iter()
            .filter_map(|(n, _)| service_of(n).map(|addr| format!("{n}={addr}")))
            .collect();
        l.env
            .retain(|(k, _)| k != e::HPCPACK_JOB_CREDENTIAL && k != e::HPCPACK_LAUNCH);
        l.env
            .push((e::HPCPACK_JOB_CREDENTIAL.to_string(), credential));
        l.env
            .push((e::HPCPACK_LAUNCH.to_string(), services.join(" ")));
    }
}
