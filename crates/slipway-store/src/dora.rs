//! What the DORA metrics read: one [`DoraRecord`] per deployment, from the `dora_facts`
//! table the database keeps in step with the status history (migration 0005).

use slipway_core::dora::DoraRecord;
use slipway_core::{Kind, Millis};

use crate::sqlite::SqliteStore;
use crate::{Error, Result};

/// Which deployments [`DoraStore::dora_records`] returns; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DoraFilter {
    pub app: Option<String>,
    pub environment: Option<String>,
    /// Created at or after.
    pub since: Millis,
    /// Created at or before.
    pub until: Millis,
}

#[async_trait::async_trait]
pub trait DoraStore: Send + Sync {
    /// Ordered by creation.
    async fn dora_records(&self, filter: &DoraFilter) -> Result<Vec<DoraRecord>>;
}

type FactRow = (
    i64,
    String,
    String,
    String,
    Millis,
    Option<Millis>,
    Option<Millis>,
    Option<Millis>,
    Option<Millis>,
);

#[async_trait::async_trait]
impl DoraStore for SqliteStore {
    async fn dora_records(&self, filter: &DoraFilter) -> Result<Vec<DoraRecord>> {
        let rows: Vec<FactRow> = sqlx::query_as(
            "SELECT deployment_id, app, environment, kind, created_at, committed_at, \
             succeeded_at, failed_at, rolled_back_at FROM dora_facts \
             WHERE created_at BETWEEN ? AND ? AND (? IS NULL OR app = ?) \
             AND (? IS NULL OR environment = ?) ORDER BY created_at, deployment_id",
        )
        .bind(filter.since)
        .bind(filter.until)
        .bind(&filter.app)
        .bind(&filter.app)
        .bind(&filter.environment)
        .bind(&filter.environment)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(
                    id,
                    app,
                    environment,
                    kind,
                    created_at,
                    committed_at,
                    succeeded_at,
                    failed_at,
                    rolled_back_at,
                )| {
                    Ok(DoraRecord {
                        kind: Kind::parse(&kind).ok_or_else(|| Error::Corrupt {
                            message: format!("deployment {id}: unknown kind {kind:?}"),
                        })?,
                        id,
                        app,
                        environment,
                        created_at,
                        committed_at,
                        succeeded_at,
                        failed_at,
                        rolled_back_at,
                    })
                },
            )
            .collect()
    }
}
