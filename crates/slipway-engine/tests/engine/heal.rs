//! Dead instances of a serving release are replaced (`heal.rs`); one that dies during a
//! rollout fails it.

use std::net::SocketAddr;
use std::time::Duration;

use slipway_core::Status;
use slipway_engine::Paused;

use crate::util::{Harness, STAGING, wait_until};

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
