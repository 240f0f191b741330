//! DORA metrics over one million stored deployments (20 apps, two environments, two
//! years; every tenth fails, some are rolled back by hand): the store's read plus the
//! pure computation, for the default 30-day window and for the whole history.
//! Target: under 200 ms. Median of 5 runs each.
//!
//! Run: `cargo bench -p slipway-store --bench dora`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::time::{Duration, Instant};

use slipway_core::dora::{Window, reports};
use slipway_store::{DoraFilter, DoraStore, SqliteStore};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

const DEPLOYMENTS: i64 = 1_000_000;
const DAY: i64 = 86_400_000;
const SPAN: i64 = 730 * DAY;
const BASE: i64 = 1_700_000_000_000;
const TARGET: Duration = Duration::from_millis(200);

async fn fill(path: &std::path::Path) {
    let store = SqliteStore::open(path).await.unwrap();
    store.close().await;
    let mut db = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    let step = SPAN / DEPLOYMENTS;
    let mut tx = db.begin().await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1) \
         INSERT INTO deployments (app, environment, version, committed_at, kind, status, phase, \
         created_by, created_at, updated_at) \
         SELECT 'app-' || (i % 20), CASE WHEN i % 3 = 0 THEN 'staging' ELSE 'production' END, \
         'v' || i, ?2 + i * ?3 - 3600000 * (1 + i % 48), \
         CASE WHEN i % 50 = 7 THEN 'rollback' ELSE 'deploy' END, \
         CASE WHEN i % 10 = 0 THEN 'failure' ELSE 'success' END, 'done', 'bench', \
         ?2 + i * ?3, ?2 + i * ?3 FROM n",
    )
    .bind(DEPLOYMENTS)
    .bind(BASE)
    .bind(step)
    .execute(&mut *tx)
    .await
    .unwrap();
    for sql in [
        "INSERT INTO deployment_statuses SELECT id, 1, 'queued', created_at, 'bench', '' FROM deployments",
        "INSERT INTO deployment_statuses SELECT id, 2, 'in_progress', created_at + 1000, 'bench', '' FROM deployments",
        "INSERT INTO deployment_statuses SELECT id, 3, status, created_at + 300000, 'bench', '' FROM deployments",
        "INSERT INTO deployment_statuses SELECT id, 4, 'rolled_back', created_at + 3600000, 'bench', '' \
         FROM deployments WHERE status = 'success' AND id % 40 = 3",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    db.close().await.unwrap();
}

struct Timing {
    total: Duration,
    read: Duration,
    records: usize,
    groups: usize,
}

async fn time(store: &SqliteStore, since: i64, until: i64) -> Timing {
    let mut runs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let records = store
            .dora_records(&DoraFilter {
                since,
                until,
                ..Default::default()
            })
            .await
            .unwrap();
        let read = started.elapsed();
        let out = reports(&records, Window { since, until }, DAY);
        runs.push(Timing {
            total: started.elapsed(),
            read,
            records: records.len(),
            groups: out.len(),
        });
    }
    runs.sort_by_key(|t| t.total);
    runs.swap_remove(runs.len() / 2)
}

fn line(what: &str, t: Timing) {
    println!(
        "  {what:<26} {:>8.1} ms (store read {:>7.1} ms)  target {} ms  ratio {:.2}  {}  ({} deployments, {} app/environment reports)",
        t.total.as_secs_f64() * 1e3,
        t.read.as_secs_f64() * 1e3,
        TARGET.as_millis(),
        t.total.as_secs_f64() / TARGET.as_secs_f64(),
        if t.total < TARGET {
            "ok"
        } else {
            "OVER TARGET"
        },
        t.records,
        t.groups,
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slipway.db");
    let started = Instant::now();
    fill(&path).await;
    println!(
        "DORA over {DEPLOYMENTS} stored deployments (database filled in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let store = SqliteStore::open(&path).await.unwrap();
    let until = BASE + SPAN;
    line(
        "last 30 days, all apps",
        time(&store, until - 30 * DAY, until).await,
    );
    line("whole history (2 years)", time(&store, 0, until).await);
}
