//! The wire types of pipeline runs (docs/api.md#pipelines).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The status of a run or of one of its jobs (docs/concepts.md#pipelines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Waiting,
    InProgress,
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Waiting => "waiting",
            RunStatus::InProgress => "in_progress",
            RunStatus::Success => "success",
            RunStatus::Failure => "failure",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Skipped => "skipped",
        }
    }

    /// Nothing more happens to a run or job in this status.
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            RunStatus::Queued | RunStatus::Waiting | RunStatus::InProgress
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    Push,
    Dispatch,
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Steps,
    Deploy,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Run {
    #[schema(format = Int64, minimum = 1)]
    pub id: i64,
    pub pipeline: String,
    pub status: RunStatus,
    pub trigger: RunTrigger,
    /// The commit the run builds; null for a pipeline without a repository.
    pub commit: Option<String>,
    /// Its branch or tag.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    #[schema(format = DateTime)]
    pub committed_at: Option<String>,
    pub inputs: BTreeMap<String, String>,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// The reason of its latest status change.
    pub reason: String,
    /// In the pipeline's order.
    pub jobs: Vec<RunJob>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunJob {
    pub name: String,
    pub status: RunStatus,
    pub kind: JobKind,
    /// The jobs it waits for.
    pub needs: Vec<String>,
    /// How many times it was started (retries included).
    #[schema(minimum = 0)]
    pub attempt: u32,
    /// When its latest attempt started.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// What its steps wrote to `$SLIPWAY_OUTPUT` (a deploy job: `deployment_id`,
    /// `version`).
    pub outputs: BTreeMap<String, String>,
    /// The deployment a deploy job created.
    #[schema(format = Int64, minimum = 1)]
    pub deployment_id: Option<i64>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<Run>,
}

/// Where a line of a run's log came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStream {
    /// A status change of the run or a job (`<status>: <reason>`).
    Status,
    /// slipway itself: checkouts, steps starting, processes it ended.
    Runner,
    Stdout,
    Stderr,
    /// A source this version does not know (a newer server).
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunLogLine {
    #[schema(format = Int64, minimum = 1)]
    pub seq: i64,
    #[schema(format = DateTime)]
    pub at: String,
    /// The job it belongs to; null for the run's own lines.
    pub job: Option<String>,
    pub stream: RunStream,
    /// Secrets are masked as `***`.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunLogLines {
    pub lines: Vec<RunLogLine>,
}

/// The body of `POST /api/v1/pipelines/{name}/runs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchRun {
    /// Values of the pipeline's `on.dispatch.inputs`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// A branch or tag of the pipeline's repository (default: the branch its HEAD names).
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]{1,255}$",
        min_length = 1,
        max_length = 255
    )]
    pub git_ref: Option<String>,
}

/// The body of `POST /api/v1/triggers/push`: what a `post-receive` hook saw.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushEvent {
    /// The repository's path (as the pipeline names it, or any path to it) or URL.
    #[schema(min_length = 1, max_length = 4096)]
    pub repository: String,
    /// The branch, as `main` or `refs/heads/main`.
    #[serde(rename = "ref")]
    #[schema(
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]{1,255}$",
        min_length = 1,
        max_length = 255
    )]
    pub git_ref: String,
    /// The commit the branch now points at.
    #[schema(pattern = r"^[0-9a-fA-F]{7,64}$", min_length = 7, max_length = 64)]
    pub sha: String,
}

/// The query of `GET /api/v1/runs` and `GET /api/v1/pipelines/{name}/runs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// At most this many, newest first (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The query of `GET /api/v1/runs/{id}/logs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunLogQuery {
    /// Only this job's lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Only lines after this sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 0, format = Int64)]
    pub after: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}
