//! The reconcile loop: on every tick (and whenever a command wakes it) it looks at every
//! unfinished deployment and takes the next step — hold it at a gate, start its rollout,
//! or resume a rollout that lost its task in a restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use slipway_config::Strategy;
use slipway_core::{Deployment, InstanceState, Status, StatusChange, gates, state};

use crate::error::{Error, Result};
use crate::traffic::{EnvLimits, ReleaseRoute};
use crate::{Inner, STOP_GRACE, StatusEvent, rollout};

/// The router listener of an environment's blue-green preview. A dot cannot occur in an
/// environment name, so it never clashes with one.
pub(crate) fn preview_listener(env: &str) -> String {
    format!("{env}.preview")
}

/// The actor named in status changes the engine makes on its own.
pub(crate) const SYSTEM: &str = "slipway";

pub(crate) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = inner.tick().await {
            tracing::error!(error = %e, "reconcile tick failed; retrying on the next tick");
        }
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(inner.config.server.tick) => {}
            _ = shutdown.changed() => {}
        }
    }
}

impl Inner {
    /// Persists a status change (before its effect), logs it and publishes it.
    pub(crate) async fn transition(
        &self,
        d: &Deployment,
        to: Status,
        actor: &str,
        reason: &str,
    ) -> Result<Deployment> {
        if !state::can_transition(d.status, to) {
            return Err(Error::conflict(
                "invalid_transition",
                format!("deployment {} cannot go from {} to {to}", d.id, d.status),
            ));
        }
        let at = self.clock.now();
        let updated = self
            .store
            .transition(
                d.id,
                d.status,
                StatusChange {
                    status: to,
                    at,
                    actor: actor.to_string(),
                    reason: reason.to_string(),
                },
            )
            .await?;
        self.log(d.id, "engine", &format!("{to}: {reason}")).await;
        tracing::info!(deployment = d.id, app = %d.app, env = %d.environment, version = %d.release.version, status = %to, %reason);
        let _ = self.events.send(StatusEvent {
            deployment_id: d.id,
            app: d.app.clone(),
            environment: d.environment.clone(),
            version: d.release.version.clone(),
            status: to,
            reason: reason.to_string(),
            at,
        });
        Ok(updated)
    }

    /// Appends to a deployment's log, secrets masked: every line (instance and hook output
    /// among them) enters it here. A log line that cannot be stored is not worth failing a
    /// rollout for; it is reported in the server's own log instead.
    pub(crate) async fn log(&self, id: i64, source: &str, message: &str) {
        let message = self.mask(message);
        let at = self.clock.now();
        if let Err(e) = self.store.append_log(id, at, source, &message).await {
            tracing::warn!(deployment = id, error = %e, "could not store a log line: {message}");
        }
    }

    /// `text` with the secrets the server knows, and token shapes, masked.
    pub(crate) fn mask(&self, text: &str) -> String {
        let masker = self
            .masker
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        masker.mask(text).into_owned()
    }

    pub(crate) async fn bind_listeners(&self) -> Result<()> {
        for (name, env) in &self.config.environments {
            let limits = EnvLimits {
                drain_timeout: env.drain_timeout,
                request_timeout: Duration::from_secs(60),
            };
            let bound = self.traffic.listen(name, env.listen, limits).await?;
            tracing::info!(environment = %name, %bound, "router listening");
            if let Strategy::BlueGreen {
                preview: Some(addr),
                ..
            } = env.strategy
            {
                let preview = preview_listener(name);
                let bound = self.traffic.listen(&preview, addr, limits).await?;
                tracing::info!(environment = %name, %bound, "preview router listening");
            }
        }
        Ok(())
    }

    /// Sets an app's routes in an environment, and on its preview listener when it has
    /// one (outside a blue-green switch, the preview shows what runs).
    pub(crate) async fn route_everywhere(
        &self,
        app: &str,
        env: &str,
        routes: Vec<ReleaseRoute>,
    ) -> Result<()> {
        if self.has_preview(env) {
            self.traffic
                .set(app, &preview_listener(env), routes.clone())
                .await?;
        }
        self.traffic.set(app, env, routes).await
    }

    pub(crate) fn has_preview(&self, env: &str) -> bool {
        self.config.environments.get(env).is_some_and(|e| {
            matches!(
                e.strategy,
                Strategy::BlueGreen {
                    preview: Some(_),
                    ..
                }
            )
        })
    }

    /// Instances recorded as running are kept if the driver still sees them; the others
    /// are marked stopped, so nothing routes to a process that is gone. An instance the
    /// driver runs for this server but the store does not know (the server died between
    /// starting it and recording it) is stopped: nothing would ever route to it.
    pub(crate) async fn adopt_instances(&self) -> Result<()> {
        let mut recorded = Vec::new();
        for mut inst in self.store.instances(None, None).await? {
            if inst.state != InstanceState::Running {
                continue;
            }
            if self.driver.is_running(&inst.handle).await {
                tracing::info!(instance = %inst.id, addr = %inst.addr, "re-adopted running instance");
                recorded.push(inst.handle);
            } else {
                tracing::warn!(instance = %inst.id, "instance is gone; marking it stopped");
                inst.state = InstanceState::Stopped;
                self.store.put_instance(&inst).await?;
            }
        }
        for (id, handle) in self.driver.instances(&self.scope()).await {
            if !recorded.contains(&handle) {
                tracing::warn!(instance = %id, %handle, "stopping an instance that was started but never recorded");
                self.driver.stop(&handle, STOP_GRACE).await?;
            }
        }
        Ok(())
    }

    /// Whose instances the driver runs for this server: its data dir, which no other
    /// server shares.
    pub(crate) fn scope(&self) -> String {
        self.data_dir.display().to_string()
    }

    /// Points every environment's router at its current release's running instances (an
    /// app with no release yet gets an empty route, which the router answers with 503),
    /// and resumes the scale-down of a blue-green old set the restart interrupted.
    pub(crate) async fn restore_routes(self: &Arc<Self>) -> Result<()> {
        for app in self.config.apps.keys() {
            for env in self.config.environments.keys() {
                let current = self
                    .store
                    .latest_with_status(app, env, &[Status::Success])
                    .await?;
                let routes = match &current {
                    Some(current) => vec![self.full_route(current).await?],
                    None => Vec::new(),
                };
                self.route_everywhere(app, env, routes).await?;
                if let Some(current) = current {
                    self.resume_scale_down(current).await?;
                }
            }
        }
        Ok(())
    }

    /// 100% of traffic to the running instances of `d`'s release.
    pub(crate) async fn full_route(&self, d: &Deployment) -> Result<ReleaseRoute> {
        Ok(ReleaseRoute {
            version: d.release.version.clone(),
            weight: 100.0,
            canary: false,
            instances: self
                .running_addrs(&d.app, &d.environment, &d.release.version)
                .await?,
        })
    }

    pub(crate) async fn running_addrs(
        &self,
        app: &str,
        env: &str,
        version: &str,
    ) -> Result<Vec<std::net::SocketAddr>> {
        Ok(self
            .store
            .instances(Some(app), Some(env))
            .await?
            .into_iter()
            .filter(|i| i.version == version && i.state == InstanceState::Running)
            .filter_map(|i| i.addr.parse().ok())
            .collect())
    }

    async fn tick(self: &Arc<Self>) -> Result<()> {
        let _decide = self.decide.lock().await;
        let mut groups: BTreeMap<(String, String), Vec<Deployment>> = BTreeMap::new();
        for d in self.store.unfinished_deployments().await? {
            groups
                .entry((d.app.clone(), d.environment.clone()))
                .or_default()
                .push(d);
        }
        for ((app, env), deployments) in groups {
            let Some(env_config) = self
                .config
                .environments
                .get(&env)
                .filter(|_| self.config.apps.contains_key(&app))
            else {
                for d in &deployments {
                    let why = format!("{app} in {env} is no longer in the configuration");
                    self.transition(
                        d,
                        if d.status.is_pending() {
                            Status::Cancelled
                        } else {
                            Status::Error
                        },
                        SYSTEM,
                        &why,
                    )
                    .await?;
                }
                continue;
            };
            let in_progress = deployments.iter().find(|d| d.status == Status::InProgress);
            if let Some(d) = in_progress {
                rollout::ensure_running(self, d);
            }
            let now = self.clock.now();
            for d in deployments.iter().filter(|d| d.status.is_pending()) {
                let outcome = gates::evaluate(env_config, d, now);
                match (outcome, in_progress) {
                    (gates::GateOutcome::Rejected { by, reason }, _) => {
                        self.transition(d, Status::Rejected, &by, &reason).await?;
                    }
                    (
                        gates::GateOutcome::Wait {
                            gate,
                            reason,
                            until,
                        },
                        _,
                    ) => {
                        // The reason is recorded once per gate, so a countdown also names
                        // its end.
                        let reason = match (gate, until) {
                            (gates::Gate::WaitTimer, Some(end)) => {
                                format!(
                                    "{reason}, until {}",
                                    slipway_core::civil::format_rfc3339(end)
                                )
                            }
                            _ => reason,
                        };
                        self.hold(d, gate.as_str(), &reason).await?;
                    }
                    (gates::GateOutcome::Open, Some(running)) => {
                        let reason = format!("waiting for deployment {} to finish", running.id);
                        self.hold(d, "concurrency", &reason).await?;
                    }
                    (gates::GateOutcome::Open, None) => {
                        let started = self
                            .transition(
                                d,
                                Status::InProgress,
                                SYSTEM,
                                "all gates passed; rollout started",
                            )
                            .await?;
                        rollout::ensure_running(self, &started);
                        // One rollout per app and environment: the rest wait for the next tick.
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Records that a deployment waits at `gate`, once per gate: a countdown in the reason
    /// does not add a status change every tick.
    async fn hold(&self, d: &Deployment, gate: &str, reason: &str) -> Result<()> {
        let last = d.statuses.last().map(|c| c.reason.as_str()).unwrap_or("");
        let prefix = format!("{gate}: ");
        if d.status == Status::Waiting && last.starts_with(&prefix) {
            return Ok(());
        }
        self.transition(d, Status::Waiting, SYSTEM, &format!("{prefix}{reason}"))
            .await?;
        Ok(())
    }
}
