//! Post-deploy watches: when each began and ends, whether a verdict passed, and how it
//! ended (migration 0007), so a restarted server resumes a watch with what is left. A
//! trait of its own beside [`crate::Store`].

use slipway_core::watch::{WatchEnd, WatchRecord};
use slipway_core::{DeploymentId, Millis};

use crate::sqlite::{BEGIN_WRITE, SqliteStore};
use crate::{Error, Result};

#[async_trait::async_trait]
pub trait WatchStore: Send + Sync {
    /// Records a watch that begins (or replaces the record of the same deployment's).
    async fn put_watch(&self, watch: &WatchRecord) -> Result<()>;

    async fn watch_of(&self, id: DeploymentId) -> Result<Option<WatchRecord>>;

    /// The newest watch of an app in an environment, ended or not.
    async fn latest_watch(&self, app: &str, environment: &str) -> Result<Option<WatchRecord>>;

    /// Watches not ended yet, oldest first.
    async fn open_watches(&self) -> Result<Vec<WatchRecord>>;

    /// A check of the watch passed.
    async fn set_watch_passed(&self, id: DeploymentId) -> Result<()>;

    /// Ends the watch of deployment `id` unless it ended already; says whether this call
    /// ended it, so of two racing ends exactly one acts on it. A `Failed` end enters the
    /// notification outbox in the same transaction.
    async fn end_watch(
        &self,
        id: DeploymentId,
        at: Millis,
        end: WatchEnd,
        reason: &str,
    ) -> Result<bool>;

    /// Ends every open watch of an app in an environment; returns the deployments whose
    /// watch it ended.
    async fn end_watches_of(
        &self,
        app: &str,
        environment: &str,
        at: Millis,
        end: WatchEnd,
        reason: &str,
    ) -> Result<Vec<DeploymentId>>;
}

type WatchRow = (
    DeploymentId,
    String,
    String,
    String,
    Millis,
    Millis,
    bool,
    Option<Millis>,
    Option<String>,
    Option<String>,
);

const SELECT_WATCHES: &str = "SELECT deployment_id, app, environment, version, started_at, \
     ends_at, passed, ended_at, result, reason FROM watches";

fn record(row: WatchRow) -> Result<WatchRecord> {
    let (
        deployment_id,
        app,
        environment,
        version,
        started_at,
        ends_at,
        passed,
        ended_at,
        result,
        reason,
    ) = row;
    let ended = match (ended_at, result) {
        (Some(at), Some(result)) => {
            let end = WatchEnd::parse(&result).ok_or_else(|| Error::Corrupt {
                message: format!("watch of deployment {deployment_id}: result {result:?}"),
            })?;
            Some((at, end, reason.unwrap_or_default()))
        }
        _ => None,
    };
    Ok(WatchRecord {
        deployment_id,
        app,
        environment,
        version,
        started_at,
        ends_at,
        passed,
        ended,
    })
}

#[async_trait::async_trait]
impl WatchStore for SqliteStore {
    async fn put_watch(&self, w: &WatchRecord) -> Result<()> {
        let (ended_at, result, reason) = match &w.ended {
            Some((at, end, reason)) => (Some(*at), Some(end.as_str()), Some(reason.as_str())),
            None => (None, None, None),
        };
        sqlx::query(
            "INSERT OR REPLACE INTO watches (deployment_id, app, environment, version, \
             started_at, ends_at, passed, ended_at, result, reason) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(w.deployment_id)
        .bind(&w.app)
        .bind(&w.environment)
        .bind(&w.version)
        .bind(w.started_at)
        .bind(w.ends_at)
        .bind(w.passed)
        .bind(ended_at)
        .bind(result)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn watch_of(&self, id: DeploymentId) -> Result<Option<WatchRecord>> {
        let row: Option<WatchRow> =
            sqlx::query_as(&format!("{SELECT_WATCHES} WHERE deployment_id = ?"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(record).transpose()
    }

    async fn latest_watch(&self, app: &str, environment: &str) -> Result<Option<WatchRecord>> {
        let row: Option<WatchRow> = sqlx::query_as(&format!(
            "{SELECT_WATCHES} WHERE app = ? AND environment = ? \
             ORDER BY deployment_id DESC LIMIT 1"
        ))
        .bind(app)
        .bind(environment)
        .fetch_optional(&self.pool)
        .await?;
        row.map(record).transpose()
    }

    async fn open_watches(&self) -> Result<Vec<WatchRecord>> {
        let rows: Vec<WatchRow> = sqlx::query_as(&format!(
            "{SELECT_WATCHES} WHERE ended_at IS NULL ORDER BY deployment_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(record).collect()
    }

    async fn set_watch_passed(&self, id: DeploymentId) -> Result<()> {
        sqlx::query("UPDATE watches SET passed = 1 WHERE deployment_id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn end_watch(
        &self,
        id: DeploymentId,
        at: Millis,
        end: WatchEnd,
        reason: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let done = sqlx::query(
            "UPDATE watches SET ended_at = ?, result = ?, reason = ? \
             WHERE deployment_id = ? AND ended_at IS NULL",
        )
        .bind(at)
        .bind(end.as_str())
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let ended = done.rows_affected() == 1;
        if ended && end == WatchEnd::Failed {
            crate::notifications::outbox_watch(&mut tx, id, (end, at), reason).await?;
        }
        tx.commit().await?;
        Ok(ended)
    }

    async fn end_watches_of(
        &self,
        app: &str,
        environment: &str,
        at: Millis,
        end: WatchEnd,
        reason: &str,
    ) -> Result<Vec<DeploymentId>> {
        let ended: Vec<DeploymentId> = sqlx::query_scalar(
            "UPDATE watches SET ended_at = ?, result = ?, reason = ? \
             WHERE app = ? AND environment = ? AND ended_at IS NULL RETURNING deployment_id",
        )
        .bind(at)
        .bind(end.as_str())
        .bind(reason)
        .bind(app)
        .bind(environment)
        .fetch_all(&self.pool)
        .await?;
        Ok(ended)
    }
}
