//! The post-deploy watch (docs/concepts.md#post-deploy-watch), one task per watched
//! release: every `interval` it judges the router's figures for the release with the
//! pure rules of `slipway_core::watch`; a failed verdict rolls back to the previous
//! release at once, as an urgent rollback deployment that starts without waiting at any
//! gate. The watch's start and end are stored, so a restarted server resumes it with
//! what is left; a newer rollout of the app ends it.

use std::sync::Arc;

use slipway_config::Watch;
use slipway_core::civil::format_duration;
use slipway_core::migration::{self, UndoPlan};
use slipway_core::watch::{self, WatchEnd, WatchRecord, WatchStep};
use slipway_core::{Deployment, DeploymentId, Kind, Status, Verdict, describe};
use slipway_router::ReleaseStats;
use tokio::sync::watch as signal;

use crate::error::Result;
use crate::traffic::sample_since;
use crate::{Inner, commands};

/// The deployment log's source of every line the watch writes.
const SOURCE: &str = "watch";

/// Starts watching `d`, which has just succeeded, when its environment has a `watch:`.
/// A rollback restores a known-good release and is not watched.
pub(crate) async fn begin(inner: &Arc<Inner>, d: &Deployment) -> Result<()> {
    let Some(w) = inner
        .env(d)?
        .watch
        .as_ref()
        .filter(|_| d.kind == Kind::Deploy)
    else {
        return Ok(());
    };
    let since = d
        .entered(Status::Success)
        .unwrap_or_else(|| inner.clock.now());
    let record = watch::begin(w, d.id, &d.app, &d.environment, &d.release.version, since);
    inner.watches.put_watch(&record).await?;
    let line = format!(
        "watching {} for {}, a verdict every {}",
        d.release.version,
        format_duration(w.duration),
        format_duration(w.interval)
    );
    inner.log(d.id, SOURCE, &line).await;
    spawn(inner, record);
    Ok(())
}

/// At start-up: resumes every open watch of a release that is still current, with what
/// is left of it, and begins the watch a crash kept from being recorded.
pub(crate) async fn resume(inner: &Arc<Inner>) -> Result<()> {
    for record in inner.watches.open_watches().await? {
        let d = inner.store.get_deployment(record.deployment_id).await?;
        let configured = inner.env(&d).ok().and_then(|e| e.watch.as_ref()).is_some();
        if d.status != Status::Success || !configured {
            let why = if configured {
                format!("watch ended: {} is {} now", d.release.version, d.status)
            } else {
                "watch ended: the environment has no `watch:` any more".to_owned()
            };
            end_one(inner, record.deployment_id, WatchEnd::Ended, &why).await?;
            continue;
        }
        let left = record.left(inner.clock.now());
        let line = format!(
            "watch resumed after a restart: {} left",
            format_duration(left)
        );
        inner.log(d.id, SOURCE, &line).await;
        spawn(inner, record);
    }
    for (app, env) in inner
        .config
        .apps
        .keys()
        .flat_map(|a| inner.config.environments.keys().map(move |e| (a, e)))
    {
        let Some(current) = inner
            .store
            .latest_with_status(app, env, &[Status::Success])
            .await?
        else {
            continue;
        };
        let never_recorded = inner.watches.watch_of(current.id).await?.is_none();
        let within = inner.env(&current)?.watch.as_ref().is_some_and(|w| {
            current.entered(Status::Success).is_some_and(|at| {
                at + slipway_core::civil::duration_millis(w.duration) > inner.clock.now()
            })
        });
        if never_recorded && within {
            begin(inner, &current).await?;
        }
    }
    Ok(())
}

/// A newer rollout of `app` in `env` began: its watch, if any, ends.
pub(crate) async fn end(inner: &Inner, app: &str, env: &str, reason: &str) -> Result<()> {
    let at = inner.clock.now();
    let ended = inner
        .watches
        .end_watches_of(app, env, at, WatchEnd::Ended, reason)
        .await?;
    for id in ended {
        inner
            .log(id, SOURCE, &format!("watch ended: {reason}"))
            .await;
        signal_end(inner, id);
    }
    Ok(())
}

async fn end_one(inner: &Inner, id: DeploymentId, end: WatchEnd, why: &str) -> Result<bool> {
    let ended = inner
        .watches
        .end_watch(id, inner.clock.now(), end, why)
        .await?;
    if ended {
        inner.log(id, SOURCE, why).await;
    }
    Ok(ended)
}

fn signal_end(inner: &Inner, id: DeploymentId) {
    if let Ok(mut watching) = inner.watching.lock()
        && let Some(stop) = watching.remove(&id)
    {
        stop.send_replace(true);
    }
}

fn spawn(inner: &Arc<Inner>, record: WatchRecord) {
    let (stop, stopped) = signal::channel(false);
    if let Ok(mut watching) = inner.watching.lock() {
        watching.insert(record.deployment_id, stop);
    }
    tokio::spawn(run(inner.clone(), record, stopped));
}

/// The watch's running state between checks.
struct Watching {
    record: WatchRecord,
    /// The release's counters when the current window began.
    base: Option<ReleaseStats>,
    /// The kind of the last verdict logged, so the log gets a line per change.
    last: &'static str,
}

async fn run(inner: Arc<Inner>, record: WatchRecord, mut stopped: signal::Receiver<bool>) {
    let id = record.deployment_id;
    let mut shutdown = inner.shutdown.subscribe();
    let w = inner
        .config
        .environments
        .get(&record.environment)
        .and_then(|e| e.watch.clone());
    if let Some(w) = w {
        let base = inner
            .traffic
            .release_stats(&record.environment, &record.app, &record.version)
            .await
            .unwrap_or_default();
        let mut state = Watching {
            record,
            base,
            last: "",
        };
        loop {
            let wait = watch::next_check(&w, &state.record, inner.clock.now());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.wait_for(|stop| *stop) => break,
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            match check(&inner, &w, &mut state).await {
                Ok(true) => {}
                Ok(false) => break,
                // The router or the store did not answer: the next interval tries again.
                Err(e) => tracing::warn!(deployment = id, error = %e, "watch check failed"),
            }
        }
    }
    if let Ok(mut watching) = inner.watching.lock() {
        watching.remove(&id);
    }
}

/// One check; `false` when the watch is over.
async fn check(inner: &Arc<Inner>, w: &Watch, state: &mut Watching) -> Result<bool> {
    let rec = &state.record;
    let now_stats = inner
        .traffic
        .release_stats(&rec.environment, &rec.app, &rec.version)
        .await?;
    let sample = sample_since(now_stats.as_ref(), state.base.as_ref());
    let had_passed = state.record.passed;
    let (verdict, step) = watch::check(w, &mut state.record, &sample, inner.clock.now());
    let id = state.record.deployment_id;
    let kind = match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail(_) => "fail",
        Verdict::Inconclusive(_) => "inconclusive",
    };
    if kind != state.last {
        inner.log(id, SOURCE, &describe(&verdict, &sample)).await;
        state.last = kind;
    }
    match step {
        WatchStep::Continue { new_window } => {
            if new_window {
                state.base = now_stats;
            }
            if state.record.passed && !had_passed {
                inner.watches.set_watch_passed(id).await?;
            }
            Ok(true)
        }
        WatchStep::RollBack(figures) => {
            roll_back(inner, &state.record, &figures).await?;
            Ok(false)
        }
        WatchStep::Over(end, why) => {
            end_one(inner, id, end, &why).await?;
            Ok(false)
        }
    }
}

/// A failed verdict: back to the previous release at once, unless a migration that
/// cannot be undone stands in the way, or there is no previous release.
async fn roll_back(inner: &Arc<Inner>, rec: &WatchRecord, figures: &str) -> Result<()> {
    let id = rec.deployment_id;
    let d = inner.store.get_deployment(id).await?;
    if d.status != Status::Success {
        let why = format!("watch ended: {} is {} now", d.release.version, d.status);
        end_one(inner, id, WatchEnd::Ended, &why).await?;
        return Ok(());
    }
    let previous = inner
        .store
        .latest_with_status(&d.app, &d.environment, &[Status::Inactive])
        .await?;
    let Some(previous) = previous else {
        let why = format!(
            "{figures}; not rolled back: {} is the first release here, there is nothing to return to",
            d.release.version
        );
        end_one(inner, id, WatchEnd::Failed, &why).await?;
        return Ok(());
    };
    let runs = inner.migrations.migrations(&d.app, &d.environment).await?;
    if let UndoPlan::Held(run) = migration::plan_undo(&runs, previous.id, false) {
        let why = format!("{figures}; {}", migration::held_reason(run));
        end_one(inner, id, WatchEnd::Failed, &why).await?;
        return Ok(());
    }
    let why = format!(
        "{figures}; rolling back to {} at once",
        previous.release.version
    );
    if !end_one(inner, id, WatchEnd::Failed, &why).await? {
        // Something else ended the watch first (a newer rollout began).
        return Ok(());
    }
    let reason = format!(
        "automatic rollback from {} to {}: {figures}",
        d.release.version, previous.release.version
    );
    commands::urgent_rollback(inner, &d, &previous, &reason).await?;
    Ok(())
}
