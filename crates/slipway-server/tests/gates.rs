//! Every gate's refusal, the concurrency rules, and bad input — each a clear JSON error
//! with the right status that leaves stored state as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use serde_json::{Value, json};
use util::TestServer;

/// A weekday other than today's (UTC), so a window on it is closed now.
fn closed_day() -> &'static str {
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // 1970-01-01 was a Thursday (index 3).
    let today = ((secs / 86_400 + 3) % 7) as usize;
    days[(today + 3) % 7]
}

fn envs() -> String {
    format!(
        r#"    staging:
      listen: 127.0.0.1:0
      require_config: [DATABASE_URL, API_KEY]
    qa:
      listen: 127.0.0.1:0
      protection:
        branches: [main, "release/*"]
    frozen:
      listen: 127.0.0.1:0
      protection:
        windows: ["{day} 09:00-10:00 UTC"]
    timed:
      listen: 127.0.0.1:0
      protection:
        wait_timer: 1s
    production:
      listen: 127.0.0.1:0
      protection:
        reviewers: [alice, carol]
        required_approvals: 1
        prevent_self_review: true"#,
        day = closed_day()
    )
}

const CAROL: &str = "  carol: { role: approver }\n";

async fn post(s: &TestServer, env: &str, version: &str, git_ref: &str) -> (u16, Value) {
    s.call(
        "POST",
        "/api/v1/deployments",
        &s.admin,
        Some(json!({"app": "web", "environment": env, "version": version, "ref": git_ref})),
    )
    .await
}

async fn count(s: &TestServer) -> usize {
    let (_, list) = s
        .call("GET", "/api/v1/deployments?limit=1000", &s.admin, None)
        .await;
    list["deployments"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_gates_refuse_with_422_and_record_the_refusal() {
    let s = TestServer::start_with_users(&envs(), CAROL).await;

    let (status, err) = post(&s, "staging", "v1", "main").await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "missing_config");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("DATABASE_URL") && message.contains("API_KEY"),
        "lists every missing key: {message}"
    );
    let id = err["error"]["details"]["deployment_id"].as_i64().unwrap();
    let (_, d) = s
        .call("GET", &format!("/api/v1/deployments/{id}"), &s.admin, None)
        .await;
    assert_eq!(d["status"], "failure");
    assert!(
        TestServer::last_reason(&d).contains("missing required config"),
        "{d:#}"
    );

    let (status, err) = post(&s, "qa", "v1", "feature/x").await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "branch_not_allowed");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("feature/x")
    );

    let (status, err) = post(&s, "qa", "latest", "main").await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "mutable_tag");

    let (status, d) = post(&s, "qa", "v1", "release/1.4").await;
    assert_eq!(status, 201, "a matching glob passes: {d}");
    s.wait_for(d["id"].as_i64().unwrap(), &["success"]).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_window_holds_a_deployment_until_an_admin_forces_it() {
    let s = TestServer::start_with_users(&envs(), CAROL).await;
    let (_, d) = post(&s, "frozen", "v1", "main").await;
    let d = s.wait_for(d["id"].as_i64().unwrap(), &["waiting"]).await;
    assert!(
        TestServer::last_reason(&d).starts_with("window: outside deployment windows"),
        "{d:#}"
    );

    let bob = s.user("bob", "deployer").await;
    let force = json!({"app": "web", "environment": "frozen", "version": "v2", "ref": "main", "force": true, "reason": "hotfix"});
    let (status, err) = s
        .call("POST", "/api/v1/deployments", &bob, Some(force.clone()))
        .await;
    assert_eq!(status, 403, "only an admin may force: {err}");
    let (status, err) = s
        .call(
            "POST",
            "/api/v1/deployments",
            &s.admin,
            Some(json!({"app": "web", "environment": "frozen", "version": "v2", "force": true})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("reason_required")),
        "{err}"
    );

    let (status, forced) = s
        .call("POST", "/api/v1/deployments", &s.admin, Some(force))
        .await;
    assert_eq!(status, 201, "{forced}");
    assert_eq!(forced["force"], json!({"by": "admin", "reason": "hotfix"}));
    let forced = s
        .wait_for(forced["id"].as_i64().unwrap(), &["success"])
        .await;
    assert_eq!(forced["version"], "v2");
    // The older waiting deployment was superseded by the forced one.
    let (_, old) = s
        .call(
            "GET",
            &format!("/api/v1/deployments/{}", d["id"]),
            &s.admin,
            None,
        )
        .await;
    assert_eq!(old["status"], "cancelled");
    assert_eq!(
        TestServer::last_reason(&old),
        format!("superseded by deployment {}", forced["id"])
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_rejection_and_superseding_in_a_protected_environment() {
    let s = TestServer::start_with_users(&envs(), CAROL).await;
    let alice = s.user("alice", "approver").await;
    let bob = s.user("bob", "deployer").await;

    let (_, first) = post(&s, "production", "v1", "main").await;
    let first_id = first["id"].as_i64().unwrap();
    s.wait_for(first_id, &["waiting"]).await;
    // A deployer cannot approve.
    let (status, _) = s
        .call(
            "POST",
            &format!("/api/v1/deployments/{first_id}/approve"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 403);

    // A newer one supersedes the waiting one.
    let (_, second) = post(&s, "production", "v2", "main").await;
    let second_id = second["id"].as_i64().unwrap();
    let first = s.wait_for(first_id, &["cancelled"]).await;
    assert_eq!(
        TestServer::last_reason(&first),
        format!("superseded by deployment {second_id}")
    );

    // Approving a finished deployment is a conflict, and changes nothing.
    let before = count(&s).await;
    let (status, err) = s
        .call(
            "POST",
            &format!("/api/v1/deployments/{first_id}/approve"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 409, "{err}");
    let (_, again) = s
        .call(
            "GET",
            &format!("/api/v1/deployments/{first_id}"),
            &s.admin,
            None,
        )
        .await;
    assert_eq!(again["approvals"], json!([]));
    assert_eq!(count(&s).await, before);

    // Alice rejects: the deployment ends rejected with her reason.
    let (status, _) = s
        .call(
            "POST",
            &format!("/api/v1/deployments/{second_id}/reject"),
            &alice,
            Some(json!({"comment": "not today"})),
        )
        .await;
    assert_eq!(status, 200);
    let second = s.wait_for(second_id, &["rejected"]).await;
    assert_eq!(
        TestServer::last_reason(&second),
        "rejected by alice: not today"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let s = TestServer::start_with_users(&envs(), CAROL).await;
    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        (
            "POST",
            "/api/v1/deployments",
            Some(json!({"app": "web", "environment": "qa"})),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/deployments",
            Some(json!({"app": "web", "environment": "qa", "version": 7})),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/deployments",
            Some(json!({"app": "wbe", "environment": "qa", "version": "v1"})),
            400,
            "unknown_app",
        ),
        (
            "POST",
            "/api/v1/deployments",
            Some(json!({"app": "web", "environment": "prod", "version": "v1"})),
            400,
            "unknown_environment",
        ),
        (
            "POST",
            "/api/v1/deployments",
            Some(json!({"app": "web", "environment": "qa", "version": "v 1"})),
            400,
            "invalid_version",
        ),
        (
            "POST",
            "/api/v1/deployments",
            Some(
                json!({"app": "web", "environment": "qa", "version": "v1", "committed_at": "yesterday"}),
            ),
            400,
            "invalid_committed_at",
        ),
        ("GET", "/api/v1/deployments/abc", None, 400, "invalid_id"),
        ("GET", "/api/v1/deployments/999", None, 404, "not_found"),
        (
            "POST",
            "/api/v1/deployments/999/approve",
            None,
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/v1/deployments?status=done",
            None,
            400,
            "invalid_status",
        ),
        (
            "GET",
            "/api/v1/deployments?limit=0",
            None,
            400,
            "invalid_limit",
        ),
        (
            "POST",
            "/api/v1/users",
            Some(json!({"name": "dave", "role": "god"})),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/apps/web/environments/qa/rollback",
            None,
            409,
            "nothing_to_roll_back",
        ),
        ("GET", "/api/v1/nope", None, 404, "not_found"),
    ];
    for (method, path, body, want, code) in cases {
        let (status, err) = s.call(method, path, &s.admin, body.clone()).await;
        assert_eq!(status, want, "{method} {path} {body:?}: {err}");
        assert_eq!(
            err["error"]["code"], code,
            "{method} {path} {body:?}: {err}"
        );
        assert!(!err["error"]["message"].as_str().unwrap().is_empty());
    }
    let (_, err) = s
        .call(
            "POST",
            "/api/v1/deployments",
            &s.admin,
            Some(json!({"app": "wbe", "environment": "prodution", "version": "v1"})),
        )
        .await;
    assert_eq!(
        err["error"]["message"],
        "unknown app `wbe`; did you mean `web`?"
    );
    let (_, err) = s
        .call(
            "POST",
            "/api/v1/deployments",
            &s.admin,
            Some(json!({"app": "web", "environment": "zzz", "version": "v1"})),
        )
        .await;
    assert_eq!(
        err["error"]["message"],
        "unknown environment `zzz`; known: frozen, production, qa, staging, timed"
    );
    let (status, err) = s
        .call("GET", "/api/v1/deployments", "slw_not-a-token", None)
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(count(&s).await, 0, "no bad request stored anything");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_metrics_and_openapi_are_served() {
    let s = TestServer::start_with_users(&envs(), CAROL).await;
    s.deploy_and_wait("qa", "v1", "success").await;
    let http = reqwest::Client::new();
    let health = http.get(format!("{}/health", s.base)).send().await.unwrap();
    assert_eq!(health.headers()["content-type"], "application/health+json");
    let ready: Value = http
        .get(format!("{}/ready", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "pass");
    let metrics = http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("slipway_deployments{status=\"success\"} 1"),
        "{metrics}"
    );
    // The smoke test's request went through the router and was counted for v1.
    assert!(
        metrics.contains(
            "slipway_router_requests_total{app=\"web\",environment=\"qa\",release=\"v1\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("slipway_router_request_duration_seconds_bucket{app=\"web\",environment=\"qa\",release=\"v1\""), "{metrics}");
    let openapi: Value = http
        .get(format!("{}/api/v1/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        openapi["paths"]["/api/v1/deployments"]["post"].is_object(),
        "{openapi}"
    );
    assert!(openapi["components"]["schemas"]["DeploymentView"].is_object());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_timer_holds_a_deployment_then_lets_it_start_by_itself() {
    let s = TestServer::start_with_users(&envs(), CAROL).await;
    let (status, d) = post(&s, "timed", "v1", "main").await;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_i64().unwrap();
    let waiting = s.wait_for(id, &["waiting", "success"]).await;
    let reason = TestServer::last_reason(&waiting);
    assert!(
        reason.starts_with("wait_timer: 1s left, until 20"),
        "{reason}"
    );
    let d = s.wait_for(id, &["success", "failure"]).await;
    assert_eq!(d["status"], "success", "{d:#}");
    assert_eq!(
        TestServer::statuses(&d),
        ["queued", "waiting", "in_progress", "success"]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_limit_who_may_deploy_approve_and_roll_back() {
    let s = TestServer::start_with_users(
        &envs(),
        "  victor: { role: viewer }\n  carol: { role: approver }\n",
    )
    .await;
    let victor = s.user("victor", "viewer").await;
    let (status, err) = s
        .call(
            "POST",
            "/api/v1/deployments",
            &victor,
            Some(json!({"app": "web", "environment": "qa", "version": "v1", "ref": "main"})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{err}"
    );
    let (status, _) = s
        .call(
            "POST",
            "/api/v1/apps/web/environments/qa/rollback",
            &victor,
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, list) = s.call("GET", "/api/v1/deployments", &victor, None).await;
    assert_eq!(status, 200, "a viewer may read: {list}");
    // A role that differs from the configuration's is refused when the token is made.
    let (status, err) = s
        .call(
            "POST",
            "/api/v1/users",
            &s.admin,
            Some(json!({"name": "alice", "role": "admin"})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("role_mismatch")),
        "{err}"
    );
    // Only an admin makes tokens.
    let (status, _) = s
        .call(
            "POST",
            "/api/v1/users",
            &victor,
            Some(json!({"name": "eve", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(count(&s).await, 0);
    s.stop().await;
}

/// Issue 13: what holds a waiting deployment is a typed field, not words in its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_names_what_holds_a_waiting_deployment() {
    let s = TestServer::start_with_users(&envs(), CAROL).await;
    let waiting_on = |d: &Value| d["waiting_on"].as_str().map(str::to_string);
    for (env, want) in [
        ("production", "approval"),
        ("frozen", "window"),
        ("timed", "wait_timer"),
    ] {
        let (status, d) = post(&s, env, "v1", "main").await;
        assert_eq!(status, 201, "{d}");
        let d = s.wait_for(d["id"].as_i64().unwrap(), &["waiting"]).await;
        // The wait timer may have run out by now; while it waits, it says so.
        if d["status"] == "waiting" {
            assert_eq!(waiting_on(&d).as_deref(), Some(want), "{env}: {d:#}");
        }
    }
    // A deployment behind another one's rollout waits on concurrency (the first one's app
    // takes its time to listen, so the rollout is still under way).
    s.faulty("v8", "--start-delay-ms 800");
    let (_, first) = post(&s, "qa", "v8", "main").await;
    let (_, second) = post(&s, "qa", "v9", "main").await;
    let second = s
        .wait_for(second["id"].as_i64().unwrap(), &["waiting"])
        .await;
    assert_eq!(
        waiting_on(&second).as_deref(),
        Some("concurrency"),
        "{second:#}"
    );
    // The environment's status shows it the same way; the one in progress waits on nothing.
    let env = s.env("qa").await;
    assert_eq!(env["waiting"][0]["waiting_on"], "concurrency", "{env:#}");
    let first = s.ends(&first, "success").await;
    assert!(first["waiting_on"].is_null(), "{first:#}");
    s.stop().await;
}
