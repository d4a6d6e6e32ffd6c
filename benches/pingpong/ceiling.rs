//! The ceilings a ping-pong's throughput is held against: what one core copies in memory,
//! and what the kernel's TCP loopback carries (iperf3).

use std::hint::black_box;
use std::net::TcpListener;
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::child;
use crate::measure::THROUGHPUT_SIZE;

/// Single-core memcpy bandwidth in MB/s (10^6 B/s): copies of a 4 MB buffer into another for
/// about `budget`, after one untimed copy that faults the pages in. Bytes copied, not bytes
/// read plus written, which is what a ping-pong's throughput counts too.
pub fn memcpy_mbps(budget: Duration) -> f64 {
    let size = THROUGHPUT_SIZE as usize;
    let src: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut dst = vec![0u8; size];
    dst.copy_from_slice(&src);
    let start = Instant::now();
    let mut copies = 0u64;
    while copies < 10 || start.elapsed() < budget {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
        copies += 1;
    }
    (copies * THROUGHPUT_SIZE) as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// Where iperf3 is; with `install`, apt-gets it first if missing.
pub fn find_iperf3(install: bool) -> Result<Option<PathBuf>> {
    if let Some(p) = child::which("iperf3") {
        return Ok(Some(p));
    }
    if !install {
        return Ok(None);
    }
    apt_install(&["iperf3"])?;
    Ok(child::which("iperf3"))
}

/// `apt-get update && apt-get install -y --no-install-recommends <packages>`, output to the
/// terminal (iperf3's package asks, through debconf, whether to start a daemon: no prompt).
pub fn apt_install(packages: &[&str]) -> Result<()> {
    eprintln!("[install] apt-get install {}", packages.join(" "));
    let ok = |c: &mut Command| -> Result<()> {
        let s = c
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("cannot run {}", child::describe(c)))?;
        if !s.success() {
            bail!("{} failed ({s}); are you root?", child::describe(c));
        }
        Ok(())
    };
    ok(Command::new("apt-get").arg("update"))?;
    ok(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages))
}

/// Kills the one-shot iperf3 server if the client never reached it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Loopback TCP bandwidth in MB/s: `iperf3 -s -1` and `iperf3 -c 127.0.0.1 -J -l 1M -t <secs>`,
/// one stream, the receiver's rate (`end.sum_received.bits_per_second`). `-l 1M` is iperf3's
/// largest write, the nearest to the 4 MB messages: with its default 128 KiB writes it measured
/// 4.6 GB/s here, less than MPICH's own TCP ping-pong (6.5 GB/s), no ceiling at all.
pub fn iperf3_mbps(iperf3: &FsPath, secs: u64, work: &FsPath) -> Result<f64> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port for iperf3")?
        .port()
        .to_string();
    let _server = Server(
        Command::new(iperf3)
            .args(["-s", "-1", "-B", "127.0.0.1", "-p", &port])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {} -s", iperf3.display()))?,
    );
    let mut client = Command::new(iperf3);
    client.args([
        "-c",
        "127.0.0.1",
        "-p",
        &port,
        "-J",
        "-t",
        &secs.to_string(),
    ]);
    // The server needs a moment to listen; a refused connection does not use up `-1`.
    // iperf3 3.12 with -J exits 0 even then, saying so in the JSON's "error".
    let mut tries = 0;
    let v = loop {
        let ran = child::run(&mut client, work, Duration::from_secs(secs + 30))?;
        tries += 1;
        let v: Option<Value> = serde_json::from_str(&ran.stdout).ok();
        let error = v
            .as_ref()
            .and_then(|v| v["error"].as_str())
            .map(str::to_string);
        match (v, error) {
            (Some(_), Some(e)) if e.contains("refused") && tries < 50 => {
                std::thread::sleep(Duration::from_millis(100));
            }
            (_, Some(e)) => bail!("{}: {e}", child::describe(&client)),
            (Some(v), None) if ran.success() => break v,
            _ => bail!("{}", ran.failure(&child::describe(&client))),
        }
    };
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("no end.sum_received.bits_per_second in iperf3's JSON")?;
    Ok(bps / 8.0 / 1e6)
}

/// Bytes received on the loopback interface so far (`/proc/net/dev`), to show which runs
/// really went through TCP.
pub fn loopback_bytes() -> Option<u64> {
    let dev = std::fs::read_to_string("/proc/net/dev").ok()?;
    dev.lines()
        .find_map(|l| l.trim_start().strip_prefix("lo:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
