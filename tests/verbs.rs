//! Tests that need RDMA verbs devices, run in the Soft-RoCE rig.
//!
//! `tests/rxe/run.sh` boots a qemu guest (the host's own root over 9p) with
//! two Soft-RoCE devices in two network namespaces and runs one command in
//! it; see `tests/rxe/README.md`. Each test here is one boot (about 10 s
//! under TCG), so keep the count low and put several checks in one command.
//!
//! This is its own test binary, not a module of `tests/main.rs`: cargo runs
//! test binaries one after another, so the guest (which keeps both cores
//! busy under TCG) never runs beside the timing-sensitive tests of `main`.
//! Within this binary the tests take [`RIG`] in turn, whatever
//! `--test-threads` says.
//!
//! These tests never skip. Without qemu or the other host packages they
//! fail and say how to install them (`.ci/run`, or
//! `RXE_INSTALL=1 tests/rxe/run.sh --check`): a rig that silently passes
//! would gate nothing.
//!
//! Where the `RXE_*` variables are already set (inside the rig, or at a site
//! with real RDMA hardware that sets them itself, see the README), commands
//! run directly instead of booting a guest.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// One guest at a time: two TCG guests on a 2-core CI machine only slow
/// each other down, and the rig's run directories are cheap but its CPU is not.
static RIG: Mutex<()> = Mutex::new(());

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run_sh() -> PathBuf {
    repo().join("tests/rxe/run.sh")
}

/// True where the devices already exist: inside the guest, or on hardware.
fn devices_given() -> bool {
    std::env::var_os("RXE_DEV_A").is_some()
}

/// Runs `args` in the rig (or directly, see [`devices_given`]) from the
/// repository root, and returns its output once it ends. Panics with the
/// install hint when the rig cannot start for lack of host packages.
fn in_rig(args: &[&str]) -> Output {
    let _one_at_a_time = RIG.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = if devices_given() {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    } else {
        let qemu_missing = Command::new("sh")
            .args(["-c", "command -v qemu-system-x86_64"])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true);
        assert!(
            !qemu_missing,
            "qemu-system-x86_64 is not installed, so the Soft-RoCE rig cannot run; \
             run .ci/run (as root), or RXE_INSTALL=1 tests/rxe/run.sh --check"
        );
        let mut c = Command::new(run_sh());
        c.args(args);
        c
    };
    let out = cmd
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", run_sh().display()));
    if out.status.code() == Some(2) && !devices_given() {
        panic!(
            "the Soft-RoCE rig could not start (missing host packages or not root); \
             run .ci/run (as root), or RXE_INSTALL=1 tests/rxe/run.sh --check\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn show(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The rig itself: the guest boots, both devices are listed, and the C
/// reference `ibv_rc_pingpong` passes between the two namespaces.
#[test]
fn rig_boots_and_rxe_pingpong_passes() {
    let out = if devices_given() {
        in_rig(&[repo().join("tests/rxe/check.sh").to_str().unwrap()])
    } else {
        in_rig(&["--check"])
    };
    let text = show(&out);
    assert!(out.status.success(), "the rig's check failed\n{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for dev in ["rxe0", "rxe1"] {
        assert!(stdout.contains(dev), "ibv_devices did not list {dev}\n{text}");
    }
    // ibv_rc_pingpong prints its rate once per side.
    assert_eq!(stdout.matches("usec/iter").count(), 2, "{text}");
    assert!(stdout.contains("ok: rc_pingpong passed"), "{text}");
}

// The verbs transport's tests go below this line: one #[test] per guest boot,
// each calling in_rig(&[...]) with a command that exercises mpiexec /
// mpipingpong over rxe0 (rxeA, 172.16.0.1) and rxe1 (rxeB, 172.16.0.2), e.g.
// env!("CARGO_BIN_EXE_mpipingpong"): binaries built on the host run unchanged
// in the guest.

/// Issue 4 in one boot (tests/rxe/verbs-checks.sh): mpipingpong between
/// the two namespaces over verbs (small and rendezvous sizes, the table
/// showing `@`), MPICH_NETMASK with MSMPI_PRECONNECT, a rank killed
/// mid-transfer ending the job, and libibverbs hidden (fallback to sockets
/// saying so; with sockets off, a failure naming the library), and a
/// locked-memory limit too low to register the buffers (named in the error).
#[test]
fn mpipingpong_over_verbs_and_its_failure_modes() {
    let out = in_rig(&["tests/rxe/verbs-checks.sh"]);
    let text = show(&out);
    assert!(out.status.success(), "verbs checks failed\n{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for check in [
        "ok: 1-byte pingpong over verbs, connectivity table shows @",
        "ok: 4 MB pingpong over verbs (rendezvous)",
        "ok: MPICH_NETMASK picks the device, MSMPI_PRECONNECT all",
        "ok: four ranks, all six pairs over verbs",
        "ok: exchange (isend/irecv/waitall), 2 ranks over verbs",
        "ok: exchange (isend/irecv/waitall), 4 ranks over verbs",
        "ok: rank 1 killed mid-transfer",
        "ok: libibverbs hidden: falls back to sockets and says why",
        "ok: libibverbs hidden and MSMPI_DISABLE_SOCK=1: fails naming the missing library",
        "ok: locked-memory limit too low: fails naming ulimit -l",
    ] {
        assert!(stdout.contains(check), "missing {check:?}\n{text}");
    }
}
