//! The history of schema migrations: which deployment ran `up`, with which commands, and
//! what a rollback later did with its `down` (migration 0007). A trait of its own beside
//! [`crate::Store`].

use slipway_core::migration::{MigrationRun, Undo, UndoState};
use slipway_core::{DeploymentId, Millis};

use crate::sqlite::SqliteStore;
use crate::{Error, Result};

#[async_trait::async_trait]
pub trait MigrationStore: Send + Sync {
    /// Records that `run.deployment_id`'s rollout ran `up` (again, after a restart:
    /// the record is replaced, its undo cleared).
    async fn record_migration(&self, run: &MigrationRun) -> Result<()>;

    /// The `up` a deployment ran, if it ran one.
    async fn migration_of(&self, id: DeploymentId) -> Result<Option<MigrationRun>>;

    /// Every migration of an app in an environment, oldest first.
    async fn migrations(&self, app: &str, environment: &str) -> Result<Vec<MigrationRun>>;

    /// Records what a rollback did with the `down` of deployment `id`'s migration.
    /// [`Error::NotFound`] when that deployment ran none.
    async fn record_undo(&self, id: DeploymentId, undo: &Undo) -> Result<()>;
}

type RunRow = (
    DeploymentId,
    String,
    String,
    String,
    String,
    Millis,
    bool,
    Option<String>,
    Option<String>,
    Option<DeploymentId>,
    Option<Millis>,
    Option<String>,
);

const SELECT_RUNS: &str = "SELECT deployment_id, app, environment, version, up, ran_at, \
     reversible, down, undo_state, undo_by, undo_at, undo_note FROM migration_runs";

fn run(row: RunRow) -> Result<MigrationRun> {
    let (
        deployment_id,
        app,
        environment,
        version,
        up,
        ran_at,
        reversible,
        down,
        state,
        by,
        at,
        note,
    ) = row;
    let undo = match (state, by) {
        (Some(state), Some(by)) => Some(Undo {
            state: UndoState::parse(&state).ok_or_else(|| Error::Corrupt {
                message: format!("migration of deployment {deployment_id}: undo state {state:?}"),
            })?,
            by,
            at: at.unwrap_or_default(),
            note: note.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(MigrationRun {
        deployment_id,
        app,
        environment,
        version,
        up,
        ran_at,
        reversible,
        down,
        undo,
    })
}

#[async_trait::async_trait]
impl MigrationStore for SqliteStore {
    async fn record_migration(&self, r: &MigrationRun) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO migration_runs (deployment_id, app, environment, version, \
             up, ran_at, reversible, down) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.deployment_id)
        .bind(&r.app)
        .bind(&r.environment)
        .bind(&r.version)
        .bind(&r.up)
        .bind(r.ran_at)
        .bind(r.reversible)
        .bind(&r.down)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn migration_of(&self, id: DeploymentId) -> Result<Option<MigrationRun>> {
        let row: Option<RunRow> = sqlx::query_as(&format!("{SELECT_RUNS} WHERE deployment_id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(run).transpose()
    }

    async fn migrations(&self, app: &str, environment: &str) -> Result<Vec<MigrationRun>> {
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "{SELECT_RUNS} WHERE app = ? AND environment = ? ORDER BY deployment_id"
        ))
        .bind(app)
        .bind(environment)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(run).collect()
    }

    async fn record_undo(&self, id: DeploymentId, undo: &Undo) -> Result<()> {
        let done = sqlx::query(
            "UPDATE migration_runs SET undo_state = ?, undo_by = ?, undo_at = ?, undo_note = ? \
             WHERE deployment_id = ?",
        )
        .bind(undo.state.as_str())
        .bind(undo.by)
        .bind(undo.at)
        .bind(&undo.note)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: format!("migration of deployment {id}"),
            });
        }
        Ok(())
    }
}
