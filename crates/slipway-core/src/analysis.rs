//! Canary analysis (docs/concepts.md): judge the new release's counters against the limits and
//! the stable release, then decide over successive checks whether to go on or abort.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use slipway_config::Analysis;

use crate::civil::{duration_millis, format_duration};
use crate::model::Millis;

/// Counters of one release over the analysis interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    pub requests: u64,
    /// Responses with a 5xx status.
    pub errors: u64,
    pub p99: Option<Duration>,
}

impl Sample {
    /// 5xx / all, 0 when there were no requests.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// A limit was exceeded; the text says which and by how much.
    Fail(String),
    /// Too little traffic to judge; the text says how much there was.
    Inconclusive(String),
}

/// Judges one check. A value exactly at its limit passes. Every exceeded limit is named,
/// joined with `; `.
///
/// The comparison with the stable release applies only when the stable one has served at
/// least `min_requests` itself; a stable release without errors makes any canary error
/// exceed any ratio.
pub fn judge(a: &Analysis, canary: &Sample, stable: Option<&Sample>) -> Verdict {
    if canary.requests < a.min_requests {
        return Verdict::Inconclusive(format!(
            "{} of {} requests",
            canary.requests, a.min_requests
        ));
    }
    let over = canary.requests;
    let rate = canary.error_rate();
    let mut failures = Vec::new();

    if let Some(max) = a.max_error_rate
        && exceeds(rate, max)
    {
        let (seen, limit) = distinct_pair(rate * 100.0, max * 100.0);
        failures.push(format!(
            "error rate {seen}% > {limit}% over {over} requests"
        ));
    }

    if let (Some(max), Some(p99)) = (a.max_p99_latency, canary.p99)
        && p99 > max
    {
        failures.push(format!(
            "p99 latency {} > {} over {over} requests",
            latency(p99),
            latency(max)
        ));
    }

    if let (Some(max_ratio), Some(s)) = (a.max_error_rate_vs_stable, stable)
        && s.requests > 0
        && s.requests >= a.min_requests
        && canary.errors > 0
    {
        let stable_rate = s.error_rate();
        if s.errors == 0 {
            failures.push(format!(
                "error rate {}% while stable's is 0.0% (max {}×)",
                shortest(rate * 100.0, 1),
                shortest(max_ratio, 1)
            ));
        } else {
            // Cross-multiplied counts keep whole ratios exact (3% vs 1% is 3.0, not
            // 2.9999999999999996), so a value at the limit passes.
            let ratio = (u128::from(canary.errors) * u128::from(s.requests)) as f64
                / (u128::from(canary.requests) * u128::from(s.errors)) as f64;
            if exceeds(ratio, max_ratio) {
                let (seen, limit) = distinct_pair(ratio, max_ratio);
                let (rate_text, stable_text) = distinct_pair(rate * 100.0, stable_rate * 100.0);
                failures.push(format!(
                    "error rate {rate_text}% is {seen}× stable's {stable_text}% (max {limit}×)"
                ));
            }
        }
    }

    if failures.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(failures.join("; "))
    }
}

/// The sentence that states a verdict on `sample`, as the deployment log shows it:
/// `pass: 214 requests, 0 errors, p99 3ms`, `fail: …`, `inconclusive: …`.
pub fn describe(verdict: &Verdict, sample: &Sample) -> String {
    match verdict {
        Verdict::Pass => format!(
            "pass: {} requests, {} errors{}",
            sample.requests,
            sample.errors,
            sample
                .p99
                .map(|p| format!(", p99 {}", format_duration(p)))
                .unwrap_or_default()
        ),
        Verdict::Fail(why) => format!("fail: {why}"),
        Verdict::Inconclusive(why) => format!("inconclusive: {why}"),
    }
}

/// Strictly above the limit, with a hair of tolerance for limits that went through
/// floating-point arithmetic when parsed (`29%` → 0.29000000000000004).
fn exceeds(value: f64, limit: f64) -> bool {
    value > limit + limit.abs() * 1e-9
}

/// `value` with the fewest decimals (at least `min`, at most 4) that show it exactly.
fn shortest(value: f64, min: usize) -> String {
    (min..=4)
        .map(|d| format!("{value:.d$}"))
        .find(|s| s.parse::<f64>().is_ok_and(|p| (p - value).abs() < 1e-9))
        .unwrap_or_else(|| format!("{value:.4}"))
}

/// An observed value and its limit as text, the limit exact and the observed value with
/// enough decimals not to read the same as the limit (`1.04%` is not shown as `1.0%`).
fn distinct_pair(observed: f64, limit: f64) -> (String, String) {
    let limit_text = shortest(limit, 1);
    let min = limit_text.split('.').nth(1).map_or(1, str::len);
    let observed_text = (min..=4)
        .map(|d| format!("{observed:.d$}"))
        .find(|s| *s != limit_text)
        .unwrap_or_else(|| format!("{observed:.4}"));
    (observed_text, limit_text)
}

/// Latency in milliseconds, with a decimal when it is not a whole millisecond.
fn latency(d: Duration) -> String {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}ms", d.as_secs_f64() * 1_000.0)
    }
}

/// What the canary should do after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Roll back; the text is the reason recorded on the deployment.
    Abort(String),
}

/// Memory of past checks, persisted with the rollout so a restart keeps the streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AnalysisState {
    pub consecutive_failures: u32,
    /// Since when every check has been inconclusive, if the latest one was.
    pub inconclusive_since: Option<Millis>,
}

impl AnalysisState {
    /// Records the verdict of the check made at `now`.
    ///
    /// Aborts after `failure_limit` failed checks in a row (a limit of 0 means 1), or when
    /// checks have stayed inconclusive for longer than `progress_deadline`. An
    /// inconclusive check neither extends nor breaks a streak of failures: a dip in
    /// traffic must not wash out a bad release's record.
    pub fn record(&mut self, a: &Analysis, v: &Verdict, now: Millis) -> Step {
        match v {
            Verdict::Pass => {
                *self = AnalysisState::default();
                Step::Continue
            }
            Verdict::Fail(why) => {
                self.inconclusive_since = None;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                let limit = a.failure_limit.max(1);
                if self.consecutive_failures < limit {
                    Step::Continue
                } else if limit == 1 {
                    Step::Abort(why.clone())
                } else {
                    Step::Abort(format!(
                        "{why} ({} consecutive failed checks)",
                        self.consecutive_failures
                    ))
                }
            }
            Verdict::Inconclusive(why) => {
                let since = *self.inconclusive_since.get_or_insert(now);
                let deadline = duration_millis(a.progress_deadline);
                if now.saturating_sub(since) > deadline {
                    Step::Abort(format!(
                        "no verdict: only {why} within progress deadline {}",
                        format_duration(a.progress_deadline)
                    ))
                } else {
                    Step::Continue
                }
            }
        }
    }

    /// A new canary step starts its own progress deadline.
    pub fn step_changed(&mut self) {
        self.inconclusive_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis() -> Analysis {
        Analysis {
            max_error_rate: Some(0.01),
            max_p99_latency: Some(Duration::from_millis(500)),
            min_requests: 20,
            failure_limit: 2,
            ..Analysis::default()
        }
    }

    fn sample(requests: u64, errors: u64, p99_ms: u64) -> Sample {
        Sample {
            requests,
            errors,
            p99: Some(Duration::from_millis(p99_ms)),
        }
    }

    fn fail(v: Verdict) -> String {
        match v {
            Verdict::Fail(s) => s,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn too_few_requests_is_inconclusive() {
        assert_eq!(
            judge(&analysis(), &sample(12, 12, 900), None),
            Verdict::Inconclusive("12 of 20 requests".into())
        );
        // Exactly min_requests is enough to judge.
        assert_eq!(judge(&analysis(), &sample(20, 0, 10), None), Verdict::Pass);
    }

    #[test]
    fn error_rate_above_the_limit_fails() {
        assert_eq!(
            fail(judge(&analysis(), &sample(214, 66, 10), None)),
            "error rate 30.8% > 1.0% over 214 requests"
        );
        assert_eq!(
            fail(judge(&analysis(), &sample(100, 31, 10), None)),
            "error rate 31.0% > 1.0% over 100 requests"
        );
    }

    #[test]
    fn error_rate_exactly_at_the_limit_passes() {
        assert_eq!(judge(&analysis(), &sample(100, 1, 10), None), Verdict::Pass);
        assert_eq!(judge(&analysis(), &sample(300, 3, 10), None), Verdict::Pass);
        let mut a = analysis();
        a.max_error_rate = Some(29.0 / 100.0);
        assert_eq!(judge(&a, &sample(100, 29, 10), None), Verdict::Pass);
        a.max_error_rate = Some(0.07);
        assert_eq!(judge(&a, &sample(100, 7, 10), None), Verdict::Pass);
        assert!(matches!(
            judge(&a, &sample(100, 8, 10), None),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn close_values_do_not_read_as_equal() {
        assert_eq!(
            fail(judge(&analysis(), &sample(10_000, 104, 10), None)),
            "error rate 1.04% > 1.0% over 10000 requests"
        );
        let mut a = analysis();
        a.max_error_rate = Some(0.005);
        assert_eq!(
            fail(judge(&a, &sample(1_000, 6, 10), None)),
            "error rate 0.6% > 0.5% over 1000 requests"
        );
    }

    #[test]
    fn p99_above_the_limit_fails_and_at_the_limit_passes() {
        assert_eq!(
            fail(judge(&analysis(), &sample(214, 0, 812), None)),
            "p99 latency 812ms > 500ms over 214 requests"
        );
        assert_eq!(
            judge(&analysis(), &sample(214, 0, 500), None),
            Verdict::Pass
        );
        let just_over = Sample {
            p99: Some(Duration::from_micros(500_400)),
            ..sample(214, 0, 0)
        };
        assert_eq!(
            fail(judge(&analysis(), &just_over, None)),
            "p99 latency 500.4ms > 500ms over 214 requests"
        );
        // No latency measured yet: nothing to judge on latency.
        let unknown = Sample {
            p99: None,
            ..sample(214, 0, 0)
        };
        assert_eq!(judge(&analysis(), &unknown, None), Verdict::Pass);
    }

    #[test]
    fn every_exceeded_limit_is_named() {
        assert_eq!(
            fail(judge(&analysis(), &sample(100, 31, 812), None)),
            "error rate 31.0% > 1.0% over 100 requests; \
             p99 latency 812ms > 500ms over 100 requests"
        );
    }

    fn vs_stable() -> Analysis {
        Analysis {
            max_error_rate_vs_stable: Some(2.0),
            min_requests: 20,
            ..Analysis::default()
        }
    }

    #[test]
    fn ratio_to_stable_fails_above_and_passes_at_the_limit() {
        let stable = sample(1_000, 10, 10);
        assert_eq!(
            fail(judge(&vs_stable(), &sample(100, 4, 10), Some(&stable))),
            "error rate 4.0% is 4.0× stable's 1.0% (max 2.0×)"
        );
        assert_eq!(
            judge(&vs_stable(), &sample(100, 2, 10), Some(&stable)),
            Verdict::Pass
        );
        let mut a = vs_stable();
        a.max_error_rate_vs_stable = Some(3.0);
        assert_eq!(judge(&a, &sample(100, 3, 10), Some(&stable)), Verdict::Pass);
    }

    #[test]
    fn stable_without_errors_makes_any_canary_error_exceed() {
        let clean = sample(1_000, 0, 10);
        assert_eq!(
            fail(judge(&vs_stable(), &sample(100, 1, 10), Some(&clean))),
            "error rate 1.0% while stable's is 0.0% (max 2.0×)"
        );
        assert_eq!(
            judge(&vs_stable(), &sample(100, 0, 10), Some(&clean)),
            Verdict::Pass
        );
    }

    #[test]
    fn ratio_is_skipped_when_stable_has_too_little_traffic_or_none() {
        let thin = sample(19, 0, 10);
        assert_eq!(
            judge(&vs_stable(), &sample(100, 50, 10), Some(&thin)),
            Verdict::Pass
        );
        assert_eq!(
            judge(&vs_stable(), &sample(100, 50, 10), None),
            Verdict::Pass
        );
        let mut a = vs_stable();
        a.min_requests = 0;
        assert_eq!(
            judge(&a, &sample(100, 50, 10), Some(&sample(0, 0, 0))),
            Verdict::Pass
        );
    }

    #[test]
    fn a_verdict_is_described_with_its_figures() {
        let s = sample(214, 2, 3);
        assert_eq!(
            describe(&Verdict::Pass, &s),
            "pass: 214 requests, 2 errors, p99 3ms"
        );
        assert_eq!(
            describe(&Verdict::Pass, &Sample::default()),
            "pass: 0 requests, 0 errors"
        );
        assert_eq!(
            describe(&Verdict::Fail("error rate 9.0% > 1.0%".into()), &s),
            "fail: error rate 9.0% > 1.0%"
        );
        assert_eq!(
            describe(&Verdict::Inconclusive("3 of 20 requests".into()), &s),
            "inconclusive: 3 of 20 requests"
        );
    }

    #[test]
    fn zero_min_requests_judges_even_no_traffic() {
        let mut a = analysis();
        a.min_requests = 0;
        assert_eq!(judge(&a, &Sample::default(), None), Verdict::Pass);
    }

    const S: Millis = 1_000;

    #[test]
    fn aborts_after_failure_limit_consecutive_failures() {
        let a = analysis();
        let mut st = AnalysisState::default();
        let bad = Verdict::Fail("error rate 31.0% > 1.0% over 214 requests".into());
        assert_eq!(st.record(&a, &bad, S), Step::Continue);
        assert_eq!(st.record(&a, &Verdict::Pass, 2 * S), Step::Continue);
        assert_eq!(st.consecutive_failures, 0);
        assert_eq!(st.record(&a, &bad, 3 * S), Step::Continue);
        assert_eq!(
            st.record(&a, &bad, 4 * S),
            Step::Abort(
                "error rate 31.0% > 1.0% over 214 requests (2 consecutive failed checks)".into()
            )
        );
    }

    #[test]
    fn failure_limit_one_or_zero_aborts_at_once_with_the_plain_reason() {
        for limit in [0, 1] {
            let a = Analysis {
                failure_limit: limit,
                ..analysis()
            };
            let mut st = AnalysisState::default();
            assert_eq!(
                st.record(&a, &Verdict::Fail("p99 latency 812ms > 500ms".into()), S),
                Step::Abort("p99 latency 812ms > 500ms".into())
            );
        }
    }

    #[test]
    fn inconclusive_between_failures_keeps_the_streak() {
        let a = analysis();
        let mut st = AnalysisState::default();
        let bad = Verdict::Fail("bad".into());
        st.record(&a, &bad, S);
        st.record(&a, &Verdict::Inconclusive("3 of 20 requests".into()), 2 * S);
        assert!(matches!(st.record(&a, &bad, 3 * S), Step::Abort(_)));
    }

    #[test]
    fn inconclusive_beyond_the_progress_deadline_aborts() {
        let a = analysis(); // progress_deadline 10m
        let mut st = AnalysisState::default();
        let thin = Verdict::Inconclusive("3 of 20 requests".into());
        let t0 = 1_000_000;
        assert_eq!(st.record(&a, &thin, t0), Step::Continue);
        // Exactly at the deadline is still within it.
        assert_eq!(st.record(&a, &thin, t0 + 600 * S), Step::Continue);
        assert_eq!(
            st.record(&a, &thin, t0 + 600 * S + 1),
            Step::Abort("no verdict: only 3 of 20 requests within progress deadline 10m".into())
        );
    }

    #[test]
    fn a_verdict_or_a_new_step_restarts_the_deadline() {
        let a = analysis();
        let mut st = AnalysisState::default();
        let thin = Verdict::Inconclusive("3 of 20 requests".into());
        st.record(&a, &thin, 0);
        st.record(&a, &Verdict::Pass, 500 * S);
        assert_eq!(st.record(&a, &thin, 700 * S), Step::Continue);
        assert_eq!(st.inconclusive_since, Some(700 * S));
        st.step_changed();
        assert_eq!(st.record(&a, &thin, 1_400 * S), Step::Continue);
        assert_eq!(st.inconclusive_since, Some(1_400 * S));
        st.record(&a, &Verdict::Fail("bad".into()), 1_500 * S);
        assert_eq!(st.inconclusive_since, None);
    }
}
