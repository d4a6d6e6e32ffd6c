//! What a rank publishes about its verbs side, and which device and port it
//! uses. Pure, so the rules are tested without a device.
//!
//! The endpoint is one token in the rank's card (no spaces, `=` or `|`):
//! `v2,<lid>,<gid hex>,<mtu>,<host hash hex>,<pid>`. The queue pair
//! numbers, one per rank of the job, would not fit one PMI value (1024
//! bytes) beyond a few dozen ranks, so they go under keys of their own:
//! [`qpn_key`]`(rank, chunk)` holds rank `rank`'s numbers for the peers
//! `chunk * QPNS_PER_KEY ..` (hex, dot-separated; its own slot `0`). A
//! rank reads, of each peer, the one key that holds the number meant for
//! it ([`qpn_in`]). The host hash and pid let a peer on the same host
//! notice that this rank died.

use std::net::Ipv4Addr;

/// Queue pair numbers per PMI value: at most 7 characters each (24-bit
/// hex and a dot), 700 of the 1024 bytes a PMI line may have.
pub const QPNS_PER_KEY: usize = 100;

/// A rank's published verbs address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub lid: u16,
    pub gid: [u8; 16],
    /// `ibv_mtu` enum value (1 = 256 … 5 = 4096).
    pub mtu: u32,
    pub host: u64,
    pub pid: u32,
}

impl Endpoint {
    pub fn encode(&self) -> String {
        let gid: String = self.gid.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "v2,{},{gid},{},{:x},{}",
            self.lid, self.mtu, self.host, self.pid
        )
    }

    pub fn decode(s: &str) -> Option<Endpoint> {
        let f: Vec<&str> = s.split(',').collect();
        if f.len() != 6 || f[0] != "v2" || f[2].len() != 32 {
            return None;
        }
        let mut gid = [0u8; 16];
        for (i, g) in gid.iter_mut().enumerate() {
            *g = u8::from_str_radix(f[2].get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Endpoint {
            lid: f[1].parse().ok()?,
            gid,
            mtu: f[3].parse().ok()?,
            host: u64::from_str_radix(f[4], 16).ok()?,
            pid: f[5].parse().ok()?,
        })
    }
}

/// The PMI key under which `rank` publishes its queue pair numbers for
/// the peers of chunk `chunk`.
pub fn qpn_key(rank: usize, chunk: usize) -> String {
    format!("ndq-{rank}-{chunk}")
}

/// The chunk holding a rank's queue pair number for `peer`.
pub fn chunk_of(peer: usize) -> usize {
    peer / QPNS_PER_KEY
}

/// A rank's queue pair numbers (index = peer) as (chunk, PMI value).
pub fn qpn_values(qpns: &[u32]) -> Vec<(usize, String)> {
    qpns.chunks(QPNS_PER_KEY)
        .enumerate()
        .map(|(c, q)| {
            let v: Vec<String> = q.iter().map(|q| format!("{q:x}")).collect();
            (c, v.join("."))
        })
        .collect()
}

/// The number meant for `peer` in the value of its chunk.
pub fn qpn_in(value: &str, peer: usize) -> Option<u32> {
    let q = value.split('.').nth(peer % QPNS_PER_KEY)?;
    u32::from_str_radix(q, 16).ok()
}

/// The IPv4-mapped RoCE v2 GID of `ip` (`::ffff:a.b.c.d`).
pub fn mapped_gid(ip: Ipv4Addr) -> [u8; 16] {
    ip.to_ipv6_mapped().octets()
}

/// The IPv4 address of an IPv4-mapped GID.
pub fn gid_ipv4(gid: &[u8; 16]) -> Option<Ipv4Addr> {
    std::net::Ipv6Addr::from(*gid).to_ipv4_mapped()
}

/// One active port as discovery found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    pub device: String,
    pub port: u8,
    /// Non-zero GIDs with their index.
    pub gids: Vec<(u32, [u8; 16])>,
}

/// What steers the choice of port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// `HPCPACK_VERBS_DEVICE`: device name and optional port.
    pub device: Option<(String, Option<u8>)>,
    /// `MPICH_NETMASK`'s addresses of this rank's interfaces: the port must
    /// carry the IPv4-mapped GID of one of them.
    pub netmask_ips: Option<Vec<Ipv4Addr>>,
    /// All IPv4 addresses of this rank's interfaces (network namespace):
    /// without a netmask, a port carrying one of their GIDs wins.
    pub local_ips: Vec<Ipv4Addr>,
}

/// Parses `HPCPACK_VERBS_DEVICE` (`<device>[:<port>]`).
pub fn parse_device(v: &str) -> Option<(String, Option<u8>)> {
    let v = v.trim();
    let (dev, port) = match v.split_once(':') {
        Some((d, p)) => (d, Some(p.trim().parse::<u8>().ok().filter(|p| *p > 0)?)),
        None => (v, None),
    };
    (!dev.is_empty()).then(|| (dev.to_string(), port))
}

/// Picks the port and GID index among the active ports, or says why none
/// fits. Without a netmask or device, prefers a port carrying the mapped
/// GID of one of this rank's addresses (the device of a RoCE interface in
/// this network namespace), else the first active port with GID index 0
/// (InfiniBand's port GID).
pub fn pick(ports: &[PortInfo], want: &Want) -> Result<(usize, u32), String> {
    let by_ip = |ips: &[Ipv4Addr], p: &PortInfo| {
        p.gids
            .iter()
            .find(|(_, g)| gid_ipv4(g).is_some_and(|ip| ips.contains(&ip)))
            .map(|(i, _)| *i)
    };
    let names = || {
        ports
            .iter()
            .map(|p| format!("{}:{}", p.device, p.port))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let candidates: Vec<usize> = match &want.device {
        Some((d, port)) => {
            let c: Vec<usize> = (0..ports.len())
                .filter(|&i| &ports[i].device == d && port.is_none_or(|p| ports[i].port == p))
                .collect();
            if c.is_empty() {
                let what = port.map_or(d.clone(), |p| format!("{d}:{p}"));
                return Err(format!(
                    "HPCPACK_VERBS_DEVICE {what} is not an active port (active: {})",
                    names()
                ));
            }
            c
        }
        None => (0..ports.len()).collect(),
    };
    if let Some(ips) = &want.netmask_ips {
        return candidates
            .iter()
            .find_map(|&i| by_ip(ips, &ports[i]).map(|g| (i, g)))
            .ok_or_else(|| {
                format!(
                    "no active RDMA port has an address in MPICH_NETMASK (active: {}; addresses in the mask: {})",
                    names(),
                    ips.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(" ")
                )
            });
    }
    if let Some(found) = candidates
        .iter()
        .find_map(|&i| by_ip(&want.local_ips, &ports[i]).map(|g| (i, g)))
    {
        return Ok(found);
    }
    let i = candidates[0];
    let g = ports[i].gids.first().map_or(0, |(g, _)| *g);
    Ok((i, g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(dev: &str, ips: &[&str]) -> PortInfo {
        let mut gids = vec![(0, [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])];
        for (i, ip) in ips.iter().enumerate() {
            gids.push((i as u32 + 1, mapped_gid(ip.parse().unwrap())));
        }
        PortInfo {
            device: dev.into(),
            port: 1,
            gids,
        }
    }

    #[test]
    fn endpoints_round_trip_as_one_pmi_token() {
        let e = Endpoint {
            lid: 0,
            gid: mapped_gid("172.16.0.1".parse().unwrap()),
            mtu: 3,
            host: 0xabcdef,
            pid: 4242,
        };
        let s = e.encode();
        assert!(!s.contains([' ', '=', '|']), "{s}");
        assert_eq!(Endpoint::decode(&s), Some(e));
        assert_eq!(Endpoint::decode("v2,0"), None);
        assert_eq!(Endpoint::decode(&s.replace("v2", "v1")), None);
    }

    #[test]
    fn queue_pair_numbers_of_a_large_job_spread_over_keys_that_fit_pmi() {
        // 1024 ranks, the largest numbers a queue pair can have (24 bits).
        let qpns: Vec<u32> = (0..1024u32).map(|r| 0xff_ff00 | (r & 0xff)).collect();
        let values = qpn_values(&qpns);
        assert_eq!(values.len(), 11);
        for (c, v) in &values {
            // cmd=put kvsname=<name> key=<key> value=<v>: well inside a line.
            assert!(v.len() <= 7 * QPNS_PER_KEY, "chunk {c}: {} bytes", v.len());
            assert!(!v.contains([' ', '=', '|']));
        }
        for peer in [0, 1, 99, 100, 101, 555, 1023] {
            let (c, v) = &values[chunk_of(peer)];
            assert_eq!(*c, chunk_of(peer));
            assert_eq!(qpn_in(v, peer), Some(qpns[peer]), "peer {peer}");
        }
        assert_eq!(qpn_key(7, 3), "ndq-7-3");
        // A small job: one key; a short or damaged value names no number.
        let small = qpn_values(&[0, 0x11, 0x12345]);
        assert_eq!(small, vec![(0, "0.11.12345".to_string())]);
        assert_eq!(qpn_in(&small[0].1, 2), Some(0x12345));
        assert_eq!(qpn_in(&small[0].1, 3), None);
        assert_eq!(qpn_in("0.zz", 1), None);
    }

    #[test]
    fn netmask_picks_the_device_of_the_matching_address() {
        let ports = [port("rxe0", &["172.16.0.1"]), port("rxe1", &["172.16.0.2"])];
        let want = Want {
            netmask_ips: Some(vec!["172.16.0.2".parse().unwrap()]),
            ..Want::default()
        };
        assert_eq!(pick(&ports, &want), Ok((1, 1)));
        let want = Want {
            netmask_ips: Some(vec!["10.0.0.1".parse().unwrap()]),
            ..Want::default()
        };
        let err = pick(&ports, &want).unwrap_err();
        assert!(err.contains("MPICH_NETMASK") && err.contains("rxe0:1, rxe1:1"), "{err}");
    }

    #[test]
    fn without_netmask_this_namespaces_address_wins_else_the_first_port() {
        let ports = [port("rxe0", &["172.16.0.1"]), port("rxe1", &["172.16.0.2"])];
        let want = Want {
            local_ips: vec!["127.0.0.1".parse().unwrap(), "172.16.0.2".parse().unwrap()],
            ..Want::default()
        };
        assert_eq!(pick(&ports, &want), Ok((1, 1)));
        assert_eq!(pick(&ports, &Want::default()), Ok((0, 0)));
    }

    #[test]
    fn the_device_variable_restricts_and_names_the_active_ports() {
        let ports = [port("rxe0", &[]), port("mlx5_0", &[])];
        let want = Want {
            device: parse_device("mlx5_0:1"),
            ..Want::default()
        };
        assert_eq!(pick(&ports, &want), Ok((1, 0)));
        let want = Want {
            device: parse_device("mlx5_1"),
            ..Want::default()
        };
        let err = pick(&ports, &want).unwrap_err();
        assert!(err.contains("mlx5_1 is not an active port (active: rxe0:1, mlx5_0:1)"), "{err}");
        assert_eq!(parse_device("rxe0:x"), None);
        assert_eq!(parse_device(""), None);
        assert_eq!(parse_device("rxe0"), Some(("rxe0".into(), None)));
    }
}
