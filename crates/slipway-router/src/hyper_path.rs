//! Requests the plain path does not take, served through hyper: HTTP/2 clients,
//! upgrades (WebSocket), chunked uploads, `Expect`, HTTP/1.0, absolute-form targets and
//! heads httparse refuses (hyper answers those). The response streams back and is
//! counted as on the plain path. A request body that is malformed or stalls is the
//! client's fault: 400 or 408, never an error of the release.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::RouterOptions;
use crate::head::{Malformed, has_token, is_hop_by_hop, is_idempotent, is_plain_chunked};
use crate::proxy::{Attempts, Failure, Refusal, Shared, guarded, route};
use crate::upstream::{Conn, Instance, Lease};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

pub(crate) async fn handle(
    shared: Arc<Shared>,
    peer: HeaderValue,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    if let Err(why) = check(&req) {
        return Ok(text(Refusal::Malformed(why)));
    }
    let uri_host = req.uri().authority().map(|a| a.as_str().as_bytes());
    let route = match route(&shared.snapshot.load(), req.headers(), uri_host) {
        Ok(route) => route,
        Err(refusal) => return Ok(text(refusal)),
    };
    let (parts, body) = req.into_parts();
    let waiting = (!body.is_end_stream()).then(|| Arc::new(AtomicBool::new(false)));
    let body = ClientBody {
        body,
        waiting: waiting.clone(),
        timeout: shared.opts.header_read_timeout,
        stall: None,
        pending: false,
    };
    let mut req = Request::from_parts(parts, body);
    let cookie = route
        .cookie
        .and_then(|c| HeaderValue::from_maybe_shared(c).ok());

    let upgrade = prepare_request(&mut req, peer);
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let retryable = is_idempotent(req.method().as_str()) && req.body().is_end_stream();
    // One clock read per request: the deadline and the pool's ages derive from it.
    let deadline = tokio::time::Instant::from_std(started) + route.request_timeout;
    let opts = &shared.opts;

    let mut attempts = Attempts::new(&route.release);
    let mut req = Some(req);
    loop {
        let instance = match attempts.next() {
            Ok(instance) => instance,
            Err(refusal) => return Ok(text(refusal)),
        };
        let lease = instance.lease();
        match guarded(
            &instance,
            deadline,
            send(&instance, opts, &mut req, started),
        )
        .await
        {
            Ok((res, conn)) => {
                route
                    .release
                    .counters
                    .record(res.status(), started.elapsed());
                return Ok(respond(res, conn, lease, cookie, upgrade, client_upgrade));
            }
            Err(failure) => {
                // Out of time while hyper waited on the client's body: the client's fault.
                let failure = match failure {
                    Failure::Timeout if waiting.as_ref().is_some_and(|w| w.load(Relaxed)) => {
                        Failure::ClientStalled
                    }
                    failure => failure,
                };
                let resendable = retryable && req.is_some();
                if let Err(refusal) = attempts.failed(instance, failure, resendable, opts) {
                    return Ok(text(refusal));
                }
            }
        }
    }
}

/// Sends the request in `slot` on a pooled or new connection. A pooled connection the
/// upstream closed meanwhile hands the request back untouched; it is then sent on a fresh
/// connection. A request refused before it was written is left in `slot`.
async fn send(
    instance: &Instance,
    opts: &RouterOptions,
    slot: &mut Option<Request<ClientBody>>,
    now: Instant,
) -> Result<(Response<Incoming>, Conn), Failure> {
    loop {
        let Ok(mut conn) = instance.checkout(opts, now).await else {
            return Err(Failure::Connect);
        };
        if poll_fn(|cx| conn.poll_ready(cx)).await.is_err() {
            if conn.reused {
                continue;
            }
            return Err(Failure::Connect);
        }
        let Some(req) = slot.take() else {
            return Err(Failure::Connect);
        };
        let mut response = pin!(conn.sender.try_send_request(req));
        // The connection is driven here, by the request, until the head arrives.
        let result = poll_fn(|cx| {
            if let Poll::Ready(result) = response.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            conn.poll_driver(cx);
            response.as_mut().poll(cx)
        })
        .await;
        match result {
            Ok(res) => return Ok((res, conn)),
            Err(mut error) => match error.take_message() {
                Some(back) => {
                    *slot = Some(back);
                    if !conn.reused {
                        return Err(Failure::Connect);
                    }
                }
                None => {
                    let error = error.into_error();
                    // The request body, read from the client, failed: not the app's doing.
                    if let Some(client) = client_error(&error) {
                        tracing::debug!(%error, "client request body failed");
                        return Err(match client {
                            ClientBodyError::Stalled => Failure::ClientStalled,
                            ClientBodyError::Broken => Failure::Client,
                        });
                    }
                    tracing::debug!(%error, addr = %instance.addr, "upstream failed");
                    return Err(Failure::Upstream);
                }
            },
        }
    }
}

fn respond(
    mut res: Response<Incoming>,
    conn: Conn,
    lease: Lease,
    cookie: Option<HeaderValue>,
    upgrade: Option<HeaderValue>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ProxyBody> {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS
        && let (Some(protocol), Some(client_upgrade)) = (upgrade, client_upgrade)
    {
        let protocol = res
            .headers()
            .get(header::UPGRADE)
            .cloned()
            .unwrap_or(protocol);
        let upstream_upgrade = hyper::upgrade::on(&mut res);
        // Nothing polls the connection once the exchange is a tunnel.
        conn.detach();
        tokio::spawn(tunnel(client_upgrade, upstream_upgrade, lease));
        let (mut parts, _empty) = res.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, protocol);
        return Response::from_parts(parts, ProxyBody::Full(None));
    }
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if let Some(cookie) = cookie {
        parts.headers.append(header::SET_COOKIE, cookie);
    }
    let body = UpstreamBody {
        body,
        done: Some((lease, conn)),
    };
    Response::from_parts(parts, ProxyBody::Upstream(body))
}

/// Copies bytes both ways between an upgraded client and upstream (WebSocket & co).
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    lease: Lease,
) {
    let (Ok(client), Ok(upstream)) = tokio::join!(client, upstream) else {
        return;
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%error, addr = %lease.instance.addr, "upgraded connection ended");
    }
}

/// Rewrites a client request for an HTTP/1.1 upstream. Returns the `Upgrade` protocol
/// when the client asks for one (it must survive the hop-by-hop stripping).
fn prepare_request(req: &mut Request<ClientBody>, peer: HeaderValue) -> Option<HeaderValue> {
    let upgrade = (req.version() == Version::HTTP_11
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| has_token(v.as_bytes(), b"upgrade")))
    .then(|| req.headers().get(header::UPGRADE).cloned())
    .flatten();

    // HTTP/2 requests and absolute-form targets carry the authority in the URI (checked
    // against any Host header); HTTP/1.1 upstreams want origin-form.
    if req.uri().authority().is_some() {
        let authority = req.uri().authority().map(|a| a.as_str().to_owned());
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        if let Ok(uri) = path.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
        if let Some(Ok(host)) = authority.map(HeaderValue::try_from) {
            req.headers_mut().entry(header::HOST).or_insert(host);
        }
    }
    *req.version_mut() = Version::HTTP_11;

    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    let forwarded_for = match headers.get(X_FORWARDED_FOR) {
        Some(existing) => {
            let mut joined = existing.as_bytes().to_vec();
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(peer.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or(peer)
        }
        None => peer,
    };
    headers.insert(X_FORWARDED_FOR, forwarded_for);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if let Some(protocol) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    upgrade
}

/// Removes connection-scoped headers, including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = {
        let connection: Vec<&[u8]> = headers
            .get_all(header::CONNECTION)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        headers
            .keys()
            .filter(|name| is_hop_by_hop(name.as_str(), &connection))
            .cloned()
            .collect()
    };
    for name in doomed {
        headers.remove(name);
    }
}

/// The checks of [`crate::head::parse_request`] for what reaches hyper (HTTP/1.0,
/// HTTP/2, and what the plain path handed over): the same requests get the same 400.
fn check<B>(req: &Request<B>) -> Result<(), Malformed> {
    let uri = req.uri();
    let headers = req.headers();
    if req.method() == http::Method::CONNECT {
        return Err(Malformed::Connect);
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Malformed::TwoHosts);
    }
    match (uri.scheme(), uri.authority()) {
        // Authority-form (`GET abc`) is for CONNECT only.
        (None, Some(_)) => return Err(Malformed::Target),
        (Some(_), Some(authority))
            if host.is_some_and(|h| {
                !h.as_bytes()
                    .eq_ignore_ascii_case(authority.as_str().as_bytes())
            }) =>
        {
            return Err(Malformed::HostMismatch);
        }
        _ if uri.path() == "*" && req.method() != http::Method::OPTIONS => {
            return Err(Malformed::Target);
        }
        _ => {}
    }
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter().peekable();
    if codings.peek().is_some()
        && (headers.contains_key(header::CONTENT_LENGTH)
            || !is_plain_chunked(codings.map(HeaderValue::as_bytes)))
    {
        return Err(Malformed::TransferEncoding);
    }
    Ok(())
}

fn text(refusal: Refusal) -> Response<ProxyBody> {
    let mut res = Response::new(ProxyBody::Full(Some(Bytes::from_static(
        refusal.message().as_bytes(),
    ))));
    *res.status_mut() = refusal.status();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if refusal.closes() {
        // What the client sends after a refused request cannot be trusted to start one.
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// A client's request body on its way upstream: its read stalls past `timeout` (the
/// header read timeout, as on the plain path) fail it, and `waiting` says whether the
/// router is waiting on the client for it.
pub(crate) struct ClientBody {
    body: Incoming,
    /// `None` for a request without a body.
    waiting: Option<Arc<AtomicBool>>,
    timeout: Duration,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The last poll was pending: the router is waiting on the client.
    pending: bool,
}

/// How a client's request body failed.
#[derive(Debug, thiserror::Error)]
enum ClientBodyError {
    #[error("the client's request body stalled")]
    Stalled,
    #[error("the client's request body is malformed or ended early")]
    Broken,
}

/// The client's body error behind a failed upstream exchange, if that was the cause.
fn client_error(error: &hyper::Error) -> Option<&ClientBodyError> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(client) = cause.downcast_ref::<ClientBodyError>() {
            return Some(client);
        }
        source = cause.source();
    }
    None
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Some(waiting) = &this.waiting {
            waiting.store(polled.is_pending(), Relaxed);
        }
        let fresh_wait = !this.pending;
        this.pending = polled.is_pending();
        match polled {
            Poll::Pending => {
                // The clock starts when the wait on the client does: time hyper spent
                // not asking (the app slow to read) is not the client's.
                if fresh_wait || this.stall.is_none() {
                    let deadline = tokio::time::Instant::now() + this.timeout;
                    match &mut this.stall {
                        Some(stall) => stall.as_mut().reset(deadline),
                        None => this.stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                if let Some(stall) = &mut this.stall
                    && stall.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Some(Err(ClientBodyError::Stalled.into())));
                }
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(error))) => {
                tracing::debug!(%error, "client request body failed");
                Poll::Ready(Some(Err(ClientBodyError::Broken.into())))
            }
            Poll::Ready(None) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body: streamed from an instance, or a short text made by the router.
pub(crate) enum ProxyBody {
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
}

/// Streams an instance's response body; when it ends, its connection goes back to the
/// pool and the request stops counting as outstanding.
pub(crate) struct UpstreamBody {
    body: Incoming,
    /// The connection (driven while the body streams) and the request's lease.
    done: Option<(Lease, Conn)>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// === impl UpstreamBody ===

impl UpstreamBody {
    /// The response was read to its end: the connection can carry another request.
    fn finish(&mut self) {
        if let Some((lease, conn)) = self.done.take() {
            lease.instance.put_back(conn);
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // Dropped before its end (client gone): the connection is dropped with it.
        if self.body.is_end_stream() {
            self.finish();
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ProxyBody::Upstream(up) => {
                if let Some((lease, conn)) = &mut up.done {
                    if lease.instance.is_retired() {
                        up.done = None;
                        return Poll::Ready(Some(Err(
                            "instance drained before the body ended".into()
                        )));
                    }
                    conn.poll_driver(cx);
                }
                match Pin::new(&mut up.body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if up.body.is_end_stream() {
                            up.finish();
                        }
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Poll::Ready(Some(Err(error))) => {
                        up.done = None;
                        Poll::Ready(Some(Err(error.into())))
                    }
                    Poll::Ready(None) => {
                        up.finish();
                        Poll::Ready(None)
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(data) => data.is_none(),
            ProxyBody::Upstream(up) => up.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
            ProxyBody::Upstream(up) => up.body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("x-kept"));
    }
}
