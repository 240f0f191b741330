//! The post-deploy watch (docs/concepts.md#post-deploy-watch): after a deployment
//! succeeded, the router's figures for its release are judged every `interval` until
//! `for` has passed, with the canary analysis's verdicts. A failed verdict rolls the
//! release back; a watch that never saw enough requests ends inconclusive.
//!
//! Each check judges the requests since the last check that reached a verdict: with
//! plenty of traffic that is one interval (so a release that turns bad is caught within
//! one), with little it pools intervals until `min_requests` is reached.

use std::time::Duration;

use slipway_config::{Analysis, Watch};

use crate::analysis::{Sample, Verdict, judge};
use crate::civil::duration_millis;
use crate::model::{DeploymentId, Millis};

/// How a watch ended (stored by these names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// Every verdict passed.
    Passed,
    /// No check had enough requests to judge: the release stays.
    Inconclusive,
    /// A verdict failed.
    Failed,
    /// A newer deployment of the app started, or the release stopped being current.
    Ended,
}

impl WatchEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEnd::Passed => "passed",
            WatchEnd::Inconclusive => "inconclusive",
            WatchEnd::Failed => "failed",
            WatchEnd::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<WatchEnd> {
        [
            WatchEnd::Passed,
            WatchEnd::Inconclusive,
            WatchEnd::Failed,
            WatchEnd::Ended,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

/// A watch as the store keeps it, so a restarted server resumes it with what is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRecord {
    pub deployment_id: DeploymentId,
    pub app: String,
    pub environment: String,
    pub version: String,
    pub started_at: Millis,
    pub ends_at: Millis,
    /// A check has passed on enough requests.
    pub passed: bool,
    /// When it ended, how, and why; `None` while it watches.
    pub ended: Option<(Millis, WatchEnd, String)>,
}

impl WatchRecord {
    /// Time left at `now`; zero once it is over or ended.
    pub fn left(&self, now: Millis) -> Duration {
        if self.ended.is_some() {
            return Duration::ZERO;
        }
        Duration::from_millis(u64::try_from(self.ends_at.saturating_sub(now)).unwrap_or(0))
    }
}

/// What the engine does after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchStep {
    /// Go on watching. `new_window`: this check reached a verdict, so the next one judges
    /// only the requests from now on.
    Continue { new_window: bool },
    /// Roll the release back; the text names the figures that failed.
    RollBack(String),
    /// The watch is over: `Passed` or `Inconclusive`, with the sentence that says so.
    Over(WatchEnd, String),
}

/// The limits of a watch as a canary analysis, so both judge alike. A single failed
/// check is enough: the release already took all the traffic.
fn analysis(w: &Watch) -> Analysis {
    Analysis {
        interval: w.interval,
        max_error_rate: w.max_error_rate,
        max_p99_latency: w.max_p99_latency,
        max_error_rate_vs_stable: None,
        min_requests: w.min_requests,
        failure_limit: 1,
        progress_deadline: w.duration,
    }
}

/// The record of a watch that begins at `now` for the release of `deployment_id`.
pub fn begin(
    w: &Watch,
    deployment_id: DeploymentId,
    app: &str,
    environment: &str,
    version: &str,
    now: Millis,
) -> WatchRecord {
    WatchRecord {
        deployment_id,
        app: app.to_owned(),
        environment: environment.to_owned(),
        version: version.to_owned(),
        started_at: now,
        ends_at: now.saturating_add(duration_millis(w.duration)),
        passed: false,
        ended: None,
    }
}

/// How long to wait before the next check: an interval, or what is left when less.
pub fn next_check(w: &Watch, watch: &WatchRecord, now: Millis) -> Duration {
    w.interval.min(watch.left(now))
}

/// Judges the requests of the current window at `now` and says what follows. Sets
/// `watch.passed` on a pass; the caller persists it.
pub fn check(
    w: &Watch,
    watch: &mut WatchRecord,
    sample: &Sample,
    now: Millis,
) -> (Verdict, WatchStep) {
    let verdict = judge(&analysis(w), sample, None);
    let over = now >= watch.ends_at;
    let step = match &verdict {
        Verdict::Fail(why) => WatchStep::RollBack(format!("post-deploy watch failed: {why}")),
        Verdict::Pass => {
            watch.passed = true;
            if over {
                WatchStep::Over(WatchEnd::Passed, "post-deploy watch passed".into())
            } else {
                WatchStep::Continue { new_window: true }
            }
        }
        Verdict::Inconclusive(_) if over && watch.passed => {
            WatchStep::Over(WatchEnd::Passed, "post-deploy watch passed".into())
        }
        Verdict::Inconclusive(why) if over => WatchStep::Over(
            WatchEnd::Inconclusive,
            format!("post-deploy watch inconclusive: only {why} to judge; the release stays"),
        ),
        Verdict::Inconclusive(_) => WatchStep::Continue { new_window: false },
    };
    (verdict, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Millis = 1_000;

    fn watch() -> Watch {
        Watch {
            duration: Duration::from_secs(60),
            interval: Duration::from_secs(10),
            max_error_rate: Some(0.05),
            max_p99_latency: Some(Duration::from_millis(800)),
            min_requests: 50,
        }
    }

    fn sample(requests: u64, errors: u64, p99_ms: u64) -> Sample {
        Sample {
            requests,
            errors,
            p99: Some(Duration::from_millis(p99_ms)),
        }
    }

    fn started() -> WatchRecord {
        begin(&watch(), 7, "web", "production", "v2", 100 * S)
    }

    #[test]
    fn a_watch_lasts_for_and_says_what_is_left() {
        let w = started();
        assert_eq!((w.started_at, w.ends_at), (100 * S, 160 * S));
        assert_eq!(w.left(130 * S), Duration::from_secs(30));
        assert_eq!(w.left(200 * S), Duration::ZERO);
        assert_eq!(next_check(&watch(), &w, 100 * S), Duration::from_secs(10));
        assert_eq!(next_check(&watch(), &w, 155 * S), Duration::from_secs(5));
        let mut ended = w.clone();
        ended.ended = Some((120 * S, WatchEnd::Ended, "deployment 8 started".into()));
        assert_eq!(ended.left(130 * S), Duration::ZERO);
    }

    #[test]
    fn a_pass_starts_a_new_window_and_a_fail_rolls_back_with_the_figures() {
        let mut w = started();
        let (v, step) = check(&watch(), &mut w, &sample(200, 2, 30), 110 * S);
        assert_eq!(v, Verdict::Pass);
        assert_eq!(step, WatchStep::Continue { new_window: true });
        assert!(w.passed);
        let (_, step) = check(&watch(), &mut w, &sample(120, 48, 30), 120 * S);
        assert_eq!(
            step,
            WatchStep::RollBack(
                "post-deploy watch failed: error rate 40.0% > 5.0% over 120 requests".into()
            )
        );
        let (_, step) = check(&watch(), &mut w, &sample(120, 0, 950), 130 * S);
        assert_eq!(
            step,
            WatchStep::RollBack(
                "post-deploy watch failed: p99 latency 950ms > 800ms over 120 requests".into()
            )
        );
    }

    #[test]
    fn too_few_requests_keep_the_window_open_until_there_are_enough() {
        let mut w = started();
        let (v, step) = check(&watch(), &mut w, &sample(20, 20, 30), 110 * S);
        assert_eq!(v, Verdict::Inconclusive("20 of 50 requests".into()));
        assert_eq!(step, WatchStep::Continue { new_window: false });
        assert!(!w.passed);
        // The next check sees the pooled requests (the caller kept the window).
        let (_, step) = check(&watch(), &mut w, &sample(60, 21, 30), 120 * S);
        assert!(matches!(step, WatchStep::RollBack(_)), "{step:?}");
    }

    #[test]
    fn a_quiet_release_ends_inconclusive_and_stays() {
        let mut w = started();
        for t in [110, 120, 130, 140, 150] {
            let (_, step) = check(&watch(), &mut w, &Sample::default(), t * S);
            assert_eq!(step, WatchStep::Continue { new_window: false });
        }
        let (_, step) = check(&watch(), &mut w, &sample(3, 0, 5), 160 * S);
        assert_eq!(
            step,
            WatchStep::Over(
                WatchEnd::Inconclusive,
                "post-deploy watch inconclusive: only 3 of 50 requests to judge; the release stays"
                    .into()
            )
        );
    }

    #[test]
    fn the_end_passes_when_some_verdict_passed() {
        let mut w = started();
        check(&watch(), &mut w, &sample(100, 0, 5), 110 * S);
        let (_, step) = check(&watch(), &mut w, &Sample::default(), 160 * S);
        assert_eq!(
            step,
            WatchStep::Over(WatchEnd::Passed, "post-deploy watch passed".into())
        );
        let mut w = started();
        let (_, step) = check(&watch(), &mut w, &sample(100, 0, 5), 161 * S);
        assert_eq!(
            step,
            WatchStep::Over(WatchEnd::Passed, "post-deploy watch passed".into())
        );
    }

    #[test]
    fn a_failure_at_the_very_end_still_rolls_back() {
        let mut w = started();
        check(&watch(), &mut w, &sample(100, 0, 5), 110 * S);
        let (_, step) = check(&watch(), &mut w, &sample(100, 100, 5), 160 * S);
        assert!(matches!(step, WatchStep::RollBack(_)), "{step:?}");
    }

    #[test]
    fn no_min_requests_judges_even_no_traffic() {
        let w = Watch {
            min_requests: 0,
            ..watch()
        };
        let mut rec = begin(&w, 1, "web", "staging", "v1", 0);
        let (v, _) = check(&w, &mut rec, &Sample::default(), 10 * S);
        assert_eq!(v, Verdict::Pass);
    }

    #[test]
    fn end_names_round_trip() {
        for e in [
            WatchEnd::Passed,
            WatchEnd::Inconclusive,
            WatchEnd::Failed,
            WatchEnd::Ended,
        ] {
            assert_eq!(WatchEnd::parse(e.as_str()), Some(e));
        }
        assert_eq!(WatchEnd::parse("watching"), None);
    }
}
