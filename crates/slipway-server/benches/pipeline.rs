//! Issue 8's measurement: the scheduling overhead of pipelines. A pipeline of 200 jobs of
//! `true` in a 10-wide DAG (20 layers of 10; each job needs two of the layer before),
//! dispatched on a real server (SQLite, real processes); its time from creation to end,
//! minus the time to spawn the same 200 processes the same way (10 at a time, layer by
//! layer, through the same shell runner) without a pipeline, per job. Median of 3.
//! Target < 5 ms per job.
//!
//! Run: `cargo bench -p slipway-server --bench pipeline` (or `bench/pipeline.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

#[path = "../tests/util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use slipway_drivers::{ShellCommand, run_shell};
use util::{TestServer, poll_until};

const WIDTH: usize = 10;
const LAYERS: usize = 20;
const JOBS: usize = WIDTH * LAYERS;
const ROUNDS: usize = 3;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn pipeline_yaml() -> String {
    let mut yaml = format!(
        "pipelines:\n  wide:\n    on: {{ dispatch: {{}} }}\n    max_parallel: {WIDTH}\n    jobs:\n"
    );
    for layer in 0..LAYERS {
        for i in 0..WIDTH {
            let needs = if layer == 0 {
                String::new()
            } else {
                format!(
                    "needs: [j{}-{i}, j{}-{}], ",
                    layer - 1,
                    layer - 1,
                    (i + 1) % WIDTH
                )
            };
            yaml.push_str(&format!(
                "      j{layer}-{i}: {{ {needs}steps: [{{ run: 'true' }}] }}\n"
            ));
        }
    }
    yaml
}

/// 200 `true`s through the shell runner, 10 at a time, layer after layer.
async fn spawn_only() -> Duration {
    let cmd = ShellCommand::new("true", Duration::from_secs(30));
    let started = Instant::now();
    for _ in 0..LAYERS {
        let layer: Vec<_> = (0..WIDTH)
            .map(|_| {
                let cmd = cmd.clone();
                tokio::spawn(async move { run_shell(&cmd, |_| {}).await })
            })
            .collect();
        for run in layer {
            assert!(run.await.unwrap().outcome.success());
        }
    }
    started.elapsed()
}

/// Dispatches the pipeline and waits for it; its duration as the server recorded it.
async fn one_run(server: &TestServer) -> Duration {
    let (status, run) = server
        .call("POST", "/api/v1/pipelines/wide/runs", &server.admin, None)
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_i64().unwrap();
    let run = poll_until("the run to end", || async {
        let (_, run) = server
            .call("GET", &format!("/api/v1/runs/{id}"), &server.admin, None)
            .await;
        run["finished_at"].is_string().then_some(run)
    })
    .await;
    assert_eq!(run["status"], "success", "{run:#}");
    let at = |key: &str| humantime::parse_rfc3339(run[key].as_str().unwrap()).unwrap();
    at("finished_at").duration_since(at("created_at")).unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let yaml = pipeline_yaml();
    let server = TestServer::start_yaml(|dir| {
        format!(
            "version: 1\nserver:\n  listen: 127.0.0.1:0\n  data_dir: {}\n{yaml}",
            dir.join("data").display()
        )
    })
    .await;
    // A first run warms the database file and the page cache.
    one_run(&server).await;
    let mut pipeline = Vec::new();
    let mut baseline = Vec::new();
    for _ in 0..ROUNDS {
        pipeline.push(one_run(&server).await);
        baseline.push(spawn_only().await);
    }
    let (pipeline, baseline) = (median(pipeline), median(baseline));
    let overhead = pipeline.saturating_sub(baseline);
    let per_job = overhead / JOBS as u32;
    println!(
        "pipeline of {JOBS} jobs of `true`, {WIDTH} wide ({LAYERS} layers), median of {ROUNDS}:"
    );
    println!("  whole run (created → ended):        {}", ms(pipeline));
    println!("  spawning the {JOBS} processes alone:   {}", ms(baseline));
    println!(
        "  scheduling overhead per job:         {} (target < 5 ms: {})",
        ms(per_job),
        if per_job < Duration::from_millis(5) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  ratio whole run / spawning alone:    {:.2}",
        pipeline.as_secs_f64() / baseline.as_secs_f64()
    );
    server.stop().await;
}
