//! Turns the located YAML tree into the typed `Config`, collecting every problem.
//!
//! Each check reports and then carries on with a default, so one run lists all errors.
//! Errors about a mapping entry point at its key (that is where the line starts); errors
//! about a list item point at the item.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use serde_saphyr::Spanned;

use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::scalar::{ScalarError, did_you_mean, is_valid_name};
use crate::tree::{Node, Pos, describe, quote, scalar_text};

mod app;
mod cross;
mod docker;
mod document;
mod environment;
mod migrate;
mod notifications;
mod pipeline;
mod primitives;
mod protection;
mod secrets;
mod strategy;
mod watch;

const NAME_EXPECTED: &str =
    "a name of lower-case letters, digits, `-` and `_`, starting with a letter or digit";

/// A value in the tree with its key path and the place errors about it point at.
#[derive(Clone)]
struct Item<'a> {
    node: &'a Spanned<Node>,
    path: String,
    pos: Pos,
}

impl Item<'_> {
    /// Where the item is written, kept in the typed config for what only the server's
    /// machine can check.
    fn place(&self) -> Place {
        Place {
            path: self.path.clone(),
            line: self.pos.line,
            column: self.pos.column,
        }
    }
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
}
