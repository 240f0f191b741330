//! Domain types shared by the store, the engine and the API. Plain data, no I/O.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. Every clock reading in slipway is one of these,
/// so time can be injected in tests.
pub type Millis = i64;

pub type DeploymentId = i64;

/// Status of a deployment (docs/concepts.md). The names are stable: they appear in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Waiting,
    InProgress,
    Success,
    Failure,
    Error,
    Rejected,
    Cancelled,
    RolledBack,
    Inactive,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Queued,
        Status::Waiting,
        Status::InProgress,
        Status::Success,
        Status::Failure,
        Status::Error,
        Status::Rejected,
        Status::Cancelled,
        Status::RolledBack,
        Status::Inactive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Waiting => "waiting",
            Status::InProgress => "in_progress",
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Error => "error",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::RolledBack => "rolled_back",
            Status::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Not yet started: a gate may still hold it, and a newer deployment may supersede it.
    pub fn is_pending(self) -> bool {
        matches!(self, Status::Queued | Status::Waiting)
    }

    /// The rollout has ended, one way or another. `success` is final for the rollout but
    /// may still become `inactive` or `rolled_back` later.
    pub fn is_finished(self) -> bool {
        !matches!(self, Status::Queued | Status::Waiting | Status::InProgress)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Deploy,
    Rollback,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "deploy" => Some(Kind::Deploy),
            "rollback" => Some(Kind::Rollback),
            _ => None,
        }
    }
}

/// An immutable version of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub version: String,
    pub commit: Option<String>,
    /// Branch or tag the release was built from (`ref` in the API).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub committed_at: Option<Millis>,
    /// Image digest (docker driver); `None` for process releases.
    pub digest: Option<String>,
}

/// One entry of a deployment's append-only status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: Status,
    pub at: Millis,
    pub actor: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "approve" => Some(Decision::Approve),
            "reject" => Some(Decision::Reject),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub user: String,
    pub decision: Decision,
    pub comment: Option<String>,
    pub at: Millis,
}

/// An admin's override of the deployment window, recorded with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Force {
    pub by: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeploymentId,
    pub app: String,
    pub environment: String,
    pub release: Release,
    pub kind: Kind,
    pub status: Status,
    pub created_by: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// For a rollback: the version it rolled back from.
    pub rolled_back_from: Option<String>,
    pub force: Option<Force>,
    /// Where the rollout stands, so a restarted server resumes from the right step.
    pub phase: Phase,
    /// How far a canary got through its steps (an index into its plan), so a restarted
    /// server resumes the walk rather than starting it over.
    pub step: u32,
    pub statuses: Vec<StatusChange>,
    pub approvals: Vec<Approval>,
}

impl Deployment {
    /// When the deployment last entered `status`, if it ever did.
    pub fn entered(&self, status: Status) -> Option<Millis> {
        self.statuses
            .iter()
            .rev()
            .find(|c| c.status == status)
            .map(|c| c.at)
    }
}

/// The rollout's progress inside `in_progress`. Persisted before each step's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not started (queued or waiting).
    Pending,
    /// New instances are being started and health-checked.
    Starting,
    /// Traffic is being moved to the new release (canary steps live here).
    Shifting,
    /// All traffic is on the new release; smoke tests run.
    Verifying,
    /// Reverting: traffic goes back to the previous release and new instances stop.
    Reverting,
    /// Nothing left to do.
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Starting => "starting",
            Phase::Shifting => "shifting",
            Phase::Verifying => "verifying",
            Phase::Reverting => "reverting",
            Phase::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Some(match s {
            "pending" => Phase::Pending,
            "starting" => Phase::Starting,
            "shifting" => Phase::Shifting,
            "verifying" => Phase::Verifying,
            "reverting" => Phase::Reverting,
            "done" => Phase::Done,
            _ => return None,
        })
    }
}

/// One running (or kept, stopped) copy of a release, as the driver reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Unique, chosen by the engine: `<app>-<env>-<version>-<n>`.
    pub id: String,
    pub app: String,
    pub environment: String,
    pub version: String,
    pub deployment_id: DeploymentId,
    /// Driver-specific identity: for a process, `pid:<pid>:<start time ticks>`; for a
    /// container, its id. Re-adoption checks it so a reused pid is never mistaken.
    pub handle: String,
    /// Address the router reaches it on, `127.0.0.1:PORT`.
    pub addr: String,
    pub state: InstanceState,
    pub started_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    Running,
    Stopped,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Running => "running",
            InstanceState::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<InstanceState> {
        match s {
            "running" => Some(InstanceState::Running),
            "stopped" => Some(InstanceState::Stopped),
            _ => None,
        }
    }
}

/// A line of a deployment's log: an engine event or a line the app printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: i64,
    pub deployment_id: DeploymentId,
    pub at: Millis,
    /// `engine`, `app`, `health`, `smoke`, `hook`.
    pub source: String,
    pub message: String,
}

/// An API user. Only a hash of the token is ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub role: slipway_config::Role,
    pub created_at: Millis,
}
