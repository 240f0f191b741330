//! Start-up after a crash: adopt, restore routes before listening, resume each phase.

use slipway_core::{InstanceState, Kind, Phase, Release, Status, StatusChange};
use slipway_drivers::{Driver, InstanceSpec, Workload};
use slipway_engine::Paused;
use slipway_store::{NewDeployment, Store};

use crate::util::{FakeDriver, Harness, RouterCall, STAGING, START, wait_until};

const BLUE_GREEN: &str = "    staging:\n      listen: 127.0.0.1:0\n      strategy: { blue-green: { scale_down_delay: 50ms } }\n";

/// Issue 14 item 6: a listener that opened before the routes were restored answered
/// `404 no app by that name` to the first requests after a restart.
#[tokio::test]
async fn a_restarted_engine_opens_its_listener_with_the_routes_in_place() {
    let mut h = Harness::start(STAGING).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().router_calls.clear();
    h.restart().await;
    let calls = h.world.lock().router_calls.clone();
    let first = calls
        .iter()
        .find(|c| matches!(c, RouterCall::Open { env, .. } | RouterCall::Configure { env, .. } if env == "staging"))
        .expect("the staging listener was opened");
    let RouterCall::Open { config, .. } = first else {
        panic!("staging was configured before it was opened: {calls:#?}");
    };
    let web = config
        .services
        .iter()
        .find(|s| s.name == "web")
        .unwrap_or_else(|| panic!("opened without web's route: {config:#?}"));
    assert_eq!(web.releases.len(), 1);
    assert_eq!(web.releases[0].name, "v1");
    assert_eq!(web.releases[0].weight, 100.0);
    assert_eq!(web.releases[0].instances.len(), 1);
}

#[tokio::test]
async fn an_app_with_no_release_yet_opens_with_an_empty_route_not_none() {
    let h = Harness::start(STAGING).await;
    let calls = h.world.lock().router_calls.clone();
    let RouterCall::Open { config, .. } = &calls[0] else {
        panic!("{calls:#?}");
    };
    let web = config.services.iter().find(|s| s.name == "web").unwrap();
    assert!(web.releases.is_empty(), "answers 503, not 404");
}

#[tokio::test]
async fn a_restart_readopts_running_instances_and_marks_gone_ones_stopped() {
    let mut h = Harness::start(STAGING).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.restart().await;
    assert_eq!(h.world.running_of("v1"), 1, "re-adopted, not restarted");
    assert_eq!(h.world.split("staging", "web"), [("v1".to_string(), 100.0)]);

    h.world.kill("v1");
    h.restart().await;
    let instances = h
        .store
        .instances(Some("web"), Some("staging"))
        .await
        .unwrap();
    assert!(instances.iter().all(|i| i.state == InstanceState::Stopped));
    let web = h.world.lock().listeners["staging"].1.services[0].clone();
    assert!(
        web.releases[0].instances.is_empty(),
        "no route to a dead instance"
    );
}

#[tokio::test]
async fn an_instance_started_but_never_recorded_is_stopped_at_start_up() {
    let mut h = Harness::start(STAGING).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let driver = FakeDriver(h.world.clone());
    let orphan = driver.start(&v2_spec(&h)).await.unwrap();
    h.restart().await;
    assert!(!driver.is_running(&orphan.handle).await);
    assert_eq!(h.world.running_of("v1"), 1, "the recorded one stays");
}

/// The first instance of `v2` in staging, as the engine would have asked for it.
fn v2_spec(h: &Harness) -> InstanceSpec {
    InstanceSpec {
        instance_id: "slipway-web-staging-v2-1".into(),
        scope: h.dir.path().join("data").display().to_string(),
        app: "web".into(),
        environment: "staging".into(),
        version: "v2".into(),
        env: Default::default(),
        workload: Workload::Process {
            command: "web".into(),
            log_path: h.dir.path().join("v2.log"),
            workdir: h.dir.path().to_path_buf(),
        },
    }
}

/// What a crash leaves: deployment `v2` in progress at `phase`, after a success of `v1`,
/// with `v2`'s instance already started when the phase says so.
async fn crashed_at(phase: Phase, envs: &str) -> (Harness, i64) {
    crashed(phase, envs, false).await
}

/// [`crashed_at`], with `v2`'s instance started and recorded before the crash.
async fn crashed_with_instance_at(phase: Phase, envs: &str) -> (Harness, i64) {
    crashed(phase, envs, true).await
}

async fn crashed(phase: Phase, envs: &str, started: bool) -> (Harness, i64) {
    let mut h = Harness::start(envs).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.engine.shutdown().await;
    let d = h
        .store
        .create_deployment(NewDeployment {
            app: "web".into(),
            environment: "staging".into(),
            release: Release {
                version: "v2".into(),
                git_ref: Some("main".into()),
                commit: None,
                committed_at: None,
                digest: None,
            },
            kind: Kind::Deploy,
            created_by: "admin".into(),
            created_at: START,
            reason: "created by admin".into(),
            rolled_back_from: None,
            force: None,
        })
        .await
        .unwrap();
    let change = StatusChange {
        status: Status::InProgress,
        at: START,
        actor: "slipway".into(),
        reason: "all gates passed; rollout started".into(),
    };
    h.store
        .transition(d.id, Status::Queued, change)
        .await
        .unwrap();
    h.store.set_phase(d.id, phase).await.unwrap();
    if started {
        let spec = v2_spec(&h);
        let run = FakeDriver(h.world.clone()).start(&spec).await.unwrap();
        let instance = slipway_core::Instance {
            id: spec.instance_id,
            app: "web".into(),
            environment: "staging".into(),
            version: "v2".into(),
            deployment_id: d.id,
            handle: run.handle,
            addr: run.addr.to_string(),
            state: InstanceState::Running,
            started_at: START,
        };
        h.store.put_instance(&instance).await.unwrap();
    }
    h.restart().await;
    (h, d.id)
}

#[tokio::test]
async fn a_crash_before_the_rollout_started_anything_resumes_it() {
    let (h, id) = crashed_at(Phase::Pending, BLUE_GREEN).await;
    h.wait_status(id, Status::Success).await;
    assert_eq!(h.world.split("staging", "web"), [("v2".to_string(), 100.0)]);
}

#[tokio::test]
async fn a_crash_while_starting_resumes_and_starts_one_instance() {
    let (h, id) = crashed_at(Phase::Starting, BLUE_GREEN).await;
    h.wait_status(id, Status::Success).await;
    assert_eq!(h.world.running_of("v2"), 1);
}

#[tokio::test]
async fn a_crash_while_shifting_with_no_instance_up_fails_and_returns_traffic() {
    let (h, id) = crashed_at(Phase::Shifting, BLUE_GREEN).await;
    let d = h.wait_status(id, Status::Failure).await;
    assert!(
        Harness::last_reason(&d).contains("no running instance"),
        "{d:#?}"
    );
    assert_eq!(h.world.split("staging", "web"), [("v1".to_string(), 100.0)]);
}

#[tokio::test]
async fn a_crash_while_shifting_with_the_instance_up_switches_and_succeeds() {
    let (h, id) = crashed_with_instance_at(Phase::Shifting, BLUE_GREEN).await;
    h.wait_status(id, Status::Success).await;
    assert_eq!(
        h.world.running_of("v2"),
        1,
        "the instance was adopted, not doubled"
    );
    assert_eq!(h.world.split("staging", "web"), [("v2".to_string(), 100.0)]);
}

#[tokio::test]
async fn a_crash_while_starting_after_the_instance_was_recorded_reuses_it() {
    let (h, id) = crashed_with_instance_at(Phase::Starting, BLUE_GREEN).await;
    h.wait_status(id, Status::Success).await;
    assert_eq!(h.world.running_of("v2"), 1);
    let lines = h.log_lines(id).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("using running instance slipway-web-staging-v2-1")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_crash_while_verifying_runs_the_smoke_tests_again_and_succeeds() {
    let (h, id) = crashed_at(Phase::Verifying, BLUE_GREEN).await;
    let d = h.wait_status(id, Status::Success).await;
    assert!(Harness::last_reason(&d).contains("smoke test(s) passed"));
}

#[tokio::test]
async fn a_crash_while_reverting_ends_the_deployment_failed_on_the_old_release() {
    let (h, id) = crashed_at(Phase::Reverting, BLUE_GREEN).await;
    let d = h.wait_status(id, Status::Failure).await;
    assert!(Harness::last_reason(&d).contains("restarted while this rollout was being reverted"));
    assert_eq!(h.world.split("staging", "web"), [("v1".to_string(), 100.0)]);
    assert_eq!(h.store.get_deployment(id).await.unwrap().phase, Phase::Done);
}

#[tokio::test]
async fn a_restart_mid_rollout_resumes_the_rollout_where_it_was() {
    let envs = "    staging:\n      listen: 127.0.0.1:0\n      strategy: { canary: { steps: [{ weight: 20 }, { pause: manual }], analysis: { interval: 5ms, min_requests: 1 } } }\n";
    let mut h = Harness::start(envs).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let d = h.deploy("staging", "v2").await;
    wait_until("the manual pause", || async {
        h.engine.live(d.id).paused == Some(Paused::Manual)
    })
    .await;
    h.restart().await;
    wait_until("the pause again", || async {
        h.engine.live(d.id).paused == Some(Paused::Manual)
    })
    .await;
    assert!(
        h.log_lines(d.id)
            .await
            .iter()
            .any(|l| l == "canary: resuming at step 2 of 3")
    );
    assert_eq!(
        h.world.split("staging", "web"),
        [("v1".to_string(), 80.0), ("v2".to_string(), 20.0)]
    );
    h.engine.promote(d.id, &Harness::admin()).await.unwrap();
    h.wait_status(d.id, Status::Success).await;
    assert_eq!(
        h.world.running_of("v2"),
        1,
        "the instance was re-adopted, not doubled"
    );
}

#[tokio::test]
async fn a_blue_green_scale_down_cut_by_a_restart_is_finished_after_it() {
    let envs = "    staging:\n      listen: 127.0.0.1:0\n      strategy: { blue-green: { scale_down_delay: 1h } }\n";
    let mut h = Harness::start(envs).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.deploy_and_wait("staging", "v2", Status::Success).await;
    assert_eq!(h.world.running_of("v1"), 1, "kept for the delay");
    // The delay has passed while the server was down.
    h.clock.advance(std::time::Duration::from_secs(3600));
    h.restart().await;
    wait_until("v1 to be scaled down", || async {
        h.world.running_of("v1") == 0
    })
    .await;
    let instances = h
        .store
        .instances(Some("web"), Some("staging"))
        .await
        .unwrap();
    assert!(
        instances
            .iter()
            .any(|i| i.version == "v1" && i.state == InstanceState::Stopped),
        "kept as stopped for a rollback"
    );
}
