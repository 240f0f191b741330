//! The engine's view of traffic: the split it wants per (app, environment), pushed to the
//! router as one whole listener configuration per environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use slipway_router::{ListenerConfig, ReleaseConfig, ReleaseStats, ServiceConfig};
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// The data plane as the engine sees it: in-process today, a remote router process later.
#[async_trait]
pub trait TrafficRouter: Send + Sync {
    /// Starts serving `env` on `addr` (port 0 picks one); returns the bound address.
    async fn listen(&self, env: &str, addr: SocketAddr) -> Result<SocketAddr>;
    async fn configure(&self, env: &str, config: ListenerConfig) -> Result<()>;
    async fn stats(&self, env: &str) -> Result<Vec<ReleaseStats>>;
    fn render_metrics(&self, out: &mut String);
}

#[async_trait]
impl TrafficRouter for slipway_router::Router {
    async fn listen(&self, env: &str, addr: SocketAddr) -> Result<SocketAddr> {
        self.add_listener(env, addr)
            .await
            .map_err(|e| Error::Router(format!("environment {env}: cannot listen on {addr}: {e}")))
    }

    async fn configure(&self, env: &str, config: ListenerConfig) -> Result<()> {
        slipway_router::Router::configure(self, env, config)
            .map_err(|e| Error::Router(e.to_string()))
    }

    async fn stats(&self, env: &str) -> Result<Vec<ReleaseStats>> {
        slipway_router::Router::stats(self, env).map_err(|e| Error::Router(e.to_string()))
    }

    fn render_metrics(&self, out: &mut String) {
        slipway_router::Router::render_metrics(self, out)
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
        self.router
            .configure(env, ListenerConfig { services })
            .await
    }
}
