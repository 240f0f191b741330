//! `notifications:`, a list of webhook targets: `url`, `events`, `format`, `secret` (only
//! ever `{ env: NAME }`), and how delivery is retried.

use std::collections::HashMap;

use super::{Checker, Item, one_of};
use crate::model::*;
use crate::tree::{Node, Pos, quote};

const WEBHOOK_KEYS: &[&str] = &[
    "name", "url", "events", "format", "secret", "timeout", "attempts", "backoff",
];
const FORMATS: &[&str] = &["json", "slack"];
const URL_EXPECTED: &str = "an http:// or https:// URL, like https://hooks.example.com/slipway";
const ALL_EVENTS: &str = "*";
/// More attempts than this only hide a receiver that is down.
const MAX_ATTEMPTS: u64 = 20;
const MAX_NAME_CHARS: usize = 64;

impl<'a> Checker<'a> {
    pub(super) fn notifications(&mut self, item: &Item<'a>) -> Vec<Webhook> {
        let mut names: HashMap<String, Pos> = HashMap::new();
        let mut webhooks = Vec::new();
        for target in self.list(item, "webhook targets") {
            let Some(webhook) = self.webhook(&target) else {
                continue;
            };
            if let Some(first) = names.get(&webhook.name) {
                let d = self
                    .diag(
                        target.pos,
                        &target.path,
                        format!("a second target named {}", quote(&webhook.name)),
                    )
                    .with_hint(Some(format!(
                        "the first is on line {}; give each target its own `name:`",
                        first.line
                    )));
                self.push(d);
                continue;
            }
            names.insert(webhook.name.clone(), target.pos);
            webhooks.push(webhook);
        }
        webhooks
    }

    fn webhook(&mut self, item: &Item<'a>) -> Option<Webhook> {
        if let Node::Str(text) = &item.node.value {
            let hint = format!("write `- {{ url: {text}, events: [\"*\"] }}`");
            self.wrong_type(item, "a mapping with keys url, events", None, Some(hint));
            return None;
        }
        let f = self.fields(item, WEBHOOK_KEYS);
        if f.entries.is_empty() && !matches!(item.node.value, Node::Map(_)) {
            return None;
        }
        let url = match f.get("url") {
            Some(i) => self.webhook_url(&i),
            None => {
                self.missing(&f, "url", URL_EXPECTED, None);
                None
            }
        };
        let events = match f.get("events") {
            Some(i) => self.events(&i),
            None => {
                let hint = Some("`events: [\"*\"]` subscribes to every event".to_owned());
                self.missing(&f, "events", "a list of event names", hint);
                None
            }
        };
        // Every key is checked before giving up, so one run reports all mistakes.
        let mut bad = false;
        let format = match f.get("format") {
            Some(i) => noted(&mut bad, self.choice(&i, "format", FORMATS)).map(|f| match f {
                "slack" => NotificationFormat::Slack,
                _ => NotificationFormat::Json,
            }),
            None => Some(NotificationFormat::Json),
        };
        let secret = f
            .get("secret")
            .and_then(|i| noted(&mut bad, self.env_secret(&i)));
        let name = f
            .get("name")
            .and_then(|i| noted(&mut bad, self.target_name(&i)));
        let timeout = match f.get("timeout") {
            Some(i) => noted(&mut bad, self.positive_duration(&i)),
            None => Some(DEFAULT_WEBHOOK_TIMEOUT),
        };
        let attempts = match f.get("attempts") {
            Some(i) => noted(
                &mut bad,
                self.uint(&i, 1, MAX_ATTEMPTS)
                    .and_then(|n| u32::try_from(n).ok()),
            ),
            None => Some(DEFAULT_WEBHOOK_ATTEMPTS),
        };
        let backoff = match f.get("backoff") {
            Some(i) => noted(&mut bad, self.duration(&i)),
            None => Some(DEFAULT_WEBHOOK_BACKOFF),
        };
        if bad {
            return None;
        }
        let (url, events) = (url?, events?);
        Some(Webhook {
            name: name.unwrap_or_else(|| default_name(&url)),
            url: url.to_string(),
            events,
            format: format?,
            secret,
            timeout: timeout?,
            attempts: attempts?,
            backoff: backoff?,
        })
    }

    fn webhook_url(&mut self, item: &Item) -> Option<url::Url> {
        let text = self.nonempty_string(item)?;
        let problem = match url::Url::parse(text.trim()) {
            Err(e) => (format!("invalid URL {}: {e}", quote(&text)), None),
            Ok(url) if !matches!(url.scheme(), "http" | "https") => (
                format!("unsupported URL scheme {}", quote(url.scheme())),
                None,
            ),
            Ok(url) if !url.username().is_empty() || url.password().is_some() => (
                "the URL holds a user name or password: a secret is never written in the config"
                    .to_owned(),
                Some(
                    "leave the credentials out; `secret: { env: NAME }` signs each body instead"
                        .to_owned(),
                ),
            ),
            Ok(url) => return Some(url),
        };
        let d = self
            .diag(item.pos, &item.path, problem.0)
            .with_expected(URL_EXPECTED)
            .with_hint(problem.1);
        self.push(d);
        None
    }

    /// The events subscribed to, each once, in [`NotificationEvent::ALL`] order.
    fn events(&mut self, item: &Item<'a>) -> Option<Vec<NotificationEvent>> {
        let names: Vec<&str> = std::iter::once(ALL_EVENTS)
            .chain(NotificationEvent::ALL.iter().map(|e| e.as_str()))
            .collect();
        let list = self.list(item, "event names");
        if list.is_empty() {
            let d = self
                .diag(item.pos, &item.path, "subscribes to no event")
                .with_expected(one_of(&names))
                .with_hint(Some(
                    "`events: [\"*\"]` subscribes to every event".to_owned(),
                ));
            self.push(d);
            return None;
        }
        let mut picked: Vec<NotificationEvent> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut ok = true;
        for event in list {
            let Some(name) = self.choice(&event, "event", &names) else {
                ok = false;
                continue;
            };
            if seen.iter().any(|s| s == name) {
                let d = self.diag(
                    event.pos,
                    &event.path,
                    format!("event {} is listed twice", quote(name)),
                );
                self.push(d);
                ok = false;
                continue;
            }
            seen.push(name.to_owned());
            match NotificationEvent::parse(name) {
                Some(e) => picked.push(e),
                None => picked.extend(NotificationEvent::ALL),
            }
        }
        picked.sort_unstable();
        picked.dedup();
        ok.then_some(picked)
    }

    /// `{ env: NAME }`; a secret written out in the file is refused.
    fn env_secret(&mut self, item: &Item<'a>) -> Option<EnvSecret> {
        if !matches!(item.node.value, Node::Map(_)) {
            let d = self
                .diag(
                    item.pos,
                    &item.path,
                    "a secret is never written in the config in plain text",
                )
                .with_expected("`{ env: NAME }`: the environment variable that holds it")
                .with_hint(Some(
                    "write `secret: { env: SLIPWAY_WEBHOOK_SECRET }` and set that variable where the server runs"
                        .to_owned(),
                ));
            self.push(d);
            return None;
        }
        let f = self.fields(item, &["env"]);
        let Some(env) = f.get("env") else {
            self.missing(&f, "env", "the name of an environment variable", None);
            return None;
        };
        let name = self.nonempty_string(&env)?;
        let valid = name.chars().next().is_some_and(|c| !c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let d = self
                .diag(
                    env.pos,
                    &env.path,
                    format!("invalid environment variable name {}", quote(&name)),
                )
                .with_expected("letters, digits and `_`, not starting with a digit");
            self.push(d);
            return None;
        }
        Some(EnvSecret {
            env: name,
            at: env.place(),
        })
    }

    fn target_name(&mut self, item: &Item) -> Option<String> {
        let name = self.nonempty_string(item)?;
        let printable = name.chars().all(|c| c.is_ascii_graphic());
        if printable && name.chars().count() <= MAX_NAME_CHARS {
            return Some(name);
        }
        let d = self
            .diag(
                item.pos,
                &item.path,
                format!("invalid target name {}", quote(&name)),
            )
            .with_expected(format!(
                "1 to {MAX_NAME_CHARS} printable characters without spaces"
            ));
        self.push(d);
        None
    }
}

/// `value`, remembering in `bad` that a check failed.
fn noted<T>(bad: &mut bool, value: Option<T>) -> Option<T> {
    *bad |= value.is_none();
    value
}

/// `host` or `host:port` of the URL, so the log names the receiver and not its path,
/// which for chat webhooks is itself the secret.
fn default_name(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("webhook");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}
