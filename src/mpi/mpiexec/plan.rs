//! What a parsed `mpiexec` command line asks for: the global options and one
//! [`Section`] per MPMD block (`exe1 … : exe2 …`), before any host is chosen.
//!
//! Pure data, so the launcher, the placement ([`super::place`](mod@super::place)) and the
//! tests all look at the same thing.

use super::affinity::Layout;

/// The most ranks one mpiexec may launch (`MSMPI_MAX_RANKS`).
pub const MAX_RANKS: u32 = 32768;

/// Which help text `-help`, `-help2` or `-help3` asked for (MS-MPI prints it
/// and exits 0 as soon as the option is reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Help {
    /// `-?`, `-help`: common options.
    Common,
    /// `-??`, `-help2`: all options.
    All,
    /// `-???`, `-help3`: environment variables.
    Environment,
}

/// The outcome of parsing a command line.
// One value per mpiexec run, matched once: boxing the plan would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Launch these sections.
    Run(Plan),
    /// Print this help text and exit 0.
    Help(Help),
}

/// A parsed command line: global options and the sections in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub global: Global,
    pub sections: Vec<Section>,
}

/// Options that apply to the whole job, wherever they were written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Global {
    /// `-genv` pairs and `-genvlist` values, in command-line order (the last
    /// of a name wins; section `-env` comes after these).
    pub env: Vec<(String, String)>,
    /// `-gwdir`/`-gdir`.
    pub wdir: Option<String>,
    /// `-gpath`: `;`-separated search path for the executables.
    pub path: Option<String>,
    /// `-ghost`/`-gmachinefile`: the global host pool, replacing `CCP_NODES`.
    pub hosts: Option<Vec<Host>>,
    /// A `-machinefile` or `-gmachinefile` was given; MS-MPI then ignores
    /// `CCP_NODES=Overflow` instead of failing.
    pub machinefile_given: bool,
    /// `-c`/`-cores`: every host of every pool gets this many cores.
    pub cores_per_host: Option<u32>,
    /// `-a`, `-al` or `MPIEXEC_AFFINITY` (command line wins).
    pub affinity: Layout,
    /// Some host list gave explicit masks; they replace [`Global::affinity`].
    pub explicit_affinity: bool,
    /// `-aa`/`-affinity_auto`.
    pub affinity_auto: bool,
    /// `-exitcodes`.
    pub exit_codes: bool,
    /// `-p`/`-port`: the smpd port (truncated to 16 bits as MS-MPI does).
    pub port: Option<u16>,
    /// `-timeout` seconds, else a valid `MPIEXEC_TIMEOUT`.
    pub timeout: Option<u32>,
    /// `-job`: the job context string.
    pub job: Option<String>,
    /// `-l`/`-lines`: prefix each output line with `[rank]`.
    pub lines: bool,
    /// `-d`/`-debug [level]`: 0 none, 1 error, 2 debug (the default), 3 both.
    pub debug: Option<u8>,
    /// `-logfile`: where mpiexec's own output goes.
    pub log_file: Option<String>,
    /// `-pwd`: launch-service password.
    pub password: Option<String>,
    /// `-saveCreds`.
    pub save_creds: bool,
    /// `-unicode`.
    pub unicode: bool,
}

/// One MPMD section: `[options] exe [args]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// `-n`/`-np`; `None` when absent or `*` (use the hosts' cores).
    pub processes: Option<u32>,
    /// `-host`, `-hosts` or `-machinefile`: this section's own pool.
    pub hosts: Option<Vec<Host>>,
    /// `-env` pairs in order.
    pub env: Vec<(String, String)>,
    /// `-wdir`/`-dir`.
    pub wdir: Option<String>,
    /// `-path`.
    pub path: Option<String>,
    /// `-priority` 0 (idle) to 4 (high); MS-MPI's default is 2 (normal).
    pub priority: Option<u8>,
    /// The executable, as written.
    pub exe: String,
    /// Its arguments, untouched.
    pub args: Vec<String>,
}

/// One affinity mask given explicitly in a `-hosts` entry (`,0x3:1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AffinityMask {
    /// Bit mask of logical processors within the group.
    pub mask: u64,
    /// Processor group (Windows systems with more than 64 CPUs); 0 if absent.
    pub group: u16,
}

/// A host of a pool and how many ranks it takes per round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// Cores (ranks per round), at least 1.
    pub cores: u32,
    /// Explicit masks, one per core, in rank order; empty if none given.
    pub masks: Vec<AffinityMask>,
}

impl Host {
    /// A host with `cores` cores and no explicit masks.
    pub fn new(name: &str, cores: u32) -> Host {
        Host {
            name: name.to_string(),
            cores,
            masks: Vec::new(),
        }
    }
}
