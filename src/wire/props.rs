//! HPC Pack's job and task properties (the `ISchedulerJob` and
//! `ISchedulerTask` names the REST API uses), as tables: each row names a
//! property, how to read it from our record, and, if users may set it, how to
//! parse it in. The REST handlers, the XML job file reader and the client all
//! go through these tables.

use super::{RestProperty, format_time, parse_time};
use crate::model::values::{format_bool, parse_bool, parse_name_list, parse_runtime, valid_env_name};
use crate::model::{ExitCodes, Job, NodeGroupOp, Priority, Range, Task, UnitType, alloc_names};

/// Task counts of a job, for its counter properties.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub total: u32,
    pub configuring: u32,
    pub queued: u32,
    pub running: u32,
    pub finished: u32,
    pub failed: u32,
    pub canceled: u32,
}

type Setter<T> = fn(&mut T, &str) -> Result<(), String>;

/// One property: name, reader, and writer if users may set it.
pub struct PropDef<G, T> {
    pub name: &'static str,
    pub get: G,
    pub set: Option<Setter<T>>,
}

/// Reads a job property; the counts are the job's tasks by state.
pub type JobGetter = fn(&Job, &TaskCounts) -> String;
/// Reads a task property; the output is the captured output when asked for.
pub type TaskGetter = fn(&Task, Option<&str>) -> String;
pub type JobProp = PropDef<JobGetter, Job>;
pub type TaskProp = PropDef<TaskGetter, Task>;

/// How much of a task's output the `Output` property carries, as HPC Pack's
/// database does; the full output is an extension endpoint.
pub const OUTPUT_PROPERTY_LIMIT: usize = 4000;

fn opt_time(t: Option<i64>) -> String {
    format_time(t)
}

fn range_part(unit: UnitType, want: UnitType, r: Option<Range>, max: bool) -> String {
    match r {
        Some(r) if unit == want => {
            if max {
                r.max.map(|m| m.to_string()).unwrap_or_else(|| "*".into())
            } else {
                r.min.to_string()
            }
        }
        _ => String::new(),
    }
}

fn parse_count(v: &str) -> Result<Option<u32>, String> {
    let t = v.trim();
    if t == "*" || t == "0" {
        return Ok(None);
    }
    t.parse::<u32>()
        .map(Some)
        .map_err(|_| format!("'{v}' is not a count; use a whole number, or * for no maximum"))
}

/// Sets the minimum of a unit count, switching the unit.
fn set_min(unit: &mut UnitType, count: &mut Option<Range>, want: UnitType, v: &str) -> Result<(), String> {
    let min = parse_count(v)?.ok_or_else(|| format!("'{v}': a minimum must be at least 1"))?;
    let max = match (*unit == want, *count) {
        (true, Some(r)) => r.max,
        _ => Some(min),
    };
    *unit = want;
    *count = Some(Range { min, max });
    Ok(())
}

fn set_max(unit: &mut UnitType, count: &mut Option<Range>, want: UnitType, v: &str) -> Result<(), String> {
    let max = parse_count(v)?;
    let min = match (*unit == want, *count) {
        (true, Some(r)) => r.min,
        _ => 1,
    };
    *unit = want;
    *count = Some(Range { min, max });
    Ok(())
}

fn range_opt(r: Option<Range>, max: bool) -> String {
    match r {
        None => String::new(),
        Some(r) if max => r.max.map(|m| m.to_string()).unwrap_or_default(),
        Some(r) => r.min.to_string(),
    }
}

fn set_range_min(r: &mut Option<Range>, v: &str) -> Result<(), String> {
    let min = parse_count(v)?.unwrap_or(0);
    let max = r.and_then(|r| r.max);
    *r = if min == 0 && max.is_none() { None } else { Some(Range { min, max }) };
    Ok(())
}

fn set_range_max(r: &mut Option<Range>, v: &str) -> Result<(), String> {
    let max = parse_count(v)?;
    let min = r.map(|r| r.min).unwrap_or(0);
    *r = if min == 0 && max.is_none() { None } else { Some(Range { min, max }) };
    Ok(())
}

fn runtime_get(r: Option<u64>) -> String {
    r.map(|s| s.to_string()).unwrap_or_default()
}

/// `RuntimeSeconds`: seconds, or empty/`Infinite` for none.
fn runtime_set(v: &str) -> Result<Option<u64>, String> {
    let t = v.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("infinite") || t == "0" {
        return Ok(None);
    }
    t.parse::<u64>()
        .map(Some)
        .or_else(|_| parse_runtime(t))
        .map_err(|_| format!("'{v}' is not a run time in seconds"))
}

fn exit_codes_get(c: &Option<ExitCodes>) -> String {
    c.clone().unwrap_or_default().to_string()
}

macro_rules! ro {
    ($name:expr, $get:expr) => {
        PropDef { name: $name, get: $get, set: None }
    };
}
macro_rules! rw {
    ($name:expr, $get:expr, $set:expr) => {
        PropDef { name: $name, get: $get, set: Some($set) }
    };
}

/// Every job property this head node knows.
pub fn job_props() -> &'static [JobProp] {
    &JOB_PROPS
}

static JOB_PROPS: [JobProp; 49] = [
    ro!("Id", |j, _| j.id.to_string()),
    rw!("Name", |j, _| j.name.clone(), |j, v| {
        if v.chars().count() > 80 {
            return Err("a job name has at most 80 characters".into());
        }
        j.name = v.to_string();
        Ok(())
    }),
    ro!("Owner", |j, _| j.owner.clone()),
    ro!("UserName", |j, _| j.owner.clone()),
    ro!("State", |j, _| j.state.to_string()),
    ro!("PreviousState", |j, _| j.previous_state.to_string()),
    rw!("Priority", |j, _| j.priority.display(), |j, v| {
        j.priority = Priority::parse(v)?;
        Ok(())
    }),
    rw!("ExpandedPriority", |j, _| j.priority.0.to_string(), |j, v| {
        j.priority = Priority::parse(v)?;
        Ok(())
    }),
    rw!("Project", |j, _| j.project.clone(), |j, v| {
        j.project = v.to_string();
        Ok(())
    }),
    // Which templates exist, and who may use them, the head node checks.
    rw!("JobTemplate", |j, _| j.template.clone(), |j, v| {
        let v = v.trim();
        j.template = if v.is_empty() { crate::model::DEFAULT_TEMPLATE.into() } else { v.to_string() };
        Ok(())
    }),
    rw!("UnitType", |j, _| j.unit.as_str().into(), |j, v| {
        let u = UnitType::parse(v)?;
        if u != j.unit {
            j.unit = u;
            j.count = None;
        }
        Ok(())
    }),
    rw!("MinCores", |j, _| range_part(j.unit, UnitType::Core, j.count, false), |j, v| set_min(&mut j.unit, &mut j.count, UnitType::Core, v)),
    rw!("MaxCores", |j, _| range_part(j.unit, UnitType::Core, j.count, true), |j, v| set_max(&mut j.unit, &mut j.count, UnitType::Core, v)),
    rw!("MinSockets", |j, _| range_part(j.unit, UnitType::Socket, j.count, false), |j, v| set_min(&mut j.unit, &mut j.count, UnitType::Socket, v)),
    rw!("MaxSockets", |j, _| range_part(j.unit, UnitType::Socket, j.count, true), |j, v| set_max(&mut j.unit, &mut j.count, UnitType::Socket, v)),
    rw!("MinNodes", |j, _| range_part(j.unit, UnitType::Node, j.count, false), |j, v| set_min(&mut j.unit, &mut j.count, UnitType::Node, v)),
    rw!("MaxNodes", |j, _| range_part(j.unit, UnitType::Node, j.count, true), |j, v| set_max(&mut j.unit, &mut j.count, UnitType::Node, v)),
    rw!("AutoCalculateMax", |j, _| format_bool(j.count.is_none()).into(), |j, v| {
        if parse_bool(v)? {
            j.count = None;
        }
        Ok(())
    }),
    rw!("AutoCalculateMin", |j, _| format_bool(j.count.is_none()).into(), |j, v| {
        if parse_bool(v)? {
            j.count = None;
        }
        Ok(())
    }),
    rw!("NodeGroups", |j, _| j.node_groups.join(","), |j, v| {
        j.node_groups = parse_name_list(v);
        Ok(())
    }),
    rw!("NodeGroupOp", |j, _| j.node_group_op.as_str().into(), |j, v| {
        j.node_group_op = NodeGroupOp::parse(v)?;
        Ok(())
    }),
    rw!("RequestedNodes", |j, _| j.requested_nodes.join(","), |j, v| {
        j.requested_nodes = parse_name_list(v);
        Ok(())
    }),
    rw!("IsExclusive", |j, _| format_bool(j.exclusive).into(), |j, v| {
        j.exclusive = parse_bool(v)?;
        Ok(())
    }),
    rw!("MinCoresPerNode", |j, _| range_opt(j.cores_per_node, false), |j, v| set_range_min(&mut j.cores_per_node, v)),
    rw!("MaxCoresPerNode", |j, _| range_opt(j.cores_per_node, true), |j, v| set_range_max(&mut j.cores_per_node, v)),
    rw!("MinMemory", |j, _| range_opt(j.memory_per_node, false), |j, v| set_range_min(&mut j.memory_per_node, v)),
    rw!("MaxMemory", |j, _| range_opt(j.memory_per_node, true), |j, v| set_range_max(&mut j.memory_per_node, v)),
    rw!("RuntimeSeconds", |j, _| runtime_get(j.runtime), |j, v| {
        j.runtime = runtime_set(v)?;
        Ok(())
    }),
    rw!("FailOnTaskFailure", |j, _| format_bool(j.fail_on_task_failure).into(), |j, v| {
        j.fail_on_task_failure = parse_bool(v)?;
        Ok(())
    }),
    rw!("ValidExitCodes", |j, _| exit_codes_get(&j.valid_exit_codes), |j, v| {
        j.valid_exit_codes = Some(ExitCodes::parse(v)?);
        Ok(())
    }),
    rw!("HoldUntil", |j, _| opt_time(j.hold_until), |j, v| {
        j.hold_until = if v.trim().is_empty() {
            None
        } else {
            Some(parse_time(v).ok_or_else(|| format!("'{v}' is not a time; use M/d/yyyy h:mm:ss AM|PM"))?)
        };
        Ok(())
    }),
    rw!("Progress", |j, _| j.progress.to_string(), |j, v| {
        j.progress = v.trim().parse::<u32>().ok().filter(|p| *p <= 100).ok_or_else(|| format!("'{v}' is not a percentage from 0 to 100"))?;
        Ok(())
    }),
    rw!("ProgressMessage", |j, _| j.progress_message.clone(), |j, v| {
        j.progress_message = v.to_string();
        Ok(())
    }),
    ro!("CreateTime", |j, _| opt_time(Some(j.create_time))),
    ro!("SubmitTime", |j, _| opt_time(j.submit_time)),
    ro!("StartTime", |j, _| opt_time(j.start_time)),
    ro!("EndTime", |j, _| opt_time(j.end_time)),
    ro!("ChangeTime", |j, _| opt_time(Some(j.change_time))),
    ro!("ErrorMessage", |j, _| j.error_message.clone()),
    ro!("PendingReason", |j, _| j.pending_reason.clone()),
    ro!("AllocatedNodes", |j, _| j.allocated_node_names()),
    ro!("RequeueCount", |j, _| j.requeue_count.to_string()),
    ro!("TotalTaskCount", |_, c| c.total.to_string()),
    ro!("ConfiguringTaskCount", |_, c| c.configuring.to_string()),
    ro!("QueuedTaskCount", |_, c| c.queued.to_string()),
    ro!("RunningTaskCount", |_, c| c.running.to_string()),
    ro!("FinishedTaskCount", |_, c| c.finished.to_string()),
    ro!("FailedTaskCount", |_, c| c.failed.to_string()),
    ro!("CanceledTaskCount", |_, c| c.canceled.to_string()),
];

/// Every task property this head node knows.
pub fn task_props() -> &'static [TaskProp] {
    &TASK_PROPS
}

static TASK_PROPS: [TaskProp; 35] = [
    ro!("TaskId", |t, _| t.display_id()),
    ro!("JobTaskId", |t, _| t.id.to_string()),
    ro!("InstanceId", |_, _| "0".into()),
    ro!("ParentJobId", |t, _| t.job_id.to_string()),
    rw!("Name", |t, _| t.name.clone(), |t, v| {
        t.name = v.to_string();
        Ok(())
    }),
    ro!("State", |t, _| t.state.to_string()),
    ro!("PreviousState", |t, _| t.previous_state.to_string()),
    rw!("CommandLine", |t, _| t.command_line.clone(), |t, v| {
        if v.trim().is_empty() {
            return Err("a task needs a command line".into());
        }
        t.command_line = v.to_string();
        Ok(())
    }),
    rw!("WorkDirectory", |t, _| t.work_dir.clone(), |t, v| {
        t.work_dir = v.to_string();
        Ok(())
    }),
    rw!("StdInFilePath", |t, _| t.stdin.clone(), |t, v| {
        t.stdin = v.to_string();
        Ok(())
    }),
    rw!("StdOutFilePath", |t, _| t.stdout.clone(), |t, v| {
        t.stdout = v.to_string();
        Ok(())
    }),
    rw!("StdErrFilePath", |t, _| t.stderr.clone(), |t, v| {
        t.stderr = v.to_string();
        Ok(())
    }),
    rw!("UnitType", |t, _| t.unit.as_str().into(), |t, v| {
        let u = UnitType::parse(v)?;
        if u != t.unit {
            t.unit = u;
            t.count = None;
        }
        Ok(())
    }),
    rw!("MinCores", |t, _| range_part(t.unit, UnitType::Core, Some(t.count.unwrap_or(Range::ONE)), false), |t, v| set_min(&mut t.unit, &mut t.count, UnitType::Core, v)),
    rw!("MaxCores", |t, _| range_part(t.unit, UnitType::Core, Some(t.count.unwrap_or(Range::ONE)), true), |t, v| set_max(&mut t.unit, &mut t.count, UnitType::Core, v)),
    rw!("MinSockets", |t, _| range_part(t.unit, UnitType::Socket, Some(t.count.unwrap_or(Range::ONE)), false), |t, v| set_min(&mut t.unit, &mut t.count, UnitType::Socket, v)),
    rw!("MaxSockets", |t, _| range_part(t.unit, UnitType::Socket, Some(t.count.unwrap_or(Range::ONE)), true), |t, v| set_max(&mut t.unit, &mut t.count, UnitType::Socket, v)),
    rw!("MinNodes", |t, _| range_part(t.unit, UnitType::Node, Some(t.count.unwrap_or(Range::ONE)), false), |t, v| set_min(&mut t.unit, &mut t.count, UnitType::Node, v)),
    rw!("MaxNodes", |t, _| range_part(t.unit, UnitType::Node, Some(t.count.unwrap_or(Range::ONE)), true), |t, v| set_max(&mut t.unit, &mut t.count, UnitType::Node, v)),
    rw!("RequiredNodes", |t, _| t.required_nodes.join(","), |t, v| {
        t.required_nodes = parse_name_list(v);
        Ok(())
    }),
    rw!("DependsOn", |t, _| t.depends_on.join(","), |t, v| {
        t.depends_on = v.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        Ok(())
    }),
    rw!("IsRerunnable", |t, _| format_bool(t.rerunnable).into(), |t, v| {
        t.rerunnable = parse_bool(v)?;
        Ok(())
    }),
    rw!("IsExclusive", |t, _| format_bool(t.exclusive).into(), |t, v| {
        t.exclusive = parse_bool(v)?;
        Ok(())
    }),
    rw!("RuntimeSeconds", |t, _| runtime_get(t.runtime), |t, v| {
        t.runtime = runtime_set(v)?;
        Ok(())
    }),
    rw!("ValidExitCodes", |t, _| exit_codes_get(&t.valid_exit_codes), |t, v| {
        t.valid_exit_codes = Some(ExitCodes::parse(v)?);
        Ok(())
    }),
    rw!("Type", |_, _| "Basic".into(), |_, v| {
        if v.eq_ignore_ascii_case("basic") {
            Ok(())
        } else {
            Err(format!("task type '{v}' is not supported by this head node; it runs Basic tasks"))
        }
    }),
    ro!("ExitCode", |t, _| t.exit_code.map(|c| c.to_string()).unwrap_or_default()),
    ro!("ErrorMessage", |t, _| t.error_message.clone()),
    ro!("Output", |_, o| o.map(|o| truncate(o, OUTPUT_PROPERTY_LIMIT).to_string()).unwrap_or_default()),
    ro!("AllocatedNodes", |t, _| alloc_names(&t.allocation)),
    ro!("CreateTime", |t, _| opt_time(Some(t.create_time))),
    ro!("SubmitTime", |t, _| opt_time(t.submit_time)),
    ro!("StartTime", |t, _| opt_time(t.start_time)),
    ro!("EndTime", |t, _| opt_time(t.end_time)),
    ro!("RequeueCount", |t, _| t.requeue_count.to_string()),
];

/// The first `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A NUL byte cannot be passed to a program (in a command line, an
/// environment or a path): refused when given, rather than failing the
/// task when it starts.
fn no_nul(name: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!("the value of {name} contains a NUL byte, which no program can be given; remove it"));
    }
    Ok(())
}

/// Applies settable properties to a record; unknown or read-only names and
/// bad values are errors naming the property.
pub fn apply<G, T>(table: &[PropDef<G, T>], target: &mut T, props: &[RestProperty]) -> Result<(), String> {
    for p in props {
        let def = table
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(&p.name))
            .ok_or_else(|| format!("unknown property '{}'", p.name))?;
        no_nul(def.name, &p.value)?;
        let set = def.set.ok_or_else(|| format!("property '{}' is read-only", def.name))?;
        set(target, &p.value).map_err(|e| format!("property {}: {e}", def.name))?;
    }
    Ok(())
}

/// Reads the named properties (all when `names` is empty). Unknown names are
/// errors, as HPC Pack answers them.
pub fn read<G: Copy, T>(
    table: &[PropDef<G, T>],
    names: &[String],
    get: impl Fn(G) -> String,
) -> Result<Vec<RestProperty>, String> {
    if names.is_empty() {
        return Ok(table.iter().map(|d| RestProperty::new(d.name, get(d.get))).collect());
    }
    names
        .iter()
        .map(|n| {
            table
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(n))
                .map(|d| RestProperty::new(d.name, get(d.get)))
                .ok_or_else(|| format!("unknown property '{n}'"))
        })
        .collect()
}

/// Reads job properties (all when `names` is empty).
pub fn read_job(job: &Job, counts: &TaskCounts, names: &[String]) -> Result<Vec<RestProperty>, String> {
    read(job_props(), names, |g| g(job, counts))
}

/// Reads task properties (all when `names` is empty).
pub fn read_task(task: &Task, output: Option<&str>, names: &[String]) -> Result<Vec<RestProperty>, String> {
    read(task_props(), names, |g| g(task, output))
}

/// REST properties as environment variables, checking the names.
pub fn props_env(props: &[RestProperty]) -> Result<Vec<(String, String)>, String> {
    props
        .iter()
        .map(|p| {
            let name = p.name.trim();
            no_nul(name, &p.value)?;
            if !valid_env_name(name) {
                return Err(format!(
                    "'{name}' is not an environment variable name (letters, digits and _, not starting with a digit)"
                ));
            }
            Ok((name.to_string(), p.value.clone()))
        })
        .collect()
}

/// The most bytes of a submitter's environment a job keeps.
pub const SUBMIT_ENVIRONMENT_MAX: usize = 64 * 1024;

/// `SubmitEnvironment`: only the variables a task takes from its submitter
/// ([`crate::env::is_submit_variable`]), within [`SUBMIT_ENVIRONMENT_MAX`].
pub fn submit_environment(props: &[RestProperty]) -> Result<Vec<(String, String)>, String> {
    let vars = props_env(props)?;
    if let Some((k, _)) = vars.iter().find(|(k, _)| !crate::env::is_submit_variable(k)) {
        return Err(format!(
            "SubmitEnvironment may hold HOME, PATH, TMPDIR, LANG, LANGUAGE, LC_* and TZ, not {k}; give other variables with /env or /jobenv"
        ));
    }
    if vars.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() > SUBMIT_ENVIRONMENT_MAX {
        return Err(format!("SubmitEnvironment is over {} KiB", SUBMIT_ENVIRONMENT_MAX / 1024));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_properties_apply_and_read() {
        let mut j = Job::new(3, "alice", 1000, 0);
        apply(
            job_props(),
            &mut j,
            &[
                RestProperty::new("name", "demo"),
                RestProperty::new("MinNodes", "2"),
                RestProperty::new("MaxNodes", "4"),
                RestProperty::new("Priority", "AboveNormal"),
                RestProperty::new("NodeGroups", "a,b"),
            ],
        )
        .unwrap();
        assert_eq!(j.unit, UnitType::Node);
        assert_eq!(j.count, Some(Range { min: 2, max: Some(4) }));
        let got = read_job(&j, &TaskCounts::default(), &["State".into(), "MinNodes".into(), "Priority".into()]).unwrap();
        assert_eq!(got[0].value, "Configuring");
        assert_eq!(got[1].value, "2");
        assert_eq!(got[2].value, "AboveNormal");
        assert!(apply(job_props(), &mut j, &[RestProperty::new("State", "Running")]).unwrap_err().contains("read-only"));
        assert!(apply(job_props(), &mut j, &[RestProperty::new("Bogus", "1")]).unwrap_err().contains("unknown property"));
        assert!(apply(job_props(), &mut j, &[RestProperty::new("Priority", "Urgent")]).unwrap_err().contains("Priority"));
    }

    #[test]
    fn output_is_capped() {
        let t = Task::new(1, 1, 0);
        let long = "x".repeat(5000);
        let got = read_task(&t, Some(&long), &["Output".into()]).unwrap();
        assert_eq!(got[0].value.len(), OUTPUT_PROPERTY_LIMIT);
    }
}

