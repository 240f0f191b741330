//! `slipway server` killed with SIGKILL, then started again, on the real binaries: a
//! rollout caught mid-way completes on the re-adopted instance, and a standalone router
//! (`slipway router --control`) keeps serving through the restart without a failed request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use util::{
    Load, Proc, Sweep, demo_app, free_port, get_body as get, slipway, standalone_router, wait_until,
};

const ROUTER_TOKEN: &str = "router-secret-for-this-test";

/// Ports of one test's server: API, staging router, and the standalone router's control.
struct Ports {
    api: u16,
    staging: u16,
    control: u16,
}

fn write_config(dir: &Path, ports: &Ports, standalone_router: bool) {
    let control = if standalone_router {
        format!("  router_control: 127.0.0.1:{}\n", ports.control)
    } else {
        String::new()
    };
    let yaml = format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{api}
  data_dir: data
  tick: 50ms
{control}apps:
  web:
    run: "{app} --port {{port}} --release {{version}} $(cat {dir}/flags-{{version}} 2>/dev/null)"
    health: {{ path: /health, interval: 100ms, timeout: 1s, start_period: 30s }}
    smoke: [{{ get: /, expect_body_contains: "ok" }}]
environments:
  staging:
    listen: 127.0.0.1:{staging}
"#,
        api = ports.api,
        staging = ports.staging,
        app = demo_app().display(),
        dir = dir.display(),
    );
    std::fs::write(dir.join("slipway.yaml"), yaml).unwrap();
}

fn start_server(dir: &Path, ports: &Ports, log: &str) -> Proc {
    let child = slipway(dir)
        .args(["server", "--config", "slipway.yaml"])
        .env("SLIPWAY_ROUTER_TOKEN", ROUTER_TOKEN)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap();
    let up = wait_until(Duration::from_secs(30), || {
        dir.join("data/admin.token").is_file()
            && TcpStream::connect(("127.0.0.1", ports.api)).is_ok()
    });
    assert!(
        up,
        "server did not start:\n{}",
        std::fs::read_to_string(dir.join(log)).unwrap_or_default()
    );
    Proc(child)
}

/// The CLI pointed at the test's server; returns (exit code, stdout as JSON).
fn cli(dir: &Path, ports: &Ports, args: &[&str]) -> (i32, Value) {
    let token = std::fs::read_to_string(dir.join("data/admin.token")).unwrap();
    let out = slipway(dir)
        .env("SLIPWAY_SERVER", format!("http://127.0.0.1:{}", ports.api))
        .env("SLIPWAY_TOKEN", token.trim())
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout.into_owned()));
    (out.status.code().unwrap_or(-1), json)
}

/// `slipway deploy web --version V --env staging --json [--wait]`, which must succeed.
fn deploy(dir: &Path, ports: &Ports, version: &str, wait: bool) -> Value {
    let mut args = vec![
        "deploy",
        "web",
        "--version",
        version,
        "--env",
        "staging",
        "--json",
    ];
    if wait {
        args.push("--wait");
    }
    let (code, d) = cli(dir, ports, &args);
    assert_eq!(code, 0, "{d}");
    d
}

fn in_progress_phase(dir: &Path, ports: &Ports) -> Option<String> {
    let (_, status) = cli(dir, ports, &["status", "web", "--env", "staging", "--json"]);
    status["environments"][0]["in_progress"]["phase"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn a_server_killed_mid_rollout_completes_it_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    let ports = Ports {
        api: free_port(),
        staging: free_port(),
        control: 0,
    };
    write_config(dir.path(), &ports, false);
    let mut server = start_server(dir.path(), &ports, "server-1.log");
    deploy(dir.path(), &ports, "v1", true);

    // v2 listens only after 1.5 s: the kill lands while it is being health-checked.
    std::fs::write(dir.path().join("flags-v2"), "--start-delay-ms 1500").unwrap();
    let d = deploy(dir.path(), &ports, "v2", false);
    let id = d["id"].as_i64().unwrap();
    // Kill once the v2 instance is recorded (its start is logged right after).
    let recorded = || {
        let (_, logs) = cli(dir.path(), &ports, &["logs", &id.to_string(), "--json"]);
        logs["lines"].as_array().is_some_and(|l| {
            l.iter().any(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("started instance"))
            })
        })
    };
    assert!(
        wait_until(Duration::from_secs(30), || recorded()
            && in_progress_phase(dir.path(), &ports).as_deref()
                == Some("starting")),
        "v2 never reached the starting phase"
    );
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    drop(server);

    let _server = start_server(dir.path(), &ports, "server-2.log");
    let settled = wait_until(Duration::from_secs(60), || {
        let (_, d) = cli(
            dir.path(),
            &ports,
            &["history", "web", "--env", "staging", "--json"],
        );
        d["deployments"][0]["status"] == "success" && d["deployments"][0]["id"] == id
    });
    assert!(
        settled,
        "the interrupted rollout did not complete after the restart"
    );
    let (status, body) = get(ports.staging).expect("the router is back");
    assert_eq!((status, body.trim()), (200, "ok release=v2"));
    let (_, logs) = cli(dir.path(), &ports, &["logs", &id.to_string(), "--json"]);
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("started instance"))
            .count(),
        1,
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("using running instance")),
        "re-adopted: {lines:#?}"
    );
    let (_, history) = cli(
        dir.path(),
        &ports,
        &["history", "web", "--env", "staging", "--json"],
    );
    assert_eq!(
        history["deployments"][1]["status"], "inactive",
        "v1 was kept and superseded: {history:#}"
    );
}

#[test]
fn a_standalone_router_serves_through_a_server_kill_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    let ports = Ports {
        api: free_port(),
        staging: free_port(),
        control: free_port(),
    };
    write_config(dir.path(), &ports, true);
    let _router = standalone_router(dir.path(), ports.control, ROUTER_TOKEN);
    let mut server = start_server(dir.path(), &ports, "server-1.log");
    deploy(dir.path(), &ports, "v1", true);

    // Steady load through the router from two threads, for the rest of the test.
    let load = Load::start(ports.staging, 2);
    assert!(load.answers(50));

    server.0.kill().unwrap();
    server.0.wait().unwrap();
    drop(server);
    assert!(
        load.answers(50),
        "the router stopped answering when the server died"
    );

    let _server = start_server(dir.path(), &ports, "server-2.log");
    deploy(dir.path(), &ports, "v2", true);
    let (answered, failed) = load.finish();
    assert_eq!(failed, 0, "of {answered} requests");
    assert_eq!(
        get(ports.staging).map(|(s, b)| (s, b.trim().to_string())),
        Some((200, "ok release=v2".into()))
    );
}
