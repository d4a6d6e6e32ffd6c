//! Scheduler benchmark: our head node (`hpcd`) against Slurm, same work, same machine.
//!
//! ```text
//! cargo build --release && cargo bench --bench scheduler -- [--with-slurm] [--install] [--jobs N]
//! ```
//!
//! It builds nothing: it drives the release binaries `job`, `task` and `hpcd`
//! (`$HPCPACK_BIN_DIR`, else `target/release`). Our side is an embedded head node started with
//! `hpcd local start` in a fresh `HPCPACK_STATE_DIR`; the Slurm side (with `--with-slurm` or
//! `HPCPACK_BENCH_SLURM=1`; root only) is the one-machine cluster of `benches/slurm/start.sh`.
//! The two never run at the same time. On each side, in this order:
//!
//! 1. CLI submission throughput: N trivial jobs (`job submit /numcores:1 true`; Slurm:
//!    `sbatch --wrap=true -n1 -o /dev/null`), one process per job, one after the other; then
//!    the same N split over 8 submitting processes at once (`--procs`).
//! 2. REST submission throughput: N jobs through one keep-alive client, one after the other.
//!    Ours: `POST /hpc/jobs`, `POST /hpc/jobs/{id}/tasks`, `POST /hpc/jobs/{id}/submit` over
//!    the Unix socket `<state>/hpcd.sock`; Slurm: `POST /slurm/v0.0.38/job/submit` with a JWT.
//! 3. Submit-to-finish latency, median of 20 runs on an idle cluster: from starting the CLI
//!    submission until a REST poll every 2 ms (`GET /hpc/jobs/{id}?properties=State`; Slurm:
//!    `GET /slurm/v0.0.38/job/{id}`) sees the job final. Runs are spaced by pauses spread over
//!    [0, 1 s) so they sample every phase of Slurm's once-a-second scheduling loop.
//! 4. Status command latency, median of 50 whole-process runs: `job view <id>` and
//!    `task view <id>.1`; Slurm: `scontrol show job <id>`.
//! 5. Run-through: M jobs (default 100) submitted together through REST, timed until the last
//!    one has finished; trivial jobs executed per second.
//!
//! Between phases the cluster is brought back to idle: our head node runs every job to the end;
//! Slurm's leftover jobs are cancelled (`scancel`), because it starts only about one job per
//! core per second here and running thousands would take many minutes.
//! Every loop is bounded: by its count, by `--timeout` per phase, and by 30 s per command.
//! The table shows each metric, both values, the ratio (above 1: we are faster) and the goal of
//! the issue: submission throughput at least 10x Slurm's, submit-to-finish latency at most a
//! tenth of Slurm's.

// A bench's root file resolves modules next to itself, hence the paths.
#[path = "common.rs"]
mod common;
#[path = "scheduler/headnode.rs"]
mod headnode;
#[path = "scheduler/measure.rs"]
mod measure;
#[path = "scheduler/proc.rs"]
mod proc;
#[path = "scheduler/report.rs"]
mod report;
#[path = "scheduler/slurm.rs"]
mod slurm;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use clap::builder::BoolishValueParser;

use measure::{Plan, Results};
use report::Column;

/// Compare hpcpack's head node with Slurm on trivial jobs (run with `cargo bench --bench scheduler --`).
#[derive(Parser, Debug)]
#[command(name = "scheduler")]
struct Args {
    /// Also measure a one-machine Slurm cluster (benches/slurm/start.sh; needs root)
    #[arg(long, env = "HPCPACK_BENCH_SLURM", action = clap::ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    with_slurm: bool,
    /// Install Slurm's Debian packages if they are missing (apt-get)
    #[arg(long, env = "HPCPACK_BENCH_INSTALL", action = clap::ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    install: bool,
    /// Jobs per submission-throughput phase
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    /// Submitting processes in the parallel CLI phase (0 or 1: skip that phase)
    #[arg(long, default_value_t = 8)]
    procs: usize,
    /// Jobs timed one at a time for the submit-to-finish latency
    #[arg(long, default_value_t = 20)]
    latency_runs: usize,
    /// Runs of each status command
    #[arg(long, default_value_t = 50)]
    view_runs: usize,
    /// Jobs in the run-through phase (0: skip it)
    #[arg(long, default_value_t = 100)]
    run_jobs: usize,
    /// Time budget of each phase and of each wait for an idle cluster, in seconds
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Polling interval of the submit-to-finish latency, in milliseconds
    #[arg(long, default_value_t = 2)]
    poll_ms: u64,
    /// Measure Slurm only (e.g. while the head node does not build)
    #[arg(long)]
    skip_hpcpack: bool,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

impl Args {
    fn plan(&self) -> Plan {
        Plan {
            jobs: self.jobs.max(1),
            procs: self.procs,
            latency_runs: self.latency_runs.max(1),
            view_runs: self.view_runs.max(1),
            run_jobs: self.run_jobs,
            timeout: Duration::from_secs(self.timeout.max(1)),
            poll: Duration::from_millis(self.poll_ms),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    proc::catch_interrupt();
    // reqwest is built with `rustls-no-provider`: it needs a process-wide provider even for
    // plain HTTP. Failing means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("scheduler bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<ExitCode> {
    let plan = args.plan();
    let (cpus, load) = common::warn_if_busy();
    let ours = (!args.skip_hpcpack)
        .then(|| run_hpcpack(&plan))
        .transpose()?;
    let (slurm_name, theirs) = if args.with_slurm {
        run_slurm(&plan, args.install)?
    } else {
        ("Slurm".into(), None)
    };
    if !args.with_slurm {
        eprintln!("(Slurm not measured: pass --with-slurm, as root, to compare)");
    }
    println!(
        "\nscheduler bench on {cpus} CPUs (load average {} at the start): {} jobs per submission phase, Slurm REST API openapi/{}",
        load.map_or("?".to_string(), |l| format!("{l:.2}")),
        plan.jobs,
        slurm::OPENAPI
    );
    report::print(
        &plan,
        &Column {
            name: "hpcpack".into(),
            results: ours.as_ref(),
        },
        &Column {
            name: slurm_name,
            results: theirs.as_ref(),
        },
    );
    let failed = [&ours, &theirs]
        .iter()
        .any(|r| r.as_ref().is_some_and(|r| r.failed));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Starts a head node, measures it, stops it. Missing binaries are an error (build first);
/// a head node that fails to start is reported as a failed side.
fn run_hpcpack(plan: &Plan) -> Result<Results> {
    let bins = headnode::Bins::locate()?;
    eprintln!("[hpcpack] starting the head node (hpcd local start)");
    Ok(match headnode::HeadNode::start(bins) {
        Ok(head) => measure::measure("hpcpack", &head, plan),
        Err(e) => Results::failure(format!("{e:#}")),
    })
}

/// Starts Slurm, measures it, stops it. Not installed: a note and no Slurm column.
fn run_slurm(plan: &Plan, install: bool) -> Result<(String, Option<Results>)> {
    eprintln!("[slurm] starting Slurm (benches/slurm/start.sh)");
    Ok(match slurm::Slurm::start(install) {
        Ok(slurm::Start::Running(s)) => {
            let name = s
                .version
                .replace("slurm-wlm", "Slurm")
                .replace("slurm", "Slurm");
            let results = measure::measure("slurm", &s, plan);
            (name, Some(results))
        }
        Ok(slurm::Start::NotInstalled) => {
            eprintln!("[slurm] not installed; showing our numbers alone (rerun with --install)");
            ("Slurm".into(), None)
        }
        Err(e) => ("Slurm".into(), Some(Results::failure(format!("{e:#}")))),
    })
}

