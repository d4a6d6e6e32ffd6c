//! HPC Pack's REST API as a [`Backend`]: `/hpc/...` with `{Name, Value}`
//! properties, plus this project's extensions where the head node has them.
//! Against a real HPC Pack head node an extension answers 404 and the client
//! falls back to the plain API (for example the 4 KB `Output` property
//! instead of the full output).

use super::{Backend, JobQuery};
use crate::error::{Error, Kind, Result};
use crate::wire::{ErrorBody, JobSpec, RestObject, RestProperty, WireCore, WireNode, WireNodeGroup, WireStatus, WireTemplate};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct RestBackend {
    client: Client,
    /// `http://localhost` for a Unix socket.
    base: String,
    socket: Option<PathBuf>,
    /// For the embedded head node: starts it again when a request finds
    /// it gone (connection refused: nothing was sent, so the request is
    /// sent again once it runs).
    restart: Option<Box<dyn Fn() -> Result<()>>>,
    /// How long a request is sent again while the head node is busy.
    busy_retry: Duration,
}

/// How long a request is sent again while the head node answers that it
/// is busy (too many connections of this user): it did nothing with it.
const BUSY_RETRY: Duration = Duration::from_secs(10);

/// The TLS setup of a client that speaks plain HTTP only (a Unix socket, or
/// `http://`): a preconfigured rustls config with no roots keeps reqwest
/// from loading the system's CA certificates, which costs more than the
/// whole request.
pub(crate) fn plain_http_tls() -> Result<rustls::ClientConfig> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Unreachable(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

impl RestBackend {
    /// A head node listening on the Unix socket `path`.
    pub fn unix(path: &Path) -> Result<RestBackend> {
        Self::unix_with(path, Duration::from_secs(120), BUSY_RETRY)
    }

    /// A head node on `path` asked without waiting for it: each request
    /// gives up after `timeout`, and a busy answer is final. Shell
    /// completion asks this way, while the user waits at the prompt.
    pub fn unix_bounded(path: &Path, timeout: Duration) -> Result<RestBackend> {
        Self::unix_with(path, timeout, Duration::ZERO)
    }

    fn unix_with(path: &Path, timeout: Duration, busy_retry: Duration) -> Result<RestBackend> {
        // Plain HTTP over the socket needs no TLS. A preconfigured rustls
        // config with no roots keeps reqwest from loading the system's CA
        // certificates, which costs more than the whole request.
        let client = Client::builder()
            .tls_backend_preconfigured(plain_http_tls()?)
            .no_proxy()
            .unix_socket(path.to_path_buf())
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Unreachable(format!("cannot set up the HTTP client: {e}")))?;
        Ok(RestBackend { client, base: "http://localhost".into(), socket: Some(path.to_path_buf()), restart: None, busy_retry })
    }

    /// Starts the head node with `restart` when it is found gone.
    pub fn restarting_with(mut self, restart: impl Fn() -> Result<()> + 'static) -> RestBackend {
        self.restart = Some(Box::new(restart));
        self
    }

    fn where_(&self) -> String {
        match &self.socket {
            Some(p) => format!("the head node at {}", p.display()),
            None => format!("the head node at {}", self.base),
        }
    }

    fn hpc(&self, path: &str) -> String {
        format!("{}{}{}", self.base, crate::wire::HPC, path)
    }

    fn ext(&self, path: &str) -> String {
        format!("{}{}{}", self.base, crate::wire::EXT, path)
    }

    /// Sends a request and turns an error answer into an [`Error`]. Sent
    /// again, when the head node surely did nothing with it: the embedded
    /// head node was gone (connection refused, so it is started again
    /// first), or the head node was busy. Reads (GET) are also sent again
    /// when the embedded head node died after they were sent.
    fn send(&self, req: RequestBuilder) -> Result<Response> {
        let read = req.try_clone().and_then(|r| r.build().ok()).is_some_and(|r| r.method() == reqwest::Method::GET);
        self.send_with(req, read)
    }

    /// [`Self::send`]; `resend` says the request may be sent again when
    /// the embedded head node died after it was sent (a read, or a
    /// submission carrying its request id).
    fn send_with(&self, req: RequestBuilder, resend: bool) -> Result<Response> {
        let started = std::time::Instant::now();
        // A head node killed again while it restarts (a kill loop) is
        // started again, a few times.
        let mut restarts = 0;
        let mut pause = Duration::from_millis(20);
        loop {
            // Bodies here are bytes in memory, so the request can be copied.
            let attempt = req.try_clone().ok_or_else(|| Error::Unreachable("a request could not be copied".into()))?;
            let resp = match attempt.send() {
                Ok(r) => r,
                Err(e) if (e.is_connect() || (resend && !e.is_timeout())) && restarts < 3 && self.restart.is_some() => {
                    restarts += 1;
                    if let Some(restart) = &self.restart {
                        restart()?;
                    }
                    continue;
                }
                Err(e) => {
                    return Err(Error::Unreachable(format!("cannot reach {}: {}", self.where_(), error_chain(&e))));
                }
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let text = resp.text().unwrap_or_default();
            let (kind, message) = match serde_json::from_str::<ErrorBody>(&text) {
                Ok(b) => (Kind::from_code(&b.code), b.message),
                Err(_) => (Kind::from_status(status.as_u16()), format!("{} answered {status}: {}", self.where_(), text.trim())),
            };
            if kind == Kind::Busy && started.elapsed() + pause < self.busy_retry {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
            return Err(Error::Remote { kind, message });
        }
    }

    fn get<T: DeserializeOwned>(&self, url: String) -> Result<T> {
        self.json(self.send(self.client.get(url))?)
    }

    fn json<T: DeserializeOwned>(&self, resp: Response) -> Result<T> {
        let text = resp.text().map_err(|e| Error::Unreachable(format!("reading the answer of {}: {e}", self.where_())))?;
        serde_json::from_str(&text).map_err(|e| Error::Remote {
            kind: Kind::Internal,
            message: format!("{} sent an answer this client cannot read ({e})", self.where_()),
        })
    }

    fn post<B: serde::Serialize + ?Sized>(&self, url: String, body: &B) -> Result<Response> {
        self.send(self.client.post(url).json(body))
    }

    /// The object an answer carries, or `sent` when it carries none (201 or
    /// 204 from a head node that does not echo it).
    fn json_or<T: DeserializeOwned + Clone>(&self, resp: Response, sent: &T) -> Result<T> {
        if resp.content_length() == Some(0) {
            return Ok(sent.clone());
        }
        self.json(resp)
    }

    /// An extension call; `Ok(None)` when the head node does not have it.
    fn ext_get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        match self.send(self.client.get(self.ext(path))) {
            Ok(r) => self.json(r).map(Some),
            Err(Error::Remote { kind: Kind::NotFound, message }) if message.contains("no such resource") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s += &format!(": {t}");
        }
        cur = c.source();
    }
    s
}

/// A head node that keeps its templates to itself (a real HPC Pack head
/// node manages them in PowerShell).
fn no_templates(b: &RestBackend) -> Error {
    Error::Remote {
        kind: Kind::NotFound,
        message: format!(
            "{} does not serve job templates over REST (an extension of this project's head node); use HPC Pack's Export-HpcJobTemplate",
            b.where_()
        ),
    }
}

/// A name as one segment of a URL path.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn props_param(p: &[&str]) -> String {
    if p.is_empty() { String::new() } else { format!("?properties={}", p.join(",")) }
}

impl Backend for RestBackend {
    fn submit(&self, spec: &JobSpec) -> Result<u64> {
        // With an id of its own, the submission can be sent again if the
        // head node dies before answering: the head node keeps one job per id.
        let mut spec = spec.clone();
        if spec.request_id.is_none() {
            spec.request_id = crate::node::sys::random_hex(16).ok();
        }
        let resend = spec.request_id.is_some();
        match self.send_with(self.client.post(self.ext("/jobs")).json(&spec), resend) {
            Ok(r) => self.json(r),
            // A head node without the extension: HPC Pack's three calls.
            Err(Error::Remote { kind: Kind::NotFound, message }) if message.contains("no such resource") => {
                let id = self.create_job(&spec.properties, &spec.env)?;
                for t in &spec.tasks {
                    self.add_task(id, &t.properties, &t.env)?;
                }
                if !spec.create_only {
                    self.submit_job(id)?;
                }
                Ok(id)
            }
            Err(e) => Err(e),
        }
    }

    fn create(&self, spec: &JobSpec) -> Result<u64> {
        self.submit(&JobSpec { create_only: true, ..spec.clone() })
    }

    fn create_job(&self, props: &[RestProperty], env: &[RestProperty]) -> Result<u64> {
        let id: u64 = self.json(self.post(self.hpc("/jobs"), props)?)?;
        if !env.is_empty() {
            self.post(self.hpc(&format!("/jobs/{id}/envVariables")), env)?;
        }
        Ok(id)
    }

    fn create_job_from_xml(&self, xml: &str) -> Result<u64> {
        self.json(self.post(self.hpc("/jobs/jobFile"), &xml)?)
    }

    fn add_task(&self, job: u64, props: &[RestProperty], env: &[RestProperty]) -> Result<u32> {
        let id: u32 = self.json(self.post(self.hpc(&format!("/jobs/{job}/tasks")), props)?)?;
        if !env.is_empty() {
            self.post(self.hpc(&format!("/jobs/{job}/tasks/{id}/envVariables")), env)?;
        }
        Ok(id)
    }

    fn submit_job(&self, job: u64) -> Result<()> {
        self.post(self.hpc(&format!("/jobs/{job}/submit")), &Vec::<RestProperty>::new()).map(|_| ())
    }

    fn job(&self, id: u64, properties: &[&str]) -> Result<Vec<RestProperty>> {
        self.get(self.hpc(&format!("/jobs/{id}{}", props_param(properties))))
    }

    fn jobs(&self, q: &JobQuery) -> Result<Vec<Vec<RestProperty>>> {
        let mut req = self.client.get(self.hpc("/jobs"));
        let mut params: Vec<(&str, String)> = Vec::new();
        if !q.properties.is_empty() {
            params.push(("properties", q.properties.join(",")));
        }
        if !q.states.is_empty() {
            params.push(("$filter", format!("JobState eq {}", q.states.join(","))));
        }
        if let Some(o) = &q.owner {
            params.push(("owner", o.clone()));
        }
        req = req.query(&params);
        let rows: Vec<RestObject> = self.json(self.send(req)?)?;
        Ok(rows.into_iter().map(|r| r.properties).collect())
    }

    fn modify_job(&self, id: u64, props: &[RestProperty], env: &[RestProperty]) -> Result<()> {
        if !props.is_empty() {
            self.send(self.client.put(self.hpc(&format!("/jobs/{id}"))).json(props))?;
        }
        if !env.is_empty() {
            self.post(self.hpc(&format!("/jobs/{id}/envVariables")), env)?;
        }
        Ok(())
    }

    fn cancel_job(&self, id: u64, message: &str) -> Result<()> {
        self.post(self.hpc(&format!("/jobs/{id}/cancel")), message).map(|_| ())
    }

    fn finish_job(&self, id: u64, message: &str) -> Result<()> {
        self.post(self.hpc(&format!("/jobs/{id}/finish")), message).map(|_| ())
    }

    fn requeue_job(&self, id: u64) -> Result<()> {
        self.post(self.hpc(&format!("/jobs/{id}/requeue")), &()).map(|_| ())
    }

    fn wait_job(&self, id: u64, timeout_secs: f64, properties: &[&str]) -> Result<Vec<RestProperty>> {
        let mut path = format!("/jobs/{id}/wait?timeout={timeout_secs}");
        if !properties.is_empty() {
            path += &format!("&properties={}", properties.join(","));
        }
        match self.ext_get(&path)? {
            Some(p) => Ok(p),
            None => {
                // Polling, as scripts do against HPC Pack.
                let deadline = std::time::Instant::now() + Duration::from_secs_f64(timeout_secs);
                loop {
                    let p = self.job(id, properties)?;
                    let done = crate::wire::prop(&p, "State")
                        .and_then(crate::model::JobState::parse)
                        .is_some_and(|s| s.is_final());
                    if done || std::time::Instant::now() >= deadline {
                        return Ok(p);
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }

    fn tasks(&self, job: u64, properties: &[&str]) -> Result<Vec<Vec<RestProperty>>> {
        let rows: Vec<RestObject> = self.get(self.hpc(&format!("/jobs/{job}/tasks{}", props_param(properties))))?;
        Ok(rows.into_iter().map(|r| r.properties).collect())
    }

    fn task(&self, job: u64, task: u32, properties: &[&str]) -> Result<Vec<RestProperty>> {
        self.get(self.hpc(&format!("/jobs/{job}/tasks/{task}{}", props_param(properties))))
    }

    fn task_output(&self, job: u64, task: u32, offset: u64) -> Result<Option<Box<dyn std::io::Read>>> {
        let from = if offset > 0 { format!("?offset={offset}") } else { String::new() };
        match self.send(self.client.get(self.ext(&format!("/jobs/{job}/tasks/{task}/output{from}")))) {
            Ok(r) => Ok(Some(Box::new(r))),
            Err(Error::Remote { kind: Kind::NotFound, message }) if message.contains("no such resource") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn cancel_task(&self, job: u64, task: u32, message: &str) -> Result<()> {
        self.post(self.hpc(&format!("/jobs/{job}/tasks/{task}/cancel")), message).map(|_| ())
    }

    fn finish_task(&self, job: u64, task: u32, message: &str) -> Result<()> {
        self.post(self.hpc(&format!("/jobs/{job}/tasks/{task}/finish")), message).map(|_| ())
    }

    fn requeue_task(&self, job: u64, task: u32) -> Result<()> {
        self.post(self.hpc(&format!("/jobs/{job}/tasks/{task}/requeue")), &()).map(|_| ())
    }

    fn nodes(&self, group: Option<&str>) -> Result<Vec<WireNode>> {
        let mut req = self.client.get(self.hpc("/cluster/nodes"));
        if let Some(g) = group {
            req = req.query(&[("group", g)]);
        }
        self.json(self.send(req)?)
    }

    fn node(&self, name: &str) -> Result<WireNode> {
        self.get(self.hpc(&format!("/cluster/nodes/{name}")))
    }

    fn node_operation(&self, name: &str, operation: &str, force: bool) -> Result<()> {
        let mut url = self.hpc(&format!("/cluster/nodes/{name}/operations/{operation}"));
        if force {
            url += "?force=true";
        }
        self.post(url, &()).map(|_| ())
    }

    fn node_groups(&self) -> Result<Vec<WireNodeGroup>> {
        self.get(self.hpc("/cluster/nodeGroups"))
    }

    fn group_nodes(&self, group: &str) -> Result<Vec<String>> {
        self.get(self.hpc(&format!("/cluster/nodeGroups/{}/nodes", path_segment(group))))
    }

    fn create_group(&self, group: &WireNodeGroup) -> Result<WireNodeGroup> {
        let r = self.post(self.hpc("/cluster/nodeGroups"), group)?;
        self.json_or(r, group)
    }

    fn update_group(&self, group: &WireNodeGroup) -> Result<WireNodeGroup> {
        let url = self.hpc(&format!("/cluster/nodeGroups/{}", path_segment(&group.name)));
        let r = self.send(self.client.put(url).json(group))?;
        self.json_or(r, group)
    }

    fn delete_group(&self, group: &str) -> Result<()> {
        self.send(self.client.delete(self.hpc(&format!("/cluster/nodeGroups/{}", path_segment(group))))).map(|_| ())
    }

    fn move_group_nodes(&self, group: &str, add: bool, nodes: &[String]) -> Result<Vec<String>> {
        let op = crate::wire::NodeGroupOperation {
            group_name: group.to_string(),
            operation: if add { "add" } else { "remove" }.into(),
            node_names: nodes.to_vec(),
        };
        let url = self.hpc(&format!("/cluster/nodeGroups/{}/nodes", path_segment(group)));
        let r = self.send(self.client.patch(url).json(&op))?;
        match r.content_length() {
            // A head node that answers 204 without the list.
            Some(0) => self.group_nodes(group),
            _ => self.json(r),
        }
    }

    fn templates(&self) -> Result<Vec<String>> {
        self.get(self.hpc("/jobs/templates"))
    }

    fn template(&self, name: &str) -> Result<WireTemplate> {
        self.ext_get(&format!("/jobs/templates/{}", path_segment(name)))?.ok_or_else(|| no_templates(self))
    }

    fn put_template(&self, name: &str, xml: &str, replace: bool) -> Result<WireTemplate> {
        let url = self.ext(&format!("/jobs/templates/{}{}", path_segment(name), if replace { "?replace=true" } else { "" }));
        let r = self.send(self.client.put(url).header("content-type", "application/xml").body(xml.to_string()))?;
        self.json(r)
    }

    fn delete_template(&self, name: &str) -> Result<()> {
        self.send(self.client.delete(self.ext(&format!("/jobs/templates/{}", path_segment(name))))).map(|_| ())
    }

    fn template_submitters(&self, name: &str, grant: bool, who: &[String]) -> Result<WireTemplate> {
        let body = crate::wire::SubmittersChange { grant, who: who.to_vec() };
        let r = self.post(self.ext(&format!("/jobs/templates/{}/submitters", path_segment(name))), &body)?;
        self.json(r)
    }

    fn cores(&self) -> Result<Vec<WireCore>> {
        self.ext_get("/cluster/cores")?.ok_or_else(|| Error::Remote {
            kind: Kind::NotFound,
            message: format!("{} does not list cores (an extension of this project's head node)", self.where_()),
        })
    }

    fn cluster_env(&self) -> Result<Vec<RestProperty>> {
        self.ext_get("/cluster/env")?.ok_or_else(|| Error::Remote {
            kind: Kind::NotFound,
            message: format!("{} does not serve cluster environment variables over REST", self.where_()),
        })
    }

    fn set_cluster_env(&self, vars: &[RestProperty]) -> Result<()> {
        self.send(self.client.put(self.ext("/cluster/env")).json(vars)).map(|_| ())
    }

    fn cluster_version(&self) -> Result<String> {
        self.get(self.hpc("/cluster/version"))
    }

    fn active_head_node(&self) -> Result<String> {
        self.get(self.hpc("/cluster/activeHeadNode"))
    }

    fn status(&self) -> Result<WireStatus> {
        self.ext_get("/status")?.ok_or_else(|| Error::Remote { kind: Kind::NotFound, message: "not our head node".into() })
    }

    fn shutdown(&self) -> Result<()> {
        self.post(self.ext("/shutdown"), &()).map(|_| ())
    }
}
