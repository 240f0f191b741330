//! The demo app as the process driver runs it for `run: "slipway-demo-app --port {port}
//! --release {version}"`: the path `slipway demo` takes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use slipway_drivers::{Driver, InstanceSpec, ProcessDriver, Workload};

const BIN: &str = env!("CARGO_BIN_EXE_slipway-demo-app");
const DEADLINE: Duration = Duration::from_secs(10);

/// Stops the instance when the test ends, also on failure.
struct Guard(String);

impl Drop for Guard {
    fn drop(&mut self) {
        let handle = self.0.clone();
        // `Drop` cannot await, and the test's runtime cannot be blocked on from inside.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(ProcessDriver::new().stop(&handle, Duration::ZERO))
        })
        .join();
    }
}

fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(DEADLINE)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    Some((head.split(' ').nth(1)?.parse().ok()?, body.to_owned()))
}

#[tokio::test]
async fn runs_under_the_process_driver_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let spec = InstanceSpec {
        scope: dir.path().display().to_string(),
        instance_id: "web-staging-v7-1".into(),
        app: "web".into(),
        environment: "staging".into(),
        version: "v7".into(),
        env: BTreeMap::new(),
        workload: Workload::Process {
            command: format!("{BIN} --port {{port}} --release {{version}}"),
            log_path: dir.path().join("web.log"),
            workdir: dir.path().to_owned(),
        },
    };
    let driver = ProcessDriver::new();
    let started = driver.start(&spec).await.unwrap();
    let _guard = Guard(started.handle.clone());

    let begun = Instant::now();
    let answer = loop {
        if let Some(answer) = get(started.addr, "/") {
            break answer;
        }
        assert!(begun.elapsed() < DEADLINE, "the app never answered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(answer, (200, "ok release=v7\n".into()));
    let log = std::fs::read_to_string(dir.path().join("web.log")).unwrap();
    assert_eq!(
        log,
        format!("slipway-demo-app v7 listening on {}\n", started.addr)
    );

    // It honours SIGTERM, so the grace period is never used up.
    let grace = Duration::from_secs(5);
    let begun = Instant::now();
    driver.stop(&started.handle, grace).await.unwrap();
    assert!(begun.elapsed() < Duration::from_secs(2));
    assert!(!driver.is_running(&started.handle).await);
}
