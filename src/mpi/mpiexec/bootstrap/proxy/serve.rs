//! The proxy's side: mpiexec run by a launcher on a remote host
//! ([`PROXY_ARG`] under srun, [`PROXY_STDIN_ARG`] under ssh). It reads its
//! [`super::Settings`], connects back to mpiexec once per rank of its host,
//! runs each rank mpiexec asks for, and ends when they all have.
//!
//! Under ssh the settings come on standard input, which then stays open
//! for as long as mpiexec's ssh runs: its end (ssh or its session gone)
//! closes the rank connections, so every rank is killed, as when mpiexec's
//! side of them closes.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream};
use std::process::ExitCode;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::HELLO;
use crate::env;
use crate::node::protocol::Frame;
use crate::node::sys;

/// argv\[1\] of mpiexec run as a proxy that finds its settings in its
/// environment (started by srun; never in `-help`).
pub const PROXY_ARG: &str = "--hpcpack-proxy";

/// argv\[1\] of mpiexec run as a proxy that reads its settings from its
/// standard input and ends at its end (started by ssh; never in `-help`).
pub const PROXY_STDIN_ARG: &str = "--hpcpack-proxy-stdin";

/// How long a proxy tries one of mpiexec's addresses.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a proxy whose standard input ended waits for its killed ranks
/// before it exits anyway (they die with it).
const STDIN_END_GRACE: Duration = Duration::from_secs(5);

/// Where a proxy finds its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxySource {
    Environment,
    Stdin,
}

impl ProxySource {
    /// The proxy mode that `arg` (argv\[1\]) asks for, if any.
    pub fn of(arg: &OsStr) -> Option<ProxySource> {
        if arg == PROXY_ARG {
            Some(ProxySource::Environment)
        } else if arg == PROXY_STDIN_ARG {
            Some(ProxySource::Stdin)
        } else {
            None
        }
    }
}

/// mpiexec run as a proxy: connects back once per rank of this host, runs
/// each rank mpiexec asks for, and ends when they all have.
pub fn proxy_main(source: ProxySource) -> ExitCode {
    let settings = match source {
        ProxySource::Environment => Ok(None),
        ProxySource::Stdin => read_settings(&mut std::io::stdin().lock()).map(Some),
    };
    let var = |name: &str| match &settings {
        Ok(Some(s)) => s.get(name).cloned(),
        _ => env::var(name),
    };
    let host = var(env::HPCPACK_PROXY_HOST)
        .or_else(|| env::var(env::SLURMD_NODENAME))
        .unwrap_or_else(sys::hostname);
    let result = match &settings {
        Ok(_) => proxy(&host, &var, source == ProxySource::Stdin),
        Err(e) => Err(e.clone()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpiexec: proxy on {host}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `NAME=value` lines before the first empty one.
fn read_settings(input: &mut impl BufRead) -> Result<HashMap<String, String>, String> {
    let mut settings = HashMap::new();
    loop {
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) => return Err("its standard input ended before its settings did".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("cannot read its settings: {e}")),
        }
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            return Ok(settings);
        }
        if let Some((name, value)) = line.split_once('=') {
            settings.insert(name.to_string(), value.to_string());
        }
    }
}

fn proxy(host: &str, var: &dyn Fn(&str) -> Option<String>, watch_stdin: bool) -> Result<(), String> {
    let need = |name: &str| var(name).ok_or_else(|| format!("{name} is not set"));
    let secret = need(env::HPCPACK_PROXY_SECRET)?;
    let ranks = ranks_of(&need(env::HPCPACK_PROXY_RANKS)?, host);
    if ranks.is_empty() {
        return Err(format!("{} gives no rank to this host", env::HPCPACK_PROXY_RANKS));
    }
    let addrs: Vec<SocketAddrV4> = need(env::HPCPACK_PROXY_ADDRS)?
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    let addrs = order_addrs(addrs, &own_ipv4());
    let cpus: Vec<u32> = var(env::HPCPACK_PROXY_CPUS)
        .unwrap_or_default()
        .split(',')
        .filter_map(|c| c.parse().ok())
        .collect();
    let allowed = sys::affinity().unwrap_or_default();
    // Every rank connects before any is asked for: mpiexec sends requests
    // once all proxies are in.
    let mut conns = Vec::with_capacity(ranks.len());
    for rank in ranks {
        let mut conn = connect(&addrs)?;
        conn.write_all(format!("{HELLO} {secret} {host} {rank}\n").as_bytes())
            .map_err(|e| format!("cannot reach mpiexec: {e}"))?;
        let _ = conn.set_nodelay(true);
        conns.push(conn);
    }
    if watch_stdin {
        let ours = conns
            .iter()
            .map(TcpStream::try_clone)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot use a connection to mpiexec: {e}"))?;
        thread::spawn(move || end_with_stdin(&ours));
    }
    let uid = sys::uid();
    let ranks: Vec<JoinHandle<()>> = conns
        .into_iter()
        .map(|mut conn| {
            let (cpus, allowed) = (cpus.clone(), allowed.clone());
            thread::spawn(move || {
                // mpiexec gone or its launch failed: nothing to run.
                let Ok(Frame::Request(mut req)) = Frame::read_from(&mut conn) else {
                    return;
                };
                req.cpu = req.cpu.map(|c| proxy_cpu(c, &cpus, &allowed));
                // Refusals go back to mpiexec, which prints them.
                crate::node::launch::serve_rank(conn, req, uid, &|_| {});
            })
        })
        .collect();
    for r in ranks {
        let _ = r.join();
    }
    Ok(())
}

/// Waits for the end of standard input (ssh gone), then closes every
/// connection to mpiexec, which kills each rank as mpiexec's closing would,
/// and exits the proxy if its ranks take too long to go.
fn end_with_stdin(conns: &[TcpStream]) {
    let mut buf = [0u8; 256];
    let stdin = std::io::stdin();
    loop {
        match stdin.lock().read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    for c in conns {
        let _ = c.shutdown(Shutdown::Both);
    }
    thread::sleep(STDIN_END_GRACE);
    std::process::exit(1);
}

/// The ranks `HPCPACK_PROXY_RANKS` gives `host`.
pub(super) fn ranks_of(v: &str, host: &str) -> Vec<u32> {
    v.split_whitespace()
        .filter_map(|item| item.split_once('='))
        .filter(|(h, _)| h.eq_ignore_ascii_case(host))
        .flat_map(|(_, ranks)| ranks.split(',').filter_map(|r| r.parse().ok()))
        .collect()
}

/// This host's IPv4 addresses, with their netmasks, in the system's order.
pub(super) fn own_ipv4() -> Vec<(Ipv4Addr, Ipv4Addr)> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(a) => Some((a.ip, a.netmask)),
            if_addrs::IfAddr::V6(_) => None,
        })
        .collect()
}

/// The CPU a proxy binds a rank to when mpiexec asked for `cpu`: itself
/// when the proxy may use it, else the proxy's CPU at the position `cpu`
/// has among mpiexec's `cpus` (its number when it is not among them).
fn proxy_cpu(cpu: u32, cpus: &[u32], allowed: &[u32]) -> u32 {
    if allowed.is_empty() || allowed.contains(&cpu) {
        return cpu;
    }
    let at = cpus.iter().position(|&c| c == cpu).unwrap_or(cpu as usize);
    allowed[at % allowed.len()]
}

/// mpiexec's addresses, those on a network of this host's first.
fn order_addrs(mut addrs: Vec<SocketAddrV4>, own: &[(Ipv4Addr, Ipv4Addr)]) -> Vec<SocketAddrV4> {
    let near = |a: &SocketAddrV4| {
        own.iter().any(|(ip, mask)| {
            let m = u32::from(*mask);
            !ip.is_loopback() && u32::from(*ip) & m == u32::from(*a.ip()) & m
        })
    };
    // Stable: the near ones first, each group in mpiexec's order.
    addrs.sort_by_key(|a| !near(a));
    addrs
}

/// A connection to mpiexec at the first of `addrs` that answers.
fn connect(addrs: &[SocketAddrV4]) -> Result<TcpStream, String> {
    let mut tried = Vec::new();
    for a in addrs {
        match TcpStream::connect_timeout(&SocketAddr::V4(*a), CONNECT_TIMEOUT) {
            Ok(c) => return Ok(c),
            Err(e) => tried.push(format!("{a}: {e}")),
        }
    }
    Err(format!("cannot reach mpiexec ({})", if tried.is_empty() {
        format!("{} names no address", env::HPCPACK_PROXY_ADDRS)
    } else {
        tried.join("; ")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_up_to_the_empty_line() {
        let mut input = &b"A=1\nB=x=y\n\nC=3\n"[..];
        let s = read_settings(&mut input).unwrap();
        assert_eq!(s.get("A").map(String::as_str), Some("1"));
        assert_eq!(s.get("B").map(String::as_str), Some("x=y"));
        assert_eq!(s.get("C"), None);
        // What follows is left for the watch of the input's end.
        assert_eq!(input, b"C=3\n");
        let e = read_settings(&mut &b"A=1\n"[..]).unwrap_err();
        assert!(e.contains("ended before its settings did"), "{e}");
    }

    #[test]
    fn the_proxy_mode_is_argv_1() {
        assert_eq!(ProxySource::of(OsStr::new(PROXY_ARG)), Some(ProxySource::Environment));
        assert_eq!(ProxySource::of(OsStr::new(PROXY_STDIN_ARG)), Some(ProxySource::Stdin));
        assert_eq!(ProxySource::of(OsStr::new("-n")), None);
    }

    #[test]
    fn a_cpu_the_proxy_may_not_use_maps_by_position() {
        // Allowed: kept.
        assert_eq!(proxy_cpu(1, &[0, 1], &[0, 1, 2, 3]), 1);
        // mpiexec's second CPU on a proxy limited to 4 and 5: the second.
        assert_eq!(proxy_cpu(3, &[2, 3], &[4, 5]), 5);
        // Past the proxy's CPUs: wraps around.
        assert_eq!(proxy_cpu(2, &[0, 1, 2], &[6, 7]), 6);
        // No list: the CPU's number is its position.
        assert_eq!(proxy_cpu(1, &[], &[8, 9]), 9);
        // The proxy's CPUs unknown: as asked.
        assert_eq!(proxy_cpu(5, &[5], &[]), 5);
    }

    #[test]
    fn addresses_on_a_network_of_this_host_come_first() {
        let a = |s: &str| s.parse::<SocketAddrV4>().unwrap();
        let own = [
            (Ipv4Addr::LOCALHOST, Ipv4Addr::new(255, 0, 0, 0)),
            (Ipv4Addr::new(10, 88, 0, 11), Ipv4Addr::new(255, 255, 255, 0)),
        ];
        let ordered = order_addrs(
            vec![a("192.0.2.2:7"), a("10.88.0.1:7"), a("127.0.0.1:7"), a("10.88.0.9:7")],
            &own,
        );
        assert_eq!(
            ordered,
            [a("10.88.0.1:7"), a("10.88.0.9:7"), a("192.0.2.2:7"), a("127.0.0.1:7")]
        );
    }
}
