//! What the man pages say beyond the clap definitions and help texts:
//! each page's EXIT STATUS (from [`crate::error::exit::DOCUMENTED`] for the
//! HPC Pack tools and `hpcd`), ENVIRONMENT (the variables the tool reads,
//! named by their [`crate::env`] constants) and EXAMPLES (the seed
//! article's commands among them).

use crate::env;

/// The seed article's commands (spec/seed-article.md): the latency and
/// throughput runs of mpipingpong, the IaaS form, and reading the result.
pub const SEED_LATENCY: &str = "job submit /nodegroup:azurenodes /numnodes:4 mpiexec -c 1 -affinity mpipingpong -p 1:100000 -op -s nul";
pub const SEED_IAAS: &str = "job submit /nodegroup:vmcomputenodes /numnodes:4 mpiexec -c 1 -affinity -env MSMPI_DISABLE_SOCK 1 -env MSMPI_PRECONNECT all -env MPICH_NETMASK 172.16.0.0/255.255.0.0 mpipingpong -p 1:100000 -op -s nul";
pub const SEED_THROUGHPUT: &str = "job submit /nodegroup:azurenodes /numnodes:4 mpiexec -c 1 -affinity mpipingpong -p 4000000:1000 -op -s nul";
pub const SEED_VIEW: &str = "task view <JobID>.1";

/// (command, what it does) of a page (`job-submit`, `mpiexec`).
pub fn examples(page: &str) -> Vec<(&'static str, &'static str)> {
    let seed_latency = (SEED_LATENCY, "Measures the latency between every pair of 4 nodes of the group azurenodes (the seed article's command); prints the job's ID.");
    let seed_view = (SEED_VIEW, "Shows the state of the job's task and its output: the ping-pong results.");
    match page {
        "job" => vec![
            seed_latency,
            ("job view <JobID>", "Shows the job's state, its tasks' counts and its nodes."),
            ("job list /all", "Lists every job of every user, as a table."),
        ],
        "job-submit" => vec![
            seed_latency,
            (SEED_IAAS, "The same on nodes that are virtual machines: MPI over the RDMA network only, every rank connected at start."),
            (SEED_THROUGHPUT, "Measures the throughput between every pair of the 4 nodes."),
            ("job submit /jobname:hello /wait hostname", "Runs hostname as a one-task job and waits until it ends [extension: /wait]."),
            ("job submit /id:<JobID>", "Submits a job made with job new and job add."),
        ],
        "job-add" => vec![
            ("job add <JobID> /name:first /stdout:first.txt hostname", "Adds a task to a job made with job new; it writes its output to first.txt."),
            ("job add <JobID> /depend:first /numcores:2 ./step2", "Adds a task that starts when the task named first has finished."),
        ],
        "job-cancel" => vec![("job cancel <JobID> /message:\"not needed\"", "Cancels the job; its running tasks get SIGTERM, then SIGKILL.")],
        "job-finish" => vec![("job finish <JobID>", "Ends the running job as Finished.")],
        "job-list" => vec![
            ("job list", "Lists your Queued and Running jobs."),
            ("job list /all /state:Failed,Canceled /format:list", "Lists every failed or canceled job, one property list each."),
        ],
        "job-listtasks" => vec![("job listtasks <JobID> /format:table", "Lists the job's tasks as a table.")],
        "job-modify" => vec![("job modify <JobID> /priority:AboveNormal /runtime:1:00", "Raises the job's priority and limits it to one hour.")],
        "job-new" => vec![("job new /jobname:steps /numcores:4", "Creates a job (Configuring) that job add fills and job submit /id: submits.")],
        "job-requeue" => vec![("job requeue <JobID>", "Queues the failed or canceled job again.")],
        "job-view" => vec![
            ("job view <JobID>", "Shows the job's state, its tasks' counts and its nodes."),
            ("job view <JobID> /detailed", "Shows every property of the job."),
        ],
        "job-wait" => vec![("job wait <JobID> /timeout:600", "Waits up to 10 minutes; exits 0 only if the job Finished [extension].")],
        "task" | "task-view" => vec![
            seed_view,
            (SEED_LATENCY, "Runs the ping-pong test whose output task view shows."),
            ("task view <JobID>.1 /detailed", "Shows every property of the task."),
        ],
        "task-cancel" => vec![("task cancel <JobID>.1", "Cancels the task; its process gets SIGTERM, then SIGKILL.")],
        "task-finish" => vec![("task finish <JobID>.1", "Ends the task as Finished.")],
        "task-requeue" => vec![("task requeue <JobID>.1", "Queues the failed or canceled task again.")],
        "node" | "node-list" => vec![
            ("node list", "Lists the nodes, with their cores in use and idle."),
            ("node list /group:azurenodes /format:list", "Lists the nodes of the group azurenodes, one property list each."),
        ],
        "node-listcores" => vec![("node listcores /jobid:<JobID>", "Lists the cores the job runs on.")],
        "node-offline" => vec![
            ("node offline <NodeName>", "Takes the node offline once its jobs have ended (Draining until then)."),
            ("node offline /all /force", "Takes every node offline at once; their jobs are requeued (or fail, when a task is not rerunnable)."),
        ],
        "node-online" => vec![("node online /all", "Brings every offline node online.")],
        "node-view" => vec![("node view <NodeName> /detailed", "Shows every property of the node.")],
        "cluscfg" | "cluscfg-setenvs" => vec![
            ("cluscfg setenvs CCP_MPI_NETMASK=172.16.0.0/255.255.0.0", "Makes every MPI job of the cluster use that network."),
            ("cluscfg setenvs CCP_MPI_NETMASK=", "Unsets the variable."),
        ],
        "clusrun" => vec![
            ("clusrun /nodegroup:azurenodes hostname", "Runs hostname on every node of the group azurenodes and prints each node's output under its name, then how many nodes succeeded."),
            ("clusrun /all /sorted /outputdir:out df -h /tmp", "Every node, blocks by node name, each node's output also in out/<node>.txt."),
        ],
        "hpcfwutil" | "hpcfwutil-register" => vec![
            ("clusrun /nodegroup:azurenodes hpcfwutil register mpipingpong /usr/bin/mpipingpong", "Registers mpipingpong on every node of the group (the seed article's step): its ranks listen on ports the rules open."),
            ("hpcfwutil include eth1", "Turns the rules on for eth1: unsolicited connections to its dynamic ports are dropped, except to registered programs."),
        ],
        "hpcfwutil-detect" | "hpcfwutil-verify" => vec![
            ("hpcfwutil detect", "Says whether the rules are present and on; exits 1 if not."),
            ("hpcfwutil verify /v", "Says whether the rules in nftables are the registered ones."),
        ],
        "cluscfg-listenvs" => vec![("cluscfg listenvs", "Shows the cluster-wide variables every task gets.")],
        "cluscfg-view" => vec![("cluscfg view", "Shows the cluster's name and version, its nodes and cores, and its queued and running jobs and tasks.")],
        "hpcd" | "hpcd-local" | "hpcd-local-start" => vec![
            ("hpcd local start --nodes 4 --node-group azurenodes", "Starts this user's embedded head node with 4 virtual nodes in the group azurenodes, on which the seed article's commands run."),
            (SEED_LATENCY, "The seed article's command, on those 4 nodes."),
        ],
        "hpcd-local-stop" => vec![("hpcd local stop", "Stops the embedded head node; running tasks go on.")],
        "hpcd-local-status" | "hpcd-status" => vec![("hpcd status", "Shows whether the embedded head node runs, its process, nodes and jobs.")],
        "hpcd-head" => vec![(
            "hpcd head --shared --state-dir /var/lib/hpcpack --socket /run/hpcpack.sock",
            "Runs a head node for every local user (as root); users reach it with /scheduler:unix:/run/hpcpack.sock or CCP_SCHEDULER.",
        )],
        "mpiexec" => vec![
            ("mpiexec -c 1 -affinity mpipingpong -p 1:100000 -op -s nul", "Inside a job: one rank on each of the job's nodes, each bound to a core (the seed article's task)."),
            ("mpiexec -c 1 -affinity -env MSMPI_DISABLE_SOCK 1 -env MSMPI_PRECONNECT all -env MPICH_NETMASK 172.16.0.0/255.255.0.0 mpipingpong -p 1:100000 -op -s nul", "The same without TCP, every pair connected at start, over 172.16.0.0/16."),
            (SEED_LATENCY, "Submits the first as a job on 4 nodes."),
            ("mpiexec -n 4 ./app", "Outside a job: 4 ranks on this host."),
        ],
        "mpipingpong" => vec![
            (SEED_LATENCY, "Latency between every pair of 4 nodes: 1-byte messages, 100000 round trips, one line per pair, no XML file."),
            (SEED_THROUGHPUT, "Throughput between every pair: 4,000,000-byte messages, 1000 round trips."),
            (SEED_VIEW, "Shows the results."),
            ("mpiexec -n 2 mpipingpong -pc", "A quick check of two ranks on this host."),
        ],
        _ => Vec::new(),
    }
}

const STATE_AND_CONFIG: &[(&str, &str)] = &[
    (env::HPCPACK_STATE_DIR, "The embedded head node's state directory, holding its socket hpcd.sock (default: $XDG_STATE_HOME/hpcpack, else ~/.local/state/hpcpack) [extension]."),
    (env::HPCPACK_CONFIG, "The user's config file (default: $XDG_CONFIG_HOME/hpcpack/config.toml, else ~/.config/hpcpack/config.toml); /etc/hpcpack/config.toml is read below it [extension]."),
    (env::XDG_STATE_HOME, "Where the state directory is by default."),
    (env::XDG_CONFIG_HOME, "Where the config file is by default."),
    (env::HOME, "Where the state directory and the config file are without the variables above."),
];

/// (variable, what the tool does with it) of the variables `tool` reads.
pub fn environment(tool: &str) -> Vec<(&'static str, &'static str)> {
    match tool {
        "job" | "task" | "node" | "cluscfg" | "clusrun" => {
            let mut v = vec![
                (env::CCP_SCHEDULER, "The head node when /scheduler is not given: local (this machine's embedded head node) or unix:<socket>. Without it, the config file's scheduler, else local."),
                (env::HPCPACK_FORMAT, "The output format of every view and list when /format is not given: list, table or json [extension]."),
                (env::HPCPACK_HPCD, "The hpcd that starts the embedded head node when it does not run (default: hpcd beside this program, else on PATH) [extension]."),
            ];
            v.extend_from_slice(STATE_AND_CONFIG);
            v.push((env::HPCPACK_COMPLETE, "Set by the shell completion scripts: the tool prints completions for the command line in its arguments instead of running it [extension]."));
            v
        }
        "hpcfwutil" => vec![(env::HPCPACK_FIREWALL_DB, "The registry of the rules (default /etc/hpcpack/firewall.json) [extension].")],
        "hpcd" => {
            let mut v = STATE_AND_CONFIG.to_vec();
            v.push((env::HPCPACK_CANCEL_GRACE, "Seconds a canceled task gets between SIGTERM and SIGKILL (default 5) [extension]."));
            v
        }
        "mpiexec" => vec![
            (env::CCP_NODES, "Inside a job: the job's nodes and their cores, where the ranks go (-c sets the ranks per node)."),
            (env::CCP_MPI_NETMASK, "The network MPI uses, passed to the ranks as MPICH_NETMASK unless -env sets that."),
            (env::CCP_MPI_WORKDIR, "The ranks' working directory when -wdir is not given."),
            (env::MPIEXEC_TIMEOUT, "The job's timeout in seconds when -timeout is not given."),
            (env::MPIEXEC_AFFINITY, "The affinity when neither -affinity nor -affinity_layout is given."),
            (env::HPCPACK_LAUNCH, "Inside a job: the launch service of each node, which starts the ranks placed there [extension]."),
            (env::HPCPACK_JOB_CREDENTIAL, "Inside a job: the job's credential for the launch services [extension]."),
            (env::HPCPACK_LOCAL_NODES, "Inside a job of the embedded cluster: the job's virtual nodes on this host and their CPUs [extension]."),
            (env::HPCPACK_SSH, "Outside any job: the ssh command, split on blanks, that starts mpiexec's proxy on each other host (default ssh; mpiexec adds -o BatchMode=yes -x -T, the host and its own path) [extension]."),
            (env::PATH, "Where a program named without a directory is found."),
        ],
        "mpipingpong" => vec![
            (env::HPCPACK_LOCAL_NODES, "Virtual nodes on this host: ranks on two of them count as two nodes [extension]."),
            (env::HPCPACK_NODE_NAME, "The node each rank was placed on, named in the report [extension]."),
            (env::HPCPACK_TTY, "Set by mpiexec when its output is a terminal: -op draws a progress bar [extension]."),
            (env::MSMPI_DISABLE_SHM, "1: no shared memory between ranks of one host."),
            (env::MSMPI_DISABLE_SOCK, "1: no TCP; a pair with no other channel fails, saying why."),
            (env::MSMPI_DISABLE_ND, "1: no RDMA verbs."),
            (env::MSMPI_PRECONNECT, "all, * or ranks: those ranks connect to every rank at start."),
            (env::MPICH_NETMASK, "<addr>/<mask>: the network TCP and verbs use."),
            (env::MSMPI_CONNECTIVITY_TABLE, "1: rank 0 prints the channel of every pair at the end."),
            (env::HPCPACK_VERBS_DEVICE, "<device>[:<port>]: the RDMA device verbs use [extension]."),
        ],
        _ => Vec::new(),
    }
}

/// (code, meaning) of what `tool` exits with.
pub fn exit_status(tool: &str) -> Vec<(String, &'static str)> {
    match tool {
        "mpiexec" => vec![
            ("0".into(), "Every rank exited with 0."),
            ("1".into(), "A bad command line, a rank that could not be started, or -timeout expired."),
            ("N".into(), "The first non-zero exit code of a rank; for a rank that aborted or was killed, its code (128 + the signal for a signal)."),
            ("130".into(), "mpiexec got SIGINT, SIGTERM or SIGHUP and ended the ranks."),
        ],
        "mpipingpong" => vec![
            ("0".into(), "Every pair was measured (and within --max-latency and --min-throughput)."),
            ("1".into(), "MPI failed, the ranks could not be paired, a pair was outside a limit, or the output file could not be written."),
            ("2".into(), "A bad command line."),
        ],
        "hpcfwutil" => vec![("0".into(), "The command succeeded (detect, verify: the rules are present and on, or as registered)."), ("1".into(), "The command failed.")],
        "clusrun" => {
            let mut v: Vec<(String, &'static str)> = crate::error::exit::DOCUMENTED.iter().map(|(c, m)| (c.to_string(), *m)).collect();
            v[0].1 = "the command returned 0 on every node";
            v[1].1 = "the command returned another code on a node, or was canceled there";
            v.retain(|(c, _)| c != "9");
            v.push(("130".into(), "interrupted (Ctrl-C, SIGTERM or SIGHUP): the job was canceled, and its command ends on every node"));
            v
        }
        _ => crate::error::exit::DOCUMENTED.iter().map(|(c, m)| (c.to_string(), *m)).collect(),
    }
}
