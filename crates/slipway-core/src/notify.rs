//! What a notification says: which event (docs/config.md `notifications:`) a deployment's
//! status change, a reviewer's decision or a pipeline run's start and end is, and the
//! deployment as it was when the event happened.

use slipway_config::NotificationEvent;

use crate::model::{Decision, Deployment, Millis, Phase, Status};

/// The start or end of a pipeline run, as the outbox keeps it for notifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEventKind {
    Started,
    Succeeded,
    Failed,
}

impl RunEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunEventKind::Started => "started",
            RunEventKind::Succeeded => "succeeded",
            RunEventKind::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RunEventKind> {
        Some(match s {
            "started" => RunEventKind::Started,
            "succeeded" => RunEventKind::Succeeded,
            "failed" => RunEventKind::Failed,
            _ => return None,
        })
    }

    /// The run's status once this happened (the run statuses of docs/concepts.md).
    pub fn run_status(self) -> &'static str {
        match self {
            RunEventKind::Started => "in_progress",
            RunEventKind::Succeeded => "success",
            RunEventKind::Failed => "failure",
        }
    }
}

/// A pipeline run started or ended: what a run appends to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    pub run_id: i64,
    pub pipeline: String,
    pub kind: RunEventKind,
    /// The commit the run builds, when it has one.
    pub commit: Option<String>,
    pub at: Millis,
    pub actor: String,
    pub reason: String,
}

/// The event a deployment entering `status` is; `None` for the changes no event names
/// (queued, cancelled, inactive).
pub fn status_event(status: Status) -> Option<NotificationEvent> {
    Some(match status {
        Status::Waiting => NotificationEvent::DeploymentWaiting,
        Status::InProgress => NotificationEvent::DeploymentStarted,
        Status::Success => NotificationEvent::DeploymentSucceeded,
        Status::Failure | Status::Error => NotificationEvent::DeploymentFailed,
        Status::Rejected => NotificationEvent::DeploymentRejected,
        Status::RolledBack => NotificationEvent::DeploymentRolledBack,
        Status::Queued | Status::Cancelled | Status::Inactive => return None,
    })
}

/// The event a reviewer's decision is. A rejection is told once, by the `rejected`
/// status change that always follows it (also when a restart came in between).
pub fn decision_event(decision: Decision) -> Option<NotificationEvent> {
    match decision {
        Decision::Approve => Some(NotificationEvent::DeploymentApproved),
        Decision::Reject => None,
    }
}

pub fn run_event(kind: RunEventKind) -> NotificationEvent {
    match kind {
        RunEventKind::Started => NotificationEvent::RunStarted,
        RunEventKind::Succeeded => NotificationEvent::RunSucceeded,
        RunEventKind::Failed => NotificationEvent::RunFailed,
    }
}

/// `d` as it was once it had its first `statuses` status changes and `approvals`
/// decisions: a notification delivered late still shows the deployment of its event, not
/// one that has moved on. What the history does not keep (the canary's step, the digest)
/// stays as it is now.
pub fn as_it_was(mut d: Deployment, statuses: usize, approvals: usize) -> Deployment {
    // A deployment always had its first status, `queued`.
    d.statuses.truncate(statuses.max(1));
    d.approvals.truncate(approvals);
    let Some(last) = d.statuses.last() else {
        return d;
    };
    let was = last.status;
    let changed: Millis = d
        .approvals
        .iter()
        .map(|a| a.at)
        .chain(std::iter::once(last.at))
        .max()
        .unwrap_or(last.at);
    d.phase = if was.is_pending() {
        Phase::Pending
    } else if was.is_finished() {
        Phase::Done
    } else if d.status == Status::InProgress {
        d.phase
    } else {
        // The rollout has ended since; when this was written it was starting.
        Phase::Starting
    };
    d.status = was;
    d.updated_at = changed;
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Approval, Kind, Release, StatusChange};

    fn deployment(history: &[Status], approvals: usize) -> Deployment {
        let statuses: Vec<StatusChange> = history
            .iter()
            .enumerate()
            .map(|(i, &status)| StatusChange {
                status,
                at: 1_000 * (i as i64 + 1),
                actor: "slipway".into(),
                reason: format!("to {status}"),
            })
            .collect();
        let last = statuses.last().cloned();
        Deployment {
            id: 7,
            app: "web".into(),
            environment: "production".into(),
            release: Release {
                version: "v2".into(),
                commit: None,
                git_ref: None,
                committed_at: None,
                digest: None,
            },
            kind: Kind::Deploy,
            status: last.as_ref().map_or(Status::Queued, |s| s.status),
            created_by: "bob".into(),
            created_at: 1_000,
            updated_at: last.map_or(1_000, |s| s.at),
            rolled_back_from: None,
            force: None,
            phase: Phase::Done,
            step: 0,
            statuses,
            approvals: (0..approvals)
                .map(|i| Approval {
                    user: format!("reviewer{i}"),
                    decision: Decision::Approve,
                    comment: None,
                    at: 2_500 + i as i64,
                })
                .collect(),
        }
    }

    #[test]
    fn every_status_maps_to_its_event_or_to_none() {
        use NotificationEvent as E;
        let got: Vec<(Status, Option<NotificationEvent>)> =
            Status::ALL.iter().map(|&s| (s, status_event(s))).collect();
        assert_eq!(
            got,
            [
                (Status::Queued, None),
                (Status::Waiting, Some(E::DeploymentWaiting)),
                (Status::InProgress, Some(E::DeploymentStarted)),
                (Status::Success, Some(E::DeploymentSucceeded)),
                (Status::Failure, Some(E::DeploymentFailed)),
                (Status::Error, Some(E::DeploymentFailed)),
                (Status::Rejected, Some(E::DeploymentRejected)),
                (Status::Cancelled, None),
                (Status::RolledBack, Some(E::DeploymentRolledBack)),
                (Status::Inactive, None),
            ]
        );
    }

    #[test]
    fn an_approval_is_an_event_and_a_rejection_is_left_to_its_status_change() {
        assert_eq!(
            decision_event(Decision::Approve),
            Some(NotificationEvent::DeploymentApproved)
        );
        assert_eq!(decision_event(Decision::Reject), None);
    }

    #[test]
    fn run_events_and_their_names_round_trip() {
        for kind in [
            RunEventKind::Started,
            RunEventKind::Succeeded,
            RunEventKind::Failed,
        ] {
            assert_eq!(RunEventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(
            run_event(RunEventKind::Failed),
            NotificationEvent::RunFailed
        );
        assert_eq!(RunEventKind::Started.run_status(), "in_progress");
        assert_eq!(RunEventKind::parse("cancelled"), None);
    }

    #[test]
    fn a_deployment_is_shown_as_it_was_at_its_event() {
        use Status::*;
        let now = deployment(&[Queued, Waiting, InProgress, Success], 1);
        let started = as_it_was(now.clone(), 3, 1);
        assert_eq!(started.status, InProgress);
        assert_eq!(started.statuses.len(), 3);
        assert_eq!(started.phase, Phase::Starting);
        assert_eq!(started.updated_at, 3_000);

        let waiting = as_it_was(now.clone(), 2, 0);
        assert_eq!(
            (waiting.status, waiting.phase, waiting.approvals.len()),
            (Waiting, Phase::Pending, 0)
        );
        let approved = as_it_was(now.clone(), 2, 1);
        assert_eq!(approved.updated_at, 2_500, "the approval came after");

        let done = as_it_was(now.clone(), 4, 1);
        assert_eq!(done, now, "the whole history is the deployment as it is");
        assert_eq!(as_it_was(now.clone(), 99, 99), now);
    }

    #[test]
    fn a_rollout_still_under_way_keeps_its_phase() {
        use Status::*;
        let mut now = deployment(&[Queued, InProgress], 0);
        now.phase = Phase::Shifting;
        assert_eq!(as_it_was(now.clone(), 2, 0).phase, Phase::Shifting);
        assert_eq!(as_it_was(now, 1, 0).phase, Phase::Pending);
    }
}
