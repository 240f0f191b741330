//! The control plane's HTTP side: the `/api/v1` API with bearer-token auth, the event
//! stream, `/health`, `/ready`, `/metrics`, the OpenAPI document and the web console. `start` wires a whole
//! server (store, driver, router, engine, API) from a `Config`.
#![forbid(unsafe_code)]

mod api;
mod auth;
mod compose;
mod console;
mod dora;
mod error;
mod flags;
mod gc;
mod notifications;
mod ofrep;
mod pipelines;
mod preflight;
mod views;
mod webhook;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use slipway_config::Config;
use slipway_core::{Masker, is_secret_name};
use slipway_engine::Engine;
use tokio::sync::oneshot;

pub use error::{ApiError, Error};
pub use preflight::preflight;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub flags: Arc<flags::Flags>,
    pub dora: Arc<dyn slipway_store::DoraStore>,
    pub notifications: Arc<dyn slipway_store::NotificationStore>,
    pub console: console::Console,
    pub pipelines: slipway_engine::Pipelines,
}

/// A running server; dropping it does not stop it, `shutdown` does.
pub struct ServerHandle {
    pub api_addr: SocketAddr,
    /// The admin token when this start created it (first start on an empty store).
    pub admin_token: Option<String>,
    pub engine: Engine,
    /// The in-process router, when the server runs its own.
    router: Option<slipway_router::Router>,
    stop: Option<oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// Stops the API, the engine loop and the router listeners. App instances keep
    /// running: the next start re-adopts them.
    pub async fn shutdown(mut self) {
        // The engine first: that also ends the event streams, which the HTTP server's
        // graceful shutdown would otherwise wait for forever.
        self.engine.shutdown().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.serving).await;
        if let Some(router) = &self.router {
            router.shutdown().await;
        }
    }
}

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/v1/deployments",
            post(api::create_deployment).get(api::list_deployments),
        )
        .route("/api/v1/deployments/{id}", get(api::get_deployment))
        .route("/api/v1/deployments/{id}/logs", get(api::deployment_logs))
        .route("/api/v1/deployments/{id}/approve", post(api::approve))
        .route("/api/v1/deployments/{id}/reject", post(api::reject))
        .route("/api/v1/deployments/{id}/promote", post(api::promote))
        .route("/api/v1/deployments/{id}/cancel", post(api::cancel))
        .route(
            "/api/v1/apps/{app}/environments/{env}/rollback",
            post(api::rollback),
        )
        .route(
            "/api/v1/apps/{app}/environments/{env}",
            get(api::env_status),
        )
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/users", post(api::create_user))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/flags", get(flags::list))
        .route("/api/v1/flags/{env}/{key}", get(flags::get).put(flags::put))
        .route("/api/v1/flags/{env}/{key}/rollout", post(flags::rollout))
        .route("/api/v1/flags/{env}/{key}/kill", post(flags::kill))
        .route("/api/v1/metrics/dora", get(dora::report))
        .route("/api/v1/notifications", get(notifications::log))
        .route("/api/v1/gc", get(gc::list).post(gc::collect))
        .route(
            "/api/v1/pipelines/{name}/runs",
            post(pipelines::dispatch).get(pipelines::pipeline_runs),
        )
        .route("/api/v1/runs", get(pipelines::runs))
        .route("/api/v1/runs/{id}", get(pipelines::get_run))
        .route("/api/v1/runs/{id}/logs", get(pipelines::logs))
        .route("/api/v1/runs/{id}/cancel", post(pipelines::cancel))
        .route("/api/v1/triggers/push", post(pipelines::push))
        .route("/ofrep/v1/evaluate/flags", post(ofrep::evaluate_all))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::evaluate_one))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(console::routes())
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        .with_state(state)
}

/// Opens the store, makes the admin user on a first start, starts the engine (which
/// binds the environments' routers) and serves the API.
pub async fn start(config: Config) -> Result<ServerHandle, Error> {
    if let Some(db) = &config.server.database {
        return Err(Error::Setup(format!(
            "server.database `{db}`: PostgreSQL is not supported yet; remove the key to use SQLite in data_dir"
        )));
    }
    // Bound first: a port in use fails the start before anything is written.
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Listen {
            addr: listen,
            source,
        })?;
    let api_addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: listen,
        source,
    })?;
    let data_dir = config.server.data_dir.clone();
    create_private_dir(&data_dir).map_err(|source| Error::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    // Absolute, because it also names this server's instances to the driver.
    let data_dir = std::fs::canonicalize(&data_dir).map_err(|source| Error::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let (mut parts, router, sqlite) = compose::real_parts(config, data_dir.clone()).await?;
    let flags = Arc::new(flags::Flags::load(sqlite.clone()).await?);
    let admin_token = auth::bootstrap(parts.store.as_ref(), &data_dir, parts.clock.now()).await?;
    // `vars()` would panic on a variable that is not UTF-8; such a one is no token we print.
    let server_env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    parts.secrets = known_secrets(&parts.config, server_env, admin_token.as_deref());
    let engine = Engine::start(parts).await?;
    let pipelines = slipway_engine::Pipelines::start(&engine, sqlite.clone()).await?;
    let app = routes(AppState {
        engine: engine.clone(),
        flags,
        dora: sqlite.clone(),
        notifications: sqlite.clone(),
        console: console::Console {
            sessions: sqlite.clone(),
            history: sqlite,
        },
        pipelines,
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "API server stopped");
        }
    });
    tracing::info!(%api_addr, "slipway API listening");
    Ok(ServerHandle {
        api_addr,
        admin_token,
        engine,
        router,
        stop: Some(stop),
        serving,
    })
}

/// What the deployment logs mask from the start: the values of the server's own
/// variables named like a secret (`SLIPWAY_ROUTER_TOKEN`, `SLIPWAY_TOKEN`, cloud keys) or
/// holding a webhook's signing key, of the environments' variables named like a secret,
/// and the admin token this start made. Tokens
/// made later are added as they are made; older ones are caught by their `slw_` shape.
fn known_secrets(
    config: &Config,
    server_env: impl Iterator<Item = (String, String)>,
    admin_token: Option<&str>,
) -> Masker {
    let configured = config
        .environments
        .values()
        .flat_map(|env| env.variables.iter())
        .map(|(k, v)| (k.clone(), v.clone()));
    let keys = webhook::key_variables(config);
    let mut secrets = Masker::new(
        server_env
            .filter(|(name, _)| is_secret_name(name) || keys.contains(&name.as_str()))
            .chain(configured.filter(|(name, _)| is_secret_name(name)))
            .map(|(_, value)| value),
    );
    if let Some(token) = admin_token {
        secrets.add(token);
    }
    secrets
}

/// Creates `dir` (and its parents) readable by this user only, when it does not exist: it
/// holds the database and the admin token. An existing directory keeps its mode.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "it exists and is not a directory",
        ));
    }
    Ok(())
}

/// `slipway server`: runs until SIGINT or SIGTERM.
pub async fn run(config_path: &Path) -> Result<(), Error> {
    let config = slipway_config::load(config_path)?;
    preflight(&config, &config_path.display().to_string())?;
    let data_dir = config.server.data_dir.clone();
    let handle = start(config).await?;
    eprintln!("slipway server: API on http://{}", handle.api_addr);
    for (env, _) in handle.engine.config().environments.iter() {
        if let Some(addr) = handle.engine.listener(env).await {
            eprintln!("  environment {env}: router on http://{addr}");
        }
    }
    if handle.admin_token.is_some() {
        eprintln!(
            "  first start: admin token written to {}",
            data_dir.join("admin.token").display()
        );
    }
    wait_for_signal().await;
    eprintln!("slipway server: stopping (app instances keep running)");
    handle.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(api::served_document(state.engine.config()))
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/health+json")],
        r#"{"status":"pass"}"#,
    )
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (code, status, store) = match state.engine.store().ping().await {
        Ok(()) => (StatusCode::OK, "pass", "pass".to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, "fail", e.to_string()),
    };
    let body = serde_json::json!({
        "status": status,
        "checks": { "store": [{ "status": if code == StatusCode::OK { "pass" } else { "fail" }, "output": store }] },
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/health+json")],
        body.to_string(),
    )
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::new();
    let counts = state.engine.store().count_by_status().await?;
    out.push_str(
        "# HELP slipway_deployments Deployments by status.\n# TYPE slipway_deployments gauge\n",
    );
    for status in slipway_core::Status::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        let _ = writeln!(out, "slipway_deployments{{status=\"{status}\"}} {n}");
    }
    out.push_str(&state.engine.router_metrics().await?);
    dora::prometheus(&state, &mut out).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

/// JSON for the API and for clients that do not ask for HTML; a page for a browser.
async fn not_found(
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let api = ["/api/", "/ofrep/"]
        .iter()
        .any(|p| uri.path().starts_with(p));
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if browser && !api {
        return console::not_found(&uri);
    }
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_are_the_secret_named_values_and_the_admin_token() {
        let yaml = "version: 1\nenvironments:\n  staging:\n    listen: 127.0.0.1:0\n    variables: { DB_PASSWORD: hunter2hunter2, LOG_LEVEL: verbose, HOOK_SIGNING: shown }\nnotifications:\n  - { url: 'https://hooks.example.com/x', events: ['*'], secret: { env: HOOK_SIGNING } }\n";
        let config = slipway_config::parse(yaml, "slipway.yaml", Path::new("/srv")).unwrap();
        let server_env = [
            ("SLIPWAY_ROUTER_TOKEN", "router-secret"),
            ("HOME", "/home/slipway"),
            ("HOOK_SIGNING", "webhook-signing-key"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let secrets = known_secrets(&config, server_env.into_iter(), Some("admin-token"));
        assert_eq!(
            secrets.mask(
                "router-secret hunter2hunter2 admin-token webhook-signing-key verbose /home/slipway shown"
            ),
            "*** *** *** *** verbose /home/slipway shown"
        );
    }
}
