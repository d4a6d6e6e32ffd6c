//! Our side: an embedded head node (`hpcd local start`) in a fresh state directory, driven
//! through the release CLIs (`job`, `task`) and the HPC Pack REST API on `<state>/hpcd.sock`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use reqwest::blocking::Client;
use serde_json::{Value as Json, json};

use crate::measure::{COMMAND_TIMEOUT, Metric, Progress, Side, wait_all};
use crate::proc;

/// Where the CLIs and `hpcd` keep their state (socket included); see `src/env.rs`.
const HPCPACK_STATE_DIR: &str = "HPCPACK_STATE_DIR";
/// Names a remote head node; unset so the CLIs use the local one.
const CCP_SCHEDULER: &str = "CCP_SCHEDULER";
/// Base of the REST API; the host is ignored on a Unix socket.
const REST: &str = "http://localhost/hpc";

/// Where the release binaries `job`, `task` and `hpcd` are.
pub struct Bins(PathBuf);

impl Bins {
    /// See [`crate::common::release_dir`].
    pub fn locate() -> Result<Self> {
        crate::common::release_dir(&["job", "task", "hpcd"]).map(Bins)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

/// Stops the head node when dropped (also when starting it failed half way).
struct Daemon {
    hpcd: PathBuf,
    state: tempfile::TempDir,
}

impl Daemon {
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env(HPCPACK_STATE_DIR, self.state.path())
            .env_remove(CCP_SCHEDULER);
        cmd
    }

    fn log(&self) -> PathBuf {
        self.state.path().join("bench-hpcd.log")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let mut cmd = self.command(&self.hpcd);
        cmd.args(["local", "stop"]);
        match proc::status(&mut cmd, Some(&self.log()), Duration::from_secs(30)) {
            Ok(s) if s.success() => {}
            Ok(s) => eprintln!(
                "warning: `hpcd local stop` failed ({s}); see {}",
                self.log().display()
            ),
            Err(e) => eprintln!("warning: {e:#}"),
        }
    }
}

/// A running head node.
pub struct HeadNode {
    bins: Bins,
    daemon: Daemon,
    client: Client,
}

impl HeadNode {
    pub fn start(bins: Bins) -> Result<Self> {
        let state = tempfile::Builder::new()
            .prefix("hpcpack-bench-")
            .tempdir()
            .context("creating a state directory")?;
        let daemon = Daemon {
            hpcd: bins.path("hpcd"),
            state,
        };
        let mut cmd = daemon.command(&daemon.hpcd);
        cmd.args(["local", "start"]);
        let status = proc::status(&mut cmd, Some(&daemon.log()), Duration::from_secs(60))?;
        if !status.success() {
            let log = std::fs::read_to_string(daemon.log()).unwrap_or_default();
            bail!("`hpcd local start` failed ({status}): {}", log.trim());
        }
        let sock = daemon.state.path().join("hpcd.sock");
        ensure!(
            sock.exists(),
            "`hpcd local start` returned but {} does not exist",
            sock.display()
        );
        let client = Client::builder()
            .unix_socket(sock)
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the REST client")?;
        Ok(HeadNode {
            bins,
            daemon,
            client,
        })
    }

    fn cli(&self, name: &str) -> Command {
        self.daemon.command(&self.bins.path(name))
    }

    /// POSTs a JSON body and returns the response body (empty for 204).
    fn post(&self, path: &str, body: &Json) -> Result<String> {
        let url = format!("{REST}{path}");
        let resp = self
            .client
            .post(&url)
            .json(body)
            .send()
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        ensure!(status.is_success(), "POST {url}: {status}: {}", text.trim());
        Ok(text)
    }
}

/// Reads a job or task id answered as a JSON integer (or, leniently, a string of digits).
fn parse_id(body: &str) -> Result<u64> {
    let v: Json =
        serde_json::from_str(body.trim()).with_context(|| format!("not JSON: {body:?}"))?;
    match &v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
    .with_context(|| format!("expected an id, got {body:?}"))
}

/// The id in `Job has been submitted. ID: 42.`
fn parse_submitted(stdout: &str) -> Result<u64> {
    stdout
        .split("ID:")
        .nth(1)
        .and_then(|rest| {
            rest.trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()
        })
        .and_then(|digits| digits.parse().ok())
        .with_context(|| format!("no job id in `job submit` output {:?}", stdout.trim()))
}

impl Side for HeadNode {
    fn cli_submit(&self) -> Result<u64> {
        let out = proc::run_ok(
            self.cli("job").args(["submit", "/numcores:1", "true"]),
            COMMAND_TIMEOUT,
        )?;
        parse_submitted(&out)
    }

    fn rest_submit(&self) -> Result<u64> {
        let job = json!([
            {"Name": "Name", "Value": "bench"},
            {"Name": "UnitType", "Value": "Core"},
            {"Name": "MinCores", "Value": "1"},
            {"Name": "MaxCores", "Value": "1"},
        ]);
        let id = parse_id(&self.post("/jobs", &job)?)?;
        parse_id(&self.post(
            &format!("/jobs/{id}/tasks"),
            &json!([{"Name": "CommandLine", "Value": "true"}]),
        )?)?;
        self.post(&format!("/jobs/{id}/submit"), &json!([]))?;
        Ok(id)
    }

    fn rest_submit_one(&self) -> Result<u64> {
        let spec = json!({
            "Properties": [{"Name": "Name", "Value": "bench"}, {"Name": "MinCores", "Value": "1"}, {"Name": "MaxCores", "Value": "1"}],
            "Tasks": [{"Properties": [{"Name": "CommandLine", "Value": "true"}]}],
        });
        let url = "http://localhost/hpcpack/v1/jobs";
        let resp = self.client.post(url).json(&spec).send().with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        ensure!(status.is_success(), "POST {url}: {status}: {}", text.trim());
        parse_id(&text)
    }

    fn progress(&self, id: u64) -> Result<Progress> {
        let url = format!("{REST}/jobs/{id}?properties=State");
        let resp = self
            .client
            .get(&url)
            .send()
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        ensure!(status.is_success(), "GET {url}: {status}");
        let props: Vec<Json> = resp
            .json()
            .with_context(|| format!("GET {url}: not a property list"))?;
        let state = props
            .iter()
            .find(|p| p["Name"] == "State")
            .and_then(|p| p["Value"].as_str())
            .with_context(|| format!("GET {url}: no State"))?;
        Ok(match state {
            "Finished" => Progress::Finished,
            "Failed" | "Canceled" => Progress::Ended(state.to_string()),
            _ => Progress::Active,
        })
    }

    /// Waits for every job to finish: the head node runs them, nothing is cancelled.
    fn settle(&self, ids: &[u64], timeout: Duration) -> Result<()> {
        wait_all(self, ids, timeout).map(drop)
    }

    fn view_commands(&self, id: u64) -> Vec<(Metric, Command)> {
        let mut job = self.cli("job");
        job.args(["view", &id.to_string()]);
        let mut task = self.cli("task");
        task.args(["view", &format!("{id}.1")]);
        vec![(Metric::JobView, job), (Metric::TaskView, task)]
    }
}
