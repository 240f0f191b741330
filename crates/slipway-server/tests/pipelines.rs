//! Pipelines on a real server: a git repository made by the test (git CLI), steps as
//! real processes, deploy jobs through the real process driver and router. A push to
//! main runs build → test → staging → (approval) → production; a failing test stops the
//! chain; dispatch takes inputs; a newer push supersedes a run waiting for approval; a
//! job's timeout ends its process group; secrets never reach the database; a restart
//! mid-run retries or fails the job that was running.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::path::Path;

use serde_json::{Value, json};
use util::pipelines::{
    self, commit, commit_of, get, init_repo, job, log, run_of, run_reaches, statuses,
};
use util::{Reap, TestServer, alive, config_yaml, poll_until, printed_pid, wait_until};

/// Staging, and production behind one approval by alice.
const ENVS: &str = "  staging:
    listen: 127.0.0.1:0
    strategy: recreate
  production:
    listen: 127.0.0.1:0
    strategy: recreate
    requires: [staging]
    protection: { reviewers: [alice], required_approvals: 1 }
";

/// The release pipeline of docs/config.md, on the test's repository; `./check.sh` of the
/// commit is its test, so a commit can make it fail.
const RELEASE: &str = r#"pipelines:
  release:
    on:
      push: { repository: {repo}, branches: [main], poll: 100ms }
    jobs:
      build:
        steps:
          - run: echo "building sha-${{ git.short_sha }} of ${{ git.branch }}"
          - run: echo "version=sha-${{ git.short_sha }}" >> "$SLIPWAY_OUTPUT"
      test:
        needs: [build]
        steps: [{ run: sh ./check.sh }]
      deploy-staging:
        needs: [test]
        deploy: { app: web, env: staging, version: "${{ needs.build.outputs.version }}" }
      deploy-production:
        needs: [deploy-staging]
        deploy: { app: web, env: production, version: "${{ needs.build.outputs.version }}" }
"#;
/// A server with the demo app, [`ENVS`] and `pipelines` (see [`pipelines::server`]).
async fn server(pipelines: &str, setup: impl FnOnce(&Path)) -> TestServer {
    pipelines::server(ENVS, pipelines, setup).await
}

/// The pid a job's step printed as `pid=N`, once it has.
async fn step_pid(server: &TestServer, id: i64, job: &str) -> u32 {
    poll_until(&format!("job {job} to print a pid"), || async {
        let lines = log(server, id, Some(job)).await;
        lines
            .iter()
            .any(|l| l.starts_with("pid="))
            .then(|| printed_pid(&lines))
    })
    .await
}

/// Commits again and waits until the run for that commit supersedes run `first` (of the
/// concurrency group `release`); returns the new run's id and the first run as it ended.
async fn push_again_superseding(server: &TestServer, first: i64) -> (String, i64, Value) {
    let sha = commit(&server.dir.path().join("repo"), 0);
    let second = run_of(server, "release", &sha).await["id"]
        .as_i64()
        .unwrap();
    let first_run = run_reaches(server, first, &["cancelled", "failure", "success"]).await;
    assert_eq!(first_run["status"], "cancelled", "{first_run:#}");
    assert_eq!(
        first_run["reason"],
        format!("superseded by run {second} of concurrency group release")
    );
    (sha, second, first_run)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_push_to_main_runs_the_chain_through_approval_to_production() {
    let mut sha = String::new();
    let server = server(RELEASE, |dir| sha = commit_of(&init_repo(dir, 0))).await;
    let run = run_of(&server, "release", &sha).await;
    let id = run["id"].as_i64().unwrap();
    assert_eq!(run["trigger"], "push");
    assert_eq!(run["ref"], "main");

    // Production waits for alice: the job and the run say `waiting`.
    let run = run_reaches(&server, id, &["waiting", "failure", "success"]).await;
    let version = format!("sha-{}", &sha[..7]);
    assert_eq!(
        statuses(&run),
        pairs(&[
            ("build", "success"),
            ("test", "success"),
            ("deploy-staging", "success"),
            ("deploy-production", "waiting"),
        ]),
        "{run:#}"
    );
    assert_eq!(job(&run, "build")["outputs"]["version"], version.as_str());
    let (_, body) = server.through_router("staging").await;
    assert!(body.contains(&version), "staging serves {body}");
    let staging = job(&run, "deploy-staging")["deployment_id"]
        .as_i64()
        .unwrap();
    let d = get(&server, &format!("/api/v1/deployments/{staging}")).await;
    assert_eq!(
        (d["commit"].as_str(), d["ref"].as_str()),
        (Some(sha.as_str()), Some("main"))
    );
    assert!(
        d["committed_at"].is_string(),
        "lead time needs the commit time: {d:#}"
    );

    let production = job(&run, "deploy-production")["deployment_id"]
        .as_i64()
        .unwrap();
    let alice = server.user("alice", "approver").await;
    let (status, body) = server
        .call(
            "POST",
            &format!("/api/v1/deployments/{production}/approve"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let run = run_reaches(&server, id, &["success", "failure", "cancelled"]).await;
    assert_eq!(run["status"], "success", "{run:#}");
    assert!(run["finished_at"].is_string());
    let (_, body) = server.through_router("production").await;
    assert!(body.contains(&version), "production serves {body}");

    let build = log(&server, id, Some("build")).await;
    assert!(
        build.contains(&format!("building {version} of main")),
        "{build:#?}"
    );
    let all = log(&server, id, None).await;
    assert_eq!(
        all.first().map(String::as_str),
        Some(format!("queued: {} pushed to main", sha).as_str())
    );
    assert!(
        all.iter().any(|l| l == "success: every job succeeded"),
        "{all:#?}"
    );
    // One commit, one run: the poll keeps seeing the same head.
    let runs = get(&server, "/api/v1/pipelines/release/runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_failing_test_stops_the_chain_and_nothing_deploys() {
    let mut sha = String::new();
    let server = server(RELEASE, |dir| sha = commit_of(&init_repo(dir, 3))).await;
    let id = run_of(&server, "release", &sha).await["id"]
        .as_i64()
        .unwrap();
    let run = run_reaches(&server, id, &["success", "failure", "cancelled"]).await;
    assert_eq!(run["status"], "failure", "{run:#}");
    assert_eq!(run["reason"], "failed: test");
    assert_eq!(
        statuses(&run),
        pairs(&[
            ("build", "success"),
            ("test", "failure"),
            ("deploy-staging", "skipped"),
            ("deploy-production", "skipped"),
        ])
    );
    assert_eq!(
        job(&run, "test")["reason"],
        "step 1/1 exited with status 3: check 0"
    );
    let deployments = get(&server, "/api/v1/deployments").await;
    assert_eq!(deployments["deployments"], json!([]), "nothing deploys");
    server.stop().await;
}

#[tokio::test]
async fn a_dispatch_takes_its_inputs_and_bad_ones_are_refused() {
    let pipelines = r#"pipelines:
  hello:
    on:
      dispatch:
        inputs:
          greeting: { required: true }
          name: { default: world }
    env: { PUNCTUATION: "!" }
    jobs:
      say:
        steps:
          - run: echo "${{ inputs.greeting }}, ${{ inputs.name }}${{ vars.PUNCTUATION }}"
      shout:
        needs: [say]
        if: inputs.greeting == 'hey'
        steps: [{ run: echo HEY }]
"#;
    let server = server(pipelines, |_| {}).await;
    let dispatch = |body: Value| {
        let server = &server;
        async move {
            server
                .call(
                    "POST",
                    "/api/v1/pipelines/hello/runs",
                    &server.admin,
                    Some(body),
                )
                .await
        }
    };
    let (status, run) = dispatch(json!({ "inputs": { "greeting": "hello" } })).await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["trigger"], "dispatch");
    assert_eq!(
        run["inputs"],
        json!({ "greeting": "hello", "name": "world" })
    );
    assert_eq!(run["commit"], Value::Null);
    let id = run["id"].as_i64().unwrap();
    let run = run_reaches(&server, id, &["success", "failure"]).await;
    assert_eq!(run["status"], "success", "{run:#}");
    assert_eq!(job(&run, "shout")["status"], "skipped");
    assert_eq!(job(&run, "shout")["reason"], "its `if:` does not hold");
    assert!(
        log(&server, id, Some("say"))
            .await
            .contains(&"hello, world!".to_owned())
    );

    let cases = [
        (json!({}), 400, "missing_input"),
        (
            json!({ "inputs": { "greting": "x", "greeting": "y" } }),
            400,
            "unknown_input",
        ),
        (
            json!({ "inputs": { "greeting": "x" }, "ref": "main" }),
            400,
            "no_repository",
        ),
        (json!({ "inputs": "x" }), 400, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = dispatch(body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    let (status, answer) = server
        .call(
            "POST",
            "/api/v1/pipelines/helo/runs",
            &server.admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `hello`?")
    );
    let viewer = server.user("vera", "viewer").await;
    let (status, _) = server
        .call(
            "POST",
            "/api/v1/pipelines/hello/runs",
            &viewer,
            Some(json!({ "inputs": { "greeting": "x" } })),
        )
        .await;
    assert_eq!(status, 403);
    server.stop().await;
}

#[tokio::test]
async fn a_second_push_supersedes_the_run_that_waits_for_approval() {
    let release = RELEASE.replace(
        "    jobs:\n",
        "    concurrency: { group: release, cancel_in_progress: false }\n    jobs:\n",
    );
    let mut first_sha = String::new();
    let server = server(&release, |dir| first_sha = commit_of(&init_repo(dir, 0))).await;
    let first = run_of(&server, "release", &first_sha).await["id"]
        .as_i64()
        .unwrap();
    let waiting = run_reaches(&server, first, &["waiting", "failure", "success"]).await;
    assert_eq!(waiting["status"], "waiting", "{waiting:#}");
    let old_deployment = job(&waiting, "deploy-production")["deployment_id"]
        .as_i64()
        .unwrap();

    let (second_sha, second, first_run) = push_again_superseding(&server, first).await;
    assert_eq!(job(&first_run, "deploy-production")["status"], "cancelled");
    let d = get(&server, &format!("/api/v1/deployments/{old_deployment}")).await;
    assert_eq!(d["status"], "cancelled", "{d:#}");

    let second_run = run_reaches(&server, second, &["waiting", "failure", "success"]).await;
    assert_eq!(second_run["status"], "waiting", "{second_run:#}");
    let (_, body) = server.through_router("staging").await;
    assert!(
        body.contains(&second_sha[..7]),
        "staging runs the newer commit: {body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_job_timeout_ends_its_whole_process_group() {
    let pipelines = r#"pipelines:
  slow:
    on: { dispatch: {} }
    jobs:
      hang:
        timeout: 1s
        steps: [{ run: "sleep 1000 & echo pid=$!; wait" }]
"#;
    let server = server(pipelines, |_| {}).await;
    let (status, run) = server
        .call("POST", "/api/v1/pipelines/slow/runs", &server.admin, None)
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_i64().unwrap();
    let sleep = step_pid(&server, id, "hang").await;
    let _reap = Reap(sleep);
    let run = run_reaches(&server, id, &["failure", "success"]).await;
    assert_eq!(run["status"], "failure");
    assert_eq!(
        job(&run, "hang")["reason"],
        "timed out after 1s (the job's timeout); its processes were ended"
    );
    wait_until("the step's child to be gone", || async { !alive(sleep) }).await;
    server.stop().await;
}

#[tokio::test]
async fn a_cancel_ends_the_steps_and_the_run() {
    let pipelines = r#"pipelines:
  slow:
    on: { dispatch: {} }
    jobs:
      hang: { steps: [{ run: "sleep 1000 & echo pid=$!; wait" }] }
      after: { needs: [hang], steps: [{ run: "true" }] }
"#;
    let server = server(pipelines, |_| {}).await;
    let (_, run) = server
        .call("POST", "/api/v1/pipelines/slow/runs", &server.admin, None)
        .await;
    let id = run["id"].as_i64().unwrap();
    let sleep = step_pid(&server, id, "hang").await;
    let _reap = Reap(sleep);
    let (status, body) = server
        .call(
            "POST",
            &format!("/api/v1/runs/{id}/cancel"),
            &server.admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let run = run_reaches(&server, id, &["cancelled", "failure", "success"]).await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    assert_eq!(run["reason"], "cancelled by admin");
    assert_eq!(
        statuses(&run),
        pairs(&[("hang", "cancelled"), ("after", "cancelled")])
    );
    wait_until("the step's child to be gone", || async { !alive(sleep) }).await;
    let (status, body) = server
        .call(
            "POST",
            &format!("/api/v1/runs/{id}/cancel"),
            &server.admin,
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("finished"))
    );
    server.stop().await;
}

const SECRET: &str = "s3cr3t-Sh0uld-N3ver-B3-St0red";

#[tokio::test]
async fn secrets_are_masked_and_never_reach_the_database() {
    let pipelines = r#"pipelines:
  leak:
    on: { dispatch: {} }
    secrets: { TOKEN: { file: {dir}/token } }
    jobs:
      print:
        env: { TOKEN: "${{ secrets.TOKEN }}" }
        steps:
          - run: echo "env $TOKEN"; echo "inline ${{ secrets.TOKEN }}" >&2
          - run: echo "leaked=$TOKEN" >> "$SLIPWAY_OUTPUT"; echo "last $TOKEN"; exit 1
"#;
    let server = server(pipelines, |dir| {
        std::fs::write(dir.join("token"), format!("{SECRET}\n")).unwrap()
    })
    .await;
    let (_, run) = server
        .call("POST", "/api/v1/pipelines/leak/runs", &server.admin, None)
        .await;
    let id = run["id"].as_i64().unwrap();
    let run = run_reaches(&server, id, &["failure", "success"]).await;
    assert_eq!(
        job(&run, "print")["reason"],
        "step 2/2 exited with status 1: last ***"
    );
    let lines = log(&server, id, Some("print")).await;
    assert!(lines.contains(&"env ***".to_owned()), "{lines:#?}");
    assert!(lines.contains(&"inline ***".to_owned()), "{lines:#?}");
    // The database, its write-ahead log and everything else the server keeps.
    let data = server.dir.path().join("data");
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
            assert!(!found, "the secret is in {}", path.display());
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_missing_secret_fails_the_run_before_any_job_and_says_which() {
    let pipelines = r#"pipelines:
  leak:
    on: { dispatch: {} }
    secrets: { TOKEN: { env: SLIPWAY_TEST_SECRET_NOBODY_SETS } }
    jobs: { print: { steps: [{ run: "echo ${{ secrets.TOKEN }}" }] } }
"#;
    let server = server(pipelines, |_| {}).await;
    let (_, run) = server
        .call("POST", "/api/v1/pipelines/leak/runs", &server.admin, None)
        .await;
    let run = run_reaches(
        &server,
        run["id"].as_i64().unwrap(),
        &["failure", "success"],
    )
    .await;
    assert_eq!(
        run["reason"],
        "secret TOKEN: the server's environment has no SLIPWAY_TEST_SECRET_NOBODY_SETS (or it is empty)"
    );
    assert_eq!(statuses(&run), pairs(&[("print", "skipped")]));
    server.stop().await;
}

#[tokio::test]
async fn a_restart_mid_run_retries_the_job_that_ran_or_fails_it_with_the_reason() {
    // First attempt of `flaky` hangs (and leaves a mark); the second one succeeds.
    let pipelines = r#"pipelines:
  restart:
    on: { dispatch: {} }
    jobs:
      flaky:
        retries: 1
        steps:
          - run: "if [ -e {dir}/mark ]; then echo again; else touch {dir}/mark; sleep 1000 & echo pid=$!; wait; fi"
      once:
        steps:
          - run: "sleep 1000 & echo pid=$!; wait"
"#;
    let mut server = server(pipelines, |_| {}).await;
    let (_, run) = server
        .call(
            "POST",
            "/api/v1/pipelines/restart/runs",
            &server.admin,
            None,
        )
        .await;
    let id = run["id"].as_i64().unwrap();
    let mut reaps = Vec::new();
    for name in ["flaky", "once"] {
        let pid = step_pid(&server, id, name).await;
        reaps.push(Reap(pid));
    }
    server.restart().await;
    for reap in &reaps {
        assert!(
            !alive(reap.0),
            "step process {} outlived its server",
            reap.0
        );
    }
    let run = run_reaches(&server, id, &["failure", "success"]).await;
    assert_eq!(run["status"], "failure", "{run:#}");
    let flaky = job(&run, "flaky");
    assert_eq!(
        (flaky["status"].as_str(), flaky["attempt"].as_u64()),
        (Some("success"), Some(2))
    );
    assert_eq!(
        job(&run, "once")["reason"],
        "the server stopped while attempt 1 ran; its steps were ended"
    );
    let lines = log(&server, id, Some("flaky")).await;
    assert!(
        lines
            .iter()
            .any(|l| l
                == "queued: the server stopped while attempt 1 ran; retrying (attempt 2 of 2)"),
        "{lines:#?}"
    );
    assert!(lines.contains(&"again".to_owned()));
    server.stop().await;
}

#[tokio::test]
async fn a_failed_attempt_is_retried_and_the_log_streams_as_server_sent_events() {
    let pipelines = r#"pipelines:
  flaky:
    on: { dispatch: {} }
    jobs:
      once-bad:
        retries: 2
        steps:
          - run: "echo try; if [ -e {dir}/mark ]; then echo fine; else touch {dir}/mark; exit 7; fi"
"#;
    let server = server(pipelines, |_| {}).await;
    let (_, run) = server
        .call("POST", "/api/v1/pipelines/flaky/runs", &server.admin, None)
        .await;
    let id = run["id"].as_i64().unwrap();
    // The stream ends by itself once the run has ended, after its last line.
    let body = reqwest::Client::new()
        .get(format!("{}/api/v1/runs/{id}/logs", server.base))
        .bearer_auth(&server.admin)
        .header("Accept", "text/event-stream")
        .timeout(util::DEADLINE)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<(&str, Value)> = body
        .split("\n\n")
        .filter_map(|event| {
            let name = event.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = event.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name, serde_json::from_str(data).unwrap()))
        })
        .collect();
    let (last, ended) = events.last().unwrap();
    assert_eq!(
        (*last, ended["status"].as_str()),
        ("end", Some("success")),
        "{body}"
    );
    let messages: Vec<&str> = events
        .iter()
        .filter(|(name, _)| *name == "log")
        .map(|(_, l)| l["message"].as_str().unwrap())
        .collect();
    let seqs: Vec<i64> = events
        .iter()
        .filter(|(name, _)| *name == "log")
        .map(|(_, l)| l["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] + 1 == w[1]),
        "every line once, in order: {seqs:?}"
    );
    assert_eq!(
        messages.iter().filter(|m| **m == "try").count(),
        2,
        "{messages:#?}"
    );
    assert!(messages.contains(&"queued: attempt 1 failed: step 1/1 exited with status 7: try; retrying (attempt 2 of 3)"), "{messages:#?}");
    assert_eq!(messages.last(), Some(&"success: every job succeeded"));
    assert_eq!(ended["jobs"][0]["attempt"], 2);
    server.stop().await;
}

#[tokio::test]
async fn with_cancel_in_progress_a_newer_push_cancels_the_older_run_but_not_its_rollout() {
    let release = RELEASE.replace(
        "    jobs:\n",
        "    concurrency: { group: release, cancel_in_progress: true }\n    jobs:\n",
    );
    let mut first_sha = String::new();
    let server = TestServer::start_yaml(|dir| {
        first_sha = commit_of(&init_repo(dir, 0));
        // The first release takes a while to come up: its rollout is under way when
        // the second push comes.
        std::fs::write(
            dir.join(format!("flags-sha-{}", &first_sha[..7])),
            "--start-delay-ms 2000",
        )
        .unwrap();
        let yaml = release.replace("{repo}", &dir.join("repo").display().to_string());
        format!("{}{yaml}", config_yaml(dir, ENVS, "", "20s"))
    })
    .await;
    let first = run_of(&server, "release", &first_sha).await["id"]
        .as_i64()
        .unwrap();
    let rolling = poll_until("the first staging rollout to be under way", || async {
        let run = get(&server, &format!("/api/v1/runs/{first}")).await;
        let id = job(&run, "deploy-staging")["deployment_id"].as_i64()?;
        let d = get(&server, &format!("/api/v1/deployments/{id}")).await;
        (d["status"] == "in_progress").then_some(id)
    })
    .await;

    let (_, second, first_run) = push_again_superseding(&server, first).await;
    // The rollout under way was not interrupted; what came after it never started.
    assert_eq!(job(&first_run, "deploy-staging")["status"], "success");
    assert_eq!(job(&first_run, "deploy-production")["status"], "cancelled");
    let d = get(&server, &format!("/api/v1/deployments/{rolling}")).await;
    assert_eq!(d["status"], "success", "{d:#}");
    // Runs of one group never overlap: the second started after the first ended.
    let second_run = run_reaches(&server, second, &["waiting", "failure", "success"]).await;
    assert!(
        second_run["started_at"].as_str().unwrap() >= first_run["finished_at"].as_str().unwrap(),
        "{second_run:#}\n{first_run:#}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_has_the_pipeline_endpoints_and_names_the_pipelines() {
    let server = server(RELEASE, |dir| {
        init_repo(dir, 0);
    })
    .await;
    let doc = get(&server, "/api/v1/openapi.json").await;
    for path in [
        "/api/v1/pipelines/{name}/runs",
        "/api/v1/runs",
        "/api/v1/runs/{id}",
        "/api/v1/runs/{id}/logs",
        "/api/v1/runs/{id}/cancel",
        "/api/v1/triggers/push",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is missing");
    }
    let name = &doc["paths"]["/api/v1/pipelines/{name}/runs"]["post"]["parameters"][0];
    assert_eq!(name["schema"]["enum"], json!(["release"]));
    assert!(doc["components"]["schemas"]["Run"].is_object());
    server.stop().await;
}
