//! `hpcd`: the head node (`hpcd head`), the embedded local cluster
//! (`hpcd local start|stop|status`), the per-task supervisor
//! (`hpcd run-task`, started by the node agent), and the per-rank one
//! (`hpcd run-rank`, started by the MPI launch service).

use crate::client::local::{hpcd_binary, is_running, socket_path};
use crate::error::{Error, exit};
use crate::head::local::{LocalLayout, virtual_nodes};
use crate::node::sys;
use clap::{Args, Parser, Subcommand};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// hpcpack's head node and node agent.
#[derive(Parser, Debug)]
#[command(name = "hpcd", version, help_expected = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Runs a head node in the foreground, with this machine as its compute
    /// node(s).
    Head(HeadArgs),
    /// Starts, stops or reports the embedded head node of this user (the one
    /// the CLIs start by themselves).
    #[command(subcommand)]
    Local(LocalCmd),
    /// Reports the embedded head node's status (same as `hpcd local status`).
    Status,
    /// Supervises one task run (started by the node agent; not for users).
    #[command(hide = true)]
    RunTask {
        /// The run's directory.
        dir: PathBuf,
    },
    /// Supervises one MPI rank (started by the launch service with the
    /// request on stdin and mpiexec's connection as descriptor 3; not for
    /// users).
    #[command(hide = true)]
    RunRank,
    /// Runs the tasks of a job the Slurm backend submitted, as its batch
    /// script (not for users).
    #[command(hide = true, name = "slurm-job")]
    SlurmJob {
        /// The job's record directory.
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum LocalCmd {
    /// Starts the embedded head node in the background, unless it runs already.
    Start(LayoutArgs),
    /// Stops the embedded head node. Running tasks go on; it finds them again
    /// when it starts.
    Stop,
    /// Reports whether the embedded head node runs, and its nodes and jobs.
    Status,
}

#[derive(Args, Debug, Default, Clone)]
pub struct LayoutArgs {
    /// Splits this machine into N virtual nodes (default from the config file, else 1).
    #[arg(long, value_name = "N")]
    pub nodes: Option<u32>,
    /// Cores of each virtual node (default: the CPUs divided evenly).
    #[arg(long, value_name = "N")]
    pub cores_per_node: Option<u32>,
    /// A node group of the virtual nodes: NAME (every node), NAME:COUNT (the
    /// next COUNT nodes) or NAME:FIRST-LAST (those nodes, numbered from 1);
    /// repeat for more.
    #[arg(long = "node-group", value_name = "NAME")]
    pub node_groups: Vec<String>,
    /// Prints nothing when all goes well.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct HeadArgs {
    /// Directory of the state database and task output (default: the
    /// embedded head node's).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Unix socket to listen on (default: hpcd.sock in the state directory).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Lets every local user connect (they are told apart by their
    /// credentials; only owners change their jobs).
    #[arg(long)]
    pub shared: bool,
    #[command(flatten)]
    pub layout: LayoutArgs,
}

impl LayoutArgs {
    fn layout(&self) -> LocalLayout {
        LocalLayout { nodes: self.nodes, cores_per_node: self.cores_per_node, node_groups: self.node_groups.clone() }
    }

    fn to_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(n) = self.nodes {
            a.extend(["--nodes".into(), n.to_string()]);
        }
        if let Some(n) = self.cores_per_node {
            a.extend(["--cores-per-node".into(), n.to_string()]);
        }
        for g in &self.node_groups {
            a.extend(["--node-group".into(), g.clone()]);
        }
        a
    }
}

pub fn main() -> ExitCode {
    // hpcd's options are GNU-style, but it takes `/?` and `/help` for help
    // as every tool does.
    let args = std::env::args_os().map(|a| if a.to_str().is_some_and(crate::cli::grammar::is_help) { "--help".into() } else { a });
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    let r = match cli.command {
        Cmd::RunTask { dir } => return ExitCode::from(crate::node::supervisor::main(&dir) as u8),
        Cmd::RunRank => return crate::node::launch::run_rank_main(),
        Cmd::SlurmJob { dir } => return ExitCode::from(crate::slurm::runner::main(&dir) as u8),
        Cmd::Head(a) => run_head(a),
        Cmd::Local(LocalCmd::Start(l)) => local_start(&l),
        Cmd::Local(LocalCmd::Stop) => local_stop(),
        Cmd::Local(LocalCmd::Status) | Cmd::Status => local_status(),
    };
    crate::cli::finish("hpcd", r)
}

/// The layout (config files, then command-line options) and the config
/// files read.
fn resolve_layout(args: &LayoutArgs) -> anyhow::Result<(LocalLayout, Vec<PathBuf>)> {
    let (settings, read) = crate::config::load_with_sources(None)?;
    let mut layout = settings.local;
    layout.overlay(&args.layout());
    virtual_nodes(&layout, "node", &[0], 0).map_err(Error::InvalidArgument)?;
    Ok((layout, read))
}

/// The config files, each with whether it is there: `/etc/hpcpack/config.toml
/// (absent), /home/u/.config/hpcpack/config.toml`.
fn looked_at() -> String {
    crate::config::sources()
        .iter()
        .map(|(p, there)| if *there { p.display().to_string() } else { format!("{} (absent)", p.display()) })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The soft limit on open descriptors `hpcd head` raises itself to (or to
/// the hard limit, if lower).
const NOFILE_LIMIT: u64 = 65536;

fn run_head(a: HeadArgs) -> anyhow::Result<u8> {
    // Nothing the head node writes (state, task output, job specs with
    // their credentials) is for other users; tasks get the mask hpcd was
    // started with.
    let task_umask = sys::set_umask(0o077);
    let dir = a.state_dir.clone().unwrap_or_else(crate::config::state_dir);
    let socket = a.socket.clone().unwrap_or_else(|| socket_path(&dir));
    if a.shared && socket.parent().is_some_and(|p| same_dir(p, &dir)) {
        return Err(Error::InvalidArgument(format!(
            "a shared head node needs its socket outside its state directory {}, which only its own user may enter; give --socket, for example --socket /run/hpcpack.sock",
            dir.display()
        ))
        .into());
    }
    create_private_dir(&dir)?;
    let lock_path = lock_file(&dir);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(format!("cannot open {}", lock_path.display()), e))?;
    if !sys::try_lock(&lock).map_err(|e| Error::io("cannot lock the state directory", e))? {
        return Err(Error::InvalidState(format!(
            "another hpcd already runs with the state directory {}; stop it first (hpcd local stop)",
            dir.display()
        ))
        .into());
    }
    // Every client of the REST API and of the launch service holds a
    // descriptor, and the default soft limit of 1024 is far below what the
    // administrator usually allows. Capped: tasks and ranks inherit the
    // limit, and some programs loop over every possible descriptor.
    if let Err(e) = sys::raise_nofile_limit(NOFILE_LIMIT) {
        eprintln!("hpcd: cannot raise the limit on open files (RLIMIT_NOFILE): {e}; going on with it as it is");
    }
    let (layout, read) = resolve_layout(&a.layout)?;
    let host = sys::hostname();
    let cpus = sys::affinity().unwrap_or_default();
    let (nodes, groups) = virtual_nodes(&layout, &host, &cpus, sys::memory_mb()).map_err(Error::InvalidArgument)?;
    let hpcd = std::env::current_exe().unwrap_or_else(|_| hpcd_binary());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the runtime", e))?;
    rt.block_on(async move {
        let (head, events) = crate::head::Head::open(&dir, nodes, groups, &layout.node_groups, hpcd.clone(), task_umask)?;
        let _ = head.config_files.set(read.iter().map(|p| p.display().to_string()).collect());
        // Loopback: every node of this head node is this host. A node agent
        // on another host binds the interface its head node reaches it on.
        let launch = head.start_launch_service(std::net::Ipv4Addr::LOCALHOST.into(), hpcd)?;
        let _ = std::fs::remove_file(&socket);
        let listener = tokio::net::UnixListener::bind(&socket)
            .map_err(|e| Error::io(format!("cannot listen on {}", socket.display()), e))?;
        let mode = if a.shared { 0o666 } else { 0o600 };
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("cannot set the mode of {}", socket.display()), e))?;
        crate::head::log(&format!(
            "head node {} serving {} (state in {}), MPI launch service on {launch}",
            head.cluster_name,
            socket.display(),
            dir.display()
        ));
        let stop = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        let r = crate::head::serve(head, events, listener, stop).await;
        let _ = std::fs::remove_file(&socket);
        r
    })?;
    drop(lock);
    Ok(exit::OK)
}

/// The lock file of a state directory: held by the hpcd head that uses it.
fn lock_file(dir: &Path) -> PathBuf {
    dir.join("hpcd.lock")
}

/// True if some hpcd holds the state directory's lock.
fn lock_held(dir: &Path) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(lock_file(dir))
        .ok()
        .and_then(|f| sys::try_lock(&f).ok())
        .is_some_and(|got| !got)
}

/// Whether two paths name the same directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => a == b,
    }
}

/// Makes the state directory, or tightens one made before: only the head
/// node's user may enter it (0700), and the files it keeps at its top
/// (database, keys, log) are 0600, so task outputs, job specs and their
/// credentials are nobody else's to read.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let mode = std::fs::metadata(dir).map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("cannot make {} private", dir.display()), e))?;
        crate::head::log(&format!("made the state directory {} private (mode {:o} -> 700)", dir.display(), mode & 0o777));
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for e in entries.flatten() {
        let Ok(meta) = e.path().symlink_metadata() else { continue };
        let private = if meta.is_dir() { 0o700 } else { 0o600 };
        if !meta.file_type().is_symlink() && !meta.file_type().is_socket() && meta.permissions().mode() & 0o077 != 0 {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(private));
        }
    }
    Ok(())
}

fn local_start(l: &LayoutArgs) -> anyhow::Result<u8> {
    let dir = crate::config::state_dir();
    let socket = socket_path(&dir);
    // Options given once are kept: the head node started later by any
    // command (after `hpcd local stop`, a reboot) has the same nodes.
    let given = l.layout();
    // A layout the nodes cannot have is refused before it is kept.
    resolve_layout(l)?;
    if given != LocalLayout::default() {
        let path = crate::config::save_local(&given)?;
        if !l.quiet {
            crate::cli::out(&format!("Saved {} to {}.\n", l.to_args().join(" "), path.display()));
        }
    }
    if is_running(&socket) {
        let (wanted, _) = resolve_layout(l)?;
        // A head node that dies as it is asked (killed, stopping) is
        // started again below, as if it had not been running.
        match differences(&socket, &wanted).unwrap_or(None) {
            None if !is_running(&socket) => {}
            None => {
                if !l.quiet {
                    crate::cli::out(&format!("The embedded head node already runs ({}).\n", socket.display()));
                }
                return Ok(exit::OK);
            }
            Some((running, asked, active)) if !active.is_empty() => {
                let jobs = match active.as_slice() {
                    [one] => format!("job {one} is active"),
                    many => format!("jobs {} are active", many.join(", ")),
                };
                return Err(Error::InvalidState(format!(
                    "the embedded head node runs with {running}, not {asked}, and {jobs}, so it was not restarted; the layout applies when it starts next: stop it (hpcd local stop) once no job is active"
                ))
                .into());
            }
            Some((running, asked, _)) => {
                local_stop_quietly(&socket)?;
                if !l.quiet {
                    crate::cli::out(&format!("Restarting the embedded head node: it ran with {running}, asked for {asked}; no job was active.\n"));
                }
            }
        }
    }
    create_private_dir(&dir)?;
    let log_path = dir.join("hpcd.log");
    // The head node started below takes this process's umask as its tasks'
    // (and sets its own to 077), so it is left as the user has it.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| Error::io(format!("cannot open {}", log_path.display()), e))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find the hpcd binary", e))?;
    let spawn = || -> anyhow::Result<std::process::Child> {
        let mut cmd = Command::new(&exe);
        std::os::unix::process::CommandExt::arg0(&mut cmd, "hpcd");
        cmd.arg("head").arg("--state-dir").arg(&dir).args(l.to_args());
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log.try_clone()?);
        // SAFETY: setsid in the child between fork and exec is
        // async-signal-safe; it detaches the head node from this terminal's
        // session.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, sys::setsid);
        }
        Ok(cmd.spawn().map_err(|e| Error::io("cannot start hpcd head", e))?)
    };
    let mut child = spawn()?;
    let mut respawns = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if is_running(&socket) {
            if !l.quiet {
                crate::cli::out(&format!("Started the embedded head node ({}).\n", socket.display()));
            }
            return Ok(exit::OK);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Lost the race with another start: that head node holds the
            // state directory's lock and will answer on the socket; wait for
            // it until the deadline.
            if !status.success() && lock_held(&dir) {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            // The head node that won that race is gone too (killed), or
            // this one was killed as it started: start one again.
            let lost = status.code() == Some(i32::from(exit::INVALID_STATE)) || std::os::unix::process::ExitStatusExt::signal(&status).is_some();
            if lost && respawns < 5 {
                respawns += 1;
                child = spawn()?;
                continue;
            }
            if !status.success() {
                let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                let last = tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
                return Err(Error::Unreachable(format!("hpcd head exited ({status}): {last}")).into());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(Error::Unreachable(format!("the embedded head node did not answer on {} within 20 s; see {}", socket.display(), log_path.display())).into())
}

fn local_stop() -> anyhow::Result<u8> {
    let dir = crate::config::state_dir();
    let socket = socket_path(&dir);
    if !is_running(&socket) {
        crate::cli::out("The embedded head node is not running.\n");
        return Ok(exit::OK);
    }
    local_stop_quietly(&socket)?;
    crate::cli::out("Stopped the embedded head node.\n");
    Ok(exit::OK)
}

/// Stops the head node on `socket` and waits until it is gone.
fn local_stop_quietly(socket: &Path) -> anyhow::Result<()> {
    let b = crate::client::hpcpack::RestBackend::unix(socket)?;
    use crate::client::Backend;
    b.shutdown()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if !is_running(socket) && !lock_held(socket.parent().unwrap_or(Path::new("."))) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::Unreachable("the embedded head node did not stop within 20 s".into()).into())
}

/// How the nodes of the head node on `socket` differ from those `wanted`
/// makes on this host: `None` if they do not, else both in words and the
/// jobs that are active (queued or started), which a restart would hold up.
/// Groups compare as configured: members changed at run time are no
/// difference.
fn differences(socket: &Path, wanted: &LocalLayout) -> anyhow::Result<Option<(String, String, Vec<String>)>> {
    use crate::client::{Backend, JobQuery};
    let b = crate::client::hpcpack::RestBackend::unix(socket)?;
    let running = Layout::new(b.nodes(None)?.into_iter().map(|n| (n.name, n.cores)), b.status()?.node_group_layout);
    let (nodes, _) = virtual_nodes(wanted, &sys::hostname(), &sys::affinity().unwrap_or_default(), 0)
        .map_err(Error::InvalidArgument)?;
    let asked = Layout::new(nodes.into_iter().map(|n| (n.name, n.cores)), wanted.node_groups.clone());
    if running == asked {
        return Ok(None);
    }
    let jobs = b.jobs(&JobQuery { properties: vec!["Id".into(), "State".into()], ..Default::default() })?;
    let active = jobs
        .iter()
        .filter(|j| {
            let state = crate::wire::prop(j, "State").unwrap_or("");
            !matches!(state, "Configuring" | "Finished" | "Failed" | "Canceled")
        })
        .filter_map(|j| crate::wire::prop(j, "Id").map(str::to_string))
        .collect();
    Ok(Some((running.to_string(), asked.to_string(), active)))
}

/// The nodes as (name, cores), in an order that does not depend on how
/// they were listed, and the group entries of the configuration.
#[derive(PartialEq)]
struct Layout {
    nodes: Vec<(String, u32)>,
    groups: Vec<String>,
}

impl Layout {
    fn new(nodes: impl Iterator<Item = (String, u32)>, groups: Vec<String>) -> Layout {
        let mut nodes: Vec<_> = nodes.collect();
        nodes.sort();
        Layout { nodes, groups }
    }
}

/// `4 nodes of 1 core, groups azurenodes:2, vmcomputenodes:2`.
impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.nodes.len();
        let mut cores: Vec<u32> = self.nodes.iter().map(|x| x.1).collect();
        cores.dedup();
        let cores = cores.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("/");
        write!(f, "{n} node{} of {cores} core{}", if n == 1 { "" } else { "s" }, if cores == "1" { "" } else { "s" })?;
        match self.groups.as_slice() {
            [] => write!(f, ", no node groups"),
            g => write!(f, ", node groups {}", g.join(", ")),
        }
    }
}

fn local_status() -> anyhow::Result<u8> {
    let dir = crate::config::state_dir();
    let socket = socket_path(&dir);
    if !is_running(&socket) {
        crate::cli::out(&format!("The embedded head node is not running (state directory {}).\n", dir.display()));
        crate::cli::out(&format!("Config files it would read: {}.\n", looked_at()));
        return Ok(exit::FAILED);
    }
    let b = crate::client::hpcpack::RestBackend::unix(&socket)?;
    use crate::client::Backend;
    let s = b.status()?;
    let read = if s.config_files.is_empty() { "none".to_string() } else { s.config_files.join(", ") };
    let rows = [
        ("Cluster Name", s.cluster_name),
        ("Version", s.version),
        ("Process Id", s.pid.to_string()),
        ("Started", s.started),
        ("Socket", socket.display().to_string()),
        ("State Directory", s.state_dir),
        ("Nodes", s.nodes.to_string()),
        ("Jobs", s.jobs.to_string()),
        ("Config Files Read", read),
    ];
    let mut out = std::io::stdout().lock();
    crate::cli::output::write_properties(&mut out, &rows.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Vec<_>>())?;
    Ok(exit::OK)
}
