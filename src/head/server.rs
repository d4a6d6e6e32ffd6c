//! The head node's HTTP listener on its Unix socket, with a bound on
//! everything a caller can hold: connections (in all, and per user), the
//! time to send a request's headers and its body, the body's size, and the
//! time a response may wait for a caller that stopped reading.
//!
//! `axum::serve` has none of these (no header timeout, no connection
//! limit), so the accept loop is ours and each connection is served by
//! hyper's HTTP/1 server with its header-read timer. The socket's peer
//! credentials tell callers apart: each connection's [`Caller`] is put in
//! its requests' extensions, and each user may hold [`Limits::per_user`]
//! connections (the head node's own user and root [`Limits::total`]), so
//! one user flooding the socket cannot lock the others out. A connection
//! over a limit gets a `503` with the usual JSON error body at once and is
//! closed; the CLIs retry those (nothing was done).

use super::cluster::Caller;
use crate::wire::ErrorBody;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tower::ServiceExt;

/// The bounds of the listener; [`Limits::default`] is what `hpcd` uses.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once, all users together.
    pub total: usize,
    /// Connections one user other than root and the head node's own may
    /// hold at once.
    pub per_user: usize,
    /// Time from the first byte of a request (or from the end of the last
    /// one, on a kept-alive connection) to the end of its headers.
    pub headers: Duration,
    /// Time to send a request's whole body once its headers are in.
    pub body: Duration,
    /// The largest request body.
    pub max_body: usize,
    /// How long a response may wait for the caller to read what was sent.
    pub write_stall: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total: 1024,
            per_user: 64,
            headers: Duration::from_secs(10),
            body: Duration::from_secs(30),
            max_body: 4 << 20,
            write_stall: Duration::from_secs(30),
        }
    }
}

/// How many connections each user holds.
#[derive(Default)]
struct Counts {
    total: usize,
    by_uid: HashMap<u32, usize>,
}

/// One connection's place in [`Counts`], given back when dropped.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    uid: u32,
}

impl Slot {
    /// A place for a connection of `uid`, or why there is none.
    fn take(counts: &Arc<Mutex<Counts>>, uid: u32, privileged: bool, limits: &Limits) -> Result<Slot, String> {
        let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= limits.total {
            return Err(format!(
                "the head node has {} connections open, its limit; retry in a moment",
                c.total
            ));
        }
        let mine = c.by_uid.get(&uid).copied().unwrap_or(0);
        if !privileged && mine >= limits.per_user {
            return Err(format!(
                "user {} has {mine} connections open to the head node, the limit for one user; close some and retry",
                crate::node::sys::user_name(uid)
            ));
        }
        c.total += 1;
        *c.by_uid.entry(uid).or_default() += 1;
        Ok(Slot { counts: counts.clone(), uid })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total -= 1;
        if let Some(n) = c.by_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                c.by_uid.remove(&self.uid);
            }
        }
    }
}

/// A peer whose credentials cannot be read is nobody.
const UNKNOWN_UID: u32 = u32::MAX - 1;

/// Serves `app` on `listener` until `shutdown` completes. Connections in
/// progress then get a moment to finish their current request.
pub async fn serve(
    listener: UnixListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let counts = Arc::new(Mutex::new(Counts::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let head_uid = crate::node::sys::uid();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        let stream = match stream {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors (or a connection gone before it was
                // taken): wait for some to close instead of spinning.
                let pause = if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) { 50 } else { 5 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
                continue;
            }
        };
        let uid = stream.peer_cred().map(|c| c.uid()).unwrap_or(UNKNOWN_UID);
        let privileged = uid == 0 || uid == head_uid;
        let slot = match Slot::take(&counts, uid, privileged, &limits) {
            Ok(s) => s,
            Err(why) => {
                refuse(&stream, &why);
                continue;
            }
        };
        let (app, stop) = (app.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let _slot = slot;
            serve_connection(stream, uid, app, limits, stop).await;
        });
    }
    let _ = stop_tx.send(true);
    // In-flight requests finish (a `job wait` answers at once); anything
    // still open after this is dropped with the runtime.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while counts.lock().unwrap_or_else(|p| p.into_inner()).total > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Answers a connection over a limit with a 503 and closes it, without
/// waiting: the answer fits in the new socket's empty send buffer, and a
/// caller that does not read it loses nothing it had.
fn refuse(stream: &UnixStream, why: &str) {
    let body = serde_json::to_string(&ErrorBody { code: crate::error::Kind::Busy.code().into(), message: why.into() })
        .unwrap_or_default();
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(reply.as_bytes());
}

async fn serve_connection(
    stream: UnixStream,
    uid: u32,
    app: Router,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let caller = Caller { uid, name: crate::node::sys::user_name(uid) };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(caller.clone());
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let io = TokioIo::new(StallGuard::new(stream, limits.write_stall));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.headers)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

/// A socket whose writes fail with `TimedOut` once they have waited
/// `stall` for the peer to read: a caller that stops reading a response
/// (a large output, say) does not keep the connection and its buffers
/// forever.
struct StallGuard {
    inner: UnixStream,
    stall: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl StallGuard {
    fn new(inner: UnixStream, stall: Duration) -> StallGuard {
        StallGuard { inner, stall, waiting: None }
    }

    /// Arms the stall timer on the first `Pending`, disarms it on progress.
    fn guard<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => {
                let stall = self.stall;
                let timer = self.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the caller stopped reading the response",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            done => {
                self.waiting = None;
                done
            }
        }
    }
}

impl AsyncRead for StallGuard {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallGuard {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The body of every request, read whole before the handler runs: within
/// [`Limits::body`] and [`Limits::max_body`], so a caller that trickles a
/// body or sends a huge one is answered with an error instead of holding
/// the handler (and memory) as long as it likes.
pub async fn read_body(
    axum::extract::State(limits): axum::extract::State<Limits>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, limits.max_body);
    let bytes = match tokio::time::timeout(limits.body, limited.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return super::api::ApiError::status(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than the {}-byte limit", limits.max_body),
            )
            .into_response();
        }
        Ok(Err(e)) => {
            return super::api::ApiError::status(
                axum::http::StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            )
            .into_response();
        }
        Err(_) => {
            return super::api::ApiError::status(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {} s", limits.body.as_secs()),
            )
            .into_response();
        }
    };
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}
