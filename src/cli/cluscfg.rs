//! `cluscfg`: cluster-wide environment variables and a summary of the cluster.

use crate::cli::opts::Common;
use crate::cli::output::{Format, Record};
use crate::cli::{Ctx, ToolSpec, run_tool};
use crate::error::{Error, exit};
use crate::model::{JobState, values::valid_env_name};
use crate::wire::{RestProperty, prop};
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

pub const SPEC: ToolSpec = ToolSpec { name: "cluscfg", command_after: &[] };

/// Configures an HPC cluster.
#[derive(Parser, Debug)]
#[command(name = "cluscfg", help_expected = true, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Displays the values of the cluster-wide environment variables.
    Listenvs(CommonArgs),
    /// Sets cluster-wide environment variables; <name>= with no value unsets one.
    Setenvs(SetArgs),
    /// Displays a summary of the cluster.
    View(ViewArgs),
}

#[derive(Args, Debug)]
pub struct CommonArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct SetArgs {
    /// Variables as <name1>=<value1> [<name2>=<value2>…].
    #[arg(value_name = "name=value", required = true)]
    pub vars: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct ViewArgs {
    #[command(flatten)]
    pub format: crate::cli::job::ViewFormat,
    #[command(flatten)]
    pub common: Common,
}

pub fn main() -> ExitCode {
    run_tool(&SPEC, |cli: Cli| {
        match cli.command {
            Cmd::Listenvs(a) => ("cluscfg listenvs", Ctx::new(a.common.scheduler.clone(), Format::List).and_then(|c| listenvs(&c))),
            Cmd::Setenvs(a) => ("cluscfg setenvs", Ctx::new(a.common.scheduler.clone(), Format::List).and_then(|c| setenvs(&c, &a))),
            Cmd::View(a) => {
                let f = crate::cli::job::pick_format(a.format.format, Format::List);
                ("cluscfg view", Ctx::new(a.common.scheduler.clone(), f).and_then(|c| view(&c)))
            }
        }
    })
}

fn listenvs(ctx: &Ctx) -> anyhow::Result<u8> {
    for p in ctx.backend()?.cluster_env()? {
        ctx.message(&format!("{}={}", p.name, p.value))?;
    }
    Ok(exit::OK)
}

fn setenvs(ctx: &Ctx, a: &SetArgs) -> anyhow::Result<u8> {
    let mut vars = Vec::new();
    for v in &a.vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| Error::InvalidArgument(format!("'{v}' is not <name>=<value>; to unset a variable give <name>=")))?;
        if !valid_env_name(k) {
            return Err(Error::InvalidArgument(format!("'{k}' is not an environment variable name (letters, digits and _)")).into());
        }
        vars.push(RestProperty::new(k, val));
    }
    ctx.backend()?.set_cluster_env(&vars)?;
    for v in &vars {
        if v.value.is_empty() {
            ctx.message(&format!("Unset {}.", v.name))?;
        } else {
            ctx.message(&format!("Set {}={}.", v.name, v.value))?;
        }
    }
    Ok(exit::OK)
}

fn view(ctx: &Ctx) -> anyhow::Result<u8> {
    let b = ctx.backend()?;
    let nodes = b.nodes(None)?;
    let jobs = b.jobs(&crate::client::JobQuery {
        properties: vec!["State".into(), "QueuedTaskCount".into(), "RunningTaskCount".into()],
        ..Default::default()
    })?;
    let count_nodes = |s: &str| nodes.iter().filter(|n| n.state.eq_ignore_ascii_case(s)).count().to_string();
    let count_jobs = |s: JobState| jobs.iter().filter(|p| prop(p, "State") == Some(s.as_str())).count().to_string();
    let sum_tasks = |n: &str| jobs.iter().filter_map(|p| prop(p, n).and_then(|v| v.parse::<u64>().ok())).sum::<u64>().to_string();
    let r = Record::new()
        .field("Cluster name", "ClusterName", b.active_head_node()?)
        .field("Version", "Version", b.cluster_version()?)
        .field("Total number of nodes", "TotalNodes", nodes.len().to_string())
        .field("Number of online nodes", "OnlineNodes", count_nodes("Online"))
        .field("Number of offline nodes", "OfflineNodes", count_nodes("Offline"))
        .field("Number of draining nodes", "DrainingNodes", count_nodes("Draining"))
        .field("Unreachable nodes", "UnreachableNodes", nodes.iter().filter(|n| n.reachable == Some(false)).count().to_string())
        .field("Total number of cores", "TotalCores", nodes.iter().map(|n| n.cores as u64).sum::<u64>().to_string())
        .field("Number of busy cores", "BusyCores", nodes.iter().map(|n| n.cores_in_use as u64).sum::<u64>().to_string())
        .field("Number of queued jobs", "QueuedJobs", count_jobs(JobState::Queued))
        .field("Number of running jobs", "RunningJobs", count_jobs(JobState::Running))
        .field("Number of queued tasks", "QueuedTasks", sum_tasks("QueuedTaskCount"))
        .field("Number of running tasks", "RunningTasks", sum_tasks("RunningTaskCount"));
    ctx.object(&r)?;
    Ok(exit::OK)
}
