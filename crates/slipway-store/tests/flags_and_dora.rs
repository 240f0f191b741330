//! The flag and DORA capabilities of the SQLite store, against real database files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use slipway_core::flags::Flag;
use slipway_core::{Kind, Release, Status, StatusChange};
use slipway_store::{DoraFilter, DoraStore, FlagStore, NewDeployment, SqliteStore, Store};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("slipway.db"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_flag_change_bumps_its_version_and_lands_in_the_history_that_cannot_be_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let flag = Flag::boolean("checkout", true);
    let first = store
        .put_flag("production", &flag, "set", "alice", 1_000)
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    let mut half = flag.clone();
    half.rollout = 50;
    let second = store
        .put_flag("production", &half, "rollout", "bob", 2_000)
        .await
        .unwrap();
    assert_eq!((second.version, second.updated_by.as_str()), (2, "bob"));
    store
        .put_flag("staging", &flag, "set", "alice", 3_000)
        .await
        .unwrap();

    let got = store.flag("production", "checkout").await.unwrap().unwrap();
    assert_eq!(
        (got.flag.rollout, got.version, got.updated_at),
        (50, 2, 2_000)
    );
    assert!(store.flag("production", "nope").await.unwrap().is_none());
    let all = store.flags().await.unwrap();
    let envs: Vec<_> = all.iter().map(|f| f.environment.as_str()).collect();
    assert_eq!(envs, ["production", "staging"]);

    let history = store
        .flag_history("production", "checkout", 10)
        .await
        .unwrap();
    let who: Vec<_> = history
        .iter()
        .map(|c| (c.version, c.action.as_str(), c.actor.as_str(), c.at))
        .collect();
    assert_eq!(
        who,
        [(2, "rollout", "bob", 2_000), (1, "set", "alice", 1_000)]
    );
    assert_eq!(history[1].flag, flag);

    store.close().await;
    let mut raw = SqliteConnection::connect_with(
        &SqliteConnectOptions::new().filename(dir.path().join("slipway.db")),
    )
    .await
    .unwrap();
    for sql in [
        "UPDATE flag_changes SET actor = 'mallory'",
        "DELETE FROM flag_changes",
    ] {
        let err = sqlx::query(sql).execute(&mut raw).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn dora_records_follow_the_status_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut ids = Vec::new();
    for (i, end) in [Status::Success, Status::Failure, Status::Success]
        .into_iter()
        .enumerate()
    {
        let at = 10_000 * (i as i64 + 1);
        let d = store
            .create_deployment(NewDeployment {
                app: "web".into(),
                environment: "production".into(),
                release: Release {
                    version: format!("v{i}"),
                    commit: None,
                    git_ref: None,
                    committed_at: Some(at - 500),
                    digest: None,
                },
                kind: Kind::Deploy,
                created_by: "alice".into(),
                created_at: at,
                reason: "test".into(),
                rolled_back_from: None,
                force: None,
            })
            .await
            .unwrap();
        let change = |status, at| StatusChange {
            status,
            at,
            actor: "system".into(),
            reason: "t".into(),
        };
        store
            .transition(d.id, Status::Queued, change(Status::InProgress, at + 1))
            .await
            .unwrap();
        store
            .transition(d.id, Status::InProgress, change(end, at + 100))
            .await
            .unwrap();
        ids.push(d.id);
    }
    store
        .transition(
            ids[2],
            Status::Success,
            StatusChange {
                status: Status::RolledBack,
                at: 31_000,
                actor: "system".into(),
                reason: "t".into(),
            },
        )
        .await
        .unwrap();
    let all = store
        .dora_records(&DoraFilter {
            since: 0,
            until: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        (all[0].committed_at, all[0].succeeded_at, all[0].failed_at),
        (Some(9_500), Some(10_100), None)
    );
    assert_eq!(
        (all[1].succeeded_at, all[1].failed_at),
        (None, Some(20_100))
    );
    assert_eq!(
        (all[2].succeeded_at, all[2].rolled_back_at),
        (Some(30_100), Some(31_000))
    );
    let window = store
        .dora_records(&DoraFilter {
            since: 15_000,
            until: 100_000,
            environment: Some("production".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(window.iter().map(|r| r.id).collect::<Vec<_>>(), ids[1..]);
    let other = store
        .dora_records(&DoraFilter {
            since: 0,
            until: 100_000,
            app: Some("api".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other.is_empty());
}
