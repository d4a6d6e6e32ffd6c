//! Cancel leaves no process of the task behind: not its children, not a
//! grandchild that started its own session, not one that ignores SIGTERM.

use crate::common::{Cluster, pids_with_env, wait_until};
use std::time::Duration;

#[test]
fn cancel_kills_every_process_of_the_task() {
    let c = Cluster::new();
    let marker = format!("HPCPACK_TEST_MARK={}", std::process::id());
    let cmd = "sleep 300 & setsid sleep 300 & sh -c 'trap \"\" TERM; sleep 300' & sleep 300";
    let id = c.submit(&[&format!("/env:{marker}"), cmd]);
    assert!(wait_until(Duration::from_secs(10), || pids_with_env(&marker).len() >= 5), "the task's processes started");
    assert_eq!(c.prop("job", &["view", &id.to_string()], "State"), "Running");
    assert_eq!(c.ok("job", &["cancel", &id.to_string()]), format!("Job {id} canceled.\n"));
    assert_eq!(c.wait(id), "Canceled");
    assert_eq!(c.prop("task", &["view", &format!("{id}.1")], "State"), "Canceled");
    assert!(pids_with_env(&marker).is_empty(), "left behind: {:?}", pids_with_env(&marker));
}

#[test]
fn task_cancel_and_a_task_that_leaves_children() {
    let c = Cluster::new();
    let marker = format!("HPCPACK_TEST_MARK2={}", std::process::id());
    // The main process exits at once and leaves a background child: it is
    // ended with the task.
    let id = c.submit(&[&format!("/env:{marker}"), "setsid sleep 300 & exit 0"]);
    assert_eq!(c.wait(id), "Finished");
    assert!(wait_until(Duration::from_secs(5), || pids_with_env(&marker).is_empty()));

    let id = c.submit(&[&format!("/env:{marker}"), "sleep 300"]);
    assert!(wait_until(Duration::from_secs(10), || !pids_with_env(&marker).is_empty()));
    assert_eq!(c.ok("task", &["cancel", &format!("{id}.1")]), format!("Task {id}.1 canceled.\n"));
    assert!(wait_until(Duration::from_secs(10), || pids_with_env(&marker).is_empty()));
    // The job's one task was canceled; the job ends.
    let state = c.wait(id);
    assert!(state == "Finished" || state == "Canceled" || state == "Failed", "{state}");
}
