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

/// The `hpcd` program: `$HPCPACK_HPCD`, else this installation's (see
/// [`crate::multicall::program`]).
pub fn hpcd_binary() -> PathBuf {
    match crate::env::var(crate::env::HPCPACK_HPCD) {
        Some(p) => PathBuf::from(p),
        None => crate::multicall::program("hpcd"),
    }
}

/// A command that runs `hpcd` (as [`hpcd_binary`] finds it).
pub fn hpcd_command() -> Command {
    let mut c = Command::new(hpcd_binary());
    std::os::unix::process::CommandExt::arg0(&mut c, "hpcd");
    c
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
    let out = hpcd_command()
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
