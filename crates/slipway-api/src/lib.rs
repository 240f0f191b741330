//! The wire types of slipway's HTTP API (`/api/v1`, docs/api.md): what the server sends and
//! accepts, and what its clients (the CLI, later the console) read and send. Serde and
//! OpenAPI schemas only: no I/O, nothing of the engine. The server maps its domain types
//! onto these; a client never parses free text to learn what the API can say in a field.
#![forbid(unsafe_code)]

pub mod dora;
pub mod flags;
mod gc;
pub mod pipelines;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use gc::{GcResult, LeftoverView, Leftovers, SkippedLeftover};

/// The status of a deployment (docs/concepts.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Waiting,
    InProgress,
    Success,
    Failure,
    Error,
    Rejected,
    Cancelled,
    RolledBack,
    Inactive,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Waiting => "waiting",
            Status::InProgress => "in_progress",
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Error => "error",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::RolledBack => "rolled_back",
            Status::Inactive => "inactive",
        }
    }

    /// Nothing more happens to a deployment in this status by itself.
    pub fn is_finished(self) -> bool {
        !matches!(self, Status::Queued | Status::Waiting | Status::InProgress)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a deployment does: put a release in, or revert to a kept one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Deploy,
    Rollback,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
        }
    }
}

/// Where a rollout stands inside `in_progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pending,
    Starting,
    Shifting,
    Verifying,
    Reverting,
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Starting => "starting",
            Phase::Shifting => "shifting",
            Phase::Verifying => "verifying",
            Phase::Reverting => "reverting",
            Phase::Done => "done",
        }
    }
}

/// What holds a `waiting` deployment (docs/api.md `waiting_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitingOn {
    /// Required approvals: only a person moves it on (`slipway approve`).
    Approval,
    /// A wait timer: it starts by itself when the timer ends.
    WaitTimer,
    /// Outside the deployment windows: it starts by itself when one opens.
    Window,
    /// Another rollout of the app in the environment: it starts once that one ends.
    Concurrency,
}

/// A user's role, each allowing what the one before allows and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Deployer,
    Approver,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

/// A reviewer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approve,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    Running,
    Stopped,
}

/// The canary analysis's judgement of the new release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Pass,
    Fail,
    /// Not enough requests yet to judge.
    Inconclusive,
}

/// The canary analysis's latest verdict: its kind, and the sentence that states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Verdict {
    pub kind: VerdictKind,
    /// `fail: error rate 31.0% > 1.0% over 214 requests`: for people.
    pub text: String,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

// === responses ===

// The schema names are those the document had before this crate (`…View`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = DeploymentView)]
pub struct Deployment {
    #[schema(format = Int64, minimum = 1)]
    pub id: i64,
    pub app: String,
    pub environment: String,
    pub version: String,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    #[schema(format = DateTime)]
    pub committed_at: Option<String>,
    /// The image ID (`sha256:…`) a docker app's version resolved to when its rollout
    /// began, which its containers run. Null for process apps and before the rollout.
    #[serde(default)]
    pub digest: Option<String>,
    pub kind: Kind,
    pub status: Status,
    pub phase: Phase,
    /// While `waiting`: what holds it. Null in every other status.
    pub waiting_on: Option<WaitingOn>,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The version a rollback reverted from.
    pub rolled_back_from: Option<String>,
    pub force: Option<ForceView>,
    pub statuses: Vec<StatusEntry>,
    pub approvals: Vec<ApprovalView>,
    /// The live traffic split of this app in this environment while this deployment is in
    /// progress or current; empty otherwise.
    pub traffic: Vec<TrafficEntry>,
    /// The canary analysis's latest verdict while the rollout runs.
    pub analysis: Option<Verdict>,
    /// The canary pause the rollout waits at, while it waits at one.
    pub paused: Option<Pause>,
    /// The schema migration (`migrate.up`) this deployment ran, and what became of its
    /// `down`; null when it ran none.
    #[serde(default)]
    pub migration: Option<Migration>,
}

/// A release's `migrate.up` as the history records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Migration {
    pub version: String,
    /// The command that ran.
    pub up: String,
    #[schema(format = DateTime)]
    pub ran_at: String,
    /// `false`: no automatic rollback goes past it; a person decides.
    pub reversible: bool,
    /// The `down` configured when `up` ran.
    pub down: Option<String>,
    /// What a rollback did with `down`.
    pub undo: Option<MigrationUndo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MigrationUndo {
    pub state: UndoState,
    /// The deployment that ran (or skipped) it.
    #[schema(format = Int64, minimum = 1)]
    pub by_deployment: i64,
    #[schema(format = DateTime)]
    pub at: String,
    /// How it ended, or why it was skipped.
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UndoState {
    /// `down` ran and succeeded.
    Ran,
    /// `down` ran and failed.
    Failed,
    /// Nothing ran: no `down` configured, or a rollback forced past an irreversible one.
    Skipped,
}

impl UndoState {
    pub fn as_str(self) -> &'static str {
        match self {
            UndoState::Ran => "ran",
            UndoState::Failed => "failed",
            UndoState::Skipped => "skipped",
        }
    }
}

/// Where a post-deploy watch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WatchState {
    /// Under watch: `left_ms` says how long still.
    Watching,
    Passed,
    /// Too little traffic to judge: the release stays.
    Inconclusive,
    /// A verdict failed; `reason` says what followed (a rollback, or why none).
    Failed,
    /// A newer rollout of the app began, or the release stopped being current.
    Ended,
}

impl WatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchState::Watching => "watching",
            WatchState::Passed => "passed",
            WatchState::Inconclusive => "inconclusive",
            WatchState::Failed => "failed",
            WatchState::Ended => "ended",
        }
    }
}

/// The post-deploy watch of a release (docs/concepts.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WatchView {
    #[schema(format = Int64, minimum = 1)]
    pub deployment_id: i64,
    pub version: String,
    pub state: WatchState,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub ends_at: String,
    /// While `watching`: milliseconds left; else 0.
    #[schema(minimum = 0)]
    pub left_ms: u64,
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
    /// How it ended, for people.
    pub reason: Option<String>,
}

impl Deployment {
    /// The reason of the latest status change, for people.
    pub fn last_reason(&self) -> &str {
        self.statuses.last().map_or("", |s| s.reason.as_str())
    }
}

/// A canary pause: `manual` waits for `promote`, a `timed` one ends by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PauseKind {
    Manual,
    Timed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pause {
    pub kind: PauseKind,
    /// The length of a timed pause in milliseconds; null for a manual one.
    #[schema(minimum = 0)]
    pub duration_ms: Option<u64>,
}

/// `manual`, `2s`, `250ms`.
impl std::fmt::Display for Pause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.kind, self.duration_ms) {
            (PauseKind::Manual, _) | (PauseKind::Timed, None) => f.write_str("manual"),
            (PauseKind::Timed, Some(ms)) if ms % 1000 == 0 => write!(f, "{}s", ms / 1000),
            (PauseKind::Timed, Some(ms)) => write!(f, "{ms}ms"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ForceView {
    pub by: String,
    pub reason: String,
}

/// One change of a deployment's status: the history is append-only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusEntry {
    pub status: Status,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor: String,
    /// For people; what holds a waiting deployment is `waiting_on`.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    pub user: String,
    pub decision: ApprovalDecision,
    pub comment: Option<String>,
    #[schema(format = DateTime)]
    pub at: String,
}

/// One release's share of the traffic, and what the router counted for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrafficEntry {
    pub version: String,
    /// Percent of requests.
    pub weight: f64,
    /// Requests the router counted for this release since it started.
    #[schema(format = Int64, minimum = 0)]
    pub requests: u64,
    /// Of those, 5xx answers (from the app, or from the router when it could not reach it).
    #[schema(format = Int64, minimum = 0)]
    pub errors: u64,
    /// 99th percentile latency in milliseconds, when there were requests.
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeploymentList {
    pub deployments: Vec<Deployment>,
}

/// Who wrote a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    /// A status change, as its `statuses[]` entry says it (`<status>: <reason>`).
    Status,
    /// The engine: rollout steps, traffic moves.
    Engine,
    /// The canary analysis's verdicts.
    Analysis,
    Health,
    Smoke,
    Hook,
    /// Schema migrations: `migrate.check`, `up`, `down` and their output.
    Migrate,
    /// The post-deploy watch's verdicts and end.
    Watch,
    /// What the app itself printed.
    App,
    /// A source this version does not know (a newer server).
    #[serde(other)]
    Other,
}

impl LogSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::Status => "status",
            LogSource::Engine => "engine",
            LogSource::Analysis => "analysis",
            LogSource::Health => "health",
            LogSource::Smoke => "smoke",
            LogSource::Hook => "hook",
            LogSource::Migrate => "migrate",
            LogSource::Watch => "watch",
            LogSource::App => "app",
            LogSource::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    #[schema(format = Int64, minimum = 1)]
    pub seq: i64,
    #[schema(format = DateTime)]
    pub at: String,
    pub source: LogSource,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogLines {
    pub lines: Vec<LogLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CurrentRelease {
    pub version: String,
    #[schema(format = Int64, minimum = 1)]
    pub deployment_id: i64,
    #[schema(format = DateTime)]
    pub since: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeptRelease {
    pub version: String,
    #[schema(format = Int64, minimum = 1)]
    pub deployment_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstanceView {
    pub id: String,
    pub version: String,
    /// Where the router reaches it.
    pub addr: String,
    pub state: InstanceState,
    /// The driver's identity of it: `pid:<pid>:<start time>` for a process.
    pub handle: String,
    #[schema(format = DateTime)]
    pub started_at: String,
}

/// What runs in one environment for one app.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = EnvStatusView)]
pub struct EnvStatus {
    pub app: String,
    pub environment: String,
    pub current: Option<CurrentRelease>,
    pub kept: Vec<KeptRelease>,
    pub instances: Vec<InstanceView>,
    pub traffic: Vec<TrafficEntry>,
    pub in_progress: Option<Deployment>,
    pub waiting: Vec<Deployment>,
    /// The newest post-deploy watch here (under way or over); null when none ran.
    #[serde(default)]
    pub watch: Option<WatchView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusList {
    pub environments: Vec<EnvStatus>,
}

/// One status change, as `/api/v1/events` sends it (event name `status`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = EventView)]
pub struct StatusEvent {
    #[schema(format = Int64, minimum = 1)]
    pub deployment_id: i64,
    pub app: String,
    pub environment: String,
    pub version: String,
    pub status: Status,
    pub reason: String,
    #[schema(format = DateTime)]
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    pub name: String,
    pub role: Role,
    /// Shown once; only its hash is stored.
    pub token: String,
    /// The user existed: this token replaced its old one, which no longer works.
    pub replaced_token: bool,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `invalid_version`, `not_found`.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

// === requests ===

/// The longest `ref`, in characters.
pub const MAX_REF_CHARS: usize = 255;

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    pub app: String,
    pub environment: String,
    /// Letters, digits, `.`, `-`, `_`, `+`.
    #[schema(
        pattern = r"^[A-Za-z0-9._+-]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub version: String,
    /// The branch or tag the release was built from.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]{1,255}$",
        min_length = 1,
        max_length = 255
    )]
    pub git_ref: Option<String>,
    /// A hex SHA, abbreviated (7) to full SHA-256 (64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[0-9a-fA-F]{7,64}$", min_length = 7, max_length = 64)]
    pub commit: Option<String>,
    /// RFC 3339, e.g. `2026-11-24T10:00:00Z`, from 1971 on (a commit is not older).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, pattern = r"^(197[1-9]|19[89][0-9]|[2-9][0-9]{3})-")]
    pub committed_at: Option<String>,
    /// Admins only: deploy outside the deployment windows. Needs `reason`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The optional body of approve and reject.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = r"^[A-Za-z0-9._+-]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub to_version: Option<String>,
    /// Admins only: roll back past a migration marked `reversible: false` (its `down`
    /// is not run). Needs `reason`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(pattern = r"^[a-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    pub name: String,
    pub role: Role,
}

/// The query of `GET /api/v1/deployments`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeploymentQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// At most this many, newest first (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The query of `GET /api/v1/deployments/{id}/logs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only lines after this sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 0, format = Int64)]
    pub after: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// The query of `GET /api/v1/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

// === notifications ===

/// What a webhook target is told of (docs/config.md `notifications:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum NotificationEvent {
    #[serde(rename = "run.started")]
    RunStarted,
    #[serde(rename = "run.succeeded")]
    RunSucceeded,
    #[serde(rename = "run.failed")]
    RunFailed,
    #[serde(rename = "deployment.started")]
    DeploymentStarted,
    #[serde(rename = "deployment.waiting")]
    DeploymentWaiting,
    #[serde(rename = "deployment.approved")]
    DeploymentApproved,
    #[serde(rename = "deployment.rejected")]
    DeploymentRejected,
    #[serde(rename = "deployment.succeeded")]
    DeploymentSucceeded,
    #[serde(rename = "deployment.failed")]
    DeploymentFailed,
    #[serde(rename = "deployment.rolled_back")]
    DeploymentRolledBack,
    #[serde(rename = "deployment.watch_failed")]
    DeploymentWatchFailed,
}

impl NotificationEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationEvent::RunStarted => "run.started",
            NotificationEvent::RunSucceeded => "run.succeeded",
            NotificationEvent::RunFailed => "run.failed",
            NotificationEvent::DeploymentStarted => "deployment.started",
            NotificationEvent::DeploymentWaiting => "deployment.waiting",
            NotificationEvent::DeploymentApproved => "deployment.approved",
            NotificationEvent::DeploymentRejected => "deployment.rejected",
            NotificationEvent::DeploymentSucceeded => "deployment.succeeded",
            NotificationEvent::DeploymentFailed => "deployment.failed",
            NotificationEvent::DeploymentRolledBack => "deployment.rolled_back",
            NotificationEvent::DeploymentWatchFailed => "deployment.watch_failed",
        }
    }
}

impl std::fmt::Display for NotificationEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body a webhook target of format `json` is sent (`POST`, `application/json`),
/// signed in `X-Slipway-Signature-256: sha256=<hex>` when the target has a `secret`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookBody {
    pub event: NotificationEvent,
    /// When it happened.
    #[schema(format = DateTime)]
    pub at: String,
    /// For `deployment.*`: the deployment as it was at the event. `traffic` is empty and
    /// `analysis`, `paused` and `waiting_on` are null here; the last `statuses[]` entry's
    /// reason says what holds a waiting one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    /// For `run.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunNotice>,
    /// For `deployment.watch_failed`: how the watch of `deployment` ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchNotice>,
}

/// How a post-deploy watch ended, as `deployment.watch_failed` tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WatchNotice {
    pub state: WatchState,
    /// The figures that failed, and what followed: a rollback, or why there was none.
    pub reason: String,
}

/// A pipeline run as a `run.*` notification shows it. Provisional: it becomes the API's
/// run object once runs have one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunNotice {
    #[schema(format = Int64, minimum = 1)]
    pub id: i64,
    pub pipeline: String,
    /// `in_progress` (run.started), `success` or `failure`.
    pub status: String,
    pub commit: Option<String>,
    pub actor: String,
    pub reason: String,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed; another attempt follows after a backoff.
    Retrying,
    /// It failed and was the last attempt: the event is given up for this target, and
    /// delivery goes on with the next one.
    Failed,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retrying => "retrying",
            AttemptOutcome::Failed => "failed",
        }
    }
}

/// One attempt to deliver a notification to a webhook target.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotificationAttempt {
    #[schema(format = Int64, minimum = 1)]
    pub id: i64,
    /// The target's `name` (its URL is never shown: a chat webhook's URL is a secret).
    pub target: String,
    /// The event's place in the outbox, also sent as `X-Slipway-Delivery`: the same for
    /// every attempt and every target, so a receiver can drop a repeat.
    #[schema(format = Int64, minimum = 1)]
    pub seq: i64,
    pub event: NotificationEvent,
    pub deployment_id: Option<i64>,
    pub run_id: Option<i64>,
    /// 1 for the first attempt.
    #[schema(minimum = 1)]
    pub attempt: u32,
    #[schema(format = DateTime)]
    pub at: String,
    /// The receiver's answer, when it answered.
    pub http_status: Option<u16>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    #[schema(minimum = 0)]
    pub duration_ms: u64,
    pub outcome: AttemptOutcome,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotificationAttempts {
    /// Newest first.
    pub attempts: Vec<NotificationAttempt>,
}

/// The query of `GET /api/v1/notifications`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// At most this many, newest first (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_are_the_stable_lower_case_names() {
        let json = serde_json::to_value([Status::InProgress, Status::RolledBack]).unwrap();
        assert_eq!(json, serde_json::json!(["in_progress", "rolled_back"]));
        assert_eq!(
            serde_json::to_value(WaitingOn::WaitTimer).unwrap(),
            "wait_timer"
        );
        assert_eq!(Status::InProgress.as_str(), "in_progress");
        assert!(Status::RolledBack.is_finished() && !Status::Waiting.is_finished());
    }

    #[test]
    fn a_request_leaves_out_what_was_not_given() {
        let body = serde_json::to_value(CreateDeployment {
            app: "web".into(),
            environment: "staging".into(),
            version: "v1".into(),
            ..CreateDeployment::default()
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"app":"web","environment":"staging","version":"v1"})
        );
    }

    #[test]
    fn notification_events_are_their_dotted_names() {
        let json = serde_json::to_value([
            NotificationEvent::DeploymentRolledBack,
            NotificationEvent::RunStarted,
        ])
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!(["deployment.rolled_back", "run.started"])
        );
        assert_eq!(
            NotificationEvent::DeploymentRolledBack.as_str(),
            "deployment.rolled_back"
        );
    }

    #[test]
    fn an_unknown_log_source_is_read_as_other() {
        let line: LogLine = serde_json::from_value(serde_json::json!({
            "seq": 1, "at": "2026-11-24T10:00:00.000Z", "source": "docker",
            "message": "pulled"
        }))
        .unwrap();
        assert_eq!(line.source, LogSource::Other);
    }
}
