//! What keeps containers running: a docker app's `restart:` policy (Docker's own
//! spelling, `on-failure:N` among them) and `server.instance_check`, how often the engine
//! checks that the serving instances still run.

use std::time::Duration;

use super::{Checker, Fields, Item};
use crate::model::*;
use crate::tree::{Node, quote, scalar_text};

const RESTART_EXPECTED: &str =
    "one of no, always, unless-stopped, on-failure, on-failure:N (N retries, 0 or more)";
/// Often enough that a dead instance is replaced within seconds, rare enough that asking
/// the driver about every instance costs nothing.
pub(super) const DEFAULT_INSTANCE_CHECK: Duration = Duration::from_secs(2);

impl Checker<'_> {
    /// `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`.
    pub(super) fn restart(&mut self, item: &Item) -> Option<RestartPolicy> {
        // Unquoted `no` may read as a YAML boolean: its text is what counts.
        let text = match &item.node.value {
            Node::Str(_) | Node::Bool(_) => scalar_text(self.source, item.node).unwrap_or_default(),
            _ => {
                self.wrong_type(item, "a restart policy", Some(RESTART_EXPECTED), None);
                return None;
            }
        };
        let text = text.as_str();
        let policy = match text {
            "no" => Some(RestartPolicy::No),
            "always" => Some(RestartPolicy::Always),
            "unless-stopped" => Some(RestartPolicy::UnlessStopped),
            "on-failure" => Some(RestartPolicy::OnFailure { max_retries: None }),
            other => other
                .strip_prefix("on-failure:")
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
                .map(|n| RestartPolicy::OnFailure {
                    max_retries: Some(n),
                }),
        };
        if policy.is_none() {
            let hint = if text.starts_with("on-failure") {
                "the number of retries is a whole number, like `on-failure:3`"
            } else {
                "slipway replaces a dead container itself; `no` leaves it to slipway alone"
            };
            let d = self
                .diag(
                    item.pos,
                    &item.path,
                    format!("unknown restart policy {}", quote(text)),
                )
                .with_expected(RESTART_EXPECTED)
                .with_hint(Some(hint.to_owned()));
            self.push(d);
        }
        policy
    }

    /// `server.instance_check`: a positive duration, 2s when left out.
    pub(super) fn instance_check(&mut self, f: &Fields) -> Duration {
        f.get("instance_check")
            .and_then(|i| self.positive_duration(&i))
            .unwrap_or(DEFAULT_INSTANCE_CHECK)
    }
}
