//! Rolling updates: replicas replaced batch by batch within the surge and unavailability
//! budgets, each new instance healthy first; a failing replica returns to the old set.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use util::TestServer;

fn rolling_env(surge: u32, unavailable: u32) -> String {
    format!(
        "    staging:\n      listen: 127.0.0.1:0\n      strategy: {{ rolling: {{ replicas: 3, max_surge: {surge}, max_unavailable: {unavailable} }} }}\n"
    )
}

/// How many instances of `version` run in staging.
async fn running(s: &TestServer, version: &str) -> usize {
    let states = s.instance_states("staging", version).await;
    states.iter().filter(|state| *state == "running").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_replaces_every_replica_without_a_failed_request() {
    let s = TestServer::start(&rolling_env(1, 0)).await;
    s.deploy_and_wait("staging", "v1", "success").await;
    assert_eq!(running(&s, "v1").await, 3);

    let url = format!("http://{}/", s.listener("staging").await);
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, failed) = (stop.clone(), failed.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                n += 1;
                if !http
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            n
        })
    };
    let d = s.deploy_and_wait("staging", "v2", "success").await;
    stop.store(true, Ordering::Relaxed);
    let requests = load.await.unwrap();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "of {requests} requests");
    assert_eq!(TestServer::split(&d), [("v2".to_string(), 100.0)]);
    assert_eq!(running(&s, "v2").await, 3);
    assert_eq!(running(&s, "v1").await, 0, "every old replica was replaced");
    let lines = s.log_lines(d["id"].as_i64().unwrap()).await;
    assert!(
        lines
            .iter()
            .any(|l| l == "rolling: 1 of 3 on v2, 3 left on v1"),
        "surge first: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "rolling: 3 of 3 on v2, 0 left on v1"),
        "{lines:#?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_fails_its_health_check_returns_the_update_to_the_old_set() {
    let s = TestServer::start(&rolling_env(0, 1)).await;
    s.deploy_and_wait("staging", "v1", "success").await;
    s.faulty("v2", "--fail-health");
    // No surge: the first batch stops one v1 replica before its v2 replacement fails.
    let d = s.deploy_and_wait("staging", "v2", "failure").await;
    assert!(
        TestServer::last_reason(&d).contains("v2 never became healthy"),
        "{d:#}"
    );
    assert_eq!(
        TestServer::split(&s.env("staging").await),
        [("v1".to_string(), 100.0)]
    );
    assert_eq!(
        running(&s, "v1").await,
        3,
        "the old set is back at full strength"
    );
    assert_eq!(running(&s, "v2").await, 0);
    let (code, body) = s.through_router("staging").await;
    assert_eq!((code, body.trim()), (200, "ok release=v1"));
    s.stop().await;
}
