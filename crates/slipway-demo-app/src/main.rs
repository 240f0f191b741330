//! `slipway-demo-app`: a small HTTP service with fault flags, used by `slipway demo`, the
//! docs and the tests. It is also a backend in load tests, so every response body is
//! built once at start-up and the request path does no allocation beyond hyper's own.
#![forbid(unsafe_code)]

mod args;
mod probe;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::args::{ArgError, Settings, USAGE};

/// In-flight requests get this long to finish after SIGTERM before the process exits.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    let mut raw = std::env::args().skip(1);
    if raw.next().as_deref() == Some("--probe") {
        return run_probe(raw.next(), raw.next());
    }
    let settings = match args::parse(std::env::args().skip(1), std::env::var("PORT").ok()) {
        Ok(s) => s,
        Err(ArgError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("slipway-demo-app: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let run = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
        .and_then(|rt| rt.block_on(serve(settings)));
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slipway-demo-app: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--probe URL`: exit 0 when `GET URL` answers 2xx, 1 when it does not, 2 for bad usage.
fn run_probe(url: Option<String>, extra: Option<String>) -> ExitCode {
    let target = match (url.as_deref().map(probe::parse_url), extra) {
        (Some(Some(target)), None) => target,
        _ => {
            eprintln!(
                "slipway-demo-app: --probe takes one URL, like http://127.0.0.1:8080/health\n{USAGE}"
            );
            return ExitCode::from(2);
        }
    };
    match probe::status(&target) {
        Ok(code) if (200..300).contains(&code) => ExitCode::SUCCESS,
        Ok(code) => {
            eprintln!(
                "slipway-demo-app: {}{} answered {code}",
                target.addr, target.path
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("slipway-demo-app: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), Error> {
    // Installed before the start delay so a SIGTERM during it still ends the process cleanly.
    let mut sigterm = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    let mut stop = async move || {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = sigint.recv() => {}
        }
    };

    if !settings.start_delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(settings.start_delay) => {}
            _ = stop() => return Ok(()),
        }
    }

    let addr = SocketAddr::new(settings.host, settings.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    println!("slipway-demo-app {} listening on {local}", settings.release);

    let app = Arc::new(App::new(&settings));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_conn(stream, app.clone(), shutdown_rx.clone()));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    eprintln!("slipway-demo-app: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }

    drop(listener);
    let _ = shutdown_tx.send(true);
    let drained = async { while conns.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drained).await;
    Ok(())
}

async fn serve_conn(stream: TcpStream, app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    // Small request/response exchanges: do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(req).await) }
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { shutdown.wait_for(|stopping| *stopping).await.is_ok() } => {
            // Finish the request in flight, then close instead of keeping the connection alive.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

// === impl App ===

struct App {
    error_rate: f64,
    latency: Duration,
    /// The error rate, latency and failing health apply from then on (`--error-after-ms`).
    faults_from: Instant,
    fail_health: bool,
    requests: AtomicU64,
    root_ok: Bytes,
    root_error: Bytes,
    health_ok: Bytes,
    health_failing: Bytes,
}

impl App {
    fn new(s: &Settings) -> App {
        let health = |status: &str| {
            let body = serde_json::json!({ "status": status, "release": s.release });
            Bytes::from(body.to_string())
        };
        App {
            error_rate: s.error_rate,
            latency: s.latency,
            faults_from: Instant::now() + s.error_after,
            fail_health: s.fail_health,
            requests: AtomicU64::new(0),
            root_ok: Bytes::from(format!("ok release={}\n", s.release)),
            root_error: Bytes::from(format!("error release={}\n", s.release)),
            health_ok: health("ok"),
            health_failing: health("failing"),
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let faulty = Instant::now() >= self.faults_from;
        if faulty && !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        const TEXT: &str = "text/plain; charset=utf-8";
        const JSON: &str = "application/json";
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/") if faulty && self.next_fails() => respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                self.root_error.clone(),
            ),
            (&Method::GET, "/") => respond(StatusCode::OK, TEXT, self.root_ok.clone()),
            (&Method::GET, "/health") if faulty && self.fail_health => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                JSON,
                self.health_failing.clone(),
            ),
            (&Method::GET, "/health") => respond(StatusCode::OK, JSON, self.health_ok.clone()),
            _ => respond(
                StatusCode::NOT_FOUND,
                TEXT,
                Bytes::from_static(b"not found\n"),
            ),
        }
    }

    /// Deterministic failures so tests are stable: request `n` (from 1) fails when
    /// `floor(n * rate)` steps up, which spreads exactly `rate` of the requests evenly
    /// (0.5 fails every 2nd, 0.1 every 10th, 1.0 all).
    fn next_fails(&self) -> bool {
        if self.error_rate <= 0.0 {
            return false;
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        (n as f64 * self.error_rate).floor() > ((n - 1) as f64 * self.error_rate).floor()
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(rate: f64) -> App {
        App::new(&Settings {
            host: [127, 0, 0, 1].into(),
            port: 0,
            release: "v\"1".into(),
            error_rate: rate,
            latency: Duration::ZERO,
            fail_health: false,
            start_delay: Duration::ZERO,
            error_after: Duration::ZERO,
        })
    }

    #[test]
    fn error_rate_is_exact_and_spread() {
        for (rate, want) in [(0.0, 0), (0.1, 10), (0.5, 50), (0.25, 25), (1.0, 100)] {
            let a = app(rate);
            let fails: Vec<bool> = (0..100).map(|_| a.next_fails()).collect();
            assert_eq!(fails.iter().filter(|f| **f).count(), want, "rate {rate}");
        }
        let a = app(0.5);
        let first: Vec<bool> = (0..4).map(|_| a.next_fails()).collect();
        assert_eq!(first, [false, true, false, true]);
    }

    #[test]
    fn health_body_is_valid_json_even_for_odd_release_names() {
        let a = app(0.0);
        let body: serde_json::Value = serde_json::from_slice(&a.health_ok).unwrap();
        assert_eq!(body, serde_json::json!({"status": "ok", "release": "v\"1"}));
        let body: serde_json::Value = serde_json::from_slice(&a.health_failing).unwrap();
        assert_eq!(body["status"], "failing");
    }
}
