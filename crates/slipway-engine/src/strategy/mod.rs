//! The strategies (docs/concepts.md), each in its own module behind one small step interface:
//! [`Step::start`] brings the new release up (phase `starting`), [`Step::shift`] moves
//! traffic to it (phase `shifting`). The rollout persists the phase around each call, so
//! a step must be idempotent: a restarted server calls it again. A new strategy is one
//! new module and one arm in [`of`].

mod blue_green;
mod canary;
mod recreate;
mod rolling;

use std::sync::Arc;

use async_trait::async_trait;
use slipway_config::{App, Environment, Strategy};
use slipway_core::Deployment;
use tokio::sync::Notify;

use crate::error::{Result, Stop};
use crate::{Inner, instances};

/// What a step works on: one deployment's rollout.
pub(crate) struct Rollout<'a> {
    pub inner: &'a Arc<Inner>,
    pub d: &'a Deployment,
    pub app: &'a App,
    pub env: &'a Environment,
    /// The release serving now (the last success here), if any.
    pub stable: Option<&'a Deployment>,
    /// Wakes a canary paused with `pause: manual`.
    pub promote: &'a Notify,
}

#[async_trait]
pub(crate) trait Step: Send + Sync {
    /// Phase `starting`: the new release runs, healthy. By default one instance.
    async fn start(&self, r: &Rollout<'_>) -> Result<(), Stop> {
        start_one(r).await
    }

    /// Phase `shifting`: traffic moves to the new release and ends at 100%. By default
    /// all of it at once.
    async fn shift(&self, r: &Rollout<'_>) -> Result<(), Stop> {
        switch_at_once(r).await
    }

    /// Instances a release has at full strength; a revert restores as many of the
    /// previous release.
    fn replicas(&self) -> usize {
        1
    }

    /// `current` took over from `old` (a success): what follows for the old set.
    fn replaced(&self, _inner: &Arc<Inner>, _current: &Deployment, _old: &Deployment) {}

    /// At start-up, for the release that serves: resume what `replaced` left pending.
    async fn resume(&self, _inner: &Arc<Inner>, _current: Deployment) -> Result<()> {
        Ok(())
    }
}

/// The step interface of an environment's strategy.
pub(crate) fn of(strategy: &Strategy) -> Box<dyn Step + '_> {
    match strategy {
        Strategy::Recreate => Box::new(recreate::Recreate),
        Strategy::Rolling {
            replicas,
            max_surge,
            max_unavailable,
        } => Box::new(rolling::Rolling {
            replicas: *replicas,
            max_surge: *max_surge,
            max_unavailable: *max_unavailable,
        }),
        Strategy::BlueGreen {
            scale_down_delay, ..
        } => Box::new(blue_green::BlueGreen {
            scale_down_delay: *scale_down_delay,
        }),
        Strategy::Canary { steps, analysis } => Box::new(canary::Canary { steps, analysis }),
    }
}

/// At start-up: resume what the strategy of `current`'s environment left pending.
pub(crate) async fn resume(inner: &Arc<Inner>, current: Deployment) -> Result<()> {
    let env = inner.env(&current)?;
    of(&env.strategy).resume(inner, current).await
}

/// One healthy instance of the new release (a kept one when there is one).
pub(crate) async fn start_one(r: &Rollout<'_>) -> Result<(), Stop> {
    let instance = instances::ensure(r.inner, r.d, r.app, 1)
        .await?
        .swap_remove(0);
    instances::wait_healthy(r.inner, r.d, r.app, &instance).await
}

/// All traffic to the new release in one swap.
pub(crate) async fn switch_at_once(r: &Rollout<'_>) -> Result<(), Stop> {
    let new = r.inner.full_route(r.d).await?;
    r.inner
        .traffic
        .set(&r.d.app, &r.d.environment, vec![new])
        .await?;
    let line = format!("traffic: 100% to {}", r.d.release.version);
    r.inner.log(r.d.id, "engine", &line).await;
    Ok(())
}
