//! `mpipingpong`: the cluster validation test's options, pairings,
//! statistics and reports.
//!
//! The pure pieces: [`options`] reads the command line (spec §8),
//! [`pairing`] builds the serial, ring and tournament schedules, [`stats`]
//! turns round-trip timings into latency, throughput and summaries, and
//! [`report`], [`xml`], [`json`], [`thresholds`] produce the console text,
//! the XML results file, the JSON report and the pass/fail verdict, marking
//! the pairs whose ranks share a CPU ([`sharing`]); [`progress`] prints the
//! per-pair lines of `-op`. [`run`] is the program that glues them to MPI:
//! parse, build the schedule over the ranks, time each pair, then report.

mod help;
pub mod json;
pub mod options;
pub mod pairing;
pub mod progress;
pub mod report;
pub mod run;
pub mod sharing;
pub mod stats;
pub mod thresholds;
pub mod xml;
