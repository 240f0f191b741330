//! Persistence of pipeline runs: each run with its jobs, the append-only history of every
//! status change of both, the run's log, and the last commit each watched branch started
//! a run for. A trait of its own beside [`crate::Store`].
//!
//! Every status change of a run or a job goes through [`PipelineStore::transition_run`],
//! one transaction, so whatever must be written with a change (a notification's outbox
//! entry) has one place to go.

use std::collections::BTreeMap;

use slipway_core::notify::{RunEvent, RunEventKind};
use slipway_core::{DeploymentId, Millis};
use slipway_pipeline::Status;
use sqlx::error::ErrorKind;
use sqlx::sqlite::SqliteConnection;
use sqlx::{FromRow, QueryBuilder, Sqlite};

use crate::sqlite::{BEGIN_WRITE, SqliteStore};
use crate::{DEFAULT_LIST_LIMIT, Error, MAX_LIST_LIMIT, MAX_LOG_LIMIT, Result};

pub type RunId = i64;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A new commit on a watched branch (the poll or `slipway trigger`).
    Push,
    /// By hand (`slipway run`).
    Dispatch,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Push => "push",
            Trigger::Dispatch => "dispatch",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        match s {
            "push" => Some(Trigger::Push),
            "dispatch" => Some(Trigger::Dispatch),
            _ => None,
        }
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Steps,
    Deploy,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Steps => "steps",
            JobKind::Deploy => "deploy",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "steps" => Some(JobKind::Steps),
            "deploy" => Some(JobKind::Deploy),
            _ => None,
        }
    }
}

/// What [`PipelineStore::create_run`] needs; the run and its jobs start `queued`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub pipeline: String,
    pub trigger: Trigger,
    pub commit: Option<String>,
    pub git_ref: Option<String>,
    pub inputs: BTreeMap<String, String>,
    pub group: Option<String>,
    pub created_by: String,
    pub created_at: Millis,
    /// Reason of the first (`queued`) history entry.
    pub reason: String,
    /// In the pipeline's order.
    pub jobs: Vec<NewJob>,
    /// A push run: the branch whose head `commit` is. The run is created only if the
    /// pipeline has not started one for that head of that branch already.
    pub head_of: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub name: String,
    pub needs: Vec<String>,
    pub kind: JobKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: RunId,
    pub pipeline: String,
    pub trigger: Trigger,
    pub status: Status,
    pub commit: Option<String>,
    pub git_ref: Option<String>,
    pub committed_at: Option<Millis>,
    pub inputs: BTreeMap<String, String>,
    pub group: Option<String>,
    pub created_by: String,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// The reason of its latest status change.
    pub reason: String,
    /// In the pipeline's order.
    pub jobs: Vec<RunJob>,
}

impl Run {
    pub fn job(&self, name: &str) -> Option<&RunJob> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunJob {
    pub name: String,
    pub needs: Vec<String>,
    pub kind: JobKind,
    pub status: Status,
    /// How many times it was started; 0 before the first.
    pub attempt: u32,
    /// When its latest attempt started.
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    pub outputs: BTreeMap<String, String>,
    pub deployment_id: Option<DeploymentId>,
    pub reason: String,
}

/// One status change of a run (`job: None`) or of one of its jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunChange {
    pub run: RunId,
    pub job: Option<String>,
    /// The change is written only while the status is still this.
    pub from: Status,
    pub to: Status,
    pub at: Millis,
    pub reason: String,
    /// A job's outputs, stored with its change (its success).
    pub outputs: Option<BTreeMap<String, String>>,
}

/// One entry of the history [`PipelineStore::run_statuses`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStatusEntry {
    pub job: Option<String>,
    pub status: Status,
    pub at: Millis,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunLogLine {
    /// 1, 2, … per run.
    pub seq: i64,
    pub job: Option<String>,
    pub at: Millis,
    /// `status`, `runner`, `stdout` or `stderr`.
    pub stream: String,
    pub message: String,
}

/// Filter of [`PipelineStore::list_runs`]; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub pipeline: Option<String>,
    pub status: Option<Status>,
    pub limit: Option<u32>,
}

#[async_trait::async_trait]
pub trait PipelineStore: Send + Sync {
    /// Stores a new run and its jobs, all `queued`, with the run's first history entry
    /// and its log's first line.
    /// [`Error::AlreadyExists`], and nothing written, when `head_of` names a branch whose
    /// head `commit` already started a run of this pipeline.
    async fn create_run(&self, new: NewRun) -> Result<Run>;

    /// [`Error::NotFound`] when there is no such run.
    async fn get_run(&self, id: RunId) -> Result<Run>;

    /// Newest first. Limit [`DEFAULT_LIST_LIMIT`] unless the filter says otherwise, at
    /// most [`MAX_LIST_LIMIT`].
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>>;

    /// Runs not finished (queued, in progress, waiting), oldest first.
    async fn unfinished_runs(&self) -> Result<Vec<Run>>;

    /// Sets the status of the run or of one of its jobs, only if it is still `from`
    /// (else [`Error::RunConflict`] with the current status, and nothing written), and
    /// appends the change to the history and to the run's log (`<status>: <reason>`,
    /// stream `status`); in one transaction, so a reader that sees the status also sees
    /// its line. Entering `in_progress` sets the start time (and a job's attempt counts
    /// one more when it comes from `queued`); a finished status sets the finish time.
    /// Returns the log line's `seq`.
    async fn transition_run(&self, change: RunChange) -> Result<i64>;

    /// The run's and its jobs' status changes, oldest first.
    async fn run_statuses(&self, id: RunId) -> Result<Vec<RunStatusEntry>>;

    /// Records when the run's commit was made, once its workspace has it.
    async fn set_committed_at(&self, id: RunId, committed_at: Millis) -> Result<()>;

    /// Records the deployment a deploy job created.
    async fn set_job_deployment(
        &self,
        id: RunId,
        job: &str,
        deployment: DeploymentId,
    ) -> Result<()>;

    /// The run and the deploy job that created deployment `deployment`, if one did.
    async fn job_of_deployment(
        &self,
        deployment: DeploymentId,
    ) -> Result<Option<(RunId, String, String)>>;

    /// Appends a line to a run's log and returns its `seq`.
    async fn append_run_log(
        &self,
        id: RunId,
        job: Option<&str>,
        at: Millis,
        stream: &str,
        message: &str,
    ) -> Result<i64>;

    /// Lines with `seq > after_seq` (of one job, when given), in order, at most `limit`
    /// (capped at [`MAX_LOG_LIMIT`]).
    async fn run_logs(
        &self,
        id: RunId,
        job: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<RunLogLine>>;
}

// === impl PipelineStore for SqliteStore ===

pub(crate) const SELECT_RUNS: &str = "SELECT id, pipeline, trigger, status, git_commit, git_ref, \
     committed_at, inputs, concurrency_group, created_by, created_at, started_at, \
     finished_at, reason FROM pipeline_runs";

#[async_trait::async_trait]
impl PipelineStore for SqliteStore {
    async fn create_run(&self, new: NewRun) -> Result<Run> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        if let (Some(branch), Some(sha)) = (&new.head_of, &new.commit) {
            // Moves the branch's head only if it changed: no row means this commit
            // already started a run.
            let moved = sqlx::query(
                "INSERT INTO pipeline_heads (pipeline, branch, sha) VALUES (?, ?, ?) \
                 ON CONFLICT (pipeline, branch) DO UPDATE SET sha = excluded.sha \
                 WHERE pipeline_heads.sha <> excluded.sha",
            )
            .bind(&new.pipeline)
            .bind(branch)
            .bind(sha)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() == 0 {
                return Err(Error::AlreadyExists {
                    what: format!("a run of {} for {sha} on {branch}", new.pipeline),
                });
            }
        }
        let id: RunId = sqlx::query_scalar(
            "INSERT INTO pipeline_runs (pipeline, trigger, status, git_commit, git_ref, inputs, \
             concurrency_group, created_by, created_at, reason) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.pipeline)
        .bind(new.trigger.as_str())
        .bind(Status::Queued.as_str())
        .bind(&new.commit)
        .bind(&new.git_ref)
        .bind(to_json(&new.inputs)?)
        .bind(&new.group)
        .bind(&new.created_by)
        .bind(new.created_at)
        .bind(&new.reason)
        .fetch_one(&mut *tx)
        .await?;
        for (position, job) in new.jobs.iter().enumerate() {
            sqlx::query(
                "INSERT INTO pipeline_jobs (run_id, position, name, needs, kind, status, reason) \
                 VALUES (?, ?, ?, ?, ?, ?, '')",
            )
            .bind(id)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(&job.name)
            .bind(to_json(&job.needs)?)
            .bind(job.kind.as_str())
            .bind(Status::Queued.as_str())
            .execute(&mut *tx)
            .await?;
        }
        append_status(
            &mut tx,
            id,
            None,
            Status::Queued,
            new.created_at,
            &new.reason,
        )
        .await?;
        let line = format!("{}: {}", Status::Queued, new.reason);
        append_log(&mut tx, id, None, new.created_at, "status", &line).await?;
        let run = load_run(&mut tx, id).await?;
        tx.commit().await?;
        Ok(run)
    }

    async fn get_run(&self, id: RunId) -> Result<Run> {
        let mut tx = self.pool.begin().await?;
        load_run(&mut tx, id).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let limit = filter
            .limit
            .unwrap_or(DEFAULT_LIST_LIMIT)
            .min(MAX_LIST_LIMIT);
        let mut query = QueryBuilder::<Sqlite>::new(SELECT_RUNS);
        query.push(" WHERE 1 = 1");
        if let Some(pipeline) = &filter.pipeline {
            query.push(" AND pipeline = ").push_bind(pipeline.as_str());
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let mut tx = self.pool.begin().await?;
        let rows: Vec<RunRow> = query.build_query_as().fetch_all(&mut *tx).await?;
        with_jobs(&mut tx, rows).await
    }

    async fn unfinished_runs(&self) -> Result<Vec<Run>> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "{SELECT_RUNS} WHERE status IN (?, ?, ?) ORDER BY id"
        ))
        .bind(Status::Queued.as_str())
        .bind(Status::InProgress.as_str())
        .bind(Status::Waiting.as_str())
        .fetch_all(&mut *tx)
        .await?;
        with_jobs(&mut tx, rows).await
    }

    async fn transition_run(&self, change: RunChange) -> Result<i64> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let started = (change.to == Status::InProgress).then_some(change.at);
        let finished = change.to.is_finished().then_some(change.at);
        // The status check and the write are one statement: `rows_affected` tells
        // whether `from` still held.
        let updated = match &change.job {
            None => {
                sqlx::query(
                    "UPDATE pipeline_runs SET status = ?, reason = ?, \
                 started_at = COALESCE(started_at, ?), finished_at = COALESCE(?, finished_at) \
                 WHERE id = ? AND status = ?",
                )
                .bind(change.to.as_str())
                .bind(&change.reason)
                .bind(started)
                .bind(finished)
                .bind(change.run)
                .bind(change.from.as_str())
                .execute(&mut *tx)
                .await?
            }
            Some(job) => {
                let outputs = change.outputs.as_ref().map(to_json).transpose()?;
                let new_attempt = change.from == Status::Queued && change.to == Status::InProgress;
                sqlx::query(
                    "UPDATE pipeline_jobs SET status = ?, reason = ?, \
                     attempt = attempt + ?, started_at = COALESCE(?, started_at), \
                     finished_at = ?, outputs = COALESCE(?, outputs) \
                     WHERE run_id = ? AND name = ? AND status = ?",
                )
                .bind(change.to.as_str())
                .bind(&change.reason)
                .bind(i64::from(new_attempt))
                .bind(if new_attempt { started } else { None })
                .bind(finished)
                .bind(outputs)
                .bind(change.run)
                .bind(job)
                .bind(change.from.as_str())
                .execute(&mut *tx)
                .await?
            }
        };
        if updated.rows_affected() == 0 {
            let current: Option<String> = match &change.job {
                None => {
                    sqlx::query_scalar("SELECT status FROM pipeline_runs WHERE id = ?")
                        .bind(change.run)
                        .fetch_optional(&mut *tx)
                        .await?
                }
                Some(job) => {
                    sqlx::query_scalar(
                        "SELECT status FROM pipeline_jobs WHERE run_id = ? AND name = ?",
                    )
                    .bind(change.run)
                    .bind(job)
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
            let what = match &change.job {
                None => format!("run {}", change.run),
                Some(job) => format!("job {job} of run {}", change.run),
            };
            return match current {
                None => Err(Error::NotFound { what }),
                Some(current) => Err(Error::RunConflict {
                    what,
                    current: parse_status(&current)?,
                }),
            };
        }
        append_status(
            &mut tx,
            change.run,
            change.job.as_deref(),
            change.to,
            change.at,
            &change.reason,
        )
        .await?;
        if change.job.is_none() {
            notify_run(&mut tx, &change).await?;
        }
        let line = format!("{}: {}", change.to, change.reason);
        let seq = append_log(
            &mut tx,
            change.run,
            change.job.as_deref(),
            change.at,
            "status",
            &line,
        )
        .await?;
        tx.commit().await?;
        Ok(seq)
    }

    async fn run_statuses(&self, id: RunId) -> Result<Vec<RunStatusEntry>> {
        let rows: Vec<(Option<String>, String, Millis, String)> = sqlx::query_as(
            "SELECT job, status, at, reason FROM pipeline_statuses WHERE run_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(job, status, at, reason)| {
                Ok(RunStatusEntry {
                    job,
                    status: parse_status(&status)?,
                    at,
                    reason,
                })
            })
            .collect()
    }

    async fn set_committed_at(&self, id: RunId, committed_at: Millis) -> Result<()> {
        let updated = sqlx::query("UPDATE pipeline_runs SET committed_at = ? WHERE id = ?")
            .bind(committed_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(updated.rows_affected(), || format!("run {id}"))
    }

    async fn set_job_deployment(
        &self,
        id: RunId,
        job: &str,
        deployment: DeploymentId,
    ) -> Result<()> {
        let updated =
            sqlx::query("UPDATE pipeline_jobs SET deployment_id = ? WHERE run_id = ? AND name = ?")
                .bind(deployment)
                .bind(id)
                .bind(job)
                .execute(&self.pool)
                .await?;
        found(updated.rows_affected(), || format!("job {job} of run {id}"))
    }

    async fn job_of_deployment(
        &self,
        deployment: DeploymentId,
    ) -> Result<Option<(RunId, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT j.run_id, r.pipeline, j.name FROM pipeline_jobs j \
             JOIN pipeline_runs r ON r.id = j.run_id WHERE j.deployment_id = ?",
        )
        .bind(deployment)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn append_run_log(
        &self,
        id: RunId,
        job: Option<&str>,
        at: Millis,
        stream: &str,
        message: &str,
    ) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        append_log(&mut conn, id, job, at, stream, message).await
    }

    async fn run_logs(
        &self,
        id: RunId,
        job: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<RunLogLine>> {
        let rows: Vec<(i64, Option<String>, Millis, String, String)> = sqlx::query_as(
            "SELECT seq, job, at, stream, message FROM pipeline_logs \
             WHERE run_id = ? AND seq > ? AND (? IS NULL OR job = ?) ORDER BY seq LIMIT ?",
        )
        .bind(id)
        .bind(after_seq)
        .bind(job)
        .bind(job)
        .bind(i64::from(limit.min(MAX_LOG_LIMIT)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, job, at, stream, message)| RunLogLine {
                seq,
                job,
                at,
                stream,
                message,
            })
            .collect())
    }
}

// === helpers ===

async fn append_status(
    conn: &mut SqliteConnection,
    run: RunId,
    job: Option<&str>,
    status: Status,
    at: Millis,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO pipeline_statuses (run_id, seq, job, status, at, reason) \
         SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? \
         FROM pipeline_statuses WHERE run_id = ?",
    )
    .bind(run)
    .bind(job)
    .bind(status.as_str())
    .bind(at)
    .bind(reason)
    .bind(run)
    .execute(conn)
    .await?;
    Ok(())
}

/// One statement: SQLite holds the write lock from the MAX(seq) read to the insert, so
/// concurrent appends never pick the same seq.
async fn append_log(
    conn: &mut SqliteConnection,
    id: RunId,
    job: Option<&str>,
    at: Millis,
    stream: &str,
    message: &str,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO pipeline_logs (run_id, seq, job, at, stream, message) \
         SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? \
         FROM pipeline_logs WHERE run_id = ? RETURNING seq",
    )
    .bind(id)
    .bind(job)
    .bind(at)
    .bind(stream)
    .bind(message)
    .bind(id)
    .fetch_one(conn)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.kind() == ErrorKind::ForeignKeyViolation => {
            Error::NotFound {
                what: format!("run {id}"),
            }
        }
        e => e.into(),
    })
}

async fn load_run(conn: &mut SqliteConnection, id: RunId) -> Result<Run> {
    let row: Option<RunRow> = sqlx::query_as(&format!("{SELECT_RUNS} WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let row = row.ok_or_else(|| Error::NotFound {
        what: format!("run {id}"),
    })?;
    with_jobs(conn, vec![row])
        .await?
        .pop()
        .ok_or_else(|| Error::NotFound {
            what: format!("run {id}"),
        })
}

/// The runs of `rows` with their jobs, loaded in one query per page of runs.
pub(crate) async fn with_jobs(conn: &mut SqliteConnection, rows: Vec<RunRow>) -> Result<Vec<Run>> {
    let mut jobs: BTreeMap<RunId, Vec<RunJob>> = BTreeMap::new();
    for chunk in rows.chunks(crate::sqlite::IDS_PER_QUERY) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT run_id, name, needs, kind, status, attempt, started_at, finished_at, \
             outputs, deployment_id, reason FROM pipeline_jobs WHERE run_id IN (",
        );
        let mut list = query.separated(", ");
        for row in chunk {
            list.push_bind(row.id);
        }
        query.push(") ORDER BY run_id, position");
        let rows: Vec<JobRow> = query.build_query_as().fetch_all(&mut *conn).await?;
        for row in rows {
            jobs.entry(row.run_id).or_default().push(row.into_job()?);
        }
    }
    rows.into_iter()
        .map(|row| {
            let run_jobs = jobs.remove(&row.id).unwrap_or_default();
            row.into_run(run_jobs)
        })
        .collect()
}

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt {
        message: format!("cannot encode a run's value: {e}"),
    })
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt {
        message: format!("{what} does not parse: {e}"),
    })
}

fn parse_status(value: &str) -> Result<Status> {
    Status::parse(value).ok_or_else(|| Error::Corrupt {
        message: format!("a run has the unknown status {value:?}"),
    })
}

fn found(rows_affected: u64, what: impl FnOnce() -> String) -> Result<()> {
    if rows_affected == 0 {
        Err(Error::NotFound { what: what() })
    } else {
        Ok(())
    }
}

// === rows ===

#[derive(FromRow)]
pub(crate) struct RunRow {
    pub(crate) id: RunId,
    pipeline: String,
    trigger: String,
    status: String,
    git_commit: Option<String>,
    git_ref: Option<String>,
    committed_at: Option<Millis>,
    inputs: String,
    concurrency_group: Option<String>,
    created_by: String,
    created_at: Millis,
    started_at: Option<Millis>,
    finished_at: Option<Millis>,
    reason: String,
}

impl RunRow {
    fn into_run(self, jobs: Vec<RunJob>) -> Result<Run> {
        let id = self.id;
        Ok(Run {
            id,
            trigger: Trigger::parse(&self.trigger).ok_or_else(|| Error::Corrupt {
                message: format!("run {id}: unknown trigger {:?}", self.trigger),
            })?,
            status: parse_status(&self.status)?,
            inputs: from_json(&format!("run {id}'s inputs"), &self.inputs)?,
            pipeline: self.pipeline,
            commit: self.git_commit,
            git_ref: self.git_ref,
            committed_at: self.committed_at,
            group: self.concurrency_group,
            created_by: self.created_by,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            reason: self.reason,
            jobs,
        })
    }
}

#[derive(FromRow)]
struct JobRow {
    run_id: RunId,
    name: String,
    needs: String,
    kind: String,
    status: String,
    attempt: i64,
    started_at: Option<Millis>,
    finished_at: Option<Millis>,
    outputs: String,
    deployment_id: Option<DeploymentId>,
    reason: String,
}

impl JobRow {
    fn into_job(self) -> Result<RunJob> {
        let what = format!("job {} of run {}", self.name, self.run_id);
        Ok(RunJob {
            needs: from_json(&format!("{what}: needs"), &self.needs)?,
            kind: JobKind::parse(&self.kind).ok_or_else(|| Error::Corrupt {
                message: format!("{what}: unknown kind {:?}", self.kind),
            })?,
            status: parse_status(&self.status)?,
            attempt: u32::try_from(self.attempt).map_err(|_| Error::Corrupt {
                message: format!("{what}: attempt {} is out of range", self.attempt),
            })?,
            started_at: self.started_at,
            finished_at: self.finished_at,
            outputs: from_json(&format!("{what}: outputs"), &self.outputs)?,
            deployment_id: self.deployment_id,
            reason: self.reason,
            name: self.name,
        })
    }
}

/// A run's start and end enter the notification outbox in the same transaction as the
/// change, so a webhook hears of every run exactly as the history has it.
async fn notify_run(conn: &mut SqliteConnection, change: &RunChange) -> Result<()> {
    let kind = match change.to {
        Status::InProgress => RunEventKind::Started,
        Status::Success => RunEventKind::Succeeded,
        Status::Failure => RunEventKind::Failed,
        _ => return Ok(()),
    };
    let (pipeline, commit, actor): (String, Option<String>, String) =
        sqlx::query_as("SELECT pipeline, git_commit, created_by FROM pipeline_runs WHERE id = ?")
            .bind(change.run)
            .fetch_one(&mut *conn)
            .await?;
    let event = RunEvent {
        run_id: change.run,
        pipeline,
        kind,
        commit,
        at: change.at,
        actor,
        reason: change.reason.clone(),
    };
    crate::notifications::outbox_run(conn, &event).await?;
    Ok(())
}
