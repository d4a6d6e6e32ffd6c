//! Unit tests of the head node's state machine, on a real store in a
//! temporary directory.

use super::*;
use crate::model::COMPUTE_NODES;
use crate::node::protocol::AgentEvent;
use crate::wire::{RestProperty, TaskSpec};

use crate::model::NodeHealth;

fn cluster() -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let mut c = Cluster::load(store, dir.path().join("runs"), "HEAD".into()).unwrap();
    let nodes = (1..=2)
        .map(|i| Node {
            name: format!("N{i}"),
            state: NodeState::Online,
            health: NodeHealth::OK,
            reachable: true,
            cores: 2,
            sockets: 1,
            memory_mb: 1000,
            groups: vec![COMPUTE_NODES.into(), "g".into()],
            cpus: vec![0, 1],
            host: "h".into(),
            online_time: None,
            offline_time: None,
        })
        .collect();
    c.register_nodes(nodes, vec![NodeGroup { name: "g".into(), description: String::new() }], &[], 0).unwrap();
    (dir, c)
}

/// An agent's report that `run` ended with `exit_code`, with no error.
fn exited(run: crate::node::protocol::RunId, exit_code: i64, canceled: bool) -> AgentEvent {
    AgentEvent::Exited { run, exit_code, canceled, error: String::new(), reason: String::new() }
}

fn alice() -> Caller {
    Caller { uid: 1000, name: "alice".into() }
}

fn spec(cmd: &str, job: &[(&str, &str)]) -> JobSpec {
    JobSpec {
        properties: job.iter().map(|(k, v)| RestProperty::new(*k, *v)).collect(),
        env: vec![],
        custom_properties: vec![],
        tasks: vec![TaskSpec { properties: vec![RestProperty::new("CommandLine", cmd)], env: vec![] }],
        ..Default::default()
    }
}

/// Issue 10 item 9: a submission sent again with its request id (its
/// first answer was lost with the head node) gets the same job, also after
/// a restart; another user's request with the same id is another job.
#[test]
fn a_submission_sent_again_makes_one_job() {
    let (d, mut c) = cluster();
    let mut s = spec("true", &[]);
    s.request_id = Some("0123abcd".into());
    let (first, eff) = c.submit_new(&alice(), &s, 1).unwrap();
    assert!(eff.reschedule);
    let (again, eff) = c.submit_new(&alice(), &s, 2).unwrap();
    assert_eq!((again, eff.reschedule), (first, false));
    let bob = Caller { uid: 1001, name: "bob".into() };
    assert_ne!(c.submit_new(&bob, &s, 3).unwrap().0, first);
    drop(c);
    let mut c = Cluster::load(Store::open(&d.path().join("s.db")).unwrap(), d.path().join("runs"), "HEAD".into()).unwrap();
    assert_eq!(c.submit_new(&alice(), &s, 4).unwrap().0, first);
    s.request_id = Some("no spaces".into());
    assert!(c.submit_new(&alice(), &s, 5).is_err());
}

#[test]
fn a_job_runs_through_its_states() {
    let (_d, mut c) = cluster();
    let mut s = spec("true", &[("MinNodes", "2")]);
    s.tasks[0].properties.push(RestProperty::new("MinNodes", "2"));
    let (id, _) = c.submit_new(&alice(), &s, 1).unwrap();
    assert_eq!(c.job(id).unwrap().state, JobState::Queued);
    let eff = c.schedule(2).unwrap();
    assert_eq!(eff.launches.len(), 1);
    let l = &eff.launches[0];
    assert!(l.env.contains(&("CCP_NODES".into(), "2 N1 2 N2 2".into())));
    assert_eq!(c.task(id, 1).unwrap().state, TaskState::Dispatching);
    c.agent_event(&AgentEvent::Started { run: l.run }, 3).unwrap();
    assert_eq!(c.task(id, 1).unwrap().state, TaskState::Running);
    c.agent_event(&exited(l.run, 0, false), 4).unwrap();
    assert_eq!(c.job(id).unwrap().state, JobState::Finished);
    assert!(!c.job(id).unwrap().holds_resources());
    assert_eq!(c.job(id).unwrap().allocated_node_names(), "N1,N2");
}

#[test]
fn bad_input_changes_nothing() {
    let (_d, mut c) = cluster();
    let before = c.job_count();
    assert!(c.submit_new(&alice(), &spec("true", &[("MinNodes", "3")]), 1).is_err());
    assert!(c.submit_new(&alice(), &spec("true", &[("NodeGroups", "nosuch")]), 1).is_err());
    assert!(c.submit_new(&alice(), &spec("", &[]), 1).is_err());
    assert!(c.submit_new(&alice(), &spec("true", &[("Priority", "Urgent")]), 1).is_err());
    assert_eq!(c.job_count(), before);
    assert_eq!(c.next_job_id, 1);
}

#[test]
fn only_the_owner_changes_a_job() {
    let (_d, mut c) = cluster();
    let (id, _) = c.submit_new(&alice(), &spec("true", &[]), 1).unwrap();
    let bob = Caller { uid: 1001, name: "bob".into() };
    assert!(matches!(c.cancel_job(&bob, id, "", 2), Err(Error::AccessDenied(_))));
    assert!(c.cancel_job(&Caller { uid: 0, name: "root".into() }, id, "", 2).is_ok());
    assert_eq!(c.job(id).unwrap().state, JobState::Canceled);
}

#[test]
fn cancel_waits_for_running_tasks() {
    let (_d, mut c) = cluster();
    let (id, _) = c.submit_new(&alice(), &spec("sleep 100", &[]), 1).unwrap();
    let run = c.schedule(2).unwrap().launches[0].run;
    let eff = c.cancel_job(&alice(), id, "", 3).unwrap();
    assert_eq!(eff.kills.len(), 1);
    assert_eq!(c.job(id).unwrap().state, JobState::Canceling);
    assert!(c.cancel_job(&alice(), id, "", 3).is_err());
    c.agent_event(&exited(run, 143, true), 4).unwrap();
    assert_eq!(c.job(id).unwrap().state, JobState::Canceled);
    assert_eq!(c.task(id, 1).unwrap().state, TaskState::Canceled);
}

#[test]
fn exit_codes_decide_failure() {
    let (_d, mut c) = cluster();
    let mut s = spec("exit 3", &[]);
    s.tasks[0].properties.push(RestProperty::new("ValidExitCodes", "0,3"));
    let (id, _) = c.submit_new(&alice(), &s, 1).unwrap();
    let run = c.schedule(2).unwrap().launches[0].run;
    c.agent_event(&exited(run, 3, false), 4).unwrap();
    assert_eq!(c.job(id).unwrap().state, JobState::Finished);
    let (id, _) = c.submit_new(&alice(), &spec("exit 1", &[]), 5).unwrap();
    let run = c.schedule(6).unwrap().launches[0].run;
    let reason = "mpiexec: cannot reach the launch service".to_string();
    c.agent_event(&AgentEvent::Exited { run, exit_code: 1, canceled: false, error: String::new(), reason }, 7).unwrap();
    assert_eq!(c.job(id).unwrap().state, JobState::Failed);
    // Issue 11 item 6: the line of standard error that says why follows.
    assert_eq!(
        c.task(id, 1).unwrap().error_message,
        "exit code 1 is not a valid exit code (0): mpiexec: cannot reach the launch service"
    );
    assert!(c.job(id).unwrap().error_message.contains("exit code 1"));
    c.requeue_job(&alice(), id, 8).unwrap();
    assert_eq!(c.task(id, 1).unwrap().state, TaskState::Queued);
    assert_eq!(c.task(id, 1).unwrap().requeue_count, 1);
}

#[test]
fn stale_reports_are_ignored() {
    let (_d, mut c) = cluster();
    let (id, _) = c.submit_new(&alice(), &spec("true", &[]), 1).unwrap();
    let run = c.schedule(2).unwrap().launches[0].run;
    c.requeue_job(&alice(), id, 3).unwrap();
    let run2 = c.schedule(4).unwrap().launches[0].run;
    assert_eq!(run2.attempt, run.attempt + 1);
    c.agent_event(&exited(run, 1, true), 5).unwrap();
    assert_eq!(c.task(id, 1).unwrap().state, TaskState::Dispatching);
}

#[test]
fn draining_then_offline() {
    let (_d, mut c) = cluster();
    let root = Caller { uid: 0, name: "root".into() };
    let (id, _) = c.submit_new(&alice(), &spec("true", &[("MinNodes", "2")]), 1).unwrap();
    let run = c.schedule(2).unwrap().launches[0].run;
    c.node_offline(&root, "n1", false, 3).unwrap();
    assert_eq!(c.node("N1").unwrap().state, NodeState::Draining);
    c.agent_event(&exited(run, 0, false), 4).unwrap();
    c.settle_draining(5).unwrap();
    assert_eq!(c.node("N1").unwrap().state, NodeState::Offline);
    assert_eq!(c.job(id).unwrap().state, JobState::Finished);
    assert!(c.node_offline(&root, "N1", false, 6).is_err());
    assert!(c.node_online(&alice(), "N1", 6).is_err());
    c.node_online(&root, "N1", 6).unwrap();
}
