//! Creating, submitting, changing and ending jobs.

use super::*;

impl Cluster {
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

    pub fn build_task(job: &Job, id: u32, spec: &TaskSpec, now: Millis) -> Result<Task> {
        let mut t = Task::new(job.id, id, now);
        props::apply(props::task_props(), &mut t, &spec.properties).map_err(Error::InvalidArgument)?;
        t.env = props::props_env(&spec.env).map_err(Error::InvalidArgument)?;
        Self::validate_task(job, &t)?;
        Ok(t)
    }

    /// The extension `POST /hpcpack/v1/jobs`: create, add tasks and submit in
    /// one durable step, so a bad task leaves no half-made job behind.
    pub fn submit_new(&mut self, caller: &Caller, spec: &JobSpec, now: Millis) -> Result<(u64, Effects)> {
        if spec.tasks.is_empty() && !spec.create_only {
            return Err(Error::InvalidArgument("a job needs at least one task".into()));
        }
        if let Some(r) = &spec.request_id {
            if r.is_empty() || r.len() > 64 || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(Error::InvalidArgument("RequestId must be 1 to 64 letters, digits and '-'".into()));
            }
            // Sent again: the job the first one made.
            if let Some(id) = self.requests.get(&(caller.uid, r.clone())) {
                return Ok((*id, Effects::default()));
            }
        }
        let id = self.create_with_tasks(caller, spec, !spec.create_only, now)?;
        Ok((id, Effects { reschedule: !spec.create_only, ..Default::default() }))
    }

    /// A job with the spec's tasks in one durable step: Configuring, or
    /// Queued with `submit`.
    fn create_with_tasks(&mut self, caller: &Caller, spec: &JobSpec, submit: bool, now: Millis) -> Result<u64> {
        let id = self.next_job_id;
        let mut job = self.build_job(caller, id, &spec.properties, now)?;
        job.env = props::props_env(&spec.env).map_err(Error::InvalidArgument)?;
        job.custom_properties = spec.custom_properties.iter().map(|p| (p.name.clone(), p.value.clone())).collect();
        job.request_id = spec.request_id.clone();
        job.submit_environment = props::submit_environment(&spec.submit_environment).map_err(Error::InvalidArgument)?;
        let mut tasks = Vec::with_capacity(spec.tasks.len());
        for (i, ts) in spec.tasks.iter().enumerate() {
            tasks.push(Self::build_task(&job, i as u32 + 1, ts, now)?);
        }
        job.next_task_id = tasks.len() as u32 + 1;
        let refs: Vec<&Task> = tasks.iter().collect();
        self.validate_job(&job, &refs)?;
        if submit {
            Self::mark_submitted(&mut job, &mut tasks, now);
        }
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

    pub fn mark_submitted(job: &mut Job, tasks: &mut [Task], now: Millis) {
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
        self.create_with_tasks(caller, spec, false, now)
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
        self.apply_job_props(caller, &mut job, props_in)?;
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
        self.apply_job_props(caller, &mut new, props_in)?;
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
        let merge = |env: &mut Vec<(String, String)>| crate::model::values::merge_env(env, &vars);
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
    pub(super) fn end_job(&mut self, id: u64, target: JobState, message: &str, now: Millis) -> Result<Effects> {
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

    pub fn close_job(job: &mut Job, state: JobState, now: Millis) {
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
        self.requeue(id, "", now)
    }

    /// Puts a job back in the queue with its unfinished tasks; `why` stays
    /// as its error message.
    pub(super) fn requeue(&mut self, id: u64, why: &str, now: Millis) -> Result<Effects> {
        let mut job = self.job(id)?.clone();
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
        job.error_message = why.to_string();
        job.start_time = None;
        job.end_time = None;
        self.commit(vec![job], tasks)?;
        Ok(effects)
    }

    pub(super) fn reset_task(t: &mut Task, now: Millis) {
        t.set_state(TaskState::Queued, now);
        t.requeue_count += 1;
        t.exit_code = None;
        t.error_message.clear();
        t.allocation.clear();
        t.start_time = None;
        t.end_time = None;
    }
}
