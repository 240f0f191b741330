//! Issue 2's measurements, on the embedded default (SQLite, process driver, in-process
//! router), printed as figures:
//!
//! 1. Control-plane overhead of a deployment with no gates: from the deploy request to the
//!    router serving the new release, minus the demo app's own start-to-healthy time
//!    (measured in the same run by starting it directly). Median of 20. Target < 50 ms.
//! 2. Failed requests under continuous load through the router during 50 blue-green
//!    deployments and 50 rollbacks. Target 0.
//!
//! Run: `cargo bench -p slipway-server --bench deploy` (or `bench/deploy.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

#[path = "../tests/util/mod.rs"]
mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use util::{TestServer, until_serving};

const RUNS: usize = 20;
const DEPLOYS: usize = 50;
const ROLLBACKS: usize = 50;
const LOAD_CLIENTS: usize = 8;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The demo app's own start-to-healthy time: spawn it, poll /health until 200.
async fn app_start_to_healthy(http: &reqwest::Client) -> Duration {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(util::demo_app())
        .args(["--port", &port.to_string(), "--release", "probe"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ready = until_serving(http, &format!("http://127.0.0.1:{port}/health"), "ok").await;
    let _ = child.kill().await;
    ready - started
}

const ENV: &str =
    "    staging:\n      listen: 127.0.0.1:0\n      strategy: blue-green\n      keep_releases: 3\n";

async fn overhead() {
    let http = reqwest::Client::new();
    let s = TestServer::start(ENV).await;
    s.deploy_and_wait("staging", "v0", "success").await;
    let url = format!("http://{}/", s.listener("staging").await);
    let mut totals = Vec::new();
    let mut apps = Vec::new();
    for i in 1..=RUNS {
        apps.push(app_start_to_healthy(&http).await);
        let version = format!("v{i}");
        let t0 = Instant::now();
        let (status, d) = s.deploy(&s.admin, "staging", &version).await;
        assert_eq!(status, 201, "{d}");
        let t1 = until_serving(&http, &url, &format!("release={version}\n")).await;
        totals.push(t1 - t0);
        s.wait_for(d["id"].as_i64().unwrap(), &["success"]).await;
    }
    let (total, app) = (median(totals), median(apps));
    let overhead = total.saturating_sub(app);
    println!(
        "deploy request → 100% traffic on the new release, median of {RUNS}: {}",
        ms(total)
    );
    println!(
        "demo app's own start-to-healthy, median of {RUNS}:              {}",
        ms(app)
    );
    println!(
        "control-plane overhead: {} (target < 50 ms: {})",
        ms(overhead),
        if overhead < Duration::from_millis(50) {
            "met"
        } else {
            "NOT met"
        }
    );
    s.stop().await;
}

async fn zero_downtime() {
    let s = TestServer::start(ENV).await;
    s.deploy_and_wait("staging", "v0", "success").await;
    let url = format!("http://{}/", s.listener("staging").await);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for _ in 0..LOAD_CLIENTS {
        let (url, stop, ok, failed) = (url.clone(), stop.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(r) => {
                        eprintln!("failed request: HTTP {}", r.status());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("failed request: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    let started = Instant::now();
    for i in 1..=DEPLOYS {
        s.deploy_and_wait("staging", &format!("v{i}"), "success")
            .await;
    }
    for _ in 0..ROLLBACKS {
        let d = s.rollback("staging", None).await;
        s.ends(&d, "success").await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!(
        "{DEPLOYS} blue-green deployments + {ROLLBACKS} rollbacks in {:.1} s under load ({LOAD_CLIENTS} clients): {} requests, {failed} failed (target 0: {})",
        started.elapsed().as_secs_f64(),
        ok + failed,
        if failed == 0 { "met" } else { "NOT met" }
    );
    s.stop().await;
}

fn main() {
    // `cargo bench` passes --bench; any filter argument is ignored: both always run.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        overhead().await;
        zero_downtime().await;
    });
}
