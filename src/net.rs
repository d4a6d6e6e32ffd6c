//! TCP listeners with a deep accept queue.
//!
//! `std`'s `TcpListener::bind` asks for a backlog of 128. Every service
//! here is connected to by many processes at once: each rank of a job to
//! mpiexec's PMI listener, mpiexec to every node agent's launch service,
//! and, with `MSMPI_PRECONNECT`, the higher ranks to each rank's sockets
//! channel. Past 128 waiting connections Linux drops the next SYNs and the
//! callers retry after 1, 3, 7 s…, so a job of a few hundred ranks would
//! start seconds late. [`bind`] asks for [`BACKLOG`] instead (the kernel
//! caps it at `net.core.somaxconn`, 4096 by default).

use std::io;
use std::net::{SocketAddr, TcpListener};

/// The accept queue asked for.
pub const BACKLOG: i32 = 4096;

/// `TcpListener::bind` with a backlog of [`BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    // listen(2) again on a listening socket sets its backlog.
    socket2::SockRef::from(&listener).listen(BACKLOG)?;
    Ok(listener)
}

/// Every up interface's IPv4 addresses, with the interface's name, in the
/// order the system lists them (loopback included).
pub fn ipv4_addresses() -> Vec<(String, std::net::Ipv4Addr)> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.ip() {
            std::net::IpAddr::V4(ip) => Some((i.name, ip)),
            std::net::IpAddr::V6(_) => None,
        })
        .collect()
}

/// [`bind`] on `ip` at a port within `range` (tried from a random one on,
/// so ranks starting together rarely collide), or any port without one.
pub fn bind_in(ip: std::net::IpAddr, range: Option<(u16, u16)>) -> io::Result<TcpListener> {
    let Some((lo, hi)) = range else { return bind(SocketAddr::new(ip, 0)) };
    let span = u32::from(hi - lo) + 1;
    let start = std::process::id() % span;
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no port");
    for k in 0..span {
        let port = lo + ((start + k) % span) as u16;
        match bind(SocketAddr::new(ip, port)) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(last.kind(), format!("every port of {lo}-{hi} is in use")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpStream};
    use std::time::Duration;

    /// Connects `n` clients to a listener that accepts none of them; how
    /// many got through within 300 ms each.
    fn queued(listener: &TcpListener, n: usize) -> usize {
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        for _ in 0..n {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
        held.len()
    }

    #[test]
    fn three_hundred_callers_queue_where_std_stops_near_128() {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let ours = bind(any).unwrap();
        let cap = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(4096);
        let got = queued(&ours, 300);
        assert!(got >= 300.min(cap), "queued {got} (net.core.somaxconn {cap})");
        // The control: std's own backlog is what makes the difference.
        let std_listener = TcpListener::bind(any).unwrap();
        let got = queued(&std_listener, 300);
        assert!(got < 300, "std's listener queued all {got}");
    }
}
