//! What each option and argument takes, for completion: fixed keywords
//! (formats, states, priorities, `true|false`), file names, and ids and
//! names the head node knows (jobs, tasks, nodes, node groups, cluster
//! variables), asked of a head node that runs already ([`Head`]).

use super::{Candidate, Reply, offer};
use crate::client::{Backend, JobQuery};
use crate::model::{JobState, NodeState, TaskState};
use crate::wire::{RestProperty, WireNode, WireNodeGroup, prop};
use std::cell::OnceCell;
use std::time::Duration;

/// How long completion waits for one answer of the head node.
pub const HEAD_TIMEOUT: Duration = Duration::from_millis(1000);

/// How many job ids are offered at most (the newest).
const MAX_JOBS: usize = 100;

/// A job as completion shows it.
#[derive(Clone, Debug)]
pub struct JobInfo {
    pub id: u64,
    pub name: String,
    pub state: String,
    pub tasks: u32,
}

/// A task as completion shows it.
#[derive(Clone, Debug)]
pub struct TaskInfo {
    pub id: u32,
    pub name: String,
    pub state: String,
}

/// Where live values come from; empty answers when there is no head node.
pub trait Source {
    fn jobs(&self) -> Vec<JobInfo>;
    fn tasks(&self, job: u64) -> Vec<TaskInfo>;
    fn nodes(&self) -> Vec<WireNode>;
    fn groups(&self) -> Vec<WireNodeGroup>;
    fn templates(&self) -> Vec<String>;
    fn cluster_env(&self) -> Vec<RestProperty>;
}

/// The head node named by `/scheduler`, `CCP_SCHEDULER` or the config
/// file, if it runs: connected on first use, never started.
pub struct Head {
    scheduler: Option<String>,
    backend: OnceCell<Option<Box<dyn Backend>>>,
}

impl Head {
    pub fn new(scheduler: Option<String>) -> Head {
        Head { scheduler, backend: OnceCell::new() }
    }

    fn backend(&self) -> Option<&dyn Backend> {
        self.backend
            .get_or_init(|| {
                let settings = crate::config::load(self.scheduler.clone()).ok()?;
                crate::client::connect_running(&settings, HEAD_TIMEOUT)
            })
            .as_deref()
    }
}

impl Source for Head {
    fn jobs(&self) -> Vec<JobInfo> {
        let Some(b) = self.backend() else { return Vec::new() };
        let q = JobQuery { properties: ["Id", "Name", "State", "TotalTaskCount"].map(String::from).to_vec(), ..Default::default() };
        let rows = b.jobs(&q).unwrap_or_default();
        rows.iter()
            .filter_map(|p| {
                Some(JobInfo {
                    id: prop(p, "Id")?.parse().ok()?,
                    name: prop(p, "Name").unwrap_or("").to_string(),
                    state: prop(p, "State").unwrap_or("").to_string(),
                    tasks: prop(p, "TotalTaskCount").and_then(|n| n.parse().ok()).unwrap_or(0),
                })
            })
            .collect()
    }

    fn tasks(&self, job: u64) -> Vec<TaskInfo> {
        let Some(b) = self.backend() else { return Vec::new() };
        let rows = b.tasks(job, &["JobTaskId", "Name", "State"]).unwrap_or_default();
        rows.iter()
            .filter_map(|p| {
                Some(TaskInfo {
                    id: prop(p, "JobTaskId")?.parse().ok()?,
                    name: prop(p, "Name").unwrap_or("").to_string(),
                    state: prop(p, "State").unwrap_or("").to_string(),
                })
            })
            .collect()
    }

    fn nodes(&self) -> Vec<WireNode> {
        self.backend().and_then(|b| b.nodes(None).ok()).unwrap_or_default()
    }

    fn groups(&self) -> Vec<WireNodeGroup> {
        self.backend().and_then(|b| b.node_groups().ok()).unwrap_or_default()
    }

    fn templates(&self) -> Vec<String> {
        self.backend().and_then(|b| b.templates().ok()).unwrap_or_else(|| vec![crate::model::DEFAULT_TEMPLATE.into()])
    }

    fn cluster_env(&self) -> Vec<RestProperty> {
        self.backend().and_then(|b| b.cluster_env().ok()).unwrap_or_default()
    }
}

/// Where a completion happens.
pub struct Context<'a> {
    pub tool: &'a str,
    pub sub: &'a str,
    pub src: &'a dyn Source,
}

/// What an option or argument takes.
#[derive(Clone, Debug)]
enum Kind {
    /// Free text: nothing to offer.
    Nothing,
    /// One of these words.
    OneOf(Vec<String>),
    /// A comma-separated list of these words.
    ListOf(Vec<String>),
    /// A job id whose job is in a state `keep` accepts.
    Jobs(fn(JobState) -> bool),
    /// `<jobID>.<taskID>` of a task in a state `keep` accepts.
    Tasks(fn(TaskState) -> bool),
    /// A node name (a comma list when `list`) of a node `keep` accepts.
    Nodes { list: bool, keep: fn(&WireNode) -> bool },
    /// A node group (a comma list when `list`).
    Groups { list: bool },
    /// A job template.
    Templates,
    /// A count of this unit (`/numnodes:`): up to what the cluster has.
    Count(fn(&WireNode) -> u32),
    Files,
    Dirs,
    /// `local` or `unix:<socket>`.
    Scheduler,
    /// `<name>=` of a cluster-wide variable.
    EnvNames,
    /// `*` or this user.
    User,
}

/// The values of one option or argument where it is being completed.
pub struct Values<'a> {
    ctx: &'a Context<'a>,
    kind: Kind,
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

fn any_job(_: JobState) -> bool {
    true
}

fn any_task(_: TaskState) -> bool {
    true
}

/// What an option (`/name:`) takes.
pub fn of_option<'a>(ctx: &'a Context<'a>, a: &clap::Arg) -> Values<'a> {
    let long = a.get_long().unwrap_or("");
    let value_name = a.get_value_names().and_then(|v| v.first()).map(|s| s.to_string()).unwrap_or_default();
    let kind = match (ctx.tool, ctx.sub, long) {
        (_, _, "format") => Kind::OneOf(value_name.split('|').map(String::from).collect()),
        _ if value_name == "true|false" => Kind::OneOf(words(&["true", "false"])),
        (_, _, "priority") => Kind::OneOf(words(&["Lowest", "BelowNormal", "Normal", "AboveNormal", "Highest"])),
        (_, _, "nodegroupop") => Kind::OneOf(words(&["Intersect", "Uniform", "Union"])),
        ("job", "list", "state" | "status") => Kind::ListOf(states(JobState::ALL.iter().map(|s| s.as_str()))),
        ("job", "listtasks", "state" | "status") => Kind::ListOf(states(TaskState::ALL.iter().map(|s| s.as_str()))),
        ("node", "list", "state") => Kind::OneOf(NodeState::ALL.iter().map(|s| s.as_str().to_string()).collect()),
        ("node", "listcores", "state") => {
            Kind::ListOf(["*", "all"].iter().chain(crate::cli::node::CORE_STATES).map(|s| s.to_string()).collect())
        }
        (_, _, "runtime") => Kind::OneOf(words(&["Infinite"])),
        (_, _, "jobtemplate") => Kind::Templates,
        (_, _, "type") => Kind::OneOf(words(&["Basic"])),
        (_, _, "user") => Kind::User,
        (_, _, "nodegroup") => Kind::Groups { list: true },
        (_, _, "group") => Kind::Groups { list: false },
        (_, _, "askednodes" | "requestednodes" | "requirednodes") => Kind::Nodes { list: true, keep: |_| true },
        (_, _, "numnodes") => Kind::Count(|_| 1),
        (_, _, "numcores" | "numprocessors") => Kind::Count(|n| n.cores),
        (_, _, "numsockets") => Kind::Count(|n| n.sockets),
        ("node", "listcores", "jobid") => Kind::Jobs(|s| s == JobState::Running),
        ("job", "submit", "id") => Kind::Jobs(|s| s == JobState::Configuring),
        (_, _, "stdout" | "stderr" | "stdin" | "jobfile") => Kind::Files,
        (_, _, "workdir") => Kind::Dirs,
        (_, _, "scheduler") => Kind::Scheduler,
        _ => Kind::Nothing,
    };
    Values { ctx, kind }
}

/// What a positional argument takes.
pub fn of_positional<'a>(ctx: &'a Context<'a>, a: &clap::Arg) -> Values<'a> {
    let value_name = a.get_value_names().and_then(|v| v.first()).map(|s| s.to_string()).unwrap_or_default();
    let kind = match (ctx.tool, ctx.sub, value_name.as_str()) {
        ("job" | "node", sub, "jobID") => Kind::Jobs(match sub {
            "add" | "submit" => |s| s == JobState::Configuring,
            "cancel" | "modify" | "wait" => |s: JobState| !s.is_final(),
            "finish" => |s| s == JobState::Running,
            "requeue" => |s| matches!(s, JobState::Running | JobState::Failed | JobState::Canceled),
            _ => any_job,
        }),
        ("task", sub, _) => Kind::Tasks(match sub {
            "cancel" | "finish" => |s: TaskState| !s.is_final(),
            "requeue" => |s| matches!(s, TaskState::Running | TaskState::Failed | TaskState::Canceled),
            _ => any_task,
        }),
        ("node", "online", _) => Kind::Nodes { list: false, keep: |n| !n.state.eq_ignore_ascii_case("Online") },
        ("node", "offline", _) => Kind::Nodes { list: false, keep: |n| !n.state.eq_ignore_ascii_case("Offline") },
        ("node", "view", _) => Kind::Nodes { list: false, keep: |_| true },
        ("cluscfg", "setenvs", _) => Kind::EnvNames,
        _ => Kind::Nothing,
    };
    Values { ctx, kind }
}

/// State names and `All`.
fn states<'s>(names: impl Iterator<Item = &'s str>) -> Vec<String> {
    names.map(String::from).chain(std::iter::once("All".to_string())).collect()
}

impl Values<'_> {
    /// The candidates for `typed`, the part of the word after `prefix`
    /// (`/format:` or nothing); each candidate is the whole word.
    pub fn complete(&self, prefix: &str, typed: &str) -> Reply {
        let src = self.ctx.src;
        let (prefix, typed, taken) = match &self.kind {
            Kind::ListOf(_) | Kind::Nodes { list: true, .. } | Kind::Groups { list: true } => match typed.rsplit_once(',') {
                Some((before, last)) => (format!("{prefix}{before},"), last, before.split(',').map(str::to_ascii_lowercase).collect()),
                None => (prefix.to_string(), typed, Vec::new()),
            },
            _ => (prefix.to_string(), typed, Vec::new()),
        };
        let mut out: Vec<(String, String)> = match &self.kind {
            Kind::Nothing => Vec::new(),
            Kind::OneOf(w) | Kind::ListOf(w) => w.iter().map(|w| (w.clone(), String::new())).collect(),
            Kind::Files => return Reply::Files { prefix, dirs: false },
            Kind::Dirs => return Reply::Files { prefix, dirs: true },
            Kind::Jobs(keep) => jobs(src, *keep).into_iter().map(|j| (j.id.to_string(), describe(&j.state, &j.name))).collect(),
            Kind::Tasks(keep) => return self.tasks(&prefix, typed, *keep),
            Kind::Nodes { keep, .. } => src
                .nodes()
                .into_iter()
                .filter(keep)
                .map(|n| {
                    let help = format!("{} {}", n.state, n.groups.join(","));
                    (n.name, help.trim().to_string())
                })
                .collect(),
            Kind::Groups { .. } => src.groups().into_iter().map(|g| (g.name, g.description)).collect(),
            Kind::Templates => src.templates().into_iter().map(|t| (t, String::new())).collect(),
            Kind::Count(per_node) => {
                let total: u32 = src.nodes().iter().map(per_node).sum();
                let counts: Vec<u32> = if total <= 16 { (1..=total).collect() } else { vec![1, total] };
                counts.into_iter().map(|n| (n.to_string(), String::new())).collect()
            }
            Kind::Scheduler => {
                if typed.len() >= 5 && typed[..5].eq_ignore_ascii_case("unix:") {
                    return Reply::Files { prefix: format!("{prefix}{}", &typed[..5]), dirs: false };
                }
                vec![("local".into(), "this machine's embedded head node".into()), ("unix:".into(), "a head node's socket".into())]
            }
            Kind::EnvNames => {
                if typed.contains('=') {
                    return Reply::Words(Vec::new());
                }
                let mut vars: Vec<(String, String)> = src.cluster_env().into_iter().map(|p| (format!("{}=", p.name), p.value)).collect();
                let netmask = format!("{}=", crate::env::CCP_MPI_NETMASK);
                if !vars.iter().any(|(n, _)| *n == netmask) {
                    vars.push((netmask, "the network MPI uses, as addr/mask".into()));
                }
                vars
            }
            Kind::User => {
                let me = crate::node::sys::user_name(crate::node::sys::uid());
                vec![("*".into(), "every user".into()), (me, "you".into())]
            }
        };
        out.retain(|(w, _)| !taken.contains(&w.to_ascii_lowercase()));
        Reply::Words(
            out.iter()
                .filter_map(|(w, help)| offer(typed, w, help))
                .map(|c| Candidate { value: format!("{prefix}{}", c.value), help: c.help })
                .collect(),
        )
    }

    /// `<jobID>.<taskID>`: first a job (`7.1` when it has one task, else
    /// `7.`), then, after the dot, the tasks of that job.
    fn tasks(&self, prefix: &str, typed: &str, keep: fn(TaskState) -> bool) -> Reply {
        let src = self.ctx.src;
        let cands: Vec<(String, String)> = match typed.split_once('.') {
            Some((job, _)) => match job.parse::<u64>() {
                Ok(j) => src
                    .tasks(j)
                    .into_iter()
                    .filter(|t| TaskState::parse(&t.state).is_none_or(keep))
                    .map(|t| (format!("{j}.{}", t.id), describe(&t.state, &t.name)))
                    .collect(),
                Err(_) => Vec::new(),
            },
            None => jobs(src, |_| true)
                .into_iter()
                .filter(|j| j.tasks > 0)
                .map(|j| (if j.tasks == 1 { format!("{}.1", j.id) } else { format!("{}.", j.id) }, describe(&j.state, &j.name)))
                .collect(),
        };
        Reply::Words(
            cands
                .iter()
                .filter_map(|(w, help)| offer(typed, w, help))
                .map(|c| Candidate { value: format!("{prefix}{}", c.value), help: c.help })
                .collect(),
        )
    }
}

/// The newest jobs in a state `keep` accepts.
fn jobs(src: &dyn Source, keep: fn(JobState) -> bool) -> Vec<JobInfo> {
    let mut js: Vec<JobInfo> = src.jobs().into_iter().filter(|j| JobState::parse(&j.state).is_none_or(keep)).collect();
    js.sort_by_key(|j| std::cmp::Reverse(j.id));
    js.truncate(MAX_JOBS);
    js
}

fn describe(state: &str, name: &str) -> String {
    format!("{state} {name}").trim().to_string()
}
