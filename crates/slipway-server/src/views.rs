//! The API's JSON shapes (DESIGN §6). Domain types stay free of HTTP concerns; these views
//! render them, with timestamps as RFC 3339 strings.

use serde::{Deserialize, Serialize};
use slipway_core::{Deployment, LogLine, Millis};
use slipway_engine::{EnvStatus, Live, Share, StatusEvent};
use utoipa::ToSchema;

pub fn rfc3339(ms: Millis) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentView {
    pub id: i64,
    pub app: String,
    pub environment: String,
    pub version: String,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    pub committed_at: Option<String>,
    /// `deploy` or `rollback`.
    pub kind: String,
    /// queued, waiting, in_progress, success, failure, error, rejected, cancelled, rolled_back, inactive.
    pub status: String,
    /// Where the rollout stands: pending, starting, shifting, verifying, reverting, done.
    pub phase: String,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub rolled_back_from: Option<String>,
    pub force: Option<ForceView>,
    pub statuses: Vec<StatusView>,
    pub approvals: Vec<ApprovalView>,
    /// The live traffic split of this app in this environment while this deployment is in
    /// progress or current; empty otherwise.
    pub traffic: Vec<TrafficView>,
    /// The canary analysis's latest verdict while the rollout runs.
    pub analysis: Option<String>,
    /// The canary pause the rollout waits at: `manual` (continue it with `promote`) or the
    /// pause's duration; null when it is not paused.
    pub paused: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForceView {
    pub by: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    pub status: String,
    pub at: String,
    pub actor: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    pub user: String,
    /// `approve` or `reject`.
    pub decision: String,
    pub comment: Option<String>,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrafficView {
    pub version: String,
    /// Percent of requests.
    pub weight: f64,
    /// Requests the router counted for this release since it started.
    pub requests: u64,
    /// Of those, 5xx answers (from the app, or from the router when it could not reach it).
    pub errors: u64,
    /// 99th percentile latency in milliseconds, when there were requests.
    pub p99_ms: Option<f64>,
}

pub fn traffic_views(traffic: Vec<Share>) -> Vec<TrafficView> {
    traffic
        .into_iter()
        .map(|s| TrafficView {
            version: s.version,
            weight: s.weight,
            requests: s.requests,
            errors: s.errors,
            p99_ms: s.p99.map(|p| p.as_secs_f64() * 1e3),
        })
        .collect()
}

impl DeploymentView {
    pub fn new(d: Deployment, traffic: Vec<Share>, live: Live) -> DeploymentView {
        DeploymentView {
            analysis: live.verdict,
            paused: live.paused,
            id: d.id,
            app: d.app,
            environment: d.environment,
            version: d.release.version,
            git_ref: d.release.git_ref,
            commit: d.release.commit,
            committed_at: d.release.committed_at.map(rfc3339),
            kind: d.kind.as_str().to_string(),
            status: d.status.as_str().to_string(),
            phase: d.phase.as_str().to_string(),
            created_by: d.created_by,
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
            rolled_back_from: d.rolled_back_from,
            force: d.force.map(|f| ForceView {
                by: f.by,
                reason: f.reason,
            }),
            statuses: d
                .statuses
                .into_iter()
                .map(|s| StatusView {
                    status: s.status.as_str().to_string(),
                    at: rfc3339(s.at),
                    actor: s.actor,
                    reason: s.reason,
                })
                .collect(),
            approvals: d
                .approvals
                .into_iter()
                .map(|a| ApprovalView {
                    user: a.user,
                    decision: a.decision.as_str().to_string(),
                    comment: a.comment,
                    at: rfc3339(a.at),
                })
                .collect(),
            traffic: traffic_views(traffic),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentList {
    pub deployments: Vec<DeploymentView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    pub app: String,
    pub environment: String,
    pub version: String,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    /// RFC 3339, e.g. `2026-11-24T10:00:00Z`.
    pub committed_at: Option<String>,
    /// Admins only: deploy outside the deployment windows. Needs `reason`.
    #[serde(default)]
    pub force: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub comment: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub to_version: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    /// viewer, deployer, approver or admin.
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    pub name: String,
    pub role: String,
    /// Shown once; only its hash is stored.
    pub token: String,
    /// The user existed: this token replaced its old one, which no longer works.
    pub replaced_token: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogLineView {
    pub seq: i64,
    pub at: String,
    pub source: String,
    pub message: String,
}

impl From<LogLine> for LogLineView {
    fn from(l: LogLine) -> Self {
        LogLineView {
            seq: l.seq,
            at: rfc3339(l.at),
            source: l.source,
            message: l.message,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogLines {
    pub lines: Vec<LogLineView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentRelease {
    pub version: String,
    pub deployment_id: i64,
    pub since: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeptView {
    pub version: String,
    pub deployment_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceView {
    pub id: String,
    pub version: String,
    /// Where the router reaches it.
    pub addr: String,
    /// `running` or `stopped`.
    pub state: String,
    /// The driver's identity of it: `pid:<pid>:<start time>` for a process.
    pub handle: String,
    pub started_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnvStatusView {
    pub app: String,
    pub environment: String,
    pub current: Option<CurrentRelease>,
    pub kept: Vec<KeptView>,
    pub instances: Vec<InstanceView>,
    pub traffic: Vec<TrafficView>,
    pub in_progress: Option<DeploymentView>,
    pub waiting: Vec<DeploymentView>,
}

impl From<EnvStatus> for EnvStatusView {
    fn from(s: EnvStatus) -> Self {
        let traffic = s.traffic.clone();
        EnvStatusView {
            current: s.current.map(|c| CurrentRelease {
                since: rfc3339(
                    c.entered(slipway_core::Status::Success)
                        .unwrap_or(c.updated_at),
                ),
                version: c.release.version,
                deployment_id: c.id,
            }),
            kept: s
                .kept
                .into_iter()
                .map(|k| KeptView {
                    version: k.version,
                    deployment_id: k.deployment_id,
                })
                .collect(),
            instances: s
                .instances
                .into_iter()
                .map(|i| InstanceView {
                    id: i.id,
                    version: i.version,
                    addr: i.addr,
                    state: i.state.as_str().to_string(),
                    handle: i.handle,
                    started_at: rfc3339(i.started_at),
                })
                .collect(),
            traffic: traffic_views(s.traffic),
            in_progress: s
                .in_progress
                .map(|d| DeploymentView::new(d, traffic.clone(), s.live.clone())),
            waiting: s
                .waiting
                .into_iter()
                .map(|d| DeploymentView::new(d, Vec::new(), Live::default()))
                .collect(),
            app: s.app,
            environment: s.environment,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusList {
    pub environments: Vec<EnvStatusView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub deployment_id: i64,
    pub app: String,
    pub environment: String,
    pub version: String,
    pub status: String,
    pub reason: String,
    pub at: String,
}

impl From<StatusEvent> for EventView {
    fn from(e: StatusEvent) -> Self {
        EventView {
            deployment_id: e.deployment_id,
            app: e.app,
            environment: e.environment,
            version: e.version,
            status: e.status.as_str().to_string(),
            reason: e.reason,
            at: rfc3339(e.at),
        }
    }
}
