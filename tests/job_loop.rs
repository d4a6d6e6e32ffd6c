//! The job loop through the real binaries: submit, view, task
//! output, node list; job new/add/submit; job files; the task environment.

use crate::common::{Cluster, host, output_of, property};

#[test]
fn hello_on_a_fresh_cluster() {
    // Nothing started: the first command starts the embedded head node.
    let c = Cluster::unstarted();
    let out = c.ok("job", &["submit", "/numcores:2", "/jobname:hello", "hostname"]);
    let id = crate::common::parse_submitted(&out);
    assert_eq!(out, format!("Job has been submitted. ID: {id}.\n"));
    assert_eq!(c.wait(id), "Finished");
    let view = c.ok("job", &["view", &id.to_string()]);
    assert_eq!(property(&view, "Name").as_deref(), Some("hello"));
    assert!(view.contains("State                            : Finished\n"), "{view}");
    let task = c.ok("task", &["view", &format!("{id}.1")]);
    assert_eq!(output_of(&task).trim(), host());
    assert_eq!(property(&task, "Exit Code").as_deref(), Some("0"));
    let nodes = c.ok("node", &["list"]);
    let row = nodes.lines().nth(2).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[0], host());
    assert_eq!(cols[1], "Online");
    assert_eq!(cols[2].parse::<usize>().unwrap(), std::thread::available_parallelism().unwrap().get());
}

#[test]
fn new_add_submit_with_dependencies() {
    let c = Cluster::new();
    let out = c.ok("job", &["new", "/jobname:deps", "/numcores:1"]);
    let id: u64 = out.trim().strip_prefix("Created job, ID: ").unwrap().parse().unwrap();
    let out_file = c.dir.path().join("order.txt");
    let f = out_file.display().to_string();
    let first = format!("sleep 0.3; echo first >> {f}");
    let second = format!("echo second >> {f}");
    assert_eq!(c.ok("job", &["add", &id.to_string(), "/name:a", &first]), format!("Task {id}.1 added.\n"));
    c.ok("job", &["add", &id.to_string(), "/name:b", "/depend:a", &second]);
    assert_eq!(c.prop("job", &["view", &id.to_string()], "State"), "Configuring");
    assert_eq!(c.ok("job", &["submit", &format!("/id:{id}")]), format!("Job has been submitted. ID: {id}.\n"));
    assert_eq!(c.wait(id), "Finished");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "first\nsecond\n");
    let tasks = c.ok("job", &["listtasks", &id.to_string()]);
    assert_eq!(tasks.matches("State                            : Finished").count(), 2, "{tasks}");
}

#[test]
fn job_file_submission() {
    let c = Cluster::new();
    let xml = c.dir.path().join("job.xml");
    std::fs::write(
        &xml,
        r#"<?xml version="1.0" encoding="utf-8"?>
<Job Version="3.000" Name="fromxml" UnitType="Core" MinCores="1" MaxCores="1" Priority="AboveNormal"
     xmlns="http://schemas.microsoft.com/HPCS2008R2/scheduler/">
  <Dependencies />
  <Tasks>
    <Task CommandLine="echo $GREETING" MinCores="1" MaxCores="1">
      <EnvironmentVariables><Variable><Name>GREETING</Name><Value>hi from xml</Value></Variable></EnvironmentVariables>
    </Task>
  </Tasks>
</Job>"#,
    )
    .unwrap();
    let id = c.submit(&[&format!("/jobfile:{}", xml.display())]);
    assert_eq!(c.wait(id), "Finished");
    let view = c.ok("job", &["view", &id.to_string()]);
    assert_eq!(property(&view, "Name").as_deref(), Some("fromxml"));
    assert_eq!(property(&view, "Priority").as_deref(), Some("AboveNormal"));
    assert_eq!(output_of(&c.ok("task", &["view", &format!("{id}.1")])).trim(), "hi from xml");
}

#[test]
fn task_environment_affinity_and_files() {
    let c = Cluster::new();
    c.ok("cluscfg", &["setenvs", "SITE_VAR=cluster-wide", "CCP_MPI_NETMASK=10.0.0.0/255.255.255.0"]);
    let script = "echo JOBID=$CCP_JOBID TASKID=$CCP_TASKID INST=$CCP_TASKINSTANCEID; echo NODES=$CCP_NODES; \
                  echo CORES=$CCP_NODES_CORES NUM=$CCP_NUMCPUS IDS=$CCP_COREIDS; echo NAME=$CCP_JOBNAME/$CCP_TASKNAME; \
                  echo SITE=$SITE_VAR JOBENV=$JE TASKENV=$TE NETMASK=$CCP_MPI_NETMASK CLUSTER=$CCP_CLUSTER_NAME; \
                  grep Cpus_allowed_list /proc/self/status; pwd; cat";
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("in.txt"), "from stdin\n").unwrap();
    let id = c.submit(&[
        "/numcores:1",
        "/jobname:envjob",
        "/name:envtask",
        "/jobenv:JE=j1",
        "/env:TE=t1",
        &format!("/workdir:{}", work.display()),
        "/stdin:in.txt",
        script,
    ]);
    assert_eq!(c.wait(id), "Finished");
    let out = output_of(&c.ok("task", &["view", &format!("{id}.1")]));
    let host = host();
    assert!(out.contains(&format!("JOBID={id} TASKID=1 INST=0")), "{out}");
    assert!(out.contains(&format!("NODES=1 {host} 1")), "{out}");
    assert!(out.contains(&format!("CORES=1 {host} 1 NUM=1 IDS=")), "{out}");
    assert!(out.contains("NAME=envjob/envtask"), "{out}");
    assert!(out.contains(&format!("SITE=cluster-wide JOBENV=j1 TASKENV=t1 NETMASK=10.0.0.0/255.255.255.0 CLUSTER={host}")), "{out}");
    let ids = out.lines().find(|l| l.contains("IDS=")).unwrap().rsplit("IDS=").next().unwrap().trim().to_string();
    let allowed = out.lines().find(|l| l.starts_with("Cpus_allowed_list")).unwrap().split(':').nth(1).unwrap().trim().to_string();
    assert_eq!(allowed, ids, "the task is bound to the cores it was given");
    assert!(out.contains(&work.display().to_string()), "{out}");
    assert!(out.trim_end().ends_with("from stdin"), "{out}");

    // /stdout and /stderr go to files in the working directory; Output stays empty.
    let id = c.submit(&[&format!("/workdir:{}", work.display()), "/stdout:out.txt", "/stderr:err.txt", "echo to-out; echo to-err >&2"]);
    assert_eq!(c.wait(id), "Finished");
    assert_eq!(std::fs::read_to_string(work.join("out.txt")).unwrap(), "to-out\n");
    assert_eq!(std::fs::read_to_string(work.join("err.txt")).unwrap(), "to-err\n");
    assert_eq!(output_of(&c.ok("task", &["view", &format!("{id}.1")])).trim(), "");
}

#[test]
fn exit_codes_decide_the_state() {
    let c = Cluster::new();
    let id = c.submit(&["exit 3"]);
    assert_eq!(c.wait(id), "Failed");
    assert_eq!(c.prop("task", &["view", &format!("{id}.1")], "Exit Code"), "3");
    let id = c.submit(&["/validexitcodes:0,3..5", "exit 4"]);
    assert_eq!(c.wait(id), "Finished");
    // job wait's exit code says whether the job finished.
    let id = c.submit(&["false"]);
    let out = c.run("job", &["wait", &id.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let out = c.run("job", &["submit", "/wait", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn requeue_runs_a_failed_job_again() {
    let c = Cluster::new();
    let flag = c.dir.path().join("second-time");
    let cmd = format!("test -e {f} || {{ touch {f}; exit 1; }}", f = flag.display());
    let id = c.submit(&[&cmd]);
    assert_eq!(c.wait(id), "Failed");
    assert_eq!(c.ok("job", &["requeue", &id.to_string()]), format!("Job {id} requeued.\n"));
    assert_eq!(c.wait(id), "Finished");
    let d = c.ok("job", &["view", &id.to_string(), "/detailed"]);
    assert_eq!(property(&d, "Requeue Count").as_deref(), Some("1"));
}

#[test]
fn priorities_order_the_queue() {
    let c = Cluster::with_layout(&["--nodes", "1", "--cores-per-node", "1"]);
    let order = c.dir.path().join("order");
    let o = order.display().to_string();
    let blocker = c.submit(&["sleep 1"]);
    let low = c.submit(&["/priority:Lowest", &format!("echo low >> {o}")]);
    let normal = c.submit(&[&format!("echo normal >> {o}")]);
    let high = c.submit(&["/priority:Highest", &format!("echo high >> {o}")]);
    let normal2 = c.submit(&[&format!("echo normal2 >> {o}")]);
    for id in [blocker, low, normal, high, normal2] {
        assert_eq!(c.wait(id), "Finished");
    }
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "high\nnormal\nnormal2\nlow\n");
}

#[test]
fn run_time_limit_is_enforced() {
    let c = Cluster::new();
    // /runtime counts minutes; the REST property takes seconds.
    let id: u64 = {
        let (client, base) = crate::common::rest(&c);
        let spec = serde_json::json!({
            "Properties": [{"Name": "RuntimeSeconds", "Value": "1"}],
            "Tasks": [{"Properties": [{"Name": "CommandLine", "Value": "sleep 30"}]}]
        });
        client.post(format!("{base}/hpcpack/v1/jobs")).json(&spec).send().unwrap().json().unwrap()
    };
    let start = std::time::Instant::now();
    assert_eq!(c.wait(id), "Failed");
    assert!(start.elapsed().as_secs() < 10);
    let msg = c.prop("job", &["view", &id.to_string()], "Error Message");
    assert!(msg.contains("exceeded its run time"), "{msg}");
}
