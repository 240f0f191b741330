//! The contract of [`PipelineStore`], run against a SQLite database file and an in-memory
//! one: runs with their jobs, guarded status changes with their history, each commit of
//! a branch starting one run, and the run log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod contract;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use slipway_pipeline::Status;
use slipway_store::{
    Error, JobKind, NewJob, NewRun, PipelineStore, RunChange, RunFilter, SqliteStore, Trigger,
};
use sqlx::Connection;

/// Runs `check` on a fresh file store and a fresh in-memory one.
async fn on_both<F, Fut>(check: F)
where
    F: Fn(Arc<dyn PipelineStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let file = SqliteStore::open(&dir.path().join("slipway.db"))
        .await
        .unwrap();
    check(Arc::new(file)).await;
    check(Arc::new(SqliteStore::open_in_memory().await.unwrap())).await;
}

fn new_run(pipeline: &str, at: i64) -> NewRun {
    NewRun {
        pipeline: pipeline.to_owned(),
        trigger: Trigger::Push,
        commit: Some(format!("{at:07x}")),
        git_ref: Some("main".to_owned()),
        inputs: BTreeMap::from([("version".to_owned(), "v1".to_owned())]),
        group: Some("release".to_owned()),
        created_by: "pipeline:release".to_owned(),
        created_at: at,
        reason: "pushed".to_owned(),
        jobs: vec![
            NewJob {
                name: "build".to_owned(),
                needs: vec![],
                kind: JobKind::Steps,
            },
            NewJob {
                name: "deploy".to_owned(),
                needs: vec!["build".to_owned()],
                kind: JobKind::Deploy,
            },
        ],
        head_of: None,
    }
}

fn change(run: i64, job: Option<&str>, from: Status, to: Status, at: i64) -> RunChange {
    RunChange {
        run,
        job: job.map(str::to_owned),
        from,
        to,
        at,
        reason: format!("to {to}"),
        outputs: None,
    }
}

#[tokio::test]
async fn a_run_round_trips_with_its_jobs_and_lists_newest_first() {
    on_both(|store| async move {
        let first = store.create_run(new_run("release", 1_000)).await.unwrap();
        assert_eq!(first.status, Status::Queued);
        assert_eq!(
            (first.trigger, first.reason.as_str()),
            (Trigger::Push, "pushed")
        );
        assert_eq!(first.inputs["version"], "v1");
        assert_eq!(first.group.as_deref(), Some("release"));
        let names: Vec<&str> = first.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["build", "deploy"]);
        let deploy = first.job("deploy").unwrap();
        assert_eq!(
            (deploy.kind, deploy.needs.clone()),
            (JobKind::Deploy, vec!["build".to_owned()])
        );
        assert_eq!((deploy.status, deploy.attempt), (Status::Queued, 0));
        assert_eq!(store.get_run(first.id).await.unwrap(), first);

        let second = store.create_run(new_run("release", 2_000)).await.unwrap();
        let other = store.create_run(new_run("nightly", 3_000)).await.unwrap();
        let all = store.list_runs(&RunFilter::default()).await.unwrap();
        let ids: Vec<i64> = all.iter().map(|r| r.id).collect();
        assert_eq!(ids, [other.id, second.id, first.id]);
        let release = RunFilter {
            pipeline: Some("release".to_owned()),
            limit: Some(1),
            ..RunFilter::default()
        };
        assert_eq!(store.list_runs(&release).await.unwrap()[0].id, second.id);

        store
            .transition_run(change(
                first.id,
                None,
                Status::Queued,
                Status::Cancelled,
                4_000,
            ))
            .await
            .unwrap();
        let unfinished: Vec<i64> = store
            .unfinished_runs()
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(unfinished, [second.id, other.id]);
        assert!(matches!(
            store.get_run(999).await,
            Err(Error::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn a_change_happens_only_from_the_status_it_expects_and_enters_the_history() {
    on_both(|store| async move {
        let run = store.create_run(new_run("release", 1_000)).await.unwrap();
        let id = run.id;
        store
            .transition_run(change(id, None, Status::Queued, Status::InProgress, 1_100))
            .await
            .unwrap();
        store
            .transition_run(change(
                id,
                Some("build"),
                Status::Queued,
                Status::InProgress,
                1_200,
            ))
            .await
            .unwrap();
        // A stale writer: nothing is written.
        let stale = store
            .transition_run(change(
                id,
                Some("build"),
                Status::Queued,
                Status::Skipped,
                1_250,
            ))
            .await;
        assert!(
            matches!(
                stale,
                Err(Error::RunConflict {
                    current: Status::InProgress,
                    ..
                })
            ),
            "{stale:?}"
        );
        // A retry, then a second attempt that succeeds with outputs.
        store
            .transition_run(change(
                id,
                Some("build"),
                Status::InProgress,
                Status::Queued,
                1_300,
            ))
            .await
            .unwrap();
        store
            .transition_run(change(
                id,
                Some("build"),
                Status::Queued,
                Status::InProgress,
                1_400,
            ))
            .await
            .unwrap();
        let mut done = change(
            id,
            Some("build"),
            Status::InProgress,
            Status::Success,
            1_500,
        );
        done.outputs = Some(BTreeMap::from([("version".to_owned(), "sha-1".to_owned())]));
        store.transition_run(done).await.unwrap();

        let run = store.get_run(id).await.unwrap();
        assert_eq!(
            (run.status, run.started_at, run.finished_at),
            (Status::InProgress, Some(1_100), None)
        );
        let build = run.job("build").unwrap();
        assert_eq!(build.status, Status::Success);
        assert_eq!(
            (build.attempt, build.started_at, build.finished_at),
            (2, Some(1_400), Some(1_500))
        );
        assert_eq!(build.outputs["version"], "sha-1");
        assert_eq!(build.reason, "to success");

        // A job points only at a deployment that exists, of a job that exists.
        assert!(store.set_job_deployment(id, "deploy", 7).await.is_err());
        assert_eq!(store.job_of_deployment(7).await.unwrap(), None);
        assert!(matches!(
            store.set_job_deployment(id, "nope", 7).await,
            Err(Error::NotFound { .. })
        ));
        store.set_committed_at(id, 900).await.unwrap();
        assert_eq!(store.get_run(id).await.unwrap().committed_at, Some(900));
        assert!(matches!(
            store
                .transition_run(change(id, Some("nope"), Status::Queued, Status::Skipped, 1))
                .await,
            Err(Error::NotFound { .. })
        ));

        let lines: Vec<String> = store
            .run_logs(id, None, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.stream == "status")
            .map(|l| l.message)
            .collect();
        assert_eq!(lines.first().map(String::as_str), Some("queued: pushed"));
        assert_eq!(
            lines.last().map(String::as_str),
            Some("success: to success")
        );
        let history: Vec<(Option<String>, Status)> = store
            .run_statuses(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.job, e.status))
            .collect();
        let build = || Some("build".to_owned());
        assert_eq!(
            history,
            [
                (None, Status::Queued),
                (None, Status::InProgress),
                (build(), Status::InProgress),
                (build(), Status::Queued),
                (build(), Status::InProgress),
                (build(), Status::Success),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn each_head_of_a_branch_starts_one_run() {
    on_both(|store| async move {
        let mut push = new_run("release", 1_000);
        push.head_of = Some("main".to_owned());
        store.create_run(push.clone()).await.unwrap();
        assert!(matches!(
            store.create_run(push.clone()).await,
            Err(Error::AlreadyExists { .. })
        ));
        let mut other_branch = push.clone();
        other_branch.head_of = Some("release/1".to_owned());
        store.create_run(other_branch).await.unwrap();
        let mut other_pipeline = push.clone();
        other_pipeline.pipeline = "nightly".to_owned();
        store.create_run(other_pipeline).await.unwrap();
        let mut next_commit = push.clone();
        next_commit.commit = Some("abcdef0".to_owned());
        store.create_run(next_commit).await.unwrap();
        // A dispatch of the same commit is not a push: it always runs.
        let mut dispatch = push;
        dispatch.head_of = None;
        dispatch.trigger = Trigger::Dispatch;
        store.create_run(dispatch).await.unwrap();
        assert_eq!(
            store.list_runs(&RunFilter::default()).await.unwrap().len(),
            5
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_log_is_numbered_per_run_filtered_by_job_and_paged() {
    on_both(|store| async move {
        let a = store
            .create_run(new_run("release", 1_000))
            .await
            .unwrap()
            .id;
        let b = store
            .create_run(new_run("release", 2_000))
            .await
            .unwrap()
            .id;
        let appends: Vec<_> = (0..40)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let job = if i % 2 == 0 { Some("build") } else { None };
                    store
                        .append_run_log(a, job, i, "stdout", &format!("line {i}"))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for append in appends {
            seqs.push(append.await.unwrap());
        }
        seqs.sort();
        // Line 1 of each run is its `queued` status.
        assert_eq!(seqs, (2..=41).collect::<Vec<i64>>());
        assert_eq!(
            store
                .append_run_log(b, None, 1, "runner", "b")
                .await
                .unwrap(),
            2
        );
        let build = store.run_logs(a, Some("build"), 0, 100).await.unwrap();
        assert_eq!(build.len(), 20);
        assert!(build.iter().all(|l| l.job.as_deref() == Some("build")));
        let page = store.run_logs(a, None, 10, 5).await.unwrap();
        let seqs: Vec<i64> = page.iter().map(|l| l.seq).collect();
        assert_eq!(seqs, [11, 12, 13, 14, 15]);
        assert_eq!(
            store.run_logs(a, None, 0, 1).await.unwrap()[0].stream,
            "status"
        );
        assert!(matches!(
            store.append_run_log(999, None, 1, "runner", "x").await,
            Err(Error::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn runs_survive_a_reopen_and_their_history_cannot_be_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slipway.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let run = store.create_run(new_run("release", 1_000)).await.unwrap();
    store
        .transition_run(change(
            run.id,
            None,
            Status::Queued,
            Status::InProgress,
            1_100,
        ))
        .await
        .unwrap();
    store.close().await;

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.get_run(run.id).await.unwrap().status,
        Status::InProgress
    );
    let mut raw = sqlx::sqlite::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(&path),
    )
    .await
    .unwrap();
    for statement in [
        "UPDATE pipeline_statuses SET status = 'success'",
        "DELETE FROM pipeline_statuses",
    ] {
        let refused = sqlx::query(statement).execute(&mut raw).await;
        assert!(refused.is_err(), "{statement} was allowed");
    }
    // A status this version does not know is reported, not guessed.
    sqlx::query("UPDATE pipeline_runs SET status = 'exploded'")
        .execute(&mut raw)
        .await
        .unwrap();
    assert!(matches!(
        store.get_run(run.id).await,
        Err(Error::Corrupt { .. })
    ));
}

#[tokio::test]
async fn a_runs_start_and_end_enter_the_notification_outbox_and_its_jobs_do_not() {
    use slipway_core::notify::RunEventKind;
    use slipway_store::{OutboxEvent, Store};
    let store = SqliteStore::open_in_memory().await.unwrap();
    let id = store
        .create_run(new_run("release", 1_000))
        .await
        .unwrap()
        .id;
    for (job, from, to, at) in [
        (None, Status::Queued, Status::InProgress, 1_100),
        (Some("build"), Status::Queued, Status::InProgress, 1_200),
        (Some("build"), Status::InProgress, Status::Failure, 1_300),
        (None, Status::InProgress, Status::Failure, 1_400),
    ] {
        store
            .transition_run(change(id, job, from, to, at))
            .await
            .unwrap();
        if at == 1_100 {
            // A deployment created meanwhile enters the same outbox, in between.
            store
                .create_deployment(contract::new("web", "staging", "v1", 1_150))
                .await
                .unwrap();
        }
    }
    let events: Vec<_> = store
        .outbox_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.event {
            OutboxEvent::Run(run) => Some((run.run_id, run.pipeline, run.kind, run.at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        [
            Some((id, "release".to_owned(), RunEventKind::Started, 1_100)),
            None,
            Some((id, "release".to_owned(), RunEventKind::Failed, 1_400)),
        ]
    );
}

#[tokio::test]
async fn a_deployment_knows_the_run_and_job_that_made_it() {
    use slipway_store::Store as _;
    let store = SqliteStore::open_in_memory().await.unwrap();
    let run = store.create_run(new_run("release", 1_000)).await.unwrap();
    let made = store
        .create_deployment(contract::new("web", "staging", "v1", 1_100))
        .await
        .unwrap();
    let by_hand = store
        .create_deployment(contract::new("web", "staging", "v2", 1_200))
        .await
        .unwrap();
    store
        .set_job_deployment(run.id, "deploy", made.id)
        .await
        .unwrap();
    assert_eq!(
        store.job_of_deployment(made.id).await.unwrap(),
        Some((run.id, "release".to_owned(), "deploy".to_owned()))
    );
    assert_eq!(store.job_of_deployment(by_hand.id).await.unwrap(), None);
}
