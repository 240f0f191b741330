//! Schema migrations with the release (docs/concepts.md#migrations): `check` before
//! anything starts, `up` once the new instances are healthy and before any traffic moves,
//! and the `down`s of the releases a rollback goes back past before its traffic returns.
//! Each runs like a hook (own process group, `timeout`, output streamed into the log);
//! what ran is recorded in the store, so a restarted rollout neither runs an `up` twice
//! nor forgets a `down`.

use std::collections::BTreeMap;

use slipway_config::{DEFAULT_HOOK_TIMEOUT, Hook, Migrate};
use slipway_core::migration::{self, MigrationRun, Undo, UndoPlan, UndoState, UndoStep};
use slipway_core::{Deployment, DeploymentId, Kind, Status};

use crate::Inner;
use crate::error::{Result, Stop};
use crate::strategy::Rollout;

/// The deployment log's source of every line a migration writes.
const SOURCE: &str = "migrate";

/// What a failed or aborted rollout's revert may do with traffic.
pub(crate) enum Revert {
    /// The schema is back as the previous release had it (or was never changed).
    Proceed,
    /// Traffic stays where it is: the text says why and that a person decides.
    Hold(String),
}

fn command(m: Option<&Migrate>, run: &str) -> Hook {
    Hook {
        run: run.to_owned(),
        timeout: m.map_or(DEFAULT_HOOK_TIMEOUT, |m| m.timeout),
    }
}

/// The app's environment, with the release whose migration runs and the one before it
/// (empty for a first release).
fn env(
    inner: &Inner,
    d: &Deployment,
    version: &str,
    previous: Option<&str>,
) -> BTreeMap<String, String> {
    let mut vars = inner.instance_env(d);
    vars.insert("SLIPWAY_VERSION".into(), version.to_owned());
    vars.insert(
        "SLIPWAY_PREVIOUS_VERSION".into(),
        previous.unwrap_or_default().to_owned(),
    );
    vars.insert("SLIPWAY_ENVIRONMENT".into(), d.environment.clone());
    vars
}

/// The release serving before `r`'s, if it is another one.
fn previous_version<'a>(r: &'a Rollout<'_>) -> Option<&'a str> {
    r.stable
        .map(|s| s.release.version.as_str())
        .filter(|v| *v != r.d.release.version)
}

/// `migrate.check` of a new release, first of all: its failure fails the deployment with
/// nothing started.
pub(crate) async fn check(r: &Rollout<'_>) -> Result<(), Stop> {
    let Some(m) = r.app.migrate.as_ref().filter(|_| r.d.kind == Kind::Deploy) else {
        return Ok(());
    };
    let Some(check) = &m.check else {
        return Ok(());
    };
    let vars = env(r.inner, r.d, &r.d.release.version, previous_version(r));
    r.inner
        .run_logged(
            r.d.id,
            SOURCE,
            "migrate check",
            &command(Some(m), check),
            vars,
        )
        .await
        .map_err(|why| Stop::Failed(format!("{why}; nothing was started")))
}

/// What the schema needs before traffic moves: a new release's `up`, or the `down`s a
/// rollback goes back past. Idempotent: a strategy may call it before its first move,
/// and the rollout calls it again before the shift.
pub(crate) async fn before_traffic(r: &Rollout<'_>) -> Result<(), Stop> {
    match r.d.kind {
        Kind::Deploy => up(r).await,
        Kind::Rollback => undo_for_rollback(r).await,
    }
}

async fn up(r: &Rollout<'_>) -> Result<(), Stop> {
    let (inner, d) = (r.inner, r.d);
    let Some(m) = &r.app.migrate else {
        return Ok(());
    };
    let Some(up) = &m.up else {
        return Ok(());
    };
    if inner.migrations.migration_of(d.id).await?.is_some() {
        return Ok(());
    }
    let vars = env(inner, d, &d.release.version, previous_version(r));
    inner
        .run_logged(d.id, SOURCE, "migrate up", &command(Some(m), up), vars)
        .await
        .map_err(|why| Stop::Failed(format!("{why}; no traffic was moved")))?;
    inner
        .migrations
        .record_migration(&MigrationRun {
            deployment_id: d.id,
            app: d.app.clone(),
            environment: d.environment.clone(),
            version: d.release.version.clone(),
            up: up.clone(),
            ran_at: inner.clock.now(),
            reversible: m.reversible,
            down: m.down.clone(),
            undo: None,
        })
        .await?;
    Ok(())
}

/// The deployment whose release a rollback restores: the latest before it that
/// succeeded with that version. Migrations of later deployments are undone.
async fn restored(inner: &Inner, d: &Deployment) -> Result<Option<DeploymentId>> {
    let past = inner
        .store
        .list_deployments(&slipway_store::DeploymentFilter {
            app: Some(d.app.clone()),
            environment: Some(d.environment.clone()),
            limit: Some(slipway_store::MAX_LIST_LIMIT),
            ..Default::default()
        })
        .await?;
    Ok(past
        .iter()
        .find(|p| {
            p.id < d.id
                && p.release.version == d.release.version
                && p.entered(Status::Success).is_some()
        })
        .map(|p| p.id))
}

/// A rollback's `down`s, newest first. An irreversible migration in the way fails the
/// rollback unless a person forced it, and then is recorded as skipped.
async fn undo_for_rollback(r: &Rollout<'_>) -> Result<(), Stop> {
    let (inner, d) = (r.inner, r.d);
    let Some(back_to) = restored(inner, d).await? else {
        return Ok(());
    };
    let runs = inner.migrations.migrations(&d.app, &d.environment).await?;
    let steps = match migration::plan_undo(&runs, back_to, d.force.is_some()) {
        UndoPlan::Held(run) => return Err(Stop::Failed(migration::held_reason(run))),
        UndoPlan::Steps(steps) => steps,
    };
    for step in steps {
        match step {
            UndoStep::Down(run) => down(inner, d, run, &d.release.version)
                .await
                .map_err(Stop::Failed)?,
            UndoStep::Skip(run) => {
                let who = d
                    .force
                    .as_ref()
                    .map(|f| format!("{}: {}", f.by, f.reason))
                    .unwrap_or_default();
                let note = format!(
                    "not reversible: down of {} not run; rollback forced by {who}",
                    run.version
                );
                record(inner, d, run, UndoState::Skipped, &note).await?;
            }
        }
    }
    Ok(())
}

/// Runs `run`'s `down` for deployment `by`, traffic going back to `back_to`; records
/// how it went. `Err` is why it failed.
async fn down(
    inner: &Inner,
    by: &Deployment,
    run: &MigrationRun,
    back_to: &str,
) -> Result<(), String> {
    let Some(down) = &run.down else {
        let note = format!(
            "no `down` was configured when {}'s up ran: nothing to undo",
            run.version
        );
        return record(inner, by, run, UndoState::Skipped, &note)
            .await
            .map_err(|e| e.to_string());
    };
    let what = format!("migrate down of {}", run.version);
    let m = inner
        .config
        .apps
        .get(&by.app)
        .and_then(|a| a.migrate.as_ref());
    let vars = env(inner, by, &run.version, Some(back_to));
    let ran = inner
        .run_logged(by.id, SOURCE, &what, &command(m, down), vars)
        .await;
    let (state, note) = match &ran {
        Ok(()) => (UndoState::Ran, format!("{what} succeeded")),
        Err(why) => (UndoState::Failed, why.clone()),
    };
    record(inner, by, run, state, &note)
        .await
        .map_err(|e| e.to_string())?;
    ran
}

async fn record(
    inner: &Inner,
    by: &Deployment,
    run: &MigrationRun,
    state: UndoState,
    note: &str,
) -> Result<()> {
    if state == UndoState::Skipped {
        inner.log(by.id, SOURCE, note).await;
    }
    let undo = Undo {
        state,
        by: by.id,
        at: inner.clock.now(),
        note: note.to_owned(),
    };
    Ok(inner
        .migrations
        .record_undo(run.deployment_id, &undo)
        .await?)
}

/// Before a failed or aborted rollout's traffic returns to `previous`: its own `up` is
/// undone. An irreversible one holds an automatic revert; an aborted rollout leaves it
/// to the rollback that aborted it, which a person had to force past it.
pub(crate) async fn before_revert(
    inner: &Inner,
    d: &Deployment,
    previous: Option<&Deployment>,
    aborted: bool,
) -> Result<Revert> {
    let Some(run) = inner
        .migrations
        .migration_of(d.id)
        .await?
        .filter(MigrationRun::awaits_undo)
    else {
        return Ok(Revert::Proceed);
    };
    if !run.reversible {
        return Ok(if aborted {
            Revert::Proceed
        } else {
            Revert::Hold(migration::held_reason(&run))
        });
    }
    let back_to = previous.map_or("", |p| p.release.version.as_str());
    Ok(match down(inner, d, &run, back_to).await {
        Ok(()) => Revert::Proceed,
        Err(why) => Revert::Hold(format!(
            "{why}; not rolled back: the schema may be half undone, so a person must decide"
        )),
    })
}
