//! Shell completion in real shells: bash with the generated
//! script sourced and its function called as bash calls it on TAB, zsh
//! through a pseudo-terminal (zpty) with the completion system loaded, and
//! fish through `complete -C`. Checked is what a user sees: `/nodegroup:`
//! for `/nod`, the formats for `/format:` (not file names), a running head
//! node's job ids, task ids, nodes and groups, and nothing started when no
//! head node runs.
//!
//! zsh and fish must be installed (`.ci/run` installs them; elsewhere:
//! `apt-get install zsh fish`).

use crate::common::{Cluster, bin, host, pids_with_env};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SHELLS: &[&str] = &["bash", "zsh", "fish"];

/// Calls the completion function as bash does on TAB at the end of `$2`,
/// and prints COMPREPLY, one per line.
const BASH: &str = r#"
source "$COMPLETIONS/$1.bash"
COMP_LINE=$2
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
"_hpcpack_$1"
(( ${#COMPREPLY[@]} )) && printf '%s\n' "${COMPREPLY[@]}"
exit 0
"#;

/// Types `$2` and TAB into an interactive zsh with compinit and the
/// script loaded; every match zsh accepts is appended to `$3` (compadd
/// wrapped as zsh-capture-completion does: `compadd -A` applies zsh's own
/// matching). TAB runs completion, then marks it done (`$3.done`).
const ZSH: &str = r#"
zmodload zsh/zpty
tool=$1 line=$2 out=$3
zpty z zsh -f -i
zpty -w z "PS1='> '; autoload -U compinit; compinit -u -d ${out}.dump"
zpty -w z "source $COMPLETIONS/$tool.zsh; zstyle ':completion:*' list-prompt ''"
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; local -a hits; builtin compadd -A hits "$@"; (( $#hits )) && print -rl -- $hits >> '"$out"'; }'
zpty -w z 'tab() { zle complete-word; print > '"$out"'.done }; zle -N tab; bindkey "^I" tab'
zpty -w -n z "$line"$'\t'
for i in {1..200}; do [[ -e ${out}.done ]] && break; sleep 0.05; done
zpty -d z
[[ -e ${out}.done ]] || { print -u2 "zsh did not finish completing"; exit 1 }
[[ -e $out ]] && cat $out
exit 0
"#;

/// Asks fish for the completions of `$LINE`.
const FISH: &str = r#"source $COMPLETIONS/$TOOL.fish; complete -C "$LINE""#;

fn completions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("completions")
}

/// The shell `name`, or a failure that says how to install it.
fn require(name: &str) {
    let found = Command::new(name).arg("-c").arg("exit 0").status().is_ok_and(|s| s.success());
    assert!(found, "{name} is needed for the completion tests: apt-get install zsh fish (.ci/run does)");
}

/// What `shell` offers on TAB at the end of `line` (a command line of one
/// of our tools), with the cluster's environment and our binaries first
/// on PATH.
fn offered(c: &Cluster, shell: &str, line: &str) -> Vec<String> {
    require(shell);
    let tool = line.split(' ').next().unwrap_or("");
    let bins = bin("job").parent().map(Path::to_path_buf).unwrap_or_default();
    let path = format!("{}:{}", bins.display(), std::env::var("PATH").unwrap_or_default());
    let out_file = c.dir.path().join(format!("zsh-{}", line.len()));
    let _ = std::fs::remove_file(&out_file);
    let _ = std::fs::remove_file(out_file.with_extension("done"));
    let mut cmd = c.command_for(Path::new(shell));
    cmd.env("PATH", path).env("COMPLETIONS", completions_dir()).env("HOME", c.dir.path());
    match shell {
        "bash" => cmd.args(["--norc", "-c", BASH, "bash", tool, line]),
        "zsh" => cmd.args(["-f", "-c", ZSH, "zsh", tool, line]).arg(&out_file),
        _ => cmd.args(["--no-config", "-c", FISH]).env("TOOL", tool).env("LINE", line),
    };
    let out = cmd.output().expect("run the shell");
    assert!(out.status.success(), "{shell} completing {line:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').next().unwrap_or("").to_string()).collect()
}

/// `word` as `shell` shows it when the word being completed is
/// `before` + `word`: bash completes what follows the last `:` or `=`.
fn as_shown(shell: &str, before: &str, word: &str) -> String {
    if shell == "bash" { word.to_string() } else { format!("{before}{word}") }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn hpc_pack_options_and_values_in_bash_zsh_and_fish() {
    let c = Cluster::with_layout(&["--nodes", "2", "--node-group", "azurenodes"]);
    let id = c.submit(&["/jobname:hello", "echo", "hi"]);
    assert_eq!(c.wait(id), "Finished");
    let node = format!("{}-1", host());
    for shell in SHELLS {
        let has = |line: &str, want: &str| {
            let got = offered(&c, shell, line);
            assert!(got.iter().any(|w| w == want), "{shell}: {line:?} should offer {want:?}, offers {got:?}");
        };
        // HPC Pack's spelling, and GNU-style.
        has("job submit /nod", "/nodegroup:");
        has("job submit --nod", "--nodegroup=");
        has("node list /gr", "/group:");
        // Fixed values: exactly those, not file names.
        for (line, before, want) in [
            ("job list /format:", "/format:", &["json", "list", "table"][..]),
            ("job list --format=", "--format=", &["json", "list", "table"]),
            ("job view 1 /format:", "/format:", &["json", "list"]),
        ] {
            let want: Vec<String> = want.iter().map(|w| as_shown(shell, before, w)).collect();
            assert_eq!(sorted(offered(&c, shell, line)), want, "{shell}: {line:?}");
        }
        has("job list /state:Fin", &as_shown(shell, "/state:", "Finished"));
        has("job submit /priority:Above", &as_shown(shell, "/priority:", "AboveNormal"));
        // From the running head node.
        has("job submit /nodegroup:", &as_shown(shell, "/nodegroup:", "azurenodes"));
        has("job submit /askednodes:", &as_shown(shell, "/askednodes:", &node));
        has("job view ", &id.to_string());
        has("job listtasks ", &id.to_string());
        has(&format!("task view {id}."), &format!("{id}.1"));
        has("node view ", &node);
        has("cluscfg setenvs CCP_M", "CCP_MPI_NETMASK=");
    }
}

#[test]
fn no_head_node_no_ids_and_none_started() {
    let c = Cluster::unstarted();
    for shell in SHELLS {
        let start = Instant::now();
        assert_eq!(offered(&c, shell, "job view "), Vec::<String>::new(), "{shell}: no head node, no job ids");
        assert_eq!(offered(&c, shell, "task view "), Vec::<String>::new(), "{shell}: no head node, no task ids");
        assert_eq!(offered(&c, shell, "job submit /nodegroup:"), Vec::<String>::new(), "{shell}: no head node, no groups");
        assert!(offered(&c, shell, "job submit /nod").contains(&"/nodegroup:".to_string()), "{shell}: options need no head node");
        assert!(start.elapsed() < Duration::from_secs(20), "{shell} took {:?}", start.elapsed());
    }
    assert!(!c.socket().exists(), "completion started a head node");
    let marker = format!("HPCPACK_STATE_DIR={}", c.state_dir().display());
    assert!(pids_with_env(&marker).is_empty(), "completion left a process behind");
}

#[test]
fn completing_asks_a_running_head_node_quickly() {
    let c = Cluster::new();
    let id = c.submit(&["echo", "hi"]);
    // The tool alone, as the scripts call it: the time a TAB costs.
    let mut times = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let out = c.command("job").env("HPCPACK_COMPLETE", "zsh").args(["view", ""]).output().expect("run job");
        times.push(start.elapsed());
        assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with(&format!("{id}\t"))));
    }
    times.sort();
    eprintln!("job ids completed in {:?} (median of 10), {:?} at most", times[5], times[9]);
    assert!(times[5] < Duration::from_secs(1), "completion is slow: {times:?}");
}
