//! Scalars: strings, numbers, durations, percentages, addresses, picks from a set.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Checker, Item, Listener, one_of};
use crate::scalar::{self, ScalarError, did_you_mean};
use crate::tree::{Node, describe, quote, scalar_text};

const ADDRESS_EXPECTED: &str = "an IP address and port, like 127.0.0.1:8081";

impl<'a> Checker<'a> {
    pub(super) fn string(&mut self, item: &Item) -> Option<String> {
        let text = match &item.node.value {
            Node::Null | Node::Seq(_) | Node::Map(_) => None,
            _ => scalar_text(self.source, item.node),
        };
        if text.is_none() {
            self.wrong_type(item, "a string", None, None);
        }
        text
    }

    pub(super) fn nonempty_string(&mut self, item: &Item) -> Option<String> {
        let text = self.string(item)?;
        if text.trim().is_empty() {
            let d = self.diag(item.pos, &item.path, "must not be empty");
            self.push(d);
            return None;
        }
        Some(text)
    }

    pub(super) fn boolean(&mut self, item: &Item) -> Option<bool> {
        if let Node::Bool(b) = item.node.value {
            return Some(b);
        }
        self.wrong_type(item, "true or false", None, None);
        None
    }

    pub(super) fn uint(&mut self, item: &Item, min: u64, max: u64) -> Option<u64> {
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

    pub(super) fn u32(&mut self, item: &Item, min: u32) -> Option<u32> {
        self.uint(item, min.into(), u32::MAX.into())
            .and_then(|v| u32::try_from(v).ok())
    }

    pub(super) fn duration(&mut self, item: &Item) -> Option<Duration> {
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
    pub(super) fn positive_duration(&mut self, item: &Item) -> Option<Duration> {
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

    pub(super) fn percent(&mut self, item: &Item) -> Option<f64> {
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
    pub(super) fn listener(&mut self, item: &Item) -> Option<SocketAddr> {
        let addr = self.address(item)?;
        self.listeners.push(Listener {
            addr,
            path: item.path.clone(),
            pos: item.pos,
        });
        Some(addr)
    }

    /// A name picked from a fixed set, with a suggestion when it is close to one.
    pub(super) fn choice<'c>(
        &mut self,
        item: &Item,
        kind: &str,
        choices: &[&'c str],
    ) -> Option<&'c str> {
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
}
