//! What a rank publishes about its verbs side, and which device and port it
//! uses. Pure, so the rules are tested without a device.
//!
//! The endpoint is one token in the rank's card (no spaces, `=` or `|`):
//! `v1,<lid>,<gid hex>,<mtu>,<host hash hex>,<pid>,<qpn>.<qpn>…` with one
//! queue pair number (hex) per rank of the job, this rank's own slot `0`.
//! The peers' entries for this rank are what [`super::VerbsTransport`]
//! connects to; the host hash and pid let a peer on the same host notice
//! that this rank died.

use std::net::Ipv4Addr;

/// A rank's published verbs address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub lid: u16,
    pub gid: [u8; 16],
    /// `ibv_mtu` enum value (1 = 256 … 5 = 4096).
    pub mtu: u32,
    pub host: u64,
    pub pid: u32,
    /// Queue pair number per rank (index = peer rank).
    pub qpns: Vec<u32>,
}

impl Endpoint {
    pub fn encode(&self) -> String {
        let gid: String = self.gid.iter().map(|b| format!("{b:02x}")).collect();
        let qpns: Vec<String> = self.qpns.iter().map(|q| format!("{q:x}")).collect();
        format!(
            "v1,{},{gid},{},{:x},{},{}",
            self.lid,
            self.mtu,
            self.host,
            self.pid,
            qpns.join(".")
        )
    }

    pub fn decode(s: &str) -> Option<Endpoint> {
        let f: Vec<&str> = s.split(',').collect();
        if f.len() != 7 || f[0] != "v1" || f[2].len() != 32 {
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
            qpns: f[6]
                .split('.')
                .map(|q| u32::from_str_radix(q, 16).ok())
                .collect::<Option<Vec<u32>>>()?,
        })
    }
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
            qpns: vec![0, 0x11, 0x12345],
        };
        let s = e.encode();
        assert!(!s.contains([' ', '=', '|']), "{s}");
        assert_eq!(Endpoint::decode(&s), Some(e));
        assert_eq!(Endpoint::decode("v2,0"), None);
        assert_eq!(Endpoint::decode(&s.replace("v1", "v0")), None);
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
