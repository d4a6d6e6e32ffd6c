//! Slurm's commands asked for plain fields (`sinfo -o`, `squeue -o`), for
//! where slurmrestd does not answer: `sinfo --json` takes twice as long as
//! these, and Slurm 22.05's `squeue --json` ignores `--jobs` (it answers
//! with every job). Fields are separated by the ASCII unit separator, which
//! no name contains.

use super::json::SlurmJob;
use super::map::{Cluster, node_state};
use crate::model::COMPUTE_NODES;
use crate::wire::WireNode;

const SEP: char = '\u{1f}';

/// `sinfo -N -h -o` this: one line per node and partition.
pub fn sinfo_format() -> String {
    ["%N", "%T", "%c", "%m", "%C", "%P", "%f", "%X"].join(&SEP.to_string())
}

/// `squeue -h -o` this.
pub fn squeue_format() -> String {
    ["%i", "%j", "%u", "%U", "%T", "%r", "%N", "%P", "%V", "%S", "%e"].join(&SEP.to_string())
}

/// The nodes (in HPC Pack's terms, as [`super::json::nodes`] reads them) and
/// what a request maps onto, from `sinfo -N -h -o` [`sinfo_format`].
pub fn sinfo(text: &str) -> Result<(Vec<WireNode>, Cluster), String> {
    let mut nodes: Vec<WireNode> = Vec::new();
    let mut c = Cluster::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(SEP).collect();
        let [name, state, cpus, memory, alloc, partition, features, sockets] = f[..] else {
            return Err(format!("sinfo printed a line of {} fields, not 8: {line}", f.len()));
        };
        // `2/0/0/2`: allocated/idle/other/total.
        let in_use = alloc.split('/').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        // The default partition is marked `azurenodes*`.
        let partition = partition.trim_end_matches('*').to_string();
        let features: Vec<String> = features.split(',').filter(|f| !f.is_empty() && *f != "(null)").map(String::from).collect();
        if !c.partitions.contains(&partition) {
            c.partitions.push(partition.clone());
        }
        for f in &features {
            if !c.features.contains(f) {
                c.features.push(f.clone());
            }
        }
        if let Some(n) = nodes.iter_mut().find(|n| n.name == name) {
            if !n.groups.contains(&partition) {
                n.groups.push(partition);
            }
            continue;
        }
        c.nodes.push(name.to_string());
        let (s, reachable) = node_state(state);
        let mut groups = vec![COMPUTE_NODES.to_string(), partition];
        for f in features {
            if !groups.contains(&f) {
                groups.push(f);
            }
        }
        nodes.push(WireNode {
            name: name.to_string(),
            state: s.as_str().to_string(),
            health: "OK".into(),
            template: String::new(),
            location: String::new(),
            memory_size: memory.trim_end_matches('+').parse().unwrap_or(0),
            cores: cpus.trim_end_matches('+').parse().unwrap_or(0),
            sockets: sockets.trim_end_matches('+').parse().unwrap_or(0),
            hpc_pack_version: String::new(),
            on_azure: false,
            groups,
            roles: vec!["ComputeNode".into()],
            cores_in_use: in_use,
            reachable: Some(reachable),
            online_time: String::new(),
            offline_time: String::new(),
        });
    }
    Ok((nodes, c))
}

/// `2026-12-03T16:01:02` (Slurm prints local time) as seconds since the
/// epoch; `N/A`, `Unknown` and `None` are `None`.
fn time(s: &str) -> Option<i64> {
    let (date, clock) = s.split_once('T')?;
    let d: Vec<i32> = date.split('-').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let t: Vec<i32> = clock.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let (&[y, mo, da], &[h, mi, se]) = (&d[..], &t[..]) else { return None };
    // SAFETY: tm is plain data, zeroed then filled; mktime reads and
    // normalises it and uses the process's time zone.
    let secs = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = da;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = se;
        tm.tm_isdst = -1;
        libc::mktime(&mut tm)
    };
    (secs > 0).then_some(secs)
}

/// The jobs of `squeue -h -o` [`squeue_format`].
pub fn squeue(text: &str) -> Result<Vec<SlurmJob>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(SEP).collect();
            let [id, name, user, uid, state, reason, nodes, partition, submit, start, end] = f[..] else {
                return Err(format!("squeue printed a line of {} fields, not 11: {line}", f.len()));
            };
            Ok(SlurmJob {
                id: id.parse().map_err(|_| format!("squeue printed '{id}' as a job id"))?,
                name: name.to_string(),
                user: user.to_string(),
                uid: uid.parse().ok(),
                state: state.to_string(),
                reason: reason.to_string(),
                nodes: nodes.to_string(),
                partition: partition.to_string(),
                submit_time: time(submit),
                start_time: time(start),
                end_time: time(end),
                exit_code: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(fields: &[&str]) -> String {
        fields.join(&SEP.to_string()) + "\n"
    }

    #[test]
    fn sinfo_lines_read_as_nodes_and_what_requests_map_onto() {
        let text = [
            line(&["node1", "idle", "2", "4000", "0/2/0/2", "azurenodes*", "azurenodes", "2"]),
            line(&["node1", "idle", "2", "4000", "0/2/0/2", "debug", "azurenodes", "2"]),
            line(&["node2", "drained", "4", "8000", "0/0/4/4", "azurenodes*", "ib,gpu", "1"]),
            line(&["node3", "mixed", "2", "4000", "1/1/0/2", "azurenodes*", "(null)", "2"]),
        ]
        .concat();
        let (n, c) = sinfo(&text).unwrap();
        assert_eq!(n.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["node1", "node2", "node3"]);
        assert_eq!(n[0].groups, ["ComputeNodes", "azurenodes", "debug"]);
        assert_eq!((n[1].state.as_str(), n[1].cores, n[1].memory_size, n[1].sockets), ("Offline", 4, 8000, 1));
        assert_eq!((n[2].state.as_str(), n[2].cores_in_use), ("Online", 1));
        assert_eq!(n[2].groups, ["ComputeNodes", "azurenodes"]);
        assert_eq!(c.partitions, ["azurenodes", "debug"]);
        assert_eq!(c.features, ["azurenodes", "ib", "gpu"]);
        assert!(sinfo("node1|idle").is_err());
    }

    #[test]
    fn squeue_lines_read_as_jobs() {
        let text = line(&["42", "where", "alice", "1000", "PENDING", "Resources", "", "azurenodes", "2026-12-03T16:01:02", "N/A", "Unknown"]);
        let j = &squeue(&text).unwrap()[0];
        assert_eq!((j.id, j.name.as_str(), j.uid, j.state.as_str(), j.reason.as_str()), (42, "where", Some(1000), "PENDING", "Resources"));
        assert!(j.submit_time.is_some_and(|t| t > 1_700_000_000));
        assert_eq!((j.start_time, j.end_time), (None, None));
    }
}
