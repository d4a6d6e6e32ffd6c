//! The user's settings: which head node to talk to, and how to split this
//! machine for the embedded cluster.
//!
//! Precedence, lowest first: built-in defaults < `/etc/hpcpack/config.toml` <
//! the user's file (`$HPCPACK_CONFIG`, else `$XDG_CONFIG_HOME/hpcpack/config.toml`,
//! else `~/.config/hpcpack/config.toml`) < environment (`CCP_SCHEDULER`) <
//! the command line (`/scheduler:`). A malformed file is an error that names
//! its path and line.
//!
//! ```toml
//! scheduler = "local"          # the embedded head node (the default)
//! [local]
//! nodes = 4                    # split this machine into 4 virtual nodes
//! cores_per_node = 1
//! node_groups = ["azurenodes"]
//! [slurm]                      # scheduler = "slurm": a Slurm cluster
//! url = "http://127.0.0.1:6820"  # slurmrestd (the default); Slurm's commands where it does not answer
//! ```

use crate::env;
use crate::error::{Error, Result};
use crate::head::local::LocalLayout;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The system-wide config file.
pub const SYSTEM_FILE: &str = "/etc/hpcpack/config.toml";

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub scheduler: Option<String>,
    #[serde(default)]
    pub local: LocalLayout,
    #[serde(default)]
    pub slurm: SlurmConfig,
}

/// `[slurm]`: how the Slurm backend reaches the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// slurmrestd's address (`http://host:port` or `unix:/path`).
    pub url: Option<String>,
}

/// Settings after every layer is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `None` or `local`: the embedded head node.
    pub scheduler: Option<String>,
    pub local: LocalLayout,
    pub slurm: SlurmConfig,
}

/// Reads one config file; a missing file is an empty config.
pub fn read_file(path: &Path) -> Result<FileConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => return Err(Error::io(format!("cannot read config file {}", path.display()), e)),
    };
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start].lines().count().max(1)).unwrap_or(0);
        Error::InvalidArgument(format!("config file {}, line {line}: {}", path.display(), e.message()))
    })
}

/// The user's config file path.
pub fn user_file() -> Option<PathBuf> {
    if let Some(p) = env::var(env::HPCPACK_CONFIG) {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = env::var(env::XDG_CONFIG_HOME) {
        return Some(Path::new(&x).join("hpcpack/config.toml"));
    }
    env::var(env::HOME).map(|h| Path::new(&h).join(".config/hpcpack/config.toml"))
}

/// Applies the layers in order; `cli_scheduler` is `/scheduler:` if given.
pub fn resolve(files: &[FileConfig], env_scheduler: Option<String>, cli_scheduler: Option<String>) -> Settings {
    let mut s = Settings::default();
    for f in files {
        if f.scheduler.is_some() {
            s.scheduler = f.scheduler.clone();
        }
        s.local.overlay(&f.local);
        if f.slurm.url.is_some() {
            s.slurm.url = f.slurm.url.clone();
        }
    }
    if env_scheduler.is_some() {
        s.scheduler = env_scheduler;
    }
    if cli_scheduler.is_some() {
        s.scheduler = cli_scheduler;
    }
    s
}

/// Loads the settings from the system file, the user's file and the environment.
pub fn load(cli_scheduler: Option<String>) -> Result<Settings> {
    Ok(load_with_sources(cli_scheduler)?.0)
}

/// The files [`load`] looks at, in order, each with whether it exists.
pub fn sources() -> Vec<(PathBuf, bool)> {
    std::iter::once(PathBuf::from(SYSTEM_FILE)).chain(user_file()).map(|p| {
        let there = p.is_file();
        (p, there)
    }).collect()
}

/// [`load`], with the files it read.
pub fn load_with_sources(cli_scheduler: Option<String>) -> Result<(Settings, Vec<PathBuf>)> {
    let mut files = Vec::new();
    let mut read = Vec::new();
    for (p, there) in sources() {
        files.push(read_file(&p)?);
        if there {
            read.push(p);
        }
    }
    Ok((resolve(&files, env::var(env::CCP_SCHEDULER), cli_scheduler), read))
}

/// Writes the fields set in `layout` into the `[local]` table of the
/// user's config file (made if missing), keeping the rest of the file, its
/// comments included. Returns the file's path.
pub fn save_local(layout: &LocalLayout) -> Result<PathBuf> {
    let path = user_file().ok_or_else(|| {
        Error::InvalidArgument("no config file to keep the layout in: set HOME, XDG_CONFIG_HOME or HPCPACK_CONFIG".into())
    })?;
    save_local_to(&path, layout)?;
    Ok(path)
}

/// [`save_local`] into the file `path`.
fn save_local_to(path: &Path, layout: &LocalLayout) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(format!("cannot read config file {}", path.display()), e)),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let line = e.span().map(|s| text[..s.start].lines().count().max(1)).unwrap_or(0);
        Error::InvalidArgument(format!("config file {}, line {line}: {}", path.display(), e.message()))
    })?;
    let local = doc
        .entry("local")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| Error::InvalidArgument(format!("config file {}: `local` is not a table", path.display())))?;
    if let Some(n) = layout.nodes {
        local.insert("nodes", toml_edit::value(i64::from(n)));
    }
    if let Some(n) = layout.cores_per_node {
        local.insert("cores_per_node", toml_edit::value(i64::from(n)));
    }
    if !layout.node_groups.is_empty() {
        local.insert("node_groups", toml_edit::value(layout.node_groups.iter().collect::<toml_edit::Array>()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    // A new name, then renamed over the file: a crash leaves the old file
    // or the new one, never half of one.
    let tmp = path.with_extension("toml.new");
    std::fs::write(&tmp, doc.to_string()).map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("cannot replace {}", path.display()), e))
}

/// The embedded head node's state directory.
pub fn state_dir() -> PathBuf {
    if let Some(d) = env::var(env::HPCPACK_STATE_DIR) {
        return PathBuf::from(d);
    }
    if let Some(x) = env::var(env::XDG_STATE_HOME) {
        return Path::new(&x).join("hpcpack");
    }
    let home = env::var(env::HOME).unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".local/state/hpcpack")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let system = FileConfig {
            scheduler: Some("sys".into()),
            local: LocalLayout { nodes: Some(2), ..Default::default() },
            slurm: SlurmConfig { url: Some("http://sys:6820".into()) },
        };
        let user = FileConfig { scheduler: Some("user".into()), local: LocalLayout { cores_per_node: Some(1), ..Default::default() }, slurm: SlurmConfig::default() };
        let s = resolve(&[system.clone(), user.clone()], None, None);
        assert_eq!(s.scheduler.as_deref(), Some("user"));
        assert_eq!(s.local.nodes, Some(2));
        assert_eq!(s.local.cores_per_node, Some(1));
        assert_eq!(s.slurm.url.as_deref(), Some("http://sys:6820"), "a later file without [slurm] keeps it");
        assert_eq!(resolve(&[system.clone(), user.clone()], Some("env".into()), None).scheduler.as_deref(), Some("env"));
        assert_eq!(resolve(&[system, user], Some("env".into()), Some("cli".into())).scheduler.as_deref(), Some("cli"));
    }

    #[test]
    fn a_saved_layout_keeps_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hpcpack/config.toml");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "# mine\nscheduler = \"local\"\n[local]\ncores_per_node = 1 # one each\n").unwrap();
        save_local_to(&p, &LocalLayout { nodes: Some(4), node_groups: vec!["azurenodes".into()], ..Default::default() }).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("# mine") && text.contains("# one each"), "{text}");
        let f = read_file(&p).unwrap();
        assert_eq!(f.scheduler.as_deref(), Some("local"));
        assert_eq!(f.local, LocalLayout { nodes: Some(4), cores_per_node: Some(1), node_groups: vec!["azurenodes".into()] });
    }

    #[test]
    fn malformed_file_names_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "scheduler = \"local\"\n[local]\nnodes = \"four\"\n").unwrap();
        let e = read_file(&p).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("line 3"), "{e}");
        std::fs::write(&p, "bogus = 1\n").unwrap();
        assert!(read_file(&p).unwrap_err().to_string().contains("line 1"));
        assert_eq!(read_file(&dir.path().join("none.toml")).unwrap(), FileConfig::default());
    }
}
