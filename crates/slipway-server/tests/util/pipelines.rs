#![allow(dead_code)] // each test binary uses a different part of the shared helpers
//! Pipelines in tests: a git repository made with the git CLI, a server with pipelines
//! on it, and reading runs, their jobs and logs through the API.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{TestServer, config_yaml, poll_until};

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository in `dir/repo` with a first commit on `main` whose `check.sh` exits with
/// `check`.
pub fn init_repo(dir: &Path, check: i32) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch", "main"]);
    git(&repo, &["config", "user.email", "dev@example.com"]);
    git(&repo, &["config", "user.name", "Dev"]);
    commit(&repo, check);
    repo
}

/// A new commit whose `check.sh` exits with `check`; returns its SHA.
pub fn commit(repo: &Path, check: i32) -> String {
    let n = git(repo, &["rev-list", "--all", "--count"])
        .parse::<u32>()
        .unwrap_or(0);
    std::fs::write(
        repo.join("check.sh"),
        format!("echo check {n}\nexit {check}\n"),
    )
    .unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "--quiet", "-m", &format!("commit {n}")]);
    git(repo, &["rev-parse", "HEAD"])
}

pub fn commit_of(repo: &Path) -> String {
    git(repo, &["rev-parse", "HEAD"])
}

/// A server with the demo app, `envs` and `pipelines` (YAML, `{repo}` and `{dir}`
/// replaced), after `setup` made what the test needs in its dir.
pub async fn server(envs: &str, pipelines: &str, setup: impl FnOnce(&Path)) -> TestServer {
    TestServer::start_yaml(|dir| {
        setup(dir);
        let yaml = pipelines
            .replace("{repo}", &dir.join("repo").display().to_string())
            .replace("{dir}", &dir.display().to_string());
        format!("{}{yaml}", config_yaml(dir, envs, "", "1s"))
    })
    .await
}

pub async fn get(server: &TestServer, path: &str) -> Value {
    let (status, body) = server.call("GET", path, &server.admin, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Waits until run `id` is in one of `statuses`.
pub async fn run_reaches(server: &TestServer, id: i64, statuses: &[&str]) -> Value {
    let what = format!("run {id} to reach {statuses:?}");
    poll_until(&what, || async {
        let run = get(server, &format!("/api/v1/runs/{id}")).await;
        statuses
            .contains(&run["status"].as_str().unwrap_or(""))
            .then_some(run)
    })
    .await
}

/// Waits for the run of `pipeline` for commit `sha`.
pub async fn run_of(server: &TestServer, pipeline: &str, sha: &str) -> Value {
    poll_until(&format!("a run of {pipeline} for {sha}"), || async {
        let runs = get(server, &format!("/api/v1/pipelines/{pipeline}/runs")).await;
        runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["commit"] == sha)
            .cloned()
    })
    .await
}

pub fn job<'r>(run: &'r Value, name: &str) -> &'r Value {
    run["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {run:#}"))
}

pub fn statuses(run: &Value) -> Vec<(String, String)> {
    run["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap().to_owned(),
                j["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The messages of a run's log (of one job), oldest first.
pub async fn log(server: &TestServer, id: i64, job: Option<&str>) -> Vec<String> {
    let query = job.map(|j| format!("?job={j}")).unwrap_or_default();
    let body = get(server, &format!("/api/v1/runs/{id}/logs{query}")).await;
    body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}
