//! `GET /api/v1/metrics/dora` (docs/api.md#dora-metrics): the four DORA metrics per app
//! and environment. These mirror `slipway_core::dora`'s report field for field, in the
//! same order.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The 2024 DORA performance bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Elite,
    High,
    Medium,
    Low,
}

/// Why a deployment counts as a failed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureCause {
    /// It ended `failure` or `error` (automatic rollbacks included).
    Failure,
    /// It was rolled back while in progress.
    Aborted,
    /// It was rolled back by hand within `rollback_within` of its success.
    ManualRollback,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = DoraView)]
pub struct Dora {
    #[schema(format = DateTime)]
    pub since: String,
    #[schema(format = DateTime)]
    pub until: String,
    #[schema(format = Int64, minimum = 0)]
    pub rollback_within_ms: i64,
    /// One per app and environment with deployments in the window.
    pub reports: Vec<Report>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub app: String,
    pub environment: String,
    pub deployment_frequency: Frequency,
    pub lead_time: LeadTime,
    pub change_fail_rate: FailRate,
    pub recovery_time: Recovery,
}

/// `deploy` deployments that reached `success` in the window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Frequency {
    pub deployments: u64,
    pub per_day: f64,
    pub band: Band,
    pub deployment_ids: Vec<i64>,
}

/// From a release's commit time to its `success`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeadTime {
    #[schema(format = Int64)]
    pub median_ms: Option<i64>,
    #[schema(format = Int64)]
    pub p90_ms: Option<i64>,
    /// Of the median; none without a deployment that names its commit time.
    pub band: Option<Band>,
    pub deployment_ids: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FailRate {
    pub failed: u64,
    pub total: u64,
    /// `failed / total`; none without deployments.
    pub rate: Option<f64>,
    pub band: Option<Band>,
    pub failures: Vec<Failure>,
    pub deployment_ids: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Failure {
    #[schema(format = Int64, minimum = 1)]
    pub deployment_id: i64,
    pub cause: FailureCause,
    /// Milliseconds since the epoch.
    #[schema(format = Int64)]
    pub at: i64,
    /// The deployment whose success ended it, if one has yet.
    #[schema(format = Int64, minimum = 1)]
    pub recovered_by: Option<i64>,
    #[schema(format = Int64)]
    pub recovery_ms: Option<i64>,
}

/// From a failure to the next success in that app and environment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Recovery {
    #[schema(format = Int64)]
    pub median_ms: Option<i64>,
    #[schema(format = Int64)]
    pub p90_ms: Option<i64>,
    pub band: Option<Band>,
    /// The failures recovered from (see `change_fail_rate.failures` for each one's figures).
    pub deployment_ids: Vec<i64>,
}

/// The query of `GET /api/v1/metrics/dora`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DoraQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// How far back the window reaches, e.g. `30d`, `12h` (default 30d). The server
    /// reads more forms (`1h 30m`); the schema names the simple one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = r"^(0|[0-9]{1,6}(ms|s|m|h|d))$")]
    pub since: Option<String>,
    /// A rollback by hand this soon after a success marks it a failed change (default 1d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = r"^(0|[0-9]{1,6}(ms|s|m|h|d))$")]
    pub rollback_within: Option<String>,
}
