//! Canary measurements on the embedded default (SQLite, process driver, in-process
//! router), printed as figures with their targets:
//!
//! 1. Detect-to-revert: a canary at 10% whose release answers half of `GET /` with 500,
//!    analysis every 250 ms. From the first 5xx the load sees from the canary to the API
//!    showing no weight on it (polled every 5 ms; the engine updates that split under the
//!    same lock as the router's configuration, so the poll sees the router's state).
//!    Median of 10 runs. Target < 1 s. Also: failed requests of users pinned to the
//!    stable release. Target 0.
//! 2. Zero downtime: under continuous load, 100 canary promotions and 100 aborts
//!    (alternating good releases and releases with 50% errors). Failed requests —
//!    connection errors and answers the router made itself — target 0. The faulty
//!    canaries' own 500s (body `error release=…`) are expected and counted apart.
//!
//! Run: `cargo bench -p slipway-server --bench canary` (or `bench/canary.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

#[path = "../tests/util/mod.rs"]
mod util;

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// At 10% about 10 of the `USERS` hash to the canary.
use common::{CLIENTS, Load, Seen, USERS, median, ms, verdict};
use util::TestServer;

const ENV: &str = "production";
const REVERT_RUNS: usize = 10;
/// Small enough that the load gives the 10% canary this many requests within a few ms.
const MIN_REQUESTS: u64 = 10;
const ROLLOUTS: usize = 100;
const POLL: Duration = Duration::from_millis(5);
/// Wall-time bound of the rollout loop of measurement 2, so the bench always ends.
const BUDGET: Duration = Duration::from_secs(720);
const FAULT: &str = "--error-rate 0.5";
const STABLE: &str = "v1";

fn canary_env(steps: &str, interval: &str) -> String {
    format!(
        r#"    {ENV}:
      listen: 127.0.0.1:0
      strategy:
        canary:
          steps: {steps}
          analysis: {{ interval: {interval}, max_error_rate: 5%, min_requests: {MIN_REQUESTS}, failure_limit: 1, progress_deadline: 30s }}"#
    )
}

async fn deploy(s: &TestServer, version: &str) -> i64 {
    let (status, d) = s.deploy(&s.admin, ENV, version).await;
    assert_eq!(status, 201, "{d}");
    d["id"].as_i64().unwrap()
}

async fn finished(s: &TestServer, id: i64) -> (String, String) {
    let d = s.wait_for(id, &["success", "failure", "error"]).await;
    (
        d["status"].as_str().unwrap_or_default().to_string(),
        TestServer::last_reason(&d),
    )
}

/// Polls the environment every `POLL` until the split, having put weight on `canary`,
/// puts none on it; returns when that answer arrived (an upper bound of the switch).
async fn until_reverted(s: &TestServer, canary: &str) -> Instant {
    let path = format!("/api/v1/apps/web/environments/{ENV}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut weighted = false;
    loop {
        let (_, env) = s.call("GET", &path, &s.admin, None).await;
        let weight = TestServer::split(&env)
            .iter()
            .find(|(v, _)| v == canary)
            .map_or(0.0, |(_, w)| *w);
        if weight > 0.0 {
            weighted = true;
        } else if weighted {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{canary} was never put on and off traffic: {env:#}"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn detect_to_revert() {
    let steps = "[{ weight: 10 }, { pause: 60s }]";
    let s = TestServer::start_full(&canary_env(steps, "250ms"), "", "1s").await;
    s.deploy_and_wait(ENV, STABLE, "success").await;
    let addr = s.listener(ENV).await;
    let (mut to_api, mut to_last) = (Vec::new(), Vec::new());
    let (mut pinned_requests, mut pinned_failed, mut requests) = (0usize, 0usize, 0u64);
    let mut load_time = Duration::ZERO;
    for run in 1..=REVERT_RUNS {
        let canary = format!("bad{run}");
        s.faulty(&canary, FAULT);
        let records: Arc<Mutex<Vec<(u64, Instant, Seen)>>> = Arc::default();
        let sink = records.clone();
        let load = Load::start(
            addr,
            "web",
            Arc::new(move |user, at, seen| sink.lock().unwrap().push((user, at, seen))),
            Duration::from_secs(60),
        );
        let load_start = Instant::now();
        load.until_more(200).await;
        let id = deploy(&s, &canary).await;
        let reverted = until_reverted(&s, &canary).await;
        let (status, reason) = finished(&s, id).await;
        assert!(
            status == "failure" && reason.starts_with("canary analysis failed"),
            "run {run}: {canary} ended {status}: {reason}"
        );
        // Stable users keep going after the revert: their requests then count too.
        load.until_more(200).await;
        load.finish().await;
        load_time += load_start.elapsed();

        let records = std::mem::take(&mut *records.lock().unwrap());
        requests += records.len() as u64;
        let first_error = records
            .iter()
            .filter(|(_, _, seen)| matches!(seen, Seen::AppError(r) if *r == canary))
            .map(|(_, at, _)| *at)
            .min()
            .unwrap_or_else(|| panic!("run {run}: no 5xx from {canary}"));
        let last_canary = records
            .iter()
            .filter(|(_, _, seen)| seen.release() == Some(canary.as_str()))
            .map(|(_, at, _)| *at)
            .max()
            .unwrap_or(first_error);
        let on_canary: HashSet<u64> = records
            .iter()
            .filter(|(_, _, seen)| seen.release() == Some(canary.as_str()))
            .map(|(user, _, _)| *user)
            .collect();
        let pinned: Vec<&Seen> = records
            .iter()
            .filter(|(user, _, _)| !on_canary.contains(user))
            .map(|(_, _, seen)| seen)
            .collect();
        let failed: Vec<&&Seen> = pinned
            .iter()
            .filter(|s| !matches!(s, Seen::Ok(_)))
            .collect();
        for f in failed.iter().take(5) {
            eprintln!("run {run}: a stable-pinned user's request failed: {f}");
        }
        pinned_requests += pinned.len();
        pinned_failed += failed.len();
        let api = reverted.saturating_duration_since(first_error);
        let last = last_canary.saturating_duration_since(first_error);
        println!(
            "  run {run:2}: first 5xx → API shows 0% on {canary}: {:>8}; → last response from {canary}: {:>8}; {} users on the canary",
            ms(api),
            ms(last),
            on_canary.len()
        );
        to_api.push(api);
        to_last.push(last);
    }
    let (api, last) = (median(to_api), median(to_last));
    println!(
        "detect-to-revert: canary at 10% answering 50% with 500, analysis every 250 ms \
         (max_error_rate 5%, min_requests {MIN_REQUESTS}, failure_limit 1); load: {CLIENTS} \
         clients, {USERS} sticky users, {:.0} req/s",
        requests as f64 / load_time.as_secs_f64()
    );
    println!(
        "  first 5xx → API shows no weight on the canary (polled every {} ms), median of {REVERT_RUNS}: {} (target < 1 s: {})",
        POLL.as_millis(),
        ms(api),
        verdict(api < Duration::from_secs(1))
    );
    println!(
        "  first 5xx → last response served by the canary, median of {REVERT_RUNS}: {}",
        ms(last)
    );
    println!(
        "  requests of users pinned to the stable release that failed: {pinned_failed} of {pinned_requests} (target 0: {})",
        verdict(pinned_failed == 0)
    );
    s.stop().await;
}

/// What the load saw during measurement 2.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    /// 500s of the deliberately faulty canaries: expected.
    faulty_app_errors: AtomicU64,
    /// 500s from a release that should have none: a failure.
    good_app_errors: AtomicU64,
    router_errors: AtomicU64,
    connection_errors: AtomicU64,
    examples: Mutex<Vec<String>>,
}

impl Tally {
    fn note(&self, seen: Seen) {
        let counter = match &seen {
            Seen::Ok(_) => &self.ok,
            Seen::AppError(r) if r.starts_with("bad") => &self.faulty_app_errors,
            Seen::AppError(_) => &self.good_app_errors,
            Seen::Router(..) => &self.router_errors,
            Seen::Connection(_) => &self.connection_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if !matches!(seen, Seen::Ok(_) | Seen::AppError(_)) {
            let mut examples = self.examples.lock().unwrap();
            if examples.len() < 20 {
                examples.push(seen.to_string());
            }
        }
    }
}

async fn zero_downtime() {
    let steps = "[{ weight: 10 }, { pause: 200ms }, { weight: 50 }, { pause: 200ms }]";
    let s = TestServer::start_full(&canary_env(steps, "50ms"), "", "1s").await;
    s.deploy_and_wait(ENV, STABLE, "success").await;
    let tally = Arc::new(Tally::default());
    let sink = tally.clone();
    let load = Load::start(
        s.listener(ENV).await,
        "web",
        Arc::new(move |_, _, seen| sink.note(seen)),
        BUDGET + Duration::from_secs(120),
    );
    let started = Instant::now();
    let (mut promotions, mut aborts, mut surprises) = (0, 0, Vec::new());
    for i in 1..=ROLLOUTS {
        if started.elapsed() > BUDGET {
            eprintln!(
                "time budget of {BUDGET:?} spent after {} rollouts",
                2 * (i - 1)
            );
            break;
        }
        let good = format!("good{i}");
        match finished(&s, deploy(&s, &good).await).await {
            (status, _) if status == "success" => promotions += 1,
            (status, reason) => surprises.push(format!("{good} ended {status}: {reason}")),
        }
        let bad = format!("bad{i}");
        s.faulty(&bad, FAULT);
        match finished(&s, deploy(&s, &bad).await).await {
            (status, reason)
                if status == "failure" && reason.starts_with("canary analysis failed") =>
            {
                aborts += 1
            }
            (status, reason) => surprises.push(format!("{bad} ended {status}: {reason}")),
        }
    }
    let elapsed = started.elapsed();
    load.finish().await;
    for line in tally.examples.lock().unwrap().iter() {
        eprintln!("failed request: {line}");
    }
    for line in &surprises {
        eprintln!("unexpected outcome: {line}");
    }
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (router, connection, good_app) = (
        get(&tally.router_errors),
        get(&tally.connection_errors),
        get(&tally.good_app_errors),
    );
    let total = get(&tally.ok) + get(&tally.faulty_app_errors) + router + connection + good_app;
    let failed = router + connection + good_app;
    println!(
        "zero downtime: {promotions} canary promotions + {aborts} aborts (of {ROLLOUTS} + {ROLLOUTS}; \
         {} other outcomes) in {:.1} s under load ({CLIENTS} clients, {USERS} sticky users)",
        surprises.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "  {total} requests: {router} router-made errors, {connection} connection errors, \
         {good_app} 500s from good releases, {} 500s from the faulty canaries (expected)",
        get(&tally.faulty_app_errors)
    );
    println!(
        "  failed requests: {failed} (target 0: {})",
        verdict(failed == 0 && surprises.is_empty())
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
        detect_to_revert().await;
        zero_downtime().await;
    });
}
