//! The Slurm side: a one-machine cluster started by `benches/slurm/start.sh` (Debian 12's
//! Slurm 22.05: munged, slurmctld, slurmd and slurmrestd with JWT on 127.0.0.1:6820),
//! driven through `sbatch`/`scontrol` and slurmrestd's `openapi/v0.0.38`, the newest API
//! 22.05 ships (it has no data_parser plugins and no v0.0.39+).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use reqwest::blocking::Client;
use serde_json::{Value as Json, json};

use crate::measure::{COMMAND_TIMEOUT, Metric, Progress, Side};
use crate::proc;

/// slurmrestd's API version, as loaded by start.sh (`-s openapi/v0.0.38`).
pub const OPENAPI: &str = "v0.0.38";
const REST: &str = "http://127.0.0.1:6820/slurm/v0.0.38";
/// Exit status of start.sh when the packages are missing and installing was not allowed.
const NOT_INSTALLED: i32 = 3;

/// How starting Slurm went.
pub enum Start {
    Running(Slurm),
    /// The packages are missing; start.sh has said what to install.
    NotInstalled,
}

/// Runs `benches/slurm/stop.sh` when dropped (also when start.sh failed half way).
struct Daemons {
    scripts: PathBuf,
    dir: PathBuf,
}

impl Daemons {
    fn script(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.scripts.join(name));
        cmd.env("SLURM_DIR", &self.dir).stdout(Stdio::null());
        cmd
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        if let Err(e) = proc::status(&mut self.script("stop.sh"), None, Duration::from_secs(60)) {
            eprintln!("warning: stopping Slurm: {e:#}");
        }
    }
}

/// A running Slurm cluster.
pub struct Slurm {
    daemons: Daemons,
    user: String,
    token: String,
    client: Client,
    /// e.g. `slurm-wlm 22.05.8`
    pub version: String,
}

impl Slurm {
    /// Runs start.sh (which installs the Debian packages first when `install`).
    pub fn start(install: bool) -> Result<Start> {
        let daemons = Daemons {
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/slurm"),
            dir: std::env::var_os("SLURM_DIR").map_or_else(
                || PathBuf::from("/var/tmp/hpcpack-bench-slurm"),
                PathBuf::from,
            ),
        };
        let mut start = daemons.script("start.sh");
        if install {
            start.arg("--install");
        }
        // stderr goes to the terminal: apt-get's progress, or what to install.
        let status = proc::status(&mut start, None, Duration::from_secs(900))?;
        match status.code() {
            Some(0) => {}
            Some(NOT_INSTALLED) => return Ok(Start::NotInstalled),
            _ => bail!(
                "benches/slurm/start.sh failed ({status}); logs in {}/log",
                daemons.dir.display()
            ),
        }
        let mut slurm = Slurm {
            daemons,
            user: String::new(),
            token: String::new(),
            client: Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()?,
            version: String::new(),
        };
        slurm.user = proc::run_ok(Command::new("id").arg("-un"), COMMAND_TIMEOUT)?
            .trim()
            .to_string();
        let token = proc::run_ok(
            slurm.command("scontrol").args(["token", "lifespan=7200"]),
            COMMAND_TIMEOUT,
        )?;
        slurm.token = token
            .trim()
            .strip_prefix("SLURM_JWT=")
            .context("`scontrol token` printed no SLURM_JWT=")?
            .to_string();
        slurm.version = proc::run_ok(slurm.command("sinfo").arg("--version"), COMMAND_TIMEOUT)?
            .trim()
            .to_string();
        Ok(Start::Running(slurm))
    }

    /// A Slurm client command for this cluster, run from /tmp (the jobs' working directory).
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", self.daemons.dir.join("slurm.conf"))
            .current_dir("/tmp");
        cmd
    }

    fn rest(&self, builder: reqwest::blocking::RequestBuilder) -> Result<Json> {
        let resp = builder
            .header("X-SLURM-USER-NAME", &self.user)
            .header("X-SLURM-USER-TOKEN", &self.token)
            .send()?;
        let status = resp.status();
        let body: Json = resp
            .json()
            .with_context(|| format!("slurmrestd answered {status} and no JSON"))?;
        let errors = body["errors"].as_array().map_or(0, Vec::len);
        ensure!(
            status.is_success() && errors == 0,
            "slurmrestd: {status}: {}",
            body["errors"]
        );
        Ok(body)
    }

    /// Job ids still in the queue (pending, running, completing).
    fn queued(&self) -> Result<usize> {
        let out = proc::run_ok(
            self.command("squeue").args(["-h", "-o", "%i"]),
            COMMAND_TIMEOUT,
        )?;
        Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
    }
}

/// The id in `Submitted batch job 42`.
fn parse_submitted(stdout: &str) -> Result<u64> {
    stdout
        .trim()
        .strip_prefix("Submitted batch job ")
        .and_then(|id| id.parse().ok())
        .with_context(|| format!("no job id in sbatch output {:?}", stdout.trim()))
}

impl Side for Slurm {
    fn cli_submit(&self) -> Result<u64> {
        let out = proc::run_ok(
            self.command("sbatch")
                .args(["--wrap=true", "-n1", "-o", "/dev/null"]),
            COMMAND_TIMEOUT,
        )?;
        parse_submitted(&out)
    }

    fn rest_submit(&self) -> Result<u64> {
        // v0.0.38 wants `environment` as an object (v0.0.39+ take a list of "K=V").
        let body = json!({
            "script": "#!/bin/sh\ntrue",
            "job": {
                "name": "bench",
                "tasks": 1,
                "current_working_directory": "/tmp",
                "environment": {"PATH": "/usr/bin:/bin"},
                "standard_output": "/dev/null",
            }
        });
        let resp = self.rest(self.client.post(format!("{REST}/job/submit")).json(&body))?;
        resp["job_id"]
            .as_u64()
            .with_context(|| format!("no job_id in {resp}"))
    }

    fn progress(&self, id: u64) -> Result<Progress> {
        let resp = self.rest(self.client.get(format!("{REST}/job/{id}")))?;
        let job = &resp["jobs"][0];
        // a string in v0.0.38; a list (base state first, then flags) from v0.0.40 on
        let state = job["job_state"]
            .as_str()
            .or_else(|| job["job_state"][0].as_str());
        let state = state.with_context(|| format!("no job_state for job {id}"))?;
        Ok(match state {
            "COMPLETED" => Progress::Finished,
            "FAILED" | "CANCELLED" | "TIMEOUT" | "NODE_FAIL" | "BOOT_FAIL" | "OUT_OF_MEMORY"
            | "DEADLINE" | "PREEMPTED" => Progress::Ended(state.to_string()),
            _ => Progress::Active,
        })
    }

    /// Cancels whatever is left and waits for the queue to empty. Slurm starts jobs at about
    /// one pass a second here, so letting 1000 jobs run would take minutes; their submission
    /// has been measured already, and the run-through phase measures execution.
    fn settle(&self, _ids: &[u64], timeout: Duration) -> Result<()> {
        proc::run_ok(
            self.command("scancel").args(["-u", &self.user]),
            COMMAND_TIMEOUT,
        )?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = self.queued()?;
            if left == 0 {
                return Ok(());
            }
            proc::check_interrupt()?;
            ensure!(
                Instant::now() < deadline,
                "{left} Slurm jobs still queued {timeout:?} after scancel"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn view_commands(&self, id: u64) -> Vec<(Metric, Command)> {
        let mut job = self.command("scontrol");
        job.args(["show", "job", &id.to_string()]);
        vec![(Metric::JobView, job)]
    }
}
