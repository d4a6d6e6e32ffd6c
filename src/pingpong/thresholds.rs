//! Pass/fail limits on the results (an extension: `--max-latency <usec>`,
//! `--min-throughput <MB/s>`), so a validation job fails, and says which
//! pairs are slow, instead of leaving a human to read the table.
//!
//! `--max-latency` applies to every latency test, `--min-throughput` to
//! every throughput test; a value equal to its limit passes.

use thiserror::Error;

use super::options::{Metric, Thresholds};
use super::pairing::Pair;
use super::report::RunReport;

/// One pair that broke a limit in one test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThresholdFailure {
    pub pair: Pair,
    pub metric: Metric,
    /// Packet size of the test, bytes.
    pub size: u64,
    pub value: f64,
    pub limit: f64,
}

impl ThresholdFailure {
    /// `NODE1 <-> NODE2: latency 5.20 usec at 1 byte is above --max-latency 3 usec`.
    pub fn describe(&self, report: &RunReport) -> String {
        let (relation, option) = match self.metric {
            Metric::Latency => ("above", "--max-latency"),
            Metric::Throughput => ("below", "--min-throughput"),
        };
        let limit = format!("{}", self.limit);
        let mut value = format!("{:.2}", self.value);
        // "3.00 is above 3" would read as a bug; show the digits that differ.
        if value.parse::<f64>().ok() == Some(self.limit) {
            value = format!("{}", self.value);
        }
        let unit = self.metric.unit();
        let bytes = if self.size == 1 { "byte" } else { "bytes" };
        format!(
            "{}: {} {value} {unit} at {} {bytes} is {relation} {option} {limit} {unit}{}",
            report.pair_label(self.pair),
            self.metric.name(),
            self.size,
            report.sharing_note(" ", self.pair)
        )
    }
}

/// Every pair of every test that breaks a limit, in report order.
pub fn check(report: &RunReport, thresholds: &Thresholds) -> Vec<ThresholdFailure> {
    let mut failures = Vec::new();
    for outcome in &report.outcomes {
        let metric = outcome.test.metric;
        let limit = match metric {
            Metric::Latency => thresholds.max_latency_usec,
            Metric::Throughput => thresholds.min_throughput_mbps,
        };
        let Some(limit) = limit else { continue };
        let fails = |v: f64| match metric {
            Metric::Latency => v > limit,
            Metric::Throughput => v < limit,
        };
        failures.extend(outcome.pairs.iter().filter(|p| fails(p.value)).map(|p| {
            ThresholdFailure {
                pair: p.pair,
                metric,
                size: outcome.test.size,
                value: p.value,
                limit,
            }
        }));
    }
    failures
}

/// The run failed its thresholds; the message lists every failing pair.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{} failed the thresholds: {}", count(.failures.len()), .failures.join("; "))]
pub struct ThresholdsFailed {
    /// One [`ThresholdFailure::describe`] per failure.
    pub failures: Vec<String>,
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 pair".to_string()
    } else {
        format!("{n} pairs")
    }
}

/// `Ok` when every pair passes.
pub fn verdict(report: &RunReport, thresholds: &Thresholds) -> Result<(), ThresholdsFailed> {
    let failures = check(report, thresholds);
    if failures.is_empty() {
        return Ok(());
    }
    Err(ThresholdsFailed {
        failures: failures.iter().map(|f| f.describe(report)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pingpong::report::tests::sample;

    fn limits(lat: Option<f64>, tp: Option<f64>) -> Thresholds {
        Thresholds {
            max_latency_usec: lat,
            min_throughput_mbps: tp,
        }
    }

    #[test]
    fn no_limits_pass() {
        assert_eq!(verdict(&sample(), &Thresholds::default()), Ok(()));
        assert_eq!(
            verdict(&sample(), &limits(Some(2.7), Some(987.654))),
            Ok(()),
            "equal to the limit passes"
        );
    }

    #[test]
    fn latency_failures_name_the_pairs() {
        let f = check(&sample(), &limits(Some(2.6), None));
        assert_eq!(
            f.iter().map(|f| f.pair).collect::<Vec<_>>(),
            vec![Pair::new(0, 1), Pair::new(1, 3)]
        );
        assert_eq!(
            verdict(&sample(), &limits(Some(2.6), None))
                .unwrap_err()
                .to_string(),
            "2 pairs failed the thresholds: \
             NODE1 <-> NODE2: latency 2.61 usec at 1 byte is above --max-latency 2.6 usec; \
             NODE2 <-> LONGNODE4: latency 2.70 usec at 1 byte is above --max-latency 2.6 usec"
        );
    }

    #[test]
    fn throughput_failures_and_both_limits() {
        let e = verdict(&sample(), &limits(Some(2.65), Some(1000.0))).unwrap_err();
        assert_eq!(
            e.failures,
            vec![
                "NODE2 <-> LONGNODE4: latency 2.70 usec at 1 byte is above --max-latency 2.65 usec",
                "NODE1 <-> NODE2: throughput 987.65 MB/s at 4000000 bytes is below --min-throughput 1000 MB/s",
            ]
        );
        assert!(e.to_string().starts_with("2 pairs failed"));
        let one = verdict(&sample(), &limits(None, Some(1000.0))).unwrap_err();
        assert!(
            one.to_string()
                .starts_with("1 pair failed the thresholds: NODE1 <-> NODE2")
        );
    }

    #[test]
    fn a_failing_pair_that_shares_a_cpu_says_so() {
        let r = crate::pingpong::report::tests::sample_sharing();
        let e = verdict(&r, &limits(Some(2.6), None)).unwrap_err();
        assert_eq!(
            e.failures[1],
            "NODE2 <-> LONGNODE4: latency 2.70 usec at 1 byte is above --max-latency 2.6 usec \
             (ranks share CPU 1)"
        );
    }

    #[test]
    fn value_rounding_to_the_limit_shows_full_digits() {
        let f = ThresholdFailure {
            pair: Pair::new(0, 1),
            metric: Metric::Latency,
            size: 4,
            value: 3.001,
            limit: 3.0,
        };
        assert_eq!(
            f.describe(&sample()),
            "NODE1 <-> NODE2: latency 3.001 usec at 4 bytes is above --max-latency 3 usec"
        );
    }
}
