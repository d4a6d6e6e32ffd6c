//! Which channel each pair of ranks uses, decided as MS-MPI does, and the
//! settings that steer it. Pure: the environment comes in as a lookup
//! function, so every rule is unit-tested.
//!
//! Each rank publishes a [`Card`]: its node, its host identity and an
//! endpoint per channel it offers. A channel is offered unless the rank's
//! environment turns it off (`MSMPI_DISABLE_SHM`, `MSMPI_DISABLE_SOCK`,
//! `MSMPI_DISABLE_ND`, each with its deprecated `MPICH_` alias, the
//! `MSMPI_` name winning). [`choose`] then picks, for a pair:
//!
//! 1. shared memory when both ranks are on one host and both offer it;
//! 2. Network Direct (RDMA verbs) when both offer it (the verbs transport,
//!    [`super::verbs`]);
//! 3. sockets (TCP) when both offer it;
//!
//! and otherwise fails with [`NoPath`], whose message says for each channel
//! why it could not be used. There is never a silent fallback: with
//! `MSMPI_DISABLE_SOCK=1` and no other channel the pair fails.
//!
//! "One host" means the same kernel and process namespace (boot id and pid
//! namespace, see [`host_identity`]): the embedded cluster's virtual nodes
//! are different nodes on one host, so their ranks use shared memory, as
//! two ranks MS-MPI places on one Windows host do.
//!
//! [`render_table`] prints MS-MPI's "MPI Connectivity Table" (format taken
//! from MS-MPI's `mpi_conntbl.cpp`): rank 0 prints it when the ranks
//! finalize and `MSMPI_CONNECTIVITY_TABLE=1`.

use std::fmt;
use std::net::Ipv4Addr;

use thiserror::Error;

use crate::env;

/// A way between two ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Shm,
    Nd,
    Sock,
}

impl Channel {
    /// The character the connectivity table shows for a pair on it.
    pub fn indicator(self) -> char {
        match self {
            Channel::Shm => '+',
            Channel::Nd => '@',
            Channel::Sock => 'S',
        }
    }
}

/// The table's character for a pair that never connected.
pub const NOT_CONNECTED: char = '.';

/// A bad value in one of the variables this module reads.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingError {
    #[error(
        "{var}={value}: expected `all`, `*` or a rank range such as `0,2-3` (ranks below {size})"
    )]
    Preconnect {
        var: &'static str,
        value: String,
        size: usize,
    },
    #[error(
        "{var}={value}{from}: expected address/mask, such as 10.0.0.0/255.255.255.0 or 10.0.0.0/24"
    )]
    Netmask {
        var: &'static str,
        value: String,
        /// ` (from …)`: where the value came from, when known.
        from: String,
    },
}

/// Which ranks connect to every other rank during init.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Preconnect {
    /// Connections are made on first use (the default).
    Lazy,
    /// `all` or `*`.
    All,
    /// Inclusive rank ranges.
    Ranks(Vec<(usize, usize)>),
}

impl Preconnect {
    /// Parses `MSMPI_PRECONNECT`'s value for a job of `size` ranks.
    pub fn parse(value: &str, size: usize) -> Result<Preconnect, SettingError> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("all") || v == "*" {
            return Ok(Preconnect::All);
        }
        let bad = || SettingError::Preconnect {
            var: env::MSMPI_PRECONNECT,
            value: value.to_string(),
            size,
        };
        let mut ranges = Vec::new();
        for item in v.split(',') {
            let item = item.trim();
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            let a: usize = a.trim().parse().map_err(|_| bad())?;
            let b: usize = b.trim().parse().map_err(|_| bad())?;
            if a > b || b >= size {
                return Err(bad());
            }
            ranges.push((a, b));
        }
        Ok(Preconnect::Ranks(ranges))
    }

    fn has(&self, rank: usize) -> bool {
        match self {
            Preconnect::Lazy => false,
            Preconnect::All => true,
            Preconnect::Ranks(r) => r.iter().any(|&(a, b)| (a..=b).contains(&rank)),
        }
    }

    /// Whether the pair `a`–`b` is connected during init: when either of
    /// them is in the set ("each process in <range> will be connected to all
    /// other processes").
    pub fn pair(&self, a: usize, b: usize) -> bool {
        a != b && (self.has(a) || self.has(b))
    }
}

/// An IPv4 network from `MPICH_NETMASK` (`address/mask` or `address/bits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Netmask {
    pub network: Ipv4Addr,
    pub mask: Ipv4Addr,
}

impl Netmask {
    /// Parses `MPICH_NETMASK`'s value.
    pub fn parse(value: &str) -> Result<Netmask, SettingError> {
        Netmask::parse_var(env::MPICH_NETMASK, value)
    }

    /// Parses the value of `var` (`MPICH_NETMASK`, or `CCP_MPI_NETMASK`
    /// that mpiexec passes on as it): `a.b.c.d/m.m.m.m` with a mask of ones
    /// then zeros, or `a.b.c.d/bits` with 0 to 32 bits.
    pub fn parse_var(var: &'static str, value: &str) -> Result<Netmask, SettingError> {
        let bad = || SettingError::Netmask {
            var,
            value: value.to_string(),
            from: String::new(),
        };
        let (addr, mask) = value.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.trim().parse().map_err(|_| bad())?;
        let mask = mask.trim();
        let mask: Ipv4Addr = match mask.parse::<u8>() {
            Ok(bits) if bits <= 32 => {
                Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0))
            }
            Ok(_) => return Err(bad()),
            Err(_) => {
                let m: Ipv4Addr = mask.parse().map_err(|_| bad())?;
                let bits = u32::from(m);
                // A mask is ones then zeros.
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(bad());
                }
                m
            }
        };
        Ok(Netmask {
            network: Ipv4Addr::from(u32::from(addr) & u32::from(mask)),
            mask,
        })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & u32::from(self.mask) == u32::from(self.network)
    }
}

impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.mask)
    }
}

/// Where a rank's `MPICH_NETMASK` came from, for messages: mpiexec tells
/// its ranks in [`env::HPCPACK_NETMASK_ORIGIN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetmaskOrigin {
    /// mpiexec passed on the `CCP_MPI_NETMASK` cluster variable.
    Cluster,
    /// `mpiexec -env MPICH_NETMASK …`.
    Env,
    /// `mpiexec -genv MPICH_NETMASK …` (or `-genvlist MPICH_NETMASK`).
    Genv,
    /// The rank's environment otherwise (an exported variable, another
    /// launcher).
    Environment,
}

impl NetmaskOrigin {
    /// The value of [`env::HPCPACK_NETMASK_ORIGIN`].
    pub fn code(self) -> &'static str {
        match self {
            NetmaskOrigin::Cluster => "cluster",
            NetmaskOrigin::Env => "env",
            NetmaskOrigin::Genv => "genv",
            NetmaskOrigin::Environment => "",
        }
    }

    /// Reads [`env::HPCPACK_NETMASK_ORIGIN`]'s value; anything else is
    /// [`NetmaskOrigin::Environment`].
    pub fn from_code(code: &str) -> NetmaskOrigin {
        match code.trim() {
            "cluster" => NetmaskOrigin::Cluster,
            "env" => NetmaskOrigin::Env,
            "genv" => NetmaskOrigin::Genv,
            _ => NetmaskOrigin::Environment,
        }
    }
}

impl fmt::Display for NetmaskOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetmaskOrigin::Cluster => "from the CCP_MPI_NETMASK cluster variable",
            NetmaskOrigin::Env => "from mpiexec -env MPICH_NETMASK",
            NetmaskOrigin::Genv => "from mpiexec -genv MPICH_NETMASK",
            NetmaskOrigin::Environment => "from the rank's environment",
        })
    }
}

/// Whether a switch variable is on: `1`, `true`, `yes`, `on` (any case).
/// The `MSMPI_` name wins over its deprecated `MPICH_` alias when set.
pub fn switch(get: &dyn Fn(&str) -> Option<String>, name: &str, alias: &str) -> bool {
    let v = get(name).or_else(|| get(alias));
    v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The channel settings of one rank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub shm: bool,
    pub sock: bool,
    pub nd: bool,
    pub preconnect: Preconnect,
    pub table: bool,
    pub netmask: Option<Netmask>,
    pub netmask_origin: NetmaskOrigin,
}

impl Settings {
    /// Reads the settings of a job of `size` ranks through `get`.
    pub fn from_env(
        get: &dyn Fn(&str) -> Option<String>,
        size: usize,
    ) -> Result<Settings, SettingError> {
        let preconnect = match get(env::MSMPI_PRECONNECT) {
            Some(v) if !v.trim().is_empty() => Preconnect::parse(&v, size)?,
            _ => Preconnect::Lazy,
        };
        let netmask_origin =
            NetmaskOrigin::from_code(&get(env::HPCPACK_NETMASK_ORIGIN).unwrap_or_default());
        let netmask = match get(env::MPICH_NETMASK) {
            Some(v) if !v.trim().is_empty() => Some(Netmask::parse(&v).map_err(|e| match e {
                SettingError::Netmask { var, value, .. } => SettingError::Netmask {
                    var,
                    value,
                    from: format!(" ({netmask_origin})"),
                },
                e => e,
            })?),
            _ => None,
        };
        Ok(Settings {
            shm: !switch(get, env::MSMPI_DISABLE_SHM, env::MPICH_DISABLE_SHM),
            sock: !switch(get, env::MSMPI_DISABLE_SOCK, env::MPICH_DISABLE_SOCK),
            nd: !switch(get, env::MSMPI_DISABLE_ND, env::MPICH_DISABLE_ND),
            preconnect,
            table: switch(
                get,
                env::MSMPI_CONNECTIVITY_TABLE,
                env::MPICH_CONNECTIVITY_TABLE,
            ),
            netmask,
            netmask_origin,
        })
    }
}

/// What a rank publishes about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// The node it runs on (for messages and the table).
    pub node: String,
    /// Its host identity ([`host_identity`]).
    pub host: String,
    /// Its shared-memory endpoint, unless disabled.
    pub shm: Option<String>,
    /// Its sockets endpoint, unless disabled.
    pub sock: Option<String>,
    /// Its Network Direct endpoint, when it has a usable device.
    pub nd: Option<String>,
    /// Why it offers no Network Direct endpoint.
    pub nd_missing: String,
    /// Why it offers no sockets endpoint (empty when it offers one).
    pub sock_missing: String,
    /// The CPUs it may run on (its affinity mask at init; empty: unknown).
    pub cpus: Vec<u32>,
}

const SEP: char = '|';
const NONE: &str = "-";

/// A reason as one card field: percent-escaped, since reasons name
/// variables (with `=`) and hold spaces.
fn escape_reason(why: &str) -> String {
    why.replace('%', "%25")
        .replace(' ', "%20")
        .replace('=', "%3D")
        .replace(SEP, "%7C")
}

fn unescape_reason(field: &str) -> String {
    field
        .replace("%20", " ")
        .replace("%3D", "=")
        .replace("%7C", "|")
        .replace("%25", "%")
}

/// CPUs as ranges, `0-3,8` (`-` for none), so a large mask stays short.
fn encode_cpus(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(match i == j {
            true => sorted[i].to_string(),
            false => format!("{}-{}", sorted[i], sorted[j]),
        });
        i = j + 1;
    }
    match parts.is_empty() {
        true => NONE.to_string(),
        false => parts.join(","),
    }
}

fn decode_cpus(field: &str) -> Option<Vec<u32>> {
    if field == NONE {
        return Some(Vec::new());
    }
    let mut cpus = Vec::new();
    for item in field.split(',') {
        let (a, b) = item.split_once('-').unwrap_or((item, item));
        let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
        if a > b {
            return None;
        }
        cpus.extend(a..=b);
    }
    Some(cpus)
}

impl Card {
    /// One PMI value (no spaces, no `=`).
    pub fn encode(&self) -> String {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| NONE.to_string());
        [
            self.node.clone(),
            self.host.clone(),
            opt(&self.shm),
            opt(&self.sock),
            opt(&self.nd),
            escape_reason(&self.nd_missing),
            escape_reason(&self.sock_missing),
            encode_cpus(&self.cpus),
        ]
        .join(&SEP.to_string())
    }

    pub fn decode(v: &str) -> Option<Card> {
        let f: Vec<&str> = v.split(SEP).collect();
        if f.len() != 8 {
            return None;
        }
        let opt = |s: &str| (s != NONE).then(|| s.to_string());
        Some(Card {
            node: f[0].to_string(),
            host: f[1].to_string(),
            shm: opt(f[2]),
            sock: opt(f[3]),
            nd: opt(f[4]),
            nd_missing: unescape_reason(f[5]),
            sock_missing: unescape_reason(f[6]),
            cpus: decode_cpus(f[7])?,
        })
    }
}

/// Why two ranks have no channel in common.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error(
    "no channel between rank {a} on {a_node} and rank {b} on {b_node}: {}",
    reasons.join("; ")
)]
pub struct NoPath {
    pub a: usize,
    pub a_node: String,
    pub b: usize,
    pub b_node: String,
    /// One per channel, in preference order.
    pub reasons: Vec<String>,
}

/// Picks the channel between rank `a` and rank `b` (see the module doc).
pub fn choose(a: usize, ca: &Card, b: usize, cb: &Card) -> Result<Channel, NoPath> {
    let same_host = same_kernel(&ca.host, &cb.host);
    let off = |what: &str, var: &str, ea: &Option<String>, eb: &Option<String>| -> String {
        let who: Vec<String> = [(a, ea), (b, eb)]
            .iter()
            .filter(|(_, e)| e.is_none())
            .map(|(r, _)| format!("rank {r}"))
            .collect();
        format!("{what} disabled by {var}=1 on {}", who.join(" and "))
    };
    let mut reasons = Vec::new();
    if same_host {
        if ca.shm.is_some() && cb.shm.is_some() {
            return Ok(Channel::Shm);
        }
        reasons.push(off(
            "shared memory",
            env::MSMPI_DISABLE_SHM,
            &ca.shm,
            &cb.shm,
        ));
    } else {
        reasons.push("shared memory: the ranks are on different hosts".to_string());
    }
    if ca.nd.is_some() && cb.nd.is_some() {
        return Ok(Channel::Nd);
    }
    let mut nd = Vec::new();
    for (r, c) in [(a, ca), (b, cb)] {
        if c.nd.is_none() {
            nd.push(format!("rank {r}: {}", c.nd_missing));
        }
    }
    reasons.push(format!("network direct: {}", nd.join(", ")));
    if ca.sock.is_some() && cb.sock.is_some() {
        return Ok(Channel::Sock);
    }
    let disabled = |c: &Card| {
        c.sock.is_some() || c.sock_missing.is_empty() || c.sock_missing.starts_with("disabled by")
    };
    if disabled(ca) && disabled(cb) {
        reasons.push(off("sockets", env::MSMPI_DISABLE_SOCK, &ca.sock, &cb.sock));
    } else {
        // A rank without a matching interface for MPICH_NETMASK says so,
        // with where the netmask came from.
        let why: Vec<String> = match (&ca.sock, &cb.sock) {
            (None, None) if ca.sock_missing == cb.sock_missing => {
                vec![format!("rank {a} and rank {b}: {}", ca.sock_missing)]
            }
            _ => [(a, ca), (b, cb)]
                .iter()
                .filter(|(_, c)| c.sock.is_none())
                .map(|(r, c)| format!("rank {r}: {}", c.sock_missing))
                .collect(),
        };
        reasons.push(format!("sockets: {}", why.join(", ")));
    }
    Err(NoPath {
        a,
        a_node: ca.node.clone(),
        b,
        b_node: cb.node.clone(),
        reasons,
    })
}

/// This host's identity: the host name (for readability), the boot id and
/// the pid namespace (ranks in one pid namespace of one running kernel can
/// map each other's memory: [`same_kernel`]), and the network namespace
/// (ranks in one can reach each other over loopback).
pub fn host_identity(hostname: &str, boot_id: &str, pid_ns: &str, net_ns: &str) -> String {
    let clean = |s: &str| {
        s.trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':'))
            .collect::<String>()
    };
    format!(
        "{}/{}/{}/{}",
        clean(hostname),
        clean(boot_id),
        clean(pid_ns),
        clean(net_ns)
    )
}

/// Whether two [`host_identity`] values are one kernel and pid namespace
/// (shared memory works between them), whatever their network namespaces.
pub fn same_kernel(a: &str, b: &str) -> bool {
    let head = |s: &str| s.rsplit_once('/').map_or(s.to_string(), |(h, _)| h.to_string());
    head(a) == head(b)
}

/// Whether two [`host_identity`] values are one running kernel (the same
/// boot id), whatever their namespaces: their CPU numbers then name the same
/// CPUs. Without a boot id, as [`same_kernel`].
pub fn same_machine(a: &str, b: &str) -> bool {
    let boot = |s: &str| {
        s.split('/')
            .nth(1)
            .filter(|b| !b.is_empty())
            .map(str::to_string)
    };
    match (boot(a), boot(b)) {
        (Some(x), Some(y)) => x == y,
        _ => same_kernel(a, b),
    }
}

/// One rank's row of the connectivity table: its node and one indicator per
/// target rank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub node: String,
    pub indicators: Vec<char>,
}

/// MS-MPI's "MPI Connectivity Table" for `rows` (one per rank, in rank
/// order). A pair that one side reports connected and the other not is
/// shown as not connected on both (MS-MPI's asymmetry rule).
pub fn render_table(rows: &[Row]) -> String {
    use fmt::Write;
    let size = rows.len();
    let mut rows: Vec<Row> = rows.to_vec();
    for src in 0..size {
        for dest in src + 1..size {
            let (s, d) = (ind(&rows[src], dest), ind(&rows[dest], src));
            if s == d {
                continue;
            }
            if s == NOT_CONNECTED {
                rows[dest].indicators[src] = NOT_CONNECTED;
            } else if d == NOT_CONNECTED {
                rows[src].indicators[dest] = NOT_CONNECTED;
            } else {
                break;
            }
        }
    }
    let digits = (size.max(2) - 1).to_string().len();
    let line = "-".repeat(60);
    let mut o = String::new();
    let _ = write!(
        o,
        "\n\nMPI Connectivity Table\n\nRank:Node Listing\n{line}\n"
    );
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(o, "{i:>digits$}: ({})", r.node);
    }
    let _ = write!(
        o,
        "\nConnectivity\n{line}\nSourceRank:[Indicators for all TargetRanks]\n  Where {}=Shared Memory, {}=Network Direct, {}=Socket, {}=Not Connected\n\n",
        Channel::Shm.indicator(),
        Channel::Nd.indicator(),
        Channel::Sock.indicator(),
        NOT_CONNECTED
    );
    for i in (0..digits).rev() {
        o.push_str(&" ".repeat(digits + 1));
        let divisor = 10usize.pow(i as u32);
        for j in 0..size {
            if j % 8 == 0 && (j >= divisor || divisor == 1) {
                let _ = write!(o, "{}", (j / divisor) % 10);
            } else {
                o.push(' ');
            }
        }
        o.push('\n');
    }
    let (mut shm, mut nd, mut sock) = (0, 0, 0);
    for (i, r) in rows.iter().enumerate() {
        let s: String = (0..size).map(|j| ind(r, j)).collect();
        let _ = writeln!(o, "{i:>digits$}:{s}");
        for c in s.chars() {
            match c {
                '+' => shm += 1,
                '@' => nd += 1,
                'S' => sock += 1,
                _ => {}
            }
        }
    }
    let (shm, nd, sock) = (shm / 2, nd / 2, sock / 2);
    let _ = write!(
        o,
        "\nSummary\n{line}\nTotal Ranks:          {size}\nTotal Connections:    {}\n  Shared Memory:      {shm}\n  Network Direct:     {nd}\n  Socket:             {sock}\n",
        shm + nd + sock
    );
    o
}

fn ind(r: &Row, j: usize) -> char {
    r.indicators.get(j).copied().unwrap_or(NOT_CONNECTED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn getter(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn card(host: &str, shm: bool, sock: bool) -> Card {
        Card {
            node: format!("node-{host}"),
            host: host.to_string(),
            shm: shm.then(|| "shm-ep".to_string()),
            sock: sock.then(|| "127.0.0.1:5000".to_string()),
            nd: None,
            nd_missing: "no verbs transport in this build".to_string(),
            sock_missing: match sock {
                true => String::new(),
                false => "disabled by MSMPI_DISABLE_SOCK=1".to_string(),
            },
            cpus: vec![0, 1, 2, 3, 8],
        }
    }

    #[test]
    fn preconnect_values() {
        assert_eq!(Preconnect::parse("all", 4), Ok(Preconnect::All));
        assert_eq!(Preconnect::parse("ALL", 4), Ok(Preconnect::All));
        assert_eq!(Preconnect::parse("*", 4), Ok(Preconnect::All));
        let p = Preconnect::parse("0,2-3", 5).unwrap();
        assert_eq!(p, Preconnect::Ranks(vec![(0, 0), (2, 3)]));
        assert!(p.pair(0, 1) && p.pair(1, 2) && p.pair(3, 4));
        assert!(!p.pair(1, 4) && !p.pair(0, 0));
        for bad in ["", "x", "3-1", "0,9", "1-", "-"] {
            assert!(Preconnect::parse(bad, 4).is_err(), "{bad}");
        }
        let msg = Preconnect::parse("0,9", 4).unwrap_err().to_string();
        assert!(msg.starts_with("MSMPI_PRECONNECT=0,9: expected"), "{msg}");
        assert!(!Preconnect::Lazy.pair(0, 1));
    }

    #[test]
    fn netmask_forms() {
        let a = Netmask::parse("10.0.0.5/255.255.255.0").unwrap();
        let b = Netmask::parse("10.0.0.5/24").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "10.0.0.0/255.255.255.0");
        assert!(a.contains("10.0.0.77".parse().unwrap()));
        assert!(!a.contains("10.0.1.1".parse().unwrap()));
        let s = Netmask::parse("172.16.0.0/255.255.0.0").unwrap();
        assert!(s.contains("172.16.9.1".parse().unwrap()));
        assert!(
            Netmask::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/255.0.255.0",
            "x/24",
            "10.0.0.0/x",
        ] {
            assert!(Netmask::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_from_env_with_aliases() {
        let s = Settings::from_env(&getter(&[]), 2).unwrap();
        assert!(s.shm && s.sock && s.nd && !s.table);
        assert_eq!(s.preconnect, Preconnect::Lazy);
        let s = Settings::from_env(
            &getter(&[
                ("MSMPI_DISABLE_SHM", "1"),
                ("MPICH_DISABLE_SOCK", "true"),
                ("MSMPI_CONNECTIVITY_TABLE", "1"),
                ("MSMPI_PRECONNECT", "all"),
                ("MPICH_NETMASK", "127.0.0.0/8"),
            ]),
            2,
        )
        .unwrap();
        assert!(!s.shm && !s.sock && s.nd && s.table);
        assert_eq!(s.preconnect, Preconnect::All);
        assert!(s.netmask.is_some());
        // The MSMPI_ name wins over the alias.
        let s = Settings::from_env(
            &getter(&[("MSMPI_DISABLE_SHM", "0"), ("MPICH_DISABLE_SHM", "1")]),
            2,
        )
        .unwrap();
        assert!(s.shm);
        assert!(Settings::from_env(&getter(&[("MSMPI_PRECONNECT", "5")]), 2).is_err());
        assert!(Settings::from_env(&getter(&[("MPICH_NETMASK", "bad")]), 2).is_err());
    }

    #[test]
    fn choose_prefers_shm_then_sockets() {
        let h1 = card("h1", true, true);
        let h1b = card("h1", true, true);
        let h2 = card("h2", true, true);
        assert_eq!(choose(0, &h1, 1, &h1b), Ok(Channel::Shm));
        assert_eq!(choose(0, &h1, 1, &h2), Ok(Channel::Sock));
        // Shared memory off on one side: sockets, even on one host.
        assert_eq!(
            choose(0, &h1, 1, &card("h1", false, true)),
            Ok(Channel::Sock)
        );
        let mut nd = card("h2", true, true);
        nd.nd = Some("verbs".into());
        let mut nd1 = h1.clone();
        nd1.nd = Some("verbs".into());
        assert_eq!(choose(0, &nd1, 1, &nd), Ok(Channel::Nd));
    }

    #[test]
    fn no_path_names_every_reason() {
        let e = choose(0, &card("h1", true, false), 1, &card("h2", true, false)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no channel between rank 0 on node-h1 and rank 1 on node-h2: shared memory: the ranks are on different hosts; \
             network direct: rank 0: no verbs transport in this build, rank 1: no verbs transport in this build; \
             sockets disabled by MSMPI_DISABLE_SOCK=1 on rank 0 and rank 1"
        );
        let e = choose(2, &card("h1", false, false), 3, &card("h1", true, true)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("shared memory disabled by MSMPI_DISABLE_SHM=1 on rank 2;"),
            "{msg}"
        );
        assert!(
            msg.contains("sockets disabled by MSMPI_DISABLE_SOCK=1 on rank 2"),
            "{msg}"
        );
    }

    #[test]
    fn network_namespaces_do_not_split_a_host_for_shared_memory() {
        let a = host_identity("vm", "b00t", "pid:[1]", "net:[7]");
        let b = host_identity("vm", "b00t", "pid:[1]", "net:[8]");
        let c = host_identity("vm", "b00t", "pid:[2]", "net:[7]");
        assert!(same_kernel(&a, &b) && a != b);
        assert!(!same_kernel(&a, &c));
        let mut ca = card("x", true, true);
        let mut cb = card("x", true, true);
        (ca.host, cb.host) = (a, b);
        assert_eq!(choose(0, &ca, 1, &cb), Ok(Channel::Shm));
    }

    #[test]
    fn card_round_trips() {
        let c = card("h1/boot/ns", true, false);
        let back = Card::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        assert!(!c.encode().contains(' '));
        assert_eq!(Card::decode("a|b"), None);
        // A reason naming variables survives as written.
        let mut c = c;
        c.nd_missing = "disabled by MSMPI_DISABLE_ND=1 | 100% sure".to_string();
        let e = c.encode();
        assert!(
            !e.contains([' ', '=']) && e.matches('|').count() == 7,
            "{e}"
        );
        assert!(e.ends_with("|0-3,8"), "{e}");
        assert_eq!(Card::decode(&e).unwrap(), c);
        c.cpus.clear();
        assert_eq!(Card::decode(&c.encode()).unwrap(), c);
        assert_eq!(decode_cpus("3-1"), None);
    }

    #[test]
    fn a_netmask_without_interface_is_named_only_where_sockets_are_needed() {
        let why = "MPICH_NETMASK 203.0.113.0/255.255.255.0, from the CCP_MPI_NETMASK cluster \
                   variable, matches no interface of host h1 (its IPv4 addresses: 127.0.0.1)";
        let mut a = card("h1", true, false);
        a.sock_missing = why.to_string();
        let mut b = a.clone();
        b.sock_missing = why.replace("h1", "h2");
        // One host: shared memory, the netmask does not matter.
        assert_eq!(choose(0, &a, 1, &b), Ok(Channel::Shm));
        // Two hosts: the pair needs sockets and says why each rank has none.
        b.host = "h2".into();
        let msg = choose(0, &a, 1, &b).unwrap_err().to_string();
        assert!(
            msg.ends_with(&format!(
                "; sockets: rank 0: {why}, rank 1: {}",
                b.sock_missing
            )),
            "{msg}"
        );
        // The same reason on both is said once.
        let mut same = a.clone();
        same.host = "h2".into();
        let msg = choose(0, &a, 1, &same).unwrap_err().to_string();
        assert!(msg.contains("sockets: rank 0 and rank 1: MPICH_NETMASK 203.0.113.0/255.255.255.0, from the CCP_MPI_NETMASK cluster variable, matches no interface of host h1 ("), "{msg}");
        // Mixed: a rank whose sockets are disabled says that.
        let c = card("h3", true, false);
        let msg = choose(0, &a, 2, &c).unwrap_err().to_string();
        assert!(
            msg.ends_with("rank 2: disabled by MSMPI_DISABLE_SOCK=1"),
            "{msg}"
        );
    }

    #[test]
    fn netmask_origin_round_trips_and_names_the_source() {
        for o in [
            NetmaskOrigin::Cluster,
            NetmaskOrigin::Env,
            NetmaskOrigin::Genv,
            NetmaskOrigin::Environment,
        ] {
            assert_eq!(NetmaskOrigin::from_code(o.code()), o);
        }
        assert_eq!(NetmaskOrigin::from_code("junk"), NetmaskOrigin::Environment);
        let e = Settings::from_env(
            &getter(&[
                ("MPICH_NETMASK", "bogus"),
                ("HPCPACK_NETMASK_ORIGIN", "cluster"),
            ]),
            2,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "MPICH_NETMASK=bogus (from the CCP_MPI_NETMASK cluster variable): expected \
             address/mask, such as 10.0.0.0/255.255.255.0 or 10.0.0.0/24"
        );
        let e = Netmask::parse_var("CCP_MPI_NETMASK", "10.0.0.0/33").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("CCP_MPI_NETMASK=10.0.0.0/33: expected"),
            "{e}"
        );
    }

    #[test]
    fn same_machine_is_the_boot_id() {
        let a = host_identity("vm", "b00t", "pid:[1]", "net:[7]");
        let b = host_identity("other", "b00t", "pid:[2]", "net:[8]");
        let c = host_identity("vm", "b00t2", "pid:[1]", "net:[7]");
        assert!(same_machine(&a, &b) && !same_machine(&a, &c));
        let d = host_identity("vm", "", "pid:[1]", "net:[7]");
        assert!(same_machine(&d, &d) && !same_machine(&d, &a));
    }

    #[test]
    fn table_matches_ms_mpi_layout() {
        let rows = vec![
            Row {
                node: "n1".into(),
                indicators: vec!['.', '+', 'S'],
            },
            Row {
                node: "n2".into(),
                indicators: vec!['+', '.', '.'],
            },
            Row {
                node: "n3".into(),
                indicators: vec!['S', 'S', '.'],
            },
        ];
        let expected = "\n\nMPI Connectivity Table\n\nRank:Node Listing\n\
------------------------------------------------------------\n\
0: (n1)\n1: (n2)\n2: (n3)\n\nConnectivity\n\
------------------------------------------------------------\n\
SourceRank:[Indicators for all TargetRanks]\n  Where +=Shared Memory, @=Network Direct, S=Socket, .=Not Connected\n\n\
\x20 0  \n\
0:.+S\n1:+..\n2:S..\n\nSummary\n\
------------------------------------------------------------\n\
Total Ranks:          3\nTotal Connections:    2\n  Shared Memory:      1\n  Network Direct:     0\n  Socket:             1\n";
        assert_eq!(render_table(&rows), expected);
    }

    #[test]
    fn table_header_for_two_digit_ranks() {
        let rows: Vec<Row> = (0..17)
            .map(|i| Row {
                node: format!("n{i}"),
                indicators: vec!['+'; 17],
            })
            .collect();
        let t = render_table(&rows);
        assert!(t.contains(" 0: (n0)\n"), "{t}");
        assert!(t.contains("16: (n16)\n"), "{t}");
        // Tens row shows 1 above column 16 only; units row 0, 8 and 6.
        assert!(t.contains(&format!("   {}1\n", " ".repeat(16))), "{t}");
        assert!(
            t.contains(&format!("   0{}8{}6\n", " ".repeat(7), " ".repeat(7))),
            "{t}"
        );
    }
}
