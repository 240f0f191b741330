//! Environments: listen, variables, secrets, require_config, requires, and their flags.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::strategy::default_strategy;
use super::{Checker, Fields, Item};
use crate::model::*;
use crate::tree::{Node, quote, scalar_text};

const ENV_KEYS: &[&str] = &[
    "listen",
    "strategy",
    "variables",
    "secrets",
    "require_config",
    "requires",
    "protection",
    "allow_mutable_tags",
    "keep_releases",
    "rollback_requires_approval",
    "drain_timeout",
    "watch",
];

impl<'a> Checker<'a> {
    pub(super) fn environment(
        &mut self,
        item: &Item<'a>,
        users: &BTreeMap<String, User>,
        base_dir: &Path,
    ) -> (Environment, Vec<(String, Item<'a>)>) {
        let f = self.fields(item, ENV_KEYS);
        let listen = self.env_listen(&f);
        let strategy = match f.get("strategy") {
            Some(i) => self.strategy(&i),
            None => default_strategy(),
        };
        let variables = match f.get("variables") {
            Some(i) => self.variables(&i),
            None => BTreeMap::new(),
        };
        let secrets = match f.get("secrets") {
            Some(i) => self.secrets(&i, base_dir, |name| variables.contains_key(name)),
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
        let refs = match f.get("requires") {
            Some(i) => self.requires(&i),
            None => Vec::new(),
        };
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
        let watch = f.get("watch").and_then(|i| self.watch(&i));
        let env = Environment {
            listen: listen.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
            strategy,
            variables,
            secrets,
            require_config,
            requires: refs.iter().map(|(name, _)| name.clone()).collect(),
            protection,
            allow_mutable_tags,
            keep_releases,
            rollback_requires_approval,
            drain_timeout,
            watch,
        };
        (env, refs)
    }

    /// The router's address; every environment needs one.
    fn env_listen(&mut self, f: &Fields) -> Option<SocketAddr> {
        match f.get("listen") {
            Some(i) => self.listener(&i),
            None => {
                self.missing(
                    f,
                    "listen",
                    "the router's address for this environment, like 127.0.0.1:8081",
                    None,
                );
                None
            }
        }
    }

    /// The environments named under `requires`, with their items; `check_requires`
    /// resolves them once every environment is known.
    fn requires(&mut self, item: &Item<'a>) -> Vec<(String, Item<'a>)> {
        let mut refs = Vec::new();
        for target in self.list(item, "environment names") {
            if let Some(name) = self.nonempty_string(&target) {
                refs.push((name, target));
            }
        }
        refs
    }

    fn variable_name(&mut self, item: &Item) -> Option<String> {
        let name = self.nonempty_string(item)?;
        check_variable_name(self, &name, item).then_some(name)
    }

    fn variables(&mut self, item: &Item<'a>) -> BTreeMap<String, String> {
        self.variable_entries(item)
            .into_iter()
            .map(|(name, _, text)| (name, text))
            .collect()
    }

    /// The entries of a mapping of variable names to scalar values, each with its value's
    /// item (for errors about the value) and its text.
    pub(super) fn variable_entries(&mut self, item: &Item<'a>) -> Vec<(String, Item<'a>, String)> {
        let mut variables = Vec::new();
        for (name, value) in self.entries(item, "a mapping of variable names to values") {
            if !check_variable_name(self, &name, &value) {
                continue;
            }
            let text = match &value.node.value {
                Node::Null | Node::Seq(_) | Node::Map(_) => None,
                _ => scalar_text(self.source, value.node),
            };
            match text {
                Some(text) => variables.push((name, value, text)),
                None => {
                    let hint = matches!(value.node.value, Node::Null)
                        .then(|| format!("for an empty value write `{name}: \"\"`"));
                    self.wrong_type(&value, "a string, number or boolean", None, hint);
                }
            }
        }
        variables
    }
}

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`. Reports and returns false if not.
pub(super) fn check_variable_name(checker: &mut Checker, name: &str, item: &Item) -> bool {
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
