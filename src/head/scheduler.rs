//! The scheduler: a pure function from the queue and the nodes to allocations.
//!
//! No I/O and no clock of its own, so it can be tested and measured without
//! processes. Two decisions live here:
//! - [`schedule_jobs`]: which queued jobs start, on which nodes and cores.
//!   Jobs are taken by priority, then first come first served. A job that
//!   cannot start now reserves the nodes it could use, so later jobs cannot
//!   take them and starve it (no backfill).
//! - [`place_tasks`]: which of a running job's queued tasks start, inside the
//!   job's allocation, honouring `/depend` and per-task requests.

use crate::model::{Job, Node, NodeAlloc, NodeGroupOp, NodeState, Range, Task, TaskState, UnitType};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// What running jobs hold on one node.
#[derive(Clone, Debug, Default)]
pub struct NodeUsage {
    /// Core indexes in use.
    pub used: BTreeSet<u32>,
    /// A running job holds the node exclusively.
    pub exclusive: bool,
}

/// The usage of every node by the given running jobs.
pub fn usage_of<'a>(running: impl IntoIterator<Item = &'a Job>) -> BTreeMap<String, NodeUsage> {
    let mut usage: BTreeMap<String, NodeUsage> = BTreeMap::new();
    for job in running {
        for a in &job.allocation {
            let u = usage.entry(a.node.clone()).or_default();
            u.used.extend(a.cores.iter().copied());
            u.exclusive |= job.exclusive;
        }
    }
    usage
}

/// The outcome for one queued job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Start(Vec<NodeAlloc>),
    /// Waits; the reason is shown as the job's pending reason.
    Wait(String),
    /// Can never run on these nodes; the job fails with this message.
    Never(String),
}

/// Decides, in queue order, which jobs start. `queued` must be the Queued jobs;
/// each has a resolved `count` (see [`effective_request`]).
pub fn schedule_jobs(
    nodes: &[Node],
    usage: &BTreeMap<String, NodeUsage>,
    queued: &[&Job],
) -> Vec<(u64, Decision)> {
    let mut order: Vec<&Job> = queued.to_vec();
    order.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.submit_time.cmp(&b.submit_time))
            .then(a.id.cmp(&b.id))
    });
    let mut usage = usage.clone();
    let mut reserved: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(order.len());
    let any_online = nodes.iter().any(|n| n.state == NodeState::Online);
    for job in order {
        // With nodes online but no free core left on any that is not
        // reserved, no later job can start: stop, so a long queue costs
        // nothing while the cluster is full. Those jobs keep their earlier
        // pending reason.
        if any_online && !has_free_core(nodes, &usage, &reserved) {
            break;
        }
        let all = candidates(nodes, job, None, &reserved);
        if all.is_empty() {
            out.push((job.id, never_or_wait(nodes, job)));
            continue;
        }
        match allocate(job, &all, &usage) {
            Some(alloc) => {
                for a in &alloc {
                    let u = usage.entry(a.node.clone()).or_default();
                    u.used.extend(a.cores.iter().copied());
                    u.exclusive |= job.exclusive;
                }
                out.push((job.id, Decision::Start(alloc)));
            }
            None => {
                let idle = BTreeMap::new();
                if allocate(job, &all, &idle).is_none() {
                    out.push((job.id, never_or_wait(nodes, job)));
                } else {
                    reserved.extend(all.iter().map(|n| n.name.clone()));
                    out.push((job.id, Decision::Wait("waiting for resources".into())));
                }
            }
        }
    }
    out
}

fn has_free_core(nodes: &[Node], usage: &BTreeMap<String, NodeUsage>, reserved: &HashSet<String>) -> bool {
    nodes.iter().filter(|n| n.state == NodeState::Online && !reserved.contains(&n.name)).any(|n| {
        usage.get(&n.name).is_none_or(|u| !u.exclusive && (u.used.len() as u32) < n.cores)
    })
}

/// A job that fits no set of online nodes waits if offline nodes could serve
/// it (they may come back), and is refused when no node of the cluster could.
fn never_or_wait(nodes: &[Node], job: &Job) -> Decision {
    let none = HashSet::new();
    let everyone: Vec<Node> = nodes
        .iter()
        .map(|n| Node { state: NodeState::Online, ..n.clone() })
        .collect();
    let all = candidates(&everyone, job, None, &none);
    if !all.is_empty() && allocate(job, &all, &BTreeMap::new()).is_some() {
        return Decision::Wait("waiting for nodes to come online".into());
    }
    Decision::Never(format!(
        "no set of nodes can satisfy the job's request ({}{}): {}",
        job.resource_request(),
        describe_filters(job),
        describe_capacity(&all_matching(nodes, job))
    ))
}

fn all_matching<'a>(nodes: &'a [Node], job: &Job) -> Vec<&'a Node> {
    nodes.iter().filter(|n| matches_filters(n, job, None)).collect()
}

fn describe_filters(job: &Job) -> String {
    let mut s = String::new();
    if !job.node_groups.is_empty() {
        s += &format!(", node groups {} ({})", job.node_groups.join(","), job.node_group_op.as_str());
    }
    if !job.requested_nodes.is_empty() {
        s += &format!(", nodes {}", job.requested_nodes.join(","));
    }
    if let Some(r) = job.cores_per_node {
        s += &format!(", {r} cores per node");
    }
    if let Some(r) = job.memory_per_node {
        s += &format!(", {r} MB per node");
    }
    s
}

fn describe_capacity(nodes: &[&Node]) -> String {
    if nodes.is_empty() {
        return "no node matches".into();
    }
    let cores: u32 = nodes.iter().map(|n| n.cores).sum();
    format!("{} matching node(s) with {} core(s) in all", nodes.len(), cores)
}

fn matches_filters(n: &Node, job: &Job, group: Option<&str>) -> bool {
    let groups_ok = match group {
        Some(g) => n.in_group(g),
        None => match job.node_group_op {
            _ if job.node_groups.is_empty() => true,
            NodeGroupOp::Intersect => job.node_groups.iter().all(|g| n.in_group(g)),
            NodeGroupOp::Union | NodeGroupOp::Uniform => job.node_groups.iter().any(|g| n.in_group(g)),
        },
    };
    groups_ok
        && (job.requested_nodes.is_empty()
            || job.requested_nodes.iter().any(|r| r.eq_ignore_ascii_case(&n.name)))
        && job.cores_per_node.is_none_or(|r| in_range(r, n.cores as u64))
        && job.memory_per_node.is_none_or(|r| in_range(r, n.memory_mb))
}

fn in_range(r: Range, v: u64) -> bool {
    v >= r.min as u64 && r.max.is_none_or(|m| v <= m as u64)
}

/// Online nodes that may serve `job`, minus `reserved`.
fn candidates<'a>(nodes: &'a [Node], job: &Job, group: Option<&str>, reserved: &HashSet<String>) -> Vec<&'a Node> {
    nodes
        .iter()
        .filter(|n| n.state == NodeState::Online && !reserved.contains(&n.name))
        .filter(|n| matches_filters(n, job, group))
        .collect()
}

/// Chooses the job's nodes and cores among `cands`, or `None` if its minimum
/// does not fit. With `Uniform`, all nodes come from one of the job's groups.
fn allocate(job: &Job, cands: &[&Node], usage: &BTreeMap<String, NodeUsage>) -> Option<Vec<NodeAlloc>> {
    if job.node_group_op == NodeGroupOp::Uniform && job.node_groups.len() > 1 {
        return job.node_groups.iter().find_map(|g| {
            let sub: Vec<&Node> = cands.iter().copied().filter(|n| n.in_group(g)).collect();
            allocate_units(job.unit, job.count.unwrap_or(Range::ONE), job.exclusive, &sub, usage)
        });
    }
    allocate_units(job.unit, job.count.unwrap_or(Range::ONE), job.exclusive, cands, usage)
}

/// Free cores of a node for a job, grouped as the unit type counts them:
/// single cores, whole free sockets, or the whole node when it is all free.
fn free_units(n: &Node, unit: UnitType, exclusive: bool, u: Option<&NodeUsage>) -> Vec<Vec<u32>> {
    let busy = |c: u32| u.is_some_and(|u| u.used.contains(&c));
    if u.is_some_and(|u| u.exclusive || (exclusive && !u.used.is_empty())) {
        return Vec::new();
    }
    match unit {
        UnitType::Core => (0..n.cores).filter(|c| !busy(*c)).map(|c| vec![c]).collect(),
        UnitType::Socket => {
            let per = n.cores_per_socket();
            (0..n.sockets)
                .map(|s| (s * per..((s + 1) * per).min(n.cores)).collect::<Vec<u32>>())
                .filter(|cores| cores.iter().all(|c| !busy(*c)))
                .collect()
        }
        UnitType::Node => {
            if (0..n.cores).all(|c| !busy(c)) {
                vec![(0..n.cores).collect()]
            } else {
                Vec::new()
            }
        }
    }
}

fn allocate_units(
    unit: UnitType,
    count: Range,
    exclusive: bool,
    cands: &[&Node],
    usage: &BTreeMap<String, NodeUsage>,
) -> Option<Vec<NodeAlloc>> {
    let mut per_node: Vec<(&Node, Vec<Vec<u32>>)> = cands
        .iter()
        .map(|n| (*n, free_units(n, unit, exclusive, usage.get(&n.name))))
        .filter(|(_, units)| !units.is_empty())
        .collect();
    // Fewest nodes first for cores and sockets: take the emptiest nodes first,
    // then by name so the choice is stable.
    per_node.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.name.cmp(&b.0.name)));
    let available: usize = per_node.iter().map(|(_, u)| u.len()).sum();
    if available < count.min as usize {
        return None;
    }
    let mut want = count.max.map(|m| m as usize).unwrap_or(usize::MAX).min(available);
    let mut out = Vec::new();
    for (node, units) in per_node {
        if want == 0 {
            break;
        }
        let take = units.len().min(want);
        want -= take;
        let mut cores: Vec<u32> = units.into_iter().take(take).flatten().collect();
        if exclusive && unit != UnitType::Node {
            // An exclusive job holds the whole node; its tasks may use every core.
            cores = (0..node.cores).collect();
        }
        cores.sort_unstable();
        out.push(NodeAlloc { node: node.name.clone(), cores });
    }
    out.sort_by(|a, b| a.node.cmp(&b.node));
    Some(out)
}

/// The job's request with `count` filled in from its tasks when the job set
/// none (HPC Pack's automatic minimum and maximum): the minimum is the largest
/// task minimum, the maximum the sum of the task maximums.
pub fn effective_request(job: &Job, tasks: &[&Task]) -> (UnitType, Range) {
    if let Some(r) = job.count {
        return (job.unit, r);
    }
    let unit = tasks.first().map(|t| t.unit).unwrap_or(job.unit);
    let min = tasks.iter().map(|t| t.count.unwrap_or(Range::ONE).min).max().unwrap_or(1);
    let max = tasks
        .iter()
        .map(|t| t.count.unwrap_or(Range::ONE).max)
        .try_fold(0u32, |acc, m| m.map(|m| acc.saturating_add(m)));
    (unit, Range { min, max: max.map(|m| m.max(min)) })
}

/// What the task placement needs to know of a task that cannot run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskDecision {
    Start(Vec<NodeAlloc>),
    /// A task it depends on failed or was canceled; it can never run.
    DependencyFailed(String),
    /// Asks for more than the job holds; it can never run.
    TooLarge(String),
}

/// Places the job's queued tasks in its allocation. `tasks` is every task of
/// the job; running ones hold their cores.
pub fn place_tasks(job: &Job, tasks: &[&Task]) -> Vec<(u32, TaskDecision)> {
    let mut used: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    let mut exclusive_nodes: HashSet<&str> = HashSet::new();
    for t in tasks.iter().filter(|t| t.state.is_started()) {
        for a in &t.allocation {
            used.entry(a.node.as_str()).or_default().extend(a.cores.iter().copied());
            if t.exclusive {
                exclusive_nodes.insert(a.node.as_str());
            }
        }
    }
    let mut out = Vec::new();
    let mut queued: Vec<&&Task> = tasks.iter().filter(|t| t.state == TaskState::Queued).collect();
    queued.sort_by_key(|t| t.id);
    for t in queued {
        match dependency_state(t, tasks) {
            Dep::Wait => continue,
            Dep::Failed(name) => {
                out.push((t.id, TaskDecision::DependencyFailed(format!("task '{name}' it depends on did not finish"))));
                continue;
            }
            Dep::Ready => {}
        }
        let count = t.count.unwrap_or(Range::ONE);
        let nodes: Vec<&NodeAlloc> = job
            .allocation
            .iter()
            .filter(|a| t.required_nodes.is_empty() || t.required_nodes.iter().any(|r| r.eq_ignore_ascii_case(&a.node)))
            .collect();
        let capacity = units_in(&nodes, t.unit, &BTreeMap::new(), &HashSet::new(), false);
        if capacity < count.min as usize {
            out.push((
                t.id,
                TaskDecision::TooLarge(format!(
                    "the task asks for {} {} but its job holds {} on the nodes it may use",
                    count.min,
                    t.unit.plural().to_lowercase(),
                    capacity
                )),
            ));
            continue;
        }
        let free = free_in(&nodes, t.unit, &used, &exclusive_nodes, t.exclusive);
        let available: usize = free.iter().map(|(_, u)| u.len()).sum();
        if available < count.min as usize {
            continue;
        }
        let mut want = count.max.map(|m| m as usize).unwrap_or(usize::MAX).min(available);
        let mut alloc = Vec::new();
        for (node, units) in free {
            if want == 0 {
                break;
            }
            let take = units.len().min(want);
            want -= take;
            let mut cores: Vec<u32> = units.into_iter().take(take).flatten().collect();
            cores.sort_unstable();
            used.entry(node).or_default().extend(cores.iter().copied());
            if t.exclusive {
                exclusive_nodes.insert(node);
            }
            alloc.push(NodeAlloc { node: node.to_string(), cores });
        }
        out.push((t.id, TaskDecision::Start(alloc)));
    }
    out
}

enum Dep {
    Ready,
    Wait,
    Failed(String),
}

fn dependency_state(t: &Task, tasks: &[&Task]) -> Dep {
    for name in &t.depends_on {
        for p in tasks.iter().filter(|p| p.name.eq_ignore_ascii_case(name) && p.id != t.id) {
            match p.state {
                TaskState::Finished => {}
                TaskState::Failed | TaskState::Canceled => return Dep::Failed(name.clone()),
                _ => return Dep::Wait,
            }
        }
    }
    Dep::Ready
}

/// Units of `unit` a task could get on these nodes of the job's allocation.
fn free_in<'a>(
    nodes: &[&'a NodeAlloc],
    unit: UnitType,
    used: &BTreeMap<&str, BTreeSet<u32>>,
    exclusive_nodes: &HashSet<&str>,
    exclusive: bool,
) -> Vec<(&'a str, Vec<Vec<u32>>)> {
    nodes
        .iter()
        .map(|a| {
            let busy = used.get(a.node.as_str());
            let blocked = exclusive_nodes.contains(a.node.as_str()) || (exclusive && busy.is_some_and(|b| !b.is_empty()));
            let free: Vec<u32> = if blocked {
                Vec::new()
            } else {
                a.cores.iter().copied().filter(|c| busy.is_none_or(|b| !b.contains(c))).collect()
            };
            let units = match unit {
                UnitType::Core => free.into_iter().map(|c| vec![c]).collect(),
                // Within a job, a socket or node unit is all the job holds on
                // that node, and only when none of it is busy.
                UnitType::Socket | UnitType::Node => {
                    if free.len() == a.cores.len() && !free.is_empty() { vec![free] } else { Vec::new() }
                }
            };
            (a.node.as_str(), units)
        })
        .filter(|(_, u): &(&str, Vec<Vec<u32>>)| !u.is_empty())
        .collect()
}

fn units_in(
    nodes: &[&NodeAlloc],
    unit: UnitType,
    used: &BTreeMap<&str, BTreeSet<u32>>,
    ex: &HashSet<&str>,
    exclusive: bool,
) -> usize {
    free_in(nodes, unit, used, ex, exclusive).iter().map(|(_, u)| u.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NodeHealth, Priority};

    fn node(name: &str, cores: u32, groups: &[&str]) -> Node {
        Node {
            name: name.into(),
            state: NodeState::Online,
            health: NodeHealth::OK,
            reachable: true,
            cores,
            sockets: 1,
            memory_mb: 1024,
            groups: groups.iter().map(|s| s.to_string()).collect(),
            cpus: (0..cores).collect(),
            host: "h".into(),
            online_time: None,
            offline_time: None,
        }
    }

    fn job(id: u64, unit: UnitType, count: &str) -> Job {
        let mut j = Job::new(id, "u", 1000, 0);
        j.unit = unit;
        j.count = Some(Range::parse(count).unwrap());
        j.submit_time = Some(id as i64);
        j
    }

    fn start(d: &Decision) -> &Vec<NodeAlloc> {
        match d {
            Decision::Start(a) => a,
            other => panic!("expected start, got {other:?}"),
        }
    }

    #[test]
    fn four_nodes_of_a_group() {
        let nodes: Vec<Node> = (1..=5)
            .map(|i| node(&format!("N{i}"), 2, if i < 5 { &["azurenodes"] } else { &[] }))
            .collect();
        let mut j = job(1, UnitType::Node, "4");
        j.node_groups = vec!["AzureNodes".into()];
        let d = schedule_jobs(&nodes, &BTreeMap::new(), &[&j]);
        let a = start(&d[0].1);
        assert_eq!(a.iter().map(|a| a.node.as_str()).collect::<Vec<_>>(), ["N1", "N2", "N3", "N4"]);
        assert!(a.iter().all(|a| a.cores == vec![0, 1]));
    }

    #[test]
    fn priority_then_first_come() {
        let nodes = vec![node("N1", 1, &[])];
        let a = job(1, UnitType::Core, "1");
        let mut b = job(2, UnitType::Core, "1");
        b.priority = Priority(4000);
        let c = job(3, UnitType::Core, "1");
        let d = schedule_jobs(&nodes, &BTreeMap::new(), &[&a, &b, &c]);
        assert_eq!(d[0].0, 2);
        assert!(matches!(d[0].1, Decision::Start(_)));
        assert_eq!(d.len(), 1, "the node is full: the rest wait unexamined");
    }

    #[test]
    fn blocked_job_reserves_its_nodes() {
        let nodes = vec![node("N1", 2, &[])];
        let mut usage = BTreeMap::new();
        usage.insert("N1".to_string(), NodeUsage { used: [0].into(), exclusive: false });
        let big = job(1, UnitType::Core, "2");
        let small = job(2, UnitType::Core, "1");
        let d = schedule_jobs(&nodes, &usage, &[&big, &small]);
        assert!(matches!(d[0].1, Decision::Wait(_)));
        assert!(d.iter().all(|(id, d)| *id != 2 || !matches!(d, Decision::Start(_))), "the small job must not overtake the big one");
    }

    #[test]
    fn ranges_take_what_is_free() {
        let nodes = vec![node("N1", 4, &[]), node("N2", 4, &[])];
        let j = job(1, UnitType::Core, "2-*");
        let d = schedule_jobs(&nodes, &BTreeMap::new(), &[&j]);
        assert_eq!(start(&d[0].1).iter().map(|a| a.cores.len()).sum::<usize>(), 8);
        let j = job(2, UnitType::Core, "3");
        let d = schedule_jobs(&nodes, &BTreeMap::new(), &[&j]);
        assert_eq!(start(&d[0].1).len(), 1, "3 cores fit on one node");
    }

    #[test]
    fn impossible_requests_are_refused() {
        let nodes = vec![node("N1", 2, &["g"])];
        let j = job(1, UnitType::Node, "2");
        assert!(matches!(schedule_jobs(&nodes, &BTreeMap::new(), &[&j])[0].1, Decision::Never(_)));
        let mut j = job(2, UnitType::Core, "1");
        j.node_groups = vec!["nosuch".into()];
        assert!(matches!(schedule_jobs(&nodes, &BTreeMap::new(), &[&j])[0].1, Decision::Never(_)));
    }

    #[test]
    fn offline_nodes_make_a_job_wait() {
        let mut n = node("N1", 2, &[]);
        n.state = NodeState::Offline;
        let j = job(1, UnitType::Core, "1");
        assert_eq!(
            schedule_jobs(&[n], &BTreeMap::new(), &[&j])[0].1,
            Decision::Wait("waiting for nodes to come online".into())
        );
    }

    #[test]
    fn exclusive_jobs_do_not_share() {
        let nodes = vec![node("N1", 4, &[])];
        let mut usage = BTreeMap::new();
        usage.insert("N1".to_string(), NodeUsage { used: [0].into(), exclusive: false });
        let mut j = job(1, UnitType::Core, "1");
        j.exclusive = true;
        assert!(matches!(schedule_jobs(&nodes, &usage, &[&j])[0].1, Decision::Wait(_)));
        let d = schedule_jobs(&nodes, &BTreeMap::new(), &[&j]);
        assert_eq!(start(&d[0].1)[0].cores, vec![0, 1, 2, 3]);
    }

    #[test]
    fn node_group_ops() {
        let nodes = vec![node("A1", 1, &["a"]), node("B1", 1, &["b"]), node("AB", 1, &["a", "b"])];
        let mut j = job(1, UnitType::Node, "1-*");
        j.node_groups = vec!["a".into(), "b".into()];
        let names = |d: &Decision| start(d).iter().map(|a| a.node.clone()).collect::<Vec<_>>();
        assert_eq!(names(&schedule_jobs(&nodes, &BTreeMap::new(), &[&j])[0].1), ["AB"]);
        j.node_group_op = NodeGroupOp::Union;
        assert_eq!(names(&schedule_jobs(&nodes, &BTreeMap::new(), &[&j])[0].1).len(), 3);
        j.node_group_op = NodeGroupOp::Uniform;
        assert_eq!(names(&schedule_jobs(&nodes, &BTreeMap::new(), &[&j])[0].1), ["A1", "AB"]);
    }

    #[test]
    fn tasks_fill_the_allocation_and_wait_for_dependencies() {
        let mut j = job(1, UnitType::Core, "2");
        j.allocation = vec![NodeAlloc { node: "N1".into(), cores: vec![0, 1] }];
        let mk = |id: u32, name: &str, dep: &[&str]| {
            let mut t = Task::new(1, id, 0);
            t.state = TaskState::Queued;
            t.name = name.into();
            t.depends_on = dep.iter().map(|s| s.to_string()).collect();
            t
        };
        let a = mk(1, "a", &[]);
        let b = mk(2, "b", &["a"]);
        let c = mk(3, "c", &[]);
        let mut d = mk(4, "d", &[]);
        d.count = Some(Range::exactly(3));
        let out = place_tasks(&j, &[&a, &b, &c, &d]);
        assert_eq!(out.len(), 3);
        assert!(matches!(out[0], (1, TaskDecision::Start(_))));
        assert!(matches!(out[1], (3, TaskDecision::Start(_))));
        assert!(matches!(out[2], (4, TaskDecision::TooLarge(_))));
        let mut a2 = a.clone();
        a2.state = TaskState::Failed;
        let out = place_tasks(&j, &[&a2, &b]);
        assert!(matches!(out[0], (2, TaskDecision::DependencyFailed(_))));
    }

    #[test]
    fn automatic_request_from_tasks() {
        let mut j = Job::new(1, "u", 0, 0);
        j.count = None;
        let mut t1 = Task::new(1, 1, 0);
        t1.count = Some(Range::exactly(2));
        let t2 = Task::new(1, 2, 0);
        assert_eq!(effective_request(&j, &[&t1, &t2]), (UnitType::Core, Range { min: 2, max: Some(3) }));
    }
}
