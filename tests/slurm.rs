//! Tests on several hosts: a Slurm cluster of three nodes on this machine.
//!
//! `tests/slurm/up.sh` starts Debian's Slurm with node1..node3, each a
//! network, UTS and mount namespace on bridge `hpcbr0` (10.88.0.11..13),
//! slurmctld as host `head` (10.88.0.1) and slurmrestd on 127.0.0.1:6820;
//! see `tests/slurm/README.md`. The nodes share this machine's filesystem,
//! so the binaries under `target/` and programs built into a temp dir run on
//! every node, as on a Slurm site's shared filesystem.
//!
//! The rig starts once, at the first test that needs it, and stops when the
//! test process exits (an `atexit` hook runs `tests/slurm/down.sh`), whether
//! the tests passed or not. Within this binary the tests take [`RIG`] in
//! turn, so one job has the three nodes at a time.
//!
//! This is its own test binary, run after `verbs`: its daemons would
//! otherwise run beside the timing-sensitive tests of `main`.
//!
//! These tests never skip. Without root or without the Slurm packages they
//! fail and name the apt-get line to run (or `.ci/run`, as root): a rig that
//! silently passes would gate nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

const NODES: [&str; 3] = ["node1", "node2", "node3"];
const MPICC: &str = "/usr/bin/mpicc.mpich";
const MPIEXEC_MPICH: &str = "/usr/bin/mpiexec.mpich";
const APT: &str = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client \
                   munge slurmrestd slurm-wlm-jwt-plugin iproute2 util-linux mpich libmpich-dev";

/// One test at a time holds the rig (three nodes of two CPUs each).
static RIG: Mutex<()> = Mutex::new(());

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The rig's state directory: `SLURM_RIG_DIR` when set (a rig another
/// checkout started, shared while developing), else next to this build's
/// binaries, so a test process of another checkout finds its own (up.sh
/// refuses a second rig).
fn rig_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SLURM_RIG_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_BIN_EXE_mpipingpong"))
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("slurm")
}

extern "C" fn rig_down() {
    let out = Command::new(repo().join("tests/slurm/down.sh"))
        .env("SLURM_RIG_DIR", rig_dir())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => eprintln!(
            "tests/slurm/down.sh failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => eprintln!("cannot run tests/slurm/down.sh: {e}"),
    }
}

/// Starts the rig (once) and holds it for the calling test.
fn rig() -> MutexGuard<'static, ()> {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let guard = RIG.lock().unwrap_or_else(|e| e.into_inner());
    let up = UP.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(format!(
                "the Slurm rig needs root (namespaces, a bridge, slurmd); run the tests as root \
                 after .ci/run, or: {APT}"
            ));
        }
        // Registered before starting, so a half-started rig is stopped too;
        // SLURM_RIG_KEEP=1 leaves it up (a rig shared while developing).
        if std::env::var_os("SLURM_RIG_KEEP").is_none() {
            // SAFETY: rig_down is a plain extern "C" fn that never unwinds.
            unsafe { libc::atexit(rig_down) };
        }
        let out = Command::new(repo().join("tests/slurm/up.sh"))
            .env("SLURM_RIG_DIR", rig_dir())
            .output()
            .map_err(|e| format!("cannot run tests/slurm/up.sh: {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {
                eprint!("{stderr}");
                Ok(())
            }
            Some(2) => Err(format!(
                "the Slurm rig cannot start here; run .ci/run (as root), or: {APT}\n{stderr}"
            )),
            _ => Err(format!("tests/slurm/up.sh failed:\n{stderr}")),
        }
    });
    if let Err(e) = up {
        panic!("{e}");
    }
    guard
}

/// A command run against the rig: its slurm.conf, none of this process's
/// own Slurm, MPI or PMI variables (SLURM_JWT in particular: with it, srun
/// authenticates to slurmd by JWT, which slurmd refuses), and a hard limit.
fn slurm(args: &[&str]) -> Output {
    slurm_command(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

/// [`slurm`]'s command, to start rather than run.
fn slurm_command(args: &[&str]) -> Command {
    let mut c = Command::new("timeout");
    c.arg("120").args(args);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if ["SLURM_", "PMI_", "PMIX_", "MPIR_", "HYDRA_", "MPIEXEC_", "MPICH_", "MSMPI_", "CCP_", "HPCPACK_"]
            .iter()
            .any(|p| k.starts_with(p))
        {
            c.env_remove(&*k);
        }
    }
    c.env("SLURM_CONF", rig_dir().join("slurm.conf"))
        .current_dir(repo());
    c
}

fn show(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Lines of stdout, sorted (tasks on several nodes print in any order).
fn sorted_lines(out: &Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// A small MPICH program, built once with mpicc.mpich into a temp dir (which
/// the nodes see: they share this machine's filesystem).
fn where_prog() -> &'static str {
    static PROG: OnceLock<String> = OnceLock::new();
    PROG.get_or_init(|| {
        assert!(
            Path::new(MPICC).exists(),
            "{MPICC} not found: run .ci/run (as root), or: {APT}"
        );
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let src = dir.join("where.c");
        std::fs::write(
            &src,
            r#"#include <mpi.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int rank, size, sum = 0;
  char host[256];
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  gethostname(host, sizeof host);
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("rank %d of %d on %s sum %d\n", rank, size, host, sum);
  MPI_Finalize();
  return 0;
}
"#,
        )
        .expect("write where.c");
        let bin = dir.join("where");
        let out = Command::new(MPICC)
            .arg("-O1")
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .output()
            .expect("run mpicc.mpich");
        assert!(out.status.success(), "mpicc where.c: {}", show(&out));
        bin.display().to_string()
    })
}

/// `srun -N3 hostname` runs one task on each node, which has its own name.
#[test]
fn srun_n3_hostname_prints_node1_node2_node3() {
    let _rig = rig();
    let out = slurm(&["srun", "-N3", "hostname"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(sorted_lines(&out), NODES, "{}", show(&out));
}

/// Each node has its own address on the bridge, and the partition and
/// feature azurenodes hold all three.
#[test]
fn each_node_has_its_own_address_in_partition_azurenodes() {
    let _rig = rig();
    let out = slurm(&["srun", "-N3", "sh", "-c", "echo $(hostname) $(hostname -I)"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        sorted_lines(&out),
        ["node1 10.88.0.11", "node2 10.88.0.12", "node3 10.88.0.13"],
        "{}",
        show(&out)
    );
    let out = slurm(&["sinfo", "-h", "-N", "-o", "%N %P %f %t"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        sorted_lines(&out),
        [
            "node1 azurenodes* azurenodes idle",
            "node2 azurenodes* azurenodes idle",
            "node3 azurenodes* azurenodes idle"
        ],
        "{}",
        show(&out)
    );
}

/// One HTTP/1.0 GET to slurmrestd; returns the status line and the body.
fn rest_get(path: &str, token: Option<&str>) -> (String, String) {
    let mut s = TcpStream::connect("127.0.0.1:6820").expect("connect to slurmrestd");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    if let Some(t) = token {
        req += &format!("X-SLURM-USER-NAME: root\r\nX-SLURM-USER-TOKEN: {t}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read slurmrestd's answer");
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    // slurmrestd 22.05 answers HTTP/1.0 with a stray "Connection: Close"
    // header after the body: only Content-Length bytes are the body.
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(body.len())
        .min(body.len());
    (head.lines().next().unwrap_or("").to_owned(), body[..len].to_owned())
}

/// slurmrestd answers `GET /slurm/v0.0.38/nodes` with the JWT that
/// `scontrol token` prints, and refuses a request without one.
#[test]
fn slurmrestd_lists_the_nodes_with_a_token_from_scontrol() {
    let _rig = rig();
    let out = slurm(&["scontrol", "token", "username=root", "lifespan=600"]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .trim()
        .strip_prefix("SLURM_JWT=")
        .unwrap_or_else(|| panic!("scontrol token printed no SLURM_JWT=\n{}", show(&out)));

    let (status, body) = rest_get("/slurm/v0.0.38/nodes", Some(token));
    assert!(status.contains(" 200"), "{status}\n{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON from slurmrestd");
    let mut names: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes array: {body}"))
        .iter()
        .map(|n| n["name"].as_str().unwrap_or(""))
        .collect();
    names.sort();
    assert_eq!(names, NODES, "{body}");
    for n in v["nodes"].as_array().unwrap() {
        assert_eq!(n["partitions"][0], "azurenodes", "{n}");
        assert_eq!(n["features"], "azurenodes", "{n}");
    }

    let (status, body) = rest_get("/slurm/v0.0.38/nodes", None);
    assert!(!status.contains(" 200"), "no token, yet: {status}\n{body}");
}

/// MPICH's own mpiexec (Hydra, launcher slurm) inside `salloc -N3` runs
/// one rank of an MPICH program on each node; the ranks talk (allreduce).
#[test]
fn mpich_hydra_runs_an_mpich_program_on_three_nodes_under_salloc() {
    let prog = where_prog();
    let _rig = rig();
    let out = slurm(&[
        "salloc", "-N3", MPIEXEC_MPICH, "-launcher", "slurm", "-ppn", "1", "-n", "3", prog,
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        sorted_lines(&out),
        [
            "rank 0 of 3 on node1 sum 3",
            "rank 1 of 3 on node2 sum 3",
            "rank 2 of 3 on node3 sum 3"
        ],
        "{}",
        show(&out)
    );
}

/// This project's mpipingpong, an MPICH-compatible program, under MPICH's
/// mpiexec across the three hosts: every pair of hosts is measured.
#[test]
fn mpipingpong_under_mpich_hydra_across_three_hosts() {
    let _rig = rig();
    let out = slurm(&[
        "salloc",
        "-N3",
        MPIEXEC_MPICH,
        "-launcher",
        "slurm",
        "-ppn",
        "1",
        "-n",
        "3",
        env!("CARGO_BIN_EXE_mpipingpong"),
        "-p",
        "1:100",
    ]);
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for pair in ["node1 <-> node2", "node1 <-> node3", "node2 <-> node3"] {
        assert!(stdout.contains(pair), "no latency for {pair}\n{text}");
    }
}

/// Slurm's own `sinfo --json` read in HPC Pack's terms: three Online nodes
/// in ComputeNodes and azurenodes; a drained node is Offline, and Online
/// again once resumed.
#[test]
fn sinfo_json_reads_as_hpc_pack_nodes_and_a_drained_node_is_offline() {
    let _rig = rig();
    let states = || {
        let out = slurm(&["sinfo", "--json"]);
        assert!(out.status.success(), "{}", show(&out));
        hpcpack::slurm::json::nodes(&String::from_utf8_lossy(&out.stdout))
            .unwrap()
            .into_iter()
            .map(|n| format!("{} {} {} {}", n.name, n.state, n.cores, n.groups.join(",")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states(),
        ["node1 Online 2 ComputeNodes,azurenodes", "node2 Online 2 ComputeNodes,azurenodes", "node3 Online 2 ComputeNodes,azurenodes"]
    );
    let out = slurm(&["scontrol", "update", "nodename=node3", "state=drain", "reason=maintenance"]);
    assert!(out.status.success(), "{}", show(&out));
    let drained = states();
    let out = slurm(&["scontrol", "update", "nodename=node3", "state=resume"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(drained[2], "node3 Offline 2 ComputeNodes,azurenodes");
    // slurmctld takes the resume at its next pass.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut now = states();
    while now[2] != "node3 Online 2 ComputeNodes,azurenodes" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        now = states();
    }
    assert_eq!(now[2], "node3 Online 2 ComputeNodes,azurenodes");
}

/// This project's mpiexec.
const MPIEXEC: &str = env!("CARGO_BIN_EXE_mpiexec");

/// The pids of processes whose whole command line is `cmdline`, its
/// program given by name or by path (on every node: the nodes share this
/// machine's pid namespace).
fn pids_running(cmdline: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-x", "-f", &format!("(\\S*/)?{}", regex_quote(cmdline))])
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `s` as a regular expression matching itself.
fn regex_quote(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.^$|?*+()[]{}".contains(c);
            special.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// The proxies our mpiexec has running, on any node.
fn proxies() -> Vec<String> {
    pids_running(&format!("{MPIEXEC} --hpcpack-proxy"))
}

/// Waits up to `secs` for `done`; whether it came.
fn wait_for(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Our mpiexec inside `salloc -N3`, `-c 1`: one rank of an MPICH program on
/// each node, started by srun's proxies (mpiexec runs on `head`, which is
/// no node); the ranks talk (allreduce).
#[test]
fn mpiexec_runs_an_mpich_program_on_three_nodes_under_salloc() {
    let prog = where_prog();
    let _rig = rig();
    let started = std::time::Instant::now();
    let out = slurm(&["salloc", "-N3", MPIEXEC, "-c", "1", prog]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        sorted_lines(&out),
        [
            "rank 0 of 3 on node1 sum 3",
            "rank 1 of 3 on node2 sum 3",
            "rank 2 of 3 on node3 sum 3"
        ],
        "{}",
        show(&out)
    );
    eprintln!("salloc -N3 mpiexec -c 1 where: {took:?}");
    assert!(wait_for(5, || proxies().is_empty()), "proxies left: {:?}", proxies());
}

/// mpipingpong under our mpiexec across the three hosts, with `-affinity`:
/// every pair of hosts is measured, and the connectivity table shows
/// sockets between the hosts (they are one machine's namespaces, yet no
/// shared memory); again with shared memory off, every pair preconnected
/// and the traffic held to the rig's network.
#[test]
fn mpipingpong_under_our_mpiexec_across_three_hosts() {
    let _rig = rig();
    let pingpong = env!("CARGO_BIN_EXE_mpipingpong");
    let table = ["-env", "MSMPI_CONNECTIVITY_TABLE", "1"];
    let tcp_only = [
        "-env", "MSMPI_DISABLE_SHM", "1", "-env", "MSMPI_PRECONNECT", "all", "-env",
        "MPICH_NETMASK", "10.88.0.0/255.255.255.0",
    ];
    for extra in [&[][..], &tcp_only[..]] {
        let mut args = vec!["salloc", "-N3", MPIEXEC, "-c", "1", "-affinity"];
        args.extend(table);
        args.extend(extra);
        args.extend([pingpong, "-p", "1:100000", "-op", "-s", "nul"]);
        let started = std::time::Instant::now();
        let out = slurm(&args);
        eprintln!("{:?}: {:?}", &args[6..], started.elapsed());
        let text = show(&out);
        assert!(out.status.success(), "{args:?}\n{text}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        for pair in ["node1 <-> node2", "node1 <-> node3", "node2 <-> node3"] {
            assert!(stdout.contains(pair), "no latency for {pair}\n{text}");
        }
        for row in ["0: (node1)", "1: (node2)", "2: (node3)", "0:.SS", "1:S.S", "2:SS."] {
            assert!(
                stdout.lines().any(|l| l.trim_end() == row),
                "no '{row}' in the connectivity table\n{text}"
            );
        }
        assert!(stdout.contains("Shared Memory:      0"), "{text}");
    }
}

/// A rank killed on node2 (SIGKILL, before MPI init) aborts the job as
/// MS-MPI does, with 128 + 9; the ranks of node1 and node3 are killed, and
/// nothing of the job is left on any node a second later.
#[test]
fn a_rank_killed_on_node2_aborts_the_job_and_leaves_nothing() {
    let _rig = rig();
    let sleep = "sleep 30.4217";
    let script = format!("test \"$(hostname)\" = node2 && kill -9 $$; exec {sleep}");
    let out = slurm(&["salloc", "-N3", MPIEXEC, "-c", "1", "sh", "-c", &script]);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(137), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "job aborted:",
        "[0,2] terminated",
        "[1] process exited without calling init",
        "---- error analysis -----",
        "[1] on node2",
        "sh ended before calling init and may have crashed. exit code 137",
    ] {
        assert!(stdout.contains(want), "no '{want}'\n{text}");
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pids_running(sleep), Vec::<String>::new(), "ranks left\n{text}");
    assert_eq!(proxies(), Vec::<String>::new(), "proxies left\n{text}");
}

/// mpiexec killed with SIGKILL while its ranks run on the three nodes:
/// within a few seconds no rank and no proxy is left (each proxy loses its
/// connection and kills its ranks; salloc ends the allocation).
#[test]
fn mpiexec_killed_leaves_no_rank_on_any_node() {
    let _rig = rig();
    let sleep = "sleep 30.5317";
    let mut salloc = slurm_command(&["salloc", "-N3", MPIEXEC, "-c", "1", "sleep", "30.5317"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start salloc");
    let running = wait_for(60, || pids_running(sleep).len() == 3);
    let mpiexec = pids_running(&format!("{MPIEXEC} -c 1 {sleep}"));
    if !running || mpiexec.len() != 1 {
        let _ = salloc.kill();
        panic!(
            "not three ranks ({:?}) and one mpiexec ({mpiexec:?})",
            pids_running(sleep)
        );
    }
    let killed = Command::new("kill").args(["-9", &mpiexec[0]]).status().unwrap();
    assert!(killed.success());
    let gone = wait_for(5, || pids_running(sleep).is_empty() && proxies().is_empty());
    let _ = salloc.wait();
    assert!(
        gone,
        "left after mpiexec was killed: ranks {:?}, proxies {:?}",
        pids_running(sleep),
        proxies()
    );
}

/// `-lines` prefixes each rank's lines with its rank, and `-timeout` ends
/// the job, as on one host.
#[test]
fn lines_and_timeout_across_three_hosts() {
    let _rig = rig();
    let out = slurm(&["salloc", "-N3", MPIEXEC, "-c", "1", "-lines", "hostname"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(sorted_lines(&out), ["[0]node1", "[1]node2", "[2]node3"], "{}", show(&out));

    let sleep = "sleep 30.6317";
    let started = std::time::Instant::now();
    let out = slurm(&["salloc", "-N3", MPIEXEC, "-c", "1", "-timeout", "3", "sleep", "30.6317"]);
    let took = started.elapsed();
    let text = show(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("mpiexec timed out after 3 seconds; the job was terminated."),
        "{text}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}\n{text}");
    assert_eq!(pids_running(sleep), Vec::<String>::new(), "ranks left\n{text}");
}

/// In a batch job mpiexec runs on node1: rank 0 is its child there, the
/// ranks of node2 and node3 come through srun's proxies, and all three
/// share one PMI server (allreduce).
#[test]
fn mpiexec_in_a_batch_job_mixes_its_children_and_proxies() {
    let prog = where_prog();
    let _rig = rig();
    let dir = tempfile::tempdir().expect("temp dir");
    let out_file = dir.path().join("out");
    let out = slurm(&[
        "sbatch",
        "-W",
        "-N3",
        "-o",
        &out_file.display().to_string(),
        "--wrap",
        &format!("{MPIEXEC} -c 1 -d 2 {prog}"),
    ]);
    let text = std::fs::read_to_string(&out_file).unwrap_or_default();
    assert!(out.status.success(), "{}\n{text}", show(&out));
    let mut ranks: Vec<&str> = text.lines().filter(|l| l.starts_with("rank ")).collect();
    ranks.sort();
    assert_eq!(
        ranks,
        [
            "rank 0 of 3 on node1 sum 3",
            "rank 1 of 3 on node2 sum 3",
            "rank 2 of 3 on node3 sum 3"
        ],
        "{text}"
    );
    for how in [
        "starting rank 0 on node1: ",
        "starting rank 1 on node2: ",
        "starting rank 2 on node3: ",
    ] {
        assert!(text.contains(how), "{text}");
    }
    assert!(text.contains(&format!("{prog} (by mpiexec)")), "{text}");
    assert!(text.contains(&format!("{prog} (through srun, by the proxy on node2)")), "{text}");
    assert!(text.contains(&format!("{prog} (through srun, by the proxy on node3)")), "{text}");
}
