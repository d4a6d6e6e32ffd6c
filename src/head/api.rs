//! The head node's HTTP routes: HPC Pack's REST API under `/hpc` and this
//! project's extensions under `/hpcpack/v1` (see [`crate::wire`]).
//!
//! Handlers take the caller from the connection (peer credentials on the Unix
//! socket), lock the cluster for the short time a check-and-commit takes, and
//! hand the resulting effects (launches, kills) to the [`Head`]. Every error
//! is an [`ApiError`] response with the same JSON body.

use super::Head;
use super::server::Limits;
use super::cluster::{Caller, Cluster};
use crate::error::{Error, Kind};
use crate::model::{Job, JobState, NodeGroup, TaskState, now_millis};
use crate::node::protocol::RunId;
use crate::wire::props::{read_job, read_task};
use crate::wire::{
    ErrorBody, JobSpec, NodeGroupOperation, TaskSpec, RestObject, RestProperty, WireNode, WireNodeGroup, WireStatus, WireTemplate, format_time,
};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

type Q = Query<HashMap<String, String>>;
type ApiResult<T> = Result<T, ApiError>;

/// An error as an HTTP response: a status and the body [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error of the HTTP layer itself (a body too large or too slow),
    /// with the `Code` its status means.
    pub fn status(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, code: Kind::from_status(status.as_u16()).code(), message: message.into() }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        let message = match kind {
            // Internal details (paths, SQL) stay in the head node's log.
            Kind::Internal => {
                crate::head::log(&format!("internal error: {e}"));
                "the head node failed to complete the request; see its log".to_string()
            }
            _ => e.to_string(),
        };
        let status = StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError { status, code: kind.code(), message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { code: self.code.into(), message: self.message })).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::from(Error::InvalidArgument(msg.into()))
}

/// Gives every error response the JSON body, also those the HTTP layers
/// write themselves (an unknown method, a malformed query string): a
/// client parses one shape whatever went wrong.
async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    // These bodies are a line of text; more than this is not worth reading.
    let text = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this resource does not take that HTTP method".to_string(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "send the body as JSON (Content-Type: application/json)".to_string(),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("the request failed").to_string(),
        _ => text,
    };
    ApiError::status(status, message).into_response()
}

/// The `{id}` of a route: a job id.
pub struct JobId(pub u64);

/// The `{id}` and `{t}` of a route: a task of a job.
pub struct TaskPath(pub u64, pub u32);

async fn path_params(parts: &mut axum::http::request::Parts) -> ApiResult<HashMap<String, String>> {
    Path::<HashMap<String, String>>::from_request_parts(parts, &())
        .await
        .map(|Path(p)| p)
        .map_err(|e| bad(e.body_text()))
}

fn parse_job_id(s: &str) -> ApiResult<u64> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad(format!("'{s}' is not a job id; a job id is a whole number from 1 to {}", u64::MAX))),
    }
}

fn parse_task_id(s: &str) -> ApiResult<u32> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad(format!("'{s}' is not a task id; a task id is a whole number from 1 to {}", u32::MAX))),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for JobId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> ApiResult<Self> {
        let p = path_params(parts).await?;
        Ok(JobId(parse_job_id(p.get("id").map(String::as_str).unwrap_or(""))?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TaskPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> ApiResult<Self> {
        let p = path_params(parts).await?;
        let job = parse_job_id(p.get("id").map(String::as_str).unwrap_or(""))?;
        Ok(TaskPath(job, parse_task_id(p.get("t").map(String::as_str).unwrap_or(""))?))
    }
}

/// A query parameter, its name compared without case.
fn q<'a>(query: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn names(query: &HashMap<String, String>) -> Vec<String> {
    q(query, "properties").map(crate::model::values::parse_name_list).unwrap_or_default()
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    q(query, name).is_some_and(|v| crate::model::values::parse_bool(v).unwrap_or(false))
}

/// Parses a body that HPC Pack sends as JSON; an empty body is the default.
fn body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| bad(format!("the request body is not the expected JSON: {e}")))
}

/// Parses a body that must be there; `what` says what was expected.
fn required_body<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> ApiResult<T> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(bad(format!("the request has no body; send {what}")));
    }
    serde_json::from_slice(bytes).map_err(|e| bad(format!("the request body is not {what}: {e}")))
}

/// A message body: a JSON string, or plain text.
fn message(bytes: &[u8]) -> String {
    serde_json::from_slice::<String>(bytes).unwrap_or_else(|_| String::from_utf8_lossy(bytes).trim().to_string())
}

/// The router; [`super::server::serve`] wraps it with a listener. Every
/// request's body is read whole first, within `limits`.
pub fn app(head: Arc<Head>, limits: Limits) -> Router {
    let hpc = Router::new()
        .route("/cluster/version", get(|| async { Json(crate::VERSION) }))
        .route("/cluster/activeHeadNode", get(active_head_node))
        .route("/cluster/info/dateTimeFormat", get(|| async { Json(crate::wire::DATE_TIME_FORMAT) }))
        .route("/cluster/userRoles", get(user_roles))
        .route("/cluster/nodes", get(list_nodes))
        .route("/cluster/nodes/{name}", get(get_node))
        .route("/cluster/nodes/{name}/operations/{op}", post(node_operation))
        .route("/cluster/nodeGroups", get(list_groups).post(create_group))
        .route("/cluster/nodeGroups/{name}", get(get_group).put(update_group).delete(delete_group))
        .route("/cluster/nodeGroups/{name}/nodes", get(group_nodes).patch(patch_group_nodes))
        .route("/jobs", get(list_jobs).post(create_job))
        .route("/jobs/templates", get(list_templates))
        .route("/jobs/jobFile", post(create_job_from_xml))
        .route("/jobs/{id}", get(get_job).put(put_job))
        .route("/jobs/{id}/envVariables", get(get_job_env).post(post_job_env))
        .route("/jobs/{id}/customProperties", get(get_custom).post(post_custom))
        .route("/jobs/{id}/submit", post(submit_job))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route("/jobs/{id}/finish", post(finish_job))
        .route("/jobs/{id}/requeue", post(requeue_job))
        .route("/jobs/{id}/tasks", get(list_tasks).post(add_task))
        .route("/jobs/{id}/tasks/{t}", get(get_task).put(put_task))
        .route("/jobs/{id}/tasks/{t}/envVariables", get(get_task_env).post(post_task_env))
        .route("/jobs/{id}/tasks/{t}/cancel", post(cancel_task))
        .route("/jobs/{id}/tasks/{t}/finish", post(finish_task))
        .route("/jobs/{id}/tasks/{t}/requeue", post(requeue_task));
    let ext = Router::new()
        .route("/jobs", post(submit_new))
        .route("/jobs/{id}/wait", get(wait_job))
        .route("/jobs/{id}/tasks/{t}/output", get(task_output))
        .route("/cluster/env", get(get_cluster_env).put(put_cluster_env))
        .route("/cluster/cores", get(list_cores))
        .route("/jobs/templates/{name}", get(get_template).put(put_template).delete(delete_template))
        .route("/jobs/templates/{name}/submitters", post(template_submitters))
        .route("/status", get(status))
        .route("/shutdown", post(shutdown));
    Router::new()
        .nest(crate::wire::HPC, hpc)
        .nest(crate::wire::EXT, ext)
        .fallback(|| async {
            ApiError::from(Error::Remote { kind: Kind::NotFound, message: "no such resource on this head node".into() })
        })
        .with_state(head)
        .layer(axum::middleware::from_fn_with_state(limits, super::server::read_body))
        .layer(axum::middleware::from_fn(json_errors))
}

// ----- cluster -----

async fn active_head_node(State(h): State<Arc<Head>>) -> Json<String> {
    Json(h.cluster_name.clone())
}

async fn user_roles(Extension(c): Extension<Caller>) -> Json<Vec<&'static str>> {
    let admin = c.administers_this_head();
    Json(if admin { vec!["User", "Administrator", "JobAdministrator"] } else { vec!["User"] })
}

fn wire_node(n: &crate::model::Node, in_use: u32) -> WireNode {
    WireNode {
        name: n.name.clone(),
        state: n.state.to_string(),
        health: n.health.to_string(),
        template: "Default ComputeNode Template".into(),
        location: n.host.clone(),
        memory_size: n.memory_mb,
        cores: n.cores,
        sockets: n.sockets,
        hpc_pack_version: crate::VERSION.into(),
        on_azure: false,
        groups: n.groups.clone(),
        roles: vec!["ComputeNode".into()],
        cores_in_use: in_use,
        reachable: Some(n.reachable),
        online_time: format_time(n.online_time),
        offline_time: format_time(n.offline_time),
    }
}

async fn list_nodes(State(h): State<Arc<Head>>, Query(query): Q) -> ApiResult<Json<Vec<WireNode>>> {
    let c = h.lock();
    let want: Vec<String> = q(&query, "names").map(crate::model::values::parse_name_list).unwrap_or_default();
    let group = q(&query, "group");
    let state = q(&query, "state");
    if let Some(g) = group {
        c.group_members(g)?;
    }
    Ok(Json(
        c.nodes()
            .iter()
            .filter(|n| want.is_empty() || want.iter().any(|w| w.eq_ignore_ascii_case(&n.name)))
            .filter(|n| group.is_none_or(|g| n.in_group(g)))
            .filter(|n| state.is_none_or(|s| n.state.as_str().eq_ignore_ascii_case(s)))
            .map(|n| wire_node(n, c.cores_in_use(&n.name)))
            .collect(),
    ))
}

async fn get_node(State(h): State<Arc<Head>>, Path(name): Path<String>) -> ApiResult<Json<WireNode>> {
    let c = h.lock();
    let n = c.node(&name)?;
    Ok(Json(wire_node(n, c.cores_in_use(&n.name))))
}

async fn node_operation(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    Path((name, op)): Path<(String, String)>,
    Query(query): Q,
) -> ApiResult<StatusCode> {
    let now = now_millis();
    let eff = match op.to_ascii_lowercase().as_str() {
        "bringonline" => h.lock().node_online(&caller, &name, now)?,
        "takeoffline" => h.lock().node_offline(&caller, &name, flag(&query, "force"), now)?,
        "start" | "stop" | "reboot" | "shutdown" => {
            return Err(bad(format!("operation '{op}' needs node management this head node does not have; use bringOnline or takeOffline")));
        }
        _ => return Err(bad(format!("unknown node operation '{op}'; use bringOnline or takeOffline"))),
    };
    h.apply(eff);
    Ok(StatusCode::ACCEPTED)
}

fn wire_group(g: NodeGroup) -> WireNodeGroup {
    WireNodeGroup { managed: g.managed(), name: g.name, description: g.description }
}

async fn list_groups(State(h): State<Arc<Head>>) -> Json<Vec<WireNodeGroup>> {
    Json(h.lock().groups().into_iter().map(wire_group).collect())
}

async fn get_group(State(h): State<Arc<Head>>, Path(name): Path<String>) -> ApiResult<Json<WireNodeGroup>> {
    let c = h.lock();
    let g = c
        .groups()
        .into_iter()
        .find(|g| g.name.eq_ignore_ascii_case(&name))
        .ok_or(Error::GroupNotFound(name))?;
    Ok(Json(wire_group(g)))
}

/// `POST /cluster/nodeGroups`: 200 with the group made.
async fn create_group(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<WireNodeGroup>> {
    let g: WireNodeGroup = required_body(&bytes, "a node group ({\"Name\": …, \"Description\": …})")?;
    let g = NodeGroup { name: g.name, description: g.description };
    h.lock().create_group(&caller, g.clone())?;
    h.changed();
    Ok(Json(wire_group(g)))
}

/// `PUT /cluster/nodeGroups/{name}`: 200 with the group as it is now.
async fn update_group(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<WireNodeGroup>> {
    let g: WireNodeGroup = required_body(&bytes, "a node group ({\"Name\": …, \"Description\": …})")?;
    if !g.name.is_empty() && !g.name.eq_ignore_ascii_case(&name) {
        return Err(bad(format!("a node group keeps its name: the body names {}, the path {name}", g.name)));
    }
    let g = h.lock().update_group(&caller, &name, g.description)?;
    h.changed();
    Ok(Json(wire_group(g)))
}

async fn delete_group(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    h.lock().delete_group(&caller, &name)?;
    h.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn group_nodes(State(h): State<Arc<Head>>, Path(name): Path<String>) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(h.lock().group_members(&name)?))
}

/// `PATCH /cluster/nodeGroups/{name}/nodes`: 200 with the members after the change.
async fn patch_group_nodes(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Vec<String>>> {
    let op: NodeGroupOperation = required_body(&bytes, "a node group operation ({\"Operation\": \"add\", \"NodeNames\": […]})")?;
    let add = match op.operation.to_ascii_lowercase().as_str() {
        "add" => true,
        "remove" => false,
        other => return Err(bad(format!("unknown node group operation '{other}'; use add or remove"))),
    };
    let (eff, members) = {
        let mut c = h.lock();
        let eff = c.change_group_members(&caller, &name, add, &op.node_names)?;
        (eff, c.group_members(&name)?)
    };
    h.apply(eff);
    Ok(Json(members))
}

// ----- job templates -----

async fn list_templates(State(h): State<Arc<Head>>) -> Json<Vec<String>> {
    Json(h.lock().templates().into_iter().map(|t| t.name).collect())
}

async fn get_template(State(h): State<Arc<Head>>, Path(name): Path<String>) -> ApiResult<Json<WireTemplate>> {
    Ok(Json(WireTemplate::of(&h.lock().template(&name)?)))
}

/// The extension `PUT /jobs/templates/{name}[?replace=true]`: the body is
/// HPC Pack's job template XML; the path's name replaces the file's.
async fn put_template(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Q,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<WireTemplate>> {
    // Only an administrator's file is read at all.
    crate::head::cluster::Cluster::require_admin_or_local(&caller, &format!("change job template {name}"))?;
    let xml = std::str::from_utf8(&bytes).map_err(|_| bad("the job template is not UTF-8 text"))?;
    let t = crate::model::JobTemplate::from_xml(xml, Some(&name)).map_err(bad)?;
    let t = h.lock().put_template(&caller, t, flag(&query, "replace"))?;
    h.changed();
    Ok(Json(WireTemplate::of(&t)))
}

async fn delete_template(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    h.lock().delete_template(&caller, &name)?;
    h.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn template_submitters(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<WireTemplate>> {
    let c: crate::wire::SubmittersChange = required_body(&bytes, "{\"Grant\": true, \"Who\": [\"alice\", \"%hpc\"]}")?;
    let t = h.lock().set_template_submitters(&caller, &name, c.grant, &c.who)?;
    h.changed();
    Ok(Json(WireTemplate::of(&t)))
}

// ----- jobs -----

/// `$filter=JobState eq Running and ...`: the conditions this head node
/// understands (`JobState`, `Owner`, `Name`), each `<name> eq <value>`.
fn parse_filter(f: &str) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for cond in f.split(" and ").map(str::trim).filter(|c| !c.is_empty()) {
        let parts: Vec<&str> = cond.splitn(3, ' ').collect();
        match parts.as_slice() {
            [name, op, value] if op.eq_ignore_ascii_case("eq") => {
                out.push((name.to_ascii_lowercase(), value.trim_matches('\'').to_string()))
            }
            _ => return Err(bad(format!("cannot read the filter condition '{cond}'; use <property> eq <value>"))),
        }
    }
    Ok(out)
}

async fn list_jobs(State(h): State<Arc<Head>>, Query(query): Q) -> ApiResult<Response> {
    let mut props = names(&query);
    if props.is_empty() {
        props = ["Id", "Owner", "Name", "State", "Priority"].map(String::from).to_vec();
    }
    let filter = q(&query, "$filter").map(parse_filter).transpose()?.unwrap_or_default();
    let owner = q(&query, "owner");
    let c = h.lock();
    let mut rows = Vec::new();
    let mut reasons = None;
    for j in c.jobs() {
        if owner.is_some_and(|o| !o.eq_ignore_ascii_case(&j.owner)) {
            continue;
        }
        let keep = filter.iter().all(|(k, v)| match k.as_str() {
            "jobstate" => v.split(',').any(|s| s.trim().eq_ignore_ascii_case(j.state.as_str())),
            "owner" => v.eq_ignore_ascii_case(&j.owner),
            "name" => v == &j.name,
            _ => true,
        });
        if keep {
            rows.push(RestObject { properties: job_properties(&c, j, &props, &mut reasons)? });
        }
    }
    drop(c);
    if q(&query, "asc").is_some_and(|a| a.eq_ignore_ascii_case("false")) {
        rows.reverse();
    }
    let total = rows.len();
    let start: usize = q(&query, "startRow").and_then(|v| v.parse().ok()).unwrap_or(0);
    let count: usize = q(&query, "rowsPerRead").and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
    let page: Vec<RestObject> = rows.into_iter().skip(start).take(count).collect();
    let mut headers = HeaderMap::new();
    headers.insert("x-ms-row-count", HeaderValue::from(total));
    Ok((headers, Json(page)).into_response())
}

async fn create_job(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<u64>> {
    let props: Vec<RestProperty> = body(&bytes)?;
    let id = h.lock().create_job(&caller, &props, now_millis())?;
    h.changed();
    Ok(Json(id))
}

async fn create_job_from_xml(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<u64>> {
    // HPC Pack takes the XML as a JSON string; plain XML is accepted too.
    let xml = serde_json::from_slice::<String>(&bytes).unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
    let spec = crate::wire::jobxml::parse(&xml).map_err(bad)?;
    let id = h.lock().create_from_spec(&caller, &spec, now_millis())?;
    h.changed();
    Ok(Json(id))
}

async fn submit_new(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<u64>> {
    let spec: JobSpec = body(&bytes)?;
    let (id, eff) = h.lock().submit_new(&caller, &spec, now_millis())?;
    h.apply(eff);
    Ok(Json(id))
}

/// A job's properties as read now: a Queued job's `PendingReason` is
/// worked out at this moment ([`Cluster::pending_reasons`]), once per
/// request however many jobs it reads.
fn job_properties(
    c: &Cluster,
    j: &Job,
    names: &[String],
    reasons: &mut Option<BTreeMap<u64, String>>,
) -> ApiResult<Vec<RestProperty>> {
    let wanted = names.is_empty() || names.iter().any(|n| n.eq_ignore_ascii_case("PendingReason"));
    if j.state != JobState::Queued || !wanted {
        return read_job(j, &c.counts(j.id), names).map_err(bad);
    }
    let reasons = reasons.get_or_insert_with(|| c.pending_reasons(now_millis()));
    let mut j = j.clone();
    j.pending_reason = reasons.get(&j.id).cloned().unwrap_or_default();
    read_job(&j, &c.counts(j.id), names).map_err(bad)
}

async fn get_job(State(h): State<Arc<Head>>, JobId(id): JobId, Query(query): Q) -> ApiResult<Json<Vec<RestProperty>>> {
    let c = h.lock();
    let j = c.job(id)?;
    Ok(Json(job_properties(&c, j, &names(&query), &mut None)?))
}

async fn put_job(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    JobId(id): JobId,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let props: Vec<RestProperty> = body(&bytes)?;
    let eff = h.lock().modify_job(&caller, id, &props, now_millis())?;
    h.apply(eff);
    Ok(StatusCode::NO_CONTENT)
}

fn pick_env(env: &[(String, String)], query: &HashMap<String, String>) -> Vec<RestProperty> {
    let want = q(query, "names").map(crate::model::values::parse_name_list).unwrap_or_default();
    env.iter()
        .filter(|(k, _)| want.is_empty() || want.iter().any(|w| w == k))
        .map(|(k, v)| RestProperty::new(k, v))
        .collect()
}

/// What a job printed and its environment (which may carry its owner's
/// secrets: tokens, passwords) are for its owner and administrators only;
/// `what` names it for the refusal.
fn owner_only(caller: &Caller, job: &crate::model::Job, what: &str) -> ApiResult<()> {
    if caller.may_read_output_of(job.owner_uid) {
        return Ok(());
    }
    Err(ApiError::from(Error::AccessDenied(format!(
        "{what} readable only by its owner ({}) and administrators",
        job.owner
    ))))
}

async fn get_job_env(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    JobId(id): JobId,
    Query(query): Q,
) -> ApiResult<Json<Vec<RestProperty>>> {
    let c = h.lock();
    let job = c.job(id)?;
    owner_only(&caller, job, &format!("the environment variables of job {id} are"))?;
    Ok(Json(pick_env(&job.env, &query)))
}

async fn post_job_env(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    JobId(id): JobId,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let vars: Vec<RestProperty> = body(&bytes)?;
    h.lock().set_env(&caller, id, None, &vars, now_millis())?;
    h.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn get_custom(State(h): State<Arc<Head>>, JobId(id): JobId, Query(query): Q) -> ApiResult<Json<Vec<RestProperty>>> {
    Ok(Json(pick_env(&h.lock().job(id)?.custom_properties, &query)))
}

async fn post_custom(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    JobId(id): JobId,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let vars: Vec<RestProperty> = body(&bytes)?;
    h.lock().set_custom_properties(&caller, id, &vars, now_millis())?;
    h.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn submit_job(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    JobId(id): JobId,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    // Credentials (UserName/Password) are for Windows; the caller is known
    // from the socket, so they are dropped.
    let props: Vec<RestProperty> = body::<Vec<RestProperty>>(&bytes)?
        .into_iter()
        .filter(|p| !p.name.eq_ignore_ascii_case("UserName") && !p.name.eq_ignore_ascii_case("Password"))
        .collect();
    let eff = h.lock().submit_job(&caller, id, &props, now_millis())?;
    h.apply(eff);
    Ok(StatusCode::NO_CONTENT)
}

async fn cancel_job(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    JobId(id): JobId,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let eff = h.lock().cancel_job(&caller, id, &message(&bytes), now_millis())?;
    h.apply(eff);
    Ok(StatusCode::NO_CONTENT)
}

async fn finish_job(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    JobId(id): JobId,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let eff = h.lock().finish_job(&caller, id, &message(&bytes), now_millis())?;
    h.apply(eff);
    Ok(StatusCode::NO_CONTENT)
}

async fn requeue_job(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    JobId(id): JobId,
) -> ApiResult<StatusCode> {
    let eff = h.lock().requeue_job(&caller, id, now_millis())?;
    h.apply(eff);
    Ok(StatusCode::NO_CONTENT)
}

/// The longest a `wait` request is held: a client that waits longer asks
/// again (the CLIs ask every second or faster anyway).
const MAX_WAIT: f64 = 60.0;

/// The extension behind `job wait`: answers when the job is in a final
/// state, or after `timeout` seconds (default 30, at most [`MAX_WAIT`]),
/// with its properties.
async fn wait_job(State(h): State<Arc<Head>>, JobId(id): JobId, Query(query): Q) -> ApiResult<Json<Vec<RestProperty>>> {
    let timeout = match q(&query, "timeout") {
        None => 30.0,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(t) if t.is_finite() && t >= 0.0 => t.min(MAX_WAIT),
            _ => return Err(bad(format!("'{v}' is not a time to wait; give seconds, 0 or more (at most {MAX_WAIT} are waited per request)"))),
        },
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(timeout);
    let mut rx = h.subscribe();
    loop {
        {
            let c = h.lock();
            let j = c.job(id)?;
            if j.state.is_final() || tokio::time::Instant::now() >= deadline {
                return Ok(Json(job_properties(&c, j, &names(&query), &mut None)?));
            }
        }
        let _ = tokio::time::timeout_at(deadline, rx.changed()).await;
    }
}

// ----- tasks -----

async fn list_tasks(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    JobId(id): JobId,
    Query(query): Q,
) -> ApiResult<Json<Vec<RestObject>>> {
    let mut props = names(&query);
    if props.is_empty() {
        props = ["TaskId", "Name", "State", "CommandLine", "ExitCode", "ParentJobId", "JobTaskId", "InstanceId"]
            .map(String::from)
            .to_vec();
    }
    let filter = q(&query, "$filter").map(parse_filter).transpose()?.unwrap_or_default();
    let want_output = props.iter().any(|p| p.eq_ignore_ascii_case("Output"));
    let mut picked = Vec::new();
    {
        let c = h.lock();
        let job = c.job(id)?;
        for t in c.tasks_of(id)? {
            let keep = filter.iter().all(|(k, v)| match k.as_str() {
                "taskstate" | "taskstates" => v.split(',').any(|s| TaskState::parse(s) == Some(t.state)),
                "taskids" => v.split(',').any(|s| s.trim() == t.id.to_string()),
                _ => true,
            });
            if keep {
                let output = if want_output { h.output_file(&caller, job, t) } else { None };
                picked.push((t.clone(), output));
            }
        }
    }
    // Outputs are read after the lock is let go, off the async workers.
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<RestObject>, String> {
        picked
            .iter()
            .map(|(t, file)| {
                let output = file.as_deref().map(output_property);
                Ok(RestObject { properties: read_task(t, output.as_deref(), &props)? })
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::from(Error::io("reading task outputs", std::io::Error::other(e))))?
    .map_err(bad)?;
    Ok(Json(rows))
}

async fn add_task(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    JobId(id): JobId,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<u32>> {
    let props: Vec<RestProperty> = body(&bytes)?;
    let tid = h.lock().add_task(&caller, id, &TaskSpec { properties: props, env: vec![] }, now_millis())?;
    h.changed();
    Ok(Json(tid))
}

async fn get_task(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    TaskPath(id, t): TaskPath,
    Query(query): Q,
) -> ApiResult<Json<Vec<RestProperty>>> {
    let props = names(&query);
    let want_output = props.is_empty() || props.iter().any(|p| p.eq_ignore_ascii_case("Output"));
    let (task, file) = {
        let c = h.lock();
        let job = c.job(id)?;
        let task = c.task(id, t)?;
        (task.clone(), if want_output { h.output_file(&caller, job, task) } else { None })
    };
    let output = match file {
        Some(f) => tokio::task::spawn_blocking(move || output_property(&f)).await.ok(),
        None => None,
    };
    Ok(Json(read_task(&task, output.as_deref(), &props).map_err(bad)?))
}

async fn put_task(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    TaskPath(id, t): TaskPath,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let props: Vec<RestProperty> = body(&bytes)?;
    h.lock().modify_task(&caller, id, t, &props, now_millis())?;
    h.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn get_task_env(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    TaskPath(id, t): TaskPath,
    Query(query): Q,
) -> ApiResult<Json<Vec<RestProperty>>> {
    let c = h.lock();
    owner_only(&caller, c.job(id)?, &format!("the environment variables of job {id} are"))?;
    Ok(Json(pick_env(&c.task(id, t)?.env, &query)))
}

async fn post_task_env(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    TaskPath(id, t): TaskPath,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let vars: Vec<RestProperty> = body(&bytes)?;
    h.lock().set_env(&caller, id, Some(t), &vars, now_millis())?;
    h.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn cancel_task(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    TaskPath(id, t): TaskPath,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let eff = h.lock().cancel_task(&caller, id, t, &message(&bytes), now_millis())?;
    h.apply(eff);
    Ok(StatusCode::NO_CONTENT)
}

async fn finish_task(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    TaskPath(id, t): TaskPath,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let eff = h.lock().finish_task(&caller, id, t, &message(&bytes), now_millis())?;
    h.apply(eff);
    Ok(StatusCode::NO_CONTENT)
}

async fn requeue_task(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    TaskPath(id, t): TaskPath,
) -> ApiResult<StatusCode> {
    let eff = h.lock().requeue_task(&caller, id, t, now_millis())?;
    h.apply(eff);
    Ok(StatusCode::NO_CONTENT)
}

/// Output of a task's latest run (extension; HPC Pack keeps 4 KB), as the
/// bytes the task wrote: `offset` (from the start, or from the end when
/// negative) and `length` pick a part, so `task view` can show the tail
/// of a long output. Streamed from the file in pieces, after the cluster
/// lock is let go, so a fetch costs the head node the same memory whatever
/// the output's size; `x-hpcpack-output-size` is the whole output's size.
async fn task_output(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    TaskPath(id, t): TaskPath,
    Query(query): Q,
) -> ApiResult<Response> {
    let number = |name: &str| -> ApiResult<Option<i64>> {
        q(&query, name)
            .map(|v| v.trim().parse::<i64>().map_err(|_| bad(format!("'{v}' is not a byte count for {name}; give a whole number"))))
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let length = number("length")?;
    if length.is_some_and(|l| l < 0) {
        return Err(bad("length must be 0 or more bytes"));
    }
    let file = {
        let c = h.lock();
        let job = c.job(id)?;
        let task = c.task(id, t)?;
        owner_only(&caller, job, &format!("the output of task {id}.{t} is"))?;
        h.output_file(&caller, job, task)
    };
    let opened = match file {
        Some(f) => match tokio::fs::File::open(&f).await {
            Ok(file) => Some(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(ApiError::from(Error::io(format!("cannot open {}", f.display()), e))),
        },
        None => None,
    };
    let size = match &opened {
        Some(f) => f.metadata().await.map(|m| m.len()).unwrap_or(0),
        None => 0,
    };
    let start = if offset < 0 { size.saturating_sub(offset.unsigned_abs()) } else { (offset as u64).min(size) };
    let count = length.map(|l| l as u64).unwrap_or(u64::MAX).min(size - start);
    let body = match opened {
        Some(mut f) if count > 0 => {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            f.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| ApiError::from(Error::io("cannot read the task output", e)))?;
            axum::body::Body::from_stream(output_stream(f.take(count)))
        }
        _ => axum::body::Body::empty(),
    };
    let headers = [
        (axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
        (axum::http::header::CONTENT_LENGTH, HeaderValue::from(count)),
        (axum::http::HeaderName::from_static(crate::wire::OUTPUT_SIZE_HEADER), HeaderValue::from(size)),
    ];
    Ok((headers, body).into_response())
}

/// Bytes of output sent per piece.
const OUTPUT_CHUNK: usize = 64 << 10;

/// The file as a stream of pieces of [`OUTPUT_CHUNK`] bytes.
fn output_stream(
    file: tokio::io::Take<tokio::fs::File>,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send {
    futures_util::stream::try_unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; OUTPUT_CHUNK];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((axum::body::Bytes::from(buf), f)))
    })
}

/// The start of an output file, as much as the `Output` property carries.
/// The `Output` property of a task: the start of its output file.
pub fn output_property(file: &std::path::Path) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(file) {
        let _ = f.take(crate::wire::props::OUTPUT_PROPERTY_LIMIT as u64).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

// ----- cluster variables, cores, status -----

async fn get_cluster_env(State(h): State<Arc<Head>>) -> Json<Vec<RestProperty>> {
    let c = h.lock();
    let mut env: Vec<RestProperty> = vec![RestProperty::new(crate::env::CCP_CLUSTER_NAME, &c.cluster_name)];
    env.extend(c.env().iter().filter(|(k, _)| *k != crate::env::CCP_CLUSTER_NAME).map(|(k, v)| RestProperty::new(k, v)));
    Json(env)
}

async fn put_cluster_env(
    State(h): State<Arc<Head>>,
    Extension(caller): Extension<Caller>,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let vars: Vec<RestProperty> = body(&bytes)?;
    if vars.iter().any(|p| p.name.eq_ignore_ascii_case(crate::env::CCP_CLUSTER_NAME)) {
        return Err(bad("CCP_CLUSTER_NAME is the head node's name and cannot be set"));
    }
    let vars: Vec<(String, String)> = vars.into_iter().map(|p| (p.name, p.value)).collect();
    h.lock().set_cluster_env(&caller, &vars)?;
    h.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn list_cores(State(h): State<Arc<Head>>) -> Json<Vec<crate::wire::WireCore>> {
    Json(h.lock().cores())
}

async fn status(State(h): State<Arc<Head>>) -> Json<WireStatus> {
    let c = h.lock();
    Json(WireStatus {
        version: crate::VERSION.into(),
        cluster_name: h.cluster_name.clone(),
        pid: std::process::id(),
        started: format_time(Some(h.started)),
        state_dir: h.state_dir.display().to_string(),
        nodes: c.nodes().len() as u32,
        jobs: c.job_count(),
        config_files: h.config_files.get().cloned().unwrap_or_default(),
        node_group_layout: h.group_layout.clone(),
    })
}

async fn shutdown(State(h): State<Arc<Head>>, Extension(caller): Extension<Caller>) -> ApiResult<StatusCode> {
    if !caller.administers_this_head() {
        return Err(ApiError::from(Error::AccessDenied("only the user the head node runs as, or root, may stop it".into())));
    }
    h.shutdown.notify_one();
    Ok(StatusCode::ACCEPTED)
}

impl Head {
    /// The output file of a task's latest run, if it has run here and
    /// `caller` may read it (its owner and administrators).
    pub(crate) fn output_file(&self, caller: &Caller, job: &crate::model::Job, t: &crate::model::Task) -> Option<std::path::PathBuf> {
        if t.attempt == 0 || !caller.may_read_output_of(job.owner_uid) {
            return None;
        }
        Some(self.agent.output_file(RunId { job: t.job_id, task: t.id, attempt: t.attempt }))
    }
}
