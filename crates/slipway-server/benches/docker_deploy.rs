//! Issue 7's measurement on the real Docker Engine: the time from a deploy request to
//! 100% of traffic on the new container (blue-green), against the bare `docker run` of
//! the same image until the app's `/health` answers (the physical limit), median of 10
//! each, interleaved so both see the same machine. Also the docker driver's own
//! start-to-healthy (`DockerDriver::run`, over the Engine API), to tell the engine's
//! share from the driver's. Prints the medians and slipway's overhead (target < 150 ms).
//!
//! Each run deploys a new release: an image tagged `slipway-demo:bench-<n>` made
//! `FROM slipway-demo:v1` (no HEALTHCHECK) with its own `--release`, so the router's
//! answer names the container that serves.
//!
//! Run: `bench/docker-deploy.sh` (or `cargo bench -p slipway-server --bench docker_deploy`
//! after `bench/docker-images.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

#[path = "../tests/util/mod.rs"]
mod util;

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slipway_drivers::DockerDriver;
use util::docker::{DockerServer, Scope, blue_green, docker, unique};
use util::until_serving;

const RUNS: usize = 10;
const TARGET: Duration = Duration::from_millis(150);

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `slipway-demo:<tag>`: the v1 image answering `ok release=<tag>`. Only metadata: it
/// builds in a moment and shares v1's layer.
fn release_image(tag: &str) {
    let dockerfile = format!(
        "FROM slipway-demo:v1\nCMD [\"--host\", \"0.0.0.0\", \"--port\", \"8080\", \"--release\", \"{tag}\"]\n"
    );
    let mut build = Command::new("docker")
        .args([
            "build",
            "--quiet",
            "--tag",
            &format!("slipway-demo:{tag}"),
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    build
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    let out = build.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build of {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker run -d -p 127.0.0.1:<port>:8080 slipway-demo:<tag>` until `/health` answers.
/// Labelled with `t`'s scope, so `t` removes it if the bench fails.
async fn bare_docker_run(http: &reqwest::Client, tag: &str, t: &Scope) -> Duration {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let label = format!("slipway.scope={}", t.scope);
    let started = Instant::now();
    let out = tokio::process::Command::new("docker")
        .args(["run", "-d", "--label", &label, "-p"])
        .arg(format!("127.0.0.1:{port}:8080"))
        .arg(format!("slipway-demo:{tag}"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let took =
        until_serving(http, &format!("http://127.0.0.1:{port}/health"), "ok").await - started;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    t.track(&id);
    // Gone before the next run, so every run meets the same machine.
    docker(&["rm", "-f", &id]);
    took
}

/// The docker driver alone: resolve the tag, create and start over the Engine API,
/// until `/health` answers.
async fn driver_run(http: &reqwest::Client, tag: &str, n: u32, t: &Scope) -> Duration {
    let driver = DockerDriver::from_env().unwrap();
    let mut spec = t.spec(tag);
    spec.ordinal = n;
    spec.instance_id = spec.container_name();
    let started = Instant::now();
    let run = driver.run(&spec).await.unwrap();
    t.track(&run.started.handle);
    let took =
        until_serving(http, &format!("http://{}/health", run.started.addr), "ok").await - started;
    driver.remove(&run.started.handle).await.unwrap();
    took
}

#[tokio::main]
async fn main() {
    // Removes the containers run by hand and the release tags, also when the bench fails.
    let t = Scope::new();
    let env = unique("bench");
    let tags: Vec<String> = (0..=RUNS).map(|n| format!("{env}-{n}")).collect();
    for tag in &tags {
        release_image(tag);
        t.untag_later(&format!("slipway-demo:{tag}"));
    }
    let s = DockerServer::start(&blue_green(&env)).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/", s.listener(&env).await);
    s.deploy_and_wait(&env, &tags[0], "success").await;

    let (mut ours, mut bare, mut driver) = (Vec::new(), Vec::new(), Vec::new());
    for (n, tag) in tags.iter().enumerate().skip(1) {
        bare.push(bare_docker_run(&http, tag, &t).await);
        driver.push(driver_run(&http, tag, n as u32, &t).await);

        let t0 = Instant::now();
        let (status, d) = s.deploy(&s.admin, &env, tag).await;
        assert_eq!(status, 201, "{d}");
        let t1 = until_serving(&http, &url, &format!("release={tag}\n")).await;
        ours.push(t1 - t0);
        s.wait_for(d["id"].as_i64().unwrap(), &["success"]).await;
    }
    let (ours, bare, driver) = (median(ours), median(bare), median(driver));
    // Signed: the CLI's own start-up can make `docker run` the slower one.
    let overhead = ours.as_secs_f64() * 1e3 - bare.as_secs_f64() * 1e3;
    let engine = ours.as_secs_f64() * 1e3 - driver.as_secs_f64() * 1e3;
    println!("docker app, blue-green, median of {RUNS} each:");
    println!(
        "  slipway: deploy request → 100% traffic on the new container  {}",
        ms(ours)
    );
    println!(
        "  bare `docker run` → the app's /health answers                {}",
        ms(bare)
    );
    println!(
        "  (the docker driver alone, Engine API → /health answers       {})",
        ms(driver)
    );
    println!(
        "  slipway's overhead over docker run: {overhead:+.1} ms (target < {}: {}); ratio {:.2}",
        ms(TARGET),
        if overhead < TARGET.as_secs_f64() * 1e3 {
            "met"
        } else {
            "NOT met"
        },
        ours.as_secs_f64() / bare.as_secs_f64()
    );
    println!("  the engine's share over the driver alone: {engine:+.1} ms");
    // The server's containers go first: the release images are in use until then.
    drop(s);
}
