//! The three tables: what, ours, the peer's, their ratio and the goal, then the
//! spreads and notes under each.
//!
//! Every ratio is ours / the peer's, whatever the row measures: for a time, below 1 means we
//! are faster; for a throughput, above 1 means we are faster. The goal says which way it must
//! go.

use std::time::Duration;

/// Whole-process times or latencies, sorted.
#[derive(Clone, Debug)]
pub struct Stats(Vec<f64>);

impl Stats {
    /// None when there is no sample.
    pub fn new(mut samples: Vec<f64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        Some(Stats(samples))
    }

    pub fn from_durations(samples: &[Duration]) -> Option<Self> {
        Self::new(samples.iter().map(Duration::as_secs_f64).collect())
    }

    pub fn min(&self) -> f64 {
        self.0[0]
    }

    pub fn max(&self) -> f64 {
        self.0[self.0.len() - 1]
    }

    pub fn median(&self) -> f64 {
        let n = self.0.len();
        if n % 2 == 1 {
            self.0[n / 2]
        } else {
            (self.0[n / 2 - 1] + self.0[n / 2]) / 2.0
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `min / median / max` of seconds, in ms.
    pub fn spread_ms(&self) -> String {
        format!(
            "{:.1} / {:.1} / {:.1} ms (n={})",
            self.min() * 1e3,
            self.median() * 1e3,
            self.max() * 1e3,
            self.len()
        )
    }
}

/// One side of a row.
#[derive(Clone, Debug)]
pub enum Cell {
    /// A figure, and how to show it.
    Value { value: f64, shown: String },
    /// The command failed: its one-line error.
    Failed(String),
    /// Not measured, and why (e.g. a missing package).
    Missing(String),
}

impl Cell {
    pub fn ms(secs: f64) -> Cell {
        Cell::Value {
            value: secs,
            shown: format!("{:.1} ms", secs * 1e3),
        }
    }

    fn value(&self) -> Option<f64> {
        match self {
            Cell::Value { value, .. } => Some(*value),
            _ => None,
        }
    }

    fn shown(&self) -> String {
        match self {
            Cell::Value { shown, .. } => shown.clone(),
            Cell::Failed(e) => format!("failed: {e}"),
            Cell::Missing(why) => format!("- ({why})"),
        }
    }
}

/// Which way the ratio ours / peer's must go.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// A time: ours / peer's at most this.
    AtMost(f64),
    /// A throughput: ours / peer's at least this.
    AtLeast(f64),
}

impl Goal {
    fn judge(self, ratio: Option<f64>) -> String {
        let (sign, bound, met) = match self {
            Goal::AtMost(b) => ("<=", b, ratio.map(|r| r <= b)),
            Goal::AtLeast(b) => (">=", b, ratio.map(|r| r >= b)),
        };
        match met {
            Some(true) => format!("{sign} {bound:.1}x met"),
            Some(false) => format!("{sign} {bound:.1}x MISSED"),
            None => format!("{sign} {bound:.1}x"),
        }
    }
}

/// A line of a table.
#[derive(Clone, Debug)]
pub struct Row {
    pub what: String,
    pub ours: Cell,
    pub peer: Cell,
    pub goal: Option<Goal>,
}

/// A titled table with its notes.
#[derive(Debug, Default)]
pub struct Table {
    pub title: String,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>) -> Self {
        Table {
            title: title.into(),
            ..Table::default()
        }
    }

    /// Whether a measurement of either side failed.
    pub fn failed(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.ours, Cell::Failed(_)) || matches!(r.peer, Cell::Failed(_)))
    }

    pub fn print(&self) {
        println!("\n{}", self.title);
        let headers = ["what", "hpcpack", "peer", "ratio ours/peer", "goal"];
        let rows: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                let ratio = r
                    .ours
                    .value()
                    .zip(r.peer.value())
                    .map(|(a, b)| a / b.max(1e-12));
                [
                    r.what.clone(),
                    r.ours.shown(),
                    r.peer.shown(),
                    ratio.map_or("-".into(), |x| format!("{x:.2}x")),
                    r.goal.map_or("-".into(), |g| g.judge(ratio)),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..5)
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([headers[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: [&str; 5]| {
            let mut s = format!("{:<w$}", cells[0], w = widths[0]);
            for (i, cell) in cells.iter().enumerate().skip(1) {
                s.push_str(&format!("  {:>w$}", cell, w = widths[i]));
            }
            println!("{}", s.trim_end());
        };
        line(headers);
        let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line([&dashes[0], &dashes[1], &dashes[2], &dashes[3], &dashes[4]]);
        for r in &rows {
            line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
        }
        for note in &self.notes {
            println!("  {note}");
        }
    }
}

/// The line of a failed command's output that says what went wrong, shortened: the first line
/// that mentions an error, else the first line of stderr, else of stdout, else `fallback`.
pub fn one_line(stderr: &str, stdout: &str, fallback: &str) -> String {
    let lines = |s: &str| -> Vec<String> {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    let (err, out) = (lines(stderr), lines(stdout));
    let line = err
        .iter()
        .chain(&out)
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or(err.first())
        .or(out.first())
        .cloned()
        .unwrap_or_else(|| fallback.to_string());
    const MAX: usize = 200;
    if line.chars().count() > MAX {
        format!("{}...", line.chars().take(MAX).collect::<String>())
    } else {
        line
    }
}
