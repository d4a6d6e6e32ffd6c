//! The command-line tools: one module per tool, sharing the grammar step
//! ([`grammar`]), the output forms ([`output`]), the option types
//! ([`opts`]) and one context ([`Ctx`]) that holds the settings, the output
//! format and the connection to the head node.
//!
//! Each tool's `main` goes: raw arguments → [`parse`] (HPC Pack grammar,
//! then clap) → settings → the subcommand's function with a [`Ctx`] → exit
//! code. Commands print only through the context's [`output::Printer`].

pub mod cluscfg;
pub mod clusrun;
pub mod hpcfwutil;
pub mod complete;
pub mod docs;
pub mod grammar;
pub mod hpcd;
pub mod job;
pub mod names;
pub mod node;
pub mod opts;
pub mod output;
pub mod task;

use crate::client::Backend;
use crate::config::Settings;
use crate::error::{Error, exit};
use output::{Format, Printer, StdPrinter};
use std::cell::{OnceCell, RefCell};
use std::process::ExitCode;

/// What a command works with.
pub struct Ctx {
    pub settings: Settings,
    pub format: Format,
    out: RefCell<Box<dyn Printer>>,
    backend: OnceCell<Box<dyn Backend>>,
}

impl Ctx {
    /// A context printing to stdout in `format`; `scheduler` is `/scheduler:`.
    pub fn new(scheduler: Option<String>, format: Format) -> anyhow::Result<Ctx> {
        let settings = crate::config::load(scheduler)?;
        Ok(Ctx {
            settings,
            format,
            out: RefCell::new(Box::new(StdPrinter::new(std::io::stdout(), format))),
            backend: OnceCell::new(),
        })
    }

    /// Prints a message line; returns success, for the last line of a command.
    pub fn message(&self, line: &str) -> anyhow::Result<u8> {
        self.out.borrow_mut().message(line)?;
        Ok(exit::OK)
    }

    /// Prints one object.
    pub fn object(&self, r: &output::Record) -> anyhow::Result<()> {
        Ok(self.out.borrow_mut().object(r)?)
    }

    /// Prints one object whose last field is read from `value` as it
    /// arrives (see [`output::Printer::object_streamed`]).
    pub fn object_streamed(&self, r: &output::Record, label: &str, key: &str, value: &mut dyn std::io::Read) -> anyhow::Result<()> {
        Ok(self.out.borrow_mut().object_streamed(r, label, key, value)?)
    }

    /// Prints several objects (a table shows `columns`).
    pub fn objects(&self, rs: &[output::Record], columns: &[output::Column]) -> anyhow::Result<()> {
        Ok(self.out.borrow_mut().objects(rs, columns)?)
    }

    /// The head node, connected (and started, for the embedded one) on first use.
    pub fn backend(&self) -> anyhow::Result<&dyn Backend> {
        if self.backend.get().is_none() {
            let b = crate::client::connect(&self.settings)?;
            let _ = self.backend.set(b);
        }
        Ok(self.backend.get().map(|b| b.as_ref()).ok_or_else(|| Error::Unreachable("no head node".into()))?)
    }
}

/// Writes `text` to stdout. A reader that went away ends the program as
/// SIGPIPE ends a Unix tool ([`crate::node::sys::end_by_sigpipe`]); print!
/// would panic instead.
pub fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            crate::node::sys::end_by_sigpipe();
        }
    }
}

/// Writes a line to stderr, as [`out`] does to stdout.
pub fn note(line: &str) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stderr().lock(), "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            crate::node::sys::end_by_sigpipe();
        }
    }
}

/// True if `e` is a write to a reader that went away (stdout or stderr
/// closed), which ends a command quietly.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// How a tool's command line is shaped beyond its options.
pub struct ToolSpec {
    pub name: &'static str,
    /// Subcommands whose trailing tokens are a verbatim command line, and
    /// how many positionals come before it.
    pub command_after: &'static [(&'static str, usize)],
}

/// The outcome of parsing: the parsed value, or an exit code after help or
/// an error was printed.
pub enum Parsed<T> {
    Run(T),
    Exit(ExitCode),
}

/// Parses a tool's command line: picks the subcommand (any case), rewrites
/// HPC Pack options with [`grammar::normalize`], then lets clap parse. Help
/// and errors come out in HPC Pack's spelling; an error is one line. With
/// [`crate::env::HPCPACK_COMPLETE`] set, the arguments are a shell's
/// completion request instead ([`complete`]).
pub fn parse<T: clap::Parser>(spec: &ToolSpec, raw: Vec<String>) -> Parsed<T> {
    let mut cmd = T::command();
    let args: Vec<String> = raw.into_iter().skip(1).collect();
    if let Some(shell) = crate::env::var(crate::env::HPCPACK_COMPLETE) {
        return Parsed::Exit(complete::main(spec, cmd, &shell, &args));
    }
    let Some(first) = args.first() else {
        print_help(&mut cmd);
        return Parsed::Exit(ExitCode::from(exit::USAGE));
    };
    if grammar::is_help(first) || first == "--help" || first == "-h" {
        print_help(&mut cmd);
        return Parsed::Exit(ExitCode::SUCCESS);
    }
    if first == "--version" {
        out(&format!("{} {}\n", spec.name, crate::VERSION));
        return Parsed::Exit(ExitCode::SUCCESS);
    }
    let Some(sub) = cmd.get_subcommands().find(|s| s.get_name().eq_ignore_ascii_case(first)).map(|s| s.get_name().to_string())
    else {
        let names: Vec<&str> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).map(|s| s.get_name()).collect();
        return usage_error(spec.name, &format!("unknown subcommand '{first}'; the subcommands are: {}", names.join(", ")));
    };
    let sub_cmd = cmd.find_subcommand(&sub).cloned().unwrap_or_else(|| clap::Command::new(sub.clone()));
    let options: Vec<String> =
        sub_cmd.get_arguments().filter_map(|a| a.get_long().map(|l| l.to_ascii_lowercase())).collect();
    let command_after = spec.command_after.iter().find(|(s, _)| *s == sub).map(|(_, n)| *n);
    let shape = grammar::Shape { options: &options, command_after };
    let rest = match grammar::normalize(&args[1..], &shape) {
        Ok(r) => r,
        Err(e) => return usage_error(&format!("{} {sub}", spec.name), &e.to_string()),
    };
    let mut argv = vec![spec.name.to_string(), sub.clone()];
    argv.extend(rest);
    clap_parse(&format!("{} {sub}", spec.name), cmd, argv)
}

/// [`parse`] for a tool without subcommands (`clusrun`): every option is
/// the tool's, and the first word that is not one starts the command line.
pub fn parse_flat<T: clap::Parser>(spec: &ToolSpec, raw: Vec<String>) -> Parsed<T> {
    let mut cmd = T::command();
    let args: Vec<String> = raw.into_iter().skip(1).collect();
    // No completion script calls it, and a command line is never run for one.
    if crate::env::var(crate::env::HPCPACK_COMPLETE).is_some() {
        return Parsed::Exit(ExitCode::SUCCESS);
    }
    let Some(first) = args.first() else {
        print_help(&mut cmd);
        return Parsed::Exit(ExitCode::from(exit::USAGE));
    };
    if first == "--version" {
        out(&format!("{} {}\n", spec.name, crate::VERSION));
        return Parsed::Exit(ExitCode::SUCCESS);
    }
    let options: Vec<String> = cmd.get_arguments().filter_map(|a| a.get_long().map(|l| l.to_ascii_lowercase())).collect();
    let shape = grammar::Shape { options: &options, command_after: Some(0) };
    let rest = match grammar::normalize(&args, &shape) {
        Ok(r) => r,
        Err(e) => return usage_error(spec.name, &e.to_string()),
    };
    let mut argv = vec![spec.name.to_string()];
    argv.extend(rest);
    clap_parse(spec.name, cmd, argv)
}

/// clap's parse of a normalised command line with `cmd` (`T`'s command,
/// built once: building it is most of a command's start-up); help
/// printed, an error in one line naming `who`.
fn clap_parse<T: clap::Parser>(who: &str, cmd: clap::Command, argv: Vec<String>) -> Parsed<T> {
    let parsed = cmd.try_get_matches_from(argv).and_then(|mut m| T::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(t) => Parsed::Run(t),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                out(&grammar::hpc_help(&e.render().to_string()));
                Parsed::Exit(ExitCode::SUCCESS)
            }
            _ => {
                let text = grammar::hpc_style(&e.render().to_string());
                let mut lines = text.lines().filter(|l| !l.trim().is_empty());
                let mut line = lines.next().unwrap_or("").trim_start_matches("error: ").to_string();
                if line.ends_with(':') {
                    // "the following required arguments were not provided:" names them below.
                    let names: Vec<&str> = lines.take_while(|l| l.starts_with("  ")).map(str::trim).collect();
                    line = format!("{line} {}", names.join(" "));
                }
                usage_error(who, &line)
            }
        },
    }
}

fn print_help(cmd: &mut clap::Command) {
    out(&grammar::hpc_help(&cmd.render_help().to_string()));
}

fn usage_error<T>(who: &str, msg: &str) -> Parsed<T> {
    note(&format!("{who}: {msg}"));
    Parsed::Exit(ExitCode::from(exit::USAGE))
}

/// A tool's whole run: [`parse`], then `dispatch` (which returns the
/// subcommand's name for messages and its outcome), then the exit code.
pub fn run_tool<T: clap::Parser>(spec: &ToolSpec, dispatch: impl FnOnce(T) -> (&'static str, anyhow::Result<u8>)) -> ExitCode {
    match parse::<T>(spec, std::env::args().collect()) {
        Parsed::Run(cli) => {
            let (who, r) = dispatch(cli);
            finish(who, r)
        }
        Parsed::Exit(code) => code,
    }
}

/// Runs a command function and turns its error into one line and an exit code.
pub fn finish(who: &str, r: anyhow::Result<u8>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => crate::node::sys::end_by_sigpipe(),
        Err(e) => {
            note(&format!("{who}: {e:#}"));
            ExitCode::from(crate::error::exit_code_of(&e))
        }
    }
}
