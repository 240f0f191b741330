//! Human output: aligned tables, times, traffic splits and the demo's timeline rows.

// `println!` panics when stdout is gone (`slipway history … | head -3`); these drop the
// output instead, so the command still finishes its work (and the demo its clean-up).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::client::TrafficEntry;

/// A plain text table: columns as wide as their widest cell, two spaces between them.
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                let _ = write!(line, "{cell}{}  ", " ".repeat(w - width(cell)));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// `2026-11-24T10:00:00.123Z` → `10:00:00.123`, for lines of one live session.
pub fn time_of_day(at: &str) -> &str {
    at.split_once('T')
        .map_or(at, |(_, t)| t.trim_end_matches('Z'))
}

/// `2026-11-24T10:00:00.123Z` → `2026-11-24 10:00:00 (5m ago)`.
pub fn when(at: &str, now: SystemTime) -> String {
    let shown = at
        .split_once('.')
        .map_or(at.trim_end_matches('Z'), |(s, _)| s)
        .replacen('T', " ", 1);
    match parse_time(at).and_then(|t| now.duration_since(t).ok()) {
        Some(age) => format!("{shown} ({} ago)", short_duration(age)),
        None => shown,
    }
}

pub fn parse_time(at: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(at).ok()
}

/// The coarsest unit that still says something: `42s`, `5m`, `3h`, `2d`.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// `v1 90% · v2 10%`; `-` when no traffic is routed.
pub fn traffic(entries: &[TrafficEntry]) -> String {
    if entries.is_empty() {
        return "-".into();
    }
    entries
        .iter()
        .map(|t| format!("{} {}%", t.version, percent(t.weight)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Each release's router counters when a rollout began. They are cumulative since the
/// router started, so a rollout's figures are their growth since then: the stable
/// release's old traffic does not dilute the new one's errors. A release first routed
/// later (the canary) counts from zero, as the engine's own analysis does; the API shows
/// no counters for a release before it is routed. (A release routed before, in an
/// earlier attempt, brings its old counts along: nothing in the API tells them apart.)
#[derive(Debug, Default)]
pub struct Baseline {
    started: bool,
    counters: HashMap<String, (u64, u64)>,
}

impl Baseline {
    /// Records the counters of the releases routed when the rollout began.
    fn start(&mut self, entries: &[TrafficEntry]) {
        if !self.started {
            self.started = true;
            for t in entries {
                self.counters
                    .insert(t.version.clone(), (t.requests, t.errors));
            }
        }
    }

    /// Requests and errors of `t`'s release since the rollout began.
    fn since(&mut self, t: &TrafficEntry) -> (u64, u64) {
        let base = self.counters.entry(t.version.clone()).or_default();
        // Counters that went down: the router restarted and began counting again.
        if t.requests < base.0 || t.errors < base.1 {
            *base = (0, 0);
        }
        (t.requests - base.0, t.errors - base.1)
    }
}

/// `v1 90% (140 req, 0% err) · v2 10% (35 req, 5.7% err)`: the split, and what each
/// release served since the rollout began. The first call's counters are that beginning.
pub fn traffic_since(entries: &[TrafficEntry], base: &mut Baseline) -> String {
    base.start(entries);
    if entries.is_empty() {
        return "-".into();
    }
    entries
        .iter()
        .map(|t| {
            let (requests, errors) = base.since(t);
            let figures = match requests {
                0 => "0 req".to_string(),
                n => format!(
                    "{n} req, {}% err",
                    percent(errors as f64 * 100.0 / n as f64)
                ),
            };
            format!("{} {}% ({figures})", t.version, percent(t.weight))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Weights come in steps of 0.1: show `10`, `12.5`, never `12.500000001`.
pub fn percent(weight: f64) -> String {
    let rounded = (weight * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

/// One line of the demo's timeline.
pub struct TimelineRow<'a> {
    pub offset: Duration,
    pub app: &'a str,
    pub environment: &'a str,
    pub version: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
}

impl std::fmt::Display for TimelineRow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let offset = format!("+{:.1}s", self.offset.as_secs_f64());
        write!(
            f,
            "{offset:>7}  {:<5} {:<11} {:<4} {:<12} {}",
            self.app, self.environment, self.version, self.status, self.reason
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_line_up() {
        let mut t = Table::new(&["app", "version"]);
        t.row(vec!["web".into(), "v1".into()]);
        t.row(vec!["payments".into(), "sha-3f2a9c1".into()]);
        assert_eq!(
            t.render(),
            "APP       VERSION\nweb       v1\npayments  sha-3f2a9c1\n"
        );
    }

    #[test]
    fn times_are_shortened_for_people() {
        assert_eq!(time_of_day("2026-11-24T10:00:00.123Z"), "10:00:00.123");
        let now = parse_time("2026-11-24T10:05:30.000Z").unwrap();
        assert_eq!(
            when("2026-11-24T10:00:00.123Z", now),
            "2026-11-24 10:00:00 (5m ago)"
        );
        assert_eq!(when("garbage", now), "garbage");
    }

    fn entry(version: &str, weight: f64, requests: u64, errors: u64) -> TrafficEntry {
        TrafficEntry {
            version: version.into(),
            weight,
            requests,
            errors,
            p99_ms: None,
        }
    }

    #[test]
    fn traffic_split_is_readable() {
        let split = [entry("v1", 87.5, 0, 0), entry("v2", 12.500000001, 0, 0)];
        assert_eq!(traffic(&split), "v1 87.5% · v2 12.5%");
        assert_eq!(traffic(&[]), "-");
        assert_eq!(percent(100.0), "100");
    }

    #[test]
    fn rollout_figures_count_only_traffic_since_the_rollout_began() {
        let mut base = Baseline::default();
        // The stable release served 10,000 requests before; the canary is not routed yet.
        let before = [entry("v1", 100.0, 10_000, 3)];
        assert_eq!(traffic_since(&before, &mut base), "v1 100% (0 req)");
        // v2 is routed after the start: all of its requests are this rollout's.
        let step = [entry("v1", 90.0, 10_090, 3), entry("v2", 10.0, 4, 4)];
        assert_eq!(
            traffic_since(&step, &mut base),
            "v1 90% (90 req, 0% err) · v2 10% (4 req, 100% err)"
        );
        let later = [entry("v1", 90.0, 10_180, 4), entry("v2", 10.0, 35, 6)];
        assert_eq!(
            traffic_since(&later, &mut base),
            "v1 90% (180 req, 0.6% err) · v2 10% (35 req, 17.1% err)"
        );
        // A restarted router counts from zero again.
        let restarted = [entry("v1", 90.0, 50, 0), entry("v2", 10.0, 5, 1)];
        assert_eq!(
            traffic_since(&restarted, &mut base),
            "v1 90% (50 req, 0% err) · v2 10% (5 req, 20% err)"
        );
        assert_eq!(traffic_since(&[], &mut Baseline::default()), "-");
    }
}
