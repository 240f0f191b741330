//! The post-deploy watch with the injected clock and the fake router's made-up traffic:
//! its end comes from the clock, and a failed verdict (with its rollback, or without one
//! when there is nothing to return to) reaches the notifiers through the outbox.

use std::time::Duration;

use slipway_core::Status;
use slipway_core::watch::WatchEnd;
use slipway_store::{OutboxEvent, WatchStore};

use crate::util::{Harness, wait_until};

const WATCHED: &str = "    staging:
      listen: 127.0.0.1:0
      watch: { for: 1m, interval: 20ms, max_error_rate: 5%, min_requests: 10 }
";

#[tokio::test]
async fn the_watch_ends_passed_when_the_clock_says_it_is_over() {
    let h = Harness::start(WATCHED).await;
    let v1 = h.deploy_and_wait("staging", "v1", Status::Success).await;
    wait_until("the watch to begin", || async {
        h.store.watch_of(v1.id).await.unwrap().is_some()
    })
    .await;
    let w = h.store.watch_of(v1.id).await.unwrap().unwrap();
    assert_eq!(w.ends_at - w.started_at, 60_000);
    assert_eq!(w.ended, None);
    wait_until("a passed check", || async {
        h.store.watch_of(v1.id).await.unwrap().unwrap().passed
    })
    .await;
    h.clock.advance(Duration::from_secs(61));
    wait_until("the watch to end", || async {
        h.store
            .watch_of(v1.id)
            .await
            .unwrap()
            .unwrap()
            .ended
            .is_some()
    })
    .await;
    let (_, end, reason) = h
        .store
        .watch_of(v1.id)
        .await
        .unwrap()
        .unwrap()
        .ended
        .unwrap();
    assert_eq!(
        (end, reason.as_str()),
        (WatchEnd::Passed, "post-deploy watch passed")
    );
    assert_eq!(h.get(v1.id).await.status, Status::Success);
}

#[tokio::test]
async fn a_failed_verdict_rolls_back_and_the_notifiers_are_told() {
    let h = Harness::start(WATCHED).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let v2 = h.deploy_and_wait("staging", "v2", Status::Success).await;
    h.world.lock().error_rate.insert("v2".into(), 0.5);
    let v2 = h.wait_status(v2.id, Status::RolledBack).await;
    let reason = Harness::last_reason(&v2);
    assert!(
        reason.contains("post-deploy watch failed: error rate 50.0% > 5.0%"),
        "{reason}"
    );
    assert_eq!(h.world.split("staging", "web"), [("v1".to_string(), 100.0)]);
    wait_until("the rollback to be notified", || async {
        h.world.lock().notified.iter().any(|e| {
            matches!(&e.event, OutboxEvent::Status { deployment, change }
                    if deployment.id == v2.id && change.status == Status::RolledBack)
        })
    })
    .await;
    let (_, end, why) = h
        .store
        .watch_of(v2.id)
        .await
        .unwrap()
        .unwrap()
        .ended
        .unwrap();
    assert_eq!(end, WatchEnd::Failed);
    assert!(why.ends_with("rolling back to v1 at once"), "{why}");
}

#[tokio::test]
async fn a_failed_watch_with_nothing_to_return_to_keeps_the_release_and_the_notifiers_are_told() {
    let h = Harness::start(WATCHED).await;
    let v1 = h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().error_rate.insert("v1".into(), 0.5);
    let failed_watch = || {
        h.world.lock().notified.iter().find_map(|e| match &e.event {
            OutboxEvent::Watch {
                deployment,
                end: WatchEnd::Failed,
                reason,
                ..
            } if deployment.id == v1.id => Some(reason.clone()),
            _ => None,
        })
    };
    wait_until("the failed watch to be notified", || async {
        failed_watch().is_some()
    })
    .await;
    let reason = failed_watch().unwrap_or_default();
    assert!(
        reason.starts_with("post-deploy watch failed: error rate 50.0% > 5.0%")
            && reason.ends_with(
                "not rolled back: v1 is the first release here, there is nothing to return to"
            ),
        "{reason}"
    );
    assert_eq!(
        h.get(v1.id).await.status,
        Status::Success,
        "v1 keeps serving"
    );
    assert_eq!(h.world.split("staging", "web"), [("v1".to_string(), 100.0)]);
}
