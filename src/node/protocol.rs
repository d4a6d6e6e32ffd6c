//! What the head node and a node agent say to each other: start this task,
//! signal that one, and what became of them. Serde types, so the same
//! messages serve the in-process agent of the embedded cluster and, later,
//! agents on other hosts.
//!
//! Also what `mpiexec` and a node agent's MPI launch service
//! ([`super::launch`]) say to each other over TCP: one [`RankRequest`], then
//! [`Frame`]s. A frame is a 1-byte kind, a big-endian `u32` payload length
//! and the payload. Output travels as raw bytes (a rank may print anything,
//! and JSON-escaping every byte of a chatty rank would cost), the request and
//! the small replies as JSON so they can grow fields.

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Identifies one run of a task: the attempt grows with every dispatch, so a
/// report about an earlier run is recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunId {
    pub job: u64,
    pub task: u32,
    pub attempt: u32,
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{} (attempt {})", self.job, self.task, self.attempt)
    }
}

/// Start a task's process on a node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Launch {
    pub run: RunId,
    pub node: String,
    /// Run through `/bin/sh -c`, as a command line typed at a shell.
    pub command_line: String,
    /// Empty: the owner's home directory.
    pub work_dir: String,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    /// The whole environment of the task (the agent adds nothing).
    pub env: Vec<(String, String)>,
    /// Host logical CPUs the task is bound to.
    pub cpus: Vec<u32>,
    pub owner_uid: u32,
    /// `CCP_NODES`-style node list for the MPI host file.
    pub nodes: Vec<(String, u32)>,
    /// The file mode creation mask the task starts with (the head node
    /// runs with 077 so that nothing it writes is readable by others).
    #[serde(default = "default_umask")]
    pub umask: u32,
}

impl Launch {
    /// The launch of task `t`'s run `run` on `node` with its environment,
    /// CPUs, owner and nodes; the file mode mask is the node agent's to
    /// decide (see `LocalAgent::new`).
    pub fn of_task(t: &crate::model::Task, run: RunId, node: String, env: Vec<(String, String)>, cpus: Vec<u32>, owner_uid: u32, nodes: Vec<(String, u32)>) -> Launch {
        Launch {
            run,
            node,
            command_line: t.command_line.clone(),
            work_dir: t.work_dir.clone(),
            stdin: t.stdin.clone(),
            stdout: t.stdout.clone(),
            stderr: t.stderr.clone(),
            env,
            cpus,
            owner_uid,
            nodes,
            umask: default_umask(),
        }
    }
}

fn default_umask() -> u32 {
    0o022
}

/// What an agent reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AgentEvent {
    /// The task's process runs.
    Started { run: RunId },
    /// The task's process ended (or could not start: `error` says why).
    Exited {
        run: RunId,
        exit_code: i64,
        canceled: bool,
        error: String,
        /// After a non-zero exit, the line of the task's standard error
        /// that says why ([`super::supervisor::reason_line`]); may be empty.
        #[serde(default)]
        reason: String,
    },
    /// After a restart: this run never started, so it may be dispatched again.
    NeverStarted { run: RunId },
}

/// Start one MPI rank (mpiexec to the launch service, the first frame).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankRequest {
    pub job: u64,
    /// `HPCPACK_JOB_CREDENTIAL`: `<job id>:<hex HMAC-SHA256>`.
    pub credential: String,
    /// The node of the job's allocation the rank runs on.
    pub node: String,
    pub rank: u32,
    pub program: String,
    pub args: Vec<String>,
    pub work_dir: String,
    /// The rank's whole environment (the service adds only the PMI variables).
    pub env: Vec<(String, String)>,
    /// Host logical CPU the rank is bound to.
    pub cpu: Option<u32>,
    /// The nice value to start it with (mpiexec's `-priority`); `None`:
    /// the service's own.
    #[serde(default)]
    pub nice: Option<i32>,
    /// `PMI_PORT`: `<host>:<port>` of mpiexec's PMI server.
    pub pmi_port: String,
    /// `PMI_ID`: the id the rank sends in its PMI handshake.
    pub pmi_id: u32,
}

/// How a rank ended: its exit code, or the signal that killed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl RankExit {
    /// The code a shell reports: the exit code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match (self.code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 1,
        }
    }
}

/// One frame of the launch service's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// mpiexec → service: start this rank.
    Request(RankRequest),
    /// mpiexec → service: kill the rank now (closing the connection does
    /// the same).
    Kill,
    /// The rank runs, with this pid (its process group and session id).
    Started {
        pid: u32,
    },
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The rank ended; no frame follows.
    Exited(RankExit),
    /// The request was refused or the rank could not start: why, for
    /// mpiexec to print. No frame follows.
    Refused {
        message: String,
    },
}

/// The largest payload accepted: a request carries an environment, which
/// the kernel caps at a few megabytes anyway.
pub const MAX_FRAME: u32 = 16 << 20;

/// A frame that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the connection closed")]
    Closed,
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(u32),
    #[error("malformed frame payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Bytes of a frame's header: the kind, then the payload's length.
pub const HEADER_LEN: usize = 5;

/// A frame's header, for a reader that gathers a frame as its bytes arrive
/// (the launch service's handshake) and judges it before the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    /// Bytes of the payload that follows.
    pub len: u32,
}

impl Header {
    pub fn parse(head: [u8; HEADER_LEN]) -> Header {
        Header {
            kind: head[0],
            len: u32::from_be_bytes([head[1], head[2], head[3], head[4]]),
        }
    }

    /// Whether the frame is a [`Frame::Request`].
    pub fn is_request(self) -> bool {
        self.kind == kind::REQUEST
    }
}

mod kind {
    pub const REQUEST: u8 = 1;
    pub const KILL: u8 = 2;
    pub const STARTED: u8 = 3;
    pub const STDOUT: u8 = 4;
    pub const STDERR: u8 = 5;
    pub const EXITED: u8 = 6;
    pub const REFUSED: u8 = 7;
}

#[derive(Serialize, Deserialize)]
struct StartedPayload {
    pid: u32,
}

#[derive(Serialize, Deserialize)]
struct RefusedPayload {
    message: String,
}

impl Frame {
    /// The frame as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let (k, payload) = match self {
            Frame::Request(r) => (kind::REQUEST, json(r)),
            Frame::Kill => (kind::KILL, Vec::new()),
            Frame::Started { pid } => (kind::STARTED, json(&StartedPayload { pid: *pid })),
            Frame::Stdout(b) => (kind::STDOUT, b.clone()),
            Frame::Stderr(b) => (kind::STDERR, b.clone()),
            Frame::Exited(e) => (kind::EXITED, json(e)),
            Frame::Refused { message } => (
                kind::REFUSED,
                json(&RefusedPayload {
                    message: message.clone(),
                }),
            ),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(k);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Writes the frame in one `write_all`, so frames written by several
    /// threads under one lock never interleave.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.encode())?;
        w.flush()
    }

    /// Reads one frame; [`FrameError::Closed`] at a clean end of stream.
    pub fn read_from(r: &mut impl Read) -> Result<Frame, FrameError> {
        let mut head = [0u8; HEADER_LEN];
        match r.read_exact(&mut head[..1]) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
            r => r?,
        }
        r.read_exact(&mut head[1..])?;
        let len = Header::parse(head).len;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload)?;
        Ok(match head[0] {
            kind::REQUEST => Frame::Request(serde_json::from_slice(&payload)?),
            kind::KILL => Frame::Kill,
            kind::STARTED => Frame::Started {
                pid: serde_json::from_slice::<StartedPayload>(&payload)?.pid,
            },
            kind::STDOUT => Frame::Stdout(payload),
            kind::STDERR => Frame::Stderr(payload),
            kind::EXITED => Frame::Exited(serde_json::from_slice(&payload)?),
            kind::REFUSED => Frame::Refused {
                message: serde_json::from_slice::<RefusedPayload>(&payload)?.message,
            },
            k => return Err(FrameError::Kind(k)),
        })
    }
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialise.
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RankRequest {
        RankRequest {
            job: 7,
            credential: "7:00ff".into(),
            node: "node2".into(),
            rank: 3,
            program: "/bin/true".into(),
            args: vec!["a b".into(), String::new()],
            work_dir: "/tmp".into(),
            env: vec![("A".into(), "1=2".into())],
            cpu: Some(5),
            nice: Some(10),
            pmi_port: "127.0.0.1:4000".into(),
            pmi_id: 3,
        }
    }

    #[test]
    fn every_frame_round_trips() {
        let frames = [
            Frame::Request(request()),
            Frame::Kill,
            Frame::Started { pid: 4242 },
            Frame::Stdout(b"line\n\xff\x00".to_vec()),
            Frame::Stderr(Vec::new()),
            Frame::Exited(RankExit {
                code: None,
                signal: Some(9),
            }),
            Frame::Refused {
                message: "no".into(),
            },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            f.write_to(&mut wire).unwrap();
        }
        let mut r = wire.as_slice();
        for f in &frames {
            assert_eq!(&Frame::read_from(&mut r).unwrap(), f);
        }
        assert!(matches!(Frame::read_from(&mut r), Err(FrameError::Closed)));
    }

    #[test]
    fn layout_is_kind_length_payload() {
        assert_eq!(
            Frame::Stdout(b"hi".to_vec()).encode(),
            [4, 0, 0, 0, 2, b'h', b'i']
        );
        assert_eq!(Frame::Kill.encode(), [2, 0, 0, 0, 0]);
    }

    #[test]
    fn bad_frames_are_errors() {
        assert!(matches!(
            Frame::read_from(&mut &[99u8, 0, 0, 0, 0][..]),
            Err(FrameError::Kind(99))
        ));
        assert!(matches!(
            Frame::read_from(&mut &[1u8, 0xff, 0, 0, 0][..]),
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(
            Frame::read_from(&mut &[1u8, 0, 0, 0, 2, b'{', b'}'][..]),
            Err(FrameError::Payload(_))
        ));
        // Cut short inside a frame: not a clean close.
        assert!(matches!(
            Frame::read_from(&mut &[4u8, 0, 0, 0, 9, b'x'][..]),
            Err(FrameError::Io(_))
        ));
    }

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        assert_eq!(
            RankExit {
                code: Some(3),
                signal: None
            }
            .shell_code(),
            3
        );
        assert_eq!(
            RankExit {
                code: None,
                signal: Some(9)
            }
            .shell_code(),
            137
        );
    }
}
