//! An app's instances: start them (named `slipway-<app>-<env>-<version>-<n>`), find the
//! live ones, wait until they are healthy, stop them, and copy what they printed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use slipway_config::{App, DriverKind, Pull, RestartPolicy};
use slipway_core::{Deployment, DeploymentId, Instance, InstanceState};
use slipway_drivers::{
    Driver, ImageHealth, InstanceSpec, OwnHealth, PullPolicy, Restart, Workload,
};

use crate::error::{Error, Result, Stop};
use crate::{Inner, STOP_GRACE};

/// How many lines of an instance's own output are copied into the deployment log.
const APP_LOG_TAIL: usize = 20;

/// Resolves the release's version to what the app's driver will run (an image digest)
/// and records it on the deployment, before anything is stopped: a missing image or an
/// unreachable daemon ends the deployment here, with nothing changed. The digest must be
/// the one that succeeded in every required environment (DESIGN §1): a tag moved since
/// fails the deployment.
pub(crate) async fn pin(inner: &Inner, d: &Deployment) -> Result<Option<String>, Stop> {
    let app = inner.app(d)?;
    if app.driver != DriverKind::Docker {
        return Ok(None);
    }
    // A container workload does not use the instance name.
    let workload = workload(inner, d, app, "")?;
    let driver = inner.driver_of(&d.app)?;
    let Some(digest) = driver
        .pin(&workload, &d.release.version)
        .await
        .map_err(Error::from)?
    else {
        return Ok(None);
    };
    let version = &d.release.version;
    for required in &inner.env(d)?.requires {
        let same = inner
            .store
            .release_succeeded_in(&d.app, required, version, Some(&digest))
            .await?;
        if !same {
            return Err(Stop::Failed(format!(
                "{version} resolves to {digest} now, which is not the image that succeeded in {required}: the tag moved since"
            )));
        }
    }
    inner.store.set_digest(d.id, &digest).await?;
    let line = format!("{version} resolved to {digest}");
    inner.log(d.id, "engine", &line).await;
    Ok(Some(digest))
}

/// At least `count` running instances of `d`'s release, reusing those that run and
/// starting kept, stopped ones again where the driver can (a rollback finds its kept
/// ones).
pub(crate) async fn ensure(
    inner: &Inner,
    d: &Deployment,
    app: &App,
    count: usize,
) -> Result<Vec<Instance>> {
    let mut running = live(inner, &d.app, &d.environment, &d.release.version).await?;
    for inst in &running {
        let line = format!("using running instance {} ({})", inst.id, inst.addr);
        inner.log(d.id, "engine", &line).await;
    }
    if running.len() < count {
        let driver = inner.driver_of(&d.app)?;
        for mut inst in inner
            .store
            .instances(Some(&d.app), Some(&d.environment))
            .await?
        {
            if running.len() >= count
                || inst.version != d.release.version
                || inst.state != InstanceState::Stopped
            {
                continue;
            }
            let Ok(Some(started)) = driver.start_again(&inst.handle).await else {
                continue;
            };
            inst.addr = started.addr.to_string();
            inst.state = InstanceState::Running;
            inner.store.put_instance(&inst).await?;
            let line = format!("started kept instance {} again ({})", inst.id, inst.addr);
            inner.log(d.id, "engine", &line).await;
            running.push(inst);
        }
    }
    while running.len() < count {
        running.push(start(inner, d, app).await?);
    }
    Ok(running)
}

/// The instances of a release that the store says run and the driver confirms; the
/// others are marked stopped.
pub(crate) async fn live(
    inner: &Inner,
    app: &str,
    env: &str,
    version: &str,
) -> Result<Vec<Instance>> {
    let mut found = Vec::new();
    for mut inst in inner.store.instances(Some(app), Some(env)).await? {
        if inst.version != version || inst.state != InstanceState::Running {
            continue;
        }
        if inner.driver_of(app)?.is_running(&inst.handle).await {
            found.push(inst);
        } else {
            inst.state = InstanceState::Stopped;
            inner.store.put_instance(&inst).await?;
        }
    }
    Ok(found)
}

/// Starts one new instance of `d`'s release and records it.
pub(crate) async fn start(inner: &Inner, d: &Deployment, app: &App) -> Result<Instance> {
    let taken: Vec<String> = inner
        .store
        .instances(Some(&d.app), Some(&d.environment))
        .await?
        .into_iter()
        .map(|i| i.id)
        .collect();
    let name = instance_name(d, &taken);
    let spec = spec(inner, d, app, &name)?;
    let started = inner.driver_of(&d.app)?.start(&spec).await?;
    let inst = Instance {
        id: name,
        app: d.app.clone(),
        environment: d.environment.clone(),
        version: d.release.version.clone(),
        deployment_id: d.id,
        handle: started.handle,
        addr: started.addr.to_string(),
        state: InstanceState::Running,
        started_at: inner.clock.now(),
    };
    inner.store.put_instance(&inst).await?;
    let line = format!(
        "started instance {} (pid {}, {})",
        inst.id, started.pid, inst.addr
    );
    inner.log(d.id, "engine", &line).await;
    Ok(inst)
}

/// `slipway-<app>-<env>-<version>-<n>` with the smallest `n` not taken. A
/// version keeps only the characters a container name allows.
pub(crate) fn instance_name(d: &Deployment, taken: &[String]) -> String {
    let version = d.release.version.replace(
        |c: char| !c.is_ascii_alphanumeric() && !matches!(c, '-' | '_' | '.'),
        "_",
    );
    let prefix = format!("slipway-{}-{}-{version}", d.app, d.environment);
    (1u32..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|name| !taken.contains(name))
        .unwrap_or(prefix)
}

/// What the app's driver needs to run one instance.
fn spec(inner: &Inner, d: &Deployment, app: &App, name: &str) -> Result<InstanceSpec> {
    Ok(InstanceSpec {
        instance_id: name.to_string(),
        scope: inner.scope(),
        app: d.app.clone(),
        environment: d.environment.clone(),
        version: d.release.version.clone(),
        env: inner.instance_env(d),
        workload: workload(inner, d, app, name)?,
    })
}

/// The driver-specific part of an instance's spec; `name` is the instance's.
fn workload(inner: &Inner, d: &Deployment, app: &App, name: &str) -> Result<Workload> {
    Ok(match app.driver {
        DriverKind::Process => {
            let command = app
                .run
                .clone()
                .ok_or_else(|| Error::Unsupported(format!("app {} has no `run` command", d.app)))?;
            // The driver creates the log's directory.
            Workload::Process {
                command,
                log_path: log_path(inner, name, d.id),
                workdir: std::env::current_dir()?,
            }
        }
        DriverKind::Docker => Workload::Container {
            image: app
                .image
                .clone()
                .ok_or_else(|| Error::Unsupported(format!("app {} has no `image`", d.app)))?,
            port: app
                .port
                .ok_or_else(|| Error::Unsupported(format!("app {} has no `port`", d.app)))?,
            labels: labels(d),
            pull: match app.container.pull {
                Pull::Never => PullPolicy::Never,
                Pull::IfMissing => PullPolicy::IfMissing,
                Pull::Always => PullPolicy::Always,
            },
            memory: app.container.memory,
            cpus: app.container.cpus,
            restart: match app.container.restart {
                RestartPolicy::No => Restart::No,
                RestartPolicy::OnFailure { max_retries } => Restart::OnFailure { max_retries },
                RestartPolicy::UnlessStopped => Restart::UnlessStopped,
                RestartPolicy::Always => Restart::Always,
            },
            args: app.container.args.clone(),
        },
    })
}

/// The labels a container gets (`slipway.digest` when the release has one).
fn labels(d: &Deployment) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("slipway.app".into(), d.app.clone()),
        ("slipway.environment".into(), d.environment.clone()),
        ("slipway.release".into(), d.release.version.clone()),
        ("slipway.deployment".into(), d.id.to_string()),
    ]);
    if let Some(digest) = &d.release.digest {
        labels.insert("slipway.digest".into(), digest.clone());
    }
    labels
}

/// A process instance's output file. The deployment is part of it: an instance name is
/// reused once its instance is gone, its output is not.
fn log_path(inner: &Inner, name: &str, deployment: i64) -> PathBuf {
    inner
        .data_dir
        .join("logs")
        .join(format!("{name}.{deployment}.log"))
}

/// Waits until `inst` passes its health check (readiness, docs/concepts.md).
pub(crate) async fn wait_healthy(
    inner: &Inner,
    d: &Deployment,
    app: &App,
    inst: &Instance,
) -> Result<(), Stop> {
    let addr = inst.addr.parse().map_err(|_| {
        Error::Router(format!(
            "instance {} has a bad address {}",
            inst.id, inst.addr
        ))
    })?;
    let waiting = format!(
        "waiting for {} to become healthy ({} on {addr})",
        inst.id, app.health.path
    );
    inner.log(d.id, "health", &waiting).await;
    let driver = inner.driver_of(&d.app)?;
    let verdict = match inner
        .prober
        .wait_healthy(addr, &app.health, driver.as_ref(), &inst.handle)
        .await
    {
        Ok(summary) => {
            inner
                .log(d.id, "health", &format!("healthy: {summary}"))
                .await;
            wait_own_health(driver.as_ref(), &inst.handle).await
        }
        Err(why) => Err(why),
    };
    match verdict {
        Ok(Some(own)) => {
            let line = format!("the image's HEALTHCHECK says healthy{}", output_of(&own));
            inner.log(d.id, "health", &line).await;
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(why) => Err(Stop::Failed(format!(
            "{} never became healthy: {why}",
            d.release.version
        ))),
    }
}

/// How long an image's `HEALTHCHECK` may say `starting` once `health:` passed. Docker
/// decides within the image's own start period and retries; this only bounds a daemon
/// that never does.
const OWN_HEALTH_DEADLINE: Duration = Duration::from_secs(120);
/// How often Docker's verdict is read while it says `starting`.
const OWN_HEALTH_POLL: Duration = Duration::from_millis(25);

/// Waits for the verdict of the workload's own health check (an image's `HEALTHCHECK`),
/// when it has one: `Err` when it says unhealthy.
async fn wait_own_health(driver: &dyn Driver, handle: &str) -> Result<Option<OwnHealth>, String> {
    let deadline = tokio::time::Instant::now() + OWN_HEALTH_DEADLINE;
    loop {
        let Some(own) = driver.own_health(handle).await else {
            return Ok(None);
        };
        match own.status {
            ImageHealth::Healthy => return Ok(Some(own)),
            ImageHealth::Unhealthy => return Err(own_unhealthy(&own)),
            ImageHealth::None => return Ok(None),
            ImageHealth::Starting if tokio::time::Instant::now() >= deadline => {
                return Err(format!(
                    "the image's HEALTHCHECK still says starting after {}",
                    slipway_core::civil::format_duration(OWN_HEALTH_DEADLINE)
                ));
            }
            ImageHealth::Starting => tokio::time::sleep(OWN_HEALTH_POLL).await,
        }
    }
}

/// The reason given when an image's `HEALTHCHECK` says unhealthy (`health:` may pass).
pub(crate) fn own_unhealthy(own: &OwnHealth) -> String {
    format!(
        "the image's HEALTHCHECK reports unhealthy{}",
        output_of(own)
    )
}

fn output_of(own: &OwnHealth) -> String {
    if own.last_output.is_empty() {
        String::new()
    } else {
        format!(" (last check: {})", own.last_output)
    }
}

/// Stops one instance, removes what it left (a container) and forgets it.
pub(crate) async fn stop(inner: &Inner, inst: &Instance) -> Result<()> {
    let driver = inner.driver_of(&inst.app)?;
    driver.stop(&inst.handle, STOP_GRACE).await?;
    driver.remove(&inst.handle).await?;
    inner.store.delete_instance(&inst.id).await?;
    Ok(())
}

/// Stops an instance but keeps its record (as stopped), so a rollback can start it again.
pub(crate) async fn idle(inner: &Inner, mut inst: Instance) -> Result<()> {
    inner
        .driver_of(&inst.app)?
        .stop(&inst.handle, STOP_GRACE)
        .await?;
    inst.state = InstanceState::Stopped;
    inner.store.put_instance(&inst).await?;
    Ok(())
}

/// Stops every instance of one release in one environment and forgets it.
pub(crate) async fn stop_release(inner: &Inner, app: &str, env: &str, version: &str) -> Result<()> {
    for inst in inner.store.instances(Some(app), Some(env)).await? {
        if inst.version == version {
            stop(inner, &inst).await?;
        }
    }
    Ok(())
}

/// Copies the last lines the release's instances printed into the deployment log.
pub(crate) async fn copy_output(inner: &Inner, d: &Deployment) {
    let Ok(instances) = inner
        .store
        .instances(Some(&d.app), Some(&d.environment))
        .await
    else {
        return;
    };
    for inst in instances.iter().filter(|i| i.version == d.release.version) {
        copy_instance_output(inner, d.id, inst).await;
    }
}

/// Copies the last lines one instance printed into deployment `into`'s log.
pub(crate) async fn copy_instance_output(inner: &Inner, into: DeploymentId, inst: &Instance) {
    let Ok(driver) = inner.driver_of(&inst.app) else {
        return;
    };
    let lines = match driver.output(&inst.handle, APP_LOG_TAIL).await {
        Some(lines) => lines,
        None => {
            let path = log_path(inner, &inst.id, inst.deployment_id);
            let Ok(text) = tokio::fs::read_to_string(&path).await else {
                return;
            };
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(APP_LOG_TAIL)..]
                .iter()
                .map(|l| (*l).to_owned())
                .collect()
        }
    };
    for line in &lines {
        inner.log(into, "app", line).await;
    }
}
