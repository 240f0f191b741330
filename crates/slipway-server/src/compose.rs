//! The one place that chooses the real parts of a server: the SQLite store in
//! `data_dir`, the process and docker drivers, the in-process (or standalone) router, HTTP probes,
//! shell hooks, the webhook notifiers, the environments' secrets and the system clock. `slipway server` and `slipway demo` both start here;
//! tests hand the engine other parts.

use std::path::PathBuf;
use std::sync::Arc;

use slipway_config::{Config, DriverKind};
use slipway_engine::{Drivers, HttpProber, Parts, ShellHooks, SystemClock, TrafficRouter};
use slipway_store::SqliteStore;

use crate::Error;

/// The real parts, the in-process router when the server runs its own (it is shut down
/// with the server), and the SQLite store itself, which also keeps flags and DORA facts (and, for the
/// engine, migrations and watches).
pub(crate) async fn real_parts(
    config: Config,
    data_dir: PathBuf,
) -> Result<(Parts, Option<slipway_router::Router>, Arc<SqliteStore>), Error> {
    let sqlite = Arc::new(SqliteStore::open(&data_dir.join("slipway.db")).await?);
    let store = sqlite.clone();
    let (router, traffic) = traffic_router(&config)?;
    let drivers = Drivers::new().with(
        DriverKind::Process,
        Arc::new(slipway_drivers::ProcessDriver::new()),
    );
    let drivers = match docker_driver(&config)? {
        Some(docker) => drivers.with(DriverKind::Docker, Arc::new(docker)),
        None => drivers,
    };
    let clock: Arc<dyn slipway_engine::Clock> = Arc::new(SystemClock);
    let notifiers = crate::webhook::webhooks(&config, sqlite.clone(), clock.clone()).await?;
    // Read once, here: a secret that cannot be read stops the start, as a webhook's key does.
    let environment_secrets =
        slipway_config::EnvironmentSecrets::read(&config, &|name| std::env::var(name).ok())
            .map_err(|problems| {
                let (at, why) = &problems[0];
                Error::Setup(format!("{}: {why}", at.path))
            })?;
    let parts = Parts {
        config,
        store,
        migrations: sqlite.clone(),
        watches: sqlite.clone(),
        drivers,
        router: traffic,
        prober: Arc::new(HttpProber::new()),
        hooks: Arc::new(ShellHooks),
        clock,
        notifiers,
        data_dir,
        // The caller adds the secrets it knows once the admin token exists.
        secrets: slipway_core::Masker::default(),
        environment_secrets,
    };
    Ok((parts, router, sqlite))
}

/// The docker driver for `server.docker_host`, else `DOCKER_HOST`, else the default
/// socket. It connects on first use, so a server without docker apps starts with no
/// daemon; a host it cannot use stops only a server that has docker apps.
fn docker_driver(config: &Config) -> Result<Option<slipway_drivers::DockerDriver>, Error> {
    let host = match &config.server.docker_host {
        Some(url) => url.parse(),
        None => slipway_drivers::DockerHost::from_env_value(
            std::env::var("DOCKER_HOST").ok().as_deref(),
        ),
    };
    match host {
        Ok(host) => Ok(Some(slipway_drivers::DockerDriver::new(host))),
        Err(e) if config.apps.values().any(|a| a.driver == DriverKind::Docker) => {
            Err(Error::Setup(e.to_string()))
        }
        Err(_) => Ok(None),
    }
}

/// The in-process router, or a client of the standalone one named by
/// `server.router_control` (which then outlives restarts of this server).
fn traffic_router(
    config: &Config,
) -> Result<(Option<slipway_router::Router>, Arc<dyn TrafficRouter>), Error> {
    match config.server.router_control {
        None => {
            let router = slipway_router::Router::new();
            Ok((Some(router.clone()), Arc::new(router)))
        }
        Some(addr) => {
            let token = std::env::var("SLIPWAY_ROUTER_TOKEN").map_err(|_| {
                Error::Setup(format!(
                    "server.router_control is {addr}: set SLIPWAY_ROUTER_TOKEN to the token that `slipway router --control {addr}` was started with"
                ))
            })?;
            let client = slipway_router::ControlClient::new(&addr.to_string(), &token)
                .map_err(|e| Error::Setup(e.to_string()))?;
            Ok((None, Arc::new(client)))
        }
    }
}
