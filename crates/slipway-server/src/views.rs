//! The domain rendered as the API's wire types (`slipway-api`), with timestamps as RFC 3339
//! strings. Each mapping of an enum is a `match`, so a new domain value cannot reach the
//! wire unnamed.

use slipway_api as api;
use slipway_config::{NotificationEvent, Role};
use slipway_core::analysis::Verdict;
use slipway_core::migration::{MigrationRun, UndoState};
use slipway_core::watch::{WatchEnd, WatchRecord};
use slipway_core::{Decision, Deployment, InstanceState, Kind, LogLine, Millis, Phase, Status};
use slipway_engine::{EnvStatus, Judged, Live, Paused, Share, StatusEvent, WaitingOn};

pub fn rfc3339(ms: Millis) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn status(s: Status) -> api::Status {
    match s {
        Status::Queued => api::Status::Queued,
        Status::Waiting => api::Status::Waiting,
        Status::InProgress => api::Status::InProgress,
        Status::Success => api::Status::Success,
        Status::Failure => api::Status::Failure,
        Status::Error => api::Status::Error,
        Status::Rejected => api::Status::Rejected,
        Status::Cancelled => api::Status::Cancelled,
        Status::RolledBack => api::Status::RolledBack,
        Status::Inactive => api::Status::Inactive,
    }
}

fn kind(k: Kind) -> api::Kind {
    match k {
        Kind::Deploy => api::Kind::Deploy,
        Kind::Rollback => api::Kind::Rollback,
    }
}

fn phase(p: Phase) -> api::Phase {
    match p {
        Phase::Pending => api::Phase::Pending,
        Phase::Starting => api::Phase::Starting,
        Phase::Shifting => api::Phase::Shifting,
        Phase::Verifying => api::Phase::Verifying,
        Phase::Reverting => api::Phase::Reverting,
        Phase::Done => api::Phase::Done,
    }
}

pub fn role(r: Role) -> api::Role {
    match r {
        Role::Viewer => api::Role::Viewer,
        Role::Deployer => api::Role::Deployer,
        Role::Approver => api::Role::Approver,
        Role::Admin => api::Role::Admin,
    }
}

pub fn role_from(r: api::Role) -> Role {
    match r {
        api::Role::Viewer => Role::Viewer,
        api::Role::Deployer => Role::Deployer,
        api::Role::Approver => Role::Approver,
        api::Role::Admin => Role::Admin,
    }
}

fn waiting_on(w: WaitingOn) -> api::WaitingOn {
    match w {
        WaitingOn::Approval => api::WaitingOn::Approval,
        WaitingOn::WaitTimer => api::WaitingOn::WaitTimer,
        WaitingOn::Window => api::WaitingOn::Window,
        WaitingOn::Concurrency => api::WaitingOn::Concurrency,
    }
}

fn verdict(Judged { verdict, text, .. }: Judged) -> api::Verdict {
    let kind = match verdict {
        Verdict::Pass => api::VerdictKind::Pass,
        Verdict::Fail(_) => api::VerdictKind::Fail,
        Verdict::Inconclusive(_) => api::VerdictKind::Inconclusive,
    };
    api::Verdict { kind, text }
}

fn pause(p: Paused) -> api::Pause {
    match p {
        Paused::Manual => api::Pause {
            kind: api::PauseKind::Manual,
            duration_ms: None,
        },
        Paused::For(d) => api::Pause {
            kind: api::PauseKind::Timed,
            duration_ms: Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        },
    }
}

pub fn traffic(traffic: Vec<Share>) -> Vec<api::TrafficEntry> {
    traffic
        .into_iter()
        .map(|s| api::TrafficEntry {
            version: s.version,
            weight: s.weight,
            requests: s.requests,
            errors: s.errors,
            p99_ms: s.p99.map(|p| p.as_secs_f64() * 1e3),
        })
        .collect()
}

pub fn deployment(
    d: Deployment,
    shares: Vec<Share>,
    live: Live,
    holds: Option<WaitingOn>,
) -> api::Deployment {
    api::Deployment {
        analysis: live.verdicts.into_iter().last().map(verdict),
        paused: live.paused.map(pause),
        waiting_on: holds.map(waiting_on),
        id: d.id,
        app: d.app,
        environment: d.environment,
        version: d.release.version,
        git_ref: d.release.git_ref,
        commit: d.release.commit,
        committed_at: d.release.committed_at.map(rfc3339),
        digest: d.release.digest,
        kind: kind(d.kind),
        status: status(d.status),
        phase: phase(d.phase),
        created_by: d.created_by,
        created_at: rfc3339(d.created_at),
        updated_at: rfc3339(d.updated_at),
        rolled_back_from: d.rolled_back_from,
        force: d.force.map(|f| api::ForceView {
            by: f.by,
            reason: f.reason,
        }),
        statuses: d
            .statuses
            .into_iter()
            .map(|s| api::StatusEntry {
                status: status(s.status),
                at: rfc3339(s.at),
                actor: s.actor,
                reason: s.reason,
            })
            .collect(),
        approvals: d
            .approvals
            .into_iter()
            .map(|a| api::ApprovalView {
                user: a.user,
                decision: match a.decision {
                    Decision::Approve => api::ApprovalDecision::Approve,
                    Decision::Reject => api::ApprovalDecision::Reject,
                },
                comment: a.comment,
                at: rfc3339(a.at),
            })
            .collect(),
        traffic: traffic(shares),
        migration: None,
    }
}

pub fn migration(m: MigrationRun) -> api::Migration {
    api::Migration {
        version: m.version,
        up: m.up,
        ran_at: rfc3339(m.ran_at),
        reversible: m.reversible,
        down: m.down,
        undo: m.undo.map(|u| api::MigrationUndo {
            state: match u.state {
                UndoState::Ran => api::UndoState::Ran,
                UndoState::Failed => api::UndoState::Failed,
                UndoState::Skipped => api::UndoState::Skipped,
            },
            by_deployment: u.by,
            at: rfc3339(u.at),
            note: u.note,
        }),
    }
}

pub fn watch_state(end: WatchEnd) -> api::WatchState {
    match end {
        WatchEnd::Passed => api::WatchState::Passed,
        WatchEnd::Inconclusive => api::WatchState::Inconclusive,
        WatchEnd::Failed => api::WatchState::Failed,
        WatchEnd::Ended => api::WatchState::Ended,
    }
}

/// A watch at `now`: how long it has left while it watches.
pub fn watch(w: WatchRecord, now: Millis) -> api::WatchView {
    let left_ms = u64::try_from(w.left(now).as_millis()).unwrap_or(u64::MAX);
    let (state, ended_at, reason) = match w.ended {
        None => (api::WatchState::Watching, None, None),
        Some((at, end, reason)) => (watch_state(end), Some(rfc3339(at)), Some(reason)),
    };
    api::WatchView {
        deployment_id: w.deployment_id,
        version: w.version,
        state,
        started_at: rfc3339(w.started_at),
        ends_at: rfc3339(w.ends_at),
        left_ms,
        ended_at,
        reason,
    }
}

pub fn log_line(l: LogLine) -> api::LogLine {
    let source = match l.source.as_str() {
        "status" => api::LogSource::Status,
        "engine" => api::LogSource::Engine,
        "analysis" => api::LogSource::Analysis,
        "health" => api::LogSource::Health,
        "smoke" => api::LogSource::Smoke,
        "hook" => api::LogSource::Hook,
        "migrate" => api::LogSource::Migrate,
        "watch" => api::LogSource::Watch,
        "app" => api::LogSource::App,
        _ => api::LogSource::Other,
    };
    api::LogLine {
        seq: l.seq,
        at: rfc3339(l.at),
        source,
        message: l.message,
    }
}

/// `waiting_on` of each waiting deployment comes from the engine, which knows the gates;
/// `now` says how long a watch has left.
pub fn env_status(s: EnvStatus, waiting: Vec<Option<WaitingOn>>, now: Millis) -> api::EnvStatus {
    let shares = s.traffic.clone();
    api::EnvStatus {
        current: s.current.map(|c| api::CurrentRelease {
            since: rfc3339(c.entered(Status::Success).unwrap_or(c.updated_at)),
            version: c.release.version,
            deployment_id: c.id,
        }),
        kept: s
            .kept
            .into_iter()
            .map(|k| api::KeptRelease {
                version: k.version,
                deployment_id: k.deployment_id,
            })
            .collect(),
        instances: s
            .instances
            .into_iter()
            .map(|i| api::InstanceView {
                id: i.id,
                version: i.version,
                addr: i.addr,
                state: match i.state {
                    InstanceState::Running => api::InstanceState::Running,
                    InstanceState::Stopped => api::InstanceState::Stopped,
                },
                handle: i.handle,
                started_at: rfc3339(i.started_at),
            })
            .collect(),
        traffic: traffic(s.traffic),
        in_progress: s
            .in_progress
            .map(|d| deployment(d, shares.clone(), s.live.clone(), None)),
        waiting: s
            .waiting
            .into_iter()
            .zip(waiting)
            .map(|(d, holds)| deployment(d, Vec::new(), Live::default(), holds))
            .collect(),
        watch: s.watch.map(|w| watch(w, now)),
        app: s.app,
        environment: s.environment,
    }
}

pub fn event(e: StatusEvent) -> api::StatusEvent {
    api::StatusEvent {
        deployment_id: e.deployment_id,
        app: e.app,
        environment: e.environment,
        version: e.version,
        status: status(e.status),
        reason: e.reason,
        at: rfc3339(e.at),
    }
}

pub fn notification_event(e: NotificationEvent) -> api::NotificationEvent {
    match e {
        NotificationEvent::RunStarted => api::NotificationEvent::RunStarted,
        NotificationEvent::RunSucceeded => api::NotificationEvent::RunSucceeded,
        NotificationEvent::RunFailed => api::NotificationEvent::RunFailed,
        NotificationEvent::DeploymentStarted => api::NotificationEvent::DeploymentStarted,
        NotificationEvent::DeploymentWaiting => api::NotificationEvent::DeploymentWaiting,
        NotificationEvent::DeploymentApproved => api::NotificationEvent::DeploymentApproved,
        NotificationEvent::DeploymentRejected => api::NotificationEvent::DeploymentRejected,
        NotificationEvent::DeploymentSucceeded => api::NotificationEvent::DeploymentSucceeded,
        NotificationEvent::DeploymentFailed => api::NotificationEvent::DeploymentFailed,
        NotificationEvent::DeploymentRolledBack => api::NotificationEvent::DeploymentRolledBack,
        NotificationEvent::DeploymentWatchFailed => api::NotificationEvent::DeploymentWatchFailed,
    }
}

pub fn notification_attempt(r: slipway_store::RecordedAttempt) -> api::NotificationAttempt {
    let a = r.attempt;
    api::NotificationAttempt {
        id: r.id,
        target: a.target,
        seq: a.seq,
        event: notification_event(a.event),
        deployment_id: a.deployment_id,
        run_id: a.run_id,
        attempt: a.attempt,
        at: rfc3339(a.at),
        http_status: a.http_status,
        error: a.error,
        duration_ms: a.duration_ms,
        outcome: match a.outcome {
            slipway_store::AttemptOutcome::Delivered => api::AttemptOutcome::Delivered,
            slipway_store::AttemptOutcome::Retrying => api::AttemptOutcome::Retrying,
            slipway_store::AttemptOutcome::Failed => api::AttemptOutcome::Failed,
        },
    }
}
