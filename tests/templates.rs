//! Job templates as HPC Pack's administrators keep them: imported from HPC
//! Pack's XML, applied to the jobs made with them (defaults filled in,
//! constraints checked with a message naming the property, its option and
//! the allowed values), shown, exported, and restricted to users and groups.

use crate::common::{Cluster, NOBODY, SharedHead, host};

const AZURE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<JobTemplate Name="AzureTemplate" Description="MPI jobs on Azure nodes">
  <TemplateItem PropertyName="NodeGroups" Default="azurenodes" ValueRange="azurenodes" RequiredValues="azurenodes" />
  <TemplateItem PropertyName="RuntimeSeconds" Default="3600" MinVal="0" MaxVal="86400" />
  <TemplateItem PropertyName="MaxNodes" MinVal="1" MaxVal="2" />
  <TemplateItem PropertyName="Project" Default="mpi" ReadOnly="True" />
  <TemplateItem PropertyName="Preemptable" Default="True" />
</JobTemplate>
"#;

fn import(c: &Cluster) {
    let file = c.dir.path().join("AzureTemplate.xml");
    std::fs::write(&file, AZURE).unwrap();
    let out = c.run("job", &["template", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Job template AzureTemplate was imported.\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Preemptable kept but not applied"));
}

fn job_count(c: &Cluster) -> usize {
    c.ok("job", &["list", "/all", "/format:json"]).matches("\"Id\"").count()
}

#[test]
fn a_template_fills_in_defaults_and_refuses_what_it_does_not_allow() {
    let c = Cluster::with_layout(&["--nodes", "4", "--cores-per-node", "1", "--node-group", "azurenodes:2", "--node-group", "vmcomputenodes:2"]);
    let h = host();
    import(&c);
    // The article's job, with the template: its node group, run time and project filled in.
    let id = c.submit(&["/jobtemplate:AzureTemplate", "/numnodes:2", "echo $CCP_NODES"]);
    assert_eq!(c.wait(id), "Finished");
    let view = c.ok("job", &["view", &id.to_string(), "/detailed"]);
    for (k, v) in [("Template", "AzureTemplate"), ("Node Groups", "azurenodes"), ("Runtime Seconds", "3600"), ("Project", "mpi")] {
        assert_eq!(crate::common::property(&view, k).as_deref(), Some(v), "{k} in\n{view}");
    }
    assert_eq!(c.prop("job", &["view", &id.to_string()], "Allocated Nodes"), format!("{h}-1,{h}-2"));

    // Refused, naming the property, the option and what is allowed; nothing queued.
    let before = job_count(&c);
    for (args, code, says) in [
        (vec!["/nodegroup:vmcomputenodes"], 2, "NodeGroups (/nodegroup) is not permitted by the job template AzureTemplate: vmcomputenodes is not one of azurenodes"),
        (vec!["/nodegroup:azurenodes,vmcomputenodes", "/nodegroupop:Union"], 2, "vmcomputenodes is not one of azurenodes"),
        (vec!["/runtime:Infinite"], 2, "RuntimeSeconds (/runtime) is larger than the maximum 86400 permitted by the job template AzureTemplate (it is unlimited)"),
        (vec!["/numnodes:3"], 2, "MaxNodes (/numnodes) is larger than the maximum 2"),
        (vec!["/projectname:other"], 2, "Project (/projectname) is read-only in the job template AzureTemplate: it is mpi"),
    ] {
        let mut a = vec!["submit", "/jobtemplate:azuretemplate"];
        a.extend(args.iter().copied());
        a.push("hostname");
        let (got, err) = c.fails("job", &a);
        assert_eq!(got, code, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(job_count(&c), before, "nothing was queued");
    // `job new` + `job add` + `job submit /id`: checked too, when the job changes.
    let new = c.ok("job", &["new", "/jobtemplate:AzureTemplate"]);
    let id: u64 = new.trim().rsplit(' ').next().unwrap().parse().unwrap();
    c.ok("job", &["add", &id.to_string(), "hostname"]);
    let (code, err) = c.fails("job", &["modify", &id.to_string(), "/nodegroup:vmcomputenodes"]);
    assert_eq!(code, 2, "{err}");
    c.ok("job", &["submit", &format!("/id:{id}")]);
    assert_eq!(c.wait(id), "Finished");

    // Without a template, Default: nothing filled in, nothing refused.
    let id = c.submit(&["/nodegroup:vmcomputenodes", "hostname"]);
    assert_eq!(c.wait(id), "Finished");
    assert_eq!(c.prop("job", &["view", &id.to_string()], "Template"), "Default");
    let (code, err) = c.fails("job", &["submit", "/jobtemplate:nosuch", "hostname"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("job template 'nosuch' does not exist; the templates are: Default, AzureTemplate"), "{err}");
}

#[test]
fn templates_are_listed_shown_exported_replaced_and_deleted() {
    let c = Cluster::with_layout(&["--node-group", "azurenodes"]);
    import(&c);
    let list = c.ok("job", &["template", "list"]);
    assert!(list.lines().nth(2).unwrap().starts_with("Default "), "{list}");
    assert!(list.lines().nth(3).unwrap().starts_with("AzureTemplate        every user"), "{list}");
    let view = c.ok("job", &["template", "view", "AzureTemplate"]);
    for (k, v) in [
        ("NodeGroups", "default azurenodes; one of azurenodes; must include azurenodes"),
        ("RuntimeSeconds", "default 3600; 0 to 86400"),
        ("Preemptable", "default True; not applied here"),
    ] {
        assert_eq!(crate::common::property(&view, k).as_deref(), Some(v), "{k} in\n{view}");
    }
    // The REST API lists the names (HPC Pack's GET /jobs/templates).
    let (client, base) = crate::common::rest(&c);
    let names: Vec<String> = client.get(format!("{base}/hpc/jobs/templates")).send().unwrap().json().unwrap();
    assert_eq!(names, ["Default", "AzureTemplate"]);
    // Exported, it imports again under another name, the same template.
    let out = c.dir.path().join("out.xml");
    c.ok("job", &["template", "export", "AzureTemplate", &format!("/path:{}", out.display())]);
    let xml = std::fs::read_to_string(&out).unwrap();
    assert!(xml.contains(r#"<TemplateItem PropertyName="NodeGroups" Default="azurenodes" ValueRange="azurenodes" RequiredValues="azurenodes" />"#), "{xml}");
    c.ok("job", &["template", "import", out.to_str().unwrap(), "/name:Copy"]);
    assert_eq!(c.ok("job", &["template", "export", "Copy"]), xml.replace("Name=\"AzureTemplate\"", "Name=\"Copy\""));
    // Replacing needs /force; a bad file is named and changes nothing.
    let (code, err) = c.fails("job", &["template", "import", out.to_str().unwrap()]);
    assert_eq!(code, 4, "{err}");
    let bad = c.dir.path().join("bad.xml");
    std::fs::write(&bad, r#"<JobTemplate Name="AzureTemplate"><TemplateItem PropertyName="MaxNodes" Default="9" MaxVal="4"/></JobTemplate>"#).unwrap();
    let (code, err) = c.fails("job", &["template", "import", bad.to_str().unwrap(), "/force"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("MaxNodes: the Default 9 is outside the item's own limits"), "{err}");
    assert_eq!(c.ok("job", &["template", "export", "AzureTemplate"]), xml);
    // In use by an active job: kept; Default: kept.
    let id = c.submit(&["/jobtemplate:Copy", "/nodegroup:azurenodes", "/holduntil:12/31/2099 11:00:00 PM", "hostname"]);
    let (code, err) = c.fails("job", &["template", "delete", "Copy"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains(&format!("used by job {id}")), "{err}");
    c.ok("job", &["cancel", &id.to_string()]);
    assert_eq!(c.ok("job", &["template", "delete", "Copy"]), "Job template Copy was deleted.\n");
    let (code, _) = c.fails("job", &["template", "delete", "Default"]);
    assert_eq!(code, 4);
    // Templates outlive the head node.
    c.ok("hpcd", &["local", "stop"]);
    assert_eq!(c.ok("job", &["template", "export", "AzureTemplate"]), xml);
}

#[test]
fn templates_for_some_users_and_changes_by_administrators_only() {
    let Some(head) = SharedHead::start() else { return };
    let file = head.dir.path().join("t.xml");
    std::fs::write(&file, AZURE.replace("azurenodes", "ComputeNodes")).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let run = |uid: Option<u32>, tool: &str, args: &[&str]| {
        let out = head.run_as(uid, tool, args);
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    // Another user may not add, change or delete templates.
    let (code, out) = run(Some(NOBODY), "job", &["template", "import", file.to_str().unwrap()]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("administrator"), "{out}");
    let (code, out) = run(None, "job", &["template", "import", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    for args in [vec!["template", "grant", "AzureTemplate", "nobody"], vec!["template", "delete", "AzureTemplate"]] {
        let (code, out) = run(Some(NOBODY), "job", &args);
        assert_eq!(code, 5, "{args:?}: {out}");
    }
    // Open to every user until restricted; then for root and the group root only.
    let id = head.submit_as(Some(NOBODY), &["/jobtemplate:AzureTemplate", "true"]);
    assert!(id > 0);
    let (code, out) = run(None, "job", &["template", "grant", "AzureTemplate", "root", "%root"]);
    assert_eq!((code, out.trim()), (0, "Job template AzureTemplate is for root, %root."));
    let (code, out) = run(Some(NOBODY), "job", &["submit", "/jobtemplate:AzureTemplate", "true"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("You do not have permission to submit jobs to the job template AzureTemplate: it is for root, %root"), "{out}");
    let (code, out) = run(None, "job", &["template", "revoke", "AzureTemplate", "root", "%root"]);
    assert_eq!((code, out.trim()), (0, "Job template AzureTemplate is for every user."));
    let (code, out) = run(Some(NOBODY), "job", &["submit", "/jobtemplate:AzureTemplate", "true"]);
    assert_eq!(code, 0, "{out}");
}
