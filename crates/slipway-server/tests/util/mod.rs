#![allow(dead_code)] // each test binary uses a different part of the shared helpers
//! A whole slipway server in the test process: real SQLite in a temp dir, real app
//! processes, real router listeners, real HTTP. Every process a test causes is killed
//! when its `TestServer` drops, also when the test fails.

pub mod docker;
pub mod load;
pub mod pipelines;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use slipway_drivers::{Driver, ProcessDriver};
use slipway_server::ServerHandle;

/// The demo app binary, built on demand when the test run did not build it already.
pub fn demo_app() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(Path::to_path_buf))
        .expect("test binary lives in target/<profile>/deps");
    let bin = target.join("slipway-demo-app");
    if !bin.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "slipway-demo-app"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p slipway-demo-app failed");
    }
    bin
}

/// How long a test waits for anything before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` every 20 ms until it gives a value; panics with `what` after
/// [`DEADLINE`]. The one poll loop of these tests.
pub async fn poll_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `cond` until it holds (see [`poll_until`]).
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    poll_until(what, || {
        let holds = cond();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// Polls `url` until the body contains `needle`; returns when it first did.
pub async fn until_serving(http: &reqwest::Client, url: &str, needle: &str) -> std::time::Instant {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(url).send().await
            && let Ok(body) = r.text().await
            && body.contains(needle)
        {
            return std::time::Instant::now();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} never served {needle}"
        );
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

pub struct TestServer {
    handle: Option<ServerHandle>,
    config: slipway_config::Config,
    /// The scope the driver marks this server's instances with (its data dir).
    scope: String,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub admin: String,
    http: reqwest::Client,
}

/// A config whose `web` app is the demo app; `{flags}` come from `flags-<version>` files
/// in the test's dir, so one version can be made faulty. `envs` is the YAML of the
/// `environments:` map, indented by four spaces.
pub fn config_yaml(dir: &Path, envs: &str, users: &str, start_period: &str) -> String {
    let app = format!(
        r#"  web:
    run: "{app} --port {{port}} --release {{version}} $(cat {dir}/flags-{{version}} 2>/dev/null)"
    health: {{ path: /health, interval: 100ms, timeout: 1s, start_period: {start_period}, unhealthy_threshold: 2 }}
    smoke:
      - {{ get: /health, expect_status: 200 }}
      - {{ get: /, expect_body_contains: "ok" }}"#,
        app = demo_app().display(),
        dir = dir.display(),
    );
    let users =
        format!("users:\n  alice: {{ role: approver }}\n  bob: {{ role: deployer }}\n{users}");
    server_yaml(dir, &app, envs) + &users
}

/// App `name` as the demo app, its faults from `flags-<version>` files in `dir` (see
/// [`TestServer::faulty`]), health-checked every 100 ms; `extra` is YAML of more of its
/// keys, each line indented by four spaces.
pub fn demo_app_yaml(name: &str, dir: &Path, extra: &str) -> String {
    format!(
        r#"  {name}:
    run: "{app} --port {{port}} --release {{version}} $(cat {dir}/flags-{{version}} 2>/dev/null)"
    health: {{ path: /health, interval: 100ms, timeout: 1s, start_period: 10s }}
{extra}"#,
        app = demo_app().display(),
        dir = dir.display(),
    )
}

/// A whole config with its data in `dir`: `apps` and `envs` are the YAML of the `apps:`
/// and `environments:` maps, each indented consistently.
pub fn server_yaml(dir: &Path, apps: &str, envs: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
  data_dir: {data}
  tick: 50ms
apps:
{apps}
environments:
{envs}
"#,
        data = dir.join("data").display(),
    )
}

impl TestServer {
    pub async fn start(envs: &str) -> TestServer {
        Self::start_with_users(envs, "").await
    }

    pub async fn start_with_users(envs: &str, users: &str) -> TestServer {
        Self::start_full(envs, users, "1s").await
    }

    pub async fn start_full(envs: &str, users: &str, start_period: &str) -> TestServer {
        Self::start_yaml(|dir| config_yaml(dir, envs, users, start_period)).await
    }

    /// A server on the config `yaml(dir)` returns for the test's dir.
    pub async fn start_yaml(yaml: impl FnOnce(&Path) -> String) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let yaml = yaml(dir.path());
        let config = slipway_config::parse(&yaml, "slipway.yaml", dir.path())
            .unwrap_or_else(|e| panic!("test config is invalid:\n{e}\n{yaml}"));
        let handle = slipway_server::start(config.clone()).await.unwrap();
        let scope = std::fs::canonicalize(&config.server.data_dir)
            .unwrap()
            .display()
            .to_string();
        let admin = handle
            .admin_token
            .clone()
            .expect("first start makes an admin token");
        TestServer {
            config,
            scope,
            base: format!("http://{}", handle.api_addr),
            handle: Some(handle),
            dir,
            admin,
            http: reqwest::Client::new(),
        }
    }

    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().unwrap()
    }

    /// Makes one version fail in the way the demo app's flags say.
    pub fn faulty(&self, version: &str, flags: &str) {
        std::fs::write(self.dir.path().join(format!("flags-{version}")), flags).unwrap();
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.parse().unwrap(), &url)
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn user(&self, name: &str, role: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/users",
                &self.admin,
                Some(json!({"name": name, "role": role})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    pub async fn deploy(&self, token: &str, env: &str, version: &str) -> (u16, Value) {
        self.call(
            "POST",
            "/api/v1/deployments",
            token,
            Some(json!({"app": "web", "environment": env, "version": version, "ref": "main", "commit": "3f2a9c1"})),
        )
        .await
    }

    /// Polls a deployment until its status is one of `statuses`.
    pub async fn wait_for(&self, id: i64, statuses: &[&str]) -> Value {
        let what = format!("deployment {id} to reach {statuses:?}");
        poll_until(&what, || async {
            let (_, d) = self
                .call(
                    "GET",
                    &format!("/api/v1/deployments/{id}"),
                    &self.admin,
                    None,
                )
                .await;
            statuses
                .contains(&d["status"].as_str().unwrap_or(""))
                .then_some(d)
        })
        .await
    }

    /// Deploys and waits for the end; panics unless it ends `expect`.
    pub async fn deploy_and_wait(&self, env: &str, version: &str, expect: &str) -> Value {
        let (status, d) = self.deploy(&self.admin, env, version).await;
        assert_eq!(status, 201, "{d}");
        self.ends(&d, expect).await
    }

    /// Waits until deployment `d`'s rollout ends; panics unless it ends `expect`.
    pub async fn ends(&self, d: &Value, expect: &str) -> Value {
        let d = self
            .wait_for(
                d["id"].as_i64().unwrap(),
                &[expect, "failure", "error", "success"],
            )
            .await;
        assert_eq!(d["status"], expect, "{d:#}");
        d
    }

    /// Asks for a rollback of `web` in `env` (to `to`, else the previous release); returns
    /// the rollback deployment as created.
    pub async fn rollback(&self, env: &str, to: Option<&str>) -> Value {
        let body = to.map(|v| json!({ "to_version": v }));
        let (status, d) = self
            .call(
                "POST",
                &format!("/api/v1/apps/web/environments/{env}/rollback"),
                &self.admin,
                body,
            )
            .await;
        assert_eq!(status, 201, "{d}");
        d
    }

    /// The states (`running`, `stopped`) of `web`'s instances of `version` in `env`.
    pub async fn instance_states(&self, env: &str, version: &str) -> Vec<String> {
        self.env(env).await["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["version"] == version)
            .map(|i| i["state"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn listener(&self, env: &str) -> std::net::SocketAddr {
        self.handle().engine.listener(env).await.unwrap()
    }

    /// GET / through an environment's router: the body names the release that answered.
    pub async fn through_router(&self, env: &str) -> (u16, String) {
        let url = format!("http://{}/", self.listener(env).await);
        let resp = self.http.get(&url).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub fn statuses(d: &Value) -> Vec<String> {
        d["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap().to_string())
            .collect()
    }

    /// `GET /api/v1/deployments/{id}`.
    pub async fn deployment(&self, id: i64) -> Value {
        let (status, body) = self
            .call(
                "GET",
                &format!("/api/v1/deployments/{id}"),
                &self.admin,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `GET /api/v1/apps/web/environments/{env}`.
    pub async fn env(&self, env: &str) -> Value {
        let (status, body) = self
            .call(
                "GET",
                &format!("/api/v1/apps/web/environments/{env}"),
                &self.admin,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The messages of a deployment's log, oldest first.
    pub async fn log_lines(&self, id: i64) -> Vec<String> {
        let (_, logs) = self
            .call(
                "GET",
                &format!("/api/v1/deployments/{id}/logs"),
                &self.admin,
                None,
            )
            .await;
        logs["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_string())
            .collect()
    }

    /// The traffic split of a deployment or environment object, as (version, percent).
    pub fn split(d: &Value) -> Vec<(String, f64)> {
        d["traffic"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["version"].as_str().unwrap().to_string(),
                    t["weight"].as_f64().unwrap(),
                )
            })
            .collect()
    }

    pub fn last_reason(d: &Value) -> String {
        d["statuses"].as_array().unwrap().last().unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Stops the server as a crash would leave it (rollouts unfinished, instances running)
    /// and starts a new one on the same data dir.
    pub async fn restart(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
        let handle = slipway_server::start(self.config.clone()).await.unwrap();
        assert!(handle.admin_token.is_none(), "a restart keeps the users");
        self.base = format!("http://{}", handle.api_addr);
        self.handle = Some(handle);
    }

    pub async fn stop(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}

/// Kills every instance the driver runs for this server, also those a rollout started but
/// never recorded because the test ended it midway. Drop cannot await, and the test's
/// runtime cannot be blocked on, so a thread of its own does it.
impl Drop for TestServer {
    fn drop(&mut self) {
        // First the engine's tasks, so none replaces what is removed here. Its shutdown
        // only signals them: one poll completes it.
        if let Some(handle) = &self.handle {
            let _ = futures_util::FutureExt::now_or_never(handle.engine.shutdown());
        }
        let scope = self.scope.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let driver = ProcessDriver::new();
                for (_, handle) in driver.instances(&scope).await {
                    let _ = driver.stop(&handle, Duration::ZERO).await;
                }
            });
        })
        .join();
    }
}

/// The pid a hook or step printed as `pid=N` into its log.
pub fn printed_pid(lines: &[String]) -> u32 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("pid=")?.parse().ok())
        .unwrap_or_else(|| panic!("no pid=N in the log: {lines:#?}"))
}

/// Alive = exists and is not a zombie (pid 1 in a container may never reap orphans).
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    match stat.rfind(')') {
        Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
        None => false,
    }
}

/// Kills the `sleep` a hook or step started when the test ends, also when it fails (and only
/// while that pid still runs `sleep`).
pub struct Reap(pub u32);

impl Drop for Reap {
    fn drop(&mut self) {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if let (true, Ok(pid)) = (cmdline.starts_with(b"sleep"), i32::try_from(self.0)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
