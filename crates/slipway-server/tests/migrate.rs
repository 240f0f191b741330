//! Schema migrations with the release against a real server: a small migration tool
//! (python3's sqlite3 module) changes a real SQLite database file, one table per release.
//! `up` runs once the new instances are healthy and before traffic moves; a canary that
//! fails its analysis runs `down` before traffic returns, so the schema is back; a
//! migration marked `reversible: false` holds the automatic rollback until a person
//! forces one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::path::Path;

use serde_json::{Value, json};
use util::load::Load;
use util::{TestServer, demo_app_yaml, server_yaml};

/// The migration tool: `migrate.py check|up|down DB`. `up` creates the table
/// `feature_<SLIPWAY_VERSION>`, `down` drops it; every run is recorded with its
/// environment and with the release the router served while it ran. A file
/// `fail-<op>-<version>` next to the database makes that run fail before it changes
/// anything.
const TOOL: &str = r#"
import os, sqlite3, sys, urllib.request
op, db = sys.argv[1], sys.argv[2]
here = os.path.dirname(db)
version = os.environ["SLIPWAY_VERSION"]
if os.path.exists(os.path.join(here, "fail-%s-%s" % (op, version))):
    print("cannot %s %s: failing on purpose" % (op, version))
    sys.exit(1)
serving = ""
try:
    with open(os.path.join(here, "listener")) as f:
        serving = urllib.request.urlopen("http://%s/" % f.read().strip(), timeout=5).read().decode().strip()
except Exception as e:
    serving = "error: %s" % e
con = sqlite3.connect(db)
con.execute("CREATE TABLE IF NOT EXISTS runs (op TEXT, version TEXT, previous TEXT, environment TEXT, serving TEXT)")
if op == "check":
    print("would create table feature_%s" % version)
elif op == "up":
    con.execute("CREATE TABLE feature_%s (id INTEGER)" % version)
    print("created table feature_%s" % version)
elif op == "down":
    con.execute("DROP TABLE feature_%s" % version)
    print("dropped table feature_%s" % version)
con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)", (op, version, os.environ.get("SLIPWAY_PREVIOUS_VERSION"), os.environ.get("SLIPWAY_ENVIRONMENT"), serving))
con.commit()
"#;

/// A server whose `web` app migrates `{dir}/app.db` with the tool; `migrate` is the YAML
/// of its `migrate:` keys other than the commands, `env` the YAML of one environment.
async fn server(migrate_extra: &str, env: &str) -> TestServer {
    let s = TestServer::start_yaml(|dir| {
        std::fs::write(dir.join("migrate.py"), TOOL).unwrap();
        let tool = |op: &str| {
            format!(
                "python3 {}/migrate.py {op} {}/app.db",
                dir.display(),
                dir.display()
            )
        };
        let migrate = format!(
            "    migrate: {{ check: \"{}\", up: \"{}\", down: \"{}\", timeout: 30s{migrate_extra} }}\n",
            tool("check"),
            tool("up"),
            tool("down")
        );
        server_yaml(dir, &demo_app_yaml("web", dir, &migrate), env)
    })
    .await;
    let env_name = env.trim_start().split(':').next().unwrap().to_string();
    let listener = s.listener(&env_name).await;
    std::fs::write(s.dir.path().join("listener"), listener.to_string()).unwrap();
    s
}

const STAGING: &str =
    "  staging:\n    listen: 127.0.0.1:0\n    strategy: { blue-green: { scale_down_delay: 5m } }";

const CANARY: &str = r#"  production:
    listen: 127.0.0.1:0
    strategy:
      canary:
        steps: [{ weight: 10 }, { pause: 2s }, { weight: 50 }, { pause: 2s }]
        analysis: { interval: 100ms, max_error_rate: 5%, min_requests: 10, failure_limit: 1, progress_deadline: 30s }"#;

/// One column of a query on the app's database, a row per line.
fn query(dir: &Path, sql: &str) -> Vec<String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\nfor row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]):\n    print('|'.join('' if c is None else str(c) for c in row))",
        ])
        .arg(dir.join("app.db"))
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn tables(dir: &Path) -> Vec<String> {
    query(
        dir,
        "SELECT name FROM sqlite_master WHERE name LIKE 'feature_%' ORDER BY name",
    )
}

/// Where the first log line containing `text` is; panics when there is none.
fn at(lines: &[String], text: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no {text:?} in {lines:#?}"))
}

fn id(d: &Value) -> i64 {
    d["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_once_the_new_release_is_healthy_and_before_traffic_moves() {
    let s = server("", STAGING).await;
    s.deploy_and_wait("staging", "v1", "success").await;
    let v2 = s.deploy_and_wait("staging", "v2", "success").await;

    assert_eq!(tables(s.dir.path()), ["feature_v1", "feature_v2"]);
    assert_eq!(
        query(
            s.dir.path(),
            "SELECT op, previous, environment, serving FROM runs WHERE version = 'v2'"
        ),
        [
            "check|v1|staging|ok release=v1",
            "up|v1|staging|ok release=v1"
        ],
        "while v2's up ran, the router still served v1"
    );
    let lines = s.log_lines(id(&v2)).await;
    assert!(
        at(&lines, "running migrate check") < at(&lines, "started instance"),
        "{lines:#?}"
    );
    at(&lines, "would create table feature_v2");
    assert!(
        at(&lines, "healthy: ") < at(&lines, "running migrate up"),
        "{lines:#?}"
    );
    assert!(
        at(&lines, "migrate up succeeded") < at(&lines, "traffic: 100% to v2"),
        "{lines:#?}"
    );
    let m = &v2["migration"];
    assert_eq!(m["version"], "v2", "{v2:#}");
    assert!(m["up"].as_str().unwrap().contains("migrate.py up"), "{m}");
    assert_eq!(
        (m["reversible"].clone(), m["undo"].clone()),
        (json!(true), Value::Null)
    );
    assert_eq!(s.through_router("staging").await.1.trim(), "ok release=v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_up_or_check_fails_the_deployment_with_nothing_switched() {
    let s = server("", STAGING).await;
    s.deploy_and_wait("staging", "v1", "success").await;

    std::fs::write(s.dir.path().join("fail-up-v2"), "").unwrap();
    let v2 = s.deploy_and_wait("staging", "v2", "failure").await;
    let reason = TestServer::last_reason(&v2);
    assert!(
        reason.contains("migrate up exited with status 1: cannot up v2: failing on purpose; no traffic was moved"),
        "{reason}"
    );
    assert_eq!(v2["migration"], Value::Null);
    assert_eq!(tables(s.dir.path()), ["feature_v1"]);
    assert_eq!(s.through_router("staging").await.1.trim(), "ok release=v1");

    std::fs::write(s.dir.path().join("fail-check-v3"), "").unwrap();
    let v3 = s.deploy_and_wait("staging", "v3", "failure").await;
    let reason = TestServer::last_reason(&v3);
    assert!(
        reason.contains("migrate check exited with status 1")
            && reason.contains("nothing was started"),
        "{reason}"
    );
    assert!(s.instance_states("staging", "v3").await.is_empty());
    assert_eq!(s.through_router("staging").await.1.trim(), "ok release=v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_its_analysis_runs_down_and_the_schema_is_back() {
    let s = server("", CANARY).await;
    s.deploy_and_wait("production", "v1", "success").await;
    s.faulty("v2", "--error-rate 1");
    let load = Load::start(s.listener("production").await);
    let (status, v2) = s.deploy(&s.admin, "production", "v2").await;
    assert_eq!(status, 201, "{v2}");
    let v2 = s.ends(&v2, "failure").await;
    load.finish().await;

    assert!(
        TestServer::last_reason(&v2).contains("canary analysis failed"),
        "{v2:#}"
    );
    assert_eq!(tables(s.dir.path()), ["feature_v1"], "v2's table is gone");
    assert_eq!(
        query(
            s.dir.path(),
            "SELECT previous, environment FROM runs WHERE op = 'down'"
        ),
        ["v1|production"]
    );
    let undo = &v2["migration"]["undo"];
    assert_eq!(undo["state"], "ran", "{v2:#}");
    assert_eq!(undo["by_deployment"], v2["id"]);
    let lines = s.log_lines(id(&v2)).await;
    assert!(
        at(&lines, "migrate down of v2 succeeded")
            < at(&lines, "traffic: 100% on v1 (the previous release)"),
        "{lines:#?}"
    );
    assert_eq!(
        s.through_router("production").await.1.trim(),
        "ok release=v1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_irreversible_migration_holds_the_automatic_rollback_until_a_person_forces_one() {
    let s = server(", reversible: false", CANARY).await;
    s.deploy_and_wait("production", "v1", "success").await;
    s.faulty("v2", "--error-rate 1");
    let load = Load::start(s.listener("production").await);
    let (_, v2) = s.deploy(&s.admin, "production", "v2").await;
    let v2 = s.ends(&v2, "failure").await;
    load.finish().await;

    let reason = TestServer::last_reason(&v2);
    assert!(
        reason.contains("canary analysis failed")
            && reason.contains("not rolled back: the migration of v2")
            && reason
                .contains("is not reversible (migrate.reversible: false), so a person must decide"),
        "{reason}"
    );
    assert_eq!(tables(s.dir.path()), ["feature_v1", "feature_v2"]);
    assert_eq!(v2["migration"]["undo"], Value::Null);
    let split = TestServer::split(&s.env("production").await);
    assert!(
        split.iter().any(|(v, w)| v == "v2" && *w > 0.0),
        "traffic stays where the canary was: {split:?}"
    );

    let path = "/api/v1/apps/web/environments/production/rollback";
    let (status, body) = s.call("POST", path, &s.admin, None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "irreversible_migration", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--force --reason"),
        "{body}"
    );
    let (status, body) = s
        .call("POST", path, &s.admin, Some(json!({"force": true})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("reason_required")),
        "{body}"
    );
    let bob = s.user("bob", "deployer").await;
    let forced = json!({"force": true, "reason": "v2 is broken; its table is harmless"});
    let (status, body) = s.call("POST", path, &bob, Some(forced.clone())).await;
    assert_eq!(status, 403, "only an admin forces: {body}");

    let (status, rollback) = s.call("POST", path, &s.admin, Some(forced)).await;
    assert_eq!(status, 201, "{rollback}");
    assert_eq!(
        rollback["force"]["reason"],
        "v2 is broken; its table is harmless"
    );
    let rollback = s.ends(&rollback, "success").await;
    assert_eq!(TestServer::split(&rollback), [("v1".to_string(), 100.0)]);
    let v2 = s.deployment(id(&v2)).await;
    let undo = &v2["migration"]["undo"];
    assert_eq!(undo["state"], "skipped", "{v2:#}");
    assert_eq!(undo["by_deployment"], rollback["id"]);
    assert!(
        undo["note"]
            .as_str()
            .unwrap()
            .contains("forced by admin: v2 is broken"),
        "{undo}"
    );
    assert_eq!(
        tables(s.dir.path()),
        ["feature_v1", "feature_v2"],
        "nothing ran"
    );
    assert_eq!(
        s.through_router("production").await.1.trim(),
        "ok release=v1"
    );
}
