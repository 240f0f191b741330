//! The web console in a real headless Chromium: a viewer sees no approve button; a form
//! from another site changes nothing; an approver approves a waiting production
//! deployment from its page and the board, open in another window, switches to the new
//! release without a reload; a canary paused halfway shows its split and is promoted from
//! its page; a pipeline run's page follows its jobs to success without a reload.
//! Screenshots land in `target/console-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

#[path = "util/browser.rs"]
mod browser;
#[path = "util/console.rs"]
mod console;
mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use browser::{ChromeDriver, screenshot, sign_in, wait_for_text, with_browser};
use fantoccini::Locator;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use util::TestServer;

async fn approve_by_api(s: &TestServer, token: &str, id: i64) {
    let (status, body) = s
        .call(
            "POST",
            &format!("/api/v1/deployments/{id}/approve"),
            token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// A page on another site (`localhost`, where the console is `127.0.0.1`) whose button
/// posts a form to `target`, beside a plain link to `link`. Answers every request with
/// that page.
async fn other_site(target: &str, link: &str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let html = format!(
        "<!doctype html><title>Win a prize</title><form method=post action=\"{target}\">\
         <input type=hidden name=comment value=pwned><button id=go>Claim it</button></form>\
         <a id=link href=\"{link}\">the deployment</a>"
    );
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                html.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
        }
    });
    (format!("http://localhost:{port}/"), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_approves_in_the_browser_and_the_board_follows_without_a_reload() {
    let s = TestServer::start(console::ENVS).await;
    let alice = s.user("alice", "approver").await;
    let vic = s.user("vic", "viewer").await;
    s.deploy_and_wait("staging", "v1", "success").await;
    let (_, d) = s.deploy(&s.admin, "production", "v1").await;
    let first = d["id"].as_i64().unwrap();
    s.wait_for(first, &["waiting"]).await;
    approve_by_api(&s, &alice, first).await;
    s.wait_for(first, &["success"]).await;
    s.deploy_and_wait("staging", "v2", "success").await;
    let (_, d) = s.deploy(&s.admin, "production", "v2").await;
    let id = d["id"].as_i64().unwrap();
    s.wait_for(id, &["waiting"]).await;
    let page_url = format!("{}/deployments/{id}", s.base);
    let (elsewhere, elsewhere_task) = other_site(&format!("{page_url}/approve"), &page_url).await;

    let driver = ChromeDriver::start();
    let s = &s;
    with_browser(&driver, |b| async move {
        // A viewer reads the deployment and is offered no decision.
        sign_in(&b, &s.base, &vic).await;
        b.goto(&page_url).await.unwrap();
        wait_for_text(&b, "#summary h1", |t| t.contains("v2")).await;
        wait_for_text(&b, "#summary .facts", |t| t.contains("waits for approval")).await;
        for css in [
            "button.approve",
            "button.reject",
            "form[action$='/approve']",
            "#comment",
        ] {
            assert!(
                b.find_all(Locator::Css(css)).await.unwrap().is_empty(),
                "{css}"
            );
        }
        b.find(Locator::Css("form.signout button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(&b, ".login .notice", |t| t.contains("signed out")).await;

        // The approver signs in and sees the board: v1 runs, v2 waits.
        sign_in(&b, &s.base, &alice).await;
        wait_for_text(&b, "#cell-web-production .release a", |t| t == "v1").await;
        let waiting = wait_for_text(&b, "#cell-web-production .waiting", |t| !t.is_empty()).await;
        assert_eq!(waiting, "v2 waits for approval");
        wait_for_text(&b, "#cell-web-staging .release a", |t| t == "v2").await;
        let shot = screenshot(&b, "board.png").await;
        assert!(std::fs::metadata(shot).unwrap().len() > 10_000);

        // Another site's button posting to the approve URL changes nothing.
        b.goto(&elsewhere).await.unwrap();
        b.find(Locator::Id("go"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(&b, "main", |t| t.contains("nothing was changed")).await;
        let d = s.wait_for(id, &["waiting"]).await;
        assert_eq!(d["approvals"], json!([]));
        // A link from another site (a chat message) still opens the page signed in,
        // though the browser sends no SameSite=Strict cookie with that first request.
        b.goto(&elsewhere).await.unwrap();
        b.find(Locator::Id("link"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(&b, "#summary h1", |t| t.contains("v2")).await;
        wait_for_text(&b, "header .who", |t| t.starts_with("alice")).await;
        elsewhere_task.abort();

        // The board stays open in one window while the approval happens in another.
        b.goto(&format!("{}/", s.base)).await.unwrap();
        wait_for_text(&b, "#cell-web-production .release a", |t| t == "v1").await;
        b.execute("window.sameDocument = true;", vec![])
            .await
            .unwrap();
        let board_window = b.window().await.unwrap();
        let other = b.new_window(false).await.unwrap();
        b.switch_to_window(other.handle).await.unwrap();
        b.goto(&page_url).await.unwrap();
        b.find(Locator::Id("comment"))
            .await
            .unwrap()
            .send_keys("ship v2")
            .await
            .unwrap();
        b.find(Locator::Css("button.approve"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(&b, ".approvals", |t| t.contains("approved by alice")).await;
        assert!(
            b.current_url()
                .await
                .unwrap()
                .as_str()
                .ends_with(&format!("/deployments/{id}"))
        );
        wait_for_text(&b, ".approvals blockquote", |t| t == "ship v2").await;

        b.switch_to_window(board_window).await.unwrap();
        wait_for_text(&b, "#cell-web-production .release a", |t| t == "v2").await;
        let same = b
            .execute("return window.sameDocument === true;", vec![])
            .await
            .unwrap();
        assert_eq!(same, json!(true), "the board changed without a reload");
        assert!(
            b.find_all(Locator::Css("#cell-web-production .waiting"))
                .await
                .unwrap()
                .is_empty()
        );
        wait_for_text(&b, "#live-note", |t| t.starts_with("Updated")).await;
        screenshot(&b, "board-after-approval.png").await;

        // Readable on a phone: nothing wider than the screen.
        b.set_window_size(390, 844).await.unwrap();
        b.goto(&page_url).await.unwrap();
        wait_for_text(&b, "#summary h1", |t| t.contains("v2")).await;
        let fits = b
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            fits,
            json!(true),
            "the deployment page fits a phone's width"
        );
        screenshot(&b, "deployment-phone.png").await;
    })
    .await;
    let d = s.wait_for(id, &["success"]).await;
    assert_eq!(d["approvals"][0]["user"], "alice");
}

const CANARY: &str = r#"    production:
      listen: 127.0.0.1:0
      strategy:
        canary:
          steps: [{ weight: 30 }, { pause: manual }]
          analysis: { interval: 100ms, max_error_rate: 5%, max_p99_latency: 500ms, min_requests: 5, failure_limit: 2, progress_deadline: 60s }"#;

/// Steady requests through a router until stopped (bounded to 90 s), so the canary's
/// analysis has something to judge.
fn load(addr: std::net::SocketAddr) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut i = 0u32;
        while !flag.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
            i += 1;
            let _ = http
                .get(format!("http://{addr}/"))
                .header("X-Slipway-Key", format!("user-{}", i % 40))
                .send()
                .await;
            // Paced: the browser shares the machine's two cores.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_canary_shows_its_split_and_is_promoted_from_its_page() {
    let s = TestServer::start(CANARY).await;
    s.deploy_and_wait("production", "v1", "success").await;
    let (stop, task) = load(s.listener("production").await);
    let (_, d) = s.deploy(&s.admin, "production", "v2").await;
    let id = d["id"].as_i64().unwrap();
    util::wait_until("the canary to pause for promotion", || async {
        let (_, d) = s
            .call("GET", &format!("/api/v1/deployments/{id}"), &s.admin, None)
            .await;
        d["paused"]["kind"] == "manual" && d["analysis"].is_object()
    })
    .await;

    let driver = ChromeDriver::start();
    let s = &s;
    with_browser(&driver, |b| async move {
        sign_in(&b, &s.base, &s.admin).await;
        wait_for_text(&b, "#cell-web-production .rollout", |t| {
            t.contains("v2 rolling out") && t.contains("paused until promoted")
        })
        .await;
        let caption = wait_for_text(&b, "#cell-web-production .split figcaption", |t| {
            !t.is_empty()
        })
        .await;
        assert!(
            caption.contains("v1 70%") && caption.contains("v2 30%"),
            "{caption}"
        );
        screenshot(&b, "board-canary.png").await;

        b.find(Locator::Css("#cell-web-production .rollout a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(&b, "#summary .step", |t| {
            t == "canary step 2 of 3: paused until promoted"
        })
        .await;
        let table = wait_for_text(&b, "#details table", |t| t.contains("30%")).await;
        assert!(table.contains("v1") && table.contains("70%"), "{table}");
        // The newest of the last analyses comes first.
        wait_for_text(&b, "#details .verdicts li", |t| t.starts_with("pass: ")).await;
        screenshot(&b, "canary.png").await;

        b.find(Locator::Css("form[action$='/promote'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(&b, "#summary .badge", |t| t == "success").await;
        wait_for_text(&b, ".log", |t| t.contains("promoted by admin")).await;
        assert!(
            b.find_all(Locator::Css("form[action$='/promote']"))
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    task.await.unwrap();
    let d = s.wait_for(id, &["success"]).await;
    assert_eq!(TestServer::split(&d), [("v2".to_owned(), 100.0)]);
}

/// A dispatched release: build outputs the version, staging takes it, production waits
/// for alice's approval.
const RELEASE: &str = r#"pipelines:
  release:
    on: { dispatch: {} }
    jobs:
      build:
        steps: [{ run: echo "version=v7" >> "$SLIPWAY_OUTPUT" }]
      staging:
        needs: [build]
        deploy: { app: web, env: staging, version: "${{ needs.build.outputs.version }}" }
      production:
        needs: [staging]
        deploy: { app: web, env: production, version: "${{ needs.build.outputs.version }}" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waiting_for_approval_follows_its_jobs_to_success_without_a_reload() {
    let s = util::pipelines::server(console::ENVS, RELEASE, |_| {}).await;
    let alice = s.user("alice", "approver").await;
    let (status, r) = s
        .call(
            "POST",
            "/api/v1/pipelines/release/runs",
            &s.admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_i64().unwrap();
    let run = util::pipelines::run_reaches(&s, id, &["waiting", "failure"]).await;
    assert_eq!(run["status"], "waiting", "{run:#}");
    let production = util::pipelines::job(&run, "production")["deployment_id"]
        .as_i64()
        .unwrap();

    let driver = ChromeDriver::start();
    let s = &s;
    with_browser(&driver, |b| async move {
        sign_in(&b, &s.base, &s.admin).await;
        b.find(Locator::LinkText("Pipeline runs"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let row = wait_for_text(&b, "table.runs tbody tr", |t| t.contains("waiting")).await;
        assert!(row.starts_with(&format!("{id} release")), "{row}");
        screenshot(&b, "runs.png").await;
        b.find(Locator::Css(&format!("a[href='/runs/{id}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(&b, "#run-summary h1", |t| {
            t == format!("Run {id} of release waiting")
        })
        .await;
        wait_for_text(&b, "#job-build .badge", |t| t == "success").await;
        wait_for_text(&b, "#job-staging .badge", |t| t == "success").await;
        wait_for_text(&b, "#job-production .badge", |t| t == "waiting").await;
        // Nothing polls: only the event stream can bring the change.
        let moving = b
            .execute("return document.body.dataset.moving || null;", vec![])
            .await
            .unwrap();
        assert_eq!(moving, json!(null));
        assert!(
            !b.find_all(Locator::Css("form[action$='/cancel'] button"))
                .await
                .unwrap()
                .is_empty(),
            "an admin may cancel"
        );
        b.execute("window.sameDocument = true;", vec![])
            .await
            .unwrap();
        screenshot(&b, "run-waiting.png").await;

        approve_by_api(s, &alice, production).await;
        wait_for_text(&b, "#job-production .badge", |t| t == "success").await;
        wait_for_text(&b, "#run-summary h1 .badge", |t| t == "success").await;
        let same = b
            .execute("return window.sameDocument === true;", vec![])
            .await
            .unwrap();
        assert_eq!(same, json!(true), "the run changed without a reload");
        let link = wait_for_text(&b, "#job-production a", |t| !t.is_empty()).await;
        assert_eq!(link, format!("deployment {production}"));
        assert!(
            b.find_all(Locator::Css("form[action$='/cancel']"))
                .await
                .unwrap()
                .is_empty(),
            "an ended run has no cancel"
        );
        wait_for_text(&b, "#run-log", |t| {
            t.contains("success: every job succeeded")
        })
        .await;
        let shot = screenshot(&b, "run.png").await;
        assert!(std::fs::metadata(shot).unwrap().len() > 10_000);

        // Readable on a phone: the jobs table scrolls, the page does not.
        b.set_window_size(390, 844).await.unwrap();
        b.refresh().await.unwrap();
        wait_for_text(&b, "#run-summary h1 .badge", |t| t == "success").await;
        let fits = b
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, json!(true), "the run page fits a phone's width");
        screenshot(&b, "run-phone.png").await;
    })
    .await;
}
