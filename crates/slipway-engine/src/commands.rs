//! What users ask of the engine: deploy, decide, cancel, promote, roll back, and look.

use std::collections::HashMap;
use std::sync::Arc;

use slipway_config::{Environment, Role};
use slipway_core::migration::{self, MigrationRun, UndoPlan};
use slipway_core::watch::WatchRecord;
use slipway_core::{
    Approval, Decision, Deployment, DeploymentId, Force, Kind, LogLine, Millis, Release, Status,
    admission, gates, supersede,
};
use slipway_store::{DeploymentFilter, NewDeployment};

use crate::effects::SYSTEM;
use crate::error::{Error, Result};
use crate::{Actor, Engine, Inner, Live, rollout};

/// A request to deploy a release (the body of `POST /api/v1/deployments`).
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    pub app: String,
    pub environment: String,
    pub version: String,
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    pub committed_at: Option<Millis>,
    /// Admins only: go through a closed deployment window. Needs a reason.
    pub force: bool,
    pub reason: Option<String>,
}

/// What holds a waiting deployment (docs/api.md `waiting_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingOn {
    Approval,
    WaitTimer,
    Window,
    /// Another rollout of the app in the environment is under way.
    Concurrency,
}

/// What runs in one environment for one app.
#[derive(Debug, Clone)]
pub struct EnvStatus {
    pub app: String,
    pub environment: String,
    pub current: Option<Deployment>,
    pub kept: Vec<KeptRelease>,
    /// Every instance recorded for this app here, running or kept stopped.
    pub instances: Vec<slipway_core::Instance>,
    pub traffic: Vec<Share>,
    pub in_progress: Option<Deployment>,
    /// What the deployment in progress knows live (canary verdict and pause).
    pub live: Live,
    pub waiting: Vec<Deployment>,
    /// The newest post-deploy watch here, over or not.
    pub watch: Option<WatchRecord>,
}

/// One release's share of an app's traffic, and what the router counted for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub version: String,
    /// Percent of requests.
    pub weight: f64,
    pub requests: u64,
    /// 5xx answers, from the app or from the router on its behalf.
    pub errors: u64,
    pub p99: Option<std::time::Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeptRelease {
    pub version: String,
    pub deployment_id: DeploymentId,
}

pub(crate) fn require(actor: &Actor, role: Role, action: &str) -> Result<()> {
    if actor.role >= role {
        Ok(())
    } else {
        Err(Error::forbidden(
            "forbidden",
            format!(
                "{} is a {}; {action} needs the {} role or higher",
                actor.name,
                actor.role.as_str(),
                role.as_str()
            ),
        ))
    }
}

/// A version names an immutable release: no spaces or control characters, and short.
fn check_version(version: &str) -> Result<()> {
    let valid = !version.is_empty()
        && version.len() <= 128
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
    if valid {
        Ok(())
    } else {
        Err(Error::bad(
            "invalid_version",
            format!(
                "version {version:?} must be 1 to 128 characters of letters, digits, '.', '-', '_' or '+'"
            ),
        ))
    }
}

/// Records a refused deployment as failed (so the refusal shows in the history) and
/// says why.
async fn refuse(
    inner: &Inner,
    created: &Deployment,
    refusals: &[admission::Refusal],
    actor: &Actor,
) -> Error {
    let reasons: Vec<String> = refusals.iter().map(|r| r.to_string()).collect();
    let message = format!("refused: {}", reasons.join("; "));
    if let Err(e) = inner
        .transition(created, Status::Failure, &actor.name, &message)
        .await
    {
        return e;
    }
    Error::Refused {
        code: refusals.first().map(|r| r.code()).unwrap_or("refused"),
        message,
        reasons,
        deployment_id: Some(created.id),
    }
}

/// Who forces a deployment through a closed window, and why: admins only, with a reason.
fn force_of(req: &DeployRequest, actor: &Actor) -> Result<Option<Force>> {
    match (req.force, req.reason.as_deref().map(str::trim)) {
        (false, _) => Ok(None),
        (true, _) if actor.role != Role::Admin => Err(Error::forbidden(
            "forbidden",
            "only an admin may --force a deployment",
        )),
        (true, None | Some("")) => Err(Error::bad(
            "reason_required",
            "--force needs a --reason, which is recorded",
        )),
        (true, Some(reason)) => Ok(Some(Force {
            by: actor.name.clone(),
            reason: reason.to_string(),
        })),
    }
}

/// `; did you mean `x`?` when a known name is close, else the list of known names.
pub(crate) fn suggestion<'a>(
    name: &str,
    known: impl Iterator<Item = &'a String> + Clone,
) -> String {
    match slipway_config::did_you_mean(name, known.clone().map(String::as_str)) {
        Some(hint) => format!("; {hint}"),
        None => format!(
            "; known: {}",
            known.map(String::as_str).collect::<Vec<_>>().join(", ")
        ),
    }
}

impl Engine {
    fn check_app(&self, app: &str) -> Result<()> {
        let apps = &self.inner.config.apps;
        if apps.contains_key(app) {
            Ok(())
        } else {
            Err(Error::bad(
                "unknown_app",
                format!("unknown app `{app}`{}", suggestion(app, apps.keys())),
            ))
        }
    }

    fn check_env(&self, env: &str) -> Result<&Environment> {
        let envs = &self.inner.config.environments;
        envs.get(env).ok_or_else(|| {
            Error::bad(
                "unknown_environment",
                format!(
                    "unknown environment `{env}`{}",
                    suggestion(env, envs.keys())
                ),
            )
        })
    }

    fn env_config(&self, app: &str, env: &str) -> Result<&Environment> {
        self.check_app(app)?;
        self.check_env(env)
    }

    pub async fn deploy(&self, req: DeployRequest, actor: &Actor) -> Result<Deployment> {
        require(actor, Role::Deployer, "deploying")?;
        let env = self.env_config(&req.app, &req.environment)?;
        check_version(&req.version)?;
        let force = force_of(&req, actor)?;
        let release = Release {
            version: req.version.clone(),
            commit: req.commit.clone(),
            git_ref: req.git_ref.clone(),
            committed_at: req.committed_at,
            digest: None,
        };
        let refusals = self.admit(&req, env, &release).await?;
        let _decide = self.inner.decide.lock().await;
        let now = self.inner.clock.now();
        let created = self
            .inner
            .store
            .create_deployment(NewDeployment {
                app: req.app.clone(),
                environment: req.environment.clone(),
                release,
                kind: Kind::Deploy,
                created_by: actor.name.clone(),
                created_at: now,
                reason: format!("created by {}", actor.name),
                rolled_back_from: None,
                force: force.clone(),
            })
            .await?;
        log_created(&self.inner, &created).await;
        if let Some(force) = &force {
            self.inner
                .log(
                    created.id,
                    "engine",
                    &format!("forced by {}: {}", force.by, force.reason),
                )
                .await;
        }
        if let Err(refusals) = refusals {
            return Err(refuse(&self.inner, &created, &refusals, actor).await);
        }
        supersede_pending(&self.inner, &created).await?;
        self.inner.wake.notify_one();
        Ok(self.inner.store.get_deployment(created.id).await?)
    }

    /// The admission rules for a new release (docs/concepts.md), with what the store knows of
    /// the required environments.
    async fn admit(
        &self,
        req: &DeployRequest,
        env: &Environment,
        release: &Release,
    ) -> Result<Result<(), Vec<admission::Refusal>>> {
        let mut succeeded = HashMap::new();
        for required in &env.requires {
            let ok = self
                .inner
                .store
                .release_succeeded_in(&req.app, required, &req.version, None)
                .await?;
            succeeded.insert(required.clone(), ok);
        }
        Ok(admission::admit(&admission::Admission {
            env_name: &req.environment,
            env,
            release,
            kind: Kind::Deploy,
            succeeded_in: &|name: &str| succeeded.get(name).copied().unwrap_or(false),
        }))
    }

    pub async fn decide(
        &self,
        id: DeploymentId,
        actor: &Actor,
        decision: Decision,
        comment: Option<String>,
    ) -> Result<Deployment> {
        require(actor, Role::Approver, "approving or rejecting")?;
        let _decide = self.inner.decide.lock().await;
        let d = self.inner.store.get_deployment(id).await?;
        let env = self.env_config(&d.app, &d.environment)?;
        if let Err(refusal) =
            gates::check_decision(env, &d, &actor.name, decision, actor.role == Role::Admin)
        {
            return Err(match refusal {
                gates::DecisionRefusal::NotReviewer { .. } => {
                    Error::forbidden(refusal.code(), refusal.to_string())
                }
                _ => Error::conflict(refusal.code(), refusal.to_string()),
            });
        }
        let now = self.inner.clock.now();
        let d = self
            .inner
            .store
            .add_approval(
                id,
                Approval {
                    user: actor.name.clone(),
                    decision,
                    comment: comment.clone(),
                    at: now,
                },
            )
            .await?;
        self.inner.outbox_written();
        let said = comment.map(|c| format!(": {c}")).unwrap_or_default();
        match decision {
            Decision::Approve => {
                self.inner
                    .log(id, "engine", &format!("approved by {}{said}", actor.name))
                    .await;
            }
            Decision::Reject => {
                self.inner
                    .transition(
                        &d,
                        Status::Rejected,
                        &actor.name,
                        &format!("rejected by {}{said}", actor.name),
                    )
                    .await?;
            }
        }
        self.inner.wake.notify_one();
        Ok(self.inner.store.get_deployment(id).await?)
    }

    pub async fn cancel(&self, id: DeploymentId, actor: &Actor) -> Result<Deployment> {
        require(actor, Role::Deployer, "cancelling")?;
        let _decide = self.inner.decide.lock().await;
        let d = self.inner.store.get_deployment(id).await?;
        if d.status == Status::InProgress {
            return Err(Error::conflict(
                "in_progress",
                format!(
                    "deployment {id} is in progress and cannot be cancelled; roll back instead"
                ),
            ));
        }
        if !d.status.is_pending() {
            return Err(Error::not_pending(id, d.status));
        }
        self.inner
            .transition(
                &d,
                Status::Cancelled,
                &actor.name,
                &format!("cancelled by {}", actor.name),
            )
            .await?;
        Ok(self.inner.store.get_deployment(id).await?)
    }

    /// Continues a canary paused with `pause: manual`.
    pub async fn promote(&self, id: DeploymentId, actor: &Actor) -> Result<Deployment> {
        require(actor, Role::Deployer, "promoting")?;
        let d = self.inner.store.get_deployment(id).await?;
        let paused = self
            .inner
            .rollouts
            .lock()
            .map(|r| r.get(&id).map(|c| c.promote.clone()))
            .ok()
            .flatten();
        match paused {
            Some(promote) if d.status == Status::InProgress => {
                promote.notify_one();
                self.inner
                    .log(id, "engine", &format!("promoted by {}", actor.name))
                    .await;
                Ok(d)
            }
            _ => Err(Error::conflict(
                "not_paused",
                format!(
                    "deployment {id} is {} and not paused; nothing to promote",
                    d.status
                ),
            )),
        }
    }

    /// Redeploys the previous successful release (or `to_version`) as an urgent deployment
    /// of kind `rollback`: it supersedes every waiting deployment and aborts one in progress.
    pub async fn rollback(
        &self,
        app: &str,
        environment: &str,
        to_version: Option<&str>,
        actor: &Actor,
    ) -> Result<Deployment> {
        self.rollback_with(app, environment, to_version, None, actor)
            .await
    }

    /// [`Engine::rollback`], forced past migrations that cannot be undone when
    /// `force_reason` is given (admins only; the reason is recorded). Without it, such a
    /// migration between the current release and the restored one refuses the rollback.
    pub async fn rollback_with(
        &self,
        app: &str,
        environment: &str,
        to_version: Option<&str>,
        force_reason: Option<&str>,
        actor: &Actor,
    ) -> Result<Deployment> {
        require(actor, Role::Deployer, "rolling back")?;
        self.env_config(app, environment)?;
        let force = rollback_force(force_reason, actor)?;
        let store = &self.inner.store;
        let current = store
            .latest_with_status(app, environment, &[Status::Success])
            .await?
            .ok_or_else(|| {
                Error::conflict(
                    "nothing_to_roll_back",
                    format!(
                        "{app} has no successful deployment in {environment} to roll back from"
                    ),
                )
            })?;
        let runs = self.inner.migrations.migrations(app, environment).await?;
        // A later rollout held by a migration it could not undo left traffic where it
        // was: rolling back then means back to the current release, in full.
        let held = runs
            .iter()
            .any(|r| r.deployment_id > current.id && r.awaits_undo());
        let target = if held && to_version.is_none_or(|v| v == current.release.version) {
            current.clone()
        } else {
            self.rollback_target(app, environment, &current, to_version)
                .await?
        };
        if let UndoPlan::Held(run) = migration::plan_undo(&runs, target.id, force.is_some()) {
            return Err(Error::Refused {
                code: "irreversible_migration",
                message: format!(
                    "{app} cannot roll back to {} in {environment} by itself: {}",
                    target.release.version,
                    migration::held_reason(run)
                ),
                reasons: Vec::new(),
                deployment_id: None,
            });
        }
        let reason = format!(
            "rollback from {} to {} requested by {}",
            current.release.version, target.release.version, actor.name
        );
        let new = Rollback {
            current: &current,
            target: &target,
            by: &actor.name,
            reason,
            force,
        };
        create_rollback(&self.inner, new, false).await
    }

    /// The successful deployment a rollback restores: the named version (which must have
    /// succeeded here and not be what runs now), else the previous release.
    async fn rollback_target(
        &self,
        app: &str,
        environment: &str,
        current: &Deployment,
        to_version: Option<&str>,
    ) -> Result<Deployment> {
        let store = &self.inner.store;
        let Some(version) = to_version else {
            return store
                .latest_with_status(app, environment, &[Status::Inactive])
                .await?
                .ok_or_else(|| {
                    Error::conflict(
                        "no_previous_release",
                        format!("{app} has no previous successful release in {environment}"),
                    )
                });
        };
        check_version(version)?;
        if version == current.release.version {
            return Err(Error::conflict(
                "already_current",
                format!("{app} already runs {version} in {environment}"),
            ));
        }
        let past = store
            .list_deployments(&DeploymentFilter {
                app: Some(app.to_string()),
                environment: Some(environment.to_string()),
                ..Default::default()
            })
            .await?;
        past.into_iter()
            .find(|d| d.release.version == version && d.entered(Status::Success).is_some())
            .ok_or_else(|| Error::Refused {
                code: "never_succeeded",
                message: format!(
                    "{app} {version} never succeeded in {environment}; roll back only to a release that ran there"
                ),
                reasons: Vec::new(),
                deployment_id: None,
            })
    }

    pub async fn deployment(&self, id: DeploymentId) -> Result<Deployment> {
        Ok(self.inner.store.get_deployment(id).await?)
    }

    /// The schema migration deployment `id` ran (`up`), and what became of its `down`.
    pub async fn migration(&self, id: DeploymentId) -> Result<Option<MigrationRun>> {
        Ok(self.inner.migrations.migration_of(id).await?)
    }

    /// What holds `d` now, while it is `waiting`: the gate [`gates::evaluate`] names, or
    /// the rollout of the same app and environment that is under way.
    pub async fn waiting_on(&self, d: &Deployment) -> Result<Option<WaitingOn>> {
        let Some(env) = self.inner.config.environments.get(&d.environment) else {
            return Ok(None);
        };
        if d.status != Status::Waiting {
            return Ok(None);
        }
        Ok(match gates::evaluate(env, d, self.inner.clock.now()) {
            gates::GateOutcome::Wait { gate, .. } => Some(match gate {
                gates::Gate::Approval => WaitingOn::Approval,
                gates::Gate::WaitTimer => WaitingOn::WaitTimer,
                gates::Gate::Window => WaitingOn::Window,
            }),
            gates::GateOutcome::Open => {
                let running = DeploymentFilter {
                    app: Some(d.app.clone()),
                    environment: Some(d.environment.clone()),
                    status: Some(Status::InProgress),
                    kind: None,
                    limit: Some(1),
                };
                let busy = !self
                    .inner
                    .store
                    .list_deployments(&running)
                    .await?
                    .is_empty();
                busy.then_some(WaitingOn::Concurrency)
            }
            gates::GateOutcome::Rejected { .. } => None,
        })
    }

    pub async fn deployments(&self, filter: &DeploymentFilter) -> Result<Vec<Deployment>> {
        if let Some(app) = &filter.app {
            self.check_app(app)?;
        }
        if let Some(env) = &filter.environment {
            self.check_env(env)?;
        }
        Ok(self.inner.store.list_deployments(filter).await?)
    }

    pub async fn logs(&self, id: DeploymentId, after: i64, limit: u32) -> Result<Vec<LogLine>> {
        self.inner.store.get_deployment(id).await?;
        Ok(self.inner.store.logs(id, after, limit).await?)
    }

    /// The live split of an app in an environment, with each release's counters from the
    /// router (cumulative since the router started).
    pub async fn traffic(&self, app: &str, env: &str) -> Vec<Share> {
        let stats = self
            .inner
            .traffic
            .router()
            .stats(env)
            .await
            .unwrap_or_default();
        self.inner
            .traffic
            .split(app, env)
            .await
            .into_iter()
            .map(|r| {
                let s = stats
                    .iter()
                    .find(|s| s.service == app && s.release == r.version);
                Share {
                    requests: s.map_or(0, |s| s.requests),
                    errors: s.map_or(0, |s| s.errors + s.router_errors),
                    p99: s.and_then(|s| s.latency.quantile(0.99)),
                    version: r.version,
                    weight: r.weight,
                }
            })
            .collect()
    }

    pub async fn env_status(&self, app: &str, env: &str) -> Result<EnvStatus> {
        self.env_config(app, env)?;
        let unfinished = self.inner.store.unfinished_deployments().await?;
        self.env_status_among(app, env, &unfinished).await
    }

    /// The status of one app in one environment, given every unfinished deployment.
    async fn env_status_among(
        &self,
        app: &str,
        env: &str,
        unfinished: &[Deployment],
    ) -> Result<EnvStatus> {
        let store = &self.inner.store;
        let current = store
            .latest_with_status(app, env, &[Status::Success])
            .await?;
        let here = || {
            unfinished
                .iter()
                .filter(|d| d.app == app && d.environment == env)
        };
        let in_progress = here().find(|d| d.status == Status::InProgress).cloned();
        let instances = store.instances(Some(app), Some(env)).await?;
        let mut kept: Vec<KeptRelease> = Vec::new();
        for inst in &instances {
            let is_current = current
                .as_ref()
                .is_some_and(|c| c.release.version == inst.version);
            if !is_current && !kept.iter().any(|k| k.version == inst.version) {
                kept.push(KeptRelease {
                    version: inst.version.clone(),
                    deployment_id: inst.deployment_id,
                });
            }
        }
        kept.sort_by_key(|k| std::cmp::Reverse(k.deployment_id));
        Ok(EnvStatus {
            app: app.to_string(),
            environment: env.to_string(),
            current,
            kept,
            instances,
            traffic: self.traffic(app, env).await,
            live: in_progress
                .as_ref()
                .map(|d| self.live(d.id))
                .unwrap_or_default(),
            in_progress,
            waiting: here().filter(|d| d.status.is_pending()).cloned().collect(),
            watch: self.inner.watches.latest_watch(app, env).await?,
        })
    }

    /// Status of every (app, environment) pair the filters allow, in config order.
    pub async fn status(&self, app: Option<&str>, env: Option<&str>) -> Result<Vec<EnvStatus>> {
        let config = &self.inner.config;
        if let Some(app) = app {
            self.check_app(app)?;
        }
        if let Some(env) = env {
            self.check_env(env)?;
        }
        let unfinished = self.inner.store.unfinished_deployments().await?;
        let mut out = Vec::new();
        for a in config
            .apps
            .keys()
            .filter(|a| app.is_none_or(|x| x == a.as_str()))
        {
            for e in config
                .environments
                .keys()
                .filter(|e| env.is_none_or(|x| x == e.as_str()))
            {
                out.push(self.env_status_among(a, e, &unfinished).await?);
            }
        }
        Ok(out)
    }
}

/// The log's first line mirrors the first status, in the `status: reason` form of every
/// transition's line; the store wrote its outbox entry with the deployment.
async fn log_created(inner: &Inner, d: &Deployment) {
    inner.outbox_written();
    if let Some(first) = d.statuses.first() {
        let line = format!("{}: {}", first.status, first.reason);
        inner.log(d.id, "engine", &line).await;
    }
}

/// Cancels the pending deployments of the same app and environment that `newer`
/// supersedes (docs/concepts.md: a newer waiting deployment replaces an older one).
async fn supersede_pending(inner: &Inner, newer: &Deployment) -> Result<()> {
    let pending: Vec<Deployment> = inner
        .store
        .unfinished_deployments()
        .await?
        .into_iter()
        .filter(|d| d.app == newer.app && d.environment == newer.environment && d.id != newer.id)
        .collect();
    let refs: Vec<&Deployment> = pending.iter().collect();
    for id in supersede::superseded_by(&refs, newer) {
        if let Some(old) = pending.iter().find(|d| d.id == id) {
            let what = match newer.kind {
                Kind::Rollback => "rollback deployment",
                Kind::Deploy => "deployment",
            };
            inner
                .transition(
                    old,
                    Status::Cancelled,
                    &newer.created_by,
                    &format!("superseded by {what} {}", newer.id),
                )
                .await?;
        }
    }
    Ok(())
}

/// Who forces a rollback past a migration that cannot be undone, and why: admins only,
/// with a reason.
fn rollback_force(reason: Option<&str>, actor: &Actor) -> Result<Option<Force>> {
    match reason.map(str::trim) {
        None => Ok(None),
        Some(_) if actor.role != Role::Admin => Err(Error::forbidden(
            "forbidden",
            "only an admin may --force a rollback",
        )),
        Some("") => Err(Error::bad(
            "reason_required",
            "--force needs a --reason, which is recorded",
        )),
        Some(reason) => Ok(Some(Force {
            by: actor.name.clone(),
            reason: reason.to_string(),
        })),
    }
}

/// A rollback deployment to create: from the current release back to `target`'s.
struct Rollback<'a> {
    current: &'a Deployment,
    target: &'a Deployment,
    by: &'a str,
    reason: String,
    force: Option<Force>,
}

/// Creates an urgent rollback deployment: it supersedes what waits and aborts what is in
/// progress. `start_now`: it starts at once, through no gate (an automatic rollback).
async fn create_rollback(
    inner: &Arc<Inner>,
    new: Rollback<'_>,
    start_now: bool,
) -> Result<Deployment> {
    let _decide = inner.decide.lock().await;
    let (app, environment) = (&new.current.app, &new.current.environment);
    let created = inner
        .store
        .create_deployment(NewDeployment {
            app: app.clone(),
            environment: environment.clone(),
            release: new.target.release.clone(),
            kind: Kind::Rollback,
            created_by: new.by.to_string(),
            created_at: inner.clock.now(),
            reason: new.reason,
            rolled_back_from: Some(new.current.release.version.clone()),
            force: new.force.clone(),
        })
        .await?;
    log_created(inner, &created).await;
    if let Some(force) = &new.force {
        let line = format!("forced by {}: {}", force.by, force.reason);
        inner.log(created.id, "engine", &line).await;
    }
    supersede_pending(inner, &created).await?;
    abort_in_progress(
        inner,
        app,
        environment,
        &format!("aborted by rollback deployment {}", created.id),
    );
    if start_now {
        let started = inner
            .transition(
                &created,
                Status::InProgress,
                SYSTEM,
                "automatic rollback: started at once, through no gate",
            )
            .await?;
        rollout::ensure_running(inner, &started);
    }
    inner.wake.notify_one();
    Ok(inner.store.get_deployment(created.id).await?)
}

/// The post-deploy watch's rollback of `current` to `target` (docs/concepts.md), started
/// at once.
pub(crate) async fn urgent_rollback(
    inner: &Arc<Inner>,
    current: &Deployment,
    target: &Deployment,
    reason: &str,
) -> Result<Deployment> {
    let new = Rollback {
        current,
        target,
        by: SYSTEM,
        reason: reason.to_string(),
        force: None,
    };
    create_rollback(inner, new, true).await
}

/// Aborts the rollout in progress of an app in an environment (an urgent rollback).
fn abort_in_progress(inner: &Inner, app: &str, env: &str, reason: &str) {
    let Ok(rollouts) = inner.rollouts.lock() else {
        return;
    };
    for control in rollouts
        .values()
        .filter(|c| c.app == app && c.environment == env)
    {
        control.abort.send_replace(Some(reason.to_string()));
    }
}
