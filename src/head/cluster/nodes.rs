//! Nodes, node groups and cluster-wide variables.

use super::*;
use crate::model::builtin_group;

/// The meta key of the configuration's group entries at the last start.
const GROUP_LAYOUT: &str = "node_group_layout";

impl Cluster {
    /// Registers or updates the nodes this head node runs (the embedded
    /// cluster's virtual nodes). Existing nodes keep their Online/Offline
    /// state. `layout` is the configuration's group entries that made the
    /// nodes' groups: while it stays what it was at the last start, existing
    /// nodes keep the groups they have (changes made at run time last);
    /// when it changed, the groups it names get their members from it anew.
    pub fn register_nodes(&mut self, nodes: Vec<Node>, groups: Vec<NodeGroup>, layout: &[String], now: Millis) -> Result<()> {
        for g in &groups {
            crate::model::values::check_group_name(&g.name)
                .map_err(|e| Error::InvalidArgument(format!("{e} (in the node groups of the configuration)")))?;
        }
        let layout_now = serde_json::to_string(layout).expect("strings serialise");
        let layout_before = self.store.meta(GROUP_LAYOUT)?;
        let before: Vec<String> = layout_before.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        let named = |g: &str| {
            before.iter().chain(layout).any(|e| e.split(':').next().is_some_and(|n| n.eq_ignore_ascii_case(g)))
        };
        let kept = layout_before.as_deref() == Some(layout_now.as_str());
        let defined =
            |g: &str| builtin_group(g).is_some() || self.groups.iter().chain(&groups).any(|x| x.name.eq_ignore_ascii_case(g));
        let mut out = Vec::new();
        for mut n in nodes {
            if let Ok(old) = self.node(&n.name) {
                n.state = old.state;
                n.online_time = old.online_time;
                n.offline_time = old.offline_time;
                // The built-in groups, then those of the layout or of before.
                let mut g: Vec<String> = n.groups.iter().filter(|g| builtin_group(g).is_some()).cloned().collect();
                let from = if kept { &old.groups } else { &n.groups };
                g.extend(from.iter().filter(|x| builtin_group(x).is_none()).cloned());
                if !kept {
                    let others: Vec<String> =
                        old.groups.iter().filter(|x| !named(x) && defined(x) && !g.contains(x)).cloned().collect();
                    g.extend(others);
                }
                n.groups = g;
            } else {
                n.online_time = Some(now);
            }
            out.push(n);
        }
        let new_groups: Vec<NodeGroup> =
            groups.into_iter().filter(|g| !self.groups.iter().any(|x| x.name.eq_ignore_ascii_case(&g.name))).collect();
        // Nodes of an earlier layout go, unless a job still holds them.
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !out.iter().any(|o| o.name == n.name))
            .filter(|n| !self.jobs.values().any(|j| j.holds_resources() && j.allocation.iter().any(|a| a.node == n.name)))
            .map(|n| n.name.clone())
            .collect();
        self.store.commit(&Changes {
            nodes: out.iter().collect(),
            groups: new_groups.iter().collect(),
            deleted_nodes: gone.clone(),
            meta: vec![(GROUP_LAYOUT, layout_now)],
            ..Default::default()
        })?;
        self.nodes.retain(|n| !gone.contains(&n.name));
        for n in out {
            match self.nodes.iter_mut().find(|x| x.name == n.name) {
                Some(x) => *x = n,
                None => self.nodes.push(n),
            }
        }
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        self.groups.extend(new_groups);
        Ok(())
    }

    /// `bringOnline`: an Offline or Draining node takes work again.
    pub fn node_online(&mut self, caller: &Caller, name: &str, now: Millis) -> Result<Effects> {
        Self::require_admin_or_local(caller, &format!("bring node {name} online"))?;
        let n = self.node(name)?;
        if n.state == NodeState::Online {
            return Err(Error::InvalidState(format!("node {} is already Online; only an Offline or Draining node can be brought online", n.name)));
        }
        let mut n = n.clone();
        n.state = NodeState::Online;
        n.online_time = Some(now);
        self.commit_node(n)?;
        Ok(Effects { reschedule: true, ..Default::default() })
    }

    /// `takeOffline`: the node drains (no new work; Offline once its jobs
    /// end), or with `force` goes Offline at once and its tasks are canceled.
    pub fn node_offline(&mut self, caller: &Caller, name: &str, force: bool, now: Millis) -> Result<Effects> {
        Self::require_admin_or_local(caller, &format!("take node {name} offline"))?;
        let n = self.node(name)?;
        if n.state == NodeState::Offline || (n.state == NodeState::Draining && !force) {
            return Err(Error::InvalidState(format!("node {} is already {}", n.name, n.state)));
        }
        let mut n = n.clone();
        let busy_jobs: Vec<u64> = self
            .active_jobs()
            .filter(|j| j.holds_resources() && j.allocation.iter().any(|a| a.node == n.name))
            .map(|j| j.id)
            .collect();
        let mut effects = Effects { reschedule: true, ..Default::default() };
        if busy_jobs.is_empty() || force {
            n.state = NodeState::Offline;
            n.offline_time = Some(now);
            for id in busy_jobs {
                effects.merge(self.node_gone(id, &n.name, "it was taken offline with /force", now)?);
            }
        } else {
            n.state = NodeState::Draining;
        }
        self.commit_node(n)?;
        Ok(effects)
    }

    /// A node of job `id` went away while it ran (`how`): the job runs
    /// again elsewhere when every task it was running there may run again
    /// (`/rerunnable`, HPC Pack's default), else it fails; either way its
    /// error message names the node.
    fn node_gone(&mut self, id: u64, node: &str, how: &str, now: Millis) -> Result<Effects> {
        let hit: Vec<&Task> = self
            .tasks
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|t| t.state.is_started() && t.allocation.iter().any(|a| a.node == node))
            .collect();
        match hit.iter().find(|t| !t.rerunnable) {
            None => {
                let why = format!("node {node} went away while the job ran there ({how}); the job was requeued to run again on other nodes");
                self.requeue(id, &why, now)
            }
            Some(t) => {
                let why = format!(
                    "node {node} went away while task {} ran there ({how}); the task is not rerunnable (/rerunnable:false), so the job failed",
                    t.display_id()
                );
                self.end_job(id, JobState::Failed, &why, now)
            }
        }
    }

    /// Draining nodes whose jobs have ended go Offline.
    pub fn settle_draining(&mut self, now: Millis) -> Result<()> {
        let done: Vec<Node> = self
            .nodes
            .iter()
            .filter(|n| n.state == NodeState::Draining)
            .filter(|n| !self.active_jobs().any(|j| j.holds_resources() && j.allocation.iter().any(|a| a.node == n.name)))
            .cloned()
            .collect();
        for mut n in done {
            n.state = NodeState::Offline;
            n.offline_time = Some(now);
            self.commit_node(n)?;
        }
        Ok(())
    }

    pub(super) fn commit_node(&mut self, n: Node) -> Result<()> {
        self.store.commit(&Changes { nodes: vec![&n], ..Default::default() })?;
        if let Some(x) = self.nodes.iter_mut().find(|x| x.name == n.name) {
            *x = n;
        }
        Ok(())
    }

    /// `POST /cluster/nodeGroups`.
    pub fn create_group(&mut self, caller: &Caller, g: NodeGroup) -> Result<()> {
        Self::require_admin_or_local(caller, &format!("create node group {}", g.name))?;
        crate::model::values::check_group_name(&g.name).map_err(Error::InvalidArgument)?;
        if self.find_group(&g.name).is_ok() {
            return Err(Error::InvalidState(format!("node group {} already exists", g.name)));
        }
        self.store.commit(&Changes { groups: vec![&g], ..Default::default() })?;
        self.groups.push(g);
        Ok(())
    }

    /// `PUT /cluster/nodeGroups/{name}`: a new description (the name stays).
    pub fn update_group(&mut self, caller: &Caller, name: &str, description: String) -> Result<NodeGroup> {
        Self::require_admin_or_local(caller, &format!("change node group {name}"))?;
        let g = self.find_group(name)?;
        if builtin_group(&g).is_some() {
            return Err(Error::InvalidState(format!("node group {g} is built in and cannot be changed")));
        }
        let g = NodeGroup { name: g, description };
        self.store.commit(&Changes { groups: vec![&g], ..Default::default() })?;
        if let Some(x) = self.groups.iter_mut().find(|x| x.name == g.name) {
            *x = g.clone();
        }
        Ok(g)
    }

    /// `DELETE /cluster/nodeGroups/{name}`.
    pub fn delete_group(&mut self, caller: &Caller, name: &str) -> Result<()> {
        Self::require_admin_or_local(caller, &format!("delete node group {name}"))?;
        let g = self.find_group(name)?;
        if builtin_group(&g).is_some() {
            return Err(Error::InvalidState(format!("node group {g} is built in and cannot be deleted")));
        }
        let nodes: Vec<Node> = self
            .nodes
            .iter()
            .filter(|n| n.in_group(&g))
            .map(|n| Node { groups: n.groups.iter().filter(|x| **x != g).cloned().collect(), ..n.clone() })
            .collect();
        self.store.commit(&Changes { nodes: nodes.iter().collect(), deleted_groups: vec![g.clone()], ..Default::default() })?;
        self.groups.retain(|x| x.name != g);
        for n in nodes {
            self.commit_node_memory(n);
        }
        Ok(())
    }

    pub(super) fn commit_node_memory(&mut self, n: Node) {
        if let Some(x) = self.nodes.iter_mut().find(|x| x.name == n.name) {
            *x = n;
        }
    }

    /// `PATCH /cluster/nodeGroups/{name}/nodes`.
    pub fn change_group_members(&mut self, caller: &Caller, group: &str, add: bool, names: &[String]) -> Result<Effects> {
        Self::require_admin_or_local(caller, &format!("change node group {group}"))?;
        let g = self.find_group(group)?;
        if builtin_group(&g).is_some() {
            return Err(Error::InvalidState(format!(
                "node group {g} is built in: its members are the nodes it always holds, and cannot be changed"
            )));
        }
        let mut nodes = Vec::new();
        for name in names {
            let mut n = self.node(name)?.clone();
            n.groups.retain(|x| !x.eq_ignore_ascii_case(&g));
            if add {
                n.groups.push(g.clone());
            }
            nodes.push(n);
        }
        self.store.commit(&Changes { nodes: nodes.iter().collect(), ..Default::default() })?;
        for n in nodes {
            self.commit_node_memory(n);
        }
        Ok(Effects { reschedule: true, ..Default::default() })
    }

    /// `cluscfg setenvs`: an empty value unsets the variable.
    pub fn set_cluster_env(&mut self, caller: &Caller, vars: &[(String, String)]) -> Result<()> {
        Self::require_admin_or_local(caller, "set cluster environment variables")?;
        for (k, v) in vars {
            if !crate::model::values::valid_env_name(k) {
                return Err(Error::InvalidArgument(format!("'{k}' is not an environment variable name")));
            }
            // `cluscfg listenvs` prints one NAME=value per line.
            if v.contains(['\n', '\r', '\0']) {
                return Err(Error::InvalidArgument(format!(
                    "the value of {k} contains a line break or NUL byte; cluster environment variables are one line each"
                )));
            }
            if k == crate::env::CCP_MPI_NETMASK && !v.is_empty() {
                check_mpi_netmask(v)?;
            }
        }
        let changes: Vec<(String, Option<String>)> =
            vars.iter().map(|(k, v)| (k.clone(), if v.is_empty() { None } else { Some(v.clone()) })).collect();
        self.store.commit(&Changes { env: changes.clone(), ..Default::default() })?;
        for (k, v) in changes {
            match v {
                Some(v) => self.env.insert(k, v),
                None => self.env.remove(&k),
            };
        }
        Ok(())
    }

    pub fn require_admin_or_local(caller: &Caller, what: &str) -> Result<()> {
        // On the embedded cluster the head node runs as its user, who is its
        // administrator; `hpcd head` run by root needs root.
        if caller.administers_this_head() {
            return Ok(());
        }
        Self::require_admin(caller, what)
    }
}

/// `CCP_MPI_NETMASK` as every rank would read it once mpiexec passes it on
/// as `MPICH_NETMASK`: a value they would refuse, or one mpiexec would drop
/// for its length (as MS-MPI does), is refused here, before any job runs.
fn check_mpi_netmask(value: &str) -> Result<()> {
    use crate::mpi::comm::select::Netmask;
    use crate::mpi::mpiexec::prepare::MAX_NETMASK_LEN;
    Netmask::parse_var(crate::env::CCP_MPI_NETMASK, value).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    if value.len() > MAX_NETMASK_LEN {
        let name = crate::env::CCP_MPI_NETMASK;
        return Err(Error::InvalidArgument(format!(
            "{name}={value}: longer than {MAX_NETMASK_LEN} characters, which mpiexec ignores (as MS-MPI does); \
             remove the spaces"
        )));
    }
    Ok(())
}
