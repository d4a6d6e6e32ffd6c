//! `mpiexec` on this host with real MPICH programs (`tests/mpi/*.c`, built
//! with Debian's `mpicc.mpich`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::without_host_mpi_env;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MPICC: &str = "/usr/bin/mpicc.mpich";

fn mpiexec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mpiexec"));
    without_host_mpi_env(&mut c);
    c
}

/// The directory holding the compiled test programs (built once).
fn programs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Another job may still be installing MPICH; wait for it a while.
        let start = Instant::now();
        while !Path::new(MPICC).exists() && start.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_secs(2));
        }
        assert!(
            Path::new(MPICC).exists(),
            "{MPICC} not found: install Debian's MPICH (apt-get install mpich libmpich-dev)"
        );
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mpi");
        for name in ["ring", "allreduce", "fail", "sleep", "abort"] {
            let out = Command::new(MPICC)
                .arg("-O1")
                .arg("-o")
                .arg(dir.join(name))
                .arg(src.join(format!("{name}.c")))
                .output()
                .expect("run mpicc.mpich");
            assert!(
                out.status.success(),
                "mpicc {name}.c: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    })
}

pub fn prog(name: &str) -> String {
    programs().join(name).display().to_string()
}

fn run(args: &[&str]) -> (Output, String, Duration) {
    let start = Instant::now();
    let out = mpiexec().args(args).output().expect("run mpiexec");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout, start.elapsed())
}

#[test]
fn ring_on_2_and_4_ranks() {
    let ring = prog("ring");
    for (n, token) in [("2", 3), ("4", 10)] {
        let (out, stdout, took) = run(&["-n", n, &ring]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(stdout, format!("ring size={n} token={token}\n"));
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}

#[test]
fn allreduce_barrier_lines_env_and_affinity() {
    let (out, stdout, _) = run(&[
        "-n",
        "2",
        "-lines",
        "-env",
        "FOO",
        "bar",
        &prog("allreduce"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("[0]rank 0 of 2 sum=3 foo=bar cpus="),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("[1]rank 1 of 2 sum=3 foo=bar cpus="),
        "{stdout}"
    );

    // -genv and -affinity: each rank bound to one CPU.
    let (out, stdout, _) = run(&[
        "-affinity",
        "-genv",
        "FOO",
        "g",
        "-n",
        "2",
        &prog("allreduce"),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.matches("foo=g cpus=1\n").count(), 2, "{stdout}");
}

#[test]
fn failing_rank_sets_exit_code_and_kills_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout, took) = run(&["-n", "3", &prog("fail"), dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        stdout.contains("\njob aborted:\n[ranks] message\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[1] process exited without calling finalize"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ended prematurely and may have crashed. exit code 3"),
        "{stdout}"
    );
    for rank in [0, 2] {
        let pid: i32 = std::fs::read_to_string(dir.path().join(format!("pid.{rank}")))
            .expect("rank wrote its pid")
            .trim()
            .parse()
            .unwrap();
        // Reaped by mpiexec's waiter, so not even a zombie is left.
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "rank {rank} (pid {pid}) still there"
        );
    }
}

#[test]
fn exitcodes_block() {
    let (out, stdout, _) = run(&["-exitcodes", "-n", "2", &prog("ring")]);
    assert!(out.status.success(), "{out:?}");
    let block = stdout
        .split_once("ring size=2 token=3\n")
        .expect("ring output")
        .1;
    let host = block
        .lines()
        .nth(3)
        .and_then(|l| l.strip_prefix("[0] on "))
        .and_then(|l| l.strip_suffix(": 0"));
    let host = host.unwrap_or_else(|| panic!("no [0] line: {stdout}"));
    assert_eq!(
        block,
        format!(
            "\n---- exit code ----\n\n[0] on {host}: 0\n[1] on {host}: 0\n\n---- exit code ----\n"
        )
    );
}

#[test]
fn unknown_option() {
    let (out, _, _) = run(&["-bogus", "-n", "2", "true"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Unknown option: -bogus\n"
    );
}

#[test]
fn timeout_ends_a_sleeping_job() {
    let (out, stdout, took) = run(&["-timeout", "1", "-n", "2", &prog("sleep")]);
    assert!(!out.status.success(), "{out:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(stdout.contains("timed out after 1 seconds"), "{stdout}");

    let start = Instant::now();
    let out = mpiexec()
        .env("MPIEXEC_TIMEOUT", "1")
        .args(["-n", "1", &prog("sleep")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[test]
fn non_mpi_programs_and_remote_hosts() {
    let (out, stdout, _) = run(&["-n", "3", "-lines", "echo", "hi"]);
    assert!(out.status.success(), "{out:?}");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["[0]hi", "[1]hi", "[2]hi"]);

    // Outside a job another host is reached by ssh: here a command that
    // fails at once, as ssh does on a host it cannot log in to.
    let out = mpiexec()
        .env("HPCPACK_SSH", "false")
        .args(["-hosts", "1", "some-other-host", "2", "true"])
        .output()
        .expect("run mpiexec");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "Error: cannot start the proxy on host 'some-other-host' through ssh: ssh ended \
         (exit status: 1) before the proxies on some-other-host connected. ssh printed nothing.",
        "{out:?}"
    );
}

#[test]
fn mpi_abort_ends_the_job_with_its_code() {
    let (out, stdout, took) = run(&["-n", "3", &prog("abort")]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        stdout.contains("\n[0] application aborted\n\n[1-2] terminated\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("aborted the job. abort code 7\n"),
        "{stdout}"
    );
}

/// The seed scenario's shape through the real job loop: a job on 4 virtual
/// nodes of group azurenodes runs `mpiexec -c 1 -affinity`, one rank per node,
/// each bound to its node's CPU; `task view` shows the program's output.
#[test]
fn mpiexec_in_a_job_on_four_virtual_nodes() {
    let c = crate::common::Cluster::with_layout(&["--nodes", "4", "--cores-per-node", "1", "--node-group", "azurenodes"]);
    let cmd = format!(
        "{} -c 1 -affinity -lines {}",
        env!("CARGO_BIN_EXE_mpiexec"),
        prog("ring")
    );
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:4", &cmd]);
    assert_eq!(c.wait(id), "Finished", "{}", c.ok("task", &["view", &format!("{id}.1")]));
    let out = crate::common::output_of(&c.ok("task", &["view", &format!("{id}.1")]));
    assert!(out.contains("[0]ring size=4 token=10"), "{out}");
    // Each rank runs inside its own node's one CPU.
    let cmd = format!("{} -c 1 -affinity -lines grep Cpus_allowed_list /proc/self/status", env!("CARGO_BIN_EXE_mpiexec"));
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:4", &cmd]);
    assert_eq!(c.wait(id), "Finished");
    let out = crate::common::output_of(&c.ok("task", &["view", &format!("{id}.1")]));
    let lists: Vec<&str> = out.lines().filter(|l| l.contains("Cpus_allowed_list")).collect();
    assert_eq!(lists.len(), 4, "{out}");
    for l in lists {
        let cpus = l.rsplit(':').next().unwrap().trim();
        assert!(cpus.parse::<u32>().is_ok(), "one CPU per rank: {l}");
    }
}

#[test]
fn priority_classes_set_the_ranks_nice_value() {
    // MS-MPI's 0=idle … 4=high, per section.
    for (p, nice) in [("0", "19"), ("1", "10"), ("2", "0"), ("3", "-5"), ("4", "-10")] {
        let (out, stdout, _) = run(&["-priority", p, "-n", "1", "nice"]);
        assert!(out.status.success(), "{out:?}");
        if hpcpack::node::sys::uid() == 0 {
            assert_eq!(stdout.trim(), nice, "-priority {p}");
        }
    }
    let (out, stdout, _) = run(&["-n", "1", "-priority", "1", "nice", ":", "-n", "1", "nice"]);
    assert!(out.status.success(), "{out:?}");
    let mut got: Vec<&str> = stdout.split_whitespace().collect();
    got.sort();
    assert_eq!(got, ["0", "10"], "{stdout}");
}

#[test]
fn priority_above_normal_without_permission_says_so() {
    if hpcpack::node::sys::uid() != 0 {
        return; // needs root to become an unprivileged user
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_mpiexec"))
        .args(["-priority", "4", "-n", "1", "nice"])
        .current_dir("/")
        .output()
        .expect("setpriv (util-linux)");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("-priority 4 needs permission to raise priority"), "{stderr}");
}

#[test]
fn debug_output_goes_to_stderr_or_the_log_file() {
    let (out, stdout, _) = run(&["-d", "-n", "2", "-affinity", "hostname"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[mpiexec] starting rank 0 on ") && stderr.contains("(by mpiexec), bound to CPU"), "{stderr}");
    assert!(stderr.contains("[mpiexec] rank 1 exited with code 0"), "{stderr}");

    // Level 1 is errors only; -logfile takes them off stderr.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mpiexec.log");
    let log_s = log.to_str().unwrap();
    let (out, _, _) = run(&["-d", "1", "-logfile", log_s, "-n", "1", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("[mpiexec]"), "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "[mpiexec] error: job aborted: rank 0 exited with code 3 before finalizing\n");

    // No -d: no debug output.
    let (out, _, _) = run(&["-n", "1", "hostname"]);
    assert!(out.stderr.is_empty(), "{out:?}");

    let (out, _, _) = run(&["-logfile", "/nonexistent/dir/log", "-n", "1", "hostname"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("Error: cannot open the -logfile '/nonexistent/dir/log': "), "{stderr}");
}
