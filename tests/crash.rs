//! `kill -9` of the head node while jobs run and are being submitted: after
//! the restart every acknowledged job is there and reaches a final state,
//! and no task ran twice.

use crate::common::{Cluster, parse_submitted, wait_until};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn acknowledged_jobs_survive_kill_9() {
    let c = Arc::new(Cluster::new());
    let log = c.dir.path().join("runs.log");
    let cmd = format!("echo $CCP_JOBID.$CCP_TASKID >> {}; sleep 0.3", log.display());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // Three submitters, at most 25 jobs each, paced so that submissions go
    // on across both kills.
    let submitters: Vec<_> = (0..3)
        .map(|_| {
            let (c, acked, stop, cmd) = (c.clone(), acked.clone(), stop.clone(), cmd.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(40));
                    let out = c.run("job", &["submit", "/numcores:1", &cmd]);
                    // Only a submission the head node acknowledged counts;
                    // one cut off by the kill may or may not exist.
                    if out.status.success() {
                        acked.lock().unwrap().push(parse_submitted(&String::from_utf8_lossy(&out.stdout)));
                    }
                }
            })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(20), || acked.lock().unwrap().len() >= 10));
    for _ in 0..2 {
        c.kill9();
        // The next CLI call starts a new head node by itself; make sure one runs.
        std::thread::sleep(Duration::from_millis(300));
        c.start();
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::SeqCst);
    for s in submitters {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 10);
    for id in &acked {
        assert_eq!(c.wait(*id), "Finished", "job {id} after the crashes");
    }
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        *runs.entry(line.to_string()).or_default() += 1;
    }
    for id in &acked {
        assert_eq!(runs.get(&format!("{id}.1")).copied(), Some(1), "task {id}.1 ran {:?} times", runs.get(&format!("{id}.1")));
    }
    assert!(runs.values().all(|n| *n == 1), "a task ran twice: {runs:?}");
}

#[test]
fn running_tasks_are_found_again_after_a_restart() {
    let c = Cluster::new();
    let log = c.dir.path().join("once.log");
    let cmd = format!("echo ran >> {}; sleep 2; echo done", log.display());
    let id = c.submit(&[&cmd]);
    assert!(wait_until(Duration::from_secs(10), || c.prop("job", &["view", &id.to_string()], "State") == "Running"));
    c.kill9();
    std::thread::sleep(Duration::from_millis(200));
    c.start();
    let state = c.wait(id);
    assert_eq!(state, "Finished", "{}", c.ok("task", &["view", &format!("{id}.1")]));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\n");
    let view = c.ok("task", &["view", &format!("{id}.1")]);
    assert!(view.contains("done"), "the output of the run is kept: {view}");
}

/// Issue 10 item 9: the embedded head node is killed over and over while
/// three users' worth of submissions go on, and nothing restarts it but
/// the CLIs themselves. A CLI that finds it gone before its request was
/// sent (connection refused, or no socket) starts it and sends the request
/// again; a submission cut off after it was sent is sent again with its
/// request id, so it makes one job, not two. No CLI fails, and every
/// acknowledged job runs exactly once. `HPCPACK_KILL_LOOP=<submissions per submitter>`
/// makes it longer (default 40).
#[test]
fn cli_restarts_a_head_killed_before_the_request() {
    let per: usize = std::env::var("HPCPACK_KILL_LOOP").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let c = Arc::new(Cluster::new());
    let log = c.dir.path().join("runs.log");
    let cmd = format!("echo $CCP_JOBID.$CCP_TASKID >> {}", log.display());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let submitters: Vec<_> = (0..3)
        .map(|_| {
            let (c, acked, failures, cmd) = (c.clone(), acked.clone(), failures.clone(), cmd.clone());
            std::thread::spawn(move || {
                for _ in 0..per {
                    let out = c.run("job", &["submit", "/numcores:1", &cmd]);
                    if out.status.success() {
                        acked.lock().unwrap().push(parse_submitted(&String::from_utf8_lossy(&out.stdout)));
                    } else {
                        failures.lock().unwrap().push((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()));
                    }
                }
            })
        })
        .collect();
    let killer = {
        let (c, stop) = (c.clone(), stop.clone());
        std::thread::spawn(move || {
            let head = format!("head --state-dir {}", c.state_dir().display());
            let mut kills = 0;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(250));
                for pid in crate::common::pids_matching(&head) {
                    crate::common::unsafe_kill(pid, 9);
                    kills += 1;
                }
            }
            kills
        })
    };
    for s in submitters {
        s.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let kills = killer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let failures = failures.lock().unwrap().clone();
    for id in &acked {
        let state = c.wait(*id);
        if state != "Finished" {
            let task = c.run("task", &["view", &format!("{id}.1")]);
            panic!("job {id} is {state} after the kills:\n{}", String::from_utf8_lossy(&task.stdout));
        }
    }
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap_or_default().lines() {
        *runs.entry(line.to_string()).or_default() += 1;
    }
    let lost = acked.iter().filter(|id| !runs.contains_key(&format!("{id}.1"))).count();
    let twice = runs.values().filter(|n| **n > 1).count();
    eprintln!(
        "kill-loop figures: {} submissions, {kills} kills, {} acknowledged, {lost} lost, {twice} run twice, {} CLI failures: {:?}",
        3 * per,
        acked.len(),
        failures.len(),
        failures.iter().map(|(code, e)| format!("{code:?} {}", e.trim())).collect::<Vec<_>>()
    );
    assert!(kills >= 3, "the head node was killed {kills} times only");
    let views: Vec<String> = runs
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(t, n)| format!("{t} ran {n} times:\n{}", String::from_utf8_lossy(&c.run("task", &["view", t]).stdout)))
        .collect();
    assert_eq!((lost, twice), (0, 0), "{}", views.join("\n"));
    // Connection refused or no socket: nothing was sent, so the request is
    // sent again once the CLI restarted the head node; a submission cut
    // off after it was sent is sent again with its request id, which the
    // head node answers with the job the first one made.
    assert!(failures.is_empty(), "CLIs failed: {failures:?}");
}
