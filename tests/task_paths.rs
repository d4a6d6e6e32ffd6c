//! `%NAME%` in the paths a task names: `/workdir`,
//! `/stdin`, `/stdout` and `/stderr` are expanded when the task starts,
//! from the task's environment, as HPC Pack does; `task view` keeps what
//! was given.

use crate::common::{Cluster, property};

#[test]
fn task_paths_expand_variables_of_the_task() {
    let c = Cluster::new();
    let dir = c.dir.path().join("runs-here");
    std::fs::create_dir_all(dir.join("paths")).unwrap();
    std::fs::write(dir.join("paths/greeting.txt"), "hello\n").unwrap();
    let workdir = format!("/workdir:{}/%CCP_JOBNAME%", dir.display());
    let id = c.submit(&[
        "/jobname:paths",
        &workdir,
        "/env:INPUT=greeting",
        "/stdin:%INPUT%.txt",
        // Names are matched ignoring case when no exact one exists.
        "/stdout:%ccp_jobid%.%CCP_TASKID%.out",
        // An unknown name stays as written.
        "/stderr:%NOSUCH%-%CCP_TASKINSTANCEID%.err",
        "cat; echo oops >&2; pwd; echo $CCP_WORKDIR",
    ]);
    assert_eq!(c.wait(id), "Finished");
    let here = dir.join("paths");
    let out = std::fs::read_to_string(here.join(format!("{id}.1.out"))).expect("stdout at the expanded path");
    assert_eq!(out, format!("hello\n{0}\n{0}\n", here.display()), "the working directory and CCP_WORKDIR are expanded");
    assert_eq!(std::fs::read_to_string(here.join("%NOSUCH%-0.err")).expect("stderr").trim(), "oops");
    let names: Vec<String> =
        std::fs::read_dir(&here).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.contains("CCP_")), "no file named after a variable: {names:?}");

    // task view shows the paths as they were given, as HPC Pack keeps them.
    let view = c.ok("task", &["view", &format!("{id}.1"), "/detailed"]);
    assert_eq!(property(&view, "Standard Output").as_deref(), Some("%ccp_jobid%.%CCP_TASKID%.out"), "{view}");
    assert_eq!(property(&view, "Working Directory"), Some(format!("{}/%CCP_JOBNAME%", dir.display())));

    // The same for a task added to a job, and %% for a literal %.
    let out = c.ok("job", &["new", "/jobname:added"]);
    let job: u64 = out.trim().strip_prefix("Created job, ID: ").unwrap().parse().unwrap();
    let workdir = format!("/workdir:{}", dir.display());
    c.ok("job", &["add", &job.to_string(), &workdir, "/stdout:task-%CCP_TASKID%-of-%CCP_JOBID%-100%%.txt", "echo", "added"]);
    c.ok("job", &["submit", &format!("/id:{job}")]);
    assert_eq!(c.wait(job), "Finished");
    let out = std::fs::read_to_string(dir.join(format!("task-1-of-{job}-100%.txt"))).expect("the added task's stdout");
    assert_eq!(out, "added\n");
}
