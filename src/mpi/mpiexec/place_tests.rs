//! Tests of host lists, machinefiles and rank placement, including
//! `mpiexec -c 1 -affinity mpipingpong …` under `CCP_NODES`.

use super::*;
use crate::mpi::mpiexec::hosts::{machinefile_hosts, parse_host_tokens};
use crate::mpi::mpiexec::plan::AffinityMask;
use crate::mpi::mpiexec::options::tests::{Fake, plan_with};

fn plan(s: &str) -> Plan {
    plan_with(s, &Fake::default())
}

/// Placement as `host:rank,rank …` per section, `|` between sections.
fn layout(cmd: &str, ccp_nodes: Option<&str>, cpus: u32) -> String {
    let placed = place(&plan(cmd), ccp_nodes, "local", cpus).unwrap();
    placed
        .iter()
        .map(|s| {
            s.iter()
                .map(|h| {
                    let r: Vec<String> = h.ranks.iter().map(u32::to_string).collect();
                    format!("{}:{}", h.host, r.join(","))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn place_err(cmd: &str, ccp_nodes: Option<&str>, cpus: u32) -> String {
    place(&plan(cmd), ccp_nodes, "local", cpus)
        .unwrap_err()
        .to_string()
}

const NODES: &str = "4 N1 2 N2 2 N3 2 N4 2";

#[test]
fn seed_command_runs_one_rank_per_node() {
    let cmd = "-c 1 -affinity mpipingpong -p 1:100000 -op -s nul";
    assert_eq!(layout(cmd, Some(NODES), 8), "N1:0 N2:1 N3:2 N4:3");
}

#[test]
fn ccp_nodes_is_the_pool_and_its_counts_the_default() {
    assert_eq!(layout("x", Some(NODES), 8), "N1:0,1 N2:2,3 N3:4,5 N4:6,7");
    assert_eq!(
        layout("-n * x", Some(NODES), 8),
        "N1:0,1 N2:2,3 N3:4,5 N4:6,7"
    );
    // Fewer ranks fill hosts in order; more wrap around.
    assert_eq!(layout("-n 3 x", Some(NODES), 8), "N1:0,1 N2:2");
    assert_eq!(layout("-n 5 x", Some("2 a 1 b 1"), 8), "a:0,2,4 b:1,3");
    // Without CCP_NODES: the local host with all its CPUs.
    assert_eq!(layout("x", None, 3), "local:0,1,2");
    assert_eq!(layout("-c 2 x", None, 8), "local:0,1");
    // Extra whitespace between tokens is fine.
    assert_eq!(layout("x", Some("2  a 1\tb 1 "), 8), "a:0 b:1");
}

#[test]
fn ccp_nodes_errors_are_ms_mpis() {
    let overflow = "Error: The HPC Server Scheduler could not fit all the node names for\n\
                    this job in the CCP_NODES environment variable, preventing this job from\n\
                    running on all assigned nodes.  Use mpiexec's \"-machinefile\" option to\n\
                    specify all the nodes to run this job.";
    assert_eq!(place_err("x", Some("Overflow"), 4), overflow);
    assert_eq!(place_err("-hosts 1 h x", Some("overflow"), 4), overflow);
    assert_eq!(
        place_err("x", Some("four N1 1"), 4),
        "Error: while parsing CCP_NODES environment variable. Error: expecting a positive number of hosts following the -hosts option."
    );
    assert_eq!(
        place_err("x", Some("2 N1 1"), 4),
        "Error: while parsing CCP_NODES environment variable. Error: expecting a host name following the -hosts option."
    );
    assert_eq!(
        place_err("x", Some(" 1 N1"), 4),
        "Error: while parsing CCP_NODES environment variable. Error: expecting a positive number of hosts following the -hosts option."
    );
}

#[test]
fn a_machinefile_makes_overflow_harmless() {
    let files = Fake::default().file("m", "h1 2\n");
    let p = plan_with("-machinefile m x", &files);
    let placed = place(&p, Some("Overflow"), "local", 4).unwrap();
    assert_eq!(
        placed[0],
        [HostRanks {
            host: "h1".into(),
            ranks: vec![0, 1]
        }]
    );
}

#[test]
fn hosts_lists_with_counts_and_masks() {
    assert_eq!(layout("-hosts 2 a 3 b x", Some(NODES), 8), "a:0,1,2 b:3");
    assert_eq!(layout("-c 1 -hosts 2 a 3 b 2 x", None, 8), "a:0 b:1");
    let p = plan("-hosts 2 a 2,0x3,c:1 b 1,f x");
    let hosts = p.sections[0].hosts.as_ref().unwrap();
    assert!(p.global.explicit_affinity);
    assert_eq!(
        hosts[0].masks,
        [
            AffinityMask { mask: 3, group: 0 },
            AffinityMask {
                mask: 0xc,
                group: 1
            }
        ]
    );
    assert_eq!(
        hosts[1].masks,
        [AffinityMask {
            mask: 0xf,
            group: 0
        }]
    );
    let e = |tokens: &str| {
        let t: Vec<String> = tokens.split(' ').map(str::to_string).collect();
        parse_host_tokens(&t).unwrap_err().to_string()
    };
    assert_eq!(
        e("2 a 2,1,2 b 1"),
        "Error: All hosts must specify explicit affinity if any do"
    );
    assert_eq!(
        e("2 a 1 b 1,1"),
        "Error: All hosts must specify explicit affinity if any do"
    );
    assert_eq!(
        e("1 a 2,1"),
        "Error: Affinity mask count mismatch in hosts list specifier."
    );
    assert_eq!(
        e("1 a 1,zz"),
        "Error: Invalid affinity mask specifier in hosts list."
    );
    assert_eq!(
        e("1 a 1,1:x"),
        "Error: Invalid affinity group specifier in hosts list."
    );
    assert_eq!(
        e("1 a 0"),
        "Error: expecting a positive number of cores following the host name."
    );
    assert_eq!(
        e("1 a ,1"),
        "Error: expecting a positive number of cores following the host name."
    );
    assert_eq!(
        e("40000 a"),
        "Error: number of hosts exceeds the maximum supported ranks."
    );
    assert_eq!(
        e("2 a 30000 b 3000"),
        "Error: number of processes requested by the host entry exceeds the maximum supported ranks."
    );
}

#[test]
fn mpmd_sections_share_the_global_pool() {
    // Section 1 takes one core, section 2 what is left, continuing from there.
    assert_eq!(
        layout("-n 1 a : b", Some(NODES), 8),
        "N1:0 | N1:1 N2:2,3 N3:4,5 N4:6,7"
    );
    assert_eq!(
        layout("-n 1 a : -n 2 b", Some(NODES), 8),
        "N1:0 | N1:1 N2:2"
    );
    assert_eq!(layout("-n 1 a : -n 2 b", None, 4), "local:0 | local:1,2");
    // A section with its own hosts does not use up the global pool.
    assert_eq!(layout("-host h a : b", Some("1 n 2"), 8), "h:0 | n:1,2");
    // The -help2 example: 4 hosts x 8 cores, 1 master and 31 workers.
    let files = Fake::default().file("hosts.txt", "h1 8\nh2 8\nh3 8\nh4 8\n");
    let p = plan_with("-gmachinefile hosts.txt -n 1 master : worker", &files);
    let placed = place(&p, None, "local", 2).unwrap();
    assert_eq!(placed[1].iter().map(|h| h.ranks.len()).sum::<usize>(), 31);
    assert_eq!(placed[1][0].ranks[0], 1);
}

#[test]
fn sections_without_counts() {
    assert_eq!(
        place_err("a : b", Some(NODES), 8),
        "Error: expecting one of -n, -np, -hosts or -machinefile in section 2."
    );
    assert_eq!(
        place_err("-n 8 a : b", Some(NODES), 8),
        "Error: not enough cores left for 'b' in section 2. the command line already subscribes 8 processes on 8 cores."
    );
    assert_eq!(
        place_err("-n 10 a : -n 1 b : c", Some(NODES), 8),
        "Error: not enough cores left for 'c' in section 3. the command line already subscribes 11 processes on 8 cores."
    );
}

#[test]
fn machinefile_text_becomes_a_host_list() {
    assert_eq!(
        machinefile_hosts("a\n  b 2 # two\n#c\n\nd 1,0x1\n").unwrap(),
        "3 a b 2 d 1,0x1"
    );
    assert_eq!(
        machinefile_hosts("# none\n").unwrap_err(),
        "expecting host names in file"
    );
    assert_eq!(
        machinefile_hosts("a 1 2\n").unwrap_err(),
        "expecting a positive number of cores following the host name"
    );
}

#[test]
fn a_slurm_allocation_is_the_pool_hydra_reads() {
    let v = slurm_nodes("node[1-3]", Some("2(x2),1")).unwrap();
    assert_eq!(v, "3 node1 2 node2 2 node3 1");
    assert_eq!(
        layout("-n 6 a.exe", Some(&v), 8),
        "node1:0,1,5 node2:2,3 node3:4"
    );
    assert_eq!(slurm_nodes("n[01-02],head", None).unwrap(), "3 n01 1 n02 1 head 1");
    // -c 1 puts one rank on each node.
    assert_eq!(
        layout("-c 1 a.exe", Some(&v), 8),
        "node1:0 node2:1 node3:2"
    );
    let e = slurm_nodes("node[1-3]", Some("2")).unwrap_err().to_string();
    assert!(e.contains("'node[1-3]' names 3 nodes but the task counts '2' are for 1"), "{e}");
    let e = slurm_nodes("node[3-1]", Some("1")).unwrap_err().to_string();
    assert!(e.starts_with("Error: while reading the Slurm allocation's nodes"), "{e}");
    assert!(e.contains("runs backwards"), "{e}");
}
