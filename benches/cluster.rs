//! Cluster benchmark: hpcpack on a real Slurm cluster of three hosts (the project's rig,
//! `tests/slurm/up.sh`: node1..node3 as network namespaces of this machine), side by side with
//! the tools people use there today.
//!
//! ```text
//! cargo build --release && cargo bench --bench cluster -- [--runs N] [--tables 1,2,3]
//! ```
//!
//! Root only (the rig's namespaces). It builds nothing of ours: it drives the release binaries
//! `job`, `node`, `mpiexec` and `mpipingpong` (`$HPCPACK_BIN_DIR`, else `target/release`). It
//! uses the rig that is up, as it is, else starts one in `<target>/slurm` and stops it at the
//! end (also after an error or Ctrl-C). Three tables, each row: what, ours, the peer's, the
//! ratio ours / peer's and the issue's goal.
//!
//! 1. Backend overhead (`cluster/backend.rs`): our CLIs with `CCP_SCHEDULER=slurm` against
//!    Slurm's commands, whole-process time, N pairs of runs: `job submit /numcores:1 true`
//!    against `sbatch --wrap=true -n1 -o /dev/null`, `job view <id>` against `scontrol show
//!    job <id>`, `node list` against `sinfo`. Goal: at most 1.5 times the peer's time. Under
//!    it, the Slurm command ours runs inside, timed alone, and what is left: our own cost.
//! 2. Ping-pong between two hosts over TCP (`cluster/crosshost.rs`), in `salloc -N2`:
//!    mpipingpong under our `mpiexec -c 1` against benches/pingpong/pingpong.c under
//!    `mpiexec.mpich -launcher slurm -ppn 1 -n 2`. Goals: 1-byte latency at most MPICH's,
//!    4 MB throughput at least 0.9 of MPICH's.
//! 3. Launch (`cluster/launch.rs`), in `salloc -N3 -n6`: a trivial 6-rank MPI program under
//!    our `mpiexec -n 6`, `mpiexec.mpich -launcher slurm -n 6` and `srun -n6` (singletons: the
//!    rig has no PMI plugin). Goal: at most the faster peer's time.
//!
//! Tables 2 and 3 are timed inside the allocation by this binary itself, run by salloc in a
//! hidden `--driver` mode (`cluster/alloc.rs`). A command that fails makes its cell
//! "failed: <its one-line error>" and the bench exit 1; the other rows are still measured.

// A bench's root file resolves modules next to itself, hence the paths.
#[path = "cluster/alloc.rs"]
mod alloc;
#[path = "cluster/backend.rs"]
mod backend;
#[path = "common.rs"]
mod common;
#[path = "cluster/crosshost.rs"]
mod crosshost;
#[path = "cluster/launch.rs"]
mod launch;
#[path = "scheduler/proc.rs"]
mod proc;
#[path = "cluster/report.rs"]
mod report;
#[path = "cluster/rig.rs"]
mod rig;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use report::Table;

/// Compare hpcpack on a 3-host Slurm cluster with Slurm's and MPICH's tools (run with `cargo bench --bench cluster --`).
#[derive(Parser, Debug)]
#[command(name = "cluster")]
struct Args {
    /// Tables to run: 1 backend overhead, 2 ping-pong between hosts, 3 launch
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 3])]
    tables: Vec<u8>,
    /// Pairs of runs of each backend command (table 1)
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Rounds of the ping-pong; each row shows its best round (table 2)
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Round trips of the 1-byte latency run (table 2)
    #[arg(long, default_value_t = 10_000)]
    small_iterations: u64,
    /// Round trips of the 4,000,000-byte throughput run (table 2)
    #[arg(long, default_value_t = 200)]
    large_iterations: u64,
    /// Runs of each launcher (table 3)
    #[arg(long, default_value_t = 10)]
    launch_runs: usize,
    /// Seconds salloc may wait for its nodes (the rig is shared)
    #[arg(long, default_value_t = 300)]
    alloc_wait: u64,
    /// Time limit of each MPI launch, in seconds
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Measure the peers only (e.g. while ours does not build)
    #[arg(long)]
    skip_hpcpack: bool,
    /// Internal: run a spec's commands inside an allocation (salloc runs the bench with it)
    #[arg(long, hide = true)]
    driver: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    proc::catch_interrupt();
    let result = match &args.driver {
        Some(spec) => alloc::drive(spec).map(|()| ExitCode::SUCCESS),
        None => run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cluster bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<ExitCode> {
    let (cpus, load) = common::warn_if_busy();
    let bins = (!args.skip_hpcpack)
        .then(|| common::release_dir(&["job", "node", "mpiexec", "mpipingpong"]))
        .transpose()?;
    let target = target_dir();
    let rig = rig::Rig::find_or_start(&target.join("slurm"))?;
    let work = tempfile::Builder::new()
        .prefix("hpcpack-cluster-bench")
        .tempdir()
        .context("creating a scratch directory")?;
    let slurm = version(rig.command("sinfo").arg("--version"));
    let mpich = mpich_name();

    // The MPI programs of the peers (and of table 3, ours too).
    let programs = target.join("cluster-bench");
    let installed = ["mpicc.mpich", "mpiexec.mpich"]
        .iter()
        .all(|p| which(p).is_some());
    let missing = "mpicc.mpich or mpiexec.mpich missing: apt-get install mpich libmpich-dev";
    let build =
        |what: &str, f: &dyn Fn() -> Result<PathBuf>| -> std::result::Result<PathBuf, String> {
            if !installed {
                return Err(missing.to_string());
            }
            f().map_err(|e| format!("building {what}: {e:#}"))
        };

    let alloc = alloc::Alloc {
        rig: &rig,
        wait: Duration::from_secs(args.alloc_wait.max(1)),
        name: format!("hpcpack-bench-cluster-{}", std::process::id()),
        work: work.path(),
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut tables: Vec<Table> = Vec::new();
    if args.tables.contains(&1) {
        match &bins {
            Some(bins) => {
                let ours = backend::Ours {
                    bins,
                    state: work.path().join("state"),
                    rig: &rig,
                };
                tables.push(backend::measure(&ours, args.runs.max(1))?);
            }
            None => eprintln!("[backend] skipped: it compares our CLIs (--skip-hpcpack)"),
        }
    }
    if args.tables.contains(&2) {
        let exe = build("benches/pingpong/pingpong.c", &|| {
            crosshost::build_mpich(&programs)
        });
        let plan = crosshost::Plan {
            small_iterations: args.small_iterations.max(1),
            large_iterations: args.large_iterations.max(1),
            rounds: args.rounds.max(1),
            timeout,
        };
        tables.push(crosshost::measure(
            &alloc,
            bins.as_deref(),
            exe.as_deref().map_err(String::as_str),
            &plan,
        )?);
    }
    if args.tables.contains(&3) {
        let prog = build("benches/cluster/init.c", &|| {
            let exe = programs.join("mpi-init");
            crosshost::compile(launch::SOURCE, &exe)?;
            Ok(exe)
        });
        tables.push(launch::measure(
            &alloc,
            bins.as_deref(),
            prog.as_deref().map_err(String::as_str),
            args.launch_runs.max(1),
            timeout,
        )?);
    }

    println!(
        "\ncluster bench on {cpus} CPUs (load average {} at the start), Slurm rig node1..node3 ({}), \
         {}, ours from {}",
        load.map_or("?".to_string(), |l| format!("{l:.2}")),
        slurm,
        mpich,
        bins.as_deref()
            .map_or("(skipped)".to_string(), |b| b.display().to_string())
    );
    for t in &tables {
        t.print();
    }
    Ok(if tables.iter().any(Table::failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The first line a `--version` command prints, or "?".
fn version(cmd: &mut Command) -> String {
    proc::run_ok(cmd, Duration::from_secs(30))
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

/// `MPICH 4.0.2 (ch4:ucx)`, from `mpichversion`.
fn mpich_name() -> String {
    let out = proc::run_ok(&mut Command::new("mpichversion"), Duration::from_secs(30))
        .unwrap_or_default();
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_start_matches(':').trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "MPICH {} ({})",
        field("MPICH Version"),
        field("MPICH Device")
    )
}

/// The program's path when `name` is on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The target directory: `<target>/release/deps/cluster-<hash>` -> `<target>`, else
/// `<manifest>/target`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.parent()?.to_path_buf()))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}
