//! HTTP probes: the readiness check of a new instance and the smoke tests run through the
//! router.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use slipway_config::{HealthCheck, SmokeTest};
use slipway_drivers::Driver;
use tokio::time::Instant;

use crate::ports::Prober;

/// How often an instance is probed until it first answers healthy. Like Docker's
/// `start_interval`: a fast first verdict keeps the deploy latency down to the app's own
/// start time, while `interval` paces the checks after that.
const START_PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// The real prober: HTTP GETs over the network.
#[derive(Clone)]
pub struct HttpProber {
    http: reqwest::Client,
}

/// What one probe saw, in words a user can act on.
#[derive(Debug, Clone, PartialEq)]
struct ProbeResult {
    pub ok: bool,
    pub summary: String,
}

impl HttpProber {
    pub fn new() -> HttpProber {
        // No idle pooling: a probe must see the instance as a new client would, and a pooled
        // connection to a dead instance would only add noise.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        HttpProber { http }
    }

    /// GETs `path` on `addr` (as `app` when it is a router's listener) and checks the
    /// status (and body, when asked).
    async fn get(
        &self,
        addr: SocketAddr,
        app: Option<&str>,
        path: &str,
        timeout: Duration,
        expect_status: u16,
        expect_body: Option<&str>,
    ) -> ProbeResult {
        let url = format!("http://{addr}{path}");
        let mut request = self.http.get(&url).timeout(timeout);
        if let Some(app) = app {
            request = request.header("X-Slipway-App", app);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    format!("no answer within {timeout:?}")
                } else if e.is_connect() {
                    "connection refused".to_string()
                } else {
                    e.to_string()
                };
                return ProbeResult {
                    ok: false,
                    summary: format!("GET {path}: {why}"),
                };
            }
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let snippet: String = body.trim().chars().take(200).collect();
        if status != expect_status {
            return ProbeResult {
                ok: false,
                summary: format!(
                    "GET {path}: status {status}, expected {expect_status}: {snippet}"
                ),
            };
        }
        if let Some(needle) = expect_body
            && !body.contains(needle)
        {
            return ProbeResult {
                ok: false,
                summary: format!("GET {path}: body does not contain {needle:?}: {snippet}"),
            };
        }
        ProbeResult {
            ok: true,
            summary: format!("GET {path}: {status}"),
        }
    }
}

#[async_trait]
impl Prober for HttpProber {
    /// Waits until the instance passes `healthy_threshold` consecutive checks. Fails when,
    /// after the start period, `unhealthy_threshold` consecutive checks fail, when the start
    /// period ends before the first success, or when the driver says the instance died.
    async fn wait_healthy(
        &self,
        addr: SocketAddr,
        hc: &HealthCheck,
        driver: &dyn Driver,
        handle: &str,
    ) -> Result<String, String> {
        let started = Instant::now();
        let mut successes = 0;
        let mut failures = 0;
        let mut ever_healthy = false;
        loop {
            let result = self.get(addr, None, &hc.path, hc.timeout, 200, None).await;
            let in_start_period = started.elapsed() < hc.start_period;
            if result.ok {
                successes += 1;
                failures = 0;
                ever_healthy = true;
                if successes >= hc.healthy_threshold {
                    return Ok(result.summary);
                }
            } else {
                successes = 0;
                if !driver.is_running(handle).await {
                    return Err(format!(
                        "instance exited before it became healthy (last check: {})",
                        result.summary
                    ));
                }
                if !in_start_period {
                    failures += 1;
                    if failures >= hc.unhealthy_threshold || !ever_healthy {
                        return Err(format!(
                            "health check failed {failures} time(s) in a row after the {:?} start period: {}",
                            hc.start_period, result.summary
                        ));
                    }
                }
            }
            let pause = if ever_healthy {
                hc.interval
            } else {
                START_PROBE_INTERVAL.min(hc.interval)
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// Runs every smoke test against `addr` (the router, asked for `app`); the first
    /// failure ends the run.
    async fn smoke(
        &self,
        addr: SocketAddr,
        app: &str,
        tests: &[SmokeTest],
        timeout: Duration,
    ) -> Result<Vec<String>, String> {
        let mut passed = Vec::with_capacity(tests.len());
        for test in tests {
            let result = self
                .get(
                    addr,
                    Some(app),
                    &test.get,
                    timeout,
                    test.expect_status.unwrap_or(200),
                    test.expect_body_contains.as_deref(),
                )
                .await;
            if !result.ok {
                return Err(format!("smoke test failed: {}", result.summary));
            }
            passed.push(result.summary);
        }
        Ok(passed)
    }
}

impl Default for HttpProber {
    fn default() -> Self {
        HttpProber::new()
    }
}
