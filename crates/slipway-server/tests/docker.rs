//! Docker apps end to end against the real Docker Engine, with the demo images built FROM
//! scratch by `bench/docker-images.sh` (no registry is reachable here): promotion,
//! strategies, rollback reusing kept containers, re-adoption, and the errors that must
//! change nothing. Environment names are unique per test, because container names
//! (`slipway-<app>-<env>-<version>-<n>`) are global on the Docker host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

#[path = "../../slipway-drivers/tests/util/images.rs"]
mod images;
mod util;

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use images::{docker, images};
use serde_json::Value;
use util::{TestServer, wait_until};

fn image_id(tag: &str) -> String {
    images()[tag].clone()
}

/// A name no other test (or test process) uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A server whose `web` app is the demo image. Dropping it stops the server, then
/// removes every container labelled with its scope, also when the test fails.
struct DockerServer {
    server: Option<TestServer>,
    scope: String,
    /// Image tags the test made, removed at the end.
    tags: Vec<String>,
}

const APP: &str = r#"  web:
    driver: docker
    image: slipway-demo
    port: 8080
    pull: never
    memory: 64m
    health: { path: /health, interval: 100ms, timeout: 1s, start_period: 2s, unhealthy_threshold: 2 }
    smoke:
      - { get: /health, expect_status: 200 }
"#;

impl DockerServer {
    /// `envs` is the YAML of the `environments:` map.
    async fn start(envs: &str) -> DockerServer {
        DockerServer::start_with(envs, "").await
    }

    /// With `server` lines (indented by two spaces) added to the server section.
    async fn start_with(envs: &str, server: &str) -> DockerServer {
        images();
        let server = TestServer::start_yaml(|dir| {
            format!(
                "version: 1\nserver:\n  listen: 127.0.0.1:0\n  data_dir: {}\n  tick: 50ms\n{server}apps:\n{APP}environments:\n{envs}\nusers:\n  alice: {{ role: approver }}\n",
                dir.join("data").display()
            )
        })
        .await;
        let scope = std::fs::canonicalize(server.dir.path().join("data"))
            .unwrap()
            .display()
            .to_string();
        DockerServer {
            server: Some(server),
            scope,
            tags: Vec::new(),
        }
    }

    /// Ids of every container of this server, running or not.
    fn containers(&self) -> BTreeSet<String> {
        let filter = format!("label=slipway.scope={}", self.scope);
        docker(&["ps", "-aq", "--no-trunc", "--filter", &filter])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The running containers of this server by name.
    fn running_names(&self) -> BTreeSet<String> {
        let filter = format!("label=slipway.scope={}", self.scope);
        docker(&["ps", "--format", "{{.Names}}", "--filter", &filter])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Points `slipway-demo:<tag>` at the image of `source`, until the test ends.
    fn tag(&mut self, source: &str, tag: &str) {
        docker(&[
            "tag",
            &format!("slipway-demo:{source}"),
            &format!("slipway-demo:{tag}"),
        ]);
        self.tags.push(format!("slipway-demo:{tag}"));
    }

    async fn body(&self, env: &str) -> String {
        self.through_router(env).await.1.trim().to_owned()
    }
}

impl Deref for DockerServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        self.server.as_ref().unwrap()
    }
}

impl DerefMut for DockerServer {
    fn deref_mut(&mut self) -> &mut TestServer {
        self.server.as_mut().unwrap()
    }
}

impl Drop for DockerServer {
    fn drop(&mut self) {
        drop(self.server.take());
        let filter = format!("label=slipway.scope={}", self.scope);
        let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--no-trunc", "--filter", &filter])
            .output()
        else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .output();
        }
        for tag in &self.tags {
            // Only the tag: the image stays for the other tags that name it.
            let _ = Command::new("docker").args(["rmi", tag]).output();
        }
    }
}

fn digest(d: &Value) -> &str {
    d["digest"].as_str().unwrap_or_default()
}

fn blue_green(env: &str) -> String {
    format!("    {env}:\n      listen: 127.0.0.1:0\n      strategy: blue-green\n")
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
