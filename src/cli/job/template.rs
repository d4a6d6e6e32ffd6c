//! `job template` (an extension): job templates as HPC Pack's
//! administrators keep them (`Import-HpcJobTemplate`,
//! `Export-HpcJobTemplate`, `Remove-HpcJobTemplate`,
//! `Set-HpcJobTemplateAcl` in PowerShell).

use crate::cli::Ctx;
use crate::cli::opts::{self, Common};
use crate::cli::output::{Column, Format, Record};
use crate::error::{Error, exit};
use crate::model::JobTemplate;
use clap::Args;

/// What `job template` does.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Lists the templates (the default).
    List,
    /// Shows a template: its items, and who may submit with it.
    View,
    /// Adds a template from HPC Pack job template XML (administrators).
    Import,
    /// Writes a template as HPC Pack job template XML.
    Export,
    /// Deletes a template no active job uses (administrators).
    Delete,
    /// Lets users and %groups submit with a template (administrators).
    Grant,
    /// Takes that back (administrators); with no one left, every user may.
    Revoke,
}

#[derive(Args, Debug)]
pub struct TemplateArgs {
    /// list, view, import, export, delete, grant or revoke.
    #[arg(value_name = "action", value_enum, ignore_case = true, default_value = "list", hide_default_value = true, hide_possible_values = true)]
    pub action: Action,
    /// The template's name; for import, the XML file (the template is
    /// named as the file says, unless /name is given).
    #[arg(value_name = "template_name|file")]
    pub name: Option<String>,
    /// grant, revoke: user names and %groups.
    #[arg(value_name = "user")]
    pub rest: Vec<String>,
    /// import: the name the template gets (default: the file's Name).
    #[arg(long = "name", value_name = "template_name")]
    pub new_name: Option<String>,
    /// import: replaces a template of that name (who may submit stays).
    #[arg(long)]
    pub force: bool,
    /// export: the file to write (default: standard output).
    #[arg(long, value_name = "file")]
    pub path: Option<std::path::PathBuf>,
    /// Output format: table (default for list), list, or json.
    #[arg(long, value_name = "list|table|json", value_parser = opts::format)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub common: Common,
}

impl TemplateArgs {
    pub fn default_format(&self) -> Format {
        if self.action == Action::List { Format::Table } else { Format::List }
    }
}

fn usage(msg: String) -> anyhow::Error {
    Error::InvalidArgument(msg).into()
}

pub fn run(ctx: &Ctx, a: &TemplateArgs) -> anyhow::Result<u8> {
    use Action::*;
    let act = opts::value_name(a.action);
    let b = ctx.backend()?;
    let name = || a.name.clone().ok_or_else(|| usage(format!("job template {act}: name the template")));
    if !a.rest.is_empty() && !matches!(a.action, Grant | Revoke) {
        return Err(usage(format!("job template {act}: unexpected {}", a.rest.join(" "))));
    }
    if (a.new_name.is_some() || a.force) && a.action != Import {
        return Err(usage(format!("job template {act}: /name and /force go with import")));
    }
    if a.path.is_some() && a.action != Export {
        return Err(usage(format!("job template {act}: /path goes with export")));
    }
    match a.action {
        List => {
            let mut rows = Vec::new();
            for n in b.templates()? {
                let t = b.template(&n).ok();
                let who = t.as_ref().map(|t| submitters(&t.submitters)).unwrap_or_default();
                let description = t.map(|t| t.description).unwrap_or_default();
                rows.push(Record::new().field("Name", "Name", n).field("Submitters", "Submitters", who).field("Description", "Description", description));
            }
            ctx.objects(
                &rows,
                &[Column { title: "Name", width: 20 }, Column { title: "Submitters", width: 20 }, Column { title: "Description", width: 40 }],
            )?;
        }
        View => {
            let w = b.template(&name()?)?;
            let t = JobTemplate::from_xml(&w.xml, Some(&w.name)).map_err(|e| Error::Remote {
                kind: crate::error::Kind::Internal,
                message: format!("the head node sent a template this client cannot read: {e}"),
            })?;
            let mut r = Record::new()
                .field("Name", "Name", t.name.clone())
                .field("Description", "Description", t.description.clone())
                .field("Submitters", "Submitters", submitters(&w.submitters));
            for i in &t.items {
                r.push(&i.property, &i.property, describe(i));
            }
            ctx.object(&r)?;
        }
        Import => {
            let Some(file) = &a.name else {
                return Err(usage("job template import: give the XML file, e.g. job template import AzureTemplate.xml".into()));
            };
            let xml = std::fs::read_to_string(file).map_err(|e| usage(format!("cannot read {file}: {e}")))?;
            // Read here too, so a bad file is named before anything is sent.
            let t = JobTemplate::from_xml(&xml, a.new_name.as_deref()).map_err(|e| usage(format!("{file}: {e}")))?;
            let w = b.put_template(&t.name, &xml, a.force)?;
            ctx.message(&format!("Job template {} was imported.", w.name))?;
            let skipped = t.not_applied();
            if !skipped.is_empty() {
                eprintln!("job template: {} kept but not applied: this head node has nothing they act on", skipped.join(", "));
            }
        }
        Export => {
            let w = b.template(&name()?)?;
            match &a.path {
                Some(p) => {
                    std::fs::write(p, &w.xml).map_err(|e| usage(format!("cannot write {}: {e}", p.display())))?;
                    ctx.message(&format!("Job template {} was written to {}.", w.name, p.display()))?;
                }
                None => crate::cli::out(&w.xml),
            }
        }
        Delete => {
            let n = name()?;
            b.delete_template(&n)?;
            ctx.message(&format!("Job template {n} was deleted."))?;
        }
        Grant | Revoke => {
            let n = name()?;
            if a.rest.is_empty() {
                return Err(usage(format!("job template {act}: name users or %groups after the template, e.g. job template {act} {n} alice %hpcusers")));
            }
            let w = b.template_submitters(&n, a.action == Grant, &a.rest)?;
            ctx.message(&format!("Job template {} is for {}.", w.name, submitters(&w.submitters)))?;
        }
    }
    Ok(exit::OK)
}

fn submitters(who: &[String]) -> String {
    if who.is_empty() { "every user".into() } else { who.join(", ") }
}

/// `default 3600, 0 to 86400`, `default azurenodes, one of azurenodes, must include azurenodes`.
fn describe(i: &crate::model::TemplateItem) -> String {
    let mut parts = Vec::new();
    if let Some(d) = &i.default {
        parts.push(format!("default {d}"));
    }
    match (i.min, i.max) {
        (Some(a), Some(b)) => parts.push(format!("{a} to {b}")),
        (Some(a), None) => parts.push(format!("at least {a}")),
        (None, Some(b)) => parts.push(format!("at most {b}")),
        (None, None) => {}
    }
    if !i.values.is_empty() {
        parts.push(format!("one of {}", i.values.join(",")));
    }
    if !i.required.is_empty() {
        parts.push(format!("must include {}", i.required.join(",")));
    }
    if i.read_only {
        parts.push("read-only".into());
    }
    if !i.applied() {
        parts.push("not applied here".into());
    }
    parts.join("; ")
}
