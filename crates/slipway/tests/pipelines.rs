//! The pipeline commands on the real binaries: `slipway run` (with `--input`, `--wait`,
//! `--json`), `slipway runs`, `runs show|logs|cancel`, `slipway trigger` from a hook,
//! `slipway validate` on a broken pipeline, and a `slipway server` killed with SIGKILL in
//! the middle of a step: the next one ends what the dead one left running and fails the
//! job with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use util::{Server, code, run, run_for, slipway, stderr, stdout, wait_until};

const WITHIN: Duration = Duration::from_secs(60);

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository in `dir/repo` with one commit on `main`; returns its SHA.
fn init_repo(dir: &Path) -> String {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch", "main"]);
    git(&repo, &["config", "user.email", "dev@example.com"]);
    git(&repo, &["config", "user.name", "Dev"]);
    commit(&repo, "one")
}

fn commit(repo: &Path, text: &str) -> String {
    std::fs::write(repo.join("file.txt"), text).unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "--quiet", "-m", text]);
    git(repo, &["rev-parse", "HEAD"])
}

/// A config with `pipelines` (YAML) and no apps.
fn config(dir: &Path, pipelines: &str) -> impl FnOnce(u16) -> String {
    let pipelines = pipelines.replace("{dir}", &dir.display().to_string());
    move |port| {
        format!(
            "version: 1\nserver:\n  listen: 127.0.0.1:{port}\n  data_dir: data\n  tick: 50ms\n{pipelines}"
        )
    }
}

const HELLO: &str = r#"pipelines:
  hello:
    on:
      push: { repository: {dir}/repo, branches: [main], poll: 1h }
      dispatch: { inputs: { greeting: { required: true } } }
    jobs:
      say:
        steps:
          - run: echo "${{ inputs.greeting }} from ${{ git.short_sha }}"
          - run: echo "said=yes" >> "$SLIPWAY_OUTPUT"
      after:
        needs: [say]
        steps: [{ run: "echo after" }]
"#;

fn json(out: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(out), stderr(out)))
}

/// The runs of `pipeline`, as `slipway runs PIPELINE --json` shows them.
fn runs(server: &Server, pipeline: &str) -> Vec<Value> {
    let out = run(server.cli().args(["runs", pipeline, "--json"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    json(&out)["runs"].as_array().unwrap().clone()
}

#[test]
fn run_with_inputs_waits_shows_its_dag_and_its_logs() {
    let dir = tempfile::tempdir().unwrap();
    let sha = init_repo(dir.path());
    let server = Server::start_with(dir.path(), config(dir.path(), HELLO));
    // The first poll runs the head of main (no greeting: an empty input).
    assert!(wait_until(WITHIN, || runs(&server, "hello").len() == 1));

    let out = run_for(
        server.cli().args([
            "run",
            "hello",
            "--input",
            "greeting=hi",
            "--ref",
            "main",
            "--wait",
            "--json",
        ]),
        WITHIN,
    );
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let r = json(&out);
    for key in ["id", "pipeline", "status", "commit", "jobs"] {
        assert!(r.get(key).is_some(), "no {key} in {r:#}");
    }
    assert_eq!(
        (r["status"].as_str(), r["commit"].as_str()),
        (Some("success"), Some(sha.as_str()))
    );
    let say = &r["jobs"][0];
    for key in [
        "name",
        "status",
        "started_at",
        "finished_at",
        "outputs",
        "deployment_id",
    ] {
        assert!(say.get(key).is_some(), "no {key} in {say:#}");
    }
    assert_eq!(say["outputs"]["said"], "yes");
    // --wait printed the log on standard error, the object alone on standard output.
    assert!(
        stderr(&out).contains(&format!("say | hi from {}", &sha[..7])),
        "{}",
        stderr(&out)
    );
    let id = r["id"].as_i64().unwrap().to_string();

    let out = run(server.cli().args(["runs", "show", &id]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(
        shown.starts_with(&format!(
            "run {id} · hello · success at {} (main)",
            &sha[..7]
        )),
        "{shown}"
    );
    let after = shown
        .lines()
        .find(|l| l.trim_start().starts_with("after"))
        .unwrap();
    assert!(
        after.contains("success") && after.contains("say"),
        "{shown}"
    );

    let out = run(server.cli().args(["runs", "logs", &id, "--job", "after"]));
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("after | after"), "{}", stdout(&out));
    assert!(
        !stdout(&out).contains("hi from"),
        "only the job's lines: {}",
        stdout(&out)
    );
    let out = run_for(server.cli().args(["runs", "logs", &id, "--follow"]), WITHIN);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).contains("run · success: every job succeeded"),
        "{}",
        stdout(&out)
    );

    let out = run(server.cli().args(["runs"]));
    assert_eq!(code(&out), 0);
    assert_eq!(
        stdout(&out).lines().count(),
        3,
        "a header and two runs: {}",
        stdout(&out)
    );

    // A finished run cannot be cancelled: the operation fails (exit 1).
    let out = run(server.cli().args(["runs", "cancel", &id]));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("finished"), "{}", stderr(&out));
}

#[test]
fn bad_input_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    init_repo(dir.path());
    let server = Server::start_with(dir.path(), config(dir.path(), HELLO));
    for (args, says) in [
        (vec!["run", "hello"], "needs the input `greeting`"),
        (
            vec!["run", "hello", "--input", "greeting"],
            "expected KEY=VALUE",
        ),
        (
            vec!["run", "helo", "--input", "greeting=x"],
            "did you mean `hello`?",
        ),
        (
            vec!["run", "hello", "--input", "greeting=x", "--ref", "nope"],
            "no branch or tag `nope`",
        ),
        (vec!["runs", "show", "999"], "run 999 not found"),
    ] {
        let out = run(server.cli().args(&args));
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn trigger_from_a_hook_starts_one_run_per_new_commit() {
    let dir = tempfile::tempdir().unwrap();
    init_repo(dir.path());
    let server = Server::start_with(dir.path(), config(dir.path(), HELLO));
    assert!(wait_until(WITHIN, || runs(&server, "hello").len() == 1));
    let repo = dir.path().join("repo");
    let sha = commit(&repo, "two");
    // As a post-receive hook calls it: from inside the repository, with a full ref.
    let trigger = |cmd: &mut Command| {
        run(cmd.current_dir(&repo).args([
            "trigger",
            "--repository",
            ".",
            "--ref",
            "refs/heads/main",
            "--sha",
            &sha,
        ]))
    };
    let out = trigger(&mut server.cli());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("of hello created at {} (main)", &sha[..7])),
        "{}",
        stdout(&out)
    );
    let out = trigger(&mut server.cli());
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("no run started"), "{}", stderr(&out));
    assert_eq!(runs(&server, "hello").len(), 2);
    let out = run(server.cli().args([
        "trigger",
        "--repository",
        "/elsewhere",
        "--ref",
        "main",
        "--sha",
        &sha,
    ]));
    assert!(stderr(&out).contains("no run started"));
    let out = run(server.cli().args([
        "trigger",
        "--repository",
        ".",
        "--ref",
        "main",
        "--sha",
        "not-a-sha",
    ]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn validate_reports_a_cycle_and_an_unknown_name_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slipway.yaml"),
        "version: 1
pipelines:
  ci:
    on: { dispatch: {} }
    jobs:
      a: { needs: [b], steps: [{ run: 'echo ${{ inputs.nope }}' }] }
      b: { needs: [a], steps: [{ run: 'true' }] }
",
    )
    .unwrap();
    let out = run(slipway(dir.path()).args(["validate"]));
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("slipway.yaml:6:49: pipelines.ci.jobs.a.steps[0].run: unknown input `nope`"),
        "{err}"
    );
    assert!(
        err.contains(
            "slipway.yaml:7:20: pipelines.ci.jobs.b.needs[0]: `needs` forms a cycle: a -> b -> a"
        ),
        "{err}"
    );
}

#[test]
fn a_pipeline_secret_that_cannot_be_read_fails_validate_and_stops_the_server_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(
        dir.path(),
        "pipelines:
  release:
    on: { dispatch: {} }
    secrets:
      TOKEN: { env: SLIPWAY_TEST_PIPELINE_SECRET_NOBODY_SETS }
      KEY: { file: missing.key }
    jobs: { use: { steps: [{ run: 'true' }] } }
",
    )(util::free_port());
    std::fs::write(dir.path().join("slipway.yaml"), yaml).unwrap();
    let expected = [
        "slipway.yaml:10:16: pipelines.release.secrets.TOKEN.env: secret TOKEN: the server's environment has no SLIPWAY_TEST_PIPELINE_SECRET_NOBODY_SETS (or it is empty)",
        "slipway.yaml:11:14: pipelines.release.secrets.KEY.file: secret KEY: cannot read ./missing.key: No such file or directory",
    ];
    for command in ["validate", "server"] {
        let out = run_for(slipway(dir.path()).arg(command), WITHIN);
        assert_eq!(code(&out), 2, "{command}: {}", stderr(&out));
        for line in expected {
            assert!(stderr(&out).contains(line), "{command}: {}", stderr(&out));
        }
    }
    assert!(!dir.path().join("data").join("slipway.db").exists());
}

/// Alive = exists and is not a zombie.
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .is_some_and(|i| !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')))
}

/// SIGKILLs the step's `sleep` when the test ends, also when it fails.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0)
            && let Ok(pid) = i32::try_from(self.0)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn a_server_killed_mid_step_is_picked_up_by_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let pipelines = r#"pipelines:
  slow:
    on: { dispatch: {} }
    jobs:
      hang: { steps: [{ run: "sleep 1000 & echo pid=$! > {dir}/pid; wait" }] }
"#;
    let mut server = Server::start_with(dir.path(), config(dir.path(), pipelines));
    let out = run(server.cli().args(["run", "slow", "--json"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = json(&out)["id"].as_i64().unwrap().to_string();
    let pid_file = dir.path().join("pid");
    assert!(wait_until(WITHIN, || pid_file.is_file()
        && std::fs::read_to_string(&pid_file).unwrap().ends_with('\n')));
    let sleep: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .trim_start_matches("pid=")
        .parse()
        .unwrap();
    let _reap = KillOnDrop(sleep);

    server.kill();
    assert!(
        alive(sleep),
        "a SIGKILL of the server does not reach the step's group"
    );
    let server = server.start_again();
    assert!(
        wait_until(WITHIN, || !alive(sleep)),
        "the new server ends what the dead one's step left"
    );
    let shown = |server: &Server| json(&run(server.cli().args(["runs", "show", &id, "--json"])));
    assert!(wait_until(WITHIN, || shown(&server)["status"] == "failure"));
    let r = shown(&server);
    assert_eq!(
        r["jobs"][0]["reason"],
        "the server stopped while attempt 1 ran; its steps were ended"
    );
    let out = run(server.cli().args(["runs", "logs", &id]));
    // The shell and its `sleep`.
    assert!(
        stdout(&out).contains("ended 2 process(es) that the last server's steps left running"),
        "{}",
        stdout(&out)
    );
}
