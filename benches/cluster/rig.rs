//! The project's Slurm rig (`tests/slurm/up.sh`): node1..node3 as network namespaces of this
//! machine. There is one per machine, shared by whoever works on it: when one is up (its bridge
//! `hpcbr0` exists) the bench uses it as it is and leaves it up; otherwise it starts one in
//! `<target>/slurm` and stops it with `down.sh` when done, also after an error or Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::proc;

/// Where a running rig's `up.sh` wrote the directory it was started from.
const OWNER: &str = "/run/hpcpack-slurm-rig.dir";
/// The rig's bridge: the head's interface, and the sign that a rig is up.
const BRIDGE: &str = "/sys/class/net/hpcbr0";
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/slurm");

/// A rig in use; stops it on drop if this bench started it.
pub struct Rig {
    /// Its `slurm.conf`, for `SLURM_CONF`.
    pub conf: PathBuf,
    /// Set when this bench started the rig (and must stop it).
    started: Option<PathBuf>,
}

impl Rig {
    /// Uses the rig that is up, else starts one in `dir`.
    pub fn find_or_start(dir: &Path) -> Result<Rig> {
        if Path::new(BRIDGE).exists() {
            let owner = std::fs::read_to_string(OWNER).with_context(|| {
                format!("a Slurm rig is up (bridge hpcbr0) but {OWNER} does not say where")
            })?;
            let conf = Path::new(owner.trim()).join("slurm.conf");
            if !conf.is_file() {
                bail!(
                    "a Slurm rig is up (bridge hpcbr0) but its {} is missing",
                    conf.display()
                );
            }
            eprintln!("[rig] using the Slurm rig that is up ({})", owner.trim());
            return Ok(Rig {
                conf,
                started: None,
            });
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // From here on a half-started rig is stopped on drop too (down.sh is safe then).
        let rig = Rig {
            conf: dir.join("slurm.conf"),
            started: Some(dir.to_path_buf()),
        };
        eprintln!(
            "[rig] starting a Slurm rig in {} (tests/slurm/up.sh)",
            dir.display()
        );
        let mut up = Command::new(Path::new(SCRIPTS).join("up.sh"));
        up.env("SLURM_RIG_DIR", dir);
        // up.sh leaves daemons behind that would hold a pipe open: its output goes to a file.
        let log = dir.join("up.log");
        let status = proc::status(&mut up, Some(&log), Duration::from_secs(120))?;
        if !status.success() {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "tests/slurm/up.sh failed ({status}): {}",
                crate::report::one_line(&said, "", "no output")
            );
        }
        Ok(rig)
    }

    /// A Slurm command for this rig: `SLURM_CONF` set, `SLURM_JWT` removed (with it srun and
    /// salloc authenticate by token, which the rig's slurmd refuses), run from /tmp.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.conf)
            .env_remove("SLURM_JWT")
            .current_dir("/tmp");
        cmd
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let Some(dir) = &self.started else { return };
        eprintln!("[rig] stopping the Slurm rig this bench started (tests/slurm/down.sh)");
        let mut down = Command::new(Path::new(SCRIPTS).join("down.sh"));
        down.env("SLURM_RIG_DIR", dir);
        if let Err(e) = proc::status(
            &mut down,
            Some(&dir.join("down.log")),
            Duration::from_secs(120),
        )
        .and_then(|s| {
            if s.success() {
                Ok(())
            } else {
                bail!(
                    "tests/slurm/down.sh failed ({s}); see {}",
                    dir.join("down.log").display()
                )
            }
        }) {
            eprintln!("warning: stopping the Slurm rig: {e:#}");
        }
    }
}
