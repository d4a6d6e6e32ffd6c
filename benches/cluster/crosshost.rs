//! Table 2: a ping-pong between two hosts over TCP, inside one `salloc -N2` allocation.
//!
//! - Ours: `mpiexec -c 1 -env MSMPI_DISABLE_SHM 1 mpipingpong -oq -p <size>:<iterations> --json
//!   <file>`, one launch per size (mpipingpong takes one `-p`), the figure read from the JSON
//!   report as benches/pingpong does (`tests[0].pairs[0].value`). `-c 1`: one rank per node of
//!   the allocation.
//! - MPICH: `benches/pingpong/pingpong.c` built with `mpicc.mpich -O2`, launched by
//!   `mpiexec.mpich -launcher slurm -ppn 1 -n 2`, both sizes in one launch. Debian's MPICH is
//!   `ch4:ucx`: `UCX_TLS=tcp,self UCX_NET_DEVICES=eth0` keeps UCX on TCP over the nodes' one
//!   interface (the nodes are namespaces of one machine and share its /dev/shm, so without
//!   them UCX may reach the other node through shared memory).
//!
//! The driver's rounds interleave the three launches; each row keeps the best round of each
//! side (lowest latency, highest throughput), as benches/pingpong does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::alloc::{self, Alloc, Cmd, Sample, Spec};
use crate::report::{Cell, Goal, Row, Table, one_line};

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pingpong/pingpong.c");
/// The throughput test's message: mpipingpong's `-pt` size, MB = 10^6 bytes.
pub const LARGE: u64 = 4_000_000;

/// Round trips of each size.
pub struct Plan {
    pub small_iterations: u64,
    pub large_iterations: u64,
    pub rounds: usize,
    pub timeout: Duration,
}

/// Builds the C ping-pong into `out_dir`.
pub fn build_mpich(out_dir: &Path) -> Result<PathBuf> {
    let exe = out_dir.join("pingpong-mpich");
    compile(SOURCE, &exe)?;
    Ok(exe)
}

/// `mpicc.mpich -O2 -o <exe> <source>`.
pub fn compile(source: &str, exe: &Path) -> Result<()> {
    if let Some(dir) = exe.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut cc = Command::new("mpicc.mpich");
    cc.args(["-O2", "-o"]).arg(exe).arg(source);
    let out = crate::proc::run(&mut cc, Duration::from_secs(120))?;
    if !out.status.success() {
        bail!(
            "mpicc.mpich {source}: {}",
            one_line(&String::from_utf8_lossy(&out.stderr), "", "failed")
        );
    }
    Ok(())
}

const OURS_SMALL: &str = "ours 1 B";
const OURS_LARGE: &str = "ours 4 MB";
const MPICH: &str = "MPICH";

/// Runs the rounds in one allocation of two nodes and makes the two rows.
pub fn measure(
    alloc: &Alloc,
    bins: Option<&Path>,
    mpich: Result<&Path, &str>,
    plan: &Plan,
) -> Result<Table> {
    let mut table = Table::new(format!(
        "2. Ping-pong between two hosts over TCP (node to node), salloc -N2, best of {} rounds \
         (ratio = ours / MPICH's: latency below 1 and throughput above 1 mean we are better)",
        plan.rounds
    ));
    let small = format!("1:{}", plan.small_iterations);
    let large = format!("{LARGE}:{}", plan.large_iterations);
    let mut commands = Vec::new();
    if let Some(bins) = bins {
        for (label, p) in [(OURS_SMALL, &small), (OURS_LARGE, &large)] {
            let json = alloc
                .work
                .join(format!("{}-{{round}}.json", label.replace(' ', "-")));
            commands.push(Cmd {
                label: label.into(),
                argv: vec![
                    path(&bins.join("mpiexec")),
                    "-c".into(),
                    "1".into(),
                    "-env".into(),
                    "MSMPI_DISABLE_SHM".into(),
                    "1".into(),
                    path(&bins.join("mpipingpong")),
                    "-oq".into(),
                    "-p".into(),
                    p.clone(),
                    "--json".into(),
                    path(&json),
                ],
                env: Vec::new(),
            });
        }
    }
    if let Ok(exe) = mpich {
        commands.push(Cmd {
            label: MPICH.into(),
            argv: [
                "mpiexec.mpich",
                "-launcher",
                "slurm",
                "-ppn",
                "1",
                "-n",
                "2",
            ]
            .into_iter()
            .map(String::from)
            .chain([path(exe), small.clone(), large.clone()])
            .collect(),
            env: vec![
                ("UCX_TLS".into(), "tcp,self".into()),
                ("UCX_NET_DEVICES".into(), "eth0".into()),
            ],
        });
    }
    let samples = if commands.is_empty() {
        Err("nothing to run".to_string())
    } else {
        alloc.run(
            "crosshost",
            &["--nodes=2", "--ntasks-per-node=1"],
            &Spec {
                rounds: plan.rounds,
                timeout_secs: plan.timeout.as_secs(),
                commands,
            },
        )?
    };

    let ours_cell = |label: &str, size: u64| -> (Cell, Vec<f64>) {
        let Some(_) = bins else {
            return (Cell::Missing("--skip-hpcpack".into()), Vec::new());
        };
        let samples = match &samples {
            Ok(s) => alloc::of(s, label),
            Err(e) => return (Cell::Failed(e.clone()), Vec::new()),
        };
        let mut values = Vec::new();
        let mut error = None;
        for s in &samples {
            let json = alloc
                .work
                .join(format!("{}-{}.json", label.replace(' ', "-"), s.round));
            let got = match &s.error {
                Some(e) => Err(e.clone()),
                None => read_report(&json, size).map_err(|e| format!("{e:#}")),
            };
            match got {
                Ok(v) => values.push(v),
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        (best(size, &values, error), values)
    };
    let theirs = |size: u64| -> (Cell, Vec<f64>) {
        let exe_error = match mpich {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = exe_error {
            return (Cell::Missing(e), Vec::new());
        }
        let samples = match &samples {
            Ok(s) => alloc::of(s, MPICH),
            Err(e) => return (Cell::Failed(e.clone()), Vec::new()),
        };
        let mut values = Vec::new();
        let mut error = None;
        for s in &samples {
            let got = match &s.error {
                Some(e) => Err(e.clone()),
                None => mpich_value(&s.stdout, size),
            };
            match got {
                Ok(v) => values.push(v),
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        (best(size, &values, error), values)
    };

    let (ours_s, ours_sv) = ours_cell(OURS_SMALL, 1);
    let (peer_s, peer_sv) = theirs(1);
    let (ours_l, ours_lv) = ours_cell(OURS_LARGE, LARGE);
    let (peer_l, peer_lv) = theirs(LARGE);
    table.rows.push(Row {
        what: format!("latency 1 B x{}", plan.small_iterations),
        ours: ours_s,
        peer: peer_s,
        goal: Some(Goal::AtMost(1.0)),
    });
    table.rows.push(Row {
        what: format!("throughput 4 MB x{}", plan.large_iterations),
        ours: ours_l,
        peer: peer_l,
        goal: Some(Goal::AtLeast(0.9)),
    });
    let rounds = |v: &[f64], unit: &str| {
        if v.is_empty() {
            return "-".to_string();
        }
        let shown: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
        format!("{} {unit}", shown.join(", "))
    };
    table.notes.push(format!(
        "per round: ours 1 B {}; MPICH 1 B {}",
        rounds(&ours_sv, "us"),
        rounds(&peer_sv, "us")
    ));
    table.notes.push(format!(
        "per round: ours 4 MB {}; MPICH 4 MB {}",
        rounds(&ours_lv, "MB/s"),
        rounds(&peer_lv, "MB/s")
    ));
    if let Ok(s) = &samples {
        table.notes.extend(traffic(s, plan));
    }
    Ok(table)
}

/// The best of the rounds (lowest latency, highest throughput), or the first error.
fn best(size: u64, values: &[f64], error: Option<String>) -> Cell {
    let (best, unit) = if size < 65536 {
        (values.iter().copied().reduce(f64::min), "us")
    } else {
        (values.iter().copied().reduce(f64::max), "MB/s")
    };
    match (best, error) {
        (Some(v), _) => Cell::Value {
            value: v,
            shown: if unit == "us" {
                format!("{v:.2} us")
            } else {
                format!("{v:.0} MB/s")
            },
        },
        (None, Some(e)) => Cell::Failed(e),
        (None, None) => Cell::Missing("no run".into()),
    }
}

/// mpipingpong's figure for `size` from its `--json` report: µs below 64 KiB, MB/s above.
fn read_report(json: &Path, size: u64) -> Result<f64> {
    let text = std::fs::read_to_string(json)
        .with_context(|| format!("reading mpipingpong's report {}", json.display()))?;
    let v: Value = serde_json::from_str(&text).context("mpipingpong's report is not JSON")?;
    let test = &v["tests"][0];
    if test["packetSize"].as_u64() != Some(size) {
        bail!("expected a test of {size} bytes in {}", json.display());
    }
    test["pairs"][0]["value"]
        .as_f64()
        .filter(|v| v.is_finite() && *v > 0.0)
        .with_context(|| format!("no positive tests[0].pairs[0].value in {}", json.display()))
}

/// The C program's `pingpong size=<size> ... latency_usec=<µs> mbps=<MB/s>` line: µs for the
/// small size, MB/s for the large one.
fn mpich_value(stdout: &str, size: u64) -> std::result::Result<f64, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("pingpong size={size} ")))
        .ok_or_else(|| format!("no line for {size} B in the C ping-pong's output"))?;
    let key = if size < 65536 {
        "latency_usec="
    } else {
        "mbps="
    };
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no {key} in '{line}'"))
}

/// How many bytes crossed the rig's bridge per launch: a node-to-node ping-pong moves about
/// its payload (2 x iterations x size), a run that stayed on one host about nothing.
fn traffic(samples: &[Sample], plan: &Plan) -> Vec<String> {
    let mb = |label: &str| -> Option<String> {
        let s = alloc::of(samples, label);
        let bytes: Vec<String> = s
            .iter()
            .filter(|s| s.ok())
            .filter_map(|s| s.node_bytes)
            .map(|b| format!("{:.1}", b as f64 / 1e6))
            .collect();
        (!bytes.is_empty()).then(|| format!("{label} {} MB", bytes.join("/")))
    };
    let small = 2.0 * plan.small_iterations as f64 / 1e6;
    let large = 2.0 * (plan.large_iterations * LARGE) as f64 / 1e6;
    let seen: Vec<String> = [OURS_SMALL, OURS_LARGE, MPICH]
        .iter()
        .filter_map(|l| mb(l))
        .collect();
    if seen.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "node to node through the rig's bridge, per launch: {} (the timed round trips move \
         {small:.2} MB at 1 B and {large:.0} MB at 4 MB; the C program's warm-up adds 10%, at least 10 \
         round trips)",
        seen.join(", ")
    )]
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
