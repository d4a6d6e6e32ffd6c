//! From timed ping-pongs to numbers: per-pair latency and throughput, and
//! the min / max / average / standard deviation over pairs.
//!
//! A measurement is the wall time of `iterations` round trips of a
//! `size`-byte message (A sends, B answers with the same size). Half a round
//! trip is one one-way transfer, so:
//! - latency (usec) = elapsed / iterations / 2, in microseconds;
//! - throughput (MB/s) = `size` bytes moved one way per half round trip,
//!   i.e. size × 2 × iterations / elapsed, with MB = 10^6 bytes (as network
//!   rates are quoted; 4,000,000-byte packets are 4 MB).
//!
//! The standard deviation is the population one (divide by the number of
//! pairs): the pairs tested are the whole population, not a sample of it.

use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use super::options::{Metric, PacketTest};
use super::pairing::Pair;

/// The timing of one pair for one packet test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    pub pair: Pair,
    /// Wall time of all the test's round trips.
    pub elapsed: Duration,
}

/// A measurement that gives no number.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatsError {
    #[error(
        "pair {first}-{second} was timed at zero seconds for {iterations} round trips; the clock is too coarse, use more iterations"
    )]
    ZeroElapsed {
        first: usize,
        second: usize,
        iterations: u64,
    },
    #[error("a packet test with zero iterations has no timing")]
    ZeroIterations,
}

/// Microseconds for one one-way transfer.
pub fn latency_usec(iterations: u64, elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / (2.0 * iterations as f64)
}

/// MB/s (10^6 bytes/s) moved one way.
pub fn throughput_mbps(size: u64, iterations: u64, elapsed: Duration) -> f64 {
    (size as f64) * 2.0 * (iterations as f64) / elapsed.as_secs_f64() / 1e6
}

/// One pair's number in the test's unit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PairValue {
    pub pair: Pair,
    pub value: f64,
}

/// Statistics over pairs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    /// Population standard deviation.
    pub stddev: f64,
}

/// `None` for no values.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let count = values.len();
    if count == 0 {
        return None;
    }
    let n = count as f64;
    let avg = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - avg).powi(2)).sum::<f64>() / n;
    Some(Summary {
        count,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        avg,
        stddev: var.sqrt(),
    })
}

/// A packet test's results: one value per pair, in measurement order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TestOutcome {
    pub test: PacketTest,
    pub pairs: Vec<PairValue>,
    pub summary: Option<Summary>,
}

/// Turns a test's measurements into its outcome.
pub fn evaluate(test: PacketTest, measurements: &[Measurement]) -> Result<TestOutcome, StatsError> {
    if test.iterations == 0 {
        return Err(StatsError::ZeroIterations);
    }
    let pairs = measurements
        .iter()
        .map(|m| {
            if m.elapsed.is_zero() {
                return Err(StatsError::ZeroElapsed {
                    first: m.pair.first,
                    second: m.pair.second,
                    iterations: test.iterations,
                });
            }
            let value = match test.metric {
                Metric::Latency => latency_usec(test.iterations, m.elapsed),
                Metric::Throughput => throughput_mbps(test.size, test.iterations, m.elapsed),
            };
            Ok(PairValue {
                pair: m.pair,
                value,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let values: Vec<f64> = pairs.iter().map(|p| p.value).collect();
    Ok(TestOutcome {
        test,
        summary: summarize(&values),
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn latency_is_half_the_average_round_trip() {
        // 100000 round trips in 0.522 s: 5.22 us per round trip, 2.61 one way.
        assert!(close(
            latency_usec(100_000, Duration::from_millis(522)),
            2.61
        ));
    }

    #[test]
    fn throughput_counts_one_way_bytes_in_decimal_megabytes() {
        // 1000 round trips of 4 MB in 2 s: 2000 one-way transfers of 4 MB, 4000 MB/s.
        assert!(close(
            throughput_mbps(4_000_000, 1000, Duration::from_secs(2)),
            4000.0
        ));
    }

    #[test]
    fn summary_uses_population_stddev() {
        let s = summarize(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!((s.count, s.min, s.max), (8, 2.0, 9.0));
        assert!(close(s.avg, 5.0));
        assert!(close(s.stddev, 2.0));
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[3.0]).unwrap().stddev, 0.0);
    }

    #[test]
    fn evaluate_by_metric() {
        let m = [
            Measurement {
                pair: Pair::new(0, 1),
                elapsed: Duration::from_millis(200),
            },
            Measurement {
                pair: Pair::new(0, 2),
                elapsed: Duration::from_millis(400),
            },
        ];
        let lat = PacketTest {
            metric: Metric::Latency,
            size: 1,
            iterations: 100_000,
        };
        let out = evaluate(lat, &m).unwrap();
        assert!(close(out.pairs[0].value, 1.0) && close(out.pairs[1].value, 2.0));
        assert_eq!(out.pairs[1].pair, Pair::new(0, 2));
        assert!(close(out.summary.unwrap().avg, 1.5));
        let tp = PacketTest {
            metric: Metric::Throughput,
            size: 1_000_000,
            iterations: 100,
        };
        let out = evaluate(tp, &m).unwrap();
        assert!(close(out.pairs[0].value, 1000.0) && close(out.pairs[1].value, 500.0));
    }

    #[test]
    fn zero_timings_are_errors() {
        let m = [Measurement {
            pair: Pair::new(1, 3),
            elapsed: Duration::ZERO,
        }];
        let t = PacketTest {
            metric: Metric::Latency,
            size: 1,
            iterations: 10,
        };
        let e = evaluate(t, &m).unwrap_err();
        assert_eq!(
            e,
            StatsError::ZeroElapsed {
                first: 1,
                second: 3,
                iterations: 10
            }
        );
        assert!(e.to_string().contains("pair 1-3"));
        assert_eq!(
            evaluate(PacketTest { iterations: 0, ..t }, &[]),
            Err(StatsError::ZeroIterations)
        );
    }
}
