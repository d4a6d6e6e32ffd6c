//! The head node (`hpcd head`, and the embedded `hpcd local`): the REST
//! server, the state it guards, the scheduler loop, and the node agent that
//! runs this machine's (virtual) nodes.
//!
//! [`Head`] ties them together. Requests change the [`cluster::Cluster`]
//! under its lock; each change returns [`cluster::Effects`] that
//! [`Head::apply`] carries out (start or signal task runs, wake the
//! scheduler) once the change is durable.
//!
//! Requests come through [`server`], the listener that bounds what each
//! caller may hold (connections per user, time to send a request, body
//! size), and [`api`], the routes.
//!
//! The head node also runs this host's MPI launch service
//! ([`crate::node::launch`]), answering its questions about jobs, and gives
//! each task the job's credential and the service's address.

pub mod api;
pub mod cluster;
pub mod local;
pub mod scheduler;
pub mod server;
pub mod store;

use crate::error::{Error, Result};
use crate::model::{Millis, Node, NodeGroup, now_millis};
use crate::node::agent::LocalAgent;
use crate::node::launch::{self, ClusterKey, JobView};
use crate::node::protocol::AgentEvent;
use cluster::{Cluster, Effects};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};

/// How often the scheduler runs when nothing wakes it (run-time limits,
/// hold-until times, draining nodes).
const TICK: Duration = Duration::from_millis(500);

pub struct Head {
    cluster: Mutex<Cluster>,
    agent: LocalAgent,
    wake: Notify,
    changes: watch::Sender<u64>,
    /// Notified to stop the server (`hpcd local stop`).
    pub shutdown: Notify,
    pub started: Millis,
    pub state_dir: PathBuf,
    pub cluster_name: String,
    /// This host's MPI launch service, once started.
    launch: OnceLock<LaunchService>,
    /// The config files `hpcd` read at its start (see `hpcd local status`).
    pub config_files: OnceLock<Vec<String>>,
    /// The configuration's node group entries this head node started with.
    pub group_layout: Vec<String>,
}

/// What tasks are told about the launch service.
struct LaunchService {
    key: ClusterKey,
    addr: SocketAddr,
}

/// The state database inside a state directory.
pub fn db_path(state_dir: &Path) -> PathBuf {
    state_dir.join("state.db")
}

impl Head {
    /// Opens the state in `state_dir` and registers `nodes` as this head
    /// node's own. `hpcd` is the binary that supervises task runs; tasks
    /// start with the file mode creation mask `task_umask`.
    pub fn open(
        state_dir: &Path,
        nodes: Vec<Node>,
        groups: Vec<NodeGroup>,
        layout: &[String],
        hpcd: PathBuf,
        task_umask: u32,
    ) -> Result<(Arc<Head>, mpsc::UnboundedReceiver<AgentEvent>)> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| Error::io(format!("cannot create {}", state_dir.display()), e))?;
        let store = store::Store::open(&db_path(state_dir))?;
        let cluster_name = crate::node::sys::hostname();
        let run_root = state_dir.join("runs");
        let mut cluster = Cluster::load(store, run_root.clone(), cluster_name.clone())?;
        cluster.register_nodes(nodes, groups, layout, now_millis())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let head = Head {
            cluster: Mutex::new(cluster),
            agent: LocalAgent::new(run_root, hpcd, tx, task_umask),
            wake: Notify::new(),
            changes: watch::channel(0).0,
            shutdown: Notify::new(),
            started: now_millis(),
            state_dir: state_dir.to_path_buf(),
            cluster_name,
            launch: OnceLock::new(),
            config_files: OnceLock::new(),
            group_layout: layout.to_vec(),
        };
        Ok((Arc::new(head), rx))
    }

    /// Starts this host's MPI launch service on `ip` (the cluster key and
    /// the port are kept in the state directory); `hpcd` is the binary that
    /// provides `run-rank`. Call before [`serve`], so every task gets the
    /// service's address.
    pub fn start_launch_service(self: &Arc<Self>, ip: IpAddr, hpcd: PathBuf) -> Result<SocketAddr> {
        let key = ClusterKey::load_or_create(&self.state_dir)
            .map_err(|e| Error::io("cannot start the MPI launch service", e))?;
        let listener = launch::bind(ip, &self.state_dir)
            .map_err(|e| Error::io("cannot start the MPI launch service", e))?;
        // Weak: the service thread lives as long as the process and must not
        // keep the head node alive after it is stopped.
        let head = Arc::downgrade(self);
        let jobs = move |id: u64| {
            let head = head.upgrade()?;
            let c = head.lock();
            let j = c.job(id).ok()?;
            Some(JobView {
                state: j.state.as_str().to_string(),
                owner_uid: j.owner_uid,
                nodes: j.allocation.iter().map(|a| a.node.clone()).collect(),
            })
        };
        let addr = launch::start(listener, key.clone(), Arc::new(jobs), hpcd)
            .map_err(|e| Error::io("cannot start the MPI launch service", e))?;
        let _ = self.launch.set(LaunchService { key, addr });
        Ok(addr)
    }

    /// The cluster, locked. Held only for a check-and-commit, never across
    /// an await.
    pub fn lock(&self) -> MutexGuard<'_, Cluster> {
        // A panic while holding the lock leaves the memory as of the last
        // commit or before it (changes are installed after commit), so the
        // state is still consistent.
        self.cluster.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Carries out what a committed change asks for.
    pub fn apply(&self, eff: Effects) {
        for (_, run) in eff.kills {
            self.agent.kill(run);
        }
        for mut l in eff.launches {
            if let Some(svc) = self.launch.get() {
                // Every node of this head node is this host (its virtual
                // nodes), so one service serves them all.
                let addr = svc.addr.to_string();
                let credential = svc.key.credential(l.run.job, l.owner_uid);
                Cluster::add_launch_env(&mut l, credential, |_| Some(addr.clone()));
            }
            self.agent.launch(l);
        }
        if eff.reschedule {
            self.wake.notify_one();
        }
        self.changed();
    }

    /// Wakes whoever waits for a change (`job wait`).
    pub fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Applies agents' reports as they come, several under one lock.
    async fn event_loop(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<AgentEvent>) {
        let mut batch = Vec::new();
        while let Some(first) = rx.recv().await {
            batch.push(first);
            loop {
                while let Ok(ev) = rx.try_recv() {
                    batch.push(ev);
                }
                let result = self.lock().batch(|c| {
                    let mut effects = Effects::default();
                    for ev in &batch {
                        effects.merge(c.agent_event(ev, now_millis())?);
                    }
                    Ok(effects)
                });
                match result {
                    Ok(effects) => {
                        // Recorded: the runs' files have served their
                        // purpose (before launches, which never reuse a
                        // run's directory anyway: each has a new attempt).
                        for ev in batch.drain(..) {
                            if let AgentEvent::Exited { run, .. } = ev {
                                self.agent.settled(run);
                            }
                        }
                        self.apply(effects);
                        break;
                    }
                    Err(e) => {
                        // Nothing of the batch was recorded (a full disk,
                        // say): the reports are kept and tried again, so
                        // tasks do not stay Running once there is room.
                        log(&format!("cannot record {} agent report(s), trying again in 1 s: {e}", batch.len()));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }

    /// Schedules when woken, and on every tick.
    async fn scheduler_loop(self: Arc<Self>) {
        loop {
            let _ = tokio::time::timeout(TICK, self.wake.notified()).await;
            let now = now_millis();
            let result = self.lock().batch(|c| {
                let mut e = c.enforce_runtimes(now)?;
                let s = c.schedule(now)?;
                e.launches.extend(s.launches);
                e.kills.extend(s.kills);
                c.settle_draining(now)?;
                Ok(e)
            });
            match result {
                Ok(e) => {
                    let busy = !e.launches.is_empty() || !e.kills.is_empty();
                    self.apply(Effects {
                        reschedule: false,
                        ..e
                    });
                    if busy {
                        self.changed();
                    }
                }
                Err(e) => {
                    log(&format!("scheduling failed: {e}"));
                    tokio::time::sleep(TICK).await;
                }
            }
        }
    }

    /// Finds the runs that were going on when the head node last stopped.
    fn reattach(&self) {
        let runs = self.lock().started_runs();
        for (_, run) in runs {
            self.agent.reattach(run);
        }
    }
}

/// Writes a line to the head node's log (its stderr): never fails, since a
/// full disk under the log must not take the head node down with it.
pub fn log(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "hpcd: {msg}");
}

/// Serves `head` on `listener` until `shutdown` completes or the head node
/// is asked to stop. Starts the scheduler and finds earlier runs first.
pub async fn serve(
    head: Arc<Head>,
    events: mpsc::UnboundedReceiver<AgentEvent>,
    listener: tokio::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    tokio::spawn(head.clone().event_loop(events));
    head.reattach();
    tokio::spawn(head.clone().scheduler_loop());
    head.wake.notify_one();
    let limits = server::Limits::default();
    let app = api::app(head.clone(), limits);
    let stop = head.clone();
    server::serve(listener, app, limits, async move {
        tokio::select! {
            _ = shutdown => {}
            _ = stop.shutdown.notified() => {}
        }
    })
    .await
    .map_err(|e| Error::io("the head node's server failed", e))
}
