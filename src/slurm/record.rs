//! A job's HPC Pack record on a Slurm cluster: what Slurm does not keep (its
//! tasks, their states, exit codes and output), kept in the submitter's
//! state directory, which a Slurm site shares between its login and compute
//! nodes (the user's home):
//!
//! ```text
//! <state dir>/slurm/jobs/<Slurm job id>  -> <token>   (a link made once sbatch answered)
//! <state dir>/slurm/jobs/<token>/
//!     job.json        the job and its tasks as submitted (written by the CLIs)
//!     progress.json   the tasks' states, exit codes and times, the job's end
//!                     (written by the job's runner, `hpcd slurm-job`, in the
//!                     allocation)
//!     runs/<task>.<attempt>/   one task run (`hpcd-task`'s directory: spec,
//!                     output, exit.json)
//!     requests/       what the CLIs ask of the runner while the job runs
//!                     (cancel, finish or requeue a task)
//!     canceled        the message of `job cancel`
//! ```
//!
//! The directory is made under a random name before `sbatch` is run, so the
//! runner, which may start before `sbatch` returns, finds the whole record;
//! the link by job id is made once Slurm gave the id. Each file has one
//! writer, and every file is replaced whole (written aside, renamed), so a
//! reader never sees half of one. Records stay after Slurm forgets a job
//! (`MinJobAge`), so a finished job can still be viewed; deleting a job's
//! directory forgets it.

use crate::model::{Job, JobState, Millis, Task};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

pub const JOB: &str = "job.json";
pub const PROGRESS: &str = "progress.json";
pub const RUNS: &str = "runs";
pub const REQUESTS: &str = "requests";
pub const CANCELED: &str = "canceled";

/// The job and its tasks as the CLIs made them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub job: Job,
    pub tasks: Vec<Task>,
    /// The `sbatch` options the job was submitted with (a held job's
    /// request is brought up to date from them at `job submit /id:`).
    #[serde(default)]
    pub slurm_options: Vec<String>,
}

/// What the runner made of the job so far.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Set once the job ended (Finished, Failed or Canceled).
    pub state: Option<JobState>,
    pub start_time: Option<Millis>,
    pub end_time: Option<Millis>,
    pub error_message: String,
    /// The nodes the job holds, as the runner saw them.
    pub nodes: Vec<String>,
    pub tasks: Vec<Task>,
    /// Which run of the job wrote it (Slurm's `SLURM_RESTART_COUNT`: a
    /// requeued job runs again).
    #[serde(default)]
    pub run: u32,
}

/// `<state dir>/slurm/jobs`.
pub fn jobs_dir() -> PathBuf {
    crate::config::state_dir().join("slurm").join("jobs")
}

/// The record of job `id`, if this user has one.
pub fn dir_of(id: u64) -> PathBuf {
    jobs_dir().join(id.to_string())
}

/// A new, empty record directory under a random name (mode 0700).
pub fn new_dir() -> std::io::Result<PathBuf> {
    let jobs = jobs_dir();
    fs::create_dir_all(&jobs)?;
    let dir = jobs.join(format!("r-{}", crate::node::sys::random_hex(12)?));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

use std::os::unix::fs::DirBuilderExt;

/// Links `jobs/<id>` to `dir`, replacing the link of an earlier job that
/// had the same id.
pub fn link(id: u64, dir: &Path) -> std::io::Result<()> {
    let target = dir.file_name().ok_or_else(|| std::io::Error::other("a record directory without a name"))?;
    let tmp = jobs_dir().join(format!(".{id}.link"));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    fs::rename(&tmp, dir_of(id))
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| format!("{} is damaged: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes `value` whole, readable by its owner only (mode 0600): a job's
/// environment and the cluster variables may carry the user's secrets, and
/// a home directory is often open to everyone.
pub fn write_private<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    let old = crate::node::sys::set_umask(0o077);
    let r = crate::node::supervisor::write_atomic(path, &bytes, false);
    crate::node::sys::set_umask(old);
    r.map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub fn load(dir: &Path) -> Result<Option<Record>, String> {
    read(&dir.join(JOB))
}

pub fn save(dir: &Path, r: &Record) -> Result<(), String> {
    write_private(&dir.join(JOB), r)
}

pub fn load_progress(dir: &Path) -> Result<Option<Progress>, String> {
    read(&dir.join(PROGRESS))
}

/// Writes the runner's progress, unless a later run of the job wrote it
/// (the runner of a run Slurm requeued may still be ending while the next
/// one runs).
pub fn save_progress(dir: &Path, p: &Progress) -> Result<(), String> {
    if load_progress(dir).ok().flatten().is_some_and(|on_disk| on_disk.run > p.run) {
        return Ok(());
    }
    write_private(&dir.join(PROGRESS), p)
}

/// `<state dir>/slurm/environment.json`: the variables `cluscfg setenvs`
/// set for every task of this user's jobs on Slurm (Slurm has no cluster
/// variables of its own; each user keeps theirs).
pub fn cluster_env_file() -> PathBuf {
    crate::config::state_dir().join("slurm").join("environment.json")
}

pub fn cluster_env() -> Result<Vec<(String, String)>, String> {
    Ok(read(&cluster_env_file())?.unwrap_or_default())
}

pub fn save_cluster_env(vars: &[(String, String)]) -> Result<(), String> {
    let f = cluster_env_file();
    if let Some(d) = f.parent() {
        fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    write_private(&f, &vars)
}

#[cfg(test)]
mod private {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn what_a_record_keeps_is_its_owners_alone() {
        let d = tempfile::tempdir().unwrap();
        write_private(&d.path().join("x.json"), &vec![("TOKEN", "secret")]).unwrap();
        let mode = fs::metadata(d.path().join("x.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

/// What a CLI asks of a running job's runner about one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Cancel,
    Finish,
    Requeue,
}

impl Ask {
    fn word(self) -> &'static str {
        match self {
            Ask::Cancel => "cancel",
            Ask::Finish => "finish",
            Ask::Requeue => "requeue",
        }
    }
}

/// Leaves a request for the runner: `requests/<what>-<task>` holding the
/// message.
pub fn ask(dir: &Path, what: Ask, task: u32, message: &str) -> Result<(), String> {
    let d = dir.join(REQUESTS);
    fs::create_dir_all(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    crate::node::supervisor::write_atomic(&d.join(format!("{}-{task}", what.word())), message.as_bytes(), false)
        .map_err(|e| format!("cannot write a request in {}: {e}", d.display()))
}

/// The requests left since the last call, removed as they are read.
pub fn take_requests(dir: &Path) -> Vec<(Ask, u32, String)> {
    let d = dir.join(REQUESTS);
    let Ok(entries) = fs::read_dir(&d) else { return Vec::new() };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((word, task)) = name.split_once('-') else { continue };
        let what = match word {
            "cancel" => Ask::Cancel,
            "finish" => Ask::Finish,
            "requeue" => Ask::Requeue,
            _ => continue,
        };
        let Ok(task) = task.parse() else { continue };
        let message = fs::read_to_string(e.path()).unwrap_or_default();
        if fs::remove_file(e.path()).is_ok() {
            out.push((what, task, message));
        }
    }
    out.sort_by_key(|(_, t, _)| *t);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_once() {
        let d = tempfile::tempdir().unwrap();
        ask(d.path(), Ask::Cancel, 2, "by user").unwrap();
        ask(d.path(), Ask::Requeue, 1, "").unwrap();
        let got = take_requests(d.path());
        assert_eq!(got, vec![(Ask::Requeue, 1, String::new()), (Ask::Cancel, 2, "by user".into())]);
        assert!(take_requests(d.path()).is_empty());
    }
}
