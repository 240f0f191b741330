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
    /// Ordered by creation (then id).
    async fn dora_records(&self, filter: &DoraFilter) -> Result<Vec<DoraRecord>>;
}

/// SQLite hands rows to sqlx one at a time through a channel (microseconds each), so the
/// facts come packed: one row per (app, environment), its deployments joined into one
/// text of `id,rollback,created,committed,succeeded,failed,rolled_back` records.
const PACKED: &str = "SELECT app, environment, group_concat(deployment_id || ',' || \
     (kind = 'rollback') || ',' || created_at || ',' || IFNULL(committed_at, '') || ',' || \
     IFNULL(succeeded_at, '') || ',' || IFNULL(failed_at, '') || ',' || \
     IFNULL(rolled_back_at, ''), ';') FROM dora_facts \
     WHERE created_at BETWEEN ? AND ? AND (? IS NULL OR app = ?) \
     AND (? IS NULL OR environment = ?) GROUP BY app, environment";

fn unpack(app: &str, environment: &str, packed: &str, out: &mut Vec<DoraRecord>) -> Result<()> {
    let corrupt = |record: &str| Error::Corrupt {
        message: format!("dora_facts of {app}/{environment}: bad record {record:?}"),
    };
    for record in packed.split(';') {
        let mut fields = record.split(',');
        let mut next = || fields.next().ok_or_else(|| corrupt(record));
        let number = |f: &str| f.parse::<i64>().map_err(|_| corrupt(record));
        let optional = |f: &str| {
            if f.is_empty() {
                Ok(None)
            } else {
                number(f).map(Some)
            }
        };
        let id = number(next()?)?;
        let kind = if next()? == "1" {
            Kind::Rollback
        } else {
            Kind::Deploy
        };
        out.push(DoraRecord {
            id,
            app: app.to_owned(),
            environment: environment.to_owned(),
            kind,
            created_at: number(next()?)?,
            committed_at: optional(next()?)?,
            succeeded_at: optional(next()?)?,
            failed_at: optional(next()?)?,
            rolled_back_at: optional(next()?)?,
        });
    }
    Ok(())
}

#[async_trait::async_trait]
impl DoraStore for SqliteStore {
    async fn dora_records(&self, filter: &DoraFilter) -> Result<Vec<DoraRecord>> {
        let groups: Vec<(String, String, String)> = sqlx::query_as(PACKED)
            .bind(filter.since)
            .bind(filter.until)
            .bind(&filter.app)
            .bind(&filter.app)
            .bind(&filter.environment)
            .bind(&filter.environment)
            .fetch_all(&self.pool)
            .await?;
        let mut records = Vec::new();
        for (app, environment, packed) in &groups {
            unpack(app, environment, packed, &mut records)?;
        }
        records.sort_unstable_by_key(|r| (r.created_at, r.id));
        Ok(records)
    }
}
