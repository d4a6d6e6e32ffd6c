//! `hpcd slurm-job <record dir>`: the batch script of every job the Slurm
//! backend submits. It runs on the first node of the job's allocation and
//! runs the job's tasks there as HPC Pack's head node would: in HPC Pack's
//! order ([`crate::head::scheduler::place_tasks`]: dependencies, each task's
//! cores within what the job holds), each task one Slurm step (`srun
//! --overlap` on the task's first node, running `hpcd-task`, the same
//! supervisor the embedded head node's tasks run under, with the same
//! `CCP_*` variables: [`crate::model::ccp`]). Task states, exit codes and
//! output go to the job's record ([`super::record`]), where the CLIs read
//! them, also after Slurm forgot the job.
//!
//! `scancel` (what `job cancel` runs) sends the runner SIGTERM: it cancels
//! the running tasks (srun passes the signal to the step), records the job
//! Canceled and exits. Requests about single tasks (cancel, finish,
//! requeue) arrive as files in the record ([`super::record::take_requests`]).
//!
//! The runner's exit code is 0 when the job finished, 1 when it failed,
//! so Slurm's own view (COMPLETED or FAILED) agrees with HPC Pack's.

use super::record::{self, Ask, Progress, Record};
use crate::head::cluster::Cluster;
use crate::head::scheduler::{TaskDecision, place_tasks};
use crate::model::{JobState, NodeAlloc, Task, TaskState, now_millis};
use crate::node::protocol::{Launch, RunId};
use crate::node::supervisor::{EXIT, RunOutcome, SPEC};
use crate::node::sys;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `hpcd` subcommand.
pub const SLURM_JOB: &str = "slurm-job";

/// What a task ended by a signal to the runner says when no cancel reason
/// was written: someone ran scancel, or Slurm ended the job (a node failed
/// under it, or it requeued it).
pub const SIGNALLED: &str = "the job was canceled (scancel)";

/// The batch script that runs the job of record `dir` with `hpcd` (this
/// installation's, which the compute nodes share): `hpcd slurm-job <dir>`,
/// or `hpcpack hpcd slurm-job <dir>` when `hpcd` is the multi-call program.
pub fn batch_script(hpcd: &Path, dir: &Path) -> String {
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let tool = if hpcd.file_name().is_some_and(|n| n == crate::multicall::BINARY) { " hpcd" } else { "" };
    format!("#!/bin/sh\nexec {}{tool} {SLURM_JOB} {}\n", quote(hpcd), quote(dir))
}

/// Variables of the batch step a task keeps: what `srun` and `mpiexec`
/// need to find the job's allocation from a task (the step's own variables
/// are set by Slurm in each task's step).
const KEPT: &[&str] = &[
    "SLURM_JOB_ID",
    "SLURM_JOBID",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_NUM_NODES",
    "SLURM_JOB_CPUS_PER_NODE",
    "SLURM_JOB_PARTITION",
    "SLURM_CLUSTER_NAME",
    "SLURM_CONF",
    "SLURM_SUBMIT_DIR",
    "SLURM_SUBMIT_HOST",
];

/// One task's step.
struct Step {
    task: u32,
    dir: PathBuf,
    srun: Child,
}

pub fn main(dir: &Path) -> i32 {
    match run(dir) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hpcd slurm-job: {e}");
            let mut p = record::load_progress(dir).ok().flatten().unwrap_or_default();
            if p.run > this_run() {
                // A later run owns the record.
                return 1;
            }
            p.state = Some(JobState::Failed);
            p.end_time = Some(now_millis());
            p.error_message = e;
            let _ = record::save_progress(dir, &p);
            1
        }
    }
}

/// Which run of the job this is: 0, then 1 after Slurm requeued it once …
fn this_run() -> u32 {
    var("SLURM_RESTART_COUNT").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: hpcd slurm-job runs as the batch script of a Slurm job"))
}

/// The job's allocation as HPC Pack nodes with cores.
fn allocation() -> Result<Vec<NodeAlloc>, String> {
    let nodes = super::hostlist::expand(&var("SLURM_JOB_NODELIST")?).map_err(|e| format!("SLURM_JOB_NODELIST: {e}"))?;
    let cpus = super::hostlist::tasks_per_node(&var("SLURM_JOB_CPUS_PER_NODE")?).map_err(|e| format!("SLURM_JOB_CPUS_PER_NODE: {e}"))?;
    Ok(nodes.into_iter().zip(cpus.into_iter().chain(std::iter::repeat(1))).map(|(node, c)| NodeAlloc { node, cores: (0..c.max(1)).collect() }).collect())
}

fn run(dir: &Path) -> Result<i32, String> {
    // Before anything else, so a cancel during start-up is not lost.
    let signals = sys::signal_fd().map_err(|e| format!("cannot set up signals: {e}"))?;
    let Record { mut job, mut tasks, .. } = record::load(dir)?.ok_or_else(|| format!("no job record in {}", dir.display()))?;
    if let Ok(id) = var("SLURM_JOB_ID").and_then(|v| v.parse().map_err(|_| "SLURM_JOB_ID is not a number".to_string())) {
        job.id = id;
        tasks.iter_mut().for_each(|t| t.job_id = id);
    }
    // Run again (Slurm requeued the job after a node failed, or
    // `scontrol requeue`): the tasks that finished stay finished.
    if let Some(p) = record::load_progress(dir)?.filter(|p| !p.tasks.is_empty()) {
        tasks = p.tasks;
        for t in tasks.iter_mut().filter(|t| t.state != TaskState::Finished) {
            t.state = TaskState::Queued;
            t.error_message.clear();
            t.exit_code = None;
        }
    }
    let now = now_millis();
    job.allocation = allocation()?;
    job.set_state(JobState::Running, now);
    job.start_time = Some(now);
    for t in tasks.iter_mut().filter(|t| !t.state.is_final()) {
        t.set_state(TaskState::Queued, now);
    }
    let cluster_env = record::cluster_env()?;
    let kept: Vec<(String, String)> = KEPT.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect();
    let supervisor = crate::multicall::program("hpcd-task");
    let mut progress =
        Progress { start_time: Some(now), nodes: job.allocation.iter().map(|a| a.node.clone()).collect(), run: this_run(), ..Default::default() };
    let mut steps: Vec<Step> = Vec::new();
    // `changed`: progress to write; `replan`: task states changed since the
    // last placement (placing again before that would decide the same).
    let (mut changed, mut replan) = (true, true);
    loop {
        let now = now_millis();
        if sys::read_signal(&signals) {
            let message = std::fs::read_to_string(dir.join(record::CANCELED)).unwrap_or_default();
            let message = if message.trim().is_empty() { SIGNALLED.to_string() } else { message.trim().to_string() };
            for s in &steps {
                let _ = sys::kill(s.srun.id(), libc::SIGTERM);
            }
            reap_all(&mut steps, Duration::from_secs(10));
            for t in tasks.iter_mut().filter(|t| !t.state.is_final()) {
                t.set_state(TaskState::Canceled, now);
                t.end_time = Some(now);
                if t.error_message.is_empty() {
                    t.error_message = message.clone();
                }
            }
            job.error_message = message;
            return finish(dir, &mut progress, job, tasks, JobState::Canceled).map(|_| 143);
        }
        for (what, id, message) in record::take_requests(dir) {
            let Some(t) = tasks.iter_mut().find(|t| t.id == id) else { continue };
            match what {
                Ask::Cancel | Ask::Finish if t.state == TaskState::Running => {
                    t.error_message = if what == Ask::Finish { crate::head::cluster::FINISH_MARK.into() } else { message };
                    t.set_state(TaskState::Canceling, now);
                    if let Some(s) = steps.iter().find(|s| s.task == id) {
                        let _ = sys::kill(s.srun.id(), libc::SIGTERM);
                    }
                }
                Ask::Cancel | Ask::Finish if !t.state.is_final() => {
                    t.set_state(if what == Ask::Finish { TaskState::Finished } else { TaskState::Canceled }, now);
                    t.error_message = message;
                    t.end_time = Some(now);
                }
                Ask::Requeue if t.state.is_final() => {
                    t.set_state(TaskState::Queued, now);
                    t.error_message.clear();
                    t.exit_code = None;
                    t.end_time = None;
                    t.requeue_count += 1;
                }
                _ => continue,
            }
            (changed, replan) = (true, true);
        }
        let decisions = if replan { place_tasks(&job, &tasks.iter().collect::<Vec<_>>()) } else { Vec::new() };
        // A task that failed here may fail those that depend on it: place again.
        replan = !decisions.is_empty();
        for (id, d) in decisions {
            let i = tasks.iter().position(|t| t.id == id).ok_or("a decision about a task that does not exist")?;
            match d {
                TaskDecision::Start(alloc) => {
                    let t = &mut tasks[i];
                    t.allocation = alloc;
                    t.attempt += 1;
                    t.set_state(TaskState::Running, now);
                    t.start_time = Some(now);
                    match start(dir, &job, t, &cluster_env, &kept, &supervisor) {
                        Ok(s) => steps.push(s),
                        Err(e) => {
                            t.set_state(TaskState::Failed, now);
                            t.error_message = e;
                            t.end_time = Some(now);
                        }
                    }
                }
                TaskDecision::DependencyFailed(why) | TaskDecision::TooLarge(why) => {
                    let t = &mut tasks[i];
                    t.set_state(TaskState::Failed, now);
                    t.error_message = why;
                    t.end_time = Some(now);
                }
            }
            changed = true;
        }
        let mut i = 0;
        while i < steps.len() {
            match steps[i].srun.try_wait() {
                Ok(Some(status)) => {
                    let s = steps.swap_remove(i);
                    let outcome = outcome(&s.dir, status);
                    if let Some(t) = tasks.iter_mut().find(|t| t.id == s.task) {
                        let state = Cluster::ended_state(&job, t, outcome.exit_code, outcome.canceled, &outcome.error, &outcome.reason, now);
                        t.set_state(state, now);
                        if state == TaskState::Failed && job.fail_on_task_failure {
                            job.target_state = Some(JobState::Failed);
                            job.error_message = format!("task {} failed and the job fails on task failure", t.display_id());
                            for t in tasks.iter_mut().filter(|t| !t.state.is_final() && t.state != TaskState::Running) {
                                t.set_state(TaskState::Canceled, now);
                                t.end_time = Some(now);
                            }
                            for s in &steps {
                                let _ = sys::kill(s.srun.id(), libc::SIGTERM);
                            }
                        }
                    }
                    (changed, replan) = (true, true);
                }
                _ => i += 1,
            }
        }
        if steps.is_empty() && tasks.iter().all(|t| t.state.is_final()) {
            let state = Cluster::settled_state(&mut job, &tasks);
            return finish(dir, &mut progress, job, tasks, state).map(|()| if state == JobState::Finished { 0 } else { 1 });
        }
        if changed {
            progress.tasks = tasks.clone();
            record::save_progress(dir, &progress)?;
            changed = false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Records the job's end in `state`.
fn finish(dir: &Path, progress: &mut Progress, mut job: crate::model::Job, tasks: Vec<Task>, state: JobState) -> Result<(), String> {
    let now = now_millis();
    Cluster::close_job(&mut job, state, now);
    progress.state = Some(state);
    progress.end_time = Some(now);
    progress.error_message = job.error_message.clone();
    progress.tasks = tasks;
    record::save_progress(dir, progress)
}

/// Waits up to `grace` for the steps to end, then kills what is left.
fn reap_all(steps: &mut Vec<Step>, grace: Duration) {
    let deadline = std::time::Instant::now() + grace;
    while !steps.is_empty() && std::time::Instant::now() < deadline {
        steps.retain_mut(|s| !matches!(s.srun.try_wait(), Ok(Some(_))));
        std::thread::sleep(Duration::from_millis(20));
    }
    for s in steps.iter_mut() {
        let _ = s.srun.kill();
        let _ = s.srun.wait();
    }
    steps.clear();
}

/// How a step ended: `hpcd-task`'s `exit.json`, or, when the step never
/// got that far, what srun said.
fn outcome(dir: &Path, status: std::process::ExitStatus) -> RunOutcome {
    if let Ok(b) = std::fs::read(dir.join(EXIT)) {
        if let Ok(o) = serde_json::from_slice::<RunOutcome>(&b) {
            return o;
        }
    }
    let said = std::fs::read_to_string(dir.join("srun.err")).unwrap_or_default();
    let said = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
    RunOutcome {
        exit_code: status.code().map(i64::from).unwrap_or(-1),
        canceled: false,
        error: format!("the task's Slurm step ended without a result ({status}){}", if said.is_empty() { String::new() } else { format!(": {said}") }),
        reason: String::new(),
    }
}

/// Starts task `t` as a step on its first node.
fn start(dir: &Path, job: &crate::model::Job, t: &Task, cluster_env: &[(String, String)], kept: &[(String, String)], supervisor: &Path) -> Result<Step, String> {
    let first = t.allocation.first().ok_or("the task got no cores")?;
    let nodes: Vec<(String, u32)> = t.allocation.iter().map(|a| (a.node.clone(), a.cores.len() as u32)).collect();
    let placement = crate::model::ccp::Placement { cluster_env, cluster_name: "slurm", nodes: &nodes, cpus: &[], first_cores: first.cores.len() as u32 };
    let mut env: Vec<(String, String)> = kept.to_vec();
    env.extend(crate::model::ccp::task_env(job, t, &placement));
    let run = RunId { job: job.id, task: t.id, attempt: t.attempt };
    let launch = Launch::of_task(t, run, first.node.clone(), env, Vec::new(), sys::uid(), nodes);
    let run_dir = dir.join(record::RUNS).join(format!("{}.{}", t.id, t.attempt));
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    let spec = serde_json::to_vec(&launch).map_err(|e| e.to_string())?;
    crate::node::supervisor::write_atomic(&run_dir.join(SPEC), &spec, false).map_err(|e| format!("cannot write the task spec: {e}"))?;
    let err = std::fs::File::create(run_dir.join("srun.err")).map_err(|e| format!("cannot create srun.err: {e}"))?;
    let name = if t.name.is_empty() { format!("task{}", t.id) } else { t.name.clone() };
    let mut c = Command::new("srun");
    c.args(["--overlap", "--nodes=1", "--ntasks=1", "--kill-on-bad-exit=1", "--quiet", "--input=none"])
        .arg(format!("--nodelist={}", first.node))
        .arg(format!("--job-name={name}"))
        .arg(supervisor)
        .arg(&run_dir)
        .env_remove("SLURM_JWT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    let srun = c.spawn().map_err(|e| format!("cannot run srun to start the task: {e}"))?;
    Ok(Step { task: t.id, dir: run_dir, srun })
}
