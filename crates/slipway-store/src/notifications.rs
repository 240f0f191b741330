//! What notifications need of the store: the outbox rows (written by the deployment side
//! in its own transactions, read by [`crate::Store::outbox_after`]), the runs' entries,
//! where a new notifier starts, and the record of every delivery attempt (migration 0009).

use slipway_config::NotificationEvent;
use slipway_core::notify::{RunEvent, RunEventKind};
use slipway_core::watch::WatchEnd;
use slipway_core::{Approval, Decision, DeploymentId, Millis, Status, StatusChange};
use sqlx::FromRow;
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use crate::sqlite::{BEGIN_WRITE, SqliteStore};
use crate::{Error, MAX_LIST_LIMIT, OutboxDeployment, OutboxEntry, OutboxEvent, Result};

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed; another attempt follows.
    Retrying,
    /// It failed and was the last: the entry is recorded as failed and delivery goes on
    /// with the next one.
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

    pub fn parse(s: &str) -> Option<AttemptOutcome> {
        Some(match s {
            "delivered" => AttemptOutcome::Delivered,
            "retrying" => AttemptOutcome::Retrying,
            "failed" => AttemptOutcome::Failed,
            _ => return None,
        })
    }
}

/// One attempt to deliver an outbox entry to a webhook target. It never holds the
/// target's URL or secret: `target` is the target's name.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationAttempt {
    pub target: String,
    /// The outbox entry delivered.
    pub seq: i64,
    pub event: NotificationEvent,
    pub deployment_id: Option<DeploymentId>,
    pub run_id: Option<i64>,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at: Millis,
    /// The receiver's answer, when it answered.
    pub http_status: Option<u16>,
    /// Why it failed, when it did, in a sentence.
    pub error: Option<String>,
    pub duration_ms: u64,
    pub outcome: AttemptOutcome,
}

/// An attempt as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedAttempt {
    pub id: i64,
    pub attempt: NotificationAttempt,
}

/// How long delivery attempts are kept: 30 days.
pub const ATTEMPTS_KEPT_MS: Millis = 30 * 24 * 3600 * 1000;

#[async_trait::async_trait]
pub trait NotificationStore: Send + Sync {
    /// The cursor of the notifier `name`. A notifier never seen before starts at the end
    /// of the outbox: a target added to the config is told what happens from now on, not
    /// the whole past.
    async fn begin_outbox_cursor(&self, name: &str) -> Result<i64>;

    /// Records an attempt, and forgets those more than [`ATTEMPTS_KEPT_MS`] older than
    /// it, so the log of a busy server does not grow without end.
    async fn record_attempt(&self, attempt: &NotificationAttempt) -> Result<i64>;

    /// Newest first, at most `limit` (capped at [`MAX_LIST_LIMIT`]).
    async fn notification_attempts(&self, limit: u32) -> Result<Vec<RecordedAttempt>>;
}

// === the outbox rows ===

/// The outbox entry of a status change just appended to the deployment's history.
pub(crate) async fn outbox_status(
    conn: &mut SqliteConnection,
    id: DeploymentId,
    change: &StatusChange,
) -> Result<()> {
    let what = (change.status.as_str(), change.at, change.actor.as_str());
    outbox_deployment(conn, "status", id, what, Some(&change.reason)).await
}

/// The outbox entry of a decision just recorded.
pub(crate) async fn outbox_decision(
    conn: &mut SqliteConnection,
    id: DeploymentId,
    approval: &Approval,
) -> Result<()> {
    let what = (
        approval.decision.as_str(),
        approval.at,
        approval.user.as_str(),
    );
    outbox_deployment(conn, "decision", id, what, approval.comment.as_deref()).await
}

/// The entry of a watch of deployment `id` that ended as `end` at `at`.
pub(crate) async fn outbox_watch(
    conn: &mut SqliteConnection,
    id: DeploymentId,
    (end, at): (WatchEnd, Millis),
    reason: &str,
) -> Result<()> {
    let what = (end.as_str(), at, "slipway");
    outbox_deployment(conn, "watch", id, what, Some(reason)).await
}

/// A deployment's entry of `kind`, with what the deployment has now (this change
/// included): `(status, at, actor)` and the reason.
async fn outbox_deployment(
    conn: &mut SqliteConnection,
    kind: &str,
    id: DeploymentId,
    (status, at, actor): (&str, Millis, &str),
    reason: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (kind, deployment_id, status, at, actor, reason, statuses, approvals) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
         (SELECT COUNT(*) FROM deployment_statuses WHERE deployment_id = ?2), \
         (SELECT COUNT(*) FROM deployment_approvals WHERE deployment_id = ?2))",
    )
    .bind(kind)
    .bind(id)
    .bind(status)
    .bind(at)
    .bind(actor)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// A run's entry, in the caller's transaction.
pub(crate) async fn outbox_run(conn: &mut SqliteConnection, event: &RunEvent) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO outbox (kind, run_id, pipeline, git_commit, status, at, actor, reason) \
         VALUES ('run', ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(event.run_id)
    .bind(&event.pipeline)
    .bind(&event.commit)
    .bind(event.kind.as_str())
    .bind(event.at)
    .bind(&event.actor)
    .bind(&event.reason)
    .fetch_one(conn)
    .await?)
}

pub(crate) async fn outbox_after(
    pool: &SqlitePool,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<OutboxEntry>> {
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "SELECT o.seq, o.kind, o.deployment_id, d.app, d.environment, d.version, o.run_id, \
         o.pipeline, o.git_commit, o.status, o.at, o.actor, o.reason, o.statuses, o.approvals \
         FROM outbox o LEFT JOIN deployments d ON d.id = o.deployment_id \
         WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
    )
    .bind(after_seq)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(OutboxRow::into_entry).collect()
}

#[derive(FromRow)]
struct OutboxRow {
    seq: i64,
    kind: String,
    deployment_id: Option<DeploymentId>,
    app: Option<String>,
    environment: Option<String>,
    version: Option<String>,
    run_id: Option<i64>,
    pipeline: Option<String>,
    git_commit: Option<String>,
    status: String,
    at: Millis,
    actor: String,
    reason: Option<String>,
    statuses: Option<i64>,
    approvals: Option<i64>,
}

impl OutboxRow {
    fn into_entry(self) -> Result<OutboxEntry> {
        let seq = self.seq;
        let corrupt = |what: &str| Error::Corrupt {
            message: format!("outbox entry {seq}: {what}"),
        };
        let count = |n: Option<i64>| {
            n.and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| corrupt("no count of what its deployment had"))
        };
        let deployment = || -> Result<OutboxDeployment> {
            match (
                self.deployment_id,
                &self.app,
                &self.environment,
                &self.version,
            ) {
                (Some(id), Some(app), Some(environment), Some(version)) => Ok(OutboxDeployment {
                    id,
                    app: app.clone(),
                    environment: environment.clone(),
                    version: version.clone(),
                    statuses: count(self.statuses)?,
                    approvals: count(self.approvals)?,
                }),
                _ => Err(corrupt("its deployment is missing")),
            }
        };
        let event = match self.kind.as_str() {
            "status" => OutboxEvent::Status {
                deployment: deployment()?,
                change: StatusChange {
                    status: Status::parse(&self.status)
                        .ok_or_else(|| corrupt(&format!("unknown status {:?}", self.status)))?,
                    at: self.at,
                    actor: self.actor,
                    reason: self.reason.unwrap_or_default(),
                },
            },
            "decision" => OutboxEvent::Decision {
                deployment: deployment()?,
                approval: Approval {
                    user: self.actor,
                    decision: Decision::parse(&self.status)
                        .ok_or_else(|| corrupt(&format!("unknown decision {:?}", self.status)))?,
                    comment: self.reason,
                    at: self.at,
                },
            },
            "watch" => OutboxEvent::Watch {
                deployment: deployment()?,
                end: WatchEnd::parse(&self.status)
                    .ok_or_else(|| corrupt(&format!("unknown watch end {:?}", self.status)))?,
                at: self.at,
                reason: self.reason.unwrap_or_default(),
            },
            "run" => OutboxEvent::Run(RunEvent {
                run_id: self.run_id.ok_or_else(|| corrupt("no run id"))?,
                pipeline: self.pipeline.ok_or_else(|| corrupt("no pipeline"))?,
                kind: RunEventKind::parse(&self.status)
                    .ok_or_else(|| corrupt(&format!("unknown run event {:?}", self.status)))?,
                commit: self.git_commit,
                at: self.at,
                actor: self.actor,
                reason: self.reason.unwrap_or_default(),
            }),
            other => return Err(corrupt(&format!("unknown kind {other:?}"))),
        };
        Ok(OutboxEntry { seq, event })
    }
}

// === impl NotificationStore ===

type AttemptRow = (
    i64,
    String,
    i64,
    String,
    Option<DeploymentId>,
    Option<i64>,
    i64,
    Millis,
    Option<i64>,
    Option<String>,
    i64,
    String,
);

fn recorded(row: AttemptRow) -> Result<RecordedAttempt> {
    let (id, target, seq, event, deployment_id, run_id, attempt, at, status, error, ms, outcome) =
        row;
    let corrupt = |what: String| Error::Corrupt {
        message: format!("notification attempt {id}: {what}"),
    };
    Ok(RecordedAttempt {
        id,
        attempt: NotificationAttempt {
            event: NotificationEvent::parse(&event)
                .ok_or_else(|| corrupt(format!("unknown event {event:?}")))?,
            outcome: AttemptOutcome::parse(&outcome)
                .ok_or_else(|| corrupt(format!("unknown outcome {outcome:?}")))?,
            attempt: u32::try_from(attempt)
                .map_err(|_| corrupt(format!("attempt {attempt} is out of range")))?,
            http_status: status
                .map(|s| u16::try_from(s).map_err(|_| corrupt(format!("HTTP status {s}"))))
                .transpose()?,
            duration_ms: u64::try_from(ms).map_err(|_| corrupt(format!("duration {ms}")))?,
            target,
            seq,
            deployment_id,
            run_id,
            at,
            error,
        },
    })
}

#[async_trait::async_trait]
impl NotificationStore for SqliteStore {
    async fn begin_outbox_cursor(&self, name: &str) -> Result<i64> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        sqlx::query(
            "INSERT INTO outbox_cursors (name, seq) \
             SELECT ?, COALESCE(MAX(seq), 0) FROM outbox WHERE true \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let seq = sqlx::query_scalar("SELECT seq FROM outbox_cursors WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(seq)
    }

    async fn record_attempt(&self, a: &NotificationAttempt) -> Result<i64> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let id = sqlx::query_scalar(
            "INSERT INTO notification_attempts (target, outbox_seq, event, deployment_id, \
             run_id, attempt, at, http_status, error, duration_ms, outcome) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&a.target)
        .bind(a.seq)
        .bind(a.event.as_str())
        .bind(a.deployment_id)
        .bind(a.run_id)
        .bind(i64::from(a.attempt))
        .bind(a.at)
        .bind(a.http_status.map(i64::from))
        .bind(&a.error)
        .bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
        .bind(a.outcome.as_str())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM notification_attempts WHERE at < ?")
            .bind(a.at.saturating_sub(ATTEMPTS_KEPT_MS))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn notification_attempts(&self, limit: u32) -> Result<Vec<RecordedAttempt>> {
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT id, target, outbox_seq, event, deployment_id, run_id, attempt, at, \
             http_status, error, duration_ms, outcome FROM notification_attempts \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit.min(MAX_LIST_LIMIT)))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(recorded).collect()
    }
}
