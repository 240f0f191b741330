//! The typed, validated form of `slipway.yaml`. Everything here has already been checked:
//! durations are `Duration`s, percentages are fractions in `0.0..=1.0`, every name that
//! refers to another (requires, reviewers) exists, and `requires` has no cycle.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub version: u32,
    pub server: ServerConfig,
    pub apps: BTreeMap<String, App>,
    pub environments: BTreeMap<String, Environment>,
    pub users: BTreeMap<String, User>,
    /// Webhooks told of deployments and runs, in the order written.
    pub notifications: Vec<Webhook>,
    /// `pipelines:` (docs/config.md#pipelines), by name.
    pub pipelines: BTreeMap<String, slipway_pipeline::Pipeline>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// API, UI and /metrics. Default `127.0.0.1:7700`.
    pub listen: SocketAddr,
    /// SQLite database, logs, admin token. Default `.slipway`, relative to the config file.
    pub data_dir: PathBuf,
    /// `postgres://…` when several servers share one store; `None` means SQLite in `data_dir`.
    pub database: Option<String>,
    /// How often the engine reconciles when nothing wakes it. Default 100ms.
    pub tick: Duration,
    /// Control API of a standalone `slipway router --control ADDR` that serves the
    /// environments' listeners instead of the in-process router, so the routers outlive a
    /// restart of the server. Its token comes from `SLIPWAY_ROUTER_TOKEN`.
    pub router_control: Option<SocketAddr>,
    /// The Docker Engine API of docker apps (`unix:///…` or `tcp://host:port`); `None`
    /// means `DOCKER_HOST`, else `/var/run/docker.sock`.
    pub docker_host: Option<String>,
    /// How often the engine checks that the instances of every serving release still run,
    /// and replaces those that died or were removed. Default 2s.
    pub instance_check: Duration,
    /// How long a console sign-in lasts. Default 12h.
    pub session_lifetime: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    Process,
    Docker,
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub driver: DriverKind,
    /// Process driver: shell command with `{port}` and `{version}` placeholders.
    pub run: Option<String>,
    /// Docker driver: image repository; the release version is the tag.
    pub image: Option<String>,
    /// Port inside the container (docker driver).
    pub port: Option<u16>,
    /// How the docker driver runs the containers (defaults for a process app).
    pub container: ContainerOptions,
    pub health: HealthCheck,
    pub smoke: Vec<SmokeTest>,
    pub hooks: Hooks,
    /// Schema migrations that go with each release (`migrate:`).
    pub migrate: Option<Migrate>,
}

/// `pull`, `memory`, `cpus`, `restart` and `args` of a docker app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerOptions {
    pub pull: Pull,
    /// Memory limit in bytes (`memory: 512m`).
    pub memory: Option<u64>,
    /// CPU limit in cores (`cpus: 0.5`).
    pub cpus: Option<f64>,
    pub restart: RestartPolicy,
    /// Replace the image's `CMD` when not empty.
    pub args: Vec<String>,
}

/// When the image is pulled (`pull:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pull {
    Never,
    #[default]
    IfMissing,
    Always,
}

/// Docker's restart policy for the containers (`restart:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RestartPolicy {
    /// slipway itself replaces a dead instance.
    #[default]
    No,
    /// Docker restarts a container that exits with an error, at most `max_retries` times
    /// when set (`on-failure:N`).
    OnFailure {
        max_retries: Option<u32>,
    },
    UnlessStopped,
    Always,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// Failures during this period after start do not count towards `unhealthy_threshold`,
    /// but the instance must become healthy before it ends.
    pub start_period: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/health".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            healthy_threshold: 1,
            unhealthy_threshold: 3,
            start_period: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmokeTest {
    /// Path requested with GET through the environment's router.
    pub get: String,
    /// Default 200 when neither expectation is given.
    pub expect_status: Option<u16>,
    pub expect_body_contains: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hooks {
    pub pre_deploy: Option<Hook>,
    pub post_deploy: Option<Hook>,
    pub pre_rollback: Option<Hook>,
}

/// How long a hook may run when its config does not say. Default 5m.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// One hook: `pre_deploy: "cmd"`, or `pre_deploy: { run: "cmd", timeout: 30s }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Run with `/bin/sh -c` in a process group of its own.
    pub run: String,
    /// The hook's whole process group is killed when it runs longer; it then fails.
    pub timeout: Duration,
}

impl Hook {
    /// A hook with the default timeout.
    pub fn new(run: impl Into<String>) -> Hook {
        Hook {
            run: run.into(),
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

/// `migrate:` of an app: shell commands run with the app's environment (docs/config.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrate {
    /// A dry run before anything starts (`alembic upgrade head --sql`); its output goes
    /// into the deployment log and its failure fails the deployment.
    pub check: Option<String>,
    /// Runs once the new instances are healthy, before any traffic moves to them.
    pub up: Option<String>,
    /// Undoes `up` when the release is rolled back, before traffic returns.
    pub down: Option<String>,
    /// `false`: nothing rolls back past this release's `up` on its own; a person decides
    /// (`slipway rollback --force --reason …`). Default true.
    pub reversible: bool,
    /// Each of `check`, `up` and `down` is killed with its children after this. Default 5m.
    pub timeout: Duration,
}

/// `watch:` of an environment: after a deployment succeeds, the router's figures for its
/// release are judged every `interval` for `duration`; a failed verdict rolls it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// How long the watch lasts (`for:`).
    pub duration: Duration,
    /// How often it judges. Default 10s.
    pub interval: Duration,
    /// Fraction `0.0..=1.0` of 5xx among all responses of the release.
    pub max_error_rate: Option<f64>,
    pub max_p99_latency: Option<Duration>,
    /// Fewer requests than this since the last verdict is inconclusive. Default 20.
    pub min_requests: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// The router's public address for this environment.
    pub listen: SocketAddr,
    pub strategy: Strategy,
    pub variables: BTreeMap<String, String>,
    /// `secrets:`: where each value is read when the server starts; given to instances,
    /// hooks and migrations like `variables`, and masked in every log.
    pub secrets: BTreeMap<String, Secret>,
    /// Keys that must be present in `variables` before a deployment may start.
    pub require_config: Vec<String>,
    /// Environments where the same release must have succeeded first.
    pub requires: Vec<String>,
    pub protection: Protection,
    /// Allow tags like `latest`/`main` even when the environment is protected. Default false.
    pub allow_mutable_tags: bool,
    /// Releases whose instances are kept (stopped or idle) for instant rollback. Default 3.
    pub keep_releases: u32,
    /// Whether a manual rollback goes through the approval gate. Default false.
    pub rollback_requires_approval: bool,
    /// Bound on how long in-flight requests of a removed backend may run. Default 30s.
    pub drain_timeout: Duration,
    /// How a release is judged after it succeeded (`watch:`).
    pub watch: Option<Watch>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Protection {
    pub reviewers: Vec<String>,
    pub required_approvals: u32,
    pub prevent_self_review: bool,
    pub wait_timer: Option<Duration>,
    /// Glob patterns (`*` matches any run of characters, `?` one) on the release's ref.
    pub branches: Vec<String>,
    pub windows: Vec<Window>,
}

impl Protection {
    /// An environment is protected when any rule could hold a deployment back.
    pub fn is_protected(&self) -> bool {
        !self.reviewers.is_empty()
            || self.required_approvals > 0
            || self.wait_timer.is_some()
            || !self.branches.is_empty()
            || !self.windows.is_empty()
    }
}

/// A weekly deployment window such as `Mon-Thu 09:00-16:00 UTC` (times in UTC; an end
/// before the start wraps past midnight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The text as written, for messages.
    pub text: String,
    /// Monday = 0 … Sunday = 6.
    pub days: [bool; 7],
    /// Minutes after midnight UTC.
    pub start_minute: u32,
    pub end_minute: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    Recreate,
    Rolling {
        replicas: u32,
        max_surge: u32,
        max_unavailable: u32,
    },
    BlueGreen {
        /// A listener that reaches the new set before the switch.
        preview: Option<SocketAddr>,
        scale_down_delay: Duration,
    },
    Canary {
        steps: Vec<CanaryStep>,
        analysis: Analysis,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum CanaryStep {
    /// Percent of traffic to the new release, `0.0..=100.0`, as fine as 0.1.
    Weight(f64),
    Pause(Duration),
    PauseManual,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub interval: Duration,
    /// Fraction `0.0..=1.0` of 5xx among all responses of the new release.
    pub max_error_rate: Option<f64>,
    pub max_p99_latency: Option<Duration>,
    /// Ratio of the new release's error rate to the stable one's.
    pub max_error_rate_vs_stable: Option<f64>,
    pub min_requests: u64,
    pub failure_limit: u32,
    /// How long a step may stay inconclusive (too few requests) before the deployment fails.
    pub progress_deadline: Duration,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            interval: Duration::from_secs(1),
            max_error_rate: None,
            max_p99_latency: None,
            max_error_rate_vs_stable: None,
            min_requests: 20,
            failure_limit: 1,
            progress_deadline: Duration::from_secs(600),
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Deployer,
    Approver,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "viewer" => Role::Viewer,
            "deployer" => Role::Deployer,
            "approver" => Role::Approver,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub role: Role,
}

pub use slipway_pipeline::{Place, Secret};

/// What a webhook can be told of (`events:`); `"*"` in the file stands for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotificationEvent {
    RunStarted,
    RunSucceeded,
    RunFailed,
    DeploymentStarted,
    DeploymentWaiting,
    DeploymentApproved,
    DeploymentRejected,
    DeploymentSucceeded,
    DeploymentFailed,
    DeploymentRolledBack,
    /// A post-deploy watch failed its verdict (whether or not it could roll back).
    DeploymentWatchFailed,
}

impl NotificationEvent {
    pub const ALL: [NotificationEvent; 11] = [
        NotificationEvent::RunStarted,
        NotificationEvent::RunSucceeded,
        NotificationEvent::RunFailed,
        NotificationEvent::DeploymentStarted,
        NotificationEvent::DeploymentWaiting,
        NotificationEvent::DeploymentApproved,
        NotificationEvent::DeploymentRejected,
        NotificationEvent::DeploymentSucceeded,
        NotificationEvent::DeploymentFailed,
        NotificationEvent::DeploymentRolledBack,
        NotificationEvent::DeploymentWatchFailed,
    ];

    /// The stable name of docs/config.md, also the `event` of a webhook's body.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationEvent::RunStarted => "run.started",
            NotificationEvent::RunSucceeded => "run.succeeded",
            NotificationEvent::RunFailed => "run.failed",
            NotificationEvent::DeploymentStarted => "deployment.started",
            NotificationEvent::DeploymentWaiting => "deployment.waiting",
            NotificationEvent::DeploymentApproved => "deployment.approved",
            NotificationEvent::DeploymentRejected => "deployment.rejected",
            NotificationEvent::DeploymentSucceeded => "deployment.succeeded",
            NotificationEvent::DeploymentFailed => "deployment.failed",
            NotificationEvent::DeploymentRolledBack => "deployment.rolled_back",
            NotificationEvent::DeploymentWatchFailed => "deployment.watch_failed",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationEvent> {
        NotificationEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl std::fmt::Display for NotificationEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a webhook's body is written (`format:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NotificationFormat {
    /// `{ event, at, deployment | run }` with the API's objects.
    #[default]
    Json,
    /// `{ text }`: one line for people, as Slack's incoming webhooks (and look-alikes) take.
    Slack,
}

/// A secret the config names but does not hold: the environment variable it is read from
/// when the server starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSecret {
    pub env: String,
    /// Where `env` is written.
    pub at: Place,
}

/// Defaults of a webhook's delivery: each attempt may take `timeout`, the wait before the
/// next one doubles from `backoff`, and after `attempts` the entry is given up.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_WEBHOOK_ATTEMPTS: u32 = 5;
pub const DEFAULT_WEBHOOK_BACKOFF: Duration = Duration::from_secs(1);

/// One target of `notifications:`: a URL that is sent the events it subscribed to.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Names the target in the notification log and keeps its place in the outbox.
    /// Default: the URL's host (and port), so the log never shows a URL's secret path.
    pub name: String,
    /// `http://` or `https://`, without a user name or password.
    pub url: String,
    /// Each subscribed event once, in [`NotificationEvent::ALL`] order.
    pub events: Vec<NotificationEvent>,
    pub format: NotificationFormat,
    /// The key the body's `X-Slipway-Signature-256` HMAC is made with.
    pub secret: Option<EnvSecret>,
    pub timeout: Duration,
    /// At least 1.
    pub attempts: u32,
    pub backoff: Duration,
}
