//! The PMI-1 server of one job as a pure state machine: a line from a rank
//! in, the lines to send to which ranks out.
//!
//! It owns no sockets and no threads so the launcher can drive it from
//! whatever I/O loop it has (one task per connection, poll, a test), and so
//! the protocol's only subtle part, the job-wide barrier that also fences the
//! key-value space, can be tested line by line. Things the launcher must act
//! on rather than answer (an abort, a broken client) are queued as [`Event`]s.

use std::collections::{BTreeSet, HashMap};

use super::wire::{Request, WireError, reply};

/// The key MPICH 4.0.2 reads right after init to learn which ranks share a
/// node (spec/pmi.md §3).
pub const PROCESS_MAPPING_KEY: &str = "PMI_process_mapping";

/// Something the launcher must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The rank called `PMI_Abort`: kill the whole job and exit non-zero.
    Abort { rank: u32, code: i32 },
    /// The rank sent a line that is not a request we serve. It got no reply,
    /// so it is probably blocked; the job should be ended.
    BadRequest {
        rank: u32,
        line: String,
        error: WireError,
    },
    /// A line came for a rank outside `0..size`; it was ignored.
    BadRank { rank: u32 },
    /// The rank entered the barrier twice before it was released; the second
    /// entry was ignored.
    RepeatedBarrier { rank: u32 },
}

/// The PMI state of one job: its key-value space, barrier and ranks.
#[derive(Debug)]
pub struct Server {
    size: u32,
    kvsname: String,
    kvs: HashMap<String, String>,
    services: HashMap<String, String>,
    /// Ranks waiting in the current barrier.
    in_barrier: BTreeSet<u32>,
    finalized: BTreeSet<u32>,
    events: Vec<Event>,
}

impl Server {
    /// A server for `size` ranks whose key-value space is named `kvsname`
    /// (a token without spaces, e.g. `kvs_<pid>_0`), with
    /// [`PROCESS_MAPPING_KEY`] set to `process_mapping` (see
    /// [`process_mapping`]).
    pub fn new(size: u32, kvsname: impl Into<String>, process_mapping: impl Into<String>) -> Self {
        let kvs = HashMap::from([(PROCESS_MAPPING_KEY.to_owned(), process_mapping.into())]);
        Server {
            size,
            kvsname: kvsname.into(),
            kvs,
            services: HashMap::new(),
            in_barrier: BTreeSet::new(),
            finalized: BTreeSet::new(),
            events: Vec::new(),
        }
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn kvsname(&self) -> &str {
        &self.kvsname
    }

    /// The rank a `PMI_PORT` connection belongs to, from its first line
    /// `cmd=initack pmiid=<id>` (the launcher sets `PMI_ID` to the rank).
    /// The caller then passes the same line to [`Server::handle`] for that
    /// rank to get the handshake's reply.
    pub fn identify(&self, line: &str) -> Option<u32> {
        match Request::parse(line) {
            Ok(Request::Initack { pmiid }) if pmiid < self.size => Some(pmiid),
            _ => None,
        }
    }

    /// Handles one line from `rank` and returns the lines (without `\n`) to
    /// send, each with the rank to send it to, in order.
    pub fn handle(&mut self, rank: u32, line: &str) -> Vec<(u32, String)> {
        if rank >= self.size {
            self.events.push(Event::BadRank { rank });
            return Vec::new();
        }
        let request = match Request::parse(line) {
            Ok(request) => request,
            Err(error) => {
                let line = line.trim_end().to_owned();
                self.events.push(Event::BadRequest { rank, line, error });
                return Vec::new();
            }
        };
        let one = |line: String| vec![(rank, line)];
        match request {
            Request::Initack { pmiid } => reply::initack(self.size, pmiid)
                .into_iter()
                .map(|l| (rank, l))
                .collect(),
            // MPICH's simple client always sends 1.1; anything else is a
            // client we do not speak to (PMI-2 uses a different command).
            Request::Init { version, .. } => {
                one(reply::response_to_init(if version == 1 { 0 } else { -1 }))
            }
            Request::GetMaxes => one(reply::maxes()),
            Request::GetAppnum => one(reply::appnum(0)),
            Request::GetMyKvsname => one(reply::my_kvsname(&self.kvsname)),
            // No dynamic processes yet, so the universe is the job.
            Request::GetUniverseSize => one(reply::universe_size(self.size)),
            Request::Put {
                kvsname,
                key,
                value,
            } => {
                if kvsname != self.kvsname {
                    return one(reply::put_failed("kvsname_mismatch"));
                }
                self.kvs.insert(key, value);
                one(reply::put_ok())
            }
            Request::Get { kvsname, key } => match self.kvs.get(&key) {
                Some(value) if kvsname == self.kvsname => one(reply::get_found(value)),
                _ => one(reply::get_missing(&key)),
            },
            Request::BarrierIn => self.barrier_in(rank),
            Request::Finalize => {
                self.finalized.insert(rank);
                one(reply::finalize_ack())
            }
            // The client does not wait for a reply that matters: the
            // launcher's answer to an abort is to kill the job.
            Request::Abort { code } => {
                self.events.push(Event::Abort { rank, code });
                Vec::new()
            }
            Request::PublishName { service, port } => {
                self.services.insert(service, port);
                one(reply::publish_ok())
            }
            Request::UnpublishName { service } => {
                self.services.remove(&service);
                one(reply::unpublish_ok())
            }
            Request::LookupName { service } => match self.services.get(&service) {
                Some(port) => one(reply::lookup_found(port)),
                None => one(reply::lookup_missing()),
            },
        }
    }

    /// Puts are applied as they arrive, so releasing the barrier only after
    /// every rank entered is what makes every put before it visible to every
    /// get after it.
    fn barrier_in(&mut self, rank: u32) -> Vec<(u32, String)> {
        if !self.in_barrier.insert(rank) {
            self.events.push(Event::RepeatedBarrier { rank });
            return Vec::new();
        }
        if self.in_barrier.len() < self.size as usize {
            return Vec::new();
        }
        self.in_barrier.clear();
        (0..self.size).map(|r| (r, reply::barrier_out())).collect()
    }

    /// Removes and returns the events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn is_finalized(&self, rank: u32) -> bool {
        self.finalized.contains(&rank)
    }

    /// Whether every rank has sent `finalize`.
    pub fn all_finalized(&self) -> bool {
        self.finalized.len() == self.size as usize
    }
}

/// The `PMI_process_mapping` value, in hydra's format, for ranks placed in
/// blocks: `ranks_per_node[i]` consecutive ranks on node `i`, in rank order.
///
/// Each `(start_node,num_nodes,ranks_per_node)` triple covers a run of nodes
/// with the same count, so a block mapping is one triple: `[2,2]` gives
/// `(vector,(0,2,2))` and `[2,2,1]` gives `(vector,(0,2,2),(2,1,1))`. Nodes
/// with no ranks are left out (MPICH numbers nodes by appearance, so they
/// would only be empty slots). MPICH repeats the vector cyclically when it
/// covers fewer ranks than the job, so the counts must sum to the job's size.
pub fn process_mapping(ranks_per_node: &[u32]) -> String {
    let mut runs: Vec<(usize, usize, u32)> = Vec::new();
    for &count in ranks_per_node.iter().filter(|&&c| c > 0) {
        match runs.last_mut() {
            Some((_, nodes, per)) if *per == count => *nodes += 1,
            _ => {
                let start = runs.last().map_or(0, |(start, nodes, _)| start + nodes);
                runs.push((start, 1, count));
            }
        }
    }
    let mut out = String::from("(vector");
    for (start, nodes, per) in runs {
        out.push_str(&format!(",({start},{nodes},{per})"));
    }
    out.push(')');
    out
}

/// `PMI_process_mapping` of ranks whose hosts are `hosts`, in rank order:
/// each host a node (numbered as first met), runs of consecutive ranks on
/// one node as `(node, 1, ranks)`, merged where successive nodes take the
/// same number of ranks (MPICH's `(vector,(start,nodes,per_node),…)`), so
/// that blocks and round robin both come out as Hydra writes them.
pub fn process_mapping_of(hosts: &[&str]) -> String {
    let mut nodes: Vec<&str> = Vec::new();
    let mut runs: Vec<(usize, usize, u32)> = Vec::new();
    let mut last: Option<usize> = None;
    for h in hosts {
        let n = match nodes.iter().position(|x| x == h) {
            Some(n) => n,
            None => {
                nodes.push(h);
                nodes.len() - 1
            }
        };
        match runs.last_mut() {
            Some((start, count, per)) if last == Some(n) && *count == 1 && *start == n => *per += 1,
            _ => runs.push((n, 1, 1)),
        }
        last = Some(n);
    }
    // (a,1,p),(a+1,1,p) … → (a,k,p)
    let mut merged: Vec<(usize, usize, u32)> = Vec::new();
    for (start, count, per) in runs {
        match merged.last_mut() {
            Some((s, c, p)) if *p == per && *s + *c == start => *c += count,
            _ => merged.push((start, count, per)),
        }
    }
    let mut out = String::from("(vector");
    for (start, count, per) in merged {
        out.push_str(&format!(",({start},{count},{per})"));
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KVS: &str = "kvs_42_0";

    #[test]
    fn the_node_map_follows_the_hosts_of_the_ranks() {
        assert_eq!(process_mapping_of(&["", "", "", ""]), "(vector,(0,1,4))");
        assert_eq!(process_mapping_of(&["a", "a", "b", "b", "c", "c"]), "(vector,(0,3,2))");
        assert_eq!(process_mapping_of(&["a", "b", "c"]), "(vector,(0,3,1))");
        assert_eq!(process_mapping_of(&["a", "b", "a", "b"]), "(vector,(0,2,1),(0,2,1))");
        assert_eq!(process_mapping_of(&["", "x", "x"]), "(vector,(0,1,1),(1,1,2))");
    }

    fn server(size: u32) -> Server {
        Server::new(size, KVS, process_mapping(&[size]))
    }

    /// The replies to `rank` only, asserting none go elsewhere.
    fn ask(s: &mut Server, rank: u32, line: &str) -> Vec<String> {
        s.handle(rank, line)
            .into_iter()
            .map(|(to, line)| {
                assert_eq!(to, rank, "reply to {line} went to another rank");
                line
            })
            .collect()
    }

    fn ask1(s: &mut Server, rank: u32, line: &str) -> String {
        let mut replies = ask(s, rank, line);
        assert_eq!(replies.len(), 1, "{line} -> {replies:?}");
        replies.remove(0)
    }

    /// Every rank enters the barrier; only the last entry releases it, to all.
    fn barrier(s: &mut Server) {
        let size = s.size();
        for rank in 0..size - 1 {
            assert!(
                s.handle(rank, "cmd=barrier_in").is_empty(),
                "released early at {rank}"
            );
        }
        let out = s.handle(size - 1, "cmd=barrier_in");
        let expected: Vec<_> = (0..size)
            .map(|r| (r, "cmd=barrier_out".to_owned()))
            .collect();
        assert_eq!(out, expected);
    }

    /// spec/pmi.md §4 for `size` ranks: init, node map, a bcast from rank 0
    /// and an allgather, each fenced by a barrier.
    fn session(size: u32) {
        let mut s = server(size);
        let get = |key: &str| format!("cmd=get kvsname={KVS} key={key}");
        for rank in 0..size {
            assert_eq!(
                ask1(&mut s, rank, "cmd=init pmi_version=1 pmi_subversion=1"),
                "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0"
            );
            assert_eq!(
                ask1(&mut s, rank, "cmd=get_maxes"),
                "cmd=maxes kvsname_max=256 keylen_max=64 vallen_max=1024"
            );
            assert_eq!(ask1(&mut s, rank, "cmd=get_appnum"), "cmd=appnum appnum=0");
            assert_eq!(
                ask1(&mut s, rank, "cmd=get_my_kvsname"),
                format!("cmd=my_kvsname kvsname={KVS}")
            );
            assert_eq!(
                ask1(&mut s, rank, &get("PMI_process_mapping")),
                format!("cmd=get_result rc=0 msg=success value=(vector,(0,1,{size}))")
            );
        }
        barrier(&mut s);
        let put = format!("cmd=put kvsname={KVS} key=-bcast-1-0 value=2f73686d2d31");
        assert_eq!(ask1(&mut s, 0, &put), "cmd=put_result rc=0 msg=success");
        barrier(&mut s);
        for rank in 1..size {
            assert_eq!(
                ask1(&mut s, rank, &get("-bcast-1-0")),
                "cmd=get_result rc=0 msg=success value=2f73686d2d31"
            );
        }
        for rank in 0..size {
            let put =
                format!("cmd=put kvsname={KVS} key=-allgather-shm-1-{rank} value=addr{rank}=x");
            assert_eq!(ask1(&mut s, rank, &put), "cmd=put_result rc=0 msg=success");
        }
        barrier(&mut s);
        for rank in 0..size {
            for other in (0..size).filter(|&o| o != rank) {
                assert_eq!(
                    ask1(&mut s, rank, &get(&format!("-allgather-shm-1-{other}"))),
                    format!("cmd=get_result rc=0 msg=success value=addr{other}=x")
                );
            }
        }
        assert_eq!(
            ask1(&mut s, 0, &get("-allgather-shm-1-99")),
            "cmd=get_result rc=-1 msg=key_-allgather-shm-1-99_not_found value=unknown"
        );
        barrier(&mut s);
        for rank in 0..size {
            assert!(!s.all_finalized());
            assert_eq!(ask1(&mut s, rank, "cmd=finalize"), "cmd=finalize_ack");
            assert!(s.is_finalized(rank));
        }
        assert!(s.all_finalized());
        assert_eq!(s.take_events(), []);
    }

    #[test]
    fn two_rank_session() {
        session(2);
    }

    #[test]
    fn four_rank_session() {
        session(4);
    }

    #[test]
    fn singleton_barrier_releases_at_once() {
        let mut s = server(1);
        assert_eq!(
            s.handle(0, "cmd=barrier_in"),
            [(0, "cmd=barrier_out".to_owned())]
        );
    }

    #[test]
    fn barrier_waits_for_every_distinct_rank() {
        let mut s = server(3);
        assert!(s.handle(0, "cmd=barrier_in").is_empty());
        assert!(s.handle(2, "cmd=barrier_in").is_empty());
        // A rank entering twice must not stand in for the missing one.
        assert!(s.handle(2, "cmd=barrier_in").is_empty());
        assert_eq!(s.take_events(), [Event::RepeatedBarrier { rank: 2 }]);
        // Other traffic meanwhile does not release it either.
        assert_eq!(ask1(&mut s, 1, "cmd=get_appnum"), "cmd=appnum appnum=0");
        assert_eq!(s.handle(1, "cmd=barrier_in").len(), 3);
        // The next barrier starts from nobody.
        assert!(s.handle(1, "cmd=barrier_in").is_empty());
        assert!(s.handle(0, "cmd=barrier_in").is_empty());
    }

    #[test]
    fn abort_is_reported_not_answered() {
        let mut s = server(2);
        assert!(s.handle(1, "cmd=abort exitcode=13").is_empty());
        assert_eq!(s.take_events(), [Event::Abort { rank: 1, code: 13 }]);
        assert_eq!(s.take_events(), []);
    }

    #[test]
    fn bad_lines_and_ranks_are_reported() {
        let mut s = server(2);
        assert!(s.handle(0, "cmd=frobnicate\n").is_empty());
        assert!(s.handle(5, "cmd=get_appnum").is_empty());
        assert_eq!(
            s.take_events(),
            [
                Event::BadRequest {
                    rank: 0,
                    line: "cmd=frobnicate".into(),
                    error: WireError::UnknownCmd {
                        cmd: "frobnicate".into()
                    },
                },
                Event::BadRank { rank: 5 },
            ]
        );
    }

    #[test]
    fn other_kvs_is_refused() {
        let mut s = server(1);
        assert_eq!(
            ask1(&mut s, 0, "cmd=put kvsname=other key=a value=1"),
            "cmd=put_result rc=-1 msg=kvsname_mismatch"
        );
        assert_eq!(
            ask1(&mut s, 0, "cmd=get kvsname=other key=PMI_process_mapping"),
            "cmd=get_result rc=-1 msg=key_PMI_process_mapping_not_found value=unknown"
        );
    }

    #[test]
    fn unsupported_version_gets_nonzero_rc() {
        let mut s = server(1);
        assert_eq!(
            ask1(&mut s, 0, "cmd=init pmi_version=2 pmi_subversion=0"),
            "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=-1"
        );
    }

    #[test]
    fn initack_identifies_and_answers() {
        let mut s = server(4);
        assert_eq!(s.identify("cmd=initack pmiid=2\n"), Some(2));
        assert_eq!(s.identify("cmd=initack pmiid=4"), None);
        assert_eq!(s.identify("cmd=init pmi_version=1 pmi_subversion=1"), None);
        assert_eq!(
            ask(&mut s, 2, "cmd=initack pmiid=2"),
            [
                "cmd=initack",
                "cmd=set size=4",
                "cmd=set rank=2",
                "cmd=set debug=0"
            ]
        );
    }

    #[test]
    fn names_publish_lookup_unpublish() {
        let mut s = server(2);
        assert_eq!(
            ask1(&mut s, 0, "cmd=lookup_name service=svc"),
            "cmd=lookup_result rc=1 msg=service_not_found"
        );
        assert_eq!(
            ask1(&mut s, 0, "cmd=publish_name service=svc port=tag#0$"),
            "cmd=publish_result info=ok rc=0 msg=success"
        );
        assert_eq!(
            ask1(&mut s, 1, "cmd=lookup_name service=svc"),
            "cmd=lookup_result port=tag#0$ info=ok rc=0 msg=success"
        );
        assert_eq!(
            ask1(&mut s, 0, "cmd=unpublish_name service=svc"),
            "cmd=unpublish_result info=ok rc=0 msg=success"
        );
        assert_eq!(
            ask1(&mut s, 1, "cmd=lookup_name service=svc"),
            "cmd=lookup_result rc=1 msg=service_not_found"
        );
    }

    #[test]
    fn mapping_merges_runs_of_equal_counts() {
        assert_eq!(process_mapping(&[2]), "(vector,(0,1,2))");
        assert_eq!(process_mapping(&[2, 2]), "(vector,(0,2,2))");
        assert_eq!(process_mapping(&[4, 4, 4, 4]), "(vector,(0,4,4))");
        assert_eq!(process_mapping(&[2, 2, 1]), "(vector,(0,2,2),(2,1,1))");
        assert_eq!(
            process_mapping(&[1, 3, 3, 1]),
            "(vector,(0,1,1),(1,2,3),(3,1,1))"
        );
        // A count equal to an earlier, non-adjacent run starts a new triple.
        assert_eq!(
            process_mapping(&[2, 1, 2]),
            "(vector,(0,1,2),(1,1,1),(2,1,2))"
        );
        assert_eq!(process_mapping(&[2, 0, 2]), "(vector,(0,2,2))");
        assert_eq!(process_mapping(&[]), "(vector)");
    }
}
