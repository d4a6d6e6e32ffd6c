//! Slurm's JSON (`sinfo --json`, slurmrestd's `/nodes`) read into this
//! project's wire shapes. Read leniently, as the shapes move between
//! Slurm's API versions: a state is a string (22.05: `"idle"` with
//! `state_flags`) or a list (23.02 on: `["IDLE", "DRAIN"]`); features are a
//! comma-separated string or a list.

use super::map::{Cluster, node_state};
use crate::model::COMPUTE_NODES;
use crate::wire::WireNode;
use serde_json::Value;

/// The words of a string-or-list field.
fn words(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split(',').map(str::trim).filter(|w| !w.is_empty()).map(String::from).collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    }
}

fn number(n: &Value, key: &str) -> u64 {
    match n.get(key) {
        Some(Value::Number(x)) => x.as_u64().unwrap_or(0),
        // 23.02 on: {"set": true, "number": N}
        Some(Value::Object(o)) => o.get("number").and_then(Value::as_u64).unwrap_or(0),
        _ => 0,
    }
}

/// The list `key` of a Slurm JSON answer (`what`: a node, a job), or the
/// first of the answer's errors.
fn list(text: &str, key: &str, what: &str) -> Result<Vec<Value>, String> {
    let mut doc: Value = serde_json::from_str(text).map_err(|e| format!("Slurm's {what} list is not JSON: {e}"))?;
    if let Some(e) = doc.get("errors").and_then(Value::as_array).and_then(|a| a.first()) {
        let what = e.get("error").or_else(|| e.get("description")).and_then(Value::as_str).unwrap_or("an error");
        return Err(format!("Slurm answered with {what}"));
    }
    match doc.get_mut(key).map(Value::take) {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(format!("Slurm's answer has no {what} list")),
    }
}

/// The nodes of `sinfo --json` (or slurmrestd's `/nodes`) in HPC Pack's
/// terms: state and reachability from Slurm's state and flags, groups
/// `ComputeNodes`, the node's partitions and its features.
pub fn nodes(text: &str) -> Result<Vec<WireNode>, String> {
    Ok(nodes_and_cluster(text)?.0)
}

/// What a request is mapped onto (see [`super::map::sbatch_options`]):
/// the partitions, features and node names of `sinfo --json`.
pub fn cluster(text: &str) -> Result<Cluster, String> {
    Ok(nodes_and_cluster(text)?.1)
}

/// [`nodes`] and [`cluster`] from one reading of the answer.
pub fn nodes_and_cluster(text: &str) -> Result<(Vec<WireNode>, Cluster), String> {
    let mut c = Cluster::default();
    let mut nodes = Vec::new();
    for n in list(text, "nodes", "node")? {
        let name = n.get("name").and_then(Value::as_str).ok_or("a Slurm node without a name")?.to_string();
        let mut state = words(n.get("state"));
        state.extend(words(n.get("state_flags")));
        let (s, reachable) = node_state(&state.join("+"));
        let partitions = words(n.get("partitions"));
        let mut groups = vec![COMPUTE_NODES.to_string()];
        for g in partitions.iter().cloned().chain(words(n.get("active_features").or(n.get("features")))) {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        c.nodes.push(name.clone());
        for p in partitions {
            if !c.partitions.contains(&p) {
                c.partitions.push(p);
            }
        }
        for f in words(n.get("features")) {
            if !c.features.contains(&f) {
                c.features.push(f);
            }
        }
        nodes.push(WireNode {
            name,
            state: s.as_str().to_string(),
            health: "OK".into(),
            template: String::new(),
            location: String::new(),
            memory_size: number(&n, "real_memory"),
            cores: number(&n, "cpus") as u32,
            sockets: number(&n, "sockets") as u32,
            hpc_pack_version: String::new(),
            on_azure: false,
            groups,
            roles: vec!["ComputeNode".into()],
            cores_in_use: number(&n, "alloc_cpus") as u32,
            reachable: Some(reachable),
            online_time: String::new(),
            offline_time: String::new(),
        });
    }
    Ok((nodes, c))
}

/// A job as `squeue --json` (or slurmrestd's `/jobs`) shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlurmJob {
    pub id: u64,
    pub name: String,
    pub user: String,
    pub uid: Option<u32>,
    /// Slurm's state word (`PENDING`, `RUNNING`, `COMPLETED` …).
    pub state: String,
    /// Why it waits or ended (`Priority`, `Resources`, `JobHeldUser` …;
    /// `None` for no reason).
    pub reason: String,
    /// The allocated nodes, as a host list (`node[1-3]`).
    pub nodes: String,
    pub partition: String,
    /// Seconds since the epoch; `None` when not (yet) set.
    pub submit_time: Option<i64>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// The batch script's exit code (128 + signal when killed).
    pub exit_code: Option<i64>,
}

/// A time field: a number (22.05) or `{"set", "infinite", "number"}`
/// (23.02 on); zero and unset are `None`.
fn time(j: &Value, key: &str) -> Option<i64> {
    let n = match j.get(key)? {
        Value::Number(x) => x.as_i64()?,
        Value::Object(o) => {
            if o.get("set").and_then(Value::as_bool) == Some(false) || o.get("infinite").and_then(Value::as_bool) == Some(true) {
                return None;
            }
            o.get("number")?.as_i64()?
        }
        _ => return None,
    };
    (n > 0).then_some(n)
}

/// `exit_code`: a wait status (22.05: 768 is exit code 3, 9 is signal 9)
/// or `{"return_code", "signal"}` (23.02 on).
fn exit_code(j: &Value) -> Option<i64> {
    match j.get("exit_code")? {
        Value::Number(x) => {
            let w = x.as_i64()?;
            Some(if w & 0x7f != 0 { 128 + (w & 0x7f) } else { (w >> 8) & 0xff })
        }
        Value::Object(o) => {
            let num = |v: Option<&Value>| match v {
                Some(Value::Number(x)) => x.as_i64(),
                Some(Value::Object(o)) if o.get("set").and_then(Value::as_bool) != Some(false) => o.get("number").and_then(Value::as_i64),
                _ => None,
            };
            let signal = o.get("signal").and_then(|s| num(s.get("id")).or_else(|| num(Some(s))));
            match signal {
                Some(sig) if sig > 0 => Some(128 + sig),
                _ => num(o.get("return_code")),
            }
        }
        _ => None,
    }
}

fn string(j: &Value, key: &str) -> String {
    words(j.get(key)).join(",")
}

/// The jobs of `squeue --json` (or slurmrestd's `/jobs`).
pub fn jobs(text: &str) -> Result<Vec<SlurmJob>, String> {
    list(text, "jobs", "job")?
        .iter()
        .map(|j| {
            let id = j.get("job_id").and_then(|v| v.as_u64().or_else(|| v.get("number").and_then(Value::as_u64)));
            Ok(SlurmJob {
                id: id.ok_or("a Slurm job without an id")?,
                name: string(j, "name"),
                user: string(j, "user_name"),
                uid: j.get("user_id").and_then(Value::as_u64).map(|u| u as u32),
                // 23.02 on: a list, the base state first, then flags.
                state: words(j.get("job_state")).first().cloned().unwrap_or_default(),
                reason: string(j, "state_reason"),
                nodes: string(j, "nodes"),
                partition: string(j, "partition"),
                submit_time: time(j, "submit_time"),
                start_time: time(j, "start_time"),
                end_time: time(j, "end_time"),
                exit_code: exit_code(j),
            })
        })
        .collect()
}

/// A batch job as slurmrestd v0.0.38 (Slurm 22.05) takes it: the `sbatch`
/// options this project makes, `--chdir`, `--output`, `--error` and the
/// environment (all of it, as `sbatch --export=ALL` passes it). `None`
/// when an option has no field in that version (`--exclude`, `--begin`),
/// or one 22.05 does not honour (`--no-requeue`): `sbatch` submits those.
pub fn submission_v0038(script: &str, options: &[String], env: &[(String, String)]) -> Option<serde_json::Value> {
    use serde_json::{Value, json};
    let mut job = serde_json::Map::new();
    for o in options {
        let (name, value) = o.strip_prefix("--")?.split_once('=').map(|(n, v)| (n, Some(v))).unwrap_or((o.trim_start_matches('-'), None));
        let int = |v: Option<&str>| v.and_then(|v| v.trim_end_matches('M').parse::<i64>().ok()).map(Value::from);
        let (field, v) = match (name, value) {
            ("job-name", Some(v)) => ("name", json!(v)),
            // As sbatch writes it: 22.05's parser drops a [min, max] array.
            ("nodes", Some(v)) => ("nodes", json!(v)),
            ("ntasks", v) => ("tasks", int(v)?),
            ("partition", Some(v)) => ("partition", json!(v)),
            ("constraint", Some(v)) => ("constraints", json!(v)),
            ("mincpus", v) => ("minimum_cpus_per_node", int(v)?),
            ("mem", v) if value.is_some_and(|x| x.ends_with('M')) => ("memory_per_node", int(v)?),
            ("time", v) => ("time_limit", int(v)?),
            ("nice", v) => ("nice", int(v)?),
            ("comment", Some(v)) => ("comment", json!(v)),
            ("exclusive", None) => ("exclusive", json!("true")),
            ("hold", None) => ("hold", json!(true)),
            ("requeue", None) => ("requeue", json!(true)),
            // 22.05 keeps a job requeueable whatever "requeue": false says.
            ("no-requeue", None) => return None,
            ("chdir", Some(v)) => ("current_working_directory", json!(v)),
            ("output", Some(v)) => ("standard_output", json!(v)),
            ("error", Some(v)) => ("standard_error", json!(v)),
            ("parsable", None) => continue,
            _ => return None,
        };
        job.insert(field.into(), v);
    }
    let env: serde_json::Map<String, Value> = env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    job.insert("environment".into(), Value::Object(env));
    Some(json!({ "script": script, "job": job }))
}

/// The job id slurmrestd's answer to a submission gives, or Slurm's
/// message when it refused it.
pub fn submitted(body: &str) -> Result<u64, String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("slurmrestd answered a submission with what is not JSON: {e}"))?;
    // A held job comes with an "error" that it is held: the id is what counts.
    if let Some(id) = v["job_id"].as_u64().filter(|id| *id > 0) {
        return Ok(id);
    }
    if let Some(e) = v["errors"].as_array().and_then(|a| a.first()) {
        let text = e["error"].as_str().or(e["description"].as_str()).unwrap_or("refused").to_string();
        return Err(text);
    }
    v["job_id"].as_u64().ok_or_else(|| format!("slurmrestd answered a submission without a job id: {}", body.chars().take(200).collect::<String>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `squeue --json` of the test rig (Slurm 22.05.8): finished, failed
    /// (exit 3, and killed by signal 9) and canceled jobs.
    const SQUEUE_22_05: &str = include_str!("testdata/squeue-22.05.json");

    #[test]
    fn slurm_22_05_jobs() {
        let j = jobs(SQUEUE_22_05).unwrap();
        assert_eq!(j.iter().map(|x| x.id).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        assert_eq!((j[0].state.as_str(), j[0].nodes.as_str(), j[0].name.as_str(), j[0].user.as_str()), ("COMPLETED", "node[1-2]", "t1", "root"));
        assert_eq!((j[0].start_time, j[0].end_time), (Some(1796312690), Some(1796312720)));
        assert_eq!((j[1].state.as_str(), j[1].reason.as_str(), j[1].nodes.as_str()), ("CANCELLED", "BeginTime", ""));
        assert_eq!(j[4].exit_code, Some(3), "wait status 768");
        assert_eq!(j[5].exit_code, Some(137), "killed by signal 9");
    }

    #[test]
    fn later_job_shapes() {
        let v40 = r#"{"jobs":[{"job_id":7,"name":"x","user_name":"u","job_state":["FAILED"],"state_reason":"NonZeroExitCode",
            "nodes":"n[1-2]","partition":"p","submit_time":{"set":true,"infinite":false,"number":100},
            "start_time":{"set":true,"number":101},"end_time":{"set":false,"number":0},
            "exit_code":{"status":["ERROR"],"return_code":{"set":true,"number":2},"signal":{"id":{"set":false,"number":0},"name":""}}}],"errors":[]}"#;
        let j = &jobs(v40).unwrap()[0];
        assert_eq!((j.state.as_str(), j.submit_time, j.end_time, j.exit_code), ("FAILED", Some(100), None, Some(2)));
    }

    /// `sinfo --json` of the test rig (Slurm 22.05.8, three idle nodes).
    const SINFO_22_05: &str = include_str!("testdata/sinfo-22.05.json");

    #[test]
    fn slurm_22_05_nodes_read_as_hpc_packs() {
        let n = nodes(SINFO_22_05).unwrap();
        assert_eq!(n.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["node1", "node2", "node3"]);
        assert_eq!(n[0].state, "Online");
        assert_eq!(n[0].reachable, Some(true));
        assert_eq!((n[0].cores, n[0].sockets, n[0].memory_size, n[0].cores_in_use), (2, 2, 4000, 0));
        assert_eq!(n[0].groups, ["ComputeNodes", "azurenodes"]);
        let c = cluster(SINFO_22_05).unwrap();
        assert_eq!((c.partitions, c.features, c.nodes.len()), (vec!["azurenodes".to_string()], vec!["azurenodes".to_string()], 3));
    }

    #[test]
    fn later_shapes_and_errors() {
        let v40 = r#"{"nodes":[{"name":"n1","state":["IDLE","DRAIN"],"cpus":4,"sockets":1,
            "real_memory":8000,"alloc_cpus":0,"partitions":["p"],"features":["ib","gpu"]}],"errors":[]}"#;
        let n = nodes(v40).unwrap();
        assert_eq!(n[0].state, "Offline", "an idle drained node takes no work");
        assert_eq!(n[0].groups, ["ComputeNodes", "p", "ib", "gpu"]);
        let bad = r#"{"nodes":[],"errors":[{"error":"Invalid user","error_number":1}]}"#;
        assert_eq!(nodes(bad).unwrap_err(), "Slurm answered with Invalid user");
        assert!(nodes("<html>").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn a_submission_takes_the_options_it_has_fields_for() {
        let opts: Vec<String> = ["--parsable", "--chdir=/r", "--output=/dev/null", "--error=/r/log", "--hold", "--job-name=x", "--nodes=2-3", "--ntasks=4", "--partition=p", "--constraint=ib", "--mem=512M", "--time=2", "--nice=10", "--exclusive", "--requeue"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let b = submission_v0038("#!/bin/sh\n", &opts, &[("HOME".into(), "/h".into())]).unwrap();
        let j = &b["job"];
        assert_eq!(b["script"], "#!/bin/sh\n");
        assert_eq!((j["current_working_directory"].as_str(), j["standard_error"].as_str(), j["hold"].as_bool()), (Some("/r"), Some("/r/log"), Some(true)));
        assert_eq!(j["nodes"], "2-3");
        assert_eq!((j["tasks"].as_i64(), j["memory_per_node"].as_i64(), j["time_limit"].as_i64(), j["nice"].as_i64()), (Some(4), Some(512), Some(2), Some(10)));
        assert_eq!((j["exclusive"].as_str(), j["requeue"].as_bool(), j["environment"]["HOME"].as_str()), (Some("true"), Some(true), Some("/h")));
        // No field for these in v0.0.38: sbatch submits the job.
        assert!(submission_v0038("", &["--exclude=node3".to_string()], &[]).is_none());
        assert!(submission_v0038("", &["--begin=2030-01-01T00:00:00".to_string()], &[]).is_none());
        assert!(submission_v0038("", &["--no-requeue".to_string()], &[]).is_none());
    }

    #[test]
    fn a_submissions_answer_is_an_id_or_slurms_message() {
        assert_eq!(submitted(r#"{"errors":[],"job_id":42,"step_id":"batch"}"#), Ok(42));
        assert_eq!(submitted(r#"{"errors":[{"error_code":2042,"error":"Job is in held state, pending scheduler release"}],"job_id":43}"#), Ok(43));
        assert_eq!(submitted(r#"{"errors":[{"error":"Invalid partition name specified","errno":2015}]}"#), Err("Invalid partition name specified".into()));
        assert!(submitted("<html>").is_err());
    }
}
