//! Notifications from the outbox: every status change, in order per deployment, at least
//! once, across restarts, and never dropped for a slow or failing notifier.

use std::collections::BTreeMap;

use slipway_core::{Decision, Status, StatusChange};
use slipway_engine::OutboxEvent;
use slipway_store::Store;

use crate::util::{Harness, STAGING, wait_until};

/// The statuses each deployment's history holds, and what the notifier got, per
/// deployment, in order.
async fn histories(h: &Harness) -> (BTreeMap<i64, Vec<Status>>, BTreeMap<i64, Vec<Status>>) {
    let mut stored = BTreeMap::new();
    for d in h
        .store
        .list_deployments(&slipway_store::DeploymentFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap()
    {
        stored.insert(
            d.id,
            d.statuses.iter().map(|s| s.status).collect::<Vec<_>>(),
        );
    }
    let mut got: BTreeMap<i64, Vec<Status>> = BTreeMap::new();
    for e in h.world.lock().notified.iter() {
        if let OutboxEvent::Status { deployment, change } = &e.event {
            got.entry(deployment.id).or_default().push(change.status);
        }
    }
    (stored, got)
}

async fn all_delivered(h: &Harness) {
    wait_until("every status change to be notified", || async {
        let (stored, got) = histories(h).await;
        stored == got
    })
    .await;
}

#[tokio::test]
async fn every_status_change_is_notified_in_order() {
    let h = Harness::start(STAGING).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.deploy_and_wait("staging", "v2", Status::Success).await;
    all_delivered(&h).await;
    let (_, got) = histories(&h).await;
    assert_eq!(
        got.values().next().unwrap(),
        &[
            Status::Queued,
            Status::InProgress,
            Status::Success,
            Status::Inactive
        ]
    );
    let seqs: Vec<i64> = h.world.lock().notified.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let e = h.world.lock().notified[2].clone();
    let d = e.deployment().unwrap();
    assert_eq!(
        (d.app.as_str(), d.environment.as_str(), d.version.as_str()),
        ("web", "staging", "v1")
    );
}

#[tokio::test]
async fn a_failing_notifier_gets_the_same_entry_again_and_loses_nothing() {
    let h = Harness::start(STAGING).await;
    h.world.lock().notify_failures = 3;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    all_delivered(&h).await;
    assert_eq!(
        h.world.lock().notify_failures,
        0,
        "it was refused three times"
    );
}

#[tokio::test]
async fn a_slow_notifier_misses_nothing_of_a_burst() {
    let h = Harness::start(&format!(
        "{STAGING}    production:\n      listen: 127.0.0.1:0\n      protection: {{ reviewers: [alice], required_approvals: 1 }}\n"
    ))
    .await;
    // Held back while 60 deployments supersede each other (each one queued, waiting,
    // cancelled): far more changes than a reader would take in between.
    h.world.lock().notify_held = true;
    for n in 0..60 {
        h.deploy("production", &format!("v{n}")).await;
    }
    h.world.lock().notify_held = false;
    all_delivered(&h).await;
    assert!(h.world.lock().notified.len() >= 120);
}

#[tokio::test]
async fn undelivered_changes_are_delivered_after_a_restart_and_delivered_ones_are_not_repeated() {
    let mut h = Harness::start(STAGING).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    all_delivered(&h).await;
    let before = h.world.lock().notified.len();
    h.world.lock().notify_failures = u32::MAX;
    h.deploy_and_wait("staging", "v2", Status::Success).await;
    h.restart().await;
    h.world.lock().notify_failures = 0;
    h.restart().await;
    all_delivered(&h).await;
    assert_eq!(
        h.world.lock().notified.len(),
        before + 4,
        "v2's three, v1's inactive"
    );
    let cursor = h.store.outbox_cursor("fake").await.unwrap();
    let last = h.world.lock().notified.last().unwrap().seq;
    assert_eq!(cursor, last, "the position is kept in the store");
}

#[tokio::test]
async fn the_outbox_is_written_with_the_status_change() {
    let h = Harness::start(STAGING).await;
    let d = h.deploy_and_wait("staging", "v1", Status::Success).await;
    let entries = h.store.outbox_after(0, 100).await.unwrap();
    let mine: Vec<&StatusChange> = entries
        .iter()
        .filter_map(|e| match &e.event {
            OutboxEvent::Status { deployment, change } if deployment.id == d.id => Some(change),
            _ => None,
        })
        .collect();
    assert_eq!(mine, d.statuses.iter().collect::<Vec<_>>());
    assert!(
        h.store
            .outbox_after(entries.last().unwrap().seq, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_decision_reaches_the_notifiers_between_the_status_changes_around_it() {
    let h = Harness::start(&format!(
        "{STAGING}    production:\n      listen: 127.0.0.1:0\n      protection: {{ reviewers: [alice], required_approvals: 1 }}\n"
    ))
    .await;
    let d = h.deploy("production", "v1").await;
    h.wait_status(d.id, Status::Waiting).await;
    h.engine
        .decide(
            d.id,
            &Harness::alice(),
            Decision::Approve,
            Some("go".into()),
        )
        .await
        .unwrap();
    h.wait_status(d.id, Status::Success).await;
    all_delivered(&h).await;
    wait_until("the approval to be notified", || async {
        h.world
            .lock()
            .notified
            .iter()
            .any(|e| matches!(e.event, OutboxEvent::Decision { .. }))
    })
    .await;
    let told: Vec<String> = h
        .world
        .lock()
        .notified
        .iter()
        .map(|e| match &e.event {
            OutboxEvent::Status { change, .. } => change.status.to_string(),
            OutboxEvent::Decision { approval, .. } => {
                format!("{} by {}", approval.decision.as_str(), approval.user)
            }
            OutboxEvent::Run(run) => run.kind.as_str().to_owned(),
            OutboxEvent::Watch { end, .. } => format!("watch {}", end.as_str()),
        })
        .collect();
    assert_eq!(
        told,
        [
            "queued",
            "waiting",
            "approve by alice",
            "in_progress",
            "success"
        ]
    );
}
