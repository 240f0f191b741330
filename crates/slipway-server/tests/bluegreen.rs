//! Blue-green with a preview listener and a scale-down delay: the new set is smoke-tested
//! on the preview before it takes live traffic, and the old set stops after the delay.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use util::{TestServer, wait_until};

const ENV: &str = "    staging:\n      listen: 127.0.0.1:0\n      strategy: { blue-green: { preview: 127.0.0.1:0, scale_down_delay: 300ms } }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_failing_its_smoke_tests_on_the_preview_never_takes_live_traffic() {
    let s = TestServer::start(ENV).await;
    s.deploy_and_wait("staging", "v1", "success").await;
    assert_eq!(
        s.through_router("staging.preview").await.1.trim(),
        "ok release=v1",
        "outside a switch the preview shows what runs"
    );

    s.faulty("v2", "--error-rate 1.0");
    let d = s.deploy_and_wait("staging", "v2", "failure").await;
    assert!(
        TestServer::last_reason(&d).starts_with("on the preview listener: smoke test failed"),
        "{d:#}"
    );
    let lines = s.log_lines(d["id"].as_i64().unwrap()).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("preview: v2 answers on")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("traffic: 100% to v2")),
        "v2 never took live traffic: {lines:#?}"
    );
    assert_eq!(s.through_router("staging").await.1.trim(), "ok release=v1");
    assert_eq!(
        s.through_router("staging.preview").await.1.trim(),
        "ok release=v1",
        "the preview is back on v1 too"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_set_stops_after_the_scale_down_delay_and_a_rollback_restarts_it() {
    let s = TestServer::start(ENV).await;
    s.deploy_and_wait("staging", "v1", "success").await;
    s.deploy_and_wait("staging", "v2", "success").await;
    assert_eq!(
        s.through_router("staging.preview").await.1.trim(),
        "ok release=v2"
    );
    wait_until("v1 to scale down", || async {
        s.instance_states("staging", "v1").await == ["stopped"]
    })
    .await;
    assert_eq!(s.instance_states("staging", "v2").await, ["running"]);

    let rb = s.rollback("staging", None).await;
    s.ends(&rb, "success").await;
    assert_eq!(s.through_router("staging").await.1.trim(), "ok release=v1");
    assert!(
        s.instance_states("staging", "v1")
            .await
            .contains(&"running".to_string())
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_down_delay_cut_by_a_restart_is_waited_out_after_it() {
    let mut s = TestServer::start(
        "    staging:\n      listen: 127.0.0.1:0\n      strategy: { blue-green: { scale_down_delay: 3s } }\n",
    )
    .await;
    s.deploy_and_wait("staging", "v1", "success").await;
    s.deploy_and_wait("staging", "v2", "success").await;
    s.restart().await;
    // The delay has not run out yet: the old set is still there for an instant rollback.
    assert_eq!(s.instance_states("staging", "v1").await, ["running"]);
    wait_until("v1 to scale down after the restart", || async {
        s.instance_states("staging", "v1").await == ["stopped"]
    })
    .await;
    assert_eq!(s.instance_states("staging", "v2").await, ["running"]);
    assert_eq!(s.through_router("staging").await.1.trim(), "ok release=v2");
    s.stop().await;
}
