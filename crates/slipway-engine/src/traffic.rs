//! The engine's view of traffic: the split it wants per (app, environment), pushed to the
//! router as one whole listener configuration per environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use slipway_router::{ListenerConfig, ReleaseConfig, ReleaseStats, ServiceConfig};
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// The data plane as the engine sees it: the in-process router, or a standalone router
/// process driven over its control API.
#[async_trait]
pub trait TrafficRouter: Send + Sync {
    /// Makes `env` ready to serve on `addr` (port 0 picks one); returns the bound address
    /// when it is known already.
    async fn listen(&self, env: &str, addr: SocketAddr) -> Result<SocketAddr>;
    /// Swaps in `config` for `env` in one step; returns the listener's bound address.
    async fn configure(
        &self,
        env: &str,
        addr: SocketAddr,
        config: ListenerConfig,
    ) -> Result<SocketAddr>;
    async fn stats(&self, env: &str) -> Result<Vec<ReleaseStats>>;
    /// The router's counters in Prometheus text format.
    async fn metrics(&self) -> Result<String>;
}

fn router_error(e: slipway_router::Error) -> Error {
    Error::Router(e.to_string())
}

#[async_trait]
impl TrafficRouter for slipway_router::Router {
    async fn listen(&self, env: &str, addr: SocketAddr) -> Result<SocketAddr> {
        self.add_listener(env, addr)
            .await
            .map_err(|e| Error::Router(format!("environment {env}: cannot listen on {addr}: {e}")))
    }

    async fn configure(
        &self,
        env: &str,
        addr: SocketAddr,
        config: ListenerConfig,
    ) -> Result<SocketAddr> {
        slipway_router::Router::configure(self, env, config).map_err(router_error)?;
        Ok(self.listener(env).map_or(addr, |(bound, _)| bound))
    }

    async fn stats(&self, env: &str) -> Result<Vec<ReleaseStats>> {
        slipway_router::Router::stats(self, env).map_err(router_error)
    }

    async fn metrics(&self) -> Result<String> {
        let mut out = String::new();
        self.render_metrics(&mut out);
        Ok(out)
    }
}

#[async_trait]
impl TrafficRouter for slipway_router::ControlClient {
    /// Nothing to do yet: the standalone router keeps serving its last configuration
    /// until the first `configure`, which binds the listener if it is new. That is what
    /// lets a restarted server take over without dropping a request.
    async fn listen(&self, _env: &str, addr: SocketAddr) -> Result<SocketAddr> {
        Ok(addr)
    }

    async fn configure(
        &self,
        env: &str,
        addr: SocketAddr,
        config: ListenerConfig,
    ) -> Result<SocketAddr> {
        self.configure_listener(env, addr, &config)
            .await
            .map_err(router_error)
    }

    async fn stats(&self, env: &str) -> Result<Vec<ReleaseStats>> {
        slipway_router::ControlClient::stats(self, env)
            .await
            .map_err(router_error)
    }

    async fn metrics(&self) -> Result<String> {
        slipway_router::ControlClient::metrics(self)
            .await
            .map_err(router_error)
    }
}

/// One release's share of an app's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseRoute {
    pub version: String,
    /// Percent, 0.0..=100.0.
    pub weight: f64,
    pub canary: bool,
    pub instances: Vec<SocketAddr>,
}

/// Timeouts the router applies to one environment's services.
#[derive(Debug, Clone, Copy)]
pub struct EnvLimits {
    pub drain_timeout: Duration,
    pub request_timeout: Duration,
}

pub struct Traffic {
    router: std::sync::Arc<dyn TrafficRouter>,
    /// Serialises updates so two configurations of one listener never race.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// (environment, app) → split.
    splits: BTreeMap<(String, String), Vec<ReleaseRoute>>,
    listeners: BTreeMap<String, SocketAddr>,
    limits: BTreeMap<String, EnvLimits>,
}

impl Traffic {
    pub fn new(router: std::sync::Arc<dyn TrafficRouter>) -> Traffic {
        Traffic {
            router,
            state: Mutex::new(State::default()),
        }
    }

    pub fn router(&self) -> &dyn TrafficRouter {
        self.router.as_ref()
    }

    pub async fn listen(
        &self,
        env: &str,
        addr: SocketAddr,
        limits: EnvLimits,
    ) -> Result<SocketAddr> {
        let bound = self.router.listen(env, addr).await?;
        let mut state = self.state.lock().await;
        state.listeners.insert(env.to_string(), bound);
        state.limits.insert(env.to_string(), limits);
        Ok(bound)
    }

    pub async fn listener(&self, env: &str) -> Option<SocketAddr> {
        self.state.lock().await.listeners.get(env).copied()
    }

    pub async fn split(&self, app: &str, env: &str) -> Vec<ReleaseRoute> {
        let state = self.state.lock().await;
        state
            .splits
            .get(&(env.to_string(), app.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the split of one app and pushes the environment's whole configuration, so
    /// the router swaps it in one step.
    pub async fn set(&self, app: &str, env: &str, routes: Vec<ReleaseRoute>) -> Result<()> {
        let mut state = self.state.lock().await;
        state
            .splits
            .insert((env.to_string(), app.to_string()), routes);
        let limits = state.limits.get(env).copied().unwrap_or(EnvLimits {
            drain_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
        });
        let services = state
            .splits
            .iter()
            .filter(|((e, _), _)| e == env)
            .map(|((_, app), routes)| ServiceConfig {
                name: app.clone(),
                releases: routes
                    .iter()
                    .map(|r| ReleaseConfig {
                        name: r.version.clone(),
                        weight: r.weight,
                        canary: r.canary,
                        instances: r.instances.clone(),
                    })
                    .collect(),
                drain_timeout: limits.drain_timeout,
                request_timeout: limits.request_timeout,
            })
            .collect();
        let addr = state
            .listeners
            .get(env)
            .copied()
            .ok_or_else(|| Error::Router(format!("environment {env} has no listener")))?;
        let bound = self
            .router
            .configure(env, addr, ListenerConfig { services })
            .await?;
        state.listeners.insert(env.to_string(), bound);
        Ok(())
    }
}
