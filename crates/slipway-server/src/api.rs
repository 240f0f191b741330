//! The handlers of `/api/v1` (docs/api.md). Each one authenticates, calls the engine, and
//! renders a view; every failure is an `ApiError`.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::de::DeserializeOwned;
use slipway_api::{
    CreateDeployment, CreateUser, CreatedUser, Decision, DeploymentList, DeploymentQuery,
    EnvStatus as EnvStatusView, ErrorBody, LogLines, LogQuery, MAX_REF_CHARS, RollbackRequest,
    StatusEvent, StatusList, StatusQuery,
};
use slipway_config::Role;
use slipway_core::{Decision as CoreDecision, Deployment, DeploymentId, Kind, Status};
use slipway_engine::DeployRequest;
use slipway_store::DeploymentFilter;
use tokio::sync::broadcast;

use crate::AppState;
use crate::auth::{Auth, hash_token, new_token};
use crate::error::ApiError;
use crate::views;

type DeploymentView = slipway_api::Deployment;

/// JSON body extractor whose rejections use the API's error format.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return body_too_large();
    }
    let code = match rejection {
        JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
        JsonRejection::JsonSyntaxError(_) => "invalid_json",
        _ => "invalid_body",
    };
    ApiError::bad_request(code, rejection.body_text())
}

/// The largest request body read. Every body of this API is a few short strings; the
/// JSON extractor's limit is set to this too (see `routes`).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the request body is larger than {} KiB",
            MAX_BODY_BYTES / 1024
        ),
    )
}

/// A decision's body is optional: no body at all (or `null`) means no comment.
pub(crate) async fn optional_body<T: DeserializeOwned + Default>(
    req: Request,
) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
            if too_large {
                body_too_large()
            } else {
                ApiError::bad_request("invalid_body", e.to_string())
            }
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    // JSON `null` is no body too.
    serde_json::from_slice::<Option<T>>(&bytes)
        .map(Option::unwrap_or_default)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("invalid body: {e}")))
}

/// A query's parameters by name; a name given twice is refused rather than one of its
/// values silently dropped.
pub(crate) fn query_map(pairs: Vec<(String, String)>) -> Result<HashMap<String, String>, ApiError> {
    let mut map = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if map.contains_key(&name) {
            return Err(ApiError::bad_request(
                "duplicate_parameter",
                format!("query parameter `{name}` is given more than once"),
            ));
        }
        map.insert(name, value);
    }
    Ok(map)
}

/// The `limit` parameter of a listing, from 1 to 1000 when given.
pub(crate) fn limit(q: &HashMap<String, String>) -> Result<Option<u32>, ApiError> {
    q.get("limit")
        .map(|l| match l.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be a number from 1 to 1000, got `{l}`"),
            )),
        })
        .transpose()
}

/// 400 for a `status` parameter that names no status, listing the ones there are.
pub(crate) fn invalid_status<'a>(given: &str, known: impl Iterator<Item = &'a str>) -> ApiError {
    let known: Vec<&str> = known.collect();
    ApiError::bad_request(
        "invalid_status",
        format!("unknown status `{given}`; one of {}", known.join(", ")),
    )
}

fn parse_id(raw: &str) -> Result<DeploymentId, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("deployment id must be a number, got `{raw}`"),
        )
    })
}

/// Milliseconds since the epoch of an RFC 3339 time: `Z` or a numeric offset
/// (`+02:00`), `T` or `t`, with or without fractions of a second.
fn rfc3339_millis(s: &str) -> Option<i64> {
    let s = s.to_ascii_uppercase();
    let (utc, offset_minutes) = match s.len().checked_sub(6).map(|i| s.split_at(i)) {
        Some((time, offset)) if offset.starts_with(['+', '-']) && offset.as_bytes()[3] == b':' => {
            let hours: i64 = offset.get(1..3)?.parse().ok()?;
            let minutes: i64 = offset.get(4..6)?.parse().ok()?;
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            (format!("{time}Z"), sign * (hours * 60 + minutes))
        }
        _ => (s, 0),
    };
    let t = humantime::parse_rfc3339_weak(&utc).ok()?;
    let ms = i64::try_from(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()?;
    Some(ms - offset_minutes * 60_000)
}

/// A branch or tag name: printable, no spaces or control characters, at most
/// [`MAX_REF_CHARS`] characters.
pub(crate) fn check_ref(git_ref: &str) -> Result<(), ApiError> {
    let valid = !git_ref.is_empty()
        && git_ref.chars().count() <= MAX_REF_CHARS
        && git_ref
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control());
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_ref",
            format!(
                "ref must be 1 to {MAX_REF_CHARS} characters without spaces or control characters, got {}",
                git_ref.chars().count()
            ),
        ))
    }
}

/// A commit is a hex SHA: abbreviated (7 or more) up to a full SHA-256 (64).
pub(crate) fn check_commit(commit: &str) -> Result<(), ApiError> {
    let valid = (7..=64).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit());
    if valid {
        Ok(())
    } else {
        let shown: String = commit.chars().take(80).collect();
        Err(ApiError::bad_request(
            "invalid_commit",
            format!("commit must be a hex SHA of 7 to 64 digits, got `{shown}`"),
        ))
    }
}

async fn view(state: &AppState, d: Deployment) -> DeploymentView {
    // Only the rollout under way and the current release have a share of the live split.
    let traffic = match d.status {
        Status::InProgress | Status::Success => state.engine.traffic(&d.app, &d.environment).await,
        _ => Vec::new(),
    };
    let live = state.engine.live(d.id);
    let holds = state.engine.waiting_on(&d).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, id = d.id, "cannot tell what holds a deployment");
        None
    });
    let id = d.id;
    let mut view = views::deployment(d, traffic, live, holds);
    view.migration = match state.engine.migration(id).await {
        Ok(run) => run.map(views::migration),
        Err(e) => {
            tracing::warn!(error = %e, id, "cannot read a deployment's migration");
            None
        }
    };
    view
}

/// An environment's status, with what holds each of its waiting deployments.
async fn env_view(state: &AppState, s: slipway_engine::EnvStatus) -> EnvStatusView {
    let mut holds = Vec::with_capacity(s.waiting.len());
    for d in &s.waiting {
        holds.push(state.engine.waiting_on(d).await.unwrap_or(None));
    }
    views::env_status(s, holds, state.engine.now())
}

#[utoipa::path(post, path = "/api/v1/deployments", request_body = CreateDeployment,
    responses((status = 201, description = "the deployment", body = DeploymentView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody), (status = 422, description = "a gate or rule refused it", body = ErrorBody)))]
pub async fn create_deployment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateDeployment>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let committed_at = body
        .committed_at
        .as_deref()
        .map(|s| {
            rfc3339_millis(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_committed_at",
                    format!("committed_at must be RFC 3339 like 2026-11-24T10:00:00Z, got `{s}`"),
                )
            })
        })
        .transpose()?;
    if let Some(git_ref) = &body.git_ref {
        check_ref(git_ref)?;
    }
    if let Some(commit) = &body.commit {
        check_commit(commit)?;
    }
    let d = state
        .engine
        .deploy(
            DeployRequest {
                app: body.app,
                environment: body.environment,
                version: body.version,
                git_ref: body.git_ref,
                commit: body.commit,
                committed_at,
                force: body.force,
                reason: body.reason,
            },
            &actor,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, d).await)))
}

#[utoipa::path(get, path = "/api/v1/deployments", params(DeploymentQuery),
    responses((status = 200, description = "newest first", body = DeploymentList), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody)))]
pub async fn list_deployments(
    State(state): State<AppState>,
    Auth(_): Auth,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<DeploymentList>, ApiError> {
    let q = query_map(q)?;
    let status = q
        .get("status")
        .map(|s| {
            Status::parse(s)
                .ok_or_else(|| invalid_status(s, Status::ALL.iter().map(|s| s.as_str())))
        })
        .transpose()?;
    let kind = q
        .get("kind")
        .map(|k| {
            Kind::parse(k).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_kind",
                    format!("unknown kind `{k}`; deploy or rollback"),
                )
            })
        })
        .transpose()?;
    let limit = limit(&q)?;
    let filter = DeploymentFilter {
        app: q.get("app").cloned(),
        environment: q.get("environment").cloned(),
        status,
        kind,
        limit,
    };
    let mut deployments = Vec::new();
    for d in state.engine.deployments(&filter).await? {
        deployments.push(view(&state, d).await);
    }
    Ok(Json(DeploymentList { deployments }))
}

#[utoipa::path(get, path = "/api/v1/deployments/{id}", params(("id" = i64, Path, minimum = 1, description = "a deployment id")),
    responses((status = 200, description = "the deployment", body = DeploymentView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such deployment, app or environment", body = ErrorBody)))]
pub async fn get_deployment(
    State(state): State<AppState>,
    Auth(_): Auth,
    Path(id): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    let d = state.engine.deployment(parse_id(&id)?).await?;
    Ok(Json(view(&state, d).await))
}

#[utoipa::path(get, path = "/api/v1/deployments/{id}/logs", params(("id" = i64, Path, minimum = 1, description = "a deployment id"), LogQuery),
    responses((status = 200, description = "oldest first", body = LogLines), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such deployment, app or environment", body = ErrorBody)))]
pub async fn deployment_logs(
    State(state): State<AppState>,
    Auth(_): Auth,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<LogLines>, ApiError> {
    let (after, limit) = log_window(&query_map(q)?)?;
    let lines = state.engine.logs(parse_id(&id)?, after, limit).await?;
    Ok(Json(LogLines {
        lines: lines.into_iter().map(views::log_line).collect(),
    }))
}

/// `after` (default 0) and `limit` (1 to 10000, default 1000) of a log query.
pub(crate) fn log_window(q: &HashMap<String, String>) -> Result<(i64, u32), ApiError> {
    let after = q
        .get("after")
        .map(|a| match a.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            _ => Err(ApiError::bad_request(
                "invalid_after",
                format!("after must be a sequence number (0 or more), got `{a}`"),
            )),
        })
        .transpose()?
        .unwrap_or(0);
    let limit = q
        .get("limit")
        .map(|l| match l.parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be a number from 1 to 10000, got `{l}`"),
            )),
        })
        .transpose()?
        .unwrap_or(1000);
    Ok((after, limit))
}

async fn decide(
    state: AppState,
    actor: slipway_engine::Actor,
    id: &str,
    decision: CoreDecision,
    req: Request,
) -> Result<Json<DeploymentView>, ApiError> {
    let body: Decision = optional_body(req).await?;
    let d = state
        .engine
        .decide(parse_id(id)?, &actor, decision, body.comment)
        .await?;
    Ok(Json(view(&state, d).await))
}

#[utoipa::path(post, path = "/api/v1/deployments/{id}/approve", params(("id" = i64, Path, minimum = 1, description = "a deployment id")), request_body = Option<Decision>,
    responses((status = 200, description = "the deployment", body = DeploymentView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such deployment, app or environment", body = ErrorBody), (status = 409, description = "the deployment's state does not allow it", body = ErrorBody), (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<DeploymentView>, ApiError> {
    decide(state, actor, &id, CoreDecision::Approve, req).await
}

#[utoipa::path(post, path = "/api/v1/deployments/{id}/reject", params(("id" = i64, Path, minimum = 1, description = "a deployment id")), request_body = Option<Decision>,
    responses((status = 200, description = "the deployment", body = DeploymentView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such deployment, app or environment", body = ErrorBody), (status = 409, description = "the deployment's state does not allow it", body = ErrorBody), (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody)))]
pub async fn reject(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<DeploymentView>, ApiError> {
    decide(state, actor, &id, CoreDecision::Reject, req).await
}

#[utoipa::path(post, path = "/api/v1/deployments/{id}/promote", params(("id" = i64, Path, minimum = 1, description = "a deployment id")),
    responses((status = 200, description = "the deployment", body = DeploymentView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such deployment, app or environment", body = ErrorBody), (status = 409, description = "the deployment's state does not allow it", body = ErrorBody)))]
pub async fn promote(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    let d = state.engine.promote(parse_id(&id)?, &actor).await?;
    Ok(Json(view(&state, d).await))
}

#[utoipa::path(post, path = "/api/v1/deployments/{id}/cancel", params(("id" = i64, Path, minimum = 1, description = "a deployment id")),
    responses((status = 200, description = "the deployment", body = DeploymentView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such deployment, app or environment", body = ErrorBody), (status = 409, description = "the deployment's state does not allow it", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    let d = state.engine.cancel(parse_id(&id)?, &actor).await?;
    Ok(Json(view(&state, d).await))
}

#[utoipa::path(post, path = "/api/v1/apps/{app}/environments/{env}/rollback",
    params(("app" = String, Path), ("env" = String, Path)), request_body = Option<RollbackRequest>,
    responses((status = 201, description = "the rollback deployment", body = DeploymentView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such deployment, app or environment", body = ErrorBody), (status = 409, description = "the deployment's state does not allow it", body = ErrorBody), (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody), (status = 422, description = "a gate or rule refused it", body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((app, env)): Path<(String, String)>,
    req: Request,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let body: RollbackRequest = optional_body(req).await?;
    let force_reason = match (body.force, body.reason.as_deref()) {
        (true, reason) => Some(reason.unwrap_or("")),
        (false, None) => None,
        (false, Some(_)) => {
            return Err(ApiError::bad_request(
                "reason_without_force",
                "`reason` goes with `force: true`",
            ));
        }
    };
    let d = state
        .engine
        .rollback_with(&app, &env, body.to_version.as_deref(), force_reason, &actor)
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, d).await)))
}

#[utoipa::path(get, path = "/api/v1/apps/{app}/environments/{env}",
    params(("app" = String, Path), ("env" = String, Path)),
    responses((status = 200, description = "what runs there", body = EnvStatusView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such deployment, app or environment", body = ErrorBody)))]
pub async fn env_status(
    State(state): State<AppState>,
    Auth(_): Auth,
    Path((app, env)): Path<(String, String)>,
) -> Result<Json<EnvStatusView>, ApiError> {
    let s = state.engine.env_status(&app, &env).await?;
    Ok(Json(env_view(&state, s).await))
}

#[utoipa::path(get, path = "/api/v1/status", params(StatusQuery),
    responses((status = 200, description = "every app in every environment", body = StatusList), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such deployment, app or environment", body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Auth(_): Auth,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<StatusList>, ApiError> {
    let q = query_map(q)?;
    let all = state
        .engine
        .status(
            q.get("app").map(String::as_str),
            q.get("environment").map(String::as_str),
        )
        .await?;
    let mut environments = Vec::with_capacity(all.len());
    for s in all {
        environments.push(env_view(&state, s).await);
    }
    Ok(Json(StatusList { environments }))
}

#[utoipa::path(post, path = "/api/v1/users", request_body = CreateUser,
    responses((status = 201, description = "the user and its new token", body = CreatedUser), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody), (status = 422, description = "a gate or rule refused it", body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    if actor.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only an admin may add users",
        ));
    }
    let role = views::role_from(body.role);
    let valid_name = !body.name.is_empty()
        && body.name.len() <= 64
        && body
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid_name {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!(
                "user name `{}` must be 1 to 64 of a-z, 0-9, '-', '_'",
                body.name
            ),
        ));
    }
    if let Some(configured) = state.engine.config().users.get(&body.name)
        && configured.role != role
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "role_mismatch",
            format!(
                "{} is a {} in the configuration; use --role {}",
                body.name,
                configured.role.as_str(),
                configured.role.as_str()
            ),
        ));
    }
    let token = new_token();
    let now = state.engine.now();
    let user = match state
        .engine
        .store()
        .set_user_token(&body.name, role, &hash_token(&token), now)
        .await
    {
        Ok(user) => user,
        Err(e @ slipway_store::Error::LastAdmin { .. }) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "last_admin",
                format!("{e}: make another user an admin first; nothing was changed"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    state.engine.add_secret(&token);
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            // An existing user keeps its creation time: its old token stopped working.
            replaced_token: user.created_at < now,
            name: user.name,
            role: views::role(user.role),
            token,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/events",
    responses((status = 200, description = "server-sent events named `status`, each one's data a StatusEvent", content_type = "text/event-stream", body = String), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Auth(_): Auth,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    Sse::new(status_stream(state.engine)).keep_alive(KeepAlive::default())
}

/// Every status change as an event named `status`, until the server stops: what
/// `/api/v1/events` sends, and the console's `/events` to signed-in browsers.
pub(crate) fn status_stream(
    engine: slipway_engine::Engine,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let rx = engine.subscribe();
    // A first comment flushes the response at once, so a client knows it is subscribed
    // before anything happens.
    let hello = futures_util::stream::once(async { Ok(Event::default().comment("connected")) });
    let events = broadcast_events(rx, engine, |e| {
        let data = serde_json::to_string(&views::event(e)).unwrap_or_default();
        Some(Event::default().event("status").data(data))
    });
    futures_util::StreamExt::chain(hello, events)
}

/// What `rx` receives, as the events `to_event` makes of it (none when it gives `None`),
/// until the server stops. A slow reader that missed some goes on with the next ones.
pub(crate) fn broadcast_events<T: Clone + Send + 'static>(
    rx: broadcast::Receiver<T>,
    engine: slipway_engine::Engine,
    to_event: fn(T) -> Option<Event>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold((rx, engine), move |(mut rx, engine)| async move {
        loop {
            let received = tokio::select! {
                received = rx.recv() => received,
                // The server is stopping: end the stream so it can.
                () = engine.stopping() => return None,
            };
            match received {
                Ok(e) => {
                    if let Some(event) = to_event(e) {
                        return Some((Ok(event), (rx, engine)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_at_takes_any_rfc_3339_offset() {
        let utc = rfc3339_millis("2026-11-24T10:00:00Z").unwrap();
        assert_eq!(rfc3339_millis("2026-11-24t10:00:00z"), Some(utc));
        assert_eq!(rfc3339_millis("2026-11-24T12:00:00+02:00"), Some(utc));
        assert_eq!(rfc3339_millis("2026-11-24T09:30:00-00:30"), Some(utc));
        assert_eq!(rfc3339_millis("2026-11-24T10:00:00.250Z"), Some(utc + 250));
        assert_eq!(rfc3339_millis("yesterday"), None);
        assert_eq!(rfc3339_millis("1969-12-31T23:59:59Z"), None);
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "slipway",
        description = "The slipway continuous-delivery API (docs/api.md). Every operation takes `Authorization: Bearer <token>`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    paths(
        create_deployment,
        list_deployments,
        get_deployment,
        deployment_logs,
        approve,
        reject,
        promote,
        cancel,
        rollback,
        env_status,
        status,
        create_user,
        events,
        crate::notifications::log,
        crate::gc::list,
        crate::gc::collect,
        crate::flags::list,
        crate::flags::get,
        crate::flags::put,
        crate::flags::rollout,
        crate::flags::kill,
        crate::dora::report
    ),
    components(schemas(
        ErrorBody,
        DeploymentView,
        DeploymentList,
        CreateDeployment,
        Decision,
        RollbackRequest,
        CreateUser,
        CreatedUser,
        LogLines,
        EnvStatusView,
        StatusList,
        StatusEvent,
        slipway_api::NotificationAttempts,
        slipway_api::WebhookBody,
        slipway_api::Leftovers,
        slipway_api::GcResult,
        slipway_api::flags::FlagList,
        slipway_api::flags::FlagView,
        slipway_api::flags::ChangeView,
        slipway_api::flags::Flag,
        slipway_api::flags::RolloutBody,
        slipway_api::flags::KillBody,
        slipway_api::dora::Dora
    ))
)]
pub struct ApiDoc;

/// The document this server serves: [`ApiDoc`] with the apps and environments of its
/// configuration as the only values of the parameters and fields that name them, so a
/// client (or a schema-driven fuzzer) knows which names exist.
pub fn served_document(config: &slipway_config::Config) -> serde_json::Value {
    use utoipa::OpenApi as _;
    // No names configured: any name is a 404, and an empty `enum` is a schema nothing meets.
    let names = |keys: Vec<&String>| {
        if keys.is_empty() {
            serde_json::json!({ "type": "string" })
        } else {
            serde_json::json!({ "type": "string", "enum": keys })
        }
    };
    let apps = names(config.apps.keys().collect());
    let envs = names(config.environments.keys().collect());
    let mut api = ApiDoc::openapi();
    api.merge(crate::pipelines::PipelinesDoc::openapi());
    let pipelines = names(config.pipelines.keys().collect());
    let mut doc = serde_json::to_value(api).unwrap_or_default();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for operation in paths.values_mut().filter_map(|p| p.as_object_mut()) {
            for op in operation.values_mut() {
                let params = op.get_mut("parameters").and_then(|p| p.as_array_mut());
                for param in params.into_iter().flatten() {
                    match param["name"].as_str() {
                        Some("app") => param["schema"] = apps.clone(),
                        Some("env" | "environment") => param["schema"] = envs.clone(),
                        Some("name" | "pipeline") => param["schema"] = pipelines.clone(),
                        _ => {}
                    }
                }
            }
        }
    }
    let create = &mut doc["components"]["schemas"]["CreateDeployment"];
    if create["properties"].is_object() {
        create["properties"]["app"] = apps;
        create["properties"]["environment"] = envs;
    }
    // What the derive cannot state: `force` needs a `reason` that says something, and a
    // `reason` goes only with `force`.
    for forced in ["CreateDeployment", "RollbackRequest"] {
        let schema = &mut doc["components"]["schemas"][forced];
        if schema["properties"].is_object() {
            schema["if"] = serde_json::json!({
                "properties": { "force": { "const": true } },
                "required": ["force"]
            });
            schema["then"] = serde_json::json!({
                "properties": { "reason": { "type": "string", "pattern": "\\S" } },
                "required": ["reason"]
            });
            schema["else"] = serde_json::json!({ "not": { "required": ["reason"] } });
        }
    }
    flag_definition(&mut doc);
    doc
}

/// What `PUT /api/v1/flags/{env}/{key}` takes: a `Flag` without its `key`, which comes
/// from the path (a body's own must match it, which a schema cannot say). A variant's
/// value is any JSON but null, in what is taken and what is served.
fn flag_definition(doc: &mut serde_json::Value) {
    let schemas = &mut doc["components"]["schemas"];
    let mut definition = schemas["Flag"].clone();
    if let Some(properties) = definition["properties"].as_object_mut() {
        properties.remove("key");
    }
    if let Some(required) = definition["required"].as_array_mut() {
        required.retain(|name| name != "key");
    }
    schemas["FlagDefinition"] = definition;
    let value = &mut schemas["Variant"]["properties"]["value"];
    if value.is_object() {
        value["not"] = serde_json::json!({ "type": "null" });
    }
    let body = &mut doc["paths"]["/api/v1/flags/{env}/{key}"]["put"]["requestBody"]["content"]["application/json"]
        ["schema"];
    if body.is_object() {
        *body = serde_json::json!({ "$ref": "#/components/schemas/FlagDefinition" });
    }
}

/// Declares the `bearer` scheme the document's `security` names: an API token.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "an API token (`slipway user add`, or <data_dir>/admin.token)",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
