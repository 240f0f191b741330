//! Docker apps on the real binaries and the real Docker Engine (images FROM scratch by
//! `bench/docker-images.sh`): `slipway server` killed with SIGKILL re-adopts its
//! containers by their labels while a standalone router keeps serving, reports the
//! containers no deployment owns in its log, and `slipway gc` removes them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

#[path = "../../slipway-drivers/tests/util/images.rs"]
mod images;
mod util;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use images::{docker, images, remove_containers};
use util::{Load, Server, Sweep, code, free_port, get_body, standalone_router, stdout, wait_until};

const ROUTER_TOKEN: &str = "router-secret-for-the-docker-test";

/// Removes every container labelled with `scope` (a server's data dir) when dropped,
/// also when the test fails.
struct Containers(String);

impl Containers {
    fn ids(&self, all: bool) -> Vec<String> {
        let filter = format!("label=slipway.scope={}", self.0);
        let mut args = vec!["ps", "-q", "--no-trunc", "--filter", &filter];
        if all {
            args.push("-a");
        }
        docker(&args).lines().map(str::to_owned).collect()
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        remove_containers(&format!("label=slipway.scope={}", self.0));
    }
}

fn config(api: u16, staging: u16, control: u16) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:{api}
  data_dir: data
  tick: 50ms
  instance_check: 200ms
  router_control: 127.0.0.1:{control}
apps:
  web:
    driver: docker
    image: slipway-demo
    port: 8080
    pull: never
    health: {{ path: /health, interval: 100ms, timeout: 1s, start_period: 5s }}
    smoke: [{{ get: /, expect_body_contains: "ok" }}]
environments:
  staging:
    listen: 127.0.0.1:{staging}
    strategy: blue-green
"#
    )
}

fn start_server(dir: &Path, staging: u16, control: u16) -> Server {
    Server::start_with_env(
        dir,
        |api| config(api, staging, control),
        &[("SLIPWAY_ROUTER_TOKEN", ROUTER_TOKEN)],
    )
}

fn deploy(server: &Server, version: &str) {
    let out = server
        .cli()
        .args([
            "deploy",
            "web",
            "--version",
            version,
            "--env",
            "staging",
            "--wait",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_server_killed_with_sigkill_readopts_its_containers_while_traffic_is_served() {
    images();
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let containers = Containers(std::fs::canonicalize(&data).unwrap().display().to_string());
    let (staging, control) = (free_port(), free_port());
    let _router = standalone_router(dir.path(), control, ROUTER_TOKEN);
    let server = start_server(dir.path(), staging, control);
    deploy(&server, "v1");
    let v1 = containers.ids(false);
    assert_eq!(v1.len(), 1);

    // Steady load through the router for the rest of the test.
    let load = Load::start(staging, 1);
    assert!(load.answers(20));

    // A container with this server's labels that no deployment owns (as a server that
    // died between starting and recording one leaves).
    let orphan_name = format!("slipway-web-staging-v0-{}", std::process::id());
    let orphan = docker(&[
        "run",
        "-d",
        "--name",
        &orphan_name,
        "--label",
        &format!("slipway.scope={}", containers.0),
        "--label",
        &format!("slipway.instance={orphan_name}"),
        "--label",
        "slipway.app=web",
        "--label",
        "slipway.environment=staging",
        "slipway-demo:v1",
    ]);

    drop(server); // SIGKILL, not a clean stop
    assert!(
        load.answers(20),
        "the router stopped answering when the server died"
    );

    let server = start_server(dir.path(), staging, control);
    // Re-adopted: the same container, still running, and no new one; the orphan is
    // stopped (the API answers before recovery ends, hence the wait).
    assert!(
        wait_until(Duration::from_secs(30), || containers.ids(false) == v1),
        "{:?} run, expected only v1 {v1:?}",
        containers.ids(false)
    );
    let log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    let reported = "1 leftover instance(s) labelled for this server belong to no deployment: `slipway gc --dry-run` lists them";
    assert!(
        wait_until(Duration::from_secs(30), || log().contains(reported)),
        "{}",
        log()
    );
    assert!(log().contains(&orphan_name), "{}", log());

    let out = server
        .cli()
        .args(["gc", "--dry-run"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let listed = stdout(&out);
    assert_eq!(code(&out), 0, "{listed}");
    assert!(
        listed.contains(&orphan_name) && listed.contains("would remove"),
        "{listed}"
    );
    assert!(
        containers.ids(true).contains(&orphan),
        "a dry run removes nothing"
    );
    let out = server
        .cli()
        .arg("gc")
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let done = stdout(&out);
    assert_eq!(code(&out), 0, "{done}");
    assert!(done.contains("removed 1, left 0"), "{done}");
    assert_eq!(containers.ids(true), v1, "the orphan is gone, v1 stays");

    deploy(&server, "v2");
    let (answered, failed) = load.finish();
    assert_eq!(failed, 0, "of {answered} requests");
    assert_eq!(
        get_body(staging).map(|(s, b)| (s, b.trim().to_owned())),
        Some((200, "ok release=v2".into()))
    );
}
