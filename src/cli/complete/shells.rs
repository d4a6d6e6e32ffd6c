//! The completion scripts of bash, zsh and fish, and what passes between
//! them and the tool.
//!
//! A script runs `HPCPACK_COMPLETE=<shell> <tool> <arguments>`:
//! - bash: the command line up to the cursor (`COMP_LINE`, which the tool
//!   splits into words) and `COMP_WORDBREAKS`;
//! - zsh and fish: the words after the tool's name, the last one the word
//!   being completed (up to the cursor, maybe empty).
//!
//! The tool answers with lines. The first says what follows:
//! - `words`: one candidate per line; zsh and fish get `value<TAB>
//!   description`, bash the part of the value it replaces (bash completes
//!   only what follows the last `COMP_WORDBREAKS` character, such as the
//!   `:` of `/format:`);
//! - `files` or `dirs`, then the text to put before each name and the
//!   part of the name typed so far: the shell completes file names;
//! - `commands`, an empty line, then the command typed so far.
//!
//! A word that ends in `:`, `=`, `.` or `,` (`/nodegroup:`, `7.`) is
//! completed without a space after it, as more is to come.

use super::Reply;

/// bash's default `COMP_WORDBREAKS`.
const BASH_WORDBREAKS: &str = " \t\n\"'><=;|&(:";

/// The shells that have scripts.
pub const SHELLS: &[(&str, &str)] = &[("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")];

/// A completion request as a script sent it.
pub struct Request {
    shell: String,
    /// The words after the tool's name; the last is being completed.
    pub words: Vec<String>,
    /// bash: where in the last word the text bash replaces starts.
    replaced_from: usize,
}

impl Request {
    /// Reads the arguments a script of `shell` passes; `None` for a shell
    /// without a script.
    pub fn parse(shell: &str, args: &[String]) -> Option<Request> {
        let (words, replaced_from) = match shell {
            "bash" => {
                let line = args.first().map(String::as_str).unwrap_or("");
                let breaks = args.get(1).map(String::as_str).unwrap_or(BASH_WORDBREAKS);
                let mut words = split_line(line);
                if !words.is_empty() {
                    words.remove(0);
                }
                let cur = words.last().map(String::as_str).unwrap_or("");
                let from = cur.char_indices().filter(|(_, c)| breaks.contains(*c)).map(|(i, c)| i + c.len_utf8()).next_back().unwrap_or(0);
                (words, from)
            }
            "zsh" | "fish" => (args.to_vec(), 0),
            _ => return None,
        };
        let words = if words.is_empty() { vec![String::new()] } else { words };
        Some(Request { shell: shell.to_string(), words, replaced_from })
    }

    /// The answer to print for `reply`.
    pub fn answer(&self, reply: &Reply) -> String {
        let cur = self.words.last().map(String::as_str).unwrap_or("");
        let bash = self.shell == "bash";
        let from = if bash { self.replaced_from.min(cur.len()) } else { 0 };
        let mut out = String::new();
        match reply {
            Reply::Words(cands) => {
                out.push_str("words\n");
                for c in cands {
                    if bash {
                        out.push_str(c.value.get(from..).unwrap_or(&c.value));
                    } else {
                        out.push_str(&c.value);
                        if !c.help.is_empty() {
                            out.push('\t');
                            out.push_str(&c.help.replace(['\t', '\n'], " "));
                        }
                    }
                    out.push('\n');
                }
            }
            Reply::Files { prefix, dirs } => {
                let typed = cur.get(prefix.len()..).unwrap_or("");
                let before = prefix.get(from..).unwrap_or("");
                out.push_str(if *dirs { "dirs\n" } else { "files\n" });
                out.push_str(&format!("{before}\n{typed}\n"));
            }
            Reply::Commands => out.push_str(&format!("commands\n\n{}\n", &cur[from..])),
        }
        out
    }
}

/// Splits a command line into words as the shell would: blanks separate
/// words, quotes and backslashes quote. A line ending in a blank ends
/// with an empty word (the one being started).
fn split_line(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => match chars.next() {
                Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                Some(n) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => cur.push('\\'),
            },
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (None, ' ' | '\t' | '\n') => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    words.push(cur);
    words
}

/// The completion script of `tool` for `shell` (bash, zsh or fish).
pub fn script(shell: &str, tool: &str) -> String {
    let f = format!("_hpcpack_{tool}");
    let head = format!(
        "completion for {tool}, generated by src/cli/docs.rs: HPC Pack's /option:value\n\
         # spelling (and --option=value), with values, and ids and names from a head\n\
         # node that runs already (none is started). {tool} answers itself, asked with\n\
         # HPCPACK_COMPLETE={shell} (see src/cli/complete/shells.rs)."
    );
    match shell {
        "bash" => format!(
            r#"# bash {head}
{f}() {{
    local tool=${{COMP_WORDS[0]}} w
    [[ $tool == "~/"* ]] && tool=$HOME/${{tool#"~/"}}
    local -a answer
    mapfile -t answer < <(HPCPACK_COMPLETE=bash "$tool" "${{COMP_LINE:0:COMP_POINT}}" "$COMP_WORDBREAKS" 2>/dev/null)
    COMPREPLY=()
    case ${{answer[0]}} in
        words)
            COMPREPLY=("${{answer[@]:1}}")
            for w in "${{COMPREPLY[@]}}"; do
                if [[ $w == *[:=.,] ]]; then compopt -o nospace 2>/dev/null; break; fi
            done ;;
        files | dirs)
            compopt -o filenames 2>/dev/null
            local IFS=$'\n' flag=-f
            [[ ${{answer[0]}} == dirs ]] && flag=-d
            COMPREPLY=($(compgen $flag -- "${{answer[2]}}"))
            [[ -n ${{answer[1]}} ]] && COMPREPLY=("${{COMPREPLY[@]/#/${{answer[1]}}}}") ;;
        commands)
            local IFS=$'\n'
            COMPREPLY=($(compgen -c -- "${{answer[2]}}" | sort -u)) ;;
    esac
}}
complete -F {f} {tool}
"#
        ),
        "zsh" => format!(
            r#"#compdef {tool}
# zsh {head}
{f}() {{
    local -a answer vals shown bare bare_shown
    local line v d
    answer=("${{(@f)$(HPCPACK_COMPLETE=zsh ${{~words[1]}} "${{(@Q)words[2,CURRENT-1]}}" "${{(Q)PREFIX}}" 2>/dev/null)}}")
    case $answer[1] in
        words)
            for line in "${{(@)answer[2,-1]}}"; do
                [[ -z $line ]] && continue
                v=${{line%%$'\t'*}}
                d=$v
                [[ $line == *$'\t'* ]] && d="$v  -- ${{line#*$'\t'}}"
                if [[ $v == *[:=.,] ]]; then bare+=("$v"); bare_shown+=("$d"); else vals+=("$v"); shown+=("$d"); fi
            done
            # -U: the tool matched already (ignoring case, as HPC Pack does).
            (( $#vals )) && compadd -U -l -d shown -a vals
            (( $#bare )) && compadd -U -l -S '' -d bare_shown -a bare ;;
        files)
            [[ -n $answer[2] ]] && compset -P "${{(b)answer[2]}}"
            _files ;;
        dirs)
            [[ -n $answer[2] ]] && compset -P "${{(b)answer[2]}}"
            _files -/ ;;
        commands)
            _command_names -e ;;
    esac
}}
if [ "$funcstack[1]" = "{f}" ]; then
    {f} "$@"
else
    compdef {f} {tool}
fi
"#
        ),
        _ => format!(
            r#"# fish {head}
function __hpcpack_complete_{tool}
    set -l words (commandline -opc)
    set -l tool $words[1]
    set -e words[1]
    set -l cur (commandline -ct)
    set -l answer (HPCPACK_COMPLETE=fish $tool $words "$cur" 2>/dev/null)
    switch "$answer[1]"
        case words
            printf '%s\n' $answer[2..-1]
        case files
            printf '%s\n' $answer[2](__fish_complete_path "$answer[3]")
        case dirs
            printf '%s\n' $answer[2](__fish_complete_directories "$answer[3]")
        case commands
            complete -C "$answer[3]"
    end
end
complete -c {tool} -f -k -a '(__hpcpack_complete_{tool})'
"#
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn lines_split_as_the_shell_does() {
        assert_eq!(split_line("job submit /nod"), v(&["job", "submit", "/nod"]));
        assert_eq!(split_line("job view "), v(&["job", "view", ""]));
        assert_eq!(split_line(r#"job submit /jobname:"a b" 'c d' e\ f /x"#), v(&["job", "submit", "/jobname:a b", "c d", "e f", "/x"]));
    }

    #[test]
    fn bash_gets_what_follows_the_last_word_break() {
        let r = Request::parse("bash", &v(&["job list /format:t", BASH_WORDBREAKS])).unwrap();
        assert_eq!(r.words, v(&["list", "/format:t"]));
        let cands = vec![super::super::Candidate { value: "/format:table".into(), help: "x".into() }];
        assert_eq!(r.answer(&Reply::Words(cands.clone())), "words\ntable\n");
        let z = Request::parse("zsh", &v(&["list", "/format:t"])).unwrap();
        assert_eq!(z.answer(&Reply::Words(cands)), "words\n/format:table\tx\n");
        let f = Request::parse("bash", &v(&["job submit /stdout:ou", BASH_WORDBREAKS])).unwrap();
        assert_eq!(f.answer(&Reply::Files { prefix: "/stdout:".into(), dirs: false }), "files\n\nou\n");
        let no_colon = Request::parse("bash", &v(&["job submit /stdout:ou", " \t\n="])).unwrap();
        assert_eq!(no_colon.answer(&Reply::Files { prefix: "/stdout:".into(), dirs: false }), "files\n/stdout:\nou\n");
    }
}
