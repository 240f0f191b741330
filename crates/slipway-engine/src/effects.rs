//! The effects every step shares: persist a transition (with its outbox entry) before
//! anything follows from it, log, route, and look up what the configuration says. These
//! are the only methods of `Inner`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use slipway_config::{App, Environment, Hook, Strategy};
use slipway_core::analysis::Verdict;
use slipway_core::{Deployment, DeploymentId, InstanceState, Status, StatusChange, state};
use slipway_drivers::Driver;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::traffic::ReleaseRoute;
use crate::{Inner, Paused, RolloutControl, StatusEvent};

/// The actor named in status changes the engine makes on its own.
pub(crate) const SYSTEM: &str = "slipway";

/// The router listener of an environment's blue-green preview. A dot cannot occur in an
/// environment name, so it never clashes with one.
pub(crate) fn preview_listener(env: &str) -> String {
    format!("{env}.preview")
}

impl Inner {
    /// Persists a status change (before its effect; the store writes its outbox entry in
    /// the same transaction), logs it and tells live viewers and the notifiers.
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
        let change = StatusChange {
            status: to,
            at,
            actor: actor.to_string(),
            reason: reason.to_string(),
        };
        let updated = self.store.transition(d.id, d.status, change).await?;
        self.outbox_written();
        self.log(d.id, "status", &format!("{to}: {reason}")).await;
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

    /// Wakes the notifiers: the store wrote a status change or a decision (and its outbox
    /// entry).
    pub(crate) fn outbox_written(&self) {
        self.outbox
            .send_modify(|written| *written = written.wrapping_add(1));
    }

    /// Appends to a deployment's log. A log line that cannot be stored is not worth
    /// failing a rollout for; it is reported in the server's own log instead.
    /// Every line (instance and hook output among them) enters the log here, secrets
    /// masked.
    pub(crate) async fn log(&self, id: DeploymentId, source: &str, message: &str) {
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

    /// Where the instances of a release the store records as running answer.
    pub(crate) async fn running_addrs(
        &self,
        app: &str,
        env: &str,
        version: &str,
    ) -> Result<Vec<SocketAddr>> {
        Ok(self
            .store
            .instances(Some(app), Some(env))
            .await?
            .into_iter()
            .filter(|i| i.version == version && i.state == InstanceState::Running)
            .filter_map(|i| i.addr.parse().ok())
            .collect())
    }

    pub(crate) fn app(&self, d: &Deployment) -> Result<&App> {
        self.config
            .apps
            .get(&d.app)
            .ok_or_else(|| Error::not_found(format!("app {}", d.app)))
    }

    pub(crate) fn env(&self, d: &Deployment) -> Result<&Environment> {
        self.config
            .environments
            .get(&d.environment)
            .ok_or_else(|| Error::not_found(format!("environment {}", d.environment)))
    }

    /// The driver of an app's `driver:` kind.
    pub(crate) fn driver_of(&self, app: &str) -> Result<&Arc<dyn Driver>> {
        let kind = self
            .config
            .apps
            .get(app)
            .ok_or_else(|| Error::not_found(format!("app {app}")))?
            .driver;
        self.drivers.get(kind).ok_or_else(|| {
            Error::Unsupported(format!(
                "app {app} uses driver `{}`, which this server does not have",
                crate::ports::kind_name(kind)
            ))
        })
    }

    /// Whose instances the drivers run for this server: its data dir, which no other
    /// server shares.
    pub(crate) fn scope(&self) -> String {
        self.data_dir.display().to_string()
    }

    /// Environment of an instance, hook or migration: the environment's variables and
    /// secrets plus slipway's own.
    pub(crate) fn instance_env(&self, d: &Deployment) -> BTreeMap<String, String> {
        let mut vars = self
            .config
            .environments
            .get(&d.environment)
            .map(|e| e.variables.clone())
            .unwrap_or_default();
        if let Some(secrets) = self.environment_secrets.of(&d.environment) {
            vars.extend(secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        vars.insert("SLIPWAY_APP".into(), d.app.clone());
        vars.insert("SLIPWAY_ENV".into(), d.environment.clone());
        vars.insert("SLIPWAY_VERSION".into(), d.release.version.clone());
        vars.insert("SLIPWAY_DEPLOYMENT".into(), d.id.to_string());
        vars
    }

    /// Runs a hook with its output streamed into the deployment log; `Err` is why it
    /// failed, its last line of output included.
    pub(crate) async fn hook(&self, d: &Deployment, name: &str, hook: &Hook) -> Result<(), String> {
        let what = format!("{name} hook");
        self.run_logged(d.id, "hook", &what, hook, self.instance_env(d))
            .await
    }

    /// Runs `command` (a hook, a migration) with `env`, each line of its output stored in
    /// deployment `id`'s log under `source` as it comes; `Err` is why it failed (`{what}
    /// exited with status 1: <its last line>`).
    pub(crate) async fn run_logged(
        &self,
        id: DeploymentId,
        source: &str,
        what: &str,
        command: &Hook,
        env: BTreeMap<String, String>,
    ) -> Result<(), String> {
        self.log(id, source, &format!("running {what}: {}", command.run))
            .await;
        // The runner cannot wait for the store; a channel lets lines be stored as they
        // come while the command still runs.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let run = self.hooks.run(command, env, tx);
        let store = async {
            let mut last = None;
            while let Some(line) = rx.recv().await {
                self.log(id, source, &line.text).await;
                if !line.from_runner {
                    last = Some(line.text);
                }
            }
            last
        };
        let (run, last) = tokio::join!(run, store);
        let summary = if run.success {
            format!("{what} succeeded")
        } else {
            let last = last
                .map(|l| format!(": {}", self.mask(&l)))
                .unwrap_or_default();
            format!("{what} {}{last}", run.outcome)
        };
        self.log(id, source, &summary).await;
        if run.success { Ok(()) } else { Err(summary) }
    }

    fn with_control(&self, id: DeploymentId, f: impl FnOnce(&mut RolloutControl)) {
        if let Ok(mut rollouts) = self.rollouts.lock()
            && let Some(control) = rollouts.get_mut(&id)
        {
            f(control);
        }
    }

    pub(crate) fn set_verdict(&self, id: DeploymentId, verdict: &Verdict, text: &str) {
        let judged = crate::Judged {
            at: self.clock.now(),
            verdict: verdict.clone(),
            text: text.to_string(),
        };
        self.with_control(id, |c| {
            let verdicts = &mut c.live.verdicts;
            if verdicts.len() == crate::RECENT_VERDICTS {
                verdicts.remove(0);
            }
            verdicts.push(judged);
        });
    }

    pub(crate) fn set_paused(&self, id: DeploymentId, paused: Option<Paused>) {
        self.with_control(id, |c| c.live.paused = paused);
    }

    /// Ends a running rollout as `failure` with `reason` (it reverts as any failure does).
    pub(crate) fn fail_rollout(&self, id: DeploymentId, reason: &str) {
        self.with_control(id, |c| {
            c.fail.send_replace(Some(reason.to_string()));
        });
    }

    /// Routes to the running instances of `version` as the store records them, leaving
    /// every weight as it is: an instance was replaced.
    pub(crate) async fn refresh_instances(
        &self,
        app: &str,
        env: &str,
        version: &str,
    ) -> Result<()> {
        let addrs = self.running_addrs(app, env, version).await?;
        if self.has_preview(env) {
            self.traffic
                .set_instances(app, &preview_listener(env), version, &addrs)
                .await?;
        }
        self.traffic.set_instances(app, env, version, &addrs).await
    }

    /// Whether an app uses the driver of `kind`.
    pub(crate) fn uses(&self, kind: slipway_config::DriverKind) -> bool {
        self.config.apps.values().any(|a| a.driver == kind)
    }

    /// Whether dead instances of `app` in `env` are being replaced now.
    pub(crate) fn is_healing(&self, app: &str, env: &str) -> bool {
        self.healing
            .lock()
            .is_ok_and(|h| h.contains(&(app.to_owned(), env.to_owned())))
    }
}
