//! The errors of `mpiexec`'s command line, host lists and placement: a leaf
//! that the parser, the host-list grammar and the placement all use.
//!
//! Each message is MS-MPI's own, byte for byte (from
//! `mp_parse_command_line.cpp`, `smpd_get_hosts_from_file`,
//! `smpd_get_argv_from_file`), typos included ("specifed"), because scripts
//! and users compare mpiexec's output with what Windows prints. `%s` of the
//! source is the option exactly as the user typed it (`-NP`, `/np`).

use thiserror::Error;

/// A command line, configfile, optionfile, machinefile or `CCP_NODES` value
/// that MS-MPI's mpiexec rejects; `Display` is its verbatim message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MpiexecError {
    /// No option of this name (also any abbreviation of a real one).
    #[error("Unknown option: {0}")]
    UnknownOption(String),
    /// A section without an executable (`mpiexec -n 2`, `mpiexec : a`).
    #[error("Error: no executable specified.")]
    NoExecutable,
    /// `-n`/`-np` after `-n`, `-np` or `-hosts` in the same section.
    #[error(
        "Error: unexpected {0} option; only one of -n, -np or -hosts can specify the number of processes."
    )]
    ProcessCountTwice(String),
    /// `-n` not followed by a positive number or `*`.
    #[error("Error: expecting a positive number of processes following the {0} option.")]
    ExpectingProcesses(String),
    /// More ranks than MS-MPI supports ([`MAX_RANKS`](super::plan::MAX_RANKS)).
    #[error("Error: exceeding the maximum supported ranks.")]
    TooManyRanks,
    /// `-c`/`-cores` given twice (MS-MPI's spelling kept).
    #[error("Error: unexpected {0} option; this option can be specifed only once.")]
    CoresTwice(String),
    /// `-c` not followed by a positive number.
    #[error("Error: expecting a positive number of cores following the {0} option.")]
    ExpectingCores(String),
    /// `-c` above [`MAX_RANKS`](super::plan::MAX_RANKS).
    #[error("Error: number of cores per node exceeding the maximum supported ranks.")]
    TooManyCores,
    /// A second `-host`, `-hosts` or `-machinefile` in one section.
    #[error(
        "Error: unexpected {0} option; only one of -host, -hosts or -machinefile can be specified."
    )]
    HostsTwice(String),
    /// A second `-ghost` or `-gmachinefile`.
    #[error("Error: unexpected {0} option; only one of -ghost or -gmachinefile can be specified.")]
    GlobalHostsTwice(String),
    /// `-host`/`-ghost` without a name.
    #[error("Error: expecting host name following the {0} option.")]
    ExpectingHost(String),
    /// A malformed `-hosts` list (the message is the list's own error).
    #[error("{0}")]
    Hosts(HostsError),
    /// `-machinefile`/`-gmachinefile` without a file name.
    #[error("Error: expecting a filename following the {0} option.")]
    ExpectingMachinefile(String),
    /// The machinefile could not be read, or a line is not `host [count]`.
    #[error("Error: while reading machinefile '{file}': {reason}.")]
    MachinefileRead { file: String, reason: String },
    /// The machinefile's hosts are not a valid host list.
    #[error("Error: while parsing machinefile '{file}': {reason}")]
    MachinefileParse { file: String, reason: HostsError },
    /// `-wdir`, `-dir`, `-gwdir`, `-gdir` without a directory.
    #[error("Error: expecting a directory name following the {0} option.")]
    ExpectingDirectory(String),
    /// `-path`/`-gpath` without a value.
    #[error("Error: expecting a path string following the {0} option.")]
    ExpectingPath(String),
    /// `-env`/`-genv` without both a name and a value.
    #[error("Error: expecting environment variable name and value following the {0} option.")]
    ExpectingEnv(String),
    /// `-genvlist` without a list.
    #[error("Error: expecting environment variables list following the {0} option.")]
    ExpectingEnvList(String),
    /// `-job` without a context string.
    #[error("Error: expecting job context string following the {0} option.")]
    ExpectingJob(String),
    /// `-priority` not followed by a digit string in 0..=4.
    #[error("Error: expecting a priority value in the range [0:4] following the {0} option.")]
    ExpectingPriority(String),
    /// `-p`/`-port` not followed by a positive number.
    #[error("Error: expecting a positive port number following the {0} option.")]
    ExpectingPort(String),
    /// A port that is 0 once truncated to 16 bits, as MS-MPI does (65536).
    #[error("Error: expecting a valid TCP port number following the {0} option.")]
    InvalidPort(String),
    /// `-timeout` not followed by a positive number.
    #[error("Error: expecting a positive timeout value following the {0} option.")]
    ExpectingTimeout(String),
    /// `-logfile` without a file name (MS-MPI's capital N kept).
    #[error("Error: expecting a fileName following the {0} option.")]
    ExpectingLogFile(String),
    /// `-pwd` without a password.
    #[error("Error: expecting a password string for the {0} option.")]
    ExpectingPassword(String),
    /// `-al` without a value.
    #[error("Error: expecting a layout format string for the {0} option.")]
    ExpectingLayout(String),
    /// `-al` after explicit masks in `-hosts` (MS-MPI's wording: "can not").
    #[error("Error: Explicit affinity options can not be combined with other affinity options.")]
    ExplicitAffinityLayout,
    /// `-a` after explicit masks in `-hosts` (MS-MPI's wording: "cannot").
    #[error("Error: Explicit affinity options cannot be combined with other affinity options.")]
    ExplicitAffinity,
    /// An `-al` algorithm that is not 0-3/spr/seq/bal/spread/sequential/balanced.
    #[error("Unable to parse algorithm specified in {0}.")]
    AffinityAlgorithm(&'static str),
    /// An `-al` stride or target that is not l, p or n.
    #[error("Invalid affinity argument specified in {0}.")]
    AffinityTarget(&'static str),
    /// `-configfile` anywhere but as the only option.
    #[error("Error: the {0} option must be the first and only option specified.")]
    ConfigfileNotAlone(String),
    /// `-configfile`/`-optionfile` without a file name.
    #[error("Error: expecting filename following the {0} option.")]
    ExpectingFilename(String),
    /// `-configfile <file>` followed by more arguments.
    #[error("Error: too many arguments following the {0} option; only filename is expected.")]
    ConfigfileTooMany(String),
    /// The configfile could not be read or holds no command.
    #[error("Error: while parsing configfile '{file}': {reason}")]
    Configfile { file: String, reason: String },
    /// The optionfile could not be read or holds nothing (MS-MPI prints the
    /// bare reason).
    #[error("{0}")]
    Optionfile(String),
    /// More than one section has neither `-n` nor a host list.
    #[error("Error: expecting one of -n, -np, -hosts or -machinefile in section {0}.")]
    SectionWithoutCount(usize),
    /// The section without a count finds the shared pool already used up.
    #[error(
        "Error: not enough cores left for '{exe}' in section {section}. the command line already subscribes {processes} processes on {cores} cores."
    )]
    NotEnoughCores {
        exe: String,
        section: usize,
        processes: u32,
        cores: u32,
    },
    /// `CCP_NODES=Overflow`: the scheduler could not fit the node list.
    #[error(
        "Error: The HPC Server Scheduler could not fit all the node names for\n\
         this job in the CCP_NODES environment variable, preventing this job from\n\
         running on all assigned nodes.  Use mpiexec's \"-machinefile\" option to\n\
         specify all the nodes to run this job."
    )]
    CcpNodesOverflow,
    /// `CCP_NODES` is not a valid host list.
    #[error("Error: while parsing CCP_NODES environment variable. {0}")]
    CcpNodes(HostsError),
    /// Inside a Slurm allocation without `CCP_NODES`, the allocation's node
    /// list or task counts cannot be read (ours: MS-MPI knows no Slurm).
    #[error("Error: while reading the Slurm allocation's nodes (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE): {0}.")]
    SlurmNodes(String),
}

impl From<HostsError> for MpiexecError {
    fn from(e: HostsError) -> Self {
        MpiexecError::Hosts(e)
    }
}

/// A malformed host list; `Display` is MS-MPI's verbatim message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HostsError {
    #[error("Error: expecting a positive number of hosts following the -hosts option.")]
    ExpectingHostCount,
    #[error("Error: number of hosts exceeds the maximum supported ranks.")]
    TooManyHosts,
    #[error("Error: expecting a host name following the -hosts option.")]
    ExpectingHostName,
    #[error("Error: All hosts must specify explicit affinity if any do")]
    MixedExplicitAffinity,
    #[error("Error: expecting a positive number of cores following the host name.")]
    ExpectingCores,
    #[error(
        "Error: number of processes requested by the host entry exceeds the maximum supported ranks."
    )]
    TooManyProcesses,
    #[error("Error: Affinity mask count mismatch in hosts list specifier.")]
    MaskCountMismatch,
    #[error("Error: Invalid affinity mask specifier in hosts list.")]
    InvalidMask,
    #[error("Error: Invalid affinity group specifier in hosts list.")]
    InvalidGroup,
}
