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

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slipway_drivers::{ContainerSpec, DockerDriver, PullPolicy, Restart};
use util::docker::{DockerServer, blue_green, docker, images, unique};

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
        .spawn()
        .unwrap();
    build
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    assert!(build.wait().unwrap().success(), "docker build of {tag}");
}

/// Removes the bench's tags and the containers it ran by hand, also when it fails.
struct Cleanup {
    tags: Vec<String>,
    label: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label={}", self.label);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            let ids = String::from_utf8_lossy(&out.stdout);
            let ids: Vec<&str> = ids.lines().collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        for tag in &self.tags {
            let _ = Command::new("docker")
                .args(["rmi", &format!("slipway-demo:{tag}")])
                .output();
        }
    }
}

/// Polls `url` until its body contains `needle`; returns when it first did.
async fn until(http: &reqwest::Client, url: &str, needle: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(url).send().await
            && let Ok(body) = r.text().await
            && body.contains(needle)
        {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{url} never answered {needle}");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `docker run -d -p 127.0.0.1:<port>:8080 slipway-demo:<tag>` until `/health` answers.
async fn bare_docker_run(http: &reqwest::Client, tag: &str, label: &str) -> Duration {
    let port = free_port();
    let started = Instant::now();
    let out = tokio::process::Command::new("docker")
        .args(["run", "-d", "--label", label, "-p"])
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
    let took = until(http, &format!("http://127.0.0.1:{port}/health"), "ok").await - started;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    docker(&["rm", "-f", &id]);
    took
}

/// The docker driver alone: resolve the tag, create and start over the Engine API,
/// until `/health` answers.
async fn driver_run(http: &reqwest::Client, tag: &str, n: u32, scope: &str) -> Duration {
    let driver = DockerDriver::from_env().unwrap();
    let spec = ContainerSpec {
        instance_id: format!("bench-{n}"),
        scope: scope.to_owned(),
        app: "bench".into(),
        environment: unique("drv"),
        version: tag.to_owned(),
        deployment: String::new(),
        ordinal: n,
        image: "slipway-demo".into(),
        port: 8080,
        env: BTreeMap::new(),
        pull: PullPolicy::Never,
        memory: None,
        cpus: None,
        restart: Restart::No,
        args: Vec::new(),
    };
    let started = Instant::now();
    let run = driver.run(&spec).await.unwrap();
    let took = until(http, &format!("http://{}/health", run.started.addr), "ok").await - started;
    driver.remove(&run.started.handle).await.unwrap();
    took
}

#[tokio::main]
async fn main() {
    images();
    let env = unique("bench");
    let label = format!("slipway.bench={env}");
    let mut cleanup = Cleanup {
        tags: Vec::new(),
        label: label.clone(),
    };
    for n in 0..=RUNS {
        let tag = format!("{env}-{n}");
        release_image(&tag);
        cleanup.tags.push(tag);
    }
    let s = DockerServer::start(&blue_green(&env)).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/", s.listener(&env).await);
    s.deploy_and_wait(&env, &cleanup.tags[0], "success").await;

    let (mut ours, mut bare, mut driver) = (Vec::new(), Vec::new(), Vec::new());
    for n in 1..=RUNS {
        let tag = cleanup.tags[n].clone();
        bare.push(bare_docker_run(&http, &tag, &label).await);
        driver.push(driver_run(&http, &tag, n as u32, &s.scope).await);

        let t0 = Instant::now();
        let (status, d) = s.deploy(&s.admin, &env, &tag).await;
        assert_eq!(status, 201, "{d}");
        let t1 = until(&http, &url, &format!("release={tag}\n")).await;
        ours.push(t1 - t0);
        s.wait_for(d["id"].as_i64().unwrap(), &["success"]).await;
    }
    let (ours, bare, driver) = (median(ours), median(bare), median(driver));
    let overhead = ours.saturating_sub(bare);
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
        "  slipway's overhead over docker run: {} (target < {}: {}); ratio {:.2}",
        ms(overhead),
        ms(TARGET),
        if overhead < TARGET { "met" } else { "NOT met" },
        ours.as_secs_f64() / bare.as_secs_f64()
    );
    drop(s);
    drop(cleanup);
}
