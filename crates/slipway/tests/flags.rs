//! `slipway flags …` and `slipway metrics dora` against a real `slipway server` process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::time::Duration;

use serde_json::Value;
use util::{Server, Sweep, code, run, run_for, stderr, stdout};

#[test]
fn flags_set_rollout_list_and_kill_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    let server = Server::start(dir.path());

    let out = run(server
        .cli()
        .args(["flags", "set", "checkout", "--env", "staging", "--on"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("checkout in staging: on, rollout 100%, version 1 (by admin)"),
        "{}",
        stdout(&out)
    );

    let out = run(server
        .cli()
        .args(["flags", "rollout", "checkout", "--env", "staging", "30%"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("rollout 30%, version 2"),
        "{}",
        stdout(&out)
    );

    let out = run(server
        .cli()
        .args(["flags", "list", "--env", "staging", "--json"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list["flags"][0]["rollout"], 30);
    assert_eq!(list["flags"][0]["enabled"], true);

    let out = run(server
        .cli()
        .args(["flags", "kill", "checkout", "--env", "staging"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("checkout in staging: killed"),
        "{}",
        stdout(&out)
    );
    let out = run(server.cli().args(["flags", "list"]));
    let table = stdout(&out);
    assert!(
        table.lines().next().unwrap().starts_with("ENVIRONMENT"),
        "{table}"
    );
    assert!(table.contains("killed") && table.contains("30%"), "{table}");
    // --off keeps the rest of the flag.
    let out = run(server.cli().args([
        "flags", "set", "checkout", "--env", "staging", "--off", "--json",
    ]));
    let flag: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (
            flag["enabled"].clone(),
            flag["rollout"].clone(),
            flag["killed"].clone()
        ),
        (false.into(), 30.into(), true.into())
    );

    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"variants": [{"name": "a", "value": "x", "weight": 60}, {"name": "b", "value": "y", "weight": 50}], "default_variant": "a"}"#,
    )
    .unwrap();
    let out = run(server.cli().args([
        "flags", "set", "colour", "--env", "staging", "--file", "bad.json",
    ]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the weights sum to 110, they must sum to 100"),
        "{}",
        stderr(&out)
    );
    let out = run(server
        .cli()
        .args(["flags", "rollout", "checkout", "--env", "staging", "130"]));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("rollout \"130\": a percentage from 0 to 100"),
        "{}",
        stderr(&out)
    );
    let out = run(server
        .cli()
        .args(["flags", "kill", "ghost", "--env", "staging"]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no flag \"ghost\" in staging"),
        "{}",
        stderr(&out)
    );
    let out = run(server
        .cli()
        .args(["flags", "set", "checkout", "--env", "staging"]));
    assert_eq!(code(&out), 2, "set needs --file, --on or --off");
}

#[test]
fn metrics_dora_counts_a_failed_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    let server = Server::start(dir.path());
    // This config's app never starts: the deployment ends `failure`.
    let out = run_for(
        server.cli().args([
            "deploy",
            "web",
            "--version",
            "v1",
            "--env",
            "staging",
            "--wait",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));

    let out = run(server
        .cli()
        .args(["metrics", "dora", "--env", "staging", "--since", "7d"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("web / staging (last 7d)"), "{text}");
    let fail = text
        .lines()
        .find(|l| l.contains("change fail rate"))
        .unwrap();
    assert!(
        fail.contains("100% (1 of 1)") && fail.ends_with("low"),
        "{fail}"
    );
    let freq = text
        .lines()
        .find(|l| l.contains("deployment frequency"))
        .unwrap();
    assert!(
        freq.contains("0.00/day (0 deployments)") && freq.ends_with("low"),
        "{freq}"
    );

    let out = run(server
        .cli()
        .args(["metrics", "dora", "--app", "web", "--json"]));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["reports"][0]["change_fail_rate"]["failures"][0]["cause"],
        "failure"
    );
    let out = run(server.cli().args(["metrics", "dora", "--since", "a while"]));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("since=\"a while\""),
        "{}",
        stderr(&out)
    );
}
