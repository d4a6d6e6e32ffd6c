//! Ranks started by the node agents' MPI launch service
//! ([`crate::node::launch`]), inside a job of the embedded head: the
//! service checks the job's credential and starts the rank on its node.
//! PMI over TCP (`PMI_PORT`, `PMI_ID`, served by [`PmiListener`]); once
//! the request is sent the rank is relayed as [`super::remote`] relays
//! every rank started by another process (output through the same
//! `forward` as a child's pipes, so `-lines` behaves the same; killed by a
//! `Kill` frame or by mpiexec's end closing the connection).

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;

use super::children::Children;
use super::pmi::{PmiListener, PortPeer, lock};
use super::remote::{own_environment, request, start_remote};
use super::{ANSWER_TIMEOUT, Bootstrap, Job, Launch, StartError, Started};
use crate::node::protocol::RankRequest;

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
                pmi.by_port[rank as usize] = PortPeer::Any;
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
            env: own_environment(),
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
    let conn = TcpStream::connect_timeout(&target, ANSWER_TIMEOUT)
        .map_err(|e| failed(format!("cannot connect ({e}); is the node agent running?")))?;
    let _ = conn.set_nodelay(true);
    let request = RankRequest {
        job: service_job.job,
        credential: service_job.credential.clone(),
        ..request(launch, &service_job.env, service_job.pmi_port.clone())
    };
    let via = format!("the launch service at {addr}");
    start_remote(conn, request, launch, job, failed, via)
}
