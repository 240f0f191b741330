//! `slipway demo`: the whole product in one story on the embedded default (SQLite, process
//! driver, in-process routers), in a temporary directory, with real HTTP traffic.
//!
//! v1 and v2 go to staging then production (production needs an approval, and its
//! creator may not give it), a faulty v3 fails its health check in staging while traffic
//! stays on v2, then production is rolled back to v1 and forward to v2 again. Last, v4
//! passes staging but answers half of production's requests with errors: its canary's
//! analysis fails it and puts all traffic back on v2 without anyone acting.
//!
//! When a Docker daemon answers, app `shop` then tells the container story
//! (`containers.rs`); when none does, the demo says so in one line.

mod containers;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use slipway_api::{LogSource, Role, Status};

use crate::client::{
    Action, Client, ClientError, CreateDeployment, Deployment, LogLine, StatusEntry,
};
use crate::commands::follow::{self, FollowOptions, Followed, Observer, Pause, Stand};
use crate::commands::read::status_table;
use crate::error::{Error, Result};
use crate::output::{self, TimelineRow};

const DEMO_APP: &str = "slipway-demo-app";
const APP: &str = "web";
const STAGING: &str = "staging";
const PRODUCTION: &str = "production";

pub async fn run(keep: bool) -> Result<u8> {
    let app_bin = demo_app().await?;
    let docker = containers::prepare().await;
    let dir = tempfile::Builder::new()
        .prefix("slipway-demo-")
        .tempdir()
        .map_err(Error::io("cannot create a temporary directory"))?;
    let config_path = dir.path().join("slipway.yaml");
    let docker_app = matches!(docker, containers::Docker::Ready(_));
    std::fs::write(&config_path, config_yaml(dir.path(), &app_bin, docker_app))
        .map_err(Error::io(format!("cannot write {}", config_path.display())))?;
    let config = slipway_config::load(&config_path)?;
    outln!("slipway demo in {}", dir.path().display());
    if let containers::Docker::Skipped(line) = &docker {
        outln!("{line}");
    }

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
        let mut story = Story::new(&admin, dir.path(), routers, traffic.clone()).await?;
        story.tell().await?;
        match &docker {
            containers::Docker::Ready(driver) => story.containers(driver).await?,
            containers::Docker::Skipped(_) => {}
        }
        story.close().await
    };
    let outcome = tokio::select! {
        outcome = story => outcome,
        () = interrupted() => Err(Error::Failed("interrupted".into())),
    };
    traffic.stop();
    // Workloads outlive the control plane by design, but not the demo.
    let engine = handle.engine.clone();
    handle.shutdown().await;
    if let Err(e) = engine.stop_all_instances().await {
        errln!("warning: could not stop every app instance: {e}");
    }
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
#[derive(Debug, Clone, Copy)]
struct Routers {
    staging: SocketAddr,
    production: SocketAddr,
}

impl Routers {
    fn of(&self, env: &str) -> SocketAddr {
        if env == STAGING {
            self.staging
        } else {
            self.production
        }
    }
}

/// The demo's `slipway.yaml`. Every instance reads its fault flags from a file per
/// version when it starts, which is how v3 gets `--fail-health` and v4 `--error-rate`
/// without the demo app knowing about it. Production's canary judges every 250ms and
/// from 5 requests on: the demo's traffic (about 20 requests a second) decides in seconds.
/// With `docker_app`, app `shop` runs containers beside it.
fn config_yaml(dir: &Path, app_bin: &Path, docker_app: bool) -> String {
    let dir_s = dir.display().to_string();
    let run = format!(
        "exec '{}' --port {{port}} --release {{version}} $(cat '{dir_s}'/flags-{{version}} 2>/dev/null)",
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
  instance_check: 250ms
apps:
  web:
    driver: process
    run: {run}
    health: {{ path: /health, interval: 250ms, timeout: 1s, healthy_threshold: 1, unhealthy_threshold: 2, start_period: 3s }}
    smoke:
      - {{ get: /health, expect_status: 200 }}
      - {{ get: /, expect_body_contains: "ok release=" }}
{docker}environments:
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
        analysis: {{ interval: 250ms, max_error_rate: 5%, min_requests: 5, failure_limit: 2 }}
users:
  alice: {{ role: approver }}
  bob: {{ role: approver }}
"#,
        data_dir = quote(&dir.join("data").display().to_string()),
        run = quote(&run),
        docker = if docker_app {
            containers::app_yaml()
        } else {
            String::new()
        },
    )
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
                        .header("X-Slipway-App", APP)
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
    routers: Routers,
    traffic: Traffic,
    /// v4's deployment to production, whose canary the engine rolls back.
    v4: Option<i64>,
}

impl Story {
    async fn new(admin: &Client, dir: &Path, routers: Routers, traffic: Traffic) -> Result<Story> {
        let alice = admin.add_user("alice", Role::Approver).await?.data.token;
        let bob = admin.add_user("bob", Role::Approver).await?.data.token;
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
            routers,
            traffic,
            v4: None,
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
        let last = self.approve_and_follow(id).await?;
        expect(&last, Status::Success)?;
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
        let last = self.approve_and_follow(id).await?;
        expect(&last, Status::Success)?;
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

        self.chapter("bob deploys v4 to staging; it passes there");
        self.deploy_and_expect("v4", STAGING, Status::Success)
            .await?;
        std::fs::write(self.dir.join("flags-v4"), "--error-rate 0.5\n")
            .map_err(Error::io("cannot write the fault flags of v4"))?;
        self.say(
            "but v4 has a bug staging's checks missed: from now on, half of its answers to GET / are errors (--error-rate 0.5)",
        );
        self.traffic_report();

        self.chapter("bob deploys v4 to production");
        let v4 = self.deploy_and_expect_approval("v4").await?;
        self.chapter(
            "alice approves; the canary gives v4 20% of production's traffic while the analysis watches its errors",
        );
        let last = self.approve_and_follow(v4).await?;
        expect(&last, Status::Failure)?;
        self.expect_auto_rollback(v4, "v2").await?;
        self.say(
            "the analysis failed v4 and put all traffic back on v2 at once; nobody had to act",
        );
        self.traffic_report();
        self.v4 = Some(v4);
        Ok(())
    }

    /// What runs where, and the closing check, read back from the server: the story's
    /// point is that the failed canary was rolled back by the engine alone.
    async fn close(&self) -> Result<()> {
        let status = self.admin.status(None, None).await?.data;
        outln!(
            "\n{}",
            status_table(&status.environments, SystemTime::now())
        );
        match self.v4 {
            Some(v4) => self.expect_auto_rollback(v4, "v2").await,
            None => Err(Error::Failed("the story ended before v4's canary".into())),
        }
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
        self.deploy_app_and_expect(APP, version, env, want).await
    }

    async fn deploy_app_and_expect(
        &self,
        app: &str,
        version: &str,
        env: &str,
        want: Status,
    ) -> Result<i64> {
        let new = CreateDeployment {
            app: app.into(),
            environment: env.into(),
            version: version.into(),
            git_ref: Some("main".into()),
            ..CreateDeployment::default()
        };
        let d = self.bob.create_deployment(&new).await?.data;
        let last = self.follow(d.id, 0).await?.last.data;
        expect(&last, want)?;
        Ok(d.id)
    }

    async fn deploy_and_expect_approval(&self, version: &str) -> Result<i64> {
        self.deploy_app_and_expect_approval(APP, version).await
    }

    async fn deploy_app_and_expect_approval(&self, app: &str, version: &str) -> Result<i64> {
        let new = CreateDeployment {
            app: app.into(),
            environment: PRODUCTION.into(),
            version: version.into(),
            git_ref: Some("main".into()),
            ..CreateDeployment::default()
        };
        let d = self.bob.create_deployment(&new).await?.data;
        let followed = self.follow(d.id, 0).await?;
        if followed.stand != Stand::Paused(Pause::Approval) {
            return Err(unexpected(&followed.last.data, "waiting for an approval"));
        }
        Ok(d.id)
    }

    async fn approve_and_follow(&self, id: i64) -> Result<Deployment> {
        let approved = self
            .alice
            .decide(id, Action::Approve, Some("ship it"))
            .await?
            .data;
        self.say(&format!("alice approved deployment {id}"));
        Ok(self.follow(id, approved.statuses.len()).await?.last.data)
    }

    /// Deployment `id` ended `failure` by its canary analysis, and all of the
    /// environment's traffic went back to `stable`.
    async fn expect_auto_rollback(&self, id: i64, stable: &str) -> Result<()> {
        let d = self.admin.deployment(id).await?.data;
        let judged = self
            .admin
            .logs(id, None)
            .await?
            .data
            .iter()
            .any(|l| l.source == LogSource::Analysis);
        if d.status != Status::Failure || !judged {
            return Err(unexpected(&d, "failure by the canary analysis"));
        }
        self.expect_current(&d.environment, stable).await?;
        let status = self
            .admin
            .status(Some(APP), Some(&d.environment))
            .await?
            .data;
        let traffic = status
            .environments
            .iter()
            .find(|e| e.environment == d.environment)
            .map(|e| output::traffic(&e.traffic))
            .unwrap_or_default();
        let all_stable = format!("{stable} 100%");
        if traffic != all_stable {
            return Err(Error::Failed(format!(
                "after the failed canary {} should send {all_stable} of its traffic, not {traffic}",
                d.environment
            )));
        }
        Ok(())
    }

    async fn rollback_and_expect(&self, to: &str) -> Result<()> {
        let d = self
            .bob
            .rollback(APP, PRODUCTION, Some(to), None)
            .await?
            .data;
        let last = self.follow(d.id, 0).await?.last.data;
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
    async fn follow(&self, id: i64, shown: usize) -> Result<Followed> {
        let mut timeline = Timeline::new(self.started);
        let opts = FollowOptions {
            follow_waits: true,
            shown,
        };
        Ok(follow::follow(&self.admin, id, &opts, &mut timeline).await?)
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

/// Prints every status change as a timeline row, every analysis verdict from the log,
/// and, from what each poll shows, the canary's splits and pauses, and traffic going back
/// to the stable release when a rollout that had moved it fails.
struct Timeline {
    started: SystemTime,
    /// The split last shown, and the pause last shown with the split it paused at, so
    /// each is shown once even when a poll first sees a split already paused.
    split: Option<String>,
    pause: Option<(String, String)>,
    /// The stable release while traffic is split: where it goes back to on a failure.
    stable: Option<String>,
}

impl Timeline {
    fn new(started: SystemTime) -> Timeline {
        Timeline {
            started,
            split: None,
            pause: None,
            stable: None,
        }
    }

    fn row(&self, d: &Deployment, offset: Duration, status: &str, reason: &str) {
        let row = TimelineRow {
            offset,
            app: &d.app,
            environment: &d.environment,
            version: &d.version,
            status,
            reason,
        };
        outln!("{row}");
    }

    fn offset(&self, at: &str) -> Duration {
        output::parse_time(at)
            .and_then(|at| at.duration_since(self.started).ok())
            .unwrap_or_default()
    }

    /// The canary's new steps in `d` as timeline entries: `v2 80% · v4 20%` when the split
    /// changed, `pause 2s` when a pause began. A weight step goes straight into its pause,
    /// so one poll may bring both.
    fn steps(&mut self, d: &Deployment) -> Vec<String> {
        let mut steps = Vec::new();
        if d.status != Status::InProgress || d.traffic.len() < 2 {
            return steps;
        }
        if let Some(stable) = d.traffic.iter().find(|t| t.version != d.version) {
            self.stable = Some(stable.version.clone());
        }
        let split = output::traffic(&d.traffic);
        if self.split.as_deref() != Some(&split) {
            self.split = Some(split.clone());
            steps.push(split.clone());
        }
        if let Some(pause) = &d.paused {
            let pause = (split, format!("pause {pause}"));
            if self.pause.as_ref() != Some(&pause) {
                steps.push(pause.1.clone());
                self.pause = Some(pause);
            }
        }
        steps
    }

    /// After a rollout that had split the traffic fails, where all of it went.
    fn reverted(&mut self, change: &StatusEntry) -> Option<String> {
        let failed = matches!(change.status, Status::Failure | Status::RolledBack);
        let stable = self.stable.take().filter(|_| failed)?;
        Some(format!("100% back to {stable}"))
    }
}

impl Observer for Timeline {
    fn status(&mut self, d: &Deployment, change: &StatusEntry) {
        let offset = self.offset(&change.at);
        self.row(d, offset, change.status.as_str(), &change.reason);
        if let Some(text) = self.reverted(change) {
            self.row(d, offset, "traffic", &text);
        }
    }

    fn log(&mut self, d: &Deployment, line: &LogLine) {
        if line.source == LogSource::Analysis {
            self.row(d, self.offset(&line.at), "analysis", &line.message);
        }
    }

    fn progress(&mut self, d: &Deployment) {
        let offset = self.started.elapsed().unwrap_or_default();
        for step in self.steps(d) {
            self.row(d, offset, "canary", &step);
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
        std::fs::write(&path, config_yaml(dir.path(), &app, true)).unwrap();
        let config = slipway_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.environments.len(), 2);
        assert_eq!(config.apps[containers::APP].port, Some(8080));
        let run = config.apps["web"].run.clone().unwrap();
        assert!(
            run.contains("{port}") && run.contains("flags-{version}"),
            "{run}"
        );
        assert!(run.contains(&format!("'{}'", app.display())), "{run}");
        std::fs::write(&path, config_yaml(dir.path(), &app, false)).unwrap();
        let config = slipway_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.apps.keys().collect::<Vec<_>>(),
            ["web"],
            "no docker app"
        );
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
    fn the_timeline_shows_each_split_and_pause_once_and_a_revert_after_traffic_moved() {
        let poll = |traffic: serde_json::Value, paused: serde_json::Value| -> Deployment {
            crate::client::test_deployment(serde_json::json!({
                "version": "v4", "status": "in_progress", "traffic": traffic, "paused": paused
            }))
        };
        let split = |stable: f64| {
            serde_json::json!([{"version": "v2", "weight": stable, "requests": 0, "errors": 0},
                               {"version": "v4", "weight": 100.0 - stable, "requests": 0, "errors": 0}])
        };
        let pause = serde_json::json!({"kind": "timed", "duration_ms": 2000});
        let mut timeline = Timeline::new(SystemTime::now());
        // Before traffic moved (one release routed), no step, and a failure goes nowhere.
        let single =
            serde_json::json!([{"version": "v2", "weight": 100.0, "requests": 0, "errors": 0}]);
        assert!(
            timeline
                .steps(&poll(single, serde_json::Value::Null))
                .is_empty()
        );
        let failed = StatusEntry {
            status: Status::Failure,
            at: "2026-11-24T10:00:00.000Z".into(),
            actor: "engine".into(),
            reason: "health check failed".into(),
        };
        assert_eq!(timeline.reverted(&failed), None);
        // The first poll that sees the canary finds it already paused: both are shown.
        assert_eq!(
            timeline.steps(&poll(split(80.0), pause.clone())),
            ["v2 80% · v4 20%", "pause 2s"]
        );
        // The same split and pause on the next poll are not shown again.
        assert!(timeline.steps(&poll(split(80.0), pause.clone())).is_empty());
        assert!(
            timeline
                .steps(&poll(split(80.0), serde_json::Value::Null))
                .is_empty()
        );
        // The next weight and its pause of the same length are new steps.
        assert_eq!(
            timeline.steps(&poll(split(50.0), serde_json::Value::Null)),
            ["v2 50% · v4 50%"]
        );
        assert_eq!(timeline.steps(&poll(split(50.0), pause)), ["pause 2s"]);
        assert_eq!(
            timeline.reverted(&failed).as_deref(),
            Some("100% back to v2")
        );
    }

    #[test]
    fn the_release_is_read_from_the_demo_apps_answer() {
        assert_eq!(release_of("ok release=v2\n"), Some("v2"));
        assert_eq!(release_of("hello"), None);
    }
}
