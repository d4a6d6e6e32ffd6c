//! A Slurm cluster as a [`Backend`]: the HPC Pack commands on the cluster
//! people already run (`CCP_SCHEDULER=slurm`, `/scheduler:slurm`, or
//! `scheduler = "slurm"` in config.toml), through Slurm's own commands as
//! the user who types them (`sbatch`, `scontrol`, `scancel`; reads through
//! slurmrestd where it answers ([`rest`]), else `squeue` and `sinfo` asked
//! for plain fields ([`crate::slurm::text`])), so Slurm's permissions,
//! limits and accounting apply unchanged.
//!
//! HPC Pack's model on Slurm's ([`crate::slurm::map`]): node groups are
//! partitions and features, a job's request becomes `sbatch` options (what
//! Slurm cannot express is refused, naming the option), states map onto
//! HPC Pack's. What Slurm does not keep (tasks, their states, exit codes
//! and output) is the job's record in the submitter's state directory
//! ([`crate::slurm::record`]), which the job's batch script, `hpcd
//! slurm-job` ([`crate::slurm::runner`]), updates as it runs the tasks
//! inside the allocation. A job is seen as Slurm's state and the record
//! together; once Slurm forgot it, as the record alone.
//!
//! `job new` submits the job held (`sbatch --hold`), so it has its Slurm
//! id from the start; `job add` adds tasks to the record, and `job submit
//! /id:` brings the held job's request up to date (`scontrol update`) and
//! releases it.

use super::{Backend, JobQuery};
use crate::error::{Error, Result};
use crate::head::cluster::Cluster;
use crate::model::{Job, JobState, NodeAlloc, Task, TaskState, now_millis};
use crate::slurm::json::{self, SlurmJob};
use crate::slurm::map;
use crate::slurm::record::{self, Ask, Record};
use crate::wire::props::{self, TaskCounts};
use crate::wire::{JobSpec, RestProperty, TaskSpec, WireCore, WireNode, WireNodeGroup, WireStatus, WireTemplate};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub mod rest;

pub struct SlurmBackend {
    /// `[slurm] url`.
    url: Option<String>,
    /// slurmrestd, once asked for: `None` where the commands are used.
    rest: std::cell::OnceCell<Option<rest::Rest>>,
}

impl SlurmBackend {
    pub fn new(url: Option<String>) -> SlurmBackend {
        SlurmBackend { url, rest: std::cell::OnceCell::new() }
    }

    /// slurmrestd, if it answers (see [`rest`]).
    fn rest(&self) -> Result<Option<&rest::Rest>> {
        if let Some(r) = self.rest.get() {
            return Ok(r.as_ref());
        }
        let r = rest::Rest::connect(self.url.as_deref())?;
        Ok(self.rest.get_or_init(|| r).as_ref())
    }

    /// Slurm's jobs: one (`None` when Slurm no longer knows it) or all.
    fn squeue(&self, id: Option<u64>) -> Result<Vec<SlurmJob>> {
        if let Some(r) = self.rest()? {
            let body = r.get(&match id {
                Some(id) => format!("/job/{id}"),
                None => "/jobs".to_string(),
            })?;
            return match json::jobs(&body) {
                Ok(j) => Ok(j),
                Err(m) if id.is_some() && m.contains("Invalid job id") => Ok(Vec::new()),
                Err(m) => Err(Error::InvalidArgument(m)),
            };
        }
        squeue(id)
    }

    /// Slurm's nodes in HPC Pack's terms, and what a request maps onto.
    fn sinfo(&self) -> Result<(Vec<WireNode>, map::Cluster)> {
        match self.rest()? {
            Some(r) => {
                json::nodes_and_cluster(&r.get("/nodes")?).map_err(Error::InvalidArgument)
            }
            None => sinfo(),
        }
    }
}

/// The one line of a Slurm command's error output that says what is
/// wrong, without the command's prefix (`sbatch: error: `).
fn slurm_message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let line = lines.iter().rev().find(|l| l.contains("error")).or(lines.last()).copied().unwrap_or("");
    let mut s = line;
    for prefix in ["sbatch: error: ", "squeue: error: ", "sinfo: error: ", "scontrol: error: ", "scancel: error: ", "srun: error: "] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest;
        }
    }
    s.strip_prefix("Batch job submission failed: ").unwrap_or(s).to_string()
}

/// Runs a Slurm command as this user and returns its stdout; an error
/// carries Slurm's own message. `SLURM_JWT` is for slurmrestd only: with
/// it, Slurm's commands authenticate by token, which slurmd refuses.
fn run(program: &str, args: &[String], stdin: Option<&str>) -> Result<String> {
    let mut c = Command::new(program);
    c.args(args).env_remove("SLURM_JWT").stdout(Stdio::piped()).stderr(Stdio::piped());
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = c.spawn().map_err(|e| {
        Error::Unreachable(format!(
            "cannot run {program}: {e}; the Slurm backend needs Slurm's commands (Debian: apt-get install slurm-client) on PATH"
        ))
    })?;
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        match w.write_all(text.as_bytes()) {
            // It exited without reading all of it (sbatch refusing an
            // option does): what it said, below, is the error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r.map_err(|e| Error::io(format!("cannot write to {program}"), e))?,
        }
    }
    let out = child.wait_with_output().map_err(|e| Error::io(format!("cannot read {program}'s answer"), e))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let said = slurm_message(&String::from_utf8_lossy(&out.stderr));
    Err(classify(program, said))
}

/// Slurm's refusals as this project's errors, so the CLIs' exit codes say
/// what kind of failure it was.
fn classify(program: &str, said: String) -> Error {
    let lower = said.to_ascii_lowercase();
    if lower.contains("invalid job id") {
        return Error::InvalidArgument(said);
    }
    if lower.contains("access") && lower.contains("denied") || lower.contains("permission denied") || lower.contains("not authorized") {
        return Error::AccessDenied(format!("Slurm refused: {said}"));
    }
    if lower.contains("unable to contact slurm controller") || lower.contains("connection refused") || lower.contains("socket timed out") {
        return Error::Unreachable(format!("cannot reach Slurm's controller: {said}"));
    }
    if said.is_empty() {
        return Error::InvalidArgument(format!("{program} failed without saying why"));
    }
    Error::InvalidArgument(format!("Slurm refused: {said}"))
}

/// Marks a job submitted. A request HPC Pack computes from the tasks (no
/// /numcores or /numnodes given) is a range of cores, from the largest
/// task to all of them at once; Slurm allocates an exact number, so the
/// job asks for the top of the range, which lets its tasks run side by
/// side as they would on HPC Pack.
fn submit_now(job: &mut Job, tasks: &mut [Task], now: i64) {
    let auto = job.count.is_none();
    Cluster::mark_submitted(job, tasks, now);
    if let (true, crate::model::UnitType::Core, Some(c)) = (auto, job.unit, job.count) {
        let n = c.max.unwrap_or(c.min).max(c.min);
        job.count = Some(crate::model::Range { min: n, max: Some(n) });
    }
}

/// The HPC Pack option each `sbatch` option comes from.
fn option_of(sbatch: &str) -> Option<&'static str> {
    let name = sbatch.strip_prefix("--")?.split('=').next()?;
    Some(match name {
        "nodes" => "/numnodes",
        "ntasks" => "/numcores",
        "partition" | "constraint" => "/nodegroup",
        "exclude" => "/askednodes",
        "exclusive" => "/exclusive",
        "mincpus" => "/corespernode",
        "mem" => "/memorypernode",
        "time" => "/runtime",
        "nice" => "/priority",
        "begin" => "/holduntil",
        "job-name" => "/jobname",
        _ => return None,
    })
}

/// Slurm's refusal of a submission, naming the options it is about: the
/// ones its message points at, else every resource option the job gave.
fn name_options(e: Error, options: &[String]) -> Error {
    let Error::InvalidArgument(m) = e else { return e };
    let lower = m.to_ascii_lowercase();
    let about: &[&str] = if lower.contains("partition") || lower.contains("feature") {
        &["/nodegroup"]
    } else if lower.contains("time limit") {
        &["/runtime"]
    } else if lower.contains("node count") {
        &["/numnodes"]
    } else if lower.contains("processors") || lower.contains("cpu count") {
        &["/numcores", "/corespernode"]
    } else if lower.contains("memory") {
        &["/memorypernode"]
    } else if lower.contains("nice") || lower.contains("priority") {
        &["/priority"]
    } else {
        &["/numnodes", "/numcores", "/corespernode", "/memorypernode", "/nodegroup", "/askednodes", "/exclusive"]
    };
    let given: Vec<String> = options
        .iter()
        .filter_map(|o| option_of(o).filter(|h| about.contains(h)).map(|h| format!("{h} ({o})")))
        .collect();
    if given.is_empty() {
        return Error::InvalidArgument(m);
    }
    Error::InvalidArgument(format!("{m}; the job asks for {}", given.join(", ")))
}

/// `sbatch <args>` with `script` on its standard input: the job id.
fn sbatch(args: &[String], script: &str) -> Result<u64> {
    let out = run("sbatch", args, Some(script))?;
    out.trim().split(';').next().unwrap_or("").parse().map_err(|_| Error::InvalidArgument(format!("sbatch answered '{}', not a job id", out.trim())))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Slurm's jobs: one (none when Slurm no longer knows it) or all of them,
/// as `squeue` prints their fields.
fn squeue(id: Option<u64>) -> Result<Vec<SlurmJob>> {
    let mut args = vec!["--noheader".to_string(), "--all".into(), format!("--format={}", crate::slurm::text::squeue_format())];
    if let Some(id) = id {
        args.push(format!("--jobs={id}"));
    }
    match run("squeue", &args, None) {
        Ok(text) => crate::slurm::text::squeue(&text).map_err(Error::InvalidArgument),
        Err(Error::InvalidArgument(m)) if id.is_some() && m.to_ascii_lowercase().contains("invalid job id") => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Slurm's nodes, and the partitions and features of the cluster, as
/// `sinfo` prints their fields.
fn sinfo() -> Result<(Vec<WireNode>, map::Cluster)> {
    let args = vec!["--Node".to_string(), "--noheader".into(), format!("--format={}", crate::slurm::text::sinfo_format())];
    crate::slurm::text::sinfo(&run("sinfo", &args, None)?).map_err(Error::InvalidArgument)
}

fn millis(secs: Option<i64>) -> Option<i64> {
    secs.map(|s| s * 1000)
}

/// Why a pending job waits, in words (Slurm's reason codes).
fn pending_reason(reason: &str) -> String {
    let why = match reason {
        "" | "None" => return String::new(),
        "Priority" => "other jobs have a higher priority",
        "Resources" => "the nodes it asks for are busy",
        "BeginTime" => "its start time (/holduntil) has not come",
        "Dependency" => "it waits for the jobs it depends on",
        "JobHeldUser" | "JobHeldAdmin" => "it is held",
        "ReqNodeNotAvail" => "a node it asks for is not available (drained, down or reserved)",
        "PartitionNodeLimit" | "PartitionTimeLimit" => "it asks for more than its partition allows",
        "QOSMaxNodePerJobLimit" | "QOSMaxCpuPerJobLimit" | "AssocMaxJobsLimit" | "QOSMaxJobsPerUserLimit" => "a limit of its QOS or account",
        _ => "",
    };
    if why.is_empty() { format!("Slurm: {reason}") } else { format!("{why} (Slurm: {reason})") }
}

/// A job as this backend shows it: the record and Slurm's view together.
struct Seen {
    job: Job,
    tasks: Vec<Task>,
    dir: Option<PathBuf>,
}

/// The record of job `id`, if this user has one.
fn load_record(id: u64) -> Result<Option<(PathBuf, Record)>> {
    let dir = record::dir_of(id);
    match record::load(&dir).map_err(Error::InvalidArgument)? {
        Some(r) => Ok(Some((dir, r))),
        None => Ok(None),
    }
}

fn compose(id: u64, rec: Option<(PathBuf, Record)>, sj: Option<&SlurmJob>) -> Option<Seen> {
    let now = now_millis();
    let (dir, mut job, mut tasks) = match rec {
        Some((dir, r)) => (Some(dir), r.job, r.tasks),
        None => {
            let sj = sj?;
            let uid = sj.uid.unwrap_or(u32::MAX);
            let mut j = Job::new(id, &sj.user, uid, millis(sj.submit_time).unwrap_or(now));
            j.name = sj.name.clone();
            j.submit_time = millis(sj.submit_time);
            j.state = JobState::Queued;
            (None, j, Vec::new())
        }
    };
    job.id = id;
    tasks.iter_mut().for_each(|t| t.job_id = id);
    let progress = dir.as_deref().and_then(|d| record::load_progress(d).ok().flatten());
    if let Some(p) = &progress {
        if !p.tasks.is_empty() {
            tasks = p.tasks.clone();
        }
        job.start_time = p.start_time.or(job.start_time);
        job.allocation = p.nodes.iter().map(|n| NodeAlloc { node: n.clone(), cores: Vec::new() }).collect();
    }
    if let Some(sj) = sj {
        if let Ok(nodes) = crate::slurm::hostlist::expand(&sj.nodes) {
            if !nodes.is_empty() {
                job.allocation = nodes.into_iter().map(|node| NodeAlloc { node, cores: Vec::new() }).collect();
            }
        }
        job.start_time = job.start_time.or(millis(sj.start_time));
    }
    let canceled_message = || {
        dir.as_deref()
            .and_then(|d| std::fs::read_to_string(d.join(record::CANCELED)).ok())
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
    };
    // The runner's record of how the job ended gives way to Slurm's word
    // when Slurm requeued the job (it is pending again: it will run again)
    // or a node failed under it (NODE_FAIL), unless it was canceled here.
    // A runner ended by a signal records Canceled: with the job running
    // again (the next run's runner has not written yet) that is stale.
    let node_failed = sj.is_some_and(|s| s.state.to_ascii_uppercase().starts_with("NODE_FAIL"));
    let slurm_says = sj.map(|s| map::job_state(&s.state));
    let recorded_state = progress.as_ref().and_then(|p| p.state);
    let requeued = slurm_says == Some(JobState::Queued)
        || (slurm_says == Some(JobState::Running) && recorded_state == Some(JobState::Canceled));
    let overruled = recorded_state.is_some() && canceled_message().is_none() && (node_failed || requeued);
    let recorded = progress.as_ref().and_then(|p| p.state.map(|s| (s, p))).filter(|_| !overruled);
    if overruled {
        // As the runner starts a run again: what did not finish runs again
        // (or, after NODE_FAIL, failed with the job, below).
        for t in tasks.iter_mut().filter(|t| t.state != TaskState::Finished) {
            t.state = TaskState::Queued;
            t.error_message.clear();
            t.exit_code = None;
        }
    }
    match (recorded, sj) {
        (Some((state, p)), _) => {
            job.state = state;
            job.end_time = p.end_time;
            job.error_message = p.error_message.clone();
        }
        (None, Some(sj)) => {
            let state = map::job_state(&sj.state);
            match state {
                JobState::Queued if job.state == JobState::Configuring => {}
                JobState::Queued => {
                    job.state = JobState::Queued;
                    job.pending_reason = pending_reason(&sj.reason);
                }
                JobState::Running | JobState::Finishing => job.state = JobState::Running,
                _ => {
                    // Ended without the runner recording it: Slurm's word.
                    job.state = if state == JobState::Finished && !tasks.is_empty() { JobState::Failed } else { state };
                    job.end_time = millis(sj.end_time).or(Some(now));
                    job.error_message = match state {
                        JobState::Canceled => canceled_message().unwrap_or_else(|| "canceled in Slurm (scancel)".into()),
                        JobState::Finished if tasks.is_empty() => String::new(),
                        _ if node_failed => format!(
                            "a node of the job ({}) failed while it ran (Slurm: {}); a task of it is not rerunnable (/rerunnable:false), so it was not requeued",
                            sj.nodes, sj.state
                        ),
                        _ => format!("Slurm ended the job: {} ({})", sj.state, sj.reason),
                    };
                }
            }
        }
        (None, None) => {
            if job.state != JobState::Configuring && !job.state.is_final() {
                job.state = JobState::Failed;
                job.error_message = "Slurm no longer knows this job, and its batch script did not record how it ended".into();
            }
        }
    }
    if job.state.is_final() {
        for t in tasks.iter_mut().filter(|t| !t.state.is_final()) {
            t.state = if job.state == JobState::Canceled { TaskState::Canceled } else { TaskState::Failed };
            t.end_time = job.end_time;
            if t.error_message.is_empty() {
                t.error_message = job.error_message.clone();
            }
        }
    } else if job.state == JobState::Queued {
        // Queued again (requeued by Slurm): what ran, runs again.
        for t in tasks.iter_mut().filter(|t| t.state == TaskState::Configuring || t.state.is_started()) {
            t.state = TaskState::Queued;
        }
    }
    Some(Seen { job, tasks, dir })
}

fn counts(tasks: &[Task]) -> TaskCounts {
    let mut c = TaskCounts { total: tasks.len() as u32, ..Default::default() };
    for t in tasks {
        match t.state {
            TaskState::Configuring => c.configuring += 1,
            TaskState::Finished => c.finished += 1,
            TaskState::Failed => c.failed += 1,
            TaskState::Canceled => c.canceled += 1,
            s if s.is_started() => c.running += 1,
            _ => c.queued += 1,
        }
    }
    c
}

fn names(properties: &[&str]) -> Vec<String> {
    properties.iter().map(|s| s.to_string()).collect()
}

/// The file a task run's output is in.
fn output_file(dir: &Path, t: &Task) -> PathBuf {
    dir.join(record::RUNS).join(format!("{}.{}", t.id, t.attempt)).join(crate::node::supervisor::OUTPUT)
}

/// An `sbatch` option as fields of `scontrol update job`, for bringing a
/// held job's request up to date. A task count is a CPU count too: Slurm
/// keeps the CPUs of the submission when only `NumTasks` changes.
fn update_field(option: &str) -> Option<Vec<String>> {
    let (name, value) = option.strip_prefix("--")?.split_once('=').unwrap_or((option.trim_start_matches('-'), ""));
    let field = match name {
        "ntasks" => return Some(vec![format!("NumTasks={value}"), format!("NumCPUs={value}")]),
        "job-name" => "Name",
        "nodes" => "NumNodes",
        "partition" => "Partition",
        "constraint" => "Features",
        "exclude" => "ExcNodeList",
        "mincpus" => "MinCPUsNode",
        "mem" => "MinMemoryNode",
        "time" => "TimeLimit",
        "nice" => "Nice",
        "begin" => "StartTime",
        "comment" => "Comment",
        "requeue" => return Some(vec!["Requeue=1".into()]),
        "no-requeue" => return Some(vec!["Requeue=0".into()]),
        _ => return None,
    };
    Some(vec![format!("{field}={value}")])
}

/// What resetting an option that is no longer asked for means.
fn reset_field(option: &str) -> Option<Vec<String>> {
    let name = option.strip_prefix("--")?.split('=').next()?;
    if name == "ntasks" {
        return Some(vec!["NumTasks=1".into(), "NumCPUs=1".into()]);
    }
    Some(vec![
        match name {
            "nodes" => "NumNodes=1",
            "constraint" => "Features=",
            "exclude" => "ExcNodeList=",
            "mincpus" => "MinCPUsNode=1",
            "time" => "TimeLimit=UNLIMITED",
            "nice" => "Nice=0",
            "begin" => "StartTime=now",
            "comment" => "Comment=",
            "job-name" => "Name=",
            "requeue" => "Requeue=0",
            "no-requeue" => "Requeue=1",
            _ => return None,
        }
        .to_string(),
    ])
}

impl SlurmBackend {
    /// What the request maps onto: partitions, features and nodes (asked
    /// of Slurm only when the request names some).
    fn cluster_for(&self, job: &Job) -> Result<map::Cluster> {
        let needs = !job.node_groups.is_empty() || !job.requested_nodes.is_empty() || (job.unit == crate::model::UnitType::Node && job.count.is_some_and(|c| c.max.is_none()));
        if !needs {
            return Ok(map::Cluster::default());
        }
        Ok(self.sinfo()?.1)
    }

    /// The `sbatch` options of a job and its tasks so far: its request,
    /// and whether Slurm may requeue it when a node fails (when every task
    /// may run again, `/rerunnable`, HPC Pack's default).
    fn options(&self, job: &Job, tasks: &[Task]) -> Result<Vec<String>> {
        let mut o = map::sbatch_options(job, &self.cluster_for(job)?, crate::node::sys::uid() == 0).map_err(Error::InvalidArgument)?;
        o.push(if tasks.iter().all(|t| t.rerunnable) { "--requeue" } else { "--no-requeue" }.into());
        Ok(o)
    }

    /// Makes the record, submits the batch script (held with `hold`) and
    /// links the record to the id Slurm gave.
    fn create_or_submit(&self, spec: &JobSpec, submit: bool) -> Result<u64> {
        let now = now_millis();
        let uid = crate::node::sys::uid();
        let mut job = Job::new(0, &crate::node::sys::user_name(uid), uid, now);
        props::apply(props::job_props(), &mut job, &spec.properties).map_err(Error::InvalidArgument)?;
        job.env = props::props_env(&spec.env).map_err(Error::InvalidArgument)?;
        job.custom_properties = spec.custom_properties.iter().map(|p| (p.name.clone(), p.value.clone())).collect();
        job.submit_environment = props::submit_environment(&spec.submit_environment).map_err(Error::InvalidArgument)?;
        if submit && spec.tasks.is_empty() {
            return Err(Error::InvalidArgument("a job needs at least one task".into()));
        }
        let mut tasks = Vec::with_capacity(spec.tasks.len());
        for (i, ts) in spec.tasks.iter().enumerate() {
            tasks.push(Cluster::build_task(&job, i as u32 + 1, ts, now)?);
        }
        job.next_task_id = tasks.len() as u32 + 1;
        let options = if submit {
            submit_now(&mut job, &mut tasks, now);
            self.options(&job, &tasks)?
        } else {
            self.options(&Self::probe(&job, &tasks), &tasks)?
        };
        let dir = record::new_dir().map_err(|e| Error::io(format!("cannot create a job record in {}", record::jobs_dir().display()), e))?;
        let rec = Record { job, tasks, slurm_options: options.clone() };
        record::save(&dir, &rec).map_err(Error::InvalidArgument)?;
        let script = crate::slurm::runner::batch_script(&crate::client::local::hpcd_binary(), &dir);
        let mut args = vec!["--parsable".to_string(), format!("--chdir={}", dir.display()), "--output=/dev/null".into(), format!("--error={}", dir.join("runner.log").display())];
        if !submit {
            args.push("--hold".into());
        }
        args.extend(options);
        let id = match self.submit_rest(&script, &args).unwrap_or_else(|| sbatch(&args, &script)) {
            Ok(id) => id,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(name_options(e, &rec.slurm_options));
            }
        };
        // The record keeps id 0: the link names the job, and the runner
        // and every reader take the id from Slurm.
        record::link(id, &dir).map_err(|e| Error::io(format!("cannot link the record of job {id}"), e))?;
        Ok(id)
    }

    /// Submits through slurmrestd when it answers and takes every option
    /// (API v0.0.38, Slurm 22.05, the version tested): one request instead
    /// of starting `sbatch`. `None`: `sbatch` submits it.
    fn submit_rest(&self, script: &str, args: &[String]) -> Option<Result<u64>> {
        let r = self.rest().ok()??;
        if r.version() != "v0.0.38" {
            return None;
        }
        // The environment sbatch would pass (without the token, as `run`).
        let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k != "SLURM_JWT").collect();
        let body = crate::slurm::json::submission_v0038(script, args, &env)?;
        Some(r.post("/job/submit", &body.to_string()).and_then(|answer| {
            crate::slurm::json::submitted(&answer).map_err(|m| classify("slurmrestd", m))
        }))
    }

    /// The job with the request its tasks make so far (as submission
    /// would compute it), for a held job's options.
    fn probe(job: &Job, tasks: &[Task]) -> Job {
        let mut j = job.clone();
        if j.count.is_none() && !tasks.is_empty() {
            let mut t = tasks.to_vec();
            submit_now(&mut j, &mut t, 0);
        }
        j
    }

    fn seen(&self, id: u64) -> Result<Seen> {
        let sj = self.squeue(Some(id))?;
        compose(id, load_record(id)?, sj.iter().find(|j| j.id == id)).ok_or(Error::JobNotFound(id))
    }

    /// The job's own record, for changing it: only this user's jobs have one.
    fn own(&self, id: u64, what: &str) -> Result<(PathBuf, Record)> {
        match load_record(id)? {
            Some(r) => Ok(r),
            None if !self.squeue(Some(id))?.is_empty() => Err(Error::InvalidState(format!(
                "cannot {what} job {id}: it was not submitted with these commands (or by another user); use Slurm's own commands for it"
            ))),
            None => Err(Error::JobNotFound(id)),
        }
    }

    /// [`Self::own`] with the job's state as Slurm and the runner see it
    /// now (from the record read once).
    fn own_seen(&self, id: u64, what: &str) -> Result<(PathBuf, Record, JobState)> {
        let (dir, rec) = self.own(id, what)?;
        let sj = self.squeue(Some(id))?;
        let state = compose(id, Some((dir.clone(), rec.clone())), sj.iter().find(|j| j.id == id)).map_or(rec.job.state, |s| s.job.state);
        Ok((dir, rec, state))
    }

    /// Brings a held or pending job's Slurm request in line with `options`.
    fn update_request(id: u64, old: &[String], new: &[String]) -> Result<()> {
        let mut fields = Vec::new();
        for o in new.iter().filter(|o| !old.contains(o)) {
            fields.extend(update_field(o).ok_or_else(|| {
                Error::InvalidState(format!("cannot change {o} of job {id} once it is in Slurm's queue; give it when the job is made (job new)"))
            })?);
        }
        let name = |o: &String| o.split('=').next().unwrap_or("").to_string();
        for o in old.iter().filter(|o| !new.iter().any(|n| name(n) == name(o))) {
            fields.extend(reset_field(o).ok_or_else(|| {
                Error::InvalidState(format!("cannot drop {o} from job {id} once it is in Slurm's queue"))
            })?);
        }
        if fields.is_empty() {
            return Ok(());
        }
        let mut args = vec!["update".to_string(), format!("JobId={id}")];
        args.extend(fields);
        run("scontrol", &args, None).map(|_| ())
    }

    fn task_of(&self, job: u64, task: u32) -> Result<(Seen, usize)> {
        let s = self.seen(job)?;
        let i = s.tasks.iter().position(|t| t.id == task).ok_or(Error::TaskNotFound(job, task))?;
        Ok((s, i))
    }

    /// Asks the runner of a running job about a task, or changes the
    /// record of a job that has not started.
    fn task_request(&self, job: u64, task: u32, what: Ask, message: &str) -> Result<()> {
        let (s, i) = self.task_of(job, task)?;
        let dir = s.dir.ok_or_else(|| Error::InvalidState(format!("job {job} was not submitted with these commands; use scancel")))?;
        match s.job.state {
            JobState::Running => record::ask(&dir, what, task, message).map_err(Error::InvalidArgument),
            JobState::Configuring | JobState::Queued if what != Ask::Requeue => {
                let (dir, mut rec) = self.own(job, "change a task of")?;
                let t = &mut rec.tasks[i];
                t.state = if what == Ask::Finish { TaskState::Finished } else { TaskState::Canceled };
                t.error_message = message.to_string();
                t.end_time = Some(now_millis());
                record::save(&dir, &rec).map_err(Error::InvalidArgument)
            }
            s => Err(Error::InvalidState(format!("cannot change task {job}.{task}: its job is {s}; on Slurm a task can change while its job is Configuring, Queued or Running"))),
        }
    }
}

impl Backend for SlurmBackend {
    fn submit(&self, spec: &JobSpec) -> Result<u64> {
        self.create_or_submit(spec, !spec.create_only)
    }

    fn create(&self, spec: &JobSpec) -> Result<u64> {
        self.create_or_submit(spec, false)
    }

    fn create_job(&self, props: &[RestProperty], env: &[RestProperty]) -> Result<u64> {
        let spec = JobSpec { properties: props.to_vec(), env: env.to_vec(), create_only: true, ..Default::default() }.from_here();
        self.create_or_submit(&spec, false)
    }

    fn create_job_from_xml(&self, xml: &str) -> Result<u64> {
        let spec = crate::wire::jobxml::parse(xml).map_err(Error::InvalidArgument)?.from_here();
        self.create_or_submit(&spec, false)
    }

    fn add_task(&self, job: u64, props: &[RestProperty], env: &[RestProperty]) -> Result<u32> {
        let (dir, mut rec, state) = self.own_seen(job, "add a task to")?;
        if state != JobState::Configuring {
            return Err(Error::InvalidState(format!(
                "cannot add a task to job {job}: it is {state}; tasks can be added while a job is Configuring (see job new)"
            )));
        }
        let id = rec.job.next_task_id.max(rec.tasks.len() as u32 + 1);
        let t = Cluster::build_task(&rec.job, id, &TaskSpec { properties: props.to_vec(), env: env.to_vec() }, now_millis())?;
        rec.tasks.push(t);
        rec.job.next_task_id = id + 1;
        record::save(&dir, &rec).map_err(Error::InvalidArgument)?;
        Ok(id)
    }

    fn submit_job(&self, job: u64) -> Result<()> {
        let (dir, mut rec) = self.own(job, "submit")?;
        if rec.job.state != JobState::Configuring {
            return Err(Error::InvalidState(format!("cannot submit job {job}: it is {}, and only a Configuring job can be submitted", self.seen(job)?.job.state)));
        }
        if rec.tasks.is_empty() {
            return Err(Error::InvalidState(format!("cannot submit job {job}: it has no tasks; add one with job add {job} <command>")));
        }
        let now = now_millis();
        submit_now(&mut rec.job, &mut rec.tasks, now);
        let options = self.options(&rec.job, &rec.tasks)?;
        Self::update_request(job, &rec.slurm_options, &options)?;
        rec.slurm_options = options;
        record::save(&dir, &rec).map_err(Error::InvalidArgument)?;
        run("scontrol", &["release".to_string(), job.to_string()], None).map(|_| ())
    }

    fn job(&self, id: u64, properties: &[&str]) -> Result<Vec<RestProperty>> {
        let s = self.seen(id)?;
        props::read_job(&s.job, &counts(&s.tasks), &names(properties)).map_err(Error::InvalidArgument)
    }

    fn jobs(&self, q: &JobQuery) -> Result<Vec<Vec<RestProperty>>> {
        let queue = self.squeue(None)?;
        let mut ids: Vec<u64> = queue.iter().map(|j| j.id).collect();
        // Jobs Slurm forgot: this user's records.
        if let Ok(entries) = std::fs::read_dir(record::jobs_dir()) {
            for e in entries.flatten() {
                if let Ok(id) = e.file_name().to_string_lossy().parse::<u64>() {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        ids.sort_unstable();
        let want: Vec<String> = q.properties.clone();
        let mut out = Vec::new();
        for id in ids {
            let sj = queue.iter().find(|j| j.id == id);
            let Some(s) = compose(id, load_record(id).ok().flatten(), sj) else { continue };
            if !q.states.is_empty() && !q.states.iter().any(|st| st.eq_ignore_ascii_case(s.job.state.as_str())) {
                continue;
            }
            if q.owner.as_deref().is_some_and(|o| !o.eq_ignore_ascii_case(&s.job.owner)) {
                continue;
            }
            out.push(props::read_job(&s.job, &counts(&s.tasks), &want).map_err(Error::InvalidArgument)?);
        }
        Ok(out)
    }

    fn modify_job(&self, id: u64, props_in: &[RestProperty], env: &[RestProperty]) -> Result<()> {
        let (dir, mut rec, state) = self.own_seen(id, "modify")?;
        if !matches!(state, JobState::Configuring | JobState::Queued) {
            return Err(Error::InvalidState(format!(
                "cannot modify job {id}: it is {state}; on Slurm a job can change while it is Configuring or Queued"
            )));
        }
        props::apply(props::job_props(), &mut rec.job, props_in).map_err(Error::InvalidArgument)?;
        crate::model::values::merge_env(&mut rec.job.env, &props::props_env(env).map_err(Error::InvalidArgument)?);
        let options = self.options(&Self::probe(&rec.job, &rec.tasks), &rec.tasks)?;
        Self::update_request(id, &rec.slurm_options, &options)?;
        rec.slurm_options = options;
        record::save(&dir, &rec).map_err(Error::InvalidArgument)
    }

    fn cancel_job(&self, id: u64, message: &str) -> Result<()> {
        let s = self.seen(id)?;
        if s.job.state.is_final() {
            return Err(Error::InvalidState(format!("cannot cancel job {id}: it is {} already", s.job.state)));
        }
        if let Some(dir) = &s.dir {
            let message = if message.is_empty() { format!("canceled by {}", crate::node::sys::user_name(crate::node::sys::uid())) } else { message.to_string() };
            crate::node::supervisor::write_atomic(&dir.join(record::CANCELED), message.as_bytes(), false)
                .map_err(|e| Error::io("cannot record the cancel message".to_string(), e))?;
        }
        run("scancel", &[id.to_string()], None).map(|_| ())
    }

    fn finish_job(&self, id: u64, _message: &str) -> Result<()> {
        Err(Error::InvalidState(format!(
            "cannot finish job {id} on Slurm: Slurm can only cancel a job; use job cancel {id}, or finish its tasks with task finish"
        )))
    }

    fn requeue_job(&self, id: u64) -> Result<()> {
        let s = self.seen(id)?;
        Err(Error::InvalidState(format!(
            "cannot requeue job {id} (it is {}) on Slurm: submit it again (a Slurm requeue would run every task again); its tasks can be requeued while it runs (task requeue)",
            s.job.state
        )))
    }

    fn wait_job(&self, id: u64, timeout_secs: f64, properties: &[&str]) -> Result<Vec<RestProperty>> {
        let deadline = std::time::Instant::now() + Duration::from_secs_f64(timeout_secs.max(0.0));
        let mut pause = Duration::from_millis(50);
        loop {
            let s = self.seen(id)?;
            if s.job.state.is_final() || std::time::Instant::now() >= deadline {
                return props::read_job(&s.job, &counts(&s.tasks), &names(properties)).map_err(Error::InvalidArgument);
            }
            std::thread::sleep(pause.min(deadline.saturating_duration_since(std::time::Instant::now())));
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    fn tasks(&self, job: u64, properties: &[&str]) -> Result<Vec<Vec<RestProperty>>> {
        let s = self.seen(job)?;
        let want = names(properties);
        s.tasks
            .iter()
            .map(|t| {
                let out = s.dir.as_deref().map(|d| crate::head::api::output_property(&output_file(d, t)));
                props::read_task(t, out.as_deref(), &want).map_err(Error::InvalidArgument)
            })
            .collect()
    }

    fn task(&self, job: u64, task: u32, properties: &[&str]) -> Result<Vec<RestProperty>> {
        let (s, i) = self.task_of(job, task)?;
        let t = &s.tasks[i];
        let out = s.dir.as_deref().map(|d| crate::head::api::output_property(&output_file(d, t)));
        props::read_task(t, out.as_deref(), &names(properties)).map_err(Error::InvalidArgument)
    }

    fn task_output(&self, job: u64, task: u32, offset: u64) -> Result<Option<Box<dyn std::io::Read>>> {
        use std::io::Seek;
        let (s, i) = self.task_of(job, task)?;
        let Some(dir) = s.dir else { return Ok(None) };
        match std::fs::File::open(output_file(&dir, &s.tasks[i])) {
            Ok(mut f) => {
                f.seek(std::io::SeekFrom::Start(offset)).map_err(|e| Error::io("cannot read the task's output", e))?;
                Ok(Some(Box::new(f)))
            }
            Err(_) => Ok(Some(Box::new(std::io::empty()))),
        }
    }

    fn cancel_task(&self, job: u64, task: u32, message: &str) -> Result<()> {
        self.task_request(job, task, Ask::Cancel, message)
    }

    fn finish_task(&self, job: u64, task: u32, message: &str) -> Result<()> {
        self.task_request(job, task, Ask::Finish, message)
    }

    fn requeue_task(&self, job: u64, task: u32) -> Result<()> {
        self.task_request(job, task, Ask::Requeue, "")
    }

    fn nodes(&self, group: Option<&str>) -> Result<Vec<WireNode>> {
        let all = self.sinfo()?.0;
        match group {
            None => Ok(all),
            Some(g) => {
                let v: Vec<WireNode> = all.into_iter().filter(|n| n.groups.iter().any(|x| x.eq_ignore_ascii_case(g))).collect();
                if v.is_empty() && !self.node_groups()?.iter().any(|x| x.name.eq_ignore_ascii_case(g)) {
                    return Err(Error::GroupNotFound(g.to_string()));
                }
                Ok(v)
            }
        }
    }

    fn node(&self, name: &str) -> Result<WireNode> {
        self.nodes(None)?.into_iter().find(|n| n.name.eq_ignore_ascii_case(name)).ok_or_else(|| Error::NodeNotFound(name.to_string()))
    }

    fn node_operation(&self, name: &str, operation: &str, force: bool) -> Result<()> {
        let node = self.node(name)?;
        let user = crate::node::sys::user_name(crate::node::sys::uid());
        let mut args = vec!["update".to_string(), format!("NodeName={}", node.name)];
        match operation {
            "bringOnline" => args.push("State=RESUME".into()),
            _ => {
                args.push(if force { "State=DOWN".into() } else { "State=DRAIN".into() });
                args.push(format!("Reason=taken offline by {user} (node offline)"));
            }
        }
        match run("scontrol", &args, None) {
            // Resuming a node that is not drained or down: it is online.
            Err(Error::InvalidArgument(m)) if operation == "bringOnline" && m.to_ascii_lowercase().contains("invalid node state") => Ok(()),
            r => r.map(|_| ()),
        }
    }

    fn node_groups(&self) -> Result<Vec<WireNodeGroup>> {
        let c = self.sinfo()?.1;
        let mut groups = vec![WireNodeGroup { name: crate::model::COMPUTE_NODES.into(), description: "every node of the Slurm cluster".into(), managed: true }];
        for p in &c.partitions {
            groups.push(WireNodeGroup { name: p.clone(), description: "a Slurm partition".into(), managed: true });
        }
        for f in c.features.iter().filter(|f| !c.partitions.contains(f)) {
            groups.push(WireNodeGroup { name: f.clone(), description: "a Slurm node feature".into(), managed: true });
        }
        Ok(groups)
    }

    fn group_nodes(&self, group: &str) -> Result<Vec<String>> {
        // An unknown group is GroupNotFound there.
        Ok(self.nodes(Some(group))?.into_iter().map(|n| n.name).collect())
    }

    fn templates(&self) -> Result<Vec<String>> {
        Ok(vec![crate::model::DEFAULT_TEMPLATE.into()])
    }

    fn template(&self, name: &str) -> Result<WireTemplate> {
        if !name.eq_ignore_ascii_case(crate::model::DEFAULT_TEMPLATE) {
            return Err(no_templates());
        }
        Ok(WireTemplate::of(&crate::model::JobTemplate::default_template()))
    }

    fn put_template(&self, _: &str, _: &str, _: bool) -> Result<WireTemplate> {
        Err(no_templates())
    }

    fn delete_template(&self, _: &str) -> Result<()> {
        Err(no_templates())
    }

    fn template_submitters(&self, _: &str, _: bool, _: &[String]) -> Result<WireTemplate> {
        Err(no_templates())
    }

    fn create_group(&self, _: &WireNodeGroup) -> Result<WireNodeGroup> {
        Err(read_only_groups())
    }

    fn update_group(&self, _: &WireNodeGroup) -> Result<WireNodeGroup> {
        Err(read_only_groups())
    }

    fn delete_group(&self, _: &str) -> Result<()> {
        Err(read_only_groups())
    }

    fn move_group_nodes(&self, _: &str, _: bool, _: &[String]) -> Result<Vec<String>> {
        Err(read_only_groups())
    }

    fn cores(&self) -> Result<Vec<WireCore>> {
        let mut out = Vec::new();
        for n in self.nodes(None)? {
            for c in 0..n.cores {
                let state = if c < n.cores_in_use { "Busy" } else { "Idle" };
                out.push(WireCore { node_name: n.name.clone(), core_id: c, state: state.into(), job_id: None, task_id: None });
            }
        }
        Ok(out)
    }

    fn cluster_env(&self) -> Result<Vec<RestProperty>> {
        let mut env = vec![RestProperty::new(crate::env::CCP_CLUSTER_NAME, "slurm")];
        env.extend(record::cluster_env().map_err(Error::InvalidArgument)?.into_iter().map(|(k, v)| RestProperty::new(k, v)));
        Ok(env)
    }

    fn set_cluster_env(&self, vars: &[RestProperty]) -> Result<()> {
        let mut env = record::cluster_env().map_err(Error::InvalidArgument)?;
        crate::model::values::merge_env(&mut env, &props::props_env(vars).map_err(Error::InvalidArgument)?);
        record::save_cluster_env(&env).map_err(Error::InvalidArgument)
    }

    fn cluster_version(&self) -> Result<String> {
        Ok(run("sinfo", &strings(&["--version"]), None)?.trim().to_string())
    }

    fn active_head_node(&self) -> Result<String> {
        // "Slurmctld(primary) at head is UP"
        let out = run("scontrol", &strings(&["ping"]), None)?;
        let up = out.lines().find(|l| l.contains(" is UP")).unwrap_or(out.lines().next().unwrap_or(""));
        Ok(up.split(" at ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("slurmctld").to_string())
    }

    fn status(&self) -> Result<WireStatus> {
        let nodes = self.nodes(None)?.len() as u32;
        Ok(WireStatus {
            version: self.cluster_version()?,
            cluster_name: "slurm".into(),
            pid: 0,
            started: String::new(),
            state_dir: record::jobs_dir().display().to_string(),
            nodes,
            jobs: self.squeue(None)?.len() as u64,
            config_files: Vec::new(),
            node_group_layout: Vec::new(),
        })
    }

    fn shutdown(&self) -> Result<()> {
        Err(Error::InvalidState("a Slurm cluster is not shut down from here: stop slurmctld as its administrators do".into()))
    }
}

/// Slurm has partitions and QOS where HPC Pack has job templates.
fn no_templates() -> Error {
    Error::InvalidState(
        "on Slurm, jobs have the template Default only: Slurm's limits and defaults live in its partitions and QOS \
         (slurm.conf, sacctmgr); use /nodegroup for a partition"
            .into(),
    )
}

/// Node groups on Slurm are what slurm.conf and the nodes say.
fn read_only_groups() -> Error {
    Error::InvalidState(
        "on Slurm, node groups are its partitions and node features, which this command cannot change: \
         edit the partitions in slurm.conf (then scontrol reconfigure), or set features with \
         scontrol update NodeName=<node> AvailableFeatures=<list>"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurms_errors_are_one_line_without_the_prefix() {
        let e = "sbatch: error: Batch job submission failed: Invalid partition name specified\n";
        assert_eq!(slurm_message(e), "Invalid partition name specified");
        assert_eq!(slurm_message("squeue: error: Invalid job id specified\n"), "Invalid job id specified");
        assert!(matches!(classify("scontrol", "Access/permission denied".into()), Error::AccessDenied(_)));
    }

    #[test]
    fn options_become_update_fields() {
        assert_eq!(update_field("--nodes=2-3"), Some(vec!["NumNodes=2-3".to_string()]));
        assert_eq!(update_field("--ntasks=4"), Some(vec!["NumTasks=4".to_string(), "NumCPUs=4".to_string()]));
        assert_eq!(update_field("--comment=a b"), Some(vec!["Comment=a b".to_string()]));
        assert_eq!(update_field("--exclusive"), None);
        assert_eq!(reset_field("--nodes=3"), Some(vec!["NumNodes=1".to_string()]));
        assert_eq!(reset_field("--partition=p"), None, "the default partition is Slurm's to know");
    }

    fn submitted(now: i64) -> (Job, Vec<Task>) {
        let mut job = Job::new(7, "u", 1000, now);
        let mut t = Task::new(7, 1, now);
        t.command_line = "hostname".into();
        let mut tasks = vec![t];
        Cluster::mark_submitted(&mut job, &mut tasks, now);
        (job, tasks)
    }

    /// Once Slurm forgot a job (no squeue entry), the record alone says
    /// what became of it: the runner's end, or, without one, Failed.
    #[test]
    fn a_job_slurm_forgot_is_seen_from_its_record() {
        let d = tempfile::tempdir().unwrap();
        let (job, tasks) = submitted(1000);
        let rec = Record { job, tasks, slurm_options: Vec::new() };
        let seen = compose(7, Some((d.path().to_path_buf(), rec.clone())), None).unwrap();
        assert_eq!(seen.job.state, JobState::Failed);
        assert!(seen.job.error_message.contains("Slurm no longer knows this job"), "{}", seen.job.error_message);
        assert_eq!(seen.tasks[0].state, TaskState::Failed);

        let mut done = rec.tasks.clone();
        done[0].state = TaskState::Finished;
        done[0].exit_code = Some(0);
        let p = record::Progress { state: Some(JobState::Finished), start_time: Some(2000), end_time: Some(3000), nodes: vec!["node1".into()], tasks: done, ..Default::default() };
        record::save_progress(d.path(), &p).unwrap();
        let seen = compose(7, Some((d.path().to_path_buf(), rec.clone())), None).unwrap();
        assert_eq!((seen.job.state, seen.job.end_time), (JobState::Finished, Some(3000)));
        assert_eq!(seen.tasks[0].state, TaskState::Finished);
        assert_eq!(seen.job.allocation[0].node, "node1");

        // Slurm still knows it, pending: Queued with the reason in words.
        std::fs::remove_file(d.path().join(record::PROGRESS)).unwrap();
        let sj = SlurmJob { id: 7, state: "PENDING".into(), reason: "Resources".into(), ..Default::default() };
        let seen = compose(7, Some((d.path().to_path_buf(), rec)), Some(&sj)).unwrap();
        assert_eq!(seen.job.state, JobState::Queued);
        assert!(seen.job.pending_reason.contains("(Slurm: Resources)"));
        // A job of someone else's (no record): Slurm's view alone.
        let other = SlurmJob { id: 8, user: "bob".into(), name: "x".into(), state: "RUNNING".into(), nodes: "node[1-2]".into(), ..Default::default() };
        let seen = compose(8, None, Some(&other)).unwrap();
        assert_eq!((seen.job.state, seen.job.owner.as_str(), seen.job.allocation.len()), (JobState::Running, "bob", 2));
        assert!(compose(9, None, None).is_none());
    }

    #[test]
    fn pending_reasons_in_words() {
        assert_eq!(pending_reason("None"), "");
        assert_eq!(pending_reason("Resources"), "the nodes it asks for are busy (Slurm: Resources)");
        assert_eq!(pending_reason("Odd"), "Slurm: Odd");
    }
}

