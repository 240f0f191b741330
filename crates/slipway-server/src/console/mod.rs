//! The web console (docs/console.md): server-rendered HTML pages beside the API, signed in
//! with a session cookie, kept live by a small script over the server-sent events.
//!
//! The pages read through the engine and the stores like the API does; the decision forms
//! call the same engine commands, which check the role again whatever the page showed.

mod assets;
mod board;
mod deployment;
mod history;
mod page;
mod runs;
mod session;
mod sign_in;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Uri, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use slipway_engine::RunEvent;
use slipway_store::{HistoryStore, SessionStore};

use crate::AppState;
pub use page::ConsoleError;
use session::SignedIn;

/// What the console keeps besides what the engine knows.
#[derive(Clone)]
pub struct Console {
    pub sessions: Arc<dyn SessionStore>,
    pub history: Arc<dyn HistoryStore>,
}

/// The console's routes (docs/console.md). A new page adds its route here and its entry
/// to [`page::NAV`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(board::page))
        .route("/login", get(sign_in::form).post(sign_in::submit))
        .route("/logout", post(sign_in::sign_out))
        .route("/deployments/{id}", get(deployment::page))
        .route("/deployments/{id}/approve", post(deployment::approve))
        .route("/deployments/{id}/reject", post(deployment::reject))
        .route("/deployments/{id}/promote", post(deployment::promote))
        .route("/deployments/{id}/cancel", post(deployment::cancel))
        .route("/deployments/{id}/rollback", post(deployment::rollback))
        .route("/history", get(history::page))
        .route("/dora", get(history::dora))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::page))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/events", get(events))
        .route("/assets/{name}", get(assets::serve))
        .layer(middleware::from_fn(headers))
}

/// Adds to every console response the headers that keep it safe, and the time the
/// server took.
async fn headers(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut resp = next.run(req).await;
    let took = started.elapsed();
    page_headers(&mut resp);
    if let Ok(v) = format!("app;dur={:.3}", took.as_secs_f64() * 1e3).parse() {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

/// No framing by another site (nobody clicks an approve button through an invisible
/// frame), scripts and styles from this server only, no caching of pages that hold a
/// CSRF token.
fn page_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// `GET /events`: the status changes for a signed-in browser, as `/api/v1/events` gives
/// them to a token holder, and those of pipeline runs and their jobs as events named `run`
/// (`{"run": 12, "job": "build", "status": "success"}`, `job` null for the run itself);
/// the stream ends when the session does.
async fn events(State(state): State<AppState>, signed_in: SignedIn) -> impl IntoResponse {
    let left = signed_in
        .expires_at
        .saturating_sub(state.engine.now())
        .max(0);
    let ends = tokio::time::sleep(Duration::from_millis(left as u64));
    let runs =
        crate::api::broadcast_events(state.pipelines.subscribe(), state.engine.clone(), run_event);
    let all = futures_util::stream::select(crate::api::status_stream(state.engine), runs);
    Sse::new(all.take_until(ends)).keep_alive(KeepAlive::default())
}

/// A run's or job's status change as an SSE event; log lines are none (a page showing a
/// log that grows refreshes itself every few seconds instead of at every line).
fn run_event(e: RunEvent) -> Option<Event> {
    match e {
        RunEvent::Status { run, job, status } => Some(Event::default().event("run").data(
            serde_json::json!({ "run": run, "job": job, "status": status.as_str() }).to_string(),
        )),
        RunEvent::Log { .. } => None,
    }
}

/// The page for a path nobody serves, for a browser (the API answers JSON).
pub fn not_found(uri: &Uri) -> Response {
    let mut resp =
        ConsoleError::not_found(format!("There is no page at {}.", uri.path())).into_response();
    page_headers(&mut resp);
    resp
}
