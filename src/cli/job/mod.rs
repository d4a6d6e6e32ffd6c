//! `job`: create, submit, view, list, change and wait for jobs.

mod control;
mod submit;
mod template;
pub mod view;

use crate::cli::opts::{self, Common, JobOpts, TaskIo, Units, job_id};
use crate::cli::output::Format;
use crate::cli::{Ctx, ToolSpec, run_tool};
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

pub const SPEC: ToolSpec = ToolSpec { name: "job", command_after: &[("submit", 0), ("add", 1)] };

/// Creates, submits and manages jobs on an HPC cluster.
#[derive(Parser, Debug)]
#[command(name = "job", help_expected = true, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

// Parsed once per process; boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Creates a new task and adds it to the specified job.
    Add(AddArgs),
    /// Cancels a specified running or pending job.
    Cancel(CancelArgs),
    /// Finishes a specified running job.
    Finish(CancelArgs),
    /// Lists information about the jobs that match the specified criteria.
    List(ListArgs),
    /// Lists information about the tasks that belong to the specified job.
    Listtasks(ListTasksArgs),
    /// Sets the properties of the specified job.
    Modify(ModifyArgs),
    /// Creates a new job with the specified settings on an HPC cluster.
    New(NewArgs),
    /// Requeues the specified job if the job has a state of Running, Canceled, or Failed.
    Requeue(IdArgs),
    /// Submits the specified job to run on an HPC cluster.
    Submit(SubmitArgs),
    /// [extension] Lists, shows, imports, exports and deletes job templates,
    /// and says who may submit with them.
    Template(template::TemplateArgs),
    /// Displays information about the specified job.
    View(ViewArgs),
    /// [extension] Waits until the specified job is Finished, Failed or
    /// Canceled; exits 0 only if it Finished.
    Wait(WaitArgs),
}

#[derive(Args, Debug)]
pub struct IdArgs {
    /// The job's ID.
    #[arg(value_name = "jobID", value_parser = job_id)]
    pub id: u64,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The job's ID.
    #[arg(value_name = "jobID", value_parser = job_id)]
    pub id: u64,
    /// Why, recorded as the job's error message.
    #[arg(long, value_name = "message")]
    pub message: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// `/format` of views: list by default.
#[derive(Args, Debug, Clone, Default)]
pub struct ViewFormat {
    /// Output format: list, or json ([extension]).
    #[arg(long, value_name = "list|json", value_parser = opts::view_format)]
    pub format: Option<Format>,
}

#[derive(Args, Debug)]
pub struct ViewArgs {
    /// The job's ID.
    #[arg(value_name = "jobID", value_parser = job_id)]
    pub id: u64,
    /// Shows every property of the job.
    #[arg(long, value_name = "true|false", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = opts::boolean)]
    pub detailed: Option<bool>,
    /// Shows when the job was created, submitted, started and ended.
    #[arg(long, value_name = "true|false", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = opts::boolean)]
    pub history: Option<bool>,
    #[command(flatten)]
    pub format: ViewFormat,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Lists all jobs; without it, only your Queued and Running jobs unless
    /// /state or /user says otherwise.
    #[arg(long)]
    pub all: bool,
    /// Output format: table (default), list, or json ([extension]).
    #[arg(long, value_name = "list|table|json", value_parser = opts::format)]
    pub format: Option<Format>,
    /// Only jobs with this name, or names starting with a prefix followed by *.
    #[arg(long, value_name = "jobname")]
    pub jobname: Option<String>,
    /// Only jobs of this template.
    #[arg(long, value_name = "TemplateName")]
    pub jobtemplate: Option<String>,
    /// Only jobs of this project.
    #[arg(long, value_name = "ProjectName")]
    pub project: Option<String>,
    /// Only jobs in these states, as <state1>[,<state2>…] or All.
    #[arg(long, value_name = "state_list", conflicts_with = "status")]
    pub state: Option<String>,
    /// Same as /state.
    #[arg(long, value_name = "status_list")]
    pub status: Option<String>,
    /// Only jobs submitted in the last N days.
    #[arg(long, value_name = "days")]
    pub submittime: Option<u32>,
    /// Only jobs of this user, or * for every user.
    #[arg(long, value_name = "UserId|*")]
    pub user: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct ListTasksArgs {
    /// The job's ID.
    #[arg(value_name = "jobID", value_parser = job_id)]
    pub id: u64,
    /// Lists each subtask of parametric tasks (there are none here).
    #[arg(long)]
    pub expand: bool,
    /// Output format: list (default), table, or json ([extension]).
    #[arg(long, value_name = "list|table|json", value_parser = opts::format)]
    pub format: Option<Format>,
    /// Only tasks in these states, as <state1>[,<state2>…] or All.
    #[arg(long, value_name = "state_list", conflicts_with = "status")]
    pub state: Option<String>,
    /// Same as /state.
    #[arg(long, value_name = "status_list")]
    pub status: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct NewArgs {
    #[command(flatten)]
    pub job: JobOpts,
    /// Takes the job's settings and tasks from an HPC Pack job XML file.
    #[arg(long, value_name = "file_name")]
    pub jobfile: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct ModifyArgs {
    /// The job's ID.
    #[arg(value_name = "jobID", value_parser = job_id)]
    pub id: u64,
    #[command(flatten)]
    pub job: JobOpts,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The job's ID.
    #[arg(value_name = "jobID", value_parser = job_id)]
    pub id: u64,
    /// Names of tasks of this job that must finish before this one starts,
    /// as <task_name1>[,<task_name2>…].
    #[arg(long, value_name = "task_name_list")]
    pub depend: Option<String>,
    /// No other task may run on this task's nodes.
    #[arg(long, value_name = "true|false", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = opts::boolean)]
    pub exclusive: Option<bool>,
    #[command(flatten)]
    pub units: Units,
    /// Nodes the task must run on (among the job's), as <node1>[,<node2>…].
    #[arg(long, value_name = "node_list")]
    pub requirednodes: Option<String>,
    /// Longest the task may run, as [[days:]hours:]minutes or Infinite.
    #[arg(long, value_name = "time|Infinite", value_parser = opts::runtime)]
    pub runtime: Option<opts::Runtime>,
    /// Exit codes that count as success, as <int>|<start>..<end>[,…] (default 0).
    #[arg(long, value_name = "int|intStart..intEnd[,…]", value_parser = opts::exit_codes)]
    pub validexitcodes: Option<crate::model::ExitCodes>,
    #[command(flatten)]
    pub task: TaskIo,
    #[command(flatten)]
    pub common: Common,
    /// The task's command line, passed on as given.
    #[arg(value_name = "command", trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// Submits a job created with job new (and filled with job add).
    #[arg(long, value_name = "jobID", value_parser = job_id, conflicts_with_all = ["jobfile", "command"])]
    pub id: Option<u64>,
    /// Submits the job described by an HPC Pack job XML file.
    #[arg(long, value_name = "file_name", conflicts_with = "command")]
    pub jobfile: Option<String>,
    #[command(flatten)]
    pub job: JobOpts,
    #[command(flatten)]
    pub task: TaskIo,
    /// [extension] Waits until the job is Finished, Failed or Canceled and
    /// exits 0 only if it Finished; shows the tasks' progress on a terminal.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub common: Common,
    /// The command line of the job's one task, passed on as given.
    #[arg(value_name = "command", trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// The job's ID.
    #[arg(value_name = "jobID", value_parser = job_id)]
    pub id: u64,
    /// Gives up after this many seconds (exit code 9); default: no limit.
    #[arg(long, value_name = "seconds", value_parser = crate::cli::opts::seconds)]
    pub timeout: Option<f64>,
    /// Prints nothing; the exit code tells the outcome.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub common: Common,
}

/// The format a command prints in: `/format`, else `HPCPACK_FORMAT`, else `default`.
pub fn pick_format(given: Option<Format>, default: Format) -> Format {
    given
        .or_else(|| crate::env::var(crate::env::HPCPACK_FORMAT).and_then(|v| Format::parse(&v).ok()))
        .unwrap_or(default)
}

pub fn main() -> ExitCode {
    run_tool(&SPEC, |cli: Cli| run(cli.command))
}

fn run(cmd: Cmd) -> (&'static str, anyhow::Result<u8>) {
    let ctx = |s: &Common, f: Format| Ctx::new(s.scheduler.clone(), f);
    match cmd {
        Cmd::Add(a) => ("job add", ctx(&a.common, Format::List).and_then(|c| submit::add(&c, &a))),
        Cmd::Cancel(a) => ("job cancel", ctx(&a.common, Format::List).and_then(|c| control::cancel(&c, &a))),
        Cmd::Finish(a) => ("job finish", ctx(&a.common, Format::List).and_then(|c| control::finish(&c, &a))),
        Cmd::List(a) => {
            let f = pick_format(a.format, Format::Table);
            ("job list", ctx(&a.common, f).and_then(|c| view::list(&c, &a)))
        }
        Cmd::Listtasks(a) => {
            let f = pick_format(a.format, Format::List);
            ("job listtasks", ctx(&a.common, f).and_then(|c| view::listtasks(&c, &a)))
        }
        Cmd::Modify(a) => ("job modify", ctx(&a.common, Format::List).and_then(|c| control::modify(&c, &a))),
        Cmd::New(a) => ("job new", ctx(&a.common, Format::List).and_then(|c| submit::new(&c, &a))),
        Cmd::Requeue(a) => ("job requeue", ctx(&a.common, Format::List).and_then(|c| control::requeue(&c, &a))),
        Cmd::Submit(a) => ("job submit", ctx(&a.common, Format::List).and_then(|c| submit::submit(&c, &a))),
        Cmd::View(a) => {
            let f = pick_format(a.format.format, Format::List);
            ("job view", ctx(&a.common, f).and_then(|c| view::view(&c, &a)))
        }
        Cmd::Template(a) => {
            let f = pick_format(a.format, a.default_format());
            ("job template", ctx(&a.common, f).and_then(|c| template::run(&c, &a)))
        }
        Cmd::Wait(a) => ("job wait", ctx(&a.common, Format::List).and_then(|c| view::wait(&c, a.id, a.timeout, a.quiet))),
    }
}
