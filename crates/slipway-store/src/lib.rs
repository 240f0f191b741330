//! The Store trait and its SQLite implementation, with versioned migrations.
//!
//! The engine and the API see persistence only through [`Store`], which speaks in domain
//! types and never in SQL, so a PostgreSQL implementation (its own `migrations/postgres`)
//! can sit beside [`SqliteStore`] without touching the callers.
#![forbid(unsafe_code)]

mod dora;
mod error;
mod flags;
mod history;
mod migration_runs;
mod notifications;
mod pipelines;
mod sessions;
mod sqlite;
mod watches;

pub use dora::{DoraFilter, DoraStore};
pub use error::{Error, Result};
pub use flags::{FlagChange, FlagStore, MAX_FLAG_HISTORY, StoredFlag};
pub use history::{Cursor, HistoryPage, HistoryQuery, HistoryStore, RunPage, RunPageQuery};
pub use migration_runs::MigrationStore;
pub use notifications::{
    ATTEMPTS_KEPT_MS, AttemptOutcome, NotificationAttempt, NotificationStore, RecordedAttempt,
};
pub use pipelines::{
    JobKind, NewJob, NewRun, PipelineStore, Run, RunChange, RunFilter, RunId, RunJob, RunLogLine,
    RunStatusEntry, Trigger,
};
pub use sessions::{NewSession, Session, SessionStore};
pub use sqlite::SqliteStore;
pub use watches::WatchStore;

use slipway_config::Role;
use slipway_core::notify::RunEvent;
use slipway_core::watch::WatchEnd;
use slipway_core::{
    Approval, Deployment, DeploymentId, Force, Instance, Kind, LogLine, Millis, Phase, Release,
    Status, StatusChange, UserRecord,
};

/// Rows a listing returns when the filter names no limit.
pub const DEFAULT_LIST_LIMIT: u32 = 50;
/// The most rows one listing returns, whatever the filter asks for.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// The most log lines one call to [`Store::logs`] returns.
pub const MAX_LOG_LIMIT: u32 = 10_000;

/// Persistence of deployments, their history, logs, instances and users.
///
/// Every [`Deployment`] returned carries its full `statuses` (oldest first) and
/// `approvals` (in the order they were given).
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Stores a new deployment, `queued` with phase `pending`, together with the first
    /// entry of its history (actor `created_by`, reason `reason`, at `created_at`).
    async fn create_deployment(&self, new: NewDeployment) -> Result<Deployment>;

    /// [`Error::NotFound`] when there is no such deployment.
    async fn get_deployment(&self, id: DeploymentId) -> Result<Deployment>;

    /// Newest first. Limit [`DEFAULT_LIST_LIMIT`] unless the filter says otherwise, at
    /// most [`MAX_LIST_LIMIT`].
    async fn list_deployments(&self, filter: &DeploymentFilter) -> Result<Vec<Deployment>>;

    /// Deployments not finished (queued, waiting, in_progress), oldest first.
    async fn unfinished_deployments(&self) -> Result<Vec<Deployment>>;

    /// Appends a status change and sets the status, only if the current status is `from`;
    /// else [`Error::Conflict`] with the current status and nothing written. Atomic: of
    /// two concurrent transitions from the same status exactly one succeeds.
    async fn transition(
        &self,
        id: DeploymentId,
        from: Status,
        change: StatusChange,
    ) -> Result<Deployment>;

    async fn set_phase(&self, id: DeploymentId, phase: Phase) -> Result<()>;

    /// Records how far a canary got through its steps.
    async fn set_step(&self, id: DeploymentId, step: u32) -> Result<()>;

    async fn set_force(&self, id: DeploymentId, force: Force) -> Result<()>;

    /// Records the digest the release's version resolved to when the rollout began.
    async fn set_digest(&self, id: DeploymentId, digest: &str) -> Result<()>;

    /// Records a decision, and its outbox entry in the same transaction. Whether it is
    /// allowed (self-approval, a finished deployment) is the caller's rule, not the
    /// store's.
    async fn add_approval(&self, id: DeploymentId, approval: Approval) -> Result<Deployment>;

    /// Latest deployment of (app, env) with one of the statuses, newest first.
    async fn latest_with_status(
        &self,
        app: &str,
        env: &str,
        statuses: &[Status],
    ) -> Result<Option<Deployment>>;

    /// Did a deployment of this app with this version (and digest, when given) succeed in
    /// env (status `success` or `inactive`)? With a digest given, a stored deployment
    /// without one does not match: it is not known to be the same release.
    async fn release_succeeded_in(
        &self,
        app: &str,
        env: &str,
        version: &str,
        digest: Option<&str>,
    ) -> Result<bool>;

    /// Appends a line to a deployment's log and returns its `seq` (1, 2, … per
    /// deployment). [`Error::NotFound`] when there is no such deployment.
    async fn append_log(
        &self,
        id: DeploymentId,
        at: Millis,
        source: &str,
        message: &str,
    ) -> Result<i64>;

    /// Lines with `seq > after_seq`, in order, at most `limit` (capped at
    /// [`MAX_LOG_LIMIT`]).
    async fn logs(&self, id: DeploymentId, after_seq: i64, limit: u32) -> Result<Vec<LogLine>>;

    /// Inserts or replaces the instance with this id.
    async fn put_instance(&self, instance: &Instance) -> Result<()>;

    /// Removes an instance; removing one that is not there is not an error, so a
    /// reconcile step can be repeated.
    async fn delete_instance(&self, id: &str) -> Result<()>;

    /// Instances, optionally of one app and/or environment, ordered by app, environment,
    /// start time and id.
    async fn instances(&self, app: Option<&str>, env: Option<&str>) -> Result<Vec<Instance>>;

    /// Creates a user. [`Error::AlreadyExists`] when the name (or, improbably, the token
    /// hash) is taken; use [`Store::set_user_token`] to give an existing user a new token.
    async fn create_user(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
        at: Millis,
    ) -> Result<UserRecord>;

    /// Creates the user or gives it a new role and token; the old token stops working.
    /// An existing user keeps its `created_at`. [`Error::LastAdmin`], and nothing
    /// written, when it would take the admin role from the only admin.
    async fn set_user_token(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
        at: Millis,
    ) -> Result<UserRecord>;

    async fn user_by_token_hash(&self, token_hash: &str) -> Result<Option<UserRecord>>;

    async fn count_users(&self) -> Result<i64>;

    /// Number of deployments in every status, zeros included, in [`Status::ALL`] order
    /// (for `/metrics`, where a series should not vanish when it drops to zero).
    async fn count_by_status(&self) -> Result<Vec<(Status, i64)>>;

    /// Outbox entries after `after_seq` in the order they were written, at most `limit`
    /// (capped at [`MAX_LOG_LIMIT`]): every status change (creation's `queued` included)
    /// and every decision, each written in the same transaction as the change itself, and
    /// the runs' starts and ends (written with the run's change by
    /// [`PipelineStore::transition_run`]).
    async fn outbox_after(&self, after_seq: i64, limit: u32) -> Result<Vec<OutboxEntry>>;

    /// The last outbox `seq` the notifier `name` took; 0 when it never took one.
    async fn outbox_cursor(&self, name: &str) -> Result<i64>;

    /// Records that `name` took everything up to `seq`; never moves a cursor back.
    async fn set_outbox_cursor(&self, name: &str, seq: i64) -> Result<()>;

    /// Checks the database answers (for `/ready`).
    async fn ping(&self) -> Result<()>;
}

/// What [`Store::create_deployment`] needs; the store assigns id, status and phase.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeployment {
    pub app: String,
    pub environment: String,
    pub release: Release,
    pub kind: Kind,
    pub created_by: String,
    pub created_at: Millis,
    /// Reason of the first (`queued`) history entry.
    pub reason: String,
    pub rolled_back_from: Option<String>,
    pub force: Option<Force>,
}

/// Filter of [`Store::list_deployments`]; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentFilter {
    pub app: Option<String>,
    pub environment: Option<String>,
    pub status: Option<Status>,
    pub kind: Option<Kind>,
    pub limit: Option<u32>,
}

/// One entry of the outbox, for notifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Global delivery order.
    pub seq: i64,
    pub event: OutboxEvent,
}

/// What an outbox entry tells.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxEvent {
    /// A deployment's status changed.
    Status {
        deployment: OutboxDeployment,
        change: StatusChange,
    },
    /// A reviewer approved or rejected a deployment.
    Decision {
        deployment: OutboxDeployment,
        approval: Approval,
    },
    /// A pipeline run started or ended.
    Run(RunEvent),
    /// A deployment's post-deploy watch ended as `end` (only `failed` is written).
    Watch {
        deployment: OutboxDeployment,
        end: WatchEnd,
        at: Millis,
        /// The figures that failed, and what followed.
        reason: String,
    },
}

/// The deployment an outbox entry is about, and how much of its history it had then.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxDeployment {
    pub id: DeploymentId,
    pub app: String,
    pub environment: String,
    pub version: String,
    /// Status changes and decisions the deployment had once the entry was written
    /// (`slipway_core::notify::as_it_was` shows it so).
    pub statuses: usize,
    pub approvals: usize,
}

impl OutboxEntry {
    pub fn at(&self) -> Millis {
        match &self.event {
            OutboxEvent::Status { change, .. } => change.at,
            OutboxEvent::Decision { approval, .. } => approval.at,
            OutboxEvent::Run(run) => run.at,
            OutboxEvent::Watch { at, .. } => *at,
        }
    }

    /// The deployment it is about; `None` for a run's entry.
    pub fn deployment(&self) -> Option<&OutboxDeployment> {
        match &self.event {
            OutboxEvent::Status { deployment, .. }
            | OutboxEvent::Decision { deployment, .. }
            | OutboxEvent::Watch { deployment, .. } => Some(deployment),
            OutboxEvent::Run(_) => None,
        }
    }
}
