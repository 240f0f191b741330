//! Every strategy step by step, and the automatic reverts.

use slipway_core::{InstanceState, Status};
use slipway_drivers::Workload;
use slipway_engine::Paused;

use crate::util::{Harness, RouterCall, STAGING, wait_until};

fn env(strategy: &str) -> String {
    format!(
        "    staging:\n      listen: 127.0.0.1:0\n      variables: {{ LOG_LEVEL: debug }}\n      strategy: {strategy}\n"
    )
}

const RECREATE: &str = "recreate";
const ROLLING: &str = "{ rolling: { replicas: 3, max_surge: 1, max_unavailable: 0 } }";
const BLUE_GREEN: &str = "{ blue-green: { scale_down_delay: 30ms } }";
const CANARY: &str = "{ canary: { steps: [{ weight: 10 }, { pause: 20ms }, { weight: 50 }, { pause: 20ms }], analysis: { interval: 5ms, max_error_rate: 5%, min_requests: 1, failure_limit: 1 } } }";

/// The splits `staging` was configured with for `web`, in order, as (release, weight).
fn history(h: &Harness) -> Vec<Vec<(String, f64)>> {
    h.world
        .lock()
        .router_calls
        .iter()
        .filter_map(|c| match c {
            RouterCall::Configure { env, config } | RouterCall::Open { env, config }
                if env == "staging" =>
            {
                config.services.iter().find(|s| s.name == "web").map(|s| {
                    s.releases
                        .iter()
                        .map(|r| (r.name.clone(), r.weight))
                        .collect()
                })
            }
            _ => None,
        })
        .collect()
}

fn all(version: &str) -> Vec<(String, f64)> {
    vec![(version.to_string(), 100.0)]
}

#[tokio::test]
async fn a_first_release_starts_switches_and_passes_its_smoke_tests() {
    let h = Harness::start(STAGING).await;
    let d = h.deploy_and_wait("staging", "v1", Status::Success).await;
    assert_eq!(h.world.split("staging", "web"), all("v1"));
    let lines = h.log_lines(d.id).await;
    for expected in [
        "healthy: GET /health: 200",
        "traffic: 100% to v1",
        "passed: GET /health: 200",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected}: {lines:#?}"
        );
    }
    let statuses: Vec<Status> = d.statuses.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [Status::Queued, Status::InProgress, Status::Success]
    );
}

#[tokio::test]
async fn instances_are_named_as_design_says_and_get_the_environment() {
    let h = Harness::start(&env(ROLLING)).await;
    h.deploy_and_wait("staging", "v1.2+b7", Status::Success)
        .await;
    let mut ids: Vec<String> = h
        .store_instances()
        .await
        .into_iter()
        .map(|i| i.id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "slipway-web-staging-v1.2_b7-1",
            "slipway-web-staging-v1.2_b7-2",
            "slipway-web-staging-v1.2_b7-3"
        ]
    );
    let state = h.world.lock();
    let spec = &state.instances.values().next().unwrap().spec;
    assert_eq!(spec.env["LOG_LEVEL"], "debug");
    assert_eq!(spec.env["SLIPWAY_VERSION"], "v1.2+b7");
    assert!(
        matches!(&spec.workload, Workload::Process { command, .. } if command.starts_with("web --port {port}"))
    );
}

#[tokio::test]
async fn a_successor_marks_the_previous_deployment_inactive() {
    let h = Harness::start(&env(BLUE_GREEN)).await;
    let v1 = h.deploy_and_wait("staging", "v1", Status::Success).await;
    let v2 = h.deploy_and_wait("staging", "v2", Status::Success).await;
    let v1 = h.wait_status(v1.id, Status::Inactive).await;
    assert_eq!(
        Harness::last_reason(&v1),
        format!("superseded by deployment {} (v2)", v2.id)
    );
}

#[tokio::test]
async fn recreate_stops_the_old_release_before_it_starts_the_new_one() {
    let h = Harness::start(&env(RECREATE)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let d = h.deploy_and_wait("staging", "v2", Status::Success).await;
    let lines = h.log_lines(d.id).await;
    let stop = lines
        .iter()
        .position(|l| l.starts_with("recreate: stopping v1 first"))
        .unwrap();
    let start = lines
        .iter()
        .position(|l| l.starts_with("started instance slipway-web-staging-v2-1"))
        .unwrap();
    assert!(stop < start, "{lines:#?}");
    assert_eq!((h.world.running_of("v1"), h.world.running_of("v2")), (0, 1));
    let splits = history(&h);
    assert!(
        splits
            .windows(2)
            .any(|w| w[0] == all("v1") && w[1].is_empty()),
        "a moment with no route after v1: {splits:?}"
    );
    assert_eq!(splits.last().unwrap(), &all("v2"));
}

#[tokio::test]
async fn recreate_brings_the_old_release_back_when_the_new_one_is_unhealthy() {
    let h = Harness::start(&env(RECREATE)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().unhealthy.insert("v2".into());
    let d = h.deploy_and_wait("staging", "v2", Status::Failure).await;
    assert!(Harness::last_reason(&d).starts_with("v2 never became healthy"));
    assert_eq!((h.world.running_of("v1"), h.world.running_of("v2")), (1, 0));
    assert_eq!(h.world.split("staging", "web"), all("v1"));
}

#[tokio::test]
async fn rolling_replaces_one_instance_at_a_time_within_the_surge() {
    let h = Harness::start(&env(ROLLING)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    assert_eq!(h.world.running_of("v1"), 3);
    h.world.lock().router_calls.clear();
    let d = h.deploy_and_wait("staging", "v2", Status::Success).await;
    let lines = h.log_lines(d.id).await;
    for n in 1..=3 {
        let line = format!("rolling: {n} of 3 on v2, ");
        assert!(
            lines.iter().any(|l| l.starts_with(&line)),
            "{line}: {lines:#?}"
        );
    }
    assert_eq!((h.world.running_of("v1"), h.world.running_of("v2")), (0, 3));
    for split in history(&h) {
        let total: f64 = split.iter().map(|(_, w)| w).sum();
        assert!(
            (total - 100.0).abs() < 1e-9 || split.is_empty(),
            "{split:?}"
        );
    }
    assert!(history(&h).contains(&vec![("v1".into(), 75.0), ("v2".into(), 25.0)]));
    assert_eq!(h.world.split("staging", "web"), all("v2"));
}

#[tokio::test]
async fn rolling_restores_every_old_replica_when_a_new_one_fails() {
    let h = Harness::start(&env(ROLLING)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().unhealthy.insert("v2".into());
    h.deploy_and_wait("staging", "v2", Status::Failure).await;
    assert_eq!((h.world.running_of("v1"), h.world.running_of("v2")), (3, 0));
    assert_eq!(h.world.split("staging", "web"), all("v1"));
}

#[tokio::test]
async fn blue_green_switches_at_once_and_scales_the_old_set_down_after_the_delay() {
    let h = Harness::start(&env(BLUE_GREEN)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().router_calls.clear();
    h.deploy_and_wait("staging", "v2", Status::Success).await;
    assert_eq!(history(&h), [all("v2")], "no split between the two");
    wait_until("v1 to be scaled down", || async {
        h.world.running_of("v1") == 0
    })
    .await;
    let kept = h.store_instances().await;
    assert!(
        kept.iter()
            .any(|i| i.version == "v1" && i.state == InstanceState::Stopped)
    );
}

#[tokio::test]
async fn blue_green_checks_the_new_set_on_its_preview_listener_first() {
    let envs = "    staging:\n      listen: 127.0.0.1:0\n      strategy: { blue-green: { scale_down_delay: 1h, preview: 127.0.0.1:0 } }\n";
    let h = Harness::start(envs).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().smoke_fails.insert("v2".into());
    h.world.lock().router_calls.clear();
    let d = h.deploy_and_wait("staging", "v2", Status::Failure).await;
    assert!(Harness::last_reason(&d).starts_with("on the preview listener: smoke test failed"));
    assert!(
        history(&h)
            .iter()
            .all(|s| !s.iter().any(|(v, _)| v == "v2")),
        "v2 never took live traffic"
    );
    assert_eq!(
        h.world.split("staging.preview", "web"),
        all("v1"),
        "the preview shows what runs"
    );
}

#[tokio::test]
async fn canary_walks_its_steps_and_ends_at_one_hundred_percent() {
    let h = Harness::start(&env(CANARY)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().router_calls.clear();
    let d = h.deploy_and_wait("staging", "v2", Status::Success).await;
    let weights: Vec<f64> = history(&h)
        .iter()
        .filter_map(|s| s.iter().find(|(v, _)| v == "v2").map(|(_, w)| *w))
        .collect();
    let mut steps = weights.clone();
    steps.dedup();
    assert_eq!(steps, [10.0, 50.0, 100.0], "{weights:?}");
    let lines = h.log_lines(d.id).await;
    assert!(lines.iter().any(|l| l.starts_with("pass: ")), "{lines:#?}");
    assert_eq!(h.world.split("staging", "web"), all("v2"));
}

#[tokio::test]
async fn a_first_canary_release_goes_to_one_hundred_percent_once_healthy() {
    let h = Harness::start(&env(CANARY)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    assert_eq!(history(&h).last().unwrap(), &all("v1"));
    assert!(history(&h).iter().all(|s| s.len() <= 1), "never split");
}

#[tokio::test]
async fn a_failed_analysis_returns_all_traffic_to_the_stable_release() {
    let h = Harness::start(&env(CANARY)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().error_rate.insert("v2".into(), 0.5);
    let d = h.deploy_and_wait("staging", "v2", Status::Failure).await;
    assert!(
        Harness::last_reason(&d).starts_with("canary analysis failed: error rate"),
        "{:#?}",
        d.statuses
    );
    assert_eq!(h.world.split("staging", "web"), all("v1"));
    assert_eq!((h.world.running_of("v1"), h.world.running_of("v2")), (1, 0));
    let lines = h.log_lines(d.id).await;
    assert!(lines.contains(&"traffic: 100% on v1 (the previous release)".to_string()));
}

#[tokio::test]
async fn a_manual_pause_waits_for_promote() {
    let strategy = "{ canary: { steps: [{ weight: 30 }, { pause: manual }], analysis: { interval: 5ms, min_requests: 1 } } }";
    let h = Harness::start(&env(strategy)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    let d = h.deploy("staging", "v2").await;
    wait_until("the pause", || async {
        h.engine.live(d.id).paused == Some(Paused::Manual)
    })
    .await;
    assert_eq!(h.get(d.id).await.status, Status::InProgress);
    assert!(
        h.engine.live(d.id).verdict().is_some(),
        "the analysis runs while paused"
    );
    h.engine.promote(d.id, &Harness::admin()).await.unwrap();
    h.wait_status(d.id, Status::Success).await;
    let err = h.engine.promote(d.id, &Harness::admin()).await.unwrap_err();
    assert_eq!(err.code(), "not_paused");
}

#[tokio::test]
async fn a_failed_health_check_reverts_a_blue_green_rollout() {
    let h = Harness::start(&env(BLUE_GREEN)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().unhealthy.insert("v2".into());
    let d = h.deploy_and_wait("staging", "v2", Status::Failure).await;
    assert!(Harness::last_reason(&d).contains("never became healthy"));
    assert_eq!(h.world.split("staging", "web"), all("v1"));
    assert_eq!(
        h.get(d.id - 1).await.status,
        Status::Success,
        "v1 stays current"
    );
}

#[tokio::test]
async fn a_failed_smoke_test_reverts_after_the_switch() {
    let h = Harness::start(&env(BLUE_GREEN)).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.world.lock().smoke_fails.insert("v2".into());
    let d = h.deploy_and_wait("staging", "v2", Status::Failure).await;
    assert!(Harness::last_reason(&d).starts_with("smoke test failed"));
    assert!(history(&h).contains(&all("v2")), "it had switched");
    assert_eq!(h.world.split("staging", "web"), all("v1"));
    assert_eq!(h.world.running_of("v2"), 0);
}

#[tokio::test]
async fn a_failed_first_release_leaves_an_empty_route() {
    let h = Harness::start(STAGING).await;
    h.world.lock().unhealthy.insert("v1".into());
    h.deploy_and_wait("staging", "v1", Status::Failure).await;
    assert!(h.world.split("staging", "web").is_empty());
    assert_eq!(h.world.running_of("v1"), 0);
}

#[tokio::test]
async fn retention_keeps_only_the_newest_releases() {
    let envs = "    staging:\n      listen: 127.0.0.1:0\n      keep_releases: 2\n      strategy: { blue-green: { scale_down_delay: 1h } }\n";
    let h = Harness::start(envs).await;
    for v in ["v1", "v2", "v3"] {
        h.deploy_and_wait("staging", v, Status::Success).await;
    }
    let kept = || async {
        let mut versions: Vec<String> = h
            .store_instances()
            .await
            .into_iter()
            .map(|i| i.version)
            .collect();
        versions.sort();
        versions
    };
    wait_until("v1 to be dropped", || async {
        kept().await == ["v2", "v3"]
    })
    .await;
}

#[tokio::test]
async fn a_pre_deploy_hook_that_fails_fails_the_deployment_before_any_instance() {
    let hooks = "    hooks: { pre_deploy: \"migrate up\", post_deploy: \"notify\" }";
    let h = Harness::start_with_hooks(STAGING, hooks).await;
    h.world.lock().failing_hooks.insert("migrate up".into());
    let d = h.deploy_and_wait("staging", "v1", Status::Failure).await;
    assert!(Harness::last_reason(&d).starts_with("pre_deploy hook exited"));
    assert!(h.world.lock().instances.is_empty());
    assert_eq!(h.world.lock().hooks_run, ["migrate up"]);
}

#[tokio::test]
async fn a_failing_post_deploy_hook_leaves_the_deployment_successful() {
    let hooks = "    hooks: { pre_deploy: \"migrate up\", post_deploy: \"notify\" }";
    let h = Harness::start_with_hooks(STAGING, hooks).await;
    h.world.lock().failing_hooks.insert("notify".into());
    let d = h.deploy_and_wait("staging", "v1", Status::Success).await;
    wait_until("the post_deploy warning", || async {
        h.log_lines(d.id)
            .await
            .iter()
            .any(|l| l.starts_with("warning: post_deploy hook exited"))
    })
    .await;
    assert_eq!(h.world.lock().hooks_run, ["migrate up", "notify"]);
}

#[tokio::test]
async fn a_rollback_runs_pre_rollback_and_reuses_the_kept_instance() {
    let hooks = "    hooks: { pre_rollback: \"migrate down\" }";
    let h =
        Harness::start_with_hooks(&env("{ blue-green: { scale_down_delay: 1h } }"), hooks).await;
    h.deploy_and_wait("staging", "v1", Status::Success).await;
    h.deploy_and_wait("staging", "v2", Status::Success).await;
    let started = h.world.lock().instances.len();
    let r = h
        .engine
        .rollback("web", "staging", None, &Harness::admin())
        .await
        .unwrap();
    let r = h.wait_status(r.id, Status::Success).await;
    assert_eq!(r.release.version, "v1");
    assert_eq!(h.world.lock().instances.len(), started, "no new instance");
    assert_eq!(h.world.lock().hooks_run, ["migrate down"]);
    assert_eq!(h.world.split("staging", "web"), all("v1"));
    h.wait_status(r.id - 1, Status::RolledBack).await;
}

#[tokio::test]
async fn an_app_whose_driver_the_server_lacks_errors_with_the_reason() {
    let h = Harness::start_with_driver("docker").await;
    let d = h.deploy_and_wait("staging", "v1", Status::Error).await;
    let reason = Harness::last_reason(&d);
    assert!(reason.contains("driver `docker`"), "{reason}");
}

#[tokio::test]
async fn a_container_app_gets_a_container_spec_with_the_labels_design_names() {
    let h = Harness::start_docker().await;
    let d = h.deploy_and_wait("staging", "v1", Status::Success).await;
    let state = h.world.lock();
    let spec = &state.instances.values().next().unwrap().spec;
    assert_eq!(spec.instance_id, "slipway-web-staging-v1-1");
    let Workload::Container {
        image,
        port,
        labels,
        pull,
        ..
    } = &spec.workload
    else {
        panic!("{spec:#?}");
    };
    assert_eq!((image.as_str(), *port), ("registry.example.com/web", 8080));
    assert_eq!(*pull, slipway_drivers::PullPolicy::IfMissing, "the default");
    let expected = [
        ("slipway.app", "web".to_string()),
        ("slipway.environment", "staging".to_string()),
        ("slipway.release", "v1".to_string()),
        ("slipway.deployment", d.id.to_string()),
    ];
    for (key, value) in expected {
        assert_eq!(labels.get(key), Some(&value), "{key}");
    }
}
