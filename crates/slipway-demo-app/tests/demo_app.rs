//! Runs the built `slipway-demo-app` binary and talks plain HTTP/1.1 to it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_slipway-demo-app");
const DEADLINE: Duration = Duration::from_secs(10);

/// Kills the app when the test ends, also on failure.
struct App {
    child: Child,
    addr: SocketAddr,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl App {
    /// Starts the app on an ephemeral port and learns the port from its start-up line.
    fn start(extra: &[&str]) -> App {
        let mut cmd = Command::new(BIN);
        cmd.args(["--port", "0", "--release", "v1"]).args(extra);
        App::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> App {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut app = App {
            child,
            addr: ([127, 0, 0, 1], 0).into(),
        };
        let line = rx.recv_timeout(DEADLINE).expect("no start-up line");
        let addr = line
            .trim_end()
            .strip_prefix("slipway-demo-app v1 listening on ")
            .unwrap_or_else(|| panic!("unexpected start-up line {line:?}"));
        app.addr = addr.parse().unwrap();
        app
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "app did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// One request on a fresh connection; returns (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

#[test]
fn serves_root_health_and_404() {
    let app = App::start(&[]);
    assert_eq!(get(app.addr, "/"), (200, "ok release=v1\n".into()));
    let (status, body) = get(app.addr, "/health");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health, serde_json::json!({"status": "ok", "release": "v1"}));
    assert_eq!(get(app.addr, "/nope").0, 404);
}

#[test]
fn error_rate_fails_a_deterministic_fraction_of_root_requests() {
    let app = App::start(&["--error-rate", "0.5"]);
    let statuses: Vec<u16> = (0..6).map(|_| get(app.addr, "/").0).collect();
    assert_eq!(statuses, [200, 500, 200, 500, 200, 500]);
    // Health checks are not part of the faulty traffic.
    assert_eq!(get(app.addr, "/health").0, 200);
}

#[test]
fn error_after_turns_a_good_release_bad_later() {
    let spawned = Instant::now();
    let app = App::start(&["--error-rate", "1", "--error-after-ms", "3000"]);
    assert_eq!(get(app.addr, "/").0, 200, "no fault before the delay");
    let first_failure = loop {
        if get(app.addr, "/").0 == 500 {
            break spawned.elapsed();
        }
        assert!(spawned.elapsed() < Duration::from_secs(30), "never failed");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        first_failure >= Duration::from_millis(3000),
        "{first_failure:?}"
    );
    assert_eq!(get(app.addr, "/health").0, 200);
}

#[test]
fn fail_health_answers_503() {
    let app = App::start(&["--fail-health"]);
    let (status, body) = get(app.addr, "/health");
    assert_eq!(status, 503);
    assert!(body.contains("\"release\":\"v1\""), "{body}");
    assert_eq!(get(app.addr, "/").0, 200);
}

#[test]
fn latency_delays_every_response() {
    let app = App::start(&["--latency-ms", "200"]);
    for path in ["/", "/health"] {
        let start = Instant::now();
        get(app.addr, path);
        assert!(start.elapsed() >= Duration::from_millis(200), "{path}");
    }
}

#[test]
fn start_delay_postpones_listening() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let mut cmd = Command::new(BIN);
    cmd.args(["--release", "v1", "--start-delay-ms", "400"])
        .env("PORT", port.to_string());
    let app = App::spawn(cmd);
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(app.addr.port(), port, "PORT is used when --port is absent");
    assert_eq!(get(app.addr, "/").0, 200);
}

#[test]
fn sigterm_exits_cleanly() {
    let mut app = App::start(&[]);
    assert_eq!(get(app.addr, "/").0, 200);
    let killed = Command::new("kill")
        .args(["-TERM", &app.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(app.wait_exit().success());
}

#[test]
fn bad_flags_are_a_usage_error() {
    for args in [
        &["--release", "v1"][..],
        &["--port", "1", "--release", "v1", "--error-rate", "2"],
        &["--port", "1", "--release", "v1", "--what"],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .env_remove("PORT")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("usage: slipway-demo-app"), "{stderr}");
    }
}

#[test]
fn probe_exits_zero_only_for_a_healthy_answer() {
    let probe = |url: &str| {
        Command::new(BIN)
            .args(["--probe", url])
            .output()
            .unwrap()
            .status
            .code()
    };
    let healthy = App::start(&[]);
    let sick = App::start(&["--fail-health"]);
    assert_eq!(probe(&format!("http://{}/health", healthy.addr)), Some(0));
    assert_eq!(probe(&format!("http://{}/health", sick.addr)), Some(1));
    assert_eq!(probe(&format!("http://{}/nope", healthy.addr)), Some(1));
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(probe(&format!("http://{closed}/health")), Some(1));
    assert_eq!(probe("http://localhost:1/health"), Some(2));
    let out = Command::new(BIN).arg("--probe").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
