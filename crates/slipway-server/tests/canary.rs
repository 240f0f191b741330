//! Canary rollouts under real traffic through the router: a good release walks its steps,
//! a bad one is reverted by the analysis, and a manual pause waits for `promote`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use util::load::Load;
use util::{TestServer, poll_until};

fn canary_env(steps: &str) -> String {
    format!(
        r#"    production:
      listen: 127.0.0.1:0
      strategy:
        canary:
          steps: {steps}
          analysis: {{ interval: 100ms, max_error_rate: 5%, max_p99_latency: 200ms, min_requests: 10, failure_limit: 1, progress_deadline: 30s }}"#
    )
}

const STEPS: &str = "[{ weight: 10 }, { pause: 400ms }, { weight: 50 }, { pause: 400ms }]";

async fn deploy(s: &TestServer, version: &str) -> i64 {
    let (status, d) = s.deploy(&s.admin, "production", version).await;
    assert_eq!(status, 201, "{d}");
    d["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_walks_its_steps_to_full_traffic() {
    let s = TestServer::start(&canary_env(STEPS)).await;
    // The first release has nothing to compare with: straight to 100%.
    let first = s.deploy_and_wait("production", "v1", "success").await;
    assert!(
        !s.log_lines(first["id"].as_i64().unwrap())
            .await
            .iter()
            .any(|l| l.starts_with("canary"))
    );

    let load = Load::start(s.listener("production").await);
    let id = deploy(&s, "v2").await;
    let d = s.wait_for(id, &["success", "failure", "error"]).await;
    let seen = load.finish().await;
    assert_eq!(d["status"], "success", "{d:#}");
    assert_eq!(TestServer::split(&d), [("v2".to_string(), 100.0)]);
    let lines = s.log_lines(id).await;
    for step in [
        "canary: 10% of traffic to v2",
        "canary: 50% of traffic to v2",
        "canary: 100% of traffic to v2",
    ] {
        assert!(
            lines.iter().any(|l| l == step),
            "missing {step:?} in {lines:#?}"
        );
    }
    assert!(lines.iter().any(|l| l.starts_with("pass:")), "{lines:#?}");
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        seen.len()
    );
    assert!(seen.iter().any(|(_, r)| r == "v2") && seen.iter().any(|(_, r)| r == "v1"));

    // A rollback restores a known-good release at once, without walking the steps.
    let rb = s.rollback("production", None).await;
    let rb = s.ends(&rb, "success").await;
    assert_eq!(TestServer::split(&rb), [("v1".to_string(), 100.0)]);
    let lines = s.log_lines(rb["id"].as_i64().unwrap()).await;
    assert!(!lines.iter().any(|l| l.starts_with("canary")), "{lines:#?}");
    s.stop().await;
}

/// v1 as the stable release, then v2 with the demo app's fault `flags` as a canary under
/// load. Returns the server, v2's deployment once it ended, and what the load saw.
async fn faulty_canary(envs: &str, flags: &str) -> (TestServer, Value, Vec<(u16, String)>) {
    let s = TestServer::start(envs).await;
    s.deploy_and_wait("production", "v1", "success").await;
    s.faulty("v2", flags);
    let load = Load::start(s.listener("production").await);
    let id = deploy(&s, "v2").await;
    let d = s.wait_for(id, &["success", "failure", "error"]).await;
    let seen = load.finish().await;
    (s, d, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_returning_errors_is_rolled_back_and_stable_users_never_notice() {
    let (s, d, seen) = faulty_canary(&canary_env(STEPS), "--error-rate 0.5").await;
    assert_eq!(d["status"], "failure", "{d:#}");
    let reason = TestServer::last_reason(&d);
    assert!(
        reason.starts_with("canary analysis failed: error rate"),
        "{reason}"
    );
    assert_eq!(
        TestServer::split(&s.env("production").await),
        [("v1".to_string(), 100.0)]
    );
    assert_eq!(
        d["traffic"],
        serde_json::json!([]),
        "a failed deployment carries no traffic"
    );
    let stable_failures = seen
        .iter()
        .filter(|(status, r)| r == "v1" && *status != 200)
        .count();
    assert_eq!(stable_failures, 0);
    assert!(
        seen.iter().all(|(status, _)| *status != 0),
        "no connection errors"
    );
    // After the abort every user, the canary's too, lands on v1.
    let http = reqwest::Client::new();
    let url = format!("http://{}/", s.listener("production").await);
    for user in 0..50 {
        let resp = http
            .get(&url)
            .header("X-Slipway-Key", format!("user-{user}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap().trim(), "ok release=v1");
    }
    let env = s.env("production").await;
    assert_eq!(env["current"]["version"], "v1");
    // The router's counters for the stable release: many requests, no errors.
    assert!(
        env["traffic"][0]["requests"].as_u64().unwrap() > 10,
        "{env:#}"
    );
    assert_eq!(env["traffic"][0]["errors"], 0, "{env:#}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_canary_is_rolled_back_on_latency() {
    let (s, d, _) = faulty_canary(&canary_env(STEPS), "--latency-ms 400").await;
    assert_eq!(d["status"], "failure", "{d:#}");
    assert!(TestServer::last_reason(&d).contains("p99 latency"), "{d:#}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_pause_holds_the_split_until_promoted() {
    let s = TestServer::start(&canary_env("[{ weight: 20 }, { pause: manual }]")).await;
    s.deploy_and_wait("production", "v1", "success").await;
    let load = Load::start(s.listener("production").await);
    let id = deploy(&s, "v2").await;
    let paused: Value = poll_until("the canary to pause at 20%", || async {
        let env = s.env("production").await;
        let at_20 = TestServer::split(&env) == [("v1".to_string(), 80.0), ("v2".to_string(), 20.0)];
        // The verdict of the 20% step comes a moment before the pause begins.
        let paused = env["in_progress"]["paused"]["kind"] == "manual";
        (at_20 && paused && env["in_progress"]["analysis"]["text"].is_string()).then_some(env)
    })
    .await;
    assert_eq!(paused["in_progress"]["id"], id);
    assert_eq!(paused["in_progress"]["paused"]["kind"], "manual");
    let (status, _) = s
        .call(
            "POST",
            &format!("/api/v1/deployments/{id}/promote"),
            &s.admin,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let d = s.wait_for(id, &["success", "failure", "error"]).await;
    load.finish().await;
    assert_eq!(d["status"], "success", "{d:#}");
    // Nothing is paused any more.
    let (status, err) = s
        .call(
            "POST",
            &format!("/api/v1/deployments/{id}/promote"),
            &s.admin,
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("not_paused"))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_steps_without_pauses_are_still_judged() {
    let envs = r#"    production:
      listen: 127.0.0.1:0
      strategy:
        canary:
          steps: [{ weight: 10 }, { weight: 50 }]
          analysis: { interval: 200ms, max_error_rate: 5%, min_requests: 3, failure_limit: 1 }"#;
    let (s, d, _) = faulty_canary(envs, "--error-rate 1.0").await;
    let id = d["id"].as_i64().unwrap();
    assert_eq!(d["status"], "failure", "{d:#}");
    assert!(
        TestServer::last_reason(&d).starts_with("canary analysis failed: error rate"),
        "{d:#}"
    );
    let lines = s.log_lines(id).await;
    assert!(
        !lines.iter().any(|l| l == "canary: 100% of traffic to v2"),
        "never promoted: {lines:#?}"
    );
    s.stop().await;
}

/// Issue 14: malformed chunked bodies sent to the canary on purpose are the client's
/// fault (400), never the release's: the healthy canary still passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_forced_to_the_canary_do_not_fail_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let s = TestServer::start(&canary_env(STEPS)).await;
    s.deploy_and_wait("production", "v1", "success").await;
    let addr = s.listener("production").await;
    let load = Load::start(addr);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let attacker = tokio::spawn(async move {
        let bodies: [&[u8]; 4] = [
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"-1\r\nx\r\n0\r\n\r\n",
            b"5\nhello\n0\n\n",
            b"10000000000000000\r\nhello\r\n0\r\n\r\n",
        ];
        let mut answers = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !flag.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
            let body = bodies[answers.len() % bodies.len()];
            let mut request = b"POST / HTTP/1.1\r\nHost: web\r\nX-Slipway-Release: canary\r\n\
Transfer-Encoding: chunked\r\n\r\n"
                .to_vec();
            request.extend_from_slice(body);
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(&request).await.unwrap();
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
            answers.push(String::from_utf8_lossy(&answer).into_owned());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers
    });
    let id = deploy(&s, "v2").await;
    let d = s.wait_for(id, &["success", "failure", "error"]).await;
    stop.store(true, Ordering::Relaxed);
    let answers = attacker.await.unwrap();
    let seen = load.finish().await;
    assert_eq!(d["status"], "success", "{d:#}");
    assert!(answers.len() >= 10, "only {} attacks sent", answers.len());
    let not_400: Vec<_> = answers
        .iter()
        .filter(|a| !a.starts_with("HTTP/1.1 400"))
        .collect();
    assert!(not_400.is_empty(), "{not_400:#?}");
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(failed.is_empty(), "{failed:?}");
    s.stop().await;
}
