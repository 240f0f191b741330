//! Servers whose app `web` is the demo image on the real Docker Engine (tests and the
//! docker benchmark): the demo images, unique names, and a server that removes every
//! container it made when dropped.

#[path = "../../../slipway-drivers/tests/util/mod.rs"]
mod drivers;

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

#[allow(unused_imports)] // each test binary uses a different part
pub use drivers::{Scope, docker, images, remove_containers};

use super::TestServer;

pub fn image_id(tag: &str) -> String {
    images()[tag].clone()
}

/// A name no other test (or test process) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A server whose `web` app is the demo image. Dropping it stops the server, then
/// removes every container labelled with its scope, also when the test fails.
pub struct DockerServer {
    server: Option<TestServer>,
    pub scope: String,
    /// Image tags the test made, removed at the end.
    tags: Vec<String>,
}

pub const APP: &str = r#"  web:
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
    pub async fn start(envs: &str) -> DockerServer {
        DockerServer::start_with(envs, "").await
    }

    /// With `server` lines (indented by two spaces) added to the server section.
    pub async fn start_with(envs: &str, server: &str) -> DockerServer {
        DockerServer::start_app(envs, server, APP).await
    }

    /// With `app` as the YAML of the `apps:` map.
    pub async fn start_app(envs: &str, server: &str, app: &str) -> DockerServer {
        images();
        let server = TestServer::start_yaml(|dir| {
            format!(
                "version: 1\nserver:\n  listen: 127.0.0.1:0\n  data_dir: {}\n  tick: 50ms\n{server}apps:\n{app}environments:\n{envs}\nusers:\n  alice: {{ role: approver }}\n",
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
    pub fn containers(&self) -> BTreeSet<String> {
        let filter = format!("label=slipway.scope={}", self.scope);
        docker(&["ps", "-aq", "--no-trunc", "--filter", &filter])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The running containers of this server by name.
    pub fn running_names(&self) -> BTreeSet<String> {
        let filter = format!("label=slipway.scope={}", self.scope);
        docker(&["ps", "--format", "{{.Names}}", "--filter", &filter])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Points `slipway-demo:<tag>` at the image of `source`, until the test ends.
    pub fn tag(&mut self, source: &str, tag: &str) {
        docker(&[
            "tag",
            &format!("slipway-demo:{source}"),
            &format!("slipway-demo:{tag}"),
        ]);
        self.tags.push(format!("slipway-demo:{tag}"));
    }

    pub async fn body(&self, env: &str) -> String {
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
        remove_containers(&format!("label=slipway.scope={}", self.scope));
        for tag in &self.tags {
            // Only the tag: the image stays for the other tags that name it.
            let _ = Command::new("docker").args(["rmi", tag]).output();
        }
    }
}

pub fn blue_green(env: &str) -> String {
    format!("    {env}:\n      listen: 127.0.0.1:0\n      strategy: blue-green\n")
}
