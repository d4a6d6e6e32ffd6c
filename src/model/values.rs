//! The value grammars HPC Pack's options and properties share: `min[-max]`
//! ranges, priorities, unit types, node-group operators, exit-code lists,
//! `name=value;…` environment lists, run times and booleans.
//!
//! Each parser returns `Err` with a sentence that says what is accepted, so the
//! CLI and the head node report bad input in the same words.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `min[-max]` where max may be `*` (as many as there are).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub min: u32,
    /// `None` means `*`: no upper bound.
    pub max: Option<u32>,
}

impl Range {
    pub const ONE: Range = Range { min: 1, max: Some(1) };

    pub fn exactly(n: u32) -> Range {
        Range { min: n, max: Some(n) }
    }

    /// Parses `n`, `min-max`, `min-*` or `*` (= `1-*`).
    pub fn parse(s: &str) -> Result<Range, String> {
        let bad = || format!("'{s}' is not a range; use <min>[-<max>] with whole numbers, and * for no maximum (for example 4, 2-8 or 1-*)");
        let s = s.trim();
        let num = |t: &str| t.trim().parse::<u32>().map_err(|_| bad());
        let (min, max) = match s.split_once('-') {
            _ if s == "*" => (1, None),
            None => {
                let n = num(s)?;
                (n, Some(n))
            }
            Some((a, b)) => (num(a)?, if b.trim() == "*" { None } else { Some(num(b)?) }),
        };
        if min == 0 {
            return Err(format!("'{s}' asks for 0; the minimum must be at least 1"));
        }
        if let Some(max) = max {
            if max < min {
                return Err(format!("'{s}': the maximum {max} is below the minimum {min}"));
            }
        }
        Ok(Range { min, max })
    }

    /// A bound that takes `0` as "no maximum", as the REST `Max*` properties do.
    pub fn from_min_max(min: u32, max: u32) -> Range {
        Range { min, max: if max == 0 { None } else { Some(max) } }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(m) => write!(f, "{}-{}", self.min, m),
            None => write!(f, "{}-*", self.min),
        }
    }
}

/// What a job or task counts its resources in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnitType {
    #[default]
    Core,
    Socket,
    Node,
}

impl UnitType {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitType::Core => "Core",
            UnitType::Socket => "Socket",
            UnitType::Node => "Node",
        }
    }

    pub fn parse(s: &str) -> Result<UnitType, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "core" | "cores" => Ok(UnitType::Core),
            "socket" | "sockets" => Ok(UnitType::Socket),
            "node" | "nodes" => Ok(UnitType::Node),
            _ => Err(format!("'{s}' is not a unit type; use Core, Socket or Node")),
        }
    }

    /// Plural noun for `4-4 Nodes` style displays.
    pub fn plural(self) -> &'static str {
        match self {
            UnitType::Core => "Cores",
            UnitType::Socket => "Sockets",
            UnitType::Node => "Nodes",
        }
    }
}

/// How several node groups combine in `/nodegroup:A,B`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeGroupOp {
    /// Nodes in every group.
    #[default]
    Intersect,
    /// Nodes in any group.
    Union,
    /// Nodes in any group, but all of the job's nodes from the same one.
    Uniform,
}

impl NodeGroupOp {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeGroupOp::Intersect => "Intersect",
            NodeGroupOp::Union => "Union",
            NodeGroupOp::Uniform => "Uniform",
        }
    }

    pub fn parse(s: &str) -> Result<NodeGroupOp, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "intersect" => Ok(NodeGroupOp::Intersect),
            "union" => Ok(NodeGroupOp::Union),
            "uniform" => Ok(NodeGroupOp::Uniform),
            _ => Err(format!("'{s}' is not a node group operation; use Intersect, Union or Uniform")),
        }
    }
}

/// Job priority on HPC Pack's 0–4000 scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Priority(pub u32);

const PRIORITY_NAMES: [(&str, u32); 5] =
    [("Lowest", 0), ("BelowNormal", 1000), ("Normal", 2000), ("AboveNormal", 3000), ("Highest", 4000)];

impl Priority {
    pub const NORMAL: Priority = Priority(2000);
    pub const MAX: u32 = 4000;

    /// Parses a name (`Normal`), a name with an offset (`Normal+100`) or a
    /// number from 0 to 4000.
    pub fn parse(s: &str) -> Result<Priority, String> {
        let bad = || {
            format!(
                "'{s}' is not a priority; use Lowest, BelowNormal, Normal, AboveNormal, Highest, a number from 0 to 4000, or a name with an offset such as Normal+100"
            )
        };
        let t = s.trim();
        if let Ok(n) = t.parse::<u32>() {
            return if n <= Self::MAX { Ok(Priority(n)) } else { Err(bad()) };
        }
        let (name, offset) = match t.find(['+', '-']) {
            Some(i) => {
                let off: i64 = t[i + 1..].trim().parse().map_err(|_| bad())?;
                (&t[..i], if &t[i..=i] == "-" { -off } else { off })
            }
            None => (t, 0),
        };
        let base = PRIORITY_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, v)| *v as i64)
            .ok_or_else(bad)?;
        let v = base + offset;
        if (0..=Self::MAX as i64).contains(&v) { Ok(Priority(v as u32)) } else { Err(bad()) }
    }

    /// The name when the value is one of the five named levels, else the number.
    pub fn display(self) -> String {
        PRIORITY_NAMES
            .iter()
            .find(|(_, v)| *v == self.0)
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| self.0.to_string())
    }
}

/// `/validexitcodes`: `int|start..end[,…]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitCodes(pub Vec<(i64, i64)>);

impl Default for ExitCodes {
    fn default() -> Self {
        ExitCodes(vec![(0, 0)])
    }
}

impl ExitCodes {
    pub fn parse(s: &str) -> Result<ExitCodes, String> {
        let bad = |p: &str| {
            format!("'{p}' is not an exit code or range; use whole numbers and ranges such as 0,3..5")
        };
        let mut out = Vec::new();
        for p in s.split(',').map(str::trim) {
            let num = |t: &str| t.trim().parse::<i64>().map_err(|_| bad(p));
            let range = match p.split_once("..") {
                Some((a, b)) => (num(a)?, num(b)?),
                None => (num(p)?, num(p)?),
            };
            if range.1 < range.0 {
                return Err(format!("'{p}': the range ends below its start"));
            }
            out.push(range);
        }
        Ok(ExitCodes(out))
    }

    pub fn accepts(&self, code: i64) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }
}

impl fmt::Display for ExitCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}..{b}") })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Parses `name=value[;name=value…]`. An empty value is kept (it unsets the
/// variable where that is the meaning).
pub fn parse_env_list(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in s.split(';').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' is not name=value; separate variables with ;, as in A=1;B=2"))?;
        let k = k.trim();
        if !valid_env_name(k) {
            return Err(format!("'{k}' is not an environment variable name (letters, digits and _, not starting with a digit)"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Checks a node group name: 1 to 64 letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit (what HPC Pack's own groups and the
/// article's `azurenodes` look like; no path separators, spaces, commas or
/// control characters, which would break lists, URLs and file names).
pub fn check_group_name(name: &str) -> Result<(), String> {
    check_name("node group", name)
}

/// A name of a node group, job template …: 1 to 64 letters, digits, `-`,
/// `_` and `.`, starting with a letter or digit; `what` names it in the error.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.chars().count())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        return Ok(());
    }
    Err(format!(
        "'{}' is not a {what} name: use 1 to 64 letters, digits, '-', '_' and '.', starting with a letter or digit",
        name.escape_debug()
    ))
}

pub fn valid_env_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces each `%NAME%` of `s` by the value `var` gives for NAME, once
/// (a value is not expanded again). NAME is a variable name (letters,
/// digits and `_`, not starting with a digit); `%%` is one `%`; a name
/// `var` does not know, and a `%` that starts no name, stay as written
/// (as Windows' ExpandEnvironmentStrings leaves them).
pub fn expand_vars(s: &str, var: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(more) = after.strip_prefix('%') {
            out.push('%');
            rest = more;
            continue;
        }
        let name = after.find('%').map(|j| &after[..j]).filter(|n| valid_env_name(n));
        match name.and_then(|n| Some((n, var(n)?))) {
            Some((n, value)) => {
                out.push_str(&value);
                rest = &after[n.len() + 1..];
            }
            // The `%` that ends an unknown name may start the next one.
            None => {
                out.push('%');
                out.push_str(name.unwrap_or(""));
                rest = &after[name.map_or(0, str::len)..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Formats an environment list back into `A=1;B=2`.
pub fn format_env_list(env: &[(String, String)]) -> String {
    env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";")
}

/// Parses `/runtime`: `Infinite`, or `[[days:]hours:]minutes`. Returns seconds,
/// `None` for Infinite.
pub fn parse_runtime(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("infinite") {
        return Ok(None);
    }
    let bad = || format!("'{s}' is not a run time; use [[days:]hours:]minutes (for example 1:30 or 0:0:5) or Infinite");
    let parts: Vec<u64> = t.split(':').map(|p| p.trim().parse::<u64>().map_err(|_| bad())).collect::<Result<_, _>>()?;
    let secs = match parts.as_slice() {
        [m] => m * 60,
        [h, m] => (h * 60 + m) * 60,
        [d, h, m] => ((d * 24 + h) * 60 + m) * 60,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(format!("'{s}' is a run time of zero; give at least one minute, or Infinite"));
    }
    Ok(Some(secs))
}

/// Formats seconds as HPC Pack's `d:h:m`, `Infinite` for none.
pub fn format_runtime(secs: Option<u64>) -> String {
    match secs {
        None => "Infinite".into(),
        Some(s) => {
            let m = s.div_ceil(60);
            format!("{}:{}:{}", m / 1440, (m / 60) % 24, m % 60)
        }
    }
}

/// Parses HPC Pack's booleans: true/false (any case), and 1/0, yes/no.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("'{s}' is not a boolean; use true or false")),
    }
}

/// HPC Pack shows booleans as `True`/`False`.
pub fn format_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Parses a comma-separated list of names, dropping empty items.
pub fn parse_name_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect()
}

/// Sets `vars` in `env`, in order: a variable replaces one of its name,
/// and an empty value removes it (as `/env:NAME=` and `cluscfg setenvs
/// NAME=` do).
pub fn merge_env(env: &mut Vec<(String, String)>, vars: &[(String, String)]) {
    for (k, v) in vars {
        env.retain(|(n, _)| n != k);
        if !v.is_empty() {
            env.push((k.clone(), v.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_expand_percent_variables_once() {
        let var = |n: &str| match n {
            "CCP_JOBID" => Some("12".to_string()),
            "CCP_TASKID" => Some("3".to_string()),
            "LOOP" => Some("%CCP_JOBID%".to_string()),
            _ => None,
        };
        assert_eq!(expand_vars("out/%CCP_JOBID%.%CCP_TASKID%.txt", var), "out/12.3.txt");
        assert_eq!(expand_vars("%CCP_JOBID%%CCP_TASKID%", var), "123");
        assert_eq!(expand_vars("%LOOP%", var), "%CCP_JOBID%", "values are not expanded again");
        assert_eq!(expand_vars("100%%-%%CCP_JOBID%%", var), "100%-%CCP_JOBID%", "%% is one %");
        assert_eq!(expand_vars("%NOSUCH%-%CCP_JOBID%", var), "%NOSUCH%-12");
        assert_eq!(expand_vars("%NOSUCH%CCP_JOBID%", var), "%NOSUCH12", "the % ending an unknown name starts the next");
        assert_eq!(expand_vars("50% of %CCP_JOBID%", var), "50% of 12");
        assert_eq!(expand_vars("a%", var), "a%");
        assert_eq!(expand_vars("%1%", var), "%1%");
        assert_eq!(expand_vars("", var), "");
    }

    #[test]
    fn ranges() {
        assert_eq!(Range::parse("4"), Ok(Range::exactly(4)));
        assert_eq!(Range::parse("2-8"), Ok(Range { min: 2, max: Some(8) }));
        assert_eq!(Range::parse("16-*"), Ok(Range { min: 16, max: None }));
        assert_eq!(Range::parse("*"), Ok(Range { min: 1, max: None }));
        assert!(Range::parse("abc").unwrap_err().contains("not a range"));
        assert!(Range::parse("4-2").unwrap_err().contains("below the minimum"));
        assert!(Range::parse("0").is_err());
        assert!(Range::parse("-3").is_err());
        assert_eq!(Range::parse("2-*").unwrap().to_string(), "2-*");
    }

    #[test]
    fn priorities() {
        assert_eq!(Priority::parse("normal"), Ok(Priority(2000)));
        assert_eq!(Priority::parse("Highest"), Ok(Priority(4000)));
        assert_eq!(Priority::parse("Normal+100"), Ok(Priority(2100)));
        assert_eq!(Priority::parse("BelowNormal-1"), Ok(Priority(999)));
        assert_eq!(Priority::parse("3500"), Ok(Priority(3500)));
        assert!(Priority::parse("4001").is_err());
        assert!(Priority::parse("Urgent").unwrap_err().contains("not a priority"));
        assert!(Priority::parse("Highest+1").is_err());
        assert_eq!(Priority(3000).display(), "AboveNormal");
        assert_eq!(Priority(2100).display(), "2100");
    }

    #[test]
    fn exit_codes() {
        let c = ExitCodes::parse("0,3..5").unwrap();
        assert!(c.accepts(0) && c.accepts(4) && !c.accepts(1) && !c.accepts(6));
        assert_eq!(c.to_string(), "0,3..5");
        assert!(ExitCodes::parse("x").is_err());
        assert!(ExitCodes::parse("5..3").is_err());
        assert!(ExitCodes::default().accepts(0));
    }

    #[test]
    fn env_lists() {
        assert_eq!(
            parse_env_list("A=1;B=x=y;C=").unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "x=y".into()), ("C".into(), "".into())]
        );
        assert!(parse_env_list("A").is_err());
        assert!(parse_env_list("1A=2").is_err());
    }

    #[test]
    fn runtimes() {
        assert_eq!(parse_runtime("5"), Ok(Some(300)));
        assert_eq!(parse_runtime("1:30"), Ok(Some(5400)));
        assert_eq!(parse_runtime("1:0:0"), Ok(Some(86400)));
        assert_eq!(parse_runtime("infinite"), Ok(None));
        assert!(parse_runtime("1:2:3:4").is_err());
        assert!(parse_runtime("0").is_err());
        assert_eq!(format_runtime(Some(5400)), "0:1:30");
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool("false"), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }
}
