//! The life of a deployment through the API, on the embedded default: real SQLite, real
//! app processes, real HTTP through the environments' routers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use serde_json::json;
use util::TestServer;

const STAGING_AND_PRODUCTION: &str = r#"    staging:
      listen: 127.0.0.1:0
      strategy: blue-green
      variables: { DATABASE_URL: "sqlite://staging.db" }
      require_config: [DATABASE_URL]
    production:
      listen: 127.0.0.1:0
      requires: [staging]
      strategy: blue-green
      protection:
        reviewers: [alice]
        required_approvals: 1
        prevent_self_review: true
        branches: [main, "release/*"]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_goes_through_staging_and_an_approval_into_production() {
    let s = TestServer::start(STAGING_AND_PRODUCTION).await;
    let alice = s.user("alice", "approver").await;
    let (code, body) = s.through_router("staging").await;
    assert_eq!(
        (code, body.as_str()),
        (503, "no release takes traffic\n"),
        "before the first release"
    );

    // Production requires staging first.
    let (status, err) = s.deploy(&s.admin, "production", "v1").await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "requires_not_met");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("staging"),
        "{err}"
    );

    let d = s.deploy_and_wait("staging", "v1", "success").await;
    assert_eq!(d["kind"], "deploy");
    assert_eq!(TestServer::split(&d), [("v1".to_string(), 100.0)]);
    assert_eq!(
        TestServer::statuses(&d),
        ["queued", "in_progress", "success"]
    );
    let (code, body) = s.through_router("staging").await;
    assert_eq!(code, 200);
    assert!(body.contains("v1"), "{body}");

    // Production waits for alice; the creator (admin) may not approve it himself.
    let (status, d) = s.deploy(&s.admin, "production", "v1").await;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_i64().unwrap();
    let d = s.wait_for(id, &["waiting"]).await;
    assert!(TestServer::last_reason(&d).contains("approval"), "{d:#}");
    let (status, err) = s
        .call(
            "POST",
            &format!("/api/v1/deployments/{id}/approve"),
            &s.admin,
            None,
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "self_review");
    let (status, _) = s
        .call(
            "POST",
            &format!("/api/v1/deployments/{id}/approve"),
            &alice,
            Some(json!({"comment": "ship it"})),
        )
        .await;
    assert_eq!(status, 200);
    let d = s.wait_for(id, &["success", "failure", "error"]).await;
    assert_eq!(d["status"], "success", "{d:#}");
    assert_eq!(d["approvals"][0]["user"], "alice");
    assert_eq!(d["approvals"][0]["comment"], "ship it");
    let (_, body) = s.through_router("production").await;
    assert!(body.contains("v1"), "{body}");

    // v2 replaces v1 in staging; v1's deployment becomes inactive.
    let v1_id = s.deploy_and_wait("staging", "v2", "success").await;
    let (_, body) = s.through_router("staging").await;
    assert!(body.contains("v2"), "{body}");
    let (_, history) = s
        .call(
            "GET",
            "/api/v1/deployments?app=web&environment=staging",
            &s.admin,
            None,
        )
        .await;
    let list = history["deployments"].as_array().unwrap();
    assert_eq!(list[0]["version"], "v2");
    assert_eq!(list[0]["id"], v1_id["id"]);
    assert_eq!(list[1]["version"], "v1");
    assert_eq!(list[1]["status"], "inactive");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_never_becomes_healthy_fails_and_traffic_stays() {
    let s = TestServer::start(STAGING_AND_PRODUCTION).await;
    s.deploy_and_wait("staging", "v1", "success").await;
    s.faulty("v2", "--fail-health");
    let d = s.deploy_and_wait("staging", "v2", "failure").await;
    let reason = TestServer::last_reason(&d);
    assert!(
        reason.contains("never became healthy") && reason.contains("503"),
        "{reason}"
    );
    let (code, body) = s.through_router("staging").await;
    assert_eq!(code, 200);
    assert!(body.contains("v1"), "traffic must stay on v1: {body}");
    let (_, env) = s
        .call(
            "GET",
            "/api/v1/apps/web/environments/staging",
            &s.admin,
            None,
        )
        .await;
    assert_eq!(env["current"]["version"], "v1");
    assert!(
        env["kept"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["version"] != "v2"),
        "failed instance must be stopped: {env}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_smoke_test_returns_traffic_to_the_previous_release() {
    let s = TestServer::start(STAGING_AND_PRODUCTION).await;
    s.deploy_and_wait("staging", "v1", "success").await;
    // Healthy, but every `GET /` answers 500: the smoke test through the router fails.
    s.faulty("v2", "--error-rate 1.0");
    let d = s.deploy_and_wait("staging", "v2", "failure").await;
    assert!(
        TestServer::last_reason(&d).contains("smoke test failed"),
        "{d:#}"
    );
    let (code, body) = s.through_router("staging").await;
    assert_eq!((code, body.contains("v1")), (200, true), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_rollback_restores_the_previous_release() {
    let s = TestServer::start(STAGING_AND_PRODUCTION).await;
    s.deploy_and_wait("staging", "v1", "success").await;
    let v2 = s.deploy_and_wait("staging", "v2", "success").await;
    let d = s.rollback("staging", None).await;
    assert_eq!(d["kind"], "rollback");
    assert_eq!(d["version"], "v1");
    assert_eq!(d["rolled_back_from"], "v2");
    s.ends(&d, "success").await;
    let (_, body) = s.through_router("staging").await;
    assert!(body.contains("v1"), "{body}");
    let (_, v2) = s
        .call(
            "GET",
            &format!("/api/v1/deployments/{}", v2["id"]),
            &s.admin,
            None,
        )
        .await;
    assert_eq!(v2["status"], "rolled_back", "{v2:#}");

    // Rolling back to a release that never ran there is refused.
    let (status, err) = s
        .call(
            "POST",
            "/api/v1/apps/web/environments/staging/rollback",
            &s.admin,
            Some(json!({"to_version": "v9"})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    // And to a named one that did run works.
    let d = s.rollback("staging", Some("v2")).await;
    s.ends(&d, "success").await;
    let (_, body) = s.through_router("staging").await;
    assert!(body.contains("v2"), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_change_is_published_on_the_event_stream() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let s = TestServer::start(STAGING_AND_PRODUCTION).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        s.admin
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut lines = BufReader::new(stream).lines();
    // The response head, then the stream is open before the deployment is made.
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.trim().is_empty() {
            break;
        }
    }
    s.deploy_and_wait("staging", "v1", "success").await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !seen.contains(&"success".to_string()) {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("the success event arrives")
            .unwrap()
            .unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            let event: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(
                (event["app"].as_str(), event["environment"].as_str()),
                (Some("web"), Some("staging"))
            );
            seen.push(event["status"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, ["in_progress", "success"]);
    // A client following the events does not keep the server from stopping.
    tokio::time::timeout(std::time::Duration::from_secs(30), s.stop())
        .await
        .expect("the server stops while a client follows its events");
}
