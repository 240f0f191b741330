//! The deployment state machine of docs/concepts.md: which status may follow which.

use crate::model::Status;

/// Whether a deployment in status `from` may move to `to`.
///
/// `waiting → waiting` is allowed because a deployment moves from one gate to the next
/// (window, then approval, then wait timer) and each move is recorded with its new reason.
/// `failure` is reachable before the start because admission checks (missing config, a
/// required environment) can fail a deployment that has not started.
pub fn can_transition(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (
            Queued | Waiting,
            Waiting | InProgress | Cancelled | Rejected | Failure
        ) | (InProgress, Success | Failure | Error | RolledBack)
            | (Success, Inactive | RolledBack)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    /// Every allowed pair, written out; any pair not listed must be refused.
    const ALLOWED: &[(Status, Status)] = &[
        (Queued, Waiting),
        (Queued, InProgress),
        (Queued, Cancelled),
        (Queued, Rejected),
        (Queued, Failure),
        (Waiting, Waiting),
        (Waiting, InProgress),
        (Waiting, Cancelled),
        (Waiting, Rejected),
        (Waiting, Failure),
        (InProgress, Success),
        (InProgress, Failure),
        (InProgress, Error),
        (InProgress, RolledBack),
        (Success, Inactive),
        (Success, RolledBack),
    ];

    #[test]
    fn every_pair_matches_the_table() {
        let mut checked = 0;
        for from in Status::ALL {
            for to in Status::ALL {
                let expected = ALLOWED.contains(&(from, to));
                assert_eq!(
                    can_transition(from, to),
                    expected,
                    "{from} -> {to} should be {}",
                    if expected { "allowed" } else { "refused" }
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 100);
    }

    #[test]
    fn terminal_statuses_have_no_way_out() {
        for from in [Failure, Error, Rejected, Cancelled, RolledBack, Inactive] {
            for to in Status::ALL {
                assert!(!can_transition(from, to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn nothing_goes_back_to_queued() {
        for from in Status::ALL {
            assert!(!can_transition(from, Queued), "{from} -> queued");
        }
    }
}
