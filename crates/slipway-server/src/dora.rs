//! The DORA metrics: `GET /api/v1/metrics/dora?app=&environment=&since=30d&rollback_within=1d`
//! (any role) and the `slipway_dora_*` gauges on `/metrics` (over the last 30 days).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use slipway_api::ErrorBody;
use slipway_api::dora::{Dora, DoraQuery};
use slipway_core::Millis;
use slipway_core::dora::{Report, Window, reports};
use slipway_store::DoraFilter;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::views::{self, rfc3339};

pub(crate) const DEFAULT_SINCE: Duration = Duration::from_secs(30 * 24 * 3600);
/// A rollback by hand this soon after a success marks that deployment as a failed change.
pub(crate) const DEFAULT_ROLLBACK_WITHIN: Duration = Duration::from_secs(24 * 3600);

fn duration(
    q: &HashMap<String, String>,
    name: &str,
    default: Duration,
) -> Result<Duration, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(raw) => humantime::parse_duration(raw).map_err(|e| {
            ApiError::bad_request(
                "invalid_duration",
                format!("{name}={raw:?}: {e}; write e.g. 30d, 12h, 90m"),
            )
        }),
    }
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

pub(crate) async fn compute(
    state: &AppState,
    app: Option<String>,
    environment: Option<String>,
    since: Duration,
    rollback_within: Duration,
) -> Result<(Window, Vec<Report>), ApiError> {
    let until = state.engine.now();
    let window = Window {
        since: until.saturating_sub(millis(since)),
        until,
    };
    let records = state
        .dora
        .dora_records(&DoraFilter {
            app,
            environment,
            since: window.since,
            until: window.until,
        })
        .await?;
    Ok((window, reports(&records, window, millis(rollback_within))))
}

/// `GET /api/v1/metrics/dora`
#[utoipa::path(get, path = "/api/v1/metrics/dora", operation_id = "dora_metrics", params(DoraQuery),
    responses((status = 200, description = "the four metrics per app and environment over the window", body = Dora), (status = 400, description = "bad input, such as a duration that does not parse", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such environment", body = ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    Auth(_actor): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Dora>, ApiError> {
    let since = duration(&q, "since", DEFAULT_SINCE)?;
    let rollback_within = duration(&q, "rollback_within", DEFAULT_ROLLBACK_WITHIN)?;
    if let Some(env) = q.get("environment") {
        crate::flags::known_environment(&state, env)?;
    }
    if let Some(app) = q.get("app") {
        crate::flags::known_app(&state, app)?;
    }
    let (window, reports) = compute(
        &state,
        q.get("app").cloned(),
        q.get("environment").cloned(),
        since,
        rollback_within,
    )
    .await?;
    Ok(Json(Dora {
        since: rfc3339(window.since),
        until: rfc3339(window.until),
        rollback_within_ms: millis(rollback_within),
        reports: reports.into_iter().map(views::dora_report).collect(),
    }))
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends the DORA gauges of the last 30 days to a Prometheus text exposition.
pub async fn prometheus(state: &AppState, out: &mut String) -> Result<(), ApiError> {
    let (_, reports) = compute(state, None, None, DEFAULT_SINCE, DEFAULT_ROLLBACK_WITHIN).await?;
    let secs = |ms: Millis| ms as f64 / 1000.0;
    let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    };
    let ids = |r: &Report| {
        format!(
            "app=\"{}\",environment=\"{}\"",
            label(&r.app),
            label(&r.environment)
        )
    };
    gauge(
        "slipway_dora_deployments_per_day",
        "Successful deployments per day over the last 30 days.",
        reports
            .iter()
            .map(|r| (ids(r), r.deployment_frequency.per_day))
            .collect(),
    );
    gauge(
        "slipway_dora_lead_time_seconds",
        "Lead time for changes (commit to success) over the last 30 days.",
        reports
            .iter()
            .flat_map(|r| {
                [("0.5", r.lead_time.median_ms), ("0.9", r.lead_time.p90_ms)]
                    .into_iter()
                    .filter_map(|(q, v)| Some((format!("{},quantile=\"{q}\"", ids(r)), secs(v?))))
            })
            .collect(),
    );
    gauge(
        "slipway_dora_change_fail_rate",
        "Share of deployments over the last 30 days that failed or were rolled back.",
        reports
            .iter()
            .filter_map(|r| Some((ids(r), r.change_fail_rate.rate?)))
            .collect(),
    );
    gauge(
        "slipway_dora_recovery_time_seconds",
        "Failed-deployment recovery time (failure to next success) over the last 30 days.",
        reports
            .iter()
            .flat_map(|r| {
                [
                    ("0.5", r.recovery_time.median_ms),
                    ("0.9", r.recovery_time.p90_ms),
                ]
                .into_iter()
                .filter_map(|(q, v)| Some((format!("{},quantile=\"{q}\"", ids(r)), secs(v?))))
            })
            .collect(),
    );
    Ok(())
}
