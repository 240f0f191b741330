//! Flag evaluations per second on one core, in-process: a flag with a constraint, a 30%
//! sticky rollout and two weighted variants (the slowest path: two murmur3 hashes), over
//! 1,000 distinct contexts. Target: over 1,000,000 per second.
//!
//! Run: `cargo bench -p slipway-core --bench flags`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::hint::black_box;
use std::time::Instant;

use serde_json::{Map, Value, json};
use slipway_core::flags::Flag;

const TARGET: f64 = 1_000_000.0;
const EVALUATIONS: usize = 5_000_000;

fn main() {
    let flag: Flag = serde_json::from_value(json!({
        "key": "checkout.new-flow",
        "variants": [
            {"name": "blue", "value": "blue", "weight": 40},
            {"name": "green", "value": "green", "weight": 60},
            {"name": "off", "value": "none", "weight": 0}
        ],
        "default_variant": "off",
        "rollout": 30,
        "constraints": [{"context": "appVersion", "operator": "semver_gt", "values": ["1.2.0"]}]
    }))
    .unwrap();
    flag.validate().unwrap();
    let contexts: Vec<Map<String, Value>> = (0..1_000)
        .map(|i| {
            json!({ "targetingKey": format!("user-{i}"), "appVersion": "1.4.2", "country": "FR" })
                .as_object()
                .cloned()
                .unwrap()
        })
        .collect();

    // Warm up, then time one thread.
    for c in &contexts {
        black_box(flag.evaluate(c).ok());
    }
    let started = Instant::now();
    let mut split = 0usize;
    for i in 0..EVALUATIONS {
        let e = flag.evaluate(black_box(&contexts[i % contexts.len()]));
        if let Ok(e) = e {
            split += usize::from(e.variant.name != "off");
        }
    }
    let elapsed = started.elapsed();
    let per_sec = EVALUATIONS as f64 / elapsed.as_secs_f64();
    println!(
        "flag evaluations, in-process, one thread ({EVALUATIONS} in {:.0} ms; {:.0}% inside the rollout)",
        elapsed.as_secs_f64() * 1e3,
        100.0 * split as f64 / EVALUATIONS as f64
    );
    println!(
        "  {:>12.0}/s   target {:>9.0}/s   ratio {:.1}x   {}",
        per_sec,
        TARGET,
        per_sec / TARGET,
        if per_sec > TARGET {
            "ok"
        } else {
            "BELOW TARGET"
        }
    );
}
