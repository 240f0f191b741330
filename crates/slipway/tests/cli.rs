//! The real `slipway` binary: exit codes, messages and `--json` output as a user sees them.

mod util;

use util::{Server, code, free_port, run, slipway, stderr, stdout, write_config};

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
