//! HPC Pack's command-line grammar, turned into clap's in one step.
//!
//! HPC Pack writes options as `/name:value`, `/flag` (true) and
//! `/flag:false`, names in any case, and `/?` or `/help` for help. The first
//! token of `job submit` (or `job add <id>`) that is not an option starts the
//! task's command line, which is passed on untouched. [`normalize`] rewrites
//! such a command line into clap's `--name=value` form, so there is one
//! parser; [`hpc_style`] turns clap's help and errors back into HPC Pack's
//! spelling.
//!
//! Linux twist: an absolute path such as `/bin/hostname` also starts with
//! `/`. A `/word` is an option when `word` (up to `:`) is one of the
//! subcommand's option names; otherwise a token that contains a second `/`
//! is taken as a path (the command), and anything else is an unknown option.
//! GNU-style `--name=value` is accepted too (the shell completions offer
//! both spellings, see [`crate::cli::complete`]).

use std::fmt;

/// An option the normaliser could not place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownOption {
    pub option: String,
    pub known: Vec<String>,
}

impl fmt::Display for UnknownOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown option '{}'", self.option)?;
        if let Some(close) = closest(&self.option, &self.known) {
            write!(f, "; did you mean /{close}?")?;
        }
        write!(f, " (options: {})", self.known.iter().map(|k| format!("/{k}")).collect::<Vec<_>>().join(" "))
    }
}

impl std::error::Error for UnknownOption {}

/// The known option nearest to `opt` by edit distance, if it is near.
fn closest<'a>(opt: &str, known: &'a [String]) -> Option<&'a str> {
    let name = opt.trim_start_matches(['/', '-']).split(':').next().unwrap_or("").to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&name, k), k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What a subcommand's command line looks like.
#[derive(Clone, Debug)]
pub struct Shape<'a> {
    /// Long option names (lower case) of the subcommand.
    pub options: &'a [String],
    /// `Some(n)`: after `n` positional arguments, the next non-option token
    /// starts a command line that is passed on verbatim (job submit: 0,
    /// job add: 1). `None`: every token is parsed.
    pub command_after: Option<usize>,
}

/// True for a request for help as every tool takes it: `/?`, `/help` (any
/// case) or `-?`. The one test of it, shared by the HPC Pack tools' grammar
/// step, `hpcd` (GNU-style otherwise) and `mpipingpong` (MS-MPI style).
pub fn is_help(arg: &str) -> bool {
    arg == "/?" || arg.eq_ignore_ascii_case("/help") || arg == "-?"
}

/// Rewrites HPC Pack tokens into clap's. Help requests become `--help`.
pub fn normalize(args: &[String], shape: &Shape<'_>) -> Result<Vec<String>, UnknownOption> {
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut positionals = 0usize;
    let mut iter = args.iter().enumerate();
    while let Some((i, a)) = iter.next() {
        if is_help(a) {
            out.push("--help".into());
            continue;
        }
        if let Some(rest) = a.strip_prefix('/') {
            let (name, value) = match rest.split_once(':') {
                Some((n, v)) => (n.to_ascii_lowercase(), Some(v)),
                None => (rest.to_ascii_lowercase(), None),
            };
            if shape.options.contains(&name) {
                out.push(match value {
                    Some(v) => format!("--{name}={v}"),
                    None => format!("--{name}"),
                });
                continue;
            }
            if !rest.contains('/') {
                return Err(UnknownOption { option: a.clone(), known: shape.options.to_vec() });
            }
            // An absolute path: a positional.
        } else if a.starts_with("--") && a.len() > 2 {
            out.push(a.clone());
            continue;
        }
        if let Some(n) = shape.command_after {
            if positionals == n {
                out.push("--".into());
                out.extend(args[i..].iter().cloned());
                return Ok(out);
            }
        }
        positionals += 1;
        out.push(a.clone());
        // After a leading `--`, the rest is positional.
        if a == "--" {
            out.extend(iter.map(|(_, a)| a.clone()));
            break;
        }
    }
    Ok(out)
}

/// [`hpc_style`] for help screens: an option that becomes one character
/// shorter gets a space in front, so wrapped descriptions stay aligned.
pub fn hpc_help(text: &str) -> String {
    convert(&text.replace("-h, --help", " /?, /help"), true)
}

/// Rewrites clap's `--name`, `--name=<X>`, `--name <X>` and `[=<X>]` forms in
/// help and error text into HPC Pack's `/name:<X>`.
pub fn hpc_style(text: &str) -> String {
    convert(text, false).replace("-h, /help", "/?, /help").replace("-V, /version", "/version")
}

fn convert(text: &str, keep_width: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let at_word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-');
        if at_word_start && b[i..].starts_with(b"--") && i + 2 < b.len() && b[i + 2].is_ascii_alphabetic() {
            let start = i + 2;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-' || b[j] == b'_') {
                j += 1;
            }
            if keep_width && i > 0 && b[i - 1] == b' ' {
                out.push(' ');
            }
            out.push('/');
            out.push_str(&text[start..j]);
            if text[j..].starts_with("[=<") {
                out.push_str("[:<");
                i = j + 3;
            } else if text[j..].starts_with("=<") || text[j..].starts_with(" <") {
                out.push_str(":<");
                i = j + 2;
            } else if text[j..].starts_with('=') {
                out.push(':');
                i = j + 1;
            } else {
                i = j;
            }
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn opts() -> Vec<String> {
        v(&["numnodes", "nodegroup", "exclusive", "jobname", "stdout", "detailed"])
    }

    #[test]
    fn options_then_verbatim_command() {
        let o = opts();
        let shape = Shape { options: &o, command_after: Some(0) };
        let got = normalize(
            &v(&["/NodeGroup:azurenodes", "/numnodes:4", "mpiexec", "-c", "1", "/affinity", "mpipingpong", "-s", "nul"]),
            &shape,
        )
        .unwrap();
        assert_eq!(
            got,
            v(&["--nodegroup=azurenodes", "--numnodes=4", "--", "mpiexec", "-c", "1", "/affinity", "mpipingpong", "-s", "nul"])
        );
    }

    #[test]
    fn flags_and_help() {
        let o = opts();
        let shape = Shape { options: &o, command_after: None };
        assert_eq!(normalize(&v(&["5", "/detailed"]), &shape).unwrap(), v(&["5", "--detailed"]));
        assert_eq!(normalize(&v(&["/Detailed:FALSE", "5"]), &shape).unwrap(), v(&["--detailed=FALSE", "5"]));
        assert_eq!(normalize(&v(&["/?"]), &shape).unwrap(), v(&["--help"]));
        assert_eq!(normalize(&v(&["/HELP"]), &shape).unwrap(), v(&["--help"]));
    }

    #[test]
    fn values_keep_colons_and_slashes() {
        let o = opts();
        let shape = Shape { options: &o, command_after: Some(0) };
        assert_eq!(normalize(&v(&["/stdout:/tmp/a:b", "x"]), &shape).unwrap(), v(&["--stdout=/tmp/a:b", "--", "x"]));
    }

    #[test]
    fn absolute_paths_start_the_command() {
        let o = opts();
        let shape = Shape { options: &o, command_after: Some(0) };
        assert_eq!(normalize(&v(&["/bin/hostname", "-f"]), &shape).unwrap(), v(&["--", "/bin/hostname", "-f"]));
        let add = Shape { options: &o, command_after: Some(1) };
        assert_eq!(normalize(&v(&["7", "/jobname:x", "echo", "/jobname:y"]), &add).unwrap(), v(&["7", "--jobname=x", "--", "echo", "/jobname:y"]));
    }

    #[test]
    fn unknown_options_are_named() {
        let o = opts();
        let shape = Shape { options: &o, command_after: Some(0) };
        let e = normalize(&v(&["/numnode:4", "x"]), &shape).unwrap_err();
        assert_eq!(e.option, "/numnode:4");
        assert!(e.to_string().contains("did you mean /numnodes?"), "{e}");
    }

    #[test]
    fn help_text_in_hpc_style() {
        assert_eq!(hpc_style("  --numnodes <min[-max]>  Nodes"), "  /numnodes:<min[-max]>  Nodes");
        assert_eq!(hpc_style("--exclusive[=<true|false>]"), "/exclusive[:<true|false>]");
        assert_eq!(hpc_style("a value is required for '--numnodes=<min[-max]>'"), "a value is required for '/numnodes:<min[-max]>'");
        assert_eq!(hpc_style("  -h, --help  Print help"), "  /?, /help  Print help");
        assert_eq!(hpc_style("use-case --x"), "use-case /x");
        let help = "  -h, --help          Print\n      --scheduler <name>  Head\n                          node";
        let got = hpc_help(help);
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines[0], "   /?, /help          Print");
        assert_eq!(lines[1].find("Head"), lines[2].find("node"), "{got}");
    }
}
