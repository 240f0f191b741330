//! The contract of [`Store`], as test functions any implementation runs: each takes a
//! fresh, empty store. `sqlite.rs` runs them against a database file and an in-memory
//! database; a second engine (PostgreSQL) runs the same list.
#![allow(dead_code)] // a test binary may run only some of them

pub mod notifications;

use std::sync::Arc;
use std::time::Instant;

use slipway_config::Role;
use slipway_core::{
    Approval, Decision, Deployment, Force, Instance, InstanceState, Kind, Phase, Release, Status,
    StatusChange,
};
use slipway_store::{DeploymentFilter, Error, NewDeployment, OutboxEvent, Store};

/// Runs `$store` (an expression giving a fresh `Arc<dyn Store>`, with whatever guard it
/// needs kept alive as `_guard`) through every contract test, as one `#[tokio::test]` each.
#[macro_export]
macro_rules! store_contract {
    ($make:expr) => {
        $crate::store_contract!(@tests $make;
            deployment_round_trips_with_statuses_and_approvals,
            unknown_deployment_is_not_found_everywhere,
            transition_conflict_leaves_state_unchanged,
            list_filters_limits_and_orders_newest_first,
            list_defaults_to_50_caps_at_1000_and_loads_a_full_page_quickly,
            unfinished_are_oldest_first_and_latest_with_status_is_newest,
            release_succeeded_in_counts_success_and_inactive_and_checks_digest,
            logs_are_numbered_per_deployment_and_paged,
            concurrent_log_appends_get_distinct_seqs,
            instances_upsert_filter_and_delete,
            users_tokens_and_lookup,
            concurrent_transitions_exactly_one_wins,
            outbox_holds_every_status_change_in_order_and_cursors_never_move_back,
            the_last_admin_cannot_be_demoted_but_one_of_two_can
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, _guard) = $make;
                $crate::contract::$name(store).await;
            }
        )*
    };
}

pub fn release(version: &str) -> Release {
    Release {
        version: version.to_owned(),
        commit: None,
        git_ref: None,
        committed_at: None,
        digest: None,
    }
}

pub fn new(app: &str, env: &str, version: &str, at: i64) -> NewDeployment {
    NewDeployment {
        app: app.to_owned(),
        environment: env.to_owned(),
        release: release(version),
        kind: Kind::Deploy,
        created_by: "admin".to_owned(),
        created_at: at,
        reason: "requested".to_owned(),
        rolled_back_from: None,
        force: None,
    }
}

pub fn change(status: Status, at: i64) -> StatusChange {
    StatusChange {
        status,
        at,
        actor: "engine".to_owned(),
        reason: format!("to {status}"),
    }
}

/// Creates a deployment and walks it through `path` (each step from the previous status).
pub async fn deployment_through(
    store: &dyn Store,
    new_deployment: NewDeployment,
    path: &[Status],
) -> Deployment {
    let mut d = store.create_deployment(new_deployment).await.unwrap();
    for (i, &status) in path.iter().enumerate() {
        let at = d.created_at + 1 + i as i64;
        d = store
            .transition(d.id, d.status, change(status, at))
            .await
            .unwrap();
    }
    d
}

pub fn instance(id: &str, app: &str, env: &str, started_at: i64) -> Instance {
    Instance {
        id: id.to_owned(),
        app: app.to_owned(),
        environment: env.to_owned(),
        version: "v1".to_owned(),
        deployment_id: 1,
        handle: format!("pid:{started_at}:99"),
        addr: "127.0.0.1:4000".to_owned(),
        state: InstanceState::Running,
        started_at,
    }
}

pub async fn deployment_round_trips_with_statuses_and_approvals(store: Arc<dyn Store>) {
    let created = store
        .create_deployment(NewDeployment {
            app: "web".to_owned(),
            environment: "production".to_owned(),
            release: Release {
                version: "v2".to_owned(),
                commit: Some("3f2a9c1".to_owned()),
                git_ref: Some("main".to_owned()),
                committed_at: Some(1_000),
                digest: Some("sha256:abc".to_owned()),
            },
            kind: Kind::Rollback,
            created_by: "alice".to_owned(),
            created_at: 5_000,
            reason: "bad canary".to_owned(),
            rolled_back_from: Some("v3".to_owned()),
            force: Some(Force {
                by: "root".to_owned(),
                reason: "freeze override".to_owned(),
            }),
        })
        .await
        .unwrap();
    assert_eq!(created.status, Status::Queued);
    assert_eq!(created.phase, Phase::Pending);
    assert_eq!(created.updated_at, 5_000);
    assert_eq!(
        created.statuses,
        vec![StatusChange {
            status: Status::Queued,
            at: 5_000,
            actor: "alice".to_owned(),
            reason: "bad canary".to_owned(),
        }]
    );

    let waiting = store
        .transition(created.id, Status::Queued, change(Status::Waiting, 6_000))
        .await
        .unwrap();
    let bob = Approval {
        user: "bob".to_owned(),
        decision: Decision::Approve,
        comment: Some("lgtm".to_owned()),
        at: 7_000,
    };
    let carol = Approval {
        user: "carol".to_owned(),
        decision: Decision::Reject,
        comment: None,
        at: 7_500,
    };
    store.add_approval(waiting.id, bob.clone()).await.unwrap();
    let approved = store.add_approval(waiting.id, carol.clone()).await.unwrap();
    assert_eq!(approved.approvals, vec![bob, carol]);
    assert_eq!(approved.updated_at, 7_500);
    store.set_phase(created.id, Phase::Shifting).await.unwrap();
    store.set_step(created.id, 3).await.unwrap();

    let got = store.get_deployment(created.id).await.unwrap();
    assert_eq!(got.phase, Phase::Shifting);
    assert_eq!(got.step, 3);
    assert_eq!(got.status, Status::Waiting);
    assert_eq!(
        Deployment {
            phase: Phase::Pending,
            step: 0,
            ..got.clone()
        },
        approved
    );
    assert_eq!(got.release, created.release);
    assert_eq!(got.kind, Kind::Rollback);
    assert_eq!(got.rolled_back_from.as_deref(), Some("v3"));
    assert_eq!(got.force, created.force);
    assert_eq!(got.entered(Status::Waiting), Some(6_000));

    let forced = Force {
        by: "admin".to_owned(),
        reason: "again".to_owned(),
    };
    store.set_force(got.id, forced.clone()).await.unwrap();
    assert_eq!(
        store.get_deployment(got.id).await.unwrap().force,
        Some(forced)
    );
}

pub async fn unknown_deployment_is_not_found_everywhere(store: Arc<dyn Store>) {
    let is_not_found = |r: Result<(), Error>| matches!(r, Err(Error::NotFound { .. }));
    assert!(is_not_found(store.get_deployment(42).await.map(drop)));
    assert!(is_not_found(
        store
            .transition(42, Status::Queued, change(Status::Waiting, 1))
            .await
            .map(drop)
    ));
    assert!(is_not_found(store.set_phase(42, Phase::Done).await));
    assert!(is_not_found(store.set_step(42, 1).await));
    assert!(is_not_found(
        store
            .set_force(
                42,
                Force {
                    by: "a".into(),
                    reason: "b".into()
                }
            )
            .await
    ));
    assert!(is_not_found(
        store
            .add_approval(
                42,
                Approval {
                    user: "a".into(),
                    decision: Decision::Approve,
                    comment: None,
                    at: 1
                }
            )
            .await
            .map(drop)
    ));
    assert!(is_not_found(
        store.append_log(42, 1, "engine", "x").await.map(drop)
    ));
}

pub async fn transition_conflict_leaves_state_unchanged(store: Arc<dyn Store>) {
    let d = deployment_through(
        store.as_ref(),
        new("web", "staging", "v1", 100),
        &[Status::Waiting],
    )
    .await;

    let err = store
        .transition(d.id, Status::Queued, change(Status::InProgress, 500))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                current: Status::Waiting
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.get_deployment(d.id).await.unwrap(), d);
}

pub async fn list_filters_limits_and_orders_newest_first(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = deployment_through(s, new("web", "staging", "v1", 10), &[Status::Waiting]).await;
    let b = deployment_through(s, new("web", "production", "v1", 20), &[]).await;
    let c = deployment_through(s, new("api", "staging", "v1", 30), &[Status::Waiting]).await;
    let mut rollback = new("web", "staging", "v0", 40);
    rollback.kind = Kind::Rollback;
    let d = deployment_through(s, rollback, &[]).await;

    let ids = |list: Vec<Deployment>| list.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let list =
        |filter: DeploymentFilter| async move { ids(s.list_deployments(&filter).await.unwrap()) };

    assert_eq!(
        list(DeploymentFilter::default()).await,
        [d.id, c.id, b.id, a.id]
    );
    let web = DeploymentFilter {
        app: Some("web".into()),
        ..Default::default()
    };
    assert_eq!(list(web.clone()).await, [d.id, b.id, a.id]);
    assert_eq!(
        list(DeploymentFilter {
            environment: Some("staging".into()),
            ..web.clone()
        })
        .await,
        [d.id, a.id]
    );
    assert_eq!(
        list(DeploymentFilter {
            status: Some(Status::Waiting),
            ..Default::default()
        })
        .await,
        [c.id, a.id]
    );
    assert_eq!(
        list(DeploymentFilter {
            kind: Some(Kind::Rollback),
            ..Default::default()
        })
        .await,
        [d.id]
    );
    assert_eq!(
        list(DeploymentFilter {
            limit: Some(2),
            ..Default::default()
        })
        .await,
        [d.id, c.id]
    );
    assert!(
        list(DeploymentFilter {
            app: Some("nope".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // Listed deployments carry their full history and approvals, like `get`.
    let listed = s.list_deployments(&web).await.unwrap();
    assert_eq!(listed[2], s.get_deployment(a.id).await.unwrap());
    assert_eq!(listed[2].statuses.len(), 2);
}

pub async fn list_defaults_to_50_caps_at_1000_and_loads_a_full_page_quickly(store: Arc<dyn Store>) {
    let total = 1_005;
    let started = Instant::now();
    for i in 0..total {
        let d = deployment_through(
            store.as_ref(),
            new("web", "staging", &format!("v{i}"), i),
            &[Status::Waiting, Status::InProgress, Status::Success],
        )
        .await;
        store
            .add_approval(
                d.id,
                Approval {
                    user: "bob".into(),
                    decision: Decision::Approve,
                    comment: None,
                    at: i,
                },
            )
            .await
            .unwrap();
    }
    eprintln!(
        "wrote {total} deployments (5 transactions each) in {:?}",
        started.elapsed()
    );

    let default = store
        .list_deployments(&DeploymentFilter::default())
        .await
        .unwrap();
    assert_eq!(default.len(), 50);
    assert_eq!(default[0].release.version, format!("v{}", total - 1));

    let started = Instant::now();
    let all = store
        .list_deployments(&DeploymentFilter {
            limit: Some(100_000),
            ..Default::default()
        })
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!("listed {} deployments in {took:?}", all.len());
    assert_eq!(all.len(), 1_000);
    assert!(
        all.iter()
            .all(|d| d.statuses.len() == 4 && d.approvals.len() == 1)
    );
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    // A sanity bound for a loaded 2-core machine (measured: ~150 ms debug, ~75 ms release);
    // the batching itself is by construction, two queries per page.
    assert!(took.as_secs() < 5, "listing 1000 took {took:?}");
}

pub async fn unfinished_are_oldest_first_and_latest_with_status_is_newest(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let done = deployment_through(
        s,
        new("web", "staging", "v1", 1),
        &[Status::Waiting, Status::InProgress, Status::Success],
    )
    .await;
    let queued = deployment_through(s, new("web", "staging", "v2", 2), &[]).await;
    let running = deployment_through(
        s,
        new("api", "staging", "v1", 3),
        &[Status::Waiting, Status::InProgress],
    )
    .await;
    let cancelled =
        deployment_through(s, new("web", "staging", "v3", 4), &[Status::Cancelled]).await;
    let later_success = deployment_through(
        s,
        new("web", "production", "v1", 5),
        &[Status::Waiting, Status::InProgress, Status::Success],
    )
    .await;

    let unfinished: Vec<_> = s
        .unfinished_deployments()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(unfinished, [queued.id, running.id]);

    let latest = s
        .latest_with_status("web", "staging", &[Status::Success, Status::Cancelled])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest, cancelled);
    let success = s
        .latest_with_status("web", "staging", &[Status::Success])
        .await
        .unwrap();
    assert_eq!(success.map(|d| d.id), Some(done.id));
    assert_eq!(
        s.latest_with_status("web", "staging", &[]).await.unwrap(),
        None
    );
    assert_eq!(
        s.latest_with_status("web", "qa", &[Status::Success])
            .await
            .unwrap(),
        None
    );
    assert_ne!(later_success.id, done.id);

    let counts = s.count_by_status().await.unwrap();
    assert_eq!(counts.len(), Status::ALL.len());
    let count = |status: Status| counts.iter().find(|(s, _)| *s == status).unwrap().1;
    assert_eq!(count(Status::Success), 2);
    assert_eq!(count(Status::Queued), 1);
    assert_eq!(count(Status::InProgress), 1);
    assert_eq!(count(Status::Cancelled), 1);
    assert_eq!(count(Status::Failure), 0);
    s.ping().await.unwrap();
}

pub async fn release_succeeded_in_counts_success_and_inactive_and_checks_digest(
    store: Arc<dyn Store>,
) {
    let s = store.as_ref();
    let with_digest = |version: &str, digest: Option<&str>| {
        let mut n = new("web", "staging", version, 1);
        n.release.digest = digest.map(str::to_owned);
        n
    };
    let ok = [Status::Waiting, Status::InProgress, Status::Success];
    deployment_through(s, with_digest("v1", Some("sha256:aaa")), &ok).await;
    deployment_through(
        s,
        with_digest("v2", None),
        &[
            Status::Waiting,
            Status::InProgress,
            Status::Success,
            Status::Inactive,
        ],
    )
    .await;
    deployment_through(
        s,
        with_digest("v3", None),
        &[Status::Waiting, Status::InProgress, Status::Failure],
    )
    .await;
    deployment_through(
        s,
        with_digest("v4", None),
        &[Status::Waiting, Status::InProgress],
    )
    .await;

    let ok = |v, d| s.release_succeeded_in("web", "staging", v, d);
    assert!(ok("v1", None).await.unwrap());
    assert!(ok("v1", Some("sha256:aaa")).await.unwrap());
    assert!(
        !ok("v1", Some("sha256:bbb")).await.unwrap(),
        "digest mismatch"
    );
    assert!(ok("v2", None).await.unwrap(), "inactive had succeeded");
    assert!(
        !ok("v2", Some("sha256:aaa")).await.unwrap(),
        "no digest recorded"
    );
    assert!(!ok("v3", None).await.unwrap(), "failed");
    assert!(!ok("v4", None).await.unwrap(), "still in progress");
    assert!(
        !s.release_succeeded_in("web", "production", "v1", None)
            .await
            .unwrap()
    );
    assert!(
        !s.release_succeeded_in("api", "staging", "v1", None)
            .await
            .unwrap()
    );
}

pub async fn logs_are_numbered_per_deployment_and_paged(store: Arc<dyn Store>) {
    let a = store
        .create_deployment(new("web", "staging", "v1", 1))
        .await
        .unwrap();
    let b = store
        .create_deployment(new("web", "staging", "v2", 2))
        .await
        .unwrap();
    for i in 1..=5 {
        let seq = store
            .append_log(a.id, 100 + i, "engine", &format!("line {i}"))
            .await
            .unwrap();
        assert_eq!(seq, i);
    }
    assert_eq!(
        store.append_log(b.id, 200, "app", "other").await.unwrap(),
        1
    );

    let first = store.logs(a.id, 0, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["line 1", "line 2"]
    );
    assert_eq!(first[0].deployment_id, a.id);
    assert_eq!(first[0].at, 101);
    assert_eq!(first[0].source, "engine");
    let rest = store.logs(a.id, first[1].seq, 100).await.unwrap();
    assert_eq!(rest.iter().map(|l| l.seq).collect::<Vec<_>>(), [3, 4, 5]);
    assert!(store.logs(a.id, 5, 100).await.unwrap().is_empty());
    assert_eq!(store.logs(b.id, 0, 100).await.unwrap().len(), 1);
}

pub async fn concurrent_log_appends_get_distinct_seqs(store: Arc<dyn Store>) {
    let store = store.clone();
    let d = store
        .create_deployment(new("web", "staging", "v1", 1))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    store
                        .append_log(d.id, i, "app", &format!("{t}-{i}"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let seqs: Vec<i64> = store
        .logs(d.id, 0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|l| l.seq)
        .collect();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
}

pub async fn instances_upsert_filter_and_delete(store: Arc<dyn Store>) {
    let s = store.as_ref();
    s.put_instance(&instance("web-staging-v1-1", "web", "staging", 10))
        .await
        .unwrap();
    s.put_instance(&instance("web-staging-v1-0", "web", "staging", 5))
        .await
        .unwrap();
    s.put_instance(&instance("api-staging-v1-0", "api", "staging", 1))
        .await
        .unwrap();
    s.put_instance(&instance("web-production-v1-0", "web", "production", 1))
        .await
        .unwrap();

    let mut stopped = instance("web-staging-v1-1", "web", "staging", 10);
    stopped.state = InstanceState::Stopped;
    stopped.addr = "127.0.0.1:4001".to_owned();
    s.put_instance(&stopped).await.unwrap();

    let ids = |list: Vec<Instance>| list.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let staging_web = s.instances(Some("web"), Some("staging")).await.unwrap();
    assert_eq!(staging_web[1], stopped);
    assert_eq!(ids(staging_web), ["web-staging-v1-0", "web-staging-v1-1"]);
    assert_eq!(s.instances(None, None).await.unwrap().len(), 4);
    assert_eq!(
        ids(s.instances(None, Some("staging")).await.unwrap()),
        ["api-staging-v1-0", "web-staging-v1-0", "web-staging-v1-1"]
    );
    assert_eq!(
        ids(s.instances(Some("web"), None).await.unwrap()),
        [
            "web-production-v1-0",
            "web-staging-v1-0",
            "web-staging-v1-1"
        ]
    );

    s.delete_instance("web-staging-v1-0").await.unwrap();
    s.delete_instance("web-staging-v1-0").await.unwrap();
    assert_eq!(
        ids(s.instances(Some("web"), Some("staging")).await.unwrap()),
        ["web-staging-v1-1"]
    );
}

pub async fn users_tokens_and_lookup(store: Arc<dyn Store>) {
    let s = store.as_ref();
    assert_eq!(s.count_users().await.unwrap(), 0);
    let alice = s
        .create_user("alice", Role::Deployer, "hash-a", 10)
        .await
        .unwrap();
    assert_eq!(
        (alice.name.as_str(), alice.role, alice.created_at),
        ("alice", Role::Deployer, 10)
    );
    assert_eq!(
        s.user_by_token_hash("hash-a").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(s.user_by_token_hash("unknown").await.unwrap(), None);

    let again = s
        .create_user("alice", Role::Viewer, "hash-x", 20)
        .await
        .unwrap_err();
    assert!(matches!(again, Error::AlreadyExists { .. }), "{again:?}");
    let same_token = s
        .create_user("bob", Role::Viewer, "hash-a", 20)
        .await
        .unwrap_err();
    assert!(
        matches!(same_token, Error::AlreadyExists { .. }),
        "{same_token:?}"
    );
    assert_eq!(s.user_by_token_hash("hash-x").await.unwrap(), None);
    assert_eq!(s.count_users().await.unwrap(), 1);

    // A new token replaces the old one; the user keeps its creation time.
    let rotated = s
        .set_user_token("alice", Role::Approver, "hash-b", 30)
        .await
        .unwrap();
    assert_eq!((rotated.role, rotated.created_at), (Role::Approver, 10));
    assert_eq!(s.user_by_token_hash("hash-a").await.unwrap(), None);
    assert_eq!(s.user_by_token_hash("hash-b").await.unwrap(), Some(rotated));

    let carol = s
        .set_user_token("carol", Role::Deployer, "hash-c", 40)
        .await
        .unwrap();
    assert_eq!(carol.created_at, 40);
    assert_eq!(s.count_users().await.unwrap(), 2);
}

pub async fn concurrent_transitions_exactly_one_wins(store: Arc<dyn Store>) {
    // Through the trait object, as the engine and the server hold it.
    for round in 0..20 {
        let d = store
            .create_deployment(new("web", "staging", "v1", round))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let race = |to: Status| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.transition(d.id, Status::Queued, change(to, 10)).await
            })
        };
        let (first, second) = (race(Status::Waiting), race(Status::Cancelled));
        let results = [first.await.unwrap(), second.await.unwrap()];
        let winners: Vec<&Deployment> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let winner = winners[0].status;
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(
            matches!(loser, Error::Conflict { current } if *current == winner),
            "round {round}: {loser:?}"
        );
        let stored = store.get_deployment(d.id).await.unwrap();
        assert_eq!(stored.status, winner);
        assert_eq!(stored.statuses.len(), 2);
    }
}

pub async fn outbox_holds_every_status_change_in_order_and_cursors_never_move_back(
    store: Arc<dyn Store>,
) {
    let a = deployment_through(
        store.as_ref(),
        new("web", "staging", "v1", 1),
        &[Status::Waiting],
    )
    .await;
    let b = deployment_through(
        store.as_ref(),
        new("api", "staging", "v2", 2),
        &[Status::Waiting, Status::InProgress],
    )
    .await;
    let a = store
        .transition(a.id, Status::Waiting, change(Status::Cancelled, 9))
        .await
        .unwrap();
    let entries = store.outbox_after(0, 100).await.unwrap();
    let got: Vec<(i64, Status)> = entries
        .iter()
        .map(|e| match &e.event {
            OutboxEvent::Status { deployment, change } => (deployment.id, change.status),
            other => panic!("not a status change: {other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (a.id, Status::Queued),
            (a.id, Status::Waiting),
            (b.id, Status::Queued),
            (b.id, Status::Waiting),
            (b.id, Status::InProgress),
            (a.id, Status::Cancelled),
        ]
    );
    assert!(
        matches!(&entries[5].event, OutboxEvent::Status { change, .. } if *change == a.statuses[2])
    );
    let d = entries[2].deployment().unwrap();
    assert_eq!((d.app.as_str(), d.version.as_str()), ("api", "v2"));
    assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq));
    let rest = store.outbox_after(entries[3].seq, 100).await.unwrap();
    assert_eq!(rest, entries[4..]);
    assert_eq!(store.outbox_after(0, 2).await.unwrap(), entries[..2]);

    // A refused transition writes nothing.
    assert!(
        store
            .transition(a.id, Status::Waiting, change(Status::InProgress, 10))
            .await
            .is_err()
    );
    assert_eq!(store.outbox_after(entries[5].seq, 100).await.unwrap(), []);

    assert_eq!(store.outbox_cursor("webhook").await.unwrap(), 0);
    store
        .set_outbox_cursor("webhook", entries[3].seq)
        .await
        .unwrap();
    store
        .set_outbox_cursor("webhook", entries[1].seq)
        .await
        .unwrap();
    assert_eq!(
        store.outbox_cursor("webhook").await.unwrap(),
        entries[3].seq
    );
    assert_eq!(
        store.outbox_cursor("chat").await.unwrap(),
        0,
        "per notifier"
    );
}

pub async fn the_last_admin_cannot_be_demoted_but_one_of_two_can(store: Arc<dyn Store>) {
    let s = store.as_ref();
    s.set_user_token("admin", Role::Admin, "hash-admin", 1)
        .await
        .unwrap();
    let refused = s
        .set_user_token("admin", Role::Viewer, "hash-new", 2)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::LastAdmin { .. }), "{refused:?}");
    // Nothing changed: the old token still works, with the admin role.
    let admin = s.user_by_token_hash("hash-admin").await.unwrap().unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(s.user_by_token_hash("hash-new").await.unwrap(), None);
    // A new token for the admin, keeping the role, is fine.
    s.set_user_token("admin", Role::Admin, "hash-admin-2", 3)
        .await
        .unwrap();
    // With a second admin, the first may step down.
    s.set_user_token("root", Role::Admin, "hash-root", 4)
        .await
        .unwrap();
    let demoted = s
        .set_user_token("admin", Role::Viewer, "hash-admin-3", 5)
        .await
        .unwrap();
    assert_eq!(demoted.role, Role::Viewer);
    let last = s
        .set_user_token("root", Role::Deployer, "hash-root-2", 6)
        .await
        .unwrap_err();
    assert!(matches!(last, Error::LastAdmin { .. }), "{last:?}");
}
