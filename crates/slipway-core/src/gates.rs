//! The gates a created deployment waits at, in the order of docs/concepts.md: deployment window (or
//! freeze) → required approvals → wait timer. [`evaluate`] is called on every engine tick
//! with the current time; it never changes anything, it says what holds the deployment.

use std::fmt;
use std::time::Duration;

use slipway_config::{Environment, Protection, Window};

use crate::civil::{
    MINUTES_PER_DAY, MS_PER_DAY, MS_PER_MINUTE, day_index, duration_millis, format_duration,
    format_minute, minute_of_day, weekday_of_day,
};
use crate::model::{Decision, Deployment, Kind, Millis, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gate {
    Window,
    Approval,
    WaitTimer,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Window => "window",
            Gate::Approval => "approval",
            Gate::WaitTimer => "wait_timer",
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    /// Every gate is satisfied: the deployment may start.
    Open,
    /// Held at `gate`; `until` is when it opens by itself (window, wait timer), `None`
    /// when it takes a person (approval).
    Wait {
        gate: Gate,
        reason: String,
        until: Option<Millis>,
    },
    /// A reviewer said no: the deployment ends `rejected`.
    Rejected { by: String, reason: String },
}

/// Which gate, if any, holds `d` at `now`.
///
/// Approvals counted are the recorded ones: [`check_decision`] vetted each user when the
/// decision was made (a listed reviewer, or an admin), so an admin's approval counts
/// even though admins are not listed. The creator's own approval never counts under
/// `prevent_self_review`. A recorded reject ends the deployment whichever gate it waits at.
pub fn evaluate(env: &Environment, d: &Deployment, now: Millis) -> GateOutcome {
    let p = &env.protection;

    if let Some(r) = d
        .approvals
        .iter()
        .filter(|a| a.decision == Decision::Reject)
        .min_by_key(|a| a.at)
    {
        let reason = match r.comment.as_deref().map(str::trim) {
            Some(c) if !c.is_empty() => format!("rejected by {}: {c}", r.user),
            _ => format!("rejected by {}", r.user),
        };
        return GateOutcome::Rejected {
            by: r.user.clone(),
            reason,
        };
    }

    // A rollback restores a known-good release while something is broken: a freeze must
    // not hold it (docs/concepts.md: an urgent rollback never waits in line).
    if d.kind == Kind::Deploy
        && !p.windows.is_empty()
        && d.force.is_none()
        && !p.windows.iter().any(|w| window_contains(w, now))
    {
        let texts: Vec<&str> = p.windows.iter().map(|w| w.text.as_str()).collect();
        let until = next_window_open(&p.windows, now);
        let reason = match until {
            Some(t) => format!(
                "outside deployment windows ({}); next opens {}",
                texts.join(", "),
                format_minute(t)
            ),
            None => format!(
                "outside deployment windows ({}); none of them ever opens",
                texts.join(", ")
            ),
        };
        return GateOutcome::Wait {
            gate: Gate::Window,
            reason,
            until,
        };
    }

    // A rollback restores a release that already passed these gates; by default it must
    // not wait for people or timers while production is broken.
    if d.kind == Kind::Rollback && !env.rollback_requires_approval {
        return GateOutcome::Open;
    }

    let quorum_at = match approval_state(p, d) {
        Quorum::NotRequired => None,
        Quorum::Met { at } => Some(at),
        Quorum::Short {
            missing,
            candidates,
        } => {
            return GateOutcome::Wait {
                gate: Gate::Approval,
                reason: approval_reason(missing, &candidates, p.reviewers.is_empty()),
                until: None,
            };
        }
    };

    if let Some(timer) = p.wait_timer {
        // The timer runs from when the gate before it was satisfied, so approvers get the
        // whole timer to change their minds (or others to object) after the quorum.
        let start = quorum_at.unwrap_or(d.created_at);
        let end = start.saturating_add(duration_millis(timer));
        if now < end {
            // Round up: "0s left" while still waiting would read as a bug.
            // end > now, so the difference is positive.
            let left = Duration::from_secs((end - now).unsigned_abs().div_ceil(1_000));
            return GateOutcome::Wait {
                gate: Gate::WaitTimer,
                reason: format!("{} left", format_duration(left)),
                until: Some(end),
            };
        }
    }

    GateOutcome::Open
}

enum Quorum {
    NotRequired,
    /// Met by the approval made at `at`.
    Met {
        at: Millis,
    },
    Short {
        missing: u32,
        /// Listed reviewers who could still approve.
        candidates: Vec<String>,
    },
}

/// Approvals needed: `required_approvals`, or one when reviewers are listed without a
/// count (listing reviewers means someone must approve).
fn required_approvals(p: &Protection) -> u32 {
    if p.required_approvals == 0 && !p.reviewers.is_empty() {
        1
    } else {
        p.required_approvals
    }
}

fn approval_state(p: &Protection, d: &Deployment) -> Quorum {
    let required = required_approvals(p);
    if required == 0 {
        return Quorum::NotRequired;
    }
    let counts = |user: &str| !(p.prevent_self_review && user == d.created_by);

    let mut approvals: Vec<_> = d
        .approvals
        .iter()
        .filter(|a| a.decision == Decision::Approve && counts(&a.user))
        .collect();
    approvals.sort_by_key(|a| a.at);
    let mut approvers: Vec<&str> = Vec::new();
    for a in approvals {
        if !approvers.contains(&a.user.as_str()) {
            approvers.push(&a.user);
            if approvers.len() as u64 >= u64::from(required) {
                return Quorum::Met { at: a.at };
            }
        }
    }

    let candidates = p
        .reviewers
        .iter()
        .filter(|r| counts(r) && !approvers.contains(&r.as_str()))
        .cloned()
        .collect();
    // approvers.len() < required ≤ u32::MAX here.
    let missing = required - approvers.len() as u32;
    Quorum::Short {
        missing,
        candidates,
    }
}

fn approval_reason(missing: u32, candidates: &[String], open_to_approvers: bool) -> String {
    let noun = if missing == 1 {
        "approval"
    } else {
        "approvals"
    };
    let from = if !candidates.is_empty() {
        candidates.join(", ")
    } else if open_to_approvers {
        "an approver or admin".to_owned()
    } else {
        // Every listed reviewer has approved or is the creator: only an admin can add one.
        "an admin".to_owned()
    };
    format!("waiting for {missing} more {noun} from {from}")
}

/// Whether `now` falls inside the weekly window `w` (UTC). The start minute is inclusive,
/// the end minute exclusive. A window whose end is before its start runs past midnight and
/// belongs to the day it starts on (`Fri 22:00-02:00` covers Saturday 01:00); an end equal
/// to the start means a whole 24 hours from the start.
pub fn window_contains(w: &Window, now: Millis) -> bool {
    let day = day_index(now);
    let wd = weekday_of_day(day);
    let yesterday = (wd + 6) % 7;
    let m = minute_of_day(now);
    let (start, end) = (w.start_minute, w.end_minute);
    if start < end {
        w.days[wd] && start <= m && m < end
    } else {
        (w.days[wd] && m >= start) || (w.days[yesterday] && m < end)
    }
}

/// The earliest instant at or after `now` when one of `ws` is open: `now` itself when one
/// is open already, else the next window start. `None` when no window ever opens (no day
/// selected, or no windows).
pub fn next_window_open(ws: &[Window], now: Millis) -> Option<Millis> {
    if ws.iter().any(|w| window_contains(w, now)) {
        return Some(now);
    }
    // Outside every window, openness can only begin at a window's start on one of its
    // days, and a weekly pattern repeats within 8 days of today's midnight.
    let today = day_index(now);
    (0..=7)
        .flat_map(|offset| {
            let day = today + offset;
            ws.iter().filter_map(move |w| {
                let starts_today = w.days[weekday_of_day(day)] && w.start_minute < MINUTES_PER_DAY;
                starts_today.then(|| day * MS_PER_DAY + i64::from(w.start_minute) * MS_PER_MINUTE)
            })
        })
        .filter(|&t| t >= now && ws.iter().any(|w| window_contains(w, t)))
        .min()
}

/// Why a user may not record a decision on a deployment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionRefusal {
    #[error("deployment is {status}: only a queued or waiting deployment can be decided")]
    NotWaiting { status: Status },
    #[error("{user} created this deployment and cannot approve it (prevent_self_review)")]
    SelfReview { user: String },
    #[error("{user} is not a reviewer of this environment (reviewers: {})", .reviewers.join(", "))]
    NotReviewer {
        user: String,
        reviewers: Vec<String>,
    },
    #[error("{user} has already decided on this deployment ({})", .decision.as_str())]
    AlreadyDecided { user: String, decision: Decision },
}

impl DecisionRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            DecisionRefusal::NotWaiting { .. } => "not_waiting",
            DecisionRefusal::SelfReview { .. } => "self_review",
            DecisionRefusal::NotReviewer { .. } => "not_reviewer",
            DecisionRefusal::AlreadyDecided { .. } => "already_decided",
        }
    }
}

/// Whether `user` may record `decision` on `d`. Role checks (approver or above) are the
/// caller's; `is_admin` lets an admin decide without being a listed reviewer, but an
/// admin who created the deployment still cannot approve it under `prevent_self_review`.
/// The creator may reject their own deployment: self-review guards approvals only.
pub fn check_decision(
    env: &Environment,
    d: &Deployment,
    user: &str,
    decision: Decision,
    is_admin: bool,
) -> Result<(), DecisionRefusal> {
    let p = &env.protection;
    if !d.status.is_pending() {
        return Err(DecisionRefusal::NotWaiting { status: d.status });
    }
    if decision == Decision::Approve && p.prevent_self_review && user == d.created_by {
        return Err(DecisionRefusal::SelfReview {
            user: user.to_owned(),
        });
    }
    if !p.reviewers.is_empty() && !is_admin && !p.reviewers.iter().any(|r| r == user) {
        return Err(DecisionRefusal::NotReviewer {
            user: user.to_owned(),
            reviewers: p.reviewers.clone(),
        });
    }
    if let Some(prev) = d.approvals.iter().find(|a| a.user == user) {
        return Err(DecisionRefusal::AlreadyDecided {
            user: user.to_owned(),
            decision: prev.decision,
        });
    }
    Ok(())
}
