//! What goes over HTTP between the CLIs and a head node: HPC Pack 2016 Update
//! 3 / 2019 REST shapes (`{Name, Value}` properties under `/hpc`), the
//! property tables that map them to our records, and this project's
//! extensions under [`EXT`]. One module for client and server, so the two
//! cannot drift apart.

pub mod jobxml;
pub mod props;

use serde::{Deserialize, Serialize};

/// HPC Pack's REST API prefix.
pub const HPC: &str = "/hpc";
/// Prefix of everything HPC Pack's API lacks (full task output, cluster
/// environment, job wait, head node control). A real HPC Pack head node
/// answers 404 here, and the client falls back.
pub const EXT: &str = "/hpcpack/v1";

/// Header of a task output response: the size of the whole output in
/// bytes (the body may be a part of it).
pub const OUTPUT_SIZE_HEADER: &str = "x-hpcpack-output-size";

/// HPC Pack's `dateTimeFormat` for the times in properties.
pub const DATE_TIME_FORMAT: &str = "M/d/yyyy h:mm:ss tt";

/// `{ "Name": ..., "Value": ... }`: every value is a string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestProperty {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Value")]
    pub value: String,
}

impl RestProperty {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        RestProperty { name: name.into(), value: value.into() }
    }
}

/// `{ "Properties": [...] }`, one object of a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestObject {
    #[serde(rename = "Properties")]
    pub properties: Vec<RestProperty>,
}

/// A job with all it needs to be created and submitted in one step.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobSpec {
    #[serde(default)]
    pub properties: Vec<RestProperty>,
    #[serde(default)]
    pub env: Vec<RestProperty>,
    #[serde(default)]
    pub custom_properties: Vec<RestProperty>,
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
    /// A random id the client gives this submission (an extension): sent
    /// again with the same id, after the head node died before answering,
    /// it gets the job the first one made, never a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The submitter's `HOME`, `PATH`, `TMPDIR`, language and time zone
    /// (an extension; see [`crate::env::is_submit_variable`]): the base of
    /// every task's environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub submit_environment: Vec<RestProperty>,
    /// Creates the job with its tasks, Configuring, without submitting it
    /// (`job new`; an extension too).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_only: bool,
}

impl JobSpec {
    /// The spec with this process's [`crate::env::submit_environment`].
    pub fn from_here(mut self) -> JobSpec {
        self.submit_environment =
            crate::env::submit_environment().into_iter().map(|(k, v)| RestProperty::new(k, v)).collect();
        self
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskSpec {
    #[serde(default)]
    pub properties: Vec<RestProperty>,
    #[serde(default)]
    pub env: Vec<RestProperty>,
}

/// Looks up a property by name, ignoring case.
pub fn prop<'a>(props: &'a [RestProperty], name: &str) -> Option<&'a str> {
    props.iter().find(|p| p.name.eq_ignore_ascii_case(name)).map(|p| p.value.as_str())
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "Code")]
    pub code: String,
    #[serde(rename = "Message")]
    pub message: String,
}

/// HPC Pack's `Node` object, plus `CoresInUse` (an extension a real head node
/// does not send; the client then shows 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireNode {
    pub name: String,
    pub state: String,
    pub health: String,
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub memory_size: u64,
    pub cores: u32,
    pub sockets: u32,
    #[serde(default)]
    pub hpc_pack_version: String,
    #[serde(default)]
    pub on_azure: bool,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub cores_in_use: u32,
    #[serde(default)]
    pub reachable: Option<bool>,
    #[serde(default)]
    pub online_time: String,
    #[serde(default)]
    pub offline_time: String,
}

/// HPC Pack's `NodeGroup` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireNodeGroup {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub managed: bool,
}

/// A job template as the extension `/jobs/templates/{name}` serves it:
/// HPC Pack's XML, and what HPC Pack keeps beside it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireTemplate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Users and `%groups` who may submit with it; empty: every user.
    #[serde(default)]
    pub submitters: Vec<String>,
    /// The template in HPC Pack's job template XML.
    #[serde(default)]
    pub xml: String,
}

impl WireTemplate {
    pub fn of(t: &crate::model::JobTemplate) -> WireTemplate {
        WireTemplate { name: t.name.clone(), description: t.description.clone(), submitters: t.submitters.clone(), xml: t.to_xml() }
    }
}

/// Body of the extension `POST /jobs/templates/{name}/submitters`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubmittersChange {
    /// True: may submit; false: no longer.
    pub grant: bool,
    pub who: Vec<String>,
}

/// Body of `PATCH /cluster/nodeGroups/{name}/nodes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeGroupOperation {
    #[serde(default)]
    pub group_name: String,
    /// `add` or `remove`.
    pub operation: String,
    pub node_names: Vec<String>,
}

/// One core as `node listcores` shows it (extension endpoint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireCore {
    pub node_name: String,
    pub core_id: u32,
    pub state: String,
    #[serde(default)]
    pub job_id: Option<u64>,
    #[serde(default)]
    pub task_id: Option<String>,
}

/// Head node status (extension endpoint), for `hpcd status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireStatus {
    pub version: String,
    pub cluster_name: String,
    pub pid: u32,
    pub started: String,
    pub state_dir: String,
    pub nodes: u32,
    pub jobs: u64,
    /// The config files the head node read when it started.
    #[serde(default)]
    pub config_files: Vec<String>,
    /// The configuration's node group entries the head node started with.
    #[serde(default)]
    pub node_group_layout: Vec<String>,
}

/// Formats a time as HPC Pack does (`M/d/yyyy h:mm:ss tt`, local time); empty
/// for none.
pub fn format_time(t: Option<i64>) -> String {
    use chrono::{Local, TimeZone};
    match t.and_then(|ms| Local.timestamp_millis_opt(ms).single()) {
        Some(d) => d.format("%-m/%-d/%Y %-I:%M:%S %p").to_string(),
        None => String::new(),
    }
}

/// Parses HPC Pack's time format back (local time).
pub fn parse_time(s: &str) -> Option<i64> {
    use chrono::{Local, NaiveDateTime, TimeZone};
    let s = s.trim();
    let n = NaiveDateTime::parse_from_str(s, "%m/%d/%Y %I:%M:%S %p")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .ok()?;
    Local.from_local_datetime(&n).single().map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let t = parse_time("6/1/2017 10:00:05 AM").unwrap();
        assert_eq!(format_time(Some(t)), "6/1/2017 10:00:05 AM");
        assert_eq!(format_time(None), "");
        assert!(parse_time("soon").is_none());
    }

    #[test]
    fn property_json_shape() {
        let p = RestProperty::new("State", "Queued");
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"Name":"State","Value":"Queued"}"#);
    }
}
