//! The node agents' MPI launch service: `mpiexec` inside a job starts its
//! ranks through it (they are the head node's children, not mpiexec's), a
//! forged credential or a node outside the job is refused with a message and
//! a failed task, and canceling the job leaves no rank behind.

use crate::common::{Cluster, output_of, pids_matching, property, wait_until};
use crate::mpiexec::prog;
use std::time::Duration;

const MPIEXEC: &str = env!("CARGO_BIN_EXE_mpiexec");

fn four_nodes() -> Cluster {
    Cluster::with_layout(&[
        "--nodes",
        "4",
        "--cores-per-node",
        "1",
        "--node-group",
        "azurenodes",
    ])
}

fn task_view(c: &Cluster, id: u64) -> String {
    c.ok("task", &["view", &format!("{id}.1")])
}

/// The parent pid a `/proc/<pid>/status` line names.
fn ppid_of(status_line: &str) -> u32 {
    status_line
        .rsplit(['\t', ' '])
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn ranks_of_a_job_start_through_the_service() {
    let c = four_nodes();
    let cmd = format!("{MPIEXEC} -c 1 -affinity -lines {}", prog("ring"));
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:4", &cmd]);
    assert_eq!(c.wait(id), "Finished", "{}", task_view(&c, id));
    let out = output_of(&task_view(&c, id));
    assert_eq!(out.trim_end(), "[0]ring size=4 token=10", "{out}");

    // Every rank is a child of a `hpcd run-rank` the head node started (the
    // launch service), each on one CPU of its own node.
    let script = r#"tr "\000" " " </proc/$PPID/cmdline; echo; grep -e PPid: /proc/$PPID/status; grep -e Cpus_allowed_list: /proc/self/status"#;
    let cmd = format!("{MPIEXEC} -c 1 -affinity -lines sh -c '{script}'");
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:4", &cmd]);
    assert_eq!(c.wait(id), "Finished", "{}", task_view(&c, id));
    let out = output_of(&task_view(&c, id));
    let head = c.head_pid();
    for rank in 0..4 {
        let line = |what: &str| {
            out.lines()
                .find(|l| l.starts_with(&format!("[{rank}]{what}")))
                .unwrap_or_else(|| panic!("no {what} of rank {rank}:\n{out}"))
        };
        assert!(
            line("").contains("hpcd run-rank"),
            "rank {rank}'s parent is not run-rank:\n{out}"
        );
        assert_eq!(
            ppid_of(line("PPid:")),
            head,
            "run-rank of rank {rank} is not the head node's child:\n{out}"
        );
        let cpus = line("Cpus_allowed_list:")
            .rsplit(':')
            .next()
            .unwrap()
            .trim();
        assert!(cpus.parse::<u32>().is_ok(), "{out}");
    }
    let log = std::fs::read_to_string(c.state_dir().join("hpcd.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("launch service: job {id} rank 3 on ")),
        "{log}"
    );
}

#[test]
fn forged_credential_is_refused() {
    let c = four_nodes();
    let forged = "0".repeat(64);
    let cmd = format!(
        "HPCPACK_JOB_CREDENTIAL=$CCP_JOBID:{forged} {MPIEXEC} -c 1 {}",
        prog("ring")
    );
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:4", &cmd]);
    assert_eq!(c.wait(id), "Failed");
    let view = task_view(&c, id);
    assert_eq!(property(&view, "Exit Code").as_deref(), Some("1"), "{view}");
    let out = output_of(&view);
    assert!(
        out.contains("through the launch service at 127.0.0.1:"),
        "{out}"
    );
    assert!(
        out.contains(&format!("the job credential is not valid for job {id}")),
        "{out}"
    );
    assert!(!out.contains("ring size"), "{out}");

    // No credential at all (mpiexec run outside the task's environment).
    let cmd = format!(
        "env -u HPCPACK_JOB_CREDENTIAL {MPIEXEC} -c 1 {}",
        prog("ring")
    );
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:2", &cmd]);
    assert_eq!(c.wait(id), "Failed");
    let out = output_of(&task_view(&c, id));
    assert!(out.contains("no job credential was given"), "{out}");
}

#[test]
fn node_outside_the_allocation_is_refused() {
    let c = four_nodes();
    let host = crate::common::host();
    let (mine, other) = (format!("{host}-1"), format!("{host}-2"));
    // Point mpiexec at the same service for a node the job does not hold.
    let cmd = format!(
        "HPCPACK_LAUNCH=\"{other}=${{HPCPACK_LAUNCH#*=}}\" {MPIEXEC} -hosts 1 {other} 1 {}",
        prog("ring")
    );
    let id = c.submit(&[&format!("/askednodes:{mine}"), "/numnodes:1", &cmd]);
    assert_eq!(c.wait(id), "Failed");
    let out = output_of(&task_view(&c, id));
    assert!(
        out.contains(&format!(
            "node {other} is not in the allocation of job {id} ({mine})"
        )),
        "{out}"
    );
}

#[test]
fn job_cancel_leaves_no_rank() {
    let c = four_nodes();
    let (id, marker) = sleeping_ranks(&c, "cancel", "-lines");
    let head = c.head_pid();
    for r in ranks(&marker) {
        let runner = parent(r).unwrap_or(0);
        assert!(
            cmdline(runner).contains("hpcd run-rank"),
            "rank {r}'s parent is {}",
            cmdline(runner)
        );
        assert_eq!(
            parent(runner),
            Some(head),
            "rank {r} was not started by the service"
        );
    }
    cancel_leaves_nothing(&c, id, &marker);
}

/// Submits `mpiexec -c 1 <flags> sleep <marker>` on the 4 virtual nodes and
/// waits until its 4 ranks run; returns the job and the marker that
/// mpiexec and the ranks carry on their command lines.
fn sleeping_ranks(c: &Cluster, what: &str, flags: &str) -> (u64, String) {
    let marker = format!("launch-{what}-{}", std::process::id());
    let cmd = format!("{MPIEXEC} -c 1 {flags} {} {marker}", prog("sleep"));
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:4", &cmd]);
    assert!(
        wait_until(Duration::from_secs(20), || ranks(&marker).len() == 4),
        "ranks: {:?}",
        ranks(&marker)
    );
    (id, marker)
}

/// The rank processes carrying `marker` (mpiexec left out).
fn ranks(marker: &str) -> Vec<u32> {
    pids_matching(marker)
        .into_iter()
        .filter(|p| !is_mpiexec(*p))
        .collect()
}

/// Cancels job `id` and waits until no process carries `marker`.
fn cancel_leaves_nothing(c: &Cluster, id: u64, marker: &str) {
    c.ok("job", &["cancel", &id.to_string()]);
    assert!(
        wait_until(Duration::from_secs(10), || pids_matching(marker).is_empty()),
        "left: {:?}",
        pids_matching(marker)
    );
    assert_eq!(c.wait(id), "Canceled");
}

#[test]
fn killed_mpiexec_leaves_no_rank() {
    let c = four_nodes();
    let (id, marker) = sleeping_ranks(&c, "kill9", "");
    let all = || pids_matching(&marker);
    let mpiexec = all()
        .into_iter()
        .find(|p| is_mpiexec(*p))
        .expect("mpiexec runs");
    crate::common::unsafe_kill(mpiexec, 9);
    assert!(
        wait_until(Duration::from_secs(10), || all().is_empty()),
        "left: {:?}",
        all()
    );
    assert_eq!(c.wait(id), "Failed");
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

fn is_mpiexec(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "mpiexec")
}

fn parent(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("PPid:")).map(ppid_of)
}

/// mpiexec ends a job of service ranks as it ends one of its own children:
/// the failing rank's code, the abort blocks, `-exitcodes`, `-timeout`.
#[test]
fn service_ranks_end_the_job_as_local_ones_do() {
    let c = four_nodes();
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!(
        "{MPIEXEC} -c 1 -exitcodes {} {}",
        prog("fail"),
        dir.path().display()
    );
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:4", &cmd]);
    let started = std::time::Instant::now();
    assert_eq!(c.wait(id), "Failed");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let view = task_view(&c, id);
    assert_eq!(property(&view, "Exit Code").as_deref(), Some("3"), "{view}");
    let out = output_of(&view);
    assert!(
        out.contains("[1] process exited without calling finalize"),
        "{out}"
    );
    assert!(
        out.contains("ended prematurely and may have crashed. exit code 3"),
        "{out}"
    );
    // The others were killed by the service: SIGKILL, as a shell shows it.
    assert!(out.contains("\n---- exit code ----\n\n[0] on "), "{out}");
    assert!(out.contains(": 137\n"), "{out}");
    for rank in [0, 2, 3] {
        let pid: u32 = std::fs::read_to_string(dir.path().join(format!("pid.{rank}")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "rank {rank} (pid {pid}) left"
        );
    }

    let cmd = format!("{MPIEXEC} -c 1 {}", prog("abort"));
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:4", &cmd]);
    assert_eq!(c.wait(id), "Failed");
    let out = output_of(&task_view(&c, id));
    assert!(
        out.contains("\n[0] application aborted\n\n[1-3] terminated\n"),
        "{out}"
    );
    assert!(out.contains("aborted the job. abort code 7"), "{out}");

    let cmd = format!("{MPIEXEC} -c 1 -timeout 1 -lines {}", prog("sleep"));
    let id = c.submit(&["/nodegroup:azurenodes", "/numnodes:4", &cmd]);
    let started = std::time::Instant::now();
    assert_eq!(c.wait(id), "Failed");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let out = output_of(&task_view(&c, id));
    assert_eq!(out.matches("sleeping").count(), 4, "{out}");
    assert!(out.contains("[3]sleeping"), "{out}");
    assert!(out.contains("timed out after 1 seconds"), "{out}");
}

/// Ranks, like tasks, outlive a restart of the head node: the running job's
/// ranks are still there after `hpcd local stop` and `start`, and a cancel
/// through the restarted head node still ends them all.
#[test]
fn ranks_survive_a_head_node_restart() {
    let c = four_nodes();
    let (id, marker) = sleeping_ranks(&c, "restart", "");
    let ranks = || ranks(&marker);
    let before = ranks();
    let head = c.head_pid();
    c.ok("hpcd", &["local", "stop"]);
    assert!(
        wait_until(Duration::from_secs(10), || !std::path::Path::new(&format!(
            "/proc/{head}"
        ))
        .exists()),
        "the head node did not exit"
    );
    assert_eq!(
        ranks(),
        before,
        "the ranks did not survive the head node's stop"
    );
    c.start();
    assert_eq!(
        c.prop("job", &["view", &id.to_string()], "State"),
        "Running"
    );
    assert_eq!(ranks(), before);
    cancel_leaves_nothing(&c, id, &marker);
}
