//! Waiting jobs, as a user sees them (issue 11, item 7): `job wait
//! /timeout` that runs out has its own exit code.

use crate::common::{Cluster, wait_until};
use std::time::Duration;

/// Two virtual nodes of one core each, both in the group `azurenodes`.
const LAYOUT: &[&str] = &["--nodes", "2", "--cores-per-node", "1", "--node-group", "azurenodes"];

fn view(c: &Cluster, id: u64, key: &str) -> String {
    c.prop("job", &["view", &id.to_string()], key)
}

fn becomes(c: &Cluster, id: u64, state: &str) {
    let ok = wait_until(Duration::from_secs(30), || view(c, id, "State") == state);
    assert!(ok, "job {id} never became {state}: {}", c.ok("job", &["view", &id.to_string()]));
}

#[test]
fn issue_11_job_wait_that_times_out_has_its_own_exit_code() {
    let c = Cluster::with_layout(LAYOUT);
    let long = c.submit(&["sleep", "60"]);
    becomes(&c, long, "Running");
    let out = c.run("job", &["wait", &long.to_string(), "/timeout:1"]);
    assert_eq!(out.status.code(), Some(9), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("job {long} is still Running after 1 s")), "{err}");
    assert_eq!(view(&c, long, "State"), "Running", "a timeout leaves the job alone");

    // A job that ended badly is still 1, a finished one 0.
    let failed = c.submit(&["false"]);
    assert_eq!(c.run("job", &["wait", &failed.to_string(), "/timeout:30", "/quiet"]).status.code(), Some(1));
    let fine = c.submit(&["true"]);
    assert_eq!(c.run("job", &["wait", &fine.to_string(), "/timeout:30", "/quiet"]).status.code(), Some(0));
    c.ok("job", &["cancel", &long.to_string()]);
}
