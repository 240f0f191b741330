//! The gates a deployment waits at: windows, approvals, wait timer, and who may decide.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
// The config's `Strategy` shadows proptest's; its methods are still needed.
use proptest::strategy::Strategy as _;
use slipway_config::{Environment, Protection, Strategy, Window};
use slipway_core::civil::{MS_PER_DAY, at};
use slipway_core::gates::*;
use slipway_core::model::{
    Approval, Decision, Deployment, Force, Kind, Millis, Phase, Release, Status,
};

const MIN: i64 = 60_000;

/// Monday = 0 … Sunday = 6.
fn window(text: &str, days: &[usize], start: (u32, u32), end: (u32, u32)) -> Window {
    let mut mask = [false; 7];
    for &d in days {
        mask[d] = true;
    }
    Window {
        text: text.into(),
        days: mask,
        start_minute: start.0 * 60 + start.1,
        end_minute: end.0 * 60 + end.1,
    }
}

fn mon_thu() -> Window {
    window("Mon-Thu 09:00-16:00 UTC", &[0, 1, 2, 3], (9, 0), (16, 0))
}

fn env(protection: Protection) -> Environment {
    Environment {
        listen: "127.0.0.1:8082".parse().unwrap(),
        strategy: Strategy::Recreate,
        variables: BTreeMap::new(),
        secrets: BTreeMap::new(),
        require_config: vec![],
        requires: vec![],
        protection,
        allow_mutable_tags: false,
        keep_releases: 3,
        rollback_requires_approval: false,
        drain_timeout: Duration::from_secs(30),
        watch: None,
    }
}

fn reviewers(names: &[&str]) -> Protection {
    Protection {
        reviewers: names.iter().map(|s| s.to_string()).collect(),
        required_approvals: 1,
        prevent_self_review: true,
        ..Protection::default()
    }
}

// 2026-11-23 is a Monday.
fn created() -> Millis {
    at(2026, 11, 23, 10, 0)
}

fn deployment(status: Status) -> Deployment {
    Deployment {
        id: 7,
        app: "web".into(),
        environment: "production".into(),
        release: Release {
            version: "v2".into(),
            commit: None,
            git_ref: Some("main".into()),
            committed_at: None,
            digest: None,
        },
        kind: Kind::Deploy,
        status,
        created_by: "carol".into(),
        created_at: created(),
        updated_at: created(),
        rolled_back_from: None,
        force: None,
        phase: Phase::Pending,
        step: 0,
        statuses: vec![],
        approvals: vec![],
    }
}

fn decide(d: &mut Deployment, user: &str, decision: Decision, at: Millis) {
    d.approvals.push(Approval {
        user: user.into(),
        decision,
        comment: None,
        at,
    });
}

fn wait_gate(o: &GateOutcome) -> Option<Gate> {
    match o {
        GateOutcome::Wait { gate, .. } => Some(*gate),
        _ => None,
    }
}

// === windows ===

#[test]
fn window_start_is_inclusive_and_end_exclusive() {
    let w = mon_thu();
    let mon = |h, m| at(2026, 11, 23, h, m);
    assert!(!window_contains(&w, mon(9, 0) - 1));
    assert!(window_contains(&w, mon(9, 0)));
    assert!(window_contains(&w, mon(15, 59) + 59_999));
    assert!(!window_contains(&w, mon(16, 0)));
    // Friday to Sunday are closed all day.
    for day in 27..=29 {
        assert!(!window_contains(&w, at(2026, 11, day, 10, 0)), "day {day}");
    }
}

#[test]
fn window_wrapping_past_midnight_belongs_to_its_start_day() {
    let w = window("Fri 22:00-02:00 UTC", &[4], (22, 0), (2, 0));
    // 2026-11-27 is a Friday.
    assert!(!window_contains(&w, at(2026, 11, 27, 21, 59)));
    assert!(window_contains(&w, at(2026, 11, 27, 22, 0)));
    assert!(window_contains(&w, at(2026, 11, 27, 23, 59)));
    assert!(window_contains(&w, at(2026, 11, 28, 0, 0)));
    assert!(window_contains(&w, at(2026, 11, 28, 1, 59)));
    assert!(!window_contains(&w, at(2026, 11, 28, 2, 0)));
    // Friday's early hours belong to Thursday's window, which is not selected.
    assert!(!window_contains(&w, at(2026, 11, 27, 1, 0)));
    // Saturday 22:00 is not a start day.
    assert!(!window_contains(&w, at(2026, 11, 28, 22, 0)));
}

#[test]
fn wrap_across_sunday_into_monday() {
    let w = window("Sun 23:00-01:00 UTC", &[6], (23, 0), (1, 0));
    assert!(window_contains(&w, at(2026, 11, 29, 23, 30)));
    assert!(window_contains(&w, at(2026, 11, 30, 0, 30)));
    assert!(!window_contains(&w, at(2026, 11, 30, 1, 0)));
}

#[test]
fn window_until_midnight_and_whole_day() {
    let w = window("Mon 20:00-24:00 UTC", &[0], (20, 0), (24, 0));
    assert!(window_contains(&w, at(2026, 11, 23, 23, 59)));
    assert!(!window_contains(&w, at(2026, 11, 24, 0, 0)));
    let all = window("Tue 00:00-00:00 UTC", &[1], (0, 0), (0, 0));
    assert!(window_contains(&w, at(2026, 11, 23, 20, 0)));
    assert!(window_contains(&all, at(2026, 11, 24, 0, 0)));
    assert!(window_contains(&all, at(2026, 11, 24, 23, 59)));
    assert!(!window_contains(&all, at(2026, 11, 25, 0, 0)));
}

#[test]
fn next_opening_same_day_next_day_and_across_the_week() {
    let ws = [mon_thu()];
    // Monday before opening → Monday 09:00.
    assert_eq!(
        next_window_open(&ws, at(2026, 11, 23, 8, 59)),
        Some(at(2026, 11, 23, 9, 0))
    );
    // Wednesday after closing → Thursday 09:00.
    assert_eq!(
        next_window_open(&ws, at(2026, 11, 25, 16, 0)),
        Some(at(2026, 11, 26, 9, 0))
    );
    // Thursday after closing → next Monday 09:00, across the weekend.
    assert_eq!(
        next_window_open(&ws, at(2026, 11, 26, 17, 0)),
        Some(at(2026, 11, 30, 9, 0))
    );
    // A Monday-only window just closed → the Monday a week later.
    let mon = [window("Mon 09:00-10:00 UTC", &[0], (9, 0), (10, 0))];
    assert_eq!(
        next_window_open(&mon, at(2026, 11, 23, 10, 0)),
        Some(at(2026, 11, 30, 9, 0))
    );
    // Inside a window: open now.
    let now = at(2026, 11, 23, 12, 34) + 5;
    assert_eq!(next_window_open(&ws, now), Some(now));
    // The earliest of several windows wins.
    let two = [
        mon_thu(),
        window("Sat 10:00-12:00 UTC", &[5], (10, 0), (12, 0)),
    ];
    assert_eq!(
        next_window_open(&two, at(2026, 11, 27, 9, 0)),
        Some(at(2026, 11, 28, 10, 0))
    );
}

#[test]
fn no_day_selected_never_opens() {
    let never = [window("never", &[], (9, 0), (10, 0))];
    assert_eq!(next_window_open(&never, created()), None);
    assert_eq!(next_window_open(&[], created()), None);
}

#[test]
fn outside_the_window_waits_with_next_opening() {
    let e = env(Protection {
        windows: vec![mon_thu()],
        ..Protection::default()
    });
    let d = deployment(Status::Queued);
    // Wednesday 17:00.
    let now = at(2026, 11, 25, 17, 0);
    assert_eq!(
        evaluate(&e, &d, now),
        GateOutcome::Wait {
            gate: Gate::Window,
            reason: "outside deployment windows (Mon-Thu 09:00-16:00 UTC); next opens \
                     2026-11-26T09:00Z"
                .into(),
            until: Some(at(2026, 11, 26, 9, 0)),
        }
    );
    assert_eq!(evaluate(&e, &d, at(2026, 11, 26, 9, 0)), GateOutcome::Open);
}

#[test]
fn force_overrides_the_window_but_not_approvals() {
    let mut p = reviewers(&["alice"]);
    p.windows = vec![mon_thu()];
    let e = env(p);
    let mut d = deployment(Status::Queued);
    d.force = Some(Force {
        by: "admin".into(),
        reason: "hotfix".into(),
    });
    let saturday = at(2026, 11, 28, 3, 0);
    assert_eq!(wait_gate(&evaluate(&e, &d, saturday)), Some(Gate::Approval));
    decide(&mut d, "alice", Decision::Approve, saturday);
    assert_eq!(evaluate(&e, &d, saturday), GateOutcome::Open);
}

#[test]
fn window_gate_comes_before_approvals() {
    let mut p = reviewers(&["alice"]);
    p.windows = vec![mon_thu()];
    let e = env(p);
    let d = deployment(Status::Waiting);
    assert_eq!(
        wait_gate(&evaluate(&e, &d, at(2026, 11, 28, 3, 0))),
        Some(Gate::Window)
    );
    assert_eq!(
        wait_gate(&evaluate(&e, &d, at(2026, 11, 23, 10, 0))),
        Some(Gate::Approval)
    );
}

// === approvals ===

#[test]
fn waits_for_approval_naming_eligible_reviewers() {
    let e = env(reviewers(&["alice", "bob", "carol"]));
    let d = deployment(Status::Waiting);
    // carol created it and may not self-review, so she is not named.
    assert_eq!(
        evaluate(&e, &d, created()),
        GateOutcome::Wait {
            gate: Gate::Approval,
            reason: "waiting for 1 more approval from alice, bob".into(),
            until: None,
        }
    );
}

#[test]
fn self_approval_does_not_count() {
    let e = env(reviewers(&["alice", "carol"]));
    let mut d = deployment(Status::Waiting);
    decide(&mut d, "carol", Decision::Approve, created() + MIN);
    assert_eq!(
        wait_gate(&evaluate(&e, &d, created() + 2 * MIN)),
        Some(Gate::Approval)
    );
    // Without prevent_self_review the creator's approval counts.
    let mut p = reviewers(&["alice", "carol"]);
    p.prevent_self_review = false;
    assert_eq!(
        evaluate(&env(p), &d, created() + 2 * MIN),
        GateOutcome::Open
    );
}

#[test]
fn quorum_counts_distinct_approvers() {
    let mut p = reviewers(&["alice", "bob", "dave"]);
    p.required_approvals = 2;
    let e = env(p);
    let mut d = deployment(Status::Waiting);
    decide(&mut d, "alice", Decision::Approve, created() + MIN);
    decide(&mut d, "alice", Decision::Approve, created() + 2 * MIN);
    match evaluate(&e, &d, created() + 3 * MIN) {
        GateOutcome::Wait { gate, reason, .. } => {
            assert_eq!(gate, Gate::Approval);
            assert_eq!(reason, "waiting for 1 more approval from bob, dave");
        }
        other => panic!("{other:?}"),
    }
    decide(&mut d, "dave", Decision::Approve, created() + 4 * MIN);
    assert_eq!(evaluate(&e, &d, created() + 4 * MIN), GateOutcome::Open);
}

#[test]
fn several_missing_approvals_are_plural() {
    let mut p = reviewers(&["alice", "bob"]);
    p.required_approvals = 2;
    match evaluate(&env(p), &deployment(Status::Waiting), created()) {
        GateOutcome::Wait { reason, .. } => {
            assert_eq!(reason, "waiting for 2 more approvals from alice, bob")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn zero_required_with_reviewers_means_one() {
    let mut p = reviewers(&["alice"]);
    p.required_approvals = 0;
    let e = env(p);
    let mut d = deployment(Status::Waiting);
    assert_eq!(
        wait_gate(&evaluate(&e, &d, created())),
        Some(Gate::Approval)
    );
    decide(&mut d, "alice", Decision::Approve, created());
    assert_eq!(evaluate(&e, &d, created()), GateOutcome::Open);
}

#[test]
fn required_approvals_without_reviewers_take_any_approver() {
    let e = env(Protection {
        required_approvals: 1,
        ..Protection::default()
    });
    let mut d = deployment(Status::Waiting);
    match evaluate(&e, &d, created()) {
        GateOutcome::Wait { reason, .. } => {
            assert_eq!(
                reason,
                "waiting for 1 more approval from an approver or admin"
            )
        }
        other => panic!("{other:?}"),
    }
    decide(&mut d, "zed", Decision::Approve, created());
    assert_eq!(evaluate(&e, &d, created()), GateOutcome::Open);
}

#[test]
fn when_no_listed_reviewer_can_approve_only_an_admin_can() {
    // carol is the only reviewer and created the deployment.
    let mut d = deployment(Status::Waiting);
    match evaluate(&env(reviewers(&["carol"])), &d, created()) {
        GateOutcome::Wait { reason, .. } => {
            assert_eq!(reason, "waiting for 1 more approval from an admin")
        }
        other => panic!("{other:?}"),
    }
    // An admin's recorded approval (check_decision let it through) completes the quorum.
    decide(&mut d, "root", Decision::Approve, created());
    assert_eq!(
        evaluate(&env(reviewers(&["carol"])), &d, created()),
        GateOutcome::Open
    );
}

#[test]
fn no_protection_is_open() {
    let e = env(Protection::default());
    assert_eq!(
        evaluate(&e, &deployment(Status::Queued), created()),
        GateOutcome::Open
    );
}

#[test]
fn a_reject_ends_the_deployment_rejected() {
    let mut p = reviewers(&["alice", "bob"]);
    p.required_approvals = 2;
    p.windows = vec![mon_thu()];
    let e = env(p);
    let mut d = deployment(Status::Waiting);
    decide(&mut d, "alice", Decision::Approve, created() + MIN);
    d.approvals.push(Approval {
        user: "bob".into(),
        decision: Decision::Reject,
        comment: Some("error budget exhausted".into()),
        at: created() + 2 * MIN,
    });
    let expected = GateOutcome::Rejected {
        by: "bob".into(),
        reason: "rejected by bob: error budget exhausted".into(),
    };
    assert_eq!(evaluate(&e, &d, created() + 3 * MIN), expected);
    // Also while it waits for the window: a "no" is final.
    assert_eq!(evaluate(&e, &d, at(2026, 11, 28, 3, 0)), expected);
}

#[test]
fn reject_without_comment() {
    let e = env(reviewers(&["alice"]));
    let mut d = deployment(Status::Waiting);
    decide(&mut d, "alice", Decision::Reject, created());
    assert_eq!(
        evaluate(&e, &d, created()),
        GateOutcome::Rejected {
            by: "alice".into(),
            reason: "rejected by alice".into()
        }
    );
}

// === wait timer ===

#[test]
fn wait_timer_runs_from_creation_without_approvals() {
    let e = env(Protection {
        wait_timer: Some(Duration::from_secs(300)),
        ..Protection::default()
    });
    let d = deployment(Status::Queued);
    let end = created() + 5 * MIN;
    assert_eq!(
        evaluate(&e, &d, created() + 30_000),
        GateOutcome::Wait {
            gate: Gate::WaitTimer,
            reason: "4m 30s left".into(),
            until: Some(end),
        }
    );
    // 1ms before the end rounds up to a second, never "0s".
    match evaluate(&e, &d, end - 1) {
        GateOutcome::Wait { reason, .. } => assert_eq!(reason, "1s left"),
        other => panic!("{other:?}"),
    }
    assert_eq!(evaluate(&e, &d, end), GateOutcome::Open);
}

#[test]
fn wait_timer_runs_from_the_approval_that_completed_the_quorum() {
    let mut p = reviewers(&["alice", "bob", "dave"]);
    p.required_approvals = 2;
    p.wait_timer = Some(Duration::from_secs(300));
    let e = env(p);
    let mut d = deployment(Status::Waiting);
    decide(&mut d, "alice", Decision::Approve, created() + MIN);
    decide(&mut d, "bob", Decision::Approve, created() + 20 * MIN);
    // A later, surplus approval does not restart the timer.
    decide(&mut d, "dave", Decision::Approve, created() + 22 * MIN);
    let quorum = created() + 20 * MIN;
    assert_eq!(
        evaluate(&e, &d, quorum + MIN),
        GateOutcome::Wait {
            gate: Gate::WaitTimer,
            reason: "4m left".into(),
            until: Some(quorum + 5 * MIN),
        }
    );
    assert_eq!(evaluate(&e, &d, quorum + 5 * MIN), GateOutcome::Open);
}

#[test]
fn approvals_recorded_out_of_order_use_the_quorum_time() {
    let mut p = reviewers(&["alice", "bob"]);
    p.required_approvals = 2;
    p.wait_timer = Some(Duration::from_secs(60));
    let e = env(p);
    let mut d = deployment(Status::Waiting);
    decide(&mut d, "bob", Decision::Approve, created() + 10 * MIN);
    decide(&mut d, "alice", Decision::Approve, created() + 2 * MIN);
    let outcome = evaluate(&e, &d, created() + 10 * MIN);
    assert_eq!(
        outcome,
        GateOutcome::Wait {
            gate: Gate::WaitTimer,
            reason: "1m left".into(),
            until: Some(created() + 11 * MIN),
        }
    );
}

// === rollbacks ===

#[test]
fn rollback_skips_approvals_and_wait_timer_by_default() {
    let mut p = reviewers(&["alice"]);
    p.wait_timer = Some(Duration::from_secs(300));
    let mut e = env(p);
    let mut d = deployment(Status::Queued);
    d.kind = Kind::Rollback;
    assert_eq!(evaluate(&e, &d, created()), GateOutcome::Open);

    e.rollback_requires_approval = true;
    assert_eq!(
        wait_gate(&evaluate(&e, &d, created())),
        Some(Gate::Approval)
    );
    decide(&mut d, "alice", Decision::Approve, created() + MIN);
    assert_eq!(
        wait_gate(&evaluate(&e, &d, created() + MIN)),
        Some(Gate::WaitTimer)
    );
}

#[test]
fn an_urgent_rollback_does_not_wait_for_a_window() {
    let e = env(Protection {
        windows: vec![mon_thu()],
        ..Protection::default()
    });
    let saturday = at(2026, 11, 28, 3, 0);
    let mut d = deployment(Status::Queued);
    assert_eq!(wait_gate(&evaluate(&e, &d, saturday)), Some(Gate::Window));
    d.kind = Kind::Rollback;
    assert_eq!(evaluate(&e, &d, saturday), GateOutcome::Open);
}

// === decisions ===

#[test]
fn decisions_on_a_started_or_finished_deployment_are_refused() {
    let e = env(reviewers(&["alice"]));
    for status in Status::ALL.into_iter().filter(|s| !s.is_pending()) {
        let err =
            check_decision(&e, &deployment(status), "alice", Decision::Approve, false).unwrap_err();
        assert_eq!(err, DecisionRefusal::NotWaiting { status });
        assert_eq!(err.code(), "not_waiting");
    }
    for status in [Status::Queued, Status::Waiting] {
        assert_eq!(
            check_decision(&e, &deployment(status), "alice", Decision::Approve, false),
            Ok(())
        );
    }
}

#[test]
fn creator_cannot_approve_even_as_admin() {
    let e = env(reviewers(&["alice", "carol"]));
    let d = deployment(Status::Waiting);
    for is_admin in [false, true] {
        let err = check_decision(&e, &d, "carol", Decision::Approve, is_admin).unwrap_err();
        assert_eq!(err.code(), "self_review");
        assert_eq!(
            err.to_string(),
            "carol created this deployment and cannot approve it (prevent_self_review)"
        );
    }
    // Withdrawing one's own deployment by rejecting it is not a self-review.
    assert_eq!(
        check_decision(&e, &d, "carol", Decision::Reject, false),
        Ok(())
    );
}

#[test]
fn non_reviewers_are_refused_unless_admin() {
    let e = env(reviewers(&["alice", "bob"]));
    let d = deployment(Status::Waiting);
    let err = check_decision(&e, &d, "mallory", Decision::Approve, false).unwrap_err();
    assert_eq!(err.code(), "not_reviewer");
    assert_eq!(
        err.to_string(),
        "mallory is not a reviewer of this environment (reviewers: alice, bob)"
    );
    assert_eq!(
        check_decision(&e, &d, "root", Decision::Approve, true),
        Ok(())
    );
    // With no reviewers listed, any approver (a role the caller checked) may decide.
    let open = env(Protection {
        required_approvals: 1,
        ..Protection::default()
    });
    assert_eq!(
        check_decision(&open, &d, "mallory", Decision::Approve, false),
        Ok(())
    );
}

#[test]
fn a_second_decision_by_the_same_user_is_refused() {
    let e = env(reviewers(&["alice", "bob"]));
    let mut d = deployment(Status::Waiting);
    decide(&mut d, "alice", Decision::Approve, created());
    let err = check_decision(&e, &d, "alice", Decision::Reject, false).unwrap_err();
    assert_eq!(
        err,
        DecisionRefusal::AlreadyDecided {
            user: "alice".into(),
            decision: Decision::Approve
        }
    );
    assert_eq!(err.code(), "already_decided");
    assert_eq!(
        err.to_string(),
        "alice has already decided on this deployment (approve)"
    );
    assert_eq!(
        check_decision(&e, &d, "bob", Decision::Approve, false),
        Ok(())
    );
}

#[test]
fn gate_names_are_stable() {
    assert_eq!(
        [Gate::Window, Gate::Approval, Gate::WaitTimer].map(Gate::as_str),
        ["window", "approval", "wait_timer"]
    );
}

// === properties ===

fn arb_window() -> impl proptest::strategy::Strategy<Value = Window> {
    (any::<[bool; 7]>(), 0u32..1440, 0u32..=1440).prop_map(|(days, start, end)| Window {
        text: "w".into(),
        days,
        start_minute: start,
        end_minute: end,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn next_opening_is_open_and_no_earlier_minute_is(
        ws in proptest::collection::vec(arb_window(), 1..3),
        // 2020-01-01 .. 2030-01-01, at any millisecond.
        now in 1_577_836_800_000i64..1_893_456_000_000i64,
    ) {
        let next = next_window_open(&ws, now);
        let open = |t: Millis| ws.iter().any(|w| window_contains(w, t));
        let first_minute = now.div_euclid(MIN) * MIN + MIN;
        match next {
            Some(t) => {
                prop_assert!(t >= now);
                prop_assert!(open(t));
                if t > now {
                    prop_assert!(!open(now));
                }
                let mut m = first_minute;
                while m < t {
                    prop_assert!(!open(m), "open at {} before {}", m, t);
                    m += MIN;
                }
            }
            None => {
                let mut m = first_minute;
                while m < now + 8 * MS_PER_DAY {
                    prop_assert!(!open(m), "open at {} but None", m);
                    m += MIN;
                }
            }
        }
    }

    #[test]
    fn a_window_is_constant_within_a_minute(
        w in arb_window(),
        minute in 27_000_000i64..32_000_000i64,
        offset in 0i64..MIN,
    ) {
        let start = minute * MIN;
        prop_assert_eq!(window_contains(&w, start), window_contains(&w, start + offset));
    }
}
