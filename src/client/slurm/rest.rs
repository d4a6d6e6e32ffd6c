//! slurmrestd, for what the Slurm backend reads often (jobs and nodes): one
//! HTTP request instead of starting `squeue` or `sinfo`.
//!
//! - Address: `HPCPACK_SLURM_URL`, else `[slurm] url` in config.toml, else
//!   `http://127.0.0.1:6820`; `unix:/path` for slurmrestd on a Unix socket;
//!   `none` for Slurm's commands only.
//! - Token: `SLURM_JWT` as Slurm's tools read it, else one `scontrol token`
//!   gives (kept in the state directory, mode 0600, until shortly before it
//!   expires).
//! - API version: the newest this project reads that the server serves,
//!   tried from [`VERSIONS`] once and kept with the token (Slurm 22.05
//!   serves v0.0.38; 23.02 to 24.11 v0.0.39 to v0.0.42).
//!
//! Where slurmrestd does not answer at the default address, the backend
//! uses Slurm's commands and does not try again for a minute; an address
//! the user gave that does not answer is an error naming it.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// The OpenAPI versions read, newest first.
pub const VERSIONS: &[&str] = &["v0.0.42", "v0.0.41", "v0.0.40", "v0.0.39", "v0.0.38"];

pub const DEFAULT_URL: &str = "http://127.0.0.1:6820";

/// A token's life when this backend asks for one.
const TOKEN_LIFESPAN: u64 = 3600;

/// What is kept between commands: `<state dir>/slurm/rest.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Kept {
    url: String,
    /// The API version the server answered, empty when it did not answer.
    version: String,
    /// Seconds since the epoch: when `version` was found, or when the
    /// server last did not answer.
    checked: u64,
    /// A token from `scontrol token` and when it expires.
    token: String,
    expires: u64,
}

fn kept_file() -> PathBuf {
    crate::config::state_dir().join("slurm").join("rest.json")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Keeps `k` (mode 0600: the token is the user's credential); a state
/// directory that cannot be written only costs the next command a token.
fn save(k: &Kept) {
    let f = kept_file();
    if let Some(d) = f.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let _ = crate::slurm::record::write_private(&f, k);
}

pub struct Rest {
    at: Address,
    /// For messages: the address as given.
    base: String,
    version: String,
    user: String,
    token: String,
}

impl Rest {
    /// slurmrestd at `url` (or the default), if it answers; `None` when
    /// the default address does not answer (use the commands).
    pub fn connect(url: Option<&str>) -> Result<Option<Rest>> {
        let given = crate::env::var(crate::env::HPCPACK_SLURM_URL).or(url.map(str::to_string)).filter(|u| !u.trim().is_empty());
        if given.as_deref().is_some_and(|u| u.eq_ignore_ascii_case("none")) {
            return Ok(None);
        }
        let url = given.clone().unwrap_or_else(|| DEFAULT_URL.to_string());
        let on_disk = std::fs::read(kept_file()).unwrap_or_default();
        let mut kept: Kept = serde_json::from_slice(&on_disk).unwrap_or_default();
        if kept.url != url {
            kept = Kept { url: url.clone(), ..Default::default() };
        }
        // The default address did not answer a moment ago: the commands.
        if given.is_none() && kept.version.is_empty() && now().saturating_sub(kept.checked) < 60 && kept.checked > 0 {
            return Ok(None);
        }
        let at = address(&url)?;
        let user = crate::node::sys::user_name(crate::node::sys::uid());
        let token = match crate::env::var(crate::env::SLURM_JWT) {
            Some(t) => t,
            None if !kept.token.is_empty() && kept.expires > now() + 60 => kept.token.clone(),
            None => {
                let out = std::process::Command::new("scontrol")
                    .args(["token", &format!("lifespan={TOKEN_LIFESPAN}")])
                    .env_remove(crate::env::SLURM_JWT)
                    .output();
                let token = match out {
                    Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().strip_prefix("SLURM_JWT=").unwrap_or("").to_string(),
                    _ => String::new(),
                };
                if token.is_empty() {
                    // No JWT on this cluster: the commands (and no second
                    // `scontrol token` for a minute, as for no answer).
                    if given.is_some() {
                        return Err(Error::Unreachable(format!("cannot use slurmrestd at {url}: no SLURM_JWT, and scontrol token gave none (is AuthAltTypes=auth/jwt set?)")));
                    }
                    kept.version.clear();
                    kept.checked = now();
                    save(&kept);
                    return Ok(None);
                }
                kept.token = token.clone();
                kept.expires = now() + TOKEN_LIFESPAN;
                token
            }
        };
        let mut rest = Rest { at, base: url.clone(), version: kept.version.clone(), user, token };
        if rest.version.is_empty() {
            match rest.negotiate() {
                Ok(v) => rest.version = v,
                Err(e) => {
                    kept.version.clear();
                    kept.checked = now();
                    save(&kept);
                    return if given.is_some() { Err(e) } else { Ok(None) };
                }
            }
            kept.version = rest.version.clone();
            kept.checked = now();
        }
        // Written only when something changed (a new token, the version).
        if serde_json::to_vec(&kept).unwrap_or_default() != on_disk {
            save(&kept);
        }
        Ok(Some(rest))
    }

    /// The newest version of [`VERSIONS`] the server serves.
    fn negotiate(&self) -> Result<String> {
        let mut last = String::new();
        for v in VERSIONS {
            match self.request(&format!("/slurm/{v}/ping")) {
                Ok((200, _)) => return Ok(v.to_string()),
                Ok((code, _)) => last = format!("HTTP {code}"),
                Err(e) => return Err(e),
            }
        }
        Err(Error::Unreachable(format!("slurmrestd at {} serves none of the API versions {} ({last})", self.base, VERSIONS.join(", "))))
    }

    /// One `GET` (HTTP/1.0, the connection closed after the answer): the
    /// status and the body. A plain exchange on a socket: reqwest's
    /// blocking client starts a runtime thread first, which costs more
    /// than the whole request.
    fn request(&self, path: &str) -> Result<(u16, String)> {
        self.exchange("GET", path, None)
    }

    /// One request (`body`: JSON to `POST`), as [`Self::request`].
    fn exchange(&self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
        let unreachable = |e: std::io::Error| Error::Unreachable(format!("cannot reach slurmrestd at {}: {e}", self.base));
        let mut req = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nX-SLURM-USER-NAME: {}\r\nX-SLURM-USER-TOKEN: {}\r\nAccept: application/json\r\n",
            self.at.host(),
            self.user,
            self.token
        );
        match body {
            Some(b) => req += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len()),
            None => req += "\r\n",
        }
        let mut answer = Vec::new();
        match &self.at {
            Address::Tcp(addr) => {
                let target = std::net::ToSocketAddrs::to_socket_addrs(addr.as_str()).map_err(unreachable)?.next();
                let target = target.ok_or_else(|| unreachable(std::io::Error::other("the address resolves to nothing")))?;
                let mut c = std::net::TcpStream::connect_timeout(&target, CONNECT_TIMEOUT).map_err(unreachable)?;
                c.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(unreachable)?;
                c.write_all(req.as_bytes()).map_err(unreachable)?;
                c.take(MAX_ANSWER).read_to_end(&mut answer).map_err(unreachable)?;
            }
            Address::Unix(path) => {
                let mut c = std::os::unix::net::UnixStream::connect(path).map_err(unreachable)?;
                c.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(unreachable)?;
                c.write_all(req.as_bytes()).map_err(unreachable)?;
                c.take(MAX_ANSWER).read_to_end(&mut answer).map_err(unreachable)?;
            }
        }
        parse_answer(&answer).ok_or_else(|| Error::Unreachable(format!("slurmrestd at {} answered something that is not HTTP", self.base)))
    }

    /// `GET /slurm/<version><path>`: the body, whatever the status (Slurm
    /// puts its errors in the body's `errors`).
    pub fn get(&self, path: &str) -> Result<String> {
        let (code, body) = self.request(&format!("/slurm/{}{path}", self.version))?;
        if code == 401 || code == 403 {
            // A token that expired early: asked for again next time.
            let _ = std::fs::remove_file(kept_file());
            return Err(Error::AccessDenied(format!("slurmrestd at {} refused the token (HTTP {code})", self.base)));
        }
        Ok(body)
    }

    /// `POST /slurm/<version><path>` with a JSON body: the answer's body.
    pub fn post(&self, path: &str, body: &str) -> Result<String> {
        let (code, answer) = self.exchange("POST", &format!("/slurm/{}{path}", self.version), Some(body))?;
        if code == 401 || code == 403 {
            let _ = std::fs::remove_file(kept_file());
            return Err(Error::AccessDenied(format!("slurmrestd at {} refused the token (HTTP {code})", self.base)));
        }
        Ok(answer)
    }

    pub fn version(&self) -> &str {
        &self.version
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes of an answer read (a node or job list of a large cluster
/// fits many times over).
const MAX_ANSWER: u64 = 256 << 20;

/// Where slurmrestd listens.
enum Address {
    /// `host:port`.
    Tcp(String),
    Unix(PathBuf),
}

impl Address {
    fn host(&self) -> &str {
        match self {
            Address::Tcp(a) => a,
            Address::Unix(_) => "localhost",
        }
    }
}

fn address(url: &str) -> Result<Address> {
    if let Some(path) = url.strip_prefix("unix:") {
        return Ok(Address::Unix(PathBuf::from(path)));
    }
    match url.strip_prefix("http://") {
        Some(rest) => {
            let hostport = rest.split('/').next().unwrap_or("");
            let hostport = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:80") };
            Ok(Address::Tcp(hostport))
        }
        None => Err(Error::InvalidArgument(format!(
            "slurmrestd address '{url}': give http://host:port or unix:/path (HTTPS is not supported yet; put slurmrestd on a Unix socket or plain HTTP on this host)"
        ))),
    }
}

/// An HTTP answer's status and body. The body is the `Content-Length`
/// bytes after the head when it says so: slurmrestd 22.05 writes a stray
/// header line after the body of an HTTP/1.0 answer.
fn parse_answer(answer: &[u8]) -> Option<(u16, String)> {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..split]).ok()?;
    let body = &answer[split + 4..];
    let status: u16 = head.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(body.len())
        .min(body.len());
    Some((status, String::from_utf8_lossy(&body[..len]).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_addresses() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}Connection: Close\r\n";
        assert_eq!(parse_answer(a), Some((200, "{}".to_string())));
        assert_eq!(parse_answer(b"HTTP/1.0 404 Not Found\r\n\r\nnope"), Some((404, "nope".to_string())));
        assert_eq!(parse_answer(b"garbage"), None);
        assert!(matches!(address("http://127.0.0.1:6820/").unwrap(), Address::Tcp(a) if a == "127.0.0.1:6820"));
        assert!(matches!(address("unix:/run/slurmrestd.sock").unwrap(), Address::Unix(_)));
        assert!(address("https://x:6820").is_err());
    }
}
