//! The SQLite store's notification side: the [`NotificationStore`] contract against a
//! database file and an in-memory database, and the outbox of an older database carried
//! over by migration 0009.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod contract;

use std::path::Path;

use slipway_core::Status;
use slipway_store::{OutboxEvent, SqliteStore, Store};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

mod on_file {
    use std::sync::Arc;

    use slipway_store::{NotificationStore, SqliteStore, Store};

    crate::notification_store_contract!({
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(
            SqliteStore::open(&dir.path().join("slipway.db"))
                .await
                .unwrap(),
        );
        let store: Arc<dyn Store> = sqlite.clone();
        let notifications: Arc<dyn NotificationStore> = sqlite;
        (store, notifications, dir)
    });
}

mod in_memory {
    use std::sync::Arc;

    use slipway_store::{NotificationStore, SqliteStore, Store};

    crate::notification_store_contract!({
        let sqlite = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let store: Arc<dyn Store> = sqlite.clone();
        let notifications: Arc<dyn NotificationStore> = sqlite;
        (store, notifications, ())
    });
}

/// A database as the releases before migration 0009 left it: the migrations before it,
/// applied from a copy of their files.
async fn older_database(path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for file in std::fs::read_dir(&migrations).unwrap() {
        let file = file.unwrap().path();
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0009" {
            std::fs::copy(&file, dir.path().join(&name)).unwrap();
        }
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(dir.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    // One deployment approved while waiting, then started; its outbox as it was written.
    for statement in [
        "INSERT INTO deployments (id, app, environment, version, kind, status, phase, \
         created_by, created_at, updated_at) VALUES (1, 'web', 'production', 'v1', 'deploy', \
         'in_progress', 'starting', 'bob', 10, 40)",
        "INSERT INTO deployment_statuses VALUES (1, 1, 'queued', 10, 'bob', 'requested')",
        "INSERT INTO deployment_statuses VALUES (1, 2, 'waiting', 20, 'slipway', 'approval')",
        "INSERT INTO deployment_approvals (deployment_id, user_name, decision, at) \
         VALUES (1, 'alice', 'approve', 30)",
        "INSERT INTO deployment_statuses VALUES (1, 3, 'in_progress', 40, 'slipway', 'go')",
        "INSERT INTO outbox (deployment_id, status, at, actor, reason) VALUES \
         (1, 'queued', 10, 'bob', 'requested'), (1, 'waiting', 20, 'slipway', 'approval'), \
         (1, 'in_progress', 40, 'slipway', 'go')",
        "INSERT INTO outbox_cursors VALUES ('webhook:hooks', 2)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

#[tokio::test]
async fn an_older_outbox_keeps_its_entries_and_cursors_and_gains_what_each_deployment_had() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slipway.db");
    older_database(&path).await;
    let store = SqliteStore::open(&path).await.unwrap();
    let entries = store.outbox_after(0, 100).await.unwrap();
    let got: Vec<(i64, Status, usize, usize)> = entries
        .iter()
        .map(|e| match &e.event {
            OutboxEvent::Status { deployment, change } => (
                e.seq,
                change.status,
                deployment.statuses,
                deployment.approvals,
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, Status::Queued, 1, 0),
            (2, Status::Waiting, 2, 0),
            (3, Status::InProgress, 3, 1),
        ]
    );
    assert_eq!(store.outbox_cursor("webhook:hooks").await.unwrap(), 2);
    // New entries go on after the old ones.
    let d = store.get_deployment(1).await.unwrap();
    let next = store
        .transition(
            d.id,
            Status::InProgress,
            contract::change(Status::Success, 50),
        )
        .await
        .unwrap();
    assert_eq!(next.status, Status::Success);
    let after = store.outbox_after(3, 100).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].seq, 4);
}
