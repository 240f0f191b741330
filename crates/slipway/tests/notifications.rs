//! Webhook notifications through the real binary: a receiver started by the test gets the
//! events of real deployments, signed and in order, a failing one is retried with every
//! attempt in `slipway notifications log`, and one that is down never holds a deployment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use util::{Server, Sweep, code, demo_app, free_port, run, run_for, slipway, stderr, stdout};

const SECRET: &str = "webhook-signing-secret-of-the-test";

/// One request a receiver got: its headers (names in lower case) and its exact body.
#[derive(Debug, Clone)]
struct Request {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// How a receiver answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// With these status codes in turn, then 200.
    Codes,
    /// Never: it reads the request and holds the connection open.
    Never,
}

/// A webhook receiver on 127.0.0.1:0, one thread per connection; it stops on drop.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Receiver {
    fn start(answer: Answer, codes: &[u16]) -> Receiver {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let codes = Arc::new(Mutex::new(codes.iter().copied().collect::<VecDeque<u16>>()));
        let (got2, stop2) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (got, stop, codes) = (got2.clone(), stop2.clone(), codes.clone());
                std::thread::spawn(move || serve(stream, answer, &got, &stop, &codes));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks/slipway"),
            got,
            stop,
            port,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.got.lock().unwrap().clone()
    }

    fn wait_for(&self, n: usize) -> Vec<Request> {
        let ok = util::wait_until(Duration::from_secs(60), || self.requests().len() >= n);
        let got = self.requests();
        assert!(ok, "expected {n} requests, got {}: {got:?}", got.len());
        got
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn serve(
    stream: TcpStream,
    answer: Answer,
    got: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
    codes: &Mutex<VecDeque<u16>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = HashMap::new();
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    got.lock().unwrap().push(Request { headers, body });
    if answer == Answer::Never {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return;
    }
    let code = codes.lock().unwrap().pop_front().unwrap_or(200);
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {code} Answer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

fn hmac_hex(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A server with app `web` (the demo app), a `staging` environment and a `production`
/// one that needs an approval, and the `notifications:` list given.
fn server(dir: &Path, notifications: &str) -> Server {
    Server::start_with_env(
        dir,
        |api| {
            format!(
                r#"version: 1
server:
  listen: 127.0.0.1:{api}
  data_dir: data
  tick: 50ms
apps:
  web:
    run: "exec '{app}' --port {{port}} --release {{version}}"
    health: {{ path: /health, interval: 100ms, timeout: 1s, start_period: 10s }}
environments:
  staging:
    listen: 127.0.0.1:{staging}
    strategy: recreate
  production:
    listen: 127.0.0.1:{production}
    strategy: recreate
    protection: {{ reviewers: [alice], required_approvals: 1 }}
users:
  alice: {{ role: approver }}
notifications:
{notifications}"#,
                app = demo_app().display(),
                staging = free_port(),
                production = free_port(),
            )
        },
        &[("WEBHOOK_SECRET", SECRET)],
    )
}

/// `slipway deploy … --wait --json`, which must end `expect`; the deployment and how long
/// the command took.
fn deploy(server: &Server, env: &str, version: &str, expect: &str) -> (Value, Duration) {
    let started = Instant::now();
    let out = run_for(
        server.cli().args([
            "deploy",
            "web",
            "--version",
            version,
            "--env",
            env,
            "--wait",
            "--json",
        ]),
        Duration::from_secs(60),
    );
    let took = started.elapsed();
    let d: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    assert_eq!(d["status"], expect, "{d:#}\n{}", stderr(&out));
    (d, took)
}

fn log_json(server: &Server) -> Vec<Value> {
    let out = run(server.cli().args(["notifications", "log", "--json"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["attempts"].as_array().unwrap().clone()
}

#[test]
fn a_receiver_gets_signed_events_of_real_deployments_in_order_and_only_those_it_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    let hooks = Receiver::start(Answer::Codes, &[]);
    let chat = Receiver::start(Answer::Codes, &[]);
    let server = server(
        dir.path(),
        &format!(
            "  - name: hooks\n    url: {}\n    events: [deployment.started, deployment.waiting, deployment.approved, deployment.succeeded]\n    secret: {{ env: WEBHOOK_SECRET }}\n  - name: chat\n    url: {}\n    format: slack\n    events: [\"*\"]\n",
            hooks.url, chat.url
        ),
    );
    let (staging, _) = deploy(&server, "staging", "v1", "success");
    let (waiting, _) = deploy(&server, "production", "v1", "waiting");
    let id = waiting["id"].as_i64().unwrap();
    let out = run(server
        .cli()
        .args(["approve", &id.to_string(), "--comment", "ship it"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    util::wait_until(Duration::from_secs(60), || {
        let out = run(server
            .cli()
            .args(["history", "web", "--env", "production", "--json"]));
        stdout(&out).contains("\"success\"")
    });

    // The sixth is the last entry of the outbox: nothing can come after it.
    let got = hooks.wait_for(6);
    let mut seen = Vec::new();
    let mut last_seq = 0;
    for r in &got {
        // The signature is over the exact bytes received.
        let signature = r.header("x-slipway-signature-256").unwrap();
        assert_eq!(signature, format!("sha256={}", hmac_hex(&r.body)), "{r:?}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json();
        assert_eq!(r.header("x-slipway-event"), body["event"].as_str());
        let seq: i64 = r.header("x-slipway-delivery").unwrap().parse().unwrap();
        assert!(seq > last_seq, "in outbox order");
        last_seq = seq;
        assert!(body["at"].as_str().unwrap().ends_with('Z'), "{body}");
        assert!(body.get("run").is_none());
        let d = &body["deployment"];
        seen.push((
            body["event"].as_str().unwrap().to_owned(),
            d["environment"].as_str().unwrap().to_owned(),
            d["status"].as_str().unwrap().to_owned(),
            d["approvals"].as_array().unwrap().len(),
        ));
        assert_eq!(d["app"], "web");
        assert_eq!(
            d["statuses"].as_array().unwrap().last().unwrap()["status"],
            d["status"],
            "the deployment as it was at the event"
        );
    }
    let row =
        |e: &str, env: &str, s: &str, a: usize| (e.to_owned(), env.to_owned(), s.to_owned(), a);
    assert_eq!(
        seen,
        [
            row("deployment.started", "staging", "in_progress", 0),
            row("deployment.succeeded", "staging", "success", 0),
            row("deployment.waiting", "production", "waiting", 0),
            row("deployment.approved", "production", "waiting", 1),
            row("deployment.started", "production", "in_progress", 1),
            row("deployment.succeeded", "production", "success", 1),
        ]
    );
    assert_eq!(got[0].json()["deployment"]["id"], staging["id"]);
    assert_eq!(
        got[3].json()["deployment"]["approvals"][0]["comment"],
        "ship it"
    );

    // The chat target takes every event, as a line for people, unsigned.
    let lines = chat.wait_for(6);
    let texts: Vec<String> = lines
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        lines
            .iter()
            .all(|r| r.header("x-slipway-signature-256").is_none())
    );
    assert_eq!(
        texts[0],
        format!(
            "web v1 to staging: rollout started (deployment {})",
            staging["id"]
        )
    );
    assert!(
        texts.contains(&format!(
            "web v1 to production: approved by admin (deployment {id})"
        )),
        "{texts:?}"
    );
    assert!(
        texts.contains(&format!(
            "web v1 to production: succeeded (deployment {id})"
        )),
        "{texts:?}"
    );

    assert_eq!(hooks.requests().len(), 6, "only what it subscribed to");

    // The secret is nowhere: not in the server's log, not in the attempts.
    let attempts = log_json(&server);
    assert!(attempts.len() >= 12, "{attempts:?}");
    let all = format!(
        "{}{}",
        serde_json::to_string(&attempts).unwrap(),
        std::fs::read_to_string(dir.path().join("server.log")).unwrap()
    );
    assert!(!all.contains(SECRET));
    assert!(!all.contains("/hooks/slipway"), "no target URL either");
    let stored: Vec<u8> = ["slipway.db", "slipway.db-wal"]
        .iter()
        .flat_map(|f| std::fs::read(dir.path().join("data").join(f)).unwrap_or_default())
        .collect();
    assert!(!String::from_utf8_lossy(&stored).contains(SECRET));
}

#[test]
fn a_failing_receiver_is_retried_and_every_attempt_is_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    let flaky = Receiver::start(Answer::Codes, &[500]);
    let broken = Receiver::start(Answer::Codes, &[503, 503, 503, 503]);
    let server = server(
        dir.path(),
        &format!(
            "  - {{ name: flaky, url: '{}', events: [deployment.succeeded], secret: {{ env: WEBHOOK_SECRET }}, backoff: 50ms }}\n  - {{ name: broken, url: '{}', events: [deployment.started, deployment.succeeded], attempts: 2, backoff: 10ms }}\n",
            flaky.url, broken.url
        ),
    );
    let (d, _) = deploy(&server, "staging", "v1", "success");
    let got = flaky.wait_for(2);
    assert_eq!(got[0].body, got[1].body, "the same event again");
    assert_eq!(
        got[0].header("x-slipway-delivery"),
        got[1].header("x-slipway-delivery")
    );
    assert_eq!(got[1].json()["event"], "deployment.succeeded");
    // Given up on the started event after two attempts, the broken target went on to the
    // next one.
    broken.wait_for(4);

    let mut attempts = Vec::new();
    util::wait_until(Duration::from_secs(30), || {
        attempts = log_json(&server);
        attempts.len() >= 6
    });
    let summary: Vec<(String, String, i64, String, Value)> = attempts
        .iter()
        .rev()
        .map(|a| {
            assert_eq!(a["deployment_id"], d["id"]);
            (
                a["target"].as_str().unwrap().to_owned(),
                a["event"].as_str().unwrap().to_owned(),
                a["attempt"].as_i64().unwrap(),
                a["outcome"].as_str().unwrap().to_owned(),
                a["http_status"].clone(),
            )
        })
        .collect();
    let flaky_rows: Vec<_> = summary.iter().filter(|r| r.0 == "flaky").cloned().collect();
    let broken_rows: Vec<_> = summary
        .iter()
        .filter(|r| r.0 == "broken")
        .cloned()
        .collect();
    let row = |t: &str, e: &str, n: i64, o: &str, s: u16| {
        (t.to_owned(), e.to_owned(), n, o.to_owned(), Value::from(s))
    };
    assert_eq!(
        flaky_rows,
        [
            row("flaky", "deployment.succeeded", 1, "retrying", 500),
            row("flaky", "deployment.succeeded", 2, "delivered", 200),
        ]
    );
    assert_eq!(
        broken_rows,
        [
            row("broken", "deployment.started", 1, "retrying", 503),
            row("broken", "deployment.started", 2, "failed", 503),
            row("broken", "deployment.succeeded", 1, "retrying", 503),
            row("broken", "deployment.succeeded", 2, "failed", 503),
        ]
    );
    let retried = attempts
        .iter()
        .find(|a| a["target"] == "flaky" && a["attempt"] == 1)
        .unwrap();
    assert_eq!(
        retried["error"],
        "the receiver answered 500 Internal Server Error"
    );

    let out = run(server.cli().args(["notifications", "log", "--limit", "3"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 4, "a header and three rows:\n{text}");
    assert!(text.lines().next().unwrap().starts_with("AT"), "{text}");
    let all = stdout(&run(server.cli().args(["notifications", "log"])));
    assert!(
        all.contains("retrying (500)") && all.contains("gave up (503)"),
        "{all}"
    );
    assert!(all.contains(&format!("deployment {}", d["id"])), "{all}");
}

#[test]
fn a_receiver_that_never_answers_or_refuses_does_not_delay_a_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let _sweep = Sweep(dir.path().to_path_buf());
    let silent = Receiver::start(Answer::Never, &[]);
    let refused = free_port();
    let server = server(
        dir.path(),
        &format!(
            "  - {{ name: silent, url: '{}', events: ['*'], timeout: 30s }}\n  - {{ name: refused, url: 'http://127.0.0.1:{refused}/x', events: ['*'], attempts: 2, backoff: 10ms }}\n",
            silent.url
        ),
    );
    let (_, first) = deploy(&server, "staging", "v1", "success");
    // The silent receiver holds its first request, the refusing one is refused: neither
    // holds a deployment.
    silent.wait_for(1);
    let (second, took) = deploy(&server, "staging", "v2", "success");
    assert!(
        took < Duration::from_secs(20),
        "the second deployment took {took:?} (the first {first:?})"
    );
    assert_eq!(silent.requests().len(), 1, "still on its first attempt");
    let mut refused_rows = Vec::new();
    util::wait_until(Duration::from_secs(30), || {
        refused_rows = log_json(&server)
            .into_iter()
            .filter(|a| a["target"] == "refused" && a["deployment_id"] == second["id"])
            .collect();
        refused_rows.len() >= 4
    });
    for a in &refused_rows {
        assert_eq!(a["http_status"], Value::Null, "{a}");
        let error = a["error"].as_str().unwrap();
        assert!(error.starts_with("cannot connect"), "{error}");
        assert!(!error.contains("127.0.0.1"), "no URL in the error: {error}");
    }
}

#[test]
fn a_missing_signing_key_is_named_with_its_line_and_column_and_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slipway.yaml"),
        format!(
            "version: 1\nserver:\n  listen: 127.0.0.1:{}\n  data_dir: data\nnotifications:\n  - url: https://hooks.example.com/x\n    events: ['*']\n    secret: {{ env: SLIPWAY_TEST_UNSET_WEBHOOK_KEY }}\n",
            free_port()
        ),
    )
    .unwrap();
    for args in [&["validate"][..], &["server", "--config", "slipway.yaml"]] {
        let out = run_for(slipway(dir.path()).args(args), Duration::from_secs(30));
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("slipway.yaml:8:15: notifications[0].secret.env: environment variable SLIPWAY_TEST_UNSET_WEBHOOK_KEY is not set"),
            "{args:?}: {err}"
        );
    }
    // With the variable set, the same file is valid.
    let out = run(slipway(dir.path())
        .arg("validate")
        .env("SLIPWAY_TEST_UNSET_WEBHOOK_KEY", "k3y"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_secret_in_plain_text_is_refused_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slipway.yaml"),
        "version: 1\nnotifications:\n  - url: https://hooks.example.com/x\n    events: [deployment.succeeded, deploy.done]\n    format: xml\n    secret: hunter2\n",
    )
    .unwrap();
    let out = run(slipway(dir.path()).arg("validate"));
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    for expected in [
        "slipway.yaml:4:36: notifications[0].events[1]: unknown event `deploy.done`",
        "slipway.yaml:5:5: notifications[0].format: unknown format `xml`",
        "slipway.yaml:6:5: notifications[0].secret: a secret is never written in the config in plain text",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    assert!(
        !err.contains("hunter2"),
        "the secret is not repeated: {err}"
    );
}
