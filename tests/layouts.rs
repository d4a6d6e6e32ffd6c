//! Snapshot tests of every output layout a user sees: messages, views,
//! lists and tables, help, and error messages, as the real binaries print
//! them against a real embedded head node.
//!
//! Each snapshot starts with the command line (`$ job view 1`); failures also
//! show the exit code. What differs between machines and runs is replaced
//! before comparing: the state directory (`[TMP]`), this machine's host name
//! (`[HOST]`, so virtual nodes are `[HOST]-1`…), the user name where it is a
//! job's owner (`[USER]`), times (`[TIME]`), the version (`[VERSION]`), the
//! head node's pid (`[PID]`) and the memory size (`[MEM]`). The host and user
//! replacements keep table columns aligned whatever the real names' lengths.
//!
//! Besides the snapshots, the layout rules of the spec are checked directly:
//! `Property : Value` keys padded to one width, tables with a title line and
//! a dashed underline and the name first, and the exact messages scripts
//! parse. To update the snapshots: `INSTA_UPDATE=always cargo test --test
//! main layouts`, then read every changed `.snap` file.

use crate::common::{Cluster, host, parse_submitted, pids_with_env, property, wait_until};
use std::time::Duration;

/// Four virtual nodes of two cores each (fixed, so the tables do not depend
/// on the machine's CPU count), all in the group `azurenodes`.
const LAYOUT: &[&str] = &["--nodes", "4", "--cores-per-node", "2", "--node-group", "azurenodes"];

/// Width of the key column of `Property : Value` lines (spec §2.5).
const KEY_WIDTH: usize = 33;

/// Help is wrapped at the terminal width; fix it so snapshots do not depend
/// on `COLUMNS`.
const COLUMNS: &str = "100";

// ---------------------------------------------------------------------------
// Running commands and making their output comparable

/// The user name, as the head node shows owners.
fn user() -> String {
    hpcpack::node::sys::user_name(hpcpack::node::sys::uid())
}

/// `$ tool args…`, quoting arguments with spaces.
fn prompt(tool: &str, args: &[&str]) -> String {
    let mut s = format!("$ {tool}");
    for a in args {
        if a.contains(' ') || a.is_empty() { s += &format!(" \"{a}\"") } else { s += &format!(" {a}") }
    }
    s
}

/// Runs a command that must succeed with nothing on stderr; returns the
/// command line and its stdout (unscrubbed).
fn shown(c: &Cluster, tool: &str, args: &[&str]) -> String {
    let out = c.command(tool).args(args).env("COLUMNS", COLUMNS).output().expect("run tool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} failed ({}): {stdout}{stderr}", prompt(tool, args), out.status);
    assert!(stderr.is_empty(), "{} wrote to stderr: {stderr}", prompt(tool, args));
    format!("{}\n{stdout}", prompt(tool, args))
}

/// Runs a command that must fail; returns the command line, the exit code
/// and stderr (and stdout, if it printed anything).
fn refused(c: &Cluster, tool: &str, args: &[&str]) -> String {
    let out = c.command(tool).args(args).env("COLUMNS", COLUMNS).output().expect("run tool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{} should have failed: {stdout}", prompt(tool, args));
    assert!(!stderr.trim().is_empty(), "{} failed without a message", prompt(tool, args));
    let mut s = format!("{}\nexit code: {}\n{stderr}", prompt(tool, args), out.status.code().unwrap_or(-1));
    if !stdout.is_empty() {
        s += &format!("stdout:\n{stdout}");
    }
    s
}

/// Replaces `name` where it stands alone (or with a virtual node's `-N`
/// suffix) by `placeholder`. When padding follows (two spaces or more before
/// more text, as in a table), the padding is adjusted so the next column
/// stays where it was for any length of `name`.
fn replace_name(text: &str, name: &str, placeholder: &str) -> String {
    if name.is_empty() {
        return text.to_string();
    }
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let before_ok = i == 0 || !(word(b[i - 1]) || matches!(b[i - 1], b'-' | b'.' | b'/'));
        if before_ok && text[i..].starts_with(name) {
            let mut j = i + name.len();
            if b.get(j) == Some(&b'-') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
                j += 1;
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            let after_ok = match b.get(j) {
                None => true,
                Some(b'.') => !b.get(j + 1).is_some_and(|c| word(*c)),
                Some(c) => !(word(*c) || *c == b'-'),
            };
            if after_ok {
                out.push_str(placeholder);
                out.push_str(&text[i + name.len()..j]);
                let mut k = j;
                while b.get(k) == Some(&b' ') {
                    k += 1;
                }
                let spaces = k - j;
                let padding = spaces >= 2 && b.get(k).is_some_and(|c| *c != b'\n');
                let n = if padding { (spaces + name.len()).saturating_sub(placeholder.len()).max(1) } else { spaces };
                out.push_str(&" ".repeat(n));
                i = k;
                continue;
            }
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Replaces the user name where it is an owner: `Owner : root` and
/// `User Name : root` lines, `"Owner": "root"` in JSON, and the Owner column
/// of `job list` (the second column of rows that start with a job id). A job
/// or task named like the user, or a home directory, stays as it is.
fn scrub_user(text: &str, user: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let nl = &line[body.len()..];
        let trimmed = body.trim_start();
        let key = body.split_once(':').map(|(k, _)| k.trim());
        let new = if ["\"Owner\": ", "\"UserName\": "].iter().any(|k| trimmed.starts_with(k)) {
            body.replace(&format!(": \"{user}\""), ": \"[USER]\"")
        } else if matches!(key, Some("Owner" | "User Name")) && property(body, key.unwrap_or("")).as_deref() == Some(user) {
            let (k, _) = body.split_once(':').unwrap_or((body, ""));
            format!("{k}: [USER]")
        } else if let Some((id, rest)) = body.split_once(' ') {
            let owner_start = rest.len() - rest.trim_start().len();
            let second = rest.trim_start().split(' ').next().unwrap_or("");
            if !id.is_empty() && id.bytes().all(|c| c.is_ascii_digit()) && second == user {
                // Only the owner column, keeping the next column in place.
                let after = &rest[owner_start + user.len()..];
                let next = after.trim_start_matches(' ');
                let spaces = after.len() - next.len();
                let n = if spaces >= 2 && !next.is_empty() { (spaces + user.len()).saturating_sub("[USER]".len()).max(1) } else { spaces };
                format!("{id} {}[USER]{}{next}", &rest[..owner_start], " ".repeat(n))
            } else {
                body.to_string()
            }
        } else {
            body.to_string()
        };
        out.push_str(&new);
        out.push_str(nl);
    }
    out
}

/// Makes command output comparable across machines: see the module comment.
fn scrub(c: &Cluster, text: &str) -> String {
    let mut s = text.replace(&c.dir.path().display().to_string(), "[TMP]");
    s = replace_name(&s, &host(), "[HOST]");
    scrub_user(&s, &user())
}

/// The regex filters insta applies to every snapshot.
fn filters() -> Vec<(String, String)> {
    let version = hpcpack::VERSION.replace('.', r"\.");
    vec![
        (r"\b\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} [AP]M\b".into(), "[TIME]".into()),
        (format!(r"\b{version}\b"), "[VERSION]".into()),
        (r"(Process Id +: )\d+".into(), "${1}[PID]".into()),
        (r"(Memory ?Size +: )\d+".into(), "${1}[MEM]".into()),
        (r#"("MemorySize": ")\d+"#.into(), "${1}[MEM]".into()),
        // A state directory elsewhere than the cluster's own (TMPDIR).
        (r"/tmp/\.tmp[A-Za-z0-9]+".into(), "[TMP]".into()),
    ]
}

/// Snapshots `text` (scrubbed) under `name`.
fn snap(c: &Cluster, name: &str, text: &str) {
    let text = scrub(c, text);
    let f = filters();
    insta::with_settings!({filters => f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>()}, {
        insta::assert_snapshot!(name, text);
    });
}

/// Snapshots help text: only the filters, no host or user replacement (help
/// is the same everywhere).
fn snap_help(name: &str, text: &str) {
    let f = filters();
    insta::with_settings!({filters => f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>()}, {
        insta::assert_snapshot!(name, text);
    });
}

/// Waits until `tool args` shows `key` equal to `want`.
fn wait_for(c: &Cluster, tool: &str, args: &[&str], key: &str, want: &str) {
    let ok = wait_until(Duration::from_secs(30), || property(&c.ok(tool, args), key).as_deref() == Some(want));
    if !ok {
        // Everything about the jobs, to tell what happened.
        let jobs = c.ok("job", &["list", "/all", "/format:list"]);
        panic!("{} never showed {key} {want}:\n{}\n{jobs}", prompt(tool, args), c.ok(tool, args));
    }
}

fn job_state(c: &Cluster, id: u64, want: &str) {
    wait_for(c, "job", &["view", &id.to_string()], "State", want);
}

/// An environment marker unique to this cluster and `what`, for `/env:`.
fn marker(c: &Cluster, what: &str) -> String {
    let dir = c.dir.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("HPCPACK_LAYOUT_MARK={}-{what}", dir.trim_start_matches('.'))
}

/// Waits until a process carrying `marker` runs (or, with `running` false,
/// until none does). A task shows Running as soon as its supervisor is
/// spawned; waiting for the task's own process keeps a cancel from landing
/// while the supervisor starts up, which is not what these tests are about.
fn task_process(marker: &str, running: bool) {
    let ok = wait_until(Duration::from_secs(30), || pids_with_env(marker).is_empty() != running);
    assert!(ok, "the process with {marker} {}", if running { "never started" } else { "never ended" });
}

// ---------------------------------------------------------------------------
// Layout checks of the spec, on top of the snapshots

/// The output without the `$ command` line.
fn body(shown: &str) -> &str {
    shown.split_once('\n').map(|(_, b)| b).unwrap_or("")
}

/// Every `Property : Value` line has its key padded to [`KEY_WIDTH`] and
/// then `: ` (or `:` at the end of the line); blocks are separated by one
/// empty line. Lines after an `Output` key are the output's own lines.
fn assert_properties(text: &str) {
    let mut in_output = false;
    for line in body(text).lines() {
        if line.is_empty() {
            in_output = false;
            continue;
        }
        if in_output {
            continue;
        }
        assert!(line.len() > KEY_WIDTH, "short property line {line:?} in:\n{text}");
        let (key, rest) = line.split_at(KEY_WIDTH);
        assert!(!key.starts_with(' ') && key.contains(|c: char| c != ' '), "key not left-aligned: {line:?} in:\n{text}");
        assert!(rest == ":" || rest.starts_with(": "), "key not padded to {KEY_WIDTH}: {line:?} in:\n{text}");
        in_output = key.trim_end() == "Output";
    }
}

/// A table: a title line starting with `first_title`, a dashed underline
/// whose dash groups start where the titles start, then rows; returns the
/// rows' first tokens.
fn assert_table(text: &str, first_title: &str) -> Vec<String> {
    let lines: Vec<&str> = body(text).lines().collect();
    assert!(lines.len() >= 2, "a table needs two header lines:\n{text}");
    assert!(lines[0].starts_with(first_title), "the first column is {first_title}:\n{text}");
    assert!(lines[1].chars().all(|c| c == '-' || c == ' ') && lines[1].starts_with('-'), "second line is dashes:\n{text}");
    let starts = |l: &str, c: char| -> Vec<usize> {
        l.char_indices().filter(|(i, ch)| *ch == c && (*i == 0 || l.as_bytes()[i - 1] == b' ')).map(|(i, _)| i).collect()
    };
    let dash_starts = starts(lines[1], '-');
    for s in &dash_starts {
        assert!(lines[0].as_bytes().get(*s).is_some_and(|c| *c != b' '), "title misaligned with its underline:\n{text}");
    }
    lines[2..].iter().map(|l| l.split_whitespace().next().unwrap_or("").to_string()).collect()
}

/// `job submit`'s message, with the regular expression public scripts use:
/// `^Job has been submitted. ID: +([0-9]+)\.$`.
fn assert_submitted(text: &str) -> u64 {
    let line = body(text).lines().next().unwrap_or("");
    let n = line.strip_prefix("Job has been submitted. ID: ").and_then(|r| r.strip_suffix('.'));
    assert!(n.is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())), "bad submit message: {text}");
    parse_submitted(body(text))
}

// ---------------------------------------------------------------------------
// 1. Messages

#[test]
fn messages() {
    let c = Cluster::with_layout(LAYOUT);
    let h = host();
    let node2 = format!("{h}-2");

    // Nodes first, while no job runs (so offline goes straight to Offline).
    snap(&c, "msg_node_offline", &shown(&c, "node", &["offline", &node2]));
    snap(&c, "msg_node_online", &shown(&c, "node", &["online", &node2]));
    snap(&c, "msg_node_offline_all", &shown(&c, "node", &["offline", "/all"]));
    snap(&c, "msg_node_online_all", &shown(&c, "node", &["online", "/all"]));

    snap(&c, "msg_cluscfg_setenvs", &shown(&c, "cluscfg", &["setenvs", "FOO=bar", "GREETING=hello world", "BAZ="]));

    let out = shown(&c, "job", &["submit", "/jobname:hello", "echo", "hello"]);
    assert_eq!(assert_submitted(&out), 1);
    snap(&c, "msg_job_submit", &out);
    snap(&c, "msg_job_wait", &shown(&c, "job", &["wait", "1"]));

    let out = shown(&c, "job", &["new", "/jobname:built"]);
    assert_eq!(body(&out), "Created job, ID: 2\n", "spec §2.3");
    assert_eq!(body(&out).split_whitespace().nth(3), Some("2"), "scripts take the 4th word");
    snap(&c, "msg_job_new", &out);
    snap(&c, "msg_job_add", &shown(&c, "job", &["add", "2", "/name:first", "echo", "one"]));
    snap(&c, "msg_job_add_second", &shown(&c, "job", &["add", "2", "echo", "two"]));
    snap(&c, "msg_job_modify", &shown(&c, "job", &["modify", "2", "/priority:Highest", "/jobname:renamed"]));
    let out = shown(&c, "job", &["submit", "/id:2"]);
    assert_eq!(assert_submitted(&out), 2);
    snap(&c, "msg_job_submit_id", &out);

    // cancel, requeue and finish one job.
    let mark = marker(&c, "job3");
    let id = c.submit(&[&format!("/env:{mark}"), "sleep", "60"]);
    assert_eq!(id, 3);
    job_state(&c, 3, "Running");
    task_process(&mark, true);
    snap(&c, "msg_job_cancel", &shown(&c, "job", &["cancel", "3", "/message:no longer needed"]));
    job_state(&c, 3, "Canceled");
    task_process(&mark, false);
    snap(&c, "msg_job_requeue", &shown(&c, "job", &["requeue", "3"]));
    job_state(&c, 3, "Running");
    task_process(&mark, true);
    snap(&c, "msg_job_finish", &shown(&c, "job", &["finish", "3"]));
    job_state(&c, 3, "Finished");

    // cancel, requeue and finish one task.
    let mark = marker(&c, "job4");
    let id = c.submit(&[&format!("/env:{mark}"), "sleep", "60"]);
    assert_eq!(id, 4);
    wait_for(&c, "task", &["view", "4.1"], "State", "Running");
    task_process(&mark, true);
    snap(&c, "msg_task_cancel", &shown(&c, "task", &["cancel", "4.1"]));
    wait_for(&c, "task", &["view", "4.1"], "State", "Canceled");
    task_process(&mark, false);
    snap(&c, "msg_task_requeue", &shown(&c, "task", &["requeue", "4.1"]));
    wait_for(&c, "task", &["view", "4.1"], "State", "Running");
    task_process(&mark, true);
    snap(&c, "msg_task_finish", &shown(&c, "task", &["finish", "4.1"]));
    wait_for(&c, "task", &["view", "4.1"], "State", "Finished");

    // The /wait extension: the submit line, then the outcome.
    let out = shown(&c, "job", &["submit", "/wait", "echo", "waited"]);
    assert_eq!(assert_submitted(&out), 5);
    snap(&c, "msg_job_submit_wait", &out);
}

// ---------------------------------------------------------------------------
// 2. Views

#[test]
fn views() {
    let c = Cluster::with_layout(LAYOUT);
    let node1 = format!("{}-1", host());
    let h = host();
    c.ok("cluscfg", &["setenvs", "FOO=bar", "GREETING=hello world"]);
    let id = c.submit(&["/jobname:hello", "echo", "hello"]);
    assert_eq!(c.wait(id), "Finished");

    for (name, tool, args) in [
        ("view_job", "job", vec!["view", "1"]),
        ("view_job_detailed", "job", vec!["view", "1", "/detailed"]),
        ("view_job_history", "job", vec!["view", "1", "/history"]),
        ("view_task", "task", vec!["view", "1.1"]),
        ("view_task_detailed", "task", vec!["view", "1.1", "/detailed"]),
        ("view_node", "node", vec!["view", &node1]),
        ("view_node_detailed", "node", vec!["view", &node1, "/detailed"]),
        ("view_cluscfg", "cluscfg", vec!["view"]),
        ("view_hpcd_status", "hpcd", vec!["status"]),
    ] {
        let out = shown(&c, tool, &args);
        assert_properties(&out);
        snap(&c, name, &out);
    }
    let task = c.ok("task", &["view", "1.1"]);
    assert_eq!(property(&task, "Output").as_deref(), Some("hello"));
    assert_eq!(property(&task, "State").as_deref(), Some("Finished"));

    let json = shown(&c, "job", &["view", "1", "/format:json"]);
    let v: serde_json::Value = serde_json::from_str(body(&json)).expect("job view /format:json is JSON");
    assert_eq!(v["State"], "Finished");
    snap(&c, "view_job_json", &json);
    let json = shown(&c, "task", &["view", "1.1", "/format:json"]);
    let v: serde_json::Value = serde_json::from_str(body(&json)).expect("task view /format:json is JSON");
    assert_eq!(v["Output"], "hello");
    snap(&c, "view_task_json", &json);

    let envs = shown(&c, "cluscfg", &["listenvs"]);
    assert!(body(&envs).lines().all(|l| l.split_once('=').is_some_and(|(k, _)| !k.is_empty())), "NAME=value lines: {envs}");
    assert!(body(&envs).lines().any(|l| l == format!("CCP_CLUSTER_NAME={h}")), "spec §5.2: {envs}");
    snap(&c, "view_cluscfg_listenvs", &envs);
}

// ---------------------------------------------------------------------------
// 3. Lists and tables

#[test]
fn lists() {
    let c = Cluster::with_layout(LAYOUT);
    let h = host();
    let nodes: Vec<String> = (1..=4).map(|i| format!("{h}-{i}")).collect();

    // 1: Finished.
    let id = c.submit(&["/jobname:hello", "echo", "hello"]);
    assert_eq!(c.wait(id), "Finished");
    // 2: two tasks on two nodes, each pinned to one so the allocation is fixed.
    c.ok("job", &["new", "/jobname:two-tasks", "/numnodes:2"]);
    c.ok("job", &["add", "2", "/name:first", &format!("/requirednodes:{}", nodes[0]), "echo", "one"]);
    c.ok("job", &["add", "2", &format!("/requirednodes:{}", nodes[1]), "echo", "two"]);
    c.ok("job", &["submit", "/id:2"]);
    assert_eq!(c.wait(2), "Finished");
    // 3: Failed.
    let id = c.submit(&["/jobname:fails", "false"]);
    assert_eq!(c.wait(id), "Failed");
    // 4: Canceled.
    let mark = marker(&c, "stopped");
    let id = c.submit(&["/jobname:stopped", &format!("/env:{mark}"), "sleep", "60"]);
    job_state(&c, id, "Running");
    task_process(&mark, true);
    c.ok("job", &["cancel", &id.to_string()]);
    job_state(&c, id, "Canceled");
    // 5: Running on all four nodes.
    let mpi = marker(&c, "mpi");
    let id = c.submit(&["/jobname:mpi", "/nodegroup:azurenodes", "/numnodes:4", &format!("/env:{mpi}"), "sleep", "60"]);
    assert_eq!(id, 5);
    job_state(&c, id, "Running");
    task_process(&mpi, true);
    // 6: Queued behind it.
    let id = c.submit(&["/jobname:waiting", "/priority:AboveNormal", "hostname"]);
    assert_eq!(id, 6);
    job_state(&c, id, "Queued");

    let out = shown(&c, "job", &["list", "/all"]);
    assert_eq!(assert_table(&out, "Id"), ["1", "2", "3", "4", "5", "6"]);
    snap(&c, "list_jobs", &out);
    let out = shown(&c, "job", &["list"]);
    assert_eq!(assert_table(&out, "Id"), ["5", "6"], "without /all: your Queued and Running jobs");
    snap(&c, "list_jobs_default", &out);
    let out = shown(&c, "job", &["list", "/all", "/format:list"]);
    assert_properties(&out);
    snap(&c, "list_jobs_list", &out);
    let out = shown(&c, "job", &["list", "/all", "/format:json"]);
    let v: serde_json::Value = serde_json::from_str(body(&out)).expect("job list /format:json is JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(6));
    snap(&c, "list_jobs_json", &out);

    let out = shown(&c, "job", &["listtasks", "2"]);
    assert_properties(&out);
    snap(&c, "list_tasks", &out);
    let out = shown(&c, "job", &["listtasks", "2", "/format:table"]);
    assert_eq!(assert_table(&out, "Task Id"), ["2.1", "2.2"]);
    snap(&c, "list_tasks_table", &out);

    let out = shown(&c, "node", &["list"]);
    assert_eq!(assert_table(&out, "Node Name"), nodes, "spec §4.2: the node name is the first token of each row");
    snap(&c, "list_nodes", &out);
    let out = shown(&c, "node", &["list", "/format:list"]);
    assert_properties(&out);
    snap(&c, "list_nodes_list", &out);
    let out = shown(&c, "node", &["list", "/group:azurenodes"]);
    assert_eq!(assert_table(&out, "Node Name"), nodes);

    let out = shown(&c, "node", &["listcores"]);
    let names = assert_table(&out, "Node Name");
    assert_eq!(names.len(), 8, "two cores on each of four nodes:\n{out}");
    snap(&c, "list_cores", &out);
    let out = shown(&c, "node", &["listcores", "/format:json"]);
    let v: serde_json::Value = serde_json::from_str(body(&out)).expect("node listcores /format:json is JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(8));
    snap(&c, "list_cores_json", &out);

    // The summary of a busy cluster.
    let out = shown(&c, "cluscfg", &["view"]);
    assert_properties(&out);
    snap(&c, "list_cluscfg_view_busy", &out);

    // Stopping the head node leaves tasks running: end them.
    c.ok("job", &["cancel", "6"]);
    c.ok("job", &["cancel", "5"]);
    task_process(&mpi, false);
}

// ---------------------------------------------------------------------------
// 4. Help

const TOOLS: &[(&str, &[&str])] = &[
    ("job", &["add", "cancel", "finish", "list", "listtasks", "modify", "new", "requeue", "submit", "view", "wait"]),
    ("task", &["cancel", "finish", "requeue", "view"]),
    ("node", &["list", "listcores", "offline", "online", "view"]),
    ("cluscfg", &["listenvs", "setenvs", "view"]),
];

#[test]
fn help() {
    // Help needs no head node: an unstarted cluster, which must stay so.
    let c = Cluster::unstarted();
    for (tool, subs) in TOOLS {
        let out = shown(&c, tool, &["/?"]);
        assert_eq!(body(&out), body(&shown(&c, tool, &["/help"])), "{tool} /help");
        snap_help(&format!("help_{tool}"), &out);
        for sub in *subs {
            let out = shown(&c, tool, &[sub, "/?"]);
            assert_eq!(body(&out), body(&shown(&c, tool, &[sub, "/help"])), "{tool} {sub} /help");
            assert!(body(&out).contains(&format!("Usage: {tool} {sub}")), "{tool} {sub} /?:\n{out}");
            snap_help(&format!("help_{tool}_{sub}"), &out);
        }
    }
    // hpcd's options are GNU-style, but it takes /? and /help as every tool
    // does, for itself and its subcommands.
    let hpcd = shown(&c, "hpcd", &["--help"]);
    for q in ["/?", "/help", "/HELP", "-?"] {
        assert_eq!(body(&shown(&c, "hpcd", &[q])), body(&hpcd), "hpcd {q}");
    }
    let local = shown(&c, "hpcd", &["local", "/?"]);
    assert!(body(&local).contains("Usage: hpcd local") && body(&local).contains("start"), "hpcd local /?:\n{local}");
    snap_help("help_hpcd", &hpcd);
    assert!(!c.socket().exists(), "help started a head node");
}

// ---------------------------------------------------------------------------
// 5. Error messages

#[test]
fn errors() {
    let c = Cluster::with_layout(LAYOUT);
    let h = host();
    let id = c.submit(&["echo", "hi"]);
    assert_eq!(c.wait(id), "Finished");
    let mark = marker(&c, "running");
    let running = c.submit(&[&format!("/env:{mark}"), "sleep", "60"]);
    assert_eq!(running, 2);
    job_state(&c, running, "Running");
    task_process(&mark, true);

    let cases: &[(&str, &str, &[&str])] = &[
        // The command line.
        ("err_unknown_option", "job", &["submit", "/bogus", "hostname"]),
        ("err_unknown_option_near", "job", &["submit", "/numnode:4", "hostname"]),
        ("err_bad_range", "job", &["submit", "/numnodes:abc", "hostname"]),
        ("err_bad_priority", "job", &["submit", "/priority:Urgent", "hostname"]),
        ("err_range_backwards", "job", &["submit", "/numcores:4-2", "hostname"]),
        ("err_two_unit_types", "job", &["submit", "/numcores:1", "/numnodes:1", "hostname"]),
        ("err_nothing_to_submit", "job", &["submit"]),
        ("err_missing_job_id", "job", &["view"]),
        ("err_bad_job_id", "job", &["view", "abc"]),
        ("err_bad_format", "job", &["view", "1", "/format:xml"]),
        ("err_bad_state", "job", &["list", "/state:Sleeping"]),
        ("err_nothing_to_modify", "job", &["modify", "1"]),
        ("err_unknown_subcommand", "job", &["frobnicate"]),
        ("err_task_unknown_subcommand", "task", &["frobnicate"]),
        ("err_node_unknown_subcommand", "node", &["frobnicate"]),
        ("err_cluscfg_unknown_subcommand", "cluscfg", &["frobnicate"]),
        ("err_hpcd_unknown_subcommand", "hpcd", &["frobnicate"]),
        ("err_bad_task_id", "task", &["view", "1"]),
        ("err_parametric_task_id", "task", &["view", "1.1.3"]),
        ("err_bad_core_state", "node", &["listcores", "/state:dancing"]),
        ("err_bad_env_name", "cluscfg", &["setenvs", "1BAD=x"]),
        ("err_env_without_value", "cluscfg", &["setenvs", "FOO"]),
        // What the head node refuses.
        ("err_unknown_job", "job", &["view", "999"]),
        ("err_unknown_job_cancel", "job", &["cancel", "999"]),
        ("err_unknown_task", "task", &["view", "1.99"]),
        ("err_unknown_task_job", "task", &["view", "999.1"]),
        ("err_cancel_finished_job", "job", &["cancel", "1"]),
        ("err_add_to_submitted_job", "job", &["add", "2", "echo", "late"]),
        ("err_impossible_request", "job", &["submit", "/numnodes:99", "hostname"]),
        ("err_unknown_node_group", "job", &["submit", "/nodegroup:nosuch", "hostname"]),
        ("err_unknown_node_group_list", "node", &["list", "/group:nosuch"]),
        ("err_unknown_node", "node", &["view", "nosuchnode"]),
    ];
    for (name, tool, args) in cases {
        let out = refused(&c, tool, args);
        snap(&c, name, &out);
    }
    let node1 = format!("{h}-1");
    snap(&c, "err_node_already_online", &refused(&c, "node", &["online", &node1]));

    // Without a subcommand: the help, and a usage exit code.
    let out = c.command("job").env("COLUMNS", COLUMNS).output().expect("run job");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), body(&shown(&c, "job", &["/?"])));

    // The failures changed nothing: job 1 still Finished, job 2 still runs.
    assert_eq!(c.prop("job", &["view", "1"], "State"), "Finished");
    assert_eq!(c.prop("job", &["view", "2"], "Number of Tasks"), "1");
    c.ok("job", &["cancel", "2"]);
    task_process(&mark, false);
}

// ---------------------------------------------------------------------------
// The scrubbing itself

#[test]
fn scrubbing_keeps_columns() {
    let table = "Node Name            State\n-------------------- -----\nvm-1                 Online\n";
    let got = replace_name(table, "vm", "[HOST]");
    assert_eq!(got, "Node Name            State\n-------------------- -----\n[HOST]-1             Online\n");
    let long = "Node Name            State\n-------------------- -----\nfv-az12-34-1         Online\n";
    assert_eq!(replace_name(long, "fv-az12-34", "[HOST]"), got);
    assert_eq!(replace_name("Node vm-2 is Offline.", "vm", "[HOST]"), "Node [HOST]-2 is Offline.");
    assert_eq!(replace_name("Location : vm\nvmx /vm vm.x", "vm", "[HOST]"), "Location : [HOST]\nvmx /vm vm.x");
    assert_eq!(replace_name("a vm,vm-3", "vm", "[HOST]"), "a [HOST],[HOST]-3");
    let rows = "Id         Owner            Name\n1          root             root\nOwner                            : root\n  \"Owner\": \"root\",\nWorking Directory                : /root\n";
    assert_eq!(
        scrub_user(rows, "root"),
        "Id         Owner            Name\n1          [USER]           root\nOwner                            : [USER]\n  \"Owner\": \"[USER]\",\nWorking Directory                : /root\n"
    );
}
