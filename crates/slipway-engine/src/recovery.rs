//! Start-up: adopt the instances that outlived the last server, restore every route,
//! resume what a restart interrupted, and only then open the router listeners, so the
//! first request already meets the routes (no `404 no app by that name`); then resume
//! the post-deploy watches with what is left of them.

use std::sync::Arc;
use std::time::Duration;

use slipway_config::Strategy;
use slipway_core::{InstanceState, Status};

use crate::effects::preview_listener;
use crate::error::Result;
use crate::traffic::EnvLimits;
use crate::{Inner, STOP_GRACE, strategy, watching};

pub(crate) async fn recover(inner: &Arc<Inner>) -> Result<()> {
    declare_listeners(inner).await;
    adopt_instances(inner).await?;
    restore_routes(inner).await?;
    inner.traffic.open_all().await?;
    watching::resume(inner).await
}

/// Declares every environment's listener (and its blue-green preview); they open once
/// the routes are restored.
async fn declare_listeners(inner: &Inner) {
    for (name, env) in &inner.config.environments {
        let limits = EnvLimits {
            drain_timeout: env.drain_timeout,
            request_timeout: Duration::from_secs(60),
        };
        inner.traffic.declare(name, env.listen, limits).await;
        if let Strategy::BlueGreen {
            preview: Some(addr),
            ..
        } = env.strategy
        {
            inner
                .traffic
                .declare(&preview_listener(name), addr, limits)
                .await;
        }
    }
}

/// Instances recorded as running are kept if their driver still sees them; the others
/// are marked stopped, so nothing routes to a process that is gone. An instance a driver
/// runs for this server but the store does not know (the server died between starting
/// it and recording it) is stopped: nothing would ever route to it.
async fn adopt_instances(inner: &Inner) -> Result<()> {
    let mut recorded = Vec::new();
    for mut inst in inner.store.instances(None, None).await? {
        if inst.state != InstanceState::Running {
            continue;
        }
        let alive = match inner.driver_of(&inst.app) {
            Ok(driver) => driver.is_running(&inst.handle).await,
            // Its app left the configuration: the reconcile loop ends its deployments.
            Err(_) => false,
        };
        if alive {
            tracing::info!(instance = %inst.id, addr = %inst.addr, "re-adopted running instance");
            recorded.push(inst.handle);
        } else {
            tracing::warn!(instance = %inst.id, "instance is gone; marking it stopped");
            inst.state = InstanceState::Stopped;
            inner.store.put_instance(&inst).await?;
        }
    }
    let scope = inner.scope();
    for driver in inner.drivers.all() {
        for (id, handle) in driver.instances(&scope).await {
            if !recorded.contains(&handle) {
                tracing::warn!(instance = %id, %handle, "stopping an instance that was started but never recorded");
                driver.stop(&handle, STOP_GRACE).await?;
            }
        }
    }
    Ok(())
}

/// Points every environment's router at its current release's running instances (an
/// app with no release yet gets an empty route, which the router answers with 503),
/// and resumes what the current release's strategy left pending (a blue-green
/// scale-down).
async fn restore_routes(inner: &Arc<Inner>) -> Result<()> {
    for app in inner.config.apps.keys() {
        for env in inner.config.environments.keys() {
            let current = inner
                .store
                .latest_with_status(app, env, &[Status::Success])
                .await?;
            let routes = match &current {
                Some(current) => vec![inner.full_route(current).await?],
                None => Vec::new(),
            };
            inner.route_everywhere(app, env, routes).await?;
            if let Some(current) = current {
                strategy::resume(inner, current).await?;
            }
        }
    }
    Ok(())
}
