//! Steady traffic through a router listener, recording what every request saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One request as the load saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When the answer (or the failure) came.
    pub at: Instant,
    /// 0 when no answer came at all.
    pub status: u16,
    /// The release the body names (`release=v2`), empty when none.
    pub release: String,
}

/// Requests from 50 users (sticky keys) one after another, until stopped; bounded to 60 s.
pub struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Seen>>,
}

impl Load {
    pub fn start(addr: std::net::SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            let mut seen = Vec::new();
            let mut i = 0u32;
            while !flag.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                i += 1;
                let resp = http
                    .get(format!("http://{addr}/"))
                    .header("X-Slipway-Key", format!("user-{}", i % 50))
                    .send()
                    .await;
                let (status, release) = match resp {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body = r.text().await.unwrap_or_default();
                        let release = body
                            .split("release=")
                            .nth(1)
                            .unwrap_or("")
                            .trim()
                            .to_string();
                        (status, release)
                    }
                    Err(_) => (0, String::new()),
                };
                seen.push(Seen {
                    at: Instant::now(),
                    status,
                    release,
                });
            }
            seen
        });
        Load { stop, task }
    }

    /// Stops the load: (status, release that answered) per request, in order.
    pub async fn finish(self) -> Vec<(u16, String)> {
        self.finish_timed()
            .await
            .into_iter()
            .map(|s| (s.status, s.release))
            .collect()
    }

    /// Stops the load: every request with when it was answered, in order.
    pub async fn finish_timed(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}
