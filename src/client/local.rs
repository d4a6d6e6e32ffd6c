//! The embedded head node: found through its socket in the user's state
//! directory, and started in the background (`hpcd local start`) by the
//! first command that needs it.

use super::Backend;
use super::hpcpack::RestBackend;
use crate::error::{Error, Result};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The socket of the head node that keeps its state in `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("hpcd.sock")
}

/// True if a head node answers on `socket`.
pub fn is_running(socket: &Path) -> bool {
    UnixStream::connect(socket).is_ok()
}

/// The `hpcd` binary: `$HPCPACK_HPCD`, else beside this program, else `PATH`.
pub fn hpcd_binary() -> PathBuf {
    if let Some(p) = crate::env::var(crate::env::HPCPACK_HPCD) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("hpcd"))) {
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("hpcd")
}

/// Connects to the embedded head node, starting it if needed (`hpcd local
/// start` reads the layout of virtual nodes from the same config file).
pub fn connect_embedded() -> Result<Box<dyn Backend>> {
    let dir = crate::config::state_dir();
    let socket = socket_path(&dir);
    if !is_running(&socket) {
        start(&dir)?;
    }
    Ok(Box::new(RestBackend::unix(&socket)?.restarting_with(move || start(&dir))))
}

/// Runs `hpcd local start` and waits for it (it returns once the head node
/// answers).
fn start(dir: &Path) -> Result<()> {
    let hpcd = hpcd_binary();
    let out = Command::new(&hpcd)
        .args(["local", "start", "--quiet"])
        .env(crate::env::HPCPACK_STATE_DIR, dir)
        .output()
        .map_err(|e| Error::Unreachable(format!("cannot start the embedded head node with {}: {e}", hpcd.display())))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Unreachable(format!(
        "the embedded head node did not start: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}
