//! Broken config files and the exact report a user sees for each: file, line, column,
//! key path, message, what was expected and a hint.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::path::Path;

/// (what is wrong, the file, the rendered `ConfigError`).
const CASES: &[(&str, &str, &str)] = &[
    (
        "unknown strategy",
        r#"version: 1
apps:
  web:
    run: app --port {port}
environments:
  staging:
    listen: 127.0.0.1:8081
    strategy: blue-grene
"#,
        r#"slipway.yaml:8:5: environments.staging.strategy: unknown strategy `blue-grene`
  expected: one of recreate, rolling, blue-green, canary
  hint: did you mean `blue-green`?"#,
    ),
    (
        "unknown key with suggestion",
        r#"version: 1
server:
  lisen: 127.0.0.1:7700
"#,
        r#"slipway.yaml:3:3: server.lisen: unknown key `lisen`
  expected: one of listen, data_dir, database, tick, router_control, docker_host, instance_check, session_lifetime
  hint: did you mean `listen`?"#,
    ),
    (
        "unknown reviewer",
        r#"version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    protection:
      reviewers: [alice, bbo]
users:
  alice: {role: approver}
  bob: {role: deployer}
"#,
        r#"slipway.yaml:6:26: environments.production.protection.reviewers[1]: unknown user `bbo`
  expected: one of the users: alice, bob
  hint: did you mean `bob`?"#,
    ),
    (
        "bad duration",
        r#"version: 1
apps:
  web:
    run: app
    health:
      interval: abc
"#,
        r#"slipway.yaml:6:7: apps.web.health.interval: expected a duration like 30s, got `abc`
  expected: a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s"#,
    ),
    (
        "duration without unit",
        r#"version: 1
environments:
  staging:
    listen: 127.0.0.1:8081
    drain_timeout: 30
"#,
        r#"slipway.yaml:5:5: environments.staging.drain_timeout: expected a duration like 30s, got `30`
  expected: a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s
  hint: add a unit, like `30s`"#,
    ),
    (
        "bad percent",
        r#"version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    strategy:
      canary:
        steps: [{weight: 10}]
        analysis: {max_error_rate: 5}
"#,
        r#"slipway.yaml:8:20: environments.production.strategy.canary.analysis.max_error_rate: `5` is more than 1 (a fraction)
  expected: a percentage from 0% to 100% like 1%, or a fraction from 0 to 1 like 0.01
  hint: did you mean `5%`?"#,
    ),
    (
        "decreasing weights",
        r#"version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    strategy:
      canary:
        steps:
          - weight: 50
          - pause: 30s
          - weight: 10.25
          - weight: 20
"#,
        r#"slipway.yaml:10:13: environments.production.strategy.canary.steps[2].weight: weight `10.25` is finer than 0.1%
  expected: a percentage of traffic above 0 and at most 100, like 10 or 12.5
  hint: round it to one decimal, like `10.3`
slipway.yaml:11:13: environments.production.strategy.canary.steps[3].weight: weight `20` is lower than the previous weight 50
  hint: canary weights must not decrease"#,
    ),
    (
        "requires cycle",
        r#"version: 1
environments:
  staging:
    listen: 127.0.0.1:8081
    requires: [production]
  production:
    listen: 127.0.0.1:8082
    requires: [staging]
"#,
        r#"slipway.yaml:8:16: environments.production.requires[0]: `requires` forms a cycle: staging -> production -> staging
  hint: remove one of these requirements"#,
    ),
    (
        "requires unknown and self",
        r#"version: 1
environments:
  staging:
    listen: 127.0.0.1:8081
    requires: [staging, stagin]
"#,
        r#"slipway.yaml:5:16: environments.staging.requires[0]: environment `staging` requires itself
  hint: list the environments that must succeed first
slipway.yaml:5:25: environments.staging.requires[1]: unknown environment `stagin`
  expected: another environment defined under `environments:`"#,
    ),
    (
        "listen clash",
        r#"version: 1
server:
  listen: 127.0.0.1:8081
environments:
  staging:
    listen: 127.0.0.1:8081
    strategy: {blue-green: {preview: "0.0.0.0:8081"}}
"#,
        r#"slipway.yaml:6:5: environments.staging.listen: address 127.0.0.1:8081 is already used by server.listen
  hint: every listener needs its own port (port 0 picks a free one)
slipway.yaml:7:29: environments.staging.strategy.blue-green.preview: address 0.0.0.0:8081 is already used by server.listen
  hint: every listener needs its own port (port 0 picks a free one)"#,
    ),
    (
        "router control clash and bad address",
        r#"version: 1
server:
  router_control: 127.0.0.1:8081
environments:
  staging:
    listen: 127.0.0.1:8081
"#,
        r#"slipway.yaml:6:5: environments.staging.listen: address 127.0.0.1:8081 is already used by server.router_control
  hint: every listener needs its own port (port 0 picks a free one)"#,
    ),
    (
        "too many approvals",
        r#"version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    protection:
      reviewers: [alice]
      required_approvals: 2
users:
  alice: {role: approver}
"#,
        r#"slipway.yaml:7:7: environments.production.protection.required_approvals: 2 approvals are required but only 1 reviewer is listed
  expected: at most 1
  hint: add reviewers or lower `required_approvals`"#,
    ),
    (
        "bad window",
        r#"version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    protection:
      windows: ["Mon-Thu 09:00-16:00 UTC", "Mon-Fry 09:00-16:00", "Sat 09:00-17:00 CET", "Sun 25:00-26:00"]
"#,
        r#"slipway.yaml:6:44: environments.production.protection.windows[1]: invalid window `Mon-Fry 09:00-16:00`: unknown day `Fry`
  expected: days and a UTC time range, like `Mon-Thu 09:00-16:00 UTC`, `Mon,Wed 22:00-02:00` or `Sat-Sun 00:00-24:00`
  hint: did you mean `Fri`?
slipway.yaml:6:67: environments.production.protection.windows[2]: invalid window `Sat 09:00-17:00 CET`: time zone `CET` is not supported
  expected: days and a UTC time range, like `Mon-Thu 09:00-16:00 UTC`, `Mon,Wed 22:00-02:00` or `Sat-Sun 00:00-24:00`
  hint: write the times in UTC and end with `UTC` (or nothing)
slipway.yaml:6:90: environments.production.protection.windows[3]: invalid window `Sun 25:00-26:00`: invalid time `25:00`
  expected: days and a UTC time range, like `Mon-Thu 09:00-16:00 UTC`, `Mon,Wed 22:00-02:00` or `Sat-Sun 00:00-24:00`
  hint: times are HH:MM from 00:00 to 24:00"#,
    ),
    (
        "bad role and name",
        r#"version: 1
users:
  Alice: {role: approver}
  bob: {role: aprover}
  carol: {}
"#,
        r#"slipway.yaml:3:3: users.Alice: invalid user name `Alice`
  expected: a name of lower-case letters, digits, `-` and `_`, starting with a letter or digit
  hint: did you mean `alice`?
slipway.yaml:4:9: users.bob.role: unknown role `aprover`
  expected: one of viewer, deployer, approver, admin
  hint: did you mean `approver`?
slipway.yaml:5:3: users.carol: missing key `role`
  expected: `role`: one of viewer, deployer, approver, admin"#,
    ),
    (
        "user written as a bare role",
        r#"version: 1
users:
  alice: approver
"#,
        r#"slipway.yaml:3:3: users.alice: expected a mapping with key role, got `approver`
  hint: write `alice: { role: approver }`"#,
    ),
    (
        "tab indentation",
        "version: 1\nserver:\n\tlisten: 127.0.0.1:7700\n",
        r#"slipway.yaml:3:2: invalid YAML: tabs disallowed within this context (block indentation)
  hint: indent with spaces; YAML does not allow tabs there"#,
    ),
    (
        "missing driver requirements",
        r#"version: 1
apps:
  web:
    driver: docker
    image: registry.example.com/web:latest
  worker:
    port: 80
  cron:
    driver: podman
"#,
        r#"slipway.yaml:3:3: apps.web: missing key `port`
  expected: `port`: the port the service listens on inside the container
  hint: the docker driver needs `port`, like `port: 8080`
slipway.yaml:5:5: apps.web.image: image `registry.example.com/web:latest` has a tag or digest
  expected: an image repository without a tag
  hint: the release version is the tag; write `registry.example.com/web`
slipway.yaml:6:3: apps.worker: missing key `run`
  expected: `run`: the command that starts one instance
  hint: the process driver needs `run`, like `run: "my-app --port {port}"`
slipway.yaml:9:5: apps.cron.driver: unknown driver `podman`
  expected: one of process, docker"#,
    ),
    (
        "wrong types",
        r#"version: 2
server:
  listen: 7700
  tick: 0s
apps: [web]
"#,
        r#"slipway.yaml:1:1: version: unsupported version `2`
  expected: 1
slipway.yaml:3:3: server.listen: expected an address like 127.0.0.1:8081, got `7700`
  expected: an IP address and port, like 127.0.0.1:8081
  hint: add the host, like `127.0.0.1:7700`
slipway.yaml:4:3: server.tick: must be longer than 0
  expected: a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s
slipway.yaml:5:1: apps: expected a mapping of app names, got a list"#,
    ),
    (
        "bad address",
        r#"version: 1
environments:
  staging:
    listen: localhost:8081
  prod:
    listen: ":8082"
  qa:
    listen: 127.0.0.1
"#,
        r#"slipway.yaml:4:5: environments.staging.listen: invalid address `localhost:8081`
  expected: an IP address and port, like 127.0.0.1:8081
  hint: use an IP address, like `127.0.0.1:8081`
slipway.yaml:6:5: environments.prod.listen: invalid address `:8082`
  expected: an IP address and port, like 127.0.0.1:8081
  hint: add the host, like `127.0.0.1:8082`
slipway.yaml:8:5: environments.qa.listen: invalid address `127.0.0.1`
  expected: an IP address and port, like 127.0.0.1:8081
  hint: add a port, like `127.0.0.1:8081`"#,
    ),
    (
        "duplicate key",
        r#"version: 1
environments:
  staging:
    listen: 127.0.0.1:8081
    listen: 127.0.0.1:8083
"#,
        r#"slipway.yaml:5:5: environments.staging.listen: duplicate key `listen`
  hint: it is first set on line 4"#,
    ),
    (
        "syntax error",
        r#"version: 1
environments:
  staging:
    listen: [127.0.0.1:8081
"#,
        r#"slipway.yaml:4:13: invalid YAML: unclosed bracket '['; the parser reached the end of the document at line 5, column 1, still looking for `]`
  hint: add the `]` that closes it"#,
    ),
    (
        "strategy map with two keys and bad step",
        r#"version: 1
environments:
  a:
    listen: 127.0.0.1:8081
    strategy: {canary: {}, rolling: {}}
  b:
    listen: 127.0.0.1:8082
    strategy:
      canary:
        steps: [{weight: 10, pause: 5s}, {wait: 5s}, {pause: forever}, {weight: 0}]
"#,
        r#"slipway.yaml:5:5: environments.a.strategy: a strategy mapping has exactly one key, found 2
  expected: one of recreate, rolling, blue-green, canary, or a mapping with one of them as its only key
slipway.yaml:10:17: environments.b.strategy.canary.steps[0]: a step has either `weight` or `pause`, not both
  hint: split it into two steps
slipway.yaml:10:43: environments.b.strategy.canary.steps[1].wait: unknown key `wait`
  expected: one of weight, pause
slipway.yaml:10:55: environments.b.strategy.canary.steps[2].pause: expected a duration like 30s, got `forever`
  expected: a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s
slipway.yaml:10:73: environments.b.strategy.canary.steps[3].weight: weight `0` is out of range
  expected: a percentage of traffic above 0 and at most 100, like 10 or 12.5"#,
    ),
    (
        "empty file",
        r#""#,
        r#"slipway.yaml:1:1: the file is empty
  expected: a mapping with keys version, server, apps, environments, users, notifications, pipelines
  hint: start with `version: 1`"#,
    ),
    (
        "missing listen",
        r#"version: 1
environments:
  staging:
    strategy: recreate
"#,
        r#"slipway.yaml:3:3: environments.staging: missing key `listen`
  expected: `listen`: the router's address for this environment, like 127.0.0.1:8081"#,
    ),
    (
        "unknown strategy in map form",
        r#"version: 1
environments:
  staging:
    listen: 127.0.0.1:8081
    strategy:
      canery:
        steps: []
"#,
        r#"slipway.yaml:6:7: environments.staging.strategy: unknown strategy `canery`
  expected: one of recreate, rolling, blue-green, canary
  hint: did you mean `canary`?"#,
    ),
    (
        "rolling cannot progress",
        r#"version: 1
environments:
  staging:
    listen: 127.0.0.1:8081
    strategy: {rolling: {replicas: 2, max_surge: 0}}
"#,
        r#"slipway.yaml:5:16: environments.staging.strategy.rolling: max_surge and max_unavailable are both 0, so the rollout cannot progress
  hint: set `max_surge: 1`"#,
    ),
    (
        "requires as string and variables",
        r#"version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    requires: staging
    variables:
      1BAD: x
      EMPTY:
    require_config: [DATABASE_URL, "not valid"]
"#,
        r#"slipway.yaml:5:5: environments.production.requires: expected a list of environment names, got `staging`
  hint: write a list, like `[staging]`
slipway.yaml:7:7: environments.production.variables.1BAD: invalid variable name `1BAD`
  expected: letters, digits and `_`, not starting with a digit, like DATABASE_URL
slipway.yaml:8:7: environments.production.variables.EMPTY: expected a string, number or boolean, got nothing
  hint: for an empty value write `EMPTY: ""`
slipway.yaml:9:36: environments.production.require_config[1]: invalid variable name `not valid`
  expected: letters, digits and `_`, not starting with a digit, like DATABASE_URL"#,
    ),
    (
        "hooks in the long form",
        r#"version: 1
apps:
  web:
    run: app
    hooks:
      pre_deploy: { run: "./migrate.sh", timeout: 30 }
      post_deploy: { timeout: 1m }
      pre_rollback: { run: "", timout: 5s }
"#,
        r#"slipway.yaml:6:42: apps.web.hooks.pre_deploy.timeout: expected a duration like 30s, got `30`
  expected: a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s
  hint: add a unit, like `30s`
slipway.yaml:7:7: apps.web.hooks.post_deploy: missing key `run`
  expected: `run`: the shell command of the hook
  hint: write `{ run: "./migrate.sh", timeout: 30s }`
slipway.yaml:8:23: apps.web.hooks.pre_rollback.run: must not be empty
slipway.yaml:8:32: apps.web.hooks.pre_rollback.timout: unknown key `timout`
  expected: one of run, timeout
  hint: did you mean `timeout`?"#,
    ),
    (
        "hook timeout of zero and a hook that is a list",
        r#"version: 1
apps:
  web:
    run: app
    hooks:
      pre_deploy: { run: "./migrate.sh", timeout: 0s }
      post_deploy: ["./notify.sh"]
"#,
        r#"slipway.yaml:6:42: apps.web.hooks.pre_deploy.timeout: must be longer than 0
  expected: a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s
slipway.yaml:7:7: apps.web.hooks.post_deploy: expected a string, got a list"#,
    ),
    (
        "bad docker options",
        r#"version: 1
apps:
  web:
    driver: docker
    image: acme/web
    port: 8080
    pull: sometimes
    memory: 512x
    cpus: 0
    restart: never
    args: --verbose
"#,
        r#"slipway.yaml:7:5: apps.web.pull: unknown pull policy `sometimes`
  expected: one of never, if-missing, always
slipway.yaml:8:5: apps.web.memory: bad memory limit `512x`
  expected: a size like 512m or 1g (b, k, m, g), at least 6m
slipway.yaml:9:5: apps.web.cpus: bad CPU limit `0`
  expected: a number of CPU cores above 0, like 0.5 or 2
slipway.yaml:10:5: apps.web.restart: unknown restart policy `never`
  expected: one of no, always, unless-stopped, on-failure, on-failure:N (N retries, 0 or more)
  hint: slipway replaces a dead container itself; `no` leaves it to slipway alone
slipway.yaml:11:5: apps.web.args: expected a list of arguments, got `--verbose`
  hint: write a list, like `[--verbose]`"#,
    ),
    (
        "bad restart retries and instance check",
        r#"version: 1
server:
  instance_check: 0s
apps:
  web:
    driver: docker
    image: acme/web
    port: 8080
    restart: on-failure:-1
  api:
    driver: docker
    image: acme/api
    port: 8080
    restart: { on-failure: 3 }
  job:
    driver: docker
    image: acme/job
    port: 8080
    restart: on-failure:three
"#,
        r#"slipway.yaml:3:3: server.instance_check: must be longer than 0
  expected: a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s
slipway.yaml:9:5: apps.web.restart: unknown restart policy `on-failure:-1`
  expected: one of no, always, unless-stopped, on-failure, on-failure:N (N retries, 0 or more)
  hint: the number of retries is a whole number, like `on-failure:3`
slipway.yaml:14:5: apps.api.restart: expected a restart policy, got a mapping
  expected: one of no, always, unless-stopped, on-failure, on-failure:N (N retries, 0 or more)
slipway.yaml:19:5: apps.job.restart: unknown restart policy `on-failure:three`
  expected: one of no, always, unless-stopped, on-failure, on-failure:N (N retries, 0 or more)
  hint: the number of retries is a whole number, like `on-failure:3`"#,
    ),
    (
        "a session lifetime out of bounds",
        "version: 1\nserver:\n  session_lifetime: 1000h\n",
        r#"slipway.yaml:3:3: server.session_lifetime: must be between 1m and 720h (30 days)
  expected: a duration like 12h or 168h"#,
    ),
    (
        "bad docker host",
        r#"version: 1
server:
  docker_host: https://docker.example.com:2376
"#,
        r#"slipway.yaml:3:3: server.docker_host: unsupported Docker host `https://docker.example.com:2376`
  expected: unix:///path/to/docker.sock or tcp://host:port
  hint: leave `docker_host` out to use DOCKER_HOST, else /var/run/docker.sock"#,
    ),
    (
        "docker keys on a process app",
        r#"version: 1
apps:
  web:
    run: app --port {port}
    image: acme/web
    memory: 1m
"#,
        r#"slipway.yaml:5:5: apps.web.image: `image` is a key of docker apps
  hint: add `driver: docker`, or remove it: the process driver runs `run`
slipway.yaml:6:5: apps.web.memory: `memory` is a key of docker apps
  hint: add `driver: docker`, or remove it: the process driver runs `run`
slipway.yaml:6:5: apps.web.memory: bad memory limit `1m`
  expected: a size like 512m or 1g (b, k, m, g), at least 6m"#,
    ),
];

#[test]
fn each_broken_file_reports_exactly_its_errors() {
    let mut failures = Vec::new();
    for (what, source, expected) in CASES {
        match slipway_config::parse(source, "slipway.yaml", Path::new("/srv")) {
            Ok(_) => failures.push(format!("{what}: parsed without error")),
            Err(e) if e.to_string() != *expected => {
                failures.push(format!("{what}:\n--- expected\n{expected}\n--- got\n{e}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(CASES.len() >= 15);
}

#[test]
fn diagnostics_carry_their_fields() {
    let source = "version: 1\nenvironments:\n  staging:\n    listen: 127.0.0.1:8081\n    strategy: blue-grene\n";
    let error = slipway_config::parse(source, "slipway.yaml", Path::new(".")).unwrap_err();
    let d = &error.diagnostics[0];
    assert_eq!(error.diagnostics.len(), 1);
    assert_eq!((d.file.as_str(), d.line, d.column), ("slipway.yaml", 5, 5));
    assert_eq!(d.path, "environments.staging.strategy");
    assert_eq!(d.message, "unknown strategy `blue-grene`");
    assert_eq!(
        d.expected.as_deref(),
        Some("one of recreate, rolling, blue-green, canary")
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean `blue-green`?"));
    let as_error: &dyn std::error::Error = &error;
    assert!(
        as_error
            .to_string()
            .starts_with("slipway.yaml:5:5: environments.staging.strategy: ")
    );
}

/// A config whose line 9 opens a `{` that is never closed; the parser stops on line 10.
const UNCLOSED_BRACE: &str = r#"version: 1
apps:
  web:
    run: app --port {port}
environments:
  staging:
    listen: 127.0.0.1:8081
    strategy: recreate
    variables: { LOG_LEVEL: debug, REGION: eu
    require_config: [LOG_LEVEL]
"#;

fn syntax_error(source: &str) -> slipway_config::Diagnostic {
    let error = slipway_config::parse(source, "slipway.yaml", Path::new(".")).unwrap_err();
    assert_eq!(error.diagnostics.len(), 1, "{error}");
    error.diagnostics[0].clone()
}

#[test]
fn unclosed_brace_is_reported_where_it_began_and_where_the_parser_stopped() {
    let d = syntax_error(UNCLOSED_BRACE);
    assert_eq!((d.line, d.column), (9, 16), "{d}");
    assert_eq!(
        d.message,
        "invalid YAML: while parsing a flow mapping, did not find expected ',' or '}' \
         at line 10, column 19, inside the `{` that begins here"
    );
    assert_eq!(
        d.hint.as_deref(),
        Some("is the `{` of line 9 missing its `}`?")
    );
}

#[test]
fn unclosed_bracket_is_reported_where_it_began_and_where_the_parser_stopped() {
    let source = "version: 1\nenvironments:\n  staging:\n    listen: 127.0.0.1:8081\n    requires: [qa, dev\n    strategy: recreate\n";
    let d = syntax_error(source);
    assert_eq!((d.line, d.column), (5, 15), "{d}");
    assert!(
        d.message
            .ends_with("at line 6, column 13, inside the `[` that begins here"),
        "{d}"
    );
    assert_eq!(
        d.hint.as_deref(),
        Some("is the `[` of line 5 missing its `]`?")
    );
}

#[test]
fn unclosed_quote_is_reported_where_it_began_and_where_the_parser_stopped() {
    for quote in ['"', '\''] {
        let source = format!(
            "version: 1\nenvironments:\n  staging:\n    listen: {quote}127.0.0.1:8081\n    strategy: recreate\nusers:\n  alice: {{ role: approver }}\n"
        );
        let d = syntax_error(&source);
        assert_eq!((d.line, d.column), (4, 13), "{d}");
        assert_eq!(
            d.message,
            format!(
                "invalid YAML: unclosed quote; the parser reached the end of the document \
                 at line 8, column 1, still looking for `{quote}`"
            )
        );
    }
}

#[test]
fn an_error_inside_a_closed_flow_collection_keeps_both_places() {
    // The `{` is closed; the mistake is the missing comma. The report still names the
    // mapping's start and the exact place the parser stopped, with no "missing" hint.
    let source = "version: 1\nserver: { listen: 127.0.0.1:7700 tick: 1s }\n";
    let d = syntax_error(source);
    assert_eq!((d.line, d.column), (2, 9), "{d}");
    assert!(d.message.contains("at line 2, column "), "{d}");
    assert_eq!(d.hint, None);
}
