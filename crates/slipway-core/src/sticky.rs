//! Sticky traffic split (DESIGN §3): a user key hashes to one of 1000 buckets, and the
//! canary takes the lowest `weight × 10` of them, so a user stays on one side while the
//! weight only grows, and 0.1% steps are exact.

use std::io::Cursor;

/// Bucket of a user key in `0..1000`: `murmur3_32(key, seed 0) % 1000`.
pub fn bucket(key: &str) -> u32 {
    // Reading from an in-memory slice cannot fail; 0 keeps the function total anyway.
    murmur3::murmur3_32(&mut Cursor::new(key.as_bytes()), 0).unwrap_or(0) % 1000
}

/// Whether a user in `bucket` goes to the canary at `canary_weight_percent` (0–100).
pub fn on_canary(bucket: u32, canary_weight_percent: f64) -> bool {
    // Round to a whole number of buckets: 12.3 × 10 is 123.00000000000001 in floating
    // point and must mean 123 buckets, not 124. NaN casts to 0 (no canary).
    let buckets = (canary_weight_percent * 10.0).round().clamp(0.0, 1000.0) as u32;
    bucket < buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_test_vectors() {
        // Reference murmur3_32 values with seed 0 (SMHasher / Unleash's murmurhash3).
        assert_eq!(bucket(""), 0);
        assert_eq!(bucket("hello"), 0x248b_fa47 % 1000);
        assert_eq!(bucket("hello"), 351);
        assert_eq!(
            bucket("The quick brown fox jumps over the lazy dog"),
            0x2e4f_f723 % 1000
        );
        assert_eq!(bucket("The quick brown fox jumps over the lazy dog"), 547);
    }

    #[test]
    fn buckets_are_stable_and_in_range() {
        for i in 0..2_000 {
            let key = format!("user-{i}");
            let b = bucket(&key);
            assert!(b < 1000);
            assert_eq!(bucket(&key), b);
        }
    }

    #[test]
    fn weight_edges() {
        assert!(!on_canary(0, 0.0));
        assert!(on_canary(0, 0.1));
        assert!(!on_canary(1, 0.1));
        assert!(on_canary(122, 12.3));
        assert!(!on_canary(123, 12.3));
        assert!(on_canary(999, 100.0));
        assert!(!on_canary(0, f64::NAN));
        assert!(!on_canary(0, -5.0));
        assert!(on_canary(999, 150.0));
    }

    #[test]
    fn split_is_close_to_the_weight_and_users_only_move_to_canary() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
        let at = |w: f64| keys.iter().filter(|k| on_canary(bucket(k), w)).count();
        let ten = at(10.0);
        assert!((900..=1_100).contains(&ten), "10% gave {ten} of 10000");
        // Raising the weight never sends a canary user back to stable.
        for k in &keys {
            let b = bucket(k);
            if on_canary(b, 10.0) {
                assert!(on_canary(b, 50.0));
            }
        }
    }
}
