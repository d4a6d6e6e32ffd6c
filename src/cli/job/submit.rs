//! `job submit` (its three forms), `job new` and `job add`.

use super::{AddArgs, NewArgs, SubmitArgs};
use crate::cli::Ctx;
use crate::cli::opts::{command_line, unit_props};
use crate::error::{Error, exit};
use crate::model::values::{expand_vars, format_bool, parse_name_list};
use crate::wire::{JobSpec, RestProperty, TaskSpec};

/// On the embedded head node, whose tasks run here as this user, a
/// working directory that is not there would only fail the task once it
/// runs: it is refused now instead. (A head node elsewhere checks on the
/// node, and so does the node for a folder named with `%NAME%`, known
/// only when the task starts.)
fn check_workdir(ctx: &Ctx, io: &crate::cli::opts::TaskIo) -> anyhow::Result<()> {
    let Some(given) = io.workdir.as_deref() else { return Ok(()) };
    if !crate::client::targets_embedded(&ctx.settings) {
        return Ok(());
    }
    let dir = expand_vars(given, |_| None);
    if dir != expand_vars(given, |_| Some(String::new())) {
        return Ok(());
    }
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::InvalidArgument(format!("/workdir:{dir} is not a directory; give the folder the task should run in")).into()),
        Err(e) => Err(Error::InvalidArgument(format!("/workdir:{dir}: {e}; create it first or give another folder")).into()),
    }
}

/// `job submit`.
pub fn submit(ctx: &Ctx, a: &SubmitArgs) -> anyhow::Result<u8> {
    let job_props = a.job.props().map_err(Error::InvalidArgument)?;
    check_workdir(ctx, &a.task)?;
    let id = if let Some(id) = a.id {
        let b = ctx.backend()?;
        if !job_props.is_empty() || a.job.jobenv.is_some() {
            b.modify_job(id, &job_props, &a.job.env())?;
        }
        b.submit_job(id)?;
        id
    } else if let Some(file) = &a.jobfile {
        let mut spec = read_job_file(file)?.from_here();
        spec.properties.extend(job_props);
        spec.env.extend(a.job.env());
        spec.custom_properties.extend(a.job.custom());
        ctx.backend()?.submit(&spec)?
    } else if !a.command.is_empty() {
        ctx.backend()?.submit(&single_task_spec(a, job_props))?
    } else {
        return Err(Error::InvalidArgument(
            "nothing to submit: give the command to run (job submit hostname), /id:<jobID> of a job made with job new, or /jobfile:<file>".into(),
        )
        .into());
    };
    ctx.message(&format!("Job has been submitted. ID: {id}."))?;
    if a.wait {
        return super::view::wait(ctx, id, None, false);
    }
    Ok(exit::OK)
}

/// Form 3: a job of one task; the unit request applies to the job and the
/// task, so the task gets all of the job's resources.
fn single_task_spec(a: &SubmitArgs, job_props: Vec<RestProperty>) -> JobSpec {
    let mut task = a.task.props(&command_line(&a.command));
    if let Some((u, r)) = a.job.units.get() {
        task.extend(unit_props(u, r));
    }
    if let Some(b) = a.job.exclusive {
        task.push(RestProperty::new("IsExclusive", format_bool(b)));
    }
    JobSpec {
        properties: job_props,
        env: a.job.env(),
        custom_properties: a.job.custom(),
        tasks: vec![TaskSpec { properties: task, env: a.task.env() }],
        ..Default::default()
    }
    .from_here()
}

fn read_job_file(file: &str) -> anyhow::Result<JobSpec> {
    let xml = std::fs::read_to_string(file).map_err(|e| Error::InvalidArgument(format!("cannot read job file {file}: {e}")))?;
    Ok(crate::wire::jobxml::parse(&xml).map_err(|e| Error::InvalidArgument(format!("{file}: {e}")))?)
}

/// `job new`.
pub fn new(ctx: &Ctx, a: &NewArgs) -> anyhow::Result<u8> {
    let mut spec = match &a.jobfile {
        Some(file) => read_job_file(file)?,
        None => JobSpec::default(),
    }
    .from_here();
    spec.properties.extend(a.job.props().map_err(Error::InvalidArgument)?);
    spec.env.extend(a.job.env());
    spec.create_only = true;
    let id = ctx.backend()?.create(&spec)?;
    ctx.message(&format!("Created job, ID: {id}"))?;
    Ok(exit::OK)
}

/// `job add`.
pub fn add(ctx: &Ctx, a: &AddArgs) -> anyhow::Result<u8> {
    check_workdir(ctx, &a.task)?;
    let mut props = a.task.props(&command_line(&a.command));
    props.extend(a.units.props());
    if let Some(d) = &a.depend {
        props.push(RestProperty::new("DependsOn", parse_name_list(d).join(",")));
    }
    if let Some(b) = a.exclusive {
        props.push(RestProperty::new("IsExclusive", format_bool(b)));
    }
    if let Some(n) = &a.requirednodes {
        props.push(RestProperty::new("RequiredNodes", parse_name_list(n).join(",")));
    }
    if let Some(r) = a.runtime {
        props.push(RestProperty::new("RuntimeSeconds", r.0.map(|s| s.to_string()).unwrap_or_else(|| "Infinite".into())));
    }
    if let Some(c) = &a.validexitcodes {
        props.push(RestProperty::new("ValidExitCodes", c.to_string()));
    }
    let tid = ctx.backend()?.add_task(a.id, &props, &a.task.env())?;
    ctx.message(&format!("Task {}.{tid} added.", a.id))?;
    Ok(exit::OK)
}
