//! Leftovers: instances a driver holds for this server (labelled with its scope) that no
//! record of the store owns — a container the server started but died before recording,
//! one a wiped data dir forgot, one someone ran with slipway's labels. They are reported
//! in the server's log at start and by `slipway gc --dry-run`, and removed only by
//! `slipway gc` (admin): never automatically, since they may hold something a person
//! wants to look at first.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use slipway_config::Role;
use slipway_core::Status;
use slipway_drivers::{LABEL_APP, LABEL_ENVIRONMENT};

use crate::commands::require;
use crate::error::Result;
use crate::ports::kind_name;
use crate::{Actor, Engine, Inner, STOP_GRACE};

/// An instance no deployment owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The `driver:` kind that holds it (`docker`, `process`).
    pub driver: &'static str,
    /// Its instance id (a container's name), empty when it carries none.
    pub instance_id: String,
    pub handle: String,
    pub running: bool,
    /// Its `slipway.*` labels (`slipway.app`, `slipway.release`, …).
    pub labels: BTreeMap<String, String>,
}

impl Leftover {
    /// The (app, environment) its labels name.
    fn place(&self) -> Option<(String, String)> {
        Some((
            self.labels.get(LABEL_APP)?.clone(),
            self.labels.get(LABEL_ENVIRONMENT)?.clone(),
        ))
    }
}

/// What `slipway gc` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed: Vec<Leftover>,
    /// Left alone this time, and why (a rollout in progress may be about to record it).
    pub skipped: Vec<(Leftover, String)>,
}

impl Engine {
    /// Every instance the drivers hold for this server that no instance record owns.
    pub async fn leftovers(&self) -> Result<Vec<Leftover>> {
        leftovers(&self.inner).await
    }

    /// Stops and removes every leftover (admin only), except those of an app and
    /// environment where a rollout or a replacement is under way: a container it just
    /// started is not recorded yet.
    pub async fn gc(&self, actor: &Actor) -> Result<GcReport> {
        require(actor, Role::Admin, "removing leftover instances")?;
        let inner = &self.inner;
        // No rollout starts while the leftovers are compared and removed.
        let _decide = inner.decide.lock().await;
        let mut busy: BTreeSet<(String, String)> = inner
            .store
            .unfinished_deployments()
            .await?
            .into_iter()
            .filter(|d| d.status == Status::InProgress)
            .map(|d| (d.app, d.environment))
            .collect();
        if let Ok(healing) = inner.healing.lock() {
            busy.extend(healing.iter().cloned());
        }
        let mut report = GcReport::default();
        for leftover in leftovers(inner).await? {
            let busy_here = match leftover.place() {
                Some(place) => busy.get(&place).map(|(app, env)| format!("{app} in {env}")),
                // Whose it is cannot be told: any rollout may be about to record it.
                None => busy.first().map(|(app, env)| format!("{app} in {env}")),
            };
            if let Some(place) = busy_here {
                let why = format!(
                    "a rollout or replacement of {place} is under way; run gc again when it ends"
                );
                report.skipped.push((leftover, why));
                continue;
            }
            let Some((_, driver)) = inner
                .drivers
                .each()
                .find(|(k, _)| kind_name(*k) == leftover.driver)
            else {
                continue;
            };
            driver.stop(&leftover.handle, STOP_GRACE).await?;
            driver.remove(&leftover.handle).await?;
            tracing::info!(instance = %leftover.instance_id, handle = %leftover.handle, by = %actor.name, "removed a leftover instance");
            report.removed.push(leftover);
        }
        Ok(report)
    }
}

async fn leftovers(inner: &Inner) -> Result<Vec<Leftover>> {
    let recorded: BTreeSet<String> = inner
        .store
        .instances(None, None)
        .await?
        .into_iter()
        .map(|i| i.handle)
        .collect();
    let scope = inner.scope();
    let mut out = Vec::new();
    for (kind, driver) in inner.drivers.each() {
        let found = match driver.found(&scope).await {
            Ok(found) => found,
            // A driver no app uses may have no daemon to ask.
            Err(_) if !inner.uses(kind) => continue,
            Err(e) => return Err(e.into()),
        };
        out.extend(
            found
                .into_iter()
                .filter(|f| !recorded.contains(&f.handle))
                .map(|f| Leftover {
                    driver: kind_name(kind),
                    instance_id: f.instance_id,
                    handle: f.handle,
                    running: f.running,
                    labels: f.labels,
                }),
        );
    }
    Ok(out)
}

/// At start-up, after recovery (which stops the running ones): says in the server's log
/// what leftovers there are, and how to remove them.
pub(crate) async fn report(inner: Arc<Inner>) {
    let found = match leftovers(&inner).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(error = %e, "could not look for leftover instances");
            return;
        }
    };
    if found.is_empty() {
        return;
    }
    for l in &found {
        tracing::warn!(driver = l.driver, instance = %l.instance_id, handle = %l.handle, running = l.running, "leftover instance: no deployment owns it");
    }
    tracing::warn!(
        "{} leftover instance(s) labelled for this server belong to no deployment: `slipway gc --dry-run` lists them, `slipway gc` removes them",
        found.len()
    );
}
