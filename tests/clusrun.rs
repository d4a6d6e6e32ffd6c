//! `clusrun`: a command on every node of a group (or the chosen nodes) as
//! one job, HPC Pack's per-node blocks and summary, and its exit code.

use crate::common::{Cluster, host};

/// The blocks of clusrun's output: (header line, body), and the summary.
fn blocks(out: &str) -> (Vec<(String, String)>, String) {
    let (body, summary) = out.split_once("\n-------------------------- Summary --------------------------\n").expect("a summary");
    let mut v: Vec<(String, String)> = Vec::new();
    for line in body.lines() {
        if line.starts_with("-------------------------- ") {
            v.push((line.to_string(), String::new()));
        } else {
            let last = v.last_mut().expect("a block header first");
            last.1 += line;
            last.1 += "\n";
        }
    }
    (v, summary.to_string())
}

fn header(node: &str, returns: &str) -> String {
    format!("-------------------------- {node} {returns} --------------------------")
}

#[test]
fn clusrun_on_a_group_prints_a_block_per_node_and_a_summary() {
    let c = Cluster::with_layout(&["--nodes", "4", "--cores-per-node", "1", "--node-group", "azurenodes:2", "--node-group", "vmcomputenodes:2"]);
    let h = host();
    let jobs_before = c.ok("job", &["list", "/all"]).lines().count();
    let out = c.run("clusrun", &["/nodegroup:azurenodes", "hostname"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut got, summary) = blocks(&text);
    got.sort();
    assert_eq!(got, [(header(&format!("{h}-1"), "returns 0"), format!("{h}\n")), (header(&format!("{h}-2"), "returns 0"), format!("{h}\n"))], "{text}");
    assert_eq!(summary, "2 Nodes succeeded\n0 Nodes failed\n");
    // It ran as a job of the caller's, on those two nodes.
    let list = c.ok("job", &["list", "/all"]);
    assert_eq!(list.lines().count(), jobs_before + 1, "{list}");
    assert!(list.lines().last().unwrap().contains("clusrun hostname"), "{list}");

    // Each node's own exit code; a node that fails makes clusrun exit 1; /sorted orders the blocks.
    let out = c.run("clusrun", &["/sorted", "echo on $CCP_NODES; exit $((CCP_TASKID - 1))"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let (got, summary) = blocks(&text);
    let want: Vec<(String, String)> =
        (1..=4).map(|i| (header(&format!("{h}-{i}"), &format!("returns {}", i - 1)), format!("on 1 {h}-{i} 1\n"))).collect();
    assert_eq!(got, want, "{text}");
    assert_eq!(summary, "1 Nodes succeeded\n3 Nodes failed\n");
}

#[test]
fn clusrun_interleaves_writes_files_and_refuses_what_cannot_run() {
    let c = Cluster::with_layout(&["--nodes", "3", "--cores-per-node", "1"]);
    let h = host();
    let (n1, n2, n3) = (format!("{h}-1"), format!("{h}-2"), format!("{h}-3"));
    let dir = c.dir.path().join("out");
    let out = c.ok(
        "clusrun",
        &["/interleaved", &format!("/nodes:{n1},{n3}"), &format!("/outputdir:{}", dir.display()), "/env:WHO=me;X=1", "echo $WHO; printf 'no newline'"],
    );
    let mut lines: Vec<&str> = out.lines().take_while(|l| !l.is_empty()).collect();
    lines.sort();
    assert_eq!(lines, [format!("{n1}: me"), format!("{n1}: no newline"), format!("{n3}: me"), format!("{n3}: no newline")], "{out}");
    assert!(out.ends_with("2 Nodes succeeded\n0 Nodes failed\n"), "{out}");
    assert_eq!(std::fs::read_to_string(dir.join(format!("{n1}.txt"))).unwrap(), "me\nno newline");
    assert!(!dir.join(format!("{n2}.txt")).exists());

    // An offline node: named, nothing submitted; /exclude leaves it out.
    c.ok("node", &["offline", &n2]);
    let jobs = c.ok("job", &["list", "/all"]);
    let (code, err) = c.fails("clusrun", &["/all", "true"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains(&format!("node {n2} is Offline: clusrun runs its command as a job")), "{err}");
    assert_eq!(c.ok("job", &["list", "/all"]), jobs, "nothing was submitted");
    // Without a selector: the Online nodes.
    let out = c.ok("clusrun", &["/sorted", "true"]);
    assert!(out.ends_with("2 Nodes succeeded\n0 Nodes failed\n"), "{out}");
    for (args, code, says) in [
        (vec!["/nodes:nosuch", "true"], 3, "node nosuch does not exist"),
        (vec!["/nodestate:sleepy", "true"], 2, "'sleepy' is not a node state"),
        (vec!["/nodegroup:nosuch", "true"], 3, "nosuch"),
        (vec!["/interleaved", "/sorted", "true"], 2, "do not go together"),
        (vec!["/frobnicate", "true"], 2, "unknown option '/frobnicate'"),
    ] {
        let (got, err) = c.fails("clusrun", &args);
        assert_eq!(got, code, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(c.ok("job", &["list", "/all"]).lines().count(), jobs.lines().count() + 1, "only the good run made a job");
}

/// Ctrl-C cancels clusrun's job: the command ends on every node, and
/// clusrun exits 130, saying so.
#[test]
fn ctrl_c_cancels_the_job_on_every_node() {
    let c = Cluster::with_layout(&["--nodes", "2", "--cores-per-node", "1"]);
    // The commands (sleep itself, not clusrun, whose command line names it too).
    let ranks = || {
        crate::common::pids_matching("sleep 317.3")
            .into_iter()
            .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep"))
            .count()
    };
    let child = c.command("clusrun").args(["sleep", "317.3"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    assert!(crate::common::wait_until(std::time::Duration::from_secs(10), || ranks() == 2), "running on both nodes");
    crate::common::unsafe_kill(child.id(), libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("clusrun: interrupted: job ") && err.contains(" was canceled"), "{err}");
    assert!(crate::common::wait_until(std::time::Duration::from_secs(10), || ranks() == 0), "the commands ended");
    let list = c.ok("job", &["list", "/all"]);
    assert!(list.lines().last().unwrap().contains("Canceled"), "{list}");
}
