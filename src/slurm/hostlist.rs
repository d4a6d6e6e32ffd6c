//! Slurm's compact lists: host lists (`node[1-3,7],head`, in
//! `SLURM_JOB_NODELIST` and every node list Slurm prints) and task counts
//! per node (`2(x3),1`, in `SLURM_TASKS_PER_NODE`).

use std::fmt;

/// Why a list could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListError {
    pub list: String,
    pub reason: String,
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read the Slurm list '{}': {}", self.list, self.reason)
    }
}

impl std::error::Error for ListError {}

/// The most names one list may expand to (a bound on `node[1-999999999]`).
pub const MAX_HOSTS: usize = 65536;

/// Expands a host list: `node[1-3,7]` → node1, node2, node3, node7;
/// `n[01-03]` keeps the width (n01 …); several bracket groups multiply
/// (`r[1-2]n[1-2]` → r1n1, r1n2, r2n1, r2n2); commas outside brackets
/// separate names. Order is kept, repeats are not removed.
pub fn expand(list: &str) -> Result<Vec<String>, ListError> {
    let err = |reason: &str| ListError { list: list.to_string(), reason: reason.to_string() };
    let mut out = Vec::new();
    for item in split_top(list).map_err(|r| err(&r))? {
        if item.is_empty() {
            continue;
        }
        let mut names = vec![String::new()];
        let mut rest = item;
        while !rest.is_empty() {
            match rest.find('[') {
                None => {
                    names.iter_mut().for_each(|n| n.push_str(rest));
                    rest = "";
                }
                Some(open) => {
                    let close = rest[open..].find(']').map(|c| open + c).ok_or_else(|| err("a '[' without its ']'"))?;
                    let prefix = &rest[..open];
                    let ranges = expand_ranges(&rest[open + 1..close]).map_err(|r| err(&r))?;
                    let mut next = Vec::with_capacity(names.len() * ranges.len());
                    for n in &names {
                        for r in &ranges {
                            next.push(format!("{n}{prefix}{r}"));
                            if next.len() + out.len() > MAX_HOSTS {
                                return Err(err(&format!("it names more than {MAX_HOSTS} hosts")));
                            }
                        }
                    }
                    names = next;
                    rest = &rest[close + 1..];
                }
            }
        }
        out.extend(names);
        if out.len() > MAX_HOSTS {
            return Err(err(&format!("it names more than {MAX_HOSTS} hosts")));
        }
    }
    Ok(out)
}

/// Splits at the commas outside brackets.
fn split_top(list: &str) -> Result<Vec<&str>, String> {
    let (mut depth, mut start, mut parts) = (0i32, 0, Vec::new());
    for (i, c) in list.char_indices() {
        match c {
            '[' if depth == 0 => depth = 1,
            '[' => return Err("nested brackets".into()),
            ']' if depth == 1 => depth = 0,
            ']' => return Err("a ']' without its '['".into()),
            ',' if depth == 0 => {
                parts.push(list[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("a '[' without its ']'".into());
    }
    parts.push(list[start..].trim());
    Ok(parts)
}

/// `1-3,07,10-11` → 1, 2, 3, 07, 10, 11 (widths kept).
fn expand_ranges(spec: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let num = |s: &str| -> Result<u64, String> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("'{part}' is not a number or a range of numbers"));
            }
            s.parse().map_err(|_| format!("'{s}' is too large"))
        };
        let (a, b) = (num(lo)?, num(hi)?);
        if a > b {
            return Err(format!("the range '{part}' runs backwards"));
        }
        if b - a >= MAX_HOSTS as u64 {
            return Err(format!("it names more than {MAX_HOSTS} hosts"));
        }
        let width = lo.len();
        for n in a..=b {
            out.push(format!("{n:0width$}"));
        }
    }
    Ok(out)
}

/// Expands `SLURM_TASKS_PER_NODE`: `2(x3),1` → 2, 2, 2, 1.
pub fn tasks_per_node(list: &str) -> Result<Vec<u32>, ListError> {
    let err = |reason: String| ListError { list: list.to_string(), reason };
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (count, times) = match part.split_once("(x") {
            Some((c, t)) => (c, t.strip_suffix(')').ok_or_else(|| err(format!("'{part}' lacks its ')'")))?),
            None => (part, "1"),
        };
        let count: u32 = count.parse().map_err(|_| err(format!("'{count}' is not a number of tasks")))?;
        let times: usize = times.parse().map_err(|_| err(format!("'{times}' is not a number of nodes")))?;
        if out.len() + times > MAX_HOSTS {
            return Err(err(format!("it counts more than {MAX_HOSTS} nodes")));
        }
        out.extend(std::iter::repeat_n(count, times));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(l: &str) -> Vec<String> {
        expand(l).unwrap()
    }

    #[test]
    fn host_lists_expand_as_slurm_prints_them() {
        assert_eq!(names("node[1-3,7]"), ["node1", "node2", "node3", "node7"]);
        assert_eq!(names("head,node[1-2]"), ["head", "node1", "node2"]);
        assert_eq!(names("n[08-10]"), ["n08", "n09", "n10"]);
        assert_eq!(names("r[1-2]n[1-2]"), ["r1n1", "r1n2", "r2n1", "r2n2"]);
        assert_eq!(names("node1"), ["node1"]);
        assert_eq!(names(""), Vec::<String>::new());
        assert_eq!(names("a[1-2]-ib"), ["a1-ib", "a2-ib"]);
    }

    #[test]
    fn bad_host_lists_say_what_is_wrong() {
        for (bad, why) in [
            ("node[1-3", "without its ']'"),
            ("node[3-1]", "runs backwards"),
            ("node[a-b]", "not a number"),
            ("node[[1]]", "nested"),
            ("node[1-99999999]", "more than"),
        ] {
            let e = expand(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn tasks_per_node_repeats_counts() {
        assert_eq!(tasks_per_node("2(x3),1").unwrap(), [2, 2, 2, 1]);
        assert_eq!(tasks_per_node("4").unwrap(), [4]);
        assert!(tasks_per_node("2(x3").unwrap_err().to_string().contains("')'"));
        assert!(tasks_per_node("x").is_err());
    }
}
