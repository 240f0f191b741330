//! Following a deployment live: poll it and its log, report every new status change and
//! log line in time order, and stop once it ends or waits for a person.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use slipway_api::{LogSource, PauseKind, Status, VerdictKind, WaitingOn};

use crate::client::{Client, ClientError, Deployment, Fetched, LogLine, StatusEntry};
use crate::output::{self, Baseline, time_of_day};

const POLL: Duration = Duration::from_millis(250);
/// A server restart should not end a follow: retry an unreachable server this long.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(30);

/// Why following stopped before the deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Waiting for approvals: only a person moves it on.
    Approval,
    /// A canary paused with `pause: manual`, waiting for `slipway promote`.
    Promotion,
    /// A wait timer or a deployment window: it moves on by itself, later.
    Clock,
}

/// Where a deployment stands, for whoever follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stand {
    Moving,
    Finished,
    Paused(Pause),
}

/// Where `d` stands: what holds a waiting deployment is its `waiting_on`, and a canary
/// at `pause: manual` says so in `paused`.
pub fn stand(d: &Deployment) -> Stand {
    match d.status {
        s if s.is_finished() => Stand::Finished,
        Status::Waiting => match d.waiting_on {
            Some(WaitingOn::Approval) => Stand::Paused(Pause::Approval),
            Some(WaitingOn::Window | WaitingOn::WaitTimer) => Stand::Paused(Pause::Clock),
            // Concurrency: it starts once the rollout ahead of it ends.
            Some(WaitingOn::Concurrency) | None => Stand::Moving,
        },
        Status::InProgress if d.paused.is_some_and(|p| p.kind == PauseKind::Manual) => {
            Stand::Paused(Pause::Promotion)
        }
        _ => Stand::Moving,
    }
}

/// Receives what a follow discovers, in time order.
pub trait Observer {
    fn status(&mut self, d: &Deployment, change: &StatusEntry);
    fn log(&mut self, d: &Deployment, line: &LogLine);
    /// Called after every poll with the latest state.
    fn progress(&mut self, _d: &Deployment) {}
    fn retrying(&mut self, _e: &ClientError) {}
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FollowOptions {
    /// Keep following through wait timers and windows.
    pub follow_waits: bool,
    /// Status changes already shown: they are not reported again, and a pause they
    /// describe does not end the follow until a newer change arrives (or [`SETTLE`]
    /// passes). That is how following right after an approval waits for its effect.
    pub shown: usize,
}

/// How long a follow started after a decision waits for the engine to act on it.
const SETTLE: Duration = Duration::from_secs(5);

/// Where a follow left a deployment.
#[derive(Debug)]
pub struct Followed {
    pub last: Fetched<Deployment>,
    pub stand: Stand,
}

/// Follows deployment `id` until it finishes or pauses (see [`stand`]).
pub async fn follow(
    client: &Client,
    id: i64,
    opts: &FollowOptions,
    obs: &mut dyn Observer,
) -> Result<Followed, ClientError> {
    let started = Instant::now();
    let mut seen_statuses = opts.shown;
    let mut after = None;
    let mut unreachable_since: Option<Instant> = None;
    loop {
        let polled = poll(client, id, after).await;
        let (fetched, logs) = match polled {
            Ok(ok) => {
                unreachable_since = None;
                ok
            }
            Err(e @ ClientError::Unreachable { .. }) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNREACHABLE_GRACE {
                    return Err(e);
                }
                obs.retrying(&e);
                tokio::time::sleep(POLL * 4).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let d = &fetched.data;
        let new_statuses = d.statuses.get(seen_statuses..).unwrap_or_default();
        report_in_order(d, new_statuses, &logs, obs);
        seen_statuses = d.statuses.len();
        if let Some(last) = logs.last() {
            after = Some(last.seq);
        }
        obs.progress(d);
        let stand = stand(d);
        let settling = d.statuses.len() <= opts.shown && started.elapsed() < SETTLE;
        let keep_going = match stand {
            Stand::Moving => true,
            // A promotion adds no status change: only the log says it was acted on.
            Stand::Paused(Pause::Approval | Pause::Clock) if settling => true,
            Stand::Paused(Pause::Clock) => opts.follow_waits,
            Stand::Finished | Stand::Paused(_) => false,
        };
        if !keep_going {
            return Ok(Followed {
                last: fetched,
                stand,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Hands status changes and log lines to `obs` merged by time. RFC 3339 UTC timestamps of
/// one width sort as text. The engine also logs each status change; those lines are left
/// out since the change itself is reported.
pub fn report_in_order(
    d: &Deployment,
    statuses: &[StatusEntry],
    logs: &[LogLine],
    obs: &mut dyn Observer,
) {
    let logs: Vec<&LogLine> = logs.iter().filter(|l| !mirrors_status(l)).collect();
    let (mut i, mut j) = (0, 0);
    loop {
        match (statuses.get(i), logs.get(j)) {
            (Some(st), Some(line)) if line.at < st.at => {
                obs.log(d, line);
                j += 1;
            }
            (Some(st), _) => {
                obs.status(d, st);
                i += 1;
            }
            (None, Some(line)) => {
                obs.log(d, line);
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// The log line every status change writes; the status itself is shown instead.
fn mirrors_status(line: &LogLine) -> bool {
    line.source == LogSource::Status
}

async fn poll(
    client: &Client,
    id: i64,
    after: Option<i64>,
) -> Result<(Fetched<Deployment>, Vec<LogLine>), ClientError> {
    // Logs first: a status change is stored before the log lines that follow it, so this
    // order never shows a line before the change that preceded it.
    let logs = client.logs(id, after).await?.data;
    let d = client.deployment(id).await?;
    Ok((d, logs))
}

/// The exit code a followed deployment earns: 1 when it did not get where it was sent.
pub fn exit_code(d: &Deployment) -> u8 {
    match d.status {
        Status::Failure
        | Status::Error
        | Status::Rejected
        | Status::Cancelled
        | Status::RolledBack => 1,
        _ => 0,
    }
}

/// Plain lines for a person: the status change or log line with its time of day.
/// The reason names whoever acted (`created by bob`), so the actor is not repeated.
pub fn status_line(change: &StatusEntry) -> String {
    format!(
        "{}  {:<11}  {}",
        time_of_day(&change.at),
        change.status.as_str(),
        change.reason
    )
}

pub fn log_line(line: &LogLine) -> String {
    format!(
        "{}    {:>6} | {}",
        time_of_day(&line.at),
        line.source.as_str(),
        line.message
    )
}

/// The closing sentence once following stopped at `stand`.
pub fn summary(d: &Deployment, stand: Stand) -> String {
    let what = format!("{} {} → {}", d.app, d.version, d.environment);
    match stand {
        Stand::Paused(Pause::Approval) => format!(
            "deployment {} is waiting: {}\n  approve it with `slipway approve {}` (or reject it)",
            d.id,
            d.last_reason(),
            d.id
        ),
        Stand::Paused(Pause::Promotion) => {
            let verdict = d
                .analysis
                .as_ref()
                .map(|v| format!("; latest verdict {v}"))
                .unwrap_or_default();
            format!(
                "deployment {} is paused at {} (pause: manual){verdict}\n  continue it with `slipway promote {}`",
                d.id,
                output::traffic(&d.traffic),
                d.id
            )
        }
        Stand::Paused(Pause::Clock) => format!(
            "deployment {} is waiting: {}\n  it continues by itself; follow it with `slipway logs {} --follow`",
            d.id,
            d.last_reason(),
            d.id
        ),
        _ if d.status == Status::Success => format!("deployment {} succeeded: {what}", d.id),
        _ => format!(
            "deployment {} {}: {what}: {}",
            d.id,
            d.status,
            d.last_reason()
        ),
    }
}

// === impl CanaryView ===

/// Lines of a progress message after the first start under its text, past the spinner
/// and the elapsed time.
const INDENT: &str = "      ";

/// What each poll shows of a canary: the split, each release's requests and errors since
/// the follow began, the latest verdict, and the current step.
#[derive(Debug, Default)]
pub struct CanaryView {
    baseline: Baseline,
    /// Split and verdict kind of the last line handed out by [`CanaryView::update`].
    printed: Option<(String, Option<VerdictKind>)>,
}

/// The canary's step as `d` shows it: the pause it waits at, or its share of the traffic.
pub fn canary_step(d: &Deployment) -> Option<String> {
    if let Some(pause) = &d.paused {
        return Some(format!("pause {pause}"));
    }
    let canary = d.traffic.iter().find(|t| t.version == d.version)?;
    Some(format!(
        "{}% of traffic to {}",
        output::percent(canary.weight),
        d.version
    ))
}

/// One poll's view of a canary.
#[derive(Debug, PartialEq)]
pub struct CanaryUpdate {
    /// For a progress line redrawn on every poll.
    pub message: String,
    /// For plain output: only when the split or the verdict's kind changed.
    pub line: Option<String>,
}

impl CanaryView {
    /// Call on every poll (so each release's baseline is its counters when first seen);
    /// `None` unless `d` is a canary in progress.
    pub fn update(&mut self, d: &Deployment) -> Option<CanaryUpdate> {
        let figures = output::traffic_since(&d.traffic, &mut self.baseline);
        if d.status != Status::InProgress || (d.traffic.len() < 2 && d.analysis.is_none()) {
            return None;
        }
        let text = match &d.analysis {
            Some(verdict) => format!("{figures} — {verdict}"),
            None => figures.clone(),
        };
        let step = canary_step(d).map(|s| format!(": {s}")).unwrap_or_default();
        let key = (
            output::traffic(&d.traffic),
            d.analysis.as_ref().map(|v| v.kind),
        );
        let changed = self.printed.as_ref() != Some(&key);
        self.printed = Some(key);
        // One short line each (the step, the figures, the verdict) fits a narrow terminal.
        let verdict = d
            .analysis
            .as_ref()
            .map(|v| format!("\n{INDENT}{v}"))
            .unwrap_or_default();
        Some(CanaryUpdate {
            message: format!(
                "deployment {} canary{step}\n{INDENT}{figures}{verdict}",
                d.id
            ),
            line: changed.then_some(text),
        })
    }
}

// === impl Live ===

/// Follows for a person: lines as they happen and, while stderr is a terminal, a spinner
/// with the current status, or a canary's [`CanaryView`]. Without a terminal, the canary's
/// figures are printed as a line whenever the split or the verdict's kind changes.
/// Lines go to stderr when stdout is reserved for JSON.
pub struct Live {
    bar: ProgressBar,
    tty: bool,
    to_stderr: bool,
    canary: CanaryView,
}

impl Live {
    pub fn new(to_stderr: bool) -> Live {
        let tty = std::io::stderr().is_terminal();
        let bar = if tty {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Live {
            bar,
            tty,
            to_stderr,
            canary: CanaryView::default(),
        }
    }

    /// Prints above the spinner: `suspend` works whether or not the bar is drawn.
    pub fn line(&self, text: &str) {
        self.bar.suspend(|| {
            if self.to_stderr {
                errln!("{text}");
            } else {
                outln!("{text}");
            }
        });
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for Live {
    fn status(&mut self, _d: &Deployment, change: &StatusEntry) {
        self.line(&status_line(change));
    }

    fn log(&mut self, _d: &Deployment, line: &LogLine) {
        self.line(&log_line(line));
    }

    fn progress(&mut self, d: &Deployment) {
        match self.canary.update(d) {
            Some(update) if self.tty => self.bar.set_message(update.message),
            Some(update) => {
                if let Some(text) = update.line {
                    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
                    self.line(&format!("{}    canary | {text}", time_of_day(&now)));
                }
            }
            None => {
                self.bar.set_message(format!(
                    "deployment {}: {} {}",
                    d.id,
                    d.status,
                    d.phase.as_str()
                ));
            }
        }
    }

    fn retrying(&mut self, e: &ClientError) {
        self.bar.set_message(format!("retrying: {e}"));
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::TrafficEntry;

    fn deployment(status: &str, reason: &str) -> Deployment {
        crate::client::test_deployment(serde_json::json!({
            "status": status,
            "statuses": [{"status": status, "at": "2026-11-24T10:00:00.000Z", "actor": "engine", "reason": reason}]
        }))
    }

    fn verdict(kind: VerdictKind, text: &str) -> slipway_api::Verdict {
        slipway_api::Verdict {
            kind,
            text: text.into(),
        }
    }

    #[test]
    fn waiting_on_decides_whether_following_stops_whatever_the_reason_says() {
        let cases = [
            (WaitingOn::Approval, Stand::Paused(Pause::Approval)),
            (WaitingOn::WaitTimer, Stand::Paused(Pause::Clock)),
            (WaitingOn::Window, Stand::Paused(Pause::Clock)),
            // Moves on by itself once the rollout ahead ends.
            (WaitingOn::Concurrency, Stand::Moving),
        ];
        for (on, want) in cases {
            // A reason that names another gate changes nothing: it is for people.
            let mut d = deployment("waiting", "approval: words, not a field");
            d.waiting_on = Some(on);
            assert_eq!(stand(&d), want, "{on:?}");
        }
        assert_eq!(
            stand(&deployment("failure", "health check failed")),
            Stand::Finished
        );
    }

    #[test]
    fn a_manual_canary_pause_is_where_a_follow_stops() {
        let mut d = deployment("in_progress", "all gates passed; rollout started");
        assert_eq!(stand(&d), Stand::Moving);
        d.paused = Some(slipway_api::Pause {
            kind: PauseKind::Timed,
            duration_ms: Some(30_000),
        });
        assert_eq!(stand(&d), Stand::Moving, "a timed pause ends by itself");
        d.paused = Some(slipway_api::Pause {
            kind: PauseKind::Manual,
            duration_ms: None,
        });
        assert_eq!(stand(&d), Stand::Paused(Pause::Promotion));
    }

    #[test]
    fn a_canary_redraws_its_figures_every_poll_but_prints_only_when_split_or_verdict_changes() {
        let poll =
            |traffic: serde_json::Value, analysis: Option<(VerdictKind, &str)>| -> Deployment {
                let mut d = deployment("in_progress", "all gates passed; rollout started");
                d.traffic = serde_json::from_value(traffic).unwrap();
                d.analysis = analysis.map(|(kind, text)| verdict(kind, text));
                d
            };
        let split = |v1: u64, v2: u64, v2_errors: u64| {
            serde_json::json!([
                {"version": "v1", "weight": 80.0, "requests": v1, "errors": 0},
                {"version": "v2", "weight": 20.0, "requests": v2, "errors": v2_errors}
            ])
        };
        let mut view = CanaryView::default();
        // Before the canary: only the baseline is taken (v1's 5,000 old requests).
        let before = poll(
            serde_json::json!([{"version": "v1", "weight": 100.0, "requests": 5000, "errors": 0}]),
            None,
        );
        assert_eq!(view.update(&before), None);
        let first = view.update(&poll(split(5040, 0, 0), None)).unwrap();
        assert_eq!(
            first.message,
            "deployment 7 canary: 20% of traffic to v2\n      v1 80% (40 req, 0% err) · v2 20% (0 req)"
        );
        assert!(first.line.is_some());
        let inconclusive = Some((VerdictKind::Inconclusive, "inconclusive: 4 of 20 requests"));
        let second = view.update(&poll(split(5056, 4, 0), inconclusive)).unwrap();
        assert_eq!(
            second.line.as_deref(),
            Some(
                "v1 80% (56 req, 0% err) · v2 20% (4 req, 0% err) — inconclusive: 4 of 20 requests"
            )
        );
        // Same split, same kind of verdict: redrawn, not printed again.
        let third = view
            .update(&poll(
                split(5072, 8, 0),
                Some((VerdictKind::Inconclusive, "inconclusive: 8 of 20 requests")),
            ))
            .unwrap();
        assert!(
            third
                .message
                .ends_with("v2 20% (8 req, 0% err)\n      inconclusive: 8 of 20 requests"),
            "{third:?}"
        );
        assert_eq!(third.line, None);
        let failed = view
            .update(&poll(
                split(5140, 25, 10),
                Some((
                    VerdictKind::Fail,
                    "fail: error rate 40.0% > 5.0% over 25 requests",
                )),
            ))
            .unwrap();
        assert!(
            failed
                .line
                .as_deref()
                .is_some_and(|l| l.contains("v2 20% (25 req, 40% err)")),
            "{failed:?}"
        );
        // Once it ends, it is no longer a canary in progress.
        let mut done = poll(split(5200, 25, 10), None);
        done.status = Status::Failure;
        assert_eq!(view.update(&done), None);
    }

    #[test]
    fn status_lines_of_the_log_are_left_out_for_the_statuses_themselves() {
        struct Seen(Vec<String>);
        impl Observer for Seen {
            fn status(&mut self, _d: &Deployment, c: &StatusEntry) {
                self.0.push(format!("status {}", c.status));
            }
            fn log(&mut self, _d: &Deployment, l: &LogLine) {
                self.0.push(format!("log {}", l.message));
            }
        }
        let d = deployment("waiting", "approval: waiting for alice");
        let line = |seq, at: &str, source, message: &str| LogLine {
            seq,
            at: at.into(),
            source,
            message: message.into(),
        };
        let logs = [
            line(
                1,
                "2026-11-24T09:59:59.000Z",
                LogSource::Engine,
                "deployment created by bob",
            ),
            // Its text no longer matters: the source says it is a status change.
            line(
                2,
                "2026-11-24T10:00:00.001Z",
                LogSource::Status,
                "waiting: approval: waiting for alice (reworded)",
            ),
            line(
                3,
                "2026-11-24T10:00:01.000Z",
                LogSource::Engine,
                "approved by carol",
            ),
        ];
        let mut seen = Seen(Vec::new());
        report_in_order(&d, &d.statuses, &logs, &mut seen);
        assert_eq!(
            seen.0,
            [
                "log deployment created by bob",
                "status waiting",
                "log approved by carol"
            ]
        );
    }

    #[test]
    fn only_unwanted_endings_fail() {
        assert_eq!(exit_code(&deployment("success", "")), 0);
        assert_eq!(exit_code(&deployment("waiting", "approval: alice")), 0);
        for s in ["failure", "error", "rejected", "cancelled", "rolled_back"] {
            assert_eq!(exit_code(&deployment(s, "")), 1, "{s}");
        }
    }

    #[test]
    fn summary_says_what_to_do_next() {
        let mut waiting = deployment(
            "waiting",
            "approval: waiting for 1 more approval from alice, bob",
        );
        waiting.waiting_on = Some(WaitingOn::Approval);
        let s = summary(&waiting, stand(&waiting));
        assert!(
            s.contains("waiting for 1 more approval from alice, bob"),
            "{s}"
        );
        assert!(s.contains("slipway approve 7"), "{s}");
        let mut paused = deployment("in_progress", "all gates passed; rollout started");
        paused.traffic = vec![
            TrafficEntry {
                version: "v1".into(),
                weight: 90.0,
                ..TrafficEntry::default()
            },
            TrafficEntry {
                version: "v2".into(),
                weight: 10.0,
                ..TrafficEntry::default()
            },
        ];
        paused.analysis = Some(verdict(VerdictKind::Pass, "pass: 30 requests, 0 errors"));
        assert_eq!(
            summary(&paused, Stand::Paused(Pause::Promotion)),
            "deployment 7 is paused at v1 90% · v2 10% (pause: manual); latest verdict \
             pass: 30 requests, 0 errors\n  continue it with `slipway promote 7`"
        );
        let failed = deployment("failure", "health check failed");
        let s = summary(&failed, stand(&failed));
        assert_eq!(
            s,
            "deployment 7 failure: web v2 → production: health check failed"
        );
    }
}
