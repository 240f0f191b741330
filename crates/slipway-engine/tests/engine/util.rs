//! The engine with fakes for every part of the outside world: an in-memory SQLite store,
//! a driver that runs nothing, a router that binds nothing and makes up traffic, a prober
//! and hooks that answer what the test says, and a clock the test sets. No process is
//! spawned and no socket bound, so a whole rollout takes milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use slipway_config::{Config, DriverKind, HealthCheck, Hook, Role, SmokeTest};
use slipway_core::{Deployment, DeploymentId, Millis, Status};
use slipway_drivers::{Driver, InstanceSpec, Started};
use slipway_engine::{
    Actor, Clock, DeployRequest, Drivers, Engine, HookOutput, HookRun, HookRunner, Notifier,
    OutboxEntry, Parts, Prober, TrafficRouter,
};
use slipway_router::{Histogram, ListenerConfig, ReleaseStats};
use slipway_store::SqliteStore;
use tokio::sync::mpsc;

/// Generous: a step that does not come within this is a bug, not a slow machine.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `cond` every few milliseconds until it holds; panics with `what` after
/// [`DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// === the world the fakes share ===

/// One fake instance.
#[derive(Debug, Clone)]
pub struct FakeInstance {
    pub spec: InstanceSpec,
    pub addr: SocketAddr,
    pub running: bool,
}

/// What one router call did, in order.
#[derive(Debug, Clone)]
pub enum RouterCall {
    Open { env: String, config: ListenerConfig },
    Configure { env: String, config: ListenerConfig },
}

#[derive(Default)]
pub struct WorldState {
    /// handle → instance
    pub instances: BTreeMap<String, FakeInstance>,
    next_port: u16,
    /// Versions whose instances never become healthy.
    pub unhealthy: BTreeSet<String>,
    /// Versions whose smoke tests fail.
    pub smoke_fails: BTreeSet<String>,
    /// Versions that answer this fraction of requests with 5xx.
    pub error_rate: BTreeMap<String, f64>,
    /// Hook names that fail.
    pub failing_hooks: BTreeSet<String>,
    pub hooks_run: Vec<String>,
    pub router_calls: Vec<RouterCall>,
    /// env → (bound address, current configuration)
    pub listeners: BTreeMap<String, (SocketAddr, ListenerConfig)>,
    /// (env, app, release) → (requests, errors), grown on every stats read by the
    /// release's weight: made-up traffic, 1000 requests per read.
    pub counters: BTreeMap<(String, String, String), (u64, u64)>,
    /// Deliveries a notifier refuses before it accepts again.
    pub notify_failures: u32,
    /// While set, the notifier takes nothing: a reader that lags behind.
    pub notify_held: bool,
    pub notified: Vec<OutboxEntry>,
}

#[derive(Clone, Default)]
pub struct World(Arc<Mutex<WorldState>>);

impl World {
    pub fn lock(&self) -> MutexGuard<'_, WorldState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn version_at(&self, addr: SocketAddr) -> Option<String> {
        self.lock()
            .instances
            .values()
            .find(|i| i.addr == addr)
            .map(|i| i.spec.version.clone())
    }

    /// The instances running now, as (app, env, version).
    pub fn running(&self) -> Vec<(String, String, String)> {
        self.lock()
            .instances
            .values()
            .filter(|i| i.running)
            .map(|i| {
                (
                    i.spec.app.clone(),
                    i.spec.environment.clone(),
                    i.spec.version.clone(),
                )
            })
            .collect()
    }

    pub fn running_of(&self, version: &str) -> usize {
        self.running()
            .iter()
            .filter(|(_, _, v)| v == version)
            .count()
    }

    /// Kills every instance of `version` behind the engine's back.
    pub fn kill(&self, version: &str) {
        for i in self.lock().instances.values_mut() {
            if i.spec.version == version {
                i.running = false;
            }
        }
    }

    /// The split an app has in a listener now, as (release, weight).
    pub fn split(&self, env: &str, app: &str) -> Vec<(String, f64)> {
        let state = self.lock();
        let Some((_, config)) = state.listeners.get(env) else {
            return Vec::new();
        };
        config
            .services
            .iter()
            .filter(|s| s.name == app)
            .flat_map(|s| s.releases.iter().map(|r| (r.name.clone(), r.weight)))
            .collect()
    }
}

// === fakes ===

pub struct FakeDriver(pub World);

#[async_trait]
impl Driver for FakeDriver {
    async fn start(&self, spec: &InstanceSpec) -> slipway_drivers::Result<Started> {
        let mut state = self.0.lock();
        state.next_port += 1;
        let port = 20_000 + state.next_port;
        let handle = format!("fake:{port}");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let instance = FakeInstance {
            spec: spec.clone(),
            addr,
            running: true,
        };
        state.instances.insert(handle.clone(), instance);
        Ok(Started {
            handle,
            addr,
            pid: u32::from(port),
        })
    }

    async fn stop(&self, handle: &str, _grace: Duration) -> slipway_drivers::Result<()> {
        if let Some(i) = self.0.lock().instances.get_mut(handle) {
            i.running = false;
        }
        Ok(())
    }

    async fn is_running(&self, handle: &str) -> bool {
        self.0
            .lock()
            .instances
            .get(handle)
            .is_some_and(|i| i.running)
    }

    async fn instances(&self, scope: &str) -> Vec<(String, String)> {
        self.0
            .lock()
            .instances
            .iter()
            .filter(|(_, i)| i.running && i.spec.scope == scope)
            .map(|(h, i)| (i.spec.instance_id.clone(), h.clone()))
            .collect()
    }
}

pub struct FakeRouter(pub World);

#[async_trait]
impl TrafficRouter for FakeRouter {
    async fn open(
        &self,
        env: &str,
        addr: SocketAddr,
        config: ListenerConfig,
    ) -> slipway_engine::Result<SocketAddr> {
        let mut state = self.0.lock();
        let port = 30_000 + state.listeners.len() as u16;
        let bound = if addr.port() == 0 {
            SocketAddr::from(([127, 0, 0, 1], port))
        } else {
            addr
        };
        state.router_calls.push(RouterCall::Open {
            env: env.to_string(),
            config: config.clone(),
        });
        state.listeners.insert(env.to_string(), (bound, config));
        Ok(bound)
    }

    async fn configure(
        &self,
        env: &str,
        _addr: SocketAddr,
        config: ListenerConfig,
    ) -> slipway_engine::Result<SocketAddr> {
        let mut state = self.0.lock();
        state.router_calls.push(RouterCall::Configure {
            env: env.to_string(),
            config: config.clone(),
        });
        let Some(listener) = state.listeners.get_mut(env) else {
            return Err(slipway_engine::Error::Router(format!(
                "configure before open: {env}"
            )));
        };
        listener.1 = config;
        Ok(listener.0)
    }

    async fn stats(&self, env: &str) -> slipway_engine::Result<Vec<ReleaseStats>> {
        let mut state = self.0.lock();
        let releases: Vec<(String, String, f64)> = state
            .listeners
            .get(env)
            .map(|(_, c)| {
                c.services
                    .iter()
                    .flat_map(|s| {
                        s.releases
                            .iter()
                            .map(|r| (s.name.clone(), r.name.clone(), r.weight))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (app, release, weight) in releases {
            let requests = (weight * 10.0) as u64;
            let rate = state.error_rate.get(&release).copied().unwrap_or(0.0);
            let errors = (requests as f64 * rate) as u64;
            let c = state
                .counters
                .entry((env.to_string(), app, release))
                .or_default();
            c.0 += requests;
            c.1 += errors;
        }
        Ok(state
            .counters
            .iter()
            .filter(|((e, _, _), _)| e == env)
            .map(|((_, app, release), (requests, errors))| ReleaseStats {
                service: app.clone(),
                release: release.clone(),
                requests: *requests,
                errors: *errors,
                router_errors: 0,
                client_errors: 0,
                latency: Histogram::default(),
            })
            .collect())
    }

    async fn metrics(&self) -> slipway_engine::Result<String> {
        Ok(String::new())
    }
}

pub struct FakeProber(pub World);

#[async_trait]
impl Prober for FakeProber {
    async fn wait_healthy(
        &self,
        addr: SocketAddr,
        hc: &HealthCheck,
        driver: &dyn Driver,
        handle: &str,
    ) -> Result<String, String> {
        if !driver.is_running(handle).await {
            return Err("instance exited before it became healthy".into());
        }
        let version = self.0.version_at(addr).unwrap_or_default();
        if self.0.lock().unhealthy.contains(&version) {
            return Err(format!("GET {}: status 500, expected 200", hc.path));
        }
        Ok(format!("GET {}: 200", hc.path))
    }

    async fn smoke(
        &self,
        addr: SocketAddr,
        _app: &str,
        tests: &[SmokeTest],
        _timeout: Duration,
    ) -> Result<Vec<String>, String> {
        let state = self.0.lock();
        let serving: Vec<String> = state
            .listeners
            .values()
            .filter(|(bound, _)| *bound == addr)
            .flat_map(|(_, c)| c.services.iter())
            .flat_map(|s| s.releases.iter())
            .filter(|r| r.weight > 0.0)
            .map(|r| r.name.clone())
            .collect();
        if serving.is_empty() {
            return Err("smoke test failed: GET /: status 503".into());
        }
        if serving.iter().any(|v| state.smoke_fails.contains(v)) {
            return Err("smoke test failed: GET /: status 500, expected 200".into());
        }
        Ok(tests
            .iter()
            .map(|t| format!("GET {}: 200", t.get))
            .collect())
    }
}

pub struct FakeHooks(pub World);

#[async_trait]
impl HookRunner for FakeHooks {
    async fn run(
        &self,
        hook: &Hook,
        _env: BTreeMap<String, String>,
        output: mpsc::UnboundedSender<HookOutput>,
    ) -> HookRun {
        let mut state = self.0.lock();
        state.hooks_run.push(hook.run.clone());
        let success = !state.failing_hooks.contains(&hook.run);
        let _ = output.send(HookOutput {
            text: format!("ran {}", hook.run),
            from_runner: false,
        });
        HookRun {
            success,
            outcome: if success {
                "exited with status 0"
            } else {
                "exited with status 1"
            }
            .into(),
        }
    }
}

/// A notifier that records what it got, refusing the first `notify_failures`.
pub struct FakeNotifier(pub World);

#[async_trait]
impl Notifier for FakeNotifier {
    fn name(&self) -> &str {
        "fake"
    }

    async fn notify(&self, entry: &OutboxEntry) -> Result<(), String> {
        while self.0.lock().notify_held {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut state = self.0.lock();
        if state.notify_failures > 0 {
            state.notify_failures -= 1;
            return Err("the webhook answered 503".into());
        }
        state.notified.push(entry.clone());
        Ok(())
    }
}

/// A clock the test sets; it starts on a Tuesday at 10:00 UTC (2026-06-02).
#[derive(Clone)]
pub struct TestClock(pub Arc<AtomicI64>);

pub const START: Millis = 1_780_394_400_000;

impl Default for TestClock {
    fn default() -> Self {
        TestClock(Arc::new(AtomicI64::new(START)))
    }
}

impl TestClock {
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

// === the harness ===

pub struct Harness {
    pub engine: Engine,
    /// The driver kinds the fake driver stands in for.
    kinds: Vec<DriverKind>,
    pub world: World,
    pub store: Arc<SqliteStore>,
    pub clock: TestClock,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

/// How app `web` runs by default: the process driver.
pub const PROCESS_APP: &str = "    run: \"web --port {port} --release {version}\"\n";

/// A config with app `web` (how it runs, `app`, then `extra` keys) and the given
/// `environments:` YAML (indented four spaces).
pub fn config(dir: &std::path::Path, envs: &str, app: &str, extra: &str) -> Config {
    let yaml = format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
  data_dir: {data}
  tick: 5ms
apps:
  web:
{app}    health: {{ path: /health }}
    smoke:
      - {{ get: /health, expect_status: 200 }}
{extra}
environments:
{envs}
users:
  alice: {{ role: approver }}
  bob: {{ role: deployer }}
"#,
        data = dir.join("data").display(),
    );
    slipway_config::parse(&yaml, "slipway.yaml", dir)
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}\n{yaml}"))
}

/// How app `web` runs as a container on driver `kind`.
fn container_app(kind: &str) -> String {
    format!("    driver: {kind}\n    image: registry.example.com/web\n    port: 8080\n")
}

pub const STAGING: &str = "    staging:\n      listen: 127.0.0.1:0\n";

impl Harness {
    pub async fn start(envs: &str) -> Harness {
        Self::start_with_hooks(envs, "").await
    }

    pub async fn start_with_hooks(envs: &str, hooks: &str) -> Harness {
        Self::start_app(envs, PROCESS_APP, hooks).await
    }

    /// App `web` on a driver kind the harness's server does not have.
    pub async fn start_with_driver(kind: &str) -> Harness {
        Self::start_app(STAGING, &container_app(kind), "").await
    }

    /// App `web` as a container, on a server with a (fake) docker driver.
    pub async fn start_docker() -> Harness {
        let kinds = vec![DriverKind::Process, DriverKind::Docker];
        Self::start_full(STAGING, &container_app("docker"), "", kinds).await
    }

    pub async fn start_app(envs: &str, app: &str, extra: &str) -> Harness {
        Self::start_full(envs, app, extra, vec![DriverKind::Process]).await
    }

    async fn start_full(envs: &str, app: &str, extra: &str, kinds: Vec<DriverKind>) -> Harness {
        Self::start_edited(envs, app, extra, kinds, |_| {}).await
    }

    /// App `web` on the process driver, its instances checked every `every` (how dead
    /// ones are replaced).
    pub async fn start_checking(envs: &str, every: Duration) -> Harness {
        let kinds = vec![DriverKind::Process];
        Self::start_edited(envs, PROCESS_APP, "", kinds, |c| {
            c.server.instance_check = every;
        })
        .await
    }

    async fn start_edited(
        envs: &str,
        app: &str,
        extra: &str,
        kinds: Vec<DriverKind>,
        edit: impl FnOnce(&mut Config),
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), envs, app, extra);
        edit(&mut config);
        let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let world = World::default();
        let clock = TestClock::default();
        let engine = Self::engine(&config, &store, &world, &clock, dir.path(), &kinds).await;
        Harness {
            engine,
            kinds,
            world,
            store,
            clock,
            config,
            dir,
        }
    }

    async fn engine(
        config: &Config,
        store: &Arc<SqliteStore>,
        world: &World,
        clock: &TestClock,
        dir: &std::path::Path,
        kinds: &[DriverKind],
    ) -> Engine {
        let driver = Arc::new(FakeDriver(world.clone()));
        let drivers = kinds
            .iter()
            .fold(Drivers::new(), |set, kind| set.with(*kind, driver.clone()));
        Engine::start(Parts {
            config: config.clone(),
            store: store.clone(),
            migrations: store.clone(),
            watches: store.clone(),
            drivers,
            router: Arc::new(FakeRouter(world.clone())),
            prober: Arc::new(FakeProber(world.clone())),
            hooks: Arc::new(FakeHooks(world.clone())),
            clock: Arc::new(clock.clone()),
            notifiers: vec![Arc::new(FakeNotifier(world.clone()))],
            data_dir: dir.join("data"),
            secrets: Default::default(),
            environment_secrets: Default::default(),
        })
        .await
        .unwrap()
    }

    /// A crash: the engine's tasks end where they are (what is persisted stays, the fake
    /// instances keep running, the router's listeners are gone), and a new engine starts
    /// on the same store.
    pub async fn restart(&mut self) {
        self.engine.shutdown().await;
        self.world.lock().listeners.clear();
        self.engine = Self::engine(
            &self.config,
            &self.store,
            &self.world,
            &self.clock,
            self.dir.path(),
            &self.kinds,
        )
        .await;
    }

    pub fn admin() -> Actor {
        Actor {
            name: "admin".into(),
            role: Role::Admin,
        }
    }

    pub fn alice() -> Actor {
        Actor {
            name: "alice".into(),
            role: Role::Approver,
        }
    }

    pub async fn deploy(&self, env: &str, version: &str) -> Deployment {
        self.engine
            .deploy(
                DeployRequest {
                    app: "web".into(),
                    environment: env.into(),
                    version: version.into(),
                    git_ref: Some("main".into()),
                    commit: Some("3f2a9c1".into()),
                    ..Default::default()
                },
                &Self::admin(),
            )
            .await
            .unwrap()
    }

    pub async fn get(&self, id: DeploymentId) -> Deployment {
        self.engine.deployment(id).await.unwrap()
    }

    /// Waits until deployment `id` is `status`.
    pub async fn wait_status(&self, id: DeploymentId, status: Status) -> Deployment {
        let what = format!("deployment {id} to be {status}");
        wait_until(&what, || async { self.get(id).await.status == status }).await;
        self.get(id).await
    }

    /// Deploys and waits until the rollout ends `expect`.
    pub async fn deploy_and_wait(&self, env: &str, version: &str, expect: Status) -> Deployment {
        let d = self.deploy(env, version).await;
        let what = format!("deployment {} of {version} to end", d.id);
        wait_until(&what, || async {
            let s = self.get(d.id).await.status;
            s.is_finished()
        })
        .await;
        let d = self.get(d.id).await;
        assert_eq!(d.status, expect, "{:#?}", d.statuses);
        d
    }

    /// Deploys `version` to a canary staging that pauses manually, promotes it, and
    /// waits for its success.
    pub async fn deploy_and_wait_promoted(&self, version: &str) -> Deployment {
        let d = self.deploy("staging", version).await;
        wait_until("the manual pause", || async {
            self.engine.live(d.id).paused.is_some() || self.get(d.id).await.status.is_finished()
        })
        .await;
        if self.engine.live(d.id).paused.is_some() {
            self.engine.promote(d.id, &Self::admin()).await.unwrap();
        }
        self.wait_status(d.id, Status::Success).await
    }

    pub async fn log_lines(&self, id: DeploymentId) -> Vec<String> {
        self.engine
            .logs(id, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.message)
            .collect()
    }

    /// The instances the store records for `web` in `staging`.
    pub async fn store_instances(&self) -> Vec<slipway_core::Instance> {
        use slipway_store::Store;
        self.store
            .instances(Some("web"), Some("staging"))
            .await
            .unwrap()
    }

    pub fn last_reason(d: &Deployment) -> String {
        d.statuses
            .last()
            .map(|s| s.reason.clone())
            .unwrap_or_default()
    }
}
