//! MPICH's side: `benches/pingpong/pingpong.c` built with `mpicc.mpich -O2`, launched by
//! `mpiexec.mpich -n 2 -bind-to core`, all sizes in one launch per path.
//!
//! How its TCP path is forced depends on the device it was built with (`mpichversion`):
//! - `ch4:ucx` (Debian 12's MPICH 4.0.2): two ranks on one machine talk through UCX's own
//!   shared-memory transports. `UCX_TLS=tcp,self UCX_NET_DEVICES=lo` leaves UCX only TCP over
//!   loopback, and `MPIR_CVAR_NOLOCAL=1` keeps any CH4 shared-memory module out of the way.
//!   Checked: `ss -tnp` shows the ranks' TCP connections only with these variables, and the
//!   1-byte latency goes from about 0.2-0.4 µs to 13-20 µs.
//! - `ch4:ofi`: `MPIR_CVAR_NOLOCAL=1 FI_PROVIDER=tcp` (not tried here).
//! - `ch3:nemesis`: `MPIR_CVAR_NOLOCAL=1` (nemesis' network module is TCP; not tried here).

use std::path::{Path as FsPath, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::child;
use crate::measure::{Path, PathResults, Plan, Sample};

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pingpong/pingpong.c");

/// A built ping-pong program and what MPICH it runs on.
pub struct Mpich {
    exe: PathBuf,
    /// e.g. `4.0.2`.
    pub version: String,
    /// e.g. `ch4:ucx`.
    pub device: String,
}

/// The Debian packages of this side.
pub const PACKAGES: [&str; 2] = ["mpich", "libmpich-dev"];

impl Mpich {
    /// Whether `mpicc.mpich` and `mpiexec.mpich` are installed.
    pub fn installed() -> bool {
        ["mpicc.mpich", "mpiexec.mpich", "mpichversion"]
            .iter()
            .all(|p| child::which(p).is_some())
    }

    /// Builds the C program into `out_dir` and asks MPICH what it is.
    pub fn build(out_dir: &FsPath, work: &FsPath) -> Result<Self> {
        std::fs::create_dir_all(out_dir)
            .with_context(|| format!("creating {}", out_dir.display()))?;
        let exe = out_dir.join("pingpong-mpich");
        let mut cc = Command::new("mpicc.mpich");
        cc.args(["-O2", "-o"]).arg(&exe).arg(SOURCE);
        let ran = child::run(&mut cc, work, Duration::from_secs(120))?;
        if !ran.success() {
            bail!("{}", ran.failure(&child::describe(&cc)));
        }
        let mut info = Command::new("mpichversion");
        let ran = child::run(&mut info, work, Duration::from_secs(30))?;
        let field = |name: &str| {
            ran.stdout
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim_start_matches(':').trim().to_string())
                .unwrap_or_else(|| "?".into())
        };
        Ok(Mpich {
            exe,
            version: field("MPICH Version"),
            device: field("MPICH Device"),
        })
    }

    /// The environment that moves rank-to-rank traffic onto TCP loopback (see the module docs).
    pub fn tcp_env(&self) -> &'static [(&'static str, &'static str)] {
        if self.device.contains("ucx") {
            &[
                ("MPIR_CVAR_NOLOCAL", "1"),
                ("UCX_TLS", "tcp,self"),
                ("UCX_NET_DEVICES", "lo"),
            ]
        } else if self.device.contains("ofi") {
            &[("MPIR_CVAR_NOLOCAL", "1"), ("FI_PROVIDER", "tcp")]
        } else {
            &[("MPIR_CVAR_NOLOCAL", "1")]
        }
    }

    /// Every size on one path, in one launch. A failed launch is an error in the results.
    pub fn measure(
        &self,
        plan: &Plan,
        path: Path,
        work: &FsPath,
        timeout: Duration,
    ) -> PathResults {
        eprintln!("[mpich] {}", path.name());
        let mut results = PathResults::default();
        match self.run(plan, path, work, timeout) {
            Ok(samples) => results.samples = samples.into_iter().collect(),
            Err(e) => {
                let e = format!("{}: {e:#}", path.name());
                eprintln!("[mpich] {e}");
                results.errors.push(e);
            }
        }
        for &(size, _) in &plan.sizes {
            if !results.samples.contains_key(&size) && results.errors.is_empty() {
                results
                    .errors
                    .push(format!("{}: no line for {size} B", path.name()));
            }
        }
        results
    }

    fn run(
        &self,
        plan: &Plan,
        path: Path,
        work: &FsPath,
        timeout: Duration,
    ) -> Result<Vec<(u64, Sample)>> {
        let mut cmd = Command::new("mpiexec.mpich");
        cmd.args(["-n", "2", "-bind-to", "core"]).arg(&self.exe);
        for (size, iterations) in &plan.sizes {
            cmd.arg(format!("{size}:{iterations}"));
        }
        // Whatever the caller's environment says about transports would skew one path.
        for var in [
            "MPIR_CVAR_NOLOCAL",
            "UCX_TLS",
            "UCX_NET_DEVICES",
            "FI_PROVIDER",
        ] {
            cmd.env_remove(var);
        }
        if path == Path::Tcp {
            cmd.envs(self.tcp_env().iter().copied());
        }
        let ran = child::run(&mut cmd, work, timeout)?;
        if !ran.success() {
            bail!("{}", ran.failure(&child::describe(&cmd)));
        }
        ran.stdout.lines().filter_map(parse_line).collect()
    }
}

/// `pingpong size=<bytes> iterations=<n> latency_usec=<µs> mbps=<MB/s>`; other lines: None.
fn parse_line(line: &str) -> Option<Result<(u64, Sample)>> {
    let rest = line.strip_prefix("pingpong ")?;
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .with_context(|| format!("no {name}= in '{line}'"))
    };
    Some((|| {
        let size: u64 = field("size")?
            .parse()
            .with_context(|| format!("bad size in '{line}'"))?;
        let latency: f64 = field("latency_usec")?
            .parse()
            .with_context(|| format!("bad latency in '{line}'"))?;
        let mbps: f64 = field("mbps")?
            .parse()
            .with_context(|| format!("bad mbps in '{line}'"))?;
        Ok((
            size,
            Sample {
                latency_usec: latency,
                mbps,
            },
        ))
    })())
}
