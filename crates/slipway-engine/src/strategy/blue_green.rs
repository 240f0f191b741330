//! `blue-green`: start the new set beside the old one, check it (on the `preview`
//! listener when there is one), switch all traffic at once, and keep the old set for
//! `scale_down_delay` so a rollback is instant.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slipway_core::{Deployment, InstanceState, Status};

use super::{Rollout, Step, switch_at_once};
use crate::effects::preview_listener;
use crate::error::{Error, Result, Stop};
use crate::{Inner, instances};

pub(crate) struct BlueGreen {
    pub scale_down_delay: Duration,
}

#[async_trait]
impl Step for BlueGreen {
    async fn shift(&self, r: &Rollout<'_>) -> Result<(), Stop> {
        if r.inner.has_preview(&r.d.environment) {
            verify_on_preview(r).await?;
        }
        switch_at_once(r).await
    }

    fn replaced(&self, inner: &Arc<Inner>, current: &Deployment, old: &Deployment) {
        if old.release.version != current.release.version {
            tokio::spawn(scale_down_later(
                inner.clone(),
                current.clone(),
                old.release.version.clone(),
                self.scale_down_delay,
                self.scale_down_delay,
            ));
        }
    }

    /// An old set still running beside `current` waits out what is left of its
    /// `scale_down_delay`, counted from when `current` took over.
    async fn resume(&self, inner: &Arc<Inner>, current: Deployment) -> Result<()> {
        let mut old_versions: Vec<String> = inner
            .store
            .instances(Some(&current.app), Some(&current.environment))
            .await?
            .into_iter()
            .filter(|i| i.state == InstanceState::Running && i.version != current.release.version)
            .map(|i| i.version)
            .collect();
        old_versions.sort();
        old_versions.dedup();
        let since = inner.clock.now().saturating_sub(current.updated_at);
        let wait = self
            .scale_down_delay
            .saturating_sub(Duration::from_millis(u64::try_from(since).unwrap_or(0)));
        for old in old_versions {
            tracing::info!(app = %current.app, environment = %current.environment, version = %old, ?wait, "resuming scale down");
            tokio::spawn(scale_down_later(
                inner.clone(),
                current.clone(),
                old,
                self.scale_down_delay,
                wait,
            ));
        }
        Ok(())
    }
}

/// The new set answers on the preview listener first and must pass the smoke tests
/// there before it takes any live traffic.
async fn verify_on_preview(r: &Rollout<'_>) -> Result<(), Stop> {
    let (inner, d) = (r.inner, r.d);
    let preview = preview_listener(&d.environment);
    let new = inner.full_route(d).await?;
    inner.traffic.set(&d.app, &preview, vec![new]).await?;
    let addr = inner
        .traffic
        .listener(&preview)
        .await
        .ok_or_else(|| Error::Router(format!("{preview} has no listener")))?;
    let line = format!("preview: {} answers on http://{addr}", d.release.version);
    inner.log(d.id, "engine", &line).await;
    let passed = inner
        .prober
        .smoke(addr, &d.app, &r.app.smoke, r.app.health.timeout)
        .await
        .map_err(|why| Stop::Failed(format!("on the preview listener: {why}")))?;
    for line in &passed {
        inner
            .log(d.id, "smoke", &format!("passed on preview: {line}"))
            .await;
    }
    Ok(())
}

/// Stops the old set after `wait` (what is left of `delay`). Its records stay (as
/// stopped) so a later rollback restarts it.
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
    if let Err(e) = scale_down(&inner, &current, &old_version, delay).await {
        tracing::warn!(deployment = current.id, error = %e, "scale down of {old_version} failed");
    }
}

async fn scale_down(
    inner: &Inner,
    current: &Deployment,
    old_version: &str,
    delay: Duration,
) -> Result<()> {
    // A rollback to the old release may be under way or done: then it is not idle.
    let (app, env) = (&current.app, &current.environment);
    let serving = inner
        .store
        .latest_with_status(app, env, &[Status::Success])
        .await?;
    let wanted = inner
        .store
        .unfinished_deployments()
        .await?
        .iter()
        .chain(serving.iter())
        .any(|d| d.app == *app && d.environment == *env && d.release.version == old_version);
    if wanted {
        return Ok(());
    }
    for inst in instances::live(inner, app, env, old_version).await? {
        instances::idle(inner, inst).await?;
    }
    let why = format!(
        "scale down: stopped {old_version} after scale_down_delay {}; a rollback starts it again",
        slipway_core::civil::format_duration(delay)
    );
    inner.log(current.id, "engine", &why).await;
    Ok(())
}
