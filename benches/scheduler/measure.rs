//! The measurements, written once against [`Side`] so that both schedulers are measured by
//! the same code: same job counts, same timers, same polling.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};

use crate::proc;

/// What the bench reports, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// N trivial jobs through the CLI, one process after the other.
    CliSubmit,
    /// The same N jobs from several submitting processes at once.
    CliSubmitParallel,
    /// N trivial jobs through the REST API, one client, one job after the other.
    /// Ours: HPC Pack's three calls per job (create, add task, submit).
    RestSubmit,
    /// The same with one call per job. Ours: the `/hpcpack/v1/jobs` extension;
    /// Slurm's submission is one call already.
    RestSubmitOne,
    /// Median time from starting the CLI submission to the job's state being final.
    SubmitToFinish,
    /// M trivial jobs submitted at once (REST), until the last one has finished.
    RunThrough,
    /// Whole-process time of `job view <id>` (Slurm: `scontrol show job <id>`).
    JobView,
    /// Whole-process time of `task view <id>.1` (no Slurm counterpart).
    TaskView,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::CliSubmit,
        Metric::CliSubmitParallel,
        Metric::RestSubmit,
        Metric::RestSubmitOne,
        Metric::SubmitToFinish,
        Metric::RunThrough,
        Metric::JobView,
        Metric::TaskView,
    ];

    /// The goal, as "ours is at least this many times better than Slurm".
    pub fn goal(self) -> Option<f64> {
        match self {
            Metric::CliSubmit
            | Metric::CliSubmitParallel
            | Metric::RestSubmit
            | Metric::RestSubmitOne
            | Metric::SubmitToFinish => Some(10.0),
            Metric::RunThrough | Metric::JobView | Metric::TaskView => None,
        }
    }
}

/// Jobs done in some wall time.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub jobs: usize,
    pub elapsed: Duration,
}

impl Rate {
    pub fn per_sec(&self) -> f64 {
        self.jobs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Latency samples, sorted.
#[derive(Clone, Debug)]
pub struct Stats(Vec<Duration>);

impl Stats {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Stats(samples)
    }
    fn quantile(&self, q: f64) -> Duration {
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[i]
    }
    pub fn median(&self) -> Duration {
        self.quantile(0.5)
    }
    pub fn p90(&self) -> Duration {
        self.quantile(0.9)
    }
    pub fn min(&self) -> Duration {
        self.0[0]
    }
    pub fn max(&self) -> Duration {
        self.0[self.0.len() - 1]
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

#[derive(Clone, Debug)]
pub enum Value {
    Rate(Rate),
    Latency(Stats),
}

/// A job's state as seen through the REST API.
pub enum Progress {
    Active,
    Finished,
    /// Final but not successful; the scheduler's state name.
    Ended(String),
}

/// One scheduler under test.
pub trait Side: Sync {
    /// Submits one trivial 1-core job (`true`) through the CLI, one process, as a user's
    /// script would; returns its id.
    fn cli_submit(&self) -> Result<u64>;
    /// Submits one trivial 1-core job through the REST API; returns its id.
    fn rest_submit(&self) -> Result<u64>;
    /// Submits one trivial 1-core job with a single REST call.
    fn rest_submit_one(&self) -> Result<u64> {
        self.rest_submit()
    }
    /// One REST query of the job's state.
    fn progress(&self, id: u64) -> Result<Progress>;
    /// Brings the cluster back to idle after `ids` were submitted, within `timeout`.
    fn settle(&self, ids: &[u64], timeout: Duration) -> Result<()>;
    /// The status commands to time for job `id`, with the metric each one stands for.
    fn view_commands(&self, id: u64) -> Vec<(Metric, Command)>;
}

/// How much work to do.
#[derive(Clone, Debug)]
pub struct Plan {
    pub jobs: usize,
    pub procs: usize,
    pub latency_runs: usize,
    pub view_runs: usize,
    pub run_jobs: usize,
    /// Time budget of each phase (and of each wait for the cluster to be idle).
    pub timeout: Duration,
    /// Polling interval for the submit-to-finish latency.
    pub poll: Duration,
}

/// Polling interval while waiting for many jobs (coarser, to load the server less).
const BATCH_POLL: Duration = Duration::from_millis(5);
/// Time limit of one CLI command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What one side produced.
#[derive(Debug, Default)]
pub struct Results {
    pub values: BTreeMap<Metric, Value>,
    pub notes: Vec<String>,
    pub failed: bool,
}

impl Results {
    pub fn failure(note: String) -> Self {
        Results {
            values: BTreeMap::new(),
            notes: vec![note],
            failed: true,
        }
    }
}

/// Runs every phase on `side`. The first error ends the side's run; what was measured until
/// then is kept and the error becomes a note.
pub fn measure(name: &str, side: &dyn Side, plan: &Plan) -> Results {
    let mut results = Results::default();
    if let Err(e) = phases(name, side, plan, &mut results) {
        results.notes.push(format!("stopped early: {e:#}"));
        results.failed = true;
    }
    results
}

fn phases(name: &str, side: &dyn Side, plan: &Plan, r: &mut Results) -> Result<()> {
    let say = |what: &str| eprintln!("[{name}] {what}");

    say(&format!("CLI submission: {} jobs, 1 process", plan.jobs));
    let batch = submit_batch(plan.jobs, 1, plan.timeout, &|| side.cli_submit())?;
    record_batch(r, Metric::CliSubmit, &batch, plan.jobs);
    settle(side, &batch.ids, plan, &say)?;

    if plan.procs > 1 {
        say(&format!(
            "CLI submission: {} jobs, {} processes",
            plan.jobs, plan.procs
        ));
        let batch = submit_batch(plan.jobs, plan.procs, plan.timeout, &|| side.cli_submit())?;
        record_batch(r, Metric::CliSubmitParallel, &batch, plan.jobs);
        settle(side, &batch.ids, plan, &say)?;
    }

    say(&format!("REST submission: {} jobs", plan.jobs));
    let batch = submit_batch(plan.jobs, 1, plan.timeout, &|| side.rest_submit())?;
    record_batch(r, Metric::RestSubmit, &batch, plan.jobs);
    settle(side, &batch.ids, plan, &say)?;

    say(&format!("REST submission, one call per job: {} jobs", plan.jobs));
    let batch = submit_batch(plan.jobs, 1, plan.timeout, &|| side.rest_submit_one())?;
    record_batch(r, Metric::RestSubmitOne, &batch, plan.jobs);
    settle(side, &batch.ids, plan, &say)?;

    say(&format!(
        "submit-to-finish latency: {} jobs, one at a time",
        plan.latency_runs
    ));
    let (stats, last_id) = submit_to_finish(side, plan)?;
    r.values
        .insert(Metric::SubmitToFinish, Value::Latency(stats));

    say(&format!("status commands: {} runs each", plan.view_runs));
    for (metric, stats) in view_latency(side, last_id, plan.view_runs)? {
        r.values.insert(metric, Value::Latency(stats));
    }

    if plan.run_jobs > 0 {
        say(&format!(
            "run-through: {} jobs submitted together, until all have finished",
            plan.run_jobs
        ));
        r.values
            .insert(Metric::RunThrough, Value::Rate(run_through(side, plan)?));
    }
    Ok(())
}

fn settle(side: &dyn Side, ids: &[u64], plan: &Plan, say: &dyn Fn(&str)) -> Result<()> {
    say("waiting for the cluster to be idle");
    side.settle(ids, plan.timeout)
}

/// Jobs submitted by one phase.
struct Batch {
    rate: Rate,
    ids: Vec<u64>,
}

fn record_batch(r: &mut Results, metric: Metric, batch: &Batch, wanted: usize) {
    if batch.ids.len() < wanted {
        r.notes.push(format!(
            "{metric:?}: time budget ran out after {} of {wanted} jobs; the rate is over those",
            batch.ids.len()
        ));
    }
    r.values.insert(metric, Value::Rate(batch.rate));
}

/// Calls `submit` `n` times, split over `procs` threads (each one submitting sequentially),
/// and times the whole. Stops early, keeping what was done, when `budget` runs out.
fn submit_batch(
    n: usize,
    procs: usize,
    budget: Duration,
    submit: &(dyn Fn() -> Result<u64> + Sync),
) -> Result<Batch> {
    let start = Instant::now();
    let deadline = start + budget;
    let stop = AtomicBool::new(false);
    let shares: Vec<usize> = (0..procs)
        .map(|i| n / procs + usize::from(i < n % procs))
        .collect();
    let per_thread: Vec<Result<Vec<u64>>> = thread::scope(|s| {
        let handles: Vec<_> = shares
            .iter()
            .map(|&share| {
                let stop = &stop;
                s.spawn(move || {
                    let mut ids = Vec::with_capacity(share);
                    while ids.len() < share
                        && !stop.load(Ordering::Relaxed)
                        && Instant::now() < deadline
                    {
                        match submit().and_then(|id| proc::check_interrupt().map(|()| id)) {
                            Ok(id) => ids.push(id),
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(ids)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a submitting thread panicked"))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut ids = Vec::with_capacity(n);
    for r in per_thread {
        ids.extend(r?);
    }
    ensure!(!ids.is_empty(), "no job was submitted within {budget:?}");
    Ok(Batch {
        rate: Rate {
            jobs: ids.len(),
            elapsed,
        },
        ids,
    })
}

/// Pause before latency run `i`: spread over [0, 1 s) by the golden ratio, so that the
/// submissions land at every phase of a scheduler's periodic passes (Slurm's main loop ticks
/// once a second) rather than always at the same one.
fn phase_gap(i: usize) -> Duration {
    Duration::from_secs_f64((i as f64 * 0.618_033_988_75).fract())
}

/// Median over `plan.latency_runs` of: start the CLI submission of one job, then poll its
/// state through REST every `plan.poll` until it is final. The cluster is idle throughout.
fn submit_to_finish(side: &dyn Side, plan: &Plan) -> Result<(Stats, u64)> {
    let mut samples = Vec::with_capacity(plan.latency_runs);
    let mut last = 0;
    for i in 0..plan.latency_runs.max(1) {
        thread::sleep(phase_gap(i));
        proc::check_interrupt()?;
        let t0 = Instant::now();
        let id = side.cli_submit()?;
        wait_one(
            side,
            id,
            plan.timeout.min(Duration::from_secs(120)),
            plan.poll,
        )?;
        samples.push(t0.elapsed());
        last = id;
    }
    Ok((Stats::new(samples), last))
}

/// Polls one job until it is final; fails unless it finished successfully.
fn wait_one(side: &dyn Side, id: u64, timeout: Duration, poll: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match side.progress(id)? {
            Progress::Finished => return Ok(()),
            Progress::Ended(state) => bail!("job {id} ended {state}, not finished"),
            Progress::Active => {}
        }
        proc::check_interrupt()?;
        ensure!(
            Instant::now() < deadline,
            "job {id} was not final after {timeout:?}"
        );
        thread::sleep(poll);
    }
}

/// Waits until every job in `ids` is final, polling the oldest unfinished one. Returns when
/// the last one was seen final; fails on timeout or if any job did not finish successfully.
pub fn wait_all(side: &dyn Side, ids: &[u64], timeout: Duration) -> Result<Instant> {
    let deadline = Instant::now() + timeout;
    let mut pending = ids.iter().copied().peekable();
    let mut failed = Vec::new();
    while let Some(&id) = pending.peek() {
        match side.progress(id)? {
            Progress::Finished => {
                pending.next();
                continue;
            }
            Progress::Ended(state) => {
                failed.push(format!("{id} {state}"));
                pending.next();
                continue;
            }
            Progress::Active => {}
        }
        proc::check_interrupt()?;
        if Instant::now() >= deadline {
            bail!(
                "{} of {} jobs were still not final after {timeout:?}",
                pending.count(),
                ids.len()
            );
        }
        thread::sleep(BATCH_POLL);
    }
    let done = Instant::now();
    ensure!(
        failed.is_empty(),
        "{} of {} trivial jobs did not finish successfully (e.g. job {})",
        failed.len(),
        ids.len(),
        failed[0]
    );
    Ok(done)
}

/// Times each status command of `side` `runs` times, as whole processes.
fn view_latency(side: &dyn Side, id: u64, runs: usize) -> Result<Vec<(Metric, Stats)>> {
    let mut out = Vec::new();
    for (metric, mut cmd) in side.view_commands(id) {
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let t0 = Instant::now();
            proc::run_ok(&mut cmd, COMMAND_TIMEOUT)?;
            samples.push(t0.elapsed());
        }
        out.push((metric, Stats::new(samples)));
    }
    Ok(out)
}

/// Submits `plan.run_jobs` jobs through REST as fast as possible and times from the first
/// submission until all have finished: how fast the scheduler gets trivial work done.
fn run_through(side: &dyn Side, plan: &Plan) -> Result<Rate> {
    let start = Instant::now();
    let batch = submit_batch(plan.run_jobs, 1, plan.timeout, &|| side.rest_submit())?;
    let done = wait_all(side, &batch.ids, plan.timeout)?;
    Ok(Rate {
        jobs: batch.ids.len(),
        elapsed: done - start,
    })
}
