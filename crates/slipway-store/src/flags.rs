//! Persistence of feature flags: the current definition per (environment, key) and the
//! append-only history of every change with its actor and time. A trait of its own beside
//! [`crate::Store`], so flags need nothing from the deployment side.

use slipway_core::Millis;
use slipway_core::flags::Flag;

use crate::sqlite::SqliteStore;
use crate::{Error, Result};

/// The most history entries one call to [`FlagStore::flag_history`] returns.
pub const MAX_FLAG_HISTORY: u32 = 1000;

/// A flag as stored: its definition and who changed it last.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFlag {
    pub environment: String,
    pub flag: Flag,
    /// 1 for a new flag, one more with every change.
    pub version: i64,
    pub updated_at: Millis,
    pub updated_by: String,
}

/// One entry of a flag's history: what it became, by whose hand, when.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagChange {
    pub environment: String,
    pub version: i64,
    /// `set`, `rollout`, `kill`, `revive`.
    pub action: String,
    pub flag: Flag,
    pub actor: String,
    pub at: Millis,
}

#[async_trait::async_trait]
pub trait FlagStore: Send + Sync {
    /// Every flag of every environment, ordered by environment and key.
    async fn flags(&self) -> Result<Vec<StoredFlag>>;

    async fn flag(&self, environment: &str, key: &str) -> Result<Option<StoredFlag>>;

    /// Creates or replaces the flag `flag.key` of `environment` and appends the change to
    /// its history, in one transaction. The caller has validated the flag.
    async fn put_flag(
        &self,
        environment: &str,
        flag: &Flag,
        action: &str,
        actor: &str,
        at: Millis,
    ) -> Result<StoredFlag>;

    /// Newest first, at most `limit` (capped at [`MAX_FLAG_HISTORY`]).
    async fn flag_history(
        &self,
        environment: &str,
        key: &str,
        limit: u32,
    ) -> Result<Vec<FlagChange>>;
}

fn to_json(flag: &Flag) -> Result<String> {
    serde_json::to_string(flag).map_err(|e| Error::Corrupt {
        message: format!("flag {:?} cannot be encoded: {e}", flag.key),
    })
}

fn from_json(environment: &str, key: &str, definition: &str) -> Result<Flag> {
    serde_json::from_str(definition).map_err(|e| Error::Corrupt {
        message: format!("flag {key:?} of {environment}: stored definition does not parse: {e}"),
    })
}

type FlagRow = (String, String, String, i64, Millis, String);

fn stored(
    (environment, key, definition, version, updated_at, updated_by): FlagRow,
) -> Result<StoredFlag> {
    let flag = from_json(&environment, &key, &definition)?;
    Ok(StoredFlag {
        environment,
        flag,
        version,
        updated_at,
        updated_by,
    })
}

const SELECT_FLAGS: &str =
    "SELECT environment, key, definition, version, updated_at, updated_by FROM flags";

#[async_trait::async_trait]
impl FlagStore for SqliteStore {
    async fn flags(&self) -> Result<Vec<StoredFlag>> {
        let rows: Vec<FlagRow> =
            sqlx::query_as(&format!("{SELECT_FLAGS} ORDER BY environment, key"))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(stored).collect()
    }

    async fn flag(&self, environment: &str, key: &str) -> Result<Option<StoredFlag>> {
        let row: Option<FlagRow> =
            sqlx::query_as(&format!("{SELECT_FLAGS} WHERE environment = ? AND key = ?"))
                .bind(environment)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        row.map(stored).transpose()
    }

    async fn put_flag(
        &self,
        environment: &str,
        flag: &Flag,
        action: &str,
        actor: &str,
        at: Millis,
    ) -> Result<StoredFlag> {
        let definition = to_json(flag)?;
        let mut tx = self.pool.begin_with(crate::sqlite::BEGIN_WRITE).await?;
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO flags (environment, key, definition, version, updated_at, updated_by) \
             VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (environment, key) DO UPDATE SET \
             definition = excluded.definition, version = flags.version + 1, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by \
             RETURNING version",
        )
        .bind(environment)
        .bind(&flag.key)
        .bind(&definition)
        .bind(at)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO flag_changes (environment, key, version, action, definition, actor, at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(environment)
        .bind(&flag.key)
        .bind(version)
        .bind(action)
        .bind(&definition)
        .bind(actor)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(StoredFlag {
            environment: environment.to_owned(),
            flag: flag.clone(),
            version,
            updated_at: at,
            updated_by: actor.to_owned(),
        })
    }

    async fn flag_history(
        &self,
        environment: &str,
        key: &str,
        limit: u32,
    ) -> Result<Vec<FlagChange>> {
        let rows: Vec<(i64, String, String, String, Millis)> = sqlx::query_as(
            "SELECT version, action, definition, actor, at FROM flag_changes \
             WHERE environment = ? AND key = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(environment)
        .bind(key)
        .bind(i64::from(limit.min(MAX_FLAG_HISTORY)))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(version, action, definition, actor, at)| {
                Ok(FlagChange {
                    environment: environment.to_owned(),
                    version,
                    action,
                    flag: from_json(environment, key, &definition)?,
                    actor,
                    at,
                })
            })
            .collect()
    }
}
