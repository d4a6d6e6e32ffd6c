//! `job view`, `job list`, `job listtasks` and the `job wait` extension.

use super::{ListArgs, ListTasksArgs, ViewArgs};
use crate::cli::Ctx;
use crate::cli::output::{Column, Record};
use crate::client::JobQuery;
use crate::error::{Error, exit};
use crate::model::{JobState, TaskState};
use crate::wire::{RestProperty, prop};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// `job view` fields: (label, property); the labels are those of
/// [`crate::cli::names::JOB`].
pub const JOB_VIEW: &[(&str, &str)] = &[
    ("Id", "Id"),
    ("Name", "Name"),
    ("State", "State"),
    ("Owner", "Owner"),
    ("Priority", "Priority"),
    ("Project", "Project"),
    ("Template", "JobTemplate"),
    ("Resource Request", ""),
    ("Submit Time", "SubmitTime"),
    ("Start Time", "StartTime"),
    ("End Time", "EndTime"),
    ("Number of Tasks", "TotalTaskCount"),
    ("Queued Tasks", "QueuedTaskCount"),
    ("Running Tasks", "RunningTaskCount"),
    ("Finished Tasks", "FinishedTaskCount"),
    ("Failed Tasks", "FailedTaskCount"),
    ("Canceled Tasks", "CanceledTaskCount"),
    ("Progress", "Progress"),
    ("Progress Message", "ProgressMessage"),
    ("Pending Reason", "PendingReason"),
    ("Error Message", "ErrorMessage"),
    ("Allocated Nodes", "AllocatedNodes"),
];

/// `task view` fields.
pub const TASK_VIEW: &[(&str, &str)] = &[
    ("Id", "TaskId"),
    ("Name", "Name"),
    ("State", "State"),
    ("Command Line", "CommandLine"),
    ("Working Directory", "WorkDirectory"),
    ("Required Nodes", "RequiredNodes"),
    ("Allocated Nodes", "AllocatedNodes"),
    ("Submit Time", "SubmitTime"),
    ("Start Time", "StartTime"),
    ("End Time", "EndTime"),
    ("Exit Code", "ExitCode"),
    ("Error Message", "ErrorMessage"),
    ("Output", "Output"),
];

/// `4-4 Nodes`, from a job's or task's unit properties.
pub fn resource_request(p: &[RestProperty]) -> String {
    let unit = prop(p, "UnitType").unwrap_or("Core");
    let plural = match unit {
        "Node" => "Nodes",
        "Socket" => "Sockets",
        _ => "Cores",
    };
    let min = prop(p, &format!("Min{plural}")).unwrap_or("");
    let max = prop(p, &format!("Max{plural}")).unwrap_or("");
    if min.is_empty() {
        return format!("* {plural}");
    }
    format!("{min}-{} {plural}", if max.is_empty() { "*" } else { max })
}

/// A record of `fields` from `p`; an empty property name means the resource request.
pub fn record(p: &[RestProperty], fields: &[(&str, &str)]) -> Record {
    let mut r = Record::new();
    for (label, name) in fields {
        if name.is_empty() {
            r.push(label, "ResourceRequest", resource_request(p));
        } else {
            r.push(label, name, prop(p, name).unwrap_or(""));
        }
    }
    r
}

pub fn view(ctx: &Ctx, a: &ViewArgs) -> anyhow::Result<u8> {
    let b = ctx.backend()?;
    let p = b.job(a.id, &[])?;
    if a.detailed.unwrap_or(false) {
        ctx.object(&crate::cli::names::detailed(crate::cli::names::JOB, &p))?;
    } else if a.history.unwrap_or(false) {
        ctx.object(&record(
            &p,
            &[("Id", "Id"), ("State", "State"), ("Created", "CreateTime"), ("Submitted", "SubmitTime"), ("Started", "StartTime"), ("Ended", "EndTime"), ("Last Change", "ChangeTime"), ("Requeue Count", "RequeueCount")],
        ))?;
    } else {
        ctx.object(&record(&p, JOB_VIEW))?;
    }
    Ok(exit::OK)
}

const LIST_PROPS: &[&str] = &[
    "Id", "Owner", "Name", "State", "Priority", "UnitType", "MinCores", "MaxCores", "MinSockets", "MaxSockets",
    "MinNodes", "MaxNodes", "JobTemplate", "Project", "SubmitTime", "PendingReason",
];

const LIST_COLUMNS: &[Column] = &[
    Column { title: "Id", width: 10 },
    Column { title: "Owner", width: 16 },
    Column { title: "Name", width: 20 },
    Column { title: "State", width: 10 },
    Column { title: "Priority", width: 11 },
    Column { title: "Resource Request", width: 17 },
];

fn states(list: &str, parse: fn(&str) -> Option<String>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if s.eq_ignore_ascii_case("all") {
            return Ok(Vec::new());
        }
        out.push(parse(s).ok_or_else(|| Error::InvalidArgument(format!("'{s}' is not a state; use {} or All", JobState::names())))?);
    }
    Ok(out)
}

pub fn list(ctx: &Ctx, a: &ListArgs) -> anyhow::Result<u8> {
    let state_arg = a.state.as_ref().or(a.status.as_ref());
    let mut q = JobQuery { properties: LIST_PROPS.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    match state_arg {
        Some(s) => q.states = states(s, |s| JobState::parse(s).map(|x| x.to_string()))?,
        None if !a.all => q.states = vec!["Queued".into(), "Running".into()],
        None => {}
    }
    match a.user.as_deref() {
        Some("*") => {}
        Some(u) => q.owner = Some(u.to_string()),
        None if !a.all && state_arg.is_none() => q.owner = Some(crate::node::sys::user_name(crate::node::sys::uid())),
        None => {}
    }
    let since = a.submittime.map(|d| crate::model::now_millis() - d as i64 * 86_400_000);
    let rows: Vec<Vec<RestProperty>> = ctx
        .backend()?
        .jobs(&q)?
        .into_iter()
        .filter(|p| a.jobname.as_deref().is_none_or(|n| name_matches(n, prop(p, "Name").unwrap_or(""))))
        .filter(|p| a.jobtemplate.as_deref().is_none_or(|t| prop(p, "JobTemplate").is_some_and(|x| x.eq_ignore_ascii_case(t))))
        .filter(|p| a.project.as_deref().is_none_or(|t| prop(p, "Project") == Some(t)))
        .filter(|p| since.is_none_or(|s| prop(p, "SubmitTime").and_then(crate::wire::parse_time).is_some_and(|t| t >= s)))
        .collect();
    // The table shows the first six (HPC Pack's columns); the list and JSON
    // forms also say why a queued job waits.
    let fields: &[(&str, &str)] = &[
        ("Id", "Id"),
        ("Owner", "Owner"),
        ("Name", "Name"),
        ("State", "State"),
        ("Priority", "Priority"),
        ("Resource Request", ""),
        ("Pending Reason", "PendingReason"),
    ];
    let records: Vec<Record> = rows.iter().map(|p| record(p, fields)).collect();
    ctx.objects(&records, LIST_COLUMNS)?;
    Ok(exit::OK)
}

/// `/jobname:` matching: exact, `prefix*`, or `*`.
fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

pub fn listtasks(ctx: &Ctx, a: &ListTasksArgs) -> anyhow::Result<u8> {
    let want: Vec<String> = match a.state.as_ref().or(a.status.as_ref()) {
        Some(s) => {
            let mut out = Vec::new();
            for x in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                if x.eq_ignore_ascii_case("all") {
                    out.clear();
                    break;
                }
                out.push(
                    TaskState::parse(x)
                        .ok_or_else(|| Error::InvalidArgument(format!("'{x}' is not a task state; use {} or All", TaskState::names())))?
                        .to_string(),
                );
            }
            out
        }
        None => Vec::new(),
    };
    let props: Vec<&str> = TASK_VIEW.iter().map(|(_, p)| *p).collect();
    let tasks = ctx.backend()?.tasks(a.id, &props)?;
    let records: Vec<Record> = tasks
        .iter()
        .filter(|p| want.is_empty() || prop(p, "State").is_some_and(|s| want.iter().any(|w| w == s)))
        .map(|p| record(p, TASK_VIEW))
        .collect();
    let columns = [
        Column { title: "Task Id", width: 10 },
        Column { title: "Name", width: 16 },
        Column { title: "State", width: 11 },
        Column { title: "Command Line", width: 30 },
    ];
    if ctx.format == crate::cli::output::Format::Table {
        let short: Vec<Record> = records
            .iter()
            .map(|r| Record { fields: [0usize, 1, 2, 3].iter().map(|i| r.fields[*i].clone()).collect() })
            .collect();
        ctx.objects(&short, &columns)?;
    } else {
        ctx.objects(&records, &columns)?;
    }
    Ok(exit::OK)
}

/// Waits for a job; exit 0 if it Finished, 1 if it Failed or was Canceled,
/// [`exit::TIMEOUT`] if the timeout passed first. On a terminal, shows the
/// tasks' progress.
pub fn wait(ctx: &Ctx, id: u64, timeout: Option<f64>, quiet: bool) -> anyhow::Result<u8> {
    let b = ctx.backend()?;
    let start = Instant::now();
    let props = ["State", "TotalTaskCount", "FinishedTaskCount", "FailedTaskCount", "CanceledTaskCount", "ErrorMessage"];
    let bar = (!quiet && std::io::stdout().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template("job {prefix} {bar:30} {pos}/{len} tasks  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.set_prefix(id.to_string());
        pb
    });
    loop {
        // A progress bar is redrawn four times a second; without one, the
        // head node answers as soon as the job ends anyway.
        let step = if bar.is_some() { 0.25 } else { 1.0 };
        let slice = match timeout {
            Some(t) => (t - start.elapsed().as_secs_f64()).clamp(0.0, step),
            None => step,
        };
        let p = b.wait_job(id, slice, &props)?;
        let num = |n: &str| prop(&p, n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let state = prop(&p, "State").and_then(JobState::parse);
        if let Some(pb) = &bar {
            pb.set_length(num("TotalTaskCount"));
            pb.set_position(num("FinishedTaskCount") + num("FailedTaskCount") + num("CanceledTaskCount"));
            pb.set_message(state.map(|s| s.to_string()).unwrap_or_default());
        }
        if let Some(s) = state.filter(|s| s.is_final()) {
            if let Some(pb) = bar {
                pb.finish_and_clear();
            }
            if !quiet {
                let err = prop(&p, "ErrorMessage").unwrap_or("");
                if err.is_empty() || s == JobState::Finished {
                    ctx.message(&format!("Job {id} {s}."))?;
                } else {
                    ctx.message(&format!("Job {id} {s}: {err}"))?;
                }
            }
            return Ok(if s == JobState::Finished { exit::OK } else { exit::FAILED });
        }
        if timeout.is_some_and(|t| start.elapsed() >= Duration::from_secs_f64(t)) {
            if let Some(pb) = bar {
                pb.finish_and_clear();
            }
            if !quiet {
                crate::cli::note(&format!(
                    "job wait: job {id} is still {} after {} s",
                    state.map(|s| s.to_string()).unwrap_or_default(),
                    timeout.unwrap_or(0.0)
                ));
            }
            return Ok(exit::TIMEOUT);
        }
    }
}
