//! Man pages and shell completions of every tool, generated into `man/` and
//! `completions/`: from the clap definitions for the HPC Pack tools, and
//! from the help texts for `mpiexec` and `mpipingpong`, whose command lines
//! are parsed by hand (MS-MPI's grammar: single-dash options, case
//! insensitive, ending at the program). Every page (each subcommand at
//! every depth has one) ends with EXIT STATUS, ENVIRONMENT, EXAMPLES
//! ([`sections`]) and SEE ALSO, naming only pages there are. The
//! completion scripts of the HPC Pack tools are [`crate::cli::complete`]'s.
//! A test compares the files in the repository with what this generates,
//! so they cannot go stale; run `HPCPACK_BLESS=1 cargo test docs` to
//! rewrite them.

pub mod sections;

use clap::CommandFactory;
use std::path::Path;

/// Every tool's clap command, under its binary name.
pub fn commands() -> Vec<clap::Command> {
    vec![
        crate::cli::job::Cli::command(),
        crate::cli::task::Cli::command(),
        crate::cli::node::Cli::command(),
        crate::cli::cluscfg::Cli::command(),
        crate::cli::clusrun::Cli::command(),
        crate::cli::hpcfwutil::Cli::command(),
        crate::cli::hpcd::Cli::command(),
    ]
}

/// (relative path, contents) of every generated file.
pub fn generate() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let pages = man_pages();
    let names: Vec<&str> = pages.iter().map(|p| p.name.as_str()).collect();
    for p in &pages {
        out.push((format!("man/{}.1", p.name), p.roff(&names).into_bytes()));
    }
    for cmd in commands() {
        let name = cmd.get_name().to_string();
        // clusrun's words after its options are the command: the shell's
        // own completion of commands and files serves it.
        if name == "clusrun" {
            continue;
        }
        let hpc = name != "hpcd";
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
        for (ext, text) in tool.completions() {
            out.push((format!("completions/{}.{ext}", tool.name), text.into_bytes()));
        }
    }
    out
}

/// One man page: its own part (title to options), and what the common
/// sections need to know.
struct Page {
    /// The file name without `.1`: `job-submit`, `hpcd-local-start`.
    name: String,
    tool: String,
    /// The page of the command this one is a subcommand of.
    parent: Option<String>,
    /// (page, summary) of its subcommands.
    children: Vec<(String, String)>,
    body: String,
}

/// Every man page: a tool, each subcommand at every depth, and the MPI tools.
fn man_pages() -> Vec<Page> {
    let mut pages = Vec::new();
    for cmd in commands() {
        let tool = cmd.get_name().to_string();
        clap_pages(&mut pages, &tool, tool.clone(), tool.clone(), None, cmd);
    }
    for t in mpi_tools() {
        pages.push(Page { name: t.name.into(), tool: t.name.into(), parent: None, children: Vec::new(), body: t.man() });
    }
    pages
}

/// The page of `cmd` (shown as `shown`, `hpcd local`) and of its subcommands.
fn clap_pages(pages: &mut Vec<Page>, tool: &str, name: String, shown: String, parent: Option<String>, cmd: clap::Command) {
    let subs: Vec<clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned().collect();
    let children = subs.iter().map(|s| (format!("{name}-{}", s.get_name()), s.get_about().map(|a| a.to_string()).unwrap_or_default())).collect();
    let mut buf = Vec::new();
    // Rendering into a Vec cannot fail for I/O reasons.
    let _ = clap_mangen::Man::new(cmd.name(shown.clone())).title(name.clone()).render(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let text = if tool == "hpcd" { text } else { man_hpc_style(&text) };
    // clap's list names pages as `<parent> <sub>-<subsub>(1)` and lists
    // `help`; [`Page::roff`] writes the list of the pages there are.
    let body = drop_section(&text, "SUBCOMMANDS");
    pages.push(Page { name: name.clone(), tool: tool.into(), parent: parent.clone(), children, body });
    for s in subs {
        let sub = s.get_name().to_string();
        clap_pages(pages, tool, format!("{name}-{sub}"), format!("{shown} {sub}"), Some(name.clone()), s);
    }
}

/// `roff` without its section `title`.
fn drop_section(roff: &str, title: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    let mut skipping = false;
    for line in roff.split_inclusive('\n') {
        if line.starts_with(".SH ") {
            skipping = line.trim_end() == format!(".SH {title}");
        }
        if !skipping {
            out.push_str(line);
        }
    }
    out
}

/// Text for a roff paragraph: escapes, and `code` in bold.
fn roff_text(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    let ticks = t.matches('`').count();
    let mut out = String::with_capacity(t.len());
    for (i, part) in t.split('`').enumerate() {
        out.push_str(part);
        if i < ticks {
            out.push_str(if i % 2 == 0 { "\\fB" } else { "\\fR" });
        }
    }
    if out.starts_with('.') || out.starts_with('\'') { format!("\\&{out}") } else { out }
}

impl Page {
    /// The whole page: its own part, then SUBCOMMANDS, EXIT STATUS,
    /// ENVIRONMENT, EXAMPLES and SEE ALSO (before clap's VERSION).
    fn roff(&self, pages: &[&str]) -> String {
        // No hyphenation: names and commands are copied from here.
        let mut extra = String::from(".nh\n");
        if !self.children.is_empty() {
            extra.push_str(".SH SUBCOMMANDS\n");
            for (page, about) in &self.children {
                extra.push_str(&format!(".TP\n\\fB{}\\fR(1)\n{}\n", roff_text(page), roff_text(about)));
            }
        }
        extra.push_str(".SH \"EXIT STATUS\"\n");
        for (code, meaning) in sections::exit_status(&self.tool) {
            extra.push_str(&format!(".TP\n\\fB{code}\\fR\n{}\n", roff_text(meaning)));
        }
        extra.push_str(".SH ENVIRONMENT\n");
        for (var, what) in sections::environment(&self.tool) {
            extra.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff_text(var), roff_text(what)));
        }
        let examples = sections::examples(&self.name);
        extra.push_str(".SH EXAMPLES\n");
        for (command, what) in &examples {
            extra.push_str(&format!(".PP\n{}\n.PP\n.RS 4\n.nf\n\\fB{}\\fR\n.fi\n.RE\n", roff_text(what), roff_text(command)));
        }
        // A tool's page names the other tools; a subcommand's its parent.
        // Both name the tools their examples use.
        let mut see: Vec<String> = match &self.parent {
            Some(p) => vec![p.clone()],
            None => pages.iter().filter(|p| !p.contains('-') && **p != self.name).map(|p| p.to_string()).collect(),
        };
        for (command, _) in &examples {
            for word in command.split_whitespace() {
                let tool = word.to_string();
                if pages.contains(&word) && tool != self.tool && tool != self.name && !see.contains(&tool) {
                    see.push(tool);
                }
            }
        }
        if !see.is_empty() {
            let refs: Vec<String> = see.iter().map(|p| format!("\\fB{}\\fR(1)", roff_text(p))).collect();
            extra.push_str(&format!(".SH \"SEE ALSO\"\n{}\n", refs.join(", ")));
        }
        match self.body.find("\n.SH VERSION\n") {
            Some(i) => format!("{}\n{extra}{}", &self.body[..i], &self.body[i + 1..]),
            None => format!("{}{extra}", self.body),
        }
    }
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
                ("MPIEXEC ENVIRONMENT VARIABLES", help::environment().to_string()),
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
            m.push_str(&format!(".SH \"{title}\"\n.nf\n{}\n.fi\n", roff_verbatim(text)));
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
    let text = text
        .replace("\\fB-h\\fR|\\fB--help\\fR", "\\fB/?\\fR|\\fB/help\\fR")
        .replace("\\fB-h\\fR, \\fB--help\\fR", "\\fB/?\\fR, \\fB/help\\fR")
        .replace("\\fB--", "\\fB/");
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
