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
}

/// Settings after every layer is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `None` or `local`: the embedded head node.
    pub scheduler: Option<String>,
    pub local: LocalLayout,
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
    let mut files = vec![read_file(Path::new(SYSTEM_FILE))?];
    if let Some(p) = user_file() {
        files.push(read_file(&p)?);
    }
    Ok(resolve(&files, env::var(env::CCP_SCHEDULER), cli_scheduler))
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
        let system = FileConfig { scheduler: Some("sys".into()), local: LocalLayout { nodes: Some(2), ..Default::default() } };
        let user = FileConfig { scheduler: Some("user".into()), local: LocalLayout { cores_per_node: Some(1), ..Default::default() } };
        let s = resolve(&[system.clone(), user.clone()], None, None);
        assert_eq!(s.scheduler.as_deref(), Some("user"));
        assert_eq!(s.local.nodes, Some(2));
        assert_eq!(s.local.cores_per_node, Some(1));
        assert_eq!(resolve(&[system.clone(), user.clone()], Some("env".into()), None).scheduler.as_deref(), Some("env"));
        assert_eq!(resolve(&[system, user], Some("env".into()), Some("cli".into())).scheduler.as_deref(), Some("cli"));
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
