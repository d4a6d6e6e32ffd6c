//! What the side-by-side benchmarks share: finding the release binaries they
//! measure, and the load average they warn about.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The directory holding the release binaries `names`: `$HPCPACK_BIN_DIR`,
/// else the directory of the running bench's own profile (so a custom
/// `CARGO_TARGET_DIR` works), else `<manifest>/target/release`.
pub fn release_dir(names: &[&str]) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("HPCPACK_BIN_DIR") {
        candidates.push(PathBuf::from(dir));
    } else {
        // target/release/deps/<bench>-<hash> -> target/release
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|p| Some(p.parent()?.parent()?.to_path_buf()))
        {
            candidates.push(dir);
        }
        candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release"));
    }
    for dir in &candidates {
        if names.iter().all(|b| dir.join(b).is_file()) {
            return Ok(dir.clone());
        }
    }
    let listed = match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    bail!(
        "the release binaries {listed} are not in {}; run `cargo build --release` first \
         (or point HPCPACK_BIN_DIR at them)",
        candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    )
}

/// Warns on stderr when the machine is busy with something else (a load
/// average above half its CPUs); returns the CPUs and the load average.
pub fn warn_if_busy() -> (usize, Option<f64>) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = load_average();
    if let Some(l) = load.filter(|&l| l > 0.5 * cpus as f64) {
        eprintln!("warning: load average {l:.2} on {cpus} CPUs: something else is running, the numbers will be noisy");
    }
    (cpus, load)
}

/// The 1-minute load average, to warn when the machine is busy with something else.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
