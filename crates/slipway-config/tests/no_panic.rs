//! No input makes the parser panic: many mangled variants of valid and broken files all
//! end in `Ok` or in located diagnostics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::path::Path;

const SEEDS: &[&str] = &[
    include_str!("data/design.yaml"),
    "version: 1\nenvironments:\n  a: {listen: '127.0.0.1:1', requires: [b], strategy: {canary: {steps: [{weight: 5}, {pause: manual}]}}}\n  b: {listen: '127.0.0.1:2', requires: [a], protection: {reviewers: [x], windows: ['Mon-Fri 09:00-17:00']}}\n",
    "version: 1\napps: {w: {driver: docker, image: r/w, port: 80, smoke: [{get: /}], health: {interval: 1s}}}\nusers: {x: {role: admin}}\nserver: {listen: '[::1]:7', tick: 1m30s}\n",
    "a: &x [1, *x]\n",
    "version: 1\nnotifications:\n  - {url: 'https://h.example/x', events: ['*'], format: slack, secret: {env: K}, attempts: 3, backoff: 1s}\n  - url: http://127.0.0.1:1\n    events: [run.failed, deployment.rolled_back]\n",
    "version: 1\napps: {w: {run: x}}\nenvironments: {s: {listen: '127.0.0.1:3'}}\npipelines:\n  p:\n    on: {push: {repository: r, branches: [main]}, dispatch: {inputs: {v: {required: true}}}}\n    secrets: {T: {env: T}}\n    jobs:\n      a: {steps: [{run: 'echo ${{ git.sha }} ${{ secrets.T }}'}]}\n      b: {needs: [a], if: \"${{ inputs.v == 'x' && success() }}\", deploy: {app: w, env: s, version: '${{ needs.a.outputs.v }}'}}\n",
];

/// Characters that change YAML structure the most.
const NOISE: &[char] = &[
    ':', '-', '[', ']', '{', '}', '*', '&', '!', '|', '>', '\t', ' ', '\n', '"', '\'', '%', '#',
    '0', 'é', '\u{0}',
];

fn check(source: &str) {
    let lines = source.lines().count() + 1;
    match slipway_config::parse(source, "slipway.yaml", Path::new("/srv")) {
        Ok(_) => {}
        Err(e) => {
            assert!(
                !e.diagnostics.is_empty(),
                "an error without diagnostics for {source:?}"
            );
            for d in &e.diagnostics {
                assert!(
                    d.line >= 1 && d.line <= lines && d.column >= 1,
                    "diagnostic outside the file: {d} for {source:?}"
                );
            }
            assert!(!e.to_string().is_empty());
        }
    }
}

/// A small deterministic generator so a failure reproduces.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn single_edits_never_panic() {
    for seed in SEEDS {
        let chars: Vec<char> = seed.chars().collect();
        // The long example costs ~1ms a parse in a debug build: cut it at fewer places,
        // and give every character of the short seeds every edit.
        let step = if chars.len() > 600 { 5 } else { 1 };
        for i in (0..=chars.len()).step_by(step) {
            check(&chars[..i].iter().collect::<String>());
        }
        if chars.len() > 600 {
            continue;
        }
        for i in 0..chars.len() {
            let mut deleted = chars.clone();
            deleted.remove(i);
            check(&deleted.iter().collect::<String>());
            for &c in NOISE {
                let mut replaced = chars.clone();
                replaced[i] = c;
                check(&replaced.iter().collect::<String>());
            }
        }
    }
}

#[test]
fn line_edits_never_panic() {
    for seed in SEEDS {
        let lines: Vec<&str> = seed.lines().collect();
        for i in 0..lines.len() {
            for variant in [
                format!("  {}", lines[i]),
                lines[i].trim_start().to_owned(),
                format!("{}\n{}", lines[i], lines[i]),
                String::new(),
            ] {
                let mut edited = lines.clone();
                edited[i] = &variant;
                check(&edited.join("\n"));
            }
        }
    }
}

#[test]
fn random_edits_never_panic() {
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    for round in 0..1500 {
        let seed = SEEDS[round % SEEDS.len()];
        let mut chars: Vec<char> = seed.chars().collect();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(chars.len() + 1);
            match rng.below(3) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 => chars.insert(at, NOISE[rng.below(NOISE.len())]),
                _ => {
                    // Copy a slice of the file somewhere else: keys and values in odd places.
                    let from = rng.below(chars.len());
                    let len = rng.below(40).min(chars.len() - from);
                    let piece: Vec<char> = chars[from..from + len].to_vec();
                    chars.splice(at..at, piece);
                }
            }
        }
        check(&chars.iter().collect::<String>());
    }
}
