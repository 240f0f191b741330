//! Concurrency groups (docs/concepts.md#concurrency-groups): runs of one group never
//! overlap. With `cancel_in_progress: true` a newer run cancels the older ones (a deploy
//! job whose rollout is under way still finishes); with `false` the newest run that must
//! wait replaces any older run that waits, and one in progress finishes first.

/// Where one unfinished run of a group stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// Not started (`queued`).
    Pending,
    /// Started, with a job in progress.
    Active,
    /// Started, and every live job waits on its deployment's gates (`waiting`).
    Waiting,
}

/// What to do about a group now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolution {
    /// Indices of the runs to cancel (a pending one ends at once, a started one has its
    /// jobs cancelled).
    pub cancel: Vec<usize>,
    /// The run that may start now.
    pub start: Option<usize>,
}

/// `members` are the group's unfinished runs, oldest first.
pub fn resolve(members: &[Member], cancel_in_progress: bool) -> Resolution {
    let Some(newest) = members.len().checked_sub(1) else {
        return Resolution::default();
    };
    let cancel: Vec<usize> = (0..newest)
        .filter(|&i| cancel_in_progress || members[i] != Member::Active)
        .collect();
    let others_started = members[..newest].iter().any(|m| *m != Member::Pending);
    let start = (members[newest] == Member::Pending && !others_started).then_some(newest);
    Resolution { cancel, start }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Member::*;

    #[test]
    fn a_newer_run_replaces_an_older_one_that_waits() {
        // The older one waits for approval: it is cancelled, and the newer one starts
        // once it has ended.
        let r = resolve(&[Waiting, Pending], false);
        assert_eq!(
            r,
            Resolution {
                cancel: vec![0],
                start: None
            }
        );
        assert_eq!(resolve(&[Pending], false).start, Some(0));
        // Two waiting for the group: only the newest stays.
        let r = resolve(&[Active, Pending, Pending], false);
        assert_eq!(
            r,
            Resolution {
                cancel: vec![1],
                start: None
            }
        );
    }

    #[test]
    fn without_cancel_in_progress_a_run_in_progress_finishes_first() {
        assert_eq!(resolve(&[Active, Pending], false), Resolution::default());
    }

    #[test]
    fn with_cancel_in_progress_every_older_run_is_cancelled() {
        let r = resolve(&[Active, Waiting, Pending], true);
        assert_eq!(
            r,
            Resolution {
                cancel: vec![0, 1],
                start: None
            }
        );
        // Once the older ones have ended, the newest starts.
        assert_eq!(resolve(&[Pending], true).start, Some(0));
        // An older pending run does not hold the newest back.
        assert_eq!(
            resolve(&[Pending, Pending], true),
            Resolution {
                cancel: vec![0],
                start: Some(1)
            }
        );
        assert_eq!(resolve(&[], true), Resolution::default());
    }
}
