//! The `mpipingpong` program: parse, join the job, time each pair of the
//! schedule, and report on rank 0.
//!
//! Every rank walks the same schedule. Before each round all ranks meet at
//! a barrier; in the round, each pair exchanges `iterations` ping-pongs of
//! `size` bytes (the first sends, the second echoes), timed on the first
//! after one untimed round trip that opens the connection. The first then
//! sends the elapsed nanoseconds to rank 0, which prints a progress line per
//! pair with `-op` and the tables at the end, writes the XML and JSON files
//! and checks the thresholds.
//!
//! Each rank's CPUs (its affinity mask when it joined) reach rank 0 in the
//! card every rank publishes ([`Comm::cpus_of`]), so the reports can mark
//! the pairs whose ranks share a CPU ([`super::sharing`]).
//!
//! One rank per node: without `-m`, two ranks on the same node is an error.
//! The embedded cluster's virtual nodes all share this host, so ranks count
//! as being on different nodes when `HPCPACK_LOCAL_NODES` lists at least as
//! many nodes as there are ranks (`mpiexec -c 1` over them puts one rank on
//! each); otherwise the node names the ranks published are compared (the
//! node mpiexec placed each rank on, see [`crate::mpi::comm::own_node_name`]).
//!
//! Exit codes: 0 success, 1 a failed run or failed thresholds, 2 a bad
//! command line.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::options::{self, Command, Console, Metric, Mode, Options, PacketTest};
use super::pairing::{self, PairingError, Round};
use super::progress::Progress;
use super::report::{self, RunReport};
use super::sharing;
use super::stats::{self, Measurement, PairValue, StatsError};
use super::thresholds::{self, ThresholdsFailed};
use super::{json, xml};
use crate::env;
use crate::mpi::comm::{Comm, CommError};

/// Tag of the ping-pong messages.
const TAG_PING: u32 = 1;
/// Tag of a pair's elapsed nanoseconds, sent to rank 0.
const TAG_RESULT: u32 = 2;

/// Why a run failed.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Comm(#[from] CommError),
    #[error("mpipingpong needs at least 2 ranks: {0}")]
    Pairing(#[from] PairingError),
    #[error(
        "ranks {first} and {second} both run on node {node}; mpipingpong tests one rank per node, add -m to allow several"
    )]
    SharedNode {
        first: usize,
        second: usize,
        node: String,
    },
    #[error("{0}")]
    Stats(#[from] StatsError),
    #[error("writing {what} file {path}: {source}")]
    Write {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("rendering the json report: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Thresholds(#[from] ThresholdsFailed),
}

/// Prints `mpipingpong: <what>` on stderr in one write, so the lines of
/// several ranks reaching one terminal never interleave (std's stderr is
/// unbuffered: `eprintln!` writes each piece on its own).
fn complain(what: impl std::fmt::Display) {
    let line = format!("mpipingpong: {what}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let opts = match options::parse(&args) {
        Ok(Command::Help) => {
            print!("{}", options::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(o)) => o,
        Err(e) => {
            complain(&e);
            return ExitCode::from(2);
        }
    };
    let mut comm = match Comm::init() {
        Ok(c) => c,
        Err(e) => {
            complain(&e);
            return ExitCode::FAILURE;
        }
    };
    let local_nodes = std::env::var(env::HPCPACK_LOCAL_NODES)
        .map(|v| crate::mpi::mpiexec::local::parse_local_nodes(&v).len())
        .unwrap_or(0);
    let mut out = std::io::stdout();
    match run(&mut comm, &opts, local_nodes, &mut out) {
        Ok(()) => match comm.finalize() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                complain(&e);
                ExitCode::FAILURE
            }
        },
        Err(e @ (RunError::Thresholds(_) | RunError::SharedNode { .. } | RunError::Pairing(_))) => {
            // Every rank reaches these errors at the same point (shared
            // nodes and too few ranks are decided from data all ranks have;
            // only rank 0 judges thresholds), so nobody waits on a peer:
            // rank 0 says it once and all leave in order.
            if comm.rank() == 0 {
                complain(&e);
            }
            let _ = comm.finalize();
            ExitCode::FAILURE
        }
        Err(e) => {
            // Peers may be blocked on us: end the whole job.
            complain(format_args!("rank {}: {e}", comm.rank()));
            let _ = comm.abort(1);
            ExitCode::FAILURE
        }
    }
}

/// The schedule of `mode` over `n` participants.
pub fn schedule(mode: Mode, n: usize) -> Result<Vec<Round>, PairingError> {
    match mode {
        Mode::Serial => pairing::serial(n),
        Mode::Ring { step } => pairing::ring(n, step),
        Mode::Tournament => pairing::tournament(n),
    }
}

/// Participant labels: each rank's node, or `node[rank]` where several
/// ranks share a node (`-m`).
pub fn participants(nodes: &[String]) -> Vec<String> {
    nodes
        .iter()
        .enumerate()
        .map(|(r, n)| {
            if nodes.iter().filter(|m| *m == n).count() > 1 {
                format!("{n}[{r}]")
            } else {
                n.clone()
            }
        })
        .collect()
}

/// The first two ranks on one node, when that is not allowed.
fn shared_node(opts: &Options, nodes: &[String], local_nodes: usize) -> Option<RunError> {
    if opts.multiple_cores || local_nodes >= nodes.len() {
        return None;
    }
    for (a, na) in nodes.iter().enumerate() {
        if let Some(b) = nodes.iter().skip(a + 1).position(|nb| nb == na) {
            return Some(RunError::SharedNode {
                first: a,
                second: a + 1 + b,
                node: na.clone(),
            });
        }
    }
    None
}

/// One packet test on one pair; returns the elapsed time on `first`.
fn ping_pong(
    comm: &mut Comm,
    first: usize,
    second: usize,
    test: &PacketTest,
    buf: &mut [u8],
) -> Result<Option<Duration>, CommError> {
    let me = comm.rank();
    if me == first {
        // One untimed round trip opens the connection.
        comm.send(second, TAG_PING, buf)?;
        comm.recv(second, TAG_PING, buf)?;
        let start = Instant::now();
        for _ in 0..test.iterations {
            comm.send(second, TAG_PING, buf)?;
            comm.recv(second, TAG_PING, buf)?;
        }
        Ok(Some(start.elapsed()))
    } else {
        for _ in 0..=test.iterations {
            comm.recv(first, TAG_PING, buf)?;
            comm.send(first, TAG_PING, buf)?;
        }
        Ok(None)
    }
}

fn value_of(test: &PacketTest, elapsed: Duration) -> f64 {
    match test.metric {
        Metric::Latency => stats::latency_usec(test.iterations, elapsed),
        Metric::Throughput => stats::throughput_mbps(test.size, test.iterations, elapsed),
    }
}

fn write_file(what: &'static str, path: &Path, text: &str) -> Result<(), RunError> {
    let name = path.to_string_lossy();
    if name.eq_ignore_ascii_case("nul") {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|source| RunError::Write {
        what,
        path: name.into_owned(),
        source,
    })
}

/// Runs the whole test on this rank; rank 0 writes the console text to
/// `out`. `local_nodes` is how many nodes `HPCPACK_LOCAL_NODES` lists.
pub fn run(
    comm: &mut Comm,
    opts: &Options,
    local_nodes: usize,
    out: &mut dyn Write,
) -> Result<(), RunError> {
    let size = comm.size();
    let nodes: Vec<String> = (0..size).map(|r| comm.host_of(r).to_string()).collect();
    if let Some(e) = shared_node(opts, &nodes, local_nodes) {
        return Err(e);
    }
    let rounds = schedule(opts.mode, size)?;
    let total: usize = rounds.iter().map(Vec::len).sum();
    let me = comm.rank();
    let mut report = RunReport {
        mode: opts.mode,
        participants: participants(&nodes),
        places: sharing::places(size, |a, b| comm.same_machine(a, b), |r| comm.cpus_of(r)),
        outcomes: Vec::new(),
    };
    let progress = (me == 0 && opts.console == Console::Progress)
        .then(|| Progress::new(total * opts.tests.len()));
    for test in &opts.tests {
        let mut buf = comm.alloc_mem(test.size as usize)?;
        let mut measurements = Vec::with_capacity(total);
        for round in &rounds {
            comm.barrier()?;
            let mine = round.iter().find(|p| p.first == me || p.second == me);
            let mut own = None;
            if let Some(p) = mine {
                own = ping_pong(comm, p.first, p.second, test, &mut buf)?;
                if let Some(elapsed) = own
                    && me != 0
                {
                    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
                    comm.send(0, TAG_RESULT, &nanos.to_le_bytes())?;
                }
            }
            if me != 0 {
                continue;
            }
            for p in round {
                let elapsed = if p.first == 0 {
                    own.unwrap_or_default()
                } else {
                    let mut b = [0u8; 8];
                    comm.recv(p.first, TAG_RESULT, &mut b)?;
                    Duration::from_nanos(u64::from_le_bytes(b))
                };
                measurements.push(Measurement { pair: *p, elapsed });
                if let Some(progress) = &progress {
                    let line = report::progress_line(
                        &report,
                        test,
                        measurements.len(),
                        total,
                        &PairValue {
                            pair: *p,
                            value: value_of(test, elapsed),
                        },
                    );
                    progress.pair_done(out, &line);
                }
            }
        }
        if me == 0 {
            report.outcomes.push(stats::evaluate(*test, &measurements)?);
        }
    }
    if me != 0 {
        return Ok(());
    }
    if opts.console != Console::Quiet {
        if let Some(progress) = &progress {
            progress.finish(out);
        }
        let _ = write!(out, "{}", report::console(&report));
        let _ = out.flush();
    }
    if let Some(path) = &opts.xml_file {
        write_file("xml", path, &xml::render(&report, opts.xml_detail))?;
    }
    if let Some(path) = &opts.json_file {
        let failures = thresholds::check(&report, &opts.thresholds);
        write_file("json", path, &json::render(&report, &failures)?)?;
    }
    thresholds::verdict(&report, &opts.thresholds)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_mark_shared_nodes_with_the_rank() {
        let nodes = ["a".to_string(), "b".to_string(), "a".to_string()];
        assert_eq!(participants(&nodes), ["a[0]", "b", "a[2]"]);
    }

    #[test]
    fn shared_nodes_need_m_unless_local_nodes_cover_the_ranks() {
        let mut opts = match options::parse(&["-p", "1:1"]).unwrap() {
            Command::Run(o) => o,
            Command::Help => unreachable!(),
        };
        let nodes = ["h".to_string(), "h".to_string()];
        assert!(matches!(
            shared_node(&opts, &nodes, 0),
            Some(RunError::SharedNode {
                first: 0,
                second: 1,
                ..
            })
        ));
        assert!(shared_node(&opts, &nodes, 2).is_none());
        opts.multiple_cores = true;
        assert!(shared_node(&opts, &nodes, 0).is_none());
    }
}
