//! Job templates: an administrator's defaults and constraints for the jobs
//! submitted with them, in HPC Pack's job template XML.
//!
//! A template is a list of items, one per job property: a `Default` used
//! when the job does not set the property, and constraints the job's value
//! must meet at creation, submission and change — `MinVal`/`MaxVal` for
//! numbers, `ValueRange` (allowed values, comma-separated; for a list
//! property such as `NodeGroups`, every element), `RequiredValues` (for a
//! list property, values it must include) and `ReadOnly` (the job may not
//! set it). HPC Pack writes a template as
//!
//! ```xml
//! <JobTemplate Name="AzureTemplate" Description="MPI jobs on Azure nodes">
//!   <TemplateItem PropertyName="NodeGroups" Default="azurenodes" ValueRange="azurenodes" RequiredValues="azurenodes" />
//!   <TemplateItem PropertyName="RuntimeSeconds" Default="3600" MinVal="0" MaxVal="86400" />
//! </JobTemplate>
//! ```
//!
//! and so do we. Who may submit with a template (HPC Pack keeps it apart
//! from the XML, as an access control list) is [`JobTemplate::submitters`].

use serde::{Deserialize, Serialize};

/// How a property's values compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    /// One word of a fixed set, or free text.
    Word,
    /// A comma-separated list.
    List,
}

/// The properties a template applies here, with their kind and the option
/// of `job submit` that sets them (for messages).
const APPLIED: &[(&str, Kind, &str)] = &[
    ("MinCores", Kind::Int, "/numcores"),
    ("MaxCores", Kind::Int, "/numcores"),
    ("MinSockets", Kind::Int, "/numsockets"),
    ("MaxSockets", Kind::Int, "/numsockets"),
    ("MinNodes", Kind::Int, "/numnodes"),
    ("MaxNodes", Kind::Int, "/numnodes"),
    ("MinCoresPerNode", Kind::Int, "/corespernode"),
    ("MaxCoresPerNode", Kind::Int, "/corespernode"),
    ("MinMemory", Kind::Int, "/memorypernode"),
    ("MaxMemory", Kind::Int, "/memorypernode"),
    ("RuntimeSeconds", Kind::Int, "/runtime"),
    ("ExpandedPriority", Kind::Int, "/priority"),
    ("UnitType", Kind::Word, "/numcores, /numsockets or /numnodes"),
    ("NodeGroupOp", Kind::Word, "/nodegroupop"),
    ("IsExclusive", Kind::Word, "/exclusive"),
    ("FailOnTaskFailure", Kind::Word, "/failontaskfailure"),
    ("AutoCalculateMax", Kind::Word, "a maximum in /numcores, /numsockets or /numnodes"),
    ("AutoCalculateMin", Kind::Word, "a minimum in /numcores, /numsockets or /numnodes"),
    ("Name", Kind::Word, "/jobname"),
    ("Project", Kind::Word, "/projectname"),
    ("NodeGroups", Kind::List, "/nodegroup"),
    ("RequestedNodes", Kind::List, "/askednodes"),
];

/// HPC Pack's other template properties: a file may carry them (an
/// exported template does), they are kept and shown, but this head node
/// has nothing they would act on.
const NOT_APPLIED: &[&str] = &[
    "SoftwareLicense",
    "OrderBy",
    "RunUntilCanceled",
    "Preemptable",
    "ServiceName",
    "Pool",
    "ActivationFilters",
    "SubmissionFilters",
    "EstimatedProcessMemory",
    "SingleNode",
    "TaskExecutionFailureRetryLimit",
    "NodePrepareTask",
    "NodeReleaseTask",
    "JobType",
];

/// One property's default and constraints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateItem {
    pub property: String,
    pub default: Option<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// Allowed values (empty: any).
    pub values: Vec<String>,
    /// Values a list property must include.
    pub required: Vec<String>,
    pub read_only: bool,
}

/// A job template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTemplate {
    pub name: String,
    pub description: String,
    pub items: Vec<TemplateItem>,
    /// Who may submit jobs with it besides administrators: user names and
    /// `%group` for the members of a Linux group; empty: every user.
    pub submitters: Vec<String>,
}

fn applied(property: &str) -> Option<&'static (&'static str, Kind, &'static str)> {
    APPLIED.iter().find(|(p, _, _)| p.eq_ignore_ascii_case(property))
}

/// `a, b` of a list property's value.
fn split(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn contains(list: &[String], v: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(v))
}

impl TemplateItem {
    /// Whether this head node acts on the item.
    pub fn applied(&self) -> bool {
        applied(&self.property).is_some()
    }

    /// Checks a job's value of the property (as its REST property reads;
    /// empty when unset).
    fn check(&self, template: &str, value: &str) -> Result<(), String> {
        let Some((name, kind, option)) = applied(&self.property) else { return Ok(()) };
        let whose = format!("the job template {template}");
        let at = format!("property {name} ({option})");
        match kind {
            // Unset: a request in another unit. Unbounded ("*", or no run
            // time limit) is above any maximum.
            Kind::Int if value.trim().is_empty() && *name != "RuntimeSeconds" => {}
            Kind::Int => {
                let n = value.trim().parse::<i64>().ok();
                if let Some(max) = self.max {
                    if n.is_none_or(|n| n > max) {
                        let shown = if value.trim().is_empty() || value.trim() == "*" { "unlimited" } else { value.trim() };
                        return Err(format!(
                            "The specified value for {at} is larger than the maximum {max} permitted by {whose} (it is {shown})"
                        ));
                    }
                }
                if let (Some(min), Some(n)) = (self.min, n) {
                    if n < min {
                        return Err(format!(
                            "The specified value for {at} is smaller than the minimum {min} permitted by {whose} (it is {n})"
                        ));
                    }
                }
            }
            Kind::Word => {
                if !self.values.is_empty() && !value.is_empty() && !contains(&self.values, value) {
                    return Err(format!(
                        "The specified value for {at} is not permitted by {whose}: {value} is not one of {}",
                        self.values.join(", ")
                    ));
                }
            }
            Kind::List => {
                let have = split(value);
                if !self.values.is_empty() {
                    if let Some(bad) = have.iter().find(|v| !contains(&self.values, v)) {
                        return Err(format!(
                            "The specified value for {at} is not permitted by {whose}: {bad} is not one of {}",
                            self.values.join(", ")
                        ));
                    }
                }
                if let Some(missing) = self.required.iter().find(|r| !contains(&have, r)) {
                    return Err(format!(
                        "The specified value for {at} does not contain the value {missing}, which is required by {whose}{}",
                        if have.is_empty() { String::new() } else { format!(" (it is {})", have.join(",")) }
                    ));
                }
            }
        }
        Ok(())
    }
}

impl JobTemplate {
    /// The template every cluster has: no defaults, no constraints.
    pub fn default_template() -> JobTemplate {
        JobTemplate {
            name: super::DEFAULT_TEMPLATE.into(),
            description: "The default job template: no defaults or limits beyond the cluster's".into(),
            ..Default::default()
        }
    }

    /// The defaults it gives, as (REST property, value), for the
    /// properties it applies.
    pub fn defaults(&self) -> Vec<(String, String)> {
        self.items
            .iter()
            .filter(|i| i.applied())
            .filter_map(|i| i.default.clone().map(|d| (i.property.clone(), d)))
            .collect()
    }

    /// Checks a job against every item: `value` reads a REST property of
    /// the job.
    pub fn check(&self, value: impl Fn(&str) -> String) -> Result<(), String> {
        for item in &self.items {
            item.check(&self.name, &value(&item.property))?;
        }
        Ok(())
    }

    /// Refuses a value a job sets itself (`given` reads the job's own
    /// properties) for a read-only item, unless it is the item's default.
    pub fn check_read_only(&self, given: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        for i in self.items.iter().filter(|i| i.read_only && i.applied()) {
            let Some(v) = given(&i.property) else { continue };
            if i.default.as_deref().is_none_or(|d| !d.eq_ignore_ascii_case(v.trim())) {
                let (name, _, option) = applied(&i.property).expect("applied");
                return Err(format!(
                    "The property {name} ({option}) is read-only in the job template {}{}; leave the option out",
                    self.name,
                    i.default.as_deref().map(|d| format!(": it is {d}")).unwrap_or_default()
                ));
            }
        }
        Ok(())
    }

    /// The properties it carries that this head node does not act on.
    pub fn not_applied(&self) -> Vec<&str> {
        self.items.iter().filter(|i| !i.applied()).map(|i| i.property.as_str()).collect()
    }

    /// Whether user `name`, member of `groups`, may submit with it.
    pub fn allows(&self, name: &str, groups: &[String]) -> bool {
        self.submitters.is_empty()
            || self.submitters.iter().any(|s| match s.strip_prefix('%') {
                Some(g) => groups.iter().any(|x| x == g),
                None => s == name,
            })
    }

    /// Reads HPC Pack's job template XML; `name` replaces the file's.
    pub fn from_xml(xml: &str, name: Option<&str>) -> Result<JobTemplate, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| format!("the job template is not valid XML: {e}"))?;
        let root = doc.root_element();
        if root.tag_name().name() != "JobTemplate" {
            return Err(format!("the file's root element is <{}>, not <JobTemplate>", root.tag_name().name()));
        }
        let name = name.map(str::to_string).or_else(|| root.attribute("Name").map(str::to_string)).unwrap_or_default();
        check_template_name(&name)?;
        let mut t = JobTemplate { name, description: root.attribute("Description").unwrap_or("").to_string(), ..Default::default() };
        for node in root.children().filter(|n| n.is_element()) {
            if node.tag_name().name() != "TemplateItem" {
                return Err(format!("<{}> is not a template item; use <TemplateItem PropertyName=…>", node.tag_name().name()));
            }
            t.items.push(item_from_xml(&node)?);
        }
        for (i, item) in t.items.iter().enumerate() {
            if t.items[..i].iter().any(|x| x.property.eq_ignore_ascii_case(&item.property)) {
                return Err(format!("the property {} has two template items; keep one", item.property));
            }
        }
        Ok(t)
    }

    /// HPC Pack's job template XML (without the submitters, which HPC Pack
    /// keeps apart too).
    pub fn to_xml(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
        s += &format!("<JobTemplate Name=\"{}\" Description=\"{}\">\n", esc(&self.name), esc(&self.description));
        for i in &self.items {
            s += &format!("  <TemplateItem PropertyName=\"{}\"", esc(&i.property));
            let mut attr = |k: &str, v: &str| s += &format!(" {k}=\"{}\"", esc(v));
            if let Some(d) = &i.default {
                attr("Default", d);
            }
            if let Some(m) = i.min {
                attr("MinVal", &m.to_string());
            }
            if let Some(m) = i.max {
                attr("MaxVal", &m.to_string());
            }
            if !i.values.is_empty() {
                attr("ValueRange", &i.values.join(","));
            }
            if !i.required.is_empty() {
                attr("RequiredValues", &i.required.join(","));
            }
            if i.read_only {
                attr("ReadOnly", "True");
            }
            s += " />\n";
        }
        s += "</JobTemplate>\n";
        s
    }
}

/// A template's name, as a node group's (see [`super::values::check_name`]).
pub fn check_template_name(name: &str) -> Result<(), String> {
    super::values::check_name("job template", name)
}

fn item_from_xml(node: &roxmltree::Node) -> Result<TemplateItem, String> {
    let Some(prop) = node.attribute("PropertyName") else {
        return Err("a <TemplateItem> has no PropertyName".into());
    };
    // HPC Pack 2008's Priority item (Lowest … Highest) is ExpandedPriority now.
    if prop.eq_ignore_ascii_case("Priority") {
        return priority_item(node);
    }
    let property = match (applied(prop), NOT_APPLIED.iter().find(|p| p.eq_ignore_ascii_case(prop))) {
        (Some((p, _, _)), _) => p.to_string(),
        (None, Some(p)) => p.to_string(),
        (None, None) => {
            let names: Vec<&str> = APPLIED.iter().map(|(p, _, _)| *p).collect();
            return Err(format!("{prop} is not a job template property; the properties are {}", names.join(", ")));
        }
    };
    let int = |k: &str| -> Result<Option<i64>, String> {
        node.attribute(k)
            .map(|v| v.trim().parse::<i64>().map_err(|_| format!("{property}: {k}=\"{v}\" is not a whole number")))
            .transpose()
    };
    let item = TemplateItem {
        default: node.attribute("Default").map(str::to_string),
        min: int("MinVal")?,
        max: int("MaxVal")?,
        values: node.attribute("ValueRange").map(split).unwrap_or_default(),
        required: node.attribute("RequiredValues").map(split).unwrap_or_default(),
        read_only: node.attribute("ReadOnly").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        property,
    };
    if let (Some(a), Some(b)) = (item.min, item.max) {
        if a > b {
            return Err(format!("{}: MinVal {a} is above MaxVal {b}", item.property));
        }
    }
    // The default must meet the item's own constraints.
    if let Some(d) = &item.default {
        item.check("", d).map_err(|_| format!("{}: the Default {d} is outside the item's own limits", item.property))?;
    }
    Ok(item)
}

/// HPC Pack 2008's `Priority` item as `ExpandedPriority`: names become
/// numbers, the allowed names a range.
fn priority_item(node: &roxmltree::Node) -> Result<TemplateItem, String> {
    let num = |v: &str| super::Priority::parse(v).map(|p| p.0 as i64).map_err(|e| format!("Priority: {e}"));
    let default = node.attribute("Default").map(num).transpose()?;
    let values: Vec<i64> = node.attribute("ValueRange").map(split).unwrap_or_default().iter().map(|v| num(v)).collect::<Result<_, _>>()?;
    Ok(TemplateItem {
        property: "ExpandedPriority".into(),
        default: default.map(|d| d.to_string()),
        min: values.iter().min().copied(),
        max: values.iter().max().copied(),
        ..Default::default()
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const AZURE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<JobTemplate Name="AzureTemplate" Description="MPI jobs on Azure nodes" xmlns="http://schemas.microsoft.com/HPCS2008R2/scheduler/">
  <TemplateItem PropertyName="NodeGroups" Default="azurenodes" ValueRange="azurenodes,ComputeNodes" RequiredValues="azurenodes" />
  <TemplateItem PropertyName="RuntimeSeconds" Default="3600" MinVal="0" MaxVal="86400" />
  <TemplateItem PropertyName="Priority" Default="Normal" ValueRange="BelowNormal,Normal" />
  <TemplateItem PropertyName="Preemptable" Default="True" ValueRange="True,False" />
  <TemplateItem PropertyName="Project" Default="mpi" ReadOnly="True" />
</JobTemplate>"#;

    fn check(t: &JobTemplate, props: &[(&str, &str)]) -> Result<(), String> {
        let get = |p: &str| props.iter().find(|(k, _)| k.eq_ignore_ascii_case(p)).map(|(_, v)| v.to_string());
        t.check_read_only(get)?;
        t.check(|p| get(p).unwrap_or_default())
    }

    #[test]
    fn hpc_pack_xml_reads_and_writes_back() {
        let t = JobTemplate::from_xml(AZURE, None).unwrap();
        assert_eq!(t.name, "AzureTemplate");
        assert_eq!(t.items[0].required, ["azurenodes"]);
        assert_eq!(t.items[2], TemplateItem { property: "ExpandedPriority".into(), default: Some("2000".into()), min: Some(1000), max: Some(2000), ..Default::default() });
        assert_eq!(t.not_applied(), ["Preemptable"]);
        assert_eq!(t.defaults()[..2], [("NodeGroups".into(), "azurenodes".into()), ("RuntimeSeconds".into(), "3600".into())]);
        let again = JobTemplate::from_xml(&t.to_xml(), None).unwrap();
        assert_eq!(again, t);
        assert_eq!(JobTemplate::from_xml(AZURE, Some("Other")).unwrap().name, "Other");
    }

    #[test]
    fn a_job_outside_the_template_is_named_with_its_option_and_the_allowed_values() {
        let t = JobTemplate::from_xml(AZURE, None).unwrap();
        assert!(check(&t, &[("NodeGroups", "azurenodes"), ("RuntimeSeconds", "60")]).is_ok());
        let e = check(&t, &[("NodeGroups", "vmcomputenodes")]).unwrap_err();
        assert!(e.contains("NodeGroups (/nodegroup) is not permitted by the job template AzureTemplate: vmcomputenodes is not one of azurenodes, ComputeNodes"), "{e}");
        let e = check(&t, &[("NodeGroups", "ComputeNodes"), ("RuntimeSeconds", "60")]).unwrap_err();
        assert!(e.contains("does not contain the value azurenodes, which is required"), "{e}");
        let e = check(&t, &[("NodeGroups", "azurenodes"), ("RuntimeSeconds", "")]).unwrap_err();
        assert!(e.contains("RuntimeSeconds (/runtime) is larger than the maximum 86400 permitted by the job template AzureTemplate (it is unlimited)"), "{e}");
        let e = check(&t, &[("NodeGroups", "azurenodes"), ("RuntimeSeconds", "5"), ("ExpandedPriority", "3000")]).unwrap_err();
        assert!(e.contains("larger than the maximum 2000"), "{e}");
        let e = check(&t, &[("NodeGroups", "azurenodes"), ("RuntimeSeconds", "5"), ("Project", "other")]).unwrap_err();
        assert!(e.contains("Project (/projectname) is read-only in the job template AzureTemplate: it is mpi"), "{e}");
    }

    #[test]
    fn bad_files_are_refused_naming_what_is_wrong() {
        let bad = |body: &str| JobTemplate::from_xml(&format!("<JobTemplate Name=\"T\">{body}</JobTemplate>"), None).unwrap_err();
        assert!(bad(r#"<TemplateItem PropertyName="Colour" Default="red"/>"#).contains("Colour is not a job template property"));
        assert!(bad(r#"<TemplateItem PropertyName="MaxNodes" MinVal="4" MaxVal="2"/>"#).contains("MinVal 4 is above MaxVal 2"));
        assert!(bad(r#"<TemplateItem PropertyName="MaxNodes" MaxVal="x"/>"#).contains("is not a whole number"));
        assert!(bad(r#"<TemplateItem PropertyName="MaxNodes" Default="8" MaxVal="4"/>"#).contains("Default 8 is outside"));
        assert!(bad(r#"<TemplateItem PropertyName="MaxNodes"/><TemplateItem PropertyName="maxnodes"/>"#).contains("two template items"));
        assert!(bad(r#"<Item/>"#).contains("not a template item"));
        assert!(JobTemplate::from_xml("<Job/>", None).unwrap_err().contains("not <JobTemplate>"));
        assert!(JobTemplate::from_xml("<JobTemplate/>", None).unwrap_err().contains("not a job template name"));
    }

    #[test]
    fn submitters_are_users_and_percent_groups() {
        let mut t = JobTemplate::default_template();
        assert!(t.allows("anyone", &[]));
        t.submitters = vec!["alice".into(), "%hpc".into()];
        assert!(t.allows("alice", &[]));
        assert!(t.allows("bob", &["hpc".into()]));
        assert!(!t.allows("bob", &["users".into()]));
    }
}
