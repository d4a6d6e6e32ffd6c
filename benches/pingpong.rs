//! mpipingpong benchmark: our `mpiexec` + `mpipingpong` against MPICH running a plain C
//! ping-pong, on the shared-memory path and on TCP loopback, next to the machine's ceilings.
//!
//! ```text
//! cargo build --release && cargo bench --bench pingpong -- [--install]
//! ```
//!
//! It builds nothing of ours: it drives the release binaries `mpiexec` and `mpipingpong`
//! (`$HPCPACK_BIN_DIR`, else `target/release`), always by absolute path (`/usr/bin/mpiexec` is
//! MPICH's). In one run, on this machine:
//!
//! 1. Ceiling, memory: single-core memcpy of a 4 MB buffer into another, MB/s.
//! 2. Ours, per path: `mpiexec -n 2 -affinity mpipingpong -m -oq -p <size>:<iterations>
//!    --json <file>`, one launch per size; the TCP path adds `-env MSMPI_DISABLE_SHM 1`. The
//!    numbers come from the JSON report (`tests[0].pairs[0].value`, µs or MB/s as
//!    `tests[0].metric` says; mpipingpong reports throughput from 64 KiB up, so the 64 KiB
//!    latency is derived: size / throughput, the same elapsed time).
//! 3. MPICH, per path: `benches/pingpong/pingpong.c`, built with `mpicc.mpich -O2` into
//!    `<target>/pingpong-bench/`, launched by `mpiexec.mpich -n 2 -bind-to core` with every size
//!    in one launch. Debian 12's MPICH 4.0.2 is `ch4:ucx`: two ranks on one machine talk through
//!    UCX's shared-memory transports; its TCP path is forced with
//!    `MPIR_CVAR_NOLOCAL=1 UCX_TLS=tcp,self UCX_NET_DEVICES=lo` (see `pingpong/mpich.rs`, which
//!    also covers ch4:ofi and ch3:nemesis builds). Verified with `ss -tnp` (TCP connections
//!    between the ranks appear only then) and by the latency (0.2-0.4 µs becomes 13-20 µs).
//! 4. Ceiling, network: `iperf3 -s -1` and `iperf3 -c 127.0.0.1 -J -l 1M`, one stream, MB/s
//!    (`-l 1M`: see `pingpong/ceiling.rs`). Missing
//!    iperf3 skips the row, unless `--install` (or `HPCPACK_BENCH_INSTALL=1`) apt-gets it.
//!
//! Both sides run the same sizes and round trips: 1 B, 8 B, 1 KiB (10,000), 64 KiB (1,000) for
//! latency, 4,000,000 B (200) for throughput. Latency is half a round trip in µs; throughput is
//! the bytes moved one way per second, MB = 10^6 B: mpipingpong's formulas. Warm-up differs:
//! mpipingpong does one untimed round trip, the C program 10% of the iterations (10 to 1000).
//! Everything runs in 3 rounds (`--runs`) that interleave the sides (ours shm, MPICH shm, ours
//! TCP, MPICH TCP, then memcpy again); each row shows its best round, so that a burst of load
//! from elsewhere on a small machine does not decide a ratio.
//! The bytes received on `lo` during each path's runs are printed too: the TCP runs move about
//! the payload through loopback, the shared-memory runs about nothing.
//! A run that fails prints its stderr and leaves its rows "failed"; the others go on.
//! The table shows both values, the ratio (above 1: we are better), the throughput against the
//! ceiling of its path (shm / memcpy, TCP / iperf3) and the issue's goals: latency at or below
//! MPICH's on both paths; shm throughput at or above MPICH's and at least 80% of memcpy.

// A bench's root file resolves modules next to itself, hence the paths.
#[path = "common.rs"]
mod common;
#[path = "pingpong/ceiling.rs"]
mod ceiling;
#[path = "pingpong/child.rs"]
mod child;
#[path = "pingpong/measure.rs"]
mod measure;
#[path = "pingpong/mpich.rs"]
mod mpich;
#[path = "pingpong/ours.rs"]
mod ours;
#[path = "pingpong/report.rs"]
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use clap::builder::BoolishValueParser;

use measure::{Path, PathResults, Plan, Side};

/// Compare mpipingpong with an MPICH ping-pong (run with `cargo bench --bench pingpong --`).
#[derive(Parser, Debug)]
#[command(name = "pingpong")]
struct Args {
    /// Install the missing Debian packages (iperf3; mpich, libmpich-dev) with apt-get
    #[arg(long, env = "HPCPACK_BENCH_INSTALL", action = clap::ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    install: bool,
    /// Round trips of the 1 B, 8 B and 1 KiB latency runs
    #[arg(long, default_value_t = 10_000)]
    small_iterations: u64,
    /// Round trips of the 64 KiB latency run
    #[arg(long, default_value_t = 1000)]
    medium_iterations: u64,
    /// Round trips of the 4,000,000 B throughput run
    #[arg(long, default_value_t = 200)]
    large_iterations: u64,
    /// Rounds of every measurement; each row shows its best round
    #[arg(long, default_value_t = 3)]
    runs: u64,
    /// Seconds of the iperf3 run
    #[arg(long, default_value_t = 3)]
    iperf_secs: u64,
    /// Time limit of each MPI launch, in seconds
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Measure MPICH and the ceilings only (e.g. while ours does not build)
    #[arg(long)]
    skip_hpcpack: bool,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pingpong bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<ExitCode> {
    let plan = Plan::new(
        args.small_iterations.max(1),
        args.medium_iterations.max(1),
        args.large_iterations.max(1),
    );
    let timeout = Duration::from_secs(args.timeout.max(1));
    let (cpus, load) = common::warn_if_busy();
    let work = tempfile::Builder::new()
        .prefix("hpcpack-pingpong-bench")
        .tempdir()
        .context("creating a scratch directory")?;
    let mut notes = Vec::new();

    let bins = (!args.skip_hpcpack).then(ours::Bins::locate).transpose()?;
    if !mpich::Mpich::installed() && args.install {
        ceiling::apt_install(&mpich::PACKAGES)?;
    }
    let mpich = if mpich::Mpich::installed() {
        match mpich::Mpich::build(&target_dir().join("pingpong-bench"), work.path()) {
            Ok(m) => {
                let env: Vec<String> = m
                    .tcp_env()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                notes.push(format!(
                    "MPICH {} ({}); its TCP path: {}",
                    m.version,
                    m.device,
                    env.join(" ")
                ));
                Some(m)
            }
            Err(e) => {
                notes.push(format!(
                    "MPICH: building benches/pingpong/pingpong.c failed: {e:#}"
                ));
                None
            }
        }
    } else {
        notes.push(format!(
            "MPICH not measured: mpicc.mpich or mpiexec.mpich missing (apt-get install {}, or --install)",
            mpich::PACKAGES.join(" ")
        ));
        None
    };
    let mpich_name = mpich
        .as_ref()
        .map_or("MPICH".to_string(), |m| format!("MPICH {}", m.version));

    // Rounds interleave the sides, so that a burst of load elsewhere hits both alike; each row
    // keeps its best round.
    let runs = args.runs.max(1);
    let mut memcpy_mbps = 0f64;
    let mut ours = bins.as_ref().map(|_| Side::default());
    let mut theirs = mpich.as_ref().map(|_| Side::default());
    for round in 1..=runs {
        eprintln!("[round {round}/{runs}] memcpy");
        memcpy_mbps = memcpy_mbps.max(ceiling::memcpy_mbps(Duration::from_millis(500)));
        for path in Path::ALL {
            if let (Some(b), Some(side)) = (&bins, &mut ours) {
                side.merge(
                    path,
                    on_loopback(|| b.measure(&plan, path, work.path(), timeout)),
                );
            }
            if let (Some(m), Some(side)) = (&mpich, &mut theirs) {
                side.merge(
                    path,
                    on_loopback(|| m.measure(&plan, path, work.path(), timeout)),
                );
            }
        }
    }

    let iperf3_mbps = match ceiling::find_iperf3(args.install)? {
        Some(iperf3) => {
            eprintln!("[ceiling] iperf3");
            match ceiling::iperf3_mbps(&iperf3, args.iperf_secs.max(1), work.path()) {
                Ok(v) => Some(v),
                Err(e) => {
                    eprintln!("[ceiling] iperf3: {e:#}");
                    notes.push(format!("iperf3 failed: {e:#}"));
                    None
                }
            }
        }
        None => {
            notes.push(
                "iperf3 not installed: TCP ceiling skipped (apt-get install iperf3, or --install)"
                    .into(),
            );
            None
        }
    };

    println!(
        "\npingpong bench on {cpus} CPUs (load average {} at the start), 2 ranks on one machine, best of {runs} rounds",
        load.map_or("?".to_string(), |l| format!("{l:.2}"))
    );
    let empty = Side::default();
    report::print(
        &plan,
        ours.as_ref().unwrap_or(&empty),
        &mpich_name,
        theirs.as_ref(),
        &report::Ceilings {
            memcpy_mbps,
            iperf3_mbps,
        },
    );
    for (name, side) in [("hpcpack", ours.as_ref()), ("MPICH", theirs.as_ref())] {
        let Some(side) = side else { continue };
        notes.extend(same_paths(name, side, &plan));
        notes.extend(loopback(name, side, &plan));
        for results in side.paths.values() {
            notes.extend(results.errors.iter().map(|e| format!("{name} failed: {e}")));
        }
    }
    for note in &notes {
        println!("note: {note}");
    }
    let failed = [&ours, &theirs]
        .iter()
        .filter_map(|s| s.as_ref())
        .any(|s| s.paths.values().any(|r| !r.errors.is_empty()));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A note when a side's TCP path is not clearly slower than its shared-memory path on the
/// smallest message: the path was probably not switched (e.g. our shared-memory transport
/// has not landed yet, or MPICH ignored the variables).
fn same_paths(name: &str, side: &Side, plan: &Plan) -> Option<String> {
    let size = plan.sizes.first()?.0;
    let (shm, tcp) = (side.get(Path::Shm, size)?, side.get(Path::Tcp, size)?);
    (tcp.latency_usec < 1.5 * shm.latency_usec).then(|| {
        format!(
            "{name}: {size} B latency is {:.2} us on shm and {:.2} us on TCP: both runs probably took the same path",
            shm.latency_usec, tcp.latency_usec
        )
    })
}

/// Runs `measure`, noting the bytes received on the loopback interface meanwhile.
fn on_loopback(measure: impl FnOnce() -> PathResults) -> PathResults {
    let before = ceiling::loopback_bytes();
    let mut results = measure();
    results.loopback_bytes = before
        .zip(ceiling::loopback_bytes())
        .map(|(a, b)| b.saturating_sub(a));
    results
}

/// How much went through the loopback interface during each path's runs: about the payload on
/// TCP, about nothing on shared memory (plus whatever else the machine sent meanwhile).
fn loopback(name: &str, side: &Side, plan: &Plan) -> Option<String> {
    let mb = |p: Path| {
        let b = side.paths.get(&p)?.loopback_bytes?;
        Some(format!("{} {} MB", p.name(), b / 1_000_000))
    };
    let runs: Vec<String> = Path::ALL.into_iter().filter_map(mb).collect();
    (!runs.is_empty()).then(|| {
        format!(
            "{name}: through loopback during the runs: {} (the timed round trips move {} MB)",
            runs.join(", "),
            side.rounds * plan.payload_bytes() / 1_000_000
        )
    })
}

/// The target directory: `<target>/release/deps/pingpong-<hash>` -> `<target>`, else
/// `<manifest>/target`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.parent()?.to_path_buf()))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

