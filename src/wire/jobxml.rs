//! HPC Pack's job XML (`job submit /jobfile:`, `job new /jobfile:`, REST
//! `POST /jobs/jobFile`), read into a [`JobSpec`].
//!
//! Attributes map to the job and task properties of the same names. Job
//! files written by HPC Pack carry read-only attributes too (Id, State,
//! SubmitTime…); those are skipped, as is any attribute this head node does
//! not know, so files from real clusters load.

use super::props::{job_props, task_props};
use super::{JobSpec, RestProperty, TaskSpec};

const UNIT_PROPS: [&str; 6] = ["MinCores", "MaxCores", "MinSockets", "MaxSockets", "MinNodes", "MaxNodes"];

/// Parses a job file.
pub fn parse(xml: &str) -> Result<JobSpec, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("the job file is not valid XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "Job" {
        return Err(format!("the job file's root element is <{}>; expected <Job>", root.tag_name().name()));
    }
    let settable_job = |n: &str| job_props().iter().any(|d| d.name.eq_ignore_ascii_case(n) && d.set.is_some());
    let settable_task = |n: &str| task_props().iter().any(|d| d.name.eq_ignore_ascii_case(n) && d.set.is_some());
    let mut spec = JobSpec { properties: attributes(&root, settable_job), ..Default::default() };
    for child in root.children().filter(|c| c.is_element()) {
        match child.tag_name().name() {
            "EnvironmentVariables" => spec.env = variables(&child)?,
            "Tasks" => {
                for t in child.children().filter(|c| c.is_element() && c.tag_name().name() == "Task") {
                    let mut ts = TaskSpec { properties: attributes(&t, settable_task), env: vec![] };
                    for c in t.children().filter(|c| c.is_element() && c.tag_name().name() == "EnvironmentVariables") {
                        ts.env = variables(&c)?;
                    }
                    spec.tasks.push(ts);
                }
            }
            _ => {}
        }
    }
    Ok(spec)
}

/// Settable attributes, with the unit counts of the declared unit type last
/// (so `UnitType` is applied first) and the other units' counts dropped.
fn attributes(node: &roxmltree::Node, settable: impl Fn(&str) -> bool) -> Vec<RestProperty> {
    let unit = node.attribute("UnitType").unwrap_or("Core");
    let unit_suffix = match unit.to_ascii_lowercase().as_str() {
        "node" => "Nodes",
        "socket" => "Sockets",
        _ => "Cores",
    };
    let mut props = Vec::new();
    let mut counts = Vec::new();
    for a in node.attributes() {
        let name = a.name();
        if UNIT_PROPS.contains(&name) {
            if name.ends_with(unit_suffix) {
                counts.push(RestProperty::new(name, a.value()));
            }
        } else if settable(name) {
            props.push(RestProperty::new(name, a.value()));
        }
    }
    // Min before max, so a maximum below the default minimum is not refused.
    counts.sort_by_key(|p| !p.name.starts_with("Min"));
    props.extend(counts);
    props
}

fn variables(node: &roxmltree::Node) -> Result<Vec<RestProperty>, String> {
    let mut out = Vec::new();
    for v in node.children().filter(|c| c.is_element() && c.tag_name().name() == "Variable") {
        let text = |tag: &str| {
            v.children()
                .find(|c| c.is_element() && c.tag_name().name() == tag)
                .map(|c| c.text().unwrap_or("").to_string())
        };
        let name = text("Name").ok_or("a <Variable> in the job file has no <Name>")?;
        out.push(RestProperty::new(name, text("Value").unwrap_or_default()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_sample() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<Job Version="3.000" Name="demo" IsExclusive="false" UnitType="Core" JobType="Batch" JobTemplate="Default"
     Priority="Normal" AutoCalculateMax="false" AutoCalculateMin="false" MinCores="4" MaxCores="4"
     xmlns="http://schemas.microsoft.com/HPCS2008R2/scheduler/">
  <Dependencies />
  <Tasks>
    <Task Version="3.000" UnitType="Core" NiceId="1" CommandLine="mpiexec app.exe" WorkDirectory="/tmp"
          StdOutFilePath="out.txt" MinCores="4" MaxCores="4" Type="Basic">
      <EnvironmentVariables><Variable><Name>K</Name><Value>V</Value></Variable></EnvironmentVariables>
    </Task>
  </Tasks>
</Job>"#;
        let s = parse(xml).unwrap();
        assert_eq!(crate::wire::prop(&s.properties, "Name"), Some("demo"));
        assert_eq!(crate::wire::prop(&s.properties, "MinCores"), Some("4"));
        assert!(crate::wire::prop(&s.properties, "Version").is_none());
        assert_eq!(s.tasks.len(), 1);
        assert_eq!(crate::wire::prop(&s.tasks[0].properties, "CommandLine"), Some("mpiexec app.exe"));
        assert_eq!(s.tasks[0].env, vec![RestProperty::new("K", "V")]);
        assert!(parse("<Jobs/>").is_err());
        assert!(parse("not xml").is_err());
    }
}
