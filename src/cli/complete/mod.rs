//! Shell completion of `job`, `task`, `node` and `cluscfg` in HPC Pack's
//! own spelling: `job submit /nod<TAB>` offers `/nodegroup:`, and
//! `/nodegroup:<TAB>` the head node's groups; GNU-style `--name=value`
//! completes the same way.
//!
//! The scripts in `completions/` ([`shells::script`]) are small: they call
//! the tool itself with [`crate::env::HPCPACK_COMPLETE`] set to the shell's
//! name and the command line as arguments, and the tool answers on stdout
//! (see [`shells`] for the protocol). The answer comes from the clap model
//! the tool parses with (subcommands, option names, their help as
//! descriptions), from [`values`] for what an option takes, and, for ids
//! and names, from a head node that already runs: it is never started for
//! this (no head node: no ids offered), and each request gives up after
//! [`values::HEAD_TIMEOUT`].
//!
//! [`complete`] is pure: it takes the words and a [`values::Source`] of
//! live values, so tests give it a fake head node.

pub mod shells;
pub mod values;

use crate::cli::ToolSpec;
use crate::cli::grammar::is_help;
use std::process::ExitCode;
use values::Source;

/// One word offered, with a short description (shown by zsh and fish).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub value: String,
    pub help: String,
}

/// What the current word may become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// These words (each the whole word, what is typed included).
    Words(Vec<Candidate>),
    /// A file name (a directory when `dirs`) after `prefix`, the part of
    /// the word before it (`/stdout:`).
    Files { prefix: String, dirs: bool },
    /// A command name: the program of a task's command line.
    Commands,
}

impl Reply {
    fn nothing() -> Reply {
        Reply::Words(Vec::new())
    }
}

/// The entry point of completion mode: `args` are the tool's arguments
/// (after its name), as the script of `shell` passes them. Prints the
/// answer; never fails loudly (a completion that cannot help offers
/// nothing).
pub fn main(spec: &ToolSpec, cmd: clap::Command, shell: &str, args: &[String]) -> ExitCode {
    let Some(req) = shells::Request::parse(shell, args) else {
        return ExitCode::from(crate::error::exit::USAGE);
    };
    let scheduler = scheduler_in(&req.words);
    let head = values::Head::new(scheduler);
    let reply = complete(spec, cmd, &req.words, &head);
    crate::cli::out(&req.answer(&reply));
    ExitCode::SUCCESS
}

/// `/scheduler:<name>` (or `--scheduler=<name>`) on the command line.
fn scheduler_in(words: &[String]) -> Option<String> {
    let done = &words[..words.len().saturating_sub(1)];
    let mut it = done.iter();
    while let Some(w) = it.next() {
        let lower = w.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("/scheduler:").or_else(|| lower.strip_prefix("--scheduler=")) {
            return Some(w[w.len() - v.len()..].to_string());
        }
        if lower == "--scheduler" {
            return it.next().cloned();
        }
    }
    None
}

/// The candidates for the last of `words` (the word being typed, maybe
/// empty); `words` start after the tool's name.
pub fn complete(spec: &ToolSpec, mut cmd: clap::Command, words: &[String], src: &dyn Source) -> Reply {
    cmd.build();
    let Some((cur, done)) = words.split_last() else { return Reply::nothing() };
    let Some((first, done)) = done.split_first() else {
        // The subcommand.
        return Reply::Words(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .filter_map(|s| offer(cur, s.get_name(), &about(s.get_about())))
                .collect(),
        );
    };
    let Some(sub) = cmd.get_subcommands().find(|s| s.get_name().eq_ignore_ascii_case(first)) else { return Reply::nothing() };
    let ctx = values::Context { tool: spec.name, sub: sub.get_name(), src };
    let command_after = spec.command_after.iter().find(|(s, _)| *s == sub.get_name()).map(|(_, n)| *n);
    let options: Vec<&clap::Arg> = sub.get_arguments().filter(|a| a.get_long().is_some() && !a.is_hide_set()).collect();
    let find = |name: &str| options.iter().copied().find(|a| a.get_long().is_some_and(|l| l.eq_ignore_ascii_case(name)));

    // Walk the finished words as the grammar step does (grammar::normalize).
    let mut positionals = 0usize;
    let mut value_of: Option<&clap::Arg> = None;
    let mut given: Vec<String> = Vec::new();
    let mut in_command = false;
    let mut only_positionals = false;
    for w in done {
        if in_command {
            break;
        }
        if value_of.take().is_some() {
            continue;
        }
        if !only_positionals {
            if is_help(w) {
                continue;
            }
            if w == "--" {
                only_positionals = true;
                continue;
            }
            if let Some(rest) = w.strip_prefix("--") {
                let (name, has_value) = match rest.split_once('=') {
                    Some((n, _)) => (n, true),
                    None => (rest, false),
                };
                if let Some(a) = find(name) {
                    given.push(a.get_id().to_string());
                    if !has_value && takes_value(a) && !a.is_require_equals_set() {
                        value_of = Some(a);
                    }
                }
                continue;
            }
            if let Some(rest) = w.strip_prefix('/') {
                let name = rest.split(':').next().unwrap_or("");
                if let Some(a) = find(name) {
                    given.push(a.get_id().to_string());
                    continue;
                }
                if !rest.contains('/') {
                    continue; // an unknown option
                }
            }
        }
        if command_after == Some(positionals) {
            in_command = true;
            continue;
        }
        positionals += 1;
    }
    if in_command {
        return Reply::Files { prefix: String::new(), dirs: false };
    }
    if let Some(a) = value_of {
        return values::of_option(&ctx, a).complete("", cur);
    }
    let command_starts_here = command_after == Some(positionals);
    if !only_positionals {
        if let Some(rest) = cur.strip_prefix("--") {
            return match rest.split_once('=') {
                Some((name, _)) => match find(name) {
                    Some(a) => values::of_option(&ctx, a).complete(&cur[..name.len() + 3], &rest[name.len() + 1..]),
                    None => Reply::nothing(),
                },
                None => Reply::Words(option_names(&options, &given, cur, "--", "=")),
            };
        }
        if let Some(rest) = cur.strip_prefix('/') {
            if let Some((name, value)) = rest.split_once(':') {
                if let Some(a) = find(name) {
                    return values::of_option(&ctx, a).complete(&cur[..name.len() + 2], value);
                }
            }
            let names = option_names(&options, &given, cur, "/", ":");
            // `/usr/bin/x` (or a `/` word no option starts) is a path.
            if command_starts_here && (rest.contains('/') || names.is_empty()) {
                return Reply::Files { prefix: String::new(), dirs: false };
            }
            return Reply::Words(names);
        }
    }
    if command_starts_here {
        return Reply::Commands;
    }
    match sub.get_positionals().nth(positionals).or_else(|| sub.get_positionals().last().filter(|a| a.get_num_args().is_some_and(|n| n.max_values() > 1))) {
        Some(a) => values::of_positional(&ctx, a).complete("", cur),
        None => Reply::nothing(),
    }
}

/// True if the option takes a value (`/name:value`), even an optional one.
fn takes_value(a: &clap::Arg) -> bool {
    a.get_action().takes_values() && a.get_num_args().is_none_or(|n| n.max_values() > 0)
}

/// The options that start with what is typed (any case), as `/name:` for
/// those that take a value and `/name` for switches, except those given
/// already.
fn option_names(options: &[&clap::Arg], given: &[String], typed: &str, dash: &str, colon: &str) -> Vec<Candidate> {
    options
        .iter()
        .filter(|a| !given.iter().any(|g| g == a.get_id().as_str()) || matches!(a.get_action(), clap::ArgAction::Append))
        .filter_map(|a| {
            let long = a.get_long()?;
            let optional = a.get_num_args().is_some_and(|n| n.min_values() == 0);
            let word = if takes_value(a) && !optional { format!("{dash}{long}{colon}") } else { format!("{dash}{long}") };
            offer(typed, &word, &about(a.get_help()))
        })
        .collect()
}

/// The first sentence of a help text, for a description.
fn about(help: Option<&clap::builder::StyledStr>) -> String {
    let text = help.map(|h| h.to_string()).unwrap_or_default();
    let line = text.split(". ").next().unwrap_or("").trim_end_matches('.');
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `word` if it starts with `typed`, ignoring case as HPC Pack does (the
/// scripts let the candidate replace what was typed, in its own case).
pub fn offer(typed: &str, word: &str, help: &str) -> Option<Candidate> {
    let head = word.get(..typed.len())?;
    head.eq_ignore_ascii_case(typed).then(|| Candidate { value: word.to_string(), help: help.to_string() })
}

#[cfg(test)]
mod tests;
