//! The names `job view`, `task view` and `node view` show for properties.
//!
//! The `Property : Value` lists use HPC Pack's display names (`Submit
//! Time`, `Number of Tasks`, `Memory Size`, `Node Groups`: the keys of
//! spec §2.5 and §4.3), with `/detailed` as well as without; the REST names
//! (`SubmitTime`, `MemorySize`, `Groups`) are the keys of the JSON form only.
//! Properties the spec does not name are spelled the same way, one word per
//! part of the REST name. A property HPC Pack does not have is marked
//! [`EXTENSION`], as the help texts and man pages mark ours.

use crate::cli::output::Record;
use crate::wire::RestProperty;

/// Appended to the display name of a property that is this project's own.
pub const EXTENSION: &str = " [extension]";

/// Job properties (REST name, display name), in the order the head node
/// sends them.
pub const JOB: &[(&str, &str)] = &[
    ("Id", "Id"),
    ("Name", "Name"),
    ("Owner", "Owner"),
    ("UserName", "User Name"),
    ("State", "State"),
    ("PreviousState", "Previous State"),
    ("Priority", "Priority"),
    ("ExpandedPriority", "Expanded Priority"),
    ("Project", "Project"),
    ("JobTemplate", "Template"),
    ("UnitType", "Unit Type"),
    ("MinCores", "Min Cores"),
    ("MaxCores", "Max Cores"),
    ("MinSockets", "Min Sockets"),
    ("MaxSockets", "Max Sockets"),
    ("MinNodes", "Min Nodes"),
    ("MaxNodes", "Max Nodes"),
    ("AutoCalculateMax", "Auto Calculate Max"),
    ("AutoCalculateMin", "Auto Calculate Min"),
    ("NodeGroups", "Node Groups"),
    ("NodeGroupOp", "Node Group Operation"),
    ("RequestedNodes", "Requested Nodes"),
    ("IsExclusive", "Exclusive"),
    ("MinCoresPerNode", "Min Cores Per Node"),
    ("MaxCoresPerNode", "Max Cores Per Node"),
    ("MinMemory", "Min Memory"),
    ("MaxMemory", "Max Memory"),
    ("RuntimeSeconds", "Runtime Seconds"),
    ("FailOnTaskFailure", "Fail On Task Failure"),
    ("ValidExitCodes", "Valid Exit Codes"),
    ("HoldUntil", "Hold Until"),
    ("Progress", "Progress"),
    ("ProgressMessage", "Progress Message"),
    ("CreateTime", "Create Time"),
    ("SubmitTime", "Submit Time"),
    ("StartTime", "Start Time"),
    ("EndTime", "End Time"),
    ("ChangeTime", "Change Time"),
    ("ErrorMessage", "Error Message"),
    ("PendingReason", "Pending Reason"),
    ("AllocatedNodes", "Allocated Nodes"),
    ("RequeueCount", "Requeue Count"),
    ("TotalTaskCount", "Number of Tasks"),
    ("ConfiguringTaskCount", "Configuring Tasks"),
    ("QueuedTaskCount", "Queued Tasks"),
    ("RunningTaskCount", "Running Tasks"),
    ("FinishedTaskCount", "Finished Tasks"),
    ("FailedTaskCount", "Failed Tasks"),
    ("CanceledTaskCount", "Canceled Tasks"),
];

/// Task properties (REST name, display name).
pub const TASK: &[(&str, &str)] = &[
    ("TaskId", "Id"),
    ("JobTaskId", "Job Task Id"),
    ("InstanceId", "Instance Id"),
    ("ParentJobId", "Parent Job Id"),
    ("Name", "Name"),
    ("State", "State"),
    ("PreviousState", "Previous State"),
    ("CommandLine", "Command Line"),
    ("WorkDirectory", "Working Directory"),
    ("StdInFilePath", "Standard Input"),
    ("StdOutFilePath", "Standard Output"),
    ("StdErrFilePath", "Standard Error"),
    ("UnitType", "Unit Type"),
    ("MinCores", "Min Cores"),
    ("MaxCores", "Max Cores"),
    ("MinSockets", "Min Sockets"),
    ("MaxSockets", "Max Sockets"),
    ("MinNodes", "Min Nodes"),
    ("MaxNodes", "Max Nodes"),
    ("RequiredNodes", "Required Nodes"),
    ("DependsOn", "Depends On"),
    ("IsRerunnable", "Rerunnable"),
    ("IsExclusive", "Exclusive"),
    ("RuntimeSeconds", "Runtime Seconds"),
    ("ValidExitCodes", "Valid Exit Codes"),
    ("Type", "Type"),
    ("ExitCode", "Exit Code"),
    ("ErrorMessage", "Error Message"),
    ("AllocatedNodes", "Allocated Nodes"),
    ("CreateTime", "Create Time"),
    ("SubmitTime", "Submit Time"),
    ("StartTime", "Start Time"),
    ("EndTime", "End Time"),
    ("RequeueCount", "Requeue Count"),
    ("Output", "Output"),
];

/// Node properties (REST name, display name). `CoresInUse` is ours (a
/// real head node does not send it).
pub const NODE: &[(&str, &str)] = &[
    ("Name", "Node Name"),
    ("State", "State"),
    ("Health", "Health"),
    ("Reachable", "Reachable"),
    ("Cores", "Number of Cores"),
    ("Sockets", "Number of Sockets"),
    ("CoresInUse", "Cores In Use [extension]"),
    ("MemorySize", "Memory Size"),
    ("Groups", "Node Groups"),
    ("Location", "Location"),
    ("OnlineTime", "Online Time"),
    ("OfflineTime", "Offline Time"),
    ("Template", "Node Template"),
    ("Roles", "Roles"),
    ("HpcPackVersion", "HPC Pack Version"),
    ("OnAzure", "On Azure"),
];

/// The display name of the property `key` in `names`; a property the
/// table does not know (one a real head node sends) in words: `JobType`
/// becomes `Job Type`.
pub fn display(names: &[(&str, &str)], key: &str) -> String {
    if let Some((_, label)) = names.iter().find(|(k, _)| *k == key) {
        return label.to_string();
    }
    let mut out = String::with_capacity(key.len() + 4);
    let chars: Vec<char> = key.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        // A new word starts at a capital after a small letter, or at the
        // last capital of a run followed by a small letter (`HPCVersion`).
        let starts = i > 0
            && c.is_ascii_uppercase()
            && (chars[i - 1].is_ascii_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()) && chars[i - 1].is_ascii_uppercase());
        if starts {
            out.push(' ');
        }
        out.push(*c);
    }
    out
}

/// Every property in `p`, in the order given, under its display name.
pub fn detailed(names: &[(&str, &str)], p: &[RestProperty]) -> Record {
    let mut r = Record::new();
    for x in p {
        r.push(&display(names, &x.name), &x.name, x.value.clone());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_properties_in_words() {
        assert_eq!(display(JOB, "JobType"), "Job Type");
        assert_eq!(display(JOB, "HPCVersion"), "HPC Version");
        assert_eq!(display(JOB, "Id"), "Id");
        assert_eq!(display(JOB, "TotalTaskCount"), "Number of Tasks");
    }

    #[test]
    fn every_property_of_this_head_node_has_a_display_name() {
        for p in crate::wire::props::job_props() {
            assert!(JOB.iter().any(|(k, _)| *k == p.name), "job property {} has no display name", p.name);
        }
        for p in crate::wire::props::task_props() {
            assert!(TASK.iter().any(|(k, _)| *k == p.name), "task property {} has no display name", p.name);
        }
        let node = serde_json::to_value(crate::wire::WireNode {
            name: String::new(),
            state: String::new(),
            health: String::new(),
            template: String::new(),
            location: String::new(),
            memory_size: 0,
            cores: 0,
            sockets: 0,
            hpc_pack_version: String::new(),
            on_azure: false,
            groups: Vec::new(),
            roles: Vec::new(),
            cores_in_use: 0,
            reachable: None,
            online_time: String::new(),
            offline_time: String::new(),
        })
        .unwrap();
        for k in node.as_object().unwrap().keys() {
            assert!(NODE.iter().any(|(n, _)| n == k), "node property {k} has no display name");
        }
    }

    #[test]
    fn both_views_use_one_name() {
        for (label, key) in crate::cli::job::view::JOB_VIEW.iter().filter(|(_, k)| !k.is_empty()) {
            assert_eq!(display(JOB, key), *label, "job view shows {key} as {label}");
        }
        for (label, key) in crate::cli::job::view::TASK_VIEW {
            assert_eq!(display(TASK, key), *label, "task view shows {key} as {label}");
        }
    }
}
