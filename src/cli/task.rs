//! `task`: view, cancel, finish and requeue one task (`<jobID>.<taskID>`).

use crate::cli::job::view::{TASK_VIEW, record};
use crate::cli::names;
use crate::cli::opts::{self, Common, TaskRef, task_ref};
use crate::cli::output::Format;
use crate::cli::{Ctx, ToolSpec, run_tool};
use crate::error::{Error, Kind, exit};
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

pub const SPEC: ToolSpec = ToolSpec { name: "task", command_after: &[] };

/// Views and manages the tasks of jobs.
#[derive(Parser, Debug)]
#[command(name = "task", help_expected = true, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Cancels the specified task and releases its resources.
    Cancel(MessageArgs),
    /// Finishes a running or queued task.
    Finish(MessageArgs),
    /// Requeues the specified task.
    Requeue(IdArgs),
    /// Displays information about the specified task.
    View(ViewArgs),
}

#[derive(Args, Debug)]
pub struct IdArgs {
    /// The task, as <jobID>.<taskID>.
    #[arg(value_name = "jobID.taskID", value_parser = task_ref)]
    pub id: TaskRef,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct MessageArgs {
    /// The task, as <jobID>.<taskID>.
    #[arg(value_name = "jobID.taskID", value_parser = task_ref)]
    pub id: TaskRef,
    /// Why, recorded as the task's error message.
    #[arg(long, value_name = "message")]
    pub message: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct ViewArgs {
    /// The task, as <jobID>.<taskID>.
    #[arg(value_name = "jobID.taskID", value_parser = task_ref)]
    pub id: TaskRef,
    /// Shows every property of the task.
    #[arg(long, value_name = "true|false", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = opts::boolean)]
    pub detailed: Option<bool>,
    #[command(flatten)]
    pub format: crate::cli::job::ViewFormat,
    #[command(flatten)]
    pub common: Common,
}

pub fn main() -> ExitCode {
    run_tool(&SPEC, |cli: Cli| {
        match cli.command {
            Cmd::View(a) => {
                let f = crate::cli::job::pick_format(a.format.format, Format::List);
                ("task view", Ctx::new(a.common.scheduler.clone(), f).and_then(|c| view(&c, &a)))
            }
            Cmd::Cancel(a) => ("task cancel", Ctx::new(a.common.scheduler.clone(), Format::List).and_then(|c| {
                c.backend()?.cancel_task(a.id.job, a.id.task, a.message.as_deref().unwrap_or(""))?;
                c.message(&format!("Task {}.{} canceled.", a.id.job, a.id.task))
            })),
            Cmd::Finish(a) => ("task finish", Ctx::new(a.common.scheduler.clone(), Format::List).and_then(|c| {
                c.backend()?.finish_task(a.id.job, a.id.task, a.message.as_deref().unwrap_or(""))?;
                c.message(&format!("Task {}.{} finished.", a.id.job, a.id.task))
            })),
            Cmd::Requeue(a) => ("task requeue", Ctx::new(a.common.scheduler.clone(), Format::List).and_then(|c| {
                c.backend()?.requeue_task(a.id.job, a.id.task)?;
                c.message(&format!("Task {}.{} requeued.", a.id.job, a.id.task))
            })),
        }
    })
}

/// `task view`: the task's properties, with its whole output where the
/// head node keeps it (HPC Pack keeps the first 4 KB), written as it
/// arrives: a task that printed gigabytes costs this command no more
/// memory than one that printed a line. Only the task's owner and
/// administrators see its output; for others it is empty, and a line on
/// stderr says why.
fn view(ctx: &Ctx, a: &ViewArgs) -> anyhow::Result<u8> {
    let b = ctx.backend()?;
    let mut p = b.task(a.id.job, a.id.task, &[])?;
    let full = match b.task_output(a.id.job, a.id.task, 0) {
        Ok(f) => f,
        Err(Error::Remote { kind: Kind::AccessDenied, message }) => {
            crate::cli::note(&format!("task view: {message}"));
            Some(Box::new(std::io::empty()) as Box<dyn std::io::Read>)
        }
        Err(e) => return Err(e.into()),
    };
    let detailed = a.detailed.unwrap_or(false);
    match full {
        Some(mut output) => {
            p.retain(|x| x.name != "Output");
            let r = if detailed { names::detailed(names::TASK, &p) } else { record(&p, &TASK_VIEW[..TASK_VIEW.len() - 1]) };
            ctx.object_streamed(&r, "Output", "Output", &mut output)?;
        }
        None if detailed => ctx.object(&names::detailed(names::TASK, &p))?,
        None => ctx.object(&record(&p, TASK_VIEW))?,
    }
    Ok(exit::OK)
}
