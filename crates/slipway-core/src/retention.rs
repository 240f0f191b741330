//! Which kept releases to let go (docs/concepts.md: instances of the last `keep_releases`
//! releases stay around so a rollback needs no rebuild or pull).

/// Releases, given newest first, beyond the `keep` newest. A version listed twice is one
/// release, and `keep` is at least 1: the newest is the one running and is never dropped.
pub fn releases_to_drop(kept_newest_first: &[String], keep: u32) -> Vec<String> {
    let keep = usize::try_from(keep.max(1)).unwrap_or(usize::MAX);
    let mut distinct: Vec<&String> = Vec::new();
    for v in kept_newest_first {
        if !distinct.contains(&v) {
            distinct.push(v);
        }
    }
    distinct.into_iter().skip(keep).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn drops_the_oldest_beyond_keep() {
        let kept = v(&["v5", "v4", "v3", "v2", "v1"]);
        assert_eq!(releases_to_drop(&kept, 3), v(&["v2", "v1"]));
        assert_eq!(releases_to_drop(&kept, 5), v(&[]));
        assert_eq!(releases_to_drop(&kept, 10), v(&[]));
        assert_eq!(releases_to_drop(&[], 3), v(&[]));
    }

    #[test]
    fn keep_zero_still_keeps_the_running_release() {
        let kept = v(&["v3", "v2", "v1"]);
        assert_eq!(releases_to_drop(&kept, 0), v(&["v2", "v1"]));
    }

    #[test]
    fn a_redeployed_version_counts_once() {
        // v2 was rolled back to after v3: it is kept once, at its newest position.
        let kept = v(&["v2", "v3", "v2", "v1"]);
        assert_eq!(releases_to_drop(&kept, 2), v(&["v1"]));
    }
}
