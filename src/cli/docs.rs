//! Man pages and shell completions of every tool, generated from the clap
//! definitions into `man/` and `completions/`. A test compares the files in
//! the repository with what this generates, so they cannot go stale; run
//! `HPCPACK_BLESS=1 cargo test docs` to rewrite them.

use clap::CommandFactory;
use std::path::Path;

/// Every tool's clap command, under its binary name.
pub fn commands() -> Vec<clap::Command> {
    vec![
        crate::cli::job::Cli::command(),
        crate::cli::task::Cli::command(),
        crate::cli::node::Cli::command(),
        crate::cli::cluscfg::Cli::command(),
        crate::cli::hpcd::Cli::command(),
    ]
}

/// (relative path, contents) of every generated file.
pub fn generate() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for cmd in commands() {
        let name = cmd.get_name().to_string();
        let hpc = name != "hpcd";
        let mut pages = vec![(name.clone(), cmd.clone())];
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages.push((format!("{name}-{}", sub.get_name()), sub.clone().name(format!("{name} {}", sub.get_name()))));
        }
        for (page, c) in pages {
            let mut buf = Vec::new();
            // Rendering into a Vec cannot fail for I/O reasons.
            let _ = clap_mangen::Man::new(c).render(&mut buf);
            let text = String::from_utf8_lossy(&buf).into_owned();
            let text = if hpc { man_hpc_style(&text) } else { text };
            out.push((format!("man/{page}.1"), text.into_bytes()));
        }
        for (shell, ext) in [
            (clap_complete::Shell::Bash, "bash"),
            (clap_complete::Shell::Zsh, "zsh"),
            (clap_complete::Shell::Fish, "fish"),
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), name.clone(), &mut buf);
            out.push((format!("completions/{name}.{ext}"), buf));
        }
    }
    out
}

/// HPC Pack spelling in roff: `\fB--name\fR \fI<x>\fR` becomes
/// `\fB/name\fR:\fI<x>\fR`, and `-h|--help` becomes `/?|/help`.
fn man_hpc_style(roff: &str) -> String {
    let text = roff.replace("\\-\\-", "--").replace("\\-", "-");
    let text = text.replace("\\fB-h\\fR|\\fB--help\\fR", "\\fB/?\\fR|\\fB/help\\fR").replace("\\fB--", "\\fB/");
    let lines: Vec<String> = text
        .lines()
        .map(|l| if l.starts_with("\\fB/") { l.replacen("\\fR \\fI<", "\\fR:\\fI<", 1).replace("[=", "[:") } else { l.to_string() })
        .collect();
    crate::cli::grammar::hpc_style(&(lines.join("\n") + "\n"))
}

/// Writes the generated files under `root`.
pub fn write_all(root: &Path) -> std::io::Result<()> {
    for (rel, data) in generate() {
        let p = root.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(p, data)?;
    }
    Ok(())
}
