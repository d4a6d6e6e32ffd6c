//! The `--json <file>` report (an extension): the same results as the XML
//! file with names resolved, for scripts and CI, plus the threshold verdict.
//!
//! ```text
//! { "mode": "serial", "ringStep": null, "participants": ["NODE1", …],
//!   "tests": [ { "metric": "latency", "unit": "usec", "packetSize": 1,
//!                "iterations": 100000,
//!                "pairs": [ { "first": "NODE1", "second": "NODE2",
//!                             "firstRank": 0, "secondRank": 1, "value": 2.61,
//!                             "sharedCpu": null } ],
//!                "summary": { "count": 3, "min": …, "max": …, "avg": …, "stddev": … } } ],
//!   "failures": [ { "first": …, "second": …, "metric": "latency",
//!                   "packetSize": 1, "value": 5.2, "limit": 3.0,
//!                   "message": "…" } ] }
//! ```
//!
//! All pairs are always listed (`-ob` only shortens the XML file).
//! `sharedCpu` is the CPU a pair's two ranks share ([`super::sharing`]), or
//! `null` when they do not; a failure's `message` then ends with
//! `(ranks share CPU n)`.

use serde::Serialize;

use super::options::{Metric, Mode};
use super::report::RunReport;
use super::stats::Summary;
use super::thresholds::ThresholdFailure;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonPair {
    first: String,
    second: String,
    first_rank: usize,
    second_rank: usize,
    value: f64,
    shared_cpu: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonTest {
    metric: Metric,
    unit: &'static str,
    packet_size: u64,
    iterations: u64,
    pairs: Vec<JsonPair>,
    summary: Option<Summary>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonFailure {
    first: String,
    second: String,
    metric: Metric,
    packet_size: u64,
    value: f64,
    limit: f64,
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    mode: &'static str,
    ring_step: Option<usize>,
    participants: &'a [String],
    tests: Vec<JsonTest>,
    failures: Vec<JsonFailure>,
}

/// The report as pretty-printed JSON.
pub fn render(
    report: &RunReport,
    failures: &[ThresholdFailure],
) -> Result<String, serde_json::Error> {
    let tests = report
        .outcomes
        .iter()
        .map(|o| JsonTest {
            metric: o.test.metric,
            unit: o.test.metric.unit(),
            packet_size: o.test.size,
            iterations: o.test.iterations,
            pairs: o
                .pairs
                .iter()
                .map(|p| JsonPair {
                    first: report.name(p.pair.first).into_owned(),
                    second: report.name(p.pair.second).into_owned(),
                    first_rank: p.pair.first,
                    second_rank: p.pair.second,
                    value: p.value,
                    shared_cpu: report.shared_cpu(p.pair),
                })
                .collect(),
            summary: o.summary,
        })
        .collect();
    let failures = failures
        .iter()
        .map(|f| JsonFailure {
            first: report.name(f.pair.first).into_owned(),
            second: report.name(f.pair.second).into_owned(),
            metric: f.metric,
            packet_size: f.size,
            value: f.value,
            limit: f.limit,
            message: f.describe(report),
        })
        .collect();
    let json = JsonReport {
        mode: report.mode.name(),
        ring_step: match report.mode {
            Mode::Ring { step } => Some(step),
            _ => None,
        },
        participants: &report.participants,
        tests,
        failures,
    };
    serde_json::to_string_pretty(&json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pingpong::options::Thresholds;
    use crate::pingpong::report::tests::sample;
    use crate::pingpong::thresholds::check;
    use serde_json::Value;

    #[test]
    fn json_has_names_pairs_summary_and_failures() {
        let r = sample();
        let failures = check(
            &r,
            &Thresholds {
                max_latency_usec: Some(2.65),
                min_throughput_mbps: None,
            },
        );
        let v: Value = serde_json::from_str(&render(&r, &failures).unwrap()).unwrap();
        assert_eq!(v["mode"], "serial");
        assert_eq!(v["ringStep"], Value::Null);
        assert_eq!(v["participants"][3], "LONGNODE4");
        assert_eq!(v["tests"][0]["metric"], "latency");
        assert_eq!(v["tests"][1]["unit"], "MB/s");
        assert_eq!(v["tests"][1]["packetSize"], 4_000_000);
        assert_eq!(v["tests"][0]["pairs"][2]["second"], "LONGNODE4");
        assert_eq!(v["tests"][0]["pairs"][2]["secondRank"], 3);
        assert_eq!(v["tests"][0]["summary"]["count"], 3);
        assert_eq!(v["failures"].as_array().unwrap().len(), 1);
        assert_eq!(v["failures"][0]["first"], "NODE2");
        assert_eq!(v["failures"][0]["limit"], 2.65);
        assert_eq!(v["tests"][0]["pairs"][1]["sharedCpu"], Value::Null);
    }

    #[test]
    fn pairs_sharing_a_cpu_carry_it() {
        let r = crate::pingpong::report::tests::sample_sharing();
        let v: Value = serde_json::from_str(&render(&r, &[]).unwrap()).unwrap();
        let shared: Vec<&Value> = v["tests"][0]["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["sharedCpu"])
            .collect();
        assert_eq!(shared, [&Value::Null, &Value::from(0), &Value::from(1)]);
    }
}
