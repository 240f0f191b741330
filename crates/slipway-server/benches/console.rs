//! Issue 10's measurement: the console's pages with 10,000 deployments stored in a real
//! SQLite file (4 apps × 3 environments, each with its history of successes, failures and
//! rollbacks, and one waiting for approval in production) and 3,000 pipeline runs of two
//! pipelines (three jobs each, some failed). For each page, the server's own time (its
//! `Server-Timing` header) and the round trip over loopback, median and p90 of 200
//! requests. Target: median server time under 20 ms.
//!
//! Run: `cargo bench -p slipway-server --bench console` (or `bench/console.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench set-up: a failed step fails the run

use std::time::{Duration, Instant};

use slipway_core::{Kind, Release, Status, StatusChange};
use slipway_pipeline::Status as RunStatus;
use slipway_store::{
    JobKind, NewDeployment, NewJob, NewRun, PipelineStore, RunChange, SqliteStore, Store, Trigger,
};

const DEPLOYMENTS: usize = 10_000;
const RUNS: usize = 3_000;
const PIPELINES: [&str; 2] = ["release", "nightly"];
const JOBS: [&str; 3] = ["build", "test", "deploy"];
const REQUESTS: usize = 200;
const TARGET: Duration = Duration::from_millis(20);
const APPS: [&str; 4] = ["web", "api", "worker", "admin"];
const ENVS: [&str; 3] = ["staging", "qa", "production"];

fn config_yaml(dir: &std::path::Path) -> String {
    let apps: String = APPS
        .iter()
        .map(|a| format!("  {a}:\n    run: \"true {{port}} {{version}}\"\n"))
        .collect();
    format!(
        "version: 1\nserver:\n  listen: 127.0.0.1:0\n  data_dir: {}\napps:\n{apps}environments:\n  \
         staging:\n    listen: 127.0.0.1:0\n  qa:\n    listen: 127.0.0.1:0\n    requires: [staging]\n  \
         production:\n    listen: 127.0.0.1:0\n    requires: [qa]\n    protection:\n      \
         reviewers: [alice]\n      required_approvals: 1\nusers:\n  alice: {{ role: approver }}\n\
         pipelines:\n{pipelines}",
        dir.join("data").display(),
        pipelines = PIPELINES
            .iter()
            .map(|p| format!("  {p}:\n    on: {{ dispatch: {{}} }}\n    jobs:\n      build:\n        steps: [{{ run: \"true\" }}]\n"))
            .collect::<String>()
    )
}

fn change(status: Status, at: i64, reason: &str) -> StatusChange {
    StatusChange {
        status,
        at,
        actor: "engine".to_owned(),
        reason: reason.to_owned(),
    }
}

/// Fills the database the way a long-lived server would have: per (app, environment) a
/// run of deployments, most succeeded then superseded, some failed or rolled back, the
/// newest one the current release, and one waiting for approval in production.
async fn fill(path: &std::path::Path) {
    let store = SqliteStore::open(path).await.unwrap();
    let pairs: Vec<(&str, &str)> = APPS
        .iter()
        .flat_map(|a| ENVS.iter().map(move |e| (*a, *e)))
        .collect();
    let day = 86_400_000i64;
    let start = 1_760_000_000_000i64;
    let mut current: Vec<Option<i64>> = vec![None; pairs.len()];
    for n in 0..DEPLOYMENTS {
        let p = n % pairs.len();
        let (app, env) = pairs[p];
        let at = start + n as i64 * 60_000;
        let last_of_pair = n + pairs.len() >= DEPLOYMENTS;
        let waiting = last_of_pair && env == "production";
        let d = store
            .create_deployment(NewDeployment {
                app: app.to_owned(),
                environment: env.to_owned(),
                release: Release {
                    version: format!("v{n}"),
                    commit: Some(format!("{n:07x}")),
                    git_ref: Some("main".to_owned()),
                    committed_at: Some(at - day / 24),
                    digest: None,
                },
                kind: if n % 37 == 0 {
                    Kind::Rollback
                } else {
                    Kind::Deploy
                },
                created_by: "ci".to_owned(),
                created_at: at,
                reason: "requested by ci".to_owned(),
                rolled_back_from: None,
                force: None,
            })
            .await
            .unwrap();
        if waiting {
            store
                .transition(
                    d.id,
                    Status::Queued,
                    change(Status::Waiting, at + 1, "approval: 0 of 1"),
                )
                .await
                .unwrap();
            continue;
        }
        let s = store
            .transition(
                d.id,
                Status::Queued,
                change(Status::InProgress, at + 1, "gates open"),
            )
            .await
            .unwrap();
        if n % 11 == 0 {
            store
                .transition(
                    s.id,
                    Status::InProgress,
                    change(Status::Failure, at + 2, "health check failed"),
                )
                .await
                .unwrap();
            continue;
        }
        store
            .transition(
                s.id,
                Status::InProgress,
                change(Status::Success, at + 2, "rollout complete"),
            )
            .await
            .unwrap();
        if let Some(prev) = current[p].replace(d.id) {
            store
                .transition(
                    prev,
                    Status::Success,
                    change(Status::Inactive, at + 2, "superseded"),
                )
                .await
                .unwrap();
        }
    }
    store.close().await;
}

/// Stores finished runs (an unfinished one would be picked up by the server): each with
/// three jobs in a chain, every seventh failing its tests (deploy then skipped).
async fn fill_runs(path: &std::path::Path) {
    let store = SqliteStore::open(path).await.unwrap();
    let start = 1_760_000_000_000i64;
    for n in 0..RUNS {
        let at = start + n as i64 * 60_000;
        let run = store
            .create_run(NewRun {
                pipeline: PIPELINES[n % PIPELINES.len()].to_owned(),
                trigger: Trigger::Push,
                commit: Some(format!("{n:040x}")),
                git_ref: Some("refs/heads/main".to_owned()),
                inputs: Default::default(),
                group: None,
                created_by: "pipeline".to_owned(),
                created_at: at,
                reason: format!("{n:040x} pushed to main"),
                jobs: JOBS
                    .iter()
                    .enumerate()
                    .map(|(i, name)| NewJob {
                        name: (*name).to_owned(),
                        needs: JOBS[..i]
                            .iter()
                            .rev()
                            .take(1)
                            .map(|n| (*n).to_owned())
                            .collect(),
                        kind: if *name == "deploy" {
                            JobKind::Deploy
                        } else {
                            JobKind::Steps
                        },
                    })
                    .collect(),
                head_of: None,
            })
            .await
            .unwrap();
        let change = |job: Option<&str>, from, to, at| RunChange {
            run: run.id,
            job: job.map(str::to_owned),
            from,
            to,
            at,
            reason: to.to_string(),
            outputs: None,
        };
        use RunStatus::*;
        store
            .transition_run(change(None, Queued, InProgress, at))
            .await
            .unwrap();
        let fails = n % 7 == 0;
        for (i, job) in JOBS.iter().enumerate() {
            let at = at + 1_000 * (i as i64 + 1);
            if fails && *job == "deploy" {
                store
                    .transition_run(change(Some(job), Queued, Skipped, at))
                    .await
                    .unwrap();
                continue;
            }
            store
                .transition_run(change(Some(job), Queued, InProgress, at))
                .await
                .unwrap();
            store
                .append_run_log(run.id, Some(job), at + 10, "stdout", "working on it")
                .await
                .unwrap();
            let end = if fails && *job == "test" {
                Failure
            } else {
                Success
            };
            store
                .transition_run(change(Some(job), InProgress, end, at + 500))
                .await
                .unwrap();
        }
        let end = if fails { Failure } else { Success };
        store
            .transition_run(change(None, InProgress, end, at + 5_000))
            .await
            .unwrap();
    }
    store.close().await;
}

struct Figures {
    server: Vec<Duration>,
    round_trip: Vec<Duration>,
}

fn quantile(xs: &mut [Duration], q: f64) -> Duration {
    xs.sort();
    xs[((xs.len() as f64 * q) as usize).min(xs.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn measure(http: &reqwest::Client, base: &str, cookie: &str, path: &str) -> Figures {
    let mut f = Figures {
        server: Vec::with_capacity(REQUESTS),
        round_trip: Vec::with_capacity(REQUESTS),
    };
    for i in 0..REQUESTS + 10 {
        let started = Instant::now();
        let resp = http
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let timing = resp.headers()["server-timing"].to_str().unwrap().to_owned();
        let body = resp.text().await.unwrap();
        let took = started.elapsed();
        assert!(body.contains("</html>"));
        // The first few warm the caches (SQLite's pages, the connection pool).
        if i < 10 {
            continue;
        }
        let server_ms: f64 = timing.trim_start_matches("app;dur=").parse().unwrap();
        f.server.push(Duration::from_secs_f64(server_ms / 1e3));
        f.round_trip.push(took);
    }
    f
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let filling = Instant::now();
        fill(&dir.path().join("data/slipway.db")).await;
        println!(
            "console: {DEPLOYMENTS} deployments stored in {:.1} s",
            filling.elapsed().as_secs_f64()
        );
        let filling = Instant::now();
        fill_runs(&dir.path().join("data/slipway.db")).await;
        println!(
            "console: {RUNS} pipeline runs stored in {:.1} s",
            filling.elapsed().as_secs_f64()
        );
        let yaml = config_yaml(dir.path());
        let config = slipway_config::parse(&yaml, "slipway.yaml", dir.path()).unwrap();
        let server = slipway_server::start(config).await.unwrap();
        let token = server.admin_token.clone().unwrap();
        let base = format!("http://{}", server.api_addr);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = http
            .post(format!("{base}/login"))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();

        let mid = DEPLOYMENTS / 2;
        let pages = [
            ("board", "/".to_owned()),
            ("history, first page", "/history".to_owned()),
            (
                "history, filtered",
                "/history?app=api&environment=production&status=inactive".to_owned(),
            ),
            ("history, deep page", format!("/history?before={mid}")),
            ("deployment page", format!("/deployments/{mid}")),
            ("runs, first page", "/runs".to_owned()),
            (
                "runs, filtered",
                "/runs?pipeline=nightly&status=failure".to_owned(),
            ),
            ("runs, deep page", format!("/runs?before={}", RUNS / 2)),
            ("run page", format!("/runs/{}", RUNS / 2)),
        ];
        println!(
            "console: server time per page (Server-Timing), median and p90 of {REQUESTS}; target: median < {}",
            ms(TARGET)
        );
        let mut worst = Duration::ZERO;
        for (name, path) in &pages {
            let mut f = measure(&http, &base, &cookie, path).await;
            let median = quantile(&mut f.server, 0.5);
            let p90 = quantile(&mut f.server, 0.9);
            let rt_median = quantile(&mut f.round_trip, 0.5);
            worst = worst.max(median);
            println!(
                "  {name:<22} median {:>9}  p90 {:>9}  round trip {:>9}  ratio to target {:.2}",
                ms(median),
                ms(p90),
                ms(rt_median),
                median.as_secs_f64() / TARGET.as_secs_f64()
            );
        }
        println!(
            "console: slowest median {} — {}",
            ms(worst),
            if worst < TARGET {
                "within the target"
            } else {
                "OVER the target"
            }
        );
        server.shutdown().await;
    });
}
