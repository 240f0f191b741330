//! The four DORA metrics over a window, per app and environment, each with its 2024
//! performance band and the deployments behind it. Pure: the caller hands in the
//! deployment records and the window.
//!
//! What counts (kind `rollback` deployments are remedies, not changes, so they count only
//! as the success that ends a failure):
//! - deployment frequency: `deploy` deployments that reached `success` in the window;
//! - lead time: from a release's commit time to its `success`, median and p90;
//! - change fail rate: of the `deploy` deployments that went out (succeeded, failed,
//!   errored or were rolled back), those that ended in `failure` or `error` (an automatic
//!   rollback ends a deployment `failure`), were aborted in flight by a rollback, or were
//!   rolled back by hand within `rollback_within` of their success;
//! - failed-deployment recovery time: from the failure (for a rollback by hand: from when
//!   the bad release went live) to the next success in that app and environment.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{DeploymentId, Kind, Millis};

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;

/// What the metrics need of one deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct DoraRecord {
    pub id: DeploymentId,
    pub app: String,
    pub environment: String,
    pub kind: Kind,
    pub created_at: Millis,
    pub committed_at: Option<Millis>,
    /// When it entered `success`.
    pub succeeded_at: Option<Millis>,
    /// When it entered `failure` or `error`.
    pub failed_at: Option<Millis>,
    /// When it entered `rolled_back`.
    pub rolled_back_at: Option<Millis>,
}

/// The 2024 DORA performance bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Elite,
    High,
    Medium,
    Low,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Elite => "elite",
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
        }
    }

    /// 2024: elite on demand (daily or more), high daily to weekly, medium weekly to
    /// monthly, low less often.
    pub fn of_frequency(per_day: f64) -> Band {
        if per_day >= 1.0 {
            Band::Elite
        } else if per_day >= 1.0 / 7.0 {
            Band::High
        } else if per_day >= 1.0 / 30.0 {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// 2024: elite under a day, high under a week, medium under a month.
    pub fn of_lead_time(ms: Millis) -> Band {
        if ms < DAY {
            Band::Elite
        } else if ms < 7 * DAY {
            Band::High
        } else if ms < 30 * DAY {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// The 2024 clusters are elite 5%, high 20%, medium 10%, low 40%: medium's rate is
    /// below high's because the clusters were found on all four metrics at once. A band of
    /// one metric must be monotone, so the cluster values in order are the bounds.
    pub fn of_fail_rate(rate: f64) -> Band {
        if rate <= 0.05 {
            Band::Elite
        } else if rate <= 0.10 {
            Band::High
        } else if rate <= 0.20 {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// 2024: elite under an hour, high and medium under a day, low a week or more; the
    /// gap between a day and a week is counted as medium.
    pub fn of_recovery(ms: Millis) -> Band {
        if ms < HOUR {
            Band::Elite
        } else if ms < DAY {
            Band::High
        } else if ms < 7 * DAY {
            Band::Medium
        } else {
            Band::Low
        }
    }
}

/// Records created in `since..=until` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: Millis,
    pub until: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub app: String,
    pub environment: String,
    pub deployment_frequency: Frequency,
    pub lead_time: LeadTime,
    pub change_fail_rate: FailRate,
    pub recovery_time: Recovery,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frequency {
    pub deployments: u64,
    pub per_day: f64,
    pub band: Band,
    pub deployment_ids: Vec<DeploymentId>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadTime {
    pub median_ms: Option<Millis>,
    pub p90_ms: Option<Millis>,
    /// Of the median; none without a deployment that names its commit time.
    pub band: Option<Band>,
    pub deployment_ids: Vec<DeploymentId>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailRate {
    pub failed: u64,
    pub total: u64,
    pub rate: Option<f64>,
    pub band: Option<Band>,
    pub failures: Vec<Failure>,
    pub deployment_ids: Vec<DeploymentId>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub deployment_id: DeploymentId,
    pub cause: Cause,
    pub at: Millis,
    /// The deployment whose success ended it, if one has yet.
    pub recovered_by: Option<DeploymentId>,
    pub recovery_ms: Option<Millis>,
}

/// Why a deployment counts as a failed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// It ended `failure` or `error`, automatic rollbacks included.
    Failure,
    /// It was rolled back while in progress.
    Aborted,
    /// It was rolled back by hand within `rollback_within` of its success.
    ManualRollback,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    pub median_ms: Option<Millis>,
    pub p90_ms: Option<Millis>,
    pub band: Option<Band>,
    /// The failures recovered from (see [`FailRate::failures`] for each one's figures).
    pub deployment_ids: Vec<DeploymentId>,
}

/// The nearest-rank percentile (`p` in 0–1) of sorted values.
fn percentile(sorted: &[Millis], p: f64) -> Option<Millis> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// One report per (app, environment) that has a record in the window, ordered by app
/// then environment.
pub fn reports(records: &[DoraRecord], window: Window, rollback_within: Millis) -> Vec<Report> {
    let mut groups: BTreeMap<(&str, &str), Vec<&DoraRecord>> = BTreeMap::new();
    for r in records {
        if (window.since..=window.until).contains(&r.created_at) {
            groups
                .entry((r.app.as_str(), r.environment.as_str()))
                .or_default()
                .push(r);
        }
    }
    groups
        .into_iter()
        .map(|((app, env), mut group)| {
            group.sort_by_key(|r| (r.created_at, r.id));
            report(app, env, &group, window, rollback_within)
        })
        .collect()
}

fn report(
    app: &str,
    environment: &str,
    group: &[&DoraRecord],
    window: Window,
    rollback_within: Millis,
) -> Report {
    let deploys = || group.iter().filter(|r| r.kind == Kind::Deploy);

    let shipped: Vec<DeploymentId> = deploys()
        .filter(|r| r.succeeded_at.is_some())
        .map(|r| r.id)
        .collect();
    let days = ((window.until - window.since).max(1) as f64) / DAY as f64;
    let per_day = shipped.len() as f64 / days;

    let mut leads: Vec<(Millis, DeploymentId)> = deploys()
        .filter_map(|r| Some(((r.succeeded_at? - r.committed_at?).max(0), r.id)))
        .collect();
    leads.sort_unstable();
    let lead_values: Vec<Millis> = leads.iter().map(|(ms, _)| *ms).collect();
    let lead_median = percentile(&lead_values, 0.5);

    // Every success of the group, in time order, ends the failures before it.
    let mut successes: Vec<(Millis, DeploymentId)> = group
        .iter()
        .filter_map(|r| Some((r.succeeded_at?, r.id)))
        .collect();
    successes.sort_unstable();

    let went_out: Vec<DeploymentId> = deploys()
        .filter(|r| r.succeeded_at.is_some() || r.failed_at.is_some() || r.rolled_back_at.is_some())
        .map(|r| r.id)
        .collect();
    let mut failures = Vec::new();
    for r in deploys() {
        let failed = match (r.failed_at, r.succeeded_at, r.rolled_back_at) {
            (Some(at), _, _) => Some((Cause::Failure, at)),
            (None, None, Some(at)) => Some((Cause::Aborted, at)),
            (None, Some(live), Some(back)) if back - live <= rollback_within => {
                Some((Cause::ManualRollback, live))
            }
            _ => None,
        };
        let Some((cause, at)) = failed else { continue };
        let next = successes.partition_point(|&(t, _)| t <= at);
        let recovered = successes[next..].iter().find(|&&(_, id)| id != r.id);
        failures.push(Failure {
            deployment_id: r.id,
            cause,
            at,
            recovered_by: recovered.map(|&(_, id)| id),
            recovery_ms: recovered.map(|&(t, _)| t - at),
        });
    }
    let rate = (!went_out.is_empty()).then(|| failures.len() as f64 / went_out.len() as f64);

    let mut recoveries: Vec<(Millis, DeploymentId)> = failures
        .iter()
        .filter_map(|f| Some((f.recovery_ms?, f.deployment_id)))
        .collect();
    recoveries.sort_unstable();
    let recovery_values: Vec<Millis> = recoveries.iter().map(|(ms, _)| *ms).collect();
    let recovery_median = percentile(&recovery_values, 0.5);

    Report {
        app: app.to_owned(),
        environment: environment.to_owned(),
        deployment_frequency: Frequency {
            deployments: shipped.len() as u64,
            per_day,
            band: Band::of_frequency(per_day),
            deployment_ids: shipped,
        },
        lead_time: LeadTime {
            median_ms: lead_median,
            p90_ms: percentile(&lead_values, 0.9),
            band: lead_median.map(Band::of_lead_time),
            deployment_ids: leads.iter().map(|(_, id)| *id).collect(),
        },
        change_fail_rate: FailRate {
            failed: failures.len() as u64,
            total: went_out.len() as u64,
            rate,
            band: rate.map(Band::of_fail_rate),
            failures,
            deployment_ids: went_out,
        },
        recovery_time: Recovery {
            median_ms: recovery_median,
            p90_ms: percentile(&recovery_values, 0.9),
            band: recovery_median.map(Band::of_recovery),
            deployment_ids: recoveries.iter().map(|(_, id)| *id).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;
    const MIN: Millis = 60_000;

    struct R(DoraRecord);

    impl R {
        fn new(id: DeploymentId, created: Millis) -> R {
            R(DoraRecord {
                id,
                app: "web".into(),
                environment: "production".into(),
                kind: Kind::Deploy,
                created_at: T0 + created,
                committed_at: None,
                succeeded_at: None,
                failed_at: None,
                rolled_back_at: None,
            })
        }
        fn committed(mut self, at: Millis) -> R {
            self.0.committed_at = Some(T0 + at);
            self
        }
        fn ok(mut self, at: Millis) -> R {
            self.0.succeeded_at = Some(T0 + at);
            self
        }
        fn failed(mut self, at: Millis) -> R {
            self.0.failed_at = Some(T0 + at);
            self
        }
        fn rolled_back(mut self, at: Millis) -> R {
            self.0.rolled_back_at = Some(T0 + at);
            self
        }
        fn rollback(mut self) -> R {
            self.0.kind = Kind::Rollback;
            self
        }
        fn env(mut self, env: &str) -> R {
            self.0.environment = env.into();
            self
        }
    }

    /// Ten days of production, worked out by hand:
    /// 1 ok, committed 2h before its success; 2 ok, lead 30 min; 3 failed at +3d (its
    ///   canary was rolled back automatically), 4 succeeded at +3d 20min (recovery 20 min);
    /// 5 ok at +5d (lead 1 day), rolled back by hand 2h later by rollback 6 (recovery 2h
    ///   from +5d); 7 ok with lead 3 days, rolled back two days later (outside the 1-day
    ///   limit: no failure); 8 rejected (never went out); 9 aborted in flight by a rollback
    ///   at +9d, nothing succeeds after it (not recovered).
    fn history() -> Vec<DoraRecord> {
        let h = HOUR;
        let d = DAY;
        vec![
            R::new(1, 0).committed(-2 * h).ok(0).0,
            R::new(2, d).committed(d - 30 * MIN).ok(d).0,
            R::new(3, 3 * d - h)
                .committed(3 * d - 2 * h)
                .failed(3 * d)
                .0,
            R::new(4, 3 * d + 10 * MIN)
                .committed(3 * d - 2 * h)
                .ok(3 * d + 20 * MIN)
                .0,
            R::new(5, 5 * d - h)
                .committed(4 * d)
                .ok(5 * d)
                .rolled_back(5 * d + 2 * h)
                .0,
            R::new(6, 5 * d + h).rollback().ok(5 * d + 2 * h).0,
            R::new(7, 6 * d)
                .committed(3 * d)
                .ok(6 * d)
                .rolled_back(8 * d)
                .0,
            R::new(8, 7 * d).committed(6 * d).0,
            R::new(9, 9 * d)
                .committed(8 * d)
                .rolled_back(9 * d + 5 * MIN)
                .0,
            // Another environment, and one outside the window: neither changes production.
            R::new(10, d).committed(0).ok(d).env("staging").0,
            R::new(11, -d).committed(-2 * d).failed(-d).0,
        ]
    }

    fn production() -> Report {
        let window = Window {
            since: T0,
            until: T0 + 10 * DAY,
        };
        let all = reports(&history(), window, DAY);
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[1].app.as_str(), all[1].environment.as_str()),
            ("web", "staging")
        );
        all.into_iter().next().unwrap()
    }

    #[test]
    fn deployment_frequency_counts_successful_changes_per_day() {
        let r = production();
        assert_eq!(r.deployment_frequency.deployment_ids, vec![1, 2, 4, 5, 7]);
        assert!((r.deployment_frequency.per_day - 0.5).abs() < 1e-9);
        assert_eq!(r.deployment_frequency.band, Band::High);
    }

    #[test]
    fn lead_time_median_and_p90() {
        let r = production();
        // Leads: 30 min (2), 2h (1), 2h20 (4), 1 day (5), 3 days (7).
        assert_eq!(r.lead_time.deployment_ids, vec![2, 1, 4, 5, 7]);
        assert_eq!(r.lead_time.median_ms, Some(2 * HOUR + 20 * MIN));
        assert_eq!(r.lead_time.p90_ms, Some(3 * DAY));
        assert_eq!(r.lead_time.band, Some(Band::Elite));
    }

    #[test]
    fn change_fail_rate_counts_failures_aborts_and_quick_manual_rollbacks() {
        let r = production();
        let f = &r.change_fail_rate;
        assert_eq!(f.deployment_ids, vec![1, 2, 3, 4, 5, 7, 9]);
        let causes: Vec<_> = f
            .failures
            .iter()
            .map(|x| (x.deployment_id, x.cause))
            .collect();
        assert_eq!(
            causes,
            vec![
                (3, Cause::Failure),
                (5, Cause::ManualRollback),
                (9, Cause::Aborted)
            ]
        );
        assert_eq!((f.failed, f.total), (3, 7));
        assert!((f.rate.unwrap() - 3.0 / 7.0).abs() < 1e-9);
        assert_eq!(f.band, Some(Band::Low));
        // A longer limit makes deployment 7's rollback two days later a failure too.
        let window = Window {
            since: T0,
            until: T0 + 10 * DAY,
        };
        let longer = reports(&history(), window, 3 * DAY);
        assert_eq!(longer[0].change_fail_rate.failed, 4);
    }

    #[test]
    fn recovery_time_runs_from_the_failure_to_the_next_success() {
        let r = production();
        let f = &r.change_fail_rate.failures;
        assert_eq!(
            (f[0].recovered_by, f[0].recovery_ms),
            (Some(4), Some(20 * MIN))
        );
        assert_eq!(
            (f[1].recovered_by, f[1].recovery_ms),
            (Some(6), Some(2 * HOUR))
        );
        assert_eq!((f[2].recovered_by, f[2].recovery_ms), (None, None));
        assert_eq!(r.recovery_time.deployment_ids, vec![3, 5]);
        assert_eq!(r.recovery_time.median_ms, Some(20 * MIN));
        assert_eq!(r.recovery_time.p90_ms, Some(2 * HOUR));
        assert_eq!(r.recovery_time.band, Some(Band::Elite));
    }

    #[test]
    fn an_empty_window_has_no_figures_but_a_low_frequency() {
        let window = Window {
            since: T0 + 100 * DAY,
            until: T0 + 130 * DAY,
        };
        assert!(reports(&history(), window, DAY).is_empty());
        let only_rejected = vec![R::new(1, 0).0];
        let r = &reports(
            &only_rejected,
            Window {
                since: T0,
                until: T0 + DAY,
            },
            DAY,
        )[0];
        assert_eq!(r.deployment_frequency.band, Band::Low);
        assert_eq!((r.lead_time.median_ms, r.lead_time.band), (None, None));
        assert_eq!(
            (r.change_fail_rate.rate, r.change_fail_rate.band),
            (None, None)
        );
        assert_eq!(r.recovery_time.median_ms, None);
    }

    #[test]
    fn band_edges() {
        assert_eq!(Band::of_frequency(1.0), Band::Elite);
        assert_eq!(Band::of_frequency(0.99), Band::High);
        assert_eq!(Band::of_frequency(1.0 / 7.0), Band::High);
        assert_eq!(Band::of_frequency(1.0 / 30.0), Band::Medium);
        assert_eq!(Band::of_frequency(0.01), Band::Low);
        assert_eq!(Band::of_lead_time(DAY - 1), Band::Elite);
        assert_eq!(Band::of_lead_time(DAY), Band::High);
        assert_eq!(Band::of_lead_time(29 * DAY), Band::Medium);
        assert_eq!(Band::of_lead_time(30 * DAY), Band::Low);
        assert_eq!(Band::of_fail_rate(0.05), Band::Elite);
        assert_eq!(Band::of_fail_rate(0.10), Band::High);
        assert_eq!(Band::of_fail_rate(0.20), Band::Medium);
        assert_eq!(Band::of_fail_rate(0.40), Band::Low);
        assert_eq!(Band::of_recovery(HOUR - 1), Band::Elite);
        assert_eq!(Band::of_recovery(HOUR), Band::High);
        assert_eq!(Band::of_recovery(DAY), Band::Medium);
        assert_eq!(Band::of_recovery(7 * DAY), Band::Low);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.9), Some(7));
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(percentile(&(1..=10).collect::<Vec<_>>(), 0.9), Some(9));
    }
}
