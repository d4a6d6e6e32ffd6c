//! `hpcfwutil`: a host's HPC firewall rules, in nftables (see
//! [`crate::firewall`] for what they are and how a program is matched).
//! It exits 1 if the command fails and 0 if it succeeds, as HPC Pack's does.

use crate::cli::{Parsed, ToolSpec, parse};
use crate::firewall::{self, Registry};
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

pub const SPEC: ToolSpec = ToolSpec { name: "hpcfwutil", command_after: &[] };

/// Manages this host's HPC firewall rules: nftables table inet hpcpack,
/// made from the registry /etc/hpcpack/firewall.json (HPCPACK_FIREWALL_DB).
/// Changing them needs root.
#[derive(Parser, Debug)]
#[command(name = "hpcfwutil", help_expected = true, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Deletes every HPC firewall rule: the table inet hpcpack and the registry.
    Clear(Verbose),
    /// Determines whether the HPC rules are present and turned on (apply to
    /// an interface); exits 1 if not.
    Detect(Verbose),
    /// Excludes the HPC rules from a network interface.
    Exclude(Interface),
    /// Includes the HPC rules for a network interface: unsolicited
    /// connections to its dynamic ports (net.ipv4.ip_local_port_range) are
    /// dropped, except to registered programs' ports.
    Include(Interface),
    /// Registers an application with the firewall: its ranks listen on a
    /// port range of its own (MPICH_PORT_RANGE), which the rules open.
    Register(Register),
    /// Resets the HPC rules to their default state: mpiexec's own ports
    /// open, no program registered, no subnet excluded (included
    /// interfaces stay).
    Reset(Verbose),
    /// Leaves out the interfaces with an IPv4 address in these subnets
    /// (comma-separated <addr>/<mask>; empty: none).
    Setexclusion(Subnets),
    /// Unregisters an application: its ranks listen on dynamic ports again.
    Unregister(Unregister),
    /// Verifies that the rules in nftables are the registered ones; exits
    /// 1, naming the differences, if not.
    Verify(Verbose),
}

#[derive(Args, Debug)]
pub struct Verbose {
    /// Displays the rules the command creates or deletes (the nft script).
    #[arg(long)]
    pub v: bool,
}

#[derive(Args, Debug)]
pub struct Interface {
    /// The network interface (as ip link names it).
    #[arg(value_name = "interface")]
    pub interface: String,
    #[command(flatten)]
    pub verbose: Verbose,
}

#[derive(Args, Debug)]
pub struct Subnets {
    /// Subnets as <addr>/<mask> or <addr>/<bits>, comma-separated.
    #[arg(value_name = "subnet_list", default_value = "")]
    pub subnets: String,
    #[command(flatten)]
    pub verbose: Verbose,
}

#[derive(Args, Debug)]
pub struct Register {
    /// The name of the rule (the application).
    #[arg(value_name = "rule_or_app_name")]
    pub name: String,
    /// The full path of the application's executable.
    #[arg(value_name = "full_path_to_exe")]
    pub path: String,
    #[command(flatten)]
    pub verbose: Verbose,
}

#[derive(Args, Debug)]
pub struct Unregister {
    /// The name it was registered under.
    #[arg(value_name = "rule_or_app_name")]
    pub name: String,
    #[command(flatten)]
    pub verbose: Verbose,
}

pub fn main() -> ExitCode {
    let cli = match parse::<Cli>(&SPEC, std::env::args().collect()) {
        Parsed::Run(cli) => cli,
        // HPC Pack's contract: 0 or 1, whatever went wrong.
        Parsed::Exit(code) => return if code == ExitCode::SUCCESS { code } else { ExitCode::from(1) },
    };
    match run(cli.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            crate::cli::note(&format!("hpcfwutil: {e}"));
            ExitCode::from(1)
        }
    }
}

/// The mpiexec beside this program, registered as the launcher.
fn launcher() -> String {
    let here = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("mpiexec")));
    here.and_then(|p| std::fs::canonicalize(p).ok()).map(|p| p.display().to_string()).unwrap_or_else(|| "/usr/bin/mpiexec".into())
}

/// Makes the rules what `reg` says (one nft transaction), then keeps `reg`.
fn apply(reg: &Registry, verbose: bool) -> Result<(), String> {
    let interfaces = reg.effective_interfaces(&crate::net::ipv4_addresses());
    let script = reg.script(&interfaces, firewall::dynamic_ports());
    if verbose {
        crate::cli::out(&script);
    }
    firewall::nft(&["-f", "-"], Some(&script))?;
    reg.save(&firewall::registry_path())
}

fn load() -> Result<Registry, String> {
    Ok(Registry::load(&firewall::registry_path())?.unwrap_or_else(|| Registry::default().reset(&launcher())))
}

fn on(reg: &Registry) -> String {
    match reg.effective_interfaces(&crate::net::ipv4_addresses()).as_slice() {
        [] => "no interface (hpcfwutil include <interface>)".into(),
        list => list.join(", "),
    }
}

fn run(cmd: Cmd) -> Result<bool, String> {
    let say = |s: String| crate::cli::out(&format!("{s}\n"));
    let _lock = firewall::lock_registry(&firewall::registry_path())?;
    match cmd {
        Cmd::Register(a) => {
            crate::model::values::check_name("application", &a.name)?;
            let p = std::path::Path::new(&a.path);
            if !p.is_absolute() {
                return Err(format!("{}: give the full path of the executable", a.path));
            }
            let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", a.path))?;
            if !meta.is_file() || std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 == 0 {
                return Err(format!("{} is not an executable file", a.path));
            }
            let mut reg = load()?;
            let ports = reg.register(&a.name, &a.path)?.ports;
            apply(&reg, a.verbose.v)?;
            say(format!(
                "Registered {} ({}): its ranks listen on ports {}-{}, open on {}.",
                a.name,
                a.path,
                ports.0,
                ports.1,
                on(&reg)
            ));
        }
        Cmd::Unregister(a) => {
            let mut reg = load()?;
            if a.name == firewall::LAUNCHER {
                return Err(format!("{} is mpiexec's own registration; hpcfwutil clear deletes every rule", a.name));
            }
            let before = reg.programs.len();
            reg.programs.retain(|p| p.name != a.name);
            if reg.programs.len() == before {
                let names: Vec<&str> = reg.programs.iter().map(|p| p.name.as_str()).collect();
                return Err(format!("no application {} is registered (registered: {})", a.name, names.join(", ")));
            }
            apply(&reg, a.verbose.v)?;
            say(format!("Unregistered {}: its ranks listen on dynamic ports again, closed on {}.", a.name, on(&reg)));
        }
        Cmd::Include(a) | Cmd::Exclude(a) if a.interface.is_empty() => return Err("name the interface".into()),
        Cmd::Include(a) => {
            let mut reg = load()?;
            if !crate::net::ipv4_addresses().iter().any(|(n, _)| *n == a.interface) && !std::path::Path::new("/sys/class/net").join(&a.interface).exists() {
                return Err(format!("there is no network interface {} on this host (see ip link)", a.interface));
            }
            if !reg.interfaces.contains(&a.interface) {
                reg.interfaces.push(a.interface.clone());
            }
            apply(&reg, a.verbose.v)?;
            say(format!("The HPC firewall rules apply to {}.", on(&reg)));
        }
        Cmd::Exclude(a) => {
            let mut reg = load()?;
            reg.interfaces.retain(|i| *i != a.interface);
            apply(&reg, a.verbose.v)?;
            say(format!("The HPC firewall rules apply to {}.", on(&reg)));
        }
        Cmd::Setexclusion(a) => {
            let mut reg = load()?;
            let subnets: Vec<String> = a.subnets.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            for s in &subnets {
                crate::mpi::comm::select::Netmask::parse_var("setexclusion", s).map_err(|_| format!("'{s}' is not a subnet; give <addr>/<mask> or <addr>/<bits>"))?;
            }
            reg.exclusions = subnets;
            apply(&reg, a.verbose.v)?;
            say(format!("The HPC firewall rules apply to {}.", on(&reg)));
        }
        Cmd::Reset(a) => {
            let reg = load()?.reset(&launcher());
            apply(&reg, a.v)?;
            say(format!("The HPC firewall rules are in their default state, applying to {}.", on(&reg)));
        }
        Cmd::Clear(a) => {
            let script = format!("table inet {t}\ndelete table inet {t}\n", t = firewall::TABLE);
            if a.v {
                crate::cli::out(&script);
            }
            firewall::nft(&["-f", "-"], Some(&script))?;
            let path = firewall::registry_path();
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot delete {}: {e}", path.display())),
            }
            say(format!("Deleted the HPC firewall rules (table inet {}) and {}.", firewall::TABLE, path.display()));
        }
        Cmd::Detect(_) => {
            let Some(_) = firewall::live_table()? else {
                say(format!("The HPC firewall rules are not present (no table inet {}): hpcfwutil reset makes them.", firewall::TABLE));
                return Ok(false);
            };
            let reg = load()?;
            let interfaces = reg.effective_interfaces(&crate::net::ipv4_addresses());
            if interfaces.is_empty() {
                say("The HPC firewall rules are present and turned off: they apply to no interface (hpcfwutil include <interface>).".into());
                return Ok(false);
            }
            say(format!("The HPC firewall rules are present and turned on for {}.", interfaces.join(", ")));
        }
        Cmd::Verify(_) => {
            let reg = load()?;
            let Some(live) = firewall::live_table()? else {
                say(format!("The HPC firewall rules are missing: no table inet {} (hpcfwutil reset makes it).", firewall::TABLE));
                return Ok(false);
            };
            let mut wrong = Vec::new();
            let mut want: Vec<String> = reg.programs.iter().map(|p| format!("{}-{}", p.ports.0, p.ports.1)).collect();
            let mut have = firewall::set_elements(&live, "programs");
            want.sort();
            have.sort();
            if want != have {
                wrong.push(format!("the open program ports are {} instead of {}", list(&have), list(&want)));
            }
            let mut want = reg.effective_interfaces(&crate::net::ipv4_addresses());
            let mut have = firewall::set_elements(&live, "interfaces");
            want.sort();
            have.sort();
            if want != have {
                wrong.push(format!("the rules apply to {} instead of {}", list(&have), list(&want)));
            }
            let comments = firewall::rule_comments(&live);
            for c in ["registered programs", "unsolicited connections to dynamic ports"] {
                if !comments.iter().any(|x| x == c) {
                    wrong.push(format!("the rule for {c} is missing"));
                }
            }
            if !wrong.is_empty() {
                say(format!("The HPC firewall rules differ from the registered ones: {}; hpcfwutil reset, then register again, restores them.", wrong.join("; ")));
                return Ok(false);
            }
            say(format!("The HPC firewall rules are as registered: {} program(s), applying to {}.", reg.programs.len(), on(&reg)));
        }
    }
    Ok(true)
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}
