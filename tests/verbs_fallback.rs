//! Issue 4 on a host without RDMA: the verbs (Network Direct) channel is
//! out, every pair falls back to sockets and the connectivity table's notes
//! say why; with `MSMPI_DISABLE_SOCK=1` the pair fails naming the missing
//! device or library. Deterministic on any machine: an RDMA device is ruled
//! out with `HPCPACK_VERBS_DEVICE` naming none, or by hiding libibverbs.
//! The same binaries over real devices are tested in the Soft-RoCE rig
//! (`tests/verbs.rs`, `tests/rxe/verbs-checks.sh`).

use std::process::{Command, Output};

use crate::common::without_host_mpi_env;

const MPIEXEC: &str = env!("CARGO_BIN_EXE_mpiexec");
const PINGPONG: &str = env!("CARGO_BIN_EXE_mpipingpong");

fn mpiexec(wrap: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    let mut args: Vec<String> = wrap.iter().map(|s| s.to_string()).collect();
    args.push(MPIEXEC.into());
    args.extend(["-n", "2"].map(String::from));
    for (k, v) in env {
        args.extend(["-env".to_string(), k.to_string(), v.to_string()]);
    }
    args.extend([PINGPONG, "-m", "-p", "1:100"].map(String::from));
    let out = without_host_mpi_env(&mut Command::new(&args[0]))
        .args(&args[1..])
        .output()
        .expect("run mpiexec");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

const NO_DEVICE: (&str, &str) = ("HPCPACK_VERBS_DEVICE", "nosuchdev0");
const NO_SHM: (&str, &str) = ("MSMPI_DISABLE_SHM", "1");
const NO_SOCK: (&str, &str) = ("MSMPI_DISABLE_SOCK", "1");
const TABLE: (&str, &str) = ("MSMPI_CONNECTIVITY_TABLE", "1");

/// Why rank 0 has no verbs here: the named device is missing, or there is
/// no device or library at all.
fn says_no_device(text: &str) -> bool {
    [
        "HPCPACK_VERBS_DEVICE nosuchdev0 is not an active port",
        "no RDMA device",
        "no active RDMA port",
        "libibverbs not found",
    ]
    .iter()
    .any(|m| text.contains(m))
}

#[test]
fn no_device_falls_back_to_sockets_and_says_why() {
    let (out, text) = mpiexec(&[], &[NO_SHM, TABLE, NO_DEVICE]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\n0:.S\n1:S.\n"), "{text}");
    assert!(text.contains("Network Direct unavailable:\n  rank 0 ("), "{text}");
    assert!(says_no_device(&text), "{text}");
}

#[test]
fn no_device_and_no_sockets_fails_naming_the_device() {
    let (out, text) = mpiexec(&[], &[NO_SHM, NO_SOCK, NO_DEVICE]);
    assert!(!out.status.success(), "{text}");
    // Whichever rank reports first names itself first.
    assert!(text.contains("no channel between rank "), "{text}");
    assert!(text.contains("network direct: rank "), "{text}");
    assert!(says_no_device(&text), "{text}");
    assert!(text.contains("sockets disabled by MSMPI_DISABLE_SOCK=1"), "{text}");
}

#[test]
fn disable_nd_is_named_as_written() {
    let (out, text) = mpiexec(&[], &[NO_SHM, NO_SOCK, ("MSMPI_DISABLE_ND", "1")]);
    assert!(!out.status.success(), "{text}");
    let (a, b) = ("rank 0: disabled by MSMPI_DISABLE_ND=1", "rank 1: disabled by MSMPI_DISABLE_ND=1");
    assert!(
        text.contains(&format!("network direct: {a}, {b}"))
            || text.contains(&format!("network direct: {b}, {a}")),
        "{text}"
    );
}

/// libibverbs.so.1 hidden in a private mount namespace (needs root and
/// `unshare`, as the CI host has): the binaries still start (the library
/// is loaded at run time), fall back, and say the library is missing.
#[test]
fn without_libibverbs_falls_back_or_fails_naming_the_library() {
    let lib = ["/usr/lib/x86_64-linux-gnu/libibverbs.so.1", "/usr/lib64/libibverbs.so.1"]
        .iter()
        .find_map(|p| std::fs::canonicalize(p).ok());
    let (Some(lib), true) = (lib, nix_root()) else {
        eprintln!("skipped: needs root and an installed libibverbs.so.1 to hide");
        return;
    };
    let lib = lib.to_string_lossy().into_owned();
    let hide = [
        "unshare",
        "-m",
        "sh",
        "-c",
        "mount --bind /dev/null \"$0\" && exec \"$@\"",
        lib.as_str(),
    ];
    let (out, text) = mpiexec(&hide, &[NO_SHM, TABLE]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\n0:.S\n1:S.\n"), "{text}");
    assert!(text.contains("): libibverbs not found (libibverbs.so.1 could not be loaded)"), "{text}");
    let (out, text) = mpiexec(&hide, &[NO_SHM, NO_SOCK]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("network direct: rank 0: libibverbs not found")
            || text.contains("network direct: rank 1: libibverbs not found"),
        "{text}"
    );
}

fn nix_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
