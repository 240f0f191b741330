//! Deployment hooks against a real server: a hook runs in its own process group, ends when
//! its shell does (a background child neither holds the deployment nor outlives it), is
//! killed with its children on its `timeout:`, and its output is in the deployment log as
//! it comes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::time::{Duration, Instant};

use util::{Reap, TestServer, alive, demo_app, printed_pid};

/// A server whose `web` app has `hooks` (YAML of the hooks mapping, `{dir}` replaced by
/// the test's dir) and one environment, `staging`.
async fn server_with_hooks(hooks: &str) -> TestServer {
    server_with_hooks_and_variables(hooks, "{}").await
}

/// The same, with `variables` (a YAML mapping) for `staging`.
async fn server_with_hooks_and_variables(hooks: &str, variables: &str) -> TestServer {
    TestServer::start_yaml(|dir| {
        format!(
            r#"version: 1
server:
  listen: 127.0.0.1:0
  data_dir: {data}
  tick: 50ms
apps:
  web:
    run: "{app} --port {{port}} --release {{version}}"
    health: {{ path: /health, interval: 100ms, timeout: 1s, start_period: 10s }}
    hooks: {hooks}
environments:
  staging:
    listen: 127.0.0.1:0
    strategy: recreate
    variables: {variables}
"#,
            data = dir.join("data").display(),
            app = demo_app().display(),
            hooks = hooks.replace("{dir}", &dir.display().to_string()),
        )
    })
    .await
}

#[tokio::test]
async fn a_hook_that_backgrounds_a_child_ends_at_once_and_takes_the_child_with_it() {
    let s = server_with_hooks(r#"{ pre_deploy: "sleep 1000 & echo pid=$!; echo started" }"#).await;
    let started = Instant::now();
    let d = s.deploy_and_wait("staging", "v1", "success").await;
    // Before, it waited for the pipe the sleep held: the whole 300 s hook timeout.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let lines = s.log_lines(d["id"].as_i64().unwrap()).await;
    let sleep = printed_pid(&lines);
    let _reap = Reap(sleep);
    assert!(lines.iter().any(|l| l == "started"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("left 1 process") && l.contains(&sleep.to_string())),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l == "pre_deploy hook succeeded"),
        "{lines:#?}"
    );
    assert!(
        !alive(sleep),
        "the hook's background sleep {sleep} still runs"
    );
}

#[tokio::test]
async fn a_hook_that_times_out_is_killed_with_its_child_and_fails_the_deployment() {
    let s = server_with_hooks(
        r#"{ pre_deploy: { run: "sleep 1000 & echo pid=$!; wait", timeout: 500ms } }"#,
    )
    .await;
    let d = s.deploy_and_wait("staging", "v1", "failure").await;
    let reason = TestServer::last_reason(&d);
    assert!(
        reason.contains("pre_deploy hook ran longer than 500ms"),
        "{reason}"
    );
    let lines = s.log_lines(d["id"].as_i64().unwrap()).await;
    let sleep = printed_pid(&lines);
    let _reap = Reap(sleep);
    assert!(
        !alive(sleep),
        "the hook's child {sleep} outlived its timeout"
    );
    // Nothing was started for a deployment whose pre_deploy failed.
    assert!(s.instance_states("staging", "v1").await.is_empty());
}

#[tokio::test]
async fn hook_output_is_in_the_log_while_the_hook_still_runs() {
    let s = server_with_hooks(
        r#"{ pre_deploy: "echo first; while [ ! -e '{dir}/go' ]; do sleep 0.05; done; echo second" }"#,
    )
    .await;
    let (status, d) = s.deploy(&s.admin, "staging", "v1").await;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_i64().unwrap();
    // The hook cannot end before the test has read its first line from the log.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.log_lines(id).await.iter().any(|l| l == "first") {
        assert!(Instant::now() < deadline, "{:#?}", s.log_lines(id).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!s.log_lines(id).await.iter().any(|l| l == "second"));
    std::fs::write(s.dir.path().join("go"), "").unwrap();
    s.ends(&d, "success").await;
    let lines = s.log_lines(id).await;
    let at = |want: &str| lines.iter().position(|l| l == want).unwrap();
    assert!(at("first") < at("second"), "{lines:#?}");
}

#[tokio::test]
async fn a_hook_runs_with_the_environments_variables_only() {
    let s =
        server_with_hooks_and_variables(r#"{ pre_deploy: "env" }"#, "{ LOG_LEVEL: debug }").await;
    // Set for this test process, which is the server here, by cargo.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let d = s.deploy_and_wait("staging", "v1", "success").await;
    let lines = s.log_lines(d["id"].as_i64().unwrap()).await;
    assert!(lines.iter().any(|l| l == "LOG_LEVEL=debug"), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l == "SLIPWAY_VERSION=v1"),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("CARGO_")),
        "the server's environment reached the hook: {lines:#?}"
    );
}
