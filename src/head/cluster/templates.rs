//! Job templates: kept, applied to the jobs made with them, and changed by
//! administrators.

use super::*;
use crate::model::{DEFAULT_TEMPLATE, JobTemplate};

impl Cluster {
    /// Every template, Default first, then by name.
    pub fn templates(&self) -> Vec<JobTemplate> {
        let mut all = vec![self.template(DEFAULT_TEMPLATE).expect("Default exists")];
        all.extend(self.templates.iter().filter(|t| !t.name.eq_ignore_ascii_case(DEFAULT_TEMPLATE)).cloned());
        all
    }

    /// The template `name` names (any case).
    pub fn template(&self, name: &str) -> Result<JobTemplate> {
        if let Some(t) = self.templates.iter().find(|t| t.name.eq_ignore_ascii_case(name)) {
            return Ok(t.clone());
        }
        if name.eq_ignore_ascii_case(DEFAULT_TEMPLATE) {
            return Ok(JobTemplate::default_template());
        }
        let names: Vec<String> = self.templates().into_iter().map(|t| t.name).collect();
        Err(Error::InvalidArgument(format!("job template '{name}' does not exist; the templates are: {}", names.join(", "))))
    }

    /// The template a job names, if `caller` may submit with it.
    fn template_for(&self, caller: &Caller, name: &str) -> Result<JobTemplate> {
        let t = self.template(name)?;
        if caller.administers_this_head() || t.allows(&caller.name, &crate::node::sys::group_names_of(caller.uid)) {
            return Ok(t);
        }
        Err(Error::AccessDenied(format!(
            "You do not have permission to submit jobs to the job template {}: it is for {}; choose another template (job template list)",
            t.name,
            t.submitters.join(", ")
        )))
    }

    /// The template named in `props`, if any, checked for `caller`.
    pub(super) fn template_in(&self, caller: &Caller, props: &[RestProperty]) -> Result<Option<JobTemplate>> {
        match props.iter().rev().find(|p| p.name.eq_ignore_ascii_case("JobTemplate")) {
            None => Ok(None),
            Some(p) if p.value.trim().is_empty() => self.template_for(caller, DEFAULT_TEMPLATE).map(Some),
            Some(p) => self.template_for(caller, p.value.trim()).map(Some),
        }
    }

    /// A job made from `props` with its template's defaults for what the
    /// properties leave out (HPC Pack: the user's value, else the
    /// template's, else the built-in default).
    pub(super) fn build_job(&self, caller: &Caller, id: u64, props: &[RestProperty], now: Millis) -> Result<Job> {
        let t = match self.template_in(caller, props)? {
            Some(t) => t,
            None => self.template_for(caller, DEFAULT_TEMPLATE)?,
        };
        let mut job = Job::new(id, &caller.name, caller.uid, now);
        let given = given_in(props);
        let defaults: Vec<RestProperty> =
            t.defaults().into_iter().filter(|(k, _)| given(k).is_none()).map(|(k, v)| RestProperty::new(&k, &v)).collect();
        props::apply(props::job_props(), &mut job, &defaults)
            .map_err(|e| Error::InvalidArgument(format!("a default of the job template {}: {e}", t.name)))?;
        props::apply(props::job_props(), &mut job, props).map_err(Error::InvalidArgument)?;
        t.check_read_only(given).map_err(Error::InvalidArgument)?;
        job.template = t.name;
        Ok(job)
    }

    /// Refuses a job (its request as it would run) that its template does
    /// not allow, naming the property, the option and the allowed values.
    pub(super) fn check_template(&self, probe: &Job) -> Result<()> {
        let t = self.template(&probe.template)?;
        let counts = props::TaskCounts::default();
        let value = |p: &str| {
            props::read_job(probe, &counts, &[p.to_string()]).ok().and_then(|v| v.into_iter().next()).map(|p| p.value).unwrap_or_default()
        };
        t.check(value).map_err(Error::InvalidArgument)
    }

    /// Adds a template, or with `replace` replaces one (keeping who may
    /// submit with it); Default can be replaced, not added.
    pub fn put_template(&mut self, caller: &Caller, mut t: JobTemplate, replace: bool) -> Result<JobTemplate> {
        Self::require_admin_or_local(caller, &format!("change job template {}", t.name))?;
        crate::model::template::check_template_name(&t.name).map_err(Error::InvalidArgument)?;
        let old = self.template(&t.name).ok();
        if let Some(old) = &old {
            if !replace {
                return Err(Error::InvalidState(format!(
                    "job template {} already exists; to replace it, import with /force (job template import … /force)",
                    old.name
                )));
            }
            t.name = old.name.clone();
            t.submitters = old.submitters.clone();
        }
        // Every default must be a value a job may have.
        let mut probe = Job::new(0, &caller.name, caller.uid, 0);
        for (k, v) in t.defaults() {
            props::apply(props::job_props(), &mut probe, &[RestProperty::new(&k, &v)])
                .map_err(|e| Error::InvalidArgument(format!("job template {}: the Default of {k}: {e}", t.name)))?;
        }
        self.keep_template(t)
    }

    /// Commits `t` and puts it in place of the template of its name.
    fn keep_template(&mut self, t: JobTemplate) -> Result<JobTemplate> {
        self.store.commit(&Changes { templates: vec![&t], ..Default::default() })?;
        self.templates.retain(|x| !x.name.eq_ignore_ascii_case(&t.name));
        self.templates.push(t.clone());
        self.templates.sort_by_key(|t| t.name.to_ascii_lowercase());
        Ok(t)
    }

    /// Deletes a template no active job uses; Default stays.
    pub fn delete_template(&mut self, caller: &Caller, name: &str) -> Result<()> {
        Self::require_admin_or_local(caller, &format!("delete job template {name}"))?;
        let t = self.template(name)?;
        if t.name.eq_ignore_ascii_case(DEFAULT_TEMPLATE) {
            return Err(Error::InvalidState("job template Default is built in and cannot be deleted".into()));
        }
        let users: Vec<String> =
            self.jobs.values().filter(|j| !j.state.is_final() && j.template == t.name).map(|j| j.id.to_string()).collect();
        if !users.is_empty() {
            return Err(Error::InvalidState(format!(
                "job template {} is used by job{} {}; delete it once they ended",
                t.name,
                if users.len() == 1 { "" } else { "s" },
                users.join(", ")
            )));
        }
        self.store.commit(&Changes { deleted_templates: vec![t.name.clone()], ..Default::default() })?;
        self.templates.retain(|x| x.name != t.name);
        Ok(())
    }

    /// Lets users (`name`) and groups (`%group`) submit with a template, or
    /// (`grant` false) no longer; an empty list lets every user.
    pub fn set_template_submitters(&mut self, caller: &Caller, name: &str, grant: bool, who: &[String]) -> Result<JobTemplate> {
        Self::require_admin_or_local(caller, &format!("change who may use job template {name}"))?;
        let mut t = self.template(name)?;
        for w in who {
            let bare = w.strip_prefix('%').unwrap_or(w);
            if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || "-_.$".contains(c)) {
                return Err(Error::InvalidArgument(format!("'{w}' is not a user name or %group")));
            }
            t.submitters.retain(|x| x != w);
            if grant {
                t.submitters.push(w.clone());
            }
        }
        self.keep_template(t)
    }

    /// Applies a request's properties to an existing job: a template it
    /// names (checked for `caller`) becomes the job's, under its own name,
    /// and what the job's template makes read-only is refused.
    pub(super) fn apply_job_props(&self, caller: &Caller, job: &mut Job, props_in: &[RestProperty]) -> Result<()> {
        let named = self.template_in(caller, props_in)?;
        props::apply(props::job_props(), job, props_in).map_err(Error::InvalidArgument)?;
        let t = match named {
            Some(t) => t,
            None => self.template(&job.template)?,
        };
        job.template = t.name.clone();
        t.check_read_only(given_in(props_in)).map_err(Error::InvalidArgument)
    }
}

/// Reads a property a request sets (the last one given), any case.
pub(super) fn given_in(props: &[RestProperty]) -> impl Fn(&str) -> Option<String> + '_ {
    |k| props.iter().rev().find(|p| p.name.eq_ignore_ascii_case(k)).map(|p| p.value.clone())
}
