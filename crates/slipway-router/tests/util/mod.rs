//! Helpers shared by the router's integration tests: small hyper backends and a client.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use slipway_router::{ListenerConfig, ReleaseConfig, Router, RouterOptions, ServiceConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A backend answering with its name; `/slow?ms=N` waits first, `/status/N` answers N,
/// `/headers` echoes the request headers, `/echo` the request body, `/upgrade` switches
/// to a byte echo.
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    /// Requests received (counted when they arrive, before any wait).
    pub received: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let (n, r) = (name.to_owned(), Arc::clone(&received));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = socket.accept().await else {
                    continue;
                };
                let (n, r) = (n.clone(), Arc::clone(&r));
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        r.fetch_add(1, Ordering::SeqCst);
                        answer(n.clone(), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Backend {
            addr,
            name: name.to_owned(),
            received,
            task,
        }
    }

    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

async fn answer(
    name: String,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let reply = |status: u16, body: String| {
        let mut res = Response::new(Full::new(Bytes::from(body)));
        *res.status_mut() = StatusCode::from_u16(status).unwrap();
        res.headers_mut()
            .insert("keep-alive", "timeout=60".parse().unwrap());
        Ok(res)
    };
    if path == "/slow" {
        let ms: u64 = query.trim_start_matches("ms=").parse().unwrap_or(100);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return reply(code.parse().unwrap_or(500), name);
    }
    if path == "/headers" {
        let mut lines = String::new();
        for (k, v) in req.headers() {
            lines.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
        }
        return reply(200, lines);
    }
    if path == "/echo" {
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        return reply(
            200,
            String::from_utf8_lossy(&body.unwrap_or_default()).into_owned(),
        );
    }
    if path == "/upgrade" {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        res.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        res.headers_mut().insert("upgrade", "echo".parse().unwrap());
        return Ok(res);
    }
    reply(200, name)
}

/// A backend that answers every request head it reads with the same bytes, written
/// piece by piece, and closes the connection after if `close`: for responses hyper
/// would not produce (no length, interim heads, garbage).
pub struct RawBackend {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawBackend {
    pub async fn start(pieces: Vec<&'static [u8]>, close: bool) -> RawBackend {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let pieces = Arc::new(pieces);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut stream, _)) = socket.accept().await {
                let pieces = Arc::clone(&pieces);
                connections.spawn(async move {
                    loop {
                        let head = read_head(&mut stream).await;
                        if head.is_empty() {
                            return;
                        }
                        for piece in pieces.iter() {
                            if stream.write_all(piece).await.is_err() {
                                return;
                            }
                            tokio::task::yield_now().await;
                        }
                        if close {
                            return;
                        }
                    }
                });
            }
        });
        RawBackend { addr, task }
    }
}

/// Opens a raw client connection and writes `bytes` on it.
pub async fn connect_and_send(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Reads bytes up to the end of a message head (or of the stream).
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), async {
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    })
    .await
    .expect("message head in time");
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads exactly `n` bytes, in time.
pub async fn read_n(stream: &mut TcpStream, n: usize) -> String {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
        .await
        .expect("body in time")
        .expect("body read");
    String::from_utf8_lossy(&buf).into_owned()
}

/// An address nothing listens on (connections are refused).
pub async fn refusing_addr() -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    socket.local_addr().unwrap()
}

pub fn release(name: &str, weight: f64, canary: bool, instances: &[SocketAddr]) -> ReleaseConfig {
    ReleaseConfig {
        name: name.into(),
        weight,
        canary,
        instances: instances.to_vec(),
    }
}

pub fn service(name: &str, releases: Vec<ReleaseConfig>) -> ServiceConfig {
    ServiceConfig {
        name: name.into(),
        releases,
        drain_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    }
}

pub fn listener(services: Vec<ServiceConfig>) -> ListenerConfig {
    ListenerConfig { services }
}

/// One service `web` with one release `v1` on `addr`.
pub fn single(addr: SocketAddr) -> ListenerConfig {
    listener(vec![service(
        "web",
        vec![release("v1", 100.0, false, &[addr])],
    )])
}

/// A stable/canary split of one service `web` between two backends.
pub fn split(stable: &Backend, canary: &Backend, canary_weight: f64) -> ListenerConfig {
    listener(vec![service(
        "web",
        vec![
            release(&stable.name, 100.0 - canary_weight, false, &[stable.addr]),
            release(&canary.name, canary_weight, true, &[canary.addr]),
        ],
    )])
}

pub async fn start_router(config: ListenerConfig) -> (Router, SocketAddr) {
    start_router_with(RouterOptions::default(), config).await
}

pub async fn start_router_with(
    opts: RouterOptions,
    config: ListenerConfig,
) -> (Router, SocketAddr) {
    let router = Router::with_options(opts);
    let addr = router
        .add_listener("test", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    router.configure("test", config).unwrap();
    (router, addr)
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Clone)]
pub struct TestClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl TestClient {
    pub fn new(addr: SocketAddr) -> TestClient {
        TestClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
        }
    }

    pub fn http2(addr: SocketAddr) -> TestClient {
        TestClient {
            client: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
            base: format!("http://{addr}"),
        }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, Bytes::new()).await
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self
            .client
            .request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// Polls `condition` until it holds, failing the test after a generous deadline.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One request as a [`Recorder`] parsed it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub head: String,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    /// Values of header `name` (case-insensitive), in order.
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

/// A backend that records every byte it receives and every request it parses from
/// them (strictly: Content-Length or chunked bodies, keep-alive), answering each with
/// `seen N: <request line>` (N counts from 0 across connections).
pub struct Recorder {
    pub addr: SocketAddr,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
    raw: Arc<std::sync::Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    pub async fn start() -> Recorder {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let raw = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, r) = (Arc::clone(&seen), Arc::clone(&raw));
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = socket.accept().await {
                connections.spawn(record(stream, Arc::clone(&s), Arc::clone(&r)));
            }
        });
        Recorder {
            addr,
            seen,
            raw,
            task,
        }
    }

    /// Every request parsed so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Every byte received so far, all connections.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.raw.lock().unwrap()).into_owned()
    }
}

async fn record(
    mut stream: TcpStream,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
    raw: Arc<std::sync::Mutex<Vec<u8>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match parse_recorded(&buf) {
            Some(Ok((used, request))) => {
                buf.drain(..used);
                let body = {
                    let mut seen = seen.lock().unwrap();
                    let body = format!("seen {}: {}", seen.len(), request.request_line());
                    seen.push(request);
                    body
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            Some(Err(())) => {
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                return;
            }
            None => {}
        }
        match stream.read(&mut chunk).await {
            Ok(n) if n > 0 => {
                raw.lock().unwrap().extend_from_slice(&chunk[..n]);
                buf.extend_from_slice(&chunk[..n]);
            }
            _ => return,
        }
    }
}

/// One whole request from the start of `buf`: `None` while incomplete.
fn parse_recorded(buf: &[u8]) -> Option<Result<(usize, Seen), ()>> {
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut slots);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return None,
        Err(_) => return Some(Err(())),
    };
    let mut length = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let Ok(n) = std::str::from_utf8(h.value).unwrap_or("x").parse::<usize>() else {
                return Some(Err(()));
            };
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.eq_ignore_ascii_case(b"chunked");
            if !chunked {
                return Some(Err(()));
            }
        }
    }
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let rest = &buf[head_len..];
    let (used, body) = if chunked {
        match dechunk(rest)? {
            Ok(found) => found,
            Err(()) => return Some(Err(())),
        }
    } else {
        let n = length.unwrap_or(0);
        if rest.len() < n {
            return None;
        }
        (n, rest[..n].to_vec())
    };
    Some(Ok((head_len + used, Seen { head, body })))
}

/// Decodes a chunked body strictly (CRLF lines, hex sizes): (bytes used, data).
fn dechunk(buf: &[u8]) -> Option<Result<(usize, Vec<u8>), ()>> {
    let mut at = 0;
    let mut data = Vec::new();
    loop {
        let line_end = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
        let line = std::str::from_utf8(&buf[at..line_end]).unwrap_or("x");
        let size = line.split(';').next().unwrap_or("");
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return Some(Err(()));
        };
        at = line_end + 2;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let end = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Some(Ok((at, data)));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        data.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Some(Err(()));
        }
        at += size + 2;
    }
}

/// Reads one response with a `content-length` from a raw connection: (head, body).
pub async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let head = read_head(stream).await;
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    let body = read_n(stream, length).await;
    (head, body)
}

/// Reads until the peer closes, in time.
pub async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut all))
        .await
        .expect("the router closes the connection in time")
        .ok();
    String::from_utf8_lossy(&all).into_owned()
}
