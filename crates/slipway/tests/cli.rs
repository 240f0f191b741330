//! The real `slipway` binary: exit codes, messages and `--json` output as a user sees them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::time::Duration;

use util::{
    Server, Sweep, code, demo_app, free_port, get, run, run_for, slipway, stderr, stdout,
    wait_until, write_config,
};

#[test]
fn validate_accepts_a_good_file_and_counts_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), free_port());
    let out = run(slipway(dir.path()).args(["validate", "--config", "slipway.yaml"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "ok: slipway.yaml is valid (1 apps, 2 environments)"
    );
}

#[test]
fn validate_names_file_line_and_column_of_a_mistake_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "version: 1\napps:\n  web:\n    driver: process\n    run: \"x\"\nenvironments:\n  staging:\n    listen: not-an-address\n",
    )
    .unwrap();
    let out = run(slipway(dir.path()).args(["validate", "--config", "bad.yaml"]));
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:8:"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn validate_of_a_missing_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(slipway(dir.path()).arg("validate"));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("slipway.yaml"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["deploy", "web", "--env", "staging"][..],
        &["approve", "twelve"],
        &["no-such-command"],
        &[
            "deploy",
            "web",
            "--version",
            "v1",
            "--env",
            "production",
            "--force",
        ],
        &["router"],
        &["user", "add", "carol", "--role", "superuser"],
    ] {
        let out = run(slipway(dir.path()).args(args));
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn the_api_token_is_not_taken_for_a_control_router_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(slipway(dir.path())
        .args(["router", "--control", "127.0.0.1:0"])
        .env("SLIPWAY_TOKEN", "api-token"));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("SLIPWAY_ROUTER_TOKEN"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_router_backend_with_a_multibyte_character_is_bad_input_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &[
            "router",
            "--listen",
            "127.0.0.1:0",
            "--backend",
            "abcdeféx=1",
        ][..],
        &[
            "router",
            "--listen",
            "127.0.0.1:0",
            "--backend",
            "http:/é=1",
        ],
        &[
            "router",
            "--listen",
            "127.0.0.1:0",
            "--backend",
            "http://127.0.0.1:1=1",
            "--max-header-bytes",
            "10",
        ],
    ] {
        let out = run(slipway(dir.path()).args(args));
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = run(slipway(dir.path()).args([
        "router",
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "abcdeféx=1",
    ]));
    let err = stderr(&out);
    assert!(
        err.contains(r#"--backend "abcdeféx=1": URL must start with http://"#),
        "{err}"
    );
}

#[test]
fn an_unreachable_server_exits_3_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = run(slipway(dir.path()).args(["status", "--server", &url]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("slipway server"), "{err}");
}

#[test]
fn a_bad_server_url_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(slipway(dir.path()).args(["status", "--server", "localhost:7700"]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn a_bad_committed_at_is_refused_before_calling_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = run(slipway(dir.path()).args([
        "deploy",
        "web",
        "--version",
        "v1",
        "--env",
        "staging",
        "--committed-at",
        "yesterday",
        "--server",
        &url,
    ]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));
}

#[test]
fn against_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());

    // --json: stdout is the API's object and nothing else.
    let out = run(server.cli().args(["status", "--json"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let envs = status["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 2, "{status}");

    // The plain table names both environments.
    let out = run(server.cli().arg("status"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("APP"), "{table}");
    assert!(
        table.contains("staging") && table.contains("production"),
        "{table}"
    );

    // Without --token or SLIPWAY_TOKEN, ./slipway.yaml's admin token is used.
    let out = run(slipway(dir.path()).args(["status", "--server", &server.url]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A wrong token: exit 1 and a hint.
    let out = run(server.cli().args(["status", "--token", "wrong"]));
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("--token"), "{}", stderr(&out));

    // user add: the token alone on stdout, and it works.
    let out = run(server
        .cli()
        .args(["user", "add", "alice", "--role", "approver"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let token = stdout(&out);
    assert_eq!(token.lines().count(), 1, "{token:?}");
    let out = run(server.cli().args(["status", "--token", token.trim()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A gate refusal (production requires staging) is bad input: exit 2 with the message.
    let out = run(server
        .cli()
        .args(["deploy", "web", "--version", "v1", "--env", "production"]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));

    // An unknown deployment: 404, exit 2.
    let out = run(server.cli().args(["logs", "999999"]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));

    let out = run(server.cli().args([
        "deploy",
        "web",
        "--version",
        "v1",
        "--env",
        "staging",
        "--json",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let created: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["version"], "v1");

    let out = run(server
        .cli()
        .args(["history", "web", "--env", "staging", "--json"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let history: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        history["deployments"][0]["id"].as_i64(),
        Some(id),
        "{history}"
    );

    let out = run(server.cli().args(["history", "web", "--env", "staging"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out)
            .lines()
            .nth(1)
            .unwrap_or("")
            .starts_with(&id.to_string())
    );

    let out = run(server.cli().args(["logs", &id.to_string(), "--json"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let logs: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(logs["lines"].is_array(), "{logs}");

    // `slipway-demo-app` is not on the test's PATH, so the release never gets healthy:
    // following it ends with a failure, exit 1, and the final JSON on stdout.
    let out = run(server.cli().args([
        "deploy",
        "web",
        "--version",
        "v2",
        "--env",
        "staging",
        "--wait",
        "--json",
    ]));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let last: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(last["version"], "v2");
    assert!(
        ["failure", "error"].contains(&last["status"].as_str().unwrap_or("")),
        "{last}"
    );
    assert!(stderr(&out).contains("created"), "{}", stderr(&out));
}

/// A canary held at `pause: manual` on real instances of the demo app: `deploy --wait`
/// stops there and names the promote command, `status` shows the split and the verdict,
/// `promote` lets it finish.
#[test]
fn a_paused_canary_shows_its_split_and_verdict_and_continues_when_promoted() {
    let dir = tempfile::tempdir().unwrap();
    // Dropped last: kills app instances the server leaves behind, also on failure.
    let _sweep = Sweep(dir.path().to_path_buf());
    let router = free_port();
    let server = Server::start_with(dir.path(), |api| {
        format!(
            r#"version: 1
server:
  listen: 127.0.0.1:{api}
  data_dir: data
  tick: 50ms
apps:
  web:
    run: "'{app}' --port {{port}} --release {{version}}"
    health: {{ path: /health, interval: 100ms, timeout: 1s, start_period: 10s }}
environments:
  production:
    listen: 127.0.0.1:{router}
    strategy:
      canary:
        steps: [{{ weight: 10 }}, {{ pause: manual }}]
        analysis: {{ interval: 100ms, max_error_rate: 5%, min_requests: 3 }}
"#,
            app = demo_app().display(),
        )
    });
    let deploy = |version: &str| {
        run_for(
            server.cli().args([
                "deploy",
                "web",
                "--version",
                version,
                "--env",
                "production",
                "--wait",
            ]),
            Duration::from_secs(30),
        )
    };

    let out = deploy("v1");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("succeeded"), "{}", stdout(&out));

    // Not a terminal: the canary's figures come as a line when the split changes, and the
    // follow stops at the manual pause with the command that continues it.
    let out = deploy("v2");
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    let id = text
        .split_whitespace()
        .nth(1)
        .and_then(|id| id.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("no deployment id in {text}"));
    assert!(
        text.contains("canary | v1 90% (0 req) · v2 10% (0 req)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "deployment {id} is paused at v1 90% · v2 10% (pause: manual)"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("`slipway promote {id}`")), "{text}");

    // Traffic through the router, some of it sent to the canary on purpose, gives the
    // analysis enough requests to judge.
    for n in 0..40 {
        let force = if n % 8 == 0 {
            "X-Slipway-Release: canary\r\n"
        } else {
            ""
        };
        assert_eq!(
            get(router, &format!("user-{n}"), force),
            Some(200),
            "request {n}"
        );
    }
    let verdict = || {
        let out = run(server.cli().args(["status", "--json"]));
        let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        status["environments"][0]["in_progress"]["analysis"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        wait_until(Duration::from_secs(10), || verdict().starts_with("pass: ")),
        "{}",
        verdict()
    );
    let out = run(server.cli().arg("status"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = stdout(&out);
    let row = table
        .lines()
        .find(|l| l.starts_with("web"))
        .unwrap_or_default();
    assert!(row.contains("v1 90% · v2 10%"), "{table}");
    assert!(
        row.contains(&format!("#{id} v2 shifting (pass: ")),
        "{table}"
    );

    let out = run(server.cli().args(["promote", &id.to_string()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_for(
        server.cli().args(["logs", &id.to_string(), "--follow"]),
        Duration::from_secs(30),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let log = stdout(&out);
    assert!(log.contains("promoted by admin"), "{log}");
    assert!(
        log.trim_end()
            .ends_with(&format!("deployment {id} succeeded: web v2 → production")),
        "{log}"
    );
    let out = run(server.cli().arg("status"));
    assert!(stdout(&out).contains("v2 100%"), "{}", stdout(&out));
}

/// Issue 14: `--config /dev/zero` grew without bound and a FIFO hung forever.
#[test]
fn only_a_regular_config_file_of_sane_size_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, "#".repeat(5 * 1024 * 1024)).unwrap();
    let cases = [
        ("/dev/zero", "a character device"),
        ("fifo.yaml", "a named pipe (FIFO)"),
        (".", "a directory"),
        ("big.yaml", "larger than 4 MiB"),
    ];
    for command in ["validate", "server"] {
        for (file, why) in cases {
            let out = run_for(
                slipway(dir.path()).args([command, "--config", file]),
                Duration::from_secs(10),
            );
            assert_eq!(code(&out), 2, "{command} {file}: {}", stderr(&out));
            let err = stderr(&out);
            assert!(err.starts_with(&format!("error: {file}: ")), "{err}");
            assert!(err.contains(why), "{command} {file}: {err}");
        }
    }
}

/// A config whose `server.listen` is taken and whose `data_dir` is a file: `validate`
/// names both keys, and `server` refuses to start with exit 2 (not 1).
#[test]
fn a_port_in_use_and_a_data_dir_that_is_a_file_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    write_config(dir.path(), port);
    std::fs::write(dir.path().join("data"), "not a directory").unwrap();
    let out = run(slipway(dir.path()).arg("validate"));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: slipway.yaml: server.listen: 127.0.0.1:{port} is already in use"
        )),
        "{err}"
    );
    assert!(
        err.contains("error: slipway.yaml: server.data_dir: ")
            && err.contains("is not a directory"),
        "{err}"
    );
    let out = run_for(
        slipway(dir.path()).args(["server", "--config", "slipway.yaml"]),
        Duration::from_secs(20),
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("server.listen"), "{}", stderr(&out));

    // An environment's listener in use is named by its key too.
    std::fs::remove_file(dir.path().join("data")).unwrap();
    let yaml = std::fs::read_to_string(dir.path().join("slipway.yaml")).unwrap();
    let api = free_port();
    let yaml = yaml
        .replacen(
            &format!("listen: 127.0.0.1:{port}"),
            &format!("listen: 127.0.0.1:{api}"),
            1,
        )
        .replacen(
            "  staging:\n    listen: 127.0.0.1:",
            &format!("  staging:\n    listen: 127.0.0.1:{port}\n    #"),
            1,
        );
    std::fs::write(dir.path().join("slipway.yaml"), yaml).unwrap();
    let out = run_for(
        slipway(dir.path()).args(["server", "--config", "slipway.yaml"]),
        Duration::from_secs(20),
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("environments.staging.listen"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("data").join("admin.token").exists(),
        "nothing started"
    );
}

/// Issue 14: `user add admin --role viewer` took the bootstrap admin's role (and token).
#[test]
fn the_last_admin_is_not_demoted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let out = run(server
        .cli()
        .args(["user", "add", "admin", "--role", "viewer"]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("admin is the last admin"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    let out = run(server.cli().arg("status"));
    assert_eq!(code(&out), 0, "admin.token still works: {}", stderr(&out));
    // A new token for an existing user says the old one stopped working.
    let out = run(server
        .cli()
        .args(["user", "add", "alice", "--role", "approver"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(server
        .cli()
        .args(["user", "add", "alice", "--role", "approver"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("alice's previous token no longer works"),
        "{}",
        stderr(&out)
    );
}
