//! The domain rendered as the API's wire types (`slipway-api`), with timestamps as RFC 3339
//! strings. Each mapping of an enum is a `match`, so a new domain value cannot reach the
//! wire unnamed.

use slipway_api as api;
use slipway_config::{NotificationEvent, Role};
use slipway_core::analysis::Verdict;
use slipway_core::migration::{MigrationRun, UndoState};
use slipway_core::watch::{WatchEnd, WatchRecord};
use slipway_core::{Decision, Deployment, InstanceState, Kind, LogLine, Millis, Phase, Status};
use slipway_core::{dora, flags};
use slipway_engine::{EnvStatus, Judged, Live, Paused, Share, StatusEvent, WaitingOn};
use slipway_store::{FlagChange, StoredFlag};

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

// === flags and DORA: each core struct destructured whole, so a new field cannot be
// left off the wire ===

pub fn flag(f: flags::Flag) -> api::flags::Flag {
    let flags::Flag {
        key,
        description,
        enabled,
        killed,
        variants,
        default_variant,
        rollout,
        constraints,
    } = f;
    api::flags::Flag {
        key,
        description,
        enabled,
        killed,
        variants: variants
            .into_iter()
            .map(
                |flags::Variant {
                     name,
                     value,
                     weight,
                 }| api::flags::Variant {
                    name,
                    value,
                    weight,
                },
            )
            .collect(),
        default_variant,
        rollout,
        constraints: constraints
            .into_iter()
            .map(
                |flags::Constraint {
                     context,
                     operator,
                     values,
                 }| api::flags::Constraint {
                    context,
                    operator: flag_operator(operator),
                    values,
                },
            )
            .collect(),
    }
}

fn flag_operator(o: flags::Operator) -> api::flags::Operator {
    use api::flags::Operator as Api;
    use flags::Operator as Core;
    match o {
        Core::In => Api::In,
        Core::NotIn => Api::NotIn,
        Core::StartsWith => Api::StartsWith,
        Core::NumEq => Api::NumEq,
        Core::NumGt => Api::NumGt,
        Core::NumGte => Api::NumGte,
        Core::NumLt => Api::NumLt,
        Core::NumLte => Api::NumLte,
        Core::SemverEq => Api::SemverEq,
        Core::SemverGt => Api::SemverGt,
        Core::SemverLt => Api::SemverLt,
    }
}

/// A stored flag, without its history.
pub fn flag_view(s: &StoredFlag) -> api::flags::FlagView {
    api::flags::FlagView {
        environment: s.environment.clone(),
        version: s.version,
        updated_at: rfc3339(s.updated_at),
        updated_by: s.updated_by.clone(),
        flag: flag(s.flag.clone()),
        history: None,
    }
}

pub fn flag_change(c: FlagChange) -> api::flags::ChangeView {
    let FlagChange {
        environment: _,
        version,
        action,
        flag: f,
        actor,
        at,
    } = c;
    api::flags::ChangeView {
        version,
        action,
        actor,
        at: rfc3339(at),
        flag: flag(f),
    }
}

fn band(b: dora::Band) -> api::dora::Band {
    match b {
        dora::Band::Elite => api::dora::Band::Elite,
        dora::Band::High => api::dora::Band::High,
        dora::Band::Medium => api::dora::Band::Medium,
        dora::Band::Low => api::dora::Band::Low,
    }
}

pub fn dora_report(r: dora::Report) -> api::dora::Report {
    let dora::Report {
        app,
        environment,
        deployment_frequency,
        lead_time,
        change_fail_rate,
        recovery_time,
    } = r;
    let dora::Frequency {
        deployments,
        per_day,
        band: frequency_band,
        deployment_ids: frequency_ids,
    } = deployment_frequency;
    let dora::LeadTime {
        median_ms: lead_median,
        p90_ms: lead_p90,
        band: lead_band,
        deployment_ids: lead_ids,
    } = lead_time;
    let dora::FailRate {
        failed,
        total,
        rate,
        band: fail_band,
        failures,
        deployment_ids: fail_ids,
    } = change_fail_rate;
    let dora::Recovery {
        median_ms: recovery_median,
        p90_ms: recovery_p90,
        band: recovery_band,
        deployment_ids: recovery_ids,
    } = recovery_time;
    api::dora::Report {
        app,
        environment,
        deployment_frequency: api::dora::Frequency {
            deployments,
            per_day,
            band: band(frequency_band),
            deployment_ids: frequency_ids,
        },
        lead_time: api::dora::LeadTime {
            median_ms: lead_median,
            p90_ms: lead_p90,
            band: lead_band.map(band),
            deployment_ids: lead_ids,
        },
        change_fail_rate: api::dora::FailRate {
            failed,
            total,
            rate,
            band: fail_band.map(band),
            failures: failures
                .into_iter()
                .map(
                    |dora::Failure {
                         deployment_id,
                         cause,
                         at,
                         recovered_by,
                         recovery_ms,
                     }| api::dora::Failure {
                        deployment_id,
                        cause: match cause {
                            dora::Cause::Failure => api::dora::FailureCause::Failure,
                            dora::Cause::Aborted => api::dora::FailureCause::Aborted,
                            dora::Cause::ManualRollback => api::dora::FailureCause::ManualRollback,
                        },
                        at,
                        recovered_by,
                        recovery_ms,
                    },
                )
                .collect(),
            deployment_ids: fail_ids,
        },
        recovery_time: api::dora::Recovery {
            median_ms: recovery_median,
            p90_ms: recovery_p90,
            band: recovery_band.map(band),
            deployment_ids: recovery_ids,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire types replaced the core types on these endpoints: what is served must stay
    /// the same bytes, field order and left-out empties included.
    #[test]
    fn flags_serialize_as_the_core_flag_did() {
        let full: flags::Flag = serde_json::from_value(serde_json::json!({
            "key": "checkout",
            "description": "new checkout",
            "enabled": false,
            "killed": true,
            "variants": [
                {"name": "a", "value": {"x": [1, 2.5]}, "weight": 30},
                {"name": "b", "value": {"x": []}, "weight": 70}
            ],
            "default_variant": "a",
            "rollout": 40,
            "constraints": [
                {"context": "country", "operator": "not_in", "values": ["NL", "BE"]},
                {"context": "appVersion", "operator": "semver_gt", "values": ["1.2.0"]}
            ]
        }))
        .unwrap();
        let bare: flags::Flag = serde_json::from_value(serde_json::json!({
            "key": "dark",
            "variants": [{"name": "on", "value": true, "weight": 100}],
            "default_variant": "on"
        }))
        .unwrap();
        for core in [full, bare] {
            let wire = flag(core.clone());
            assert_eq!(
                serde_json::to_string(&wire).unwrap(),
                serde_json::to_string(&core).unwrap()
            );
            // A client reads back what was served, the flattened flag included.
            let view = api::flags::FlagView {
                environment: "staging".into(),
                version: 2,
                updated_at: rfc3339(0),
                updated_by: "admin".into(),
                flag: wire.clone(),
                history: None,
            };
            let read: api::flags::FlagView =
                serde_json::from_str(&serde_json::to_string(&view).unwrap()).unwrap();
            assert_eq!(read.flag, wire);
        }
    }

    #[test]
    fn dora_reports_serialize_as_the_core_report_did() {
        let record = |id, kind, succeeded_at, failed_at, rolled_back_at| dora::DoraRecord {
            id,
            app: "web".into(),
            environment: "production".into(),
            kind,
            created_at: id * 1000,
            committed_at: Some(id * 1000 - 500),
            succeeded_at,
            failed_at,
            rolled_back_at,
        };
        let records = [
            record(1, Kind::Deploy, Some(1_100), None, None),
            record(2, Kind::Deploy, None, Some(2_100), None),
            record(3, Kind::Deploy, Some(3_100), None, Some(3_200)),
            record(4, Kind::Deploy, None, None, Some(4_100)),
            record(5, Kind::Rollback, Some(5_100), None, None),
        ];
        let window = dora::Window {
            since: 0,
            until: 10_000,
        };
        let reports = dora::reports(&records, window, 1_000);
        let failures = &reports[0].change_fail_rate.failures;
        assert_eq!(failures.len(), 3, "{failures:?}");
        // A deployment still under way: every optional figure is null.
        let mut queued = record(6, Kind::Deploy, None, None, None);
        queued.committed_at = None;
        let nulls = dora::reports(&[queued], window, 1_000);
        assert_eq!(nulls[0].change_fail_rate.rate, None);
        for core in reports.into_iter().chain(nulls) {
            assert_eq!(
                serde_json::to_string(&dora_report(core.clone())).unwrap(),
                serde_json::to_string(&core).unwrap()
            );
        }
    }
}
