//! Which jobs of a run to start, skip or fail next, given every job's status; and the
//! run's own status from its jobs'. Pure: the runner applies the decisions.

use crate::dag::Dag;
use crate::expr::Func;
use crate::status::Status;

/// `success()` and `failure()` of a job whose needs have all finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Every job it needs, directly or not, succeeded.
    pub success: bool,
    /// One of them failed.
    pub failure: bool,
}

impl Needs {
    pub fn status(&self, func: Func) -> bool {
        match func {
            Func::Success => self.success,
            Func::Failure => self.failure,
            Func::Always => true,
        }
    }
}

/// What to do with one job now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Start(usize),
    /// Its `if:` does not hold.
    Skip(usize),
    /// Its `if:` could not be evaluated.
    Fail(usize, String),
}

/// The decisions for every job whose needs have all finished: start it (while fewer
/// than `max_parallel` jobs are in progress), or skip or fail it when `condition` says
/// so. A job decided skipped or failed here finishes at once, so the jobs after it are
/// decided in the same call. `condition(job, needs)` says whether the job's `if:` holds.
pub fn next(
    dag: &Dag,
    statuses: &[Status],
    max_parallel: usize,
    mut condition: impl FnMut(usize, Needs) -> Result<bool, String>,
) -> Vec<Decision> {
    let mut statuses = statuses.to_vec();
    let mut slots = max_parallel.saturating_sub(
        statuses
            .iter()
            .filter(|s| **s == Status::InProgress)
            .count(),
    );
    let mut decisions = Vec::new();
    for job in dag.order() {
        if statuses[job] != Status::Queued
            || !dag.needs(job).iter().all(|&n| statuses[n].is_finished())
        {
            continue;
        }
        let ancestors = dag.ancestors(job);
        let needs = Needs {
            success: ancestors.iter().all(|&a| statuses[a] == Status::Success),
            failure: ancestors.iter().any(|&a| statuses[a] == Status::Failure),
        };
        match condition(job, needs) {
            Ok(true) if slots > 0 => {
                slots -= 1;
                statuses[job] = Status::InProgress;
                decisions.push(Decision::Start(job));
            }
            Ok(true) => {}
            Ok(false) => {
                statuses[job] = Status::Skipped;
                decisions.push(Decision::Skip(job));
            }
            Err(why) => {
                statuses[job] = Status::Failure;
                decisions.push(Decision::Fail(job, why));
            }
        }
    }
    decisions
}

/// How a run ends once every job has finished: `failure` if a job failed, else
/// `cancelled` if one was cancelled, else `success`. `None` while a job has not finished.
pub fn outcome(statuses: &[Status]) -> Option<Status> {
    if !statuses.iter().all(|s| s.is_finished()) {
        return None;
    }
    Some(if statuses.contains(&Status::Failure) {
        Status::Failure
    } else if statuses.contains(&Status::Cancelled) {
        Status::Cancelled
    } else {
        Status::Success
    })
}

/// The status of a started run that has not ended: `waiting` while no job is in
/// progress and one waits on its deployment's gates, else `in_progress`.
pub fn live_status(statuses: &[Status]) -> Status {
    if statuses.contains(&Status::Waiting) && !statuses.contains(&Status::InProgress) {
        Status::Waiting
    } else {
        Status::InProgress
    }
}

/// A job as a cancel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    pub status: Status,
    /// A deploy job whose deployment's rollout is under way: it is never interrupted.
    pub rolling_out: bool,
}

/// The jobs a cancel ends now: every one not finished, except a deploy job whose
/// rollout is under way (the run ends once that one has).
pub fn to_cancel(jobs: &[Live]) -> Vec<usize> {
    jobs.iter()
        .enumerate()
        .filter(|(_, j)| !j.status.is_finished() && !j.rolling_out)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    /// build → test → staging → production, and lint beside test.
    fn chain() -> Dag {
        Dag::new(&[
            ("build", vec![]),
            ("test", vec!["build"]),
            ("lint", vec!["build"]),
            ("staging", vec!["test", "lint"]),
            ("production", vec!["staging"]),
        ])
        .unwrap()
    }

    /// The default `if:`: `success()`.
    fn default_if(_: usize, needs: Needs) -> Result<bool, String> {
        Ok(needs.success)
    }

    #[test]
    fn ready_jobs_start_up_to_the_limit() {
        let dag = chain();
        assert_eq!(
            next(&dag, &[Queued; 5], 4, default_if),
            [Decision::Start(0)]
        );
        let after_build = [Success, Queued, Queued, Queued, Queued];
        assert_eq!(
            next(&dag, &after_build, 4, default_if),
            [Decision::Start(1), Decision::Start(2)]
        );
        assert_eq!(
            next(&dag, &after_build, 1, default_if),
            [Decision::Start(1)]
        );
        // One slot is taken by the job in progress.
        let one_running = [Success, InProgress, Queued, Queued, Queued];
        assert_eq!(next(&dag, &one_running, 1, default_if), []);
        // A job waiting for approval takes no slot.
        let dag = Dag::new(&[("a", vec![]), ("b", vec![])]).unwrap();
        assert_eq!(
            next(&dag, &[Waiting, Queued], 1, default_if),
            [Decision::Start(1)]
        );
    }

    #[test]
    fn a_failure_skips_everything_after_it_at_once() {
        let dag = chain();
        let statuses = [Success, Failure, Success, Queued, Queued];
        assert_eq!(
            next(&dag, &statuses, 4, default_if),
            [Decision::Skip(3), Decision::Skip(4)]
        );
        let ended = [Success, Failure, Success, Skipped, Skipped];
        assert_eq!(outcome(&ended), Some(Failure));
    }

    #[test]
    fn conditions_see_success_and_failure_of_every_job_before() {
        let dag = chain();
        // production runs `if: failure()`: staging was skipped because test failed.
        let statuses = [Success, Failure, Success, Skipped, Queued];
        let decisions = next(&dag, &statuses, 4, |job, needs| {
            Ok(if job == 4 {
                needs.failure
            } else {
                needs.success
            })
        });
        assert_eq!(decisions, [Decision::Start(4)]);
        let decisions = next(&dag, &[Queued; 5], 4, |_, _| Err("bad".into()));
        assert_eq!(
            decisions,
            [
                Decision::Fail(0, "bad".into()),
                Decision::Fail(1, "bad".into()),
                Decision::Fail(2, "bad".into()),
                Decision::Fail(3, "bad".into()),
                Decision::Fail(4, "bad".into())
            ]
        );
    }

    #[test]
    fn the_run_waits_only_when_nothing_else_moves() {
        assert_eq!(live_status(&[Success, Waiting, Queued]), Waiting);
        assert_eq!(live_status(&[InProgress, Waiting]), InProgress);
        assert_eq!(outcome(&[Success, Waiting]), None);
        assert_eq!(outcome(&[Success, Skipped]), Some(Success));
        assert_eq!(outcome(&[Cancelled, Success]), Some(Cancelled));
    }

    #[test]
    fn a_cancel_spares_only_a_rollout_under_way() {
        let jobs = [
            Live {
                status: Success,
                rolling_out: false,
            },
            Live {
                status: InProgress,
                rolling_out: true,
            },
            Live {
                status: Waiting,
                rolling_out: false,
            },
            Live {
                status: InProgress,
                rolling_out: false,
            },
            Live {
                status: Queued,
                rolling_out: false,
            },
        ];
        assert_eq!(to_cancel(&jobs), [2, 3, 4]);
    }
}
