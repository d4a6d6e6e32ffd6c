//! Host lists (`-hosts`, `CCP_NODES`, machinefiles) and rank placement.
//!
//! One grammar serves three inputs, as in MS-MPI (`mp_parse_hosts_argv`):
//! `<n> <host1> [m1][,mask[:group]…] … <hostn> [mn]`. `-hosts` reads it from
//! the command line, `CCP_NODES` from a whitespace-separated string, and a
//! machinefile (`host [count]` per line, `#` comments) is first rewritten into
//! that string (`smpd_get_hosts_from_file`).
//!
//! [`place`] then decides which host runs which rank, as MS-MPI's
//! `post_process_cmdline` and `create_launch_list` do:
//!
//! * The *global pool* is `-ghost`/`-gmachinefile`, else `CCP_NODES`, else
//!   the local host with all its logical CPUs. `CCP_NODES` is read (and a bad
//!   value is an error) whenever there is no `-ghost`/`-gmachinefile`, even if
//!   every section has its own hosts; `CCP_NODES=Overflow` is only tolerated
//!   when some `-machinefile`/`-gmachinefile` was given (then the local host
//!   is the pool). This is the source's behaviour, a little stricter than the
//!   spec's summary.
//! * `-c N` sets every host of every pool to N cores.
//! * A section's rank count is its `-n`; else the sum of its own hosts; else,
//!   for at most one section, *what the other global-pool sections leave of
//!   the global pool* — if they leave nothing, that is the "not enough cores
//!   left" error. A second such section is "expecting one of -n …".
//! * Ranks fill each host up to its count, in order, wrapping around to the
//!   first host when a section asks for more ranks than its pool has cores.
//!   Sections using the global pool share one cursor, so section 2 starts
//!   where section 1 stopped; a section's own host list starts afresh.

use thiserror::Error;

use super::MAX_RANKS;
use super::error::MpiexecError;
use super::plan::Plan;

/// One affinity mask given explicitly in a `-hosts` entry (`,0x3:1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AffinityMask {
    /// Bit mask of logical processors within the group.
    pub mask: u64,
    /// Processor group (Windows systems with more than 64 CPUs); 0 if absent.
    pub group: u16,
}

/// A host of a pool and how many ranks it takes per round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// Cores (ranks per round), at least 1.
    pub cores: u32,
    /// Explicit masks, one per core, in rank order; empty if none given.
    pub masks: Vec<AffinityMask>,
}

impl Host {
    /// A host with `cores` cores and no explicit masks.
    pub fn new(name: &str, cores: u32) -> Host {
        Host {
            name: name.to_string(),
            cores,
            masks: Vec::new(),
        }
    }
}

/// A malformed host list; `Display` is MS-MPI's verbatim message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HostsError {
    #[error("Error: expecting a positive number of hosts following the -hosts option.")]
    ExpectingHostCount,
    #[error("Error: number of hosts exceeds the maximum supported ranks.")]
    TooManyHosts,
    #[error("Error: expecting a host name following the -hosts option.")]
    ExpectingHostName,
    #[error("Error: All hosts must specify explicit affinity if any do")]
    MixedExplicitAffinity,
    #[error("Error: expecting a positive number of cores following the host name.")]
    ExpectingCores,
    #[error(
        "Error: number of processes requested by the host entry exceeds the maximum supported ranks."
    )]
    TooManyProcesses,
    #[error("Error: Affinity mask count mismatch in hosts list specifier.")]
    MaskCountMismatch,
    #[error("Error: Invalid affinity mask specifier in hosts list.")]
    InvalidMask,
    #[error("Error: Invalid affinity group specifier in hosts list.")]
    InvalidGroup,
}

/// `isposnumber`: digits only, value above zero.
pub(crate) fn is_pos_number(s: &str) -> bool {
    is_digits(s) && wtoi(s) > 0
}

/// `isdigits`: a non-empty string of ASCII digits.
pub(crate) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `_wtoi` on a digit prefix, saturating at `i32::MAX` as the CRT does.
pub(crate) fn wtoi(s: &str) -> u32 {
    let mut v: u64 = 0;
    for b in s.bytes().take_while(u8::is_ascii_digit) {
        v = (v * 10 + u64::from(b - b'0')).min(i32::MAX as u64);
    }
    v as u32
}

/// Parses a host list from `tokens` (the tokens after `-hosts`, or a split
/// `CCP_NODES`). Returns the hosts, how many tokens they used, and whether
/// explicit masks were given. Tokens after the n-th host (and its count) are
/// left to the caller: on the command line they are the next option or the
/// executable.
pub fn parse_host_tokens(tokens: &[String]) -> Result<(Vec<Host>, usize, bool), HostsError> {
    let first = tokens.first().ok_or(HostsError::ExpectingHostCount)?;
    if !is_pos_number(first) {
        return Err(HostsError::ExpectingHostCount);
    }
    let nhosts = wtoi(first);
    if nhosts > MAX_RANKS {
        return Err(HostsError::TooManyHosts);
    }
    let mut at = 1;
    let mut hosts = Vec::new();
    let mut total = nhosts; // one per host so far, as in the source
    let mut explicit = false;
    for i in 0..nhosts {
        let name = tokens.get(at).ok_or(HostsError::ExpectingHostName)?;
        at += 1;
        let mut host = Host::new(name, 1);
        if let Some(next) = tokens.get(at) {
            let digits = next.bytes().take_while(u8::is_ascii_digit).count();
            if next[digits..].starts_with(',') {
                if i > 0 && !explicit {
                    return Err(HostsError::MixedExplicitAffinity);
                }
                explicit = true;
                host.cores = count_for(&next[..digits], total)?;
                host.masks = parse_masks(&next[digits..], host.cores)?;
                at += 1;
            } else {
                if i > 0 && explicit {
                    return Err(HostsError::MixedExplicitAffinity);
                }
                if is_digits(next) {
                    host.cores = count_for(next, total)?;
                    at += 1;
                }
            }
        }
        total += host.cores - 1;
        hosts.push(host);
    }
    Ok((hosts, at, explicit))
}

/// The count after a host name: positive and within the rank limit.
fn count_for(digits: &str, total: u32) -> Result<u32, HostsError> {
    let n = wtoi(digits);
    if n < 1 {
        return Err(HostsError::ExpectingCores);
    }
    if u64::from(n) + u64::from(total) - 1 > u64::from(MAX_RANKS) {
        return Err(HostsError::TooManyProcesses);
    }
    Ok(n)
}

/// `count` masks of the form `,[0x]hex[:group]`; extra text after them is
/// ignored, as MS-MPI does.
fn parse_masks(mut s: &str, count: u32) -> Result<Vec<AffinityMask>, HostsError> {
    let mut masks = Vec::new();
    for _ in 0..count {
        s = s.strip_prefix(',').ok_or(HostsError::MaskCountMismatch)?;
        s = s.strip_prefix("0x").unwrap_or(s);
        let hex = s.bytes().take_while(u8::is_ascii_hexdigit).count();
        let mask = u64::from_str_radix(&s[..hex], 16).map_err(|_| HostsError::InvalidMask)?;
        s = &s[hex..];
        let mut group = 0;
        if let Some(rest) = s.strip_prefix(':') {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            group = rest[..digits]
                .parse()
                .map_err(|_| HostsError::InvalidGroup)?;
            s = &rest[digits..];
        }
        masks.push(AffinityMask { mask, group });
    }
    Ok(masks)
}

/// Parses a host list held in one string (`CCP_NODES`): tokens are separated
/// by runs of whitespace; leading whitespace makes an empty first token, so
/// `" 1 a"` is an error, as in `mp_parse_hosts_string`.
pub fn parse_hosts_string(s: &str) -> Result<Vec<Host>, HostsError> {
    let mut tokens: Vec<String> = s.split(char::is_whitespace).map(str::to_string).collect();
    // Collapse runs: keep a leading empty token, drop the others.
    let lead = tokens.first().is_some_and(String::is_empty);
    tokens.retain(|t| !t.is_empty());
    if lead {
        tokens.insert(0, String::new());
    }
    parse_host_tokens(&tokens).map(|(hosts, _, _)| hosts)
}

/// Rewrites a machinefile's text as a host-list string (`"<n> host [count] …"`),
/// or gives the reason it is bad (MS-MPI's words, without "Error:").
pub fn machinefile_hosts(text: &str) -> Result<String, String> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = line.split('#').next().unwrap_or("").trim_end();
        let mut words = entry.split_whitespace();
        let _host = words.next();
        if let Some(count) = words.next() {
            let digits = count.bytes().take_while(u8::is_ascii_digit).count();
            let rest = &count[digits..];
            if (!rest.is_empty() && !rest.starts_with(',')) || words.next().is_some() {
                return Err("expecting a positive number of cores following the host name".into());
            }
        }
        entries.push(entry.to_string());
    }
    if entries.is_empty() {
        return Err("expecting host names in file".into());
    }
    Ok(format!("{} {}", entries.len(), entries.join(" ")))
}

/// Parses a machinefile's text into hosts (and whether masks were given).
pub fn parse_machinefile(file: &str, text: &str) -> Result<Vec<Host>, MpiexecError> {
    let list = machinefile_hosts(text).map_err(|reason| MpiexecError::MachinefileRead {
        file: file.to_string(),
        reason,
    })?;
    parse_hosts_string(&list).map_err(|reason| MpiexecError::MachinefileParse {
        file: file.to_string(),
        reason,
    })
}

/// Ranks of one section on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRanks {
    pub host: String,
    /// World ranks, ascending.
    pub ranks: Vec<u32>,
}

/// The global pool: `-ghost`/`-gmachinefile`, else `CCP_NODES`, else the
/// local host with `local_cpus` cores.
fn global_pool(
    plan: &Plan,
    ccp_nodes: Option<&str>,
    local_host: &str,
    local_cpus: u32,
) -> Result<Vec<Host>, MpiexecError> {
    if let Some(pool) = &plan.global.hosts {
        return Ok(pool.clone());
    }
    let from_env = match ccp_nodes {
        Some(v) if v.eq_ignore_ascii_case("Overflow") => {
            if !plan.global.machinefile_given {
                return Err(MpiexecError::CcpNodesOverflow);
            }
            Vec::new()
        }
        Some(v) => parse_hosts_string(v).map_err(MpiexecError::CcpNodes)?,
        None => Vec::new(),
    };
    if from_env.is_empty() {
        return Ok(vec![Host::new(local_host, local_cpus.max(1))]);
    }
    Ok(from_env)
}

/// A cursor over a pool: the host being filled and how many ranks it has.
struct Cursor {
    host: usize,
    used: u32,
}

/// Decides the hosts of every rank: one list per section, hosts in the order
/// they are first used. See the module doc for the rules.
pub fn place(
    plan: &Plan,
    ccp_nodes: Option<&str>,
    local_host: &str,
    local_cpus: u32,
) -> Result<Vec<Vec<HostRanks>>, MpiexecError> {
    let cores = plan.global.cores_per_host;
    let with_cores = |pool: &[Host]| -> Vec<Host> {
        let mut pool = pool.to_vec();
        if let Some(n) = cores {
            pool.iter_mut().for_each(|h| h.cores = n);
        }
        pool
    };
    let global = with_cores(&global_pool(plan, ccp_nodes, local_host, local_cpus)?);
    let global_cores: u32 = global.iter().map(|h| h.cores).sum();

    let mut counts = Vec::with_capacity(plan.sections.len());
    let mut rest: Option<usize> = None;
    for (i, s) in plan.sections.iter().enumerate() {
        let own: u32 = s
            .hosts
            .as_deref()
            .map_or(0, |h| with_cores(h).iter().map(|h| h.cores).sum());
        match (s.processes, own) {
            (Some(n), _) => counts.push(n),
            (None, own) if own > 0 => counts.push(own),
            (None, _) if rest.is_none() => {
                rest = Some(i);
                counts.push(0);
            }
            _ => return Err(MpiexecError::SectionWithoutCount(i + 1)),
        }
    }
    let total: u32 = counts.iter().sum();
    if total > MAX_RANKS {
        return Err(MpiexecError::TooManyRanks);
    }
    let on_global: u32 = plan
        .sections
        .iter()
        .zip(&counts)
        .filter(|(s, _)| s.hosts.is_none())
        .map(|(_, n)| n)
        .sum();
    if let Some(i) = rest {
        if on_global >= global_cores {
            return Err(MpiexecError::NotEnoughCores {
                exe: plan.sections[i].exe.clone(),
                section: i + 1,
                processes: total,
                cores: global_cores + total - on_global,
            });
        }
        counts[i] = global_cores - on_global;
    }
    if counts.iter().sum::<u32>() > MAX_RANKS {
        return Err(MpiexecError::TooManyRanks);
    }

    let mut shared = Cursor { host: 0, used: 0 };
    let mut next_rank = 0;
    let mut out = Vec::with_capacity(plan.sections.len());
    for (s, &n) in plan.sections.iter().zip(&counts) {
        let own = s.hosts.as_deref().map(with_cores);
        let mut fresh = Cursor { host: 0, used: 0 };
        let (pool, cursor) = match &own {
            Some(pool) => (pool.as_slice(), &mut fresh),
            None => (global.as_slice(), &mut shared),
        };
        out.push(fill(pool, cursor, n, &mut next_rank));
    }
    Ok(out)
}

/// Places `n` ranks on `pool` from `cursor`, wrapping around at the end.
fn fill(pool: &[Host], cursor: &mut Cursor, n: u32, next_rank: &mut u32) -> Vec<HostRanks> {
    let mut out: Vec<HostRanks> = Vec::new();
    for _ in 0..n {
        if cursor.host < pool.len() && cursor.used == pool[cursor.host].cores {
            cursor.host += 1;
            cursor.used = 0;
        }
        if cursor.host >= pool.len() {
            cursor.host = 0;
            cursor.used = 0;
        }
        cursor.used += 1;
        let name = &pool[cursor.host].name;
        match out.iter_mut().find(|h| &h.host == name) {
            Some(h) => h.ranks.push(*next_rank),
            None => out.push(HostRanks {
                host: name.clone(),
                ranks: vec![*next_rank],
            }),
        }
        *next_rank += 1;
    }
    out
}

#[cfg(test)]
#[path = "hosts_tests.rs"]
mod tests;
