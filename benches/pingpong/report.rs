//! The comparison table: each size on each path, ours against MPICH, against the ceilings,
//! and against the goals.

use crate::measure::{Path, Plan, Sample, Side, THROUGHPUT_SIZE};

/// The ceilings measured in this run (None: not measured).
pub struct Ceilings {
    pub memcpy_mbps: f64,
    pub iperf3_mbps: Option<f64>,
}

/// Fraction of memcpy the shared-memory throughput should reach.
const SHM_OF_MEMCPY_GOAL: f64 = 0.8;

fn size_name(size: u64) -> String {
    match size {
        s if s >= 1024 && s % 1024 == 0 => format!("{} KiB", s / 1024),
        s if s >= 1_000_000 && s % 1_000_000 == 0 => format!("{} MB", s / 1_000_000),
        s => format!("{s} B"),
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// One table row.
struct Row([String; 6]);

fn row(
    plan: &Plan,
    path: Path,
    size: u64,
    ours: Option<Sample>,
    theirs: Option<Sample>,
    c: &Ceilings,
) -> Row {
    let iterations = plan.sizes.iter().find(|s| s.0 == size).map_or(0, |s| s.1);
    let throughput = size == THROUGHPUT_SIZE;
    let show = |s: Option<Sample>| match s {
        None => "failed".to_string(),
        Some(s) if throughput => format!("{:.0} MB/s", s.mbps),
        Some(s) => format!("{:.2} us", s.latency_usec),
    };
    // Above 1: ours is better (higher throughput, lower latency).
    let ratio = ours.zip(theirs).map(|(a, b)| {
        if throughput {
            a.mbps / b.mbps
        } else {
            b.latency_usec / a.latency_usec
        }
    });
    let ceiling = match (throughput, path) {
        (true, Path::Shm) => Some(("memcpy", Some(c.memcpy_mbps))),
        (true, Path::Tcp) => Some(("iperf3", c.iperf3_mbps)),
        _ => None,
    };
    let of_ceiling = match ceiling {
        None => "-".to_string(),
        Some((name, None)) => format!("({name} not measured)"),
        Some((name, Some(max))) => {
            let pct = |s: Option<Sample>| {
                s.map_or("-".into(), |s| format!("{:.0}%", 100.0 * s.mbps / max))
            };
            format!("{} (MPICH {}) of {name}", pct(ours), pct(theirs))
        }
    };
    let goal = if !throughput {
        format!("<= MPICH {}", ratio.map_or("?", |r| met(r >= 1.0)))
    } else if path == Path::Shm {
        let of_memcpy = ours.map(|s| s.mbps / c.memcpy_mbps);
        format!(
            ">= MPICH {}, >= {:.0}% memcpy {}",
            ratio.map_or("?", |r| met(r >= 1.0)),
            SHM_OF_MEMCPY_GOAL * 100.0,
            of_memcpy.map_or("?", |f| met(f >= SHM_OF_MEMCPY_GOAL))
        )
    } else {
        "-".to_string()
    };
    let what = if throughput { "throughput" } else { "latency" };
    Row([
        format!("{what} {}, {} x{iterations}", size_name(size), path.name()),
        show(ours),
        show(theirs),
        ratio.map_or("-".into(), |r| format!("{r:.2}x")),
        of_ceiling,
        goal,
    ])
}

/// Prints the table, the ceilings and the notes.
pub fn print(plan: &Plan, ours: &Side, mpich_name: &str, mpich: Option<&Side>, c: &Ceilings) {
    let headers = [
        "metric",
        "hpcpack",
        mpich_name,
        "ratio",
        "vs ceiling",
        "goal",
    ];
    let mut rows = Vec::new();
    for path in Path::ALL {
        for &(size, _) in &plan.sizes {
            let theirs = mpich.and_then(|m| m.get(path, size));
            let mut r = row(plan, path, size, ours.get(path, size), theirs, c);
            if mpich.is_none() {
                r.0[2] = "-".into();
            }
            rows.push(r);
        }
    }
    rows.push(Row([
        "ceiling: memcpy, 1 core, 4 MB buffers".into(),
        format!("{:.0} MB/s", c.memcpy_mbps),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]));
    rows.push(Row([
        "ceiling: iperf3, TCP loopback, 1 stream".into(),
        c.iperf3_mbps
            .map_or("not measured".into(), |v| format!("{v:.0} MB/s")),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]));
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r.0[i].chars().count())
                .chain([headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 6]| {
        let mut s = format!("{:<w$}", cells[0], w = widths[0]);
        for i in 1..6 {
            s.push_str(&format!("  {:>w$}", cells[i], w = widths[i]));
        }
        println!("{}", s.trim_end());
    };
    println!();
    line(headers);
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(std::array::from_fn(|i| dashes[i].as_str()));
    for r in &rows {
        line(std::array::from_fn(|i| r.0[i].as_str()));
    }
    println!(
        "ratio > 1 means hpcpack is better (latency: MPICH's / ours; throughput: ours / MPICH's). \
         Latency is half a round trip; MB = 10^6 bytes."
    );
}
