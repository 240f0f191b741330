//! The demo images and the docker CLI, for every test that runs real containers (the
//! docker driver's and the server's end-to-end ones include this file).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The demo images by tag (`v1`, `v2`, `v3`) and their IDs, built by
/// `bench/docker-images.sh` once per test process (a no-op when they are current).
/// Panics with the script's message when the daemon does not answer: CI has Docker, and
/// a silent skip would hide that these tests did not run.
pub fn images() -> &'static BTreeMap<String, String> {
    static IMAGES: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/docker-images.sh");
        let out = Command::new("bash").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "the docker driver tests need a Docker daemon that answers; {} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(tag, id)| (tag.to_owned(), id.to_owned()))
            .collect()
    })
}

/// Runs the docker CLI; panics with its error output when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Removes every container `docker ps --filter <filter>` lists, with its anonymous
/// volumes, best effort: for guards that clean up when a test ends or fails.
pub fn remove_containers(filter: &str) {
    let Ok(out) = Command::new("docker")
        .args(["ps", "-aq", "--no-trunc", "--filter", filter])
        .output()
    else {
        return;
    };
    let ids = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<&str> = ids.lines().collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&ids)
            .output();
    }
}
