//! Schema migrations that go with releases (docs/concepts.md#migrations): the history of
//! which `up` ran for which deployment and what became of its `down`, and which `down`s
//! a rollback must run before traffic returns, newest first. A migration marked
//! `reversible: false` holds every automatic rollback past it: a person decides.

use crate::model::{DeploymentId, Millis};

/// One release's `up`, as the history records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRun {
    /// The deployment whose rollout ran `up`.
    pub deployment_id: DeploymentId,
    pub app: String,
    pub environment: String,
    pub version: String,
    /// The command that ran.
    pub up: String,
    pub ran_at: Millis,
    /// As configured when `up` ran.
    pub reversible: bool,
    /// The `down` configured when `up` ran: what a rollback runs.
    pub down: Option<String>,
    /// What became of `down`; `None` while nobody rolled the release back.
    pub undo: Option<Undo>,
}

impl MigrationRun {
    /// A rollback past this release must still deal with it: its `down` never ran, or
    /// failed.
    pub fn awaits_undo(&self) -> bool {
        self.undo
            .as_ref()
            .is_none_or(|u| u.state == UndoState::Failed)
    }
}

/// What a rollback did with a release's `down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    pub state: UndoState,
    /// The deployment that ran (or skipped) it.
    pub by: DeploymentId,
    pub at: Millis,
    /// How it ended, or why it was skipped.
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoState {
    /// `down` ran and succeeded.
    Ran,
    /// `down` ran and failed: the schema is as `up` left it, or half undone.
    Failed,
    /// Nothing ran: no `down` was configured, or a person forced a rollback past an
    /// irreversible migration.
    Skipped,
}

impl UndoState {
    pub fn as_str(self) -> &'static str {
        match self {
            UndoState::Ran => "ran",
            UndoState::Failed => "failed",
            UndoState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<UndoState> {
        [UndoState::Ran, UndoState::Failed, UndoState::Skipped]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// One step before a rollback's traffic returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoStep<'a> {
    /// Run the release's `down` (or record that it has none).
    Down(&'a MigrationRun),
    /// An irreversible migration a person forced the rollback past: recorded, not run.
    Skip(&'a MigrationRun),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoPlan<'a> {
    /// These steps, newest migration first (possibly none).
    Steps(Vec<UndoStep<'a>>),
    /// An irreversible migration stands in the way and nobody forced it: no rollback.
    Held(&'a MigrationRun),
}

/// What to undo before traffic returns to the release of deployment `back_to`: every
/// migration of a later deployment still awaiting its undo, newest first. Without
/// `forced`, an irreversible one among them holds the rollback.
pub fn plan_undo(runs: &[MigrationRun], back_to: DeploymentId, forced: bool) -> UndoPlan<'_> {
    let mut pending: Vec<&MigrationRun> = runs
        .iter()
        .filter(|r| r.deployment_id > back_to && r.awaits_undo())
        .collect();
    pending.sort_by_key(|r| std::cmp::Reverse(r.deployment_id));
    if !forced && let Some(held) = pending.iter().find(|r| !r.reversible) {
        return UndoPlan::Held(held);
    }
    UndoPlan::Steps(
        pending
            .into_iter()
            .map(|r| {
                if r.reversible {
                    UndoStep::Down(r)
                } else {
                    UndoStep::Skip(r)
                }
            })
            .collect(),
    )
}

/// Why nothing rolls back on its own past `run`, and what a person can do.
pub fn held_reason(run: &MigrationRun) -> String {
    format!(
        "not rolled back: the migration of {} (deployment {}) is not reversible \
         (migrate.reversible: false), so a person must decide: deploy a fix, or \
         `slipway rollback {} --env {} --force --reason \"…\"`",
        run.version, run.deployment_id, run.app, run.environment
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: DeploymentId, version: &str, reversible: bool) -> MigrationRun {
        MigrationRun {
            deployment_id: id,
            app: "web".into(),
            environment: "production".into(),
            version: version.into(),
            up: "./migrate up".into(),
            ran_at: id * 1_000,
            reversible,
            down: Some("./migrate down".into()),
            undo: None,
        }
    }

    fn undone(mut r: MigrationRun, state: UndoState) -> MigrationRun {
        r.undo = Some(Undo {
            state,
            by: 99,
            at: 99_000,
            note: String::new(),
        });
        r
    }

    fn ids(plan: UndoPlan<'_>) -> Vec<(DeploymentId, bool)> {
        match plan {
            UndoPlan::Steps(steps) => steps
                .into_iter()
                .map(|s| match s {
                    UndoStep::Down(r) => (r.deployment_id, true),
                    UndoStep::Skip(r) => (r.deployment_id, false),
                })
                .collect(),
            UndoPlan::Held(r) => panic!("held by {}", r.deployment_id),
        }
    }

    #[test]
    fn a_rollback_undoes_every_later_migration_newest_first() {
        let runs = [run(1, "v1", true), run(3, "v2", true), run(5, "v3", true)];
        assert_eq!(ids(plan_undo(&runs, 1, false)), [(5, true), (3, true)]);
        assert_eq!(ids(plan_undo(&runs, 3, false)), [(5, true)]);
        assert_eq!(ids(plan_undo(&runs, 5, false)), []);
    }

    #[test]
    fn what_was_undone_is_not_undone_again_but_a_failed_down_is_retried() {
        let runs = [
            run(1, "v1", true),
            undone(run(3, "v2", true), UndoState::Ran),
            undone(run(4, "v3", true), UndoState::Failed),
            undone(run(5, "v4", false), UndoState::Skipped),
        ];
        assert_eq!(ids(plan_undo(&runs, 1, false)), [(4, true)]);
    }

    #[test]
    fn an_irreversible_migration_holds_the_rollback_unless_forced() {
        let runs = [run(2, "v2", true), run(4, "v3", false), run(6, "v4", true)];
        match plan_undo(&runs, 1, false) {
            UndoPlan::Held(r) => assert_eq!(r.deployment_id, 4),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ids(plan_undo(&runs, 1, true)),
            [(6, true), (4, false), (2, true)]
        );
        // Not in the way when the rollback stops short of it.
        assert_eq!(ids(plan_undo(&runs, 4, false)), [(6, true)]);
    }

    #[test]
    fn the_held_reason_says_a_person_decides_and_how() {
        assert_eq!(
            held_reason(&run(4, "v3", false)),
            "not rolled back: the migration of v3 (deployment 4) is not reversible \
             (migrate.reversible: false), so a person must decide: deploy a fix, or \
             `slipway rollback web --env production --force --reason \"…\"`"
        );
    }

    #[test]
    fn undo_state_names_round_trip() {
        for s in [UndoState::Ran, UndoState::Failed, UndoState::Skipped] {
            assert_eq!(UndoState::parse(s.as_str()), Some(s));
        }
        assert_eq!(UndoState::parse("done"), None);
    }
}
