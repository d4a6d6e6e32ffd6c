//! A rank started by another process on mpiexec's behalf (a node agent's
//! launch service, a proxy started by `srun`), once mpiexec holds a
//! connection to that process: send the [`RankRequest`], wait for
//! `Started` or `Refused`, then turn the `Stdout`/`Stderr`/`Exited` frames
//! into what a child's pipes and exit give, so the supervisor cannot tell
//! the two apart. Killing such a rank is a `Kill` frame and closing our
//! half of the connection; the other side also kills it when mpiexec dies,
//! since the connection then closes.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::thread;

use super::{ANSWER_TIMEOUT, Handle, Job, Launch, Report, StartError, Started, forward};
use crate::node::protocol::{Frame, RankRequest};

/// mpiexec's own environment, which a rank started elsewhere starts from,
/// as a child would.
pub(super) fn own_environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// The request for `launch`, whose environment is `base` with the rank's
/// own variables on top, reaching PMI at `pmi_port`; no job or credential
/// (a launch service's request adds them).
pub(super) fn request(launch: &Launch, base: &[(String, String)], pmi_port: String) -> RankRequest {
    let mut env = base.to_vec();
    env.extend(launch.env.iter().cloned());
    RankRequest {
        job: 0,
        credential: String::new(),
        node: launch.host.clone(),
        rank: launch.rank,
        program: launch.program.display().to_string(),
        args: launch.args.clone(),
        work_dir: launch.dir.display().to_string(),
        env,
        cpu: launch.cpu,
        nice: launch.nice,
        pmi_port,
        pmi_id: launch.rank,
    }
}

/// Sends `request` for `launch` on `conn` and, once the other side started
/// the rank, relays its output and exit. `failed` makes the error of a
/// refusal or broken answer; `via` names the other side in the message
/// printed if the connection is lost while the rank runs.
pub(super) fn start_remote(
    mut conn: TcpStream,
    request: RankRequest,
    launch: &Launch,
    job: &mut Job,
    failed: impl Fn(String) -> StartError,
    via: String,
) -> Result<Started, StartError> {
    let rank = launch.rank;
    Frame::Request(request)
        .write_to(&mut conn)
        .map_err(|e| failed(format!("cannot send the request: {e}")))?;
    let _ = conn.set_read_timeout(Some(ANSWER_TIMEOUT));
    match Frame::read_from(&mut conn) {
        Ok(Frame::Started { .. }) => {}
        Ok(Frame::Refused { message }) => return Err(failed(message)),
        Ok(_) => {
            return Err(failed(
                "the service answered out of turn (before saying the rank started)".into(),
            ));
        }
        Err(e) => return Err(failed(format!("no answer: {e}"))),
    }
    let _ = conn.set_read_timeout(None);
    // A socket pair as the pipe to `forward` (std's anonymous pipe needs a
    // newer Rust than the crate's minimum).
    let pipe = || {
        UnixStream::pair().map_err(|source| StartError::Io {
            what: "creating an output pipe",
            source,
        })
    };
    let (out_r, mut out_w) = pipe()?;
    let (err_r, mut err_w) = pipe()?;
    let lines = job.lines;
    job.outputs
        .push(thread::spawn(move || forward(rank, out_r, false, lines)));
    job.outputs
        .push(thread::spawn(move || forward(rank, err_r, true, lines)));
    let handle = conn.try_clone().map_err(|source| StartError::Io {
        what: "cloning a rank's connection",
        source,
    })?;
    let tx = job.tx.clone();
    thread::spawn(move || {
        let code = loop {
            match Frame::read_from(&mut conn) {
                Ok(Frame::Stdout(b)) => {
                    let _ = out_w.write_all(&b);
                }
                Ok(Frame::Stderr(b)) => {
                    let _ = err_w.write_all(&b);
                }
                Ok(Frame::Exited(e)) => break e.shell_code(),
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("mpiexec: lost the connection of rank {rank} ({via}): {e}");
                    break 1;
                }
            }
        };
        // Output first, so the supervisor's joins find it complete.
        drop((out_w, err_w));
        let _ = tx.send(Report::Exited { rank, code });
    });
    Ok(Started {
        handle: Handle::Remote { conn: handle },
        exited: None,
    })
}
