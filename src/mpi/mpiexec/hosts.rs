//! Host lists: `-hosts`, `CCP_NODES` and machinefiles.
//!
//! One grammar serves three inputs, as in MS-MPI (`mp_parse_hosts_argv`):
//! `<n> <host1> [m1][,mask[:group]…] … <hostn> [mn]`. `-hosts` reads it from
//! the command line, `CCP_NODES` from a whitespace-separated string, and a
//! machinefile (`host [count]` per line, `#` comments) is first rewritten into
//! that string (`smpd_get_hosts_from_file`). Which host runs which rank is
//! [`super::place`](mod@super::place)'s business.

use super::error::{HostsError, MpiexecError};
use super::plan::{AffinityMask, Host, MAX_RANKS};

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
