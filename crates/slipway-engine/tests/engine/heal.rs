//! Dead instances of a serving release are replaced (`heal.rs`); one that dies during a
//! rollout fails it. Leftovers (instances no record owns) are removed only by `gc`.

use std::net::SocketAddr;
use std::time::Duration;

use slipway_core::Status;
use slipway_drivers::{Driver, InstanceSpec, Workload};
use slipway_engine::Paused;

use crate::util::{FakeDriver, Harness, STAGING, wait_until};

const EVERY: Duration = Duration::from_millis(10);

/// Where the staging router sends `web`'s release `version`.
fn routed(h: &Harness, version: &str) -> Vec<SocketAddr> {
    let state = h.world.lock();
    state.listeners["staging"]
        .1
        .services
        .iter()
        .flat_map(|s| s.releases.iter())
        .filter(|r| r.name == version)
        .flat_map(|r| r.instances.clone())
        .collect()
}

#[tokio::test]
async fn an_instance_killed_behind_the_engines_back_is_replaced_and_routed() {
    let h = Harness::start_checking(STAGING, EVERY).await;
    let d = h.deploy_and_wait("staging", "v1", Status::Success).await;
    let before = routed(&h, "v1");
    assert_eq!(before.len(), 1);

    h.world.kill("v1");
    wait_until("a replacement to take the route", || async {
        let now = routed(&h, "v1");
        now.len() == 1 && now != before && h.world.running_of("v1") == 1
    })
    .await;
    let lines = h.log_lines(d.id).await;
    let gone = format!(
        "instance slipway-web-staging-v1-1 ({}) is gone: it is no longer running; replacing it",
        before[0]
    );
    assert!(lines.contains(&gone), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("replaced: slipway-web-staging-v1-1 serves v1 on")),
        "{lines:#?}"
    );
    assert_eq!(
        h.store_instances().await.len(),
        1,
        "the dead one is forgotten"
    );
    assert_eq!(
        h.get(d.id).await.status,
        Status::Success,
        "no status changes"
    );
}

#[tokio::test]
async fn replacements_that_keep_failing_back_off_then_recover() {
    let h = Harness::start_checking(STAGING, EVERY).await;
    let d = h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().unhealthy.insert("v1".into());
    h.world.kill("v1");
    let failed = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("did not become healthy"))
            .count()
    };
    wait_until("a failed replacement", || async {
        failed(&h.log_lines(d.id).await) >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Without backing off it would have tried about 40 times by now.
    let attempts = failed(&h.log_lines(d.id).await);
    assert!(attempts <= 8, "{attempts} attempts in half a second");
    assert!(routed(&h, "v1").is_empty(), "no route to an unhealthy one");

    h.world.lock().unhealthy.clear();
    wait_until("the release to run again", || async {
        routed(&h, "v1").len() == 1
    })
    .await;
}

#[tokio::test]
async fn an_instance_that_dies_mid_canary_fails_the_rollout() {
    let strategy = "{ canary: { steps: [{ weight: 30 }, { pause: manual }], analysis: { interval: 5ms, min_requests: 1 } } }";
    let envs = format!("    staging:\n      listen: 127.0.0.1:0\n      strategy: {strategy}\n");
    let h = Harness::start_checking(&envs, EVERY).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let d = h.deploy("staging", "v2").await;
    wait_until("the pause", || async {
        h.engine.live(d.id).paused == Some(Paused::Manual)
    })
    .await;

    h.world.kill("v2");
    let d = h.wait_status(d.id, Status::Failure).await;
    assert_eq!(
        Harness::last_reason(&d),
        "instance slipway-web-staging-v2-1 died during the rollout: it is no longer running"
    );
    assert_eq!(h.world.split("staging", "web"), [("v1".to_string(), 100.0)]);
    assert_eq!(routed(&h, "v1").len(), 1, "v1 keeps serving");
}

/// An instance the fake driver runs for this server that no record owns.
async fn orphan(h: &Harness) -> String {
    let spec = InstanceSpec {
        instance_id: "slipway-web-staging-v0-1".into(),
        scope: h.dir.path().join("data").display().to_string(),
        app: "web".into(),
        environment: "staging".into(),
        version: "v0".into(),
        env: Default::default(),
        workload: Workload::Process {
            command: "web".into(),
            log_path: h.dir.path().join("v0.log"),
            workdir: h.dir.path().to_path_buf(),
        },
    };
    FakeDriver(h.world.clone())
        .start(&spec)
        .await
        .unwrap()
        .handle
}

#[tokio::test]
async fn gc_removes_leftovers_for_an_admin_only_and_never_during_a_rollout() {
    let strategy = "{ canary: { steps: [{ weight: 30 }, { pause: manual }], analysis: { interval: 5ms, min_requests: 1 } } }";
    let envs = format!("    staging:\n      listen: 127.0.0.1:0\n      strategy: {strategy}\n");
    let h = Harness::start(&envs).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let handle = orphan(&h).await;
    let leftovers = h.engine.leftovers().await.unwrap();
    assert_eq!(leftovers.len(), 1, "{leftovers:#?}");
    assert_eq!(
        (leftovers[0].handle.as_str(), leftovers[0].driver),
        (handle.as_str(), "process")
    );

    let e = h.engine.gc(&Harness::alice()).await.unwrap_err();
    assert_eq!(e.code(), "forbidden");

    // A rollout may be about to record what it started: its leftovers wait.
    let d = h.deploy("staging", "v2").await;
    wait_until("the pause", || async {
        h.engine.live(d.id).paused == Some(Paused::Manual)
    })
    .await;
    let report = h.engine.gc(&Harness::admin()).await.unwrap();
    assert!(report.removed.is_empty());
    assert!(
        report.skipped[0].1.contains("web in staging is under way"),
        "{report:#?}"
    );
    assert_eq!(h.world.running_of("v0"), 1);

    h.engine.promote(d.id, &Harness::admin()).await.unwrap();
    h.wait_status(d.id, Status::Success).await;
    let report = h.engine.gc(&Harness::admin()).await.unwrap();
    assert_eq!(report.removed.len(), 1);
    assert_eq!(h.world.running_of("v0"), 0);
    assert!(h.engine.leftovers().await.unwrap().is_empty());
    assert_eq!(h.world.running_of("v2"), 1, "what the store owns stays");
}
