//! Every environment variable hpcpack reads or sets, in one place.
//!
//! The `CCP_*` names are HPC Pack's (set by its node manager for each task, or
//! read by its command line); `HPCPACK_*` names are this project's own
//! extensions. Code refers to these constants, never to string literals, so a
//! reader can find every use of a variable from here.

/// Head node used by the CLIs when `/scheduler` is not given (HPC Pack).
pub const CCP_SCHEDULER: &str = "CCP_SCHEDULER";
/// Job id of the task's job (set in each task).
pub const CCP_JOBID: &str = "CCP_JOBID";
/// Task id within its job (set in each task).
pub const CCP_TASKID: &str = "CCP_TASKID";
/// Parametric instance id; 0 for an ordinary task (set in each task).
pub const CCP_TASKINSTANCEID: &str = "CCP_TASKINSTANCEID";
/// Opaque id of the task on the scheduler, `<job>.<task>.<instance>` here.
pub const CCP_TASKSYSTEMID: &str = "CCP_TASKSYSTEMID";
/// `<n> <node1> <cores1> …`: the task's nodes and cores on each (set in each task).
pub const CCP_NODES: &str = "CCP_NODES";
/// Same format as `CCP_NODES`; the name HPC Pack's Linux node agent uses.
pub const CCP_NODES_CORES: &str = "CCP_NODES_CORES";
/// Number of cores allocated to the task on this node.
pub const CCP_NUMCPUS: &str = "CCP_NUMCPUS";
/// Space-separated logical CPU ids allocated to the task on this node.
pub const CCP_COREIDS: &str = "CCP_COREIDS";
/// Comma-separated hex affinity mask of the task's CPUs on this node.
pub const CCP_AFFINITY: &str = "CCP_AFFINITY";
/// `True` when the job asked for exclusive use of its nodes.
pub const CCP_EXCLUSIVE: &str = "CCP_EXCLUSIVE";
/// Name of the task's job.
pub const CCP_JOBNAME: &str = "CCP_JOBNAME";
/// Name of the task.
pub const CCP_TASKNAME: &str = "CCP_TASKNAME";
/// Template of the task's job.
pub const CCP_JOBTEMPLATE: &str = "CCP_JOBTEMPLATE";
/// Times the task has been requeued.
pub const CCP_RETRY_COUNT: &str = "CCP_RETRY_COUNT";
/// `True` when the task may be rerun.
pub const CCP_RERUNNABLE: &str = "CCP_RERUNNABLE";
/// Working directory of the task.
pub const CCP_WORKDIR: &str = "CCP_WORKDIR";
/// Cluster name: the head node's host name (cluster-wide variable).
pub const CCP_CLUSTER_NAME: &str = "CCP_CLUSTER_NAME";
/// Network of the MPI interface, `addr/mask` (cluster-wide variable).
pub const CCP_MPI_NETMASK: &str = "CCP_MPI_NETMASK";
/// Path of a host file generated for MPI launchers (HPC Pack's Linux agent).
pub const CCP_MPI_HOSTFILE: &str = "CCP_MPI_HOSTFILE";
/// Format of `CCP_MPI_HOSTFILE`: unset = one host per line, 1 = `host:cores`,
/// 2 = `host slots=cores`, 3 = `host cores`.
pub const CCP_MPI_HOSTFILE_FORMAT: &str = "CCP_MPI_HOSTFILE_FORMAT";
/// `True` when the task's owner is a cluster administrator (root here).
pub const CCP_ISADMIN: &str = "CCP_ISADMIN";
/// Task run-time limit in seconds, when there is one.
pub const CCP_RUNTIME: &str = "CCP_RUNTIME";

/// PMI-1 (MPICH's simple PMI): an already-connected socket fd inherited from
/// the launcher; takes precedence over [`PMI_PORT`].
pub const PMI_FD: &str = "PMI_FD";
/// PMI-1: `<host>:<port>` of the launcher's PMI server, reached over TCP.
pub const PMI_PORT: &str = "PMI_PORT";
/// PMI-1: with [`PMI_PORT`], the id sent in the `cmd=initack pmiid=<id>`
/// handshake, from which the server answers rank and size.
pub const PMI_ID: &str = "PMI_ID";
/// PMI-1: the rank of this process (default 0) when no handshake delivers it.
pub const PMI_RANK: &str = "PMI_RANK";
/// PMI-1: the number of ranks in the job (default 1) when no handshake delivers it.
pub const PMI_SIZE: &str = "PMI_SIZE";

/// MS-MPI: `MPIEXEC_TIMEOUT=seconds`, mpiexec's job timeout when `-timeout`
/// is not given (ignored unless a positive number).
pub const MPIEXEC_TIMEOUT: &str = "MPIEXEC_TIMEOUT";
/// MS-MPI: `MPIEXEC_AFFINITY=<algo>[:<stride>][:<target>]`, the affinity
/// layout when neither `-affinity` nor `-affinity_layout` is given (a bad
/// value is ignored).
pub const MPIEXEC_AFFINITY: &str = "MPIEXEC_AFFINITY";

/// What mpiexec passes `CCP_MPI_NETMASK` on to the ranks as (MS-MPI's
/// `read_ccp_mpi_netmask`); limits MPI traffic to that network.
pub const MPICH_NETMASK: &str = "MPICH_NETMASK";
/// MS-MPI, read by each rank: `1` turns the shared-memory channel off, so
/// ranks of one host talk over another channel. Deprecated alias
/// [`MPICH_DISABLE_SHM`].
pub const MSMPI_DISABLE_SHM: &str = "MSMPI_DISABLE_SHM";
/// MS-MPI: `1` turns the sockets (TCP) channel off; a pair of ranks with no
/// other channel then fails to connect, saying so. Alias [`MPICH_DISABLE_SOCK`].
pub const MSMPI_DISABLE_SOCK: &str = "MSMPI_DISABLE_SOCK";
/// MS-MPI: `1` turns Network Direct (here: RDMA verbs) off. Alias
/// [`MPICH_DISABLE_ND`].
pub const MSMPI_DISABLE_ND: &str = "MSMPI_DISABLE_ND";
/// MS-MPI: `all`, `*` or a rank range (`a,c-e`): those ranks connect to every
/// other rank during init instead of on first use.
pub const MSMPI_PRECONNECT: &str = "MSMPI_PRECONNECT";
/// MS-MPI: `1` makes rank 0 print the "MPI Connectivity Table" (which
/// channel each pair of ranks used) when the ranks finalize. Alias
/// [`MPICH_CONNECTIVITY_TABLE`].
pub const MSMPI_CONNECTIVITY_TABLE: &str = "MSMPI_CONNECTIVITY_TABLE";
/// Deprecated MS-MPI alias of [`MSMPI_DISABLE_SHM`] (the MSMPI_ name wins).
pub const MPICH_DISABLE_SHM: &str = "MPICH_DISABLE_SHM";
/// Deprecated MS-MPI alias of [`MSMPI_DISABLE_SOCK`].
pub const MPICH_DISABLE_SOCK: &str = "MPICH_DISABLE_SOCK";
/// Deprecated MS-MPI alias of [`MSMPI_DISABLE_ND`].
pub const MPICH_DISABLE_ND: &str = "MPICH_DISABLE_ND";
/// Deprecated MS-MPI alias of [`MSMPI_CONNECTIVITY_TABLE`].
pub const MPICH_CONNECTIVITY_TABLE: &str = "MPICH_CONNECTIVITY_TABLE";
/// MS-MPI: mpiexec's working directory when no `-wdir`/`-gwdir` is given.
pub const CCP_MPI_WORKDIR: &str = "CCP_MPI_WORKDIR";
/// Hydra's per-node rank count, set in each rank (some libraries read it).
pub const MPI_LOCALNRANKS: &str = "MPI_LOCALNRANKS";
/// Hydra's rank index on its node, set in each rank.
pub const MPI_LOCALRANKID: &str = "MPI_LOCALRANKID";
/// MS-MPI: `MSMPI_SHM_EAGER_LIMIT=bytes`, the message size above which
/// shared memory switches from copies through the ring to a single
/// cross-process copy (rendezvous); default `shm::DEFAULT_EAGER_LIMIT`.
pub const MSMPI_SHM_EAGER_LIMIT: &str = "MSMPI_SHM_EAGER_LIMIT";
/// `<device>[:<port>]`: the RDMA device (and port) the verbs transport uses,
/// such as `mlx5_0:1` or `rxe0`; without it, the device whose network
/// interface has an address in `MPICH_NETMASK`, else the first active port
/// (extension).
pub const HPCPACK_VERBS_DEVICE: &str = "HPCPACK_VERBS_DEVICE";

/// Extension, set in each task: the task's nodes that run on this host, with
/// their host CPUs, as `<node>=<cpu>,<cpu> <node>=<cpu>…` (the virtual nodes
/// of the embedded cluster). mpiexec starts the ranks of these nodes here.
pub const HPCPACK_LOCAL_NODES: &str = "HPCPACK_LOCAL_NODES";

/// Extension, set in each task: `<job id>:<hex HMAC-SHA256>`, the job's
/// credential for the node agents' MPI launch service (made by the head node
/// from the cluster key, the job id and the owner's uid). mpiexec presents it
/// with every rank it starts through the service.
pub const HPCPACK_JOB_CREDENTIAL: &str = "HPCPACK_JOB_CREDENTIAL";
/// Extension, set in each task: `<node>=<host>:<port> …`, the MPI launch
/// service serving each node of the task's allocation. mpiexec starts a
/// rank placed on a node named here through that service; other ranks it
/// starts itself, on this host.
pub const HPCPACK_LAUNCH: &str = "HPCPACK_LAUNCH";

/// Slurm, set inside an allocation (`salloc`, `sbatch`, `srun`): the job id.
/// mpiexec then places ranks on the allocation's nodes and starts the ranks
/// of other hosts through `srun`, unless [`HPCPACK_LAUNCH`] names launch
/// services.
pub const SLURM_JOB_ID: &str = "SLURM_JOB_ID";
/// Slurm: the allocation's nodes as a compact host list (`node[1-3]`).
pub const SLURM_JOB_NODELIST: &str = "SLURM_JOB_NODELIST";
/// Slurm: the tasks of the allocation on each of its nodes (`2(x3),1`),
/// the cores mpiexec places on each node when [`CCP_NODES`] is unset.
pub const SLURM_TASKS_PER_NODE: &str = "SLURM_TASKS_PER_NODE";
/// Slurm, set in each task of a step: the Slurm name of the node it runs on.
pub const SLURMD_NODENAME: &str = "SLURMD_NODENAME";
/// Slurm: a JWT for slurmrestd (the Slurm backend reads with it; without
/// it, it asks `scontrol token` for one). Removed for `srun` and Slurm's
/// other commands, which would otherwise authenticate to slurmd with it
/// (and slurmd refuses JWT).
pub const SLURM_JWT: &str = "SLURM_JWT";

/// Extension, set by mpiexec for the proxies it starts with `srun` (in their
/// environment) or ssh (on their standard input), never in a rank: the
/// launch's secret, 64 hex digits, which a proxy presents on each
/// connection back to mpiexec.
pub const HPCPACK_PROXY_SECRET: &str = "HPCPACK_PROXY_SECRET";
/// Extension, set by mpiexec for its proxies: `<ip>:<port>,…`, the
/// addresses of mpiexec's host where it waits for them, tried in order.
pub const HPCPACK_PROXY_ADDRS: &str = "HPCPACK_PROXY_ADDRS";
/// Extension, set by mpiexec for its proxies: `<host>=<rank>,<rank> …`, the
/// ranks each proxy starts (a proxy finds its own by [`HPCPACK_PROXY_HOST`],
/// else [`SLURMD_NODENAME`], else its host name).
pub const HPCPACK_PROXY_RANKS: &str = "HPCPACK_PROXY_RANKS";
/// Extension, set by mpiexec for a proxy it starts with ssh (on its
/// standard input, with the other `HPCPACK_PROXY_*`): the host name mpiexec
/// placed the proxy's ranks on, which the proxy gives back when it connects.
pub const HPCPACK_PROXY_HOST: &str = "HPCPACK_PROXY_HOST";
/// Extension, set by mpiexec for its proxies: `<cpu>,<cpu>…`, the CPUs
/// mpiexec placed `-affinity` ranks on. A proxy binds a rank whose CPU it
/// may not use to the CPU at the same position among its own.
pub const HPCPACK_PROXY_CPUS: &str = "HPCPACK_PROXY_CPUS";

/// Extension, read by mpiexec outside any job: the command that starts its
/// proxy on another host (default `ssh`), split into words on blanks and
/// taking ssh's options, as `ssh -F /path/config`. mpiexec adds
/// `-o BatchMode=yes -x -T`, the host, and its own path (the hosts share
/// its filesystem). MPICH's Hydra names its launcher `HYDRA_LAUNCHER_EXEC`
/// (a program only).
pub const HPCPACK_SSH: &str = "HPCPACK_SSH";

/// MS-MPI, read by each rank: `min,max`, the ports its sockets channel
/// listens in. Unset, a rank of a program registered with `hpcfwutil`
/// listens in its registered ports (see [`crate::firewall`]).
pub const MPICH_PORT_RANGE: &str = "MPICH_PORT_RANGE";

/// Extension: the firewall registry `hpcfwutil` keeps and ranks read
/// (default `/etc/hpcpack/firewall.json`).
pub const HPCPACK_FIREWALL_DB: &str = "HPCPACK_FIREWALL_DB";

/// Extension, set by mpiexec in each rank when its own standard output is a
/// terminal and `-lines` is off (it then copies rank output unchanged):
/// `1`. `mpipingpong -op` draws a progress bar instead of plain lines.
pub const HPCPACK_TTY: &str = "HPCPACK_TTY";

/// Extension, set by mpiexec in each rank: the node it placed the rank on
/// (a virtual node's name on the embedded cluster).
pub const HPCPACK_NODE_NAME: &str = "HPCPACK_NODE_NAME";

/// Extension, set by mpiexec in each rank: where the rank's
/// [`MPICH_NETMASK`] came from (`cluster`: mpiexec passed on
/// [`CCP_MPI_NETMASK`]; `env`, `genv`: its `-env`, `-genv`/`-genvlist`;
/// empty: mpiexec set none), so a rank's message about the netmask names
/// what to change.
pub const HPCPACK_NETMASK_ORIGIN: &str = "HPCPACK_NETMASK_ORIGIN";

/// Extension: the state directory of the embedded head node
/// (default `$XDG_STATE_HOME/hpcpack`, else `~/.local/state/hpcpack`).
pub const HPCPACK_STATE_DIR: &str = "HPCPACK_STATE_DIR";
/// Extension: the user's config file (default `$XDG_CONFIG_HOME/hpcpack/config.toml`).
pub const HPCPACK_CONFIG: &str = "HPCPACK_CONFIG";
/// Extension: path of the `hpcd` binary the CLIs start (default: beside the CLI, then `PATH`).
pub const HPCPACK_HPCD: &str = "HPCPACK_HPCD";
/// Extension: slurmrestd's address for the Slurm backend (`http://host:port`
/// or `unix:/path`, `none` for Slurm's commands only; default: the config
/// file's `[slurm] url`, else `http://127.0.0.1:6820`). Where the default
/// does not answer, Slurm's commands are used.
pub const HPCPACK_SLURM_URL: &str = "HPCPACK_SLURM_URL";
/// Extension: output format of every view and list, `json` for machine-readable output.
pub const HPCPACK_FORMAT: &str = "HPCPACK_FORMAT";
/// Extension, set by the shell completion scripts (`completions/`) for one
/// call of `job`, `task`, `node` or `cluscfg`: `bash`, `zsh` or `fish`. The
/// tool then prints the candidates for the command line in its arguments
/// instead of running it (see `cli::complete`).
pub const HPCPACK_COMPLETE: &str = "HPCPACK_COMPLETE";
/// Extension: seconds a canceled task gets between SIGTERM and SIGKILL (default 5).
pub const HPCPACK_CANCEL_GRACE: &str = "HPCPACK_CANCEL_GRACE";

/// Standard variables the task environment starts from.
pub const HOME: &str = "HOME";
pub const USER: &str = "USER";
pub const PATH: &str = "PATH";
pub const XDG_STATE_HOME: &str = "XDG_STATE_HOME";
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";

pub const LOGNAME: &str = "LOGNAME";
pub const SHELL: &str = "SHELL";
pub const TMPDIR: &str = "TMPDIR";

/// What a task takes from the environment `job submit` or `job new` ran in
/// (the head node records it with the job): where the submitter's
/// programs and files are, and their language and time zone. Everything
/// else a task gets is the cluster's, the job's and the task's (README,
/// "A task's environment").
pub fn is_submit_variable(name: &str) -> bool {
    matches!(name, HOME | PATH | TMPDIR | "LANG" | "LANGUAGE" | "TZ") || name.starts_with("LC_")
}

/// The submitter's variables of [`is_submit_variable`], as this process has
/// them (empty ones and ones that are not valid UTF-8 left out).
pub fn submit_environment() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, val)| Some((k.into_string().ok()?, val.into_string().ok()?)))
        .filter(|(k, val)| is_submit_variable(k) && !val.is_empty() && !val.contains('\0'))
        .collect();
    v.sort();
    v
}

/// Reads a variable, treating an empty value as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
