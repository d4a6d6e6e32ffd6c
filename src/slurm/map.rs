//! HPC Pack's model on Slurm's: job and node states, and a job's
//! resource request as `sbatch` options. What Slurm cannot express is
//! refused with a message naming the option, never dropped.

use crate::model::{COMPUTE_NODES, Job, JobState, NodeGroupOp, NodeState, Priority, UnitType};

/// What a Slurm cluster offers that a request is mapped onto.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub partitions: Vec<String>,
    /// Node features (`Feature=` / `AvailableFeatures`).
    pub features: Vec<String>,
    /// Every node's name.
    pub nodes: Vec<String>,
}

/// A Slurm job state (`squeue`'s `JOB_STATE`, any case, with or without
/// flags after it) as HPC Pack's. States HPC Pack has no word for take the
/// nearest: a suspended or preempted job is still Running or back to
/// Queued, a job that ran out of time or lost its node Failed.
pub fn job_state(slurm: &str) -> JobState {
    let base = slurm.split([' ', '+', ',']).next().unwrap_or("").to_ascii_uppercase();
    match base.as_str() {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD" | "PREEMPTED" => JobState::Queued,
        "CONFIGURING" | "RUNNING" | "SUSPENDED" | "RESIZING" | "SIGNALING" | "STAGE_OUT" => JobState::Running,
        "COMPLETING" => JobState::Finishing,
        "COMPLETED" => JobState::Finished,
        "CANCELLED" => JobState::Canceled,
        _ => JobState::Failed, // FAILED, TIMEOUT, NODE_FAIL, BOOT_FAIL, DEADLINE, OUT_OF_MEMORY, SPECIAL_EXIT …
    }
}

/// A Slurm node state (`sinfo`'s `%T` or the JSON state with its flags,
/// e.g. `IDLE+DRAIN`, `MIXED`, `DOWN*`) as HPC Pack's state, and whether
/// the node is reachable: drained nodes are Offline, draining ones
/// Draining; down and not-responding ones are Offline and unreachable.
pub fn node_state(slurm: &str) -> (NodeState, bool) {
    let s = slurm.to_ascii_uppercase();
    let flags: Vec<&str> = s.split(['+', ' ', ',']).map(|f| f.trim_end_matches(['*', '~', '#', '!', '%', '$', '@', '^', '-'])).collect();
    let has = |f: &str| flags.contains(&f);
    let unreachable = s.contains('*') || has("DOWN") || has("NOT_RESPONDING") || has("FAIL") || has("POWERED_DOWN");
    let busy = has("ALLOCATED") || has("ALLOC") || has("MIXED") || has("MIX") || has("COMPLETING") || has("COMP");
    let state = if unreachable || has("DRAINED") || has("FAIL") {
        NodeState::Offline
    } else if has("DRAINING") || has("DRNG") || (has("DRAIN") && busy) {
        NodeState::Draining
    } else if has("DRAIN") {
        NodeState::Offline
    } else {
        NodeState::Online
    };
    (state, !unreachable)
}

/// A refusal: the option and why Slurm cannot do it.
fn refuse(option: &str, why: impl std::fmt::Display) -> String {
    format!("{option}: {why}")
}

/// The `sbatch` options of a job's request on `cluster`; `admin`: the
/// caller may raise priorities (Slurm lets only operators set a negative
/// nice). The job's tasks, environment and output are not here: they are
/// the batch script's.
pub fn sbatch_options(job: &Job, cluster: &Cluster, admin: bool) -> Result<Vec<String>, String> {
    let mut o = Vec::new();
    if !job.name.is_empty() {
        o.push(format!("--job-name={}", job.name));
    }
    if !job.template.is_empty() && job.template != crate::model::DEFAULT_TEMPLATE {
        return Err(refuse("/jobtemplate", format!("Slurm has no job template {}; leave it out (Default)", job.template)));
    }
    if let Some(r) = job.count {
        match job.unit {
            UnitType::Node => {
                let max = r.max.unwrap_or(cluster.nodes.len() as u32).max(r.min);
                o.push(if max == r.min { format!("--nodes={}", r.min) } else { format!("--nodes={}-{max}", r.min) });
            }
            UnitType::Core => {
                if r.max.is_some_and(|m| m != r.min) || r.max.is_none() {
                    return Err(refuse(
                        "/numcores",
                        format!("Slurm allocates an exact number of cores, not a range: give /numcores:{}", r.min),
                    ));
                }
                o.push(format!("--ntasks={}", r.min));
            }
            UnitType::Socket => {
                return Err(refuse("/numsockets", "Slurm does not allocate whole sockets to a job; ask for /numcores or /numnodes"));
            }
        }
    }
    o.extend(group_options(job, cluster)?);
    if !job.requested_nodes.is_empty() {
        let unknown: Vec<&String> = job.requested_nodes.iter().filter(|n| !cluster.nodes.contains(n)).collect();
        if !unknown.is_empty() {
            return Err(refuse(
                "/askednodes",
                format!("no node {} on this Slurm cluster (its nodes: {})", names(&unknown), cluster.nodes.join(", ")),
            ));
        }
        // HPC Pack's asked nodes are the ones the job may use (not all of
        // which it must get): Slurm's --exclude of every other node.
        let others: Vec<&String> = cluster.nodes.iter().filter(|n| !job.requested_nodes.contains(n)).collect();
        if !others.is_empty() {
            o.push(format!("--exclude={}", names(&others)));
        }
    }
    if job.exclusive {
        o.push("--exclusive".into());
    }
    if let Some(r) = job.cores_per_node {
        if r.max.is_some_and(|m| m != u32::MAX) && r.max != Some(r.min) {
            return Err(refuse("/corespernode", format!("Slurm takes a least number of cores per node only: give /corespernode:{}", r.min)));
        }
        o.push(format!("--mincpus={}", r.min));
    }
    if let Some(r) = job.memory_per_node {
        if r.max.is_some_and(|m| m != u32::MAX) && r.max != Some(r.min) {
            return Err(refuse("/memorypernode", format!("Slurm takes a least memory per node only: give /memorypernode:{}", r.min)));
        }
        o.push(format!("--mem={}M", r.min));
    }
    if let Some(s) = job.runtime {
        // Slurm's --time is in whole minutes: rounded up, never shorter.
        o.push(format!("--time={}", s.div_ceil(60).max(1)));
    }
    let nice = i64::from(Priority::NORMAL.0) - i64::from(job.priority.0);
    if nice < 0 && !admin {
        return Err(refuse(
            "/priority",
            "Slurm lets only its administrators raise a job's priority above Normal; leave it out or lower it",
        ));
    }
    if nice != 0 {
        o.push(format!("--nice={nice}"));
    }
    if let Some(t) = job.hold_until {
        use chrono::TimeZone;
        let when = chrono::Local
            .timestamp_millis_opt(t)
            .single()
            .ok_or_else(|| refuse("/holduntil", "not a time Slurm can take"))?;
        o.push(format!("--begin={}", when.format("%Y-%m-%dT%H:%M:%S")));
    }
    if !job.project.is_empty() {
        o.push(format!("--comment=project: {}", job.project));
    }
    Ok(o)
}

fn names(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

/// `/nodegroup` and `/nodegroupop`: a group is a partition or a node
/// feature; `ComputeNodes` is every node. Features combine as the
/// operation says (`a&b`, `a|b`, `[a|b]`); partitions may only be
/// alternatives (a job runs in one partition): one, or several with
/// Union or Uniform.
fn group_options(job: &Job, cluster: &Cluster) -> Result<Vec<String>, String> {
    let groups: Vec<&String> = job.node_groups.iter().filter(|g| !g.eq_ignore_ascii_case(COMPUTE_NODES)).collect();
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut partitions = Vec::new();
    let mut features = Vec::new();
    for g in &groups {
        if cluster.partitions.contains(g) {
            partitions.push(g.as_str());
        } else if cluster.features.contains(g) {
            features.push(g.as_str());
        } else {
            return Err(refuse(
                "/nodegroup",
                format!(
                    "no partition or node feature {g} on this Slurm cluster (partitions: {}; features: {})",
                    join_or_none(&cluster.partitions),
                    join_or_none(&cluster.features)
                ),
            ));
        }
    }
    // A group that is both a partition and a feature (as in a site that
    // names a partition after its nodes' feature) is taken as the partition.
    let op = job.node_group_op;
    let mut o = Vec::new();
    match (partitions.len(), op) {
        (0, _) => {}
        (1, _) => o.push(format!("--partition={}", partitions[0])),
        (_, NodeGroupOp::Intersect) => {
            return Err(refuse(
                "/nodegroup",
                format!("{} are Slurm partitions, and a job runs in one of them: use /nodegroupop:Union", partitions.join(", ")),
            ));
        }
        _ => o.push(format!("--partition={}", partitions.join(","))),
    }
    if !features.is_empty() {
        if !partitions.is_empty() && op != NodeGroupOp::Intersect {
            return Err(refuse(
                "/nodegroupop",
                "Slurm can offer a job the nodes of a partition that have a feature (Intersect), not either of them",
            ));
        }
        o.push(format!(
            "--constraint={}",
            match op {
                NodeGroupOp::Intersect => features.join("&"),
                NodeGroupOp::Union => features.join("|"),
                NodeGroupOp::Uniform => format!("[{}]", features.join("|")),
            }
        ));
    }
    Ok(o)
}

fn join_or_none(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Range;

    fn cluster() -> Cluster {
        Cluster {
            partitions: vec!["azurenodes".into(), "debug".into()],
            features: vec!["azurenodes".into(), "ib".into(), "gpu".into()],
            nodes: (1..=3).map(|i| format!("node{i}")).collect(),
        }
    }

    fn job(f: impl FnOnce(&mut Job)) -> Job {
        let mut j = Job::new(1, "alice", 1000, 0);
        f(&mut j);
        j
    }

    fn opts(f: impl FnOnce(&mut Job)) -> Result<Vec<String>, String> {
        sbatch_options(&job(f), &cluster(), false)
    }

    #[test]
    fn states_map_to_hpc_packs() {
        assert_eq!(job_state("PENDING"), JobState::Queued);
        assert_eq!(job_state("running"), JobState::Running);
        assert_eq!(job_state("COMPLETING"), JobState::Finishing);
        assert_eq!(job_state("COMPLETED"), JobState::Finished);
        assert_eq!(job_state("CANCELLED by 0"), JobState::Canceled);
        assert_eq!(job_state("TIMEOUT"), JobState::Failed);
        assert_eq!(job_state("NODE_FAIL"), JobState::Failed);
        assert_eq!(node_state("idle"), (NodeState::Online, true));
        assert_eq!(node_state("MIXED"), (NodeState::Online, true));
        assert_eq!(node_state("IDLE+DRAIN"), (NodeState::Offline, true));
        assert_eq!(node_state("drained"), (NodeState::Offline, true));
        assert_eq!(node_state("MIXED+DRAIN"), (NodeState::Draining, true));
        assert_eq!(node_state("draining"), (NodeState::Draining, true));
        assert_eq!(node_state("down*"), (NodeState::Offline, false));
        assert_eq!(node_state("IDLE+NOT_RESPONDING"), (NodeState::Offline, false));
    }

    #[test]
    fn the_seed_request_is_a_partition_and_three_nodes() {
        let o = opts(|j| {
            j.name = "pingpong".into();
            j.unit = UnitType::Node;
            j.count = Some(Range { min: 3, max: Some(3) });
            j.node_groups = vec!["azurenodes".into()];
        })
        .unwrap();
        assert_eq!(o, ["--job-name=pingpong", "--nodes=3", "--partition=azurenodes"]);
        let o = opts(|j| {
            j.unit = UnitType::Node;
            j.count = Some(Range { min: 1, max: None });
        })
        .unwrap();
        assert_eq!(o, ["--nodes=1-3"], "`*` is every node of the cluster");
    }

    #[test]
    fn options_slurm_can_express() {
        let o = opts(|j| {
            j.count = Some(Range { min: 4, max: Some(4) });
            j.node_groups = vec!["ib".into(), "gpu".into()];
            j.node_group_op = NodeGroupOp::Uniform;
            j.requested_nodes = vec!["node1".into(), "node2".into()];
            j.exclusive = true;
            j.runtime = Some(90);
            j.priority = Priority(1000);
            j.project = "x".into();
        })
        .unwrap();
        assert_eq!(
            o,
            ["--ntasks=4", "--constraint=[ib|gpu]", "--exclude=node3", "--exclusive", "--time=2", "--nice=1000", "--comment=project: x"]
        );
        let o = opts(|j| j.node_groups = vec!["debug".into(), "ib".into(), "ComputeNodes".into()]).unwrap();
        assert_eq!(o, ["--partition=debug", "--constraint=ib"]);
        let o = opts(|j| {
            j.node_groups = vec!["ib".into(), "gpu".into()];
            j.node_group_op = NodeGroupOp::Union;
        })
        .unwrap();
        assert_eq!(o, ["--constraint=ib|gpu"]);
        let admin = sbatch_options(&job(|j| j.priority = Priority(4000)), &cluster(), true).unwrap();
        assert_eq!(admin, ["--nice=-2000"]);
    }

    #[test]
    fn what_slurm_cannot_express_is_refused_naming_the_option() {
        for (f, option, words) in [
            (Box::new(|j: &mut Job| j.count = Some(Range { min: 2, max: Some(4) })) as Box<dyn FnOnce(&mut Job)>, "/numcores", "exact number"),
            (Box::new(|j: &mut Job| {
                j.unit = UnitType::Socket;
                j.count = Some(Range::ONE);
            }), "/numsockets", "whole sockets"),
            (Box::new(|j: &mut Job| j.node_groups = vec!["nosuch".into()]), "/nodegroup", "partitions: azurenodes, debug"),
            (Box::new(|j: &mut Job| j.node_groups = vec!["azurenodes".into(), "debug".into()]), "/nodegroup", "Union"),
            (Box::new(|j: &mut Job| j.requested_nodes = vec!["node9".into()]), "/askednodes", "no node node9"),
            (Box::new(|j: &mut Job| j.priority = Priority(3000)), "/priority", "administrators"),
            (Box::new(|j: &mut Job| j.template = "Azure".into()), "/jobtemplate", "no job template Azure"),
        ] {
            let e = opts(f).unwrap_err();
            assert!(e.starts_with(&format!("{option}: ")) && e.contains(words), "{option}: {e}");
        }
    }
}
