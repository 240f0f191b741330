//! The narrow traits the engine reaches the outside through (besides `Store`,
//! `TrafficRouter` and `Clock`): health and smoke probes, hooks, and the drivers by kind.
//! Each is handed to the engine at start (`Parts`), so tests put fakes in their place.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slipway_config::{DriverKind, HealthCheck, Hook, SmokeTest};
use slipway_drivers::Driver;
use tokio::sync::mpsc;

/// Health checks of one instance and smoke tests through a router listener. Errors are
/// sentences a user can act on.
#[async_trait]
pub trait Prober: Send + Sync {
    /// Waits until the instance at `addr` passes `hc` (readiness); fails when it does
    /// not in time, or when `driver` says the instance (`handle`) died.
    async fn wait_healthy(
        &self,
        addr: SocketAddr,
        hc: &HealthCheck,
        driver: &dyn Driver,
        handle: &str,
    ) -> Result<String, String>;

    /// Runs every smoke test of `app` against `addr` (a router listener, which may serve
    /// other apps too); the first failure ends the run. Returns a line per passed test.
    async fn smoke(
        &self,
        addr: SocketAddr,
        app: &str,
        tests: &[SmokeTest],
        timeout: Duration,
    ) -> Result<Vec<String>, String>;
}

/// Runs a deployment hook (`pre_deploy`, `post_deploy`, `pre_rollback`) to completion,
/// handing each line of its output to `output` as it comes, so the deployment log shows a
/// long hook while it runs.
#[async_trait]
pub trait HookRunner: Send + Sync {
    async fn run(
        &self,
        hook: &Hook,
        env: BTreeMap<String, String>,
        output: mpsc::UnboundedSender<HookOutput>,
    ) -> HookRun;
}

/// One line of a hook's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutput {
    pub text: String,
    /// A note of the runner itself (a timeout, processes it ended), not the hook's output.
    pub from_runner: bool,
}

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    pub success: bool,
    /// `exited with status 1`, `ran longer than 5s and was killed with its children`, …
    pub outcome: String,
}

/// The drivers a server has, by the `driver:` kind an app names.
#[derive(Clone, Default)]
pub struct Drivers {
    by_kind: Vec<(DriverKind, Arc<dyn Driver>)>,
}

impl Drivers {
    pub fn new() -> Drivers {
        Drivers::default()
    }

    /// Adds (or replaces) the driver of one kind.
    pub fn with(mut self, kind: DriverKind, driver: Arc<dyn Driver>) -> Drivers {
        self.by_kind.retain(|(k, _)| *k != kind);
        self.by_kind.push((kind, driver));
        self
    }

    pub fn get(&self, kind: DriverKind) -> Option<&Arc<dyn Driver>> {
        self.by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, d)| d)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Driver>> {
        self.by_kind.iter().map(|(_, d)| d)
    }

    /// Every driver with its kind.
    pub fn each(&self) -> impl Iterator<Item = (DriverKind, &Arc<dyn Driver>)> {
        self.by_kind.iter().map(|(k, d)| (*k, d))
    }
}

/// The `driver:` value that names a kind.
pub(crate) fn kind_name(kind: DriverKind) -> &'static str {
    match kind {
        DriverKind::Process => "process",
        DriverKind::Docker => "docker",
    }
}
