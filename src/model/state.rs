//! Job, task and node states, named exactly as HPC Pack names them
//! (JobState, TaskState and NodeState enumerations), with the numeric values
//! of its API so masks such as `All` keep their meaning.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! keyword_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $n:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value, in the order HPC Pack lists them.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The name HPC Pack displays.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => stringify!($v)),+ }
            }

            /// The bit HPC Pack's API gives this value.
            pub fn bit(self) -> u32 {
                match self { $($name::$v => $n),+ }
            }

            /// Parses a name, ignoring case as HPC Pack does.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            }

            /// The accepted names, for error messages and help.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

keyword_enum! {
    /// State of a job.
    JobState {
        Configuring = 1, Submitted = 2, Validating = 4, ExternalValidation = 8, Queued = 16,
        Running = 32, Finishing = 64, Finished = 128, Failed = 256, Canceled = 512, Canceling = 1024,
    }
}

keyword_enum! {
    /// State of a task.
    TaskState {
        Configuring = 1, Submitted = 2, Validating = 4, Queued = 8, Dispatching = 16,
        Running = 32, Finishing = 64, Finished = 128, Failed = 256, Canceled = 512, Canceling = 1024,
    }
}

keyword_enum! {
    /// Scheduler-side state of a node.
    NodeState { Offline = 0, Draining = 1, Online = 2 }
}

keyword_enum! {
    /// Health of a node, as HPC Pack reports it.
    NodeHealth { OK = 0, Warning = 1, Error = 2, Transitional = 3, Unapproved = 4 }
}

impl JobState {
    /// A job in this state will not change again unless requeued.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Finished | JobState::Failed | JobState::Canceled)
    }

    /// The job is waiting for or holding resources.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobState::Submitted
                | JobState::Validating
                | JobState::ExternalValidation
                | JobState::Queued
                | JobState::Running
                | JobState::Finishing
                | JobState::Canceling
        )
    }
}

impl TaskState {
    /// A task in this state will not change again unless requeued.
    pub fn is_final(self) -> bool {
        matches!(self, TaskState::Finished | TaskState::Failed | TaskState::Canceled)
    }

    /// A process of this task may exist on a node.
    pub fn is_started(self) -> bool {
        matches!(
            self,
            TaskState::Dispatching | TaskState::Running | TaskState::Finishing | TaskState::Canceling
        )
    }
}

/// Parses a comma-separated list of states; `All` (any case) means every state.
pub fn parse_state_list<T: Copy>(
    list: &str,
    parse: fn(&str) -> Option<T>,
    all: &[T],
) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part.eq_ignore_ascii_case("all") {
            return Ok(all.to_vec());
        }
        out.push(parse(part).ok_or_else(|| part.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_ignoring_case() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(&s.as_str().to_lowercase()), Some(*s));
        }
        assert_eq!(TaskState::parse("DISPATCHING"), Some(TaskState::Dispatching));
        assert_eq!(JobState::parse("Dispatching"), None);
        assert_eq!(JobState::Canceled.as_str(), "Canceled");
    }

    #[test]
    fn bits_match_hpc_pack() {
        assert_eq!(JobState::Queued.bit(), 16);
        assert_eq!(TaskState::Queued.bit(), 8);
        assert_eq!(JobState::ALL.iter().map(|s| s.bit()).sum::<u32>(), 2047);
        assert_eq!(TaskState::ALL.iter().map(|s| s.bit()).sum::<u32>(), 2047);
    }

    #[test]
    fn state_lists() {
        let v = parse_state_list("running,Queued", JobState::parse, JobState::ALL).unwrap();
        assert_eq!(v, vec![JobState::Running, JobState::Queued]);
        assert_eq!(parse_state_list("All", JobState::parse, JobState::ALL).unwrap().len(), 11);
        assert_eq!(parse_state_list("Running,Bogus", JobState::parse, JobState::ALL), Err("Bogus".into()));
    }
}
