//! One deployment's rollout, as a task the engine supervises: start the new instances,
//! wait until they are healthy, move traffic by the strategy, run the smoke tests, and
//! finish — or put traffic back on the previous release. Every step is idempotent and
//! its phase is persisted first, so a restarted server resumes where the last one was.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use slipway_config::{App, Hook, Strategy};
use slipway_core::{
    Deployment, DeploymentId, Instance, InstanceState, Kind, Phase, Status, next_batch, retention,
};
use slipway_drivers::InstanceSpec;
use tokio::sync::{Notify, watch};

use crate::canary::{Canary, Halt};
use crate::error::{Error, Result};
use crate::hooks::run_hook;
use crate::reconcile::{SYSTEM, preview_listener};
use crate::traffic::ReleaseRoute;
use crate::{Inner, Live, RolloutControl, STOP_GRACE};

/// How many lines of an instance's own output are copied into the deployment log.
const APP_LOG_TAIL: usize = 20;

/// The budget of a rolling update (`strategy: rolling`).
#[derive(Clone, Copy)]
struct RollingPlan {
    replicas: u32,
    max_surge: u32,
    max_unavailable: u32,
}

/// How a rollout ended.
enum Outcome {
    Success(String),
    /// A check failed: the deployment ends `failure`.
    Failed(String),
    /// An urgent rollback took over: the deployment ends `rolled_back`.
    Aborted(String),
    /// slipway itself could not go on (store, driver): the deployment ends `error`.
    Errored(String),
}

/// Why a step did not go on.
enum Stop {
    Failed(String),
    Internal(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Internal(e)
    }
}

impl From<slipway_store::Error> for Stop {
    fn from(e: slipway_store::Error) -> Stop {
        Stop::Internal(e.into())
    }
}

/// Starts the rollout task of an in-progress deployment unless it already runs.
pub(crate) fn ensure_running(inner: &Arc<Inner>, d: &Deployment) {
    let Ok(mut rollouts) = inner.rollouts.lock() else {
        return;
    };
    if rollouts.contains_key(&d.id) {
        return;
    }
    let (abort, abort_rx) = watch::channel(None);
    let promote = Arc::new(Notify::new());
    rollouts.insert(
        d.id,
        RolloutControl {
            app: d.app.clone(),
            environment: d.environment.clone(),
            abort,
            promote: promote.clone(),
            live: Live::default(),
        },
    );
    tokio::spawn(supervise(inner.clone(), d.id, abort_rx, promote));
}

async fn supervise(
    inner: Arc<Inner>,
    id: DeploymentId,
    mut abort: watch::Receiver<Option<String>>,
    promote: Arc<Notify>,
) {
    let mut shutdown = inner.shutdown.subscribe();
    let outcome = tokio::select! {
        outcome = steps(&inner, id, &promote) => Some(outcome),
        reason = aborted(&mut abort) => Some(Outcome::Aborted(reason)),
        // The server is stopping: leave the rollout as persisted; the next start resumes it.
        _ = shutdown.wait_for(|stop| *stop) => None,
    };
    if let Some(outcome) = outcome
        && let Err(e) = finish(&inner, id, outcome).await
    {
        tracing::error!(deployment = id, error = %e, "could not finish the rollout; the next tick retries");
    }
    if let Ok(mut rollouts) = inner.rollouts.lock() {
        rollouts.remove(&id);
    }
    inner.wake.notify_one();
}

async fn aborted(abort: &mut watch::Receiver<Option<String>>) -> String {
    let reason = abort
        .wait_for(Option::is_some)
        .await
        .ok()
        .map(|r| r.clone().unwrap_or_default());
    match reason {
        Some(reason) => reason,
        // The engine dropped the control: never abort on that.
        None => std::future::pending().await,
    }
}

async fn steps(inner: &Arc<Inner>, id: DeploymentId, promote: &Notify) -> Outcome {
    match run_steps(inner, id, promote).await {
        Ok(summary) => Outcome::Success(summary),
        Err(Stop::Failed(reason)) => Outcome::Failed(reason),
        Err(Stop::Internal(e)) => Outcome::Errored(e.to_string()),
    }
}

async fn run_steps(inner: &Arc<Inner>, id: DeploymentId, promote: &Notify) -> Result<String, Stop> {
    let d = inner.store.get_deployment(id).await?;
    let app = inner.app(&d)?;
    let env = inner.env(&d)?;
    let stable = inner
        .store
        .latest_with_status(&d.app, &d.environment, &[Status::Success])
        .await?;
    let version = d.release.version.clone();

    if d.phase == Phase::Reverting {
        return Err(Stop::Failed(
            "the server restarted while this rollout was being reverted".into(),
        ));
    }
    if matches!(d.phase, Phase::Pending | Phase::Starting) {
        inner.store.set_phase(id, Phase::Starting).await?;
        let hook = match d.kind {
            Kind::Deploy => app.hooks.pre_deploy.as_ref().map(|h| ("pre_deploy", h)),
            Kind::Rollback => app.hooks.pre_rollback.as_ref().map(|h| ("pre_rollback", h)),
        };
        if let Some((name, command)) = hook {
            inner.hook(&d, name, command).await.map_err(Stop::Failed)?;
        }
        match env.strategy {
            Strategy::Rolling {
                replicas,
                max_surge,
                max_unavailable,
            } => {
                let plan = RollingPlan {
                    replicas,
                    max_surge,
                    max_unavailable,
                };
                inner.roll(&d, app, stable.as_ref(), plan).await?;
            }
            _ => {
                if let (Strategy::Recreate, Some(stable)) = (&env.strategy, &stable)
                    && stable.release.version != version
                {
                    let why = format!(
                        "recreate: stopping {} first; the app is down until {version} is healthy",
                        stable.release.version
                    );
                    inner.log(id, "engine", &why).await;
                    inner
                        .traffic
                        .set(&d.app, &d.environment, Vec::new())
                        .await?;
                    inner
                        .stop_release(&d.app, &d.environment, &stable.release.version)
                        .await?;
                }
                let instance = inner.ensure_instance(&d, app).await?;
                inner.wait_healthy(&d, app, &instance).await?;
            }
        }
        inner.store.set_phase(id, Phase::Shifting).await?;
    }

    if matches!(d.phase, Phase::Pending | Phase::Starting | Phase::Shifting) {
        if inner
            .running_addrs(&d.app, &d.environment, &version)
            .await?
            .is_empty()
        {
            return Err(Stop::Failed(format!(
                "{version} has no running instance to send traffic to"
            )));
        }
        let canary_against = match (&env.strategy, &stable) {
            // A rollback restores a known-good release: it switches at once.
            (Strategy::Canary { steps, analysis }, Some(stable))
                if d.kind == Kind::Deploy
                    && stable.release.version != version
                    && !inner
                        .running_addrs(&d.app, &d.environment, &stable.release.version)
                        .await?
                        .is_empty() =>
            {
                Some((steps, analysis, stable))
            }
            _ => None,
        };
        match canary_against {
            Some((steps, analysis, stable)) => {
                let canary = Canary {
                    inner,
                    deployment: &d,
                    stable,
                    analysis,
                    promote,
                };
                canary.run(steps).await.map_err(|halt| match halt {
                    Halt::Failed(why) => Stop::Failed(why),
                    Halt::Internal(e) => Stop::Internal(e),
                })?;
            }
            // Blue-green and recreate switch at once; so does a first canary, which has
            // nothing to compare with (DESIGN §3), and a rollback.
            None => {
                let new = inner.full_route(&d).await?;
                if inner.has_preview(&d.environment) {
                    inner.verify_on_preview(&d, app, new.clone()).await?;
                }
                inner.traffic.set(&d.app, &d.environment, vec![new]).await?;
                inner
                    .log(id, "engine", &format!("traffic: 100% to {version}"))
                    .await;
            }
        }
        inner.store.set_phase(id, Phase::Verifying).await?;
    }

    let listener = inner
        .traffic
        .listener(&d.environment)
        .await
        .ok_or_else(|| Error::Router(format!("environment {} has no listener", d.environment)))?;
    let passed = inner
        .prober
        .smoke(listener, &app.smoke, app.health.timeout)
        .await
        .map_err(Stop::Failed)?;
    for line in &passed {
        inner.log(id, "smoke", &format!("passed: {line}")).await;
    }
    Ok(format!(
        "{version} is healthy and serves 100% of traffic; {} smoke test(s) passed",
        passed.len()
    ))
}

async fn finish(inner: &Arc<Inner>, id: DeploymentId, outcome: Outcome) -> Result<()> {
    let d = inner.store.get_deployment(id).await?;
    if d.status != Status::InProgress {
        return Ok(());
    }
    let previous = inner
        .store
        .latest_with_status(&d.app, &d.environment, &[Status::Success])
        .await?;
    let (status, reason) = match outcome {
        Outcome::Success(summary) => {
            inner.copy_app_output(&d).await;
            let done = inner
                .transition(&d, Status::Success, SYSTEM, &summary)
                .await?;
            let replaced = previous.filter(|p| p.id != id);
            if let Some(prev) = &replaced {
                let (status, why) = match d.kind {
                    Kind::Rollback => (
                        Status::RolledBack,
                        format!("rolled back by deployment {id} to {}", d.release.version),
                    ),
                    Kind::Deploy => (
                        Status::Inactive,
                        format!("superseded by deployment {id} ({})", d.release.version),
                    ),
                };
                inner.transition(prev, status, SYSTEM, &why).await?;
            }
            inner.store.set_phase(id, Phase::Done).await?;
            inner.apply_retention(&done).await?;
            if let (
                Strategy::BlueGreen {
                    scale_down_delay, ..
                },
                Some(old),
            ) = (&inner.env(&d)?.strategy, &replaced)
                && old.release.version != d.release.version
            {
                tokio::spawn(scale_down_later(
                    inner.clone(),
                    done.clone(),
                    old.release.version.clone(),
                    *scale_down_delay,
                    *scale_down_delay,
                ));
            }
            if let Some(command) = inner.app(&d).ok().and_then(|a| a.hooks.post_deploy.clone())
                && let Err(why) = inner.hook(&d, "post_deploy", &command).await
            {
                inner
                    .log(
                        id,
                        "hook",
                        &format!("warning: {why} (the deployment stays successful)"),
                    )
                    .await;
            }
            return Ok(());
        }
        Outcome::Failed(reason) => (Status::Failure, reason),
        Outcome::Aborted(reason) => (Status::RolledBack, reason),
        Outcome::Errored(reason) => (Status::Error, reason),
    };
    inner.store.set_phase(id, Phase::Reverting).await?;
    inner
        .log(id, "engine", &format!("reverting: {reason}"))
        .await;
    let stable_version = previous.as_ref().map(|p| p.release.version.clone());
    match &previous {
        Some(prev) => {
            // Recreate or a rolling update stopped some of it, or it died: bring the
            // known-good release back to full strength.
            let replicas = match inner.env(prev)?.strategy {
                Strategy::Rolling { replicas, .. } => replicas.max(1) as usize,
                _ => 1,
            };
            inner
                .ensure_instances(prev, inner.app(prev)?, replicas)
                .await?;
            let route = inner.full_route(prev).await?;
            inner
                .route_everywhere(&d.app, &d.environment, vec![route])
                .await?;
            // Said the same whether or not the new release ever took traffic.
            let back = format!(
                "traffic: 100% on {} (the previous release)",
                prev.release.version
            );
            inner.log(id, "engine", &back).await;
        }
        None => {
            inner
                .route_everywhere(&d.app, &d.environment, Vec::new())
                .await?
        }
    }
    inner.copy_app_output(&d).await;
    if stable_version.as_deref() != Some(d.release.version.as_str()) {
        inner
            .stop_release(&d.app, &d.environment, &d.release.version)
            .await?;
    }
    inner.transition(&d, status, SYSTEM, &reason).await?;
    inner.store.set_phase(id, Phase::Done).await?;
    Ok(())
}

/// Blue-green keeps the old set idle for `scale_down_delay` so a rollback is instant, then
/// stops it (after `wait`: what is left of the delay). Its records stay (as stopped) so a
/// later rollback restarts it.
async fn scale_down_later(
    inner: Arc<Inner>,
    current: Deployment,
    old_version: String,
    delay: Duration,
    wait: Duration,
) {
    let mut shutdown = inner.shutdown.subscribe();
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.wait_for(|stop| *stop) => return,
    }
    if let Err(e) = inner.scale_down(&current, &old_version, delay).await {
        tracing::warn!(deployment = current.id, error = %e, "scale down of {old_version} failed");
    }
}

impl Inner {
    /// After a restart: a blue-green old set still running beside `current` waits out what
    /// is left of its `scale_down_delay`, counted from when `current` took over.
    pub(crate) async fn resume_scale_down(self: &Arc<Self>, current: Deployment) -> Result<()> {
        let Strategy::BlueGreen {
            scale_down_delay, ..
        } = self.env(&current)?.strategy
        else {
            return Ok(());
        };
        let mut old_versions: Vec<String> = self
            .store
            .instances(Some(&current.app), Some(&current.environment))
            .await?
            .into_iter()
            .filter(|i| i.state == InstanceState::Running && i.version != current.release.version)
            .map(|i| i.version)
            .collect();
        old_versions.sort();
        old_versions.dedup();
        let since = self.clock.now().saturating_sub(current.updated_at);
        let wait = scale_down_delay
            .saturating_sub(Duration::from_millis(u64::try_from(since).unwrap_or(0)));
        for old in old_versions {
            tracing::info!(app = %current.app, environment = %current.environment, version = %old, ?wait, "resuming scale down");
            tokio::spawn(scale_down_later(
                self.clone(),
                current.clone(),
                old,
                scale_down_delay,
                wait,
            ));
        }
        Ok(())
    }

    fn app(&self, d: &Deployment) -> Result<&App> {
        self.config
            .apps
            .get(&d.app)
            .ok_or_else(|| Error::not_found(format!("app {}", d.app)))
    }

    fn env(&self, d: &Deployment) -> Result<&slipway_config::Environment> {
        self.config
            .environments
            .get(&d.environment)
            .ok_or_else(|| Error::not_found(format!("environment {}", d.environment)))
    }

    /// Environment of an instance or hook: the environment's variables plus slipway's own.
    fn instance_env(&self, d: &Deployment) -> BTreeMap<String, String> {
        let mut vars = self
            .config
            .environments
            .get(&d.environment)
            .map(|e| e.variables.clone())
            .unwrap_or_default();
        vars.insert("SLIPWAY_APP".into(), d.app.clone());
        vars.insert("SLIPWAY_ENV".into(), d.environment.clone());
        vars.insert("SLIPWAY_VERSION".into(), d.release.version.clone());
        vars.insert("SLIPWAY_DEPLOYMENT".into(), d.id.to_string());
        vars
    }

    async fn hook(&self, d: &Deployment, name: &str, hook: &Hook) -> Result<(), String> {
        run_hook(self, d.id, name, hook, self.instance_env(d)).await
    }

    /// A running instance of `d`'s release: one that is kept from before (a rollback
    /// reuses it), or a new one.
    async fn ensure_instance(&self, d: &Deployment, app: &App) -> Result<Instance> {
        Ok(self.ensure_instances(d, app, 1).await?.swap_remove(0))
    }

    /// At least `count` running instances of `d`'s release, reusing those that run.
    async fn ensure_instances(
        &self,
        d: &Deployment,
        app: &App,
        count: usize,
    ) -> Result<Vec<Instance>> {
        let mut running = self
            .live_instances(&d.app, &d.environment, &d.release.version)
            .await?;
        for inst in &running {
            self.log(
                d.id,
                "engine",
                &format!("using running instance {} ({})", inst.id, inst.addr),
            )
            .await;
        }
        while running.len() < count {
            running.push(self.start_instance(d, app).await?);
        }
        Ok(running)
    }

    /// The instances of a release that the store says run and the driver confirms; the
    /// others are marked stopped.
    async fn live_instances(&self, app: &str, env: &str, version: &str) -> Result<Vec<Instance>> {
        let mut live = Vec::new();
        for mut inst in self.store.instances(Some(app), Some(env)).await? {
            if inst.version != version || inst.state != InstanceState::Running {
                continue;
            }
            if self.driver.is_running(&inst.handle).await {
                live.push(inst);
            } else {
                inst.state = InstanceState::Stopped;
                self.store.put_instance(&inst).await?;
            }
        }
        Ok(live)
    }

    async fn start_instance(&self, d: &Deployment, app: &App) -> Result<Instance> {
        let Some(command) = app.run.clone() else {
            return Err(Error::Unsupported(format!(
                "app {} has no `run` command; only the process driver is built so far",
                d.app
            )));
        };
        let prefix = format!(
            "{}-{}-{}-{}",
            d.app,
            d.environment,
            d.release
                .version
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
            d.id
        );
        let taken: Vec<String> = self
            .store
            .instances(Some(&d.app), Some(&d.environment))
            .await?
            .into_iter()
            .map(|i| i.id)
            .collect();
        let instance_id = (1..)
            .map(|k| {
                if k == 1 {
                    prefix.clone()
                } else {
                    format!("{prefix}-{k}")
                }
            })
            .find(|id| !taken.contains(id))
            .unwrap_or(prefix);
        // The driver makes it, private to the server's user.
        let logs = self.data_dir.join("logs");
        let spec = InstanceSpec {
            instance_id: instance_id.clone(),
            scope: self.scope(),
            app: d.app.clone(),
            environment: d.environment.clone(),
            version: d.release.version.clone(),
            command,
            env: self.instance_env(d),
            log_path: logs.join(format!("{instance_id}.log")),
            workdir: std::env::current_dir()?,
        };
        let started = self.driver.start(&spec).await?;
        let inst = Instance {
            id: instance_id,
            app: d.app.clone(),
            environment: d.environment.clone(),
            version: d.release.version.clone(),
            deployment_id: d.id,
            handle: started.handle,
            addr: started.addr.to_string(),
            state: InstanceState::Running,
            started_at: self.clock.now(),
        };
        self.store.put_instance(&inst).await?;
        self.log(
            d.id,
            "engine",
            &format!(
                "started instance {} (pid {}, {})",
                inst.id, started.pid, inst.addr
            ),
        )
        .await;
        Ok(inst)
    }

    /// Waits until `inst` passes its health check (DESIGN §2 readiness).
    async fn wait_healthy(&self, d: &Deployment, app: &App, inst: &Instance) -> Result<(), Stop> {
        let addr = inst.addr.parse().map_err(|_| {
            Error::Router(format!(
                "instance {} has a bad address {}",
                inst.id, inst.addr
            ))
        })?;
        self.log(
            d.id,
            "health",
            &format!(
                "waiting for {} to become healthy ({} on {addr})",
                inst.id, app.health.path
            ),
        )
        .await;
        let driver = self.driver.clone();
        let handle = inst.handle.clone();
        let healthy = self
            .prober
            .wait_healthy(addr, &app.health, || {
                let driver = driver.clone();
                let handle = handle.clone();
                async move { driver.is_running(&handle).await }
            })
            .await;
        match healthy {
            Ok(summary) => {
                self.log(d.id, "health", &format!("healthy: {summary}"))
                    .await;
                Ok(())
            }
            Err(why) => Err(Stop::Failed(format!(
                "{} never became healthy: {why}",
                d.release.version
            ))),
        }
    }

    /// A rolling update: batch by batch, stop what the unavailability budget allows, start
    /// what the surge budget allows, each new instance healthy before it takes traffic.
    /// Works from the live counts, so a resumed rollout continues where it was.
    async fn roll(
        &self,
        d: &Deployment,
        app: &App,
        stable: Option<&Deployment>,
        plan: RollingPlan,
    ) -> Result<(), Stop> {
        let version = d.release.version.as_str();
        let old_version = stable
            .map(|s| s.release.version.as_str())
            .filter(|v| *v != version);
        loop {
            let old = match old_version {
                Some(v) => self.live_instances(&d.app, &d.environment, v).await?,
                None => Vec::new(),
            };
            let mut new = self.live_instances(&d.app, &d.environment, version).await?;
            let batch = next_batch(
                plan.replicas,
                plan.max_surge,
                plan.max_unavailable,
                old.len() as u32,
                new.len() as u32,
            )
            .map_err(|e| Stop::Failed(e.to_string()))?;
            let Some(batch) = batch else { break };
            let (stopping, staying) = old.split_at((batch.stop as usize).min(old.len()));
            if !stopping.is_empty() {
                self.route_rolling(d, old_version, staying, &new).await?;
                for inst in stopping {
                    self.stop_instance(inst).await?;
                }
            }
            for _ in 0..batch.start {
                let inst = self.start_instance(d, app).await?;
                self.wait_healthy(d, app, &inst).await?;
                new.push(inst);
                self.route_rolling(d, old_version, staying, &new).await?;
            }
            let left = old_version
                .map(|v| format!(", {} left on {v}", staying.len()))
                .unwrap_or_default();
            self.log(
                d.id,
                "engine",
                &format!(
                    "rolling: {} of {} on {version}{left}",
                    new.len(),
                    plan.replicas
                ),
            )
            .await;
        }
        Ok(())
    }

    /// Traffic in proportion to the instances of each side of a rolling update.
    async fn route_rolling(
        &self,
        d: &Deployment,
        old_version: Option<&str>,
        old: &[Instance],
        new: &[Instance],
    ) -> Result<()> {
        let total = old.len() + new.len();
        let addrs = |set: &[Instance]| {
            set.iter()
                .filter_map(|i| i.addr.parse().ok())
                .collect::<Vec<_>>()
        };
        // In tenths of a percent, so the two weights always add up to exactly 100%.
        let new_permille = (new.len() * 1000 + total / 2)
            .checked_div(total)
            .unwrap_or(0);
        let mut routes = Vec::with_capacity(2);
        if let Some(v) = old_version.filter(|_| !old.is_empty()) {
            routes.push(ReleaseRoute {
                version: v.to_string(),
                weight: (1000 - new_permille) as f64 / 10.0,
                canary: false,
                instances: addrs(old),
            });
        }
        if !new.is_empty() {
            routes.push(ReleaseRoute {
                version: d.release.version.clone(),
                weight: new_permille as f64 / 10.0,
                canary: !routes.is_empty(),
                instances: addrs(new),
            });
        }
        self.traffic.set(&d.app, &d.environment, routes).await
    }

    async fn scale_down(
        &self,
        current: &Deployment,
        old_version: &str,
        delay: Duration,
    ) -> Result<()> {
        // A rollback to the old release may be under way or done: then it is not idle.
        let wanted = self
            .store
            .unfinished_deployments()
            .await?
            .iter()
            .chain(
                self.store
                    .latest_with_status(&current.app, &current.environment, &[Status::Success])
                    .await?
                    .iter(),
            )
            .any(|d| {
                d.app == current.app
                    && d.environment == current.environment
                    && d.release.version == old_version
            });
        if wanted {
            return Ok(());
        }
        for mut inst in self
            .live_instances(&current.app, &current.environment, old_version)
            .await?
        {
            self.driver.stop(&inst.handle, STOP_GRACE).await?;
            inst.state = InstanceState::Stopped;
            self.store.put_instance(&inst).await?;
        }
        let why = format!(
            "scale down: stopped {old_version} after scale_down_delay {}; a rollback starts it again",
            slipway_core::civil::format_duration(delay)
        );
        self.log(current.id, "engine", &why).await;
        Ok(())
    }

    /// Blue-green with a preview listener: the new set answers there first and must pass
    /// the smoke tests before it takes any live traffic.
    async fn verify_on_preview(
        &self,
        d: &Deployment,
        app: &App,
        new: ReleaseRoute,
    ) -> Result<(), Stop> {
        let preview = preview_listener(&d.environment);
        self.traffic.set(&d.app, &preview, vec![new]).await?;
        let addr = self
            .traffic
            .listener(&preview)
            .await
            .ok_or_else(|| Error::Router(format!("{preview} has no listener")))?;
        self.log(
            d.id,
            "engine",
            &format!("preview: {} answers on http://{addr}", d.release.version),
        )
        .await;
        let passed = self
            .prober
            .smoke(addr, &app.smoke, app.health.timeout)
            .await
            .map_err(|why| Stop::Failed(format!("on the preview listener: {why}")))?;
        for line in &passed {
            self.log(d.id, "smoke", &format!("passed on preview: {line}"))
                .await;
        }
        Ok(())
    }

    /// Stops one instance and forgets it.
    async fn stop_instance(&self, inst: &Instance) -> Result<()> {
        self.driver.stop(&inst.handle, STOP_GRACE).await?;
        self.store.delete_instance(&inst.id).await?;
        Ok(())
    }

    /// Stops every instance of one release in one environment and forgets it.
    async fn stop_release(&self, app: &str, env: &str, version: &str) -> Result<()> {
        for inst in self.store.instances(Some(app), Some(env)).await? {
            if inst.version == version {
                self.stop_instance(&inst).await?;
            }
        }
        Ok(())
    }

    /// Keeps the instances of the newest `keep_releases` successful releases (idle, for
    /// an instant rollback) and stops the rest.
    async fn apply_retention(&self, current: &Deployment) -> Result<()> {
        let keep = self.env(current)?.keep_releases.max(1);
        let history = self
            .store
            .list_deployments(&slipway_store::DeploymentFilter {
                app: Some(current.app.clone()),
                environment: Some(current.environment.clone()),
                limit: Some(1000),
                ..Default::default()
            })
            .await?;
        // Newest success first; the current release leads even when a rollback restored an
        // old version.
        let mut order: Vec<String> = vec![current.release.version.clone()];
        for d in history
            .iter()
            .filter(|d| d.entered(Status::Success).is_some())
        {
            if !order.contains(&d.release.version) {
                order.push(d.release.version.clone());
            }
        }
        let instances = self
            .store
            .instances(Some(&current.app), Some(&current.environment))
            .await?;
        let mut with_instances: Vec<String> = order
            .into_iter()
            .filter(|v| instances.iter().any(|i| &i.version == v))
            .collect();
        // Releases that never succeeded here rank last.
        for inst in &instances {
            if !with_instances.contains(&inst.version) {
                with_instances.push(inst.version.clone());
            }
        }
        for version in retention::releases_to_drop(&with_instances, keep) {
            self.log(
                current.id,
                "engine",
                &format!("retention: stopping {version} (keep_releases: {keep})"),
            )
            .await;
            self.stop_release(&current.app, &current.environment, &version)
                .await?;
        }
        Ok(())
    }

    /// Copies the last lines the new instances printed into the deployment log.
    async fn copy_app_output(&self, d: &Deployment) {
        let Ok(instances) = self
            .store
            .instances(Some(&d.app), Some(&d.environment))
            .await
        else {
            return;
        };
        for inst in instances.iter().filter(|i| i.version == d.release.version) {
            let path = self.data_dir.join("logs").join(format!("{}.log", inst.id));
            let Ok(text) = tokio::fs::read_to_string(&path).await else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(APP_LOG_TAIL)..] {
                self.log(d.id, "app", line).await;
            }
        }
    }
}
