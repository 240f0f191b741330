//! Following a deployment live: poll it and its log, report every new status change and
//! log line in time order, and stop once it ends or waits for a person.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use slipway_core::Status;

use crate::client::{Client, ClientError, Deployment, Fetched, LogLine, StatusEntry};
use crate::output::time_of_day;

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
    /// A wait timer, a deployment window or a freeze: it moves on by itself, later.
    Clock,
}

/// Where a deployment stands, for whoever follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stand {
    Moving,
    Finished,
    Paused(Pause),
}

/// The API gives reasons as text; these words are how the engine names its gates.
pub fn stand(d: &Deployment) -> Stand {
    let reason = d.last_reason().to_lowercase();
    let phase = d.phase.as_deref().unwrap_or("");
    match d.status {
        s if s.is_finished() => Stand::Finished,
        Status::Waiting if reason.contains("approv") || reason.contains("review") => {
            Stand::Paused(Pause::Approval)
        }
        Status::Waiting
            if reason.contains("timer")
                || reason.contains("window")
                || reason.contains("freeze") =>
        {
            Stand::Paused(Pause::Clock)
        }
        Status::InProgress
            if reason.contains("promot")
                || reason.contains("manual")
                || phase.contains("paused") =>
        {
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
    pub with_logs: bool,
    /// Keep following through wait timers and windows.
    pub follow_waits: bool,
    /// Status changes already shown: they are not reported again, and a pause they
    /// describe does not end the follow until a newer change arrives (or [`SETTLE`]
    /// passes). That is how following right after an approval waits for its effect.
    pub shown: usize,
}

/// How long a follow started after a decision waits for the engine to act on it.
const SETTLE: Duration = Duration::from_secs(5);

/// Follows deployment `id` until it finishes or pauses (see [`stand`]); returns its last state.
pub async fn follow(
    client: &Client,
    id: i64,
    opts: &FollowOptions,
    obs: &mut dyn Observer,
) -> Result<Fetched<Deployment>, ClientError> {
    let started = Instant::now();
    let mut seen_statuses = opts.shown;
    let mut after = None;
    let mut unreachable_since: Option<Instant> = None;
    loop {
        let polled = poll(client, id, opts.with_logs, after).await;
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
            Stand::Paused(_) if settling => true,
            Stand::Paused(Pause::Clock) => opts.follow_waits,
            Stand::Finished | Stand::Paused(_) => false,
        };
        if !keep_going {
            return Ok(fetched);
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
    let logs: Vec<&LogLine> = logs.iter().filter(|l| !mirrors_status(d, l)).collect();
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

fn mirrors_status(d: &Deployment, line: &LogLine) -> bool {
    line.source == "engine"
        && d.statuses.iter().any(|s| {
            line.message
                .strip_prefix(s.status.as_str())
                .and_then(|rest| rest.strip_prefix(": "))
                == Some(s.reason.as_str())
        })
}

async fn poll(
    client: &Client,
    id: i64,
    with_logs: bool,
    after: Option<i64>,
) -> Result<(Fetched<Deployment>, Vec<LogLine>), ClientError> {
    // Logs first: a status change is stored before the log lines that follow it, so this
    // order never shows a line before the change that preceded it.
    let logs = if with_logs {
        client.logs(id, after).await?.data
    } else {
        Vec::new()
    };
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
        line.source,
        line.message
    )
}

/// The closing sentence once following stops.
pub fn summary(d: &Deployment) -> String {
    let what = format!("{} {} → {}", d.app, d.version, d.environment);
    match stand(d) {
        Stand::Paused(Pause::Approval) => format!(
            "deployment {} is waiting: {}\n  approve it with `slipway approve {}` (or reject it)",
            d.id,
            d.last_reason(),
            d.id
        ),
        Stand::Paused(Pause::Promotion) => format!(
            "deployment {} is paused: {}\n  continue it with `slipway promote {}`",
            d.id,
            d.last_reason(),
            d.id
        ),
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

// === impl Live ===

/// Follows for a person: lines as they happen, a spinner with the current status while
/// stderr is a terminal. Lines go to stderr when stdout is reserved for JSON.
pub struct Live {
    bar: ProgressBar,
    to_stderr: bool,
}

impl Live {
    pub fn new(to_stderr: bool) -> Live {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Live { bar, to_stderr }
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
        let phase = d.phase.as_deref().unwrap_or("");
        self.bar
            .set_message(format!("deployment {}: {} {phase}", d.id, d.status));
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

    fn deployment(status: &str, reason: &str) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "id": 7, "app": "web", "environment": "production", "version": "v2",
            "status": status, "phase": "pending",
            "statuses": [{"status": status, "at": "2026-11-24T10:00:00.000Z", "actor": "engine", "reason": reason}]
        }))
        .unwrap()
    }

    #[test]
    fn waiting_for_people_pauses_but_a_busy_environment_does_not() {
        let approval = deployment("waiting", "waiting for 1 more approval from alice, bob");
        assert_eq!(stand(&approval), Stand::Paused(Pause::Approval));
        let timer = deployment("waiting", "wait timer: 5m left");
        assert_eq!(stand(&timer), Stand::Paused(Pause::Clock));
        let busy = deployment("waiting", "deployment 6 is in progress");
        assert_eq!(stand(&busy), Stand::Moving);
        let canary = deployment("in_progress", "paused at 10%: run `slipway promote 7`");
        assert_eq!(stand(&canary), Stand::Paused(Pause::Promotion));
        assert_eq!(
            stand(&deployment("failure", "health check failed")),
            Stand::Finished
        );
    }

    #[test]
    fn engine_lines_that_repeat_a_status_change_are_left_out() {
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
        let line = |seq, at: &str, message: &str| LogLine {
            seq,
            at: at.into(),
            source: "engine".into(),
            message: message.into(),
        };
        let logs = [
            line(1, "2026-11-24T09:59:59.000Z", "deployment created by bob"),
            line(
                2,
                "2026-11-24T10:00:00.001Z",
                "waiting: approval: waiting for alice",
            ),
            line(3, "2026-11-24T10:00:01.000Z", "approved by carol"),
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
        assert_eq!(exit_code(&deployment("waiting", "approval")), 0);
        for s in ["failure", "error", "rejected", "cancelled", "rolled_back"] {
            assert_eq!(exit_code(&deployment(s, "")), 1, "{s}");
        }
    }

    #[test]
    fn summary_says_what_to_do_next() {
        let s = summary(&deployment(
            "waiting",
            "waiting for 1 more approval from alice, bob",
        ));
        assert!(
            s.contains("waiting for 1 more approval from alice, bob"),
            "{s}"
        );
        assert!(s.contains("slipway approve 7"), "{s}");
        let s = summary(&deployment("failure", "health check failed"));
        assert_eq!(
            s,
            "deployment 7 failure: web v2 → production: health check failed"
        );
    }
}
