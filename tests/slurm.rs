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
//! Each node also runs an sshd; `$SLURM_RIG_DIR/ssh/config` is the client
//! configuration that reaches them (`ssh -F`), which the tests of mpiexec
//! outside any job give it through `HPCPACK_SSH`.
//!
//! This is its own test binary, run after `verbs`: its daemons would
//! otherwise run beside the timing-sensitive tests of `main`.
//!
//! These tests never skip. Without root or without the Slurm packages they
//! fail and name the apt-get line to run (or `.ci/run`, as root): a rig that
//! silently passes would gate nothing.

mod common;

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
                   munge slurmrestd slurm-wlm-jwt-plugin iproute2 util-linux openssh-server \
                   mpich libmpich-dev";

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
/// the nodes see: they share this machine's filesystem). With an argument it
/// also prints how many ranks MPICH counts on its node.
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
  if (argc > 1) {
    /* With an argument: how many ranks MPICH counts on this rank's node. */
    MPI_Comm node;
    int local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    printf("rank %d shares its node with %d\n", rank, local);
  }
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
    assert_one_rank_per_node(&out);
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
    assert_every_pair_measured(&out);
}

/// The run `out` of the `where` program succeeded with one rank on each
/// node, and their allreduce summed the ranks.
fn assert_one_rank_per_node(out: &Output) {
    assert!(out.status.success(), "{}", show(out));
    assert_eq!(
        sorted_lines(out),
        [
            "rank 0 of 3 on node1 sum 3",
            "rank 1 of 3 on node2 sum 3",
            "rank 2 of 3 on node3 sum 3"
        ],
        "{}",
        show(out)
    );
}

/// mpipingpong's run `out` succeeded and measured every pair of the three
/// hosts.
fn assert_every_pair_measured(out: &Output) {
    let text = show(out);
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

// ----- the HPC Pack commands on Slurm (CCP_SCHEDULER=slurm) -----

/// A state directory of its own for one test (the job records), on the
/// filesystem the nodes share.
fn state_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("hpcpack-slurm-state").tempdir().expect("temp dir")
}

/// One of this build's CLIs (`job`, `task`, `node`, `cluscfg`) against the
/// rig, as a user who exported CCP_SCHEDULER=slurm: reading through the
/// rig's slurmrestd (the default address).
fn hpc(state: &Path, tool: &str, args: &[&str]) -> Output {
    hpc_via(state, tool, args, "http://127.0.0.1:6820")
}

/// [`hpc`] through Slurm's commands only, as on a site without slurmrestd.
fn hpc_cmds(state: &Path, tool: &str, args: &[&str]) -> Output {
    hpc_via(state, tool, args, "none")
}

fn hpc_via(state: &Path, tool: &str, args: &[&str], url: &str) -> Output {
    hpc_command(state, tool, args, url).output().unwrap_or_else(|e| panic!("cannot run {tool} {args:?}: {e}"))
}

/// The command [`hpc_via`] runs, for a test to add to.
fn hpc_command(state: &Path, tool: &str, args: &[&str], url: &str) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_hpcpack")).with_file_name(tool);
    let bin = bin.to_str().expect("a UTF-8 path");
    let mut c = slurm_command(&[&[bin], args].concat());
    c.env("CCP_SCHEDULER", "slurm")
        .env("HPCPACK_STATE_DIR", state)
        .env("HPCPACK_CONFIG", state.join("config.toml"))
        .env("HPCPACK_SLURM_URL", url)
        .current_dir(state);
    c
}

/// `Job has been submitted. ID: 42.` (or `Created job, ID: 42`) → 42.
fn job_id(out: &Output) -> String {
    let s = String::from_utf8_lossy(&out.stdout);
    let id = s.split("ID:").nth(1).map(|r| r.trim().trim_end_matches('.').trim().to_string());
    id.filter(|i| i.chars().all(|c| c.is_ascii_digit()) && !i.is_empty())
        .unwrap_or_else(|| panic!("no job id in the answer\n{}", show(out)))
}

/// The value of `Label : value` in a `view` output.
fn field(out: &Output, label: &str) -> String {
    common::property(&String::from_utf8_lossy(&out.stdout), label).unwrap_or_else(|| panic!("no {label} in\n{}", show(out)))
}

/// Waits for job `id` to end (`job wait`: exit 0 when it finished);
/// its final state.
fn wait_job(state: &Path, id: &str) -> String {
    let out = hpc_cmds(state, "job", &["wait", id, "/timeout:90"]);
    let view = hpc(state, "job", &["view", id]);
    let s = field(&view, "State");
    assert_eq!(out.status.success(), s == "Finished", "{}\n{}", show(&out), show(&view));
    s
}

/// Waits until task 1 of job `id` runs.
fn task_running(state: &Path, id: &str) {
    let view = || hpc(state, "task", &["view", &format!("{id}.1")]);
    assert!(wait_for(30, || field(&view(), "State") == "Running"), "never Running\n{}", show(&view()));
}

/// Slurm's jobs (ids), as squeue lists them.
fn queue_ids() -> Vec<String> {
    let out = slurm(&["squeue", "-h", "-o", "%i"]);
    assert!(out.status.success(), "{}", show(&out));
    sorted_lines(&out)
}

/// `node list` on Slurm: the rig's three nodes, Online, in HPC Pack's
/// layout; `node list /nodegroup:azurenodes` (a partition and a feature)
/// has them all, and the embedded head node's JSON keys are the same.
#[test]
fn node_list_on_slurm_shows_the_rigs_nodes_in_hpc_packs_layout() {
    let _rig = rig();
    let st = state_dir();
    let out = hpc(st.path(), "node", &["list"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Node Name            State       Max   Run   Idle"), "{text}");
    for n in NODES {
        assert!(text.lines().any(|l| l.starts_with(n) && l.contains("Online")), "{n} not Online\n{text}");
    }
    let out = hpc(st.path(), "node", &["list", "/group:azurenodes", "/format:json"]);
    assert!(out.status.success(), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(3), "{v}");
    let out = hpc(st.path(), "node", &["list", "/group:nosuch"]);
    assert!(!out.status.success(), "{}", show(&out));
    // Groups are Slurm's partitions and features: listed, viewed, not changed.
    let out = hpc(st.path(), "node", &["group", "view", "azurenodes"]);
    assert_eq!(field(&out, "Nodes"), NODES.join(","), "{}", show(&out));
    let out = hpc(st.path(), "node", &["group", "create", "mine"]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("partitions and node features"), "{}", show(&out));
}

/// The first seed form's plumbing on Slurm: `job submit` gives a Slurm job
/// id, `job wait` returns when it ends, `task view` shows where and what
/// the task ran (its output, kept in the state directory), and Slurm's own
/// view of the job agrees.
#[test]
fn a_job_runs_on_slurm_and_task_view_shows_its_output() {
    let _rig = rig();
    let st = state_dir();
    let out = hpc(st.path(), "job", &["submit", "/numnodes:2", "/jobname:where", "hostname"]);
    assert!(out.status.success(), "{}", show(&out));
    let id = job_id(&out);
    assert!(queue_ids().contains(&id) || !slurm(&["scontrol", "show", "job", &id]).stdout.is_empty());
    assert_eq!(wait_job(st.path(), &id), "Finished");
    let view = hpc(st.path(), "task", &["view", &format!("{id}.1")]);
    assert!(view.status.success(), "{}", show(&view));
    assert_eq!(field(&view, "State"), "Finished", "{}", show(&view));
    assert_eq!(field(&view, "Exit Code"), "0", "{}", show(&view));
    assert_eq!(field(&view, "Allocated Nodes"), "node1,node2", "{}", show(&view));
    assert_eq!(field(&view, "Output"), "node1", "{}", show(&view));
    let job = hpc(st.path(), "job", &["view", &id]);
    assert_eq!(field(&job, "Name"), "where");
    assert_eq!(field(&job, "Resource Request"), "2-2 Nodes");
    let slurms = slurm(&["scontrol", "show", "job", &id]);
    assert!(String::from_utf8_lossy(&slurms.stdout).contains("JobState=COMPLETED"), "{}", show(&slurms));
    // The same JSON layout as the embedded head node's.
    let json = hpc(st.path(), "job", &["view", &id, "/format:json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    for k in ["Id", "Name", "State", "Owner", "SubmitTime", "AllocatedNodes", "ResourceRequest"] {
        assert!(v.get(k).is_some(), "no {k} in {v}");
    }
}

/// `job new`, three `job add` (the second depends on the first) and `job
/// submit /id:` run in one Slurm job, in HPC Pack's order, each task with
/// the CCP_* variables of the embedded head node; through Slurm's commands
/// only (no slurmrestd).
#[test]
fn a_three_task_job_with_a_dependency_runs_in_one_allocation() {
    let _rig = rig();
    let st = state_dir();
    let out = hpc_cmds(st.path(), "job", &["new", "/numnodes:2"]);
    assert!(out.status.success(), "{}", show(&out));
    let id = job_id(&out);
    let view = hpc_cmds(st.path(), "job", &["view", &id]);
    assert_eq!(field(&view, "State"), "Configuring", "{}", show(&view));
    let mark = st.path().join("first-done");
    let first = format!("sleep 1; touch {}; echo one", mark.display());
    let second = format!("test -e {} && echo saw-first $CCP_JOBID.$CCP_TASKID $CCP_NODES", mark.display());
    for args in [vec!["/name:first", first.as_str()], vec!["/name:second", "/depend:first", second.as_str()], vec!["/numcores:2", "hostname"]] {
        let mut a = vec!["add", id.as_str()];
        a.extend(args);
        let out = hpc_cmds(st.path(), "job", &a);
        assert!(out.status.success(), "{}", show(&out));
    }
    let out = hpc_cmds(st.path(), "job", &["submit", &format!("/id:{id}")]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(wait_job(st.path(), &id), "Finished");
    let t2 = hpc_cmds(st.path(), "task", &["view", &format!("{id}.2")]);
    assert_eq!(field(&t2, "State"), "Finished", "{}", show(&t2));
    assert_eq!(field(&t2, "Output"), format!("saw-first {id}.2 1 node1 1"), "{}", show(&t2));
    let t3 = hpc_cmds(st.path(), "task", &["view", &format!("{id}.3")]);
    assert_eq!(field(&t3, "State"), "Finished", "{}", show(&t3));
    let list = hpc_cmds(st.path(), "job", &["listtasks", &id]);
    assert_eq!(String::from_utf8_lossy(&list.stdout).matches("Finished").count(), 3, "{}", show(&list));
}

/// `job cancel` of a running job: Slurm cancels it, the job and its task
/// are Canceled with the message, and no process of the task is left.
#[test]
fn job_cancel_on_slurm_leaves_nothing_running() {
    let _rig = rig();
    let st = state_dir();
    let out = hpc(st.path(), "job", &["submit", "sleep 297"]);
    let id = job_id(&out);
    task_running(st.path(), &id);
    let out = hpc(st.path(), "job", &["cancel", &id, "/message:enough"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(wait_job(st.path(), &id), "Canceled");
    let t = hpc(st.path(), "task", &["view", &format!("{id}.1")]);
    assert_eq!(field(&t, "State"), "Canceled", "{}", show(&t));
    let job = hpc(st.path(), "job", &["view", &id]);
    assert_eq!(field(&job, "Error Message"), "enough", "{}", show(&job));
    assert!(wait_for(10, || pids_running("sleep 297").is_empty()), "sleep 297 still runs 10 s after the cancel");
}

/// `node offline node3` drains it in Slurm; a job asking for 3 nodes then
/// waits with a pending reason, and runs once `node online node3` resumes it.
#[test]
fn node_offline_drains_and_a_three_node_job_waits_with_a_reason() {
    let _rig = rig();
    let st = state_dir();
    let out = hpc(st.path(), "node", &["offline", "node3"]);
    assert!(out.status.success(), "{}", show(&out));
    let n = slurm(&["scontrol", "show", "node", "node3"]);
    let online = |st: &Path| hpc(st, "node", &["online", "node3"]);
    let text = String::from_utf8_lossy(&n.stdout).to_string();
    if !text.contains("DRAIN") {
        online(st.path());
        panic!("node3 not drained\n{text}");
    }
    let out = hpc(st.path(), "job", &["submit", "/numnodes:3", "hostname"]);
    let id = job_id(&out);
    std::thread::sleep(Duration::from_millis(500));
    let view = hpc(st.path(), "job", &["view", &id]);
    let on = online(st.path());
    assert!(on.status.success(), "{}", show(&on));
    assert_eq!(field(&view, "State"), "Queued", "{}", show(&view));
    assert!(field(&view, "Pending Reason").contains("(Slurm: "), "{}", show(&view));
    assert_eq!(wait_job(st.path(), &id), "Finished");
}

/// What Slurm cannot express, or what names what the cluster does not
/// have, is refused with a message naming the option, and nothing reaches
/// Slurm's queue.
#[test]
fn bad_options_on_slurm_are_refused_and_nothing_is_submitted() {
    let _rig = rig();
    let st = state_dir();
    let before = queue_ids();
    for (args, option) in [
        (vec!["submit", "/numsockets:2", "hostname"], "/numsockets"),
        (vec!["submit", "/nodegroup:nosuch", "hostname"], "/nodegroup"),
        (vec!["submit", "/askednodes:node9", "hostname"], "/askednodes"),
        (vec!["submit", "/numcores:1-4", "hostname"], "/numcores"),
    ] {
        let out = hpc(st.path(), "job", &args);
        assert!(!out.status.success(), "{args:?} was accepted\n{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(option), "{args:?}: the message does not name {option}\n{}", show(&out));
        assert_eq!(err.trim().lines().count(), 1, "one line\n{err}");
    }
    // Slurm's own refusal comes back as one line too, naming the option.
    let out = hpc(st.path(), "job", &["submit", "/memorypernode:999999", "hostname"]);
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Slurm refused") && err.contains("/memorypernode"), "{}", show(&out));
    assert_eq!(err.trim().lines().count(), 1, "one line\n{err}");
    assert_eq!(queue_ids(), before, "something was submitted");
}

/// With slurmrestd answering, `node list` and `job view` need none of
/// Slurm's commands (PATH empty, the JWT in SLURM_JWT): they ask
/// slurmrestd, at the API version it serves. An address that does not
/// answer is an error naming it.
#[test]
fn reads_go_through_slurmrestd_when_it_answers() {
    let _rig = rig();
    let st = state_dir();
    let out = hpc(st.path(), "job", &["submit", "hostname"]);
    let id = job_id(&out);
    assert_eq!(wait_job(st.path(), &id), "Finished");
    let token = std::fs::read_to_string(rig_dir().join("token")).expect("the rig's token");
    let token = token.trim().trim_start_matches("SLURM_JWT=").to_string();
    let rest = |args: &[&str], tool: &str, url: &str| {
        let bin = Path::new(env!("CARGO_BIN_EXE_hpcpack")).with_file_name(tool);
        Command::new(&bin)
            .args(args)
            .env_clear()
            .env("PATH", "/nonexistent")
            .env("HOME", st.path())
            .env("CCP_SCHEDULER", "slurm")
            .env("HPCPACK_STATE_DIR", st.path())
            .env("HPCPACK_CONFIG", st.path().join("config.toml"))
            .env("HPCPACK_SLURM_URL", url)
            .env("SLURM_JWT", &token)
            .output()
            .expect("run")
    };
    let nodes = rest(&["list"], "node", "http://127.0.0.1:6820");
    assert!(nodes.status.success(), "{}", show(&nodes));
    assert_eq!(String::from_utf8_lossy(&nodes.stdout).matches("Online").count(), 3, "{}", show(&nodes));
    let view = rest(&["view", &id], "job", "http://127.0.0.1:6820");
    assert!(view.status.success(), "{}", show(&view));
    assert_eq!(field(&view, "State"), "Finished", "{}", show(&view));
    let kept = std::fs::read_to_string(st.path().join("slurm/rest.json")).expect("rest.json");
    assert!(kept.contains("\"v0.0.38\""), "{kept}");
    let bad = rest(&["list"], "node", "http://127.0.0.1:9");
    assert!(!bad.status.success(), "{}", show(&bad));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("127.0.0.1:9"), "{}", show(&bad));
}

/// `cluscfg setenvs` on Slurm sets a variable for every task of this
/// user's jobs; `task cancel` of a running task of a two-task job cancels
/// that task's step only.
#[test]
fn cluster_variables_and_task_cancel_on_slurm() {
    let _rig = rig();
    let st = state_dir();
    let out = hpc(st.path(), "cluscfg", &["setenvs", "GREETING=hello from the cluster"]);
    assert!(out.status.success(), "{}", show(&out));
    let list = hpc(st.path(), "cluscfg", &["listenvs"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("GREETING"), "{}", show(&list));
    // The user's cluster variables may be secrets: no one else reads them.
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(st.path().join("slurm/environment.json")).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "environment.json is mode {mode:o}");
    let out = hpc(st.path(), "job", &["submit", "echo $GREETING"]);
    let id = job_id(&out);
    assert_eq!(wait_job(st.path(), &id), "Finished");
    let t = hpc(st.path(), "task", &["view", &format!("{id}.1")]);
    assert_eq!(field(&t, "Output"), "hello from the cluster", "{}", show(&t));

    let out = hpc(st.path(), "job", &["new"]);
    let id = job_id(&out);
    for cmd in ["sleep 298", "echo quick"] {
        let out = hpc(st.path(), "job", &["add", &id, cmd]);
        assert!(out.status.success(), "{}", show(&out));
    }
    let out = hpc(st.path(), "job", &["submit", &format!("/id:{id}")]);
    assert!(out.status.success(), "{}", show(&out));
    // Two one-core tasks: the held job's request became two CPUs.
    let sj = slurm(&["scontrol", "show", "job", &id]);
    assert!(String::from_utf8_lossy(&sj.stdout).contains("NumCPUs=2"), "{}", show(&sj));
    task_running(st.path(), &id);
    let out = hpc(st.path(), "task", &["cancel", &format!("{id}.1")]);
    assert!(out.status.success(), "{}", show(&out));
    wait_job(st.path(), &id);
    let t1 = hpc(st.path(), "task", &["view", &format!("{id}.1")]);
    assert_eq!(field(&t1, "State"), "Canceled", "{}", show(&t1));
    let t2 = hpc(st.path(), "task", &["view", &format!("{id}.2")]);
    assert_eq!((field(&t2, "State"), field(&t2, "Output")), ("Finished".to_string(), "quick".to_string()), "{}", show(&t2));
    assert!(pids_running("sleep 298").is_empty(), "sleep 298 still runs");
}

/// The scenario this project exists for, on Slurm, both seed forms as a
/// user types them: `job submit /nodegroup:azurenodes /numnodes:3 mpiexec
/// -c 1 -affinity mpipingpong …`, `job wait`, `task view`: every pair of
/// hosts is measured, and the connectivity table (asked for with /env, the
/// command line as typed) shows sockets between hosts, no shared memory.
#[test]
fn the_seed_scenario_runs_on_slurm_across_three_hosts() {
    let _rig = rig();
    let st = state_dir();
    let seed = "mpiexec -c 1 -affinity mpipingpong -p 1:100000 -op -s nul";
    let tcp = "mpiexec -c 1 -affinity -env MSMPI_DISABLE_SHM 1 -env MSMPI_PRECONNECT all -env MPICH_NETMASK 10.88.0.0/255.255.255.0 mpipingpong -p 1:100000 -op -s nul";
    for command in [seed, tcp] {
        let mut args = vec!["submit", "/nodegroup:azurenodes", "/numnodes:3", "/env:MSMPI_CONNECTIVITY_TABLE=1"];
        args.extend(command.split(' '));
        let out = hpc(st.path(), "job", &args);
        assert!(out.status.success(), "{}", show(&out));
        let id = job_id(&out);
        let state = wait_job(st.path(), &id);
        let view = hpc(st.path(), "task", &["view", &format!("{id}.1")]);
        assert_eq!(state, "Finished", "{command}\n{}", show(&view));
        // The whole output, not the view's first lines.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("cat {}/slurm/jobs/{id}/runs/1.1/output", st.path().display()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        for pair in ["node1 <-> node2", "node1 <-> node3", "node2 <-> node3"] {
            assert!(text.contains(pair), "{command}: no latency for {pair}\n{text}");
        }
        for row in ["0:.SS", "1:S.S", "2:SS."] {
            assert!(text.lines().any(|l| l.trim_end() == row), "{command}: no '{row}' in the connectivity table\n{text}");
        }
        assert_eq!(field(&view, "Allocated Nodes"), "node1,node2,node3", "{}", show(&view));
    }
}

/// `job cancel` of a running MPI job on three hosts leaves no rank on any
/// of them.
#[test]
fn job_cancel_of_an_mpi_job_leaves_no_rank_on_any_host() {
    let _rig = rig();
    let st = state_dir();
    let out = hpc(st.path(), "job", &["submit", "/numnodes:3", "mpiexec", "-c", "1", "sleep", "296"]);
    let id = job_id(&out);
    let ranks = || pids_running("sleep 296").len();
    assert!(wait_for(30, || ranks() == 3), "the 3 ranks never ran\n{}", show(&hpc(st.path(), "task", &["view", &format!("{id}.1")])));
    let out = hpc(st.path(), "job", &["cancel", &id]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(wait_job(st.path(), &id), "Canceled");
    assert!(wait_for(10, || ranks() == 0 && proxies().is_empty()), "{} ranks left 10 s after the cancel", ranks());
}

/// A second user (nobody) on the same Slurm cluster: cannot drain a node
/// (Slurm's operators only: the refusal comes back as one line), and sees
/// root's job only as Slurm shows it to everyone, never its tasks or their
/// output, which are in root's own state directory.
#[test]
fn another_user_cannot_drain_nodes_nor_read_anothers_task_output() {
    let _rig = rig();
    let st = state_dir();
    let out = hpc(st.path(), "job", &["submit", "echo root-secret"]);
    let id = job_id(&out);
    assert_eq!(wait_job(st.path(), &id), "Finished");
    let theirs = tempfile::tempdir().unwrap();
    // Their own copy of slurm.conf: the rig's may sit in a directory only
    // root enters (a mktemp -d checkout), and Slurm's commands that cannot
    // read it look for a configuration server in DNS for a long while.
    let conf = theirs.path().join("slurm.conf");
    std::fs::copy(rig_dir().join("slurm.conf"), &conf).expect("copy slurm.conf");
    Command::new("chown").args(["-R", "nobody:nogroup", &theirs.path().display().to_string()]).status().unwrap();
    let as_nobody = |tool: &str, args: &[&str]| {
        let bin = common::for_others(&common::bin(tool));
        let mut c = Command::new("timeout");
        c.args(["60", "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]).arg(&bin).args(args);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", theirs.path())
            .env("SLURM_CONF", &conf)
            .env("CCP_SCHEDULER", "slurm")
            .env("HPCPACK_STATE_DIR", theirs.path())
            .env("HPCPACK_SLURM_URL", "none")
            .current_dir(theirs.path())
            .output()
            .expect("setpriv")
    };
    let out = as_nobody("node", &["offline", "node3"]);
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Slurm refused") && err.trim().lines().count() == 1, "{}", show(&out));
    let n = slurm(&["scontrol", "show", "node", "node3"]);
    assert!(!String::from_utf8_lossy(&n.stdout).contains("DRAIN"), "node3 drained by nobody\n{}", show(&n));
    let t = as_nobody("task", &["view", &format!("{id}.1")]);
    assert!(!t.status.success(), "{}", show(&t));
    assert!(!String::from_utf8_lossy(&t.stdout).contains("root-secret"), "{}", show(&t));
    let c = as_nobody("job", &["cancel", &id]);
    assert!(!c.status.success(), "{}", show(&c));
}

/// This project's mpiexec.
const MPIEXEC: &str = env!("CARGO_BIN_EXE_mpiexec");

/// The pids of processes whose whole command line is `cmdline`, its
/// program given by name or by path (on every node: the nodes share this
/// machine's pid namespace).
fn pids_running(cmdline: &str) -> Vec<String> {
    pgrep(&["-x", "-f", &format!("(\\S*/)?{}", regex_quote(cmdline))])
}

/// The pids `pgrep` with `args` finds.
fn pgrep(args: &[&str]) -> Vec<String> {
    let out = Command::new("pgrep").args(args).output().expect("run pgrep");
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

/// The proxies our mpiexec has running, on any node (started by srun or
/// by ssh).
fn proxies() -> Vec<String> {
    let mut pids = pids_running(&format!("{MPIEXEC} --hpcpack-proxy"));
    pids.extend(pids_running(&format!("{MPIEXEC} --hpcpack-proxy-stdin")));
    pids
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
    assert_one_rank_per_node(&out);
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
    let mut salloc = slurm_command(&["salloc", "-N3", MPIEXEC, "-c", "1", "sleep", "30.5317"]);
    let mut salloc = kill_mpiexec_midway(&mut salloc, sleep, &format!("{MPIEXEC} -c 1 {sleep}"));
    let gone = wait_for(5, || pids_running(sleep).is_empty() && proxies().is_empty());
    let _ = salloc.wait();
    assert!(
        gone,
        "left after mpiexec was killed: ranks {:?}, proxies {:?}",
        pids_running(sleep),
        proxies()
    );
}

/// Starts `cmd`, waits until its ranks (`sleep`) run on the three nodes,
/// each with its proxy, and kills the one mpiexec whose command line is
/// `mpiexec` with SIGKILL; `cmd`'s process, to be waited for.
fn kill_mpiexec_midway(cmd: &mut Command, sleep: &str, mpiexec: &str) -> std::process::Child {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mpiexec");
    let running = wait_for(60, || pids_running(sleep).len() == 3 && proxies().len() == 3);
    let pids = pids_running(mpiexec);
    if !running || pids.len() != 1 {
        let _ = child.kill();
        panic!(
            "not three ranks ({:?}), three proxies ({:?}) and one mpiexec ({pids:?})",
            pids_running(sleep),
            proxies()
        );
    }
    let killed = Command::new("kill").args(["-9", &pids[0]]).status().unwrap();
    assert!(killed.success());
    child
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

/// MPICH learns which ranks share a node from mpiexec's PMI node map: six
/// ranks on three hosts are three nodes of two, not one node of six (which
/// would have MPICH take shared memory to ranks on other hosts).
#[test]
fn an_mpich_program_sees_two_ranks_per_host_under_our_mpiexec() {
    let prog = where_prog();
    let _rig = rig();
    let out = slurm(&["salloc", "-N3", "-n6", MPIEXEC, "-n", "6", prog, "local"]);
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("shares its node with 2").count(), 6, "{text}");
}

/// The rig's ssh client configuration: node1..3 by their addresses, the
/// rig's key and known hosts.
fn ssh_config() -> PathBuf {
    rig_dir().join("ssh/config")
}

/// Our mpiexec with `args` outside any job (none of Slurm's variables), its
/// ssh given `config`.
fn mpiexec_over_ssh(config: &Path, args: &[&str]) -> Command {
    let mut all = vec![MPIEXEC];
    all.extend(args);
    let mut c = slurm_command(&all);
    c.env("HPCPACK_SSH", format!("ssh -F {}", config.display()));
    c
}

/// The ssh clients running with `config`.
fn ssh_clients(config: &Path) -> Vec<String> {
    pgrep(&["-f", &format!("^ssh -F {} ", regex_quote(&config.display().to_string()))])
}

/// Outside any job (mpiexec on `head`, no Slurm variable), `-hosts` places
/// one rank of an MPICH program on each node and mpiexec starts them over
/// ssh, one proxy per host; the ranks talk (allreduce), and mpipingpong
/// measures every pair of hosts. Timed against MPICH's Hydra with its ssh
/// launcher and the same ssh configuration.
#[test]
fn mpiexec_outside_a_job_starts_ranks_on_three_hosts_over_ssh() {
    let prog = where_prog();
    let _rig = rig();
    let config = ssh_config();
    let hosts = ["-hosts", "3", "node1", "1", "node2", "1", "node3", "1"];
    let mut ours = Duration::MAX;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let out = mpiexec_over_ssh(&config, &[&hosts[..], &[prog]].concat())
            .output()
            .expect("run mpiexec");
        ours = ours.min(started.elapsed());
        assert_one_rank_per_node(&out);
    }
    assert!(wait_for(5, || proxies().is_empty()), "proxies left: {:?}", proxies());
    assert_eq!(ssh_clients(&config), Vec::<String>::new(), "ssh left");

    // Hydra's launcher-exec is a program: a wrapper gives it the config.
    let dir = tempfile::tempdir().expect("temp dir");
    let wrapper = dir.path().join("ssh");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec ssh -F {} \"$@\"\n", config.display()),
    )
    .expect("write the ssh wrapper");
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the ssh wrapper");
    let wrapper = wrapper.display().to_string();
    let mut hydra = Duration::MAX;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let out = slurm(&[
            MPIEXEC_MPICH, "-launcher", "ssh", "-launcher-exec", &wrapper, "-hosts",
            "node1,node2,node3", "-n", "3", prog,
        ]);
        hydra = hydra.min(started.elapsed());
        assert!(out.status.success(), "{}", show(&out));
        assert_eq!(sorted_lines(&out).len(), 3, "{}", show(&out));
    }
    eprintln!(
        "3 ranks on 3 hosts over ssh, best of 3: ours {ours:?}, Hydra {hydra:?} ({:.2}x)",
        ours.as_secs_f64() / hydra.as_secs_f64()
    );

    let pingpong = env!("CARGO_BIN_EXE_mpipingpong");
    let out = mpiexec_over_ssh(&config, &[&hosts[..], &[pingpong, "-p", "1:100"]].concat())
        .output()
        .expect("run mpiexec");
    assert_every_pair_measured(&out);
}

/// A host whose sshd cannot be reached (node9: node1's address, a port
/// nothing listens on) or does not prove its identity (node1's address
/// taken for node2's, whose host key the rig knows): mpiexec fails at once
/// with one line naming the host and what ssh said, and nothing of the
/// launch is left on any node.
#[test]
fn a_host_ssh_cannot_reach_fails_the_launch_and_leaves_nothing() {
    let _rig = rig();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        // The rig's first: an Include after a Host line would apply to
        // that host only.
        format!(
            "Include {}\n\
             Host node9\n  HostName 10.88.0.11\n  Port 9\n\
             Host impostor\n  HostName 10.88.0.11\n  HostKeyAlias node2\n",
            ssh_config().display()
        ),
    )
    .expect("write the ssh config");
    let sleep = "sleep 30.9317";
    for (bad, said) in [
        ("node9", "ssh: connect to host 10.88.0.11 port 9: Connection refused"),
        ("impostor", "Host key verification failed."),
    ] {
        let started = std::time::Instant::now();
        let out = mpiexec_over_ssh(
            &config,
            &["-hosts", "3", "node1", "1", bad, "1", "node3", "1", "sleep", "30.9317"],
        )
        .output()
        .expect("run mpiexec");
        let took = started.elapsed();
        let text = show(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(out.stdout.is_empty(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{text}");
        assert!(
            stderr.starts_with(&format!("Error: cannot start the proxy on host '{bad}' through ssh: ")),
            "{text}"
        );
        assert!(stderr.trim_end().ends_with(&format!("ssh said: {said}")), "{text}");
        assert!(took < Duration::from_secs(10), "took {took:?}\n{text}");
        assert_nothing_left(sleep, &config);
    }
}

/// mpiexec killed with SIGKILL while its ranks run over ssh on the three
/// nodes: within a few seconds no rank, no proxy and no ssh is left (ssh
/// gets SIGTERM as its parent dies; each proxy loses its connections and
/// its standard input, and kills its ranks).
#[test]
fn mpiexec_over_ssh_killed_leaves_nothing_on_any_node() {
    let _rig = rig();
    let config = ssh_config();
    let sleep = "sleep 30.8317";
    let args = ["-hosts", "3", "node1", "1", "node2", "1", "node3", "1", "sleep", "30.8317"];
    let mpiexec = format!("{MPIEXEC} {}", args.join(" "));
    let mut run = kill_mpiexec_midway(&mut mpiexec_over_ssh(&config, &args), sleep, &mpiexec);
    assert_nothing_left(sleep, &config);
    let _ = run.wait();
}

/// Within 5 s no rank (`sleep`), no proxy and no ssh client of `config`
/// is left on any node.
fn assert_nothing_left(sleep: &str, config: &Path) {
    let gone = wait_for(5, || {
        pids_running(sleep).is_empty() && proxies().is_empty() && ssh_clients(config).is_empty()
    });
    assert!(
        gone,
        "left: ranks {:?}, proxies {:?}, ssh {:?}",
        pids_running(sleep),
        proxies(),
        ssh_clients(config)
    );
}

/// The parent of process `pid`.
fn parent_of(pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's closing parenthesis: state, then the parent.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string()
}

/// The ssh of one host ends while its rank runs, mpiexec still up: the
/// ssh client killed (node2), or the sshd session serving it on the node
/// (node3). The proxy there reads the end of its standard input and kills
/// its rank (its connections to mpiexec are still open), mpiexec ends the
/// job, and nothing is left on any node.
#[test]
fn a_proxy_whose_ssh_session_ends_kills_its_ranks() {
    let _rig = rig();
    let config = ssh_config();
    let sleep = "sleep 30.7317";
    for (host, rank, client) in [("node2", 1, true), ("node3", 2, false)] {
        let run = mpiexec_over_ssh(
            &config,
            &["-hosts", "3", "node1", "1", "node2", "1", "node3", "1", "sleep", "30.7317"],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mpiexec");
        let running = wait_for(30, || pids_running(sleep).len() == 3);
        let pid = pids_running(sleep).into_iter().find(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .unwrap_or_default()
                .split(|&b| b == 0)
                .any(|v| v == format!("HPCPACK_NODE_NAME={host}").as_bytes())
        });
        let victim = match (running, pid) {
            (true, Some(_)) if client => ssh_clients(&config).into_iter().find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .split(|&b| b == 0)
                    .any(|a| a == host.as_bytes())
            }),
            // The rank's parent is the proxy, the proxy's the sshd session.
            (true, Some(pid)) => Some(parent_of(&parent_of(&pid))),
            _ => None,
        };
        let Some(victim) = victim.filter(|v| !v.is_empty()) else {
            let out = run.wait_with_output();
            panic!("no rank running on {host}, or no ssh for it: {out:?}");
        };
        let started = std::time::Instant::now();
        let killed = Command::new("kill").args(["-9", &victim]).status().unwrap();
        assert!(killed.success());
        let out = run.wait_with_output().expect("wait for mpiexec");
        let took = started.elapsed();
        let text = show(&out);
        assert_ne!(out.status.code(), Some(0), "{text}");
        assert!(took < Duration::from_secs(10), "took {took:?}\n{text}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains(&format!("lost the connection of rank {rank} (the proxy on {host})")),
            "{text}"
        );
        assert_nothing_left(sleep, &config);
    }
}

/// `task requeue` of a task that failed while its job still runs: the
/// job's runner runs it again, beside the task still running.
#[test]
fn a_failed_task_requeued_while_its_job_runs_runs_again() {
    let _rig = rig();
    let st = state_dir();
    let id = job_id(&hpc(st.path(), "job", &["new"]));
    let mark = st.path().join("second-time");
    let flaky = format!("test -e {0} && echo second time || {{ touch {0}; exit 3; }}", mark.display());
    for cmd in [flaky.as_str(), "sleep 6"] {
        let out = hpc(st.path(), "job", &["add", &id, cmd]);
        assert!(out.status.success(), "{}", show(&out));
    }
    assert!(hpc(st.path(), "job", &["submit", &format!("/id:{id}")]).status.success());
    let view = || hpc(st.path(), "task", &["view", &format!("{id}.1")]);
    assert!(wait_for(30, || field(&view(), "State") == "Failed"), "{}", show(&view()));
    let out = hpc(st.path(), "task", &["requeue", &format!("{id}.1")]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(wait_for(5, || field(&view(), "State") == "Finished"), "not run again while its job ran\n{}", show(&view()));
    assert_eq!(field(&view(), "Output"), "second time");
    assert_eq!(wait_job(st.path(), &id), "Finished");
}

/// `clusrun` on Slurm: one task per node of the group, each a step on its
/// node, HPC Pack's blocks in node order with `/sorted`.
#[test]
fn clusrun_runs_a_command_on_every_node_of_a_partition() {
    let _rig = rig();
    let st = state_dir();
    let out = hpc(st.path(), "clusrun", &["/nodegroup:azurenodes", "/sorted", "hostname"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let want: String = NODES
        .iter()
        .map(|n| format!("-------------------------- {n} returns 0 --------------------------\n{n}\n"))
        .collect::<String>()
        + "\n-------------------------- Summary --------------------------\n3 Nodes succeeded\n0 Nodes failed\n";
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{}", show(&out));
    let out = hpc(st.path(), "clusrun", &["/nodes:node2", "exit 3"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("-------------------------- node2 returns 3 ---"), "{}", show(&out));
}

/// The seed article's firewall step, on the rig's hosts with real
/// nftables: node3's HPC firewall rules drop unsolicited connections to
/// its dynamic ports, so mpipingpong between node1 and node3 fails, naming
/// the pair and a firewall as the likely cause; `clusrun hpcfwutil
/// register mpipingpong <path>` on the group lets it through, `unregister`
/// blocks it again. The rules are table inet hpcpack, nothing else.
#[test]
fn hpcfwutil_register_lets_mpipingpong_through_a_nodes_firewall() {
    let _rig = rig();
    let st = state_dir();
    /// Deletes the rules of every node, however the test ends.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            for i in 1..=3 {
                let _ = Command::new("nsenter").args([&format!("--net=/var/run/netns/hn{i}"), "nft", "delete", "table", "inet", "hpcpack"]).output();
                let _ = std::fs::remove_file(rig_dir().join(format!("etc/node{i}/firewall.json")));
            }
        }
    }
    let _clear = Clear;
    let tables = |node: u32| {
        let out = Command::new("nsenter").args([&format!("--net=/var/run/netns/hn{node}"), "nft", "list", "tables"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before3 = tables(3);
    let pingpong = env!("CARGO_BIN_EXE_mpipingpong");
    let clusrun = |args: &[&str]| {
        let out = hpc(st.path(), "clusrun", args);
        assert_eq!(out.status.code(), Some(0), "clusrun {args:?}\n{}", show(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let out = clusrun(&["/nodes:node3", "hpcfwutil", "include", "eth0"]);
    assert!(out.contains("The HPC firewall rules apply to eth0."), "{out}");
    let run = || {
        let args = "submit /nodegroup:azurenodes /numnodes:2 /askednodes:node1,node3 mpiexec -c 1 -affinity -env MSMPI_DISABLE_SHM 1 mpipingpong -p 1:100 -op -s nul";
        let out = hpc(st.path(), "job", &args.split(' ').collect::<Vec<_>>());
        assert!(out.status.success(), "{}", show(&out));
        let id = job_id(&out);
        let state = wait_job(st.path(), &id);
        let text = std::fs::read_to_string(st.path().join(format!("slurm/jobs/{id}/runs/1.1/output"))).unwrap_or_default();
        (state, text)
    };
    let (state, text) = run();
    assert_eq!(state, "Failed", "{text}");
    assert!(text.contains("connecting to rank 1 over sockets (TCP) at 10.88.0.13:"), "the pair and node3's address\n{text}");
    assert!(text.contains("a firewall on that rank's host may drop connections to it"), "{text}");

    let out = clusrun(&["/nodegroup:azurenodes", "/sorted", "hpcfwutil", "register", "mpipingpong", pingpong]);
    for n in NODES {
        assert!(out.contains(&format!("-------------------------- {n} returns 0 ---")), "{out}");
    }
    assert!(out.contains("its ranks listen on ports 20000-20099, open on eth0"), "node3's rules apply to eth0\n{out}");
    let (state, text) = run();
    assert_eq!(state, "Finished", "{text}");
    assert!(text.contains("node1 <-> node3"), "{text}");
    let out = clusrun(&["/nodes:node3", "hpcfwutil", "verify"]);
    assert!(out.contains("as registered: 2 program(s), applying to eth0"), "{out}");

    clusrun(&["/nodes:node3", "hpcfwutil", "unregister", "mpipingpong"]);
    let (state, text) = run();
    assert_eq!(state, "Failed", "blocked again\n{text}");
    // Only its own table: what was there stays, and table inet hpcpack is added.
    let after = tables(3);
    let added: Vec<&str> = after.lines().filter(|l| !before3.lines().any(|b| b == *l)).collect();
    assert_eq!(added, ["table inet hpcpack"], "before:\n{before3}\nafter:\n{after}");
    assert_eq!(tables(2).lines().filter(|l| l.contains("hpcpack")).count(), 1, "registering made node2's table");
    let out = clusrun(&["/all", "hpcfwutil", "clear"]);
    assert!(out.contains("3 Nodes succeeded"), "{out}");
    assert!(!tables(3).contains("hpcpack"), "cleared");
}

/// A node that fails under a job (set DOWN, as `node offline /force`
/// does): a job whose task is not rerunnable is Failed, naming its nodes
/// and Slurm's NODE_FAIL; a rerunnable one (the default) Slurm requeues,
/// and its runner runs the task again.
#[test]
fn a_node_that_fails_under_a_job_fails_it_or_slurm_requeues_it() {
    let _rig = rig();
    let st = state_dir();
    /// Every node back online, however the test ends.
    struct Resume;
    impl Drop for Resume {
        fn drop(&mut self) {
            let _ = slurm(&["scontrol", "update", "NodeName=node[1-3]", "State=RESUME"]);
        }
    }
    let _resume = Resume;
    let start = |args: &[&str]| {
        let out = hpc(st.path(), "job", args);
        assert!(out.status.success(), "{}", show(&out));
        let id = job_id(&out);
        task_running(st.path(), &id);
        id
    };
    let id = start(&["submit", "/numnodes:2", "/rerunnable:false", "sleep 300"]);
    let view = hpc(st.path(), "job", &["view", &id]);
    assert_eq!(field(&view, "Allocated Nodes"), "node1,node2", "{}", show(&view));
    let out = hpc(st.path(), "node", &["offline", "/force", "node2"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(wait_job(st.path(), &id), "Failed");
    let view = hpc(st.path(), "job", &["view", &id]);
    assert!(
        field(&view, "Error Message").starts_with("a node of the job (node[1-2]) failed while it ran (Slurm: NODE_FAIL)"),
        "{}",
        show(&view)
    );
    let task = hpc(st.path(), "task", &["view", &format!("{id}.1")]);
    assert_eq!(field(&task, "State"), "Failed", "{}", show(&task));
    assert!(hpc(st.path(), "node", &["online", "node2"]).status.success());

    let first = st.path().join("first-run");
    let script = format!("if [ -e {f} ]; then echo again on $CCP_NODES; else touch {f}; exec sleep 300; fi", f = first.display());
    let id = start(&["submit", "/numnodes:2", &script]);
    assert!(hpc(st.path(), "node", &["offline", "/force", "node1"]).status.success());
    assert!(wait_for(30, || field(&hpc(st.path(), "job", &["view", &id]), "State") == "Queued"), "requeued");
    let task = hpc(st.path(), "task", &["view", &format!("{id}.1")]);
    assert_eq!(field(&task, "State"), "Queued", "{}", show(&task));
    // The rig's nodes come back at once (ReturnToService=2), a failed
    // host would not: node1 stays out, drained. Slurm starts the job again
    // once its credentials expired (the rig's cred_expire, 10 s).
    let out = hpc(st.path(), "node", &["offline", "node1"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(wait_job(st.path(), &id), "Finished");
    let task = hpc(st.path(), "task", &["view", &format!("{id}.1")]);
    assert_eq!(field(&task, "Output"), "again on 2 node2 1 node3 1", "{}", show(&task));
}

/// Where slurmrestd answers (v0.0.38 here), `job submit` goes through it,
/// not `sbatch`; without it, or for an option it has no field for
/// (`/askednodes` → `--exclude`), `sbatch` submits.
#[test]
fn job_submit_goes_through_slurmrestd_where_it_answers() {
    let _rig = rig();
    let st = state_dir();
    // An `sbatch` first on PATH that only says it ran.
    let bin = st.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("sbatch"), "#!/bin/sh\necho 'sbatch: error: the fake sbatch ran' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(bin.join("sbatch"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let with_fake = |url: &str, args: &[&str]| hpc_command(st.path(), "job", args, url).env("PATH", &path).output().unwrap();
    let out = with_fake("http://127.0.0.1:6820", &["submit", "/numnodes:2", "/jobname:viarest", "hostname"]);
    assert!(out.status.success(), "{}", show(&out));
    let id = job_id(&out);
    assert_eq!(wait_job(st.path(), &id), "Finished");
    let view = hpc(st.path(), "task", &["view", &format!("{id}.1")]);
    assert_eq!(field(&view, "Output"), "node1", "{}", show(&view));
    let out = slurm(&["scontrol", "show", "job", &id]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("JobName=viarest"), "{}", show(&out));
    // Slurm's refusal through slurmrestd names the option, as sbatch's does.
    let out = with_fake("http://127.0.0.1:6820", &["submit", "/memorypernode:999999", "hostname"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("Slurm refused") && err.contains("/memorypernode"), "{}", show(&out));
    // Commands only, or an option v0.0.38 cannot carry: sbatch (the fake) runs.
    for (url, args) in [("none", vec!["submit", "hostname"]), ("http://127.0.0.1:6820", vec!["submit", "/askednodes:node1,node2", "hostname"])] {
        let out = with_fake(url, &args);
        assert!(String::from_utf8_lossy(&out.stderr).contains("the fake sbatch ran"), "{url} {args:?}\n{}", show(&out));
    }
}
