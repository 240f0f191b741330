//! The statuses of a run and of its jobs (docs/concepts.md#pipelines), and which may
//! follow which.

use std::fmt;

/// The status of a run or of one of its jobs; lower-case names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not started: a job waits for its needs or a free slot, a run for its
    /// concurrency group.
    Queued,
    /// A deploy job's deployment waits on its gates (an approval, a wait timer, a
    /// window); a run whose only live jobs wait so.
    Waiting,
    InProgress,
    Success,
    Failure,
    Cancelled,
    /// A job whose `if:` did not hold (by default: a job it needs did not succeed).
    Skipped,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Queued,
        Status::Waiting,
        Status::InProgress,
        Status::Success,
        Status::Failure,
        Status::Cancelled,
        Status::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Waiting => "waiting",
            Status::InProgress => "in_progress",
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Cancelled => "cancelled",
            Status::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Nothing more happens to a run or job in this status.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Status::Success | Status::Failure | Status::Cancelled | Status::Skipped
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a run may go from `from` to `to`. A run is never skipped; it may fail before
/// it starts (its pipeline left the configuration).
pub fn run_can_transition(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (Queued, InProgress | Cancelled | Failure)
            | (InProgress, Waiting)
            | (Waiting, InProgress)
            | (InProgress | Waiting, Success | Failure | Cancelled)
    )
}

/// Whether a job may go from `from` to `to`. `in_progress → queued` is a retry.
pub fn job_can_transition(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (Queued, InProgress | Skipped | Cancelled | Failure)
            | (InProgress, Waiting | Queued)
            | (Waiting, InProgress)
            | (InProgress | Waiting, Success | Failure | Cancelled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("running"), None);
    }

    #[test]
    fn finished_statuses_have_no_way_out() {
        for from in Status::ALL.into_iter().filter(|s| s.is_finished()) {
            for to in Status::ALL {
                assert!(!run_can_transition(from, to), "run {from} -> {to}");
                assert!(!job_can_transition(from, to), "job {from} -> {to}");
            }
        }
    }

    #[test]
    fn only_a_job_is_skipped_or_retried() {
        assert!(job_can_transition(Queued, Skipped) && !run_can_transition(Queued, Skipped));
        assert!(job_can_transition(InProgress, Queued));
        assert!(!run_can_transition(InProgress, Queued));
        assert!(!job_can_transition(Waiting, Queued));
    }
}
