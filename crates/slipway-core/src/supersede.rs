//! Which waiting deployments a newer one replaces (docs/concepts.md): a deployment that has not
//! started yet is pointless once a newer release is queued behind it for the same place.

use crate::model::{Deployment, DeploymentId, Kind};

/// The ids among `pending` that `newer` supersedes; they should end `cancelled` with a
/// reason naming `newer`.
///
/// Only queued or waiting deployments of the same app and environment qualify — one in
/// progress is never listed (an urgent rollback aborts it through its own path). A deploy
/// supersedes the older ones (smaller id); a rollback supersedes every pending one,
/// whatever its id, because it restores a known-good release ahead of anything else.
pub fn superseded_by(pending: &[&Deployment], newer: &Deployment) -> Vec<DeploymentId> {
    pending
        .iter()
        .filter(|d| {
            d.id != newer.id
                && d.status.is_pending()
                && d.app == newer.app
                && d.environment == newer.environment
                && (newer.kind == Kind::Rollback || d.id < newer.id)
        })
        .map(|d| d.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Phase, Release, Status};

    fn dep(id: DeploymentId, app: &str, env: &str, status: Status, kind: Kind) -> Deployment {
        Deployment {
            id,
            app: app.into(),
            environment: env.into(),
            release: Release {
                version: format!("v{id}"),
                commit: None,
                git_ref: None,
                committed_at: None,
                digest: None,
            },
            kind,
            status,
            created_by: "admin".into(),
            created_at: id * 1_000,
            updated_at: id * 1_000,
            rolled_back_from: None,
            force: None,
            phase: Phase::Pending,
            step: 0,
            statuses: vec![],
            approvals: vec![],
        }
    }

    #[test]
    fn a_deploy_supersedes_older_pending_of_the_same_app_and_environment() {
        let all = [
            dep(1, "web", "production", Status::Waiting, Kind::Deploy),
            dep(2, "web", "production", Status::Queued, Kind::Deploy),
            dep(3, "web", "production", Status::InProgress, Kind::Deploy),
            dep(4, "web", "staging", Status::Waiting, Kind::Deploy),
            dep(5, "api", "production", Status::Waiting, Kind::Deploy),
            dep(6, "web", "production", Status::Success, Kind::Deploy),
            dep(9, "web", "production", Status::Waiting, Kind::Deploy),
        ];
        let refs: Vec<&Deployment> = all.iter().collect();
        let newer = dep(8, "web", "production", Status::Waiting, Kind::Deploy);
        assert_eq!(superseded_by(&refs, &newer), vec![1, 2]);
    }

    #[test]
    fn a_rollback_supersedes_every_pending_but_never_one_in_progress() {
        let all = [
            dep(1, "web", "production", Status::Waiting, Kind::Deploy),
            dep(3, "web", "production", Status::InProgress, Kind::Deploy),
            dep(9, "web", "production", Status::Queued, Kind::Deploy),
            dep(10, "web", "staging", Status::Queued, Kind::Deploy),
        ];
        let rollback = dep(8, "web", "production", Status::Queued, Kind::Rollback);
        let mut refs: Vec<&Deployment> = all.iter().collect();
        refs.push(&rollback);
        assert_eq!(superseded_by(&refs, &rollback), vec![1, 9]);
    }

    #[test]
    fn nothing_pending_nothing_superseded() {
        let newer = dep(2, "web", "production", Status::Queued, Kind::Deploy);
        assert!(superseded_by(&[], &newer).is_empty());
        let itself = [&newer];
        assert!(superseded_by(&itself, &newer).is_empty());
    }
}
