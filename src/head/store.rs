//! The head node's durable state: SQLite in WAL mode, one row per job, task,
//! node, node group and job template (the record as JSON), plus cluster
//! variables.
//!
//! Every change is written in one transaction with `synchronous=FULL`, and the
//! head node answers a request only after its commit returned, so an
//! acknowledged change survives `kill -9` and power loss. The schema carries a
//! version that is checked at start; an unknown version is refused rather than
//! guessed at.

use crate::model::{Job, JobTemplate, Node, NodeGroup, Task};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// Bumped whenever the tables or the records' JSON change incompatibly.
pub const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("state database {path} has schema version {found}, this hpcd knows version {SCHEMA_VERSION}; use the hpcd that wrote it, or move the state directory away")]
    Version { path: String, found: i64 },
    #[error("state database {path}: a stored record is unreadable: {source}")]
    Record { path: String, source: serde_json::Error },
    /// The disk under the database is full: the change was not made.
    #[error("{0}; nothing was changed")]
    NoSpace(String),
}

/// Everything the head node keeps, as loaded at start.
#[derive(Default)]
pub struct Snapshot {
    pub jobs: Vec<Job>,
    pub tasks: Vec<Task>,
    pub nodes: Vec<Node>,
    pub groups: Vec<NodeGroup>,
    pub env: Vec<(String, String)>,
    pub templates: Vec<JobTemplate>,
    pub next_job_id: u64,
}

/// One atomic change.
#[derive(Default)]
pub struct Changes<'a> {
    pub jobs: Vec<&'a Job>,
    pub tasks: Vec<&'a Task>,
    pub nodes: Vec<&'a Node>,
    pub groups: Vec<&'a NodeGroup>,
    pub deleted_nodes: Vec<String>,
    pub deleted_groups: Vec<String>,
    /// `(name, None)` deletes the variable.
    pub env: Vec<(String, Option<String>)>,
    pub next_job_id: Option<u64>,
    /// Values kept under a name in the meta table.
    pub meta: Vec<(&'static str, String)>,
    pub templates: Vec<&'a JobTemplate>,
    pub deleted_templates: Vec<String>,
}

impl Changes<'_> {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
            && self.tasks.is_empty()
            && self.nodes.is_empty()
            && self.groups.is_empty()
            && self.deleted_nodes.is_empty()
            && self.deleted_groups.is_empty()
            && self.env.is_empty()
            && self.next_job_id.is_none()
            && self.meta.is_empty()
            && self.templates.is_empty()
            && self.deleted_templates.is_empty()
    }
}

pub struct Store {
    conn: Connection,
    path: String,
    in_batch: bool,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let p = path.display().to_string();
        let err = |source| sql_error(&p, source);
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS tasks (job_id INTEGER NOT NULL, task_id INTEGER NOT NULL,
                 body TEXT NOT NULL, PRIMARY KEY (job_id, task_id));
             CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS node_groups (name TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS cluster_env (name TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS job_templates (name TEXT PRIMARY KEY, body TEXT NOT NULL);",
        )
        .map_err(err)?;
        let found: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key='schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(err)?;
        match found.and_then(|v| v.parse::<i64>().ok()) {
            None => {
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?1)", [SCHEMA_VERSION.to_string()])
                    .map_err(err)?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(v) => return Err(StoreError::Version { path: p, found: v }),
        }
        Ok(Store { conn, path: p, in_batch: false })
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        sql_error(&self.path, source)
    }

    /// Reads everything.
    pub fn load(&self) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot { next_job_id: 1, ..Default::default() };
        snap.jobs = self.load_bodies("SELECT body FROM jobs ORDER BY id")?;
        snap.tasks = self.load_bodies("SELECT body FROM tasks ORDER BY job_id, task_id")?;
        snap.nodes = self.load_bodies("SELECT body FROM nodes ORDER BY name")?;
        snap.groups = self.load_bodies("SELECT body FROM node_groups ORDER BY name")?;
        snap.templates = self.load_bodies("SELECT body FROM job_templates ORDER BY name")?;
        let mut st = self.conn.prepare("SELECT name, value FROM cluster_env ORDER BY name").map_err(|e| self.sql(e))?;
        snap.env = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        let next: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key='next_job_id'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql(e))?;
        snap.next_job_id = next.and_then(|v| v.parse().ok()).unwrap_or(1);
        Ok(snap)
    }

    /// The value kept under `key` in the meta table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql(e))
    }

    fn load_bodies<T: serde::de::DeserializeOwned>(&self, q: &str) -> Result<Vec<T>, StoreError> {
        let mut st = self.conn.prepare(q).map_err(|e| self.sql(e))?;
        let bodies: Vec<String> = st
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|source| StoreError::Record { path: self.path.clone(), source }))
            .collect()
    }

    /// Writes `changes` in one durable transaction, or as part of the
    /// batch that [`Store::begin`] opened.
    pub fn commit(&mut self, changes: &Changes<'_>) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        if self.in_batch {
            return write(&self.conn, changes).map_err(|e| self.sql(e));
        }
        let tx = self.conn.transaction().map_err(|e| sql_error(&self.path, e))?;
        write(&tx, changes).map_err(|e| sql_error(&self.path, e))?;
        tx.commit().map_err(|e| sql_error(&self.path, e))
    }

    /// Opens a batch: the commits until [`Store::end`] become one
    /// transaction (one disk flush).
    pub fn begin(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| self.sql(e))?;
        self.in_batch = true;
        Ok(())
    }

    /// Makes the batch durable.
    pub fn end(&mut self) -> Result<(), StoreError> {
        self.in_batch = false;
        self.conn.execute_batch("COMMIT").map_err(|e| self.sql(e))
    }

    /// Drops the batch.
    pub fn rollback(&mut self) {
        self.in_batch = false;
        let _ = self.conn.execute_batch("ROLLBACK");
    }
}

/// A SQLite error as a [`StoreError`]: a full disk is told apart, since
/// the user (or the administrator) can do something about it.
fn sql_error(path: &str, source: rusqlite::Error) -> StoreError {
    let full = matches!(&source, rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull);
    if full {
        let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
        return StoreError::NoSpace(crate::node::sys::disk_full_message("the state directory", dir));
    }
    StoreError::Sqlite { path: path.to_string(), source }
}

fn write(conn: &Connection, changes: &Changes<'_>) -> rusqlite::Result<()> {
    let mut put_job = conn.prepare_cached("INSERT OR REPLACE INTO jobs VALUES (?1, ?2)")?;
    for j in &changes.jobs {
        put_job.execute(params![j.id as i64, body(*j)])?;
    }
    let mut put_task = conn.prepare_cached("INSERT OR REPLACE INTO tasks VALUES (?1, ?2, ?3)")?;
    for t in &changes.tasks {
        put_task.execute(params![t.job_id as i64, t.id, body(*t)])?;
    }
    for n in &changes.nodes {
        conn.execute("INSERT OR REPLACE INTO nodes VALUES (?1, ?2)", params![n.name, body(*n)])?;
    }
    for n in &changes.deleted_nodes {
        conn.execute("DELETE FROM nodes WHERE name = ?1", [n])?;
    }
    for g in &changes.groups {
        conn.execute("INSERT OR REPLACE INTO node_groups VALUES (?1, ?2)", params![g.name, body(*g)])?;
    }
    for g in &changes.deleted_groups {
        conn.execute("DELETE FROM node_groups WHERE name = ?1", [g])?;
    }
    for (k, v) in &changes.env {
        match v {
            Some(v) => conn.execute("INSERT OR REPLACE INTO cluster_env VALUES (?1, ?2)", [k, v])?,
            None => conn.execute("DELETE FROM cluster_env WHERE name = ?1", [k])?,
        };
    }
    if let Some(n) = changes.next_job_id {
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('next_job_id', ?1)", [n.to_string()])?;
    }
    for t in &changes.templates {
        conn.execute("INSERT OR REPLACE INTO job_templates VALUES (?1, ?2)", params![t.name, body(*t)])?;
    }
    for t in &changes.deleted_templates {
        conn.execute("DELETE FROM job_templates WHERE name = ?1", [t])?;
    }
    for (k, v) in &changes.meta {
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?1, ?2)", params![k, v])?;
    }
    Ok(())
}

/// A stored record as JSON.
fn body<T: serde::Serialize>(v: &T) -> String {
    // Serialising these plain records cannot fail: no maps with non-string
    // keys, no custom serialisers.
    serde_json::to_string(v).expect("records serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_pin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut s = Store::open(&path).unwrap();
        let j = Job::new(7, "alice", 1000, 1);
        let t = Task::new(7, 1, 1);
        s.commit(&Changes { jobs: vec![&j], tasks: vec![&t], next_job_id: Some(8), env: vec![("A".into(), Some("1".into()))], ..Default::default() })
            .unwrap();
        drop(s);
        let snap = Store::open(&path).unwrap().load().unwrap();
        assert_eq!(snap.jobs[0].id, 7);
        assert_eq!(snap.tasks[0].display_id(), "7.1");
        assert_eq!(snap.next_job_id, 8);
        assert_eq!(snap.env, vec![("A".to_string(), "1".to_string())]);

        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'", []).unwrap();
        drop(conn);
        assert!(matches!(Store::open(&path), Err(StoreError::Version { found: 99, .. })));
    }

    #[test]
    fn schema_version_is_pinned() {
        // Changing the stored format needs a new version and a migration;
        // this test is the reminder.
        assert_eq!(SCHEMA_VERSION, 1);
    }
}
