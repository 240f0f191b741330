//! One request through the router, whichever path serves it: which service, release and
//! instance; when to try another instance; what to answer when none can.

use std::cell::Cell;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::RouterOptions;
use crate::head::Malformed;
use crate::routing::{Forced, Release, Snapshot, bucket_of};
use crate::upstream::Instance;

const COOKIE_NAME: &[u8] = b"slipway_key";

/// What every connection of a listener shares.
pub(crate) struct Shared {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) opts: Arc<RouterOptions>,
}

/// Read access to a request's headers, as hyper or the plain path holds them. Names are
/// given in lower case.
pub(crate) trait Headers {
    fn first(&self, name: &str) -> Option<&[u8]>;
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]>;
}

impl Headers for HeaderMap {
    fn first(&self, name: &str) -> Option<&[u8]> {
        self.get(name).map(|v| v.as_bytes())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.get_all(name).into_iter().map(|v| v.as_bytes())
    }
}

impl Headers for [httparse::Header<'_>] {
    fn first(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Where a request goes.
pub(crate) struct Route {
    pub(crate) release: Arc<Release>,
    pub(crate) request_timeout: Duration,
    /// A `Set-Cookie` value for a user who had no sticky key yet.
    pub(crate) cookie: Option<Bytes>,
}

/// Why the router answers a request itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    NoApp,
    NoRelease,
    NoInstance,
    ConnectFailed,
    UpstreamClosed,
    Timeout,
    Drained,
    /// The client stopped sending its body mid-request, or sent a malformed one.
    ClientGone,
    /// The client's body stalled past the read timeout.
    ClientTimeout,
    /// The request head is larger than the router accepts.
    HeadTooLarge,
    /// The request head breaks RFC 9112 in a way no path serves.
    Malformed(Malformed),
}

impl Refusal {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Refusal::NoApp => StatusCode::NOT_FOUND,
            Refusal::NoRelease | Refusal::NoInstance => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::ConnectFailed | Refusal::UpstreamClosed => StatusCode::BAD_GATEWAY,
            Refusal::Timeout | Refusal::Drained => StatusCode::GATEWAY_TIMEOUT,
            Refusal::ClientGone | Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            Refusal::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::NoApp => "no app by that name on this listener\n",
            Refusal::NoRelease => "no release takes traffic\n",
            Refusal::NoInstance => "no instance of this release\n",
            Refusal::ConnectFailed => "could not connect to the app\n",
            Refusal::UpstreamClosed => "the app closed the connection\n",
            Refusal::Timeout => "the app did not answer in time\n",
            Refusal::Drained => "the app was removed before it answered\n",
            Refusal::ClientGone => "the request body ended early or is malformed\n",
            Refusal::ClientTimeout => "the request body stalled\n",
            Refusal::HeadTooLarge => "the request head is too large\n",
            Refusal::Malformed(why) => why.message(),
        }
    }

    /// The client's fault: the connection closes after the answer, since what the
    /// client sends next cannot be trusted to start a request.
    pub(crate) fn closes(self) -> bool {
        matches!(
            self,
            Refusal::ClientGone
                | Refusal::ClientTimeout
                | Refusal::HeadTooLarge
                | Refusal::Malformed(_)
        )
    }
}

/// Picks the release for a request with these headers (`uri_host`: the authority of an
/// absolute URI, for HTTP/2).
pub(crate) fn route<H: Headers + ?Sized>(
    snapshot: &Snapshot,
    headers: &H,
    uri_host: Option<&[u8]>,
) -> Result<Route, Refusal> {
    let service = snapshot
        .service(app_name(headers, uri_host))
        .ok_or(Refusal::NoApp)?;
    let (bucket, cookie) = sticky_bucket(headers);
    let forced = headers.first("x-slipway-release").map(Forced::parse);
    let release = service.release(forced, bucket).ok_or(Refusal::NoRelease)?;
    if release.instances.is_empty() {
        release.counters.record_router_error();
        return Err(Refusal::NoInstance);
    }
    Ok(Route {
        release: Arc::clone(release),
        request_timeout: service.request_timeout,
        cookie,
    })
}

/// The service name of a request: `X-Slipway-App`, else the first label of the host.
fn app_name<'a, H: Headers + ?Sized>(
    headers: &'a H,
    uri_host: Option<&'a [u8]>,
) -> Option<&'a [u8]> {
    if let Some(app) = headers.first("x-slipway-app") {
        return Some(app);
    }
    let host = headers.first("host").or(uri_host)?;
    host.split(|&b| b == b'.' || b == b':').next()
}

/// The user's sticky bucket, and the cookie to set when the user had no key yet.
fn sticky_bucket<H: Headers + ?Sized>(headers: &H) -> (u32, Option<Bytes>) {
    if let Some(key) = headers.first("x-slipway-key") {
        return (bucket_of(key), None);
    }
    for cookies in headers.all("cookie") {
        if let Some(key) = find_cookie(cookies, COOKIE_NAME) {
            return (bucket_of(key), None);
        }
    }
    let key = new_key();
    let mut cookie = Vec::with_capacity(80);
    cookie.extend_from_slice(COOKIE_NAME);
    cookie.push(b'=');
    cookie.extend_from_slice(&key);
    cookie.extend_from_slice(b"; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly");
    (bucket_of(&key), Some(Bytes::from(cookie)))
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

/// How one attempt to forward a request failed.
pub(crate) enum Failure {
    /// No connection could be made, or the request was refused before the app could
    /// have acted on it: safe to send again.
    Connect,
    /// The exchange broke after the request was handed over.
    Upstream,
    /// The instance was removed and its drain deadline passed.
    Drained,
    /// No response head within the request timeout.
    Timeout,
    /// The client went away before its request body was through, or sent a malformed one.
    Client,
    /// The client's request body stalled: no byte within the read timeout, or the
    /// request's deadline passed while the router waited on the client.
    ClientStalled,
}

/// The instances a request tries: one, and a second after a connection failure when the
/// request can be sent again.
pub(crate) struct Attempts<'r> {
    release: &'r Release,
    tried: Option<Arc<Instance>>,
}

impl<'r> Attempts<'r> {
    pub(crate) fn new(release: &'r Release) -> Attempts<'r> {
        Attempts {
            release,
            tried: None,
        }
    }

    /// The instance for the next attempt.
    pub(crate) fn next(&self) -> Result<Arc<Instance>, Refusal> {
        // Only after a failed attempt can there be no instance left to try.
        self.release
            .pick(self.tried.as_ref())
            .cloned()
            .ok_or_else(|| self.refuse(Refusal::ConnectFailed))
    }

    /// Takes in a failed attempt on `instance`: `Ok` to try again (`resendable`: the
    /// request can still be sent whole), else what to answer.
    pub(crate) fn failed(
        &mut self,
        instance: Arc<Instance>,
        failure: Failure,
        resendable: bool,
        opts: &RouterOptions,
    ) -> Result<(), Refusal> {
        let refusal = match failure {
            Failure::Connect => {
                instance.eject(opts.eject_duration);
                if resendable && self.tried.is_none() {
                    self.tried = Some(instance);
                    return Ok(());
                }
                Refusal::ConnectFailed
            }
            Failure::Upstream => {
                instance.eject(opts.eject_duration);
                Refusal::UpstreamClosed
            }
            Failure::Drained => Refusal::Drained,
            Failure::Timeout => Refusal::Timeout,
            // Not the app's fault: nothing to eject, and not counted against the release.
            Failure::Client => {
                self.release.counters.record_client_error();
                return Err(Refusal::ClientGone);
            }
            Failure::ClientStalled => {
                self.release.counters.record_client_error();
                return Err(Refusal::ClientTimeout);
            }
        };
        Err(self.refuse(refusal))
    }

    fn refuse(&self, refusal: Refusal) -> Refusal {
        self.release.counters.record_router_error();
        refusal
    }
}

/// Runs one attempt's exchange until its response head, bounded by the request's
/// deadline and cut when the instance is retired.
pub(crate) async fn guarded<T>(
    instance: &Instance,
    deadline: tokio::time::Instant,
    exchange: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let exchange = async {
        tokio::select! {
            biased;
            result = exchange => result,
            () = instance.retired() => Err(Failure::Drained),
        }
    };
    tokio::time::timeout_at(deadline, exchange)
        .await
        .unwrap_or(Err(Failure::Timeout))
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
    fn both_header_forms_name_the_same_app() {
        let mut map = HeaderMap::new();
        map.insert("host", "web.example.com:8080".parse().unwrap());
        let raw = [httparse::Header {
            name: "Host",
            value: b"web.example.com:8080",
        }];
        assert_eq!(app_name(&map, None), Some(&b"web"[..]));
        assert_eq!(app_name(&raw[..], None), Some(&b"web"[..]));
        assert_eq!(
            app_name(&HeaderMap::new(), Some(b"api.x")),
            Some(&b"api"[..])
        );
    }
}
