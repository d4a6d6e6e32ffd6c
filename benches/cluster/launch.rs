//! Table 3: starting and finishing a 6-rank MPI program (`benches/cluster/init.c`: MPI_Init,
//! one line, MPI_Finalize) on 3 hosts, inside one `salloc -N3 -n6` allocation:
//!
//! - ours: `mpiexec -n 6 init`;
//! - MPICH: `mpiexec.mpich -launcher slurm -n 6 init`;
//! - `srun -n6 init`: the rig has no PMI plugin (`MpiDefault=none`), so each rank runs as an
//!   MPI singleton (size 1). It is the floor: six processes started through Slurm, no MPI job.
//!
//! Each line the program prints says its rank, its job's size and its host; the notes say what
//! each launcher really started, so a launcher that put every rank on one host shows.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::alloc::{self, Alloc, Cmd, Sample, Spec};
use crate::report::{Cell, Goal, Row, Stats, Table};

pub const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/cluster/init.c");
const RANKS: usize = 6;

const OURS: &str = "ours";
const MPICH: &str = "MPICH";
const SRUN: &str = "srun";

/// Runs `runs` rounds of the three launches and makes the rows.
pub fn measure(
    alloc: &Alloc,
    bins: Option<&Path>,
    prog: Result<&Path, &str>,
    runs: usize,
    timeout: Duration,
) -> Result<Table> {
    let mut table = Table::new(format!(
        "3. Launch: {RANKS} ranks of a trivial MPI program on 3 hosts, salloc -N3 -n{RANKS}, \
         median of {runs} runs (ratio = our time / the peer's: below 1, we are faster)"
    ));
    let n = RANKS.to_string();
    let samples = match prog {
        Err(e) => Err(e.to_string()),
        Ok(prog) => {
            let prog = prog.to_string_lossy().into_owned();
            let mut commands = Vec::new();
            if let Some(bins) = bins {
                commands.push(Cmd {
                    label: OURS.into(),
                    argv: vec![
                        bins.join("mpiexec").to_string_lossy().into_owned(),
                        "-n".into(),
                        n.clone(),
                        prog.clone(),
                    ],
                    env: Vec::new(),
                });
            }
            commands.push(Cmd {
                label: MPICH.into(),
                argv: vec![
                    "mpiexec.mpich".into(),
                    "-launcher".into(),
                    "slurm".into(),
                    "-n".into(),
                    n.clone(),
                    prog.clone(),
                ],
                env: Vec::new(),
            });
            commands.push(Cmd {
                label: SRUN.into(),
                argv: vec!["srun".into(), format!("-n{RANKS}"), prog],
                env: Vec::new(),
            });
            alloc.run(
                "launch",
                &["--nodes=3", &format!("--ntasks={RANKS}")],
                &Spec {
                    rounds: runs,
                    timeout_secs: timeout.as_secs(),
                    commands,
                },
            )?
        }
    };

    let series = |label: &str| -> (Cell, Option<Stats>) {
        let s = match &samples {
            Ok(s) => alloc::of(s, label),
            Err(e) => return (Cell::Failed(e.clone()), None),
        };
        let stats = Stats::new(s.iter().filter(|s| s.ok()).map(|s| s.secs).collect());
        let cell = match (&stats, s.iter().find_map(|s| s.error.clone())) {
            (Some(st), _) => Cell::ms(st.median()),
            (None, Some(e)) => Cell::Failed(e),
            (None, None) => Cell::Missing("no run".into()),
        };
        (cell, stats)
    };
    let (mut ours, ours_st) = if bins.is_some() {
        series(OURS)
    } else {
        (Cell::Missing("--skip-hpcpack".into()), None)
    };
    let (mut mpich, mpich_st) = series(MPICH);
    let (srun, srun_st) = series(SRUN);
    // A launch that did not spread one job over the allocation's hosts is not what is timed.
    if let Ok(s) = &samples {
        for (cell, label) in [(&mut ours, OURS), (&mut mpich, MPICH)] {
            if let Some(st) = started(&alloc::of(s, label)) {
                if !st.is_job_on_all_hosts() {
                    *cell = Cell::Failed(format!(
                        "started {st}, not one job of {RANKS} ranks on the allocation's 3 hosts"
                    ));
                }
            }
        }
    }
    // The goal is against the faster of the two peers.
    let mpich_faster = match (&mpich, &mpich_st, &srun_st) {
        (Cell::Value { .. }, Some(a), Some(b)) => a.median() <= b.median(),
        (Cell::Value { .. }, Some(_), None) => true,
        _ => false,
    };
    table.rows.push(Row {
        what: format!("mpiexec -n {RANKS} | mpiexec.mpich -launcher slurm -n {RANKS}"),
        ours: ours.clone(),
        peer: mpich,
        goal: mpich_faster.then_some(Goal::AtMost(1.0)),
    });
    table.rows.push(Row {
        what: format!("mpiexec -n {RANKS} | srun -n{RANKS} (singletons: no PMI plugin)"),
        ours,
        peer: srun,
        goal: (!mpich_faster).then_some(Goal::AtMost(1.0)),
    });
    table
        .notes
        .push("the goal (<= 1.0x) is on the row of the faster peer".into());
    for (name, st) in [
        ("mpiexec", &ours_st),
        ("mpiexec.mpich", &mpich_st),
        ("srun", &srun_st),
    ] {
        if let Some(st) = st {
            table
                .notes
                .push(format!("{name} (min / median / max): {}", st.spread_ms()));
        }
    }
    if let Ok(s) = &samples {
        for (name, label) in [("mpiexec", OURS), ("mpiexec.mpich", MPICH), ("srun", SRUN)] {
            if let Some(st) = started(&alloc::of(s, label)) {
                table.notes.push(format!("{name} started {st}"));
            }
        }
    }
    Ok(table)
}

/// What one launch started, from the lines its ranks printed.
struct Started {
    ranks: usize,
    sizes: BTreeSet<String>,
    hosts: BTreeSet<String>,
}

impl Started {
    fn is_job_on_all_hosts(&self) -> bool {
        let size = RANKS.to_string();
        self.ranks == RANKS && self.sizes.iter().all(|s| *s == size) && self.hosts.len() == 3
    }
}

impl std::fmt::Display for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: Vec<&str> = self.sizes.iter().map(String::as_str).collect();
        let hosts: Vec<&str> = self.hosts.iter().map(String::as_str).collect();
        write!(
            f,
            "{} ranks of MPI_Comm_size {} on {} host{} ({})",
            self.ranks,
            sizes.join("/"),
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" },
            hosts.join(" ")
        )
    }
}

/// What the first run that worked printed.
fn started(samples: &[&Sample]) -> Option<Started> {
    let s = samples.iter().find(|s| s.ok())?;
    let mut st = Started {
        ranks: 0,
        sizes: BTreeSet::new(),
        hosts: BTreeSet::new(),
    };
    for line in s.stdout.lines() {
        let Some(rest) = line.strip_prefix("init ") else {
            continue;
        };
        st.ranks += 1;
        for kv in rest.split_whitespace() {
            if let Some(v) = kv.strip_prefix("size=") {
                st.sizes.insert(v.to_string());
            } else if let Some(v) = kv.strip_prefix("host=") {
                st.hosts.insert(v.to_string());
            }
        }
    }
    Some(st)
}
