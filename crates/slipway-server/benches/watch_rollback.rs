//! The post-deploy watch's rollback, on the embedded default (SQLite, process driver,
//! in-process router), printed as figures with their targets:
//!
//! 1. From the first failing response after success to traffic back on the previous
//!    release: a release succeeds, then turns bad (`--error-rate 1 --error-after-ms`);
//!    the watch judges every 250 ms. From the first 500 the load sees from it to the first
//!    answer from the previous release after that, both seen by the load itself. Median
//!    of 10 runs. Target < 1 s; the ratio to the target and to the interval is printed.
//! 2. Meanwhile, failed requests of users on other releases — the previous release once
//!    it is back, and a second app of the same environment that never changes. Target 0.
//!
//! Run: `cargo bench -p slipway-server --bench watch_rollback` (or
//! `bench/watch-rollback.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

#[path = "../tests/util/mod.rs"]
mod util;

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{CLIENTS, Load, Seen, USERS, median, ms, verdict};
use util::{TestServer, demo_app_yaml, server_yaml};

const ENV: &str = "production";
const RUNS: usize = 10;
const INTERVAL: Duration = Duration::from_millis(250);
const STABLE: &str = "v1";
/// The bad releases serve well this long after they start, then fail every request.
const TURNS_BAD: &str = "--error-rate 1 --error-after-ms 1500";

/// `web` is deployed and watched; `api`, in the same environment, runs `v1` throughout.
fn config(dir: &std::path::Path) -> String {
    let apps = demo_app_yaml("web", dir, "") + &demo_app_yaml("api", dir, "");
    let envs = format!(
        "  {ENV}:
    listen: 127.0.0.1:0
    strategy: {{ blue-green: {{ scale_down_delay: 30m }} }}
    keep_releases: 20
    watch: {{ for: 30m, interval: {}ms, max_error_rate: 5%, min_requests: 10 }}",
        INTERVAL.as_millis()
    );
    server_yaml(dir, &apps, &envs)
}

async fn deploy(s: &TestServer, app: &str, version: &str, expect: &str) -> i64 {
    let (status, d) = s
        .call(
            "POST",
            "/api/v1/deployments",
            &s.admin,
            Some(serde_json::json!({"app": app, "environment": ENV, "version": version})),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    s.ends(&d, expect).await["id"].as_i64().unwrap()
}

type Records = Arc<Mutex<Vec<(Instant, Seen)>>>;

fn recorder(records: &Records) -> common::Sink {
    let sink = records.clone();
    Arc::new(move |_, at, seen| sink.lock().unwrap().push((at, seen)))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let s = TestServer::start_yaml(config).await;
    deploy(&s, "api", STABLE, "success").await;
    deploy(&s, "web", STABLE, "success").await;
    let addr = s.listener(ENV).await;
    let other: Records = Arc::default();
    let other_load = Load::start(addr, "api", recorder(&other), Duration::from_secs(600));

    let (mut times, mut back_failed, mut back_requests) = (Vec::new(), 0usize, 0usize);
    for run in 1..=RUNS {
        let bad = format!("bad{run}");
        s.faulty(&bad, TURNS_BAD);
        let web: Records = Arc::default();
        let load = Load::start(addr, "web", recorder(&web), Duration::from_secs(60));
        let id = deploy(&s, "web", &bad, "success").await;
        let d = s.wait_for(id, &["rolled_back"]).await;
        load.until_more(200).await;
        load.finish().await;
        let reason = TestServer::last_reason(&d);
        assert!(
            reason.contains("post-deploy watch failed"),
            "run {run}: {bad} ended: {reason}"
        );

        let web = std::mem::take(&mut *web.lock().unwrap());
        let first_bad = web
            .iter()
            .position(|(_, seen)| matches!(seen, Seen::AppError(r) if *r == bad))
            .unwrap_or_else(|| panic!("run {run}: no 500 from {bad}"));
        let back = web[first_bad..]
            .iter()
            .find(|(_, seen)| seen.release() == Some(STABLE))
            .map(|(at, _)| *at)
            .unwrap_or_else(|| panic!("run {run}: {STABLE} never answered again"));
        let took = back.saturating_duration_since(web[first_bad].0);
        // Users on the previous release once it is back: none of their requests may fail.
        let after: Vec<&Seen> = web[first_bad..]
            .iter()
            .filter(|(at, _)| *at >= back)
            .map(|(_, seen)| seen)
            .filter(|seen| !matches!(seen, Seen::AppError(r) if *r == bad))
            .collect();
        let failed: Vec<&&Seen> = after.iter().filter(|s| !matches!(s, Seen::Ok(_))).collect();
        for f in failed.iter().take(5) {
            eprintln!("run {run}: a request after the rollback failed: {f}");
        }
        back_requests += after.len();
        back_failed += failed.len();
        println!(
            "  run {run:2}: first 500 from {bad} → first answer from {STABLE}: {:>8}",
            ms(took)
        );
        times.push(took);
    }
    other_load.finish().await;
    let other = std::mem::take(&mut *other.lock().unwrap());
    let other_failed: Vec<&Seen> = other
        .iter()
        .map(|(_, seen)| seen)
        .filter(|seen| !matches!(seen, Seen::Ok(_)))
        .collect();
    for f in other_failed.iter().take(5) {
        eprintln!("a request to the other app failed: {f}");
    }

    let median = median(times);
    let target = Duration::from_secs(1);
    println!(
        "watch rollback: releases that turn bad after success (every request 500), watch \
         interval {} (max_error_rate 5%, min_requests 10); load: {CLIENTS} clients, {USERS} \
         sticky users per app",
        ms(INTERVAL)
    );
    println!(
        "  first failing response → traffic back on the previous release, median of {RUNS}: {} \
         (target < 1 s: {}; {:.2}× the target, {:.1}× the interval)",
        ms(median),
        verdict(median < target),
        median.as_secs_f64() / target.as_secs_f64(),
        median.as_secs_f64() / INTERVAL.as_secs_f64()
    );
    let failed = back_failed + other_failed.len();
    println!(
        "  failed requests of users on other releases: {failed} ({back_failed} of {back_requests} \
         on {STABLE} once back, {} of {} on the other app) (target 0: {})",
        other_failed.len(),
        other.len(),
        verdict(failed == 0)
    );
    s.stop().await;
}
