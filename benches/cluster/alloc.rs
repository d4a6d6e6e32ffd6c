//! Timing commands inside one Slurm allocation.
//!
//! `salloc` runs its command on the submitting host (the rig's head, this machine's own network
//! namespace) with the allocation's variables set (`SLURM_JOB_ID`, `SLURM_NODELIST`, ...), so
//! the launchers started from there place their ranks on the allocation's nodes. That command
//! is this bench binary again, in its hidden `--driver <spec>` mode ([`drive`]): it runs the
//! spec's commands for some rounds, each round in a rotated order so that no side always goes
//! first, times each as a whole process (from spawning it until it has exited and closed its
//! output), and rewrites `<spec>.out` with every sample so far. The wait for the allocation, and
//! salloc's own start and end, are in no number.
//!
//! The driver also counts the bytes that entered the rig's bridge from the nodes (the
//! `rx_bytes` of the head-side veth ends `hv1`.., read in the head's namespace) during each
//! command: traffic from one node to another is counted once, so a cross-host ping-pong shows
//! its payload there, and a run that moved nothing did not go between hosts.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::proc;
use crate::report::one_line;
use crate::rig::Rig;

/// What the driver runs.
#[derive(Serialize, Deserialize, Debug)]
pub struct Spec {
    pub rounds: usize,
    /// Time limit of each command.
    pub timeout_secs: u64,
    pub commands: Vec<Cmd>,
}

/// One measured command. `{round}` in an argument becomes the round's number.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Cmd {
    pub label: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// One run of one command.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Sample {
    pub label: String,
    pub round: usize,
    pub secs: f64,
    /// Its one-line error when it failed (exit status, time limit).
    pub error: Option<String>,
    pub stdout: String,
    /// Bytes that entered the rig's bridge from the nodes meanwhile.
    pub node_bytes: Option<u64>,
}

impl Sample {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

fn out_path(spec: &Path) -> PathBuf {
    let mut p = spec.as_os_str().to_owned();
    p.push(".out");
    PathBuf::from(p)
}

/// The driver: runs the spec in `spec_path`, writing the samples next to it.
pub fn drive(spec_path: &Path) -> Result<()> {
    // salloc runs the driver in a process group of its own: when salloc ends (the bench gave
    // up, or the allocation was cancelled) SIGTERM reaches the driver this way instead, and
    // ends the command it is running at the next check.
    // SAFETY: prctl(2) with PR_SET_PDEATHSIG only sets a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    // SAFETY: getppid(2) cannot fail. Parent gone before the prctl: init adopted us.
    if unsafe { libc::getppid() } == 1 {
        bail!("salloc ended before the driver started");
    }
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("reading {}", spec_path.display()))?;
    let spec: Spec = serde_json::from_str(&text).context("the driver's spec")?;
    let timeout = Duration::from_secs(spec.timeout_secs.max(1));
    let out = out_path(spec_path);
    let mut samples = Vec::new();
    let n = spec.commands.len();
    for round in 0..spec.rounds {
        for i in 0..n {
            proc::check_interrupt()?;
            let c = &spec.commands[(round + i) % n];
            let argv: Vec<String> = c
                .argv
                .iter()
                .map(|a| a.replace("{round}", &round.to_string()))
                .collect();
            eprintln!("[driver] round {}/{}: {}", round + 1, spec.rounds, c.label);
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]).envs(c.env.iter().map(|(k, v)| (k, v)));
            let before = node_bytes();
            let t0 = Instant::now();
            let ran = proc::run(&mut cmd, timeout);
            let secs = t0.elapsed().as_secs_f64();
            // Ended from outside: the bench is gone or going, and so is its directory.
            proc::check_interrupt()?;
            let node_bytes = before.zip(node_bytes()).map(|(a, b)| b.saturating_sub(a));
            let (error, stdout) = match ran {
                Ok(o) => {
                    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
                    let error = (!o.status.success()).then(|| {
                        one_line(
                            &String::from_utf8_lossy(&o.stderr),
                            &stdout,
                            &format!("exited with {}", o.status),
                        )
                    });
                    (error, stdout)
                }
                Err(e) => (Some(format!("{e:#}")), String::new()),
            };
            samples.push(Sample {
                label: c.label.clone(),
                round,
                secs,
                error,
                stdout,
                node_bytes,
            });
            std::fs::write(&out, serde_json::to_vec(&samples)?)
                .with_context(|| format!("writing {}", out.display()))?;
        }
    }
    Ok(())
}

/// The sum of `rx_bytes` over the head-side veth ends of the nodes (`hv1`, `hv2`, ...).
fn node_bytes() -> Option<u64> {
    let mut total = 0;
    let mut found = false;
    for entry in std::fs::read_dir("/sys/class/net").ok()?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name
            .strip_prefix("hv")
            .is_some_and(|n| n.parse::<u32>().is_ok())
        {
            let v = std::fs::read_to_string(entry.path().join("statistics/rx_bytes")).ok()?;
            total += v.trim().parse::<u64>().ok()?;
            found = true;
        }
    }
    found.then_some(total)
}

/// How long salloc may wait for its nodes (`--immediate`), and a name that marks the bench's
/// allocations, so that a stuck one can be cancelled without touching anyone else's.
pub struct Alloc<'a> {
    pub rig: &'a Rig,
    pub wait: Duration,
    pub name: String,
    pub work: &'a Path,
}

impl Alloc<'_> {
    /// Runs `spec` under `salloc <options>`; the samples, or salloc's one-line error when the
    /// driver did not run at all (no allocation, rig down). Samples of a driver cut short by
    /// its time limit are kept.
    pub fn run(
        &self,
        tag: &str,
        options: &[&str],
        spec: &Spec,
    ) -> Result<Result<Vec<Sample>, String>> {
        let spec_path = self.work.join(format!("{tag}.json"));
        std::fs::write(&spec_path, serde_json::to_vec_pretty(spec)?)?;
        let out = out_path(&spec_path);
        let _ = std::fs::remove_file(&out);
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let mut salloc = self.rig.command("salloc");
        salloc
            .arg(format!("--job-name={}", self.name))
            .arg(format!("--immediate={}", self.wait.as_secs().max(1)))
            .args(options)
            .arg(&exe)
            .arg("--driver")
            .arg(&spec_path);
        let log = self.work.join(format!("{tag}.log"));
        let file = std::fs::File::create(&log)?;
        salloc
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0);
        let budget = self.wait
            + Duration::from_secs(
                (spec.rounds * spec.commands.len()) as u64 * spec.timeout_secs.max(1) + 30,
            );
        eprintln!(
            "[{tag}] salloc {}: {} rounds of {} commands (at most {} s; log {})",
            options.join(" "),
            spec.rounds,
            spec.commands.len(),
            budget.as_secs(),
            log.display()
        );
        let mut child = salloc.spawn().context("cannot run salloc")?;
        let deadline = Instant::now() + budget;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break Some(s);
            }
            if proc::check_interrupt().is_err() || Instant::now() >= deadline {
                self.cancel(&mut child);
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        proc::check_interrupt()?;
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        match std::fs::read(&out) {
            Ok(bytes) => {
                let samples: Vec<Sample> =
                    serde_json::from_slice(&bytes).context("the driver's samples")?;
                if status.is_none() {
                    eprintln!("[{tag}] cut short after {} s", budget.as_secs());
                }
                Ok(Ok(samples))
            }
            Err(_) => Ok(Err(match status {
                None => format!("salloc did not finish within {} s", budget.as_secs()),
                Some(s) => one_line(&said, "", &format!("salloc exited with {s}")),
            })),
        }
    }

    /// Ends a salloc that ran out of time (or was interrupted): its allocation is cancelled by
    /// name, then its process group gets SIGTERM and, 5 s later, SIGKILL.
    fn cancel(&self, child: &mut std::process::Child) {
        let _ = proc::run(
            self.rig
                .command("scancel")
                .arg(format!("--name={}", self.name)),
            Duration::from_secs(10),
        );
        let group = -(child.id() as libc::pid_t);
        // SAFETY: kill(2) on the process group salloc leads (process_group(0)).
        unsafe { libc::kill(group, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; what is left of the group (the driver, a launcher) goes too.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = child.wait();
    }
}

/// The samples of `label`, in round order.
pub fn of<'a>(samples: &'a [Sample], label: &str) -> Vec<&'a Sample> {
    samples.iter().filter(|s| s.label == label).collect()
}
