//! The docker driver's start time against the bare `docker run`, on the demo image FROM
//! scratch: from the call until the app's `/health` answers 200 through the published
//! loopback port, median of 10 each, interleaved so both see the same machine. The
//! driver's extra work is resolving the tag (image inspect), picking the port and
//! inspecting the started container.
//!
//! Run: `bench/docker-start.sh` (or `cargo bench -p slipway-drivers --bench docker_start`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

#[path = "../tests/util/mod.rs"]
mod util;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use slipway_drivers::DockerDriver;
use util::{Scope, get};

const RUNS: u32 = 10;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Polls `/health` until it answers 200; panics after the tests' deadline.
fn until_healthy(addr: SocketAddr, since: Instant) -> Duration {
    while get(addr, "/health").is_none_or(|(s, _)| s != 200) {
        assert!(since.elapsed() < util::DEADLINE, "{addr} never got healthy");
        std::thread::sleep(Duration::from_millis(1));
    }
    since.elapsed()
}

#[tokio::main]
async fn main() {
    let driver = DockerDriver::from_env().unwrap();
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for n in 1..=RUNS {
        let t = Scope::new();
        let mut spec = t.spec("v1");
        spec.ordinal = n;

        let started = Instant::now();
        let run = driver.run(&spec).await.unwrap();
        t.track(&run.started.handle);
        ours.push(until_healthy(run.started.addr, started));

        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let out = Command::new("docker")
            .args(["run", "-d", "--label"])
            .arg(format!("slipway.scope={}", t.scope))
            .arg("-p")
            .arg(format!("127.0.0.1:{port}:8080"))
            .arg("slipway-demo:v1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        bare.push(until_healthy(
            SocketAddr::from(([127, 0, 0, 1], port)),
            started,
        ));
    }
    let (ours, bare) = (median(ours), median(bare));
    println!("docker start to healthy, median of {RUNS}:");
    println!("  DockerDriver::run   {}", ms(ours));
    println!("  docker run (CLI)    {}", ms(bare));
    println!(
        "  ratio {:.2}, difference {:+.1} ms",
        ours.as_secs_f64() / bare.as_secs_f64(),
        (ours.as_secs_f64() - bare.as_secs_f64()) * 1e3
    );
}
