//! 200 submissions at once get distinct IDs and all finish.

use crate::common::{Cluster, parse_submitted};
use std::collections::BTreeSet;

#[test]
fn two_hundred_concurrent_submissions() {
    let c = Cluster::unstarted();
    // Start them all before the head node runs: the first ones also race to
    // start it.
    let children: Vec<std::process::Child> = (0..200)
        .map(|i| {
            c.command("job")
                .args(["submit", "/numcores:1", &format!("/jobname:c{i}"), "true"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn job submit")
        })
        .collect();
    let mut ids = BTreeSet::new();
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(ids.insert(parse_submitted(&String::from_utf8_lossy(&out.stdout))), "duplicate id");
    }
    assert_eq!(ids.len(), 200);
    assert_eq!(ids.iter().copied().collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>());
    for id in &ids {
        assert_eq!(c.wait(*id), "Finished", "job {id}");
    }
    let list = c.ok("job", &["list", "/all", "/format:json"]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 200);
    // One head node ran: hpcd.lock kept the racing starts from a second one.
    assert_eq!(crate::common::pids_matching(&format!("head --state-dir {}", c.state_dir().display())).len(), 1);
}
