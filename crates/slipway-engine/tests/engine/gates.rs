//! Gates before a rollout, supersession, cancellation and urgent rollbacks.

use std::time::Duration;

use slipway_core::{Decision, Status};
use slipway_engine::{DeployRequest, ErrorKind};

use crate::util::{Harness, STAGING, wait_until};

fn protected(protection: &str) -> String {
    format!(
        "{STAGING}    production:\n      listen: 127.0.0.1:0\n      protection: {protection}\n      strategy: {{ blue-green: {{ scale_down_delay: 1h }} }}\n"
    )
}

const APPROVAL: &str = "{ reviewers: [alice], required_approvals: 1 }";

async fn waits_on(h: &Harness, id: i64, gate: &str) {
    let prefix = format!("{gate}: ");
    wait_until(&format!("deployment {id} to wait on {gate}"), || async {
        let d = h.get(id).await;
        d.status == Status::Waiting && Harness::last_reason(&d).starts_with(&prefix)
    })
    .await;
}

#[tokio::test]
async fn an_approval_gate_waits_and_then_opens() {
    let h = Harness::start(&protected(APPROVAL)).await;
    let d = h.deploy("production", "v1").await;
    waits_on(&h, d.id, "approval").await;
    assert!(
        h.world.lock().instances.is_empty(),
        "nothing starts while it waits"
    );
    h.engine
        .decide(
            d.id,
            &Harness::alice(),
            Decision::Approve,
            Some("ok".into()),
        )
        .await
        .unwrap();
    let d = h.wait_status(d.id, Status::Success).await;
    assert_eq!(d.approvals.len(), 1);
    assert!(
        h.log_lines(d.id)
            .await
            .contains(&"approved by alice: ok".to_string())
    );
}

#[tokio::test]
async fn a_rejection_ends_the_deployment_rejected() {
    let h = Harness::start(&protected(APPROVAL)).await;
    let d = h.deploy("production", "v1").await;
    waits_on(&h, d.id, "approval").await;
    h.engine
        .decide(d.id, &Harness::alice(), Decision::Reject, None)
        .await
        .unwrap();
    let d = h.wait_status(d.id, Status::Rejected).await;
    assert_eq!(Harness::last_reason(&d), "rejected by alice");
    let err = h
        .engine
        .decide(d.id, &Harness::alice(), Decision::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn a_wait_timer_waits_on_the_injected_clock() {
    let h = Harness::start(&protected("{ wait_timer: 5m }")).await;
    let d = h.deploy("production", "v1").await;
    waits_on(&h, d.id, "wait_timer").await;
    h.clock.advance(Duration::from_secs(299));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(h.get(d.id).await.status, Status::Waiting, "a second early");
    h.clock.advance(Duration::from_secs(1));
    h.wait_status(d.id, Status::Success).await;
}

#[tokio::test]
async fn a_closed_window_holds_the_deployment_until_it_opens() {
    // The clock starts on a Tuesday at 10:00 UTC.
    let h = Harness::start(&protected("{ windows: [\"Tue 12:00-13:00 UTC\"] }")).await;
    let d = h.deploy("production", "v1").await;
    waits_on(&h, d.id, "window").await;
    h.clock.advance(Duration::from_secs(2 * 3600));
    h.wait_status(d.id, Status::Success).await;
}

#[tokio::test]
async fn a_second_deployment_waits_for_the_one_in_progress() {
    let strategy = "{ canary: { steps: [{ weight: 10 }, { pause: manual }], analysis: { interval: 5ms, min_requests: 1 } } }";
    let envs = format!("    staging:\n      listen: 127.0.0.1:0\n      strategy: {strategy}\n");
    let h = Harness::start(&envs).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let first = h.deploy("staging", "v2").await;
    h.wait_status(first.id, Status::InProgress).await;
    let second = h.deploy("staging", "v3").await;
    waits_on(&h, second.id, "concurrency").await;
    assert_eq!(
        Harness::last_reason(&h.get(second.id).await),
        format!("concurrency: waiting for deployment {} to finish", first.id)
    );
    wait_until("the pause", || async {
        h.engine.live(first.id).paused.is_some()
    })
    .await;
    h.engine.promote(first.id, &Harness::admin()).await.unwrap();
    h.wait_status(first.id, Status::Success).await;
    h.wait_status(second.id, Status::InProgress).await;
}

#[tokio::test]
async fn a_newer_waiting_deployment_supersedes_an_older_one() {
    let h = Harness::start(&protected(APPROVAL)).await;
    let old = h.deploy("production", "v1").await;
    waits_on(&h, old.id, "approval").await;
    let new = h.deploy("production", "v2").await;
    let old = h.wait_status(old.id, Status::Cancelled).await;
    assert_eq!(
        Harness::last_reason(&old),
        format!("superseded by deployment {}", new.id)
    );
    waits_on(&h, new.id, "approval").await;
}

#[tokio::test]
async fn a_waiting_deployment_can_be_cancelled_but_one_in_progress_cannot() {
    let h = Harness::start(&protected(APPROVAL)).await;
    let d = h.deploy("production", "v1").await;
    waits_on(&h, d.id, "approval").await;
    let d = h.engine.cancel(d.id, &Harness::admin()).await.unwrap();
    assert_eq!(d.status, Status::Cancelled);
    let strategy = "{ canary: { steps: [{ weight: 10 }, { pause: manual }], analysis: { interval: 5ms, min_requests: 1 } } }";
    let h = Harness::start(&format!(
        "    staging:\n      listen: 127.0.0.1:0\n      strategy: {strategy}\n"
    ))
    .await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let d = h.deploy("staging", "v2").await;
    h.wait_status(d.id, Status::InProgress).await;
    let err = h.engine.cancel(d.id, &Harness::admin()).await.unwrap_err();
    assert_eq!(err.code(), "in_progress");
}

#[tokio::test]
async fn production_refuses_a_release_that_did_not_succeed_in_staging() {
    let envs =
        format!("{STAGING}    production:\n      listen: 127.0.0.1:0\n      requires: [staging]\n");
    let h = Harness::start(&envs).await;
    let req = DeployRequest {
        app: "web".into(),
        environment: "production".into(),
        version: "v1".into(),
        git_ref: Some("main".into()),
        ..Default::default()
    };
    let err = h
        .engine
        .deploy(req.clone(), &Harness::admin())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let d = h.engine.deploy(req, &Harness::admin()).await.unwrap();
    h.wait_status(d.id, Status::Success).await;
}

#[tokio::test]
async fn an_urgent_rollback_aborts_the_rollout_in_progress_and_restores_the_release() {
    let strategy = "{ canary: { steps: [{ weight: 40 }, { pause: manual }], analysis: { interval: 5ms, min_requests: 1 } } }";
    let envs = format!("    staging:\n      listen: 127.0.0.1:0\n      strategy: {strategy}\n");
    let h = Harness::start(&envs).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.deploy_and_wait_promoted("v2").await;
    let v3 = h.deploy("staging", "v3").await;
    wait_until("v3's pause", || async {
        h.engine.live(v3.id).paused.is_some()
    })
    .await;
    let r = h
        .engine
        .rollback("web", "staging", None, &Harness::admin())
        .await
        .unwrap();
    let v3 = h.wait_status(v3.id, Status::RolledBack).await;
    assert_eq!(
        Harness::last_reason(&v3),
        format!("aborted by rollback deployment {}", r.id)
    );
    let r = h.wait_status(r.id, Status::Success).await;
    assert_eq!(r.release.version, "v1");
    assert_eq!(r.rolled_back_from.as_deref(), Some("v2"));
    assert_eq!(h.world.split("staging", "web"), [("v1".to_string(), 100.0)]);
    assert_eq!(h.world.running_of("v3"), 0);
}

#[tokio::test]
async fn a_rollback_supersedes_every_waiting_deployment_and_skips_approval() {
    let h = Harness::start(&protected(APPROVAL)).await;
    for v in ["v1", "v2"] {
        let d = h.deploy("production", v).await;
        waits_on(&h, d.id, "approval").await;
        h.engine
            .decide(d.id, &Harness::alice(), Decision::Approve, None)
            .await
            .unwrap();
        h.wait_status(d.id, Status::Success).await;
    }
    let waiting = h.deploy("production", "v3").await;
    waits_on(&h, waiting.id, "approval").await;
    let r = h
        .engine
        .rollback("web", "production", Some("v1"), &Harness::admin())
        .await
        .unwrap();
    let waiting = h.wait_status(waiting.id, Status::Cancelled).await;
    assert_eq!(
        Harness::last_reason(&waiting),
        format!("superseded by rollback deployment {}", r.id)
    );
    h.wait_status(r.id, Status::Success).await;
}

#[tokio::test]
async fn a_rollback_only_goes_to_a_release_that_ran_there() {
    let h = Harness::start(STAGING).await;
    let err = h
        .engine
        .rollback("web", "staging", None, &Harness::admin())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "nothing_to_roll_back");
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let err = h
        .engine
        .rollback("web", "staging", Some("v9"), &Harness::admin())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "never_succeeded");
}
