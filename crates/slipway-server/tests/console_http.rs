//! The web console over plain HTTP (what needs no browser): sign-in and its cookie, the
//! CSRF and origin checks, role checks on every form, the pages and their error pages,
//! the session's event stream, the pipeline runs pages — against a whole server with a
//! real SQLite file (and for runs a real git repository and real steps).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

#[path = "util/console.rs"]
mod console;
mod util;

use console::{Client, ENVS};
use serde_json::json;
use sha2::{Digest, Sha256};
use slipway_store::{NewSession, SessionStore, SqliteStore};
use util::pipelines::{commit_of, init_repo, job, run_of, run_reaches};
use util::{TestServer, poll_until};

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A production deployment of `version` waiting for alice's approval (created by the
/// admin, after the same version succeeded in staging).
async fn waiting_in_production(s: &TestServer, version: &str) -> i64 {
    s.deploy_and_wait("staging", version, "success").await;
    let (status, d) = s.deploy(&s.admin, "production", version).await;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_i64().unwrap();
    s.wait_for(id, &["waiting"]).await;
    id
}

async fn deployment(s: &TestServer, id: i64) -> serde_json::Value {
    let (status, d) = s
        .call("GET", &format!("/api/v1/deployments/{id}"), &s.admin, None)
        .await;
    assert_eq!(status, 200, "{d}");
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_trades_a_token_for_a_strict_http_only_cookie_that_never_opens_the_api() {
    let s = TestServer::start(ENVS).await;
    let anon = Client::new(&s.base);

    let page = anon.get("/").await;
    assert_eq!((page.status, page.location()), (303, "/login"));
    let page = anon.get("/history?app=web").await;
    assert_eq!(page.location(), "/login?next=%2Fhistory%3Fapp%3Dweb");
    // A link followed from another site comes without the SameSite=Strict cookie: the
    // page loads itself again from here, where the browser sends it.
    let from_chat = anon
        .get_with(
            "/deployments/7?tab=log",
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(from_chat.status, 200);
    assert!(
        from_chat
            .html()
            .contains(r#"<meta http-equiv="refresh" content="0; url=/deployments/7?tab=log">"#),
        "{}",
        from_chat.body
    );
    let login = anon.get("/login").await;
    assert_eq!(login.status, 200);
    assert!(login.html().contains(r#"name="token""#));
    assert!(login.html().contains(r#"<label for="token">"#));
    assert!(
        login
            .header("content-security-policy")
            .contains("frame-ancestors 'none'"),
        "{:?}",
        login.headers
    );
    assert_eq!(login.header("cache-control"), "no-store");

    let wrong = anon.post("/login", &[("token", "slw_not-a-token")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.html().contains("not known to this server"));
    assert!(wrong.set_cookie().is_empty());
    let empty = anon.post("/login", &[("token", "  ")]).await;
    assert_eq!(empty.status, 400);
    assert!(empty.html().contains("Paste an API token"));

    let ok = anon
        .post(
            "/login",
            &[("token", &s.admin), ("next", "/history?app=web")],
        )
        .await;
    assert_eq!((ok.status, ok.location()), (303, "/history?app=web"));
    let cookie = ok.set_cookie();
    // `server.session_lifetime` left out: 12 hours.
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(!cookie.contains(&s.admin), "the cookie is no token");

    let behind_tls = anon
        .post_with(
            "/login",
            &[("token", &s.admin)],
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert!(behind_tls.set_cookie().contains("; Secure"));

    // Elsewhere than this server is never where a sign-in leads.
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let page = anon
            .post("/login", &[("token", &s.admin), ("next", next)])
            .await;
        assert_eq!(page.location(), "/", "{next}");
    }

    let admin = Client::signed_in(&s.base, &s.admin).await;
    let board = admin.get("/").await;
    assert_eq!(board.status, 200);
    let html = board.html();
    for text in [
        "<h2 id=\"app-web\">web</h2>",
        "staging",
        "production",
        "nothing deployed",
        "Sign out",
    ] {
        assert!(html.contains(text), "{text} in {html}");
    }
    assert!(html.contains(r#"<meta name="viewport""#));
    assert!(board.header("server-timing").starts_with("app;dur="));
    assert_eq!(
        admin.get("/login").await.location(),
        "/",
        "signed in already"
    );

    // The cookie alone opens no API endpoint.
    let http = reqwest::Client::new();
    let cookie = admin.cookie.clone().unwrap();
    for path in ["/api/v1/status", "/api/v1/deployments", "/api/v1/events"] {
        let resp = http
            .get(format!("{}{path}", s.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    let resp = http
        .post(format!("{}/api/v1/deployments", s.base))
        .header("cookie", &cookie)
        .json(&json!({"app": "web", "environment": "staging", "version": "v1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_unauthorised_decisions_are_refused_with_403_and_change_nothing() {
    let s = TestServer::start(ENVS).await;
    let alice_token = s.user("alice", "approver").await;
    let vic_token = s.user("vic", "viewer").await;
    let id = waiting_in_production(&s, "v1").await;
    let path = format!("/deployments/{id}/approve");

    let vic = Client::signed_in(&s.base, &vic_token).await;
    let page = vic.get(&format!("/deployments/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.html().contains("waits for approval"));
    assert!(
        !page.body.contains("/approve"),
        "a viewer sees no approve form"
    );
    assert!(!page.body.contains("Reject"));
    let vic_csrf = vic.csrf().await;

    let alice = Client::signed_in(&s.base, &alice_token).await;
    let alice_csrf = alice.csrf().await;
    assert_ne!(alice_csrf, vic_csrf, "each session its own token");

    let attempts = [
        (
            "viewer, wrong csrf",
            vic.post(&path, &[("csrf", "0".repeat(64).as_str())]).await,
        ),
        (
            "viewer, no csrf",
            vic.post(&path, &[("comment", "lgtm")]).await,
        ),
        (
            "viewer, right csrf",
            vic.post(&path, &[("csrf", &vic_csrf)]).await,
        ),
        (
            "approver, another session's csrf",
            alice.post(&path, &[("csrf", &vic_csrf)]).await,
        ),
        (
            "approver, csrf twice",
            alice
                .post(&path, &[("csrf", &alice_csrf), ("csrf", &alice_csrf)])
                .await,
        ),
        (
            "approver, from another site",
            alice
                .post_with(
                    &path,
                    &[("csrf", &alice_csrf)],
                    &[("sec-fetch-site", "cross-site")],
                )
                .await,
        ),
        (
            "another site, no cookie",
            Client::new(&s.base)
                .post_with(
                    &path,
                    &[("comment", "x")],
                    &[
                        ("sec-fetch-site", "cross-site"),
                        ("origin", "https://evil.example"),
                    ],
                )
                .await,
        ),
        ("no cookie", Client::new(&s.base).post(&path, &[]).await),
    ];
    all_refused(&attempts);
    assert!(
        attempts[2].1.body.contains("vic is a viewer"),
        "{}",
        attempts[2].1.body
    );
    let d = deployment(&s, id).await;
    assert_eq!(d["status"], "waiting");
    assert_eq!(d["approvals"], json!([]));

    // Not the creator's to approve, even for an admin; the page offers it no button.
    let admin = Client::signed_in(&s.base, &s.admin).await;
    let page = admin.get(&format!("/deployments/{id}")).await;
    assert!(
        !page.body.contains(">Approve<"),
        "self-review: {}",
        page.body
    );

    let long = "x".repeat(1001);
    let page = alice
        .post(&path, &[("csrf", &alice_csrf), ("comment", &long)])
        .await;
    assert_eq!(page.status, 400);
    assert!(page.html().contains("1001 characters"));
    assert_eq!(deployment(&s, id).await["approvals"], json!([]));

    let page = alice.get(&format!("/deployments/{id}")).await;
    assert!(page.html().contains(">Approve<"));
    let done = alice
        .post(&path, &[("csrf", &alice_csrf), ("comment", "ship it")])
        .await;
    assert_eq!(
        (done.status, done.location()),
        (303, format!("/deployments/{id}").as_str())
    );
    let d = s.wait_for(id, &["success"]).await;
    assert_eq!(d["approvals"][0]["comment"], "ship it");
    let page = alice.get(&format!("/deployments/{id}")).await;
    assert!(page.html().contains("ship it") && page.body.contains("approved"));

    // A decision the engine refuses is a page that says why.
    let again = alice.post(&path, &[("csrf", &alice_csrf)]).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.html().contains("Not possible now"));
    assert!(again.body.contains(&format!("href=\"/deployments/{id}\"")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_a_bad_id_and_a_missing_page_are_each_a_clear_page() {
    let s = TestServer::start(ENVS).await;
    let admin = Client::signed_in(&s.base, &s.admin).await;

    for (path, text) in [
        ("/deployments/999", "There is no deployment 999"),
        ("/deployments/abc", "`abc` is not a deployment id"),
        ("/deployments/-4", "`-4` is not a deployment id"),
        ("/no/such/page", "There is no page at /no/such/page"),
    ] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.html().contains(text), "{path}: {}", page.body);
        assert!(page.body.contains("<a href=\"/\">"), "a way on");
    }
    let page = admin
        .post("/deployments/abc/approve", &[("csrf", &admin.csrf().await)])
        .await;
    assert_eq!(page.status, 404);
    let api = Client::new(&s.base).get("/api/v1/nope").await;
    assert_eq!(
        api.header("content-type"),
        "application/json",
        "the API stays JSON"
    );

    // An expired session: the store has it, its time is up.
    let store = SqliteStore::open(&s.dir.path().join("data/slipway.db"))
        .await
        .unwrap();
    let raw = "ab".repeat(32);
    store
        .create_session(&NewSession {
            id_hash: sha256_hex(&raw),
            token_hash: sha256_hex(&s.admin),
            csrf: "cd".repeat(32),
            created_at: 0,
            expires_at: 1,
        })
        .await
        .unwrap();
    let mut expired = Client::new(&s.base);
    expired.cookie = Some(format!("slipway_session={raw}"));
    let page = expired.get("/deployments/1").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/login?next=%2Fdeployments%2F1&ended=1");
    assert!(
        page.set_cookie().contains("Max-Age=0"),
        "the stale cookie is cleared"
    );
    let login = expired.get("/login?next=%2Fdeployments%2F1&ended=1").await;
    assert!(login.html().contains("Your session has ended"));
    assert!(login.body.contains(r#"name="next" value="/deployments/1""#));
    let post = expired.post("/logout", &[("csrf", &"cd".repeat(32))]).await;
    assert_eq!(post.location(), "/login");
    let post = expired
        .post("/deployments/1/cancel", &[("csrf", &"cd".repeat(32))])
        .await;
    assert_eq!(post.status, 403);
    assert!(
        post.html().contains("Your session has ended") && post.body.contains("Nothing was changed")
    );
    assert!(
        store.session(&sha256_hex(&raw)).await.unwrap().is_none(),
        "removed once seen expired"
    );

    // A cookie that is no session of ours reads as ended, whatever it holds.
    for junk in ["short", "<script>", &"zz".repeat(32)] {
        let mut c = Client::new(&s.base);
        c.cookie = Some(format!("slipway_session={junk}"));
        assert_eq!(c.get("/").await.location(), "/login?ended=1", "{junk}");
    }

    // Signing out ends the session at once; without its csrf it is refused.
    let refused = admin.post("/logout", &[]).await;
    assert_eq!(refused.status, 403);
    let csrf = admin.csrf().await;
    let out = admin.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location()), (303, "/login?signed_out=1"));
    assert!(out.set_cookie().contains("Max-Age=0"));
    assert_eq!(admin.get("/").await.location(), "/login?ended=1");
    let login = Client::new(&s.base).get("/login?signed_out=1").await;
    assert!(login.html().contains("You are signed out"));

    // A new token for the user ends the sessions of the old one.
    let bob_token = s.user("bob", "deployer").await;
    let bob = Client::signed_in(&s.base, &bob_token).await;
    assert_eq!(bob.get("/").await.status, 200);
    s.user("bob", "deployer").await;
    assert_eq!(bob.get("/").await.location(), "/login?ended=1");
    store.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_filters_and_pages_and_the_dora_page_reads_the_metrics() {
    let s = TestServer::start(ENVS).await;
    s.deploy_and_wait("staging", "v1", "success").await;
    // 60 production deployments without processes: each new one waiting for approval
    // supersedes the one before.
    for n in 0..60 {
        let (status, d) = s.deploy(&s.admin, "production", "v1").await;
        assert_eq!(status, 201, "{n}: {d}");
    }
    let admin = Client::signed_in(&s.base, &s.admin).await;

    let all = admin.get("/history").await;
    let html = all.html();
    assert!(
        html.contains("61 deployments; newest first, 50 on this page"),
        "{html}"
    );
    assert!(html.contains(r#"<label for="f-status">Status</label>"#));
    let older = html
        .split(r#"rel="next""#)
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(older.starts_with("/history?before="), "{older}");
    let page2 = admin.get(&older).await;
    assert!(page2.html().contains("11 on this page"), "{}", page2.body);
    assert!(page2.body.contains(r#"rel="prev""#) && !page2.body.contains(r#"rel="next""#));
    assert!(page2.body.contains("<a href=\"/deployments/1\">1</a>"));

    let cancelled = admin
        .get("/history?environment=production&status=cancelled")
        .await;
    assert!(
        cancelled.html().contains("59 deployments match"),
        "{}",
        cancelled.body
    );
    assert!(
        cancelled
            .body
            .contains(r#"<option value="cancelled" selected>cancelled</option>"#)
    );
    assert!(
        cancelled.body.contains("superseded"),
        "the last reason shows"
    );
    let any = admin.get("/history?app=&environment=&status=").await;
    assert!(
        any.html().contains("61 deployments;"),
        "an empty choice is no filter"
    );

    for (query, text) in [
        ("status=done", "There is no status `done`"),
        ("app=wbe", "There is no app `wbe`"),
        ("before=x", "`before` must be a deployment id"),
        ("before=3&after=4", "not both"),
        ("app=web&app=api", "sent more than once"),
    ] {
        let page = admin.get(&format!("/history?{query}")).await;
        assert_eq!(page.status, 400, "{query}");
        assert!(page.html().contains(text), "{query}: {}", page.body);
    }

    let dora = admin.get("/dora?since=7d").await;
    let html = dora.html();
    assert!(html.contains("<th scope=\"row\">web</th>"), "{html}");
    assert!(html.contains(r#"<option value="7d" selected>"#));
    let bad = admin.get("/dora?since=soon").await;
    assert_eq!(bad.status, 400);
    assert!(bad.html().contains("is not a duration"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_event_stream_tells_a_signed_in_browser_of_each_status_change() {
    let s = TestServer::start(ENVS).await;
    let anon = Client::new(&s.base).get("/events").await;
    assert_eq!(anon.status, 303, "no session, no stream");

    let admin = Client::signed_in(&s.base, &s.admin).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/events", s.base))
        .header("cookie", admin.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut resp = resp;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("connected"));
    let (status, _) = s.deploy(&s.admin, "staging", "v1").await;
    assert_eq!(status, 201);
    let mut seen = String::new();
    let got = tokio::time::timeout(util::DEADLINE, async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: status") && seen.contains("\"version\":\"v1\"") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "{seen}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployer_rolls_back_from_the_page_of_the_release_that_runs() {
    let s = TestServer::start(ENVS).await;
    let bob_token = s.user("bob", "deployer").await;
    let v1 = s.deploy_and_wait("staging", "v1", "success").await;
    let v2 = s.deploy_and_wait("staging", "v2", "success").await;
    let (v1, v2) = (v1["id"].as_i64().unwrap(), v2["id"].as_i64().unwrap());
    let bob = Client::signed_in(&s.base, &bob_token).await;
    let csrf = bob.csrf().await;

    let current = bob.get(&format!("/deployments/{v2}")).await;
    assert!(current.html().contains("Roll back to the previous release"));
    let earlier = bob.get(&format!("/deployments/{v1}")).await;
    assert!(earlier.html().contains("Roll back to v1"));
    // Nothing to promote: the engine says why, on a page.
    let page = bob
        .post(&format!("/deployments/{v2}/promote"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 409);
    assert!(page.html().contains("not paused"), "{}", page.body);

    let done = bob
        .post(&format!("/deployments/{v2}/rollback"), &[("csrf", &csrf)])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let target: i64 = done
        .location()
        .strip_prefix("/deployments/")
        .unwrap()
        .parse()
        .unwrap();
    let d = s.wait_for(target, &["success"]).await;
    assert_eq!(
        (d["kind"].as_str(), d["version"].as_str()),
        (Some("rollback"), Some("v1"))
    );
    let page = bob.get(&format!("/deployments/{target}")).await;
    assert!(page.html().contains("Rolled back from"));
    let board = bob.get("/").await;
    assert!(
        board
            .html()
            .contains(&format!("href=\"/deployments/{target}\""))
    );
    s.stop().await;
}

/// A release pipeline on the test's repository, watched on main, its jobs written last
/// first: build prints and outputs a version, gate waits until the test creates
/// `{dir}/go`, deploy puts the build's version on staging. Beside it, chores (dispatch only), whose one job runs only when
/// asked to (`go=yes`), so many of its runs cost no process.
const RUNS: &str = r#"pipelines:
  release:
    on:
      push: { repository: {repo}, branches: [main], poll: 100ms }
    jobs:
      deploy:
        needs: [gate]
        deploy: { app: web, env: staging, version: "${{ needs.build.outputs.version }}" }
      gate:
        needs: [build]
        steps: [{ run: 'while [ ! -e "{dir}/go" ]; do sleep 0.1; done; echo through the gate' }]
      build:
        steps:
          - run: echo "building sha-${{ git.short_sha }}"
          - run: echo "version=sha-${{ git.short_sha }}" >> "$SLIPWAY_OUTPUT"
  chores:
    on:
      dispatch: { inputs: { go: { default: "no" } } }
    jobs:
      sweep:
        if: inputs.go == 'yes'
        steps: [{ run: echo swept }]
"#;

/// The API's view of run `id`.
async fn api_run(s: &TestServer, id: i64) -> serde_json::Value {
    util::pipelines::get(s, &format!("/api/v1/runs/{id}")).await
}

/// Waits until job `name` of run `id` is in progress.
async fn job_in_progress(s: &TestServer, id: i64, name: &str) {
    poll_until(&format!("job {name} of run {id} to start"), || async {
        let run = api_run(s, id).await;
        (job(&run, name)["status"] == "in_progress").then_some(())
    })
    .await;
}

/// The href of the link marked `rel` on a page.
fn rel_link(html: &str, rel: &str) -> String {
    html.split(&format!(r#"rel="{rel}""#))
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_pages_list_filter_and_page_and_a_run_page_follows_its_jobs() {
    let mut sha = String::new();
    let s = util::pipelines::server(console::ENVS, RUNS, |dir| {
        sha = commit_of(&init_repo(dir, 0))
    })
    .await;
    let id = run_of(&s, "release", &sha).await["id"].as_i64().unwrap();
    job_in_progress(&s, id, "gate").await;
    for n in 0..52 {
        let (status, r) = s
            .call(
                "POST",
                "/api/v1/pipelines/chores/runs",
                &s.admin,
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201, "{n}: {r}");
    }
    let last_chore = poll_until("every chore to end", || async {
        let runs = util::pipelines::get(&s, "/api/v1/pipelines/chores/runs?limit=100").await;
        let runs = runs["runs"].as_array().unwrap().clone();
        (runs.len() == 52 && runs.iter().all(|r| r["status"] == "success"))
            .then(|| runs[0]["id"].as_i64().unwrap())
    })
    .await;
    let admin = Client::signed_in(&s.base, &s.admin).await;

    let all = admin.get("/runs").await;
    assert_eq!(all.status, 200);
    let html = all.html();
    assert!(
        html.contains("53 runs; newest first, 50 on this page"),
        "{html}"
    );
    assert!(html.contains(r#"<a href="/runs" aria-current="page">Pipeline runs</a>"#));
    assert!(html.contains(r#"<label for="f-pipeline">Pipeline</label>"#));
    assert!(html.contains(&format!("<a href=\"/runs/{last_chore}\"")));
    assert!(html.contains(r#"data-runs="*""#), "follows every run");
    let older = rel_link(html, "next");
    assert!(older.starts_with("/runs?before="), "{older}");
    let page2 = admin.get(&older).await;
    let html = page2.html();
    assert!(html.contains("3 on this page"), "{html}");
    assert!(html.contains(r#"rel="prev""#) && !html.contains(r#"rel="next""#));
    // The push run's row: its commit's short sha and branch, started, a duration so far.
    let row = html
        .split(&format!("<a href=\"/runs/{id}\""))
        .nth(1)
        .expect("the release run is on the last page")
        .split("</tr>")
        .next()
        .unwrap();
    let short = format!("<code>{}</code>", &sha[..7]);
    for text in [&short, "main", "release", "in progress", "<time datetime="] {
        assert!(row.contains(text), "{text} in {row}");
    }

    for (query, text) in [
        ("pipeline=release", "1 run match"),
        ("status=in_progress", "1 run match"),
        ("pipeline=chores&status=success", "52 runs match"),
        ("pipeline=chores&status=failure", "0 runs match"),
        ("pipeline=&status=", "53 runs;"),
    ] {
        let page = admin.get(&format!("/runs?{query}")).await;
        assert_eq!(page.status, 200, "{query}");
        assert!(page.html().contains(text), "{query}: {}", page.body);
    }
    let filtered = admin.get("/runs?status=in_progress").await;
    assert!(
        filtered
            .body
            .contains(r#"<option value="in_progress" selected>in progress</option>"#)
    );
    let chores = admin.get("/runs?pipeline=chores").await;
    let older = rel_link(chores.html(), "next");
    assert!(
        older.starts_with("/runs?pipeline=chores&before="),
        "the filter stays: {older}"
    );
    assert!(admin.get(&older).await.html().contains("2 on this page"));
    for (query, text) in [
        ("status=done", "There is no status `done`"),
        ("pipeline=relase", "There is no pipeline `relase`"),
        ("before=x", "`before` must be a run id"),
        ("before=3&after=4", "not both"),
    ] {
        let page = admin.get(&format!("/runs?{query}")).await;
        assert_eq!(page.status, 400, "{query}");
        assert!(page.html().contains(text), "{query}: {}", page.body);
    }

    // The run while its gate holds: build done with its output, gate running, deploy
    // queued, in the order of their needs; the page follows this run and polls its log.
    let page = admin.get(&format!("/runs/{id}")).await;
    assert_eq!(page.status, 200);
    let html = page.html();
    let version = format!("sha-{}", &sha[..7]);
    for text in [
        format!("Run {id} of release"),
        format!("<code>{sha}</code>"),
        "<code>main</code>".to_owned(),
        "push (".to_owned(),
        format!("<code>version={version}</code>"),
        format!("building {version}"),
        format!(r#"data-runs="{id}""#),
        r#"data-moving="1""#.to_owned(),
        format!(r#"action="/runs/{id}/cancel""#),
    ] {
        assert!(html.contains(&text), "{text} in {html}");
    }
    let order: Vec<usize> = ["job-build", "job-gate", "job-deploy"]
        .iter()
        .map(|j| html.find(&format!("id=\"{j}\"")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "DAG order");
    let status_of = |html: &str, job: &str| {
        html.split(&format!("id=\"job-{job}\""))
            .nth(1)
            .unwrap()
            .split("class=\"badge ")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .split('>')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(status_of(html, "build"), "success");
    assert_eq!(status_of(html, "gate"), "in progress");
    assert_eq!(status_of(html, "deploy"), "queued");

    // The session's stream says when a job of the run changes.
    let mut stream = reqwest::Client::new()
        .get(format!("{}/events", s.base))
        .header("cookie", admin.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("connected"));
    std::fs::write(s.dir.path().join("go"), "").unwrap();
    let mut seen = String::new();
    let wanted = format!(r#"{{"job":"gate","run":{id},"status":"success"}}"#);
    let got = tokio::time::timeout(util::DEADLINE, async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: run") && seen.contains(&wanted) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "{wanted} in {seen}");
    drop(stream);

    let run = run_reaches(&s, id, &["success", "failure", "cancelled"]).await;
    assert_eq!(run["status"], "success", "{run:#}");
    let deployment = job(&run, "deploy")["deployment_id"].as_i64().unwrap();
    let page = admin.get(&format!("/runs/{id}")).await;
    let html = page.html();
    assert!(
        html.contains(&format!(
            "<a href=\"/deployments/{deployment}\">deployment {deployment}</a>"
        )),
        "{html}"
    );
    for job in ["build", "gate", "deploy"] {
        assert_eq!(status_of(html, job), "success", "{job}");
    }
    assert!(html.contains("through the gate"));
    assert!(html.contains("<dt>Finished</dt>") && html.contains("<dt>Duration</dt>"));
    assert!(!html.contains("/cancel"), "an ended run has no cancel");
    assert!(!html.contains("data-moving"), "nothing moves any more");
    // The deployment's page links back to the run and job that made it.
    let page = admin.get(&format!("/deployments/{deployment}")).await;
    let pipeline = run["pipeline"].as_str().unwrap();
    assert!(
        page.html().contains(&format!(
            "<a href=\"/runs/{id}\">run {id} of {pipeline}</a> (job deploy)"
        )),
        "{}",
        page.body
    );

    for (path, text) in [
        ("/runs/999", "There is no run 999"),
        ("/runs/abc", "`abc` is not a run id"),
        ("/runs/0", "`0` is not a run id"),
    ] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.html().contains(text), "{path}: {}", page.body);
        assert!(page.body.contains("<a href=\"/\">"), "a way on");
    }
    let csrf = admin.csrf().await;
    let page = admin.post("/runs/abc/cancel", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 404);
    assert!(page.html().contains("`abc` is not a run id"));
    let page = admin.post("/runs/999/cancel", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(page.html().contains("Nothing was changed"), "{}", page.body);
    s.stop().await;
}

/// One job that waits for `{dir}/go`, which these tests never create.
const HELD: &str = r#"pipelines:
  held:
    on: { dispatch: {} }
    jobs:
      hold:
        steps: [{ run: 'while [ ! -e "{dir}/go" ]; do sleep 0.1; done' }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_deployer_cancels_a_run_from_its_page_and_forged_cancels_change_nothing() {
    let s = util::pipelines::server(console::ENVS, HELD, |_| {}).await;
    let vic_token = s.user("vic", "viewer").await;
    let bob_token = s.user("bob", "deployer").await;
    let (status, r) = s
        .call(
            "POST",
            "/api/v1/pipelines/held/runs",
            &s.admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_i64().unwrap();
    job_in_progress(&s, id, "hold").await;
    let path = format!("/runs/{id}/cancel");

    let vic = Client::signed_in(&s.base, &vic_token).await;
    let page = vic.get(&format!("/runs/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.html().contains("in progress"));
    assert!(!page.body.contains("/cancel"), "a viewer sees no cancel");
    let vic_csrf = vic.csrf().await;
    let bob = Client::signed_in(&s.base, &bob_token).await;
    let bob_csrf = bob.csrf().await;

    let attempts = [
        (
            "viewer, right csrf",
            vic.post(&path, &[("csrf", &vic_csrf)]).await,
        ),
        (
            "viewer, wrong csrf",
            vic.post(&path, &[("csrf", "0".repeat(64).as_str())]).await,
        ),
        ("viewer, no csrf", vic.post(&path, &[]).await),
        ("deployer, no csrf", bob.post(&path, &[]).await),
        (
            "deployer, another session's csrf",
            bob.post(&path, &[("csrf", &vic_csrf)]).await,
        ),
        (
            "deployer, from another site",
            bob.post_with(
                &path,
                &[("csrf", &bob_csrf)],
                &[("sec-fetch-site", "cross-site")],
            )
            .await,
        ),
        ("no cookie", Client::new(&s.base).post(&path, &[]).await),
    ];
    all_refused(&attempts);
    assert!(
        attempts[0].1.body.contains("vic is a viewer"),
        "{}",
        attempts[0].1.body
    );
    let run = api_run(&s, id).await;
    assert_eq!(run["status"], "in_progress", "{run:#}");
    assert_eq!(job(&run, "hold")["status"], "in_progress");

    let page = bob.get(&format!("/runs/{id}")).await;
    assert!(page.html().contains(">Cancel the run<"));
    let done = bob.post(&path, &[("csrf", &bob_csrf)]).await;
    assert_eq!(
        (done.status, done.location()),
        (303, format!("/runs/{id}").as_str()),
        "{}",
        done.body
    );
    let run = run_reaches(&s, id, &["cancelled", "failure", "success"]).await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    let page = bob.get(&format!("/runs/{id}")).await;
    let html = page.html();
    assert!(html.contains("cancelled by bob"), "{html}");
    assert!(!html.contains("/cancel"));
    let again = bob.post(&path, &[("csrf", &bob_csrf)]).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.html().contains("Not possible now"));
    assert!(again.body.contains(&format!("href=\"/runs/{id}\"")));
    s.stop().await;
}

/// Each forged post was refused with a page that says nothing changed.
fn all_refused(attempts: &[(&str, console::Page)]) {
    for (what, page) in attempts {
        assert_eq!(page.status, 403, "{what}: {}", page.body);
        assert!(
            page.html().contains("nothing was changed")
                || page.body.contains("Nothing was changed"),
            "{what}: {}",
            page.body
        );
    }
}
