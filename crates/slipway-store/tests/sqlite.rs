//! The SQLite store: the `Store` contract against a database file (one temporary
//! directory per test) and against an in-memory database, then what only SQLite has
//! (files, migrations, damage done behind the store's back).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod contract;

use std::path::{Path, PathBuf};

use contract::{change, deployment_through, instance, new};
use slipway_config::Role;
use slipway_core::{Approval, Decision, Status};
use slipway_store::{DeploymentFilter, Error, SqliteStore, Store};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tempfile::TempDir;

struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    store: SqliteStore,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet: `open` must create it.
    let path = dir.path().join("state").join("slipway.db");
    let store = SqliteStore::open(&path).await.unwrap();
    Fixture {
        _dir: dir,
        path,
        store,
    }
}

/// A connection that bypasses the store, to damage the database as a person or an older
/// binary might.
async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .unwrap()
}

mod on_file {
    use std::sync::Arc;

    use slipway_store::Store;

    crate::store_contract!({
        let f = crate::fixture().await;
        let store: Arc<dyn Store> = Arc::new(f.store.clone());
        (store, f)
    });
}

mod in_memory {
    use std::sync::Arc;

    use slipway_store::{SqliteStore, Store};

    crate::store_contract!({
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        (store, ())
    });
}

#[tokio::test]
async fn history_is_appended_in_order_and_cannot_be_rewritten() {
    let f = fixture().await;
    let path = [
        Status::Waiting,
        Status::InProgress,
        Status::Success,
        Status::Inactive,
    ];
    let d = deployment_through(&f.store, new("web", "staging", "v1", 100), &path).await;
    let seen: Vec<Status> = d.statuses.iter().map(|c| c.status).collect();
    assert_eq!(
        seen,
        [
            Status::Queued,
            Status::Waiting,
            Status::InProgress,
            Status::Success,
            Status::Inactive
        ]
    );
    let times: Vec<i64> = d.statuses.iter().map(|c| c.at).collect();
    assert_eq!(times, [100, 101, 102, 103, 104]);
    assert_eq!(d.status, Status::Inactive);
    assert_eq!(d.updated_at, 104);
    assert_eq!(
        f.store.get_deployment(d.id).await.unwrap().statuses,
        d.statuses
    );

    let mut conn = raw(&f.path).await;
    for sql in [
        "UPDATE deployment_statuses SET status = 'success'",
        "DELETE FROM deployment_statuses",
    ] {
        let err = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(
        f.store.get_deployment(d.id).await.unwrap().statuses,
        d.statuses
    );
}

#[tokio::test]
async fn reopening_keeps_everything_and_does_not_reapply_migrations() {
    let f = fixture().await;
    let d = deployment_through(&f.store, new("web", "staging", "v1", 1), &[Status::Waiting]).await;
    let d = f
        .store
        .add_approval(
            d.id,
            Approval {
                user: "bob".into(),
                decision: Decision::Approve,
                comment: Some("ok".into()),
                at: 3,
            },
        )
        .await
        .unwrap();
    f.store
        .append_log(d.id, 4, "engine", "hello")
        .await
        .unwrap();
    f.store
        .put_instance(&instance("web-staging-v1-0", "web", "staging", 5))
        .await
        .unwrap();
    f.store
        .create_user("alice", Role::Admin, "hash-a", 6)
        .await
        .unwrap();
    let logs = f.store.logs(d.id, 0, 10).await.unwrap();
    let instances = f.store.instances(None, None).await.unwrap();
    let migrations = |mut conn: SqliteConnection| async move {
        sqlx::query_as::<_, (i64, Vec<u8>)>(
            "SELECT version, checksum FROM _sqlx_migrations ORDER BY version",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    };
    let applied = migrations(raw(&f.path).await).await;
    assert!(!applied.is_empty());
    f.store.close().await;

    for _ in 0..2 {
        let store = SqliteStore::open(&f.path).await.unwrap();
        assert_eq!(store.get_deployment(d.id).await.unwrap(), d);
        assert_eq!(store.logs(d.id, 0, 10).await.unwrap(), logs);
        assert_eq!(store.instances(None, None).await.unwrap(), instances);
        assert!(store.user_by_token_hash("hash-a").await.unwrap().is_some());
        // New ids continue after the old ones.
        let next = store
            .create_deployment(new("web", "staging", "v2", 7))
            .await
            .unwrap();
        assert!(next.id > d.id);
        store.close().await;
    }
    assert_eq!(migrations(raw(&f.path).await).await, applied);
}

#[tokio::test]
async fn corrupt_values_are_errors_not_panics() {
    let f = fixture().await;
    let d = f
        .store
        .create_deployment(new("web", "staging", "v1", 1))
        .await
        .unwrap();
    let mut conn = raw(&f.path).await;
    sqlx::query("UPDATE deployments SET status = 'exploded' WHERE id = ?")
        .bind(d.id)
        .execute(&mut conn)
        .await
        .unwrap();

    macro_rules! assert_corrupt {
        ($result:expr) => {
            let result = $result;
            assert!(matches!(result, Err(Error::Corrupt { .. })), "{result:?}");
        };
    }
    assert_corrupt!(f.store.get_deployment(d.id).await);
    assert_corrupt!(f.store.list_deployments(&DeploymentFilter::default()).await);
    assert_corrupt!(
        f.store
            .transition(d.id, Status::Queued, change(Status::Waiting, 2))
            .await
    );
    assert_corrupt!(f.store.count_by_status().await);

    f.store
        .create_user("alice", Role::Admin, "hash-a", 1)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET role = 'emperor'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_corrupt!(f.store.user_by_token_hash("hash-a").await);
}

#[tokio::test]
async fn in_memory_store_works_and_is_private() {
    let one = SqliteStore::open_in_memory().await.unwrap();
    let two = SqliteStore::open_in_memory().await.unwrap();
    let d = deployment_through(&one, new("web", "staging", "v1", 1), &[Status::Waiting]).await;
    assert_eq!(one.get_deployment(d.id).await.unwrap(), d);
    assert!(matches!(
        two.get_deployment(d.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn open_reports_a_directory_it_cannot_create() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = SqliteStore::open(&file.join("slipway.db"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CreateDir { .. }), "{err:?}");
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_version_is_refused() {
    let f = fixture().await;
    f.store.close().await;
    let mut conn = raw(&f.path).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, X'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let err = SqliteStore::open(&f.path).await.unwrap_err();
    assert!(matches!(err, Error::Migrate(_)), "{err:?}");
}

#[tokio::test]
async fn the_database_and_its_wal_files_are_private_to_this_user() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = fixture().await;
    // A write makes SQLite create the WAL files.
    f.store
        .set_user_token("admin", Role::Admin, "hash", 1)
        .await
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", f.path.display()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    // An older database that others could read is made private when opened.
    let old = f.path.with_file_name("old.db");
    std::fs::write(&old, "").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = SqliteStore::open(&old).await.unwrap();
    let mode = std::fs::metadata(&old).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
