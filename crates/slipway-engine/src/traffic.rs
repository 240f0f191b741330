//! The engine's view of traffic: the split it wants per (app, environment), pushed to the
//! router as one whole listener configuration per environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use slipway_core::Sample;
use slipway_router::{ListenerConfig, ReleaseConfig, ReleaseStats, ServiceConfig};
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// The data plane as the engine sees it: the in-process router, or a standalone router
/// process driven over its control API.
#[async_trait]
pub trait TrafficRouter: Send + Sync {
    /// Starts serving `env` on `addr` (port 0 picks one) with `config` as its first
    /// configuration, so no request is answered from an empty one; returns the bound
    /// address.
    async fn open(&self, env: &str, addr: SocketAddr, config: ListenerConfig)
    -> Result<SocketAddr>;
    /// Swaps in `config` for an open `env` in one step; returns the listener's bound address.
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
    /// The listener starts with its routes in place: no request sees an empty router.
    async fn open(
        &self,
        env: &str,
        addr: SocketAddr,
        config: ListenerConfig,
    ) -> Result<SocketAddr> {
        self.bind(env, addr, config)
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
    /// The standalone router keeps serving its last configuration until this one, which
    /// binds the listener with it in place if it is new. That is what lets a restarted
    /// server take over without dropping a request.
    async fn open(
        &self,
        env: &str,
        addr: SocketAddr,
        config: ListenerConfig,
    ) -> Result<SocketAddr> {
        TrafficRouter::configure(self, env, addr, config).await
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

/// What a release served between the counters `base` and `now` (all of `now` without a
/// base): the counters are cumulative since the router started, so verdicts judge their
/// growth. Errors include the router's own 5xx on the release's behalf.
pub(crate) fn sample_since(now: Option<&ReleaseStats>, base: Option<&ReleaseStats>) -> Sample {
    let Some(now) = now else {
        return Sample {
            requests: 0,
            errors: 0,
            p99: None,
        };
    };
    let (requests, errors, latency) = match base {
        Some(b) => (
            now.requests.saturating_sub(b.requests),
            (now.errors + now.router_errors).saturating_sub(b.errors + b.router_errors),
            now.latency.delta(&b.latency),
        ),
        None => (
            now.requests,
            now.errors + now.router_errors,
            now.latency.clone(),
        ),
    };
    Sample {
        requests,
        errors,
        p99: latency.quantile(0.99),
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
    listeners: BTreeMap<String, Listener>,
}

/// A listener the engine wants: where, with which limits, and whether the router serves
/// it yet.
#[derive(Clone, Copy)]
struct Listener {
    addr: SocketAddr,
    limits: EnvLimits,
    open: bool,
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

    /// The router's counters of one release of an app in an environment, if it has any.
    pub async fn release_stats(
        &self,
        env: &str,
        app: &str,
        version: &str,
    ) -> Result<Option<ReleaseStats>> {
        Ok(self
            .router
            .stats(env)
            .await?
            .into_iter()
            .find(|s| s.service == app && s.release == version))
    }

    /// Records a listener to open later with [`Traffic::open_all`]: until then, `set`
    /// only records the splits, so the first configuration the router serves is whole.
    pub async fn declare(&self, env: &str, addr: SocketAddr, limits: EnvLimits) {
        let listener = Listener {
            addr,
            limits,
            open: false,
        };
        self.state
            .lock()
            .await
            .listeners
            .insert(env.to_string(), listener);
    }

    /// Opens every declared listener with the splits recorded so far.
    pub async fn open_all(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        let closed: Vec<String> = state
            .listeners
            .iter()
            .filter(|(_, l)| !l.open)
            .map(|(env, _)| env.clone())
            .collect();
        for env in closed {
            let (addr, config) = state.config(&env)?;
            let bound = self.router.open(&env, addr, config).await?;
            tracing::info!(environment = %env, %bound, "router listening");
            if let Some(l) = state.listeners.get_mut(&env) {
                l.addr = bound;
                l.open = true;
            }
        }
        Ok(())
    }

    /// The address an open listener is bound to.
    pub async fn listener(&self, env: &str) -> Option<SocketAddr> {
        let state = self.state.lock().await;
        state.listeners.get(env).filter(|l| l.open).map(|l| l.addr)
    }

    pub async fn split(&self, app: &str, env: &str) -> Vec<ReleaseRoute> {
        let state = self.state.lock().await;
        state
            .splits
            .get(&(env.to_string(), app.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the split of one app and, once the listener is open, pushes the
    /// environment's whole configuration, so the router swaps it in one step.
    pub async fn set(&self, app: &str, env: &str, routes: Vec<ReleaseRoute>) -> Result<()> {
        let mut state = self.state.lock().await;
        state
            .splits
            .insert((env.to_string(), app.to_string()), routes);
        self.push(&mut state, env).await
    }

    /// Pushes the environment's whole configuration once its listener is open.
    async fn push(&self, state: &mut State, env: &str) -> Result<()> {
        let (addr, config) = state.config(env)?;
        if !state.listeners.get(env).is_some_and(|l| l.open) {
            return Ok(());
        }
        let bound = self.router.configure(env, addr, config).await?;
        if let Some(l) = state.listeners.get_mut(env) {
            l.addr = bound;
        }
        Ok(())
    }

    /// Replaces the instances of one release of an app, its weight unchanged, under the
    /// same lock as `set`: a split changed meanwhile is not undone. Does nothing when the
    /// app routes no such release.
    pub async fn set_instances(
        &self,
        app: &str,
        env: &str,
        version: &str,
        instances: &[SocketAddr],
    ) -> Result<()> {
        let mut state = self.state.lock().await;
        let Some(routes) = state.splits.get_mut(&(env.to_string(), app.to_string())) else {
            return Ok(());
        };
        let Some(route) = routes.iter_mut().find(|r| r.version == version) else {
            return Ok(());
        };
        if route.instances == instances {
            return Ok(());
        }
        route.instances = instances.to_vec();
        self.push(&mut state, env).await
    }
}

impl State {
    /// The whole configuration of one environment's listener, and its address.
    fn config(&self, env: &str) -> Result<(SocketAddr, ListenerConfig)> {
        let listener = self
            .listeners
            .get(env)
            .ok_or_else(|| Error::Router(format!("environment {env} has no listener")))?;
        let limits = listener.limits;
        let services = self
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
        Ok((listener.addr, ListenerConfig { services }))
    }
}
