//! The engine: a level-triggered reconcile loop that moves deployments through their
//! gates and rollouts. It compares what should run (the store) with what runs (drivers,
//! router) and takes the next idempotent step, so a restart at any point resumes cleanly.
//!
//! The rules themselves live in `slipway-core`; this crate only wires them to I/O, which
//! it reaches through the traits in [`Parts`] only.
//!
//! Modules, one job each: `effects` (persist a transition, log, route: what every step
//! does), `instances` (start, stop, adopt and health-check instances), `recovery`
//! (start-up: adopt, restore routes, open listeners), `reconcile` (the loop and its
//! gates), `rollout` (one deployment's phases) and `finish` (its end), `strategy` (one
//! module per strategy behind one step interface), `commands` (what users ask),
//! `migrate` (schema migrations with the release) and `watching` (the post-deploy watch).
#![forbid(unsafe_code)]

mod clock;
mod commands;
mod effects;
mod error;
mod finish;
mod heal;
mod hooks;
mod instances;
mod leftovers;
mod migrate;
mod notify;
mod pipelines;
mod ports;
mod probe;
mod reconcile;
mod recovery;
mod rollout;
mod strategy;
mod traffic;
mod watching;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use slipway_config::{Config, EnvironmentSecrets, Role};
use slipway_core::{DeploymentId, Masker, Millis, Status};
use slipway_store::{MigrationStore, Store, WatchStore};
use tokio::sync::{Mutex, Notify, broadcast, watch};

pub use clock::{Clock, SystemClock};
pub use commands::{DeployRequest, EnvStatus, KeptRelease, Share, WaitingOn};
pub use error::{Error, ErrorKind, Result};
pub use hooks::ShellHooks;
pub use leftovers::{GcReport, Leftover};
pub use notify::Notifier;
pub use pipelines::{MAX_INPUT_CHARS, Pipelines, RunEvent, short_ref};
pub use ports::{Drivers, HookOutput, HookRun, HookRunner, Prober};
pub use probe::HttpProber;
pub use slipway_store::{OutboxDeployment, OutboxEntry, OutboxEvent};
pub use traffic::{EnvLimits, ReleaseRoute, TrafficRouter};

/// Grace between SIGTERM and SIGKILL when an instance is stopped.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// Who asks: an authenticated user of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

/// Published on every status change (the API's `/api/v1/events`, for live viewers; a
/// slow one may miss events, which is why notifications read the outbox instead).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    pub deployment_id: DeploymentId,
    pub app: String,
    pub environment: String,
    pub version: String,
    pub status: Status,
    pub reason: String,
    pub at: Millis,
}

/// Everything the engine needs from outside, so tests and the server can choose each
/// part (the server's composition chooses the real ones).
pub struct Parts {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Which schema migration ran with which deployment, and what became of its `down`.
    pub migrations: Arc<dyn MigrationStore>,
    /// Post-deploy watches, so a restart resumes them.
    pub watches: Arc<dyn WatchStore>,
    /// One driver per `driver:` kind the apps may name.
    pub drivers: Drivers,
    pub router: Arc<dyn TrafficRouter>,
    /// Health checks and smoke tests.
    pub prober: Arc<dyn Prober>,
    pub hooks: Arc<dyn HookRunner>,
    pub clock: Arc<dyn Clock>,
    /// Told of every status change and decision (and the runs' starts and ends), from the
    /// store's outbox: in order, at least once, also across restarts.
    pub notifiers: Vec<Arc<dyn Notifier>>,
    /// Where instance logs go (`<data_dir>/logs`); also names this server's instances.
    pub data_dir: PathBuf,
    /// Secrets the server knows (tokens, secret-named variables), masked in every
    /// deployment log line; [`Engine::add_secret`] adds more.
    pub secrets: Masker,
    /// The values of the environments' `secrets:`, read when the server started: given
    /// to their instances, hooks, migrations and the pipeline jobs in them, and masked in
    /// every log besides [`Parts::secrets`].
    pub environment_secrets: EnvironmentSecrets,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// The engine's shared state. Its methods are the shared effects (`effects.rs`); every
/// other module works through free functions taking it.
pub(crate) struct Inner {
    config: Config,
    store: Arc<dyn Store>,
    migrations: Arc<dyn MigrationStore>,
    watches: Arc<dyn WatchStore>,
    drivers: Drivers,
    traffic: traffic::Traffic,
    clock: Arc<dyn Clock>,
    prober: Arc<dyn Prober>,
    hooks: Arc<dyn HookRunner>,
    events: broadcast::Sender<StatusEvent>,
    /// Wakes the reconcile loop.
    wake: Notify,
    /// Counts status changes written, so the outbox delivery wakes on each.
    outbox: watch::Sender<u64>,
    data_dir: PathBuf,
    masker: std::sync::RwLock<Masker>,
    environment_secrets: EnvironmentSecrets,
    /// Held while deciding which deployment may start, so a command and the loop never
    /// both act on the same pending deployment.
    decide: Mutex<()>,
    rollouts: std::sync::Mutex<HashMap<DeploymentId, RolloutControl>>,
    /// The running post-deploy watches, by watched deployment: set to end one.
    watching: std::sync::Mutex<HashMap<DeploymentId, watch::Sender<bool>>>,
    /// (app, environment) whose dead instances are being replaced: no rollout starts
    /// there meanwhile (`heal.rs`).
    healing: std::sync::Mutex<BTreeSet<(String, String)>>,
    shutdown: watch::Sender<bool>,
}

/// The handle the engine keeps on one running rollout.
struct RolloutControl {
    app: String,
    environment: String,
    /// Set to a reason to abort the rollout (an urgent rollback).
    abort: watch::Sender<Option<String>>,
    /// Set to a reason to fail the rollout (an instance of its release died).
    fail: watch::Sender<Option<String>>,
    /// Wakes a canary paused with `pause: manual`.
    promote: Arc<Notify>,
    live: Live,
}

/// What only a running rollout knows, for the API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// The canary analysis's last verdicts, oldest first, at most [`RECENT_VERDICTS`].
    pub verdicts: Vec<Judged>,
    /// The canary pause it waits at.
    pub paused: Option<Paused>,
}

/// How many of its analysis's verdicts a running canary keeps for the console.
pub const RECENT_VERDICTS: usize = 5;

/// One verdict of the canary analysis, when it was given and the sentence that states it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub at: slipway_core::Millis,
    pub verdict: slipway_core::analysis::Verdict,
    pub text: String,
}

impl Live {
    /// The analysis's latest verdict.
    pub fn verdict(&self) -> Option<&Judged> {
        self.verdicts.last()
    }
}

/// A canary pause under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paused {
    /// Until `slipway promote`.
    Manual,
    For(Duration),
}

impl Engine {
    /// Re-adopts instances that survived a restart, restores the routes and pending
    /// scale-downs, then opens the environments' router listeners with those routes in
    /// place, and starts the reconcile loop and the outbox delivery.
    pub async fn start(parts: Parts) -> Result<Engine> {
        let (events, _) = broadcast::channel(1024);
        let (shutdown, _) = watch::channel(false);
        let mut masker = parts.secrets;
        for secret in parts.environment_secrets.values() {
            pipelines::mask_secret(&mut masker, secret);
        }
        let inner = Arc::new(Inner {
            traffic: traffic::Traffic::new(parts.router),
            config: parts.config,
            store: parts.store,
            migrations: parts.migrations,
            watches: parts.watches,
            drivers: parts.drivers,
            clock: parts.clock,
            prober: parts.prober,
            hooks: parts.hooks,
            events,
            wake: Notify::new(),
            outbox: watch::channel(0).0,
            data_dir: parts.data_dir,
            masker: std::sync::RwLock::new(masker),
            environment_secrets: parts.environment_secrets,
            decide: Mutex::new(()),
            rollouts: std::sync::Mutex::new(HashMap::new()),
            watching: std::sync::Mutex::new(HashMap::new()),
            healing: std::sync::Mutex::new(BTreeSet::new()),
            shutdown,
        });
        recovery::recover(&inner).await?;
        tokio::spawn(leftovers::report(inner.clone()));
        tokio::spawn(reconcile::run(inner.clone()));
        tokio::spawn(heal::run(inner.clone()));
        for notifier in parts.notifiers {
            tokio::spawn(notify::deliver(inner.clone(), notifier));
        }
        Ok(Engine { inner })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn now(&self) -> Millis {
        self.inner.clock.now()
    }

    /// Masks `secret` in deployment logs from now on (an API token just created).
    pub fn add_secret(&self, secret: &str) {
        self.inner
            .masker
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .add(secret);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.inner.events.subscribe()
    }

    /// Resolves once `shutdown` was called: long-lived streams end on it, so a server can
    /// stop while clients follow its events.
    pub async fn stopping(&self) {
        let mut stop = self.inner.shutdown.subscribe();
        let _ = stop.wait_for(|stopping| *stopping).await;
    }

    /// The address an environment's router listens on (its port when `listen` said 0).
    pub async fn listener(&self, env: &str) -> Option<std::net::SocketAddr> {
        self.inner.traffic.listener(env).await
    }

    /// What only a running rollout knows: its canary's latest verdict and pause.
    pub fn live(&self, id: DeploymentId) -> Live {
        let Ok(rollouts) = self.inner.rollouts.lock() else {
            return Live::default();
        };
        rollouts
            .get(&id)
            .map(|c| c.live.clone())
            .unwrap_or_default()
    }

    /// The router's counters in Prometheus text format.
    pub async fn router_metrics(&self) -> Result<String> {
        self.inner.traffic.router().metrics().await
    }

    /// Stops the loop and the rollouts' tasks. Instances and the persisted state stay: a
    /// new engine on the same store picks them up.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner.wake.notify_one();
    }

    /// Stops and removes every instance the drivers hold for this server (containers
    /// too), recorded or not, and forgets them (the demo's clean-up; a real server leaves
    /// workloads running when it stops).
    pub async fn stop_all_instances(&self) -> Result<()> {
        let scope = self.inner.scope();
        for (kind, driver) in self.inner.drivers.each() {
            let found = match driver.found(&scope).await {
                Ok(found) => found,
                // A driver no app uses may have no daemon to ask.
                Err(_) if !self.inner.uses(kind) => continue,
                Err(e) => return Err(e.into()),
            };
            for found in found {
                driver.stop(&found.handle, STOP_GRACE).await?;
                driver.remove(&found.handle).await?;
            }
        }
        for inst in self.inner.store.instances(None, None).await? {
            self.inner.store.delete_instance(&inst.id).await?;
        }
        Ok(())
    }
}
