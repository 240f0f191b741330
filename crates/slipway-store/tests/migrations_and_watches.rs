//! The migration history and the post-deploy watches of the SQLite store, against real
//! database files: what a rollback and a restarted server read back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use slipway_core::migration::{MigrationRun, Undo, UndoState};
use slipway_core::watch::{WatchEnd, WatchRecord};
use slipway_core::{DeploymentId, Kind, Release};
use slipway_store::{
    Error, MigrationStore, NewDeployment, OutboxEvent, SqliteStore, Store, WatchStore,
};

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("slipway.db"))
        .await
        .unwrap()
}

async fn deployment(store: &SqliteStore, env: &str, version: &str) -> DeploymentId {
    store
        .create_deployment(NewDeployment {
            app: "web".into(),
            environment: env.into(),
            release: Release {
                version: version.into(),
                commit: None,
                git_ref: None,
                committed_at: None,
                digest: None,
            },
            kind: Kind::Deploy,
            created_by: "alice".into(),
            created_at: 1_000,
            reason: "test".into(),
            rolled_back_from: None,
            force: None,
        })
        .await
        .unwrap()
        .id
}

fn run(id: DeploymentId, env: &str, version: &str, reversible: bool) -> MigrationRun {
    MigrationRun {
        deployment_id: id,
        app: "web".into(),
        environment: env.into(),
        version: version.into(),
        up: format!("./migrate up {version}"),
        ran_at: id * 1_000,
        reversible,
        down: reversible.then(|| format!("./migrate down {version}")),
        undo: None,
    }
}

#[tokio::test]
async fn migrations_are_recorded_with_their_undo_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let v1 = deployment(&store, "production", "v1").await;
    let v2 = deployment(&store, "production", "v2").await;
    let other = deployment(&store, "staging", "v2").await;
    let rollback = deployment(&store, "production", "v1").await;
    store
        .record_migration(&run(v2, "production", "v2", true))
        .await
        .unwrap();
    store
        .record_migration(&run(v1, "production", "v1", false))
        .await
        .unwrap();
    store
        .record_migration(&run(other, "staging", "v2", true))
        .await
        .unwrap();
    // A restarted rollout runs `up` again: the record is replaced, not doubled.
    store
        .record_migration(&run(v2, "production", "v2", true))
        .await
        .unwrap();
    let undo = Undo {
        state: UndoState::Ran,
        by: rollback,
        at: 9_000,
        note: "down succeeded".into(),
    };
    store.record_undo(v2, &undo).await.unwrap();
    store.close().await;

    let store = open(&dir).await;
    let all = store.migrations("web", "production").await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.deployment_id).collect::<Vec<_>>(),
        [v1, v2],
        "oldest first, this environment only"
    );
    assert_eq!(all[0], run(v1, "production", "v1", false));
    let mut expected = run(v2, "production", "v2", true);
    expected.undo = Some(undo);
    assert_eq!(store.migration_of(v2).await.unwrap(), Some(expected));
    assert_eq!(store.migration_of(rollback).await.unwrap(), None);
    let missing = store
        .record_undo(
            rollback,
            &Undo {
                state: UndoState::Skipped,
                by: rollback,
                at: 1,
                note: String::new(),
            },
        )
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_migration_of_a_deployment_that_does_not_exist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let err = store
        .record_migration(&run(42, "production", "v9", true))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
}

fn watch(id: DeploymentId, env: &str, started_at: i64) -> WatchRecord {
    WatchRecord {
        deployment_id: id,
        app: "web".into(),
        environment: env.into(),
        version: format!("v{id}"),
        started_at,
        ends_at: started_at + 300_000,
        passed: false,
        ended: None,
    }
}

#[tokio::test]
async fn a_watch_is_ended_once_and_resumes_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = deployment(&store, "production", "v1").await;
    let b = deployment(&store, "production", "v2").await;
    let c = deployment(&store, "staging", "v2").await;
    for (id, env) in [(a, "production"), (b, "production"), (c, "staging")] {
        store.put_watch(&watch(id, env, id * 1_000)).await.unwrap();
    }
    store.set_watch_passed(b).await.unwrap();
    assert!(
        store
            .end_watch(a, 5_000, WatchEnd::Ended, "deployment 2 started")
            .await
            .unwrap()
    );
    assert!(
        !store
            .end_watch(a, 6_000, WatchEnd::Failed, "too late")
            .await
            .unwrap(),
        "a watch ends once"
    );
    store.close().await;

    let store = open(&dir).await;
    let open_ones: Vec<_> = store
        .open_watches()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.deployment_id)
        .collect();
    assert_eq!(open_ones, [b, c]);
    let latest = store
        .latest_watch("web", "production")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.deployment_id, b);
    assert!(latest.passed);
    assert_eq!(
        store.watch_of(a).await.unwrap().unwrap().ended,
        Some((5_000, WatchEnd::Ended, "deployment 2 started".into()))
    );
    let ended = store
        .end_watches_of(
            "web",
            "production",
            7_000,
            WatchEnd::Ended,
            "deployment 4 started",
        )
        .await
        .unwrap();
    assert_eq!(ended, [b]);
    assert!(
        store
            .end_watches_of("web", "production", 8_000, WatchEnd::Ended, "again")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.latest_watch("web", "nowhere").await.unwrap(), None);
}

#[tokio::test]
async fn a_failed_watch_enters_the_outbox_with_its_end_and_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = deployment(&store, "production", "v1").await;
    let b = deployment(&store, "staging", "v1").await;
    store
        .put_watch(&watch(a, "production", 1_000))
        .await
        .unwrap();
    store.put_watch(&watch(b, "staging", 1_000)).await.unwrap();
    let before = store.outbox_after(0, 100).await.unwrap().len();
    store
        .end_watch(b, 4_000, WatchEnd::Passed, "every verdict passed")
        .await
        .unwrap();
    let why = "error rate 40% > 5%; not rolled back: v1 is the first release here";
    store
        .end_watch(a, 5_000, WatchEnd::Failed, why)
        .await
        .unwrap();
    store
        .end_watch(a, 6_000, WatchEnd::Failed, "twice")
        .await
        .unwrap();
    store.close().await;

    let store = open(&dir).await;
    let entries = store.outbox_after(0, 100).await.unwrap();
    assert_eq!(entries.len(), before + 1, "only the failed end, once");
    let last = entries.last().unwrap();
    assert_eq!(last.at(), 5_000);
    assert_eq!(last.deployment().map(|d| d.id), Some(a));
    assert!(
        matches!(&last.event, OutboxEvent::Watch { end: WatchEnd::Failed, reason, .. } if reason == why),
        "{last:?}"
    );
}
