//! `GET /api/v1/notifications?limit=`: every attempt to deliver a notification to a
//! webhook target, newest first (docs/api.md). Deployers and the roles above: the log
//! names the targets and what their receivers answered.

use axum::Json;
use axum::extract::{Query, State};
use slipway_api::{ErrorBody, NotificationAttempts, NotificationQuery};
use slipway_store::DEFAULT_LIST_LIMIT;

use crate::AppState;
use crate::api::{limit, query_map};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::flags::require_deployer;
use crate::views;

#[utoipa::path(get, path = "/api/v1/notifications", params(NotificationQuery),
    responses((status = 200, description = "delivery attempts, newest first", body = NotificationAttempts), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody)))]
pub async fn log(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<NotificationAttempts>, ApiError> {
    require_deployer(&actor, "reading the notification log")?;
    let q = query_map(q)?;
    let limit = limit(&q)?.unwrap_or(DEFAULT_LIST_LIMIT);
    let attempts = state.notifications.notification_attempts(limit).await?;
    Ok(Json(NotificationAttempts {
        attempts: attempts
            .into_iter()
            .map(views::notification_attempt)
            .collect(),
    }))
}
