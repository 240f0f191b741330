//! The reconcile loop: on every tick (and whenever a command wakes it) it looks at every
//! unfinished deployment and takes the next step — hold it at a gate, start its rollout,
//! or resume a rollout that lost its task in a restart.

use std::collections::BTreeMap;
use std::sync::Arc;

use slipway_config::Environment;
use slipway_core::{Deployment, Status, gates};

use crate::effects::SYSTEM;
use crate::error::Result;
use crate::{Inner, rollout};

pub(crate) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = tick(&inner).await {
            tracing::error!(error = %e, "reconcile tick failed; retrying on the next tick");
        }
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(inner.config.server.tick) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn tick(inner: &Arc<Inner>) -> Result<()> {
    let _decide = inner.decide.lock().await;
    let mut groups: BTreeMap<(String, String), Vec<Deployment>> = BTreeMap::new();
    for d in inner.store.unfinished_deployments().await? {
        groups
            .entry((d.app.clone(), d.environment.clone()))
            .or_default()
            .push(d);
    }
    for ((app, env), deployments) in groups {
        match inner
            .config
            .environments
            .get(&env)
            .filter(|_| inner.config.apps.contains_key(&app))
        {
            Some(env_config) => step_group(inner, env_config, &deployments).await?,
            None => {
                let why = format!("{app} in {env} is no longer in the configuration");
                for d in &deployments {
                    let to = if d.status.is_pending() {
                        Status::Cancelled
                    } else {
                        Status::Error
                    };
                    inner.transition(d, to, SYSTEM, &why).await?;
                }
            }
        }
    }
    Ok(())
}

/// The next step for the unfinished deployments of one app in one environment: the one
/// in progress keeps its rollout task; the pending ones wait at their gates, or the first
/// whose gates are open starts.
async fn step_group(
    inner: &Arc<Inner>,
    env: &Environment,
    deployments: &[Deployment],
) -> Result<()> {
    let in_progress = deployments.iter().find(|d| d.status == Status::InProgress);
    if let Some(d) = in_progress {
        rollout::ensure_running(inner, d);
    }
    let now = inner.clock.now();
    for d in deployments.iter().filter(|d| d.status.is_pending()) {
        match (gates::evaluate(env, d, now), in_progress) {
            (gates::GateOutcome::Rejected { by, reason }, _) => {
                inner.transition(d, Status::Rejected, &by, &reason).await?;
            }
            (
                gates::GateOutcome::Wait {
                    gate,
                    reason,
                    until,
                },
                _,
            ) => {
                let reason = wait_reason(gate, reason, until);
                hold(inner, d, gate.as_str(), &reason).await?;
            }
            (gates::GateOutcome::Open, Some(running)) => {
                let reason = format!("waiting for deployment {} to finish", running.id);
                hold(inner, d, "concurrency", &reason).await?;
            }
            (gates::GateOutcome::Open, None) if inner.is_healing(&d.app, &d.environment) => {
                let reason = "waiting for the replacement of a dead instance to finish";
                hold(inner, d, "concurrency", reason).await?;
            }
            (gates::GateOutcome::Open, None) => {
                let started = inner
                    .transition(
                        d,
                        Status::InProgress,
                        SYSTEM,
                        "all gates passed; rollout started",
                    )
                    .await?;
                rollout::ensure_running(inner, &started);
                // One rollout per app and environment: the rest wait for the next tick.
                break;
            }
        }
    }
    Ok(())
}

/// The reason is recorded once per gate, so a countdown also names its end.
fn wait_reason(gate: gates::Gate, reason: String, until: Option<slipway_core::Millis>) -> String {
    match (gate, until) {
        (gates::Gate::WaitTimer, Some(end)) => format!(
            "{reason}, until {}",
            slipway_core::civil::format_rfc3339(end)
        ),
        _ => reason,
    }
}

/// Records that a deployment waits at `gate`, once per gate: a countdown in the reason
/// does not add a status change every tick.
async fn hold(inner: &Inner, d: &Deployment, gate: &str, reason: &str) -> Result<()> {
    let last = d.statuses.last().map(|c| c.reason.as_str()).unwrap_or("");
    let prefix = format!("{gate}: ");
    if d.status == Status::Waiting && last.starts_with(&prefix) {
        return Ok(());
    }
    inner
        .transition(d, Status::Waiting, SYSTEM, &format!("{prefix}{reason}"))
        .await?;
    Ok(())
}
