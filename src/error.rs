//! The library's error type and the exit codes the CLIs return.
//!
//! Every failure a user can cause has a kind, and each kind has an HTTP status
//! on the head node and an exit code in the CLIs, so a script can tell "no
//! such job" from "not allowed now" from "cannot reach the head node".

use crate::head::store::StoreError;

/// Exit codes of `job`, `task`, `node`, `cluscfg` and `hpcd` (an extension:
/// HPC Pack only documents zero and non-zero).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The operation ran but its result is a failure (`job wait` on a job that
    /// did not finish, a task that failed).
    pub const FAILED: u8 = 1;
    /// Bad command line: unknown option, bad value, missing argument.
    pub const USAGE: u8 = 2;
    /// The job, task, node or group does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// The object's state does not allow the operation.
    pub const INVALID_STATE: u8 = 4;
    /// The caller may not change this object.
    pub const ACCESS_DENIED: u8 = 5;
    /// The head node cannot be reached or started.
    pub const UNREACHABLE: u8 = 6;
    /// The head node failed internally.
    pub const INTERNAL: u8 = 7;
    /// The disk holding the head node's state is full: nothing was changed.
    pub const NO_SPACE: u8 = 8;
    /// `job wait /timeout` gave up before the job ended (it may still
    /// finish); not a failure of the job.
    pub const TIMEOUT: u8 = 9;

    /// Every code and what it means, as README's exit code table and the
    /// man pages' EXIT STATUS say it (a test holds the three together).
    pub const DOCUMENTED: &[(u8, &str)] = &[
        (OK, "success"),
        (FAILED, "the operation ran but the outcome is a failure (`job wait` on a job that Failed or was Canceled)"),
        (USAGE, "bad command line: unknown option, bad value, missing argument, a request no node can meet"),
        (NOT_FOUND, "the job, task, node or group does not exist"),
        (INVALID_STATE, "the object's state does not allow the operation"),
        (ACCESS_DENIED, "the caller may not change the object"),
        (UNREACHABLE, "the head node cannot be reached or started"),
        (INTERNAL, "the head node failed internally"),
        (NO_SPACE, "the disk holding the head node's state directory is full (the message names it and its filesystem); nothing was changed"),
        (TIMEOUT, "`job wait /timeout` gave up: the job had not ended (it still may)"),
    ];
}

/// What kind of failure, independent of where it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    InvalidArgument,
    NotFound,
    InvalidState,
    AccessDenied,
    Unreachable,
    /// The head node has too many connections (of this user) open; the
    /// request was not looked at, so it may be sent again.
    Busy,
    /// The disk holding the head node's state is full.
    NoSpace,
    Internal,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::InvalidArgument => exit::USAGE,
            Kind::NotFound => exit::NOT_FOUND,
            Kind::InvalidState => exit::INVALID_STATE,
            Kind::AccessDenied => exit::ACCESS_DENIED,
            Kind::Unreachable | Kind::Busy => exit::UNREACHABLE,
            Kind::NoSpace => exit::NO_SPACE,
            Kind::Internal => exit::INTERNAL,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Kind::InvalidArgument => 400,
            Kind::NotFound => 404,
            Kind::InvalidState => 409,
            Kind::AccessDenied => 403,
            Kind::Unreachable | Kind::Busy => 503,
            Kind::NoSpace => 507,
            Kind::Internal => 500,
        }
    }

    /// The `Code` of an error body.
    pub fn code(self) -> &'static str {
        match self {
            Kind::InvalidArgument => "InvalidArgument",
            Kind::NotFound => "NotFound",
            Kind::InvalidState => "InvalidState",
            Kind::AccessDenied => "AccessDenied",
            Kind::Unreachable => "Unreachable",
            Kind::Busy => "Busy",
            Kind::NoSpace => "InsufficientStorage",
            Kind::Internal => "Internal",
        }
    }

    pub fn from_code(code: &str) -> Kind {
        match code {
            "InvalidArgument" => Kind::InvalidArgument,
            "NotFound" => Kind::NotFound,
            "InvalidState" => Kind::InvalidState,
            "AccessDenied" => Kind::AccessDenied,
            "Unreachable" => Kind::Unreachable,
            "Busy" => Kind::Busy,
            "InsufficientStorage" => Kind::NoSpace,
            _ => Kind::Internal,
        }
    }

    /// The kind an HTTP status means, for head nodes that send no error body.
    pub fn from_status(status: u16) -> Kind {
        match status {
            400 | 405 | 408 | 411 | 413 | 414 | 415 | 422 | 431 => Kind::InvalidArgument,
            404 => Kind::NotFound,
            409 => Kind::InvalidState,
            401 | 403 => Kind::AccessDenied,
            503 => Kind::Busy,
            507 => Kind::NoSpace,
            502 | 504 => Kind::Unreachable,
            _ => Kind::Internal,
        }
    }
}

/// A failure with a message that names the object and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("job {0} does not exist")]
    JobNotFound(u64),
    #[error("task {0}.{1} does not exist")]
    TaskNotFound(u64, u32),
    #[error("node {0} does not exist")]
    NodeNotFound(String),
    #[error("node group '{0}' does not exist")]
    GroupNotFound(String),
    /// The state forbids it; the message says which state and what is allowed.
    #[error("{0}")]
    InvalidState(String),
    /// A bad value; the message names it and what is accepted.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An error answered by a head node, with its kind.
    #[error("{message}")]
    Remote { kind: Kind, message: String },
    /// The head node cannot be reached.
    #[error("{0}")]
    Unreachable(String),
    #[error("{context}: {cause}")]
    // `cause`, not `source`: the message already ends with it, and a
    // source would print it twice in a CLI's one-line cause chain.
    Io { context: String, cause: std::io::Error },
}

impl Error {
    pub fn kind(&self) -> Kind {
        match self {
            Error::JobNotFound(_) | Error::TaskNotFound(..) | Error::NodeNotFound(_) | Error::GroupNotFound(_) => {
                Kind::NotFound
            }
            Error::InvalidState(_) => Kind::InvalidState,
            Error::InvalidArgument(_) => Kind::InvalidArgument,
            Error::AccessDenied(_) => Kind::AccessDenied,
            Error::Store(StoreError::NoSpace(_)) => Kind::NoSpace,
            Error::Io { cause, .. } if crate::node::sys::is_disk_full(cause) => Kind::NoSpace,
            Error::Store(_) | Error::Io { .. } => Kind::Internal,
            Error::Remote { kind, .. } => *kind,
            Error::Unreachable(_) => Kind::Unreachable,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), cause: source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The exit code for an error that reached a CLI's edge.
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<Error>() {
            return err.kind().exit_code();
        }
        if cause.downcast_ref::<clap::Error>().is_some() {
            return exit::USAGE;
        }
    }
    exit::INTERNAL
}
