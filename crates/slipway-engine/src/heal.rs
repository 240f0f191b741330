//! Keeps every serving release at its count of instances: every `server.instance_check`
//! it asks the drivers whether each instance still runs. One that died or was removed
//! behind slipway's back (`docker kill`, `docker rm -f`, a crash), or whose image's own
//! `HEALTHCHECK` turned unhealthy, is recorded in the log of the deployment that serves,
//! removed, and replaced by a new instance, which takes traffic once healthy. While a rollout is in progress the rollout owns the instances:
//! one of its new release that dies fails it (its revert restores the previous release
//! at full strength), and nothing is replaced meanwhile.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use slipway_core::{Deployment, Instance, InstanceState, Phase, Status};
use slipway_drivers::{Driver, ImageHealth, Liveness};
use tokio::time::Instant;

use crate::error::{Result, Stop};
use crate::{Inner, instances, strategy};

/// The longest wait between two attempts to replace an instance whose replacements keep
/// failing (a release that crashes at start).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Waits `base` after the first failed replacement, doubling with each one after it, up to
/// [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(base: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(MAX_RETRY_AFTER.max(base))
}

/// Failed replacements of one app in one environment, and when to try again.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    next: Instant,
}

pub(crate) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut backoff: HashMap<(String, String), Backoff> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(inner.config.server.instance_check) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        // A server that stops starts no replacement after it said so.
        tokio::select! {
            () = check_all(&inner, &mut backoff) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

async fn check_all(inner: &Arc<Inner>, backoff: &mut HashMap<(String, String), Backoff>) {
    for app in inner.config.apps.keys() {
        for env in inner.config.environments.keys() {
            let key = (app.clone(), env.clone());
            if backoff.get(&key).is_some_and(|b| Instant::now() < b.next) {
                continue;
            }
            match check(inner, app, env).await {
                Ok(true) => {
                    backoff.remove(&key);
                }
                Ok(false) => {
                    let failures = backoff.get(&key).map_or(1, |b| b.failures + 1);
                    let wait = retry_after(inner.config.server.instance_check, failures);
                    let next = Instant::now() + wait;
                    backoff.insert(key, Backoff { failures, next });
                }
                Err(e) => {
                    tracing::warn!(%app, environment = %env, error = %e, "instance check failed; retrying on the next one");
                }
            }
        }
    }
}

/// Marks (app, env) as being healed until dropped: no rollout starts there meanwhile.
struct Claim<'a> {
    inner: &'a Inner,
    key: (String, String),
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Ok(mut healing) = self.inner.healing.lock() {
            healing.remove(&self.key);
        }
    }
}

/// One app in one environment; false when a replacement failed (the caller backs off).
async fn check(inner: &Arc<Inner>, app: &str, env: &str) -> Result<bool> {
    if let Some(d) = rollout_of(inner, app, env).await? {
        watch_rollout(inner, &d).await?;
        return Ok(true);
    }
    // Most checks find every instance running. Only a check that must replace one claims
    // (app, env), so a check holds up neither a rollout nor `slipway gc`.
    let Some(survey) = survey(inner, app, env).await? else {
        return Ok(true);
    };
    if survey.in_full() {
        return Ok(true);
    }
    let in_progress = {
        // Under the lock the reconcile loop starts rollouts with: either a rollout runs,
        // or none starts until the claim ends.
        let _decide = inner.decide.lock().await;
        let in_progress = rollout_of(inner, app, env).await?;
        if in_progress.is_none()
            && let Ok(mut healing) = inner.healing.lock()
        {
            healing.insert((app.to_owned(), env.to_owned()));
        }
        in_progress
    };
    match in_progress {
        Some(d) => {
            watch_rollout(inner, &d).await?;
            Ok(true)
        }
        None => {
            let _claim = Claim {
                inner,
                key: (app.to_owned(), env.to_owned()),
            };
            heal(inner, survey).await
        }
    }
}

/// The rollout in progress of `app` in `env`, if one is.
async fn rollout_of(inner: &Inner, app: &str, env: &str) -> Result<Option<Deployment>> {
    Ok(inner
        .store
        .unfinished_deployments()
        .await?
        .into_iter()
        .find(|d| d.app == app && d.environment == env && d.status == Status::InProgress))
}

/// The serving release of an app in an environment, and what one look at each of its
/// instances found.
struct Survey {
    current: Deployment,
    seen: Vec<(Instance, Seen)>,
    /// The count of instances its strategy runs.
    wanted: usize,
}

impl Survey {
    /// Nothing to heal: enough instances alive, each recorded as running.
    fn in_full(&self) -> bool {
        let mut alive = 0;
        for (inst, seen) in &self.seen {
            match seen {
                Seen::Running if inst.state == InstanceState::Running => alive += 1,
                Seen::Restarting | Seen::Unknown(_) => alive += 1,
                Seen::Running | Seen::Gone(_) | Seen::Unhealthy(_) => return false,
            }
        }
        alive >= self.wanted
    }
}

/// The serving release's instances as its driver sees them; `None` when nothing serves.
async fn survey(inner: &Inner, app: &str, env: &str) -> Result<Option<Survey>> {
    let Some(current) = inner
        .store
        .latest_with_status(app, env, &[Status::Success])
        .await?
    else {
        return Ok(None);
    };
    let driver = inner.driver_of(app)?;
    let mut seen = Vec::new();
    for inst in inner.store.instances(Some(app), Some(env)).await? {
        if inst.version == current.release.version {
            let what = look(driver.as_ref(), &inst.handle).await;
            seen.push((inst, what));
        }
    }
    let wanted = strategy::of(&inner.env(&current)?.strategy).replicas();
    Ok(Some(Survey {
        current,
        seen,
        wanted,
    }))
}

/// Fails a rollout whose new release lost an instance, or whose image's `HEALTHCHECK`
/// turned unhealthy.
async fn watch_rollout(inner: &Inner, d: &Deployment) -> Result<()> {
    let driver = inner.driver_of(&d.app)?;
    for inst in inner
        .store
        .instances(Some(&d.app), Some(&d.environment))
        .await?
    {
        if inst.version != d.release.version || inst.state != InstanceState::Running {
            continue;
        }
        let why = match look(driver.as_ref(), &inst.handle).await {
            Seen::Gone(why) | Seen::Unhealthy(why) => why,
            Seen::Running | Seen::Restarting | Seen::Unknown(_) => continue,
        };
        // The rollout's own revert stops its instances: that is no death to report.
        let now = inner.store.get_deployment(d.id).await?;
        if now.status != Status::InProgress || matches!(now.phase, Phase::Reverting | Phase::Done) {
            return Ok(());
        }
        let reason = format!("instance {} died during the rollout: {why}", inst.id);
        inner.log(d.id, "engine", &reason).await;
        instances::copy_instance_output(inner, d.id, &inst).await;
        tracing::warn!(deployment = d.id, instance = %inst.id, %why, "an instance of the rollout died");
        inner.fail_rollout(d.id, &reason);
        return Ok(());
    }
    Ok(())
}

/// What the check makes of one instance.
enum Seen {
    Running,
    /// Its driver brings it back by itself (Docker's `restart:`).
    Restarting,
    /// The driver cannot tell (the daemon did not answer): counted as running.
    Unknown(String),
    /// Dead or removed, and why.
    Gone(String),
    /// Running, but its image's own `HEALTHCHECK` says unhealthy: as good as gone.
    Unhealthy(String),
}

async fn look(driver: &dyn Driver, handle: &str) -> Seen {
    match driver.liveness(handle).await {
        Liveness::Running => match driver.own_health(handle).await {
            Some(own) if own.status == ImageHealth::Unhealthy => {
                Seen::Unhealthy(instances::own_unhealthy(&own))
            }
            _ => Seen::Running,
        },
        Liveness::Restarting => Seen::Restarting,
        Liveness::Unknown(why) => Seen::Unknown(why),
        Liveness::Gone(why) => Seen::Gone(why),
    }
}

/// Replaces the dead instances the survey found and brings the serving release back to
/// its count; false when a replacement did not become healthy.
async fn heal(inner: &Arc<Inner>, survey: Survey) -> Result<bool> {
    let Survey {
        current,
        seen,
        wanted,
    } = survey;
    let app_config = inner.app(&current)?;
    let (mut alive, mut lost) = (0, false);
    for (mut inst, seen) in seen {
        let what = match seen {
            Seen::Running => {
                alive += 1;
                if inst.state != InstanceState::Running {
                    inst.state = InstanceState::Running;
                    inner.store.put_instance(&inst).await?;
                }
                continue;
            }
            // The driver brings it back by itself (Docker's `restart:`).
            Seen::Restarting => {
                alive += 1;
                continue;
            }
            Seen::Unknown(why) => {
                tracing::warn!(instance = %inst.id, %why, "cannot tell whether the instance runs");
                alive += 1;
                continue;
            }
            Seen::Gone(why) => format!("is gone: {why}"),
            Seen::Unhealthy(why) => format!("is unhealthy: {why}"),
        };
        let line = format!("instance {} ({}) {what}; replacing it", inst.id, inst.addr);
        inner.log(current.id, "engine", &line).await;
        tracing::warn!(deployment = current.id, instance = %inst.id, %what, "replacing an instance");
        instances::copy_instance_output(inner, current.id, &inst).await;
        instances::stop(inner, &inst).await?;
        lost = true;
    }
    if lost {
        // No request waits on an address that no longer answers.
        let (app, env) = (&current.app, &current.environment);
        inner
            .refresh_instances(app, env, &current.release.version)
            .await?;
    }
    for _ in alive..wanted {
        if !replace_one(inner, &current, app_config).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Starts one instance of the serving release and routes to it once it is healthy.
async fn replace_one(
    inner: &Arc<Inner>,
    current: &Deployment,
    app: &slipway_config::App,
) -> Result<bool> {
    let started = match instances::start(inner, current, app).await {
        Ok(inst) => inst,
        Err(e) => {
            let line = format!("could not start a replacement: {e}");
            inner.log(current.id, "engine", &line).await;
            return Ok(false);
        }
    };
    match instances::wait_healthy(inner, current, app, &started).await {
        Ok(()) => {
            let (app_name, env) = (&current.app, &current.environment);
            inner
                .refresh_instances(app_name, env, &current.release.version)
                .await?;
            let line = format!(
                "replaced: {} serves {} on {}",
                started.id, current.release.version, started.addr
            );
            inner.log(current.id, "engine", &line).await;
            Ok(true)
        }
        Err(stop) => {
            let why = match stop {
                Stop::Failed(why) => why,
                Stop::Internal(e) => e.to_string(),
            };
            let line = format!(
                "the replacement {} did not become healthy ({why}); trying again later",
                started.id
            );
            inner.log(current.id, "engine", &line).await;
            instances::copy_instance_output(inner, current.id, &started).await;
            instances::stop(inner, &started).await?;
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_that_keep_failing_back_off_up_to_five_minutes() {
        let base = Duration::from_secs(2);
        let waits: Vec<u64> = (1..=10).map(|n| retry_after(base, n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(retry_after(base, u32::MAX), MAX_RETRY_AFTER);
        // A check rarer than the cap is never made more frequent.
        let slow = Duration::from_secs(600);
        assert_eq!(retry_after(slow, 3), slow);
    }
}
