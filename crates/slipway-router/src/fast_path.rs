//! The plain path: HTTP/1.1 requests with no upgrade and no chunked body, proxied by hand
//! over keep-alive connections on both sides. It makes the same choices as hyper's path
//! (see [`crate::proxy`]) at a fraction of the work per request: one read and one write
//! on each side for a small exchange, heads rewritten in place of being rebuilt.
//!
//! The first request it does not take hands the connection, with the bytes read so far,
//! to hyper (see [`crate::hyper_path`]).

use std::time::Instant;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::RouterOptions;
use crate::head::{
    self, BadResponse, ChunkedEnd, ClientHead, Framing, Parsed, ParsedResponse, RequestHead,
    ResponseHead,
};
use crate::proxy::{Attempts, Failure, Refusal, Route, Shared, guarded, route};
use crate::upstream::{Instance, RawConn};

/// Initial read buffer of a client connection: room for typical request heads.
const CLIENT_BUF: usize = 8 * 1024;

/// Bound on reading what a refused client still sends before the connection closes.
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;

/// How a client connection left the plain path.
pub(crate) enum Ending {
    Closed,
    /// Serve the rest with hyper, these bytes first.
    HandOff(BytesMut),
}

/// A request head, read and rewritten for the upstream.
struct Prepared {
    route: Result<Route, Refusal>,
    /// Bytes of body after the head.
    body: u64,
    close: bool,
    head_request: bool,
    idempotent: bool,
}

/// What happened to one request.
enum Served {
    /// The response went out whole; the connection can take another request.
    KeepOpen,
    Close,
}

/// One client connection on the plain path.
struct Client<'a> {
    stream: &'a mut TcpStream,
    /// Bytes read from the client and not used yet.
    buf: BytesMut,
    /// The head (and small body) for the upstream.
    upstream_head: Vec<u8>,
    /// What goes to the client next.
    out: Vec<u8>,
    shared: &'a Shared,
    peer: &'a [u8],
}

/// Serves `stream` until it closes, `stop` turns true, or a request needs hyper.
pub(crate) async fn serve(
    stream: &mut TcpStream,
    shared: &Shared,
    peer: &[u8],
    stop: &mut watch::Receiver<bool>,
) -> Ending {
    let mut client = Client {
        stream,
        buf: BytesMut::with_capacity(CLIENT_BUF),
        // Grown by the first request, then reused: an idle connection holds little.
        upstream_head: Vec::new(),
        out: Vec::new(),
        shared,
        peer,
    };
    loop {
        let prepared = match client.read_head(stop).await {
            Ok(prepared) => prepared,
            Err(Leave::Closed) => return Ending::Closed,
            Err(Leave::HandOff) => return Ending::HandOff(client.buf),
            Err(Leave::Refuse(refusal)) => {
                client.refuse(refusal, true).await;
                return Ending::Closed;
            }
        };
        let stopping = *stop.borrow();
        match client.serve(prepared, stopping).await {
            Served::KeepOpen if !stopping => client.shrink(),
            _ => return Ending::Closed,
        }
    }
}

/// Why no request head came.
enum Leave {
    /// The connection ended: closed, idle or stalled past the header timeout, or the
    /// router stopping.
    Closed,
    /// The connection needs hyper from here on.
    HandOff,
    /// A head the router refuses (too large, malformed); the connection closes after.
    Refuse(Refusal),
}

impl Client<'_> {
    /// Waits for the next request head and prepares it.
    async fn read_head(&mut self, stop: &mut watch::Receiver<bool>) -> Result<Prepared, Leave> {
        let opts = &self.shared.opts;
        let max_head = opts.max_header_bytes.max(1024);
        let mut deadline = None;
        loop {
            if !self.buf.is_empty() {
                let mut slots = head::header_slots();
                let (len, prepared) = match head::parse_request(&self.buf, &mut slots) {
                    Parsed::Partial => (0, None),
                    Parsed::Other => return Err(Leave::HandOff),
                    Parsed::Bad(why) => return Err(Leave::Refuse(Refusal::Malformed(why))),
                    Parsed::Plain(head) => {
                        let prepared =
                            prepare(&head, self.shared, self.peer, &mut self.upstream_head);
                        (head.len, Some(prepared))
                    }
                };
                if let Some(prepared) = prepared {
                    self.buf.advance(len);
                    return Ok(prepared);
                }
                if self.buf.len() >= max_head {
                    return Err(Leave::Refuse(Refusal::HeadTooLarge));
                }
            }
            // Never past the head limit: what a connection holds is bounded by it, and
            // an unfinished head gets its 431 at the limit, not after.
            if self.buf.capacity() - self.buf.len() < 1024 && self.buf.capacity() < max_head {
                self.buf.reserve(CLIENT_BUF.min(max_head - self.buf.len()));
            }
            let deadline = *deadline
                .get_or_insert_with(|| tokio::time::Instant::now() + opts.header_read_timeout);
            let idle = self.buf.is_empty();
            tokio::select! {
                biased;
                read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)) => {
                    match read {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return Err(Leave::Closed),
                    }
                }
                // Only an idle connection closes at once; a request under way is served.
                _ = stop.changed(), if idle => return Err(Leave::Closed),
            }
        }
    }

    /// Gives back what an unusually large request grew, so an idle keep-alive
    /// connection holds little.
    fn shrink(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > CLIENT_BUF {
            self.buf = BytesMut::with_capacity(CLIENT_BUF);
        }
        for v in [&mut self.upstream_head, &mut self.out] {
            if v.capacity() > 2 * CLIENT_BUF {
                *v = Vec::new();
            }
        }
    }

    async fn serve(&mut self, p: Prepared, stopping: bool) -> Served {
        let started = Instant::now();
        let route = match p.route {
            Ok(route) => route,
            // An unread body would be taken for the next request: close after answering.
            Err(refusal) => {
                return self
                    .refuse(refusal, p.close || p.body > 0 || stopping)
                    .await;
            }
        };
        // A body already here goes out with the head, and can be sent again.
        let here = up_to(p.body, self.buf.len());
        self.upstream_head.extend_from_slice(&self.buf[..here]);
        self.buf.advance(here);
        let mut body = BodyLeft {
            left: p.body - here as u64,
            on_client: false,
        };
        let resendable = p.idempotent && body.left == 0;

        let client_head = ClientHead {
            cookie: route.cookie.as_deref(),
            close: p.close || stopping,
            head_request: p.head_request,
        };
        let opts = &self.shared.opts;
        let deadline = tokio::time::Instant::from_std(started) + route.request_timeout;
        let mut attempts = Attempts::new(&route.release);
        let (head, conn, instance, _lease) = loop {
            let instance = match attempts.next() {
                Ok(instance) => instance,
                Err(refusal) => return self.refuse(refusal, true).await,
            };
            let lease = instance.lease();
            let outgoing = Outgoing {
                head: &self.upstream_head,
                upload: Upload {
                    client: self.stream,
                    buf: &mut self.buf,
                    body: &mut body,
                    header_read_timeout: opts.header_read_timeout,
                },
                client_head: &client_head,
                resendable,
            };
            let exchange = exchange(&instance, opts, started, outgoing, &mut self.out);
            match guarded(&instance, deadline, exchange).await {
                Ok((head, conn)) => break (head, conn, instance, lease),
                Err(failure) => {
                    // Out of time while the router waited on the client's body: the
                    // client's fault, not the app's.
                    let failure = match failure {
                        Failure::Timeout if body.on_client => Failure::ClientStalled,
                        failure => failure,
                    };
                    if let Err(refusal) = attempts.failed(instance, failure, resendable, opts) {
                        let close = p.close || stopping || body.left > 0 || refusal.closes();
                        return self.refuse(refusal, close).await;
                    }
                }
            }
        };
        route
            .release
            .counters
            .record(head.status, started.elapsed());
        let close = client_head.close || head.framing == Framing::UntilClose;
        match self.relay_body(&head, conn, &instance).await {
            Ok(()) if !close => Served::KeepOpen,
            _ => Served::Close,
        }
    }

    /// Sends the client's head (in `out`) and streams the body after it, then returns the
    /// upstream connection to the pool if it can carry another request.
    async fn relay_body(
        &mut self,
        head: &ResponseHead,
        mut conn: RawConn,
        instance: &Instance,
    ) -> Result<(), Cut> {
        let mut chunked = ChunkedEnd::default();
        // Bytes of body still to come, where the framing says.
        let mut left = match head.framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        let mut done = head.framing == Framing::Empty;
        loop {
            // Body bytes read so far go out with whatever `out` holds (the head, first).
            if !done && !conn.buf.is_empty() {
                let take = match head.framing {
                    Framing::Length(_) => {
                        let take = up_to(left, conn.buf.len());
                        left -= take as u64;
                        done = left == 0;
                        take
                    }
                    Framing::Chunked => match chunked.scan(&conn.buf).map_err(|BadResponse| Cut)? {
                        Some(end) => {
                            done = true;
                            end
                        }
                        None => conn.buf.len(),
                    },
                    Framing::UntilClose => conn.buf.len(),
                    Framing::Empty => 0,
                };
                self.out.extend_from_slice(&conn.buf[..take]);
                conn.buf.advance(take);
            }
            if !self.out.is_empty() {
                self.stream.write_all(&self.out).await.map_err(|_| Cut)?;
                self.out.clear();
            }
            if done {
                break;
            }
            // Everything read so far went out: the buffer is empty.
            if conn.buf.capacity() < 4096 {
                conn.buf.reserve(16 * 1024);
            }
            let read = tokio::select! {
                biased;
                () = instance.retired() => return Err(Cut),
                read = conn.stream.read_buf(&mut conn.buf) => read,
            };
            match read {
                Ok(0) if head.framing == Framing::UntilClose => return Ok(()),
                Ok(0) | Err(_) => return Err(Cut),
                Ok(_) => {}
            }
        }
        if head.reusable {
            instance.put_back_raw(conn);
        }
        Ok(())
    }

    async fn refuse(&mut self, refusal: Refusal, close: bool) -> Served {
        self.out.clear();
        head::write_text(&mut self.out, refusal.status(), refusal.message(), close);
        match self.stream.write_all(&self.out).await {
            Ok(()) if !close => Served::KeepOpen,
            Ok(()) => {
                self.linger().await;
                Served::Close
            }
            Err(_) => Served::Close,
        }
    }

    /// Closes after an answer the client may still be sending into (a refused head or
    /// body): a close with unread bytes would reset the connection and could destroy
    /// the answer before the client reads it. Reads and drops what comes for a moment.
    async fn linger(&mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let drained = async {
            let mut dropped = 0;
            while dropped < LINGER_BYTES {
                self.buf.clear();
                if self.buf.capacity() < 1024 {
                    self.buf.reserve(CLIENT_BUF);
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(n) if n > 0 => dropped += n,
                    _ => return,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drained).await;
    }
}

/// Routes a parsed head and writes the upstream's head to `upstream_head`.
fn prepare(
    head: &RequestHead<'_, '_>,
    shared: &Shared,
    peer: &[u8],
    upstream_head: &mut Vec<u8>,
) -> Prepared {
    upstream_head.clear();
    let route = route(&shared.snapshot.load(), head.headers, None);
    if route.is_ok() {
        head::write_request(upstream_head, head, peer);
    }
    Prepared {
        route,
        body: head.body,
        close: head.close,
        head_request: head.method == "HEAD",
        idempotent: head::is_idempotent(head.method),
    }
}

/// How many of `available` bytes belong to a body with `left` bytes to go.
fn up_to(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

/// A response could not be relayed whole: the client connection must close.
struct Cut;

/// How much of a request body is still to come from the client, and whether the router
/// is waiting on the client for it (kept outside the attempt, which a timeout drops).
struct BodyLeft {
    left: u64,
    on_client: bool,
}

/// The part of a request body still to read from the client.
struct Upload<'a> {
    client: &'a mut TcpStream,
    buf: &'a mut BytesMut,
    body: &'a mut BodyLeft,
    header_read_timeout: std::time::Duration,
}

/// A request on its way upstream.
struct Outgoing<'a> {
    /// The rewritten head, with the body if it was all here.
    head: &'a [u8],
    upload: Upload<'a>,
    client_head: &'a ClientHead<'a>,
    /// The request may be sent again on another connection.
    resendable: bool,
}

/// One attempt: sends the request on a pooled or new connection and reads the response
/// head, which is rewritten for the client into `out`. A pooled connection the upstream
/// closed meanwhile is replaced by a fresh one when the request can be sent again.
async fn exchange(
    instance: &Instance,
    opts: &RouterOptions,
    started: Instant,
    mut req: Outgoing<'_>,
    out: &mut Vec<u8>,
) -> Result<(ResponseHead, RawConn), Failure> {
    loop {
        let mut conn = instance
            .checkout_raw(opts, started)
            .await
            .map_err(|_| Failure::Connect)?;
        if conn.stream.write_all(req.head).await.is_err() {
            // Nothing the app could act on was sent.
            if conn.reused {
                continue;
            }
            return Err(Failure::Connect);
        }
        if req.upload.body.left > 0 {
            req.upload.send(&mut conn.stream).await?;
        }
        out.clear();
        match read_response_head(&mut conn, req.client_head, opts.max_header_bytes, out).await {
            Ok(head) => return Ok((head, conn)),
            // The pooled connection was closed before anything came back.
            Err(HeadError::Silent) if conn.reused && req.resendable => continue,
            Err(_) => {
                tracing::debug!(addr = %instance.addr, "upstream failed");
                return Err(Failure::Upstream);
            }
        }
    }
}

impl Upload<'_> {
    /// Copies the rest of the body from the client to the upstream. Bytes the client
    /// sent past it (its next request) stay in `buf`.
    async fn send(&mut self, upstream: &mut TcpStream) -> Result<(), Failure> {
        // The body's start went out with the head, so `buf` is empty at each turn.
        while self.body.left > 0 {
            self.buf.reserve(16 * 1024);
            self.body.on_client = true;
            let read =
                tokio::time::timeout(self.header_read_timeout, self.client.read_buf(self.buf))
                    .await;
            self.body.on_client = false;
            match read {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return Err(Failure::Client),
                Err(_) => return Err(Failure::ClientStalled),
            }
            let take = up_to(self.body.left, self.buf.len());
            upstream
                .write_all(&self.buf[..take])
                .await
                .map_err(|_| Failure::Upstream)?;
            self.buf.advance(take);
            self.body.left -= take as u64;
        }
        Ok(())
    }
}

/// No response head could be read; `Silent` when not a byte came back.
enum HeadError {
    Silent,
    Broken,
}

async fn read_response_head(
    conn: &mut RawConn,
    client_head: &ClientHead<'_>,
    max_header_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<ResponseHead, HeadError> {
    let mut received = false;
    loop {
        if !conn.buf.is_empty() {
            match head::rewrite_response(&conn.buf, client_head, out) {
                Ok(ParsedResponse::Final(head)) => {
                    conn.buf.advance(head.len);
                    return Ok(head);
                }
                Ok(ParsedResponse::Interim(len)) => {
                    conn.buf.advance(len);
                    continue;
                }
                Ok(ParsedResponse::Partial) if conn.buf.len() < max_header_bytes => {}
                Ok(ParsedResponse::Partial) | Err(BadResponse) => return Err(HeadError::Broken),
            }
        }
        if conn.buf.capacity() - conn.buf.len() < 1024 {
            conn.buf.reserve(8 * 1024);
        }
        match conn.stream.read_buf(&mut conn.buf).await {
            Ok(n) if n > 0 => received = true,
            _ if received => return Err(HeadError::Broken),
            _ => return Err(HeadError::Silent),
        }
    }
}
