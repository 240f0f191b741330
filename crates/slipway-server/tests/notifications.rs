//! Notifications against a real server: a real pipeline run's start and end reach a
//! subscribed webhook, a rejection is told once, and the notification log is for
//! deployers and up.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::sync::{Arc, Mutex};

use axum::routing::post;
use serde_json::{Value, json};
use util::{TestServer, config_yaml, poll_until};

/// A webhook receiver on 127.0.0.1:0 that answers 200 and keeps every body it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn received(got: &Arc<Mutex<Vec<Value>>>, n: usize) -> Vec<Value> {
    poll_until(&format!("{n} notifications"), || async {
        let got = got.lock().unwrap().clone();
        (got.len() >= n).then_some(got)
    })
    .await
}

const PRODUCTION: &str = "    production:\n      listen: 127.0.0.1:0\n      strategy: recreate\n      protection: { reviewers: [alice], required_approvals: 1 }\n";

/// A pipeline whose one step exits with the dispatch's `exit` input.
const CHECK: &str = r#"pipelines:
  check:
    on: { dispatch: { inputs: { exit: { required: true } } } }
    jobs:
      check: { steps: [{ run: "exit ${{ inputs.exit }}" }] }
"#;

async fn server(events: &str, url: &str) -> TestServer {
    let notifications =
        format!("notifications:\n  - {{ url: '{url}', events: {events}, backoff: 10ms }}\n");
    TestServer::start_yaml(|dir| config_yaml(dir, PRODUCTION, "", "1s") + CHECK + &notifications)
        .await
}

/// Dispatches `check` with `exit` and waits for the run to end; returns its id.
async fn run_check(server: &TestServer, exit: u8) -> i64 {
    let body = json!({ "inputs": { "exit": exit.to_string() } });
    let (status, run) = server
        .call(
            "POST",
            "/api/v1/pipelines/check/runs",
            &server.admin,
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_i64().unwrap();
    poll_until(&format!("run {id} to end"), || async {
        let (_, run) = server
            .call("GET", &format!("/api/v1/runs/{id}"), &server.admin, None)
            .await;
        matches!(run["status"].as_str(), Some("success" | "failure")).then_some(())
    })
    .await;
    id
}

#[tokio::test]
async fn a_runs_start_and_end_reach_a_subscribed_target_and_a_rejection_is_told_once() {
    let (url, got) = receiver().await;
    let server = server("[run.started, run.failed, deployment.rejected]", &url).await;
    let passed = run_check(&server, 0).await;
    let failed = run_check(&server, 1).await;
    let bodies = received(&got, 3).await;
    let events: Vec<&str> = bodies
        .iter()
        .map(|b| b["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["run.started", "run.started", "run.failed"],
        "run.succeeded is not subscribed"
    );
    let started = &bodies[0]["run"];
    assert_eq!(started["id"], passed);
    assert_eq!(started["pipeline"], "check");
    assert_eq!(started["status"], "in_progress");
    assert_eq!(started["actor"], "admin");
    assert!(bodies[0].get("deployment").is_none());
    assert!(
        bodies[0]["at"].as_str().unwrap().ends_with('Z'),
        "{}",
        bodies[0]
    );
    assert_eq!(bodies[2]["run"]["id"], failed);
    assert_eq!(bodies[2]["run"]["status"], "failure");

    let (status, d) = server.deploy(&server.admin, "production", "v1").await;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_i64().unwrap();
    server.wait_for(id, &["waiting"]).await;
    let alice = server.user("alice", "approver").await;
    let (status, body) = server
        .call(
            "POST",
            &format!("/api/v1/deployments/{id}/reject"),
            &alice,
            Some(json!({ "comment": "not today" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let bodies = received(&got, 4).await;
    let rejected = &bodies[3];
    assert_eq!(rejected["event"], "deployment.rejected");
    assert_eq!(rejected["deployment"]["status"], "rejected");
    assert_eq!(rejected["deployment"]["approvals"][0]["decision"], "reject");
    assert_eq!(
        rejected["deployment"]["statuses"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["reason"],
        "rejected by alice: not today"
    );
    // Told once: the attempts hold exactly four deliveries. An attempt is recorded once
    // the receiver answered, so the last one may follow its body by a moment.
    let events: Vec<String> = poll_until("the fourth attempt to be recorded", || async {
        let (status, log) = server
            .call("GET", "/api/v1/notifications", &server.admin, None)
            .await;
        assert_eq!(status, 200, "{log}");
        let attempts = log["attempts"].as_array().cloned().unwrap_or_default();
        (attempts.len() >= 4).then(|| {
            attempts
                .iter()
                .rev()
                .map(|a| a["event"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
    })
    .await;
    assert_eq!(
        events,
        [
            "run.started",
            "run.started",
            "run.failed",
            "deployment.rejected"
        ]
    );
    assert_eq!(got.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn the_notification_log_is_for_deployers_and_checks_its_limit() {
    let (url, _got) = receiver().await;
    let server = server("['*']", &url).await;
    let viewer = server.user("vera", "viewer").await;
    let deployer = server.user("dan", "deployer").await;
    let (status, body) = server
        .call("GET", "/api/v1/notifications", &viewer, None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = server
        .call("GET", "/api/v1/notifications?limit=5", &deployer, None)
        .await;
    assert_eq!((status, body), (200, json!({ "attempts": [] })));
    for bad in ["0", "1001", "ten", "-1"] {
        let (status, body) = server
            .call(
                "GET",
                &format!("/api/v1/notifications?limit={bad}"),
                &deployer,
                None,
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_limit");
    }
    let (status, body) = server
        .call(
            "GET",
            "/api/v1/notifications?limit=1&limit=2",
            &deployer,
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .call("GET", "/api/v1/notifications", "nope", None)
        .await;
    assert_eq!(status, 401, "{body}");
    let (_, doc) = server
        .call("GET", "/api/v1/openapi.json", &server.admin, None)
        .await;
    assert!(doc["paths"]["/api/v1/notifications"]["get"].is_object());
    assert!(doc["components"]["schemas"]["WebhookBody"].is_object());
}
