//! `mpipingpong` under our `mpiexec`: directly on this host, and as the
//! HPC Pack validation job on the embedded cluster's virtual nodes.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{Cluster, output_of, without_host_mpi_env};

const MPIEXEC: &str = env!("CARGO_BIN_EXE_mpiexec");
const PINGPONG: &str = env!("CARGO_BIN_EXE_mpipingpong");

/// `mpiexec args…` on this host, with the host's own settings removed.
fn mpiexec(args: &[&str]) -> (Output, String, Duration) {
    let start = Instant::now();
    let out = without_host_mpi_env(&mut Command::new(MPIEXEC))
        .args(args)
        .output()
        .expect("run mpiexec");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout, start.elapsed())
}

/// Lines of a result table: `  A <-> B  value`.
fn pair_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("  ") && l.contains(" <-> "))
        .collect()
}

/// The seed command with `-p <packets>`, through `job submit` on the
/// cluster's 4 virtual nodes; returns the task's output once the job
/// Finished.
fn seed_command(c: &Cluster, packets: &str) -> String {
    let id = c.submit(&[
        "/nodegroup:azurenodes",
        "/numnodes:4",
        MPIEXEC,
        "-c",
        "1",
        "-affinity",
        PINGPONG,
        "-p",
        packets,
        "-op",
        "-s",
        "nul",
    ]);
    let state = c.wait(id);
    let view = c.ok("task", &["view", &format!("{id}.1")]);
    assert_eq!(state, "Finished", "{view}");
    output_of(&view)
}

#[test]
fn seed_command_on_four_virtual_nodes() {
    let c = Cluster::with_layout(&[
        "--nodes",
        "4",
        "--cores-per-node",
        "1",
        "--node-group",
        "azurenodes",
    ]);
    let output = seed_command(&c, "1:2000");
    let pairs = pair_lines(&output);
    assert_eq!(pairs.len(), 6, "{output}");
    // Participants are the virtual nodes, one rank each, all distinct.
    let host = hpcpack::node::sys::hostname();
    assert!(
        pairs.iter().all(|l| l.contains(&host) && !l.contains('[')),
        "{output}"
    );
    assert_eq!(
        output.matches("pair ").count(),
        6,
        "one progress line per pair:\n{output}"
    );
    assert!(output.contains("pair 6 of 6 done"), "{output}");
    assert!(
        output.contains("Latency (usec) for packet size 1 byte, 2000 iterations:"),
        "{output}"
    );
    assert!(output.contains("Summary: min "), "{output}");

    // The throughput form, the same way (fewer iterations than the
    // article's 1000, for test time).
    let output = seed_command(&c, "4000000:20");
    assert_eq!(pair_lines(&output).len(), 6, "{output}");
    assert!(
        output.contains("Throughput (MB/s) for packet size 4000000 bytes, 20 iterations:"),
        "{output}"
    );
}

#[test]
fn throughput_table_with_two_ranks_on_one_host() {
    let (out, stdout, took) = mpiexec(&["-n", "2", PINGPONG, "-m", "-p", "4000000:20"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with("Throughput (MB/s) for packet size 4000000 bytes, 20 iterations:\n"),
        "{stdout}"
    );
    let pairs = pair_lines(&stdout);
    assert_eq!(pairs.len(), 1, "{stdout}");
    assert!(pairs[0].contains("[0] <-> ") && pairs[0].ends_with(|c: char| c.is_ascii_digit()));
    assert!(
        stdout.contains("Summary: min ") && stdout.contains("(MB/s)"),
        "{stdout}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn ring_and_tournament_pairings_over_four_ranks() {
    for (mode, expected) in [("-r", 4), ("-t", 6)] {
        let (out, stdout, took) = mpiexec(&["-n", "4", PINGPONG, "-m", mode, "-p", "1:500"]);
        assert!(out.status.success(), "{mode}: {out:?}");
        assert_eq!(pair_lines(&stdout).len(), expected, "{mode}:\n{stdout}");
        assert!(took < Duration::from_secs(5), "{mode}: {took:?}");
    }
}

#[test]
fn ranks_sharing_a_node_need_m() {
    let (out, stdout, _) = mpiexec(&["-n", "2", PINGPONG, "-p", "1:10"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout, "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ranks 0 and 1 both run on node") && stderr.contains("add -m"),
        "{stderr}"
    );
}

#[test]
fn bad_option_is_one_line_and_exit_2() {
    let out = Command::new(PINGPONG)
        .arg("-bogus")
        .output()
        .expect("run mpipingpong");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("mpipingpong: unknown option '-bogus'"),
        "{stderr}"
    );
}

#[test]
fn thresholds_fail_naming_the_pair() {
    let (out, stdout, _) = mpiexec(&[
        "-n",
        "2",
        PINGPONG,
        "-m",
        "-p",
        "1:100",
        "--max-latency",
        "0.000001",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout.contains("Summary: min "), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 pair failed the thresholds") && stderr.contains(" <-> "),
        "{stderr}"
    );
}

#[test]
fn xml_and_json_files_are_written_quietly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let xml = dir.path().join("out.xml");
    let json = dir.path().join("out.json");
    let (out, stdout, _) = mpiexec(&[
        "-n",
        "2",
        PINGPONG,
        "-m",
        "-p",
        "1:50",
        "-oq",
        "-s",
        xml.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout, "");
    let xml = std::fs::read_to_string(&xml).expect("xml file written");
    assert!(
        xml.contains("<MpiPingPong mode=\"serial\"") && xml.contains("participants=\"2\""),
        "{xml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json file written"))
            .expect("valid json");
    assert_eq!(
        json["participants"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );
}

/// `mpipingpong -m -p 1:200 -op` with its XML and JSON files, under
/// `mpiexec <mpiexec_args>` confined to `cpus` (with taskset, so the run
/// does not depend on how many CPUs this machine has); returns the console
/// text, the XML and the JSON.
fn pingpong_on_cpus(cpus: &str, mpiexec_args: &[&str]) -> (String, String, serde_json::Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (xml, json) = (dir.path().join("out.xml"), dir.path().join("out.json"));
    let out = without_host_mpi_env(&mut Command::new("taskset"))
        .args(["-c", cpus, MPIEXEC])
        .args(mpiexec_args)
        .args([PINGPONG, "-m", "-p", "1:200", "-op"])
        .args([
            "-s",
            xml.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .output()
        .expect("run taskset (util-linux) and mpiexec");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    let xml = std::fs::read_to_string(&xml).expect("xml file written");
    let json = std::fs::read_to_string(&json).expect("json file written");
    (
        stdout,
        xml,
        serde_json::from_str(&json).expect("valid json"),
    )
}

/// The pairs (first rank, second rank) each report marks as sharing `cpu`:
/// the result table, the `-op` lines, the XML file and the JSON file.
fn shared_pairs(
    stdout: &str,
    xml: &str,
    json: &serde_json::Value,
    cpu: u32,
) -> [Vec<(u64, u64)>; 4] {
    let mark = format!("(ranks share CPU {cpu})");
    let rank = |label: &str| -> u64 {
        let open = label.rfind('[').expect("node[rank] label");
        label[open + 1..label.len() - 1].parse().expect("rank")
    };
    let ranks_of = |line: &str| -> (u64, u64) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "<->").expect("a pair");
        (rank(words[at - 1]), rank(words[at + 1]))
    };
    let table = pair_lines(stdout)
        .into_iter()
        .filter(|l| l.ends_with(&mark))
        .map(ranks_of)
        .collect();
    let progress = stdout
        .lines()
        .filter(|l| l.contains(" done, ") && l.ends_with(&mark))
        .map(ranks_of)
        .collect();
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    let attr = |n: &roxmltree::Node, a: &str| n.attribute(a).and_then(|v| v.parse::<u64>().ok());
    let in_xml = doc
        .descendants()
        .filter(|n| n.has_tag_name("Pair") && n.attribute("sharedCpu").is_some())
        .inspect(|n| assert_eq!(attr(n, "sharedCpu"), Some(u64::from(cpu)), "{xml}"))
        .map(|n| {
            (
                attr(&n, "firstRank").unwrap(),
                attr(&n, "secondRank").unwrap(),
            )
        })
        .collect();
    let in_json = json["tests"][0]["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .filter(|p| !p["sharedCpu"].is_null())
        .inspect(|p| assert_eq!(p["sharedCpu"], u64::from(cpu), "{json}"))
        .map(|p| {
            (
                p["firstRank"].as_u64().unwrap(),
                p["secondRank"].as_u64().unwrap(),
            )
        })
        .collect();
    [table, progress, in_xml, in_json]
}

#[test]
fn pairs_whose_ranks_share_a_cpu_are_marked() {
    let mine = hpcpack::node::sys::affinity().expect("this test's CPUs");
    let [a, b] = match mine.as_slice() {
        [a, b, ..] => [*a, *b],
        _ => panic!("this test needs 2 CPUs, it may use {mine:?}"),
    };
    let two = format!("{a},{b}");
    // 3 ranks bound over 2 CPUs: ranks 0 and 2 get CPU a, rank 1 CPU b;
    // only the pair 0-2 shares a CPU, in every report.
    let (stdout, xml, json) = pingpong_on_cpus(&two, &["-n", "3", "-affinity"]);
    for (what, pairs) in ["table", "-op lines", "xml", "json"]
        .iter()
        .zip(shared_pairs(&stdout, &xml, &json, a))
    {
        assert_eq!(pairs, [(0, 2)], "{what}:\n{stdout}\n{xml}\n{json}");
    }
    assert_eq!(
        stdout.matches(&format!("(ranks share CPU {a})")).count(),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains("so one waits for the other to be scheduled"),
        "{stdout}"
    );

    // Separate CPUs, and unbound ranks that may both use two: no mark.
    for args in [&["-n", "2", "-affinity"][..], &["-n", "3"][..]] {
        let (stdout, xml, json) = pingpong_on_cpus(&two, args);
        assert!(!stdout.contains("share CPU"), "{args:?}: {stdout}");
        assert!(!xml.contains("sharedCpu"), "{args:?}: {xml}");
        let pairs = json["tests"][0]["pairs"].as_array().unwrap();
        assert!(
            pairs.iter().all(|p| p["sharedCpu"].is_null()),
            "{args:?}: {json}"
        );
    }
}

/// The rows of the connectivity table rank 0 printed (`0:.++` → `.++`).
fn table_rows(stdout: &str) -> Vec<String> {
    let after = stdout
        .split("SourceRank:[Indicators for all TargetRanks]")
        .nth(1)
        .unwrap_or_else(|| panic!("no connectivity table in:\n{stdout}"));
    after
        .lines()
        .take_while(|l| !l.starts_with("Summary"))
        .filter_map(|l| {
            let (rank, ind) = l.trim_start().split_once(':')?;
            rank.parse::<usize>().ok().map(|_| ind.to_string())
        })
        .collect()
}

/// Runs 4 ranks in ring mode (pairs 0-1, 1-2, 2-3, 3-0, and results sent
/// to rank 0: ranks 1 and 3 never need each other) with the table on.
fn ring_table(env: &[(&str, &str)]) -> (Output, String) {
    let mut args: Vec<&str> = vec!["-n", "4", "-env", "MSMPI_CONNECTIVITY_TABLE", "1"];
    for (k, v) in env {
        args.extend(["-env", k, v]);
    }
    args.extend([PINGPONG, "-m", "-r", "-p", "1:50"]);
    let (out, stdout, _) = mpiexec(&args);
    (out, stdout)
}

#[test]
fn channels_follow_the_msmpi_variables() {
    // Default: one host, so shared memory; 1 and 3 never connect.
    let (out, stdout) = ring_table(&[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        table_rows(&stdout),
        [".+++", "+.+.", "++.+", "+.+."],
        "{stdout}"
    );
    assert!(
        stdout.contains("Total Connections:    5\n  Shared Memory:      5\n"),
        "{stdout}"
    );

    // Shared memory off (and its deprecated MPICH_ alias): sockets.
    for var in ["MSMPI_DISABLE_SHM", "MPICH_DISABLE_SHM"] {
        let (out, stdout) = ring_table(&[(var, "1")]);
        assert!(out.status.success(), "{var}: {out:?}");
        assert_eq!(
            table_rows(&stdout),
            [".SSS", "S.S.", "SS.S", "S.S."],
            "{var}:\n{stdout}"
        );
    }

    // Preconnect: all pairs, or only pairs touching the listed ranks.
    let (_, stdout) = ring_table(&[("MSMPI_PRECONNECT", "all")]);
    assert_eq!(
        table_rows(&stdout),
        [".+++", "+.++", "++.+", "+++."],
        "{stdout}"
    );
    let (_, stdout) = ring_table(&[("MSMPI_PRECONNECT", "3"), ("MSMPI_DISABLE_SHM", "1")]);
    assert_eq!(
        table_rows(&stdout),
        [".SSS", "S.SS", "SS.S", "SSS."],
        "{stdout}"
    );
    let (_, stdout) = ring_table(&[("MSMPI_PRECONNECT", "0,2")]);
    assert_eq!(
        table_rows(&stdout),
        [".+++", "+.+.", "++.+", "+.+."],
        "{stdout}"
    );

    // MPICH_NETMASK picks the interface TCP uses.
    let (out, stdout) = ring_table(&[
        ("MSMPI_DISABLE_SHM", "1"),
        ("MPICH_NETMASK", "127.0.0.0/255.0.0.0"),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(table_rows(&stdout)[0], ".SSS", "{stdout}");
}

#[test]
fn no_channel_left_fails_loudly() {
    // Sockets off between ranks that may not use shared memory: no silent
    // fallback, a message naming each channel and why.
    let (out, _) = ring_table(&[("MSMPI_DISABLE_SHM", "1"), ("MSMPI_DISABLE_SOCK", "1")]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no channel between rank"), "{stderr}");
    assert!(
        stderr.contains("shared memory disabled by MSMPI_DISABLE_SHM=1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("sockets disabled by MSMPI_DISABLE_SOCK=1"),
        "{stderr}"
    );
    assert!(stderr.contains("network direct: "), "{stderr}");

    // A netmask that matches no interface names the host's addresses.
    let (out, _) = ring_table(&[
        ("MSMPI_DISABLE_SHM", "1"),
        ("MPICH_NETMASK", "203.0.113.0/24"),
    ]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "MPICH_NETMASK 203.0.113.0/255.255.255.0, from mpiexec -env MPICH_NETMASK, matches no interface"
        )
            && stderr.contains("127.0.0.1"),
        "{stderr}"
    );

    // A bad value is named.
    let (out, _) = ring_table(&[("MSMPI_PRECONNECT", "0-9")]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MSMPI_PRECONNECT=0-9: expected"),
        "{stderr}"
    );
}

#[test]
fn our_ranks_run_under_mpich_hydra() {
    // The issue's seed form: MPICH's own launcher starts mpipingpong, which
    // speaks PMI-1 to it like any MPICH program.
    let out = Command::new("mpiexec.hydra")
        .args(["-n", "3", "-env", "MSMPI_CONNECTIVITY_TABLE", "1"])
        .args([
            "-env",
            "MSMPI_PRECONNECT",
            "all",
            PINGPONG,
            "-m",
            "-p",
            "1:200",
        ])
        .env_remove("HPCPACK_NODE_NAME")
        .output()
        .expect("run mpiexec.hydra (Debian package mpich)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(pair_lines(&stdout).len(), 3, "{stdout}");
    assert_eq!(table_rows(&stdout), [".++", "+.+", "++."], "{stdout}");

    // A rank that dies under hydra ends the job with a failure, not a hang.
    let out = Command::new("mpiexec.hydra")
        .args(["-n", "2", PINGPONG, "-m", "-p", "1:10", "-bogus"])
        .output()
        .expect("run mpiexec.hydra");
    assert!(!out.status.success(), "{out:?}");
}

/// Starts `mpiexec` with `args` in the background, marked so its ranks can
/// be found; returns the child and the pid of rank `rank` once it runs.
#[allow(clippy::zombie_processes, reason = "the child is returned; callers wait for it")]
fn start_marked(args: &[&str], rank: u32) -> (std::process::Child, u32) {
    let mark = format!(
        "HPCPACK_TEST_MARK={}-{rank}-{}",
        std::process::id(),
        args.len()
    );
    let (k, v) = mark.split_once('=').unwrap();
    let mut child = without_host_mpi_env(&mut Command::new(MPIEXEC))
        .args(args)
        .env(k, v)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mpiexec");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let marked = crate::common::pids_with_env(&mark);
        let ranks = crate::common::pids_with_env(&format!("PMI_RANK={rank}"));
        if let Some(pid) = marked.iter().find(|p| ranks.contains(p)) {
            return (child, *pid);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output();
            panic!("rank {rank} never started: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_rank_killed_mid_pingpong_ends_the_job() {
    let (child, pid) = start_marked(&["-n", "3", PINGPONG, "-m", "-p", "1:100000000"], 1);
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().expect("wait for mpiexec");
    let took = killed.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        took < Duration::from_secs(2),
        "job ended {took:?} after the kill"
    );
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    assert!(stdout.contains("job aborted:"), "{stdout}");
    assert!(stdout.contains("---- error analysis -----"), "{stdout}");
    assert!(stdout.contains("[1] on "), "{stdout}");
}

#[test]
fn a_hung_rank_is_ended_by_timeout() {
    let (child, pid) = start_marked(
        &[
            "-timeout",
            "2",
            "-n",
            "2",
            PINGPONG,
            "-m",
            "-p",
            "1:100000000",
        ],
        1,
    );
    // A stopped rank never answers: its peer waits until -timeout.
    let status = Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let out = child.wait_with_output().expect("wait for mpiexec");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.contains("job aborted:"), "{stdout}");
    assert!(stdout.contains("timed out after 2 seconds"), "{stdout}");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the stopped rank was not killed"
    );
}

#[test]
fn progress_is_a_bar_on_a_terminal_and_lines_in_a_pipe() {
    // `script` gives mpiexec a terminal; mpiexec tells rank 0 (HPCPACK_TTY).
    let line = format!("{MPIEXEC} -n 3 {PINGPONG} -m -p 1:200 -op");
    let out = without_host_mpi_env(&mut Command::new("script"))
        .args(["-qc", &line, "/dev/null"])
        .output()
        .expect("script (bsdutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains('█') && text.contains("\x1b[2K"), "{text}");
    assert!(text.contains("pair 3 of 3 done"), "{text}");
    assert!(text.contains("Summary: min "), "{text}");

    let (out, stdout, _) = mpiexec(&["-n", "3", PINGPONG, "-m", "-p", "1:200", "-op"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!stdout.contains('\x1b'), "{stdout}");
    assert_eq!(stdout.matches(" done, ").count(), 3, "{stdout}");
}

#[test]
fn ranks_in_two_network_namespaces_talk_over_tcp_not_loopback() {
    if hpcpack::node::sys::uid() != 0 {
        return; // network namespaces need root
    }
    // Two namespaces of this host joined by a veth pair: one kernel (shared
    // memory would work) but two loopbacks, so TCP must use the veth.
    let tag = format!("hpt{}", std::process::id() % 100_000);
    let (a, b) = (format!("{tag}a"), format!("{tag}b"));
    let sh = |script: &str| {
        let out = Command::new("sh").args(["-ec", script]).output().expect("sh");
        assert!(out.status.success(), "{script}: {out:?}");
    };
    sh(&format!(
        "ip netns add {a}; ip netns add {b}; ip link add {a}v type veth peer name {b}v; \
         ip link set {a}v netns {a}; ip link set {b}v netns {b}; \
         ip -n {a} addr add 10.231.0.1/24 dev {a}v; ip -n {b} addr add 10.231.0.2/24 dev {b}v; \
         ip -n {a} link set {a}v up; ip -n {b} link set {b}v up; ip -n {a} link set lo up; ip -n {b} link set lo up"
    ));
    let (out, stdout, _) = mpiexec(&[
        "-genv", "MSMPI_DISABLE_SHM", "1", "-genv", "MSMPI_CONNECTIVITY_TABLE", "1",
        "-n", "1", "ip", "netns", "exec", &a, PINGPONG, "-m", "-p", "1:100", ":",
        "-n", "1", "ip", "netns", "exec", &b, PINGPONG, "-m", "-p", "1:100",
    ]);
    sh(&format!("ip netns del {a}; ip netns del {b}"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(table_rows(&stdout), [".S", "S."], "{stdout}");
}
