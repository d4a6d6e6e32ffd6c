//! Man pages and shell completions of every tool, generated into `man/` and
//! `completions/`: from the clap definitions for the HPC Pack tools, and
//! from the help texts for `mpiexec` and `mpipingpong`, whose command lines
//! are parsed by hand (MS-MPI's grammar: single-dash options, case
//! insensitive, ending at the program). A test compares the files in the
//! repository with what this generates, so they cannot go stale; run
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
        for (shell, ext) in crate::cli::complete::shells::SHELLS {
            // The HPC Pack tools answer their scripts themselves, from this
            // same clap model (cli::complete); hpcd's options are GNU-style.
            let text = if hpc {
                crate::cli::complete::shells::script(shell, &name).into_bytes()
            } else {
                let shell: clap_complete::Shell = shell.parse().unwrap_or(clap_complete::Shell::Bash);
                let mut buf = Vec::new();
                clap_complete::generate(shell, &mut cmd.clone(), name.clone(), &mut buf);
                buf
            };
            out.push((format!("completions/{name}.{ext}"), text));
        }
    }
    for tool in mpi_tools() {
        out.push((format!("man/{}.1", tool.name), tool.man().into_bytes()));
        for (ext, text) in tool.completions() {
            out.push((format!("completions/{}.{ext}", tool.name), text.into_bytes()));
        }
    }
    out
}

/// A tool whose documentation comes from its help text.
struct MpiTool {
    name: &'static str,
    summary: &'static str,
    synopsis: &'static str,
    /// (section title, verbatim text).
    sections: Vec<(&'static str, String)>,
    options: Vec<String>,
}

fn mpi_tools() -> Vec<MpiTool> {
    use crate::mpi::mpiexec::help;
    let options_of = |text: &str| -> Vec<String> {
        let mut o: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim_start().split([' ', ',']).next())
            .filter(|w| w.starts_with('-') && w.len() > 1 && !w.contains('?'))
            .map(str::to_string)
            .collect();
        o.dedup();
        o.sort();
        o.dedup();
        o
    };
    let mut mpiexec_opts = options_of(help::all());
    mpiexec_opts.extend(["-genv", "-gpath", "-gdir", "-gwdir", "-ghost", "-gmachinefile"].map(String::from));
    mpiexec_opts.sort();
    mpiexec_opts.dedup();
    vec![
        MpiTool {
            name: "mpiexec",
            summary: "start an MPI job (MS-MPI's launcher)",
            synopsis: "mpiexec [options] executable [args] [ : [options] exe [args] : ... ]\n.br\nmpiexec -configfile <file name>",
            sections: vec![
                ("OPTIONS", help::all().to_string()),
                ("ENVIRONMENT", help::environment().to_string()),
                (
                    "CHANNELS",
                    "Each rank reads these from its environment (set them with -env or -genv):\n\
MSMPI_DISABLE_SHM=1    no shared memory between ranks of one host\n\
MSMPI_DISABLE_SOCK=1   no TCP; a pair with no other channel fails, saying why\n\
MSMPI_DISABLE_ND=1     no RDMA verbs\n\
MSMPI_PRECONNECT=all|*|<ranks>   connect those ranks to every rank at init\n\
MPICH_NETMASK=<addr>/<mask>      the network TCP uses\n\
MSMPI_CONNECTIVITY_TABLE=1       rank 0 prints the channel of every pair at the end\n"
                        .to_string(),
                ),
            ],
            options: mpiexec_opts,
        },
        MpiTool {
            name: "mpipingpong",
            summary: "measure latency and throughput between every pair of nodes",
            synopsis: "mpiexec [mpiexec options] mpipingpong [options] [output-filename]",
            sections: vec![("OPTIONS", crate::pingpong::options::HELP.to_string())],
            options: options_of(crate::pingpong::options::HELP),
        },
    ]
}

/// Escapes text for a roff no-fill block.
fn roff_verbatim(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e").replace('-', "\\-");
            if l.starts_with('.') || l.starts_with('\'') { format!("\\&{l}") } else { l }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl MpiTool {
    fn man(&self) -> String {
        let mut m = format!(
            ".TH {} 1 \"{}\"\n.SH NAME\n{} \\- {}\n.SH SYNOPSIS\n{}\n",
            self.name,
            crate::VERSION,
            self.name,
            self.summary,
            self.synopsis.replace('-', "\\-")
        );
        for (title, text) in &self.sections {
            m.push_str(&format!(".SH {title}\n.nf\n{}\n.fi\n", roff_verbatim(text)));
        }
        m
    }

    fn completions(&self) -> Vec<(&'static str, String)> {
        let name = self.name;
        let words = self.options.join(" ");
        let fname = format!("_{}", name.replace('-', "_"));
        let bash = format!(
            "# bash completion for {name}: options until the program, then files\n\
{fname}() {{\n    local cur=${{COMP_WORDS[COMP_CWORD]}}\n    if [[ $cur == -* ]]; then\n        COMPREPLY=($(compgen -W \"{words}\" -- \"$cur\"))\n    fi\n}}\n\
complete -o default -o bashdefault -F {fname} {name}\n"
        );
        let zsh = format!(
            "#compdef {name}\n# zsh completion for {name}: options until the program, then files\n\
local -a opts\nopts=({words})\nif [[ $PREFIX == -* ]]; then\n    compadd -a opts\nelse\n    _files\nfi\n"
        );
        let fish: String = std::iter::once(format!("# fish completion for {name}\n"))
            .chain(self.options.iter().map(|o| {
                let bare = o.trim_start_matches('-');
                if o.starts_with("--") {
                    format!("complete -c {name} -l {bare}\n")
                } else {
                    format!("complete -c {name} -o {bare}\n")
                }
            }))
            .collect();
        vec![("bash", bash), ("zsh", zsh), ("fish", fish)]
    }
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
