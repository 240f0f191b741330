//! The rolling strategy as batches (docs/concepts.md): replace `replicas` instances while never
//! running more than `replicas + max_surge` nor fewer than `replicas - max_unavailable`
//! available ones.

/// One step of a rolling update: first stop `stop` old instances, then start `start` new
/// ones and wait until they are healthy before the next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingBatch {
    pub start: u32,
    pub stop: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "max_surge and max_unavailable are both 0: a rolling update could neither add nor \
         remove an instance"
    )]
    NoProgress,
}

/// The batches that replace `replicas` old instances by as many new ones.
///
/// Each batch stops as many old instances as the unavailability budget allows (counting
/// the new ones of earlier batches, healthy by then), then starts as many new ones as the
/// surge budget allows. A last batch may only stop the old instances left over.
pub fn rolling_batches(
    replicas: u32,
    max_surge: u32,
    max_unavailable: u32,
) -> Result<Vec<RollingBatch>, PlanError> {
    let (mut old, mut new) = (replicas, 0);
    let mut batches = Vec::new();
    while let Some(batch) = next_batch(replicas, max_surge, max_unavailable, old, new)? {
        old -= batch.stop;
        new += batch.start;
        batches.push(batch);
    }
    Ok(batches)
}

/// The next batch from where a rolling update stands: `old` instances of the previous
/// release still run and `new` healthy ones of the new release do. `None` when done.
/// Working from the live counts (not a position in a precomputed plan) lets a rollout
/// resumed after a restart pick up wherever it was.
pub fn next_batch(
    replicas: u32,
    max_surge: u32,
    max_unavailable: u32,
    old: u32,
    new: u32,
) -> Result<Option<RollingBatch>, PlanError> {
    if max_surge == 0 && max_unavailable == 0 {
        return Err(PlanError::NoProgress);
    }
    let (n, old, new) = (u64::from(replicas), u64::from(old), u64::from(new));
    if old == 0 && new >= n {
        return Ok(None);
    }
    let ceiling = n + u64::from(max_surge);
    let floor = n.saturating_sub(u64::from(max_unavailable));
    let stop = old.min((old + new).saturating_sub(floor));
    let start = n
        .saturating_sub(new)
        .min(ceiling.saturating_sub(old - stop + new));
    // With a non-zero budget every batch moves at least one instance; this guard only
    // keeps a future mistake from looping forever.
    if start == 0 && stop == 0 {
        return Err(PlanError::NoProgress);
    }
    // Both are at most `old` or `replicas`, which are u32.
    Ok(Some(RollingBatch {
        start: start as u32,
        stop: stop as u32,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(start: u32, stop: u32) -> RollingBatch {
        RollingBatch { start, stop }
    }

    #[test]
    fn the_next_batch_resumes_from_live_counts() {
        // Two of three replaced, one old left, none may be unavailable: surge, then stop.
        assert_eq!(next_batch(3, 1, 0, 1, 2).unwrap(), Some(b(1, 0)));
        assert_eq!(next_batch(3, 1, 0, 1, 3).unwrap(), Some(b(0, 1)));
        assert_eq!(next_batch(3, 1, 0, 0, 3).unwrap(), None);
        // A first deployment has nothing old: all replicas at once, within the surge.
        assert_eq!(next_batch(3, 1, 0, 0, 0).unwrap(), Some(b(3, 0)));
        assert_eq!(next_batch(3, 0, 0, 3, 0), Err(PlanError::NoProgress));
    }

    #[test]
    fn surge_only_starts_before_it_stops() {
        assert_eq!(
            rolling_batches(3, 1, 0).unwrap(),
            vec![b(1, 0), b(1, 1), b(1, 1), b(0, 1)]
        );
    }

    #[test]
    fn unavailable_only_stops_before_it_starts() {
        assert_eq!(
            rolling_batches(3, 0, 1).unwrap(),
            vec![b(1, 1), b(1, 1), b(1, 1)]
        );
    }

    #[test]
    fn surge_and_unavailable_together() {
        assert_eq!(rolling_batches(3, 1, 1).unwrap(), vec![b(2, 1), b(1, 2)]);
        assert_eq!(
            rolling_batches(4, 2, 0).unwrap(),
            vec![b(2, 0), b(2, 2), b(0, 2)]
        );
    }

    #[test]
    fn large_budgets_replace_everything_at_once() {
        assert_eq!(rolling_batches(3, 3, 0).unwrap(), vec![b(3, 0), b(0, 3)]);
        assert_eq!(rolling_batches(3, 0, 5).unwrap(), vec![b(3, 3)]);
    }

    #[test]
    fn zero_replicas_is_an_empty_plan() {
        assert_eq!(rolling_batches(0, 1, 0).unwrap(), vec![]);
    }

    #[test]
    fn no_budget_is_an_error() {
        let err = rolling_batches(3, 0, 0).unwrap_err();
        assert_eq!(err, PlanError::NoProgress);
        assert!(
            err.to_string()
                .contains("max_surge and max_unavailable are both 0")
        );
    }

    #[test]
    fn budgets_hold_at_every_step_for_many_shapes() {
        for n in 0..12u32 {
            for surge in 0..5u32 {
                for unavailable in 0..5u32 {
                    if surge == 0 && unavailable == 0 {
                        continue;
                    }
                    let plan = rolling_batches(n, surge, unavailable).unwrap();
                    let (mut old, mut new) = (n, 0u32);
                    for step in &plan {
                        old -= step.stop;
                        assert!(
                            old + new >= n.saturating_sub(unavailable),
                            "{n} {surge} {unavailable}"
                        );
                        new += step.start;
                        assert!(old + new <= n + surge, "{n} {surge} {unavailable}");
                    }
                    assert_eq!((old, new), (0, n), "{n} {surge} {unavailable}");
                }
            }
        }
    }
}
