//! The post-deploy watch against a real server and real traffic: a release that turns
//! bad after it succeeded (`--error-after-ms`) is rolled back within one interval of the
//! failed verdict; a quiet release stays and its watch ends inconclusive; a newer rollout
//! ends the watch of the release before; a restart mid-watch resumes it with what is
//! left.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::time::{Duration, SystemTime};

use serde_json::Value;
use util::load::Load;
use util::{TestServer, demo_app_yaml, poll_until, server_yaml};

/// A server whose `staging` environment keeps the old set for 5m (an instant rollback)
/// and watches every success as `watch` (YAML of its keys) says.
async fn server(watch: &str) -> TestServer {
    TestServer::start_yaml(|dir| {
        let envs = format!(
            "  staging:\n    listen: 127.0.0.1:0\n    strategy: {{ blue-green: {{ scale_down_delay: 5m }} }}\n    watch: {{ {watch} }}"
        );
        server_yaml(dir, &demo_app_yaml("web", dir, ""), &envs)
    })
    .await
}

fn id(d: &Value) -> i64 {
    d["id"].as_i64().unwrap()
}

fn time(at: &Value) -> SystemTime {
    humantime::parse_rfc3339(at.as_str().unwrap()).unwrap()
}

/// When deployment `id` logged its first line starting with `prefix`.
async fn logged_at(s: &TestServer, id: i64, prefix: &str) -> SystemTime {
    let (_, logs) = s
        .call(
            "GET",
            &format!("/api/v1/deployments/{id}/logs"),
            &s.admin,
            None,
        )
        .await;
    let lines = logs["lines"].as_array().unwrap();
    let line = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in the log of {id}: {logs:#}"));
    time(&line["at"])
}

/// The automatic rollback deployment the watch created.
async fn automatic_rollback(s: &TestServer) -> Value {
    let (_, list) = s
        .call(
            "GET",
            "/api/v1/deployments?app=web&environment=staging&kind=rollback",
            &s.admin,
            None,
        )
        .await;
    let all = list["deployments"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{list:#}");
    all[0].clone()
}

async fn watch_of_env(s: &TestServer) -> Value {
    s.env("staging").await["watch"].clone()
}

/// The watch of deployment `d`, once it began (just after `d` reached `success`).
async fn watch_of(s: &TestServer, d: &Value) -> Value {
    poll_until("the watch to begin", || async {
        let w = watch_of_env(s).await;
        (w["deployment_id"] == d["id"]).then_some(w)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_turns_bad_after_success_is_rolled_back_within_one_interval() {
    let s = server("for: 60s, interval: 1s, max_error_rate: 5%, min_requests: 5").await;
    s.deploy_and_wait("staging", "v1", "success").await;
    s.faulty("v2", "--error-rate 1 --error-after-ms 3000");
    let load = Load::start(s.listener("staging").await);
    let v2 = s.deploy_and_wait("staging", "v2", "success").await;
    let watch = watch_of(&s, &v2).await;
    assert_eq!(
        (watch["state"].clone(), watch["deployment_id"].clone()),
        ("watching".into(), v2["id"].clone()),
        "{watch:#}"
    );
    let v2 = s.wait_for(id(&v2), &["rolled_back"]).await;
    let seen = load.finish_timed().await;

    let reason = TestServer::last_reason(&v2);
    assert!(
        reason.contains("rolled back by deployment")
            && reason.contains(
                "to v1: automatic rollback from v2 to v1: post-deploy watch failed: error rate"
            ),
        "{reason}"
    );
    let last = v2["statuses"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "slipway");
    let rollback = automatic_rollback(&s).await;
    assert_eq!(
        (rollback["created_by"].clone(), rollback["status"].clone()),
        ("slipway".into(), "success".into()),
        "{rollback:#}"
    );
    assert_eq!(
        TestServer::split(&s.env("staging").await),
        [("v1".to_string(), 100.0)]
    );
    let watch = watch_of_env(&s).await;
    assert_eq!(watch["state"], "failed", "{watch:#}");
    assert!(
        watch["reason"]
            .as_str()
            .unwrap()
            .contains("rolling back to v1 at once"),
        "{watch:#}"
    );

    // Within one interval (1s) of the verdict, traffic is back on v1.
    let verdict = logged_at(&s, id(&v2), "fail: error rate").await;
    let back = logged_at(&s, id(&rollback), "traffic: 100% to v1").await;
    let took = back.duration_since(verdict).unwrap_or_default();
    assert!(
        took < Duration::from_secs(1),
        "{took:?} from verdict to traffic back"
    );

    // What the users saw: v2 turned bad, then v1 answered again, and nothing else failed.
    let first_bad = seen
        .iter()
        .position(|r| r.status == 500)
        .expect("v2 never failed");
    let back_on_v1 = seen[first_bad..]
        .iter()
        .position(|r| r.release == "v1" && r.status == 200)
        .map(|i| i + first_bad)
        .expect("v1 never answered again");
    eprintln!(
        "first failing response to traffic back on v1: {:?}",
        seen[back_on_v1].at - seen[first_bad].at
    );
    let others: Vec<_> = seen
        .iter()
        .filter(|r| r.status != 200 && !(r.status == 500 && r.release == "v2"))
        .collect();
    assert!(
        others.is_empty(),
        "requests failed other than v2's: {others:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_release_stays_and_its_watch_ends_inconclusive() {
    let s = server("for: 2s, interval: 500ms, max_error_rate: 5%, min_requests: 5").await;
    let v1 = s.deploy_and_wait("staging", "v1", "success").await;
    let v2 = s.deploy_and_wait("staging", "v2", "success").await;
    let v1_lines = s.log_lines(id(&v1)).await;
    assert!(
        v1_lines
            .iter()
            .any(|l| l == &format!("watch ended: deployment {} (v2) started", id(&v2))),
        "a newer rollout ends the watch before: {v1_lines:#?}"
    );

    let watch = watch_of(&s, &v2).await;
    assert_eq!(watch["state"], "watching", "{watch:#}");
    let length = time(&watch["ends_at"])
        .duration_since(time(&watch["started_at"]))
        .unwrap();
    assert_eq!(length, Duration::from_secs(2));
    let left = watch["left_ms"].as_u64().unwrap();
    assert!(left > 0 && left <= 2000, "{watch:#}");

    let watch = poll_until("the watch to end", || async {
        let w = watch_of_env(&s).await;
        (w["state"] != "watching").then_some(w)
    })
    .await;
    assert_eq!(watch["state"], "inconclusive", "{watch:#}");
    assert_eq!(watch["left_ms"], 0);
    let said = "post-deploy watch inconclusive: only 0 of 5 requests to judge; the release stays";
    assert_eq!(watch["reason"], said);
    assert!(s.log_lines(id(&v2)).await.iter().any(|l| l == said));
    let v2 = s.deployment(id(&v2)).await;
    assert_eq!(v2["status"], "success");
    assert_eq!(s.through_router("staging").await.1.trim(), "ok release=v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_watch_resumes_it_with_what_is_left() {
    let mut s = server("for: 30s, interval: 500ms, max_error_rate: 5%, min_requests: 5").await;
    s.deploy_and_wait("staging", "v1", "success").await;
    s.faulty("v2", "--error-rate 1 --error-after-ms 4000");
    let v2 = s.deploy_and_wait("staging", "v2", "success").await;
    let before = watch_of(&s, &v2).await;
    assert_eq!(before["state"], "watching", "{before:#}");

    s.restart().await;
    let after = watch_of_env(&s).await;
    assert_eq!(
        (
            after["state"].clone(),
            after["started_at"].clone(),
            after["ends_at"].clone()
        ),
        (
            "watching".into(),
            before["started_at"].clone(),
            before["ends_at"].clone()
        ),
        "the watch keeps its start and end: {after:#}"
    );
    assert!(after["left_ms"].as_u64().unwrap() < 30_000, "{after:#}");
    let lines = s.log_lines(id(&v2)).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("watch resumed after a restart: ") && l.ends_with(" left")),
        "{lines:#?}"
    );

    // The resumed watch still judges: v2 turns bad and is rolled back.
    let load = Load::start(s.listener("staging").await);
    let v2 = s.wait_for(id(&v2), &["rolled_back"]).await;
    load.finish().await;
    assert!(
        TestServer::last_reason(&v2).contains("post-deploy watch failed: error rate"),
        "{v2:#}"
    );
    assert_eq!(s.through_router("staging").await.1.trim(), "ok release=v1");
}
