//! Ranks started by the node agents' MPI launch service
//! ([`crate::node::launch`]), inside a job of the embedded head: the
//! service checks the job's credential and starts the rank on its node.
//! PMI over TCP (`PMI_PORT`, `PMI_ID`, served by [`PmiListener`]); output
//! and exit come back as frames on the service connection and go through
//! the same `forward` as a child's pipes, so `-lines` behaves the same.
//! Killing is a `Kill` frame and closing our half of the connection; the
//! service also kills the rank if mpiexec dies, since the connection then
//! closes.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;

use super::children::Children;
use super::pmi::{PmiListener, lock};
use super::{ANSWER_TIMEOUT, Bootstrap, Handle, Job, Launch, Report, StartError, Started, forward};
use crate::node::protocol::{Frame, RankRequest};

/// Parses `HPCPACK_LAUNCH` (`<node>=<host:port> …`); malformed items are
/// skipped.
pub fn parse_launch(v: &str) -> Vec<(String, String)> {
    v.split_whitespace()
        .filter_map(|item| {
            let (name, addr) = item.split_once('=')?;
            (!name.is_empty() && addr.contains(':')).then(|| (name.to_string(), addr.to_string()))
        })
        .collect()
}

/// What every service request of the job shares.
struct ServiceJob {
    job: u64,
    credential: String,
    /// mpiexec's environment, which the ranks start from as children do.
    env: Vec<(String, String)>,
    pmi_port: String,
}

/// Starts the ranks of served nodes through their launch service, and the
/// other ranks of this host as [`Children`].
pub struct LaunchService {
    /// The launch service of each node of the job (`HPCPACK_LAUNCH`).
    services: Vec<(String, String)>,
    /// `HPCPACK_JOB_CREDENTIAL`.
    credential: Option<String>,
    children: Children,
    /// Set by `open` once some rank goes through a service.
    job: Option<ServiceJob>,
}

impl LaunchService {
    /// The services of a job's nodes, its credential, and the bootstrap of
    /// the ranks no service serves.
    pub fn new(
        services: Vec<(String, String)>,
        credential: Option<String>,
        children: Children,
    ) -> LaunchService {
        LaunchService {
            services,
            credential,
            children,
            job: None,
        }
    }

    /// The launch service serving node `name`, if the head node named one.
    pub fn service(&self, name: &str) -> Option<&str> {
        self.services
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| a.as_str())
    }
}

impl Bootstrap for LaunchService {
    fn reach(&self, host: &str) -> Result<(), StartError> {
        match self.service(host) {
            Some(_) => Ok(()),
            None => self.children.reach(host),
        }
    }

    fn how(&self, launch: &Launch) -> String {
        match self.service(&launch.host) {
            Some(addr) => format!("through the launch service at {addr}"),
            None => self.children.how(launch),
        }
    }

    fn open(&mut self, launches: &[Launch], job: &Job) -> Result<(), StartError> {
        let served: Vec<(u32, &str)> = launches
            .iter()
            .filter_map(|l| self.service(&l.host).map(|a| (l.rank, a)))
            .collect();
        if served.is_empty() {
            return Ok(());
        }
        {
            let mut pmi = lock(&job.pmi);
            for &(rank, _) in &served {
                pmi.by_port[rank as usize] = true;
            }
        }
        let addrs: Vec<&str> = served.iter().map(|&(_, a)| a).collect();
        let listener = PmiListener::start(&addrs, Arc::clone(&job.pmi), job.tx.clone())?;
        let credential = self.credential.clone().unwrap_or_default();
        self.job = Some(ServiceJob {
            job: credential
                .split_once(':')
                .and_then(|(j, _)| j.parse().ok())
                .unwrap_or(0),
            credential,
            env: std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect(),
            pmi_port: listener.port,
        });
        Ok(())
    }

    fn start(&self, launch: &Launch, job: &mut Job) -> Result<Started, StartError> {
        match (self.service(&launch.host), &self.job) {
            (Some(addr), Some(service_job)) => start_service(launch, addr, service_job, job),
            _ => self.children.start(launch, job),
        }
    }
}

/// Asks the launch service at `addr` to start `launch`; returns once the
/// service started it or refused.
fn start_service(
    launch: &Launch,
    addr: &str,
    service_job: &ServiceJob,
    job: &mut Job,
) -> Result<Started, StartError> {
    let rank = launch.rank;
    let failed = |message: String| StartError::Service {
        rank,
        node: launch.host.clone(),
        addr: addr.to_string(),
        message,
    };
    let target = addr
        .to_socket_addrs()
        .map_err(|e| failed(format!("cannot resolve the address: {e}")))?
        .next()
        .ok_or_else(|| failed("the address resolves to nothing".into()))?;
    let mut conn = TcpStream::connect_timeout(&target, ANSWER_TIMEOUT)
        .map_err(|e| failed(format!("cannot connect ({e}); is the node agent running?")))?;
    let _ = conn.set_nodelay(true);
    let mut env = service_job.env.clone();
    env.extend(launch.env.iter().cloned());
    let request = RankRequest {
        job: service_job.job,
        credential: service_job.credential.clone(),
        node: launch.host.clone(),
        rank,
        program: launch.program.display().to_string(),
        args: launch.args.clone(),
        work_dir: launch.dir.display().to_string(),
        env,
        cpu: launch.cpu,
        nice: launch.nice,
        pmi_port: service_job.pmi_port.clone(),
        pmi_id: rank,
    };
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
        what: "cloning a launch service connection",
        source,
    })?;
    let (tx, addr) = (job.tx.clone(), addr.to_string());
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
                    eprintln!(
                        "mpiexec: lost the launch service connection of rank {rank} (at {addr}): {e}"
                    );
                    break 1;
                }
            }
        };
        // Output first, so the supervisor's joins find it complete.
        drop((out_w, err_w));
        let _ = tx.send(Report::Exited { rank, code });
    });
    Ok(Started {
        handle: Handle::Service { conn: handle },
        exited: None,
    })
}
