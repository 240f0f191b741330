//! Valid files parse to the expected model; omitted keys take their documented defaults.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use slipway_config::*;

/// A full configuration (the keys of docs/config.md), plus the users it names.
const FULL_EXAMPLE: &str = include_str!("data/design.yaml");

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn parse_ok(source: &str) -> Config {
    match parse(source, "slipway.yaml", Path::new("/srv/app")) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

#[test]
fn design_example_parses_to_the_expected_model() {
    let config = parse_ok(FULL_EXAMPLE);
    assert_eq!(config.version, 1);
    assert_eq!(
        config.server,
        ServerConfig {
            listen: addr("127.0.0.1:7700"),
            data_dir: "/srv/app/.slipway".into(),
            database: None,
            tick: Duration::from_millis(100),
            router_control: None,
            docker_host: None,
            instance_check: Duration::from_secs(2),
            session_lifetime: Duration::from_secs(12 * 3600),
        }
    );

    let web = &config.apps["web"];
    assert_eq!(web.driver, DriverKind::Process);
    assert_eq!(
        web.run.as_deref(),
        Some("slipway-demo-app --port {port} --release {version}")
    );
    assert_eq!(web.image, None);
    assert_eq!(web.port, Some(8080));
    assert_eq!(web.health, HealthCheck::default());
    assert_eq!(
        web.smoke,
        vec![
            SmokeTest {
                get: "/health".into(),
                expect_status: Some(200),
                expect_body_contains: None
            },
            SmokeTest {
                get: "/".into(),
                expect_status: None,
                expect_body_contains: Some("ok".into())
            },
        ]
    );
    assert_eq!(
        web.hooks,
        Hooks {
            pre_deploy: Some(Hook::new("migrate up")),
            post_deploy: Some(Hook::new("notify")),
            pre_rollback: Some(Hook::new("migrate down")),
        }
    );

    let staging = &config.environments["staging"];
    assert_eq!(staging.listen, addr("127.0.0.1:8081"));
    assert_eq!(
        staging.strategy,
        Strategy::BlueGreen {
            preview: None,
            scale_down_delay: Duration::from_secs(30)
        }
    );
    assert_eq!(
        staging.variables.get("LOG_LEVEL").map(String::as_str),
        Some("debug")
    );
    assert_eq!(staging.require_config, vec!["DATABASE_URL".to_string()]);
    assert!(staging.requires.is_empty());
    assert!(!staging.protection.is_protected());

    let production = &config.environments["production"];
    assert_eq!(production.listen, addr("127.0.0.1:8082"));
    assert_eq!(production.requires, vec!["staging".to_string()]);
    let p = &production.protection;
    assert_eq!(p.reviewers, vec!["alice".to_string(), "bob".to_string()]);
    assert_eq!(p.required_approvals, 1);
    assert!(p.prevent_self_review);
    assert_eq!(p.wait_timer, Some(Duration::from_secs(300)));
    assert_eq!(
        p.branches,
        vec!["main".to_string(), "release/*".to_string()]
    );
    assert_eq!(
        p.windows,
        vec![Window {
            text: "Mon-Thu 09:00-16:00 UTC".into(),
            days: [true, true, true, true, false, false, false],
            start_minute: 9 * 60,
            end_minute: 16 * 60,
        }]
    );
    assert_eq!(
        production.strategy,
        Strategy::Canary {
            steps: vec![
                CanaryStep::Weight(10.0),
                CanaryStep::Pause(Duration::from_secs(30)),
                CanaryStep::Weight(50.0),
                CanaryStep::Pause(Duration::from_secs(30)),
            ],
            analysis: Analysis {
                interval: Duration::from_secs(1),
                max_error_rate: Some(0.01),
                max_p99_latency: Some(Duration::from_millis(500)),
                max_error_rate_vs_stable: None,
                min_requests: 20,
                failure_limit: 2,
                progress_deadline: Duration::from_secs(600),
            },
        }
    );
    for env in config.environments.values() {
        assert_eq!(env.keep_releases, 3);
        assert_eq!(env.drain_timeout, Duration::from_secs(30));
        assert!(!env.rollback_requires_approval);
        assert!(!env.allow_mutable_tags);
    }

    assert_eq!(config.users["alice"].role, Role::Approver);
    assert_eq!(config.users["bob"].role, Role::Deployer);
    assert_eq!(config.users.len(), 2);
}

#[test]
fn omitted_keys_take_their_defaults() {
    let config = parse_ok(
        "version: 1
apps:
  web:
    run: my-app --port {port}
    smoke:
      - get: /ready
environments:
  staging:
    listen: 127.0.0.1:0
    protection:
      reviewers: [alice]
users:
  alice: {role: admin}
",
    );
    assert_eq!(config.server.listen, addr("127.0.0.1:7700"));
    assert_eq!(config.server.data_dir, Path::new("/srv/app/.slipway"));
    assert_eq!(config.server.tick, Duration::from_millis(100));
    assert_eq!(config.server.database, None);
    let web = &config.apps["web"];
    assert_eq!(web.driver, DriverKind::Process);
    assert_eq!(web.health, HealthCheck::default());
    assert_eq!(web.hooks, Hooks::default());
    assert_eq!(
        web.smoke[0].expect_status,
        Some(200),
        "a smoke test with no expectation wants a 200"
    );
    let staging = &config.environments["staging"];
    assert_eq!(
        staging.strategy,
        Strategy::BlueGreen {
            preview: None,
            scale_down_delay: Duration::from_secs(30)
        }
    );
    assert_eq!(staging.keep_releases, 3);
    assert_eq!(staging.drain_timeout, Duration::from_secs(30));
    assert!(!staging.rollback_requires_approval);
    assert!(!staging.allow_mutable_tags);
    assert_eq!(
        staging.protection.required_approvals, 1,
        "reviewers given: one approval by default"
    );
    assert!(!staging.protection.prevent_self_review);
    assert!(staging.protection.is_protected());
}

#[test]
fn every_strategy_form_parses() {
    let config = parse_ok(
        "version: 1
server: {listen: '127.0.0.1:9000', data_dir: /var/lib/slipway, tick: 250ms, database: 'postgres://u@h/db'}
environments:
  a: {listen: '127.0.0.1:9001', strategy: recreate}
  b: {listen: '127.0.0.1:9002', strategy: rolling}
  c: {listen: '127.0.0.1:9003', strategy: {rolling: {replicas: 3, max_surge: 0, max_unavailable: 1}}}
  d: {listen: '127.0.0.1:9004', strategy: {blue-green: {preview: '127.0.0.1:9104', scale_down_delay: 1m30s}}}
  e:
    listen: 0.0.0.0:0
    keep_releases: 5
    drain_timeout: 2s
    rollback_requires_approval: true
    allow_mutable_tags: true
    strategy:
      canary:
        steps: [{weight: 12.5}, {pause: manual}, {weight: 12.5}, {weight: 100}]
        analysis:
          max_error_rate: 0.05
          max_error_rate_vs_stable: 2
          min_requests: 0
          progress_deadline: 2m
  f: {listen: '127.0.0.1:9006', strategy: canary}
",
    );
    assert_eq!(config.server.data_dir, Path::new("/var/lib/slipway"));
    assert_eq!(config.server.tick, Duration::from_millis(250));
    assert_eq!(config.server.database.as_deref(), Some("postgres://u@h/db"));
    let strategy = |name: &str| config.environments[name].strategy.clone();
    assert_eq!(strategy("a"), Strategy::Recreate);
    assert_eq!(
        strategy("b"),
        Strategy::Rolling {
            replicas: 1,
            max_surge: 1,
            max_unavailable: 0
        }
    );
    assert_eq!(
        strategy("c"),
        Strategy::Rolling {
            replicas: 3,
            max_surge: 0,
            max_unavailable: 1
        }
    );
    assert_eq!(
        strategy("d"),
        Strategy::BlueGreen {
            preview: Some(addr("127.0.0.1:9104")),
            scale_down_delay: Duration::from_secs(90)
        }
    );
    let Strategy::Canary { steps, analysis } = strategy("e") else {
        panic!("e is a canary");
    };
    assert_eq!(
        steps,
        vec![
            CanaryStep::Weight(12.5),
            CanaryStep::PauseManual,
            CanaryStep::Weight(12.5),
            CanaryStep::Weight(100.0),
        ]
    );
    assert_eq!(analysis.max_error_rate, Some(0.05));
    assert_eq!(analysis.max_error_rate_vs_stable, Some(2.0));
    assert_eq!(analysis.min_requests, 0);
    assert_eq!(analysis.progress_deadline, Duration::from_secs(120));
    assert_eq!(analysis.interval, Duration::from_secs(1));
    assert_eq!(analysis.failure_limit, 1);
    let e = &config.environments["e"];
    assert_eq!(
        (e.keep_releases, e.drain_timeout),
        (5, Duration::from_secs(2))
    );
    assert!(e.rollback_requires_approval && e.allow_mutable_tags);
    assert!(matches!(strategy("f"), Strategy::Canary { ref steps, .. } if !steps.is_empty()));
}

#[test]
fn docker_apps_and_shared_anchors() {
    let config = parse_ok(
        "version: 1
x-health: &health {path: /ready, interval: 500ms}
apps:
  api:
    driver: docker
    image: localhost:5000/acme/api
    port: 3000
    health: *health
",
    );
    let api = &config.apps["api"];
    assert_eq!(api.driver, DriverKind::Docker);
    assert_eq!(api.image.as_deref(), Some("localhost:5000/acme/api"));
    assert_eq!(api.port, Some(3000));
    assert_eq!(api.health.path, "/ready");
    assert_eq!(api.health.interval, Duration::from_millis(500));
    assert_eq!(api.container, ContainerOptions::default());
    assert_eq!(
        api.container.pull,
        Pull::IfMissing,
        "the default pull policy"
    );
}

#[test]
fn docker_apps_take_pull_limits_restart_and_args() {
    let config = parse_ok(
        r#"version: 1
apps:
  api:
    driver: docker
    image: acme/api
    port: 3000
    pull: never
    memory: 512m
    cpus: 0.5
    restart: on-failure
    args: ["--port", "3000", "--error-rate", "0"]
  worker:
    driver: docker
    image: acme/worker
    port: 9000
    pull: always
    memory: 1G
    cpus: 2
    restart: unless-stopped
  batch:
    driver: docker
    image: acme/batch
    port: 9001
    restart: on-failure:5
  cron:
    driver: docker
    image: acme/cron
    port: 9002
    restart: always
  plain:
    driver: docker
    image: acme/plain
    port: 9003
    restart: no
"#,
    );
    assert_eq!(config.server.docker_host, None);
    let api = &config.apps["api"].container;
    assert_eq!(api.pull, Pull::Never);
    assert_eq!(api.memory, Some(512 << 20));
    assert_eq!(api.cpus, Some(0.5));
    assert_eq!(api.restart, RestartPolicy::OnFailure { max_retries: None });
    assert_eq!(api.args, ["--port", "3000", "--error-rate", "0"]);
    let worker = &config.apps["worker"].container;
    assert_eq!(worker.pull, Pull::Always);
    assert_eq!(worker.memory, Some(1 << 30));
    assert_eq!(worker.cpus, Some(2.0));
    assert_eq!(worker.restart, RestartPolicy::UnlessStopped);
    assert!(worker.args.is_empty());
    let restart = |app: &str| config.apps[app].container.restart;
    assert_eq!(
        restart("batch"),
        RestartPolicy::OnFailure {
            max_retries: Some(5)
        }
    );
    assert_eq!(restart("cron"), RestartPolicy::Always);
    assert_eq!(restart("plain"), RestartPolicy::No);
}

#[test]
fn load_reads_the_file_and_resolves_data_dir_next_to_it() {
    let dir = std::env::temp_dir().join(format!("slipway-config-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("slipway.yaml");
    std::fs::write(&path, FULL_EXAMPLE).unwrap();
    let config = load(&path);
    let missing = load(&dir.join("nope.yaml"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(config.unwrap().server.data_dir, dir.join(".slipway"));
    let error = missing.unwrap_err();
    assert_eq!(error.diagnostics.len(), 1);
    let rendered = error.to_string();
    assert!(
        rendered.starts_with(&format!(
            "{}: cannot read the config file: ",
            dir.join("nope.yaml").display()
        )),
        "{rendered}"
    );
}

#[test]
fn hooks_take_a_string_or_a_run_with_its_timeout() {
    let config = parse_ok(
        r#"version: 1
apps:
  web:
    run: app --port {port}
    hooks:
      pre_deploy: { run: "./migrate.sh up", timeout: 30s }
      post_deploy: "./notify.sh"
      pre_rollback:
        run: ./migrate.sh down
"#,
    );
    assert_eq!(
        config.apps["web"].hooks,
        Hooks {
            pre_deploy: Some(Hook {
                run: "./migrate.sh up".into(),
                timeout: Duration::from_secs(30)
            }),
            post_deploy: Some(Hook {
                run: "./notify.sh".into(),
                timeout: Duration::from_secs(300)
            }),
            pre_rollback: Some(Hook {
                run: "./migrate.sh down".into(),
                timeout: DEFAULT_HOOK_TIMEOUT
            }),
        }
    );
}
