//! The comparison table.

use crate::measure::{Metric, Plan, Results, Value};

/// One column of the table: a scheduler and what it produced (None: not run).
pub struct Column<'a> {
    pub name: String,
    pub results: Option<&'a Results>,
}

fn label(metric: Metric, plan: &Plan) -> String {
    match metric {
        Metric::CliSubmit => format!("CLI submit, {} jobs, 1 process", plan.jobs),
        Metric::CliSubmitParallel => {
            format!("CLI submit, {} jobs, {} processes", plan.jobs, plan.procs)
        }
        Metric::RestSubmit => format!("REST submit, {} jobs (HPC Pack: 3 calls)", plan.jobs),
        Metric::RestSubmitOne => format!("REST submit, {} jobs, 1 call each", plan.jobs),
        Metric::SubmitToFinish => format!("submit-to-finish, median of {}", plan.latency_runs),
        Metric::RunThrough => format!("run-through, {} jobs", plan.run_jobs),
        Metric::JobView => "job view / scontrol show job".to_string(),
        Metric::TaskView => "task view".to_string(),
    }
}

fn format_value(v: &Value) -> String {
    match v {
        Value::Rate(r) => format!("{:.1} jobs/s", r.per_sec()),
        Value::Latency(s) => format!("{:.1} ms", ms(s.median())),
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// How many times better ours is: throughput ours/theirs, latency theirs/ours.
fn ratio(ours: &Value, theirs: &Value) -> Option<f64> {
    match (ours, theirs) {
        (Value::Rate(a), Value::Rate(b)) => Some(a.per_sec() / b.per_sec()),
        (Value::Latency(a), Value::Latency(b)) => {
            Some(b.median().as_secs_f64() / a.median().as_secs_f64().max(1e-9))
        }
        _ => None,
    }
}

fn get<'a>(col: &'a Column, m: Metric) -> Option<&'a Value> {
    col.results.and_then(|r| r.values.get(&m))
}

/// Prints the table (ours against Slurm) and the details under it.
pub fn print(plan: &Plan, ours: &Column, slurm: &Column) {
    let headers = [
        "metric",
        ours.name.as_str(),
        slurm.name.as_str(),
        "ratio",
        "goal",
    ];
    let mut rows: Vec<[String; 5]> = Vec::new();
    for m in Metric::ALL {
        if m == Metric::CliSubmitParallel && plan.procs <= 1
            || m == Metric::RunThrough && plan.run_jobs == 0
        {
            continue;
        }
        let (a, b) = (get(ours, m), get(slurm, m));
        let r = a.zip(b).and_then(|(a, b)| ratio(a, b));
        let goal = match (m.goal(), r) {
            (Some(g), Some(r)) => format!(">= {g}x {}", if r >= g { "met" } else { "MISSED" }),
            (Some(g), None) => format!(">= {g}x"),
            (None, _) => "-".to_string(),
        };
        rows.push([
            label(m, plan),
            a.map_or("-".into(), format_value),
            b.map_or("-".into(), format_value),
            r.map_or("-".into(), |r| format!("{r:.2}x")),
            goal,
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 5]| {
        let mut s = format!("{:<w$}", cells[0], w = widths[0]);
        for i in 1..5 {
            s.push_str(&format!("  {:>w$}", cells[i], w = widths[i]));
        }
        println!("{}", s.trim_end());
    };
    println!();
    line(headers);
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line([&dashes[0], &dashes[1], &dashes[2], &dashes[3], &dashes[4]]);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    println!(
        "ratio > 1 means hpcpack is faster (throughput: ours / Slurm's; latency: Slurm's / ours)."
    );
    details(plan, ours);
    details(plan, slurm);
}

/// Latency spreads and notes of one side.
fn details(plan: &Plan, col: &Column) {
    let Some(results) = col.results else { return };
    println!("\n{}:", col.name);
    for (m, v) in &results.values {
        match v {
            Value::Latency(s) => println!(
                "  {}: n={} min {:.1} ms, median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
                label(*m, plan),
                s.len(),
                ms(s.min()),
                ms(s.median()),
                ms(s.p90()),
                ms(s.max())
            ),
            Value::Rate(r) => println!(
                "  {}: {} jobs in {:.3} s",
                label(*m, plan),
                r.jobs,
                r.elapsed.as_secs_f64()
            ),
        }
    }
    for note in &results.notes {
        println!("  note: {note}");
    }
}
