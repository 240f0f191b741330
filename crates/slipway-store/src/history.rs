//! Pages for the console: the deployment history and the pipeline runs, filtered, newest
//! first, paged by id (a page's link stays right while new rows arrive, unlike an
//! offset), with the number of matches. A trait of its own beside [`crate::Store`].

use slipway_core::{Deployment, Status};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};

use crate::pipelines::{Run, RunRow, SELECT_RUNS, with_jobs};
use crate::sqlite::{DeploymentRow, SELECT_DEPLOYMENTS, SqliteStore, complete};
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
    /// The page of rows just older than this id.
    Before(i64),
    /// The page of rows just newer than this id.
    After(i64),
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

/// Which page of which pipeline runs; `None` filters do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunPageQuery {
    pub pipeline: Option<String>,
    pub status: Option<slipway_pipeline::Status>,
    pub cursor: Cursor,
    /// Rows per page, at most [`MAX_LIST_LIMIT`].
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    /// Newest first, each with its jobs.
    pub runs: Vec<Run>,
    /// Runs that match the filters, on every page.
    pub total: i64,
    /// Whether matching runs newer (older) than this page exist.
    pub newer: bool,
    pub older: bool,
}

#[async_trait::async_trait]
pub trait HistoryStore: Send + Sync {
    async fn history_page(&self, query: &HistoryQuery) -> Result<HistoryPage>;

    async fn run_page(&self, query: &RunPageQuery) -> Result<RunPage>;
}

/// What [`paged`] read.
struct Paged<R> {
    rows: Vec<R>,
    total: i64,
    newer: bool,
    older: bool,
}

/// ` WHERE …` of the filters (column, value), to which a caller appends ` AND …`.
fn push_filters<'a>(query: &mut QueryBuilder<'a, Sqlite>, filters: &'a [(&'static str, &'a str)]) {
    query.push(" WHERE 1 = 1");
    for (column, value) in filters {
        query
            .push(format_args!(" AND {column} = "))
            .push_bind(*value);
    }
}

/// One page of the rows of `table` (read with `select`, `id` giving a row's id) whose
/// columns equal the given values, with the count and whether there are more either side.
async fn paged<R>(
    conn: &mut SqliteConnection,
    select: &str,
    table: &str,
    filters: &[(&'static str, &str)],
    cursor: Cursor,
    limit: u32,
    id: impl Fn(&R) -> i64,
) -> Result<Paged<R>>
where
    R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
{
    let limit = i64::from(limit.clamp(1, MAX_LIST_LIMIT));
    let mut count = QueryBuilder::<Sqlite>::new(format!("SELECT COUNT(*) FROM {table}"));
    push_filters(&mut count, filters);
    let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;

    let mut page = QueryBuilder::<Sqlite>::new(select);
    push_filters(&mut page, filters);
    match cursor {
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
    let mut rows: Vec<R> = page.build_query_as().fetch_all(&mut *conn).await?;
    if matches!(cursor, Cursor::After(_)) {
        rows.reverse();
    }
    let (newer, older) = match (rows.first().map(&id), rows.last().map(&id)) {
        (Some(first), Some(last)) => (
            exists(conn, table, filters, " AND id > ", first).await?,
            exists(conn, table, filters, " AND id < ", last).await?,
        ),
        // Past either end: the way back is the newest page.
        _ => (total > 0, false),
    };
    Ok(Paged {
        rows,
        total,
        newer,
        older,
    })
}

async fn exists(
    conn: &mut SqliteConnection,
    table: &str,
    filters: &[(&'static str, &str)],
    bound: &str,
    id: i64,
) -> Result<bool> {
    let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT EXISTS (SELECT 1 FROM {table}"));
    push_filters(&mut query, filters);
    query.push(bound).push_bind(id).push(")");
    Ok(query.build_query_scalar().fetch_one(conn).await?)
}

#[async_trait::async_trait]
impl HistoryStore for SqliteStore {
    async fn history_page(&self, q: &HistoryQuery) -> Result<HistoryPage> {
        let mut filters: Vec<(&'static str, &str)> = Vec::new();
        filters.extend(q.app.as_deref().map(|a| ("app", a)));
        filters.extend(q.environment.as_deref().map(|e| ("environment", e)));
        filters.extend(q.status.map(|s| ("status", s.as_str())));
        // One read transaction: the page, the count and the neighbours from one snapshot.
        let mut tx = self.pool.begin().await?;
        let page = paged(
            &mut tx,
            SELECT_DEPLOYMENTS,
            "deployments",
            &filters,
            q.cursor,
            q.limit,
            |r: &DeploymentRow| r.id,
        )
        .await?;
        Ok(HistoryPage {
            deployments: complete(&mut tx, page.rows).await?,
            total: page.total,
            newer: page.newer,
            older: page.older,
        })
    }

    async fn run_page(&self, q: &RunPageQuery) -> Result<RunPage> {
        let mut filters: Vec<(&'static str, &str)> = Vec::new();
        filters.extend(q.pipeline.as_deref().map(|p| ("pipeline", p)));
        filters.extend(q.status.map(|s| ("status", s.as_str())));
        let mut tx = self.pool.begin().await?;
        let page = paged(
            &mut tx,
            SELECT_RUNS,
            "pipeline_runs",
            &filters,
            q.cursor,
            q.limit,
            |r: &RunRow| r.id,
        )
        .await?;
        Ok(RunPage {
            runs: with_jobs(&mut tx, page.rows).await?,
            total: page.total,
            newer: page.newer,
            older: page.older,
        })
    }
}
