//! The test harness: a real embedded cluster (`hpcd` started as a user would,
//! in the background) in a temporary state directory, and the real CLI
//! binaries run against it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of one of the project's binaries.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "job" => PathBuf::from(env!("CARGO_BIN_EXE_job")),
        "task" => PathBuf::from(env!("CARGO_BIN_EXE_task")),
        "node" => PathBuf::from(env!("CARGO_BIN_EXE_node")),
        "cluscfg" => PathBuf::from(env!("CARGO_BIN_EXE_cluscfg")),
        "clusrun" => PathBuf::from(env!("CARGO_BIN_EXE_clusrun")),
        "hpcd" => PathBuf::from(env!("CARGO_BIN_EXE_hpcd")),
        other => panic!("no binary {other}"),
    }
}

/// This machine's host name, as the head node names its nodes.
pub fn host() -> String {
    hpcpack::node::sys::hostname()
}

/// One embedded cluster with its own state directory.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// Options given to `hpcd local start` (kept for restarts).
    layout: Vec<String>,
}

impl Cluster {
    /// A cluster of this machine as one node.
    pub fn new() -> Cluster {
        Cluster::with_layout(&[])
    }

    /// A cluster started with `hpcd local start <layout>`.
    pub fn with_layout(layout: &[&str]) -> Cluster {
        let c = Cluster { dir: tempfile::tempdir().expect("temp dir"), layout: layout.iter().map(|s| s.to_string()).collect() };
        c.start();
        c
    }

    /// A cluster that is not started: the first CLI call starts it.
    pub fn unstarted() -> Cluster {
        Cluster { dir: tempfile::tempdir().expect("temp dir"), layout: vec![] }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn socket(&self) -> PathBuf {
        self.state_dir().join("hpcd.sock")
    }

    /// A command for one of our binaries with this cluster's environment.
    pub fn command(&self, tool: &str) -> Command {
        self.command_for(&bin(tool))
    }

    /// A command for `program` (a shell, say) with this cluster's environment.
    pub fn command_for(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("HPCPACK_STATE_DIR", self.state_dir())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("HPCPACK_CANCEL_GRACE", "2")
            .env_remove("CCP_SCHEDULER")
            .env_remove("HPCPACK_FORMAT")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    pub fn start(&self) {
        let out = self.command("hpcd").args(["local", "start", "--quiet"]).args(&self.layout).output().expect("run hpcd");
        assert!(out.status.success(), "hpcd local start failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs `tool args…`.
    pub fn run(&self, tool: &str, args: &[&str]) -> Output {
        self.command(tool).args(args).output().expect("run tool")
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, tool: &str, args: &[&str]) -> String {
        let out = self.run(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and requires failure; returns (exit code, stderr).
    pub fn fails(&self, tool: &str, args: &[&str]) -> (i32, String) {
        let out = self.run(tool, args);
        assert!(!out.status.success(), "{tool} {args:?} should have failed: {}", String::from_utf8_lossy(&out.stdout));
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// `job submit args…`; returns the job id from `Job has been submitted. ID: N.`.
    pub fn submit(&self, args: &[&str]) -> u64 {
        let mut a = vec!["submit"];
        a.extend_from_slice(args);
        parse_submitted(&self.ok("job", &a))
    }

    /// Waits for a job to end; returns its state.
    pub fn wait(&self, id: u64) -> String {
        let out = self.run("job", &["wait", &id.to_string(), "/timeout:60", "/quiet"]);
        assert!(out.status.code().is_some(), "job wait was killed");
        self.prop("job", &["view", &id.to_string()], "State")
    }

    /// One `Property : Value` of a view.
    pub fn prop(&self, tool: &str, args: &[&str], key: &str) -> String {
        let out = self.ok(tool, args);
        property(&out, key).unwrap_or_else(|| panic!("no {key} in:\n{out}"))
    }

    /// The head node's process id.
    pub fn head_pid(&self) -> u32 {
        let out = self.ok("hpcd", &["status"]);
        property(&out, "Process Id").and_then(|p| p.parse().ok()).expect("hpcd status shows a pid")
    }

    /// Kills the head node with SIGKILL and waits until it is gone.
    pub fn kill9(&self) {
        let pid = self.head_pid();
        unsafe_kill(pid, 9);
        wait_until(Duration::from_secs(10), || !Path::new(&format!("/proc/{pid}")).exists());
    }

    /// The whole state as the REST API shows it, for before/after comparisons.
    pub fn snapshot_state(&self) -> String {
        let mut s = self.ok("job", &["list", "/all", "/format:json"]);
        s += &self.ok("node", &["list", "/format:json"]);
        s += &self.ok("cluscfg", &["listenvs"]);
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.command("hpcd").args(["local", "stop"]).stdout(Stdio::null()).output();
        // Anything still running for this cluster: supervisors (named by
        // their run directory) and tasks (which inherit HPCPACK_STATE_DIR).
        let runs = self.state_dir().join("runs");
        for pid in pids_matching(runs.to_str().unwrap_or("//")) {
            unsafe_kill(pid, 9);
        }
        for pid in pids_with_env(&format!("HPCPACK_STATE_DIR={}", self.state_dir().display())) {
            unsafe_kill(pid, 9);
        }
    }
}

/// The id in `Job has been submitted. ID: N.`, checked against the
/// regular expression public scripts use.
pub fn parse_submitted(out: &str) -> u64 {
    let line = out.lines().next().unwrap_or("");
    let rest = line.strip_prefix("Job has been submitted. ID: ").unwrap_or_else(|| panic!("unexpected submit output: {out}"));
    rest.strip_suffix('.').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("unexpected submit output: {out}"))
}

/// Value of `key` in `Property : Value` output (split on the first ':', as
/// the scripts that parse HPC Pack do).
pub fn property(out: &str, key: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// Everything after `Output ... :` of a task view.
pub fn output_of(view: &str) -> String {
    let i = view.find("\nOutput").map(|i| i + 1).unwrap_or(0);
    let rest = &view[i..];
    let first = rest.split_once(':').map(|(_, v)| v).unwrap_or("");
    first.strip_prefix(' ').unwrap_or(first).to_string()
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// What the machine running the tests may have set that changes what
/// `mpiexec` does (a job's nodes and launch services, timeout, affinity,
/// netmask, working directory).
const HOST_MPI_VARS: &[&str] = &[
    "CCP_NODES",
    "HPCPACK_LOCAL_NODES",
    "HPCPACK_LAUNCH",
    "HPCPACK_JOB_CREDENTIAL",
    "MPIEXEC_TIMEOUT",
    "MPIEXEC_AFFINITY",
    "CCP_MPI_NETMASK",
    "CCP_MPI_WORKDIR",
    "HPCPACK_SSH",
];

/// `c` without the host's [`HOST_MPI_VARS`], so an `mpiexec` it starts
/// (directly or through a wrapper) sees only what the test sets.
pub fn without_host_mpi_env(c: &mut Command) -> &mut Command {
    for v in HOST_MPI_VARS {
        c.env_remove(v);
    }
    c
}

/// Sends a signal to a process (a gone process is fine).
pub fn unsafe_kill(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Pids whose command line contains `needle`.
pub fn pids_matching(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// Pids that have `var=value` in their environment (tasks carry a marker).
pub fn pids_with_env(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}

/// A REST call to the cluster's head node over its socket.
pub fn rest(c: &Cluster) -> (reqwest::blocking::Client, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder().unix_socket(c.socket()).build().expect("client");
    (client, "http://localhost".to_string())
}

/// The user a second, unprivileged caller runs as (nobody).
pub const NOBODY: u32 = 65534;

/// True when this test may act as a second user: it runs as root and has
/// setpriv (util-linux), as CI does.
pub fn can_switch_users() -> bool {
    hpcpack::node::sys::uid() == 0 && Command::new("setpriv").arg("--version").output().is_ok()
}

/// A command run as user `uid` with no supplementary groups (through
/// setpriv), or as this user when `uid` is None.
pub fn command_as(uid: Option<u32>, program: &Path) -> Command {
    match uid {
        None => Command::new(program),
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={u}")).arg(format!("--regid={u}")).arg("--clear-groups").arg(for_others(program));
            c.env("HOME", "/tmp");
            c
        }
    }
}

/// `program`, or, for one of this build's programs, a link to it in a
/// directory every user may enter: a checkout may sit in a directory only
/// its owner enters (a `mktemp -d` clone), and the `job`, `task` …
/// launchers `exec` the `hpcpack` beside them as the user who runs them.
pub fn for_others(program: &Path) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let ours = bin("job").parent().expect("bin dir").to_path_buf();
    if program.parent() != Some(ours.as_path()) {
        return program.to_path_buf();
    }
    let dir = DIR.get_or_init(|| {
        // One directory per build directory, made afresh by each run (so
        // links to binaries of earlier builds do not pile up).
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        ours.hash(&mut h);
        let d = std::env::temp_dir().join(format!("hpcpack-test-bin-{:016x}", h.finish()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).expect("a directory for the binaries");
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        for name in ["hpcpack", "job", "task", "node", "cluscfg", "clusrun", "hpcd", "hpcd-task", "mpiexec", "mpipingpong"] {
            let (from, to) = (ours.join(name), d.join(name));
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).expect("copy a binary");
            }
        }
        d
    });
    dir.join(program.file_name().expect("file name"))
}

/// A head node run by root for every local user (`hpcd head --shared`),
/// its state and socket in a temporary directory other users may pass
/// through, as an administrator would set one up.
pub struct SharedHead {
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SharedHead {
    /// Starts one; `None` (the test is skipped, saying so) when this
    /// process cannot act as a second user.
    pub fn start() -> Option<SharedHead> {
        if !can_switch_users() {
            eprintln!("skipped: needs root and setpriv to act as a second user");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let log = std::fs::File::create(dir.path().join("hpcd.log")).expect("log file");
        let child = Command::new(bin("hpcd"))
            .args(["head", "--shared", "--state-dir"])
            .arg(dir.path().join("state"))
            .arg("--socket")
            .arg(dir.path().join("head.sock"))
            .env("HPCPACK_CANCEL_GRACE", "2")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start hpcd head");
        let head = SharedHead { dir, child };
        assert!(
            wait_until(Duration::from_secs(10), || std::os::unix::net::UnixStream::connect(head.socket()).is_ok()),
            "the shared head node did not start: {}",
            head.log()
        );
        Some(head)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("head.sock")
    }

    /// `/scheduler:unix:<socket>`.
    pub fn scheduler(&self) -> String {
        format!("/scheduler:unix:{}", self.socket().display())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the head node logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hpcd.log")).unwrap_or_default()
    }

    /// Runs `tool <subcommand> /scheduler:unix:<socket> <args…>` as `uid`
    /// (None: root); `args` starts with the subcommand.
    pub fn run_as(&self, uid: Option<u32>, tool: &str, args: &[&str]) -> Output {
        command_as(uid, &bin(tool))
            .args(&args[..1])
            .arg(self.scheduler())
            .args(&args[1..])
            .env_remove("CCP_SCHEDULER")
            .env_remove("HPCPACK_FORMAT")
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .expect("run tool")
    }

    /// `job submit args…` as `uid`; the job id.
    pub fn submit_as(&self, uid: Option<u32>, args: &[&str]) -> u64 {
        let mut a = vec!["submit"];
        a.extend_from_slice(args);
        let out = self.run_as(uid, "job", &a);
        assert!(out.status.success(), "job submit {args:?} as {uid:?}: {}", String::from_utf8_lossy(&out.stderr));
        parse_submitted(&String::from_utf8_lossy(&out.stdout))
    }
}

impl Drop for SharedHead {
    fn drop(&mut self) {
        unsafe_kill(self.child.id(), 15);
        let _ = self.child.wait();
        let runs = self.state_dir().join("runs");
        for pid in pids_matching(runs.to_str().unwrap_or("//")) {
            unsafe_kill(pid, 9);
        }
    }
}

/// A number from `/proc/<pid>/status` (`VmRSS`, `VmHWM` in kB, `Threads`).
pub fn proc_status(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Descriptors process `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}
