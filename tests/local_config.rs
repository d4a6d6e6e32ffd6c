//! `hpcd local start`'s options are kept in the user's config file, a
//! start that asks for other nodes than the running head node's says so
//! (or restarts it when no job is active), and `hpcd local status` names
//! the config files.

use crate::common::{Cluster, property};

fn nodes(c: &Cluster) -> usize {
    c.ok("node", &["list"]).lines().skip(2).filter(|l| !l.trim().is_empty()).count()
}

#[test]
fn local_start_options_persist_and_a_different_layout_is_reported() {
    let c = Cluster::unstarted();
    let config = c.dir.path().join("config/hpcpack/config.toml");
    let status = c.run("hpcd", &["local", "status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains(&format!("{} (absent)", config.display())), "{text}");

    let out = c.ok("hpcd", &["local", "start", "--nodes", "2", "--node-group", "azurenodes"]);
    assert!(out.contains(&format!("Saved --nodes 2 --node-group azurenodes to {}", config.display())), "{out}");
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains("nodes = 2") && saved.contains("azurenodes"), "{saved}");
    assert_eq!(property(&c.ok("hpcd", &["local", "status"]), "Config Files Read").as_deref(), Some(config.to_str().unwrap()));

    // Stopped, then started again by the next command: the same two nodes.
    c.ok("hpcd", &["local", "stop"]);
    assert_eq!(nodes(&c), 2);
    assert!(c.ok("node", &["list", "/group:azurenodes"]).contains("-2 "));

    // Other options while a job runs: said, and nothing restarted.
    let id = c.submit(&["sleep", "60"]);
    let (code, err) = c.fails("hpcd", &["local", "start", "--nodes", "3"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("runs with 2 nodes") && err.contains("not 3 nodes") && err.contains(&format!("job {id} is active")), "{err}");
    assert_eq!(c.prop("job", &["view", &id.to_string()], "State"), "Running");
    assert_eq!(nodes(&c), 2);

    // With no job active, the head node is restarted with them.
    c.ok("job", &["cancel", &id.to_string()]);
    crate::common::wait_until(std::time::Duration::from_secs(20), || c.prop("job", &["view", &id.to_string()], "State") == "Canceled");
    let out = c.ok("hpcd", &["local", "start", "--nodes", "3"]);
    assert!(out.contains("Restarting the embedded head node"), "{out}");
    assert_eq!(nodes(&c), 3);
    // The same options again: nothing to do.
    assert!(c.ok("hpcd", &["local", "start", "--nodes", "3"]).contains("already runs"));
}
