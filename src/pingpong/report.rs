//! What mpipingpong prints: the result tables and the `-op` progress lines.
//!
//! The exact console text of HPC Pack is UNCONFIRMED (spec §8.3: the
//! documented screenshots are images). This is the reproduction the spec
//! suggests, one block per packet test, blocks separated by a blank line:
//!
//! ```text
//! Latency (usec) for packet size 1 byte, 100000 iterations:
//!   NODE1 <-> NODE2  2.61
//!   NODE1 <-> NODE3  2.58
//! Summary: min 2.58  max 2.61  avg 2.60  stddev 0.01 (usec)
//! ```
//!
//! Values have two decimals, right-aligned; pair labels are padded to the
//! widest. A pair whose two ranks share a CPU ([`super::sharing`]) has
//! `  (ranks share CPU n)` after its value, here and in its `-op` line, and
//! the tables end with a note saying what that means (an extension).
//! The XML file, the JSON report and threshold checks are in
//! [`super::xml`], [`super::json`] and [`super::thresholds`]. Everything
//! here returns strings, so the binary decides where they go.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::options::{Metric, Mode, PacketTest};
use super::pairing::Pair;
use super::sharing::{self, CpuPlace};
use super::stats::{PairValue, TestOutcome};

/// A finished run, as every output reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    pub mode: Mode,
    /// Participant names (host names, or `rank N`), indexed like [`Pair`].
    pub participants: Vec<String>,
    /// Where each participant may run, indexed like [`Pair`]; empty when
    /// unknown (no pair is then said to share a CPU).
    pub places: Vec<CpuPlace>,
    pub outcomes: Vec<TestOutcome>,
}

impl RunReport {
    /// A participant's name; an index past the list (a caller bug) shows as
    /// `rank N` rather than failing the whole report.
    pub fn name(&self, index: usize) -> Cow<'_, str> {
        match self.participants.get(index) {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(format!("rank {index}")),
        }
    }

    /// `NODE1 <-> NODE2`.
    pub fn pair_label(&self, pair: Pair) -> String {
        format!("{} <-> {}", self.name(pair.first), self.name(pair.second))
    }

    /// The CPU the two ranks of `pair` share ([`sharing::shared_cpu`]).
    pub fn shared_cpu(&self, pair: Pair) -> Option<u32> {
        let (a, b) = (self.places.get(pair.first)?, self.places.get(pair.second)?);
        sharing::shared_cpu(a, b)
    }

    /// `(ranks share CPU n)` after `sep` for a pair that does, else nothing.
    pub fn sharing_note(&self, sep: &str, pair: Pair) -> String {
        self.shared_cpu(pair)
            .map(|cpu| format!("{sep}(ranks share CPU {cpu})"))
            .unwrap_or_default()
    }
}

/// The note under the tables when a pair's ranks share a CPU.
pub const SHARED_CPU_NOTE: &str = "(ranks share CPU n): the two ranks may run only on CPU n, \
so one waits for the other to be scheduled; the value measures that, not the link.";

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `Latency (usec) for packet size 1 byte, 100000 iterations:`
pub fn header(test: &PacketTest) -> String {
    let title = match test.metric {
        Metric::Latency => "Latency",
        Metric::Throughput => "Throughput",
    };
    format!(
        "{title} ({}) for packet size {}, {}:",
        test.metric.unit(),
        plural(test.size, "byte", "bytes"),
        plural(test.iterations, "iteration", "iterations")
    )
}

fn block(report: &RunReport, outcome: &TestOutcome, out: &mut String) {
    let labels: Vec<String> = outcome
        .pairs
        .iter()
        .map(|p| report.pair_label(p.pair))
        .collect();
    let values: Vec<String> = outcome
        .pairs
        .iter()
        .map(|p| format!("{:.2}", p.value))
        .collect();
    let lw = labels.iter().map(String::len).max().unwrap_or(0);
    let vw = values.iter().map(String::len).max().unwrap_or(0);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{}", header(&outcome.test));
    for ((label, value), p) in labels.iter().zip(&values).zip(&outcome.pairs) {
        let note = report.sharing_note("  ", p.pair);
        let _ = writeln!(out, "  {label:<lw$}  {value:>vw$}{note}");
    }
    let _ = match &outcome.summary {
        Some(s) => writeln!(
            out,
            "Summary: min {:.2}  max {:.2}  avg {:.2}  stddev {:.2} ({})",
            s.min,
            s.max,
            s.avg,
            s.stddev,
            outcome.test.metric.unit()
        ),
        None => writeln!(out, "Summary: no pairs measured"),
    };
}

/// The result tables, as printed at the end of a run (unless `-oq`).
pub fn console(report: &RunReport) -> String {
    let mut out = String::new();
    for (i, outcome) in report.outcomes.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        block(report, outcome, &mut out);
    }
    let shared = report.outcomes.iter().flat_map(|o| &o.pairs);
    if shared.clone().any(|p| report.shared_cpu(p.pair).is_some()) {
        let _ = write!(out, "\n{SHARED_CPU_NOTE}\n");
    }
    out
}

/// The `-op` line for a pair that has just finished `test`, the `done`-th
/// of `total`: `latency 1 byte: pair 1 of 6 done, NODE1 <-> NODE2 2.61 usec`.
pub fn progress_line(
    report: &RunReport,
    test: &PacketTest,
    done: usize,
    total: usize,
    result: &PairValue,
) -> String {
    format!(
        "{} {}: pair {done} of {total} done, {} {:.2} {}{}",
        test.metric.name(),
        plural(test.size, "byte", "bytes"),
        report.pair_label(result.pair),
        result.value,
        test.metric.unit(),
        report.sharing_note(" ", result.pair)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pingpong::stats::summarize;

    /// Four nodes, serial latency at 1 byte, and a ring throughput test.
    pub(crate) fn sample() -> RunReport {
        let lat = PacketTest {
            metric: Metric::Latency,
            size: 1,
            iterations: 100_000,
        };
        let tp = PacketTest {
            metric: Metric::Throughput,
            size: 4_000_000,
            iterations: 1000,
        };
        let outcome = |test, vals: &[(usize, usize, f64)]| {
            let pairs: Vec<PairValue> = vals
                .iter()
                .map(|&(a, b, value)| PairValue {
                    pair: Pair::new(a, b),
                    value,
                })
                .collect();
            let values: Vec<f64> = pairs.iter().map(|p| p.value).collect();
            TestOutcome {
                test,
                summary: summarize(&values),
                pairs,
            }
        };
        RunReport {
            mode: Mode::Serial,
            participants: ["NODE1", "NODE2", "NODE3", "LONGNODE4"]
                .map(String::from)
                .to_vec(),
            places: Vec::new(),
            outcomes: vec![
                outcome(lat, &[(0, 1, 2.61), (0, 2, 2.58), (1, 3, 2.7)]),
                outcome(tp, &[(0, 1, 987.654), (2, 3, 1234.5)]),
            ],
        }
    }

    #[test]
    fn console_text_is_exact() {
        let expected = "\
Latency (usec) for packet size 1 byte, 100000 iterations:
  NODE1 <-> NODE2      2.61
  NODE1 <-> NODE3      2.58
  NODE2 <-> LONGNODE4  2.70
Summary: min 2.58  max 2.70  avg 2.63  stddev 0.05 (usec)

Throughput (MB/s) for packet size 4000000 bytes, 1000 iterations:
  NODE1 <-> NODE2       987.65
  NODE3 <-> LONGNODE4  1234.50
Summary: min 987.65  max 1234.50  avg 1111.08  stddev 123.42 (MB/s)
";
        assert_eq!(console(&sample()), expected);
    }

    #[test]
    fn headers_use_singular_for_one() {
        let t = PacketTest {
            metric: Metric::Latency,
            size: 4,
            iterations: 1,
        };
        assert_eq!(
            header(&t),
            "Latency (usec) for packet size 4 bytes, 1 iteration:"
        );
    }

    #[test]
    fn empty_outcome_and_unknown_rank() {
        let mut r = sample();
        r.outcomes[0].pairs.clear();
        r.outcomes[0].summary = None;
        r.outcomes.truncate(1);
        assert_eq!(
            console(&r),
            "Latency (usec) for packet size 1 byte, 100000 iterations:\nSummary: no pairs measured\n"
        );
        assert_eq!(r.pair_label(Pair::new(1, 7)), "NODE2 <-> rank 7");
    }

    /// [`sample`] with NODE1 and NODE3 bound to CPU 0, NODE2 and LONGNODE4
    /// to CPU 1 (4 ranks over 2 CPUs), all on one machine.
    pub(crate) fn sample_sharing() -> RunReport {
        let mut r = sample();
        r.places = [0, 1, 0, 1]
            .map(|cpu| CpuPlace {
                machine: 0,
                cpus: vec![cpu],
            })
            .to_vec();
        r
    }

    #[test]
    fn pairs_sharing_a_cpu_are_marked() {
        let expected = "\
Latency (usec) for packet size 1 byte, 100000 iterations:
  NODE1 <-> NODE2      2.61
  NODE1 <-> NODE3      2.58  (ranks share CPU 0)
  NODE2 <-> LONGNODE4  2.70  (ranks share CPU 1)
Summary: min 2.58  max 2.70  avg 2.63  stddev 0.05 (usec)

Throughput (MB/s) for packet size 4000000 bytes, 1000 iterations:
  NODE1 <-> NODE2       987.65
  NODE3 <-> LONGNODE4  1234.50
Summary: min 987.65  max 1234.50  avg 1111.08  stddev 123.42 (MB/s)

(ranks share CPU n): the two ranks may run only on CPU n, so one waits for the other to be scheduled; the value measures that, not the link.
";
        let r = sample_sharing();
        assert_eq!(console(&r), expected);
        let o = &r.outcomes[0];
        assert_eq!(
            progress_line(&r, &o.test, 2, 6, &o.pairs[1]),
            "latency 1 byte: pair 2 of 6 done, NODE1 <-> NODE3 2.58 usec (ranks share CPU 0)"
        );
        assert_eq!(r.shared_cpu(Pair::new(3, 1)), Some(1));
        assert_eq!(r.shared_cpu(Pair::new(0, 9)), None);
    }

    #[test]
    fn progress_line_text() {
        let r = sample();
        let o = &r.outcomes[0];
        assert_eq!(
            progress_line(&r, &o.test, 1, 6, &o.pairs[0]),
            "latency 1 byte: pair 1 of 6 done, NODE1 <-> NODE2 2.61 usec"
        );
    }
}
