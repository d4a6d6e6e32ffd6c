//! MS-MPI's `mpiexec` option grammar, turned into a [`Plan`].
//!
//! The rules are those of `mp_parse_command_line.cpp`:
//!
//! * an option starts with `-` or `/`; its name is matched case-insensitively
//!   against a fixed table of exact aliases (no abbreviations);
//! * options stop at the first token that is not a known option: that token
//!   is the executable and everything after it its arguments, untouched; an
//!   unknown `-x`/`/x` before it is `Unknown option: -x`;
//! * a standalone `:` ends a section (a trailing `:` is ignored);
//! * `-configfile <file>` must be the only argument; the file's lines become
//!   sections (see [`configfile_argv`]);
//! * `-optionfile <file>` inserts the options of a file (parsing stops at its
//!   first non-option, whose remaining tokens MS-MPI silently ignores).
//!
//! One Linux adaptation: a `/`-token that names no option and holds another
//! `/` (`/usr/bin/hostname`) is the executable, not an unknown option, since
//! absolute paths start with `/` here. Files and environment come through
//! [`Inputs`], so the parser itself does no I/O.

use std::io;

use super::affinity::{self, Layout};
use super::error::MpiexecError;
use super::hosts::{self, is_digits, is_pos_number, wtoi};
use super::plan::{Command, Global, Help, Host, MAX_RANKS, Plan, Section};
use crate::env::{MPIEXEC_AFFINITY, MPIEXEC_TIMEOUT};

/// Where the parser reads files (machinefiles, configfiles, optionfiles) and
/// environment variables (`-genvlist`, `MPIEXEC_TIMEOUT`, `MPIEXEC_AFFINITY`).
pub trait Inputs {
    /// The value of an environment variable, if set.
    fn var(&self, name: &str) -> Option<String>;
    /// The text of a file.
    fn read_file(&self, path: &str) -> io::Result<String>;
}

/// The real process environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsInputs;

impl Inputs for OsInputs {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn read_file(&self, path: &str) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// An I/O error as the C runtime's `_wcserror` words it (no "(os error N)").
fn reason(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Optionfiles may include optionfiles; this bounds the nesting (MS-MPI has
/// no bound and would recurse until it crashes).
const MAX_OPTIONFILE_DEPTH: usize = 16;

fn is_flag(tok: &str) -> bool {
    tok.starts_with('-') || tok.starts_with('/')
}

/// Turns a configfile's text into argv, as `smpd_get_argv_from_file` does:
/// each logical line is a section (joined with ` : `); a line ending in `\`
/// continues on the next (the `\` is dropped); lines whose first non-blank
/// is `#` are skipped without ending a continuation; a blank line ends one.
/// Tokens split on whitespace; double quotes group and are removed.
pub fn configfile_argv(text: &str) -> Result<Vec<String>, &'static str> {
    let mut buf = String::new();
    let mut concat = false;
    for line in text.lines() {
        let start = line.trim_start();
        if start.starts_with('#') {
            continue;
        }
        if start.is_empty() {
            if concat {
                buf.push_str(" : ");
                concat = false;
            }
            continue;
        }
        let content = line.trim_end();
        if let Some(body) = content.strip_suffix('\\') {
            buf.push_str(body);
            concat = true;
            continue;
        }
        buf.push_str(content);
        buf.push_str(" : ");
        concat = false;
    }
    let argv = split_command_line(&buf);
    if argv.is_empty() {
        return Err("no commands in file");
    }
    Ok(argv)
}

/// Splits a command line on whitespace; `"…"` groups and its quotes go.
fn split_command_line(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    // A trailing section separator ends nothing.
    if out.last().is_some_and(|t| t == ":") {
        out.pop();
    }
    out
}

/// Parses `mpiexec`'s arguments (without the program name).
///
/// No arguments at all gives [`Help::Common`] (an assumption: MS-MPI's
/// `main`, not this file, decides that case).
pub fn parse(args: &[String], inputs: &dyn Inputs) -> Result<Command, MpiexecError> {
    if args.is_empty() {
        return Ok(Command::Help(Help::Common));
    }
    let mut argv = args.to_vec();
    // The exact spelling, case-sensitive, as MS-MPI checks it; other
    // spellings reach the table and are "must be the first and only".
    if is_flag(&argv[0]) && &argv[0][1..] == "configfile" {
        let opt = argv[0].clone();
        let file = argv
            .get(1)
            .ok_or_else(|| MpiexecError::ExpectingFilename(opt.clone()))?
            .clone();
        if argv.len() > 2 {
            return Err(MpiexecError::ConfigfileTooMany(opt));
        }
        let text = inputs
            .read_file(&file)
            .map_err(|e| MpiexecError::Configfile {
                file: file.clone(),
                reason: reason(&e),
            })?;
        argv = configfile_argv(&text).map_err(|r| MpiexecError::Configfile {
            file: file.clone(),
            reason: r.to_string(),
        })?;
    }

    let mut p = Parser {
        inputs,
        global: Global::default(),
        depth: 0,
    };
    if let Some(v) = inputs.var(MPIEXEC_AFFINITY) {
        // MS-MPI prints a bad value and carries on without affinity.
        p.global.affinity = affinity::parse_layout(&v, affinity::FROM_ENV).unwrap_or_default();
    }
    let mut blocks: Vec<&[String]> = argv.split(|t| t == ":").collect();
    if argv.last().is_some_and(|t| t == ":") {
        blocks.pop();
    }
    let mut sections = Vec::with_capacity(blocks.len());
    for block in blocks {
        let mut s = SectionState::default();
        let at = match p.options(block, &mut s)? {
            Flow::Help(h) => return Ok(Command::Help(h)),
            Flow::At(at) => at,
        };
        let exe = match block.get(at) {
            None => return Err(MpiexecError::NoExecutable),
            Some(t) if is_flag(t) && !(t.starts_with('/') && t[1..].contains('/')) => {
                return Err(MpiexecError::UnknownOption(t.clone()));
            }
            Some(t) => t.clone(),
        };
        s.section.exe = exe;
        s.section.args = block[at + 1..].to_vec();
        sections.push(s.section);
    }
    if p.global.timeout.is_none() {
        p.global.timeout = inputs
            .var(MPIEXEC_TIMEOUT)
            .filter(|v| is_pos_number(v))
            .map(|v| wtoi(&v));
    }
    Ok(Command::Run(Plan {
        global: p.global,
        sections,
    }))
}

/// Where option parsing stopped.
enum Flow {
    /// At this token index (the executable, an unknown option, or the end).
    At(usize),
    /// A help option was reached.
    Help(Help),
}

/// A section being parsed, and whether a count came from `-n` or `-hosts`.
#[derive(Default)]
struct SectionState {
    section: Section,
    counted: bool,
}

struct Parser<'a> {
    inputs: &'a dyn Inputs,
    global: Global,
    depth: usize,
}

impl Parser<'_> {
    /// Parses options from `toks` into `s` and the globals.
    fn options(&mut self, toks: &[String], s: &mut SectionState) -> Result<Flow, MpiexecError> {
        let mut i = 0;
        while let Some(tok) = toks.get(i).filter(|t| is_flag(t)) {
            let name = tok[1..].to_ascii_lowercase();
            let opt = tok.clone();
            let arg = toks.get(i + 1);
            let need =
                |err: fn(String) -> MpiexecError| arg.cloned().ok_or_else(|| err(opt.clone()));
            let g = &mut self.global;
            i += match name.as_str() {
                "?" | "help" => return Ok(Flow::Help(Help::Common)),
                "??" | "help2" => return Ok(Flow::Help(Help::All)),
                "???" | "help3" => return Ok(Flow::Help(Help::Environment)),
                "n" | "np" => {
                    if s.counted {
                        return Err(MpiexecError::ProcessCountTwice(opt));
                    }
                    let v = arg.filter(|v| is_pos_number(v) || v.as_str() == "*");
                    let v = v.ok_or(MpiexecError::ExpectingProcesses(opt))?;
                    if v != "*" {
                        let n = wtoi(v);
                        if n > MAX_RANKS {
                            return Err(MpiexecError::TooManyRanks);
                        }
                        s.section.processes = Some(n);
                        s.counted = true;
                    }
                    2
                }
                "c" | "cores" => {
                    if g.cores_per_host.is_some() {
                        return Err(MpiexecError::CoresTwice(opt));
                    }
                    let v = arg
                        .filter(|v| is_pos_number(v))
                        .ok_or(MpiexecError::ExpectingCores(opt))?;
                    let n = wtoi(v);
                    if n > MAX_RANKS {
                        return Err(MpiexecError::TooManyCores);
                    }
                    g.cores_per_host = Some(n);
                    2
                }
                "hosts" => {
                    if s.counted {
                        return Err(MpiexecError::ProcessCountTwice(opt));
                    }
                    if s.section.hosts.is_some() {
                        return Err(MpiexecError::HostsTwice(opt));
                    }
                    let (list, used, explicit) = hosts::parse_host_tokens(&toks[i + 1..])?;
                    g.explicit_affinity |= explicit;
                    s.section.hosts = Some(list);
                    s.counted = true;
                    1 + used
                }
                "host" | "machinefile" => {
                    if s.section.hosts.is_some() {
                        return Err(MpiexecError::HostsTwice(opt));
                    }
                    s.section.hosts = Some(self.host_option(&name, &opt, arg)?);
                    2
                }
                "ghost" | "gmachinefile" => {
                    if g.hosts.is_some() {
                        return Err(MpiexecError::GlobalHostsTwice(opt));
                    }
                    let list = self.host_option(&name[1..], &opt, arg)?;
                    self.global.hosts = Some(list);
                    2
                }
                "env" | "genv" => {
                    let (Some(k), Some(v)) = (arg, toks.get(i + 2)) else {
                        return Err(MpiexecError::ExpectingEnv(opt));
                    };
                    let list = if name == "env" {
                        &mut s.section.env
                    } else {
                        &mut g.env
                    };
                    list.push((k.clone(), v.clone()));
                    3
                }
                "genvlist" => {
                    let list = need(MpiexecError::ExpectingEnvList)?;
                    for var in list.split(',').filter(|v| !v.is_empty()) {
                        if let Some(value) = self.inputs.var(var) {
                            g.env.push((var.to_string(), value));
                        }
                    }
                    2
                }
                "wdir" | "dir" => {
                    s.section.wdir = Some(need(MpiexecError::ExpectingDirectory)?);
                    2
                }
                "gwdir" | "gdir" => {
                    g.wdir = Some(need(MpiexecError::ExpectingDirectory)?);
                    2
                }
                "path" => {
                    s.section.path = Some(need(MpiexecError::ExpectingPath)?);
                    2
                }
                "gpath" => {
                    g.path = Some(need(MpiexecError::ExpectingPath)?);
                    2
                }
                "a" | "affinity" => {
                    if g.explicit_affinity {
                        return Err(MpiexecError::ExplicitAffinity);
                    }
                    if g.affinity.algorithm == affinity::Algorithm::Disabled {
                        g.affinity = Layout::SPREAD;
                    }
                    1
                }
                "al" | "affinity_layout" => {
                    let v = need(MpiexecError::ExpectingLayout)?;
                    if g.explicit_affinity {
                        return Err(MpiexecError::ExplicitAffinityLayout);
                    }
                    g.affinity = affinity::parse_layout(&v, affinity::FROM_OPTION)?;
                    2
                }
                "aa" | "affinity_auto" => {
                    g.affinity_auto = true;
                    1
                }
                "exitcodes" => {
                    g.exit_codes = true;
                    1
                }
                "l" | "lines" => {
                    g.lines = true;
                    1
                }
                "unicode" => {
                    g.unicode = true;
                    1
                }
                "savecreds" => {
                    g.save_creds = true;
                    1
                }
                "priority" => {
                    let v = arg.filter(|v| is_digits(v) && wtoi(v) <= 4);
                    s.section.priority =
                        Some(wtoi(v.ok_or(MpiexecError::ExpectingPriority(opt))?) as u8);
                    2
                }
                "p" | "port" => {
                    let v = arg
                        .filter(|v| is_pos_number(v))
                        .ok_or(MpiexecError::ExpectingPort(opt.clone()))?;
                    let port = (wtoi(v) & 0xffff) as u16;
                    if port == 0 {
                        return Err(MpiexecError::InvalidPort(opt));
                    }
                    g.port = Some(port);
                    2
                }
                "timeout" => {
                    let v = arg
                        .filter(|v| is_pos_number(v))
                        .ok_or(MpiexecError::ExpectingTimeout(opt))?;
                    g.timeout = Some(wtoi(v));
                    2
                }
                "job" => {
                    g.job = Some(need(MpiexecError::ExpectingJob)?);
                    2
                }
                "d" | "debug" => match arg.filter(|v| is_digits(v)) {
                    Some(v) => {
                        g.debug = Some((wtoi(v) & 3) as u8);
                        2
                    }
                    None => {
                        g.debug = Some(2);
                        1
                    }
                },
                "logfile" => {
                    g.log_file = Some(need(MpiexecError::ExpectingLogFile)?);
                    2
                }
                "pwd" => {
                    g.password = Some(need(MpiexecError::ExpectingPassword)?);
                    2
                }
                "configfile" => return Err(MpiexecError::ConfigfileNotAlone(opt)),
                "optionfile" => {
                    let file = need(MpiexecError::ExpectingFilename)?;
                    if let Flow::Help(h) = self.optionfile(&file, s)? {
                        return Ok(Flow::Help(h));
                    }
                    2
                }
                _ => return Ok(Flow::At(i)),
            };
        }
        Ok(Flow::At(i))
    }

    /// `-host`/`-machinefile` (or their global twins, `kind` without the g).
    fn host_option(
        &mut self,
        kind: &str,
        opt: &str,
        arg: Option<&String>,
    ) -> Result<Vec<Host>, MpiexecError> {
        if kind == "host" {
            let name = arg.ok_or_else(|| MpiexecError::ExpectingHost(opt.to_string()))?;
            return Ok(vec![Host::new(name, 1)]);
        }
        let file = arg.ok_or_else(|| MpiexecError::ExpectingMachinefile(opt.to_string()))?;
        let text = self
            .inputs
            .read_file(file)
            .map_err(|e| MpiexecError::MachinefileRead {
                file: file.clone(),
                reason: reason(&e),
            })?;
        let list = hosts::parse_machinefile(file, &text)?;
        self.global.explicit_affinity |= list.iter().any(|h| !h.masks.is_empty());
        self.global.machinefile_given = true;
        Ok(list)
    }

    /// Parses the options of an optionfile into the current section.
    fn optionfile(&mut self, file: &str, s: &mut SectionState) -> Result<Flow, MpiexecError> {
        if self.depth >= MAX_OPTIONFILE_DEPTH {
            return Err(MpiexecError::Optionfile(format!(
                "Error: optionfiles nested deeper than {MAX_OPTIONFILE_DEPTH}"
            )));
        }
        let text = self
            .inputs
            .read_file(file)
            .map_err(|e| MpiexecError::Optionfile(reason(&e)))?;
        let toks = configfile_argv(&text).map_err(|r| MpiexecError::Optionfile(r.to_string()))?;
        self.depth += 1;
        let flow = self.options(&toks, s);
        self.depth -= 1;
        match flow? {
            Flow::At(at) => match toks.get(at) {
                Some(t) if is_flag(t) => Err(MpiexecError::UnknownOption(t.clone())),
                _ => Ok(Flow::At(at)),
            },
            help => Ok(help),
        }
    }
}

#[cfg(test)]
#[path = "options_tests.rs"]
pub(super) mod tests;
