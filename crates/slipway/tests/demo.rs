//! `slipway demo` end to end: the real binary, a real server, real processes and traffic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::process::Stdio;

use util::{Sweep, code, processes_under, slipway, stderr, stdout};

#[test]
fn the_demo_tells_the_whole_story_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    // The demo makes its directory under TMPDIR: here, so the sweep finds its instances.
    let _sweep = Sweep(dir.path().to_path_buf());
    let out = slipway(dir.path())
        .arg("demo")
        .env("TMPDIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(code(&out), 0, "stdout:\n{so}\nstderr:\n{se}");
    // The self-approval is refused, v3 fails, the manual rollbacks succeed, and it says so.
    assert!(so.contains("refused (409"), "{so}");
    assert!(so.contains("v3   failure"), "{so}");
    assert!(so.contains("staging still serves v2"), "{so}");
    assert!(so.contains("rollback from v2 to v1"), "{so}");
    // v4's canary: the split moves, the analysis fails it with its figures, traffic goes
    // back to v2 and the deployment ends `failure` without anyone acting.
    let v4 = |needle: &str| {
        so.lines()
            .any(|l| l.contains("production  v4") && l.contains(needle))
    };
    assert!(v4("canary       v2 80% · v4 20%"), "{so}");
    assert!(v4("analysis     fail: error rate"), "{so}");
    assert!(v4("traffic      100% back to v2"), "{so}");
    assert!(
        v4("failure      canary analysis failed: error rate"),
        "{so}"
    );
    assert!(so.contains("put all traffic back on v2"), "{so}");
    assert!(so.contains("the demo went as expected"), "{so}");
    // The Docker daemon answers here (CI checks that it does): the container story runs
    // and leaves no container behind.
    assert!(so.contains("▸ containers: the Docker daemon at"), "{so}");
    assert!(so.contains("shop  staging     v1   success"), "{so}");
    assert!(
        so.contains("production runs the digest that succeeded in staging"),
        "{so}"
    );
    assert!(
        so.contains("is gone:") && so.contains("production's router follows: ok release=v1"),
        "{so}"
    );
    for env in ["staging", "production"] {
        let name = format!("name=^slipway-shop-{env}-v1-1$");
        let out = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &name])
            .output()
            .unwrap();
        assert_eq!(
            stdout(&out).trim(),
            "",
            "the demo's {env} container is removed"
        );
    }
    // Its temporary directory is gone and no app instance outlives it.
    let first = so.lines().next().unwrap_or_default();
    let demo_dir = first.trim_start_matches("slipway demo in ").trim();
    assert!(
        demo_dir.starts_with(&*dir.path().to_string_lossy()),
        "{first}"
    );
    assert!(!std::path::Path::new(demo_dir).exists(), "{first}");
    assert_eq!(processes_under(dir.path()), Vec::<i32>::new());
}
