//! `node`: list, view, bring online, take offline, and list cores.

use crate::cli::names;
use crate::cli::opts::{self, Common};
use crate::cli::output::{Column, Format, Record};
use crate::cli::{Ctx, ToolSpec, run_tool};
use crate::error::{Error, exit};
use crate::model::values::format_bool;
use crate::wire::{WireNode, WireNodeGroup};
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

pub const SPEC: ToolSpec = ToolSpec { name: "node", command_after: &[] };

/// Displays and manages the nodes of an HPC cluster.
#[derive(Parser, Debug)]
#[command(name = "node", help_expected = true, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// [extension] Lists, shows, creates, changes and deletes node groups.
    Group(GroupArgs),
    /// Displays information about the nodes in the HPC cluster.
    List(ListArgs),
    /// Displays a list of the cores on the nodes in the HPC cluster.
    Listcores(CoresArgs),
    /// Takes the specified node or all nodes offline (draining first unless /force).
    Offline(OfflineArgs),
    /// Brings the specified node or all nodes online.
    Online(OnlineArgs),
    /// Displays the property values of a node.
    View(ViewArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Shows the name of the active head node only.
    #[arg(long)]
    pub activeheadnode: bool,
    /// Output format: table (default), list, or json ([extension]).
    #[arg(long, value_name = "list|table|json", value_parser = opts::format)]
    pub format: Option<Format>,
    /// Only nodes of this group.
    #[arg(long, value_name = "group_name")]
    pub group: Option<String>,
    /// Only nodes in this state (Online, Offline, Draining).
    #[arg(long, value_name = "state")]
    pub state: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct ViewArgs {
    /// The node's name.
    #[arg(value_name = "node_name", value_parser = crate::cli::opts::node_name)]
    pub name: String,
    /// Shows every property of the node.
    #[arg(long, value_name = "true|false", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = opts::boolean)]
    pub detailed: Option<bool>,
    #[command(flatten)]
    pub format: crate::cli::job::ViewFormat,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct OnlineArgs {
    /// The node's name.
    #[arg(value_name = "node_name", required_unless_present = "all", conflicts_with = "all", value_parser = crate::cli::opts::node_name)]
    pub name: Option<String>,
    /// Every node that is not online.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct OfflineArgs {
    /// The node's name.
    #[arg(value_name = "node_name", required_unless_present = "all", conflicts_with = "all", value_parser = crate::cli::opts::node_name)]
    pub name: Option<String>,
    /// Every node that is online.
    #[arg(long)]
    pub all: bool,
    /// Goes offline at once instead of draining (letting the jobs on the
    /// node finish) first: those jobs are requeued, or fail when a task
    /// they ran there is not rerunnable.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub common: Common,
}

/// What `node group` does.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupAction {
    /// Lists the groups with their number of nodes (the default).
    List,
    /// Shows a group and its nodes.
    View,
    /// Creates a group with no nodes (administrators).
    Create,
    /// Gives a group a new /description (administrators).
    Modify,
    /// Deletes a group; its nodes stay (administrators).
    Delete,
    /// Adds the nodes named after the group to it (administrators).
    Add,
    /// Removes the nodes named after the group from it (administrators).
    Remove,
}

#[derive(Args, Debug)]
pub struct GroupArgs {
    /// list, view, create, modify, delete, add or remove.
    #[arg(value_name = "action", value_enum, ignore_case = true, default_value = "list", hide_default_value = true, hide_possible_values = true)]
    pub action: GroupAction,
    /// The group's name.
    #[arg(value_name = "group_name")]
    pub name: Option<String>,
    /// The nodes to add or remove.
    #[arg(value_name = "node_name")]
    pub nodes: Vec<String>,
    /// The group's description (create, modify).
    #[arg(long, value_name = "text")]
    pub description: Option<String>,
    /// Output format: table (default), list, or json.
    #[arg(long, value_name = "list|table|json", value_parser = opts::format)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct CoresArgs {
    /// Output format: table (default), list, or json ([extension]).
    #[arg(long, value_name = "list|table|json", value_parser = opts::format)]
    pub format: Option<Format>,
    /// Only the cores allocated to this job.
    #[arg(long, value_name = "jobID", value_parser = opts::job_id)]
    pub jobid: Option<u64>,
    /// Only cores in these states: all, offline, idle, jobscheduled,
    /// taskrunning, readyfortask, taskscheduled (comma-separated; * means all).
    #[arg(long, value_name = "state_list")]
    pub state: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

pub fn main() -> ExitCode {
    run_tool(&SPEC, |cli: Cli| {
        let pick = crate::cli::job::pick_format;
        match cli.command {
            Cmd::List(a) => ("node list", Ctx::new(a.common.scheduler.clone(), pick(a.format, Format::Table)).and_then(|c| list(&c, &a))),
            Cmd::View(a) => ("node view", Ctx::new(a.common.scheduler.clone(), pick(a.format.format, Format::List)).and_then(|c| view(&c, &a))),
            Cmd::Online(a) => ("node online", Ctx::new(a.common.scheduler.clone(), Format::List).and_then(|c| online(&c, &a))),
            Cmd::Offline(a) => ("node offline", Ctx::new(a.common.scheduler.clone(), Format::List).and_then(|c| offline(&c, &a))),
            Cmd::Listcores(a) => ("node listcores", Ctx::new(a.common.scheduler.clone(), pick(a.format, Format::Table)).and_then(|c| cores(&c, &a))),
            Cmd::Group(a) => {
                let default = if a.action == GroupAction::List { Format::Table } else { Format::List };
                ("node group", Ctx::new(a.common.scheduler.clone(), pick(a.format, default)).and_then(|c| group(&c, &a)))
            }
        }
    })
}

fn node_record(n: &WireNode) -> Record {
    Record::new()
        .field("Node Name", "Name", n.name.clone())
        .field("State", "State", n.state.clone())
        .field("Max", "Cores", n.cores.to_string())
        .field("Run", "CoresInUse", n.cores_in_use.to_string())
        .field("Idle", "CoresIdle", n.cores.saturating_sub(n.cores_in_use).to_string())
}

fn list(ctx: &Ctx, a: &ListArgs) -> anyhow::Result<u8> {
    let b = ctx.backend()?;
    if a.activeheadnode {
        return ctx.message(&b.active_head_node()?);
    }
    if let Some(s) = &a.state {
        crate::model::NodeState::parse(s)
            .ok_or_else(|| Error::InvalidArgument(format!("'{s}' is not a node state; use Online, Offline or Draining")))?;
    }
    let nodes: Vec<Record> = b
        .nodes(a.group.as_deref())?
        .iter()
        .filter(|n| a.state.as_deref().is_none_or(|s| n.state.eq_ignore_ascii_case(s)))
        .map(node_record)
        .collect();
    ctx.objects(
        &nodes,
        &[
            Column { title: "Node Name", width: 20 },
            Column { title: "State", width: 11 },
            Column { title: "Max", width: 5 },
            Column { title: "Run", width: 5 },
            Column { title: "Idle", width: 5 },
        ],
    )?;
    Ok(exit::OK)
}

/// The properties of a node (REST name, value), in the order `node view`
/// shows them; the list form names them as [`names::NODE`] does.
fn node_properties(n: &WireNode) -> Vec<(&'static str, String)> {
    let b = |v: bool| format_bool(v).to_string();
    vec![
        ("Name", n.name.clone()),
        ("State", n.state.clone()),
        ("Health", n.health.clone()),
        ("Reachable", b(n.reachable.unwrap_or(true))),
        ("Cores", n.cores.to_string()),
        ("Sockets", n.sockets.to_string()),
        ("CoresInUse", n.cores_in_use.to_string()),
        ("MemorySize", format!("{} MB", n.memory_size)),
        ("Groups", n.groups.join(",")),
        ("Location", n.location.clone()),
        ("OnlineTime", n.online_time.clone()),
        ("OfflineTime", n.offline_time.clone()),
        ("Template", n.template.clone()),
        ("Roles", n.roles.join(",")),
        ("HpcPackVersion", n.hpc_pack_version.clone()),
        ("OnAzure", b(n.on_azure)),
    ]
}

/// What `node view` shows without `/detailed`.
const NODE_VIEW: &[&str] =
    &["Name", "State", "Health", "Reachable", "Cores", "Sockets", "CoresInUse", "MemorySize", "Groups", "Location", "OnlineTime", "OfflineTime"];

fn view(ctx: &Ctx, a: &ViewArgs) -> anyhow::Result<u8> {
    let n = ctx.backend()?.node(&a.name)?;
    let detailed = a.detailed.unwrap_or(false);
    let mut r = Record::new();
    for (key, value) in node_properties(&n) {
        if detailed || NODE_VIEW.contains(&key) {
            r.push(&names::display(names::NODE, key), key, value);
        }
    }
    ctx.object(&r)?;
    Ok(exit::OK)
}

/// The nodes `/all` means: those not already in the target state.
fn targets(ctx: &Ctx, name: &Option<String>, all: bool, skip_state: &str) -> anyhow::Result<Vec<String>> {
    if !all {
        return Ok(name.iter().cloned().collect());
    }
    Ok(ctx.backend()?.nodes(None)?.into_iter().filter(|n| !n.state.eq_ignore_ascii_case(skip_state)).map(|n| n.name).collect())
}

fn online(ctx: &Ctx, a: &OnlineArgs) -> anyhow::Result<u8> {
    for n in targets(ctx, &a.name, a.all, "Online")? {
        ctx.backend()?.node_operation(&n, "bringOnline", false)?;
        ctx.message(&format!("Node {n} is Online."))?;
    }
    Ok(exit::OK)
}

fn offline(ctx: &Ctx, a: &OfflineArgs) -> anyhow::Result<u8> {
    let b = ctx.backend()?;
    for n in targets(ctx, &a.name, a.all, "Offline")? {
        b.node_operation(&n, "takeOffline", a.force)?;
        let state = b.node(&n)?.state;
        ctx.message(&format!("Node {n} is {state}."))?;
    }
    Ok(exit::OK)
}

fn group(ctx: &Ctx, a: &GroupArgs) -> anyhow::Result<u8> {
    use GroupAction::*;
    let b = ctx.backend()?;
    let name = || -> anyhow::Result<String> {
        a.name.clone().ok_or_else(|| Error::InvalidArgument(format!("node group {}: name the group", opts::value_name(a.action))).into())
    };
    if !a.nodes.is_empty() && !matches!(a.action, Add | Remove) {
        return Err(Error::InvalidArgument(format!(
            "node group {}: takes no node names ({} given); node names go with add and remove",
            opts::value_name(a.action),
            a.nodes.join(" ")
        ))
        .into());
    }
    if a.description.is_some() && !matches!(a.action, Create | Modify) {
        return Err(Error::InvalidArgument(format!("node group {}: /description goes with create and modify", opts::value_name(a.action))).into());
    }
    match a.action {
        List => {
            if let Some(n) = &a.name {
                return Err(Error::InvalidArgument(format!("node group list takes no group name ({n}); to see one group, use node group view {n}")).into());
            }
            let nodes = b.nodes(None)?;
            let rows: Vec<Record> = b
                .node_groups()?
                .iter()
                .map(|g| {
                    let members = nodes.iter().filter(|n| n.groups.iter().any(|x| x.eq_ignore_ascii_case(&g.name))).count();
                    Record::new()
                        .field("Group Name", "Name", g.name.clone())
                        .field("Managed", "Managed", format_bool(g.managed))
                        .field("Nodes", "Nodes", members.to_string())
                        .field("Description", "Description", g.description.clone())
                })
                .collect();
            ctx.objects(
                &rows,
                &[
                    Column { title: "Group Name", width: 20 },
                    Column { title: "Managed", width: 8 },
                    Column { title: "Nodes", width: 6 },
                    Column { title: "Description", width: 40 },
                ],
            )?;
        }
        View => {
            let name = name()?;
            let g = b
                .node_groups()?
                .into_iter()
                .find(|g| g.name.eq_ignore_ascii_case(&name))
                .ok_or(Error::GroupNotFound(name))?;
            let members = b.group_nodes(&g.name)?;
            ctx.object(&group_record(&g, &members))?;
        }
        Create => {
            let g = WireNodeGroup { name: name()?, description: a.description.clone().unwrap_or_default(), managed: false };
            let g = b.create_group(&g)?;
            ctx.message(&format!("Node group {} was created.", g.name))?;
        }
        Modify => {
            let Some(description) = a.description.clone() else {
                return Err(Error::InvalidArgument("node group modify: give the new /description:<text>".into()).into());
            };
            let g = b.update_group(&WireNodeGroup { name: name()?, description, managed: false })?;
            ctx.message(&format!("Node group {} was modified.", g.name))?;
        }
        Delete => {
            let name = name()?;
            b.delete_group(&name)?;
            ctx.message(&format!("Node group {name} was deleted."))?;
        }
        Add | Remove => {
            let name = name()?;
            if a.nodes.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "node group {}: name the nodes after the group, e.g. node group {} {name} node1 node2",
                    opts::value_name(a.action),
                    opts::value_name(a.action)
                ))
                .into());
            }
            let members = b.move_group_nodes(&name, a.action == Add, &a.nodes)?;
            let list = if members.is_empty() { "none".to_string() } else { members.join(", ") };
            ctx.message(&format!("Node group {name} has {} node{}: {list}.", members.len(), if members.len() == 1 { "" } else { "s" }))?;
        }
    }
    Ok(exit::OK)
}

fn group_record(g: &WireNodeGroup, members: &[String]) -> Record {
    Record::new()
        .field("Name", "Name", g.name.clone())
        .field("Description", "Description", g.description.clone())
        .field("Managed", "Managed", format_bool(g.managed))
        .field("Nodes", "Nodes", members.join(","))
}

/// The core states `node listcores /state:` takes (besides `*` and `all`).
pub const CORE_STATES: &[&str] = &["offline", "idle", "jobscheduled", "taskrunning", "readyfortask", "taskscheduled"];

fn cores(ctx: &Ctx, a: &CoresArgs) -> anyhow::Result<u8> {
    let wanted: Option<Vec<String>> = match a.state.as_deref() {
        None => None,
        Some(s) if s.trim() == "*" || s.eq_ignore_ascii_case("all") => None,
        Some(s) => {
            let list: Vec<String> = s.split(',').map(|x| x.trim().to_ascii_lowercase()).filter(|x| !x.is_empty()).collect();
            if let Some(bad) = list.iter().find(|x| !CORE_STATES.contains(&x.as_str())) {
                return Err(Error::InvalidArgument(format!("'{bad}' is not a core state; use *, all, {}", CORE_STATES.join(", "))).into());
            }
            Some(list)
        }
    };
    let rows: Vec<Record> = ctx
        .backend()?
        .cores()?
        .iter()
        .filter(|c| a.jobid.is_none_or(|j| c.job_id == Some(j)))
        .filter(|c| wanted.as_ref().is_none_or(|w| w.iter().any(|s| s.eq_ignore_ascii_case(&c.state))))
        .map(|c| {
            Record::new()
                .field("Node Name", "NodeName", c.node_name.clone())
                .field("Core Id", "CoreId", c.core_id.to_string())
                .field("State", "State", c.state.clone())
                .field("Job Id", "JobId", c.job_id.map(|j| j.to_string()).unwrap_or_default())
                .field("Task Id", "TaskId", c.task_id.clone().unwrap_or_default())
        })
        .collect();
    ctx.objects(
        &rows,
        &[
            Column { title: "Node Name", width: 20 },
            Column { title: "Core Id", width: 7 },
            Column { title: "State", width: 12 },
            Column { title: "Job Id", width: 8 },
            Column { title: "Task Id", width: 10 },
        ],
    )?;
    Ok(exit::OK)
}
