//! Pages of the deployment history for the console: filtered, newest first, paged by id
//! (a page's link stays right while new deployments arrive, unlike an offset), with the
//! number of matches. A trait of its own beside [`crate::Store`].

use slipway_core::{Deployment, DeploymentId, Status};
use sqlx::{QueryBuilder, Sqlite};

use crate::sqlite::{SELECT_DEPLOYMENTS, SqliteStore, complete};
use crate::{MAX_LIST_LIMIT, Result};

/// Which page of which deployments; `None` filters do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryQuery {
    pub app: Option<String>,
    pub environment: Option<String>,
    pub status: Option<Status>,
    pub cursor: Cursor,
    /// Rows per page, at most [`MAX_LIST_LIMIT`].
    pub limit: u32,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cursor {
    #[default]
    Newest,
    /// The page of deployments just older than this id.
    Before(DeploymentId),
    /// The page of deployments just newer than this id.
    After(DeploymentId),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Newest first, each with its statuses and approvals.
    pub deployments: Vec<Deployment>,
    /// Deployments that match the filters, on every page.
    pub total: i64,
    /// Whether matching deployments newer (older) than this page exist.
    pub newer: bool,
    pub older: bool,
}

#[async_trait::async_trait]
pub trait HistoryStore: Send + Sync {
    async fn history_page(&self, query: &HistoryQuery) -> Result<HistoryPage>;
}

/// ` WHERE …` of the filters, to which a caller appends ` AND …`.
fn push_filters<'a>(query: &mut QueryBuilder<'a, Sqlite>, q: &'a HistoryQuery) {
    query.push(" WHERE 1 = 1");
    if let Some(app) = &q.app {
        query.push(" AND app = ").push_bind(app.as_str());
    }
    if let Some(env) = &q.environment {
        query.push(" AND environment = ").push_bind(env.as_str());
    }
    if let Some(status) = q.status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
}

#[async_trait::async_trait]
impl HistoryStore for SqliteStore {
    async fn history_page(&self, q: &HistoryQuery) -> Result<HistoryPage> {
        let limit = i64::from(q.limit.clamp(1, MAX_LIST_LIMIT));
        // One read transaction: the page, the count and the neighbours from one snapshot.
        let mut tx = self.pool.begin().await?;

        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM deployments");
        push_filters(&mut count, q);
        let total: i64 = count.build_query_scalar().fetch_one(&mut *tx).await?;

        let mut page = QueryBuilder::<Sqlite>::new(SELECT_DEPLOYMENTS);
        push_filters(&mut page, q);
        match q.cursor {
            Cursor::Newest => page.push(" ORDER BY id DESC"),
            Cursor::Before(id) => page
                .push(" AND id < ")
                .push_bind(id)
                .push(" ORDER BY id DESC"),
            // The oldest of the newer ones first, turned round below.
            Cursor::After(id) => page
                .push(" AND id > ")
                .push_bind(id)
                .push(" ORDER BY id ASC"),
        };
        page.push(" LIMIT ").push_bind(limit);
        let mut rows = page.build_query_as().fetch_all(&mut *tx).await?;
        if matches!(q.cursor, Cursor::After(_)) {
            rows.reverse();
        }
        let deployments = complete(&mut tx, rows).await?;

        let (newer, older) = match (deployments.first(), deployments.last()) {
            (Some(first), Some(last)) => (
                exists(&mut tx, q, " AND id > ", first.id).await?,
                exists(&mut tx, q, " AND id < ", last.id).await?,
            ),
            // Past either end: the way back is the newest page.
            _ => (total > 0, false),
        };
        Ok(HistoryPage {
            deployments,
            total,
            newer,
            older,
        })
    }
}

async fn exists(
    conn: &mut sqlx::SqliteConnection,
    q: &HistoryQuery,
    bound: &str,
    id: DeploymentId,
) -> Result<bool> {
    let mut query = QueryBuilder::<Sqlite>::new("SELECT EXISTS (SELECT 1 FROM deployments");
    push_filters(&mut query, q);
    query.push(bound).push_bind(id).push(")");
    Ok(query.build_query_scalar().fetch_one(conn).await?)
}
