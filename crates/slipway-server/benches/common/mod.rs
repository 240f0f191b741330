//! What the benchmarks share: steady load through a router listener that hands every
//! answer, classified, to a sink; and how figures are printed.
#![allow(dead_code)] // each bench uses a different part

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sticky users (`X-Slipway-Key`) the load cycles through.
pub const USERS: u64 = 100;
/// Concurrent clients of the load.
pub const CLIENTS: usize = 4;

pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// What one request through the router got back.
pub enum Seen {
    /// 200 `ok release=R`.
    Ok(String),
    /// The demo app's own 500 `error release=R`.
    AppError(String),
    /// Anything else: the router's 502/503/504 with a short text body, or a surprise.
    Router(u16, String),
    /// No HTTP answer at all.
    Connection(String),
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Ok(r) => write!(f, "200 from {r}"),
            Seen::AppError(r) => write!(f, "500 from the app, release {r}"),
            Seen::Router(status, body) => write!(f, "{status} {body:?}"),
            Seen::Connection(e) => write!(f, "connection error: {e}"),
        }
    }
}

impl Seen {
    pub fn release(&self) -> Option<&str> {
        match self {
            Seen::Ok(r) | Seen::AppError(r) => Some(r),
            _ => None,
        }
    }
}

pub fn classify(status: u16, body: &str) -> Seen {
    match (
        status,
        body.strip_prefix("ok release="),
        body.strip_prefix("error release="),
    ) {
        (200, Some(release), _) => Seen::Ok(release.trim().to_string()),
        (500, _, Some(release)) => Seen::AppError(release.trim().to_string()),
        _ => Seen::Router(status, body.trim().to_string()),
    }
}

pub type Sink = Arc<dyn Fn(u64, Instant, Seen) + Send + Sync>;

/// Steady requests to `app` from `CLIENTS` tasks, each request from the next of `USERS`
/// sticky users, every answer handed to `sink`; ends when stopped or after `limit`.
pub struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr, app: &str, sink: Sink, limit: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let url = format!("http://{addr}/");
        let app = app.to_string();
        let tasks = (0..CLIENTS)
            .map(|_| {
                let (stop, sent, sink, url, app) = (
                    stop.clone(),
                    sent.clone(),
                    sink.clone(),
                    url.clone(),
                    app.clone(),
                );
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let deadline = Instant::now() + limit;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let user = sent.fetch_add(1, Ordering::Relaxed) % USERS;
                        let resp = http
                            .get(&url)
                            .header("X-Slipway-Key", format!("user-{user}"))
                            .header("X-Slipway-App", &app)
                            .send()
                            .await;
                        let seen = match resp {
                            Err(e) => Seen::Connection(e.to_string()),
                            Ok(r) => {
                                let status = r.status().as_u16();
                                match r.text().await {
                                    Ok(body) => classify(status, &body),
                                    Err(e) => Seen::Connection(e.to_string()),
                                }
                            }
                        };
                        sink(user, Instant::now(), seen);
                    }
                })
            })
            .collect();
        Load { stop, sent, tasks }
    }

    /// Waits until `n` more requests have been sent (bounded to 30 s).
    pub async fn until_more(&self, n: u64) {
        let target = self.sent.load(Ordering::Relaxed) + n;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.sent.load(Ordering::Relaxed) < target {
            assert!(Instant::now() < deadline, "the load stalled");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    pub async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
