//! One request through the router: pick service, release and instance, forward, stream
//! the response back, count it.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::hash::{BuildHasher, RandomState};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::RouterOptions;
use crate::routing::{Forced, Snapshot, bucket_of};
use crate::upstream::{Conn, Instance, Lease};

const X_SLIPWAY_KEY: HeaderName = HeaderName::from_static("x-slipway-key");
const X_SLIPWAY_RELEASE: HeaderName = HeaderName::from_static("x-slipway-release");
const X_SLIPWAY_APP: HeaderName = HeaderName::from_static("x-slipway-app");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const COOKIE_NAME: &[u8] = b"slipway_key";

/// What every connection of a listener shares.
pub(crate) struct Shared {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) opts: Arc<RouterOptions>,
}

/// Errors of a forwarded request, by what the router should answer.
enum Failure {
    /// No connection could be made (or the request was never written): safe to retry.
    Connect(Box<Request<Incoming>>),
    /// The exchange broke after the request was handed to the connection.
    Upstream,
    /// The instance was removed and its drain deadline passed.
    Drained,
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    peer: HeaderValue,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let (release, request_timeout, cookie) = {
        let snapshot = shared.snapshot.load();
        let Some(service) = snapshot.service(app_name(&req)) else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                "no app by that name on this listener\n",
            ));
        };
        let (bucket, cookie) = sticky_bucket(req.headers());
        let forced = req
            .headers()
            .get(X_SLIPWAY_RELEASE)
            .map(|v| Forced::parse(v.as_bytes()));
        let Some(release) = service.release(forced, bucket) else {
            return Ok(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no release takes traffic\n",
            ));
        };
        (Arc::clone(release), service.request_timeout, cookie)
    };
    if release.instances.is_empty() {
        release.counters.record_router_error();
        return Ok(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no instance of this release\n",
        ));
    }

    let upgrade = prepare_request(&mut req, peer);
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let retryable = is_idempotent(req.method()) && req.body().is_end_stream();
    // One clock read per request: the deadline and the pool's ages derive from it.
    let deadline = tokio::time::Instant::from_std(started) + request_timeout;
    let opts = &shared.opts;

    let mut tried: Option<Arc<Instance>> = None;
    loop {
        // Only after a failed attempt can there be no instance left to try.
        let Some(instance) = release.pick(tried.as_ref()).cloned() else {
            release.counters.record_router_error();
            return Ok(text(
                StatusCode::BAD_GATEWAY,
                "could not connect to the app\n",
            ));
        };
        let lease = instance.lease();
        let exchange = async {
            tokio::select! {
                biased;
                result = send(&instance, opts, req, started) => result,
                () = instance.retired() => Err(Failure::Drained),
            }
        };
        let failure = match tokio::time::timeout_at(deadline, exchange).await {
            Ok(Ok((res, conn))) => {
                release.counters.record(res.status(), started.elapsed());
                return Ok(respond(res, conn, lease, cookie, upgrade, client_upgrade));
            }
            Ok(Err(failure)) => failure,
            Err(_elapsed) => {
                release.counters.record_router_error();
                return Ok(text(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the app did not answer in time\n",
                ));
            }
        };
        match failure {
            Failure::Connect(back) => {
                instance.eject(opts.eject_duration);
                if retryable && tried.is_none() {
                    req = *back;
                    tried = Some(instance);
                    continue;
                }
                release.counters.record_router_error();
                return Ok(text(
                    StatusCode::BAD_GATEWAY,
                    "could not connect to the app\n",
                ));
            }
            Failure::Upstream => {
                instance.eject(opts.eject_duration);
                release.counters.record_router_error();
                return Ok(text(
                    StatusCode::BAD_GATEWAY,
                    "the app closed the connection\n",
                ));
            }
            Failure::Drained => {
                release.counters.record_router_error();
                return Ok(text(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the app was removed before it answered\n",
                ));
            }
        }
    }
}

/// Sends `req` on a pooled or new connection. A pooled connection the upstream closed
/// meanwhile hands the request back untouched; it is then sent on a fresh connection.
async fn send(
    instance: &Instance,
    opts: &RouterOptions,
    mut req: Request<Incoming>,
    now: Instant,
) -> Result<(Response<Incoming>, Conn), Failure> {
    loop {
        let Ok(mut conn) = instance.checkout(opts, now).await else {
            return Err(Failure::Connect(Box::new(req)));
        };
        if poll_fn(|cx| conn.poll_ready(cx)).await.is_err() {
            if conn.reused {
                continue;
            }
            return Err(Failure::Connect(Box::new(req)));
        }
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
                Some(back) if conn.reused => req = back,
                Some(back) => return Err(Failure::Connect(Box::new(back))),
                None => {
                    tracing::debug!(error = %error.into_error(), addr = %instance.addr, "upstream failed");
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

/// The service name of a request: `X-Slipway-App`, else the first label of the host.
fn app_name(req: &Request<Incoming>) -> Option<&[u8]> {
    if let Some(app) = req.headers().get(X_SLIPWAY_APP) {
        return Some(app.as_bytes());
    }
    let host = match req.headers().get(header::HOST) {
        Some(host) => host.as_bytes(),
        None => req.uri().host()?.as_bytes(),
    };
    host.split(|&b| b == b'.' || b == b':').next()
}

/// The user's sticky bucket, and the cookie to set when the user had no key yet.
fn sticky_bucket(headers: &HeaderMap) -> (u32, Option<HeaderValue>) {
    if let Some(key) = headers.get(X_SLIPWAY_KEY) {
        return (bucket_of(key.as_bytes()), None);
    }
    for cookies in headers.get_all(header::COOKIE) {
        if let Some(key) = find_cookie(cookies.as_bytes(), COOKIE_NAME) {
            return (bucket_of(key), None);
        }
    }
    let key = new_key();
    let mut cookie = Vec::with_capacity(80);
    cookie.extend_from_slice(COOKIE_NAME);
    cookie.push(b'=');
    cookie.extend_from_slice(&key);
    cookie.extend_from_slice(b"; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly");
    let cookie = HeaderValue::from_maybe_shared(Bytes::from(cookie)).ok();
    (bucket_of(&key), cookie)
}

fn find_cookie<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let (k, v) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
        (k == name && v.len() > 1).then(|| &v[1..])
    })
}

/// A random 16-hex-digit user key. Not a secret: it only spreads users over buckets.
fn new_key() -> [u8; 16] {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0u8));
    }
    // splitmix64: a full-period generator, plenty for spreading keys.
    let mut z = STATE.with(|s| {
        let next = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(next);
        next
    });
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let mut key = [0u8; 16];
    for (i, digit) in key.iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[((z >> (60 - 4 * i)) & 0xf) as usize];
    }
    key
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// Rewrites a client request for an HTTP/1.1 upstream. Returns the `Upgrade` protocol
/// when the client asks for one (it must survive the hop-by-hop stripping).
fn prepare_request(req: &mut Request<Incoming>, peer: HeaderValue) -> Option<HeaderValue> {
    let upgrade = (req.version() == Version::HTTP_11
        && has_token(req.headers(), header::CONNECTION, b"upgrade"))
    .then(|| req.headers().get(header::UPGRADE).cloned())
    .flatten();

    // HTTP/2 requests carry the authority in the URI; HTTP/1.1 upstreams want origin-form.
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

fn has_token(headers: &HeaderMap, name: HeaderName, token: &[u8]) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    })
}

/// Connection-scoped headers (RFC 9110 §7.6.1), `Connection` first.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Removes connection-scoped headers, including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One scan of the few headers a message has, instead of a hash lookup per name;
    // a bit per entry of `HOP_BY_HOP` that is present.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    let mut named = Vec::new();
    if present & 1 != 0 {
        for name in headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .filter_map(|name| HeaderName::from_bytes(name.trim_ascii()).ok())
        {
            // `Connection: keep-alive` and the like name a header removed anyway.
            match HOP_BY_HOP.iter().position(|h| *h == name) {
                Some(i) => present |= 1 << i,
                None => named.push(name),
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

pub(crate) fn text(status: StatusCode, message: &'static str) -> Response<ProxyBody> {
    let mut res = Response::new(ProxyBody::Full(Some(Bytes::from_static(
        message.as_bytes(),
    ))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
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
    fn finds_the_sticky_cookie_among_others() {
        assert_eq!(
            find_cookie(b"a=1; slipway_key=abc; b=2", COOKIE_NAME),
            Some(&b"abc"[..])
        );
        assert_eq!(
            find_cookie(b"slipway_key=xyz", COOKIE_NAME),
            Some(&b"xyz"[..])
        );
        assert_eq!(
            find_cookie(b"slipway_keyx=1; slipway_key=", COOKIE_NAME),
            None
        );
    }

    #[test]
    fn new_keys_differ() {
        let keys: std::collections::HashSet<_> = (0..1000).map(|_| new_key()).collect();
        assert_eq!(keys.len(), 1000);
    }

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
