//! Ranks on other hosts outside any job, as MPICH's Hydra starts them with
//! its ssh launcher: the ranks of this host as children, those of each
//! other host by one proxy ([`super::proxy`]) started by one
//!
//! ```text
//! ssh -o BatchMode=yes -x -T <host> '<mpiexec>' --hpcpack-proxy-stdin
//! ```
//!
//! per host, all at once. `ssh` is the command of `HPCPACK_SSH` when set
//! (words split on blanks, taking ssh's options: `ssh -F <config>`); the
//! options after it never let ssh prompt (a host it cannot log in to
//! without a password fails the launch), forward X or ask for a terminal.
//! The remote program is mpiexec's own executable at the same absolute
//! path: the hosts share its filesystem.
//!
//! ssh passes no environment, so the proxy's settings travel on ssh's
//! standard input (never in argv, which other users read through `ps`),
//! which mpiexec then holds open: when ssh or its session goes, the proxy
//! reads the end of it and kills its ranks. The ranks start from
//! mpiexec's environment, sent with each rank's request, as children do.
//!
//! A host that ssh cannot reach, or on which the proxy cannot start, fails
//! the launch before any rank runs, naming the host and the last line ssh
//! printed ([`StartError::Ssh`]). When mpiexec ends, every ssh still
//! running has its input closed, then gets SIGTERM, then SIGKILL (SIGTERM
//! if mpiexec dies, as its parent-death signal).

use std::path::Path;
use std::process::Command;

use super::proxy::{Failure, LaunchCommand, PROXY_STDIN_ARG, Settings, Split};
use super::{Bootstrap, Job, Launch, StartError, Started};
use crate::mpi::mpiexec::local::Local;

/// The launcher when `HPCPACK_SSH` is unset.
const SSH: &str = "ssh";

/// Starts the ranks of other hosts through ssh and proxies, and the ranks
/// of this host as children.
pub struct Ssh {
    split: Split,
    /// The ssh command and its first options.
    command: Vec<String>,
}

impl Ssh {
    /// The bootstrap of `local`, with `command` (`HPCPACK_SSH`) as ssh
    /// when it has a word.
    pub fn new(local: Local, command: Option<&str>) -> Ssh {
        let mut words: Vec<String> = command
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if words.is_empty() {
            words.push(SSH.to_string());
        }
        Ssh {
            split: Split::new(local, "ssh"),
            command: words,
        }
    }

}

/// ssh (`command`: its words) starting `exe` as a proxy on `host`.
fn ssh_command(command: &[String], host: &str, exe: &Path) -> Command {
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .args(["-o", "BatchMode=yes", "-x", "-T", host])
        // One word for the remote shell, whatever the path holds.
        .arg(format!("{} {PROXY_STDIN_ARG}", shell_quote(&exe.to_string_lossy())));
    cmd
}

impl Bootstrap for Ssh {
    fn reach(&self, host: &str) -> Result<(), StartError> {
        // ssh would take it for an option.
        if host.starts_with('-') && self.split.children.reach(host).is_err() {
            return Err(StartError::NotAHost { host: host.to_string() });
        }
        Ok(())
    }

    fn how(&self, launch: &Launch) -> String {
        self.split.how(launch)
    }

    fn open(&mut self, launches: &[Launch], job: &Job) -> Result<(), StartError> {
        let ssh = &self.command;
        let commands = |settings: &Settings, hosts: &[&str], exe: &Path| {
            hosts
                .iter()
                .map(|host| LaunchCommand {
                    cmd: ssh_command(ssh, host, exe),
                    stdin: Some(settings.input_for(host)),
                    hosts: vec![host.to_string()],
                })
                .collect()
        };
        let failed = |f: Failure| StartError::Ssh {
            host: f.hosts.join(", "),
            reason: f.reason,
            said: last_line(&f.output),
        };
        let host_of = |l: &Launch| l.host.clone();
        self.split.open(launches, host_of, 0, job, commands, failed)
    }

    fn start(&self, launch: &Launch, job: &mut Job) -> Result<Started, StartError> {
        self.split.start(launch, job)
    }
}

/// `s` as one word of a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The last line of `output` that says something.
fn last_line(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn local() -> Local {
        Local {
            host: "head".into(),
            cpus: vec![0, 1],
            dir: PathBuf::from("/"),
            path: None,
            netmask: None,
            workdir: None,
            nodes: Vec::new(),
        }
    }

    #[test]
    fn the_ssh_command_never_prompts_and_quotes_the_path() {
        let argv = |ssh: &Ssh, exe: &str| {
            let cmd = ssh_command(&ssh.command, "node2", Path::new(exe));
            std::iter::once(cmd.get_program())
                .chain(cmd.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let plain = Ssh::new(local(), None);
        assert_eq!(
            argv(&plain, "/opt/hpc/mpiexec"),
            ["ssh", "-o", "BatchMode=yes", "-x", "-T", "node2", "/opt/hpc/mpiexec --hpcpack-proxy-stdin"]
        );
        let custom = Ssh::new(local(), Some(" ssh  -F /rig/ssh/config "));
        assert_eq!(
            argv(&custom, "/my dir/it's/mpiexec"),
            [
                "ssh",
                "-F",
                "/rig/ssh/config",
                "-o",
                "BatchMode=yes",
                "-x",
                "-T",
                "node2",
                r"'/my dir/it'\''s/mpiexec' --hpcpack-proxy-stdin"
            ]
        );
        assert_eq!(Ssh::new(local(), Some("  ")).command, ["ssh"]);
    }

    #[test]
    fn every_host_but_an_option_is_reached() {
        let ssh = Ssh::new(local(), None);
        assert!(ssh.reach("node2").is_ok());
        assert!(ssh.reach("head").is_ok());
        let e = ssh.reach("-oProxyCommand=x").unwrap_err().to_string();
        assert!(e.contains("cannot start with '-'"), "{e}");
    }

    #[test]
    fn the_last_line_that_says_something() {
        assert_eq!(last_line("Warning: x\nssh: connect to host a port 22: Connection refused\n\n"),
            "ssh: connect to host a port 22: Connection refused");
        assert_eq!(last_line(""), "");
    }
}
