//! The docker driver against the real Docker Engine, with the demo images built FROM
//! scratch by `bench/docker-images.sh` (no registry is reachable). Every test removes the
//! containers it made, also when it fails (`util::Scope`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slipway_drivers::{
    DockerDriver, DockerError, DockerHost, Driver, Error, ImageHealth, Liveness, PullPolicy,
    Restart,
};
use util::{Scope, docker, eventually, get, images, inspect, serving};

fn driver() -> DockerDriver {
    DockerDriver::from_env().unwrap()
}

fn docker_error(e: Error) -> DockerError {
    match e {
        Error::Docker(e) => e,
        other => panic!("not a docker error: {other}"),
    }
}

#[tokio::test]
async fn runs_a_tag_by_its_image_id_named_and_labelled_on_a_loopback_port() {
    let t = Scope::new();
    let driver = driver();
    let spec = t.spec("v1");
    let run = driver.run(&spec).await.unwrap();
    t.track(&run.started.handle);

    assert_eq!(run.started.addr.ip().to_string(), "127.0.0.1");
    let (status, body) = eventually("/health", async || {
        get(run.started.addr, "/health").filter(|(s, _)| *s == 200)
    })
    .await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""release":"v1""#), "{body}");
    assert!(driver.is_running(&run.started.handle).await);

    assert_eq!(
        run.digest,
        images()["v1"],
        "the digest is the tag's image ID"
    );
    assert_eq!(run.name, format!("slipway-{}-staging-v1-1", t.app));
    let c = inspect(&run.started.handle["docker:".len()..]);
    assert_eq!(c["Name"], format!("/{}", run.name));
    assert_eq!(c["Config"]["Image"], run.digest, "runs the ID, not the tag");
    assert_eq!(c["Image"], run.digest);
    let labels: BTreeMap<String, String> =
        serde_json::from_value(c["Config"]["Labels"].clone()).unwrap();
    let slipway: BTreeMap<&str, &str> = labels
        .iter()
        .filter(|(k, _)| k.starts_with("slipway.") && *k != "slipway.test.build")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        slipway,
        BTreeMap::from([
            ("slipway.app", t.app.as_str()),
            ("slipway.environment", "staging"),
            ("slipway.release", "v1"),
            ("slipway.deployment", "42"),
            ("slipway.digest", run.digest.as_str()),
            ("slipway.scope", t.scope.as_str()),
            ("slipway.instance", spec.instance_id.as_str()),
        ])
    );
    let binding = &c["HostConfig"]["PortBindings"]["8080/tcp"][0];
    assert_eq!(binding["HostIp"], "127.0.0.1");
    assert_eq!(binding["HostPort"], run.started.addr.port().to_string());
    assert_eq!(c["State"]["Pid"].as_u64(), Some(u64::from(run.started.pid)));
}

#[tokio::test]
async fn speaks_the_newest_api_version_both_sides_know() {
    images();
    let server = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    let minor = |v: &str| -> u32 { v.split_once('.').unwrap().1.parse().unwrap() };
    let driver = driver();
    driver.ping().await.unwrap();
    let spoken = driver.api_version().await.unwrap();
    // A daemon that knows less than bollard (Docker 20.10: 1.41) sets the pace.
    let ours = bollard::API_DEFAULT_VERSION.minor_version as u32;
    assert_eq!(
        minor(&spoken),
        minor(&server).min(ours),
        "{spoken} vs {server}"
    );
}

#[tokio::test]
async fn a_stopped_container_starts_again_at_its_address_even_after_its_tag_moved() {
    let t = Scope::new();
    let driver = driver();
    let repo = format!("slipway-demo-{}", t.app);
    t.tag("slipway-demo:v1", &format!("{repo}:moving"));
    let mut spec = t.spec("moving");
    spec.image = repo.clone();
    let run = driver.run(&spec).await.unwrap();
    t.track(&run.started.handle);
    assert_eq!(run.digest, images()["v1"]);
    assert_eq!(serving(run.started.addr).await, "ok release=v1\n");

    let started = Instant::now();
    driver
        .stop(&run.started.handle, Duration::from_secs(5))
        .await
        .unwrap();
    // The demo app exits on SIGTERM: nowhere near the grace.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(!driver.is_running(&run.started.handle).await);
    assert_eq!(get(run.started.addr, "/"), None);
    // Stopping a stopped container is fine.
    driver
        .stop(&run.started.handle, Duration::from_secs(5))
        .await
        .unwrap();

    // The tag now names another image; the kept container still runs what it ran.
    t.tag("slipway-demo:v2", &format!("{repo}:moving"));
    assert_eq!(
        driver
            .resolve(&repo, "moving", PullPolicy::Never)
            .await
            .unwrap(),
        images()["v2"]
    );
    let again = driver.start_again(&run.started.handle).await.unwrap();
    assert_eq!(again.started.handle, run.started.handle);
    assert_eq!(again.started.addr, run.started.addr);
    assert_eq!(again.digest, images()["v1"]);
    assert_eq!(again.name, run.name);
    assert!(driver.is_running(&again.started.handle).await);
    assert_eq!(serving(again.started.addr).await, "ok release=v1\n");
    // Starting a running one again is fine too.
    driver.start_again(&run.started.handle).await.unwrap();
}

#[tokio::test]
async fn a_container_killed_or_removed_by_someone_else_is_not_running() {
    let t = Scope::new();
    let driver = driver();
    let run = driver.run(&t.spec("v1")).await.unwrap();
    t.track(&run.started.handle);
    let id = &run.started.handle["docker:".len()..];
    assert!(driver.is_running(&run.started.handle).await);
    assert_eq!(
        driver.liveness(&run.started.handle).await,
        Liveness::Running
    );

    docker(&["kill", id]);
    assert!(!driver.is_running(&run.started.handle).await);
    assert_eq!(
        driver.liveness(&run.started.handle).await,
        Liveness::Gone("its container exited with code 137 (killed)".into())
    );
    assert!(!driver.found(&t.scope).await.unwrap()[0].running);
    assert!(driver.instances(&t.scope).await.is_empty());
    let kept = driver.containers(&t.scope).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert!(!kept[0].running);
    assert_eq!(kept[0].handle, run.started.handle);

    docker(&["rm", id]);
    assert!(!driver.is_running(&run.started.handle).await);
    assert_eq!(
        driver.liveness(&run.started.handle).await,
        Liveness::Gone("its container was removed".into())
    );
    assert!(driver.found(&t.scope).await.unwrap().is_empty());
    driver
        .stop(&run.started.handle, Duration::from_secs(1))
        .await
        .unwrap();
    driver.remove(&run.started.handle).await.unwrap();
    let gone = driver.start_again(&run.started.handle).await.unwrap_err();
    assert!(
        matches!(&gone, DockerError::NoSuchContainer(i) if i == id),
        "{gone}"
    );
    assert!(!driver.is_running("docker:not-hex").await);
    assert!(!driver.is_running("pid:1:2").await);
}

#[tokio::test]
async fn instances_lists_only_the_running_containers_of_its_scope() {
    let (a, b) = (Scope::new(), Scope::new());
    let driver = driver();
    let run_a = driver.run(&a.spec("v1")).await.unwrap();
    a.track(&run_a.started.handle);
    let run_b = driver.run(&b.spec("v1")).await.unwrap();
    b.track(&run_b.started.handle);

    // A driver that started nothing (a restarted server) finds them by their labels.
    let fresh = DockerDriver::from_env().unwrap();
    assert_eq!(
        fresh.instances(&a.scope).await,
        [(a.spec("v1").instance_id, run_a.started.handle.clone())]
    );
    assert_eq!(
        driver.instances(&b.scope).await,
        [(b.spec("v1").instance_id, run_b.started.handle.clone())]
    );

    driver
        .stop(&run_a.started.handle, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(driver.instances(&a.scope).await.is_empty());
    let kept = driver.containers(&a.scope).await.unwrap();
    assert_eq!(kept.len(), 1, "a stopped container is kept for a rollback");
    assert_eq!(kept[0].name, run_a.name);
    assert_eq!(kept[0].labels["slipway.release"], "v1");

    driver.remove(&run_a.started.handle).await.unwrap();
    assert!(driver.containers(&a.scope).await.unwrap().is_empty());
    assert!(a.containers().is_empty());
    // Removing a container never removes its image.
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Id}}", "slipway-demo:v1"]),
        images()["v1"]
    );
    assert_eq!(driver.instances(&b.scope).await.len(), 1);

    // A paused container serves nothing: neither running nor listed.
    let id_b = &run_b.started.handle["docker:".len()..];
    docker(&["pause", id_b]);
    assert!(!driver.is_running(&run_b.started.handle).await);
    assert!(driver.instances(&b.scope).await.is_empty());
    docker(&["unpause", id_b]);
    assert!(driver.is_running(&run_b.started.handle).await);
}

#[tokio::test]
async fn a_missing_image_or_a_failed_pull_is_a_clear_error_and_creates_nothing() {
    let t = Scope::new();
    let driver = driver();
    let mut spec = t.spec("v9");
    spec.image = "slipway-demo-missing".into();

    let e = driver.run(&spec).await.unwrap_err();
    assert!(matches!(e, DockerError::ImageMissing { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("slipway-demo-missing:v9") && text.contains("`pull: never`"),
        "{text}"
    );

    // No registry answers here: pulling fails, with the daemon's reason.
    spec.pull = PullPolicy::IfMissing;
    let e = driver.run(&spec).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, DockerError::Pull { .. }), "{text}");
    assert!(
        text.starts_with("cannot pull image slipway-demo-missing:v9 (`pull: if-missing`): "),
        "{text}"
    );

    // `always` pulls even a local image, and fails the same way.
    let mut local = t.spec("v1");
    local.pull = PullPolicy::Always;
    let e = driver.run(&local).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot pull image slipway-demo:v1 (`pull: always`): "),
        "{e}"
    );

    let mut tagged = t.spec("v1");
    tagged.image = "slipway-demo:v1".into();
    let e = driver.run(&tagged).await.unwrap_err();
    assert!(matches!(e, DockerError::BadImage(_)), "{e}");
    assert!(t.containers().is_empty());
}

#[tokio::test]
async fn an_unreachable_docker_host_is_a_clear_error_naming_it_and_creates_nothing() {
    let t = Scope::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = DockerDriver::new(DockerHost::Tcp(format!("127.0.0.1:{port}")));
    let started = Instant::now();
    let e = refused.run(&t.spec("v1")).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, DockerError::Unreachable { .. }), "{text}");
    assert!(
        text.starts_with(&format!(
            "cannot reach the Docker daemon at tcp://127.0.0.1:{port}: "
        )) && text.contains("refused"),
        "{text}"
    );
    assert!(refused.ping().await.is_err());
    assert!(!refused.is_running("docker:0123abcd").await);
    assert!(refused.instances(&t.scope).await.is_empty());
    let e = docker_error(
        refused
            .stop("docker:0123abcd", Duration::ZERO)
            .await
            .unwrap_err(),
    );
    assert!(matches!(e, DockerError::Unreachable { .. }), "{e}");

    let missing = DockerDriver::new("unix:///nonexistent/docker.sock".parse().unwrap());
    let e = missing.run(&t.spec("v1")).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot reach the Docker daemon at unix:///nonexistent/docker.sock: "),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(t.containers().is_empty(), "nothing reached the real daemon");
}

#[tokio::test]
async fn the_container_environment_holds_only_what_the_spec_gave() {
    let t = Scope::new();
    let driver = driver();
    let mut spec = t.spec("v1");
    spec.env = BTreeMap::from([
        ("GREETING".into(), "hello there".into()),
        ("DATABASE_URL".into(), "postgres://db/app?x=1".into()),
    ]);
    let run = driver.run(&spec).await.unwrap();
    t.track(&run.started.handle);

    let env = |json: &serde_json::Value| -> Vec<String> {
        serde_json::from_value(json["Config"]["Env"].clone()).unwrap_or_default()
    };
    let image_env = env(&inspect("slipway-demo:v1"));
    let mut want: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    want.extend(image_env);
    want.sort();
    let mut got = env(&inspect(&run.started.handle["docker:".len()..]));
    got.sort();
    assert_eq!(
        got, want,
        "the spec's variables and the image's own ENV, nothing else"
    );
}

#[tokio::test]
async fn limits_restart_policy_and_args_reach_the_container() {
    let t = Scope::new();
    let driver = driver();
    let mut spec = t.spec("v1");
    spec.memory = Some(64 << 20);
    spec.cpus = Some(0.5);
    spec.restart = Restart::OnFailure {
        max_retries: Some(2),
    };
    spec.args = ["--host", "0.0.0.0", "--port", "8080", "--release", "custom"]
        .map(String::from)
        .to_vec();
    let run = driver.run(&spec).await.unwrap();
    t.track(&run.started.handle);
    assert_eq!(serving(run.started.addr).await, "ok release=custom\n");

    let host = &inspect(&run.started.handle["docker:".len()..])["HostConfig"];
    assert_eq!(host["Memory"], 64 << 20);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(host["RestartPolicy"]["MaximumRetryCount"], 2);

    let taken = driver.run(&spec).await.unwrap_err();
    assert!(
        matches!(&taken, DockerError::NameTaken { name } if *name == run.name),
        "{taken}"
    );
    assert_eq!(t.containers().len(), 1);
}

#[tokio::test]
async fn the_images_own_healthcheck_is_reported() {
    let t = Scope::new();
    let driver = driver();
    let mut handles = BTreeMap::new();
    for version in ["v1", "v2", "v3"] {
        let run = driver.run(&t.spec(version)).await.unwrap();
        t.track(&run.started.handle);
        handles.insert(version, run.started.handle);
    }
    assert_eq!(
        driver.health(&handles["v1"]).await.unwrap(),
        ImageHealth::None
    );
    for (version, want) in [("v2", ImageHealth::Healthy), ("v3", ImageHealth::Unhealthy)] {
        let h = &handles[version];
        eventually(&format!("{version} {want:?}"), async || {
            (driver.health(h).await.unwrap() == want).then_some(())
        })
        .await;
    }
    // Through the trait: none for an image without HEALTHCHECK, and what the failing
    // check printed.
    assert_eq!(Driver::own_health(&driver, &handles["v1"]).await, None);
    let v3 = Driver::own_health(&driver, &handles["v3"]).await.unwrap();
    assert_eq!(v3.status, ImageHealth::Unhealthy);
    assert!(!v3.last_output.is_empty(), "{v3:?}");
}

#[tokio::test]
async fn container_output_streams_into_a_sink_until_it_stops() {
    let t = Scope::new();
    let driver = Arc::new(driver());
    let run = driver.run(&t.spec("v1")).await.unwrap();
    t.track(&run.started.handle);
    serving(run.started.addr).await;

    let follow = {
        let (driver, handle) = (driver.clone(), run.started.handle.clone());
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let n = driver.copy_logs(&handle, 0, true, &mut sink).await.unwrap();
            (n, sink)
        })
    };
    driver
        .stop(&run.started.handle, Duration::from_secs(5))
        .await
        .unwrap();
    let (n, sink) = tokio::time::timeout(util::DEADLINE, follow)
        .await
        .expect("following ends when the container stops")
        .unwrap();
    assert_eq!(n, sink.len() as u64);
    assert_eq!(
        String::from_utf8(sink).unwrap(),
        "slipway-demo-app v1 listening on 0.0.0.0:8080\n"
    );
}

/// The engine's way in: `Driver::start` with a container workload names the container
/// by the instance id and runs the digest the engine pinned, not what the tag says now.
#[tokio::test]
async fn driver_start_runs_a_container_workload_by_its_pinned_digest() {
    let t = Scope::new();
    let driver = driver();
    let name = format!("slipway-{}-staging-v1-2", t.app);
    let spec = slipway_drivers::InstanceSpec {
        instance_id: name.clone(),
        scope: t.scope.clone(),
        app: t.app.clone(),
        environment: "staging".into(),
        version: "v1".into(),
        env: BTreeMap::from([("GREETING".into(), "hi".into())]),
        workload: slipway_drivers::Workload::Container {
            image: "slipway-demo".into(),
            port: 8080,
            labels: BTreeMap::from([
                ("slipway.deployment".into(), "9".into()),
                // The tag says v1; the engine resolved (and pinned) v2's image.
                ("slipway.digest".into(), images()["v2"].clone()),
            ]),
            pull: PullPolicy::Never,
            memory: Some(64 << 20),
            cpus: None,
            restart: Restart::No,
            args: Vec::new(),
        },
    };
    let started = driver.start(&spec).await.unwrap();
    t.track(&started.handle);
    let (_, body) = eventually("/health", async || {
        get(started.addr, "/health").filter(|(s, _)| *s == 200)
    })
    .await;
    assert!(
        body.contains(r#""release":"v2""#),
        "runs the pinned digest: {body}"
    );
    let c = inspect(&started.handle["docker:".len()..]);
    assert_eq!(c["Name"], format!("/{name}"));
    assert_eq!(c["Config"]["Labels"]["slipway.instance"], name.as_str());
    assert_eq!(c["Config"]["Labels"]["slipway.deployment"], "9");
    assert_eq!(c["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(
        driver.instances(&t.scope).await,
        vec![(name, started.handle.clone())]
    );
}
