//! Canceling, finishing and requeuing single tasks.

use super::*;

impl Cluster {
    /// `POST /jobs/{id}/tasks/{t}/cancel`.
    pub fn cancel_task(&mut self, caller: &Caller, job_id: u64, task: u32, message: &str, now: Millis) -> Result<Effects> {
        self.end_task(caller, job_id, task, TaskState::Canceled, message, "cancel", now)
    }

    /// `POST /jobs/{id}/tasks/{t}/finish`.
    pub fn finish_task(&mut self, caller: &Caller, job_id: u64, task: u32, message: &str, now: Millis) -> Result<Effects> {
        self.end_task(caller, job_id, task, TaskState::Finished, message, "finish", now)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn end_task(
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
}
