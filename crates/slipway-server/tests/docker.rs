//! Docker apps end to end against the real Docker Engine, with the demo images built FROM
//! scratch by `bench/docker-images.sh` (no registry is reachable here): promotion,
//! strategies, rollback reusing kept containers, re-adoption, and the errors that must
//! change nothing. Environment names are unique per test, because container names
//! (`slipway-<app>-<env>-<version>-<n>`) are global on the Docker host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use util::docker::{APP, DockerServer, blue_green, docker, image_id, unique};
use util::{TestServer, wait_until};

fn digest(d: &Value) -> &str {
    d["digest"].as_str().unwrap_or_default()
}

/// A protected canary environment, after `requires` when not empty.
fn canary(env: &str, requires: &str) -> String {
    let requires = if requires.is_empty() {
        String::new()
    } else {
        format!("      requires: [{requires}]\n")
    };
    format!(
        r#"    {env}:
      listen: 127.0.0.1:0
{requires}      protection:
        branches: [main]
      strategy:
        canary:
          steps: [{{ weight: 20 }}, {{ pause: 200ms }}, {{ weight: 60 }}, {{ pause: 200ms }}]
          analysis: {{ interval: 100ms, max_error_rate: 5%, min_requests: 0, failure_limit: 1, progress_deadline: 30s }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_app_goes_through_staging_into_production_by_its_digest() {
    let (stg, prd) = (unique("stg"), unique("prd"));
    let s = DockerServer::start(&format!("{}{}", blue_green(&stg), canary(&prd, &stg))).await;

    let d = s.deploy_and_wait(&stg, "v1", "success").await;
    assert_eq!(digest(&d), image_id("v1"), "the digest is recorded: {d:#}");
    assert_eq!(
        s.body(&stg).await,
        "ok release=v1",
        "traffic reaches the container"
    );
    let lines = s.log_lines(d["id"].as_i64().unwrap()).await;
    assert!(
        lines.iter().any(|l| l.contains("listening on")),
        "the container's output is in the deployment log: {lines:#?}"
    );

    let d = s.deploy_and_wait(&stg, "v2", "success").await;
    assert_eq!(digest(&d), image_id("v2"));
    assert_eq!(s.body(&stg).await, "ok release=v2");

    // A mutable tag is refused in the protected environment, before any container.
    let before = s.containers();
    let (status, err) = s.deploy(&s.admin, &prd, "latest").await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"latest\" is a mutable tag"),
        "{err}"
    );
    assert_eq!(s.containers(), before);

    s.deploy_and_wait(&prd, "v1", "success").await;
    let d = s.deploy_and_wait(&prd, "v2", "success").await;
    assert_eq!(digest(&d), image_id("v2"));
    assert_eq!(TestServer::split(&d), [("v2".to_string(), 100.0)]);
    assert_eq!(s.body(&prd).await, "ok release=v2");
    let lines = s.log_lines(d["id"].as_i64().unwrap()).await;
    assert!(
        lines.iter().any(|l| l == "canary: 20% of traffic to v2"),
        "{lines:#?}"
    );
    let name = format!("slipway-web-{prd}-v2-1");
    assert!(s.running_names().contains(&name), "{:?}", s.running_names());
    let labels: Value = serde_json::from_str(&docker(&[
        "inspect",
        "-f",
        "{{json .Config.Labels}}",
        &name,
    ]))
    .unwrap();
    assert_eq!(labels["slipway.app"], "web");
    assert_eq!(labels["slipway.environment"], prd.as_str());
    assert_eq!(labels["slipway.release"], "v2");
    assert_eq!(labels["slipway.deployment"], d["id"].to_string().as_str());
    assert_eq!(labels["slipway.digest"], image_id("v2").as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_a_tag_moved_since_staging_ran_it() {
    let (stg, prd) = (unique("stg"), unique("prd"));
    let mut s = DockerServer::start(&format!("{}{}", blue_green(&stg), canary(&prd, &stg))).await;
    let version = unique("rc");
    s.tag("v1", &version);
    let d = s.deploy_and_wait(&stg, &version, "success").await;
    assert_eq!(digest(&d), image_id("v1"));

    // Someone re-pushes the tag: production would run another image than staging tested.
    s.tag("v2", &version);
    let d = s.deploy_and_wait(&prd, &version, "failure").await;
    let reason = TestServer::last_reason(&d);
    assert!(
        reason.contains(&format!(
            "not the image that succeeded in {stg}: the tag moved since"
        )),
        "{reason}"
    );
    assert!(s.instance_states(&prd, &version).await.is_empty());
    assert_eq!(s.through_router(&prd).await.0, 503, "nothing takes traffic");
    // Staging still runs what it tested, by digest.
    assert_eq!(s.body(&stg).await, "ok release=v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_health_fails_is_rolled_back_and_its_container_removed() {
    let prd = unique("prd");
    let s = DockerServer::start(&canary(&prd, "")).await;
    s.deploy_and_wait(&prd, "v1", "success").await;
    let before = s.containers();

    // v3's /health fails: it never becomes healthy, so the canary never takes traffic.
    let d = s.deploy_and_wait(&prd, "v3", "failure").await;
    assert!(
        TestServer::last_reason(&d).contains("never became healthy"),
        "{d:#}"
    );
    assert_eq!(s.body(&prd).await, "ok release=v1");
    assert_eq!(s.containers(), before, "v3's container is removed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_rollback_reuses_the_kept_container() {
    let env = unique("stg");
    let s = DockerServer::start(&blue_green(&env)).await;
    s.deploy_and_wait(&env, "v1", "success").await;
    s.deploy_and_wait(&env, "v2", "success").await;
    assert_eq!(s.body(&env).await, "ok release=v2");
    let before = s.containers();
    assert_eq!(before.len(), 2, "v1 is kept for a rollback");

    let rb = s.rollback(&env, None).await;
    let rb = s.ends(&rb, "success").await;
    assert_eq!(s.body(&env).await, "ok release=v1");
    assert_eq!(s.containers(), before, "no new container");
    let lines = s.log_lines(rb["id"].as_i64().unwrap()).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("using running instance slipway-web-{env}-v1-1"))),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_starts_the_kept_stopped_container_again() {
    let env = unique("stg");
    let s = DockerServer::start(&format!(
        "    {env}:\n      listen: 127.0.0.1:0\n      strategy: {{ blue-green: {{ scale_down_delay: 200ms }} }}\n"
    ))
    .await;
    s.deploy_and_wait(&env, "v1", "success").await;
    s.deploy_and_wait(&env, "v2", "success").await;
    wait_until("v1 to scale down", || async {
        s.instance_states(&env, "v1").await == ["stopped"]
    })
    .await;
    let v1 = format!("slipway-web-{env}-v1-1");
    assert!(!s.running_names().contains(&v1));
    let before = s.containers();
    assert_eq!(before.len(), 2, "the stopped v1 container is kept");

    let rb = s.rollback(&env, None).await;
    let rb = s.ends(&rb, "success").await;
    assert_eq!(s.body(&env).await, "ok release=v1");
    assert!(s.running_names().contains(&v1));
    assert_eq!(s.containers(), before, "the same container, started again");
    let lines = s.log_lines(rb["id"].as_i64().unwrap()).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("started kept instance {v1} again"))),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_adopted_again_after_the_server_restarts() {
    let env = unique("stg");
    let mut s = DockerServer::start(&blue_green(&env)).await;
    s.deploy_and_wait(&env, "v1", "success").await;
    let before = s.containers();

    s.restart().await;
    wait_until("the router to serve v1 again", || async {
        s.through_router(&env).await.1.trim() == "ok release=v1"
    })
    .await;
    assert_eq!(s.instance_states(&env, "v1").await, ["running"]);
    assert_eq!(s.containers(), before, "the running container is adopted");

    let d = s.deploy_and_wait(&env, "v2", "success").await;
    assert_eq!(digest(&d), image_id("v2"));
    assert_eq!(s.body(&env).await, "ok release=v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_ends_the_deployment_error_and_changes_nothing() {
    let env = unique("stg");
    let s = DockerServer::start(&blue_green(&env)).await;
    s.deploy_and_wait(&env, "v1", "success").await;
    let before = s.containers();

    let d = s.deploy_and_wait(&env, "v9-missing", "error").await;
    let reason = TestServer::last_reason(&d);
    assert!(
        reason.contains("image slipway-demo:v9-missing is not on the Docker host")
            && reason.contains("`pull: never`"),
        "{reason}"
    );
    assert_eq!(s.body(&env).await, "ok release=v1");
    assert_eq!(s.containers(), before);
    assert_eq!(s.instance_states(&env, "v1").await, ["running"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_docker_host_ends_the_deployment_error_naming_it() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = unique("stg");
    let s = DockerServer::start_with(
        &blue_green(&env),
        &format!("  docker_host: tcp://127.0.0.1:{port}\n"),
    )
    .await;
    let d = s.deploy_and_wait(&env, "v1", "error").await;
    let reason = TestServer::last_reason(&d);
    assert!(
        reason.contains(&format!(
            "cannot reach the Docker daemon at tcp://127.0.0.1:{port}"
        )),
        "{reason}"
    );
    assert_eq!(d["digest"], Value::Null);
    assert_eq!(
        s.through_router(&env).await.0,
        503,
        "no release takes traffic"
    );
    assert!(s.containers().is_empty());
    assert!(s.instance_states(&env, "v1").await.is_empty());
}

/// Instances are checked this often in the tests of replacements.
const CHECKED: &str = "  instance_check: 100ms\n";

/// The running instances of `web` `version` in `env`, as (address, handle).
async fn running(s: &DockerServer, env: &str, version: &str) -> Vec<(String, String)> {
    s.env(env).await["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["version"] == version && i["state"] == "running")
        .map(|i| {
            (
                i["addr"].as_str().unwrap().to_owned(),
                i["handle"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Waits until `web` `version` in `env` runs one instance other than `old` and the
/// router answers from it; returns it.
async fn replaced(
    s: &DockerServer,
    env: &str,
    version: &str,
    old: &(String, String),
) -> (String, String) {
    let what = format!("{version} in {env} to run again on another container");
    let new = util::poll_until(&what, || async {
        let now = running(s, env, version).await;
        (now.len() == 1 && now[0].1 != old.1).then(|| now[0].clone())
    })
    .await;
    wait_until("the router to reach the replacement", || async {
        s.body(env).await == format!("ok release={version}")
    })
    .await;
    new
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_killed_or_removed_by_someone_else_is_replaced_on_a_new_port() {
    let env = unique("stg");
    let s = DockerServer::start_with(&blue_green(&env), CHECKED).await;
    let d = s.deploy_and_wait(&env, "v1", "success").await;
    let id = d["id"].as_i64().unwrap();
    let name = format!("slipway-web-{env}-v1-1");
    let first = running(&s, &env, "v1").await.remove(0);

    docker(&["kill", &name]);
    let second = replaced(&s, &env, "v1", &first).await;
    assert_ne!(second.0, first.0, "the router got the new port");
    assert_eq!(s.containers().len(), 1, "the killed container is removed");
    assert!(s.running_names().contains(&name), "the name is reused");

    docker(&["rm", "-f", &name]);
    let third = replaced(&s, &env, "v1", &second).await;
    assert_ne!(third.0, second.0);
    assert_eq!(s.containers().len(), 1);

    let lines = s.log_lines(id).await;
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(
        has(&format!(
            "instance {name} ({}) is gone: its container exited with code 137 (killed); replacing it",
            first.0
        )),
        "{lines:#?}"
    );
    // `docker rm -f` kills, then removes: a check may see either.
    let removed = [
        "its container was removed",
        "its container exited with code 137 (killed)",
    ]
    .map(|why| {
        format!(
            "instance {name} ({}) is gone: {why}; replacing it",
            second.0
        )
    });
    assert!(removed.iter().any(|l| has(l)), "{lines:#?}");
    assert!(
        has(&format!("replaced: {name} serves v1 on {}", third.0)),
        "{lines:#?}"
    );
    let d = s.wait_for(id, &["success"]).await;
    assert_eq!(TestServer::statuses(&d).last().unwrap(), "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_killed_mid_canary_fails_it_and_traffic_returns_to_the_stable_one() {
    let env = unique("prd");
    let manual = format!(
        "    {env}:\n      listen: 127.0.0.1:0\n      strategy:\n        canary:\n          steps: [{{ weight: 50 }}, {{ pause: manual }}]\n          analysis: {{ interval: 100ms, max_error_rate: 50%, min_requests: 0, failure_limit: 3 }}\n"
    );
    let mut s = DockerServer::start_with(&manual, CHECKED).await;
    s.deploy_and_wait(&env, "v1", "success").await;
    // The canary runs v1's image (no HEALTHCHECK): only the kill can fail it, however
    // slow a busy machine makes an image's own check.
    let canary = format!("v1c{}", std::process::id());
    s.tag("v1", &canary);
    let (status, d) = s.deploy(&s.admin, &env, &canary).await;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_i64().unwrap();
    util::poll_until("the canary to pause", || async {
        let (_, d) = s
            .call("GET", &format!("/api/v1/deployments/{id}"), &s.admin, None)
            .await;
        (!d["paused"].is_null()).then_some(())
    })
    .await;

    docker(&["kill", &format!("slipway-web-{env}-{canary}-1")]);
    let d = s.wait_for(id, &["failure", "success", "error"]).await;
    assert_eq!(d["status"], "failure", "{d:#}");
    assert_eq!(
        TestServer::last_reason(&d),
        format!(
            "instance slipway-web-{env}-{canary}-1 died during the rollout: its container exited with code 137 (killed)"
        )
    );
    assert_eq!(
        TestServer::split(&s.env(&env).await),
        [("v1".to_string(), 100.0)]
    );
    assert_eq!(s.body(&env).await, "ok release=v1");
    assert_eq!(
        s.running_names(),
        BTreeSet::from([format!("slipway-web-{env}-v1-1")]),
        "the canary's container is removed"
    );
    assert_eq!(s.containers().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_crashes_under_restart_on_failure_is_restarted_by_docker_not_replaced() {
    let env = unique("stg");
    let app = APP.replace(
        "    memory: 64m\n",
        "    memory: 64m\n    restart: on-failure:3\n",
    );
    let s = DockerServer::start_app(&blue_green(&env), CHECKED, &app).await;
    let d = s.deploy_and_wait(&env, "v1", "success").await;
    let name = format!("slipway-web-{env}-v1-1");
    let policy = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        &name,
    ]);
    assert_eq!(policy, "on-failure 3");
    let before = s.containers();

    // A crash from inside (not `docker kill`, which Docker counts as a stop): its main
    // process dies by a signal, so it exits with an error and Docker restarts it.
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &name]);
    let killed = Command::new("kill").args(["-9", &pid]).status().unwrap();
    assert!(
        killed.success(),
        "the test must be allowed to signal the container's process"
    );
    wait_until("docker to restart it", || async {
        docker(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Running}}",
            &name,
        ]) == "1 true"
    })
    .await;
    wait_until("the router to reach it again", || async {
        s.body(&env).await == "ok release=v1"
    })
    .await;
    // Ten checks later slipway has still not replaced it: Docker brought it back.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while std::time::Instant::now() < until {
        assert_eq!(s.containers(), before);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let lines = s.log_lines(d["id"].as_i64().unwrap()).await;
    assert!(!lines.iter().any(|l| l.contains("is gone")), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_whose_healthcheck_says_unhealthy_fails_even_when_health_passes() {
    let env = unique("stg");
    // `health:` asks `/`, which v3 answers 200; its HEALTHCHECK asks `/health`, which
    // v3 fails.
    let app = APP
        .replace("path: /health, interval", "path: /, interval")
        .replace(
            "{ get: /health, expect_status: 200 }",
            "{ get: /, expect_status: 200 }",
        );
    let s = DockerServer::start_app(&blue_green(&env), "", &app).await;
    let d = s.deploy_and_wait(&env, "v2", "success").await;
    let lines = s.log_lines(d["id"].as_i64().unwrap()).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("the image's HEALTHCHECK says healthy")),
        "{lines:#?}"
    );
    let before = s.containers();

    let d = s.deploy_and_wait(&env, "v3", "failure").await;
    let reason = TestServer::last_reason(&d);
    assert!(
        reason.starts_with("v3 never became healthy: the image's HEALTHCHECK reports unhealthy"),
        "{reason}"
    );
    let lines = s.log_lines(d["id"].as_i64().unwrap()).await;
    assert!(
        lines.iter().any(|l| l == "healthy: GET /: 200"),
        "health: passed: {lines:#?}"
    );
    assert_eq!(s.body(&env).await, "ok release=v2");
    assert_eq!(s.containers(), before, "v3's container is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_whose_healthcheck_turns_unhealthy_after_success_is_replaced() {
    let env = unique("stg");
    // v2's HEALTHCHECK asks `/health`, which these arguments fail 8 s after the start;
    // `health:` and the smoke test ask `/`, which stays fine.
    let app = APP
        .replace("path: /health, interval", "path: /, interval")
        .replace(
            "{ get: /health, expect_status: 200 }",
            "{ get: /, expect_status: 200 }",
        )
        + "    args: [--host, 0.0.0.0, --port, \"8080\", --release, v2, --fail-health, --error-after-ms, \"8000\"]\n";
    let s = DockerServer::start_app(&blue_green(&env), CHECKED, &app).await;
    let d = s.deploy_and_wait(&env, "v2", "success").await;
    let id = d["id"].as_i64().unwrap();
    let name = format!("slipway-web-{env}-v2-1");
    let first = running(&s, &env, "v2").await.remove(0);

    let second = replaced(&s, &env, "v2", &first).await;
    assert_ne!(second.0, first.0, "the router got the new port");
    let lines = s.log_lines(id).await;
    let unhealthy = format!(
        "instance {name} ({}) is unhealthy: the image's HEALTHCHECK reports unhealthy",
        first.0
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&unhealthy)),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("replaced: {name} serves v2 on {}", second.0)),
        "{lines:#?}"
    );
    assert_eq!(
        s.containers().len(),
        1,
        "the unhealthy container is removed"
    );
    let d = s.wait_for(id, &["success"]).await;
    assert_eq!(TestServer::statuses(&d).last().unwrap(), "success");
}

/// A container run by hand with this server's labels, removed when the test ends.
struct Foreign(String);

impl Foreign {
    fn run(name: &str, scope: &str, env: &str) -> Foreign {
        let id = docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--label",
            &format!("slipway.scope={scope}"),
            "--label",
            "slipway.app=web",
            "--label",
            &format!("slipway.environment={env}"),
            "--label",
            "slipway.release=v1",
            "--label",
            &format!("slipway.instance={name}"),
            "slipway-demo:v1",
        ]);
        Foreign(id)
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_no_deployment_owns_are_listed_and_removed_only_by_gc() {
    let env = unique("stg");
    let s = DockerServer::start(&blue_green(&env)).await;
    s.deploy_and_wait(&env, "v1", "success").await;
    let owned = s.containers();
    let orphan_name = format!("slipway-web-{env}-v0-1");
    let orphan = Foreign::run(&orphan_name, &s.scope, &env);
    let other = Foreign::run(
        &unique("slipway-web-elsewhere-v1-"),
        "/another/server",
        &env,
    );

    let (status, listed) = s.call("GET", "/api/v1/gc", &s.admin, None).await;
    assert_eq!(status, 200, "{listed}");
    let leftovers = listed["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 1, "only this server's orphan: {listed:#}");
    assert_eq!(leftovers[0]["name"], orphan_name.as_str());
    assert_eq!(leftovers[0]["handle"], format!("docker:{}", orphan.0));
    assert_eq!(leftovers[0]["running"], true);
    assert_eq!(leftovers[0]["environment"], env.as_str());
    assert_eq!(leftovers[0]["driver"], "docker");
    // Listing changes nothing, and nothing removes it behind the admin's back.
    assert!(s.containers().contains(&orphan.0));

    let deployer = s.user("dora", "deployer").await;
    let (status, err) = s.call("POST", "/api/v1/gc", &deployer, None).await;
    assert_eq!(status, 403, "{err}");
    assert!(s.containers().contains(&orphan.0));

    let (status, done) = s.call("POST", "/api/v1/gc", &s.admin, None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["removed"][0]["name"], orphan_name.as_str(), "{done:#}");
    assert_eq!(done["skipped"], serde_json::json!([]));
    assert_eq!(
        s.containers(),
        owned,
        "the orphan is gone, the owned one stays"
    );
    assert_eq!(s.body(&env).await, "ok release=v1");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &other.0]),
        "true",
        "another server's container is never touched"
    );
    let (_, listed) = s.call("GET", "/api/v1/gc", &s.admin, None).await;
    assert_eq!(listed["leftovers"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_secret_is_in_the_containers_environment_and_nowhere_in_its_labels() {
    const SECRET: &str = "container-secret-from-a-file-5b2e";
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("token");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let env = unique("stg");
    let s = DockerServer::start(&format!(
        "{}      secrets: {{ DEMO_TOKEN: {{ file: {} }} }}\n",
        blue_green(&env),
        file.display()
    ))
    .await;
    s.deploy_and_wait(&env, "v1", "success").await;
    let name = format!("slipway-web-{env}-v1-1");
    let config: Value =
        serde_json::from_str(&docker(&["inspect", "-f", "{{json .Config}}", &name])).unwrap();
    let vars: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        vars.contains(&format!("DEMO_TOKEN={SECRET}").as_str()),
        "{vars:?}"
    );
    assert!(!config["Labels"].to_string().contains(SECRET), "{config:#}");
}
