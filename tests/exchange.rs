//! Non-blocking messages (`isend`, `irecv`, `test`, `wait`, `waitall`) of
//! our runtime, through the `exchange` example under our `mpiexec`: every
//! rank sends to every other rank before receiving, in the orders that
//! deadlock with blocking calls, on each channel (checked with the
//! connectivity table), and every byte is checked.

use std::path::PathBuf;
use std::process::Command;

use crate::common::without_host_mpi_env;

const MPIEXEC: &str = env!("CARGO_BIN_EXE_mpiexec");

/// `target/<profile>/examples/exchange`, which `cargo test` builds.
fn exchange() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join("exchange");
    let modified = |p: &std::path::Path| p.metadata().and_then(|m| m.modified()).ok();
    // `cargo test` builds examples; `cargo test --test main` does not, and
    // an example older than the library may run its old code.
    let newest_lib = std::fs::read_dir(dir.join("deps"))
        .expect("target deps dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libhpcpack-"))
        })
        .filter_map(|p| modified(&p))
        .max();
    assert!(
        modified(&path).is_some_and(|m| Some(m) >= newest_lib),
        "{} is missing or older than the library: build it with `cargo build --examples`",
        path.display()
    );
    path
}

/// Runs `exchange 1 100000 4000000` on `ranks` ranks with the table on and
/// the extra `-genv` pairs; returns stdout after checking success.
fn run(ranks: &str, genv: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(MPIEXEC);
    without_host_mpi_env(&mut cmd).args(["-timeout", "120", "-n", ranks]);
    cmd.args(["-genv", "MSMPI_CONNECTIVITY_TABLE", "1"]);
    for (k, v) in genv {
        cmd.args(["-genv", k, v]);
    }
    let out = cmd
        .arg(exchange())
        .args(["1", "100000", "4000000"])
        .output()
        .expect("run mpiexec");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!(
            "exchange ok: {ranks} ranks, sizes 1 100000 4000000"
        )),
        "{stdout}\n{stderr}"
    );
    stdout
}

/// Whether every off-diagonal cell of the connectivity table is `c`.
fn all_pairs(stdout: &str, ranks: usize, c: char) -> bool {
    let rows: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once(':').map(|(_, row)| row))
        .filter(|row| row.chars().count() == ranks && row.chars().all(|x| ".+@S".contains(x)))
        .collect();
    rows.len() == ranks
        && rows.iter().enumerate().all(|(r, row)| {
            row.chars()
                .enumerate()
                .all(|(p, x)| if p == r { x == '.' } else { x == c })
        })
}

#[test]
fn nonblocking_exchange_over_shared_memory() {
    let out = run("3", &[]);
    assert!(
        all_pairs(&out, 3, '+'),
        "every pair over shared memory:\n{out}"
    );
}

#[test]
fn nonblocking_exchange_over_streamed_shared_memory() {
    // An eager limit above the largest message: 4 MB goes through the ring
    // in pieces instead of a single copy.
    let out = run("2", &[("MSMPI_SHM_EAGER_LIMIT", "8000000")]);
    assert!(all_pairs(&out, 2, '+'), "{out}");
}

#[test]
fn nonblocking_exchange_over_sockets() {
    let out = run("3", &[("MSMPI_DISABLE_SHM", "1")]);
    assert!(all_pairs(&out, 3, 'S'), "every pair over sockets:\n{out}");
}
