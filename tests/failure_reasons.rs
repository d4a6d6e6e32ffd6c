//! Issue 11 item 6: a netmask concerns sockets only, a malformed one is
//! refused where it is set, and a failed task says why in its Error Message.

use crate::common::{Cluster, output_of, property, rest};

const MPIEXEC: &str = env!("CARGO_BIN_EXE_mpiexec");
const PINGPONG: &str = env!("CARGO_BIN_EXE_mpipingpong");

/// A network no interface of this host is in (TEST-NET-3, RFC 5737).
const ELSEWHERE: &str = "203.0.113.0/24";

fn no_interface_in_elsewhere() -> bool {
    let net = u32::from(std::net::Ipv4Addr::new(203, 0, 113, 0));
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .iter()
        .all(|i| match i.ip() {
            std::net::IpAddr::V4(ip) => u32::from(ip) & 0xffff_ff00 != net,
            std::net::IpAddr::V6(_) => true,
        })
}

/// Submits `mpiexec -c 1 <env…> mpipingpong -p 1:50` on the cluster's 2
/// nodes; returns the job id, its state and the task's view.
fn pingpong_job(c: &Cluster, env: &[&str]) -> (u64, String, String) {
    let mut args = vec!["/numnodes:2", MPIEXEC, "-c", "1"];
    args.extend(env);
    args.extend([PINGPONG, "-p", "1:50"]);
    let id = c.submit(&args);
    let state = c.wait(id);
    (id, state, c.ok("task", &["view", &format!("{id}.1")]))
}

#[test]
fn a_netmask_for_another_network_fails_only_pairs_that_need_sockets() {
    assert!(
        no_interface_in_elsewhere(),
        "this host has an address in {ELSEWHERE}"
    );
    let c = Cluster::with_layout(&["--nodes", "2", "--cores-per-node", "1"]);
    c.ok(
        "cluscfg",
        &["setenvs", &format!("CCP_MPI_NETMASK={ELSEWHERE}")],
    );

    // The virtual nodes share this host: shared memory, no socket needed.
    let (_, state, view) = pingpong_job(&c, &[]);
    assert_eq!(state, "Finished", "{view}");
    assert!(output_of(&view).contains("Summary: min "), "{view}");

    // Without shared memory (and verbs) the pair needs sockets: it fails,
    // and the Error Message says which netmask and where it came from.
    let off = [
        "-env",
        "MSMPI_DISABLE_SHM",
        "1",
        "-env",
        "MSMPI_DISABLE_ND",
        "1",
    ];
    let (id, state, view) = pingpong_job(&c, &off);
    assert_eq!(state, "Failed", "{view}");
    let error = property(&view, "Error Message").unwrap_or_default();
    assert!(
        error.starts_with("exit code 1 is not a valid exit code (0): mpipingpong: rank "),
        "{view}"
    );
    assert!(
        error.contains(
            "MPICH_NETMASK 203.0.113.0/255.255.255.0, from the CCP_MPI_NETMASK cluster variable, \
             matches no interface of host"
        ),
        "{view}"
    );
    let job_error = c.prop("job", &["view", &id.to_string()], "Error Message");
    assert!(
        job_error.contains("from the CCP_MPI_NETMASK cluster variable"),
        "{job_error}"
    );

    // Given to mpiexec instead, the message names that.
    c.ok("cluscfg", &["setenvs", "CCP_MPI_NETMASK="]);
    let with_env = [&off[..], &["-env", "MPICH_NETMASK", ELSEWHERE]].concat();
    let (_, state, view) = pingpong_job(&c, &with_env);
    assert_eq!(state, "Failed", "{view}");
    let error = property(&view, "Error Message").unwrap_or_default();
    assert!(
        error.contains(", from mpiexec -env MPICH_NETMASK, matches no interface"),
        "{view}"
    );
}

#[test]
fn setenvs_refuses_a_malformed_mpi_netmask() {
    let c = Cluster::new();
    let before = c.snapshot_state();
    for (value, says) in [
        (
            "bogus",
            "CCP_MPI_NETMASK=bogus: expected address/mask, such as 10.0.0.0/255.255.255.0 or 10.0.0.0/24",
        ),
        (
            "10.0.0.0/33",
            "CCP_MPI_NETMASK=10.0.0.0/33: expected address/mask",
        ),
        (
            "10.0.0.0/255.0.255.0",
            "CCP_MPI_NETMASK=10.0.0.0/255.0.255.0: expected address/mask",
        ),
        (
            "10.0.0.0",
            "CCP_MPI_NETMASK=10.0.0.0: expected address/mask",
        ),
        (
            "10.0.0.0/                         24",
            "longer than 31 characters",
        ),
    ] {
        // Alongside a good variable, which is not set either.
        let (code, err) = c.fails(
            "cluscfg",
            &["setenvs", "SITE=1", &format!("CCP_MPI_NETMASK={value}")],
        );
        assert_eq!(code, 2, "{value}: {err}");
        assert!(err.contains(says), "{value}: expected '{says}' in: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(
        c.snapshot_state(),
        before,
        "a refused setenvs changed the cluster"
    );
    assert!(!c.ok("cluscfg", &["listenvs"]).contains("SITE="));

    // Over REST too, with the same message.
    let (client, base) = rest(&c);
    let r = client
        .put(format!("{base}/hpcpack/v1/cluster/env"))
        .json(&serde_json::json!([{"Name": "CCP_MPI_NETMASK", "Value": "bogus"}]))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.text()
            .unwrap()
            .contains("CCP_MPI_NETMASK=bogus: expected address/mask")
    );
    assert_eq!(
        c.snapshot_state(),
        before,
        "a refused PUT changed the cluster"
    );

    // Both forms MS-MPI takes are accepted, and unsetting is always allowed.
    for value in ["172.16.0.0/255.255.0.0", "10.0.0.5/24", ""] {
        c.ok("cluscfg", &["setenvs", &format!("CCP_MPI_NETMASK={value}")]);
    }
}

#[test]
fn a_failed_task_says_why_in_its_error_message() {
    let c = Cluster::new();
    let id = c.submit(&["echo working; echo 'oops: the disk is on fire' >&2; echo done; exit 3"]);
    assert_eq!(c.wait(id), "Failed");
    // Without /stderr, stdout shares the file: the last line printed wins.
    let error = c.prop("task", &["view", &format!("{id}.1")], "Error Message");
    assert_eq!(error, "exit code 3 is not a valid exit code (0): done");
    let id = c.submit(&["echo working; echo 'oops: the disk is on fire' >&2; exit 3"]);
    assert_eq!(c.wait(id), "Failed");
    let error = c.prop("task", &["view", &format!("{id}.1")], "Error Message");
    assert_eq!(
        error,
        "exit code 3 is not a valid exit code (0): oops: the disk is on fire"
    );
    assert_eq!(
        c.prop("job", &["view", &id.to_string()], "Error Message"),
        format!("task {id}.1 failed: {error}")
    );

    // A /stderr file: what this run wrote, not what an earlier one left.
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("err.txt"), "an earlier failure\n").unwrap();
    let wd = format!("/workdir:{}", work.display());
    let id = c.submit(&[
        &wd,
        "/stderr:err.txt",
        "echo 'cp: cannot stat x' >&2; exit 2",
    ]);
    assert_eq!(c.wait(id), "Failed");
    let error = c.prop("task", &["view", &format!("{id}.1")], "Error Message");
    assert_eq!(
        error,
        "exit code 2 is not a valid exit code (0): cp: cannot stat x"
    );
    let id = c.submit(&[&wd, "/stderr:err.txt", "exit 4"]);
    assert_eq!(c.wait(id), "Failed");
    let error = c.prop("task", &["view", &format!("{id}.1")], "Error Message");
    assert_eq!(error, "exit code 4 is not a valid exit code (0)");
    // A command that cannot be found says so.
    let id = c.submit(&["no-such-command-issue-11"]);
    assert_eq!(c.wait(id), "Failed");
    let error = c.prop("task", &["view", &format!("{id}.1")], "Error Message");
    assert!(
        error.ends_with(": no-such-command-issue-11: not found"),
        "{error}"
    );
}
