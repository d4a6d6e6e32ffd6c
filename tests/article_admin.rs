//! The seed article's administrator steps, as written (Linux paths), on
//! the embedded head node: compute nodes in two named groups, a job
//! template whose NodeGroups is azurenodes, `clusrun … hpcfwutil register`
//! on the group, and the seed command under the template. The head node
//! runs in a network namespace of its own, a host with its own firewall,
//! so the rules hpcfwutil makes are that host's.

use crate::common::{Cluster, bin, can_switch_users, host, output_of};
use std::path::Path;

const PINGPONG: &str = env!("CARGO_BIN_EXE_mpipingpong");

#[test]
fn the_articles_administrator_steps_run_on_the_embedded_head() {
    if !can_switch_users() {
        eprintln!("skipped: needs root, for the head node's network namespace and its nftables rules");
        return;
    }
    let c = Cluster::unstarted();
    let hpcd = bin("hpcd");
    let start = format!(
        "ip link set lo up && exec {} local start --quiet --nodes 4 --cores-per-node 1 --node-group azurenodes:2 --node-group vmcomputenodes:2",
        hpcd.display()
    );
    let out = c.command_for(Path::new("unshare")).args(["--net", "sh", "-c", &start]).output().expect("unshare");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let netns = format!("--net=/proc/{}/ns/net", c.head_pid());
    let nft = |args: &[&str]| {
        let out = std::process::Command::new("nsenter").arg(&netns).arg("nft").args(args).output().expect("nsenter nft");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // hpcfwutil's registry where this test keeps it, for every task.
    let db = c.dir.path().join("firewall.json");
    c.ok("cluscfg", &["setenvs", &format!("HPCPACK_FIREWALL_DB={}", db.display())]);
    let h = host();

    // (a) Compute nodes in named groups.
    assert_eq!(c.prop("node", &["group", "view", "azurenodes"], "Nodes"), format!("{h}-1,{h}-2"));
    // (b) A job template whose Node Groups property is azurenodes.
    let template = c.dir.path().join("AzureTemplate.xml");
    std::fs::write(
        &template,
        r#"<JobTemplate Name="AzureTemplate"><TemplateItem PropertyName="NodeGroups" Default="azurenodes" ValueRange="azurenodes" RequiredValues="azurenodes" /></JobTemplate>"#,
    )
    .unwrap();
    c.ok("job", &["template", "import", template.to_str().unwrap()]);
    // (c) Every MPI application registered with the firewall of the group's nodes.
    let out = c.ok("clusrun", &["/nodegroup:AzureNodes", "hpcfwutil", "register", "mpipingpong", PINGPONG]);
    assert!(out.ends_with("2 Nodes succeeded\n0 Nodes failed\n"), "{out}");
    let rules = nft(&["list", "table", "inet", "hpcpack"]);
    assert!(rules.contains("elements = { 19900-19999, 20000-20099 }"), "{rules}");
    assert_eq!(nft(&["list", "tables"]).trim(), "table inet hpcpack", "its own table only");

    // The seed command under the template lands on the group's nodes.
    let id = c.submit(&["/jobtemplate:AzureTemplate", "/numnodes:2", "mpiexec", "-c", "1", "-affinity", "mpipingpong", "-p", "1:100000", "-op", "-s", "nul"]);
    assert_eq!(c.wait(id), "Finished");
    let out = output_of(&c.ok("task", &["view", &format!("{id}.1")]));
    assert!(out.contains(&format!("{h}-1 <-> {h}-2")), "{out}");
    let (code, err) = c.fails("job", &["submit", "/jobtemplate:AzureTemplate", "/nodegroup:vmcomputenodes", "hostname"]);
    assert_eq!(code, 2, "{err}");

    let out = c.ok("clusrun", &["/nodegroup:azurenodes", "hpcfwutil", "clear"]);
    assert!(out.contains("2 Nodes succeeded"), "{out}");
    assert_eq!(nft(&["list", "tables"]).trim(), "", "cleared");
}
