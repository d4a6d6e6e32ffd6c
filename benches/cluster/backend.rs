//! Table 1: our CLIs on Slurm (`CCP_SCHEDULER=slurm`) against Slurm's own commands, as whole
//! processes on the rig's head.
//!
//! Each row runs the two sides N times in pairs, the order flipping from pair to pair, so that
//! a burst of load elsewhere on the machine hits both alike. `job view` and `node list` are
//! timed twice: reading through the rig's slurmrestd (the default where it answers) and
//! through Slurm's commands only (`HPCPACK_SLURM_URL=none`, as on a site without slurmrestd).
//! Next to the commands' rows runs, alone, the Slurm command ours runs inside (`squeue -j <id>
//! -o <fields>` for `job view`, `sinfo -N -o <fields>` for `node list`; for `job submit` that is
//! `sbatch`, the peer itself): ours minus it is what our own code costs (start-up, the job's
//! record, reading Slurm's answer).
//!
//! Submitted jobs are cancelled right after each pair (untimed), so neither side's jobs run
//! and load the machine while the other is timed; they need not run to be measured.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::proc;
use crate::report::{Cell, Goal, Row, Stats, Table, one_line};
use crate::rig::Rig;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The goal: each of our commands at most 1.5 times its peer's time.
const GOAL: Goal = Goal::AtMost(1.5);

/// Our CLIs, on the rig's Slurm, with a state directory of their own.
pub struct Ours<'a> {
    pub bins: &'a Path,
    pub state: PathBuf,
    pub rig: &'a Rig,
}

impl Ours<'_> {
    /// `tool` reading through slurmrestd (`rest`) or Slurm's commands only.
    fn via(&self, tool: &str, rest: bool) -> Command {
        let mut cmd = self.rig.command(self.bins.join(tool));
        cmd.env("CCP_SCHEDULER", "slurm")
            .env("HPCPACK_STATE_DIR", &self.state)
            .env("HPCPACK_SLURM_URL", if rest { "http://127.0.0.1:6820" } else { "none" });
        cmd
    }

    fn command(&self, tool: &str) -> Command {
        self.via(tool, false)
    }
}

/// The fields `job view` and `node list` ask Slurm's commands for (as
/// `hpcpack::slurm::text` does).
const SQUEUE_FIELDS: &str = "%i\x1f%j\x1f%u\x1f%U\x1f%T\x1f%r\x1f%N\x1f%P\x1f%V\x1f%S\x1f%e";
const SINFO_FIELDS: &str = "%N\x1f%T\x1f%c\x1f%m\x1f%C\x1f%P\x1f%f\x1f%X";

/// What one timed run gave: its time and stdout, or its one-line error.
type Timed = std::result::Result<(Duration, String), String>;

fn time(cmd: &mut Command) -> Result<Timed> {
    proc::check_interrupt()?;
    let t0 = Instant::now();
    let out = match proc::run(cmd, COMMAND_TIMEOUT) {
        Ok(o) => o,
        Err(e) => {
            proc::check_interrupt()?;
            return Ok(Err(format!("{e:#}")));
        }
    };
    let took = t0.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Ok(Err(one_line(
            &String::from_utf8_lossy(&out.stderr),
            &stdout,
            &format!("{} exited with {}", proc::describe(cmd), out.status),
        )));
    }
    Ok(Ok((took, stdout)))
}

/// Samples of one command, and its first error.
#[derive(Default)]
struct Series {
    times: Vec<Duration>,
    error: Option<String>,
}

impl Series {
    /// Keeps the time; returns the stdout of a run that worked.
    fn add(&mut self, t: Timed) -> Option<String> {
        match t {
            Ok((d, out)) => {
                self.times.push(d);
                Some(out)
            }
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    fn stats(&self) -> Option<Stats> {
        Stats::from_durations(&self.times)
    }

    /// The median, or the failure when no run worked.
    fn cell(&self) -> Cell {
        match (self.stats(), &self.error) {
            (Some(s), _) => Cell::ms(s.median()),
            (None, Some(e)) => Cell::Failed(e.clone()),
            (None, None) => Cell::Missing("not run".into()),
        }
    }

    fn describe(&self, name: &str) -> String {
        let spread = self.stats().map_or("no sample".into(), |s| s.spread_ms());
        match &self.error {
            Some(e) if !self.times.is_empty() => {
                format!("{name}: {spread}; some runs failed: {e}")
            }
            _ => format!("{name}: {spread}"),
        }
    }
}

/// The job id in `job submit`'s answer (`Job has been submitted. ID: 42.`).
fn our_id(stdout: &str) -> Option<u64> {
    let tail = stdout.rsplit("ID:").next()?;
    tail.trim().trim_end_matches('.').parse().ok()
}

/// The job id in `Submitted batch job 42`.
fn slurm_id(stdout: &str) -> Option<u64> {
    stdout
        .trim()
        .strip_prefix("Submitted batch job ")?
        .parse()
        .ok()
}

/// Runs the three rows, `runs` pairs each.
pub fn measure(ours: &Ours, runs: usize) -> Result<Table> {
    std::fs::create_dir_all(&ours.state)
        .with_context(|| format!("creating {}", ours.state.display()))?;
    let rig = ours.rig;
    let mut table = Table::new(format!(
        "1. Backend overhead: whole-process wall time on the head, median of {runs} paired runs \
         (ratio = our time / Slurm's: below 1, we are faster)"
    ));

    eprintln!("[backend] job submit / sbatch: {runs} pairs");
    let (mut ours_s, mut peer_s) = (Series::default(), Series::default());
    for i in 0..runs {
        let mut ids = Vec::new();
        for side in order(i) {
            if side == 0 {
                let mut c = ours.command("job");
                c.args(["submit", "/numcores:1", "true"]);
                if let Some(out) = ours_s.add(time(&mut c)?) {
                    match our_id(&out) {
                        Some(id) => ids.push(id),
                        None => {
                            ours_s.error.get_or_insert(format!(
                                "no job id in job submit's answer {:?}",
                                out.trim()
                            ));
                        }
                    }
                }
            } else {
                let mut c = rig.command("sbatch");
                c.args(["--wrap=true", "-n1", "-o", "/dev/null"]);
                if let Some(out) = peer_s.add(time(&mut c)?) {
                    ids.extend(slurm_id(&out));
                }
            }
        }
        cancel(rig, &ids);
    }
    table.rows.push(Row {
        what: "job submit /numcores:1 true | sbatch --wrap=true -n1".into(),
        ours: ours_s.cell(),
        peer: peer_s.cell(),
        goal: Some(GOAL),
    });
    let mut notes = vec![
        ours_s.describe("job submit (min / median / max)"),
        peer_s.describe("sbatch"),
    ];
    if let (Some(a), Some(b)) = (ours_s.stats(), peer_s.stats()) {
        notes.push(format!(
            "job submit runs one sbatch: our own cost (start-up, the job's record) \
             = {:.1} ms of {:.1} ms",
            (a.median() - b.median()) * 1e3,
            a.median() * 1e3
        ));
    }

    // One job of ours, viewed by both sides (Slurm knows it as any other job).
    eprintln!("[backend] job view / scontrol show job: {runs} pairs");
    let mut c = ours.command("job");
    c.args(["submit", "/numcores:1", "true"]);
    let view_job = match time(&mut c)? {
        Ok((_, out)) => our_id(&out).ok_or_else(|| format!("no job id in {:?}", out.trim())),
        Err(e) => Err(e),
    };
    for rest in [true, false] {
        let how = if rest { "slurmrestd" } else { "commands" };
        let (mut ours_v, mut peer_v, mut inner_v) = (Series::default(), Series::default(), Series::default());
        match &view_job {
            Ok(id) => {
                let id = id.to_string();
                for i in 0..runs {
                    for side in order(i) {
                        if side == 0 {
                            ours_v.add(time(ours.via("job", rest).args(["view", &id]))?);
                        } else {
                            peer_v.add(time(rig.command("scontrol").args(["show", "job", &id]))?);
                        }
                    }
                    if !rest {
                        inner_v.add(time(rig.command("squeue").args(["-h", "-a", "-j", &id, "-o", &unescape(SQUEUE_FIELDS)]))?);
                    }
                }
            }
            Err(e) => {
                ours_v.error = Some(format!("submitting the job to view: {e}"));
                peer_v.error = ours_v.error.clone();
            }
        }
        let inner = (!rest).then_some(("squeue", "squeue -j <id> -o <fields>", &inner_v));
        push_row(&mut table, &mut notes, ("job view", "scontrol show job <id>", how), &ours_v, &peer_v, inner);
    }
    if let Ok(id) = &view_job {
        cancel(rig, &[*id]);
    }

    eprintln!("[backend] node list / sinfo: {runs} pairs");
    for rest in [true, false] {
        let how = if rest { "slurmrestd" } else { "commands" };
        let (mut ours_n, mut peer_n, mut inner_n) = (Series::default(), Series::default(), Series::default());
        for i in 0..runs {
            for side in order(i) {
                if side == 0 {
                    ours_n.add(time(ours.via("node", rest).arg("list"))?);
                } else {
                    peer_n.add(time(&mut rig.command("sinfo"))?);
                }
            }
            if !rest {
                inner_n.add(time(rig.command("sinfo").args(["-N", "-h", "-o", &unescape(SINFO_FIELDS)]))?);
            }
        }
        let inner = (!rest).then_some(("sinfo", "sinfo -N -o <fields>", &inner_n));
        push_row(&mut table, &mut notes, ("node list", "sinfo", how), &ours_n, &peer_n, inner);
    }
    table.notes = notes;
    Ok(table)
}

/// A row of ours (`what`: our command, the peer's, how ours reads) against
/// the peer, with its notes; `inner`: the Slurm command ours runs (its
/// name, its command line, its times alone), for the split of our time.
fn push_row(table: &mut Table, notes: &mut Vec<String>, what: (&str, &str, &str), ours: &Series, peer: &Series, inner: Option<(&str, &str, &Series)>) {
    let (ours_cmd, peer_cmd, how) = what;
    table.rows.push(Row {
        what: format!("{ours_cmd} ({how}) | {peer_cmd}"),
        ours: ours.cell(),
        peer: peer.cell(),
        goal: Some(GOAL),
    });
    notes.push(ours.describe(&format!("{ours_cmd} ({how})")));
    notes.push(peer.describe(peer_cmd));
    if let Some((name, line, times)) = inner {
        notes.push(times.describe(&format!("{line} (what {ours_cmd} runs), alone")));
        notes.extend(own_cost(ours_cmd, ours, name, times));
    }
}

/// `\x1f` in a field list as the character itself.
fn unescape(fields: &str) -> String {
    fields.replace("\\x1f", "\u{1f}")
}


/// "ours = inner + own" in medians.
fn own_cost(what: &str, ours: &Series, inner_name: &str, inner: &Series) -> Option<String> {
    let (a, b) = (ours.stats()?, inner.stats()?);
    Some(format!(
        "{what} = {inner_name} {:.1} ms + our own {:.1} ms (medians)",
        b.median() * 1e3,
        (a.median() - b.median()) * 1e3
    ))
}

/// Which side goes first in pair `i`: ours (0) on even pairs, the peer (1) on odd ones.
fn order(i: usize) -> [u8; 2] {
    if i % 2 == 0 { [0, 1] } else { [1, 0] }
}

/// Cancels the jobs the bench submitted (by id: the rig is shared, other people's jobs stay).
fn cancel(rig: &Rig, ids: &[u64]) {
    if ids.is_empty() {
        return;
    }
    let mut c = rig.command("scancel");
    c.args(ids.iter().map(u64::to_string));
    if let Err(e) = proc::run_ok(&mut c, COMMAND_TIMEOUT) {
        eprintln!("[backend] warning: {e:#}");
    }
}
