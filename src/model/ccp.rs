//! The `CCP_*` environment of a task, as HPC Pack sets it on its nodes: one
//! place for every backend, so a task sees the same variables on the
//! embedded head node and on Slurm.

use super::{Job, Task};
use crate::env as e;

/// Where a task runs: the cluster's variables and name, and the task's
/// nodes with their core counts (`CCP_NODES`), the CPUs of its first node
/// (`CCP_COREIDS`, `CCP_AFFINITY`; empty where the backend does not bind)
/// and how many cores it has there (`CCP_NUMCPUS`).
pub struct Placement<'a> {
    pub cluster_env: &'a [(String, String)],
    pub cluster_name: &'a str,
    pub nodes: &'a [(String, u32)],
    pub cpus: &'a [u32],
    pub first_cores: u32,
}

/// `CCP_NODES`: `<count> <node> <cores> …`.
pub fn nodes_string(nodes: &[(String, u32)]) -> String {
    format!("{} {}", nodes.len(), nodes.iter().map(|(n, c)| format!("{n} {c}")).collect::<Vec<_>>().join(" "))
}

/// `CCP_AFFINITY`: a hex mask of the CPUs (64 per processor group, comma-separated).
pub fn affinity_mask(cpus: &[u32]) -> String {
    let groups = cpus.iter().map(|c| c / 64).max().map(|g| g as usize + 1).unwrap_or(1);
    let mut masks = vec![0u64; groups];
    for c in cpus {
        masks[(c / 64) as usize] |= 1u64 << (c % 64);
    }
    masks.iter().map(|m| format!("{m:x}")).collect::<Vec<_>>().join(",")
}

/// A task's variables, lowest layer first (the last of a name wins): the
/// submitter's `HOME`, `PATH`, …, the cluster's, the job's (`/jobenv`), the
/// task's (`/env`), then `CCP_*`.
pub fn task_env(job: &Job, t: &Task, at: &Placement) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = job.submit_environment.clone();
    let mut set = |k: &str, v: String| {
        env.retain(|(n, _)| n != k);
        env.push((k.to_string(), v));
    };
    for (k, v) in at.cluster_env {
        set(k, v.clone());
    }
    set(e::CCP_CLUSTER_NAME, at.cluster_name.to_string());
    for (k, v) in &job.env {
        set(k, v.clone());
    }
    for (k, v) in &t.env {
        set(k, v.clone());
    }
    let nodes = nodes_string(at.nodes);
    set(e::CCP_JOBID, job.id.to_string());
    set(e::CCP_TASKID, t.id.to_string());
    set(e::CCP_TASKINSTANCEID, "0".into());
    set(e::CCP_TASKSYSTEMID, format!("{}.{}.0", job.id, t.id));
    set(e::CCP_NODES, nodes.clone());
    set(e::CCP_NODES_CORES, nodes);
    set(e::CCP_NUMCPUS, at.first_cores.to_string());
    set(e::CCP_COREIDS, at.cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" "));
    set(e::CCP_AFFINITY, affinity_mask(at.cpus));
    set(e::CCP_EXCLUSIVE, super::values::format_bool(job.exclusive || t.exclusive).into());
    set(e::CCP_JOBNAME, job.name.clone());
    set(e::CCP_TASKNAME, t.name.clone());
    set(e::CCP_JOBTEMPLATE, job.template.clone());
    set(e::CCP_RETRY_COUNT, t.requeue_count.to_string());
    set(e::CCP_RERUNNABLE, super::values::format_bool(t.rerunnable).into());
    set(e::CCP_ISADMIN, super::values::format_bool(job.owner_uid == 0).into());
    set(e::CCP_SCHEDULER, at.cluster_name.to_string());
    if let Some(r) = t.runtime.or(job.runtime) {
        set(e::CCP_RUNTIME, r.to_string());
    }
    if !t.work_dir.is_empty() {
        set(e::CCP_WORKDIR, t.work_dir.clone());
    }
    env
}
