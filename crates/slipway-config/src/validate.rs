//! Turns the located YAML tree into the typed `Config`, collecting every problem.
//!
//! Each check reports and then carries on with a default, so one run lists all errors.
//! Errors about a mapping entry point at its key (that is where the line starts); errors
//! about a list item point at the item.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::scalar::{self, ScalarError, did_you_mean, is_valid_name};
use crate::tree::{Node, Pos, describe, quote, scalar_text};

const TOP_KEYS: &[&str] = &["version", "server", "apps", "environments", "users"];
const SERVER_KEYS: &[&str] = &["listen", "data_dir", "database", "tick", "router_control"];
const APP_KEYS: &[&str] = &["driver", "run", "image", "port", "health", "smoke", "hooks"];
const HEALTH_KEYS: &[&str] = &[
    "path",
    "interval",
    "timeout",
    "healthy_threshold",
    "unhealthy_threshold",
    "start_period",
];
const SMOKE_KEYS: &[&str] = &["get", "expect_status", "expect_body_contains"];
const HOOK_KEYS: &[&str] = &["pre_deploy", "post_deploy", "pre_rollback"];
const HOOK_FORM_KEYS: &[&str] = &["run", "timeout"];
const ENV_KEYS: &[&str] = &[
    "listen",
    "strategy",
    "variables",
    "require_config",
    "requires",
    "protection",
    "allow_mutable_tags",
    "keep_releases",
    "rollback_requires_approval",
    "drain_timeout",
];
const PROTECTION_KEYS: &[&str] = &[
    "reviewers",
    "required_approvals",
    "prevent_self_review",
    "wait_timer",
    "branches",
    "windows",
];
const STRATEGIES: &[&str] = &["recreate", "rolling", "blue-green", "canary"];
const ROLLING_KEYS: &[&str] = &["replicas", "max_surge", "max_unavailable"];
const BLUE_GREEN_KEYS: &[&str] = &["preview", "scale_down_delay"];
const CANARY_KEYS: &[&str] = &["steps", "analysis"];
const STEP_KEYS: &[&str] = &["weight", "pause"];
const ANALYSIS_KEYS: &[&str] = &[
    "interval",
    "max_error_rate",
    "max_p99_latency",
    "max_error_rate_vs_stable",
    "min_requests",
    "failure_limit",
    "progress_deadline",
];
const USER_KEYS: &[&str] = &["role"];
const ROLES: &[&str] = &["viewer", "deployer", "approver", "admin"];
const DRIVERS: &[&str] = &["process", "docker"];

const NAME_EXPECTED: &str =
    "a name of lower-case letters, digits, `-` and `_`, starting with a letter or digit";
const ADDRESS_EXPECTED: &str = "an IP address and port, like 127.0.0.1:8081";
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7700);
const DEFAULT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(30);

/// The steps of `strategy: canary` when none are written (the default in docs/config.md).
fn default_canary_steps() -> Vec<CanaryStep> {
    vec![
        CanaryStep::Weight(10.0),
        CanaryStep::Pause(Duration::from_secs(30)),
        CanaryStep::Weight(50.0),
        CanaryStep::Pause(Duration::from_secs(30)),
    ]
}

/// A value in the tree with its key path and the place errors about it point at.
#[derive(Clone)]
struct Item<'a> {
    node: &'a Spanned<Node>,
    path: String,
    pos: Pos,
}

/// The entries of one mapping, already checked for bad and duplicate keys.
struct Fields<'a> {
    path: String,
    pos: Pos,
    entries: Vec<(String, Item<'a>)>,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<Item<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, item)| item.clone())
    }
}

/// One listener (server, environment router, blue-green preview), to find clashes.
struct Listener {
    addr: SocketAddr,
    path: String,
    pos: Pos,
}

pub(crate) struct Checker<'a> {
    source: &'a str,
    file: &'a str,
    diagnostics: Vec<Diagnostic>,
    listeners: Vec<Listener>,
}

pub(crate) fn check(
    root: &Spanned<Node>,
    source: &str,
    file: &str,
    base_dir: &Path,
) -> Result<Config, Vec<Diagnostic>> {
    let mut checker = Checker {
        source,
        file,
        diagnostics: Vec::new(),
        listeners: Vec::new(),
    };
    let config = checker.config(root, base_dir);
    let mut diagnostics = checker.diagnostics;
    if diagnostics.is_empty() {
        Ok(config)
    } else {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        Err(diagnostics)
    }
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn one_of(names: &[&str]) -> String {
    format!("one of {}", names.join(", "))
}

impl<'a> Checker<'a> {
    // === reporting ===

    fn diag(&self, pos: Pos, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.to_owned(),
            line: pos.line,
            column: pos.column,
            path: path.to_owned(),
            message: message.into(),
            expected: None,
            hint: None,
        }
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// "expected X, got Y" at the item.
    fn wrong_type(
        &mut self,
        item: &Item,
        what: &str,
        expected: Option<&str>,
        hint: Option<String>,
    ) {
        let message = format!("expected {what}, got {}", describe(self.source, item.node));
        let mut d = self.diag(item.pos, &item.path, message).with_hint(hint);
        if let Some(expected) = expected {
            d = d.with_expected(expected);
        }
        self.push(d);
    }

    fn scalar_error(&mut self, item: &Item, error: ScalarError, expected: &str) {
        let d = self
            .diag(item.pos, &item.path, error.message)
            .with_expected(expected)
            .with_hint(error.hint);
        self.push(d);
    }

    fn missing(&mut self, fields: &Fields, key: &str, expected: &str, hint: Option<String>) {
        let d = self
            .diag(fields.pos, &fields.path, format!("missing key `{key}`"))
            .with_expected(format!("`{key}`: {expected}"))
            .with_hint(hint);
        self.push(d);
    }

    // === structure ===

    /// The entries of a mapping (nothing for an empty value), with duplicates reported.
    fn entries(&mut self, item: &Item<'a>, what: &str) -> Vec<(String, Item<'a>)> {
        let pairs = match &item.node.value {
            Node::Map(pairs) => pairs,
            Node::Null => return Vec::new(),
            _ => {
                self.wrong_type(item, what, None, None);
                return Vec::new();
            }
        };
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut entries = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let key_pos = Pos::of(key).unwrap_or(item.pos);
            let Some(name) = scalar_text(self.source, key) else {
                let d = self.diag(
                    key_pos,
                    &item.path,
                    format!("expected a plain key, got {}", describe(self.source, key)),
                );
                self.push(d);
                continue;
            };
            let path = child_path(&item.path, &name);
            if let Some(first) = seen.get(&name) {
                let hint = format!("it is first set on line {}", first.line);
                let d = self
                    .diag(key_pos, &path, format!("duplicate key `{name}`"))
                    .with_hint(Some(hint));
                self.push(d);
                continue;
            }
            seen.insert(name.clone(), key_pos);
            let child = Item {
                node: value,
                path,
                pos: key_pos,
            };
            entries.push((name, child));
        }
        entries
    }

    /// A mapping with a fixed set of keys; any other key is reported with a suggestion.
    fn fields(&mut self, item: &Item<'a>, allowed: &[&str]) -> Fields<'a> {
        let what = if allowed.is_empty() {
            "nothing or an empty mapping".to_owned()
        } else {
            format!("a mapping with keys {}", allowed.join(", "))
        };
        let mut entries = self.entries(item, &what);
        let is_root = item.path.is_empty();
        entries.retain(|(key, child)| {
            // `x-…` at the top is free for YAML anchors, as in docker-compose files.
            if allowed.contains(&key.as_str()) || (is_root && key.starts_with("x-")) {
                return true;
            }
            let expected = if allowed.is_empty() {
                "no keys here".to_owned()
            } else {
                one_of(allowed)
            };
            let d = self
                .diag(
                    child.pos,
                    &child.path,
                    format!("unknown key {}", quote(key)),
                )
                .with_expected(expected)
                .with_hint(did_you_mean(key, allowed.iter().copied()));
            self.diagnostics.push(d);
            false
        });
        Fields {
            path: item.path.clone(),
            pos: item.pos,
            entries,
        }
    }

    /// A mapping from user-chosen names (apps, environments, users) to values.
    fn named(&mut self, item: &Item<'a>, what: &str) -> Vec<(String, Item<'a>)> {
        let entries = self.entries(item, &format!("a mapping of {what} names"));
        for (name, child) in &entries {
            if !is_valid_name(name) {
                let lower = name.to_lowercase();
                let hint = is_valid_name(&lower).then(|| format!("did you mean `{lower}`?"));
                let d = self
                    .diag(
                        child.pos,
                        &child.path,
                        format!("invalid {what} name {}", quote(name)),
                    )
                    .with_expected(NAME_EXPECTED)
                    .with_hint(hint);
                self.push(d);
            }
        }
        entries
    }

    fn list(&mut self, item: &Item<'a>, what: &str) -> Vec<Item<'a>> {
        match &item.node.value {
            Node::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, node)| Item {
                    node,
                    path: format!("{}[{i}]", item.path),
                    pos: Pos::of(node).unwrap_or(item.pos),
                })
                .collect(),
            Node::Null => Vec::new(),
            _ => {
                let hint = scalar_text(self.source, item.node)
                    .map(|text| format!("write a list, like `[{text}]`"));
                self.wrong_type(item, &format!("a list of {what}"), None, hint);
                Vec::new()
            }
        }
    }

    // === scalars ===

    fn string(&mut self, item: &Item) -> Option<String> {
        let text = match &item.node.value {
            Node::Null | Node::Seq(_) | Node::Map(_) => None,
            _ => scalar_text(self.source, item.node),
        };
        if text.is_none() {
            self.wrong_type(item, "a string", None, None);
        }
        text
    }

    fn nonempty_string(&mut self, item: &Item) -> Option<String> {
        let text = self.string(item)?;
        if text.trim().is_empty() {
            let d = self.diag(item.pos, &item.path, "must not be empty");
            self.push(d);
            return None;
        }
        Some(text)
    }

    fn boolean(&mut self, item: &Item) -> Option<bool> {
        if let Node::Bool(b) = item.node.value {
            return Some(b);
        }
        self.wrong_type(item, "true or false", None, None);
        None
    }

    fn uint(&mut self, item: &Item, min: u64, max: u64) -> Option<u64> {
        let value = match item.node.value {
            Node::Int(i) => u64::try_from(i).ok().filter(|v| (min..=max).contains(v)),
            _ => {
                self.wrong_type(item, "a whole number", None, None);
                return None;
            }
        };
        if value.is_none() {
            let message = format!("{} is out of range", describe(self.source, item.node));
            let d = self
                .diag(item.pos, &item.path, message)
                .with_expected(format!("a whole number from {min} to {max}"));
            self.push(d);
        }
        value
    }

    fn u32(&mut self, item: &Item, min: u32) -> Option<u32> {
        self.uint(item, min.into(), u32::MAX.into())
            .and_then(|v| u32::try_from(v).ok())
    }

    fn duration(&mut self, item: &Item) -> Option<Duration> {
        let parsed = match &item.node.value {
            Node::Str(text) => scalar::duration(text),
            Node::Int(i) => Err(ScalarError {
                message: format!("expected a duration like 30s, got `{i}`"),
                hint: Some(format!("add a unit, like `{i}s`")),
            }),
            _ => {
                self.wrong_type(
                    item,
                    "a duration like 30s",
                    Some(scalar::DURATION_EXPECTED),
                    None,
                );
                return None;
            }
        };
        parsed
            .map_err(|e| self.scalar_error(item, e, scalar::DURATION_EXPECTED))
            .ok()
    }

    /// A duration that must be more than zero (intervals, timeouts, ticks).
    fn positive_duration(&mut self, item: &Item) -> Option<Duration> {
        let duration = self.duration(item)?;
        if duration.is_zero() {
            let d = self
                .diag(item.pos, &item.path, "must be longer than 0")
                .with_expected(scalar::DURATION_EXPECTED);
            self.push(d);
            return None;
        }
        Some(duration)
    }

    fn percent(&mut self, item: &Item) -> Option<f64> {
        let parsed = match &item.node.value {
            Node::Str(_) | Node::Int(_) | Node::Float(_) => {
                let text = scalar_text(self.source, item.node).unwrap_or_default();
                scalar::percent(&text)
            }
            _ => {
                self.wrong_type(
                    item,
                    "a percentage like 1%",
                    Some(scalar::PERCENT_EXPECTED),
                    None,
                );
                return None;
            }
        };
        parsed
            .map_err(|e| self.scalar_error(item, e, scalar::PERCENT_EXPECTED))
            .ok()
    }

    fn address(&mut self, item: &Item) -> Option<SocketAddr> {
        let text = match &item.node.value {
            Node::Str(text) => text.clone(),
            Node::Int(port) => {
                let hint = format!("add the host, like `127.0.0.1:{port}`");
                self.wrong_type(
                    item,
                    "an address like 127.0.0.1:8081",
                    Some(ADDRESS_EXPECTED),
                    Some(hint),
                );
                return None;
            }
            _ => {
                self.wrong_type(
                    item,
                    "an address like 127.0.0.1:8081",
                    Some(ADDRESS_EXPECTED),
                    None,
                );
                return None;
            }
        };
        if let Ok(addr) = text.trim().parse::<SocketAddr>() {
            return Some(addr);
        }
        let hint = match text.trim().rsplit_once(':') {
            Some(("", port)) => Some(format!("add the host, like `127.0.0.1:{port}`")),
            Some(("localhost", port)) => {
                Some(format!("use an IP address, like `127.0.0.1:{port}`"))
            }
            Some((_, port)) if port.parse::<u16>().is_err() => {
                Some("the port must be a number from 0 to 65535".to_owned())
            }
            Some(_) => Some("host names are not resolved; use an IP address".to_owned()),
            None => Some("add a port, like `127.0.0.1:8081`".to_owned()),
        };
        let d = self
            .diag(
                item.pos,
                &item.path,
                format!("invalid address {}", quote(&text)),
            )
            .with_expected(ADDRESS_EXPECTED)
            .with_hint(hint);
        self.push(d);
        None
    }

    /// An address that must not clash with any other listener in the file.
    fn listener(&mut self, item: &Item) -> Option<SocketAddr> {
        let addr = self.address(item)?;
        self.listeners.push(Listener {
            addr,
            path: item.path.clone(),
            pos: item.pos,
        });
        Some(addr)
    }

    /// A name picked from a fixed set, with a suggestion when it is close to one.
    fn choice<'c>(&mut self, item: &Item, kind: &str, choices: &[&'c str]) -> Option<&'c str> {
        let Node::Str(text) = &item.node.value else {
            self.wrong_type(item, &format!("a {kind}"), Some(&one_of(choices)), None);
            return None;
        };
        if let Some(found) = choices.iter().find(|c| **c == text) {
            return Some(found);
        }
        let d = self
            .diag(
                item.pos,
                &item.path,
                format!("unknown {kind} {}", quote(text)),
            )
            .with_expected(one_of(choices))
            .with_hint(did_you_mean(text, choices.iter().copied()));
        self.push(d);
        None
    }

    // === the document ===

    fn config(&mut self, root: &'a Spanned<Node>, base_dir: &Path) -> Config {
        let root = Item {
            node: root,
            path: String::new(),
            pos: Pos::START,
        };
        let mut config = Config {
            version: 1,
            server: ServerConfig {
                listen: DEFAULT_LISTEN,
                data_dir: base_dir.join(".slipway"),
                database: None,
                tick: Duration::from_millis(100),
                router_control: None,
            },
            apps: BTreeMap::new(),
            environments: BTreeMap::new(),
            users: BTreeMap::new(),
        };
        if matches!(root.node.value, Node::Null) {
            let d = self
                .diag(Pos::START, "", "the file is empty")
                .with_expected(format!("a mapping with keys {}", TOP_KEYS.join(", ")))
                .with_hint(Some("start with `version: 1`".to_owned()));
            self.push(d);
            return config;
        }
        let top = self.fields(&root, TOP_KEYS);
        if top.entries.is_empty() && !matches!(root.node.value, Node::Map(_)) {
            // Not a mapping at all: `fields` said so; nothing more to check.
            return config;
        }

        match top.get("version") {
            None => self.missing(
                &top,
                "version",
                "1",
                Some("start with `version: 1`".to_owned()),
            ),
            Some(item) => {
                if !matches!(item.node.value, Node::Int(1)) {
                    let d = self
                        .diag(
                            item.pos,
                            &item.path,
                            format!("unsupported version {}", describe(self.source, item.node)),
                        )
                        .with_expected("1");
                    self.push(d);
                }
            }
        }
        if let Some(item) = top.get("server") {
            config.server = self.server(&item, base_dir);
        } else {
            self.listeners.push(Listener {
                addr: DEFAULT_LISTEN,
                path: "server.listen".to_owned(),
                pos: Pos::START,
            });
        }
        if let Some(item) = top.get("users") {
            for (name, user) in self.named(&item, "user") {
                if let Some(user) = self.user(&user) {
                    config.users.insert(name, user);
                }
            }
        }
        if let Some(item) = top.get("apps") {
            for (name, app) in self.named(&item, "app") {
                let app = self.app(&app);
                config.apps.insert(name, app);
            }
        }
        let mut requires = Vec::new();
        if let Some(item) = top.get("environments") {
            for (name, env_item) in self.named(&item, "environment") {
                let (env, refs) = self.environment(&env_item, &config.users);
                requires.push((name.clone(), refs));
                config.environments.insert(name, env);
            }
        }
        self.check_requires(&requires);
        self.check_listeners();
        config
    }

    fn server(&mut self, item: &Item<'a>, base_dir: &Path) -> ServerConfig {
        let f = self.fields(item, SERVER_KEYS);
        let listen = match f.get("listen") {
            Some(item) => self.listener(&item).unwrap_or(DEFAULT_LISTEN),
            None => {
                self.listeners.push(Listener {
                    addr: DEFAULT_LISTEN,
                    path: "server.listen".to_owned(),
                    pos: f.pos,
                });
                DEFAULT_LISTEN
            }
        };
        let data_dir = f
            .get("data_dir")
            .and_then(|i| self.nonempty_string(&i))
            .map_or_else(|| PathBuf::from(".slipway"), PathBuf::from);
        let database = f.get("database").and_then(|i| {
            let url = self.nonempty_string(&i)?;
            let known = ["postgres://", "postgresql://", "sqlite:"];
            if known.iter().any(|p| url.starts_with(p)) {
                Some(url)
            } else {
                let d = self
                    .diag(
                        i.pos,
                        &i.path,
                        format!("unsupported database URL {}", quote(&url)),
                    )
                    .with_expected("a URL starting with postgres://, postgresql:// or sqlite:")
                    .with_hint(Some(
                        "leave `database` out to use SQLite in `data_dir`".to_owned(),
                    ));
                self.push(d);
                None
            }
        });
        let tick = f
            .get("tick")
            .and_then(|i| self.positive_duration(&i))
            .unwrap_or(Duration::from_millis(100));
        // The control API of a standalone `slipway router --control`: a listening address
        // like any other, so it must not clash with the environments' listeners.
        let router_control = f.get("router_control").and_then(|i| self.listener(&i));
        ServerConfig {
            router_control,
            listen,
            // Relative to the config file, not to wherever the server was started.
            data_dir: base_dir.join(data_dir),
            database,
            tick,
        }
    }

    fn user(&mut self, item: &Item<'a>) -> Option<User> {
        if let Node::Str(role) = &item.node.value {
            let name = item.path.rsplit('.').next().unwrap_or_default();
            let hint = format!("write `{name}: {{ role: {role} }}`");
            self.wrong_type(item, "a mapping with key role", None, Some(hint));
            return None;
        }
        let f = self.fields(item, USER_KEYS);
        let Some(role_item) = f.get("role") else {
            self.missing(&f, "role", &one_of(ROLES), None);
            return None;
        };
        let role = self.choice(&role_item, "role", ROLES)?;
        Role::parse(role).map(|role| User { role })
    }

    // === apps ===

    fn app(&mut self, item: &Item<'a>) -> App {
        let f = self.fields(item, APP_KEYS);
        let driver = match f.get("driver") {
            None => Some(DriverKind::Process),
            Some(i) => match self.choice(&i, "driver", DRIVERS) {
                Some("docker") => Some(DriverKind::Docker),
                Some(_) => Some(DriverKind::Process),
                None => None,
            },
        };
        let run = f.get("run").and_then(|i| self.nonempty_string(&i));
        let image = f.get("image").and_then(|i| self.image(&i));
        let port = f
            .get("port")
            .and_then(|i| self.uint(&i, 1, u16::MAX.into()))
            .and_then(|p| u16::try_from(p).ok());
        match driver {
            Some(DriverKind::Process) if f.get("run").is_none() => self.missing(
                &f,
                "run",
                "the command that starts one instance",
                Some(
                    "the process driver needs `run`, like `run: \"my-app --port {port}\"`"
                        .to_owned(),
                ),
            ),
            Some(DriverKind::Docker) => {
                if f.get("image").is_none() {
                    self.missing(
                        &f,
                        "image",
                        "the image repository, like registry.example.com/acme/web",
                        Some(
                            "the docker driver needs `image`; the release version is its tag"
                                .to_owned(),
                        ),
                    );
                }
                if f.get("port").is_none() {
                    self.missing(
                        &f,
                        "port",
                        "the port the service listens on inside the container",
                        Some("the docker driver needs `port`, like `port: 8080`".to_owned()),
                    );
                }
            }
            _ => {}
        }
        let health = match f.get("health") {
            Some(i) => self.health(&i),
            None => HealthCheck::default(),
        };
        let smoke = match f.get("smoke") {
            Some(i) => self
                .list(&i, "smoke tests")
                .iter()
                .filter_map(|t| self.smoke(t))
                .collect(),
            None => Vec::new(),
        };
        let hooks = match f.get("hooks") {
            Some(i) => {
                let h = self.fields(&i, HOOK_KEYS);
                let mut hook = |key: &str| h.get(key).and_then(|i| self.hook(&i));
                Hooks {
                    pre_deploy: hook("pre_deploy"),
                    post_deploy: hook("post_deploy"),
                    pre_rollback: hook("pre_rollback"),
                }
            }
            None => Hooks::default(),
        };
        App {
            driver: driver.unwrap_or(DriverKind::Process),
            run,
            image,
            port,
            health,
            smoke,
            hooks,
        }
    }

    /// `"cmd"`, or `{ run: "cmd", timeout: 30s }`.
    fn hook(&mut self, item: &Item<'a>) -> Option<Hook> {
        if !matches!(item.node.value, Node::Map(_)) {
            return self.nonempty_string(item).map(Hook::new);
        }
        let f = self.fields(item, HOOK_FORM_KEYS);
        let timeout = match f.get("timeout") {
            Some(i) => self.positive_duration(&i),
            None => Some(DEFAULT_HOOK_TIMEOUT),
        };
        let Some(run) = f.get("run") else {
            self.missing(
                &f,
                "run",
                "the shell command of the hook",
                Some("write `{ run: \"./migrate.sh\", timeout: 30s }`".to_owned()),
            );
            return None;
        };
        let run = self.nonempty_string(&run)?;
        Some(Hook {
            run,
            timeout: timeout?,
        })
    }

    fn image(&mut self, item: &Item) -> Option<String> {
        let image = self.nonempty_string(item)?;
        // The release version becomes the tag, so the repository must not carry one.
        // (A `:` before the last `/` is a registry port, which is fine.)
        let last = image.rsplit('/').next().unwrap_or(&image);
        if let Some((repo, _)) = last.split_once([':', '@']) {
            let fixed = format!("{}{repo}", &image[..image.len() - last.len()]);
            let d = self
                .diag(
                    item.pos,
                    &item.path,
                    format!("image {} has a tag or digest", quote(&image)),
                )
                .with_expected("an image repository without a tag")
                .with_hint(Some(format!(
                    "the release version is the tag; write `{fixed}`"
                )));
            self.push(d);
            return None;
        }
        Some(image)
    }

    fn url_path(&mut self, item: &Item) -> Option<String> {
        let path = self.nonempty_string(item)?;
        if !path.starts_with('/') {
            let d = self
                .diag(
                    item.pos,
                    &item.path,
                    format!("expected a path starting with `/`, got {}", quote(&path)),
                )
                .with_hint(Some(format!("write `/{path}`")));
            self.push(d);
            return None;
        }
        Some(path)
    }

    fn health(&mut self, item: &Item<'a>) -> HealthCheck {
        let f = self.fields(item, HEALTH_KEYS);
        let d = HealthCheck::default();
        HealthCheck {
            path: f
                .get("path")
                .and_then(|i| self.url_path(&i))
                .unwrap_or(d.path),
            interval: f
                .get("interval")
                .and_then(|i| self.positive_duration(&i))
                .unwrap_or(d.interval),
            timeout: f
                .get("timeout")
                .and_then(|i| self.positive_duration(&i))
                .unwrap_or(d.timeout),
            healthy_threshold: f
                .get("healthy_threshold")
                .and_then(|i| self.u32(&i, 1))
                .unwrap_or(d.healthy_threshold),
            unhealthy_threshold: f
                .get("unhealthy_threshold")
                .and_then(|i| self.u32(&i, 1))
                .unwrap_or(d.unhealthy_threshold),
            start_period: f
                .get("start_period")
                .and_then(|i| self.duration(&i))
                .unwrap_or(d.start_period),
        }
    }

    fn smoke(&mut self, item: &Item<'a>) -> Option<SmokeTest> {
        let f = self.fields(item, SMOKE_KEYS);
        let expect_status = f
            .get("expect_status")
            .and_then(|i| self.uint(&i, 100, 599))
            .and_then(|s| u16::try_from(s).ok());
        let expect_body_contains = f.get("expect_body_contains").and_then(|i| self.string(&i));
        let Some(get) = f.get("get") else {
            self.missing(&f, "get", "the path to request, like /health", None);
            return None;
        };
        let get = self.url_path(&get)?;
        // Documented default: a smoke test with no expectation wants a 200.
        let expect_status = match (expect_status, &expect_body_contains) {
            (None, None) => Some(200),
            (status, _) => status,
        };
        Some(SmokeTest {
            get,
            expect_status,
            expect_body_contains,
        })
    }

    // === environments ===

    fn environment(
        &mut self,
        item: &Item<'a>,
        users: &BTreeMap<String, User>,
    ) -> (Environment, Vec<(String, Item<'a>)>) {
        let f = self.fields(item, ENV_KEYS);
        let listen = match f.get("listen") {
            Some(i) => self.listener(&i),
            None => {
                self.missing(
                    &f,
                    "listen",
                    "the router's address for this environment, like 127.0.0.1:8081",
                    None,
                );
                None
            }
        };
        let strategy = match f.get("strategy") {
            Some(i) => self.strategy(&i),
            None => Strategy::BlueGreen {
                preview: None,
                scale_down_delay: DEFAULT_SCALE_DOWN_DELAY,
            },
        };
        let variables = match f.get("variables") {
            Some(i) => self.variables(&i),
            None => BTreeMap::new(),
        };
        let require_config = match f.get("require_config") {
            Some(i) => self
                .list(&i, "variable names")
                .iter()
                .filter_map(|k| self.variable_name(k))
                .collect(),
            None => Vec::new(),
        };
        let mut refs = Vec::new();
        if let Some(i) = f.get("requires") {
            for target in self.list(&i, "environment names") {
                if let Some(name) = self.nonempty_string(&target) {
                    refs.push((name, target));
                }
            }
        }
        let protection = match f.get("protection") {
            Some(i) => self.protection(&i, users),
            None => Protection::default(),
        };
        let flag =
            |this: &mut Self, key: &str| f.get(key).and_then(|i| this.boolean(&i)).unwrap_or(false);
        let allow_mutable_tags = flag(self, "allow_mutable_tags");
        let rollback_requires_approval = flag(self, "rollback_requires_approval");
        let keep_releases = f
            .get("keep_releases")
            .and_then(|i| self.u32(&i, 1))
            .unwrap_or(3);
        let drain_timeout = f
            .get("drain_timeout")
            .and_then(|i| self.duration(&i))
            .unwrap_or(Duration::from_secs(30));
        let env = Environment {
            listen: listen.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
            strategy,
            variables,
            require_config,
            requires: refs.iter().map(|(name, _)| name.clone()).collect(),
            protection,
            allow_mutable_tags,
            keep_releases,
            rollback_requires_approval,
            drain_timeout,
        };
        (env, refs)
    }

    fn variable_name(&mut self, item: &Item) -> Option<String> {
        let name = self.nonempty_string(item)?;
        check_variable_name(self, &name, item).then_some(name)
    }

    fn variables(&mut self, item: &Item<'a>) -> BTreeMap<String, String> {
        let mut variables = BTreeMap::new();
        for (name, value) in self.entries(item, "a mapping of variable names to values") {
            if !check_variable_name(self, &name, &value) {
                continue;
            }
            let text = match &value.node.value {
                Node::Null | Node::Seq(_) | Node::Map(_) => None,
                _ => scalar_text(self.source, value.node),
            };
            match text {
                Some(text) => {
                    variables.insert(name, text);
                }
                None => {
                    let hint = matches!(value.node.value, Node::Null)
                        .then(|| format!("for an empty value write `{name}: \"\"`"));
                    self.wrong_type(&value, "a string, number or boolean", None, hint);
                }
            }
        }
        variables
    }

    fn strategy(&mut self, item: &Item<'a>) -> Strategy {
        let fallback = Strategy::BlueGreen {
            preview: None,
            scale_down_delay: DEFAULT_SCALE_DOWN_DELAY,
        };
        let expected = format!(
            "{}, or a mapping with one of them as its only key",
            one_of(STRATEGIES)
        );
        match &item.node.value {
            Node::Str(name) => self.strategy_named(name, None, item).unwrap_or(fallback),
            Node::Map(pairs) if pairs.len() == 1 => {
                let entries = self.entries(item, "a strategy");
                match entries.first() {
                    Some((name, settings)) => self
                        .strategy_named(name, Some(settings), item)
                        .unwrap_or(fallback),
                    None => fallback,
                }
            }
            Node::Map(pairs) => {
                let message = if pairs.is_empty() {
                    "a strategy mapping needs a strategy name as its key".to_owned()
                } else {
                    format!(
                        "a strategy mapping has exactly one key, found {}",
                        pairs.len()
                    )
                };
                let d = self
                    .diag(item.pos, &item.path, message)
                    .with_expected(expected);
                self.push(d);
                fallback
            }
            _ => {
                self.wrong_type(item, "a strategy", Some(&expected), None);
                fallback
            }
        }
    }

    fn strategy_named(
        &mut self,
        name: &str,
        settings: Option<&Item<'a>>,
        at: &Item,
    ) -> Option<Strategy> {
        let fields = |this: &mut Self, allowed: &[&str]| match settings {
            Some(s) => this.fields(s, allowed),
            None => Fields {
                path: at.path.clone(),
                pos: at.pos,
                entries: Vec::new(),
            },
        };
        Some(match name {
            "recreate" => {
                fields(self, &[]);
                Strategy::Recreate
            }
            "rolling" => {
                let f = fields(self, ROLLING_KEYS);
                let mut get = |key: &str, min: u32, default: u32| {
                    f.get(key)
                        .and_then(|i| self.u32(&i, min))
                        .unwrap_or(default)
                };
                let replicas = get("replicas", 1, 1);
                let max_surge = get("max_surge", 0, 1);
                let max_unavailable = get("max_unavailable", 0, 0);
                if max_surge == 0 && max_unavailable == 0 {
                    let d = self
                        .diag(f.pos, &f.path, "max_surge and max_unavailable are both 0, so the rollout cannot progress")
                        .with_hint(Some("set `max_surge: 1`".to_owned()));
                    self.push(d);
                }
                Strategy::Rolling {
                    replicas,
                    max_surge,
                    max_unavailable,
                }
            }
            "blue-green" => {
                let f = fields(self, BLUE_GREEN_KEYS);
                Strategy::BlueGreen {
                    preview: f.get("preview").and_then(|i| self.listener(&i)),
                    scale_down_delay: f
                        .get("scale_down_delay")
                        .and_then(|i| self.duration(&i))
                        .unwrap_or(DEFAULT_SCALE_DOWN_DELAY),
                }
            }
            "canary" => {
                let f = fields(self, CANARY_KEYS);
                let steps = match f.get("steps") {
                    Some(i) => self.canary_steps(&i),
                    None => default_canary_steps(),
                };
                let analysis = match f.get("analysis") {
                    Some(i) => self.analysis(&i),
                    None => Analysis::default(),
                };
                Strategy::Canary { steps, analysis }
            }
            other => {
                let pos = settings.map_or(at.pos, |s| s.pos);
                let d = self
                    .diag(pos, &at.path, format!("unknown strategy {}", quote(other)))
                    .with_expected(one_of(STRATEGIES))
                    .with_hint(did_you_mean(other, STRATEGIES.iter().copied()));
                self.push(d);
                return None;
            }
        })
    }

    fn canary_steps(&mut self, item: &Item<'a>) -> Vec<CanaryStep> {
        let mut steps = Vec::new();
        let mut last_weight: Option<f64> = None;
        for step_item in self.list(item, "canary steps") {
            let f = self.fields(&step_item, STEP_KEYS);
            let step = match (f.get("weight"), f.get("pause")) {
                (Some(w), None) => self.weight(&w, &mut last_weight).map(CanaryStep::Weight),
                (None, Some(p)) => match &p.node.value {
                    Node::Str(s) if s == "manual" => Some(CanaryStep::PauseManual),
                    _ => self.duration(&p).map(CanaryStep::Pause),
                },
                (Some(_), Some(_)) => {
                    let d = self
                        .diag(
                            step_item.pos,
                            &step_item.path,
                            "a step has either `weight` or `pause`, not both",
                        )
                        .with_hint(Some("split it into two steps".to_owned()));
                    self.push(d);
                    None
                }
                (None, None) => {
                    // An unknown key was already reported; only an empty step is new.
                    if matches!(&step_item.node.value, Node::Null)
                        || matches!(&step_item.node.value, Node::Map(p) if p.is_empty())
                    {
                        let d = self
                            .diag(step_item.pos, &step_item.path, "empty canary step")
                            .with_expected("`{weight: 10}`, `{pause: 30s}` or `{pause: manual}`");
                        self.push(d);
                    }
                    None
                }
            };
            steps.extend(step);
        }
        steps
    }

    fn weight(&mut self, item: &Item, last: &mut Option<f64>) -> Option<f64> {
        const EXPECTED: &str = "a percentage of traffic above 0 and at most 100, like 10 or 12.5";
        let value = match &item.node.value {
            Node::Int(i) => Some(*i as f64),
            Node::Float(x) => Some(*x),
            Node::Str(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok())
                .filter(|x| x.is_finite()),
            _ => None,
        };
        let Some(value) = value else {
            self.wrong_type(item, "a weight in percent like 10", Some(EXPECTED), None);
            return None;
        };
        let shown = describe(self.source, item.node);
        let problem = if !(value > 0.0 && value <= 100.0) {
            Some((format!("weight {shown} is out of range"), None))
        } else if ((value * 10.0).round() - value * 10.0).abs() > 1e-6 {
            let rounded = (value * 10.0).round() / 10.0;
            Some((
                format!("weight {shown} is finer than 0.1%"),
                Some(format!("round it to one decimal, like `{rounded}`")),
            ))
        } else {
            None
        };
        if let Some((message, hint)) = problem {
            let d = self
                .diag(item.pos, &item.path, message)
                .with_expected(EXPECTED)
                .with_hint(hint);
            self.push(d);
            return None;
        }
        let value = (value * 10.0).round() / 10.0;
        if let Some(previous) = *last
            && value < previous
        {
            let d = self
                .diag(
                    item.pos,
                    &item.path,
                    format!("weight {shown} is lower than the previous weight {previous}"),
                )
                .with_hint(Some("canary weights must not decrease".to_owned()));
            self.push(d);
            return None;
        }
        *last = Some(value);
        Some(value)
    }

    fn analysis(&mut self, item: &Item<'a>) -> Analysis {
        let f = self.fields(item, ANALYSIS_KEYS);
        let d = Analysis::default();
        let max_error_rate_vs_stable = f.get("max_error_rate_vs_stable").and_then(|i| {
            let value = match i.node.value {
                Node::Int(n) => Some(n as f64),
                Node::Float(x) => Some(x),
                _ => None,
            };
            match value {
                Some(x) if x.is_finite() && x > 0.0 => Some(x),
                Some(_) => {
                    let d = self
                        .diag(i.pos, &i.path, "the ratio must be more than 0")
                        .with_expected("a ratio to the stable release's error rate, like 2 or 1.5");
                    self.push(d);
                    None
                }
                None => {
                    self.wrong_type(
                        &i,
                        "a number",
                        Some("a ratio to the stable release's error rate, like 2 or 1.5"),
                        None,
                    );
                    None
                }
            }
        });
        Analysis {
            interval: f
                .get("interval")
                .and_then(|i| self.positive_duration(&i))
                .unwrap_or(d.interval),
            max_error_rate: f.get("max_error_rate").and_then(|i| self.percent(&i)),
            max_p99_latency: f
                .get("max_p99_latency")
                .and_then(|i| self.positive_duration(&i)),
            max_error_rate_vs_stable,
            min_requests: f
                .get("min_requests")
                .and_then(|i| self.uint(&i, 0, u64::MAX))
                .unwrap_or(d.min_requests),
            failure_limit: f
                .get("failure_limit")
                .and_then(|i| self.u32(&i, 1))
                .unwrap_or(d.failure_limit),
            progress_deadline: f
                .get("progress_deadline")
                .and_then(|i| self.positive_duration(&i))
                .unwrap_or(d.progress_deadline),
        }
    }

    fn protection(&mut self, item: &Item<'a>, users: &BTreeMap<String, User>) -> Protection {
        let f = self.fields(item, PROTECTION_KEYS);
        let mut reviewers: Vec<String> = Vec::new();
        if let Some(list) = f.get("reviewers") {
            for reviewer in self.list(&list, "user names") {
                let Some(name) = self.nonempty_string(&reviewer) else {
                    continue;
                };
                if reviewers.contains(&name) {
                    let d = self.diag(
                        reviewer.pos,
                        &reviewer.path,
                        format!("reviewer {} is listed twice", quote(&name)),
                    );
                    self.push(d);
                    continue;
                }
                if !users.contains_key(&name) {
                    let expected = if users.is_empty() {
                        "a user defined under `users:`".to_owned()
                    } else {
                        format!(
                            "one of the users: {}",
                            users
                                .keys()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    let hint = did_you_mean(&name, users.keys().map(String::as_str))
                        .or_else(|| Some(format!("add `{name}` under `users:`")));
                    let d = self
                        .diag(
                            reviewer.pos,
                            &reviewer.path,
                            format!("unknown user {}", quote(&name)),
                        )
                        .with_expected(expected)
                        .with_hint(hint);
                    self.push(d);
                }
                reviewers.push(name);
            }
        }
        let default_approvals = u32::from(!reviewers.is_empty());
        let required_approvals = match f.get("required_approvals") {
            Some(i) => {
                let n = self.u32(&i, 0).unwrap_or(default_approvals);
                if !reviewers.is_empty() && n as usize > reviewers.len() {
                    let count = reviewers.len();
                    let d = self
                        .diag(
                            i.pos,
                            &i.path,
                            format!(
                                "{n} approvals are required but only {count} reviewer{} listed",
                                if count == 1 { " is" } else { "s are" }
                            ),
                        )
                        .with_expected(format!("at most {count}"))
                        .with_hint(Some(
                            "add reviewers or lower `required_approvals`".to_owned(),
                        ));
                    self.push(d);
                }
                n
            }
            None => default_approvals,
        };
        let prevent_self_review = f
            .get("prevent_self_review")
            .and_then(|i| self.boolean(&i))
            .unwrap_or(false);
        let wait_timer = f.get("wait_timer").and_then(|i| self.duration(&i));
        let branches = match f.get("branches") {
            Some(i) => self
                .list(&i, "branch patterns")
                .iter()
                .filter_map(|b| self.nonempty_string(b))
                .collect(),
            None => Vec::new(),
        };
        let windows = match f.get("windows") {
            Some(i) => self
                .list(&i, "windows")
                .iter()
                .filter_map(|w| {
                    let Node::Str(text) = &w.node.value else {
                        self.wrong_type(
                            w,
                            "a window like `Mon-Thu 09:00-16:00 UTC`",
                            Some(scalar::WINDOW_EXPECTED),
                            None,
                        );
                        return None;
                    };
                    scalar::window(text)
                        .map_err(|e| self.scalar_error(w, e, scalar::WINDOW_EXPECTED))
                        .ok()
                })
                .collect(),
            None => Vec::new(),
        };
        Protection {
            reviewers,
            required_approvals,
            prevent_self_review,
            wait_timer,
            branches,
            windows,
        }
    }

    // === cross references ===

    fn check_requires(&mut self, envs: &[(String, Vec<(String, Item<'a>)>)]) {
        let names: Vec<&str> = envs.iter().map(|(n, _)| n.as_str()).collect();
        let mut edges: Vec<Vec<(usize, &Item<'a>)>> = vec![Vec::new(); envs.len()];
        for (from, (name, refs)) in envs.iter().enumerate() {
            let mut seen = HashSet::new();
            for (target, item) in refs {
                if target == name {
                    let d = self
                        .diag(
                            item.pos,
                            &item.path,
                            format!("environment {} requires itself", quote(name)),
                        )
                        .with_hint(Some(
                            "list the environments that must succeed first".to_owned(),
                        ));
                    self.push(d);
                } else if !seen.insert(target.as_str()) {
                    let d = self.diag(
                        item.pos,
                        &item.path,
                        format!("{} is listed twice", quote(target)),
                    );
                    self.push(d);
                } else if let Some(to) = names.iter().position(|n| n == target) {
                    edges[from].push((to, item));
                } else {
                    let others: Vec<&str> = names.iter().copied().filter(|n| n != name).collect();
                    let expected = if others.is_empty() {
                        "another environment defined under `environments:`".to_owned()
                    } else {
                        one_of(&others)
                    };
                    let d = self
                        .diag(
                            item.pos,
                            &item.path,
                            format!("unknown environment {}", quote(target)),
                        )
                        .with_expected(expected)
                        .with_hint(did_you_mean(target, others.iter().copied()));
                    self.push(d);
                }
            }
        }
        // Depth-first search in file order; each edge back into the current path closes
        // a cycle, reported once at that edge.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let mut marks = vec![Mark::New; envs.len()];
        for start in 0..envs.len() {
            if marks[start] != Mark::New {
                continue;
            }
            let mut path = vec![start];
            let mut next_edge = vec![0usize];
            marks[start] = Mark::OnPath;
            while let (Some(&node), Some(edge)) = (path.last(), next_edge.last_mut()) {
                let Some(&(to, item)) = edges[node].get(*edge) else {
                    marks[node] = Mark::Done;
                    path.pop();
                    next_edge.pop();
                    continue;
                };
                *edge += 1;
                match marks[to] {
                    Mark::New => {
                        marks[to] = Mark::OnPath;
                        path.push(to);
                        next_edge.push(0);
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|&n| n == to).unwrap_or(0);
                        let cycle: Vec<&str> = path[from..]
                            .iter()
                            .chain(std::iter::once(&to))
                            .map(|&n| names[n])
                            .collect();
                        let d = self
                            .diag(
                                item.pos,
                                &item.path,
                                format!("`requires` forms a cycle: {}", cycle.join(" -> ")),
                            )
                            .with_hint(Some("remove one of these requirements".to_owned()));
                        self.push(d);
                    }
                    Mark::Done => {}
                }
            }
        }
    }

    fn check_listeners(&mut self) {
        let mut listeners = std::mem::take(&mut self.listeners);
        listeners.sort_by_key(|l| l.pos);
        for (i, later) in listeners.iter().enumerate() {
            let clash = listeners[..i]
                .iter()
                .find(|earlier| clashes(earlier.addr, later.addr));
            if let Some(earlier) = clash {
                let d = self
                    .diag(
                        later.pos,
                        &later.path,
                        format!("address {} is already used by {}", later.addr, earlier.path),
                    )
                    .with_hint(Some(
                        "every listener needs its own port (port 0 picks a free one)".to_owned(),
                    ));
                self.push(d);
            }
        }
    }
}

/// Whether two listeners could not both bind: same port, and the same IP or a wildcard.
fn clashes(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`. Reports and returns false if not.
fn check_variable_name(checker: &mut Checker, name: &str, item: &Item) -> bool {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        let d = checker
            .diag(
                item.pos,
                &item.path,
                format!("invalid variable name {}", quote(name)),
            )
            .with_expected("letters, digits and `_`, not starting with a digit, like DATABASE_URL");
        checker.push(d);
    }
    valid
}
