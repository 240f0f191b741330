//! What the web console stores: sessions (tied to the token they came from) and pages of
//! the history and of the pipeline runs, against a real database file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod contract;

use contract::{deployment_through, new};
use slipway_config::Role;
use slipway_core::Status;
use slipway_store::{
    Cursor, Error, HistoryQuery, HistoryStore, JobKind, NewJob, NewRun, NewSession, PipelineStore,
    RunChange, RunPageQuery, SessionStore, SqliteStore, Store, Trigger,
};

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("slipway.db"))
        .await
        .unwrap()
}

fn session(id: &str, token_hash: &str, expires_at: i64) -> NewSession {
    NewSession {
        id_hash: id.to_owned(),
        token_hash: token_hash.to_owned(),
        csrf: format!("csrf-of-{id}"),
        created_at: 1_000,
        expires_at,
    }
}

#[tokio::test]
async fn a_session_names_its_user_as_the_user_is_now_and_ends_with_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store
        .create_user("alice", Role::Viewer, "hash-a1", 0)
        .await
        .unwrap();
    store
        .create_session(&session("s1", "hash-a1", 5_000))
        .await
        .unwrap();

    let s = store.session("s1").await.unwrap().unwrap();
    assert_eq!(
        (s.user.as_str(), s.role, s.csrf.as_str(), s.expires_at),
        ("alice", Role::Viewer, "csrf-of-s1", 5_000)
    );
    assert!(store.session("s2").await.unwrap().is_none());

    // A new role counts at once; a new token ends the sessions of the old one.
    store
        .set_user_token("alice", Role::Approver, "hash-a1", 2_000)
        .await
        .unwrap();
    assert_eq!(
        store.session("s1").await.unwrap().unwrap().role,
        Role::Approver
    );
    store
        .set_user_token("alice", Role::Approver, "hash-a2", 3_000)
        .await
        .unwrap();
    assert!(store.session("s1").await.unwrap().is_none());

    // No session for a token no user holds.
    let err = store
        .create_session(&session("s3", "hash-a1", 5_000))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(store.session("s3").await.unwrap().is_none());
}

#[tokio::test]
async fn sessions_are_deleted_by_id_and_by_expiry_and_kept_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store
        .create_user("bob", Role::Deployer, "hash-b", 0)
        .await
        .unwrap();
    for (id, expires) in [
        ("old", 1_500),
        ("edge", 2_000),
        ("new", 9_000),
        ("gone", 9_000),
    ] {
        store
            .create_session(&session(id, "hash-b", expires))
            .await
            .unwrap();
    }
    store.delete_session("gone").await.unwrap();
    store.delete_session("gone").await.unwrap();
    assert_eq!(store.delete_expired_sessions(2_000).await.unwrap(), 2);
    store.close().await;

    let store = open(&dir).await;
    let left: Vec<bool> = {
        let mut v = Vec::new();
        for id in ["old", "edge", "new", "gone"] {
            v.push(store.session(id).await.unwrap().is_some());
        }
        v
    };
    assert_eq!(left, [false, false, true, false]);
}

async fn deployment(store: &SqliteStore, app: &str, env: &str, n: i64, end: Status) {
    let path: &[Status] = if end == Status::Queued { &[] } else { &[end] };
    deployment_through(store, new(app, env, &format!("v{n}"), n), path).await;
}

fn versions(page: &slipway_store::HistoryPage) -> Vec<String> {
    page.deployments
        .iter()
        .map(|d| d.release.version.clone())
        .collect()
}

#[tokio::test]
async fn history_pages_go_both_ways_by_id_with_filters_and_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    for n in 1..=7 {
        let env = if n % 2 == 0 { "production" } else { "staging" };
        let end = if n == 3 {
            Status::Failure
        } else {
            Status::Success
        };
        deployment(&store, "web", env, n, end).await;
    }
    deployment(&store, "api", "staging", 8, Status::Queued).await;

    let mut q = HistoryQuery {
        limit: 3,
        ..HistoryQuery::default()
    };
    let first = store.history_page(&q).await.unwrap();
    assert_eq!(versions(&first), ["v8", "v7", "v6"]);
    assert_eq!((first.total, first.newer, first.older), (8, false, true));
    assert_eq!(first.deployments[1].statuses.len(), 2, "with its history");

    q.cursor = Cursor::Before(first.deployments[2].id);
    let second = store.history_page(&q).await.unwrap();
    assert_eq!(versions(&second), ["v5", "v4", "v3"]);
    assert_eq!((second.newer, second.older), (true, true));

    q.cursor = Cursor::Before(second.deployments[2].id);
    let last = store.history_page(&q).await.unwrap();
    assert_eq!(versions(&last), ["v2", "v1"]);
    assert_eq!((last.newer, last.older), (true, false));

    q.cursor = Cursor::After(last.deployments[0].id);
    let back = store.history_page(&q).await.unwrap();
    assert_eq!(
        versions(&back),
        ["v5", "v4", "v3"],
        "newest first going back too"
    );

    q.cursor = Cursor::Before(1);
    let past = store.history_page(&q).await.unwrap();
    assert!(past.deployments.is_empty());
    assert_eq!((past.newer, past.older), (true, false));

    let filtered = HistoryQuery {
        app: Some("web".to_owned()),
        environment: Some("staging".to_owned()),
        status: Some(Status::Success),
        limit: 10,
        ..HistoryQuery::default()
    };
    let page = store.history_page(&filtered).await.unwrap();
    assert_eq!(versions(&page), ["v7", "v5", "v1"]);
    assert_eq!((page.total, page.newer, page.older), (3, false, false));

    let none = HistoryQuery {
        app: Some("nope".to_owned()),
        limit: 10,
        ..HistoryQuery::default()
    };
    let page = store.history_page(&none).await.unwrap();
    assert_eq!((page.total, page.newer, page.older), (0, false, false));
}

/// A run of `pipeline` with one job, ended `end` unless that is `queued`.
async fn run(store: &SqliteStore, pipeline: &str, at: i64, end: slipway_pipeline::Status) -> i64 {
    use slipway_pipeline::Status as S;
    let r = store
        .create_run(NewRun {
            pipeline: pipeline.to_owned(),
            trigger: Trigger::Dispatch,
            commit: None,
            git_ref: None,
            inputs: Default::default(),
            group: None,
            created_by: "admin".to_owned(),
            created_at: at,
            reason: "dispatched by admin".to_owned(),
            jobs: vec![NewJob {
                name: "build".to_owned(),
                needs: vec![],
                kind: JobKind::Steps,
            }],
            head_of: None,
        })
        .await
        .unwrap();
    if end != S::Queued {
        for (from, to) in [(S::Queued, S::InProgress), (S::InProgress, end)] {
            store
                .transition_run(RunChange {
                    run: r.id,
                    job: None,
                    from,
                    to,
                    at: at + 1,
                    reason: to.to_string(),
                    outputs: None,
                })
                .await
                .unwrap();
        }
    }
    r.id
}

#[tokio::test]
async fn run_pages_go_both_ways_by_id_with_filters_a_count_and_the_jobs() {
    use slipway_pipeline::Status as S;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        let pipeline = if n % 2 == 0 { "nightly" } else { "release" };
        let end = if n == 5 { S::Queued } else { S::Success };
        ids.push(run(&store, pipeline, n, end).await);
    }
    let mut q = RunPageQuery {
        limit: 2,
        ..RunPageQuery::default()
    };
    let first = store.run_page(&q).await.unwrap();
    let got: Vec<i64> = first.runs.iter().map(|r| r.id).collect();
    assert_eq!(got, [ids[4], ids[3]]);
    assert_eq!((first.total, first.newer, first.older), (5, false, true));
    assert_eq!(first.runs[0].jobs[0].name, "build", "with its jobs");

    q.cursor = Cursor::Before(ids[3]);
    let second = store.run_page(&q).await.unwrap();
    let got: Vec<i64> = second.runs.iter().map(|r| r.id).collect();
    assert_eq!(got, [ids[2], ids[1]]);
    assert_eq!((second.newer, second.older), (true, true));
    q.cursor = Cursor::After(ids[0]);
    let back = store.run_page(&q).await.unwrap();
    let got: Vec<i64> = back.runs.iter().map(|r| r.id).collect();
    assert_eq!(got, [ids[2], ids[1]], "newest first going back too");

    let filtered = RunPageQuery {
        pipeline: Some("release".to_owned()),
        status: Some(S::Success),
        limit: 10,
        ..RunPageQuery::default()
    };
    let page = store.run_page(&filtered).await.unwrap();
    let got: Vec<i64> = page.runs.iter().map(|r| r.id).collect();
    assert_eq!(got, [ids[2], ids[0]]);
    assert_eq!((page.total, page.newer, page.older), (2, false, false));
}
