//! An environment's `secrets:` on the real binaries: read once when the server starts
//! (one from the server's environment, one from a file), given to the environment's
//! instances, hooks, migrations and the pipeline jobs that name it, masked in every log,
//! and never stored. One that cannot be read fails `slipway validate` and stops
//! `slipway server` (exit 2), naming where the config names it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::path::Path;
use std::time::Duration;

use util::{
    Server, Sweep, code, demo_app, free_port, processes_under, run, run_for, slipway, stderr,
    stdout,
};

const API_KEY: &str = "api-key-from-the-env-9f3c";
const TLS_KEY: &str = "tls-key-from-a-file-77d1";
const WITHIN: Duration = Duration::from_secs(60);

/// The variables in a process's initial environment, as `NAME=value`.
fn environ(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// Whether `value` is anywhere in the files directly in `dir` (the database, its
/// write-ahead log, the admin token...).
fn stored_in(dir: &Path, value: &str) -> Option<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .find(|p| {
            let bytes = std::fs::read(p).unwrap_or_default();
            bytes.windows(value.len()).any(|w| w == value.as_bytes())
        })
        .map(|p| p.display().to_string())
}

fn config(dir: &Path, api: u16) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{api}
  data_dir: data
  tick: 50ms
apps:
  web:
    run: "echo app has $API_KEY and $TLS_KEY; exec '{app}' --port {{port}} --release {{version}}"
    health: {{ path: /health, interval: 100ms, timeout: 1s, start_period: 10s }}
    hooks:
      pre_deploy: "echo hook sees $API_KEY; printf %s \"$API_KEY\" > '{dir}/hook-saw'"
    migrate:
      up: "echo migration sees $TLS_KEY; printf %s \"$TLS_KEY\" > '{dir}/migration-saw'"
environments:
  production:
    listen: 127.0.0.1:{production}
    strategy: recreate
    variables: {{ LOG_LEVEL: debug }}
    secrets:
      API_KEY: {{ env: PROD_API_KEY }}
      TLS_KEY: {{ file: tls.key }}
pipelines:
  ship:
    on: {{ dispatch: {{}} }}
    jobs:
      use:
        environment: production
        steps:
          - run: echo "expr ${{{{ secrets.API_KEY }}}}"; echo "env $TLS_KEY"; printf %s "$TLS_KEY" > '{dir}/job-saw'
"#,
        app = demo_app().display(),
        dir = dir.display(),
        production = free_port(),
    )
}

#[test]
fn environment_secrets_reach_instances_hooks_migrations_and_jobs_and_only_as_stars() {
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    std::fs::write(dir.path().join("tls.key"), format!("{TLS_KEY}\n")).unwrap();
    let server = Server::start_with_env(
        dir.path(),
        |api| config(dir.path(), api),
        &[("PROD_API_KEY", API_KEY)],
    );
    let out = run_for(
        server.cli().args([
            "deploy",
            "web",
            "--version",
            "v1",
            "--env",
            "production",
            "--wait",
            "--json",
        ]),
        WITHIN,
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let deployment: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(deployment["status"], "success", "{deployment:#}");
    let id = deployment["id"].as_i64().unwrap().to_string();

    // The instance has both in its environment; the hook and the migration saw them.
    let pids = processes_under(dir.path());
    assert_eq!(pids.len(), 1, "{pids:?}");
    let env = environ(pids[0]);
    assert!(env.contains(&format!("API_KEY={API_KEY}")), "{env:?}");
    assert!(env.contains(&format!("TLS_KEY={TLS_KEY}")), "{env:?}");
    assert!(env.contains(&"LOG_LEVEL=debug".to_owned()), "{env:?}");
    let saw = |file: &str| std::fs::read_to_string(dir.path().join(file)).unwrap_or_default();
    assert_eq!(saw("hook-saw"), API_KEY);
    assert_eq!(saw("migration-saw"), TLS_KEY);

    // What they printed is in the deployment log, masked.
    let out = run(server.cli().args(["logs", &id]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let logs = stdout(&out);
    assert!(logs.contains("hook sees ***"), "{logs}");
    assert!(logs.contains("migration sees ***"), "{logs}");
    assert!(logs.contains("app has *** and ***"), "{logs}");

    // A job in the environment reads them in expressions and as variables.
    let out = run_for(
        server.cli().args(["run", "ship", "--wait", "--json"]),
        WITHIN,
    );
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let streamed = stderr(&out);
    assert!(streamed.contains("use | expr ***"), "{streamed}");
    assert!(streamed.contains("use | env ***"), "{streamed}");
    assert_eq!(saw("job-saw"), TLS_KEY);
    let run_id = serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let out = run(server.cli().args(["runs", "logs", &run_id]));
    let run_log = stdout(&out);
    assert!(run_log.contains("expr ***"), "{run_log}");

    let api = run(server.cli().args(["status", "--json"]));
    let server_log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    for secret in [API_KEY, TLS_KEY] {
        for (what, text) in [
            ("slipway logs", &logs),
            ("the streamed run log", &streamed),
            ("slipway runs logs", &run_log),
            ("slipway status", &stdout(&api)),
            ("the server's log", &server_log),
        ] {
            assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
        }
        let found = stored_in(&dir.path().join("data"), secret);
        assert_eq!(found, None, "{secret} is stored");
    }
}

#[test]
fn an_unreadable_environment_secret_fails_validate_and_stops_the_server_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    std::fs::write(
        dir.path().join("slipway.yaml"),
        config(dir.path(), free_port()),
    )
    .unwrap();
    let expected = [
        "slipway.yaml:20:18: environments.production.secrets.API_KEY.env: secret API_KEY: the server's environment has no PROD_API_KEY (or it is empty)",
        "slipway.yaml:21:18: environments.production.secrets.TLS_KEY.file: secret TLS_KEY: cannot read ./tls.key: No such file or directory",
    ];
    let out = run(slipway(dir.path()).args(["validate"]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    for line in expected {
        assert!(stderr(&out).contains(line), "{}", stderr(&out));
    }
    let out = run_for(
        slipway(dir.path()).args(["server", "--config", "slipway.yaml"]),
        WITHIN,
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    for line in expected {
        assert!(stderr(&out).contains(line), "{}", stderr(&out));
    }
    assert!(!dir.path().join("data").join("slipway.db").exists());
}
