//! The contract of [`NotificationStore`] together with the outbox it reads: decisions
//! enter the outbox in order beside the status changes, a new notifier starts at the
//! end, and delivery attempts are kept. Each test takes a fresh, empty store as both
//! traits (the same object).

use std::sync::Arc;

use slipway_config::NotificationEvent;
use slipway_core::{Approval, Decision, Status};
use slipway_store::{AttemptOutcome, NotificationAttempt, NotificationStore, OutboxEvent, Store};

use super::{change, deployment_through, new};

/// Runs `$make` (an expression giving `(Arc<dyn Store>, Arc<dyn NotificationStore>, guard)`
/// for one fresh store) through every notification contract test.
#[macro_export]
macro_rules! notification_store_contract {
    ($make:expr) => {
        $crate::notification_store_contract!(@tests $make;
            decisions_enter_the_outbox_with_what_the_deployment_had,
            a_new_notifier_starts_at_the_end_and_a_known_one_keeps_its_place,
            attempts_are_kept_newest_first_and_capped,
            attempts_older_than_thirty_days_are_forgotten
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, notifications, _guard) = $make;
                $crate::contract::notifications::$name(store, notifications).await;
            }
        )*
    };
}

/// (kind, deployment id or run id, what, statuses, approvals) of every outbox entry.
async fn outbox(store: &dyn Store) -> Vec<(&'static str, i64, String, usize, usize)> {
    store
        .outbox_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.event {
            OutboxEvent::Status { deployment, change } => (
                "status",
                deployment.id,
                change.status.to_string(),
                deployment.statuses,
                deployment.approvals,
            ),
            OutboxEvent::Decision {
                deployment,
                approval,
            } => (
                "decision",
                deployment.id,
                approval.decision.as_str().to_owned(),
                deployment.statuses,
                deployment.approvals,
            ),
            OutboxEvent::Run(run) => ("run", run.run_id, run.kind.as_str().to_owned(), 0, 0),
            OutboxEvent::Watch {
                deployment, end, ..
            } => (
                "watch",
                deployment.id,
                end.as_str().to_owned(),
                deployment.statuses,
                deployment.approvals,
            ),
        })
        .collect()
}

pub async fn decisions_enter_the_outbox_with_what_the_deployment_had(
    store: Arc<dyn Store>,
    _notifications: Arc<dyn NotificationStore>,
) {
    let d = deployment_through(
        store.as_ref(),
        new("web", "production", "v1", 1),
        &[Status::Waiting],
    )
    .await;
    let approval = Approval {
        user: "alice".to_owned(),
        decision: Decision::Approve,
        comment: Some("ship it".to_owned()),
        at: 50,
    };
    store.add_approval(d.id, approval.clone()).await.unwrap();
    store
        .add_approval(
            d.id,
            Approval {
                user: "carol".to_owned(),
                decision: Decision::Reject,
                comment: None,
                at: 60,
            },
        )
        .await
        .unwrap();
    store
        .transition(d.id, Status::Waiting, change(Status::Rejected, 61))
        .await
        .unwrap();
    assert_eq!(
        outbox(store.as_ref()).await,
        [
            ("status", d.id, "queued".to_owned(), 1, 0),
            ("status", d.id, "waiting".to_owned(), 2, 0),
            ("decision", d.id, "approve".to_owned(), 2, 1),
            ("decision", d.id, "reject".to_owned(), 2, 2),
            ("status", d.id, "rejected".to_owned(), 3, 2),
        ]
    );
    let entries = store.outbox_after(0, 100).await.unwrap();
    assert_eq!(entries[2].at(), 50);
    assert!(
        matches!(&entries[2].event, OutboxEvent::Decision { approval: got, .. } if *got == approval),
        "{:?}",
        entries[2]
    );
    assert!(
        matches!(&entries[3].event, OutboxEvent::Decision { approval, .. } if approval.comment.is_none())
    );
    // A decision on a deployment that does not exist writes nothing.
    assert!(store.add_approval(d.id + 100, approval).await.is_err());
    assert_eq!(store.outbox_after(entries[4].seq, 100).await.unwrap(), []);
}

pub async fn a_new_notifier_starts_at_the_end_and_a_known_one_keeps_its_place(
    store: Arc<dyn Store>,
    notifications: Arc<dyn NotificationStore>,
) {
    assert_eq!(notifications.begin_outbox_cursor("empty").await.unwrap(), 0);
    deployment_through(
        store.as_ref(),
        new("web", "staging", "v1", 1),
        &[Status::InProgress],
    )
    .await;
    let entries = store.outbox_after(0, 100).await.unwrap();
    let end = entries.last().unwrap().seq;
    assert_eq!(
        notifications.begin_outbox_cursor("late").await.unwrap(),
        end
    );
    assert_eq!(store.outbox_cursor("late").await.unwrap(), end);
    assert_eq!(
        notifications.begin_outbox_cursor("empty").await.unwrap(),
        0,
        "a notifier that has a place keeps it"
    );
    store
        .set_outbox_cursor("known", entries[0].seq)
        .await
        .unwrap();
    assert_eq!(
        notifications.begin_outbox_cursor("known").await.unwrap(),
        entries[0].seq
    );
}

pub async fn attempts_are_kept_newest_first_and_capped(
    _store: Arc<dyn Store>,
    notifications: Arc<dyn NotificationStore>,
) {
    assert_eq!(notifications.notification_attempts(10).await.unwrap(), []);
    let failed = NotificationAttempt {
        target: "hooks.example.com".to_owned(),
        seq: 3,
        event: NotificationEvent::DeploymentSucceeded,
        deployment_id: Some(1),
        run_id: None,
        attempt: 1,
        at: 100,
        http_status: Some(500),
        error: Some("the receiver answered 500 Internal Server Error".to_owned()),
        duration_ms: 12,
        outcome: AttemptOutcome::Retrying,
    };
    let delivered = NotificationAttempt {
        attempt: 2,
        at: 200,
        http_status: Some(200),
        error: None,
        outcome: AttemptOutcome::Delivered,
        ..failed.clone()
    };
    let run = NotificationAttempt {
        target: "chat".to_owned(),
        seq: 4,
        event: NotificationEvent::RunFailed,
        deployment_id: None,
        run_id: Some(9),
        attempt: 5,
        at: 300,
        http_status: None,
        error: Some("connection refused".to_owned()),
        duration_ms: 0,
        outcome: AttemptOutcome::Failed,
    };
    let first = notifications.record_attempt(&failed).await.unwrap();
    notifications.record_attempt(&delivered).await.unwrap();
    notifications.record_attempt(&run).await.unwrap();
    let got = notifications.notification_attempts(10).await.unwrap();
    let attempts: Vec<&NotificationAttempt> = got.iter().map(|r| &r.attempt).collect();
    assert_eq!(attempts, [&run, &delivered, &failed]);
    assert_eq!(got[2].id, first);
    assert!(got[0].id > got[1].id && got[1].id > got[2].id);
    let newest = notifications.notification_attempts(1).await.unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].attempt, run);
    for n in 0..1005 {
        notifications
            .record_attempt(&NotificationAttempt {
                seq: 10 + n,
                ..delivered.clone()
            })
            .await
            .unwrap();
    }
    assert_eq!(
        notifications
            .notification_attempts(5000)
            .await
            .unwrap()
            .len(),
        1000,
        "at most 1000 at a time"
    );
}

pub async fn attempts_older_than_thirty_days_are_forgotten(
    _store: Arc<dyn Store>,
    notifications: Arc<dyn NotificationStore>,
) {
    let at = |at: i64| NotificationAttempt {
        target: "hooks.example.com".to_owned(),
        seq: 1,
        event: NotificationEvent::DeploymentSucceeded,
        deployment_id: Some(1),
        run_id: None,
        attempt: 1,
        at,
        http_status: Some(200),
        error: None,
        duration_ms: 3,
        outcome: AttemptOutcome::Delivered,
    };
    let month = slipway_store::ATTEMPTS_KEPT_MS;
    for t in [100, 200, 200 + month] {
        notifications.record_attempt(&at(t)).await.unwrap();
    }
    let kept: Vec<i64> = notifications
        .notification_attempts(10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.attempt.at)
        .collect();
    assert_eq!(
        kept,
        [200 + month, 200],
        "the one at 100 is over 30 days older"
    );
}
