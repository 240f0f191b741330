//! `slipway demo`: the whole product in one story on the embedded default (SQLite, process
//! driver, in-process routers), in a temporary directory, with real HTTP traffic.
//!
//! v1 and v2 go to staging then production (production needs an approval, and its
//! creator may not give it), a faulty v3 fails its health check in staging while traffic
//! stays on v2, then production is rolled back to v1 and forward to v2 again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use slipway_core::Status;

use crate::client::{Action, Client, ClientError, Deployment, LogLine, NewDeployment, StatusEntry};
use crate::commands::follow::{self, FollowOptions, Observer, Pause, Stand};
use crate::commands::read::status_table;
use crate::error::{Error, Result};
use crate::output::{self, TimelineRow};

const DEMO_APP: &str = "slipway-demo-app";
const APP: &str = "web";
const STAGING: &str = "staging";
const PRODUCTION: &str = "production";

pub async fn run(keep: bool) -> Result<u8> {
    let app_bin = demo_app().await?;
    let dir = tempfile::Builder::new()
        .prefix("slipway-demo-")
        .tempdir()
        .map_err(Error::io("cannot create a temporary directory"))?;
    let config_path = dir.path().join("slipway.yaml");
    std::fs::write(&config_path, config_yaml(dir.path(), &app_bin))
        .map_err(Error::io(format!("cannot write {}", config_path.display())))?;
    let config = slipway_config::load(&config_path)?;
    outln!("slipway demo in {}", dir.path().display());

    let handle = slipway_server::start(config).await?;
    let api = format!("http://{}", handle.api_addr);
    let (Some(staging), Some(production)) = (
        handle.engine.listener(STAGING).await,
        handle.engine.listener(PRODUCTION).await,
    ) else {
        handle.shutdown().await;
        return Err(Error::Failed("the server did not start the routers".into()));
    };
    let routers = Routers {
        staging,
        production,
    };
    outln!(
        "server listening on {api}; routers: staging http://{staging}, production http://{production}\n"
    );
    // A first start on an empty data dir creates the admin and hands back its token.
    let token = match handle.admin_token.clone() {
        Some(token) => token,
        None => {
            handle.shutdown().await;
            return Err(Error::Failed(
                "the demo's fresh server made no admin token".into(),
            ));
        }
    };
    let admin = Client::new(&api, Some(token))?;
    let traffic = Traffic::start(&routers);
    let story = async {
        let mut story = Story::new(&admin, dir.path(), traffic.clone()).await?;
        story.tell().await
    };
    let outcome = tokio::select! {
        outcome = story => outcome,
        () = interrupted() => Err(Error::Failed("interrupted".into())),
    };
    traffic.stop();
    handle.shutdown().await;
    stop_apps(dir.path()).await;
    if keep {
        let kept = dir.keep();
        outln!("kept {}", kept.display());
    }
    outcome?;
    outln!("\nthe demo went as expected");
    Ok(0)
}

/// Ctrl-C or SIGTERM: either way the demo cleans up before it exits.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The demo app sits next to this binary. `cargo run -p slipway -- demo` builds only
/// `slipway`, so under cargo (which sets CARGO and CARGO_MANIFEST_DIR) we build the demo
/// app the same way and take the path cargo reports.
async fn demo_app() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(Error::io("cannot find the slipway binary"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let bin = dir.join(DEMO_APP);
    if bin.is_file() {
        return Ok(bin);
    }
    if let (Some(cargo), Some(manifest_dir)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("CARGO_MANIFEST_DIR"),
    ) {
        errln!("building {DEMO_APP}, which the demo runs…");
        let mut build = tokio::process::Command::new(cargo);
        build
            .args(["build", "-p", DEMO_APP, "--message-format=json"])
            .current_dir(manifest_dir)
            .stdout(std::process::Stdio::piped());
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        if let Ok(out) = build.output().await
            && out.status.success()
            && let Some(built) = built_executable(&String::from_utf8_lossy(&out.stdout))
        {
            return Ok(built);
        }
    }
    Err(Error::Failed(format!(
        "the demo needs {DEMO_APP} next to slipway in {}\nhint: build it with `cargo build -p {DEMO_APP}`",
        dir.display()
    )))
}

/// The demo app's path in cargo's `--message-format=json` output.
fn built_executable(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == DEMO_APP)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// Where the environments' routers listen (ports the server picked).
struct Routers {
    staging: SocketAddr,
    production: SocketAddr,
}

/// The demo's `slipway.yaml`. Every instance records its pid (its process group) so the
/// demo can stop what is left at the end, and reads its fault flags from a file per
/// version, which is how v3 gets `--fail-health` without the demo app knowing about it.
fn config_yaml(dir: &Path, app_bin: &Path) -> String {
    let dir_s = dir.display().to_string();
    let run = format!(
        "echo $$ >> '{dir_s}/pids'; exec '{}' --port {{port}} --release {{version}} $(cat '{dir_s}'/flags-{{version}} 2>/dev/null)",
        app_bin.display()
    );
    // A JSON string is a valid YAML double-quoted scalar: no escaping rules of our own.
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
  data_dir: {data_dir}
  tick: 50ms
apps:
  web:
    driver: process
    run: {run}
    health: {{ path: /health, interval: 250ms, timeout: 1s, healthy_threshold: 1, unhealthy_threshold: 2, start_period: 3s }}
    smoke:
      - {{ get: /health, expect_status: 200 }}
      - {{ get: /, expect_body_contains: "ok release=" }}
environments:
  staging:
    listen: 127.0.0.1:0
    strategy: blue-green
  production:
    listen: 127.0.0.1:0
    requires: [staging]
    protection:
      reviewers: [alice, bob]
      required_approvals: 1
      prevent_self_review: true
    strategy:
      canary:
        steps: [{{ weight: 20 }}, {{ pause: 2s }}, {{ weight: 50 }}, {{ pause: 2s }}]
        analysis: {{ interval: 500ms, max_error_rate: 5%, min_requests: 5, failure_limit: 2 }}
users:
  alice: {{ role: approver }}
  bob: {{ role: approver }}
"#,
        data_dir = quote(&dir.join("data").display().to_string()),
        run = quote(&run),
    )
}

/// Stops instances the server left running: workloads outlive the control plane by
/// design, but not the demo. Only processes that still run the demo app are signalled.
async fn stop_apps(dir: &Path) {
    let pids = std::fs::read_to_string(dir.join("pids")).unwrap_or_default();
    let ours = |pid: i32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(DEMO_APP))
    };
    let groups: Vec<i32> = pids
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&pid| ours(pid))
        .collect();
    for &pgid in &groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while groups.iter().any(|&p| ours(p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for &pgid in groups.iter().filter(|&&p| ours(p)) {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

// === impl Traffic ===

/// Requests sent through both routers all along, tallied by the release that answered.
#[derive(Clone)]
struct Traffic {
    tally: Arc<Mutex<BTreeMap<&'static str, BTreeMap<String, u64>>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(routers: &Routers) -> Traffic {
        let tally: Arc<Mutex<BTreeMap<&'static str, BTreeMap<String, u64>>>> = Arc::default();
        let targets = [
            (STAGING, format!("http://{}/", routers.staging)),
            (PRODUCTION, format!("http://{}/", routers.production)),
        ];
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        let counts = tally.clone();
        let task = tokio::spawn(async move {
            let mut n: u64 = 0;
            loop {
                for (env, url) in &targets {
                    n += 1;
                    // A new user key per request: the sticky split shows as percentages.
                    let answer = http
                        .get(url)
                        .header("X-Slipway-Key", format!("demo-user-{n}"))
                        .send()
                        .await;
                    let who = match answer {
                        Ok(resp) if resp.status().is_success() => {
                            let body = resp.text().await.unwrap_or_default();
                            release_of(&body).unwrap_or("?").to_string()
                        }
                        Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
                        Err(_) => "no answer".to_string(),
                    };
                    if let Ok(mut t) = counts.lock() {
                        *t.entry(env).or_default().entry(who).or_default() += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Traffic {
            tally,
            task: Arc::new(task),
        }
    }

    /// Who answered since the last report, per environment.
    fn report(&self) -> String {
        let tally = match self.tally.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => return String::new(),
        };
        let mut out = String::from("           traffic since the last report:");
        for (env, answers) in &tally {
            let total: u64 = answers.values().sum();
            let split = answers
                .iter()
                .map(|(who, n)| {
                    format!(
                        "{who} {}%",
                        output::percent(*n as f64 * 100.0 / total as f64)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let _ = write!(out, "  {env}: {split} ({total} requests);");
        }
        out.trim_end_matches(';').to_string()
    }

    fn stop(&self) {
        self.task.abort();
    }
}

/// The demo app answers `ok release=v1`.
fn release_of(body: &str) -> Option<&str> {
    body.split_whitespace()
        .find_map(|w| w.strip_prefix("release="))
}

// === impl Story ===

struct Story {
    bob: Client,
    alice: Client,
    admin: Client,
    dir: PathBuf,
    started: SystemTime,
    traffic: Traffic,
}

impl Story {
    async fn new(admin: &Client, dir: &Path, traffic: Traffic) -> Result<Story> {
        let alice = admin.add_user("alice", "approver").await?.data.token;
        let bob = admin.add_user("bob", "approver").await?.data.token;
        outln!(
            "users: alice (approver), bob (approver); both review production, neither may approve their own deployment\n"
        );
        outln!(
            "{:>7}  {:<5} {:<11} {:<4} {:<12} REASON",
            "TIME",
            "APP",
            "ENVIRONMENT",
            "VER",
            "STATUS"
        );
        Ok(Story {
            alice: admin.with_token(alice),
            bob: admin.with_token(bob),
            admin: admin.clone(),
            dir: dir.to_path_buf(),
            started: SystemTime::now(),
            traffic,
        })
    }

    async fn tell(&mut self) -> Result<()> {
        self.chapter("bob deploys v1 to staging (blue-green)");
        self.deploy_and_expect("v1", STAGING, Status::Success)
            .await?;

        self.chapter("bob deploys v1 to production: it needs an approval");
        let id = self.deploy_and_expect_approval("v1").await?;
        self.chapter(
            "alice approves; v1 is the first release there, so it takes all traffic once healthy",
        );
        self.approve_and_expect(id, Status::Success).await?;
        self.traffic_report();

        self.chapter("bob deploys v2 to staging");
        self.deploy_and_expect("v2", STAGING, Status::Success)
            .await?;
        self.traffic_report();

        self.chapter("bob deploys v2 to production");
        let id = self.deploy_and_expect_approval("v2").await?;
        self.chapter("bob tries to approve his own deployment");
        match self
            .bob
            .decide(id, Action::Approve, Some("looks good to me"))
            .await
        {
            Err(ClientError::Api {
                status,
                code,
                message,
                ..
            }) if status.as_u16() == 409 => {
                self.say(&format!("refused ({status}): {message} ({code})"));
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {
                return Err(Error::Failed(
                    "bob could approve his own deployment: prevent_self_review did not hold".into(),
                ));
            }
        }
        self.chapter("alice approves; production's canary strategy moves traffic to v2");
        self.approve_and_expect(id, Status::Success).await?;
        self.traffic_report();

        self.chapter("bob deploys v3 to staging; v3 fails its health check");
        std::fs::write(self.dir.join("flags-v3"), "--fail-health\n")
            .map_err(Error::io("cannot write the fault flags of v3"))?;
        self.deploy_and_expect("v3", STAGING, Status::Failure)
            .await?;
        self.expect_current(STAGING, "v2").await?;
        self.say("staging still serves v2: the new set never took traffic");
        self.traffic_report();

        self.chapter("bob rolls production back to v1 (kept release: no rebuild, no approval)");
        self.rollback_and_expect("v1").await?;
        self.expect_current(PRODUCTION, "v1").await?;
        self.traffic_report();

        self.chapter("and forward again to v2");
        self.rollback_and_expect("v2").await?;
        self.expect_current(PRODUCTION, "v2").await?;
        self.traffic_report();

        let status = self.admin.status(Some(APP), None).await?.data;
        outln!(
            "\n{}",
            status_table(&status.environments, SystemTime::now())
        );
        Ok(())
    }

    fn chapter(&self, title: &str) {
        outln!("\n▸ {title}");
    }

    fn say(&self, text: &str) {
        outln!("           {text}");
    }

    fn traffic_report(&self) {
        outln!("{}", self.traffic.report());
    }

    async fn deploy_and_expect(&self, version: &str, env: &str, want: Status) -> Result<i64> {
        let new = NewDeployment {
            app: APP.into(),
            environment: env.into(),
            version: version.into(),
            git_ref: Some("main".into()),
            ..NewDeployment::default()
        };
        let d = self.bob.create_deployment(&new).await?.data;
        let last = self.follow(d.id, 0).await?;
        expect(&last, want)?;
        Ok(d.id)
    }

    async fn deploy_and_expect_approval(&self, version: &str) -> Result<i64> {
        let new = NewDeployment {
            app: APP.into(),
            environment: PRODUCTION.into(),
            version: version.into(),
            git_ref: Some("main".into()),
            ..NewDeployment::default()
        };
        let d = self.bob.create_deployment(&new).await?.data;
        let last = self.follow(d.id, 0).await?;
        if follow::stand(&last) != Stand::Paused(Pause::Approval) {
            return Err(unexpected(&last, "waiting for an approval"));
        }
        Ok(d.id)
    }

    async fn approve_and_expect(&self, id: i64, want: Status) -> Result<()> {
        let approved = self
            .alice
            .decide(id, Action::Approve, Some("ship it"))
            .await?
            .data;
        self.say(&format!("alice approved deployment {id}"));
        let last = self.follow(id, approved.statuses.len()).await?;
        expect(&last, want)
    }

    async fn rollback_and_expect(&self, to: &str) -> Result<()> {
        let d = self.bob.rollback(APP, PRODUCTION, Some(to)).await?.data;
        let last = self.follow(d.id, 0).await?;
        expect(&last, Status::Success)
    }

    async fn expect_current(&self, env: &str, version: &str) -> Result<()> {
        let status = self.admin.status(Some(APP), Some(env)).await?.data;
        let current = status
            .environments
            .iter()
            .find(|e| e.environment == env)
            .and_then(|e| e.current.as_ref())
            .map(|c| c.version.as_str());
        if current != Some(version) {
            return Err(Error::Failed(format!(
                "expected {APP} {version} to run in {env}, found {}",
                current.unwrap_or("nothing")
            )));
        }
        Ok(())
    }

    /// Follows `id` to its end or its next pause, printing changes after the first `shown`.
    async fn follow(&self, id: i64, shown: usize) -> Result<Deployment> {
        let mut timeline = Timeline {
            started: self.started,
            traffic: String::new(),
        };
        let opts = FollowOptions {
            with_logs: false,
            follow_waits: true,
            shown,
        };
        Ok(follow::follow(&self.admin, id, &opts, &mut timeline)
            .await?
            .data)
    }
}

fn expect(d: &Deployment, want: Status) -> Result<()> {
    if d.status == want {
        Ok(())
    } else {
        Err(unexpected(d, want.as_str()))
    }
}

fn unexpected(d: &Deployment, wanted: &str) -> Error {
    Error::Failed(format!(
        "the story went off script: deployment {} ({} {} → {}) is {}, expected {wanted}: {}",
        d.id,
        d.app,
        d.version,
        d.environment,
        d.status,
        d.last_reason()
    ))
}

/// Prints every status change as a timeline row, and the traffic split whenever it moves.
struct Timeline {
    started: SystemTime,
    traffic: String,
}

impl Observer for Timeline {
    fn status(&mut self, d: &Deployment, change: &StatusEntry) {
        let offset = output::parse_time(&change.at)
            .and_then(|at| at.duration_since(self.started).ok())
            .unwrap_or_default();
        let row = TimelineRow {
            offset,
            app: &d.app,
            environment: &d.environment,
            version: &d.version,
            status: change.status.as_str(),
            reason: &change.reason,
        };
        outln!("{row}");
    }

    fn log(&mut self, _d: &Deployment, _line: &LogLine) {}

    fn progress(&mut self, d: &Deployment) {
        if d.status != Status::InProgress || d.traffic.is_empty() {
            return;
        }
        let split = output::traffic(&d.traffic);
        if split != self.traffic {
            outln!("           {} traffic: {split}", d.environment);
            self.traffic = split;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slipway.yaml");
        let app = dir.path().join("bin dir").join(DEMO_APP);
        std::fs::write(&path, config_yaml(dir.path(), &app)).unwrap();
        let config = slipway_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.environments.len(), 2);
        let run = config.apps["web"].run.clone().unwrap();
        assert!(
            run.contains("{port}") && run.contains("flags-{version}"),
            "{run}"
        );
        assert!(run.contains(&format!("'{}'", app.display())), "{run}");
    }

    #[test]
    fn the_built_demo_app_is_found_in_cargos_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"libc"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"slipway-demo-app"},"executable":"/t/debug/slipway-demo-app"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            built_executable(messages),
            Some(PathBuf::from("/t/debug/slipway-demo-app"))
        );
        assert_eq!(built_executable("garbage"), None);
    }

    #[test]
    fn the_release_is_read_from_the_demo_apps_answer() {
        assert_eq!(release_of("ok release=v2\n"), Some("v2"));
        assert_eq!(release_of("hello"), None);
    }
}
