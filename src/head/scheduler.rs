//! The scheduler: a pure function from the queue and the nodes to allocations.
//!
//! No I/O and no clock of its own, so it can be tested and measured without
//! processes. Two decisions live here:
//! - [`schedule_jobs`]: which queued jobs start, on which nodes and cores.
//!   Jobs are taken by priority, then first come first served. A job that
//!   cannot start now reserves the nodes it could use, so later jobs cannot
//!   take them and starve it (no backfill). [`pending_reasons`] runs the
//!   same pass to say why each queued job waits.
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
    /// The jobs holding cores here, to name them in pending reasons.
    pub jobs: BTreeSet<u64>,
}

/// The usage of every node by the given running jobs.
pub fn usage_of<'a>(running: impl IntoIterator<Item = &'a Job>) -> BTreeMap<String, NodeUsage> {
    let mut usage: BTreeMap<String, NodeUsage> = BTreeMap::new();
    for job in running {
        for a in &job.allocation {
            let u = usage.entry(a.node.clone()).or_default();
            u.used.extend(a.cores.iter().copied());
            u.exclusive |= job.exclusive;
            u.jobs.insert(job.id);
        }
    }
    usage
}

/// The outcome for one queued job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Start(Vec<NodeAlloc>),
    /// Waits; the reason says for what (see [`pending_reasons`]).
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
    pass(nodes, usage, queued, true)
}

/// Why each of `queued` has not started, as the next scheduling pass sees
/// it: the same pass as [`schedule_jobs`], run to the end of the queue.
/// Shown as the job's `Pending Reason`; computed when asked rather than
/// stored by each pass, so it is never stale and a long queue behind a
/// full cluster costs no writes.
pub fn pending_reasons(
    nodes: &[Node],
    usage: &BTreeMap<String, NodeUsage>,
    queued: &[&Job],
) -> BTreeMap<u64, String> {
    pass(nodes, usage, queued, false)
        .into_iter()
        .map(|(id, d)| {
            let why = match d {
                Decision::Start(_) => "about to start: the resources it asks for are free".to_string(),
                Decision::Wait(why) => why,
                Decision::Never(why) => format!("cannot run on this cluster: {why}"),
            };
            (id, why)
        })
        .collect()
}

/// Nodes held back for a queued job that cannot start yet: node → job.
type Reserved = BTreeMap<String, u64>;

fn pass(
    nodes: &[Node],
    usage: &BTreeMap<String, NodeUsage>,
    queued: &[&Job],
    stop_when_full: bool,
) -> Vec<(u64, Decision)> {
    let mut order: Vec<&Job> = queued.to_vec();
    order.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.submit_time.cmp(&b.submit_time))
            .then(a.id.cmp(&b.id))
    });
    let mut usage = usage.clone();
    let mut reserved = Reserved::new();
    let mut out = Vec::with_capacity(order.len());
    let any_online = nodes.iter().any(|n| n.state == NodeState::Online);
    for job in order {
        // With nodes online but no free core left on any that is not
        // reserved, no later job can start: a scheduling pass stops, so a
        // long queue costs nothing while the cluster is full.
        if stop_when_full && any_online && !has_free_core(nodes, &usage, &reserved) {
            break;
        }
        let all = candidates(nodes, job, None, &reserved);
        if let Some(alloc) = allocate(job, &all, &usage) {
            for a in &alloc {
                let u = usage.entry(a.node.clone()).or_default();
                u.used.extend(a.cores.iter().copied());
                u.exclusive |= job.exclusive;
                u.jobs.insert(job.id);
            }
            out.push((job.id, Decision::Start(alloc)));
            continue;
        }
        if !fits_idle(nodes, job) {
            out.push((job.id, Decision::Never(never_reason(nodes, job))));
            continue;
        }
        out.push((job.id, Decision::Wait(wait_reason(nodes, job, &usage, &reserved))));
        // A job that fits the online nodes it may use, once they are idle,
        // holds them back from later jobs. One that needs offline nodes
        // holds nothing: it may wait for a long time.
        if allocate(job, &all, &BTreeMap::new()).is_some() {
            reserved.extend(all.iter().map(|n| (n.name.clone(), job.id)));
        }
    }
    out
}

fn has_free_core(nodes: &[Node], usage: &BTreeMap<String, NodeUsage>, reserved: &Reserved) -> bool {
    nodes.iter().filter(|n| n.state == NodeState::Online && !reserved.contains_key(&n.name)).any(|n| {
        usage.get(&n.name).is_none_or(|u| !u.exclusive && (u.used.len() as u32) < n.cores)
    })
}

/// Whether the job fits the cluster's nodes, all online and idle: if not,
/// it can never run (offline nodes may come back, so they count).
fn fits_idle(nodes: &[Node], job: &Job) -> bool {
    let everyone: Vec<Node> = nodes
        .iter()
        .map(|n| Node { state: NodeState::Online, ..n.clone() })
        .collect();
    let all = candidates(&everyone, job, None, &Reserved::new());
    !all.is_empty() && allocate(job, &all, &BTreeMap::new()).is_some()
}

/// `1 core`, `4 nodes`.
fn count_of(n: usize, unit: UnitType) -> String {
    let plural = unit.plural().to_lowercase();
    if n == 1 { format!("1 {}", plural.trim_end_matches('s')) } else { format!("{n} {plural}") }
}

fn is_are(n: usize) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

/// `job 3`, `jobs 3 and 5`, `jobs 3, 5, 8 and 2 more`.
fn jobs_named(ids: &BTreeSet<u64>) -> String {
    const SHOWN: usize = 3;
    let names: Vec<String> = ids.iter().take(SHOWN).map(|i| i.to_string()).collect();
    match ids.len() {
        1 => format!("job {}", names[0]),
        n if n <= SHOWN => format!("jobs {} and {}", names[..n - 1].join(", "), names[n - 1]),
        n => format!("jobs {} and {} more", names.join(", "), n - SHOWN),
    }
}

/// The nodes a job may use, for messages: (phrase, whether it is plural,
/// the per-node conditions).
fn scope_of(job: &Job) -> (String, bool, String) {
    let groups = match job.node_groups.len() {
        0 => String::new(),
        1 => format!("the group {}", job.node_groups[0]),
        _ => format!("the groups {} ({})", job.node_groups.join(","), job.node_group_op.as_str()),
    };
    let (scope, plural) = match (job.requested_nodes.len(), groups.is_empty()) {
        (0, true) => ("the cluster".to_string(), false),
        (0, false) => (groups, job.node_groups.len() > 1),
        (n, g) => {
            let nodes = format!("the node{} {}", if n == 1 { "" } else { "s" }, job.requested_nodes.join(","));
            (if g { nodes } else { format!("{nodes} of {groups}") }, n > 1)
        }
    };
    (scope, plural, conditions_of(job))
}

/// The job's per-node conditions, e.g. `8-* cores`, joined with `and`.
fn conditions_of(job: &Job) -> String {
    let mut c = Vec::new();
    if let Some(r) = job.cores_per_node {
        c.push(format!("{r} cores"));
    }
    if let Some(r) = job.memory_per_node {
        c.push(format!("{r} MB of memory"));
    }
    c.join(" and ")
}

/// ` (nodes with 8-* cores)`, or nothing.
fn in_brackets(conditions: &str) -> String {
    if conditions.is_empty() { String::new() } else { format!(" (nodes with {conditions})") }
}

/// Units of the job's type a node has for it when idle.
fn idle_units(n: &Node, job: &Job) -> usize {
    free_units(n, job.unit, job.exclusive, None).len()
}

/// Why a job can never run: what it asks for against what the nodes it
/// may use have, e.g. `it asks for 8 nodes but the group azurenodes has 4`.
fn never_reason(nodes: &[Node], job: &Job) -> String {
    let want = job.count.unwrap_or(Range::ONE).min as usize;
    let (scope, plural, conditions) = scope_of(job);
    let asks = format!("it asks for {}", count_of(want, job.unit));
    let matching = all_matching(nodes, job);
    let has = if plural { "have" } else { "has" };
    if matching.is_empty() {
        let with = if conditions.is_empty() { String::new() } else { format!(" with {conditions}") };
        return format!("{asks} but {scope} {has} no node{with}");
    }
    if job.node_group_op == NodeGroupOp::Uniform && job.node_groups.len() > 1 {
        let most = job
            .node_groups
            .iter()
            .map(|g| matching.iter().filter(|n| n.in_group(g)).map(|n| idle_units(n, job)).sum::<usize>())
            .max()
            .unwrap_or(0);
        return format!(
            "{asks} of one group but the largest of the groups {}{} has {}",
            job.node_groups.join(","),
            in_brackets(&conditions),
            count_of(most, job.unit)
        );
    }
    let total: usize = matching.iter().map(|n| idle_units(n, job)).sum();
    format!("{asks} but {scope}{} {has} {}", in_brackets(&conditions), count_of(total, job.unit))
}

/// Why a job that could run on idle nodes waits: its request, then what
/// the units of the nodes it may use are doing, e.g. `waiting for 4 cores:
/// 2 of the 2 cores of the group azurenodes are in use by job 3`.
fn wait_reason(nodes: &[Node], job: &Job, usage: &BTreeMap<String, NodeUsage>, reserved: &Reserved) -> String {
    let want = job.count.unwrap_or(Range::ONE).min as usize;
    let (mut total, mut free) = (0usize, 0usize);
    let (mut busy, mut held, mut offline, mut draining) = (0usize, 0usize, 0usize, 0usize);
    let (mut busy_by, mut held_for) = (BTreeSet::new(), BTreeSet::new());
    for n in all_matching(nodes, job) {
        let units = idle_units(n, job);
        total += units;
        match n.state {
            NodeState::Offline => offline += units,
            NodeState::Draining => draining += units,
            NodeState::Online => {
                let u = usage.get(&n.name);
                let now = free_units(n, job.unit, job.exclusive, u).len();
                if units > now {
                    busy += units - now;
                    busy_by.extend(u.map(|u| u.jobs.iter().copied()).into_iter().flatten());
                }
                match reserved.get(&n.name) {
                    Some(r) if now > 0 => {
                        held += now;
                        held_for.insert(*r);
                    }
                    _ => free += now,
                }
            }
        }
    }
    let on = |state: &str| {
        if job.unit == UnitType::Node { state.to_string() } else { format!("on {state} nodes") }
    };
    let mut parts: Vec<(usize, String)> = Vec::new();
    if busy > 0 {
        let by = if busy_by.is_empty() { String::new() } else { format!(" by {}", jobs_named(&busy_by)) };
        parts.push((busy, format!("in use{by}")));
    }
    if held > 0 {
        parts.push((held, format!("held for {}, ahead of it in the queue", jobs_named(&held_for))));
    }
    if offline > 0 {
        parts.push((offline, on("offline")));
    }
    if draining > 0 {
        parts.push((draining, on("draining")));
    }
    let head = format!("waiting for {}", count_of(want, job.unit));
    if parts.is_empty() {
        // Enough units are free, but not as the request needs them (all
        // from one group with Uniform, say).
        return head;
    }
    if free > 0 {
        parts.push((free, "free".into()));
    }
    let (scope, _, conditions) = scope_of(job);
    let mut text = String::new();
    for (i, (k, what)) in parts.iter().enumerate() {
        let sep = match i {
            0 => "",
            _ if i + 1 == parts.len() => " and ",
            _ => ", ",
        };
        text += sep;
        if i == 0 {
            let of = format!("{} of {scope}{}", count_of(total, job.unit), in_brackets(&conditions));
            text += &format!("{k} of the {of} {} {what}", is_are(*k));
        } else {
            text += &format!("{k} {} {what}", is_are(*k));
        }
    }
    format!("{head}: {text}")
}

fn all_matching<'a>(nodes: &'a [Node], job: &Job) -> Vec<&'a Node> {
    nodes.iter().filter(|n| matches_filters(n, job, None)).collect()
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
fn candidates<'a>(nodes: &'a [Node], job: &Job, group: Option<&str>, reserved: &Reserved) -> Vec<&'a Node> {
    nodes
        .iter()
        .filter(|n| n.state == NodeState::Online && !reserved.contains_key(&n.name))
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
        usage.insert("N1".to_string(), NodeUsage { used: [0].into(), exclusive: false, jobs: [7].into() });
        let big = job(1, UnitType::Core, "2");
        let small = job(2, UnitType::Core, "1");
        let d = schedule_jobs(&nodes, &usage, &[&big, &small]);
        assert!(matches!(d[0].1, Decision::Wait(_)));
        assert!(d.iter().all(|(id, d)| *id != 2 || !matches!(d, Decision::Start(_))), "the small job must not overtake the big one");
        assert_eq!(
            pending_reasons(&nodes, &usage, &[&big, &small])[&2],
            "waiting for 1 core: 1 of the 2 cores of the cluster is in use by job 7 and 1 is held for job 1, ahead of it in the queue"
        );
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
            Decision::Wait("waiting for 1 core: 2 of the 2 cores of the cluster are on offline nodes".into())
        );
    }

    #[test]
    fn pending_reasons_name_what_holds_the_resources() {
        let nodes: Vec<Node> = (1..=2).map(|i| node(&format!("N{i}"), 1, &["azurenodes"])).collect();
        let mut running = job(3, UnitType::Core, "2");
        running.allocation = vec![NodeAlloc { node: "N1".into(), cores: vec![0] }, NodeAlloc { node: "N2".into(), cores: vec![0] }];
        let usage = usage_of([&running]);
        let mut j = job(5, UnitType::Core, "2");
        j.node_groups = vec!["azurenodes".into()];
        let mut k = job(6, UnitType::Node, "1");
        k.node_groups = vec!["azurenodes".into()];
        // A pass stops at a full cluster; the reasons go on to the end of the queue.
        assert_eq!(schedule_jobs(&nodes, &usage, &[&j, &k]).len(), 0);
        let why = pending_reasons(&nodes, &usage, &[&j, &k]);
        assert_eq!(why[&5], "waiting for 2 cores: 2 of the 2 cores of the group azurenodes are in use by job 3");
        assert_eq!(why[&6], "waiting for 1 node: 2 of the 2 nodes of the group azurenodes are in use by job 3");
        // Once job 3 ended, job 5 starts and job 6 waits for it instead.
        let why = pending_reasons(&nodes, &BTreeMap::new(), &[&j, &k]);
        assert!(why[&5].starts_with("about to start"), "{}", why[&5]);
        assert_eq!(why[&6], "waiting for 1 node: 2 of the 2 nodes of the group azurenodes are in use by job 5");
    }

    #[test]
    fn pending_reasons_count_busy_held_offline_and_free_units() {
        let mut nodes: Vec<Node> = (1..=4).map(|i| node(&format!("N{i}"), 2, &[])).collect();
        nodes[3].state = NodeState::Offline;
        let mut usage = BTreeMap::new();
        usage.insert("N1".to_string(), NodeUsage { used: [0].into(), exclusive: false, jobs: [7].into() });
        let big = job(1, UnitType::Core, "8");
        let mut wide = job(2, UnitType::Node, "2");
        wide.requested_nodes = vec!["N2".into(), "N3".into()];
        let small = job(3, UnitType::Core, "4");
        let why = pending_reasons(&nodes, &usage, &[&big, &wide, &small]);
        assert_eq!(why[&1], "waiting for 8 cores: 1 of the 8 cores of the cluster is in use by job 7, 2 are on offline nodes and 5 are free");
        assert!(why[&2].starts_with("about to start"), "the big job holds no nodes while it needs offline ones: {}", why[&2]);
        assert_eq!(why[&3], "waiting for 4 cores: 5 of the 8 cores of the cluster are in use by jobs 2 and 7, 2 are on offline nodes and 1 is free");
    }

    #[test]
    fn a_request_larger_than_its_nodes_says_so() {
        let nodes: Vec<Node> = (1..=5)
            .map(|i| node(&format!("N{i}"), 2, if i < 5 { &["azurenodes"] } else { &[] }))
            .collect();
        let mut j = job(1, UnitType::Node, "8");
        j.node_groups = vec!["azurenodes".into()];
        assert_eq!(
            schedule_jobs(&nodes, &BTreeMap::new(), &[&j])[0].1,
            Decision::Never("it asks for 8 nodes but the group azurenodes has 4 nodes".into())
        );
        let mut j = job(2, UnitType::Core, "1");
        j.cores_per_node = Some(Range::parse("64-*").unwrap());
        assert_eq!(
            pending_reasons(&nodes, &BTreeMap::new(), &[&j])[&2],
            "cannot run on this cluster: it asks for 1 core but the cluster has no node with 64-* cores"
        );
    }

    #[test]
    fn exclusive_jobs_do_not_share() {
        let nodes = vec![node("N1", 4, &[])];
        let mut usage = BTreeMap::new();
        usage.insert("N1".to_string(), NodeUsage { used: [0].into(), exclusive: false, jobs: [7].into() });
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
