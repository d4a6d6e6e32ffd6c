//! Options several HPC Pack commands share, their value parsers, and how
//! they become job and task properties for the REST API.

use crate::cli::output::Format;
use crate::model::values::{
    format_bool, parse_bool, parse_env_list, parse_name_list, parse_runtime,
};
use crate::model::{ExitCodes, NodeGroupOp, Priority, Range, UnitType};
use crate::wire::RestProperty;
use clap::Args;

pub fn range(s: &str) -> Result<Range, String> {
    Range::parse(s)
}
pub fn priority(s: &str) -> Result<Priority, String> {
    Priority::parse(s)
}
pub fn boolean(s: &str) -> Result<bool, String> {
    parse_bool(s)
}
pub fn node_group_op(s: &str) -> Result<NodeGroupOp, String> {
    NodeGroupOp::parse(s)
}
pub fn exit_codes(s: &str) -> Result<ExitCodes, String> {
    ExitCodes::parse(s)
}
pub fn env_list(s: &str) -> Result<EnvList, String> {
    parse_env_list(s).map(EnvList)
}
pub fn runtime(s: &str) -> Result<Runtime, String> {
    parse_runtime(s).map(Runtime)
}
pub fn format(s: &str) -> Result<Format, String> {
    Format::parse(s)
}
pub fn view_format(s: &str) -> Result<Format, String> {
    Format::parse_view(s)
}

/// `name=value;…`
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvList(pub Vec<(String, String)>);

impl EnvList {
    pub fn props(&self) -> Vec<RestProperty> {
        self.0.iter().map(|(k, v)| RestProperty::new(k, v)).collect()
    }
}

/// `/runtime`: seconds, `None` for Infinite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runtime(pub Option<u64>);

impl Runtime {
    fn prop(self) -> RestProperty {
        RestProperty::new("RuntimeSeconds", self.0.map(|s| s.to_string()).unwrap_or_else(|| "Infinite".into()))
    }
}

/// `/scheduler` and `/format`, on every view and list.
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Head node to use: this machine's embedded head node (`local`, the
    /// default), or a head node's Unix socket (`unix:/path`). Default: the
    /// CCP_SCHEDULER environment variable, then the config file.
    #[arg(long, value_name = "name")]
    pub scheduler: Option<String>,
}

/// The unit type and count: `/numcores`, `/numsockets`, `/numnodes`, or
/// the legacy `/numprocessors` (= cores); at most one.
#[derive(Args, Debug, Clone, Default)]
#[group(multiple = false)]
pub struct Units {
    /// Number of cores, as <min>[-<max>] (* for no maximum).
    #[arg(long, value_name = "min[-max]", value_parser = range)]
    pub numcores: Option<Range>,
    /// Number of nodes, as <min>[-<max>].
    #[arg(long, value_name = "min[-max]", value_parser = range)]
    pub numnodes: Option<Range>,
    /// Number of sockets, as <min>[-<max>].
    #[arg(long, value_name = "min[-max]", value_parser = range)]
    pub numsockets: Option<Range>,
    /// Number of cores (the older name of /numcores).
    #[arg(long, value_name = "min[-max]", value_parser = range)]
    pub numprocessors: Option<Range>,
}

impl Units {
    pub fn get(&self) -> Option<(UnitType, Range)> {
        if let Some(r) = self.numcores.or(self.numprocessors) {
            return Some((UnitType::Core, r));
        }
        if let Some(r) = self.numnodes {
            return Some((UnitType::Node, r));
        }
        self.numsockets.map(|r| (UnitType::Socket, r))
    }

    pub fn props(&self) -> Vec<RestProperty> {
        match self.get() {
            Some((u, r)) => unit_props(u, r),
            None => Vec::new(),
        }
    }
}

/// `UnitType`, `Min<Unit>s` and `Max<Unit>s` for a request.
pub fn unit_props(u: UnitType, r: Range) -> Vec<RestProperty> {
    let p = u.plural();
    vec![
        RestProperty::new("UnitType", u.as_str()),
        RestProperty::new(format!("Min{p}"), r.min.to_string()),
        RestProperty::new(format!("Max{p}"), r.max.map(|m| m.to_string()).unwrap_or_else(|| "*".into())),
    ]
}

/// Job settings of `job new`, `job submit` and `job modify`.
#[derive(Args, Debug, Clone, Default)]
pub struct JobOpts {
    /// Nodes the job may run on, as <node1>[,<node2>…].
    #[arg(long, value_name = "node_list")]
    pub askednodes: Option<String>,
    /// Same as /askednodes.
    #[arg(long, value_name = "node_list")]
    pub requestednodes: Option<String>,
    /// Only nodes with this many cores, as <min>[-<max>].
    #[arg(long, value_name = "min[-max]", value_parser = range)]
    pub corespernode: Option<Range>,
    /// Custom job properties, as <name>=<value>[;<name>=<value>…].
    #[arg(long, value_name = "property_list", value_parser = env_list)]
    pub customproperties: Option<EnvList>,
    /// No other job may use the job's nodes.
    #[arg(long, value_name = "true|false", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = boolean)]
    pub exclusive: Option<bool>,
    /// The job fails as soon as one of its tasks fails.
    #[arg(long, value_name = "true|false", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = boolean)]
    pub failontaskfailure: Option<bool>,
    /// Do not start the job before this time (M/d/yyyy h:mm:ss AM|PM) or
    /// this many minutes from now.
    #[arg(long, value_name = "DateTime|minutes")]
    pub holduntil: Option<String>,
    /// Environment variables set in every task of the job, as
    /// <name>=<value>[;<name>=<value>…].
    #[arg(long, value_name = "variable_and_value_list", value_parser = env_list)]
    pub jobenv: Option<EnvList>,
    /// Name of the job (at most 80 characters).
    #[arg(long, value_name = "job_name")]
    pub jobname: Option<String>,
    /// The job template whose defaults and limits the job takes (default:
    /// Default; see job template list).
    #[arg(long, value_name = "job_template_name")]
    pub jobtemplate: Option<String>,
    /// Only nodes with this much memory in MB, as <min>[-<max>].
    #[arg(long, value_name = "min[-max]", value_parser = range)]
    pub memorypernode: Option<Range>,
    /// Only nodes of these groups, as <group1>[,<group2>…].
    #[arg(long, value_name = "node_group_list")]
    pub nodegroup: Option<String>,
    /// How several node groups combine: Intersect (in all), Union (in any) or
    /// Uniform (all nodes from one group).
    #[arg(long, value_name = "Intersect|Uniform|Union", value_parser = node_group_op)]
    pub nodegroupop: Option<NodeGroupOp>,
    #[command(flatten)]
    pub units: Units,
    /// Priority: Lowest, BelowNormal, Normal, AboveNormal, Highest, a number
    /// from 0 to 4000, or a name with an offset (Normal+100).
    #[arg(long, value_name = "priority", value_parser = priority)]
    pub priority: Option<Priority>,
    /// Progress of the job in percent.
    #[arg(long, value_name = "percent_progress")]
    pub progress: Option<u32>,
    /// Progress message of the job.
    #[arg(long, value_name = "message")]
    pub progressmsg: Option<String>,
    /// Project of the job.
    #[arg(long, value_name = "name")]
    pub projectname: Option<String>,
    /// Longest the job may run, as [[days:]hours:]minutes or Infinite.
    #[arg(long, value_name = "time|Infinite", value_parser = runtime)]
    pub runtime: Option<Runtime>,
    /// Exit codes that count as success for the job's tasks, as
    /// <int>|<start>..<end>[,…] (default 0).
    #[arg(long, value_name = "int|intStart..intEnd[,…]", value_parser = exit_codes)]
    pub validexitcodes: Option<ExitCodes>,
}

impl JobOpts {
    /// The job properties these options set.
    pub fn props(&self) -> Result<Vec<RestProperty>, String> {
        let mut p = Vec::new();
        let mut put = |n: &str, v: String| p.push(RestProperty::new(n, v));
        if let Some(v) = self.askednodes.as_ref().or(self.requestednodes.as_ref()) {
            put("RequestedNodes", parse_name_list(v).join(","));
        }
        if let Some(r) = self.corespernode {
            put("MinCoresPerNode", r.min.to_string());
            put("MaxCoresPerNode", r.max.map(|m| m.to_string()).unwrap_or_default());
        }
        if let Some(b) = self.exclusive {
            put("IsExclusive", format_bool(b).into());
        }
        if let Some(b) = self.failontaskfailure {
            put("FailOnTaskFailure", format_bool(b).into());
        }
        if let Some(h) = &self.holduntil {
            put("HoldUntil", hold_until(h)?);
        }
        if let Some(v) = &self.jobname {
            put("Name", v.clone());
        }
        if let Some(v) = &self.jobtemplate {
            put("JobTemplate", v.clone());
        }
        if let Some(r) = self.memorypernode {
            put("MinMemory", r.min.to_string());
            put("MaxMemory", r.max.map(|m| m.to_string()).unwrap_or_default());
        }
        if let Some(v) = &self.nodegroup {
            put("NodeGroups", parse_name_list(v).join(","));
        }
        if let Some(v) = self.nodegroupop {
            put("NodeGroupOp", v.as_str().into());
        }
        if let Some(v) = self.priority {
            put("ExpandedPriority", v.0.to_string());
        }
        if let Some(v) = self.progress {
            put("Progress", v.to_string());
        }
        if let Some(v) = &self.progressmsg {
            put("ProgressMessage", v.clone());
        }
        if let Some(v) = &self.projectname {
            put("Project", v.clone());
        }
        if let Some(v) = &self.validexitcodes {
            put("ValidExitCodes", v.to_string());
        }
        if let Some(r) = self.runtime {
            p.push(r.prop());
        }
        p.extend(self.units.props());
        Ok(p)
    }

    pub fn env(&self) -> Vec<RestProperty> {
        self.jobenv.as_ref().map(EnvList::props).unwrap_or_default()
    }

    pub fn custom(&self) -> Vec<RestProperty> {
        self.customproperties.as_ref().map(EnvList::props).unwrap_or_default()
    }
}

/// `/holduntil`: a time, or minutes from now.
fn hold_until(s: &str) -> Result<String, String> {
    if let Ok(m) = s.trim().parse::<i64>() {
        let t = crate::model::now_millis() + m * 60_000;
        return Ok(crate::wire::format_time(Some(t)));
    }
    crate::wire::parse_time(s)
        .map(|t| crate::wire::format_time(Some(t)))
        .ok_or_else(|| format!("'{s}' is not a time or a number of minutes; use M/d/yyyy h:mm:ss AM|PM or minutes"))
}

/// Task settings shared by `job submit` (for its one task) and `job add`.
#[derive(Args, Debug, Clone, Default)]
pub struct TaskIo {
    /// Name of the task.
    #[arg(long, value_name = "task_name")]
    pub name: Option<String>,
    /// Environment variables of the task, as <name>=<value>[;<name>=<value>…].
    #[arg(long, value_name = "variable_and_value_list", value_parser = env_list)]
    pub env: Option<EnvList>,
    /// File the task's standard output goes to (relative to /workdir);
    /// without it the head node keeps the output (task view shows it).
    #[arg(long, value_name = "file_name")]
    pub stdout: Option<String>,
    /// File the task's standard error goes to.
    #[arg(long, value_name = "file_name")]
    pub stderr: Option<String>,
    /// File the task reads as standard input.
    #[arg(long, value_name = "file_name")]
    pub stdin: Option<String>,
    /// Working directory of the task (default: the owner's home directory).
    #[arg(long, value_name = "folder")]
    pub workdir: Option<String>,
    /// The task may be run again after a failure of its node.
    #[arg(long, value_name = "true|false", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = boolean)]
    pub rerunnable: Option<bool>,
    /// Task type; this head node runs Basic tasks.
    #[arg(long = "type", value_name = "type_name")]
    pub task_type: Option<String>,
}

impl TaskIo {
    /// Task properties, with `command` as its command line.
    pub fn props(&self, command: &str) -> Vec<RestProperty> {
        let mut p = vec![RestProperty::new("CommandLine", command)];
        let mut put = |n: &str, v: &Option<String>| {
            if let Some(v) = v {
                p.push(RestProperty::new(n, v));
            }
        };
        put("Name", &self.name);
        put("StdOutFilePath", &self.stdout);
        put("StdErrFilePath", &self.stderr);
        put("StdInFilePath", &self.stdin);
        put("WorkDirectory", &self.workdir.as_ref().map(|w| absolute(w)));
        put("Type", &self.task_type);
        if let Some(b) = self.rerunnable {
            p.push(RestProperty::new("IsRerunnable", format_bool(b)));
        }
        p
    }

    pub fn env(&self) -> Vec<RestProperty> {
        self.env.as_ref().map(EnvList::props).unwrap_or_default()
    }
}

/// A working directory given relative to where the command was typed.
fn absolute(p: &str) -> String {
    let path = std::path::Path::new(p);
    if path.is_absolute() {
        return p.to_string();
    }
    std::env::current_dir().map(|d| d.join(path).display().to_string()).unwrap_or_else(|_| p.to_string())
}

/// Joins the command's words into the task's command line, as ssh does:
/// with single spaces, to be run by `/bin/sh -c` on the node. So
/// `job submit "make && ./run"` runs a shell command line, and quoting meant
/// for the node's shell is written inside the quotes of the local one.
/// A value of a clap value enum as it is typed (`list`, `create`).
pub fn value_name<T: clap::ValueEnum>(v: T) -> String {
    v.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default()
}

pub fn command_line(words: &[String]) -> String {
    words.join(" ")
}

/// The longest time accepted in seconds (about a hundred years): longer
/// is as good as no limit, and a Duration cannot hold every float.
pub const MAX_SECONDS: f64 = 3.2e9;

/// Parses a time in seconds: a number, 0 or more.
pub fn seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && (0.0..=MAX_SECONDS).contains(&t) => Ok(t),
        _ => Err(format!("'{s}' is not a time in seconds; give a number from 0 to {MAX_SECONDS:e}")),
    }
}

/// A node name as `node list` shows it: not empty, no `/`.
pub fn node_name(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("the node name is empty; give a node's name as node list shows it".into());
    }
    if t.contains('/') || t.chars().any(char::is_control) {
        return Err(format!("'{s}' is not a node name; give a node's name as node list shows it"));
    }
    Ok(t.to_string())
}

/// Parses a job id argument.
pub fn job_id(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| format!("'{s}' is not a job id; use the number job submit printed"))
}

/// A task id `<job>.<task>[.<instance>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskRef {
    pub job: u64,
    pub task: u32,
}

pub fn task_ref(s: &str) -> Result<TaskRef, String> {
    let bad = || format!("'{s}' is not a task id; use <jobID>.<taskID>, for example 7.1");
    let parts: Vec<&str> = s.trim().split('.').collect();
    match parts.as_slice() {
        [j, t] | [j, t, _] => {
            if let [_, _, i] = parts.as_slice() {
                if *i != "0" {
                    return Err(format!("'{s}': parametric subtasks are not supported by this head node; use <jobID>.<taskID>"));
                }
            }
            let job = j.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(bad)?;
            let task = t.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(bad)?;
            Ok(TaskRef { job, task })
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_join_like_ssh() {
        let words: Vec<String> = ["mpiexec", "-c", "1", "sleep 1 && echo x"].iter().map(|s| s.to_string()).collect();
        assert_eq!(command_line(&words), "mpiexec -c 1 sleep 1 && echo x");
    }

    #[test]
    fn task_refs() {
        assert_eq!(task_ref("7.1"), Ok(TaskRef { job: 7, task: 1 }));
        assert_eq!(task_ref("7.1.0"), Ok(TaskRef { job: 7, task: 1 }));
        assert!(task_ref("7").is_err());
        assert!(task_ref("7.x").is_err());
        assert!(task_ref("7.1.3").unwrap_err().contains("parametric"));
        assert!(job_id("0").is_err());
    }

    #[test]
    fn units_to_properties() {
        let u = Units { numnodes: Some(Range::exactly(4)), ..Default::default() };
        let p = u.props();
        assert_eq!(p[0], RestProperty::new("UnitType", "Node"));
        assert_eq!(p[1], RestProperty::new("MinNodes", "4"));
        assert_eq!(p[2], RestProperty::new("MaxNodes", "4"));
    }
}
