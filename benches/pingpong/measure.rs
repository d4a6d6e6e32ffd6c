//! What is measured: the packet sizes, the two paths, and one side's numbers.

use std::collections::BTreeMap;

/// The message size of the throughput row (mpipingpong's `-pt` packet).
pub const THROUGHPUT_SIZE: u64 = 4_000_000;

/// The same sizes and round trips for both sides.
pub struct Plan {
    /// (bytes, round trips), in the order they run.
    pub sizes: Vec<(u64, u64)>,
}

impl Plan {
    /// Latency rows: 1 B, 8 B and 1 KiB with `small` round trips, 64 KiB with `medium`;
    /// the throughput row: 4,000,000 B with `large`.
    pub fn new(small: u64, medium: u64, large: u64) -> Self {
        Plan {
            sizes: vec![
                (1, small),
                (8, small),
                (1024, small),
                (65_536, medium),
                (THROUGHPUT_SIZE, large),
            ],
        }
    }

    /// Bytes the timed round trips move in both directions, all sizes together.
    pub fn payload_bytes(&self) -> u64 {
        self.sizes.iter().map(|(s, i)| 2 * s * i).sum()
    }
}

/// How the two ranks talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    /// Each side's default for two ranks on one machine.
    Shm,
    /// Forced onto TCP over the loopback interface.
    Tcp,
}

impl Path {
    pub const ALL: [Path; 2] = [Path::Shm, Path::Tcp];

    pub fn name(self) -> &'static str {
        match self {
            Path::Shm => "shm",
            Path::Tcp => "TCP",
        }
    }
}

/// One size on one path. Both forms are kept: latency = size / throughput, since both are
/// computed from the same elapsed time (half a round trip; bytes moved one way, MB = 10^6 B).
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub latency_usec: f64,
    pub mbps: f64,
}

impl Sample {
    pub fn from_latency(size: u64, latency_usec: f64) -> Self {
        Sample {
            latency_usec,
            mbps: size as f64 / latency_usec,
        }
    }

    pub fn from_mbps(size: u64, mbps: f64) -> Self {
        Sample {
            latency_usec: size as f64 / mbps,
            mbps,
        }
    }
}

/// One side (ours or MPICH) on one path: the sizes that were measured and why others were not.
#[derive(Default)]
pub struct PathResults {
    pub samples: BTreeMap<u64, Sample>,
    pub errors: Vec<String>,
    /// Bytes that crossed the loopback interface meanwhile (anyone's, not only this run's).
    pub loopback_bytes: Option<u64>,
}

/// One side on both paths; `None` for a side that was not run.
#[derive(Default)]
pub struct Side {
    pub paths: BTreeMap<Path, PathResults>,
    /// Rounds merged in.
    pub rounds: u64,
}

impl Side {
    /// Adds one round of one path: each size keeps its best sample (the lowest latency, which
    /// is also the highest throughput), errors and loopback bytes add up.
    pub fn merge(&mut self, path: Path, round: PathResults) {
        if path == Path::ALL[0] {
            self.rounds += 1;
        }
        let into = self.paths.entry(path).or_default();
        for (size, s) in round.samples {
            let best = into.samples.entry(size).or_insert(s);
            if s.latency_usec < best.latency_usec {
                *best = s;
            }
        }
        into.errors.extend(round.errors);
        into.loopback_bytes = match (into.loopback_bytes, round.loopback_bytes) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }

    pub fn get(&self, path: Path, size: u64) -> Option<Sample> {
        self.paths.get(&path)?.samples.get(&size).copied()
    }
}
