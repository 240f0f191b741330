//! `watch:` of an environment: `for`, `interval`, `max_error_rate`, `max_p99_latency`,
//! `min_requests`.

use std::time::Duration;

use super::{Checker, Item};
use crate::model::Watch;
use crate::tree::scalar_text;

const WATCH_KEYS: &[&str] = &[
    "for",
    "interval",
    "max_error_rate",
    "max_p99_latency",
    "min_requests",
];
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_MIN_REQUESTS: u64 = 20;

impl<'a> Checker<'a> {
    pub(super) fn watch(&mut self, item: &Item<'a>) -> Option<Watch> {
        let f = self.fields(item, WATCH_KEYS);
        let interval = match f.get("interval") {
            Some(i) => self.positive_duration(&i),
            None => Some(DEFAULT_INTERVAL),
        };
        let max_error_rate = f.get("max_error_rate").and_then(|i| self.percent(&i));
        let max_p99_latency = f
            .get("max_p99_latency")
            .and_then(|i| self.positive_duration(&i));
        let min_requests = f
            .get("min_requests")
            .and_then(|i| self.uint(&i, 0, u64::MAX))
            .unwrap_or(DEFAULT_MIN_REQUESTS);
        if f.get("max_error_rate").is_none() && f.get("max_p99_latency").is_none() {
            let d = self
                .diag(
                    f.pos,
                    &f.path,
                    "a watch has no limit to judge the release by",
                )
                .with_expected("`max_error_rate`, `max_p99_latency` or both")
                .with_hint(Some("like `max_error_rate: 5%`".to_owned()));
            self.push(d);
        }
        let Some(for_item) = f.get("for") else {
            self.missing(
                &f,
                "for",
                "how long the release is watched after it succeeded, like 5m",
                None,
            );
            return None;
        };
        let duration = self.positive_duration(&for_item)?;
        let interval = interval?;
        if duration < interval {
            // The durations as written: they parsed, so they are plain scalars.
            let written = |item: &Item| scalar_text(self.source, item.node).unwrap_or_default();
            let every = f
                .get("interval")
                .map_or_else(|| "10s (the default interval)".to_owned(), |i| written(&i));
            let d = self
                .diag(
                    for_item.pos,
                    &for_item.path,
                    format!(
                        "the watch lasts {} but judges every {every}: it would end before its first verdict",
                        written(&for_item)
                    ),
                )
                .with_expected("`for` at least as long as `interval`")
                .with_hint(Some("make `for` longer, or `interval` shorter".to_owned()));
            self.push(d);
            return None;
        }
        Some(Watch {
            duration,
            interval,
            max_error_rate,
            max_p99_latency,
            min_requests,
        })
    }
}
