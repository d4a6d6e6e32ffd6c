//! Our side: `mpiexec -n 2 -affinity mpipingpong -m -p <size>:<iterations> --json <file>`,
//! one launch per size (mpipingpong takes one `-p`), read back from the JSON report.

use std::path::{Path as FsPath, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::child;
use crate::measure::{Path, PathResults, Plan, Sample};

/// The release binaries `mpiexec` and `mpipingpong`.
pub struct Bins(PathBuf);

impl Bins {
    /// See [`crate::common::release_dir`].
    pub fn locate() -> Result<Self> {
        crate::common::release_dir(&["mpiexec", "mpipingpong"]).map(Bins)
    }

    /// Every size on one path. A failed size is an error in the results, not an abort.
    pub fn measure(
        &self,
        plan: &Plan,
        path: Path,
        work: &FsPath,
        timeout: Duration,
    ) -> PathResults {
        let mut results = PathResults::default();
        for &(size, iterations) in &plan.sizes {
            eprintln!("[hpcpack] {} {size} B x {iterations}", path.name());
            match self.one(size, iterations, path, work, timeout) {
                Ok(sample) => {
                    results.samples.insert(size, sample);
                }
                Err(e) => {
                    let e = format!("{size} B on {}: {e:#}", path.name());
                    eprintln!("[hpcpack] {e}");
                    results.errors.push(e);
                }
            }
        }
        results
    }

    fn one(
        &self,
        size: u64,
        iterations: u64,
        path: Path,
        work: &FsPath,
        timeout: Duration,
    ) -> Result<Sample> {
        let json = work.join(format!("ours-{}-{size}.json", path.name()));
        let mut cmd = Command::new(self.0.join("mpiexec"));
        cmd.args(["-n", "2", "-affinity"]);
        if path == Path::Tcp {
            cmd.args(["-env", "MSMPI_DISABLE_SHM", "1"]);
        }
        cmd.arg(self.0.join("mpipingpong"))
            .args(["-m", "-oq", "-p", &format!("{size}:{iterations}"), "--json"])
            .arg(&json);
        let ran = child::run(&mut cmd, work, timeout)?;
        if !ran.success() {
            bail!("{}", ran.failure(&child::describe(&cmd)));
        }
        let text = std::fs::read_to_string(&json)
            .with_context(|| format!("reading mpipingpong's report {}", json.display()))?;
        parse_report(&text, size)
            .with_context(|| format!("in mpipingpong's report {}", json.display()))
    }
}

/// The pair's value in a `--json` report (src/pingpong/json.rs): `tests[0].metric` says
/// whether `pairs[0].value` is µs or MB/s (mpipingpong reports throughput from 64 KiB up).
fn parse_report(text: &str, size: u64) -> Result<Sample> {
    let v: Value = serde_json::from_str(text).context("not JSON")?;
    let test = &v["tests"][0];
    if test["packetSize"].as_u64() != Some(size) {
        bail!(
            "expected a test of {size} bytes, found {}",
            test["packetSize"]
        );
    }
    let value = test["pairs"][0]["value"]
        .as_f64()
        .filter(|v| v.is_finite() && *v > 0.0)
        .with_context(|| format!("no positive tests[0].pairs[0].value: {}", test["pairs"]))?;
    match test["metric"].as_str() {
        Some("latency") => Ok(Sample::from_latency(size, value)),
        Some("throughput") => Ok(Sample::from_mbps(size, value)),
        other => bail!("unknown metric {other:?}"),
    }
}
