//! The HPC firewall rules of a host (`hpcfwutil`), in nftables.
//!
//! Windows' firewall matches an application by its executable; Linux's
//! netfilter sees, for an incoming packet, only addresses and ports (and
//! the receiving socket's cgroup, which only root could place ranks in).
//! So registering a program gives it a port range of its own: every rank
//! of that program listens in it (MS-MPI's `MPICH_PORT_RANGE`, which the
//! rank takes from this host's registry when it is not set), and the rules
//! open that range. Programs that are not registered listen on a port the
//! kernel picks from its dynamic range (`net.ipv4.ip_local_port_range`),
//! which the rules close to unsolicited connections.
//!
//! The rules are one table, `inet hpcpack`, made from the registry
//! ([`Registry`], `/etc/hpcpack/firewall.json`) and replaced whole, in one
//! transaction, at every change; no other table is read or touched. They
//! apply to the included interfaces only (none at first: nothing is
//! dropped until an administrator includes one), minus those with an
//! address in an excluded subnet:
//!
//! ```text
//! table inet hpcpack {
//!   set programs { type inet_service; flags interval; elements = { 19900-19999, 20000-20099 } }
//!   set interfaces { type ifname; elements = { "eth1" } }
//!   chain input {
//!     type filter hook input priority filter - 1; policy accept;
//!     iifname != @interfaces accept
//!     ct state established,related accept
//!     tcp dport @programs accept comment "registered programs"
//!     tcp dport 32768-60999 ct state new drop comment "unsolicited connections to dynamic ports"
//!   }
//! }
//! ```
//!
//! An `accept` here cannot undo a `drop` of the administrator's own tables
//! (nftables drops a packet any base chain drops): a host firewall of
//! their own must let the registered ranges through too.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The table the rules live in (family inet).
pub const TABLE: &str = "hpcpack";
/// Where the registry is unless `HPCPACK_FIREWALL_DB` says.
pub const DEFAULT_REGISTRY: &str = "/etc/hpcpack/firewall.json";
/// The ports registered programs get, a block of [`BLOCK`] each.
pub const FIRST_PORT: u16 = 20000;
pub const BLOCK: u16 = 100;
/// How many programs can be registered.
pub const MAX_PROGRAMS: u16 = 90;
/// The ports of this project's own launcher (mpiexec's PMI and proxy
/// listeners), open by default (HPC Pack's "HPC Private" rules).
pub const LAUNCHER_PORTS: (u16, u16) = (19900, 19999);
/// The registration of the launcher.
pub const LAUNCHER: &str = "hpcpack-mpiexec";

/// A registered program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub name: String,
    pub path: String,
    pub ports: (u16, u16),
}

/// What `hpcfwutil` keeps on a host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    pub programs: Vec<Program>,
    /// Interfaces the rules apply to.
    pub interfaces: Vec<String>,
    /// Subnets whose interfaces the rules leave alone (`setexclusion`).
    pub exclusions: Vec<String>,
}

/// The registry's path: `HPCPACK_FIREWALL_DB`, else [`DEFAULT_REGISTRY`].
pub fn registry_path() -> PathBuf {
    crate::env::var(crate::env::HPCPACK_FIREWALL_DB).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_REGISTRY))
}

impl Registry {
    /// The registry at `path`; `None` when there is none (the rules were
    /// never set up, or were cleared).
    pub fn load(path: &Path) -> Result<Option<Registry>, String> {
        match std::fs::read_to_string(path) {
            Ok(s) => serde_json::from_str(&s).map(Some).map_err(|e| format!("{}: not a firewall registry: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes it, readable by every user whatever the umask (ranks look
    /// up their ports in it).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let dir = path.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let body = serde_json::to_string_pretty(self).expect("plain data serialises");
        crate::node::supervisor::write_atomic(path, body.as_bytes(), true)
            .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The default state: the launcher's ports, no other program, the
    /// interfaces kept.
    pub fn reset(&self, launcher: &str) -> Registry {
        Registry {
            programs: vec![Program { name: LAUNCHER.into(), path: launcher.into(), ports: LAUNCHER_PORTS }],
            interfaces: self.interfaces.clone(),
            exclusions: Vec::new(),
        }
    }

    /// Registers `path` as `name`: a program already registered keeps its
    /// ports (a name registered again on every node by clusrun is one
    /// registration); a new one gets the first free block.
    pub fn register(&mut self, name: &str, path: &str) -> Result<&Program, String> {
        if let Some(i) = self.programs.iter().position(|p| p.name == name) {
            self.programs[i].path = path.to_string();
            return Ok(&self.programs[i]);
        }
        let taken = |k: u16| self.programs.iter().any(|p| p.ports.0 == FIRST_PORT + k * BLOCK);
        let k = (0..MAX_PROGRAMS).find(|k| !taken(*k)).ok_or_else(|| {
            format!("{MAX_PROGRAMS} programs are registered already; unregister one first")
        })?;
        let first = FIRST_PORT + k * BLOCK;
        self.programs.push(Program { name: name.into(), path: path.into(), ports: (first, first + BLOCK - 1) });
        Ok(self.programs.last().expect("pushed"))
    }

    /// The ports of the program at `exe` (a canonical path), if registered.
    pub fn ports_of(&self, exe: &Path) -> Option<(u16, u16)> {
        self.programs
            .iter()
            .find(|p| std::fs::canonicalize(&p.path).is_ok_and(|c| c == exe) || Path::new(&p.path) == exe)
            .map(|p| p.ports)
    }

    /// The interfaces the rules apply to: the included ones without an
    /// IPv4 address in an excluded subnet.
    pub fn effective_interfaces(&self, addresses: &[(String, std::net::Ipv4Addr)]) -> Vec<String> {
        let nets: Vec<crate::mpi::comm::select::Netmask> =
            self.exclusions.iter().filter_map(|s| crate::mpi::comm::select::Netmask::parse_var("setexclusion", s).ok()).collect();
        self.interfaces
            .iter()
            .filter(|i| !addresses.iter().any(|(n, ip)| n == *i && nets.iter().any(|m| m.contains(*ip))))
            .cloned()
            .collect()
    }

    /// The nftables script that replaces the table with these rules, one
    /// transaction; `dynamic` is the kernel's dynamic port range.
    pub fn script(&self, interfaces: &[String], dynamic: (u16, u16)) -> String {
        let mut s = format!("table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n");
        s += "  comment \"HPC firewall rules (hpcfwutil)\"\n";
        let ranges: Vec<String> = self.programs.iter().map(|p| format!("{}-{}", p.ports.0, p.ports.1)).collect();
        s += "  set programs {\n    type inet_service; flags interval;\n";
        if !ranges.is_empty() {
            s += &format!("    elements = {{ {} }}\n", ranges.join(", "));
        }
        s += "  }\n  set interfaces {\n    type ifname;\n";
        if !interfaces.is_empty() {
            let quoted: Vec<String> = interfaces.iter().map(|i| format!("\"{i}\"")).collect();
            s += &format!("    elements = {{ {} }}\n", quoted.join(", "));
        }
        s += "  }\n  chain input {\n    type filter hook input priority filter - 1; policy accept;\n";
        s += "    iifname != @interfaces accept\n";
        s += "    ct state established,related accept\n";
        s += "    tcp dport @programs accept comment \"registered programs\"\n";
        s += &format!(
            "    tcp dport {}-{} ct state new drop comment \"unsolicited connections to dynamic ports\"\n",
            dynamic.0, dynamic.1
        );
        s += "  }\n}\n";
        s
    }
}

/// The kernel's dynamic port range.
pub fn dynamic_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|x| x.parse().ok());
            Some((it.next()?, it.next()?))
        })
        .unwrap_or((32768, 60999))
}

/// The ports this process should listen in: `MPICH_PORT_RANGE` (`min,max`,
/// as MS-MPI reads it), else its program's registration on this host,
/// else none (the kernel picks).
pub fn ports_for_this_program() -> Result<Option<(u16, u16)>, String> {
    if let Some(v) = crate::env::var(crate::env::MPICH_PORT_RANGE) {
        return parse_port_range(&v).map(Some);
    }
    let Ok(Some(reg)) = Registry::load(&registry_path()) else { return Ok(None) };
    let Ok(exe) = std::fs::canonicalize("/proc/self/exe") else { return Ok(None) };
    Ok(reg.ports_of(&exe))
}

/// `min,max` (also `min-max` or `min:max`).
pub fn parse_port_range(v: &str) -> Result<(u16, u16), String> {
    let bad = || format!("MPICH_PORT_RANGE={v}: give the lowest and highest port, as min,max (e.g. 20000,20099)");
    let (a, b) = v.split_once([',', '-', ':']).ok_or_else(bad)?;
    let (a, b): (u16, u16) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// Holds the registry's lock (a file beside it) until dropped: hpcfwutil
/// run by clusrun on several virtual nodes of one host changes the rules
/// one at a time.
pub fn lock_registry(path: &Path) -> Result<std::fs::File, String> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = dir.join(format!(".{}.lock", path.file_name().and_then(|n| n.to_str()).unwrap_or("firewall.json")));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| format!("cannot open {}: {e}", lock.display()))?;
    crate::node::sys::lock(&f).map_err(|e| format!("cannot lock {}: {e}", lock.display()))?;
    Ok(f)
}

/// `nft`: on the PATH, else where Debian installs it (an administrator's
/// PATH has /usr/sbin, a user's often not).
fn nft_program() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nft")).find(|p| p.is_file()))
        .unwrap_or_default();
    on_path
        .or_else(|| ["/usr/sbin/nft", "/sbin/nft"].iter().map(PathBuf::from).find(|p| p.is_file()))
        .unwrap_or_else(|| PathBuf::from("nft"))
}

/// `nft` with `args` and `input` on its standard input; its output, or
/// what it said when it failed.
pub fn nft(args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut c = Command::new(nft_program());
    c.args(args).stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "nft is not installed (Debian: apt-get install nftables)".to_string(),
        _ => format!("cannot run nft: {e}"),
    })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(|e| format!("cannot write to nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("failed").trim();
        if first.contains("Operation not permitted") {
            return Err("changing the firewall needs root (CAP_NET_ADMIN): run hpcfwutil as root".into());
        }
        return Err(format!("nft: {first}"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The table as nft lists it, or `None` when there is none.
pub fn live_table() -> Result<Option<serde_json::Value>, String> {
    match nft(&["-j", "list", "table", "inet", TABLE], None) {
        Ok(out) => serde_json::from_str(&out).map(Some).map_err(|e| format!("nft -j answered what this program cannot read: {e}")),
        Err(e) if e.contains("No such file") || e.contains("does not exist") => Ok(None),
        Err(e) => Err(e),
    }
}

/// A set's elements in nft's JSON listing, as text (`20000-20099`, `eth1`).
pub fn set_elements(table: &serde_json::Value, set: &str) -> Vec<String> {
    let items = table["nftables"].as_array().cloned().unwrap_or_default();
    let Some(s) = items.iter().find_map(|i| i.get("set").filter(|s| s["name"] == set)) else { return Vec::new() };
    s["elem"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| match e {
                    serde_json::Value::Object(o) if o.contains_key("range") => {
                        format!("{}-{}", o["range"][0], o["range"][1])
                    }
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The comments of the input chain's rules, in order.
pub fn rule_comments(table: &serde_json::Value) -> Vec<String> {
    table["nftables"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i.get("rule"))
                .filter(|r| r["chain"] == "input")
                .filter_map(|r| r["comment"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_get_blocks_of_their_own_and_keep_them() {
        let mut r = Registry::default().reset("/usr/bin/mpiexec");
        assert_eq!(r.register("mpipingpong", "/usr/bin/mpipingpong").unwrap().ports, (20000, 20099));
        assert_eq!(r.register("app", "/opt/app").unwrap().ports, (20100, 20199));
        assert_eq!(r.register("mpipingpong", "/usr/bin/mpipingpong").unwrap().ports, (20000, 20099), "again: the same block");
        r.programs.retain(|p| p.name != "mpipingpong");
        assert_eq!(r.register("third", "/opt/third").unwrap().ports, (20000, 20099), "a freed block is taken again");
        assert_eq!(r.ports_of(Path::new("/opt/app")), Some((20100, 20199)));
        assert_eq!(r.ports_of(Path::new("/opt/other")), None);
    }

    #[test]
    fn the_script_replaces_the_table_and_names_only_it() {
        let mut r = Registry::default().reset("/usr/bin/mpiexec");
        r.register("mpipingpong", "/usr/bin/mpipingpong").unwrap();
        let s = r.script(&["eth1".into()], (32768, 60999));
        assert!(s.starts_with("table inet hpcpack\ndelete table inet hpcpack\ntable inet hpcpack {"), "{s}");
        assert!(s.contains("elements = { 19900-19999, 20000-20099 }"), "{s}");
        assert!(s.contains("elements = { \"eth1\" }"), "{s}");
        assert!(s.contains("tcp dport 32768-60999 ct state new drop"), "{s}");
        assert!(s.lines().filter(|l| l.contains("table ")).all(|l| l.contains("inet hpcpack")), "{s}");
    }

    #[test]
    fn excluded_subnets_take_their_interfaces_out() {
        let r = Registry { interfaces: vec!["eth0".into(), "eth1".into()], exclusions: vec!["10.0.0.0/255.255.255.0".into()], ..Default::default() };
        let addrs = vec![("eth0".to_string(), "10.0.0.5".parse().unwrap()), ("eth1".to_string(), "10.9.0.5".parse().unwrap())];
        assert_eq!(r.effective_interfaces(&addrs), ["eth1"]);
    }

    #[test]
    fn port_ranges_read_as_ms_mpi_writes_them() {
        assert_eq!(parse_port_range("20000,20099"), Ok((20000, 20099)));
        assert_eq!(parse_port_range("20000-20099"), Ok((20000, 20099)));
        assert!(parse_port_range("20099,20000").is_err());
        assert!(parse_port_range("x").unwrap_err().contains("min,max"));
    }
}
