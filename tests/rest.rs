//! The REST API as HPC Pack clients see it: `{Name, Value}` properties, the
//! three-call create/add/submit, paging headers, error bodies, and ownership
//! checked through the socket's peer credentials.

use crate::common::{Cluster, rest};
use serde_json::{Value, json};

#[test]
fn hpc_pack_create_add_submit_poll() {
    let c = Cluster::new();
    let (client, base) = rest(&c);
    let id: u64 = client
        .post(format!("{base}/hpc/jobs"))
        .json(&json!([{"Name": "Name", "Value": "demo"}, {"Name": "MinCores", "Value": "1"}, {"Name": "MaxCores", "Value": "1"}]))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let tid: u32 = client
        .post(format!("{base}/hpc/jobs/{id}/tasks"))
        .json(&json!([{"Name": "CommandLine", "Value": "echo rest"}]))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tid, 1);
    let r = client.post(format!("{base}/hpc/jobs/{id}/submit")).json(&json!([])).send().unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(c.wait(id), "Finished");
    let props: Value = client.get(format!("{base}/hpc/jobs/{id}?properties=Id,State,Name")).send().unwrap().json().unwrap();
    assert_eq!(props, json!([{"Name": "Id", "Value": id.to_string()}, {"Name": "State", "Value": "Finished"}, {"Name": "Name", "Value": "demo"}]));
    let tasks: Value = client.get(format!("{base}/hpc/jobs/{id}/tasks?properties=TaskId,State,ExitCode,Output")).send().unwrap().json().unwrap();
    assert_eq!(
        tasks,
        json!([{"Properties": [
            {"Name": "TaskId", "Value": format!("{id}.1")}, {"Name": "State", "Value": "Finished"},
            {"Name": "ExitCode", "Value": "0"}, {"Name": "Output", "Value": "rest\n"}]}])
    );
    let r = client.get(format!("{base}/hpc/jobs?rowsPerRead=1&startRow=0")).send().unwrap();
    assert_eq!(r.headers()["x-ms-row-count"], "1");
    let fmt: String = client.get(format!("{base}/hpc/cluster/info/dateTimeFormat")).send().unwrap().json().unwrap();
    assert_eq!(fmt, "M/d/yyyy h:mm:ss tt");
}

#[test]
fn errors_have_one_shape() {
    let c = Cluster::new();
    let (client, base) = rest(&c);
    let r = client.get(format!("{base}/hpc/jobs/4242")).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.json::<Value>().unwrap(), json!({"Code": "NotFound", "Message": "job 4242 does not exist"}));
    let r = client.post(format!("{base}/hpc/jobs")).json(&json!([{"Name": "Priority", "Value": "Urgent"}])).send().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().unwrap();
    assert_eq!(body["Code"], "InvalidArgument");
    assert!(body["Message"].as_str().unwrap().contains("property Priority"), "{body}");
    let r = client.post(format!("{base}/hpc/jobs")).body("not json").send().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = client.get(format!("{base}/hpcpack/v1/nothing-here")).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// Only the owner (or root) changes a job: a shared head node told apart by
/// the callers' credentials, with a second user run through setpriv.
#[test]
fn only_the_owner_may_change_a_job() {
    if hpcpack::node::sys::uid() != 0 || std::process::Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and setpriv to act as a second user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    let sock = dir.path().join("head.sock");
    let mut head = std::process::Command::new(crate::common::bin("hpcd"))
        .args(["head", "--shared", "--state-dir"])
        .arg(&state)
        .arg("--socket")
        .arg(&sock)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(crate::common::wait_until(std::time::Duration::from_secs(10), || std::os::unix::net::UnixStream::connect(&sock).is_ok()));
    let sched = format!("/scheduler:unix:{}", sock.display());
    let as_nobody = |args: &[&str]| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(crate::common::for_others(&crate::common::bin("job")))
            .args(args)
            .env("HOME", "/tmp")
            .output()
            .unwrap()
    };
    let out = as_nobody(&["submit", &sched, "sleep 30"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs = crate::common::parse_submitted(&String::from_utf8_lossy(&out.stdout));
    // root may cancel anyone's job; nobody may not cancel root's.
    let mine = std::process::Command::new(crate::common::bin("job")).args(["submit", &sched, "sleep 30"]).output().unwrap();
    let mine = crate::common::parse_submitted(&String::from_utf8_lossy(&mine.stdout));
    let denied = as_nobody(&["cancel", &mine.to_string(), &sched]);
    assert_eq!(denied.status.code(), Some(5), "{}", String::from_utf8_lossy(&denied.stderr));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("only its owner or root may change it"));
    let ok = std::process::Command::new(crate::common::bin("job")).args(["cancel", &theirs.to_string(), &sched]).output().unwrap();
    assert!(ok.status.success());
    let own = as_nobody(&["view", &theirs.to_string(), &sched]);
    assert!(String::from_utf8_lossy(&own.stdout).contains("nobody"), "the owner is the submitting user");
    let _ = std::process::Command::new(crate::common::bin("job")).args(["cancel", &mine.to_string(), &sched]).output();
    crate::common::unsafe_kill(head.id(), 15);
    let _ = head.wait();
}
