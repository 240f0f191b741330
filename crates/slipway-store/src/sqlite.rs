use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use slipway_config::Role;
use slipway_core::{
    Approval, Decision, Deployment, DeploymentId, Force, Instance, InstanceState, Kind, LogLine,
    Millis, Phase, Release, Status, StatusChange, UserRecord,
};
use sqlx::error::ErrorKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{FromRow, QueryBuilder, Sqlite};

use crate::{
    DEFAULT_LIST_LIMIT, DeploymentFilter, Error, MAX_LIST_LIMIT, MAX_LOG_LIMIT, NewDeployment,
    OutboxEntry, Result, Store,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite serialises writers anyway; more connections only help concurrent readers.
const MAX_CONNECTIONS: u32 = 8;
/// Ids per `IN (…)` list, well below SQLite's limit of 32766 bound parameters.
pub(crate) const IDS_PER_QUERY: usize = 1000;

/// Write transactions take the write lock up front: a deferred transaction that reads
/// first and writes later fails at once with SQLITE_BUSY when another writer got in
/// between, instead of waiting for the busy timeout.
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

macro_rules! deployment_columns {
    () => {
        "id, app, environment, version, git_commit, git_ref, committed_at, digest, kind, \
         status, phase, created_by, created_at, updated_at, rolled_back_from, force_by, \
         force_reason, step"
    };
}

pub(crate) const SELECT_DEPLOYMENTS: &str =
    concat!("SELECT ", deployment_columns!(), " FROM deployments");

/// The SQLite [`Store`]: one database file in WAL mode, migrated on open.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

/// Creates the database file readable by this user only (it holds deployments, logs and
/// token hashes), and makes an older one, and its WAL files, private too. SQLite creates
/// `-wal` and `-shm` with the mode of the database file, so they follow.
fn make_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let private = |p: &Path, source| Error::Permissions {
        path: p.to_path_buf(),
        source,
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| private(path, e))?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        if file.exists() {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| private(file, e))?;
        }
    }
    Ok(())
}

// === impl SqliteStore ===

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the database file and applies the
    /// migrations it has not seen yet.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        make_private(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    /// A private, empty, migrated database in memory, for tests.
    pub async fn open_in_memory() -> Result<SqliteStore> {
        // Every connection to `:memory:` is a database of its own, so the pool holds
        // exactly one connection and never closes it.
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<SqliteStore> {
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// Waits for the connections in use to be returned, then closes them all, so the
    /// write-ahead log is checkpointed into the database file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create_deployment(&self, new: NewDeployment) -> Result<Deployment> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let (force_by, force_reason) = match new.force {
            Some(Force { by, reason }) => (Some(by), Some(reason)),
            None => (None, None),
        };
        let id: DeploymentId = sqlx::query_scalar(
            "INSERT INTO deployments (app, environment, version, git_commit, git_ref, \
             committed_at, digest, kind, status, phase, created_by, created_at, updated_at, \
             rolled_back_from, force_by, force_reason) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.app)
        .bind(&new.environment)
        .bind(&new.release.version)
        .bind(&new.release.commit)
        .bind(&new.release.git_ref)
        .bind(new.release.committed_at)
        .bind(&new.release.digest)
        .bind(new.kind.as_str())
        .bind(Status::Queued.as_str())
        .bind(Phase::Pending.as_str())
        .bind(&new.created_by)
        .bind(new.created_at)
        .bind(new.created_at)
        .bind(&new.rolled_back_from)
        .bind(force_by)
        .bind(force_reason)
        .fetch_one(&mut *tx)
        .await?;
        let first = StatusChange {
            status: Status::Queued,
            at: new.created_at,
            actor: new.created_by,
            reason: new.reason,
        };
        append_status(&mut tx, id, &first).await?;
        let deployment = load_one(&mut tx, id).await?;
        tx.commit().await?;
        Ok(deployment)
    }

    async fn get_deployment(&self, id: DeploymentId) -> Result<Deployment> {
        // A read transaction: the row and its history come from one snapshot.
        let mut tx = self.pool.begin().await?;
        load_one(&mut tx, id).await
    }

    async fn list_deployments(&self, filter: &DeploymentFilter) -> Result<Vec<Deployment>> {
        let limit = filter
            .limit
            .unwrap_or(DEFAULT_LIST_LIMIT)
            .min(MAX_LIST_LIMIT);
        let mut query = QueryBuilder::<Sqlite>::new(SELECT_DEPLOYMENTS);
        query.push(" WHERE 1 = 1");
        if let Some(app) = &filter.app {
            query.push(" AND app = ").push_bind(app.as_str());
        }
        if let Some(env) = &filter.environment {
            query.push(" AND environment = ").push_bind(env.as_str());
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(kind) = filter.kind {
            query.push(" AND kind = ").push_bind(kind.as_str());
        }
        // Ids grow with every insert, so they order by creation even when clocks do not.
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let mut tx = self.pool.begin().await?;
        let rows = query.build_query_as().fetch_all(&mut *tx).await?;
        complete(&mut tx, rows).await
    }

    async fn unfinished_deployments(&self) -> Result<Vec<Deployment>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as(concat!(
            "SELECT ",
            deployment_columns!(),
            " FROM deployments WHERE status IN (?, ?, ?) ORDER BY id"
        ))
        .bind(Status::Queued.as_str())
        .bind(Status::Waiting.as_str())
        .bind(Status::InProgress.as_str())
        .fetch_all(&mut *tx)
        .await?;
        complete(&mut tx, rows).await
    }

    async fn transition(
        &self,
        id: DeploymentId,
        from: Status,
        change: StatusChange,
    ) -> Result<Deployment> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        // The status check and the write are one statement: no other writer can slip in
        // between, and `rows_affected` tells whether `from` still held.
        let updated = sqlx::query(
            "UPDATE deployments SET status = ?, updated_at = MAX(updated_at, ?) \
             WHERE id = ? AND status = ?",
        )
        .bind(change.status.as_str())
        .bind(change.at)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            let current: Option<String> =
                sqlx::query_scalar("SELECT status FROM deployments WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return match current {
                None => Err(deployment_not_found(id)),
                Some(current) => Err(Error::Conflict {
                    current: parse_field(id, "status", &current, Status::parse)?,
                }),
            };
        }
        append_status(&mut tx, id, &change).await?;
        let deployment = load_one(&mut tx, id).await?;
        tx.commit().await?;
        Ok(deployment)
    }

    async fn set_phase(&self, id: DeploymentId, phase: Phase) -> Result<()> {
        let updated = sqlx::query("UPDATE deployments SET phase = ? WHERE id = ?")
            .bind(phase.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(id, updated.rows_affected())
    }

    async fn set_step(&self, id: DeploymentId, step: u32) -> Result<()> {
        let updated = sqlx::query("UPDATE deployments SET step = ? WHERE id = ?")
            .bind(i64::from(step))
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(id, updated.rows_affected())
    }

    async fn set_digest(&self, id: DeploymentId, digest: &str) -> Result<()> {
        let updated = sqlx::query("UPDATE deployments SET digest = ? WHERE id = ?")
            .bind(digest)
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(id, updated.rows_affected())
    }

    async fn set_force(&self, id: DeploymentId, force: Force) -> Result<()> {
        let updated =
            sqlx::query("UPDATE deployments SET force_by = ?, force_reason = ? WHERE id = ?")
                .bind(force.by)
                .bind(force.reason)
                .bind(id)
                .execute(&self.pool)
                .await?;
        found(id, updated.rows_affected())
    }

    async fn add_approval(&self, id: DeploymentId, approval: Approval) -> Result<Deployment> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let updated =
            sqlx::query("UPDATE deployments SET updated_at = MAX(updated_at, ?) WHERE id = ?")
                .bind(approval.at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        found(id, updated.rows_affected())?;
        sqlx::query(
            "INSERT INTO deployment_approvals (deployment_id, user_name, decision, comment, at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&approval.user)
        .bind(approval.decision.as_str())
        .bind(&approval.comment)
        .bind(approval.at)
        .execute(&mut *tx)
        .await?;
        crate::notifications::outbox_decision(&mut tx, id, &approval).await?;
        let deployment = load_one(&mut tx, id).await?;
        tx.commit().await?;
        Ok(deployment)
    }

    async fn latest_with_status(
        &self,
        app: &str,
        env: &str,
        statuses: &[Status],
    ) -> Result<Option<Deployment>> {
        if statuses.is_empty() {
            return Ok(None);
        }
        let mut query = QueryBuilder::<Sqlite>::new(SELECT_DEPLOYMENTS);
        query
            .push(" WHERE app = ")
            .push_bind(app)
            .push(" AND environment = ")
            .push_bind(env)
            .push(" AND status IN (");
        let mut list = query.separated(", ");
        for status in statuses {
            list.push_bind(status.as_str());
        }
        query.push(") ORDER BY id DESC LIMIT 1");
        let mut tx = self.pool.begin().await?;
        let rows = query.build_query_as().fetch_all(&mut *tx).await?;
        Ok(complete(&mut tx, rows).await?.pop())
    }

    async fn release_succeeded_in(
        &self,
        app: &str,
        env: &str,
        version: &str,
        digest: Option<&str>,
    ) -> Result<bool> {
        let succeeded: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM deployments \
             WHERE app = ? AND environment = ? AND version = ? AND status IN (?, ?) \
             AND (? IS NULL OR digest = ?))",
        )
        .bind(app)
        .bind(env)
        .bind(version)
        .bind(Status::Success.as_str())
        .bind(Status::Inactive.as_str())
        .bind(digest)
        .bind(digest)
        .fetch_one(&self.pool)
        .await?;
        Ok(succeeded)
    }

    async fn append_log(
        &self,
        id: DeploymentId,
        at: Millis,
        source: &str,
        message: &str,
    ) -> Result<i64> {
        // One statement: SQLite holds the write lock from the MAX(seq) read to the insert,
        // so concurrent appends never pick the same seq.
        sqlx::query_scalar(
            "INSERT INTO deployment_logs (deployment_id, seq, at, source, message) \
             SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? \
             FROM deployment_logs WHERE deployment_id = ? RETURNING seq",
        )
        .bind(id)
        .bind(at)
        .bind(source)
        .bind(message)
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match kind(&e) {
            Some(ErrorKind::ForeignKeyViolation) => deployment_not_found(id),
            _ => e.into(),
        })
    }

    async fn logs(&self, id: DeploymentId, after_seq: i64, limit: u32) -> Result<Vec<LogLine>> {
        let lines = sqlx::query_as::<_, (i64, i64, String, String)>(
            "SELECT seq, at, source, message FROM deployment_logs \
             WHERE deployment_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(id)
        .bind(after_seq)
        .bind(i64::from(limit.min(MAX_LOG_LIMIT)))
        .fetch_all(&self.pool)
        .await?;
        Ok(lines
            .into_iter()
            .map(|(seq, at, source, message)| LogLine {
                seq,
                deployment_id: id,
                at,
                source,
                message,
            })
            .collect())
    }

    async fn put_instance(&self, instance: &Instance) -> Result<()> {
        sqlx::query(
            "INSERT INTO instances (id, app, environment, version, deployment_id, handle, addr, \
             state, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET app = excluded.app, \
             environment = excluded.environment, version = excluded.version, \
             deployment_id = excluded.deployment_id, handle = excluded.handle, \
             addr = excluded.addr, state = excluded.state, started_at = excluded.started_at",
        )
        .bind(&instance.id)
        .bind(&instance.app)
        .bind(&instance.environment)
        .bind(&instance.version)
        .bind(instance.deployment_id)
        .bind(&instance.handle)
        .bind(&instance.addr)
        .bind(instance.state.as_str())
        .bind(instance.started_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn instances(&self, app: Option<&str>, env: Option<&str>) -> Result<Vec<Instance>> {
        let rows: Vec<InstanceRow> = sqlx::query_as(
            "SELECT id, app, environment, version, deployment_id, handle, addr, state, \
             started_at FROM instances \
             WHERE (? IS NULL OR app = ?) AND (? IS NULL OR environment = ?) \
             ORDER BY app, environment, started_at, id",
        )
        .bind(app)
        .bind(app)
        .bind(env)
        .bind(env)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(InstanceRow::into_instance).collect()
    }

    async fn create_user(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
        at: Millis,
    ) -> Result<UserRecord> {
        let inserted = sqlx::query(
            "INSERT INTO users (name, role, token_hash, created_at, token_set_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(token_hash)
        .bind(at)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(token_taken)?;
        if inserted.rows_affected() == 0 {
            return Err(Error::AlreadyExists {
                what: format!("user {name:?}"),
            });
        }
        Ok(UserRecord {
            name: name.to_owned(),
            role,
            created_at: at,
        })
    }

    async fn set_user_token(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
        at: Millis,
    ) -> Result<UserRecord> {
        // One statement, so two demotions at once cannot both pass the check: the update
        // is skipped (and no row returned) when it would demote the last admin.
        let row: Option<UserRow> = sqlx::query_as(
            "INSERT INTO users (name, role, token_hash, created_at, token_set_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET role = excluded.role, \
             token_hash = excluded.token_hash, token_set_at = excluded.token_set_at \
             WHERE NOT (users.role = 'admin' AND excluded.role <> 'admin' \
                        AND (SELECT COUNT(*) FROM users WHERE role = 'admin') <= 1) \
             RETURNING name, role, created_at",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(token_hash)
        .bind(at)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(token_taken)?;
        match row {
            Some(row) => row.into_user(),
            None => Err(Error::LastAdmin {
                name: name.to_string(),
                role: role.as_str().to_string(),
            }),
        }
    }

    async fn user_by_token_hash(&self, token_hash: &str) -> Result<Option<UserRecord>> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT name, role, created_at FROM users WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        row.map(UserRow::into_user).transpose()
    }

    async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn count_by_status(&self) -> Result<Vec<(Status, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM deployments GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let mut counts: Vec<(Status, i64)> = Status::ALL.iter().map(|&s| (s, 0)).collect();
        for (status, count) in rows {
            let status = Status::parse(&status).ok_or_else(|| Error::Corrupt {
                message: format!("a deployment has the unknown status {status:?}"),
            })?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = count;
            }
        }
        Ok(counts)
    }

    async fn outbox_after(&self, after_seq: i64, limit: u32) -> Result<Vec<OutboxEntry>> {
        crate::notifications::outbox_after(&self.pool, after_seq, limit.min(MAX_LOG_LIMIT)).await
    }

    async fn outbox_cursor(&self, name: &str) -> Result<i64> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM outbox_cursors WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn set_outbox_cursor(&self, name: &str, seq: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox_cursors (name, seq) VALUES (?, ?) \
             ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq)",
        )
        .bind(name)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

// === helpers ===

async fn append_status(
    conn: &mut SqliteConnection,
    id: DeploymentId,
    change: &StatusChange,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deployment_statuses (deployment_id, seq, status, at, actor, reason) \
         SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? \
         FROM deployment_statuses WHERE deployment_id = ?",
    )
    .bind(id)
    .bind(change.status.as_str())
    .bind(change.at)
    .bind(&change.actor)
    .bind(&change.reason)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    crate::notifications::outbox_status(conn, id, change).await
}

async fn load_one(conn: &mut SqliteConnection, id: DeploymentId) -> Result<Deployment> {
    let row: Option<DeploymentRow> = sqlx::query_as(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM deployments WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let row = row.ok_or_else(|| deployment_not_found(id))?;
    complete(conn, vec![row])
        .await?
        .pop()
        .ok_or_else(|| deployment_not_found(id))
}

/// Turns rows into deployments with their histories and approvals, loaded for all rows at
/// once (two queries per [`IDS_PER_QUERY`] rows, not two per row). Keeps the rows' order.
pub(crate) async fn complete(
    conn: &mut SqliteConnection,
    rows: Vec<DeploymentRow>,
) -> Result<Vec<Deployment>> {
    let ids: Vec<DeploymentId> = rows.iter().map(|r| r.id).collect();
    let mut statuses: HashMap<DeploymentId, Vec<StatusChange>> = HashMap::new();
    let mut approvals: HashMap<DeploymentId, Vec<Approval>> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT deployment_id, status, at, actor, reason FROM deployment_statuses \
             WHERE deployment_id IN (",
        );
        push_ids(&mut query, chunk);
        query.push(") ORDER BY deployment_id, seq");
        let rows: Vec<StatusRow> = query.build_query_as().fetch_all(&mut *conn).await?;
        for row in rows {
            let id = row.deployment_id;
            statuses.entry(id).or_default().push(StatusChange {
                status: parse_field(id, "status history entry", &row.status, Status::parse)?,
                at: row.at,
                actor: row.actor,
                reason: row.reason,
            });
        }

        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT deployment_id, user_name, decision, comment, at FROM deployment_approvals \
             WHERE deployment_id IN (",
        );
        push_ids(&mut query, chunk);
        query.push(") ORDER BY deployment_id, id");
        let rows: Vec<ApprovalRow> = query.build_query_as().fetch_all(&mut *conn).await?;
        for row in rows {
            let id = row.deployment_id;
            approvals.entry(id).or_default().push(Approval {
                user: row.user_name,
                decision: parse_field(id, "decision", &row.decision, Decision::parse)?,
                comment: row.comment,
                at: row.at,
            });
        }
    }
    rows.into_iter()
        .map(|row| {
            let id = row.id;
            row.into_deployment(
                statuses.remove(&id).unwrap_or_default(),
                approvals.remove(&id).unwrap_or_default(),
            )
        })
        .collect()
}

fn push_ids(query: &mut QueryBuilder<'_, Sqlite>, ids: &[DeploymentId]) {
    let mut list = query.separated(", ");
    for &id in ids {
        list.push_bind(id);
    }
}

fn parse_field<T>(
    id: DeploymentId,
    what: &str,
    value: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T> {
    parse(value).ok_or_else(|| Error::Corrupt {
        message: format!("deployment {id}: unknown {what} {value:?}"),
    })
}

fn deployment_not_found(id: DeploymentId) -> Error {
    Error::NotFound {
        what: format!("deployment {id}"),
    }
}

fn found(id: DeploymentId, rows_affected: u64) -> Result<()> {
    if rows_affected == 0 {
        Err(deployment_not_found(id))
    } else {
        Ok(())
    }
}

fn kind(e: &sqlx::Error) -> Option<ErrorKind> {
    match e {
        sqlx::Error::Database(db) => Some(db.kind()),
        _ => None,
    }
}

/// The only unique key left to violate once the name is handled is the token hash.
fn token_taken(e: sqlx::Error) -> Error {
    match kind(&e) {
        Some(ErrorKind::UniqueViolation) => Error::AlreadyExists {
            what: "a user with this token".to_owned(),
        },
        _ => e.into(),
    }
}

// === rows ===

#[derive(FromRow)]
pub(crate) struct DeploymentRow {
    pub(crate) id: DeploymentId,
    app: String,
    environment: String,
    version: String,
    git_commit: Option<String>,
    git_ref: Option<String>,
    committed_at: Option<Millis>,
    digest: Option<String>,
    kind: String,
    status: String,
    phase: String,
    created_by: String,
    created_at: Millis,
    updated_at: Millis,
    rolled_back_from: Option<String>,
    force_by: Option<String>,
    force_reason: Option<String>,
    step: i64,
}

impl DeploymentRow {
    fn into_deployment(
        self,
        statuses: Vec<StatusChange>,
        approvals: Vec<Approval>,
    ) -> Result<Deployment> {
        let id = self.id;
        let force = match (self.force_by, self.force_reason) {
            (Some(by), Some(reason)) => Some(Force { by, reason }),
            (None, None) => None,
            _ => {
                return Err(Error::Corrupt {
                    message: format!("deployment {id}: force has only one of by and reason"),
                });
            }
        };
        Ok(Deployment {
            id,
            app: self.app,
            environment: self.environment,
            release: Release {
                version: self.version,
                commit: self.git_commit,
                git_ref: self.git_ref,
                committed_at: self.committed_at,
                digest: self.digest,
            },
            kind: parse_field(id, "kind", &self.kind, Kind::parse)?,
            status: parse_field(id, "status", &self.status, Status::parse)?,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            rolled_back_from: self.rolled_back_from,
            force,
            phase: parse_field(id, "phase", &self.phase, Phase::parse)?,
            step: u32::try_from(self.step).map_err(|_| Error::Corrupt {
                message: format!("deployment {id}: step {} is out of range", self.step),
            })?,
            statuses,
            approvals,
        })
    }
}

#[derive(FromRow)]
struct StatusRow {
    deployment_id: DeploymentId,
    status: String,
    at: Millis,
    actor: String,
    reason: String,
}

#[derive(FromRow)]
struct ApprovalRow {
    deployment_id: DeploymentId,
    user_name: String,
    decision: String,
    comment: Option<String>,
    at: Millis,
}

#[derive(FromRow)]
struct InstanceRow {
    id: String,
    app: String,
    environment: String,
    version: String,
    deployment_id: DeploymentId,
    handle: String,
    addr: String,
    state: String,
    started_at: Millis,
}

impl InstanceRow {
    fn into_instance(self) -> Result<Instance> {
        let state = InstanceState::parse(&self.state).ok_or_else(|| Error::Corrupt {
            message: format!("instance {}: unknown state {:?}", self.id, self.state),
        })?;
        Ok(Instance {
            id: self.id,
            app: self.app,
            environment: self.environment,
            version: self.version,
            deployment_id: self.deployment_id,
            handle: self.handle,
            addr: self.addr,
            state,
            started_at: self.started_at,
        })
    }
}

#[derive(FromRow)]
struct UserRow {
    name: String,
    role: String,
    created_at: Millis,
}

impl UserRow {
    fn into_user(self) -> Result<UserRecord> {
        let role = Role::parse(&self.role).ok_or_else(|| Error::Corrupt {
            message: format!("user {:?}: unknown role {:?}", self.name, self.role),
        })?;
        Ok(UserRecord {
            name: self.name,
            role,
            created_at: self.created_at,
        })
    }
}
