//! What a workload can see of the server, on the real binaries: instances and hooks run in
//! a built environment (the server's own tokens are not in `/proc/<pid>/environ`), and a
//! hook or an instance printing secrets leaves none in `slipway logs` or the stored log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::path::Path;
use std::time::Duration;

use util::{
    Server, Sweep, code, demo_app, free_port, processes_under, run, run_for, stderr, stdout,
};

const ROUTER_TOKEN: &str = "router-secret-of-the-server";
const AWS_SECRET: &str = "aws-secret-of-the-server";
const DB_PASSWORD: &str = "hunter2-of-the-config";

/// A token in the shape `slipway user add` prints.
fn api_token() -> String {
    format!("slw_{}", "5e".repeat(32))
}

/// The variables in a process's initial environment, as `NAME=value`.
fn environ(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// Everything the server stored, as text (the database and its write-ahead log).
fn stored(dir: &Path) -> String {
    ["slipway.db", "slipway.db-wal"]
        .iter()
        .map(|f| {
            String::from_utf8_lossy(&std::fs::read(dir.join("data").join(f)).unwrap_or_default())
                .into_owned()
        })
        .collect()
}

#[test]
fn workloads_get_a_built_environment_and_logs_mask_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    let token = api_token();
    let server = Server::start_with_env(
        dir.path(),
        |api| {
            format!(
                r#"version: 1
server:
  listen: 127.0.0.1:{api}
  data_dir: data
  tick: 50ms
apps:
  web:
    run: "echo app sees DB_PASSWORD=$DB_PASSWORD and {router}; exec '{app}' --port {{port}} --release {{version}}"
    health: {{ path: /health, interval: 100ms, timeout: 1s, start_period: 10s }}
    hooks:
      pre_deploy: "env; echo the router token is {router}; echo admin $(cat data/admin.token); echo password $DB_PASSWORD"
environments:
  staging:
    listen: 127.0.0.1:{staging}
    strategy: recreate
    variables: {{ DB_PASSWORD: {DB_PASSWORD}, LOG_LEVEL: debug }}
"#,
                app = demo_app().display(),
                staging = free_port(),
                router = ROUTER_TOKEN,
            )
        },
        &[
            ("SLIPWAY_ROUTER_TOKEN", ROUTER_TOKEN),
            ("SLIPWAY_TOKEN", &token),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ],
    );
    let out = run_for(
        server.cli().args([
            "deploy",
            "web",
            "--version",
            "v1",
            "--env",
            "staging",
            "--wait",
            "--json",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let deployment: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(deployment["status"], "success", "{deployment:#}");
    let id = deployment["id"].as_i64().unwrap().to_string();

    // The instance: what the config gives it and slipway's own markers, not the server's
    // tokens.
    let pids = processes_under(dir.path());
    assert_eq!(pids.len(), 1, "{pids:?}");
    let env = environ(pids[0]);
    assert!(
        env.iter().any(|v| v.starts_with("SLIPWAY_INSTANCE=")),
        "{env:?}"
    );
    assert!(env.contains(&"LOG_LEVEL=debug".to_owned()), "{env:?}");
    assert!(
        env.contains(&format!("DB_PASSWORD={DB_PASSWORD}")),
        "{env:?}"
    );
    for leaked in [
        "SLIPWAY_ROUTER_TOKEN=",
        "SLIPWAY_TOKEN=",
        "AWS_SECRET_ACCESS_KEY=",
    ] {
        assert!(
            !env.iter().any(|v| v.starts_with(leaked)),
            "{leaked} in {env:?}"
        );
    }

    // The hook ran `env` and printed secrets on purpose; the log keeps the lines, masked.
    let out = run(server.cli().args(["logs", &id]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let logs = stdout(&out);
    assert!(logs.contains("LOG_LEVEL=debug"), "{logs}");
    assert!(logs.contains("DB_PASSWORD=***"), "{logs}");
    assert!(logs.contains("the router token is ***"), "{logs}");
    assert!(logs.contains("admin ***"), "{logs}");
    assert!(logs.contains("password ***"), "{logs}");
    assert!(logs.contains("app sees DB_PASSWORD=*** and ***"), "{logs}");
    let admin = server.admin_token();
    let stored = stored(dir.path());
    for secret in [
        ROUTER_TOKEN,
        AWS_SECRET,
        DB_PASSWORD,
        token.as_str(),
        admin.as_str(),
    ] {
        assert!(!logs.contains(secret), "{secret} in slipway logs:\n{logs}");
        assert!(!stored.contains(secret), "{secret} in the stored log");
    }
}
