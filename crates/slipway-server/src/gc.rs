//! `GET /api/v1/gc` lists the leftovers (instances labelled for this server that no
//! deployment owns; any role) and `POST /api/v1/gc` removes them (admin).

use axum::Json;
use axum::extract::State;
use slipway_api::{ErrorBody, GcResult, LeftoverView, Leftovers, SkippedLeftover};
use slipway_drivers::{LABEL_APP, LABEL_DEPLOYMENT, LABEL_ENVIRONMENT, LABEL_RELEASE};
use slipway_engine::Leftover;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

fn view(l: Leftover) -> LeftoverView {
    let label = |key: &str| l.labels.get(key).cloned();
    LeftoverView {
        app: label(LABEL_APP),
        environment: label(LABEL_ENVIRONMENT),
        release: label(LABEL_RELEASE),
        deployment: label(LABEL_DEPLOYMENT),
        driver: l.driver.to_owned(),
        name: l.instance_id,
        handle: l.handle,
        running: l.running,
    }
}

#[utoipa::path(get, path = "/api/v1/gc",
    responses((status = 200, description = "the instances no deployment owns", body = Leftovers), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(_): Auth,
) -> Result<Json<Leftovers>, ApiError> {
    let leftovers = state.engine.leftovers().await?;
    Ok(Json(Leftovers {
        leftovers: leftovers.into_iter().map(view).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/gc",
    responses((status = 200, description = "what was removed, and what was left alone and why", body = GcResult), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody)))]
pub async fn collect(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<GcResult>, ApiError> {
    let report = state.engine.gc(&actor).await?;
    Ok(Json(GcResult {
        removed: report.removed.into_iter().map(view).collect(),
        skipped: report
            .skipped
            .into_iter()
            .map(|(l, reason)| SkippedLeftover {
                leftover: view(l),
                reason,
            })
            .collect(),
    }))
}
