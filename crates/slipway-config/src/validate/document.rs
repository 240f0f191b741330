//! The top of the file: `version`, `server`, `users`, and the order sections are read in.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::{Checker, Fields, Item, Listener, one_of};
use crate::model::*;
use crate::tree::{Node, Pos, describe, quote};

const TOP_KEYS: &[&str] = &[
    "version",
    "server",
    "apps",
    "environments",
    "users",
    "notifications",
    "pipelines",
];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database",
    "tick",
    "router_control",
    "docker_host",
    "instance_check",
    "session_lifetime",
];
const USER_KEYS: &[&str] = &["role"];
const ROLES: &[&str] = &["viewer", "deployer", "approver", "admin"];
const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A console session shorter than this would end while its reader still reads.
const MIN_SESSION_LIFETIME: Duration = Duration::from_secs(60);
/// Past this a stolen cookie is worth too much: sign in again at least monthly.
const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7700);

/// What an empty or broken file falls back to, so checking can carry on.
fn default_config(base_dir: &Path) -> Config {
    Config {
        version: 1,
        server: ServerConfig {
            listen: DEFAULT_LISTEN,
            data_dir: base_dir.join(".slipway"),
            database: None,
            tick: Duration::from_millis(100),
            router_control: None,
            docker_host: None,
            instance_check: super::docker::DEFAULT_INSTANCE_CHECK,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
        },
        apps: BTreeMap::new(),
        environments: BTreeMap::new(),
        users: BTreeMap::new(),
        notifications: Vec::new(),
        pipelines: BTreeMap::new(),
    }
}

impl<'a> Checker<'a> {
    pub(super) fn config(&mut self, root: &'a Spanned<Node>, base_dir: &Path) -> Config {
        let root = Item {
            node: root,
            path: String::new(),
            pos: Pos::START,
        };
        let mut config = default_config(base_dir);
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

        self.version(&top);
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
                let (env, refs) = self.environment(&env_item, &config.users, base_dir);
                requires.push((name.clone(), refs));
                config.environments.insert(name, env);
            }
        }
        if let Some(item) = top.get("notifications") {
            config.notifications = self.notifications(&item);
        }
        self.check_secret_sources(&config);
        if let Some(item) = top.get("pipelines") {
            let targets = super::pipeline::Targets {
                apps: config.apps.keys().map(String::as_str).collect(),
                environments: config.environments.keys().map(String::as_str).collect(),
                secrets: config
                    .environments
                    .iter()
                    .map(|(name, env)| {
                        (
                            name.as_str(),
                            env.secrets.keys().map(String::as_str).collect(),
                        )
                    })
                    .collect(),
            };
            let mut pipelines = BTreeMap::new();
            for (name, pipeline) in self.named(&item, "pipeline") {
                pipelines.insert(name, self.pipeline(&pipeline, &targets, base_dir));
            }
            config.pipelines = pipelines;
        }
        self.check_requires(&requires);
        self.check_listeners();
        config
    }

    fn version(&mut self, top: &Fields) {
        match top.get("version") {
            None => self.missing(
                top,
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
        let docker_host = f.get("docker_host").and_then(|i| {
            let url = self.nonempty_string(&i)?;
            if url.starts_with("unix:///") || url.starts_with("tcp://") {
                return Some(url);
            }
            let d = self
                .diag(
                    i.pos,
                    &i.path,
                    format!("unsupported Docker host {}", quote(&url)),
                )
                .with_expected("unix:///path/to/docker.sock or tcp://host:port")
                .with_hint(Some(
                    "leave `docker_host` out to use DOCKER_HOST, else /var/run/docker.sock"
                        .to_owned(),
                ));
            self.push(d);
            None
        });
        let session_lifetime = f
            .get("session_lifetime")
            .and_then(|i| {
                let lifetime = self.duration(&i)?;
                if (MIN_SESSION_LIFETIME..=MAX_SESSION_LIFETIME).contains(&lifetime) {
                    return Some(lifetime);
                }
                let d = self
                    .diag(i.pos, &i.path, "must be between 1m and 720h (30 days)")
                    .with_expected("a duration like 12h or 168h");
                self.push(d);
                None
            })
            .unwrap_or(DEFAULT_SESSION_LIFETIME);
        ServerConfig {
            instance_check: self.instance_check(&f),
            session_lifetime,
            router_control,
            docker_host,
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
}
