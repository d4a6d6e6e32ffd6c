use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::env::{MPI_LOCALNRANKS, MPI_LOCALRANKID, MPICH_NETMASK};
use crate::mpi::mpiexec::affinity::Algorithm;
use crate::mpi::mpiexec::bootstrap::{Children, LaunchService, Srun, parse_launch};
use crate::mpi::mpiexec::local::parse_local_nodes;
use crate::mpi::mpiexec::place::HostRanks;
use crate::mpi::mpiexec::plan::{Global, Section};
use crate::mpi::mpiexec::prepare::{cpu_for, resolve_exe};

fn local(dir: &Path) -> Local {
    Local {
        host: "node1.example.com".into(),
        cpus: vec![0, 1, 2, 3],
        dir: dir.to_path_buf(),
        path: Some("/usr/bin:/bin".into()),
        netmask: Some("10.0.0.0/255.255.255.0".into()),
        workdir: None,
        nodes: Vec::new(),
    }
}

/// `prepare` with mpiexec's children as the bootstrap.
fn prepare(
    plan: &Plan,
    placement: &[Vec<HostRanks>],
    local: &Local,
) -> Result<Vec<Launch>, PrepareError> {
    super::prepare(plan, placement, local, &Children::new(local.clone()))
}

fn plan(exe: &str, n: u32) -> Plan {
    Plan {
        global: Global {
            env: vec![("A".into(), "1".into())],
            ..Global::default()
        },
        sections: vec![Section {
            processes: Some(n),
            env: vec![("A".into(), "2".into()), ("B".into(), "3".into())],
            exe: exe.into(),
            args: vec!["x".into()],
            ..Section::default()
        }],
    }
}

fn placed(host: &str, ranks: &[u32]) -> Vec<Vec<HostRanks>> {
    vec![vec![HostRanks {
        host: host.into(),
        ranks: ranks.to_vec(),
    }]]
}

#[test]
fn local_names() {
    let l = local(Path::new("/"));
    assert!(l.is_local("node1.example.com"));
    assert!(l.is_local("NODE1"));
    assert!(l.is_local("localhost"));
    assert!(!l.is_local("node2"));
}

#[test]
fn ranks_get_env_in_order_then_pmi() {
    let l = local(Path::new("/"));
    let launches = prepare(&plan("sh", 2), &placed("node1", &[0, 1]), &l).unwrap();
    assert_eq!(launches.len(), 2);
    let env = &launches[1].env;
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            MPICH_NETMASK,
            "A",
            "A",
            "B",
            "HPCPACK_NETMASK_ORIGIN",
            "HPCPACK_NODE_NAME",
            "PMI_RANK",
            "PMI_SIZE",
            MPI_LOCALNRANKS,
            MPI_LOCALRANKID
        ]
    );
    assert_eq!(env[0].1, "10.0.0.0/255.255.255.0");
    assert_eq!(env[4].1, "cluster");
    assert_eq!(env[5].1, "node1");
    assert_eq!(env[6].1, "1");
    assert_eq!(env[7].1, "2");
    assert!(launches[0].program.ends_with("sh"));
    assert_eq!(launches[0].args, ["x"]);
    assert_eq!(launches[0].cpu, None);
}

#[test]
fn ranks_learn_where_their_netmask_came_from() {
    let origin = |l: &Local, p: &Plan| {
        let launches = prepare(p, &placed("node1", &[0]), l).unwrap();
        let env = &launches[0].env;
        let get = |k: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        (get(MPICH_NETMASK), get(crate::env::HPCPACK_NETMASK_ORIGIN))
    };
    let some = |s: &str| Some(s.to_string());
    let mut l = local(Path::new("/"));
    let mut p = plan("sh", 1);
    assert_eq!(
        origin(&l, &p),
        (some("10.0.0.0/255.255.255.0"), some("cluster"))
    );
    p.global
        .env
        .push((MPICH_NETMASK.into(), "10.1.0.0/16".into()));
    assert_eq!(origin(&l, &p), (some("10.1.0.0/16"), some("genv")));
    p.sections[0]
        .env
        .push((MPICH_NETMASK.into(), "10.2.0.0/16".into()));
    assert_eq!(origin(&l, &p), (some("10.2.0.0/16"), some("env")));
    // None set by mpiexec: the origin is cleared, not inherited.
    l.netmask = None;
    let p = plan("sh", 1);
    assert_eq!(origin(&l, &p), (None, some("")));
}

#[test]
fn remote_host_is_refused_with_a_hint() {
    let l = local(Path::new("/"));
    let e = prepare(&plan("sh", 1), &placed("node2", &[0]), &l).unwrap_err();
    assert!(
        e.to_string()
            .contains("no node agent's launch service serves it"),
        "{e}"
    );
}

#[test]
fn ranks_on_served_nodes_go_through_their_service() {
    let l = local(Path::new("/"));
    let services = parse_launch("node2=127.0.0.1:4000 bad node3=10.0.0.3:4000");
    assert_eq!(services.len(), 2);
    let boot = LaunchService::new(services, None, Children::new(l.clone()));
    let placement = vec![vec![
        HostRanks {
            host: "NODE2".into(),
            ranks: vec![0],
        },
        HostRanks {
            host: "node1".into(),
            ranks: vec![1],
        },
    ]];
    let launches = super::prepare(&plan("sh", 2), &placement, &l, &boot).unwrap();
    assert_eq!(boot.service(&launches[0].host), Some("127.0.0.1:4000"));
    assert_eq!(
        boot.how(&launches[0]),
        "through the launch service at 127.0.0.1:4000"
    );
    // This host's own name with no service: mpiexec starts it itself.
    assert_eq!(boot.service(&launches[1].host), None);
    assert_eq!(boot.how(&launches[1]), "by mpiexec");
    // Another host no service serves is refused before anything starts.
    let elsewhere = vec![vec![HostRanks {
        host: "node4".into(),
        ranks: vec![0],
    }]];
    let e = super::prepare(&plan("sh", 1), &elsewhere, &l, &boot).unwrap_err();
    assert!(e.to_string().contains("cannot launch on host 'node4'"), "{e}");
}

#[test]
fn missing_exe_is_named() {
    let l = local(Path::new("/"));
    let e = prepare(&plan("no-such-program-xyz", 1), &placed("node1", &[0]), &l).unwrap_err();
    assert!(e.to_string().contains("'no-such-program-xyz'"), "{e}");
}

#[test]
fn exe_search_order() {
    let d = tempfile::tempdir().unwrap();
    let exe = d.path().join("prog");
    std::fs::write(&exe, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Bare name: found in the working directory after PATH.
    assert_eq!(
        resolve_exe("prog", None, d.path(), Some("/nonexistent")),
        Some(exe.clone())
    );
    // Relative with a slash: from the working directory.
    assert_eq!(
        resolve_exe("./prog", None, d.path(), None),
        Some(d.path().join("./prog"))
    );
    // -path, `;`-separated.
    let p = format!("/nonexistent;{}", d.path().display());
    assert_eq!(
        resolve_exe("prog", Some(&p), Path::new("/"), None),
        Some(exe.clone())
    );
    // Not executable: not found.
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(resolve_exe("prog", None, d.path(), None), None);
}

#[test]
fn affinity_spreads_and_wraps() {
    let cpus = [0, 1, 2, 3];
    let spread = |n, i| cpu_for(&cpus, n, i, Algorithm::Spread);
    assert_eq!(
        (0..2).map(|i| spread(2, i)).collect::<Vec<_>>(),
        [Some(0), Some(2)]
    );
    assert_eq!(
        (0..4).map(|i| spread(4, i)).collect::<Vec<_>>(),
        [Some(0), Some(1), Some(2), Some(3)]
    );
    assert_eq!(spread(6, 5), Some(1));
    assert_eq!(cpu_for(&cpus, 2, 1, Algorithm::Sequential), Some(1));
    assert_eq!(cpu_for(&cpus, 2, 1, Algorithm::Disabled), None);
}

#[test]
fn ranges_as_ms_mpi_prints_them() {
    assert_eq!(rank_ranges(&[0, 1, 2, 3]), "[0-3]");
    assert_eq!(rank_ranges(&[3, 0, 2]), "[0,2-3]");
    assert_eq!(rank_ranges(&[5]), "[5]");
}

#[test]
fn abort_report_blocks() {
    let l = local(Path::new("/"));
    let launches = prepare(&plan("sh", 3), &placed("node1", &[0, 1, 2]), &l).unwrap();
    let cause = Cause::Exited {
        rank: 1,
        code: 3,
        initialized: true,
    };
    assert_eq!(cause.exit_code(), 3);
    assert_eq!(
        abort_report(&cause, &launches),
        "\njob aborted:\n[ranks] message\n\n[0,2] terminated\n\n[1] process exited without calling finalize\n\n\
         ---- error analysis -----\n\n[1] on node1\nsh ended prematurely and may have crashed. exit code 3\n\n\
         ---- error analysis -----\n"
    );
    let r = abort_report(&Cause::Aborted { rank: 0, code: 7 }, &launches);
    assert!(
        r.contains("\n[0] application aborted\n\n[1-2] terminated\n"),
        "{r}"
    );
    assert!(
        r.contains("[0] on node1\nsh aborted the job. abort code 7\n"),
        "{r}"
    );
}

#[test]
fn exit_codes_block() {
    let l = local(Path::new("/"));
    let launches = prepare(&plan("sh", 2), &placed("node1", &[0, 1]), &l).unwrap();
    assert_eq!(
        exit_codes_report(&launches, &[Some(0), Some(3)]),
        "\n---- exit code ----\n\n[0] on node1: 0\n[1] on node1: 3\n\n---- exit code ----\n"
    );
}

#[test]
fn virtual_nodes_of_this_host_are_local_and_bind_to_their_cpus() {
    let dir = std::env::temp_dir();
    let mut l = local(&dir);
    l.nodes = parse_local_nodes("vm-1=0 vm-2=1 vm-3=0 vm-4=1 bad");
    assert_eq!(l.nodes.len(), 4);
    assert!(l.is_local("VM-3"));
    assert!(!l.is_local("vm-5"));
    let mut p = plan("sh", 4);
    p.global.affinity.algorithm = Algorithm::Spread;
    let placement = vec![
        (0..4)
            .map(|i| HostRanks {
                host: format!("vm-{}", i + 1),
                ranks: vec![i],
            })
            .collect::<Vec<_>>(),
    ];
    let launches = prepare(&p, &placement, &l).unwrap();
    let cpus: Vec<Option<u32>> = launches.iter().map(|x| x.cpu).collect();
    assert_eq!(cpus, vec![Some(0), Some(1), Some(0), Some(1)]);
}

#[test]
fn ccp_nodes_wins_over_the_slurm_allocation() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    static SLURM: [(&str, &str); 3] = [
        (env::SLURM_JOB_ID, "7"),
        (env::SLURM_JOB_NODELIST, "node[1-3]"),
        (env::SLURM_TASKS_PER_NODE, "2(x3)"),
    ];
    assert_eq!(
        environment_pool(vars(&SLURM)).unwrap().as_deref(),
        Some("3 node1 2 node2 2 node3 2")
    );
    static WITH_CCP: [(&str, &str); 4] = [
        (env::SLURM_JOB_ID, "7"),
        (env::SLURM_JOB_NODELIST, "node[1-3]"),
        (env::SLURM_TASKS_PER_NODE, "2(x3)"),
        (env::CCP_NODES, "1 n9 4"),
    ];
    assert_eq!(environment_pool(vars(&WITH_CCP)).unwrap().as_deref(), Some("1 n9 4"));
    // Launch services serve the job: the Slurm variables are not ours.
    static SERVED: [(&str, &str); 3] = [
        (env::SLURM_JOB_ID, "7"),
        (env::SLURM_JOB_NODELIST, "node[1-3]"),
        (env::HPCPACK_LAUNCH, "node2=127.0.0.1:4000"),
    ];
    assert_eq!(environment_pool(vars(&SERVED)).unwrap(), None);
    assert_eq!(environment_pool(vars(&[])).unwrap(), None);
    static BAD: [(&str, &str); 2] = [(env::SLURM_JOB_ID, "7"), (env::SLURM_JOB_NODELIST, "node[1-")];
    assert!(matches!(environment_pool(vars(&BAD)), Err(MpiexecError::SlurmNodes(_))));
}

#[test]
fn local_rank_variables_count_the_ranks_of_one_host() {
    let l = local(Path::new("/"));
    let boot = Srun::new(l.clone(), "7".into(), Some("node[1-3]"));
    let mut p = plan("sh", 4);
    p.sections.push(p.sections[0].clone());
    p.sections[0].processes = Some(3);
    p.sections[1].processes = Some(1);
    let at = |host: &str, ranks: &[u32]| HostRanks {
        host: host.into(),
        ranks: ranks.to_vec(),
    };
    let placement = vec![
        vec![at("node2", &[0, 1]), at("node1", &[2])],
        vec![at("node2", &[3])],
    ];
    let launches = super::prepare(&p, &placement, &l, &boot).unwrap();
    let get = |l: &Launch, k: &str| {
        l.env
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let local_ids: Vec<(String, String)> = launches
        .iter()
        .map(|l| (get(l, MPI_LOCALNRANKS), get(l, MPI_LOCALRANKID)))
        .collect();
    let pair = |n: &str, id: &str| (n.to_string(), id.to_string());
    assert_eq!(
        local_ids,
        [pair("3", "0"), pair("3", "1"), pair("1", "0"), pair("3", "2")]
    );
    assert_eq!(boot.how(&launches[0]), "through srun, by the proxy on node2");
    assert_eq!(boot.how(&launches[2]), "by mpiexec");
    // A host outside the allocation is refused before anything starts.
    let e = super::prepare(&plan("sh", 1), &placed("node4", &[0]), &l, &boot).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot launch on host 'node4': it is not a node of Slurm job 7's allocation (node1, node2, node3)"),
        "{e}"
    );
}
