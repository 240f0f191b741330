//! `GET /history` (every deployment, filtered by app, environment and status, a page at a
//! time, newest first) and `GET /dora` (the DORA metrics of `/api/v1/metrics/dora`); the
//! filters and page links the runs page shares.

use std::time::Duration;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use slipway_core::dora::{Band, Report};
use slipway_core::{Millis, Status};
use slipway_store::{Cursor, HistoryQuery};

use super::board::status_text;
use super::deployment::{Summary, summary};
use super::page::{self, Chrome, ConsoleError, When, render};
use super::session::{Form, SignedIn};
use crate::AppState;

/// Rows on one page of the history (and of the runs).
pub const PAGE_SIZE: u32 = 50;

/// One choice of a filter's `<select>`.
pub(super) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub(super) fn choices<'a>(
    any: &str,
    values: impl Iterator<Item = (&'a str, String)>,
    chosen: Option<&str>,
) -> Vec<Choice> {
    let mut out = vec![Choice {
        value: String::new(),
        label: any.to_owned(),
        selected: chosen.is_none(),
    }];
    out.extend(values.map(|(value, label)| Choice {
        selected: chosen == Some(value),
        value: value.to_owned(),
        label,
    }));
    out
}

#[derive(Template)]
#[template(path = "console/history.html")]
struct HistoryPage {
    chrome: Chrome,
    apps: Vec<Choice>,
    environments: Vec<Choice>,
    statuses: Vec<Choice>,
    rows: Vec<Row>,
    total: i64,
    filtered: bool,
    pages: PageLinks,
}

struct Row {
    d: Summary,
    /// Why it has the status it has: its last change's reason.
    reason: String,
}

/// A query parameter, empty meaning not given (what an "any" choice of the form sends).
pub(super) fn param<'f>(q: &'f Form, name: &str) -> Result<Option<&'f str>, ConsoleError> {
    Ok(q.get(name)?.filter(|v| !v.is_empty()))
}

/// A name the configuration must know; a page saying which ones it does otherwise, with
/// a link back to `back`.
pub(super) fn known<'f>(
    value: Option<&'f str>,
    what: &str,
    names: &mut dyn Iterator<Item = &String>,
    back: &str,
) -> Result<Option<&'f str>, ConsoleError> {
    match value {
        None => Ok(None),
        Some(v) => {
            let names: Vec<&str> = names.map(String::as_str).collect();
            if names.contains(&v) {
                Ok(Some(v))
            } else {
                Err(ConsoleError::bad_request(format!(
                    "There is no {what} `{v}`; the configuration has {}.",
                    names.join(", ")
                ))
                .back_to(back.to_owned()))
            }
        }
    }
}

/// The `status` filter: one of `all`, as `name` spells it; a page listing them otherwise.
pub(super) fn status_param<S: Copy>(
    q: &Form,
    all: &[S],
    name: impl Fn(S) -> &'static str,
    back: &str,
) -> Result<Option<S>, ConsoleError> {
    let Some(s) = param(q, "status")? else {
        return Ok(None);
    };
    all.iter()
        .copied()
        .find(|v| name(*v) == s)
        .map(Some)
        .ok_or_else(|| {
            let known: Vec<&str> = all.iter().map(|v| name(*v)).collect();
            ConsoleError::bad_request(format!(
                "There is no status `{s}`; statuses are {}.",
                known.join(", ")
            ))
            .back_to(back.to_owned())
        })
}

/// Where a page of `path` starts: its `before` or `after` id (of a `what`), or the newest.
pub(super) fn cursor(q: &Form, what: &str, path: &str) -> Result<Cursor, ConsoleError> {
    let id = |name: &str| {
        param(q, name)?
            .map(|v| match v.parse::<i64>() {
                Ok(id) if id > 0 => Ok(id),
                _ => Err(ConsoleError::bad_request(format!(
                    "`{name}` must be a {what} id (a whole number), not `{v}`."
                ))
                .back_to(path.to_owned())),
            })
            .transpose()
    };
    match (id("before")?, id("after")?) {
        (None, None) => Ok(Cursor::Newest),
        (Some(id), None) => Ok(Cursor::Before(id)),
        (None, Some(id)) => Ok(Cursor::After(id)),
        (Some(_), Some(_)) => Err(
            ConsoleError::bad_request("Give `before` or `after`, not both.")
                .back_to(path.to_owned()),
        ),
    }
}

/// `path?…` with the filters and one more pair.
fn link(path: &str, filters: &[(&str, &str)], extra: Option<(&str, String)>) -> String {
    let mut pairs: Vec<(&str, String)> =
        filters.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    pairs.extend(extra);
    match serde_urlencoded::to_string(&pairs) {
        Ok(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    }
}

/// The links between pages of `path`: to the newest page (when not on it), and to the
/// newer and older ones (when there are), each keeping the filters.
pub(super) struct PageLinks {
    pub newest: Option<String>,
    pub newer: Option<String>,
    pub older: Option<String>,
}

impl PageLinks {
    /// `first` and `last`: the ids of this page's first and last rows.
    pub fn new(
        path: &str,
        filters: &[(&str, &str)],
        cursor: Cursor,
        (newer, older): (bool, bool),
        (first, last): (Option<i64>, Option<i64>),
    ) -> PageLinks {
        PageLinks {
            newest: (cursor != Cursor::Newest).then(|| link(path, filters, None)),
            newer: newer
                .then_some(first)
                .flatten()
                .map(|id| link(path, filters, Some(("after", id.to_string())))),
            older: older
                .then_some(last)
                .flatten()
                .map(|id| link(path, filters, Some(("before", id.to_string())))),
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    const PATH: &str = "/history";
    let q = Form::parse(raw.unwrap_or_default().as_bytes());
    let config = state.engine.config();
    let app = known(param(&q, "app")?, "app", &mut config.apps.keys(), PATH)?;
    let environment = known(
        param(&q, "environment")?,
        "environment",
        &mut config.environments.keys(),
        PATH,
    )?;
    let status = status_param(&q, &Status::ALL, Status::as_str, PATH)?;
    let cursor = cursor(&q, "deployment", PATH)?;
    let page = state
        .console
        .history
        .history_page(&HistoryQuery {
            app: app.map(str::to_owned),
            environment: environment.map(str::to_owned),
            status,
            cursor,
            limit: PAGE_SIZE,
        })
        .await?;

    let mut filters: Vec<(&str, &str)> = Vec::new();
    filters.extend(app.map(|a| ("app", a)));
    filters.extend(environment.map(|e| ("environment", e)));
    filters.extend(status.map(|s| ("status", s.as_str())));
    let now = state.engine.now();
    let page_view = HistoryPage {
        chrome: Chrome::new("History", PATH, Some((&signed_in.actor, &signed_in.csrf))),
        apps: choices(
            "any app",
            config.apps.keys().map(|a| (a.as_str(), a.clone())),
            app,
        ),
        environments: choices(
            "any environment",
            config.environments.keys().map(|e| (e.as_str(), e.clone())),
            environment,
        ),
        statuses: choices(
            "any status",
            Status::ALL.iter().map(|s| (s.as_str(), status_text(*s))),
            status.map(|s| s.as_str()),
        ),
        total: page.total,
        filtered: !filters.is_empty(),
        pages: PageLinks::new(
            PATH,
            &filters,
            cursor,
            (page.newer, page.older),
            (
                page.deployments.first().map(|d| d.id),
                page.deployments.last().map(|d| d.id),
            ),
        ),
        rows: page
            .deployments
            .into_iter()
            .map(|d| Row {
                reason: d
                    .statuses
                    .last()
                    .map(|s| s.reason.clone())
                    .unwrap_or_default(),
                d: summary(&d, None, now),
            })
            .collect(),
    };
    Ok(render(StatusCode::OK, &page_view))
}

#[derive(Template)]
#[template(path = "console/dora.html")]
struct DoraPage {
    chrome: Chrome,
    windows: Vec<Choice>,
    since: String,
    until: String,
    reports: Vec<DoraRow>,
}

struct DoraRow {
    app: String,
    environment: String,
    deployments: u64,
    per_day: String,
    frequency_band: &'static str,
    lead_time: String,
    lead_band: &'static str,
    fail_rate: String,
    fail_band: &'static str,
    recovery: String,
    recovery_band: &'static str,
}

/// The windows the page offers; any other `since=` that parses works too.
const WINDOWS: &[(&str, &str)] = &[
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("90d", "last 90 days"),
];

fn band(b: Option<Band>) -> &'static str {
    b.map_or("", Band::as_str)
}

fn median_and_p90(median: Option<Millis>, p90: Option<Millis>) -> String {
    match (median, p90) {
        (Some(m), Some(p)) => format!("{} (p90 {})", page::duration(m), page::duration(p)),
        (Some(m), None) => page::duration(m),
        _ => "—".to_owned(),
    }
}

fn dora_row(r: Report) -> DoraRow {
    DoraRow {
        deployments: r.deployment_frequency.deployments,
        per_day: format!("{:.2}", r.deployment_frequency.per_day),
        frequency_band: r.deployment_frequency.band.as_str(),
        lead_time: median_and_p90(r.lead_time.median_ms, r.lead_time.p90_ms),
        lead_band: band(r.lead_time.band),
        fail_rate: match r.change_fail_rate.rate {
            Some(rate) => format!(
                "{:.1}% ({} of {})",
                rate * 100.0,
                r.change_fail_rate.failed,
                r.change_fail_rate.total
            ),
            None => "—".to_owned(),
        },
        fail_band: band(r.change_fail_rate.band),
        recovery: median_and_p90(r.recovery_time.median_ms, r.recovery_time.p90_ms),
        recovery_band: band(r.recovery_time.band),
        app: r.app,
        environment: r.environment,
    }
}

pub async fn dora(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    let q = Form::parse(raw.unwrap_or_default().as_bytes());
    let since_text = param(&q, "since")?.unwrap_or("30d");
    let since: Duration = humantime::parse_duration(since_text).map_err(|e| {
        ConsoleError::bad_request(format!(
            "`since={since_text}` is not a duration ({e}); write e.g. 30d, 12h, 90m."
        ))
        .back_to("/dora".to_owned())
    })?;
    let (window, reports) = crate::dora::compute(
        &state,
        None,
        None,
        since,
        crate::dora::DEFAULT_ROLLBACK_WITHIN,
    )
    .await?;
    let now = state.engine.now();
    let page_view = DoraPage {
        chrome: Chrome::new(
            "DORA metrics",
            "/dora",
            Some((&signed_in.actor, &signed_in.csrf)),
        ),
        windows: choices(
            "",
            WINDOWS.iter().map(|(v, l)| (*v, (*l).to_owned())),
            Some(since_text),
        )
        .into_iter()
        .skip(1)
        .collect(),
        since: When::at(window.since, now).text,
        until: When::at(window.until, now).text,
        reports: reports.into_iter().map(dora_row).collect(),
    };
    Ok(render(StatusCode::OK, &page_view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_filters() {
        assert_eq!(link("/history", &[], None), "/history");
        assert_eq!(
            link(
                "/runs",
                &[("app", "web"), ("status", "in_progress")],
                Some(("before", "40".to_owned()))
            ),
            "/runs?app=web&status=in_progress&before=40"
        );
    }
}
