//! `migrate:` of an app and `watch:` of an environment: what they parse to, their
//! defaults, and the exact report of each broken form (file, line, column, key path).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::path::Path;
use std::time::Duration;

use slipway_config::{Migrate, Watch, parse};

fn parse_ok(source: &str) -> slipway_config::Config {
    parse(source, "slipway.yaml", Path::new("/srv"))
        .unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

fn errors(source: &str) -> String {
    match parse(source, "slipway.yaml", Path::new("/srv")) {
        Ok(_) => panic!("expected errors, it parsed:\n{source}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_design_example_has_migrations_and_a_watch() {
    let config = parse_ok(include_str!("data/design.yaml"));
    assert_eq!(
        config.apps["web"].migrate,
        Some(Migrate {
            check: Some("alembic upgrade head --sql".into()),
            up: Some("alembic upgrade head".into()),
            down: Some("alembic downgrade -1".into()),
            reversible: true,
            timeout: Duration::from_secs(300),
        })
    );
    assert_eq!(
        config.environments["production"].watch,
        Some(Watch {
            duration: Duration::from_secs(300),
            interval: Duration::from_secs(1),
            max_error_rate: Some(0.05),
            max_p99_latency: Some(Duration::from_millis(800)),
            min_requests: 50,
        })
    );
    assert_eq!(config.environments["staging"].watch, None);
}

#[test]
fn omitted_keys_take_their_defaults() {
    let config = parse_ok(
        "version: 1
apps:
  web:
    run: app --port {port}
    migrate: { up: ./migrate up, reversible: false, timeout: 30s }
environments:
  production:
    listen: 127.0.0.1:0
    watch: { for: 2m, max_p99_latency: 800ms }
",
    );
    assert_eq!(
        config.apps["web"].migrate,
        Some(Migrate {
            check: None,
            up: Some("./migrate up".into()),
            down: None,
            reversible: false,
            timeout: Duration::from_secs(30),
        })
    );
    assert_eq!(
        config.environments["production"].watch,
        Some(Watch {
            duration: Duration::from_secs(120),
            interval: Duration::from_secs(10),
            max_error_rate: None,
            max_p99_latency: Some(Duration::from_millis(800)),
            min_requests: 20,
        })
    );
}

#[test]
fn down_without_up_is_refused_where_down_is() {
    assert_eq!(
        errors(
            "version: 1
apps:
  web:
    run: app --port {port}
    migrate:
      check: ./migrate check
      down: ./migrate down
"
        ),
        "slipway.yaml:7:7: apps.web.migrate.down: `down` without `up`: there is nothing to undo
  hint: add the `up` command that `down` undoes, or remove `down`"
    );
}

#[test]
fn an_unknown_migrate_key_is_refused_with_a_suggestion() {
    assert_eq!(
        errors(
            "version: 1
apps:
  web:
    run: app --port {port}
    migrate: { up: ./up, down: ./down, reversable: false }
"
        ),
        "slipway.yaml:5:40: apps.web.migrate.reversable: unknown key `reversable`
  expected: one of check, up, down, reversible, timeout
  hint: did you mean `reversible`?"
    );
}

#[test]
fn bad_migrate_values_are_each_reported() {
    assert_eq!(
        errors(
            "version: 1
apps:
  web:
    run: app --port {port}
    migrate:
      up: ''
      reversible: no-way
      timeout: 0s
"
        ),
        "slipway.yaml:6:7: apps.web.migrate.up: must not be empty
slipway.yaml:7:7: apps.web.migrate.reversible: expected true or false, got `no-way`
slipway.yaml:8:7: apps.web.migrate.timeout: must be longer than 0
  expected: a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s"
    );
}

#[test]
fn a_watch_shorter_than_its_interval_is_refused_at_for() {
    assert_eq!(
        errors(
            "version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    watch:
      for: 5s
      interval: 10s
      max_error_rate: 5%
"
        ),
        "slipway.yaml:6:7: environments.production.watch.for: the watch lasts 5s but judges every 10s: it would end before its first verdict
  expected: `for` at least as long as `interval`
  hint: make `for` longer, or `interval` shorter"
    );
    // Against the default interval, too.
    assert_eq!(
        errors(
            "version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    watch: { for: 3s, max_error_rate: 5% }
"
        ),
        "slipway.yaml:5:14: environments.production.watch.for: the watch lasts 3s but judges every 10s (the default interval): it would end before its first verdict
  expected: `for` at least as long as `interval`
  hint: make `for` longer, or `interval` shorter"
    );
}

#[test]
fn a_watch_needs_for_and_a_limit_and_knows_its_keys() {
    assert_eq!(
        errors(
            "version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    watch:
      interval: 1s
      max_eror_rate: 5%
"
        ),
        "slipway.yaml:5:5: environments.production.watch: a watch has no limit to judge the release by
  expected: `max_error_rate`, `max_p99_latency` or both
  hint: like `max_error_rate: 5%`
slipway.yaml:5:5: environments.production.watch: missing key `for`
  expected: `for`: how long the release is watched after it succeeded, like 5m
slipway.yaml:7:7: environments.production.watch.max_eror_rate: unknown key `max_eror_rate`
  expected: one of for, interval, max_error_rate, max_p99_latency, min_requests
  hint: did you mean `max_error_rate`?"
    );
}

#[test]
fn bad_watch_values_are_each_reported() {
    assert_eq!(
        errors(
            "version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    watch: { for: 5, max_error_rate: 150%, min_requests: -1 }
"
        ),
        "slipway.yaml:5:14: environments.production.watch.for: expected a duration like 30s, got `5`
  expected: a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s
  hint: add a unit, like `5s`
slipway.yaml:5:22: environments.production.watch.max_error_rate: `150%` is more than 100%
  expected: a percentage from 0% to 100% like 1%, or a fraction from 0 to 1 like 0.01
slipway.yaml:5:44: environments.production.watch.min_requests: `-1` is out of range
  expected: a whole number from 0 to 18446744073709551615"
    );
}
