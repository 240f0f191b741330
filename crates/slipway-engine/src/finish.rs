//! The end of a rollout: on success the previous release is marked replaced, its watch
//! begins, kept releases are trimmed and the strategy's follow-up runs; otherwise the
//! new release's migration is undone and all traffic returns to the previous release at
//! once and the new one is stopped (unless a migration that cannot be undone holds it). The status is persisted
//! last, so a crash in between repeats the finish (every step of it is idempotent).

use std::sync::Arc;

use slipway_core::{Deployment, DeploymentId, Kind, Phase, Status, retention};

use crate::effects::SYSTEM;
use crate::error::Result;
use crate::migrate::{self, Revert};
use crate::{Inner, instances, strategy, watching};

/// How a rollout ended.
pub(crate) enum Outcome {
    Success(String),
    /// A check failed: the deployment ends `failure`.
    Failed(String),
    /// An urgent rollback took over: the deployment ends `rolled_back`.
    Aborted(String),
    /// slipway itself could not go on (store, driver): the deployment ends `error`.
    Errored(String),
}

pub(crate) async fn finish(inner: &Arc<Inner>, id: DeploymentId, outcome: Outcome) -> Result<()> {
    let d = inner.store.get_deployment(id).await?;
    if d.status != Status::InProgress {
        return Ok(());
    }
    let previous = inner
        .store
        .latest_with_status(&d.app, &d.environment, &[Status::Success])
        .await?
        .filter(|p| p.id != id);
    match outcome {
        Outcome::Success(summary) => succeed(inner, &d, previous, &summary).await,
        Outcome::Failed(reason) => revert(inner, &d, previous, Status::Failure, &reason).await,
        Outcome::Aborted(reason) => revert(inner, &d, previous, Status::RolledBack, &reason).await,
        Outcome::Errored(reason) => revert(inner, &d, previous, Status::Error, &reason).await,
    }
}

async fn succeed(
    inner: &Arc<Inner>,
    d: &Deployment,
    replaced: Option<Deployment>,
    summary: &str,
) -> Result<()> {
    instances::copy_output(inner, d).await;
    let done = inner
        .transition(d, Status::Success, SYSTEM, summary)
        .await?;
    if let Some(prev) = &replaced {
        let (status, why) = match d.kind {
            // The rollback's own reason says who asked, or which figures failed.
            Kind::Rollback if prev.release.version != d.release.version => (
                Status::RolledBack,
                format!(
                    "rolled back by deployment {} to {}: {}",
                    d.id,
                    d.release.version,
                    d.statuses.first().map_or("", |s| s.reason.as_str())
                ),
            ),
            _ => (
                Status::Inactive,
                format!("superseded by deployment {} ({})", d.id, d.release.version),
            ),
        };
        inner.transition(prev, status, SYSTEM, &why).await?;
    }
    inner.store.set_phase(d.id, Phase::Done).await?;
    watching::begin(inner, &done).await?;
    apply_retention(inner, &done).await?;
    if let Some(old) = &replaced {
        strategy::of(&inner.env(d)?.strategy).replaced(inner, &done, old);
    }
    if let Some(hook) = inner.app(d).ok().and_then(|a| a.hooks.post_deploy.clone())
        && let Err(why) = inner.hook(d, "post_deploy", &hook).await
    {
        let line = format!("warning: {why} (the deployment stays successful)");
        inner.log(d.id, "hook", &line).await;
    }
    Ok(())
}

async fn revert(
    inner: &Arc<Inner>,
    d: &Deployment,
    previous: Option<Deployment>,
    status: Status,
    reason: &str,
) -> Result<()> {
    inner.store.set_phase(d.id, Phase::Reverting).await?;
    inner
        .log(d.id, "engine", &format!("reverting: {reason}"))
        .await;
    let aborted = status == Status::RolledBack;
    if let Revert::Hold(why) = migrate::before_revert(inner, d, previous.as_ref(), aborted).await? {
        // Traffic and instances stay as they are: undoing the schema needs a person.
        instances::copy_output(inner, d).await;
        let held = format!("{reason}; {why}");
        inner.transition(d, status, SYSTEM, &held).await?;
        inner.store.set_phase(d.id, Phase::Done).await?;
        return Ok(());
    }
    match &previous {
        Some(prev) => restore_previous(inner, d, prev).await?,
        None => {
            inner
                .route_everywhere(&d.app, &d.environment, Vec::new())
                .await?
        }
    }
    instances::copy_output(inner, d).await;
    let stable_version = previous.as_ref().map(|p| p.release.version.as_str());
    if stable_version != Some(d.release.version.as_str()) {
        instances::stop_release(inner, &d.app, &d.environment, &d.release.version).await?;
    }
    inner.transition(d, status, SYSTEM, reason).await?;
    inner.store.set_phase(d.id, Phase::Done).await?;
    Ok(())
}

/// Recreate or a rolling update stopped some of the previous release, or it died: bring
/// it back to full strength and give it all traffic.
async fn restore_previous(inner: &Inner, d: &Deployment, prev: &Deployment) -> Result<()> {
    let replicas = strategy::of(&inner.env(prev)?.strategy).replicas();
    instances::ensure(inner, prev, inner.app(prev)?, replicas).await?;
    let route = inner.full_route(prev).await?;
    inner
        .route_everywhere(&d.app, &d.environment, vec![route])
        .await?;
    // Said the same whether or not the new release ever took traffic.
    let back = format!(
        "traffic: 100% on {} (the previous release)",
        prev.release.version
    );
    inner.log(d.id, "engine", &back).await;
    Ok(())
}

/// Keeps the instances of the newest `keep_releases` successful releases (idle, for an
/// instant rollback) and stops the rest.
async fn apply_retention(inner: &Inner, current: &Deployment) -> Result<()> {
    let keep = inner.env(current)?.keep_releases.max(1);
    let (app, env) = (&current.app, &current.environment);
    let history = inner
        .store
        .list_deployments(&slipway_store::DeploymentFilter {
            app: Some(app.clone()),
            environment: Some(env.clone()),
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
    let instances = inner.store.instances(Some(app), Some(env)).await?;
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
        let line = format!("retention: stopping {version} (keep_releases: {keep})");
        inner.log(current.id, "engine", &line).await;
        instances::stop_release(inner, app, env, &version).await?;
    }
    Ok(())
}
