//! A blocking PMI-1 client, for our own ranks launched by an `mpiexec`
//! (ours or hydra).
//!
//! PMI-1 is strictly one request, one reply, so a buffered reader over the
//! stream, writing through it to the same stream, is all the state needed.
//! [`Client::from_env`] finds the server the way MPICH's simple client does
//! (spec/pmi.md §1): an inherited `PMI_FD`, else `PMI_PORT`, else a
//! singleton with no server, whose key-value space is local.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::wire::{self, MAX_LINE, Message, Request, WireError};
use super::{PMI_FD, PMI_ID, PMI_PORT, PMI_RANK, PMI_SIZE};

/// Why a PMI call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("pmi {op}: {source}")]
    Io { op: &'static str, source: io::Error },
    #[error("pmi server closed the connection while we waited for cmd={expected}")]
    Closed { expected: &'static str },
    #[error("pmi reply: {0}")]
    Wire(#[from] WireError),
    #[error("pmi: expecting cmd={expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
    #[error("pmi {cmd} failed with rc={rc}: {msg}")]
    Rc {
        cmd: &'static str,
        rc: String,
        msg: String,
    },
    #[error("environment variable {var}={value:?}: {reason}")]
    Env {
        var: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{PMI_FD} was already taken by an earlier pmi client in this process")]
    FdTaken,
}

/// The limits a server reports for `get_maxes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Maxes {
    pub kvsname_max: u32,
    pub keylen_max: u32,
    pub vallen_max: u32,
}

/// The connection [`Client::from_env`] makes.
#[derive(Debug)]
pub enum EnvStream {
    /// The socket inherited through `PMI_FD`.
    Fd(UnixStream),
    /// The TCP connection to `PMI_PORT`.
    Tcp(TcpStream),
}

impl Read for EnvStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            EnvStream::Fd(s) => s.read(buf),
            EnvStream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for EnvStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            EnvStream::Fd(s) => s.write(buf),
            EnvStream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            EnvStream::Fd(s) => s.flush(),
            EnvStream::Tcp(s) => s.flush(),
        }
    }
}

/// Set once `PMI_FD` has been turned into an owned stream, so a second
/// [`Client::from_env`] cannot own, and later close, the same fd twice.
static FD_TAKEN: AtomicBool = AtomicBool::new(false);

/// The kvsname a singleton reports; any token would do, nobody else sees it.
const SINGLETON_KVS: &str = "singleton_kvs";

/// One rank's PMI connection; `S` is the stream to the server.
#[derive(Debug)]
pub struct Client<S> {
    /// `None` for a singleton.
    conn: Option<BufReader<S>>,
    rank: u32,
    size: u32,
    /// Fetched once, since every put and get names it.
    kvsname: Option<String>,
    /// A singleton's key-value space.
    local: HashMap<String, String>,
}

impl<S: Read + Write> Client<S> {
    /// A client over an open connection whose rank and size are already
    /// known (from `PMI_RANK`/`PMI_SIZE`). Sends nothing; call
    /// [`Client::init`] next.
    pub fn new(stream: S, rank: u32, size: u32) -> Self {
        Client {
            conn: Some(BufReader::new(stream)),
            rank,
            size,
            kvsname: None,
            local: HashMap::new(),
        }
    }

    /// A client with no server: rank 0 of 1, as MPICH does when neither
    /// `PMI_FD` nor `PMI_PORT` is set.
    pub fn singleton() -> Self {
        Client {
            conn: None,
            rank: 0,
            size: 1,
            kvsname: None,
            local: HashMap::new(),
        }
    }

    /// A client over a `PMI_PORT` connection: sends `cmd=initack
    /// pmiid=<pmiid>` and learns rank and size from the server's four-line
    /// answer.
    pub fn handshake(stream: S, pmiid: u32) -> Result<Self, ClientError> {
        let mut client = Client::new(stream, 0, 1);
        client.send(&Request::Initack { pmiid })?;
        client.expect("initack")?;
        let mut set = |key: &'static str| -> Result<u32, ClientError> {
            let m = client.expect("set")?;
            let value = field(&m, "set", key)?;
            value.parse().map_err(|_| {
                WireError::BadNumber {
                    cmd: "set".into(),
                    key,
                    value: value.to_owned(),
                }
                .into()
            })
        };
        let size = set("size")?;
        let rank = set("rank")?;
        set("debug")?;
        client.size = size;
        client.rank = rank;
        Ok(client)
    }

    pub fn rank(&self) -> u32 {
        self.rank
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn is_singleton(&self) -> bool {
        self.conn.is_none()
    }

    /// `PMI_Init`: announces version 1.1 and checks the server accepts it.
    pub fn init(&mut self) -> Result<(), ClientError> {
        if self.conn.is_some() {
            self.call(
                &Request::Init {
                    version: 1,
                    subversion: 1,
                },
                "response_to_init",
                true,
            )?;
        }
        Ok(())
    }

    pub fn get_maxes(&mut self) -> Result<Maxes, ClientError> {
        if self.conn.is_none() {
            use wire::reply::{KEYLEN_MAX, KVSNAME_MAX, VALLEN_MAX};
            return Ok(Maxes {
                kvsname_max: KVSNAME_MAX,
                keylen_max: KEYLEN_MAX,
                vallen_max: VALLEN_MAX,
            });
        }
        let m = self.call(&Request::GetMaxes, "maxes", false)?;
        Ok(Maxes {
            kvsname_max: number(&m, "maxes", "kvsname_max")?,
            keylen_max: number(&m, "maxes", "keylen_max")?,
            vallen_max: number(&m, "maxes", "vallen_max")?,
        })
    }

    /// The name of the job's key-value space, asked once and remembered.
    pub fn get_my_kvsname(&mut self) -> Result<String, ClientError> {
        if let Some(name) = &self.kvsname {
            return Ok(name.clone());
        }
        let name = if self.conn.is_none() {
            SINGLETON_KVS.to_owned()
        } else {
            let m = self.call(&Request::GetMyKvsname, "my_kvsname", false)?;
            field(&m, "my_kvsname", "kvsname")?.to_owned()
        };
        self.kvsname = Some(name.clone());
        Ok(name)
    }

    /// Stores `value` under `key`; other ranks see it after the next
    /// [`Client::barrier`]. Neither may hold spaces or line breaks.
    pub fn put(&mut self, key: &str, value: &str) -> Result<(), ClientError> {
        wire::check_key(key)?;
        wire::check_value("value", value)?;
        if self.conn.is_none() {
            self.local.insert(key.to_owned(), value.to_owned());
            return Ok(());
        }
        let kvsname = self.get_my_kvsname()?;
        let request = Request::Put {
            kvsname,
            key: key.to_owned(),
            value: value.to_owned(),
        };
        check_len(&request)?;
        self.call(&request, "put_result", true)?;
        Ok(())
    }

    /// The value under `key`, or `None` when no rank put it (rc=-1).
    pub fn get(&mut self, key: &str) -> Result<Option<String>, ClientError> {
        wire::check_key(key)?;
        if self.conn.is_none() {
            return Ok(self.local.get(key).cloned());
        }
        let kvsname = self.get_my_kvsname()?;
        let m = self.call(
            &Request::Get {
                kvsname,
                key: key.to_owned(),
            },
            "get_result",
            false,
        )?;
        match field(&m, "get_result", "rc")? {
            "0" => Ok(Some(field(&m, "get_result", "value")?.to_owned())),
            "-1" => Ok(None),
            rc => Err(rc_error("get_result", rc, &m)),
        }
    }

    /// Waits until every rank of the job has entered; also the fence that
    /// makes earlier puts visible.
    pub fn barrier(&mut self) -> Result<(), ClientError> {
        if self.conn.is_some() {
            self.call(&Request::BarrierIn, "barrier_out", false)?;
        }
        Ok(())
    }

    /// The first half of [`Client::barrier`]: announces that this rank
    /// entered, without waiting. [`Client::barrier_end`] reads the reply,
    /// so a rank can make other progress in between.
    pub fn barrier_begin(&mut self) -> Result<(), ClientError> {
        self.send(&Request::BarrierIn)
    }

    /// The second half of [`Client::barrier`]: waits for every rank.
    pub fn barrier_end(&mut self) -> Result<(), ClientError> {
        if self.conn.is_some() {
            self.expect("barrier_out")?;
        }
        Ok(())
    }

    /// `PMI_Finalize`: waits for the server's acknowledgement, then closes
    /// the connection.
    pub fn finalize(mut self) -> Result<(), ClientError> {
        if self.conn.is_some() {
            self.call(&Request::Finalize, "finalize_ack", false)?;
        }
        Ok(())
    }

    /// `PMI_Abort`: asks the launcher to end the whole job with `code`. No
    /// reply is awaited, since the launcher's answer is to kill us; the
    /// caller should exit with `code` right after.
    pub fn abort(mut self, code: i32) -> Result<(), ClientError> {
        if self.conn.is_some() {
            self.send(&Request::Abort { code })?;
        }
        Ok(())
    }

    fn call(
        &mut self,
        request: &Request,
        expected: &'static str,
        check_rc: bool,
    ) -> Result<Message, ClientError> {
        self.send(request)?;
        let m = self.expect(expected)?;
        if check_rc {
            let rc = field(&m, expected, "rc")?;
            if rc != "0" {
                return Err(rc_error(expected, rc, &m));
            }
        }
        Ok(m)
    }

    fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let Some(conn) = &mut self.conn else {
            return Ok(());
        };
        let stream = conn.get_mut();
        let write = |s: &mut S| {
            s.write_all(format!("{request}\n").as_bytes())?;
            s.flush()
        };
        write(stream).map_err(|source| ClientError::Io {
            op: "write",
            source,
        })
    }

    /// Reads one reply and checks its command, as MPICH's `GetResponse` does.
    fn expect(&mut self, expected: &'static str) -> Result<Message, ClientError> {
        let Some(conn) = &mut self.conn else {
            return Err(ClientError::Closed { expected });
        };
        let mut line = String::new();
        // Bounded so a server that never sends `\n` cannot grow the buffer.
        let n = conn
            .take(MAX_LINE as u64)
            .read_line(&mut line)
            .map_err(|source| ClientError::Io { op: "read", source })?;
        if !line.ends_with('\n') {
            return Err(if n == MAX_LINE {
                WireError::TooLong { len: n }.into()
            } else {
                ClientError::Closed { expected }
            });
        }
        let m = Message::parse(&line)?;
        if m.cmd != expected {
            return Err(ClientError::Unexpected {
                expected,
                got: m.cmd,
            });
        }
        Ok(m)
    }
}

impl AsRawFd for EnvStream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            EnvStream::Fd(s) => s.as_raw_fd(),
            EnvStream::Tcp(s) => s.as_raw_fd(),
        }
    }
}

impl<S: Read + Write + AsRawFd> Client<S> {
    /// Whether a reply can be read without waiting (a singleton's always
    /// can): for [`Client::barrier_end`] after [`Client::barrier_begin`].
    pub fn reply_ready(&self) -> Result<bool, ClientError> {
        let Some(conn) = &self.conn else {
            return Ok(true);
        };
        if !conn.buffer().is_empty() {
            return Ok(true);
        }
        crate::mpi::comm::sys::wait_fd(conn.get_ref().as_raw_fd(), false, Duration::ZERO)
            .map_err(|source| ClientError::Io { op: "poll", source })
    }
}

impl Client<EnvStream> {
    /// Connects the way MPICH's simple client does (spec/pmi.md §1):
    /// `PMI_FD`, else `PMI_PORT` (with the `PMI_ID` handshake when set),
    /// else a singleton. Rank and size come from `PMI_RANK`/`PMI_SIZE`
    /// (default 0/1) unless the handshake gives them. `PMI_FD` can be taken
    /// once per process; a second call fails with [`ClientError::FdTaken`].
    pub fn from_env() -> Result<Self, ClientError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&'static str) -> Option<String>) -> Result<Self, ClientError> {
        // Parsed before any connection, so a bad variable fails without
        // taking the fd or opening a socket.
        let int = |name: &'static str, default: u32| -> Result<u32, ClientError> {
            var(name).map_or(Ok(default), |value| {
                value.trim().parse().map_err(|_| ClientError::Env {
                    var: name,
                    value,
                    reason: "not a non-negative integer",
                })
            })
        };
        let rank = int(PMI_RANK, 0)?;
        let size = int(PMI_SIZE, 1)?;
        if let Some(value) = var(PMI_FD) {
            let fd: i32 = match value.trim().parse() {
                Ok(fd) if fd >= 0 => fd,
                _ => {
                    return Err(ClientError::Env {
                        var: PMI_FD,
                        value,
                        reason: "not a file descriptor",
                    });
                }
            };
            if FD_TAKEN.swap(true, Ordering::SeqCst) {
                return Err(ClientError::FdTaken);
            }
            // SAFETY: the launcher passed this fd to this process for PMI and
            // nothing else uses it; FD_TAKEN ensures we wrap it once, so the
            // stream is its only owner and closes it exactly once. A wrong
            // fd number makes the first read or write fail, not misbehave.
            let stream = unsafe { UnixStream::from_raw_fd(fd) };
            return Ok(Client::new(EnvStream::Fd(stream), rank, size));
        }
        if let Some(port) = var(PMI_PORT) {
            let bad = |reason| ClientError::Env {
                var: PMI_PORT,
                value: port.clone(),
                reason,
            };
            match port.rsplit_once(':') {
                Some((host, p)) if !host.is_empty() && p.parse::<u16>().is_ok() => {}
                _ => return Err(bad("not <host>:<port>")),
            }
            let stream = TcpStream::connect(port.as_str()).map_err(|source| ClientError::Io {
                op: "connect",
                source,
            })?;
            // One small line each way per call: Nagle would only add delay.
            stream.set_nodelay(true).map_err(|source| ClientError::Io {
                op: "set nodelay",
                source,
            })?;
            let stream = EnvStream::Tcp(stream);
            return match var(PMI_ID) {
                Some(value) => {
                    let id = value.trim().parse().map_err(|_| ClientError::Env {
                        var: PMI_ID,
                        value,
                        reason: "not a non-negative integer",
                    })?;
                    Client::handshake(stream, id)
                }
                None => Ok(Client::new(stream, rank, size)),
            };
        }
        Ok(Client::singleton())
    }
}

fn field<'m>(m: &'m Message, cmd: &'static str, key: &'static str) -> Result<&'m str, ClientError> {
    m.get(key).ok_or_else(|| {
        WireError::MissingField {
            cmd: cmd.into(),
            key,
        }
        .into()
    })
}

fn number(m: &Message, cmd: &'static str, key: &'static str) -> Result<u32, ClientError> {
    let value = field(m, cmd, key)?;
    value.parse().map_err(|_| {
        WireError::BadNumber {
            cmd: cmd.into(),
            key,
            value: value.to_owned(),
        }
        .into()
    })
}

fn rc_error(cmd: &'static str, rc: &str, m: &Message) -> ClientError {
    ClientError::Rc {
        cmd,
        rc: rc.to_owned(),
        msg: m.get("msg").unwrap_or("").to_owned(),
    }
}

/// A line the server could not read back whole is refused here, where the
/// caller can still split its value.
fn check_len(request: &Request) -> Result<(), ClientError> {
    let len = request.to_string().len();
    if len >= MAX_LINE {
        return Err(WireError::TooLong { len }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::os::fd::IntoRawFd;
    use std::sync::mpsc;
    use std::thread::{self, JoinHandle};

    use super::super::server::{Event, Server, process_mapping};
    use super::*;

    /// Drives `server` over real sockets: one reader thread per rank feeds
    /// lines to this loop, which owns the server and every write half, until
    /// all ranks closed their connections.
    fn serve(mut server: Server, conns: Vec<UnixStream>) -> JoinHandle<Server> {
        thread::spawn(move || {
            let (tx, rx) = mpsc::channel::<(u32, Option<String>)>();
            let mut writers = Vec::new();
            for (rank, conn) in conns.into_iter().enumerate() {
                let rank = rank as u32;
                writers.push(conn.try_clone().unwrap());
                let tx = tx.clone();
                thread::spawn(move || {
                    for line in BufReader::new(conn).lines() {
                        let Ok(line) = line else { break };
                        tx.send((rank, Some(line))).unwrap();
                    }
                    tx.send((rank, None)).unwrap();
                });
            }
            let mut open = writers.len();
            while open > 0 {
                match rx.recv().unwrap() {
                    (rank, Some(line)) => {
                        for (to, reply) in server.handle(rank, &line) {
                            writers[to as usize]
                                .write_all(format!("{reply}\n").as_bytes())
                                .unwrap();
                        }
                    }
                    (_, None) => open -= 1,
                }
            }
            server
        })
    }

    /// A peer that answers each line it reads with the next canned reply and
    /// returns the lines it read.
    fn scripted(replies: &'static [&'static str]) -> (UnixStream, JoinHandle<Vec<String>>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let peer = thread::spawn(move || {
            let mut writer = theirs.try_clone().unwrap();
            let mut seen = Vec::new();
            let mut lines = BufReader::new(theirs).lines();
            for reply in replies {
                seen.push(lines.next().unwrap().unwrap());
                writer.write_all(reply.as_bytes()).unwrap();
            }
            seen
        });
        (ours, peer)
    }

    #[test]
    fn two_ranks_over_socketpairs() {
        let server = Server::new(2, "kvs_7_0", process_mapping(&[2]));
        let (mut ends, mut conns) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            let (a, b) = UnixStream::pair().unwrap();
            ends.push(a);
            conns.push(b);
        }
        let served = serve(server, conns);
        let ranks: Vec<_> = ends
            .into_iter()
            .enumerate()
            .map(|(rank, end)| {
                thread::spawn(move || {
                    let rank = rank as u32;
                    let mut c = Client::new(end, rank, 2);
                    c.init().unwrap();
                    assert_eq!(
                        c.get_maxes().unwrap(),
                        Maxes {
                            kvsname_max: 256,
                            keylen_max: 64,
                            vallen_max: 1024
                        }
                    );
                    assert_eq!(c.get_my_kvsname().unwrap(), "kvs_7_0");
                    assert_eq!(
                        c.get("PMI_process_mapping").unwrap().as_deref(),
                        Some("(vector,(0,1,2))")
                    );
                    c.put(&format!("addr-{rank}"), &format!("a=b{rank}"))
                        .unwrap();
                    c.barrier().unwrap();
                    let other = 1 - rank;
                    assert_eq!(
                        c.get(&format!("addr-{other}")).unwrap(),
                        Some(format!("a=b{other}"))
                    );
                    assert_eq!(c.get("nobody-put-this").unwrap(), None);
                    c.barrier().unwrap();
                    c.finalize().unwrap();
                })
            })
            .collect();
        for rank in ranks {
            rank.join().unwrap();
        }
        let mut server = served.join().unwrap();
        assert!(server.all_finalized());
        assert_eq!(server.take_events(), []);
    }

    #[test]
    fn split_barrier_is_ready_only_when_every_rank_entered() {
        let server = Server::new(2, "k", process_mapping(&[2]));
        let (mut ends, mut conns) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            let (a, b) = UnixStream::pair().unwrap();
            ends.push(a);
            conns.push(b);
        }
        let served = serve(server, conns);
        let mut clients: Vec<_> = ends
            .into_iter()
            .enumerate()
            .map(|(rank, end)| Client::new(end, rank as u32, 2))
            .collect();
        clients[0].barrier_begin().unwrap();
        thread::sleep(std::time::Duration::from_millis(50));
        assert!(!clients[0].reply_ready().unwrap(), "rank 1 has not entered");
        clients[1].barrier_begin().unwrap();
        let start = std::time::Instant::now();
        while !clients[0].reply_ready().unwrap() {
            assert!(start.elapsed().as_secs() < 10, "barrier_out never came");
            thread::yield_now();
        }
        for c in &mut clients {
            c.barrier_end().unwrap();
        }
        drop(clients);
        served.join().unwrap();
    }

    #[test]
    fn abort_reaches_the_server() {
        let (end, conn) = UnixStream::pair().unwrap();
        let served = serve(Server::new(1, "k", process_mapping(&[1])), vec![conn]);
        let mut c = Client::new(end, 0, 1);
        c.init().unwrap();
        c.abort(3).unwrap();
        let mut server = served.join().unwrap();
        assert_eq!(server.take_events(), [Event::Abort { rank: 0, code: 3 }]);
    }

    #[test]
    fn init_with_nonzero_rc_fails() {
        let (end, peer) =
            scripted(&["cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=-1\n"]);
        let err = Client::new(end, 0, 1).init().unwrap_err();
        assert!(
            matches!(&err, ClientError::Rc { cmd: "response_to_init", rc, .. } if rc == "-1"),
            "{err}"
        );
        assert_eq!(
            peer.join().unwrap(),
            ["cmd=init pmi_version=1 pmi_subversion=1"]
        );
    }

    #[test]
    fn wrong_reply_and_closed_connection_fail() {
        let (end, peer) = scripted(&["cmd=finalize_ack\n"]);
        let mut c = Client::new(end, 0, 1);
        let err = c.barrier().unwrap_err();
        assert!(
            matches!(&err, ClientError::Unexpected { expected: "barrier_out", got } if got == "finalize_ack")
        );
        assert_eq!(
            err.to_string(),
            "pmi: expecting cmd=barrier_out, got finalize_ack"
        );
        peer.join().unwrap();
        // A server that stops writing but still reads: the request goes out,
        // the reply never comes.
        let (end, server) = UnixStream::pair().unwrap();
        server.shutdown(std::net::Shutdown::Write).unwrap();
        let mut c = Client::new(end, 0, 1);
        assert!(matches!(
            c.barrier(),
            Err(ClientError::Closed {
                expected: "barrier_out"
            })
        ));
        // A line cut at the limit is too long, not a closed connection.
        let (end, mut server) = UnixStream::pair().unwrap();
        server
            .write_all(format!("cmd=barrier_out x={}\n", "y".repeat(MAX_LINE)).as_bytes())
            .unwrap();
        let mut c = Client::new(end, 0, 1);
        assert!(matches!(
            c.barrier(),
            Err(ClientError::Wire(WireError::TooLong { .. }))
        ));
    }

    #[test]
    fn unsendable_values_are_refused_before_sending() {
        let mut c = Client::<UnixStream>::singleton();
        assert!(c.put("a b", "v").is_err());
        assert!(c.put("k", "v\n").is_err());
        let (end, peer) = scripted(&["cmd=my_kvsname kvsname=k\n"]);
        let mut c = Client::new(end, 0, 1);
        let err = c.put("k", &"v".repeat(MAX_LINE)).unwrap_err();
        assert!(
            matches!(err, ClientError::Wire(WireError::TooLong { .. })),
            "{err}"
        );
        drop(c);
        assert_eq!(peer.join().unwrap(), ["cmd=get_my_kvsname"]);
    }

    #[test]
    fn singleton_without_environment() {
        let mut c = Client::from_vars(|_| None).unwrap();
        assert!(c.is_singleton());
        assert_eq!((c.rank(), c.size()), (0, 1));
        c.init().unwrap();
        assert_eq!(c.get("k").unwrap(), None);
        c.put("k", "v").unwrap();
        c.barrier().unwrap();
        assert_eq!(c.get("k").unwrap().as_deref(), Some("v"));
        c.finalize().unwrap();
    }

    #[test]
    fn inherited_fd_from_environment() {
        let (end, conn) = UnixStream::pair().unwrap();
        // The server sees this connection as its rank 0; only the client's
        // idea of its rank, from the environment, is under test.
        let served = serve(Server::new(2, "k", process_mapping(&[2])), vec![conn]);
        let fd = end.into_raw_fd().to_string();
        let vars = move |name| match name {
            PMI_FD => Some(fd.clone()),
            PMI_RANK => Some("1".to_owned()),
            PMI_SIZE => Some("2".to_owned()),
            _ => None,
        };
        let mut c = Client::from_vars(&vars).unwrap();
        assert!(matches!(
            c.conn.as_ref().map(BufReader::get_ref),
            Some(EnvStream::Fd(_))
        ));
        assert_eq!((c.rank(), c.size()), (1, 2));
        c.init().unwrap();
        c.finalize().unwrap();
        // The fd now belongs to the first client; a second may not take it.
        assert!(matches!(
            Client::from_vars(&vars),
            Err(ClientError::FdTaken)
        ));
        served.join().unwrap();
    }

    #[test]
    fn port_with_initack_handshake() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let served = thread::spawn(move || {
            let mut server = Server::new(3, "k", process_mapping(&[3]));
            let (stream, _) = listener.accept().unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut lines = BufReader::new(stream).lines().map(Result::unwrap);
            let first = lines.next().unwrap();
            let rank = server.identify(&first).unwrap();
            for line in std::iter::once(first).chain(lines) {
                for (to, reply) in server.handle(rank, &line) {
                    assert_eq!(to, rank);
                    writer.write_all(format!("{reply}\n").as_bytes()).unwrap();
                }
            }
            server
        });
        let vars = move |name| match name {
            PMI_PORT => Some(port.clone()),
            PMI_ID => Some("2".to_owned()),
            _ => None,
        };
        let mut c = Client::from_vars(vars).unwrap();
        assert_eq!((c.rank(), c.size()), (2, 3));
        c.init().unwrap();
        assert_eq!(c.get_my_kvsname().unwrap(), "k");
        c.finalize().unwrap();
        assert!(served.join().unwrap().is_finalized(2));
    }

    #[test]
    fn bad_environment_is_named() {
        let err =
            Client::from_vars(|name| (name == PMI_SIZE).then(|| "four".to_owned())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable PMI_SIZE=\"four\": not a non-negative integer"
        );
        let err =
            Client::from_vars(|name| (name == PMI_PORT).then(|| "nohost".to_owned())).unwrap_err();
        assert!(
            matches!(err, ClientError::Env { var: PMI_PORT, .. }),
            "{err}"
        );
        let err = Client::from_vars(|name| (name == PMI_FD).then(|| "-1".to_owned())).unwrap_err();
        assert!(matches!(err, ClientError::Env { var: PMI_FD, .. }), "{err}");
    }
}
