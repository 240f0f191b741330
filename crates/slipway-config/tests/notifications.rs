//! `notifications:`: webhook targets as the model holds them, and each mistake reported
//! with its line, column and key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::path::Path;
use std::time::Duration;

use slipway_config::*;

fn parse_ok(source: &str) -> Config {
    match parse(source, "slipway.yaml", Path::new("/srv")) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn errors(source: &str) -> String {
    match parse(source, "slipway.yaml", Path::new("/srv")) {
        Ok(_) => panic!("expected errors for:\n{source}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn targets_parse_with_their_defaults_and_star_is_every_event() {
    let config = parse_ok(
        r#"version: 1
notifications:
  - url: https://hooks.example.com/slipway
    events: ["*"]
    secret: { env: HOOK_SECRET }
  - name: chat
    url: http://127.0.0.1:9000/services/T0/B0/XXXX
    events: [deployment.failed, run.failed]
"#,
    );
    let [all, chat] = &config.notifications[..] else {
        panic!("{:?}", config.notifications)
    };
    assert_eq!(
        all,
        &Webhook {
            name: "hooks.example.com".into(),
            url: "https://hooks.example.com/slipway".into(),
            events: NotificationEvent::ALL.to_vec(),
            format: NotificationFormat::Json,
            secret: Some(EnvSecret {
                env: "HOOK_SECRET".into(),
                at: Place {
                    path: "notifications[0].secret.env".into(),
                    line: 5,
                    column: 15,
                },
            }),
            timeout: Duration::from_secs(10),
            attempts: 5,
            backoff: Duration::from_secs(1),
        }
    );
    assert_eq!(chat.name, "chat");
    assert_eq!(
        chat.events,
        [
            NotificationEvent::RunFailed,
            NotificationEvent::DeploymentFailed
        ]
    );
    assert_eq!(chat.secret, None);
}

#[test]
fn format_delivery_settings_and_default_names_with_a_port() {
    let config = parse_ok(
        "version: 1\nnotifications:\n  - { url: 'http://127.0.0.1:9000/hook', events: [deployment.succeeded], format: slack, timeout: 2s, attempts: 3, backoff: 50ms }\n",
    );
    let w = &config.notifications[0];
    assert_eq!(w.name, "127.0.0.1:9000");
    assert_eq!(w.format, NotificationFormat::Slack);
    assert_eq!(
        (w.timeout, w.attempts, w.backoff),
        (Duration::from_secs(2), 3, Duration::from_millis(50))
    );
    assert!(parse_ok("version: 1\n").notifications.is_empty());
}

#[test]
fn event_names_round_trip() {
    for e in NotificationEvent::ALL {
        assert_eq!(NotificationEvent::parse(e.as_str()), Some(e));
    }
    assert_eq!(NotificationEvent::parse("*"), None);
}

/// (what is wrong, the file's `notifications:` list, the rendered errors).
const CASES: &[(&str, &str, &str)] = &[
    (
        "bad url",
        "  - { url: 'not a url', events: ['*'] }\n",
        "slipway.yaml:3:7: notifications[0].url: invalid URL `not a url`: relative URL without a base
  expected: an http:// or https:// URL, like https://hooks.example.com/slipway",
    ),
    (
        "another scheme",
        "  - url: ftp://example.com/x\n    events: ['*']\n",
        "slipway.yaml:3:5: notifications[0].url: unsupported URL scheme `ftp`
  expected: an http:// or https:// URL, like https://hooks.example.com/slipway",
    ),
    (
        "a password in the url",
        "  - url: https://me:hunter2@example.com/x\n    events: ['*']\n",
        "slipway.yaml:3:5: notifications[0].url: the URL holds a user name or password: a secret is never written in the config
  expected: an http:// or https:// URL, like https://hooks.example.com/slipway
  hint: leave the credentials out; `secret: { env: NAME }` signs each body instead",
    ),
    (
        "unknown event",
        "  - url: https://example.com/x\n    events: [deployment.started, deployment.succeded]\n",
        "slipway.yaml:4:34: notifications[0].events[1]: unknown event `deployment.succeded`
  expected: one of *, run.started, run.succeeded, run.failed, deployment.started, deployment.waiting, deployment.approved, deployment.rejected, deployment.succeeded, deployment.failed, deployment.rolled_back, deployment.watch_failed
  hint: did you mean `deployment.succeeded`?",
    ),
    (
        "no events",
        "  - url: https://example.com/x\n    events: []\n",
        "slipway.yaml:4:5: notifications[0].events: subscribes to no event
  expected: one of *, run.started, run.succeeded, run.failed, deployment.started, deployment.waiting, deployment.approved, deployment.rejected, deployment.succeeded, deployment.failed, deployment.rolled_back, deployment.watch_failed
  hint: `events: [\"*\"]` subscribes to every event",
    ),
    (
        "events missing",
        "  - url: https://example.com/x\n",
        "slipway.yaml:3:5: notifications[0]: missing key `events`
  expected: `events`: a list of event names
  hint: `events: [\"*\"]` subscribes to every event",
    ),
    (
        "unknown format",
        "  - url: https://example.com/x\n    events: ['*']\n    format: slak\n",
        "slipway.yaml:5:5: notifications[0].format: unknown format `slak`
  expected: one of json, slack
  hint: did you mean `slack`?",
    ),
    (
        "secret in plain text",
        "  - url: https://example.com/x\n    events: ['*']\n    secret: s3cr3t-value\n",
        "slipway.yaml:5:5: notifications[0].secret: a secret is never written in the config in plain text
  expected: `{ env: NAME }`: the environment variable that holds it
  hint: write `secret: { env: SLIPWAY_WEBHOOK_SECRET }` and set that variable where the server runs",
    ),
    (
        "secret under another key",
        "  - url: https://example.com/x\n    events: ['*']\n    secret: { value: s3cr3t }\n",
        "slipway.yaml:5:5: notifications[0].secret: missing key `env`
  expected: `env`: the name of an environment variable
slipway.yaml:5:15: notifications[0].secret.value: unknown key `value`
  expected: one of env",
    ),
    (
        "bad variable name",
        "  - url: https://example.com/x\n    events: ['*']\n    secret: { env: 'MY SECRET' }\n",
        "slipway.yaml:5:15: notifications[0].secret.env: invalid environment variable name `MY SECRET`
  expected: letters, digits and `_`, not starting with a digit",
    ),
    (
        "two targets with one name",
        "  - url: https://example.com/a\n    events: ['*']\n  - url: https://example.com/b\n    events: ['*']\n",
        "slipway.yaml:5:5: notifications[1]: a second target named `example.com`
  hint: the first is on line 3; give each target its own `name:`",
    ),
    (
        "every mistake of one target at once",
        "  - url: https://example.com/x\n    events: [deploy.done]\n    attempts: 0\n    timeout: 0s\n",
        "slipway.yaml:4:14: notifications[0].events[0]: unknown event `deploy.done`
  expected: one of *, run.started, run.succeeded, run.failed, deployment.started, deployment.waiting, deployment.approved, deployment.rejected, deployment.succeeded, deployment.failed, deployment.rolled_back, deployment.watch_failed
slipway.yaml:5:5: notifications[0].attempts: `0` is out of range
  expected: a whole number from 1 to 20
slipway.yaml:6:5: notifications[0].timeout: must be longer than 0
  expected: a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s",
    ),
    (
        "not a list",
        " { url: https://example.com/x }\n",
        "slipway.yaml:2:1: notifications: expected a list of webhook targets, got a mapping",
    ),
];

#[test]
fn each_mistake_is_reported_with_its_place() {
    let mut failures = Vec::new();
    for (what, list, expected) in CASES {
        let got = errors(&format!("version: 1\nnotifications:\n{list}"));
        if got != *expected {
            failures.push(format!(
                "{what}:\n--- expected\n{expected}\n--- got\n{got}\n"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
