//! One program for the tools that share most of their code: `job`, `task`,
//! `node`, `cluscfg`, `clusrun`, `hpcfwutil` and `hpcd` are the `hpcpack` binary
//! under seven names.
//!
//! Built as one binary, they take the space of one (a CLI toolset of five
//! 7–11 MB programs would be mostly the same bytes five times). `hpcpack`
//! picks the tool from the name it was started under (`argv[0]`), so an
//! installation may link the names to it; `hpcpack job submit …` works
//! too. Cargo cannot make links, so the `job`, `task`, … binaries it builds
//! are small launchers ([`launch`]) that start `hpcpack` beside them under
//! their own name.
//!
//! `hpcd-task`, `mpiexec` and `mpipingpong` stay programs of their own:
//! they are small (they link no head node and no HTTP client) and started
//! once per task or rank, where a launcher's extra `exec` would cost.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// A tool's `main`.
type Main = fn() -> ExitCode;

/// The tools `hpcpack` carries, with their entry points.
pub const TOOLS: &[(&str, Main)] = &[
    ("job", crate::cli::job::main),
    ("task", crate::cli::task::main),
    ("node", crate::cli::node::main),
    ("cluscfg", crate::cli::cluscfg::main),
    ("clusrun", crate::cli::clusrun::main),
    ("hpcfwutil", crate::cli::hpcfwutil::main),
    ("hpcd", crate::cli::hpcd::main),
];

/// The multi-call binary's file name.
pub const BINARY: &str = "hpcpack";

/// Exit status when the program to run cannot be started (a shell's 127).
const CANNOT_START: u8 = 127;

fn entry(name: &str) -> Option<Main> {
    TOOLS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The file name part of `argv[0]`.
fn called_as(arg0: &OsString) -> String {
    Path::new(arg0).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `main` of the `hpcpack` binary.
pub fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    if let Some(run) = entry(&called_as(&arg0)) {
        return run();
    }
    // `hpcpack <tool> <args>`: the tool is started under its own name, so
    // its parser, messages and the processes it starts see that name.
    let rest: Vec<OsString> = args.collect();
    let first = rest.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
    match first.as_str() {
        "" | "-h" | "--help" | "help" | "/?" | "-?" => {
            crate::cli::out(&usage());
            ExitCode::SUCCESS
        }
        "-V" | "--version" => {
            crate::cli::out(&format!("{BINARY} {}\n", crate::VERSION));
            ExitCode::SUCCESS
        }
        tool if entry(tool).is_some() => match std::env::current_exe() {
            Ok(exe) => exec(&exe, tool, &rest[1..]),
            Err(e) => cannot_start(tool, Path::new(BINARY), &e),
        },
        other => {
            eprintln!("{BINARY}: '{other}' is not one of its tools ({}); see {BINARY} --help", names().join(", "));
            ExitCode::from(crate::error::exit::USAGE)
        }
    }
}

fn names() -> Vec<&'static str> {
    TOOLS.iter().map(|(n, _)| *n).collect()
}

fn usage() -> String {
    format!(
        "{BINARY} {}: HPC Pack's command line for Linux, as one program.\n\n\
         Usage: {BINARY} <tool> [arguments]   (or start it under a tool's name)\n\n\
         Tools: {}\n\n\
         `{BINARY} job /?` shows the help of `job`, and so on for each tool.\n",
        crate::VERSION,
        names().join(", ")
    )
}

/// `main` of the `job`, `task`, … launchers: starts `hpcpack` (beside this
/// program) as `tool`, with this program's arguments.
pub fn launch(tool: &str) -> ExitCode {
    let Some(bin) = beside_me() else {
        return cannot_start(tool, Path::new(BINARY), &std::io::Error::from(std::io::ErrorKind::NotFound));
    };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    exec(&bin, tool, &args)
}

/// `hpcpack` in this program's directory.
fn beside_me() -> Option<PathBuf> {
    std::env::current_exe().ok()?.parent().map(|d| d.join(BINARY))
}

/// Replaces this process with `bin` started as `tool`; returns only on
/// failure.
fn exec(bin: &Path, tool: &str, args: &[OsString]) -> ExitCode {
    let e = Command::new(bin).arg0(tool).args(args).exec();
    cannot_start(tool, bin, &e)
}

fn cannot_start(tool: &str, bin: &Path, e: &std::io::Error) -> ExitCode {
    eprintln!(
        "{tool}: cannot start {}: {e}; the tools run the {BINARY} program installed beside them: reinstall them together (cargo install --path .)",
        bin.display()
    );
    ExitCode::from(CANNOT_START)
}

/// The file that runs `tool` of this installation (started with `argv[0]`
/// set to `tool`): this very program when it is `hpcpack`, else the tool's
/// file beside this program, else `tool` on `PATH`.
pub fn program(tool: &str) -> PathBuf {
    let Ok(me) = std::env::current_exe() else { return PathBuf::from(tool) };
    if me.file_name().is_some_and(|n| n == BINARY) && entry(tool).is_some() {
        return me;
    }
    match me.parent().map(|d| d.join(tool)) {
        Some(p) if p.is_file() => p,
        _ => PathBuf::from(tool),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tool_is_the_file_name_of_argv0() {
        assert_eq!(called_as(&"/usr/local/bin/job".into()), "job");
        assert_eq!(called_as(&"task".into()), "task");
        assert!(entry(&called_as(&"/opt/x/hpcd".into())).is_some());
        assert!(entry(&called_as(&"/opt/x/hpcpack".into())).is_none());
        assert!(entry("mpiexec").is_none(), "mpiexec is a program of its own");
    }
}
