//! Snapshots of what `mpiexec` and `mpipingpong` print without a cluster:
//! their help texts, each kind of command-line error, and the connectivity
//! table. The executables' absolute paths become `[MPIEXEC]` and
//! `[PINGPONG]`, this machine's host name `[HOST]`. Update with
//! `INSTA_UPDATE=always cargo test --test main mpi_layouts` and read the
//! diff.

use std::process::Command;

use crate::common::without_host_mpi_env;

const MPIEXEC: &str = env!("CARGO_BIN_EXE_mpiexec");
const PINGPONG: &str = env!("CARGO_BIN_EXE_mpipingpong");

/// `$ <tool> <args>`, the exit code, then stdout and stderr, scrubbed.
fn shown(exe: &str, args: &[&str]) -> String {
    let out = without_host_mpi_env(&mut Command::new(exe))
        .args(args)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run");
    let name = if exe == MPIEXEC {
        "mpiexec"
    } else {
        "mpipingpong"
    };
    let text = format!(
        "$ {name} {}\nexit code: {}\n{}{}",
        args.join(" "),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let host = hpcpack::node::sys::hostname();
    text.replace(hpcpack::VERSION, "[VERSION]")
        .replace(MPIEXEC, "[MPIEXEC]")
        .replace(PINGPONG, "[PINGPONG]")
        .replace(&host, "[HOST]")
}

#[test]
fn help_texts() {
    for (name, exe, args) in [
        ("mpiexec_help", MPIEXEC, vec!["-help"]),
        ("mpiexec_help2", MPIEXEC, vec!["-help2"]),
        ("mpiexec_help3", MPIEXEC, vec!["-help3"]),
        ("mpiexec_no_args", MPIEXEC, vec![]),
        ("mpipingpong_help", PINGPONG, vec!["-h"]),
    ] {
        insta::assert_snapshot!(name, shown(exe, &args));
    }
    // `/?` and `/help` as every tool takes them: the same help,
    // before MPI is started (so without mpiexec too).
    let help = shown(PINGPONG, &["-h"]);
    for q in ["/?", "/help", "-?"] {
        let out = shown(PINGPONG, &[q]);
        assert_eq!(out.split_once("exit code").map(|x| x.1), help.split_once("exit code").map(|x| x.1), "mpipingpong {q}");
    }
}

#[test]
fn command_line_errors() {
    for (name, exe, args) in [
        ("mpiexec_unknown_option", MPIEXEC, vec!["-bogus", "x"]),
        ("mpiexec_bad_n", MPIEXEC, vec!["-n", "x", "hostname"]),
        ("mpiexec_env_missing_value", MPIEXEC, vec!["-env", "A"]),
        ("mpiexec_no_program", MPIEXEC, vec!["-n", "2"]),
        (
            "mpiexec_missing_program",
            MPIEXEC,
            vec!["-n", "1", "/nonexistent/program"],
        ),
        (
            "mpiexec_bad_affinity_layout",
            MPIEXEC,
            vec!["-affinity_layout", "zig", "hostname"],
        ),
        (
            "mpiexec_bad_hosts",
            MPIEXEC,
            vec!["-hosts", "2", "a", "hostname"],
        ),
        ("mpipingpong_unknown_option", PINGPONG, vec!["-bogus"]),
        ("mpipingpong_bad_packet", PINGPONG, vec!["-p", "abc"]),
        ("mpipingpong_bad_iterations", PINGPONG, vec!["-p", "8:0"]),
    ] {
        insta::assert_snapshot!(name, shown(exe, &args));
    }
}

#[test]
fn connectivity_table_and_no_channel_error() {
    insta::assert_snapshot!(
        "mpi_connectivity_table",
        shown(
            MPIEXEC,
            &[
                "-n",
                "3",
                "-env",
                "MSMPI_CONNECTIVITY_TABLE",
                "1",
                "-env",
                "MSMPI_PRECONNECT",
                "0",
                PINGPONG,
                "-m",
                "-p",
                "1:1",
                "-oq"
            ]
        )
    );
    let text = shown(
        MPIEXEC,
        &[
            "-n",
            "2",
            "-env",
            "MSMPI_DISABLE_SHM",
            "1",
            "-env",
            "MSMPI_DISABLE_SOCK",
            "1",
            // Verbs off too, so the reason is the same on hosts with and
            // without an RDMA device (tests/verbs_fallback.rs covers those).
            "-env",
            "MSMPI_DISABLE_ND",
            "1",
            PINGPONG,
            "-m",
            "-p",
            "1:1",
        ],
    );
    // Which rank reports first varies: rank numbers become [N].
    let line = text
        .lines()
        .find(|l| l.contains("no channel between"))
        .unwrap_or_else(|| panic!("{text}"));
    let line = line.replace("rank 0", "rank [N]").replace("rank 1", "rank [N]");
    insta::assert_snapshot!("mpi_no_channel", line);
}
