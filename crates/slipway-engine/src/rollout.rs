//! One deployment's rollout, as a task the engine supervises: start the new instances,
//! wait until they are healthy, move traffic by the strategy, run the smoke tests, and
//! finish (`finish.rs`). Every step is idempotent and its phase is persisted first, so a
//! restarted server resumes where the last one was.

use std::sync::Arc;

use slipway_core::{Deployment, DeploymentId, Kind, Phase, Status};
use tokio::sync::{Notify, watch};

use crate::error::{Error, Result, Stop};
use crate::finish::{Outcome, finish};
use crate::strategy::{self, Rollout};
use crate::{Inner, Live, RolloutControl, instances, migrate, watching};

/// Starts the rollout task of an in-progress deployment unless it already runs.
pub(crate) fn ensure_running(inner: &Arc<Inner>, d: &Deployment) {
    let Ok(mut rollouts) = inner.rollouts.lock() else {
        return;
    };
    if rollouts.contains_key(&d.id) {
        return;
    }
    let (abort, abort_rx) = watch::channel(None);
    let (fail, fail_rx) = watch::channel(None);
    let promote = Arc::new(Notify::new());
    rollouts.insert(
        d.id,
        RolloutControl {
            app: d.app.clone(),
            environment: d.environment.clone(),
            abort,
            fail,
            promote: promote.clone(),
            live: Live::default(),
        },
    );
    let signals = Signals {
        abort: abort_rx,
        fail: fail_rx,
    };
    tokio::spawn(supervise(inner.clone(), d.id, signals, promote));
}

/// What ends a rollout from outside its task.
struct Signals {
    /// An urgent rollback: the deployment ends `rolled_back`.
    abort: watch::Receiver<Option<String>>,
    /// An instance of its release died (`heal.rs`): it ends `failure`.
    fail: watch::Receiver<Option<String>>,
}

async fn supervise(
    inner: Arc<Inner>,
    id: DeploymentId,
    mut signals: Signals,
    promote: Arc<Notify>,
) {
    let mut shutdown = inner.shutdown.subscribe();
    if let Err(e) = end_watch(&inner, id).await {
        tracing::warn!(deployment = id, error = %e, "could not end the watch of the release before");
    }
    let outcome = tokio::select! {
        outcome = steps(&inner, id, &promote) => Some(outcome),
        reason = aborted(&mut signals.abort) => Some(Outcome::Aborted(reason)),
        reason = aborted(&mut signals.fail) => Some(Outcome::Failed(reason)),
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

/// A rollout of the app begins: the post-deploy watch of the release before ends.
async fn end_watch(inner: &Inner, id: DeploymentId) -> Result<()> {
    let d = inner.store.get_deployment(id).await?;
    let reason = format!("deployment {id} ({}) started", d.release.version);
    watching::end(inner, &d.app, &d.environment, &reason).await
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

/// The phases in order, each skipped when the persisted phase is past it.
async fn run_steps(inner: &Arc<Inner>, id: DeploymentId, promote: &Notify) -> Result<String, Stop> {
    let mut d = inner.store.get_deployment(id).await?;
    if matches!(d.phase, Phase::Pending | Phase::Starting) && d.release.digest.is_none() {
        d.release.digest = instances::pin(inner, &d).await?;
    }
    let stable = inner
        .store
        .latest_with_status(&d.app, &d.environment, &[Status::Success])
        .await?;
    let r = Rollout {
        inner,
        d: &d,
        app: inner.app(&d)?,
        env: inner.env(&d)?,
        stable: stable.as_ref(),
        promote,
    };
    let step = strategy::of(&r.env.strategy);
    if d.phase == Phase::Reverting {
        return Err(Stop::Failed(
            "the server restarted while this rollout was being reverted".into(),
        ));
    }
    if matches!(d.phase, Phase::Pending | Phase::Starting) {
        inner.store.set_phase(id, Phase::Starting).await?;
        migrate::check(&r).await?;
        pre_hook(&r).await?;
        step.start(&r).await?;
        inner.store.set_phase(id, Phase::Shifting).await?;
    }
    if matches!(d.phase, Phase::Pending | Phase::Starting | Phase::Shifting) {
        migrate::before_traffic(&r).await?;
        has_instances(&r).await?;
        step.shift(&r).await?;
        inner.store.set_phase(id, Phase::Verifying).await?;
    }
    verify(&r).await
}

/// `pre_deploy` (or `pre_rollback` for a rollback); its failure fails the deployment.
async fn pre_hook(r: &Rollout<'_>) -> Result<(), Stop> {
    let hooks = &r.app.hooks;
    let hook = match r.d.kind {
        Kind::Deploy => hooks.pre_deploy.as_ref().map(|h| ("pre_deploy", h)),
        Kind::Rollback => hooks.pre_rollback.as_ref().map(|h| ("pre_rollback", h)),
    };
    match hook {
        Some((name, hook)) => r.inner.hook(r.d, name, hook).await.map_err(Stop::Failed),
        None => Ok(()),
    }
}

/// Traffic can only move to a release that has an instance running.
async fn has_instances(r: &Rollout<'_>) -> Result<(), Stop> {
    let d = r.d;
    let version = &d.release.version;
    if r.inner
        .running_addrs(&d.app, &d.environment, version)
        .await?
        .is_empty()
    {
        return Err(Stop::Failed(format!(
            "{version} has no running instance to send traffic to"
        )));
    }
    Ok(())
}

/// The smoke tests through the environment's listener, with all traffic on the release.
async fn verify(r: &Rollout<'_>) -> Result<String, Stop> {
    let d = r.d;
    let listener = r
        .inner
        .traffic
        .listener(&d.environment)
        .await
        .ok_or_else(|| Error::Router(format!("environment {} has no listener", d.environment)))?;
    let passed = r
        .inner
        .prober
        .smoke(listener, &d.app, &r.app.smoke, r.app.health.timeout)
        .await
        .map_err(Stop::Failed)?;
    for line in &passed {
        r.inner.log(d.id, "smoke", &format!("passed: {line}")).await;
    }
    Ok(format!(
        "{} is healthy and serves 100% of traffic; {} smoke test(s) passed",
        d.release.version,
        passed.len()
    ))
}
