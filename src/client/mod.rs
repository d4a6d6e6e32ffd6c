//! How a CLI reaches a cluster. [`Backend`] is the cluster seen by the
//! commands; [`hpcpack::RestBackend`] implements it over HPC Pack's REST API,
//! for our head node and for a real one. [`connect`] picks the head node from
//! the settings and starts the embedded one when it is not running.

pub mod hpcpack;
pub mod local;
pub mod slurm;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::wire::{JobSpec, RestProperty, WireCore, WireNode, WireNodeGroup, WireStatus, WireTemplate};

/// Which jobs `job list` wants.
#[derive(Clone, Debug, Default)]
pub struct JobQuery {
    pub properties: Vec<String>,
    /// Only these states (names as HPC Pack spells them); empty: any.
    pub states: Vec<String>,
    pub owner: Option<String>,
}

/// The cluster as the CLIs see it. Every method is one request or a short
/// sequence of them; errors carry the head node's message and kind.
pub trait Backend {
    /// Creates a job with its tasks and submits it (`job submit <command>`).
    fn submit(&self, spec: &JobSpec) -> Result<u64>;
    /// A Configuring job with the spec's tasks (`job new`).
    fn create(&self, spec: &JobSpec) -> Result<u64>;
    /// Creates a Configuring job (`job new`).
    fn create_job(&self, props: &[RestProperty], env: &[RestProperty]) -> Result<u64>;
    /// Creates a Configuring job from job XML (`job new /jobfile:`).
    fn create_job_from_xml(&self, xml: &str) -> Result<u64>;
    /// Adds a task to a Configuring job (`job add`).
    fn add_task(&self, job: u64, props: &[RestProperty], env: &[RestProperty]) -> Result<u32>;
    /// Submits a Configuring job (`job submit /id:`).
    fn submit_job(&self, job: u64) -> Result<()>;
    fn job(&self, id: u64, properties: &[&str]) -> Result<Vec<RestProperty>>;
    fn jobs(&self, q: &JobQuery) -> Result<Vec<Vec<RestProperty>>>;
    fn modify_job(&self, id: u64, props: &[RestProperty], env: &[RestProperty]) -> Result<()>;
    fn cancel_job(&self, id: u64, message: &str) -> Result<()>;
    fn finish_job(&self, id: u64, message: &str) -> Result<()>;
    fn requeue_job(&self, id: u64) -> Result<()>;
    /// Blocks until the job is final or `timeout_secs` pass; returns its properties.
    fn wait_job(&self, id: u64, timeout_secs: f64, properties: &[&str]) -> Result<Vec<RestProperty>>;
    fn tasks(&self, job: u64, properties: &[&str]) -> Result<Vec<Vec<RestProperty>>>;
    fn task(&self, job: u64, task: u32, properties: &[&str]) -> Result<Vec<RestProperty>>;
    /// The task's output as the bytes it wrote, from byte `offset` to what
    /// there is now, or `None` where the head node keeps only the `Output`
    /// property (a real HPC Pack head node).
    fn task_output(&self, job: u64, task: u32, offset: u64) -> Result<Option<Box<dyn std::io::Read>>>;
    fn cancel_task(&self, job: u64, task: u32, message: &str) -> Result<()>;
    fn finish_task(&self, job: u64, task: u32, message: &str) -> Result<()>;
    fn requeue_task(&self, job: u64, task: u32) -> Result<()>;
    fn nodes(&self, group: Option<&str>) -> Result<Vec<WireNode>>;
    fn node(&self, name: &str) -> Result<WireNode>;
    /// `bringOnline` or `takeOffline` (with `force`, no draining).
    fn node_operation(&self, name: &str, operation: &str, force: bool) -> Result<()>;
    fn node_groups(&self) -> Result<Vec<WireNodeGroup>>;
    /// The names of the nodes of a group.
    fn group_nodes(&self, group: &str) -> Result<Vec<String>>;
    /// Creates a group (`POST /cluster/nodeGroups`); returns it as made.
    fn create_group(&self, group: &WireNodeGroup) -> Result<WireNodeGroup>;
    /// A group's new description (`PUT /cluster/nodeGroups/{name}`).
    fn update_group(&self, group: &WireNodeGroup) -> Result<WireNodeGroup>;
    fn delete_group(&self, group: &str) -> Result<()>;
    /// Adds nodes to a group or removes them (`add` false); returns its members after.
    fn move_group_nodes(&self, group: &str, add: bool, nodes: &[String]) -> Result<Vec<String>>;
    /// The names of the job templates.
    fn templates(&self) -> Result<Vec<String>>;
    fn template(&self, name: &str) -> Result<WireTemplate>;
    /// Imports HPC Pack job template XML as template `name` (`replace`: over one that exists).
    fn put_template(&self, name: &str, xml: &str, replace: bool) -> Result<WireTemplate>;
    fn delete_template(&self, name: &str) -> Result<()>;
    /// Lets users and `%groups` submit with a template, or (`grant` false) no longer.
    fn template_submitters(&self, name: &str, grant: bool, who: &[String]) -> Result<WireTemplate>;
    fn cores(&self) -> Result<Vec<WireCore>>;
    fn cluster_env(&self) -> Result<Vec<RestProperty>>;
    fn set_cluster_env(&self, vars: &[RestProperty]) -> Result<()>;
    fn cluster_version(&self) -> Result<String>;
    fn active_head_node(&self) -> Result<String>;
    fn status(&self) -> Result<WireStatus>;
    fn shutdown(&self) -> Result<()>;
}

/// The head node the settings name: the embedded one (started if needed),
/// or a head node's Unix socket (`unix:/path` or an absolute path).
pub fn connect(settings: &Settings) -> Result<Box<dyn Backend>> {
    match settings.scheduler.as_deref().map(str::trim) {
        None | Some("") => local::connect_embedded(),
        Some(s) if is_this_host(s) => local::connect_embedded(),
        Some(s) if s.eq_ignore_ascii_case("slurm") => Ok(Box::new(slurm::SlurmBackend::new(settings.slurm.url.clone()))),
        Some(s) if s.starts_with("unix:") || s.starts_with('/') => {
            let path = s.strip_prefix("unix:").unwrap_or(s);
            Ok(Box::new(hpcpack::RestBackend::unix(std::path::Path::new(path))?))
        }
        Some(s) => Err(Error::Unreachable(format!(
            "cannot reach head node '{s}': this build reaches head nodes through a Unix socket (unix:/path), the embedded local one, or a Slurm cluster (slurm); TCP and TLS come later. Unset CCP_SCHEDULER or drop /scheduler to use the embedded head node"
        ))),
    }
}

/// The head node the settings name, if it answers already; never started.
/// Each request gives up after `timeout` (see
/// [`hpcpack::RestBackend::unix_bounded`]). For shell completion, which
/// must not start a head node nor keep the prompt waiting.
pub fn connect_running(settings: &Settings, timeout: std::time::Duration) -> Option<Box<dyn Backend>> {
    let socket = match settings.scheduler.as_deref().map(str::trim) {
        None | Some("") => local::socket_path(&crate::config::state_dir()),
        Some(s) if is_this_host(s) => local::socket_path(&crate::config::state_dir()),
        Some(s) if s.starts_with("unix:") || s.starts_with('/') => std::path::PathBuf::from(s.strip_prefix("unix:").unwrap_or(s)),
        Some(_) => return None,
    };
    if !local::is_running(&socket) {
        return None;
    }
    Some(Box::new(hpcpack::RestBackend::unix_bounded(&socket, timeout).ok()?))
}

/// True when the settings name the embedded head node, whose tasks run on
/// this machine, as this user: a CLI can check what a task will use (its
/// working directory) before submitting it.
pub fn targets_embedded(settings: &Settings) -> bool {
    settings.scheduler.as_deref().map(str::trim).is_none_or(|s| s.is_empty() || is_this_host(s))
}

/// `local`, `localhost` and this machine's name all mean the embedded head node.
pub fn is_this_host(s: &str) -> bool {
    s.eq_ignore_ascii_case("local")
        || s.eq_ignore_ascii_case("localhost")
        || s == "127.0.0.1"
        || s.eq_ignore_ascii_case(&crate::node::sys::hostname())
}
