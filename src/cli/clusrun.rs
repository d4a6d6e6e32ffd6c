//! `clusrun`: runs a command on many nodes at once, as one job with a task
//! on each node, and prints what each node printed.
//!
//! HPC Pack's output: a block per node as its command ends (`/sorted`: all
//! blocks by node name once every node is done), then a summary:
//!
//! ```text
//! -------------------------- node1 returns 0 --------------------------
//! node1
//!
//! -------------------------- Summary --------------------------
//! 2 Nodes succeeded
//! 0 Nodes failed
//! ```
//!
//! `/interleaved` prints each line as it comes, `node1: line`, then the
//! summary. Ctrl-C cancels the job and exits 130. The job is an ordinary job of the caller's (`job list` shows
//! it, as HPC Pack's does): on the embedded head node each node's task runs
//! on that virtual node, on Slurm as a step on that node.

use crate::cli::opts::Common;
use crate::cli::{Ctx, Parsed, ToolSpec, finish, parse_flat};
use crate::error::{Error, exit};
use crate::model::values::{parse_env_list, parse_name_list};
use crate::wire::{JobSpec, RestProperty, TaskSpec, WireNode, prop};
use clap::Parser;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub const SPEC: ToolSpec = ToolSpec { name: "clusrun", command_after: &[] };

/// Runs a command on the nodes of an HPC cluster and shows each node's output.
#[derive(Parser, Debug)]
#[command(name = "clusrun", help_expected = true, disable_help_subcommand = true)]
pub struct Cli {
    /// Every node (default, when no other selector is given: every Online node).
    #[arg(long)]
    pub all: bool,
    /// Environment variables of the command, as <name>=<value>[;<name>=<value>…].
    #[arg(long, value_name = "name=value;…")]
    pub env: Vec<String>,
    /// Nodes to leave out (comma-separated).
    #[arg(long, value_name = "node_list")]
    pub exclude: Option<String>,
    /// Prints each line as it comes, with the node's name in front.
    #[arg(long)]
    pub interleaved: bool,
    /// The nodes of this group.
    #[arg(long, value_name = "group_name")]
    pub nodegroup: Option<String>,
    /// These nodes (comma-separated).
    #[arg(long, value_name = "node_list")]
    pub nodes: Option<String>,
    /// Only nodes in these states (comma-separated: Online, Offline, Draining).
    #[arg(long, value_name = "state_list")]
    pub nodestate: Option<String>,
    /// Also writes each node's output to <folder>/<node>.txt.
    #[arg(long, value_name = "folder")]
    pub outputdir: Option<PathBuf>,
    /// Prints the nodes' blocks by node name, once every node is done.
    #[arg(long)]
    pub sorted: bool,
    /// The command's working directory on each node.
    #[arg(long, value_name = "folder")]
    pub workdir: Option<String>,
    #[command(flatten)]
    pub common: Common,
    /// The command and its arguments.
    #[arg(value_name = "command", required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn main() -> ExitCode {
    match parse_flat::<Cli>(&SPEC, std::env::args().collect()) {
        Parsed::Run(cli) => finish("clusrun", Ctx::new(cli.common.scheduler.clone(), crate::cli::output::Format::List).and_then(|c| run(&c, &cli))),
        Parsed::Exit(code) => code,
    }
}

/// The nodes a command line selects, by name.
pub fn select(nodes: Vec<WireNode>, a: &Cli) -> Result<Vec<String>, Error> {
    let exists = |name: &str| nodes.iter().any(|n| n.name.eq_ignore_ascii_case(name));
    let named = a.nodes.as_deref().map(parse_name_list);
    let excluded = a.exclude.as_deref().map(parse_name_list).unwrap_or_default();
    for n in named.iter().flatten().chain(&excluded) {
        if !exists(n) {
            return Err(Error::NodeNotFound(n.clone()));
        }
    }
    let states: Option<Vec<String>> = a.nodestate.as_deref().map(parse_name_list);
    if let Some(bad) = states.iter().flatten().find(|s| crate::model::NodeState::parse(s).is_none()) {
        return Err(Error::InvalidArgument(format!("'{bad}' is not a node state; use Online, Offline or Draining")));
    }
    let chosen: Vec<&WireNode> = nodes
        .iter()
        .filter(|n| named.as_ref().is_none_or(|l| l.iter().any(|x| x.eq_ignore_ascii_case(&n.name))))
        .filter(|n| !excluded.iter().any(|x| x.eq_ignore_ascii_case(&n.name)))
        .filter(|n| match &states {
            Some(s) => s.iter().any(|x| x.eq_ignore_ascii_case(&n.state)),
            // Named nodes, or /all: all of them, and each must be able to run it.
            None if named.is_some() || a.all => true,
            None => n.state == "Online",
        })
        .collect();
    if chosen.is_empty() {
        return Err(Error::InvalidArgument("no node is selected: see node list, and /nodes, /nodegroup, /exclude and /nodestate".into()));
    }
    if let Some(n) = chosen.iter().find(|n| n.state != "Online") {
        return Err(Error::InvalidState(format!(
            "node {} is {}: clusrun runs its command as a job, and only Online nodes run jobs; bring it online (node online {}) or leave it out (/exclude:{})",
            n.name, n.state, n.name, n.name
        )));
    }
    Ok(chosen.iter().map(|n| n.name.clone()).collect())
}

/// The job: one task per node, each on its node, one core.
fn job_spec(a: &Cli, nodes: &[String]) -> Result<JobSpec, Error> {
    let line = crate::cli::opts::command_line(&a.command);
    let mut env = Vec::new();
    for e in &a.env {
        env.extend(parse_env_list(e).map_err(|m| Error::InvalidArgument(format!("/env: {m}")))?);
    }
    let name: String = format!("clusrun {line}").chars().take(80).collect();
    let n = nodes.len().to_string();
    let properties = vec![
        RestProperty::new("Name", &name),
        RestProperty::new("UnitType", "Node"),
        RestProperty::new("MinNodes", &n),
        RestProperty::new("MaxNodes", &n),
        RestProperty::new("RequestedNodes", nodes.join(",")),
    ];
    let tasks = nodes
        .iter()
        .map(|node| {
            let mut p = vec![
                RestProperty::new("Name", node),
                RestProperty::new("CommandLine", &line),
                RestProperty::new("RequiredNodes", node),
                RestProperty::new("UnitType", "Core"),
                RestProperty::new("MinCores", "1"),
                RestProperty::new("MaxCores", "1"),
            ];
            if let Some(w) = &a.workdir {
                p.push(RestProperty::new("WorkDirectory", w));
            }
            TaskSpec { properties: p, env: env.iter().map(|(k, v)| RestProperty::new(k, v)).collect() }
        })
        .collect();
    Ok(JobSpec { properties, tasks, ..Default::default() }.from_here())
}

/// One node's task as the head node reports it.
struct NodeTask {
    node: String,
    state: String,
    exit_code: Option<i64>,
}

const FINAL: [&str; 3] = ["Finished", "Failed", "Canceled"];

/// The exit code after Ctrl-C, as a shell reports a command SIGINT ended.
const INTERRUPTED: u8 = 130;

fn run(ctx: &Ctx, a: &Cli) -> anyhow::Result<u8> {
    if a.interleaved && a.sorted {
        return Err(Error::InvalidArgument("/interleaved and /sorted do not go together: lines as they come, or blocks by node".into()).into());
    }
    let b = ctx.backend()?;
    let nodes = select(b.nodes(a.nodegroup.as_deref())?, a)?;
    if let Some(dir) = &a.outputdir {
        std::fs::create_dir_all(dir).map_err(|e| Error::InvalidArgument(format!("/outputdir: cannot create {}: {e}", dir.display())))?;
    }
    // Ctrl-C (or SIGTERM, SIGHUP) cancels the job: its commands end on
    // every node.
    crate::node::sys::catch_cancel_signals().map_err(|e| Error::io("cannot set up signal handling", e))?;
    let id = b.submit(&job_spec(a, &nodes)?)?;
    let mut out = std::io::stdout().lock();
    // Task id → bytes of its output printed (interleaved) or its block, once shown.
    let mut read: BTreeMap<u32, u64> = BTreeMap::new();
    let mut partial: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut done: BTreeMap<u32, NodeTask> = BTreeMap::new();
    let mut blocks: Vec<(String, Vec<u8>)> = Vec::new();
    let mut pause = Duration::from_millis(20);
    loop {
        if crate::node::sys::cancel_requested() {
            b.cancel_job(id, "clusrun was interrupted")?;
            out.flush()?;
            eprintln!("clusrun: interrupted: job {id} was canceled, and its commands end on every node");
            return Ok(INTERRUPTED);
        }
        let rows = b.tasks(id, &["TaskId", "Name", "State", "ExitCode"])?;
        let tasks: Vec<(u32, NodeTask)> = rows
            .iter()
            .filter_map(|r| {
                let t = prop(r, "TaskId")?.rsplit('.').next()?.parse().ok()?;
                let state = prop(r, "State").unwrap_or("").to_string();
                let exit_code = prop(r, "ExitCode").and_then(|c| c.parse().ok());
                Some((t, NodeTask { node: prop(r, "Name").unwrap_or("").to_string(), state, exit_code }))
            })
            .collect();
        for (t, task) in tasks {
            if done.contains_key(&t) {
                continue;
            }
            let ended = FINAL.contains(&task.state.as_str());
            if a.interleaved && task.state != "Queued" {
                let from = read.entry(t).or_insert(0);
                let bytes = output_from(b, id, t, *from)?;
                *from += bytes.len() as u64;
                let buf = partial.entry(t).or_default();
                buf.extend_from_slice(&bytes);
                while let Some(nl) = buf.iter().position(|c| *c == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    write!(out, "{}: ", task.node)?;
                    out.write_all(&line)?;
                }
                if ended && !buf.is_empty() {
                    write!(out, "{}: ", task.node)?;
                    out.write_all(buf)?;
                    writeln!(out)?;
                    buf.clear();
                }
                out.flush()?;
            }
            if !ended {
                continue;
            }
            // The whole output, where a file or a block shows it (the
            // interleaved lines were shown as they came).
            if a.outputdir.is_some() || !a.interleaved {
                let text = output_from(b, id, t, 0)?;
                if let Some(dir) = &a.outputdir {
                    let path = dir.join(format!("{}.txt", task.node));
                    std::fs::write(&path, &text).map_err(|e| Error::InvalidArgument(format!("/outputdir: cannot write {}: {e}", path.display())))?;
                }
                let block = block(&task, &text);
                if a.sorted {
                    blocks.push((task.node.clone(), block));
                } else if !a.interleaved {
                    out.write_all(&block)?;
                    out.flush()?;
                }
            }
            done.insert(t, task);
        }
        if done.len() == nodes.len() {
            break;
        }
        // A job canceled before its tasks started ends them too; a job
        // that ended otherwise has nothing more coming.
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
    blocks.sort_by(|x, y| x.0.cmp(&y.0));
    for (_, block) in blocks {
        out.write_all(&block)?;
    }
    let failed = done.values().filter(|t| !(t.state == "Finished" && t.exit_code == Some(0))).count();
    writeln!(out, "\n-------------------------- Summary --------------------------")?;
    writeln!(out, "{} Nodes succeeded", done.len() - failed)?;
    writeln!(out, "{failed} Nodes failed")?;
    Ok(if failed == 0 { exit::OK } else { exit::FAILED })
}

/// `------- node returns N -------` and what the node printed.
fn block(task: &NodeTask, text: &[u8]) -> Vec<u8> {
    let returns = match (task.state.as_str(), task.exit_code) {
        ("Canceled", _) => "was canceled".to_string(),
        (_, Some(c)) => format!("returns {c}"),
        (state, None) => format!("is {state}"),
    };
    let mut b = format!("-------------------------- {} {returns} --------------------------\n", task.node).into_bytes();
    b.extend_from_slice(text);
    if !text.is_empty() && !text.ends_with(b"\n") {
        b.push(b'\n');
    }
    b
}

/// What task `t` printed from byte `from` on.
fn output_from(b: &dyn crate::client::Backend, job: u64, t: u32, from: u64) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match b.task_output(job, t, from)? {
        Some(mut r) => {
            r.read_to_end(&mut bytes)?;
        }
        None if from == 0 => {
            let p = b.task(job, t, &["Output"])?;
            bytes = prop(&p, "Output").unwrap_or("").as_bytes().to_vec();
        }
        None => {}
    }
    Ok(bytes)
}
