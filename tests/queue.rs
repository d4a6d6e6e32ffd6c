//! Waiting jobs, as a user sees them: a queued job says
//! why it waits (`Pending Reason` of `job view` and `job list
//! /format:list`, REST `PendingReason`), the reason follows the queue and
//! is empty once the job runs; `job wait /timeout` that runs out has its
//! own exit code.

use crate::common::{Cluster, rest, wait_until};
use serde_json::{Value, json};
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

/// The `Pending Reason` of job `id` in `job list /format:list`.
fn listed_reason(c: &Cluster, id: u64) -> String {
    let list = c.ok("job", &["list", "/format:list"]);
    let block = list
        .split("\n\n")
        .find(|b| crate::common::property(b, "Id") == Some(id.to_string()))
        .unwrap_or_else(|| panic!("job {id} is not listed:\n{list}"));
    crate::common::property(block, "Pending Reason").unwrap_or_else(|| panic!("no Pending Reason:\n{block}"))
}

#[test]
fn a_queued_job_says_what_it_waits_for() {
    let c = Cluster::with_layout(LAYOUT);
    let first = c.submit(&["/nodegroup:azurenodes", "/numcores:2", "sleep", "60"]);
    becomes(&c, first, "Running");
    assert_eq!(view(&c, first, "Pending Reason"), "");

    let second = c.submit(&["/nodegroup:azurenodes", "/numcores:2", "sleep", "60"]);
    let third = c.submit(&["/numnodes:1", "hostname"]);
    assert_eq!(view(&c, second, "State"), "Queued");
    let why = format!("waiting for 2 cores: 2 of the 2 cores of the group azurenodes are in use by job {first}");
    assert_eq!(view(&c, second, "Pending Reason"), why);
    assert_eq!(listed_reason(&c, second), why);
    let (client, base) = rest(&c);
    let props: Value =
        client.get(format!("{base}/hpc/jobs/{second}?properties=PendingReason")).send().unwrap().json().unwrap();
    assert_eq!(props, json!([{"Name": "PendingReason", "Value": why}]));
    assert_eq!(
        view(&c, third, "Pending Reason"),
        format!("waiting for 1 node: 2 of the 2 nodes of the cluster are in use by job {first}"),
        "a job queued behind the full cluster has its reason too"
    );
    // The table keeps HPC Pack's columns.
    let table = c.ok("job", &["list"]);
    assert!(table.lines().next().is_some_and(|l| l.trim_end().ends_with("Resource Request")), "{table}");

    // The reason follows the queue: once the first job is gone, the second
    // runs (and has none) and the third waits for it.
    c.ok("job", &["cancel", &first.to_string()]);
    becomes(&c, second, "Running");
    assert_eq!(view(&c, second, "Pending Reason"), "");
    assert_eq!(listed_reason(&c, second), "");
    assert_eq!(
        view(&c, third, "Pending Reason"),
        format!("waiting for 1 node: 2 of the 2 nodes of the cluster are in use by job {second}")
    );

    // A job held by /holduntil says until when.
    let held = c.submit(&["/holduntil:60", "hostname"]);
    let why = view(&c, held, "Pending Reason");
    assert!(why.starts_with("held until ") && why.ends_with(" (/holduntil)"), "{why}");

    // A request its nodes can never meet is refused, saying what they have.
    let (code, err) = c.fails("job", &["submit", "/nodegroup:azurenodes", "/numnodes:8", "hostname"]);
    assert_eq!(code, 2);
    assert_eq!(
        err.trim_end(),
        "job submit: the job cannot run on this cluster: it asks for 8 nodes but the group azurenodes has 2 nodes"
    );
    // (The third may have run and ended by now.)
    for id in [second, third, held] {
        c.run("job", &["cancel", &id.to_string()]);
    }
}

#[test]
fn job_wait_that_times_out_has_its_own_exit_code() {
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
