//! The docker driver: every instance is a container on a Docker Engine, reached over its
//! API (unix socket or plain tcp). A release's version is the image tag; the tag is
//! resolved to the image ID once and the container runs that ID, so re-tagging an image
//! never changes what a deployment runs. Containers carry their identity in labels, so
//! the driver keeps no state and a restarted server finds them again.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummaryStateEnum, HealthStatusEnum,
    HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::OnceCell;

use crate::process::free_port;
use crate::{Driver, Found, InstanceSpec, Liveness, OwnHealth, Started, Workload};

pub const LABEL_APP: &str = "slipway.app";
pub const LABEL_ENVIRONMENT: &str = "slipway.environment";
pub const LABEL_RELEASE: &str = "slipway.release";
pub const LABEL_DEPLOYMENT: &str = "slipway.deployment";
pub const LABEL_DIGEST: &str = "slipway.digest";
/// Whose container it is (a server's data dir): [`Driver::instances`] lists by it.
pub const LABEL_SCOPE: &str = "slipway.scope";
/// The engine's instance id, reported back by [`Driver::instances`].
pub const LABEL_INSTANCE: &str = "slipway.instance";

/// Where the daemon listens when `DOCKER_HOST` is not set.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// Every API request but a stop (which waits out its grace) must answer within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Starts retried when Docker cannot bind the picked loopback port (someone took it).
const PORT_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "DOCKER_HOST `{0}` is not supported: expected unix:///path/to/docker.sock or tcp://host:port"
    )]
    BadHost(String),
    #[error("cannot reach the Docker daemon at {host}: {reason}")]
    Unreachable { host: DockerHost, reason: String },
    #[error("the Docker daemon at {host} failed to {action}: {message}")]
    Api {
        host: DockerHost,
        action: String,
        message: String,
    },
    #[error(
        "image {image}:{tag} is not on the Docker host {host}, and `pull: never` forbids pulling it"
    )]
    ImageMissing {
        host: DockerHost,
        image: String,
        tag: String,
    },
    #[error("cannot pull image {image}:{tag} (`pull: {policy}`): {message}")]
    Pull {
        image: String,
        tag: String,
        policy: PullPolicy,
        message: String,
    },
    #[error(
        "image repository `{0}` must not carry a tag or digest: the release version is the tag"
    )]
    BadImage(String),
    #[error(
        "version `{version}` is not a valid tag for image {image}: a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with `.` or `-`"
    )]
    BadTag { image: String, version: String },
    #[error("`{value}` cannot be part of the container name (field `{field}`): use [A-Za-z0-9_.-]")]
    BadName { field: &'static str, value: String },
    #[error(
        "a container named {name} exists already: remove it first (`slipway gc` removes the containers of this server that no deployment owns)"
    )]
    NameTaken { name: String },
    #[error("bad container handle `{0}`: expected `docker:<container id>`")]
    BadHandle(String),
    #[error("container {0} does not exist")]
    NoSuchContainer(String),
    #[error("no free port on 127.0.0.1 to publish the container on: {0}")]
    Port(std::io::Error),
    #[error("container {id} publishes no loopback port")]
    NoPort { id: String },
    #[error(
        "instance `{instance}` is not named slipway-<app>-<env>-<version>-<n> for its app, environment and version"
    )]
    BadInstanceName { instance: String },
    #[error("cannot write the output of container {id}: {source}")]
    Sink { id: String, source: std::io::Error },
}

type Result<T, E = DockerError> = std::result::Result<T, E>;

// === impl DockerHost ===

/// Where the Docker Engine API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    Unix(PathBuf),
    /// `host:port` of a daemon listening on plain tcp (no TLS).
    Tcp(String),
}

impl DockerHost {
    /// From the value of `DOCKER_HOST` (passed in, so tests never touch the environment):
    /// unset or empty means the default socket.
    pub fn from_env_value(value: Option<&str>) -> Result<DockerHost> {
        match value {
            None | Some("") => Ok(DockerHost::Unix(PathBuf::from(DEFAULT_SOCKET))),
            Some(v) => v.parse(),
        }
    }
}

impl FromStr for DockerHost {
    type Err = DockerError;

    fn from_str(s: &str) -> Result<DockerHost> {
        let bad = || DockerError::BadHost(s.to_owned());
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad());
            }
            return Ok(DockerHost::Unix(PathBuf::from(path)));
        }
        let addr = s.strip_prefix("tcp://").ok_or_else(bad)?;
        let addr = addr.strip_suffix('/').unwrap_or(addr);
        match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(DockerHost::Tcp(addr.to_owned()))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerHost::Unix(path) => write!(f, "unix://{}", path.display()),
            DockerHost::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

// === impl PullPolicy ===

/// When the driver pulls an image (`pull:` per app).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only images already on the host run.
    Never,
    /// Pull when the tag is not on the host.
    #[default]
    IfMissing,
    /// Pull before every start, so the host's copy of the tag is the registry's.
    Always,
}

impl FromStr for PullPolicy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<PullPolicy, String> {
        match s {
            "never" => Ok(PullPolicy::Never),
            "if-missing" => Ok(PullPolicy::IfMissing),
            "always" => Ok(PullPolicy::Always),
            _ => Err(format!(
                "unknown pull policy `{s}`: expected never, if-missing or always"
            )),
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PullPolicy::Never => "never",
            PullPolicy::IfMissing => "if-missing",
            PullPolicy::Always => "always",
        })
    }
}

// === impl Restart ===

/// Docker's restart policy for the container (`restart:` per app).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Restart {
    /// Slipway replaces a dead instance itself.
    #[default]
    No,
    OnFailure {
        max_retries: Option<u32>,
    },
    Always,
    UnlessStopped,
}

impl Restart {
    fn policy(self) -> RestartPolicy {
        let (name, retries) = match self {
            Restart::No => (RestartPolicyNameEnum::NO, None),
            Restart::OnFailure { max_retries } => (
                RestartPolicyNameEnum::ON_FAILURE,
                max_retries.map(i64::from),
            ),
            Restart::Always => (RestartPolicyNameEnum::ALWAYS, None),
            Restart::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        };
        RestartPolicy {
            name: Some(name),
            maximum_retry_count: retries,
        }
    }
}

impl FromStr for Restart {
    type Err = String;

    /// Docker's own spelling: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    fn from_str(s: &str) -> std::result::Result<Restart, String> {
        let bad = || {
            format!(
                "unknown restart policy `{s}`: expected no, always, unless-stopped or on-failure[:N]"
            )
        };
        match s {
            "no" => Ok(Restart::No),
            "always" => Ok(Restart::Always),
            "unless-stopped" => Ok(Restart::UnlessStopped),
            "on-failure" => Ok(Restart::OnFailure { max_retries: None }),
            _ => {
                let n = s.strip_prefix("on-failure:").ok_or_else(bad)?;
                let n = n.parse().map_err(|_| bad())?;
                Ok(Restart::OnFailure {
                    max_retries: Some(n),
                })
            }
        }
    }
}

// === ContainerSpec ===

/// Everything needed to run one container instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Unique id of the instance (label `slipway.instance`).
    pub instance_id: String,
    /// Whose instance it is (label `slipway.scope`): [`Driver::instances`] lists by it.
    pub scope: String,
    pub app: String,
    pub environment: String,
    /// The release's version: the image tag, and part of the container name.
    pub version: String,
    /// The deployment that starts it (label `slipway.deployment`).
    pub deployment: String,
    /// `n` of the name `slipway-<app>-<env>-<version>-<n>`, from 1 within a release.
    pub ordinal: u32,
    /// Image repository without a tag (`registry.example.com/acme/web`).
    pub image: String,
    /// The port the app listens on inside the container.
    pub port: u16,
    /// The container's whole environment beyond the image's own `ENV`: nothing of the
    /// server's environment reaches it.
    pub env: BTreeMap<String, String>,
    pub pull: PullPolicy,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// CPU limit in cores (`0.5`).
    pub cpus: Option<f64>,
    pub restart: Restart,
    /// Replaces the image's `CMD` when not empty (the `ENTRYPOINT` stays).
    pub args: Vec<String>,
}

impl ContainerSpec {
    /// `slipway-<app>-<env>-<version>-<n>`, the name tools outside slipway see.
    pub fn container_name(&self) -> String {
        format!(
            "slipway-{}-{}-{}-{}",
            self.app, self.environment, self.version, self.ordinal
        )
    }

    fn validate(&self) -> Result<()> {
        check_reference(&self.image, &self.version)?;
        for (field, value) in [("app", &self.app), ("environment", &self.environment)] {
            let ok = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
            if value.is_empty() || !value.chars().all(ok) {
                return Err(DockerError::BadName {
                    field,
                    value: value.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A repository without a tag or digest (`registry:5000/acme/web`) and a valid tag. Both
/// go into request paths, so nothing else passes.
fn check_reference(image: &str, tag: &str) -> Result<()> {
    let last = image.rsplit('/').next().unwrap_or(image);
    let ok = |c: char| c.is_ascii_alphanumeric() || "._-/:".contains(c);
    if last.is_empty() || last.contains(':') || !image.chars().all(ok) {
        return Err(DockerError::BadImage(image.to_owned()));
    }
    if !is_tag(tag) {
        return Err(DockerError::BadTag {
            image: image.to_owned(),
            version: tag.to_owned(),
        });
    }
    Ok(())
}

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A started container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedContainer {
    /// `handle` is `docker:<container id>`; `addr` the published loopback port; `pid` the
    /// container's main process as the host sees it.
    pub started: Started,
    pub name: String,
    /// The image ID (`sha256:…`) it runs: what the tag resolved to, to record on the
    /// deployment.
    pub digest: String,
}

/// A container slipway made, running or not (see [`DockerDriver::containers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub handle: String,
    pub name: String,
    pub running: bool,
    /// Its `slipway.*` labels.
    pub labels: BTreeMap<String, String>,
}

/// The image's own `HEALTHCHECK` verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageHealth {
    /// The image declares no `HEALTHCHECK`.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

// === impl DockerDriver ===

/// Runs instances as containers. It connects on first use (so a server whose apps never
/// use Docker does not need a daemon) and negotiates the API version with the daemon:
/// the newest both speak (1.41 for Docker 20.10).
#[derive(Debug)]
pub struct DockerDriver {
    host: DockerHost,
    client: OnceCell<Docker>,
}

impl DockerDriver {
    pub fn new(host: DockerHost) -> DockerDriver {
        DockerDriver {
            host,
            client: OnceCell::new(),
        }
    }

    /// From `DOCKER_HOST`, else the default socket.
    pub fn from_env() -> Result<DockerDriver> {
        let value = std::env::var("DOCKER_HOST").ok();
        Ok(DockerDriver::new(DockerHost::from_env_value(
            value.as_deref(),
        )?))
    }

    pub fn host(&self) -> &DockerHost {
        &self.host
    }

    /// The client, connected and version-negotiated; a failure is not cached, so the
    /// next call tries again.
    async fn api(&self) -> Result<&Docker> {
        self.client
            .get_or_try_init(|| async {
                let timeout = REQUEST_TIMEOUT.as_secs();
                let version = bollard::API_DEFAULT_VERSION;
                let client = match &self.host {
                    DockerHost::Unix(path) => {
                        Docker::connect_with_unix(&path.to_string_lossy(), timeout, version)
                    }
                    DockerHost::Tcp(addr) => Docker::connect_with_http(addr, timeout, version),
                }
                .map_err(|e| self.unreachable(&e))?;
                client
                    .negotiate_version()
                    .await
                    .map_err(|e| self.api_error("tell its API version", e))
            })
            .await
    }

    fn unreachable(&self, e: &ApiError) -> DockerError {
        DockerError::Unreachable {
            host: self.host.clone(),
            reason: chain(e),
        }
    }

    /// An API error: unreachable when the request never got an answer, else what the
    /// daemon said (or what was wrong with its answer).
    fn api_error(&self, action: impl fmt::Display, e: ApiError) -> DockerError {
        let message = match e {
            ApiError::HyperLegacyError { .. }
            | ApiError::HyperResponseError { .. }
            | ApiError::IOError { .. }
            | ApiError::RequestTimeoutError
            | ApiError::SocketNotFoundError(_) => return self.unreachable(&e),
            ApiError::DockerResponseServerError { message, .. }
            | ApiError::DockerStreamError { error: message } => message,
            e => chain(&e),
        };
        DockerError::Api {
            host: self.host.clone(),
            action: action.to_string(),
            message,
        }
    }

    /// Checks that the daemon answers.
    pub async fn ping(&self) -> Result<()> {
        let api = self.api().await?;
        api.ping()
            .await
            .map_err(|e| self.api_error("answer a ping", e))?;
        Ok(())
    }

    /// The API version spoken with the daemon (`1.41` with Docker 20.10): the newest
    /// both sides know.
    pub async fn api_version(&self) -> Result<String> {
        let v = self.api().await?.client_version();
        Ok(format!("{}.{}", v.major_version, v.minor_version))
    }

    /// The image ID (`sha256:…`) `image:tag` stands for on the host, pulling it as
    /// `pull` says. Call it before stopping anything: it is where a missing image or an
    /// unreachable daemon shows.
    pub async fn resolve(&self, image: &str, tag: &str, pull: PullPolicy) -> Result<String> {
        check_reference(image, tag)?;
        let api = self.api().await?;
        let reference = format!("{image}:{tag}");
        if pull == PullPolicy::Always {
            self.pull(api, image, tag, pull).await?;
        }
        let action = || format!("inspect image {reference}");
        let inspect = match api.inspect_image(&reference).await {
            Ok(inspect) => inspect,
            Err(e) if is_not_found(&e) && pull == PullPolicy::Never => {
                return Err(DockerError::ImageMissing {
                    host: self.host.clone(),
                    image: image.to_owned(),
                    tag: tag.to_owned(),
                });
            }
            Err(e) if is_not_found(&e) && pull == PullPolicy::IfMissing => {
                self.pull(api, image, tag, pull).await?;
                api.inspect_image(&reference)
                    .await
                    .map_err(|e| self.api_error(action(), e))?
            }
            Err(e) => return Err(self.api_error(action(), e)),
        };
        inspect.id.ok_or_else(|| DockerError::Api {
            host: self.host.clone(),
            action: action(),
            message: "the answer has no image ID".into(),
        })
    }

    async fn pull(&self, api: &Docker, image: &str, tag: &str, policy: PullPolicy) -> Result<()> {
        let options = CreateImageOptionsBuilder::new()
            .from_image(image)
            .tag(tag)
            .build();
        let pulled: Result<Vec<_>, ApiError> = api
            .create_image(Some(options), None, None)
            .try_collect()
            .await;
        pulled
            .map(drop)
            .map_err(|e| match self.api_error("pull", e) {
                DockerError::Api { message, .. } => DockerError::Pull {
                    image: image.to_owned(),
                    tag: tag.to_owned(),
                    policy,
                    message,
                },
                other => other,
            })
    }

    /// Resolves the image, then creates and starts the container on a loopback port
    /// picked by slipway. A container that cannot start is removed again.
    pub async fn run(&self, spec: &ContainerSpec) -> Result<StartedContainer> {
        self.run_by(spec, None).await
    }

    /// [`DockerDriver::run`], by `digest` when one is given (resolved earlier, before
    /// anything was stopped) instead of resolving the tag again.
    async fn run_by(&self, spec: &ContainerSpec, digest: Option<&str>) -> Result<StartedContainer> {
        spec.validate()?;
        let digest = match digest {
            Some(d) => d.to_owned(),
            None => self.resolve(&spec.image, &spec.version, spec.pull).await?,
        };
        let api = self.api().await?;
        let name = spec.container_name();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port().map_err(|e| match e {
                crate::Error::Port(e) => DockerError::Port(e),
                other => DockerError::Port(std::io::Error::other(other.to_string())),
            })?;
            let options = CreateContainerOptionsBuilder::new().name(&name).build();
            let created = api
                .create_container(Some(options), create_body(spec, &digest, port))
                .await
                .map_err(|e| match e {
                    ApiError::DockerResponseServerError {
                        status_code: 409, ..
                    } => DockerError::NameTaken { name: name.clone() },
                    e => self.api_error(format!("create container {name}"), e),
                })?;
            match api.start_container(&created.id, None).await {
                Ok(()) => return self.started(&created.id).await,
                Err(e) => {
                    // Leave nothing behind: a created container would hold the name.
                    let _ = api
                        .remove_container(&created.id, Some(force_remove()))
                        .await;
                    let error = self.api_error(format!("start container {name}"), e);
                    if attempt < PORT_ATTEMPTS && is_port_clash(&error) {
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Starts a kept, stopped container again (rollback reuse): same image, same loopback
    /// port. Starting one that runs is Ok.
    pub async fn start_again(&self, handle: &str) -> Result<StartedContainer> {
        let id = container_id(handle)?;
        let api = self.api().await?;
        api.start_container(id, None)
            .await
            .map_err(|e| self.not_found_or(id, format!("start container {id}"), e))?;
        self.started(id).await
    }

    /// What the engine records of a started container, from its inspection: the digest
    /// is the label `run` set.
    async fn started(&self, id: &str) -> Result<StartedContainer> {
        let inspect = self.inspect(id).await?;
        let id = inspect.id.clone().unwrap_or_else(|| id.to_owned());
        let port = loopback_port(&inspect).ok_or_else(|| DockerError::NoPort { id: id.clone() })?;
        let pid = inspect
            .state
            .as_ref()
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0);
        let digest = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref()?.get(LABEL_DIGEST).cloned())
            .or_else(|| inspect.image.clone())
            .unwrap_or_default();
        let name = inspect
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned();
        Ok(StartedContainer {
            started: Started {
                handle: format!("docker:{id}"),
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                pid,
            },
            name,
            digest,
        })
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse> {
        let api = self.api().await?;
        api.inspect_container(id, None)
            .await
            .map_err(|e| self.not_found_or(id, format!("inspect container {id}"), e))
    }

    fn not_found_or(&self, id: &str, action: String, e: ApiError) -> DockerError {
        if is_not_found(&e) {
            DockerError::NoSuchContainer(id.to_owned())
        } else {
            self.api_error(action, e)
        }
    }

    /// Removes the container (and its anonymous volumes), never its image. Removing one
    /// that is gone is Ok.
    pub async fn remove(&self, handle: &str) -> Result<()> {
        let id = container_id(handle)?;
        let api = self.api().await?;
        match api.remove_container(id, Some(force_remove())).await {
            Err(e) if !is_not_found(&e) => Err(self.api_error(format!("remove container {id}"), e)),
            _ => Ok(()),
        }
    }

    /// The verdict of the image's own `HEALTHCHECK`.
    pub async fn health(&self, handle: &str) -> Result<ImageHealth> {
        Ok(self.own_health_of(handle).await?.status)
    }

    /// The `HEALTHCHECK` verdict with what its last run printed.
    async fn own_health_of(&self, handle: &str) -> Result<OwnHealth> {
        let inspect = self.inspect(container_id(handle)?).await?;
        let health = inspect.state.and_then(|s| s.health);
        let status = match health.as_ref().and_then(|h| h.status) {
            Some(HealthStatusEnum::STARTING) => ImageHealth::Starting,
            Some(HealthStatusEnum::HEALTHY) => ImageHealth::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => ImageHealth::Unhealthy,
            _ => ImageHealth::None,
        };
        let last_output = health
            .and_then(|h| h.log?.pop()?.output)
            .map(|o| o.trim().chars().take(300).collect())
            .unwrap_or_default();
        Ok(OwnHealth {
            status,
            last_output,
        })
    }

    /// [`Driver::liveness`] from the container's state: removed, paused, exited (with its
    /// code, and whether the kernel killed it for memory) or restarting.
    pub async fn liveness_of(&self, handle: &str) -> Result<Liveness> {
        let id = container_id(handle)?;
        let state = match self.inspect(id).await {
            Ok(inspect) => inspect.state.unwrap_or_default(),
            Err(DockerError::NoSuchContainer(_)) => {
                return Ok(Liveness::Gone("its container was removed".into()));
            }
            Err(e) => return Err(e),
        };
        if state.restarting == Some(true) {
            return Ok(Liveness::Restarting);
        }
        if state.paused == Some(true) {
            return Ok(Liveness::Gone("its container is paused".into()));
        }
        if state.running == Some(true) {
            return Ok(Liveness::Running);
        }
        let mut why = match state.exit_code {
            Some(code) => format!("its container exited with code {code}"),
            None => "its container is not running".to_owned(),
        };
        if state.oom_killed == Some(true) {
            why.push_str(" (killed for lack of memory: see `memory:`)");
        } else if state.exit_code == Some(137) {
            why.push_str(" (killed)");
        }
        if let Some(error) = state.error.filter(|e| !e.is_empty()) {
            why.push_str(": ");
            why.push_str(&error);
        }
        Ok(Liveness::Gone(why))
    }

    /// Every container labelled with `scope`, running or stopped: the kept releases a
    /// rollback reuses, and what `slipway gc` may remove.
    pub async fn containers(&self, scope: &str) -> Result<Vec<ContainerInfo>> {
        self.list(scope, true).await
    }

    async fn list(&self, scope: &str, all: bool) -> Result<Vec<ContainerInfo>> {
        let api = self.api().await?;
        let filters = HashMap::from([("label", vec![format!("{LABEL_SCOPE}={scope}")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(all)
            .filters(&filters)
            .build();
        let listed = api
            .list_containers(Some(options))
            .await
            .map_err(|e| self.api_error("list containers", e))?;
        Ok(listed
            .into_iter()
            .filter_map(|c| {
                let id = c.id?;
                let name = c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default();
                let running = c.state == Some(ContainerSummaryStateEnum::RUNNING);
                let labels = c
                    .labels
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| k.starts_with("slipway."))
                    .collect();
                Some(ContainerInfo {
                    handle: format!("docker:{id}"),
                    name,
                    running,
                    labels,
                })
            })
            .collect())
    }

    /// Copies the container's output (stdout and stderr, in order) to `sink` from
    /// `since` (unix seconds; 0 for all) and, with `follow`, until the container stops.
    /// Returns the bytes written. The engine puts them into the deployment log.
    pub async fn copy_logs<W: AsyncWrite + Unpin>(
        &self,
        handle: &str,
        since: i32,
        follow: bool,
        sink: &mut W,
    ) -> Result<u64> {
        let id = container_id(handle)?;
        let api = self.api().await?;
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .since(since)
            .follow(follow)
            .build();
        let mut logs = api.logs(id, Some(options));
        let mut written = 0;
        while let Some(chunk) = logs.next().await {
            let chunk =
                chunk.map_err(|e| self.not_found_or(id, format!("read logs of {id}"), e))?;
            let bytes = chunk.into_bytes();
            sink.write_all(&bytes)
                .await
                .map_err(|source| DockerError::Sink {
                    id: id.to_owned(),
                    source,
                })?;
            written += bytes.len() as u64;
        }
        sink.flush().await.map_err(|source| DockerError::Sink {
            id: id.to_owned(),
            source,
        })?;
        Ok(written)
    }
}

#[async_trait::async_trait]
impl Driver for DockerDriver {
    /// Runs a [`Workload::Container`] spec as the container named by its instance id, by
    /// the digest in its `slipway.digest` label when the engine resolved one (else by
    /// what the tag resolves to now).
    async fn start(&self, spec: &InstanceSpec) -> crate::Result<Started> {
        let (container, digest) = container_spec(spec)?;
        Ok(self.run_by(&container, digest.as_deref()).await?.started)
    }

    /// `docker stop` with `grace` as its timeout (whole seconds, rounded up): SIGTERM (or
    /// the image's STOPSIGNAL), SIGKILL after it. The container is kept for a rollback.
    async fn stop(&self, handle: &str, grace: Duration) -> crate::Result<()> {
        let id = container_id(handle)?;
        let api = self.api().await?;
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let options = StopContainerOptionsBuilder::new()
            .t(i32::try_from(secs).unwrap_or(i32::MAX))
            .build();
        // The daemon answers once the container is down, which can take all of `grace`.
        let api = api.clone().with_timeout(grace + REQUEST_TIMEOUT);
        match api.stop_container(id, Some(options)).await {
            Err(e) if !is_not_found(&e) => {
                Err(self.api_error(format!("stop container {id}"), e).into())
            }
            _ => Ok(()),
        }
    }

    /// False for a stopped, paused, restarting or removed container, and when the daemon
    /// cannot be asked.
    async fn is_running(&self, handle: &str) -> bool {
        let Ok(id) = container_id(handle) else {
            return false;
        };
        let Ok(inspect) = self.inspect(id).await else {
            return false;
        };
        inspect.state.is_some_and(|s| {
            s.running == Some(true) && s.paused != Some(true) && s.restarting != Some(true)
        })
    }

    /// The running containers labelled with `scope` (not paused or restarting ones, as
    /// for `is_running`); empty when the daemon cannot be asked.
    async fn instances(&self, scope: &str) -> Vec<(String, String)> {
        self.list(scope, false)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.running)
            .filter_map(|c| Some((c.labels.get(LABEL_INSTANCE)?.clone(), c.handle)))
            .collect()
    }

    /// The image ID the tag resolves to (pulling as the policy says).
    async fn pin(&self, workload: &Workload, version: &str) -> crate::Result<Option<String>> {
        let Workload::Container { image, pull, .. } = workload else {
            return Err(crate::Error::WrongWorkload(workload.kind()));
        };
        Ok(Some(self.resolve(image, version, *pull).await?))
    }

    async fn remove(&self, handle: &str) -> crate::Result<()> {
        Ok(DockerDriver::remove(self, handle).await?)
    }

    async fn start_again(&self, handle: &str) -> crate::Result<Option<Started>> {
        Ok(Some(DockerDriver::start_again(self, handle).await?.started))
    }

    async fn liveness(&self, handle: &str) -> Liveness {
        self.liveness_of(handle)
            .await
            .unwrap_or_else(|e| Liveness::Unknown(e.to_string()))
    }

    async fn own_health(&self, handle: &str) -> Option<OwnHealth> {
        self.own_health_of(handle)
            .await
            .ok()
            .filter(|h| h.status != ImageHealth::None)
    }

    /// Every container labelled with `scope`, running or stopped.
    async fn found(&self, scope: &str) -> crate::Result<Vec<Found>> {
        Ok(self
            .containers(scope)
            .await?
            .into_iter()
            .map(|c| Found {
                instance_id: c.labels.get(LABEL_INSTANCE).cloned().unwrap_or_default(),
                handle: c.handle,
                running: c.running,
                labels: c.labels,
            })
            .collect())
    }

    async fn output(&self, handle: &str, lines: usize) -> Option<Vec<String>> {
        let mut out = Vec::new();
        self.copy_logs(handle, 0, false, &mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out);
        let all: Vec<&str> = text.lines().collect();
        Some(
            all[all.len().saturating_sub(lines)..]
                .iter()
                .map(|l| (*l).to_owned())
                .collect(),
        )
    }
}

/// The [`ContainerSpec`] of a container workload, and the digest the engine pinned it to.
fn container_spec(spec: &InstanceSpec) -> crate::Result<(ContainerSpec, Option<String>)> {
    let Workload::Container {
        image,
        port,
        labels,
        pull,
        memory,
        cpus,
        restart,
        args,
    } = &spec.workload
    else {
        return Err(crate::Error::WrongWorkload(spec.workload.kind()));
    };
    let bad_name = || DockerError::BadInstanceName {
        instance: spec.instance_id.clone(),
    };
    let ordinal = spec
        .instance_id
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .ok_or_else(bad_name)?;
    let container = ContainerSpec {
        instance_id: spec.instance_id.clone(),
        scope: spec.scope.clone(),
        app: spec.app.clone(),
        environment: spec.environment.clone(),
        version: spec.version.clone(),
        deployment: labels.get(LABEL_DEPLOYMENT).cloned().unwrap_or_default(),
        ordinal,
        image: image.clone(),
        port: *port,
        env: spec.env.clone(),
        pull: *pull,
        memory: *memory,
        cpus: *cpus,
        restart: *restart,
        args: args.clone(),
    };
    // The engine's instance id is the container's name: one name for both.
    if container.container_name() != spec.instance_id {
        return Err(bad_name().into());
    }
    Ok((container, labels.get(LABEL_DIGEST).cloned()))
}

fn create_body(spec: &ContainerSpec, digest: &str, host_port: u16) -> ContainerCreateBody {
    let port_key = format!("{}/tcp", spec.port);
    let labels = HashMap::from([
        (LABEL_APP.to_owned(), spec.app.clone()),
        (LABEL_ENVIRONMENT.to_owned(), spec.environment.clone()),
        (LABEL_RELEASE.to_owned(), spec.version.clone()),
        (LABEL_DEPLOYMENT.to_owned(), spec.deployment.clone()),
        (LABEL_DIGEST.to_owned(), digest.to_owned()),
        (LABEL_SCOPE.to_owned(), spec.scope.clone()),
        (LABEL_INSTANCE.to_owned(), spec.instance_id.clone()),
    ]);
    let binding = PortBinding {
        host_ip: Some(Ipv4Addr::LOCALHOST.to_string()),
        host_port: Some(host_port.to_string()),
    };
    ContainerCreateBody {
        // By ID: a tag moved after `resolve` cannot change what runs.
        image: Some(digest.to_owned()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        cmd: (!spec.args.is_empty()).then(|| spec.args.clone()),
        labels: Some(labels),
        exposed_ports: Some(vec![port_key.clone()]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([(port_key, Some(vec![binding]))])),
            memory: spec.memory.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
            nano_cpus: spec.cpus.map(|c| (c * 1e9).round() as i64),
            restart_policy: Some(spec.restart.policy()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn force_remove() -> bollard::query_parameters::RemoveContainerOptions {
    RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build()
}

/// The id in `docker:<id>`: hex only, since it goes into a request path.
fn container_id(handle: &str) -> Result<&str> {
    handle
        .strip_prefix("docker:")
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| DockerError::BadHandle(handle.to_owned()))
}

/// The host port the container publishes on 127.0.0.1, from its configuration (which a
/// stop and start keep).
fn loopback_port(inspect: &ContainerInspectResponse) -> Option<u16> {
    let bindings = inspect.host_config.as_ref()?.port_bindings.as_ref()?;
    bindings
        .values()
        .flatten()
        .flatten()
        .filter(|b| b.host_ip.as_deref() == Some("127.0.0.1"))
        .find_map(|b| b.host_port.as_deref()?.parse().ok())
}

fn is_not_found(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Docker's words for a host port someone else bound between the pick and the start.
fn is_port_clash(e: &DockerError) -> bool {
    matches!(e, DockerError::Api { message, .. }
        if message.contains("address already in use") || message.contains("port is already allocated"))
}

/// An error with its causes, `a: b: c`: bollard's own text for a refused connection is
/// only "client error (Connect)".
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            instance_id: "web-staging-v1-7".into(),
            scope: "/srv/slipway".into(),
            app: "web".into(),
            environment: "staging".into(),
            version: "sha-3f2a9c1".into(),
            deployment: "7".into(),
            ordinal: 2,
            image: "registry.example.com:5000/acme/web".into(),
            port: 8080,
            env: BTreeMap::from([("A".into(), "1".into())]),
            pull: PullPolicy::default(),
            memory: Some(256 << 20),
            cpus: Some(0.5),
            restart: Restart::OnFailure {
                max_retries: Some(3),
            },
            args: vec![],
        }
    }

    #[test]
    fn docker_host_comes_from_unix_or_tcp_urls() {
        assert_eq!(
            DockerHost::from_env_value(None).unwrap(),
            DockerHost::Unix(DEFAULT_SOCKET.into())
        );
        assert_eq!(
            DockerHost::from_env_value(Some("")).unwrap().to_string(),
            "unix:///var/run/docker.sock"
        );
        let tcp: DockerHost = "tcp://127.0.0.1:2375".parse().unwrap();
        assert_eq!(tcp, DockerHost::Tcp("127.0.0.1:2375".into()));
        assert_eq!(tcp.to_string(), "tcp://127.0.0.1:2375");
        let unix: DockerHost = "unix:///run/user/1000/docker.sock".parse().unwrap();
        assert_eq!(unix.to_string(), "unix:///run/user/1000/docker.sock");
        for bad in [
            "https://h:2376",
            "ssh://me@h",
            "tcp://h",
            "tcp://:1",
            "tcp://h:x",
            "unix://rel.sock",
            "h:2375",
        ] {
            let e = bad.parse::<DockerHost>().unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }

    #[test]
    fn pull_and_restart_policies_parse_docker_spellings() {
        assert_eq!("never".parse(), Ok(PullPolicy::Never));
        assert_eq!("if-missing".parse(), Ok(PullPolicy::IfMissing));
        assert_eq!("always".parse(), Ok(PullPolicy::Always));
        assert_eq!(PullPolicy::default(), PullPolicy::IfMissing);
        assert!(
            "sometimes"
                .parse::<PullPolicy>()
                .unwrap_err()
                .contains("never, if-missing")
        );
        assert_eq!("no".parse(), Ok(Restart::No));
        assert_eq!("unless-stopped".parse(), Ok(Restart::UnlessStopped));
        assert_eq!(
            "on-failure:5".parse(),
            Ok(Restart::OnFailure {
                max_retries: Some(5)
            })
        );
        for bad in ["on-failure:", "on-failure:-1", "never"] {
            assert!(bad.parse::<Restart>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_validate_and_body_pins_the_image_id() {
        let spec = spec();
        assert_eq!(spec.container_name(), "slipway-web-staging-sha-3f2a9c1-2");
        spec.validate().unwrap();
        let body = create_body(&spec, "sha256:abc", 23456);
        assert_eq!(body.image.as_deref(), Some("sha256:abc"));
        assert_eq!(body.env, Some(vec!["A=1".to_owned()]));
        assert_eq!(body.cmd, None, "no args: the image's CMD");
        let host = body.host_config.unwrap();
        assert_eq!(host.memory, Some(256 << 20));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        let bindings = &host.port_bindings.unwrap()["8080/tcp"];
        assert_eq!(
            bindings.as_ref().unwrap()[0].host_port.as_deref(),
            Some("23456")
        );

        let refused = |f: fn(&mut ContainerSpec)| {
            let mut s = spec.clone();
            f(&mut s);
            s.validate().unwrap_err().to_string()
        };
        assert!(refused(|s| s.image = "web:latest".into()).contains("`web:latest`"));
        assert!(refused(|s| s.image = "web@sha256:00".into()).contains("must not carry"));
        assert!(refused(|s| s.version = "v1/2".into()).contains("`v1/2` is not a valid tag"));
        assert!(refused(|s| s.version = "-v1".into()).contains("not a valid tag"));
        assert!(refused(|s| s.version = "x".repeat(129)).contains("not a valid tag"));
        assert!(refused(|s| s.app = "we b".into()).contains("field `app`"));
    }

    fn instance(workload: crate::Workload) -> InstanceSpec {
        InstanceSpec {
            instance_id: "slipway-web-staging-v1-3".into(),
            scope: "s".into(),
            app: "web".into(),
            environment: "staging".into(),
            version: "v1".into(),
            env: BTreeMap::from([("A".into(), "1".into())]),
            workload,
        }
    }

    #[tokio::test]
    async fn a_process_spec_is_refused_without_touching_the_daemon() {
        let driver = DockerDriver::new("tcp://192.0.2.1:2375".parse().unwrap());
        let spec = instance(crate::Workload::Process {
            command: "web --port {port}".into(),
            log_path: "web.log".into(),
            workdir: ".".into(),
        });
        let e = driver.start(&spec).await.unwrap_err();
        assert!(matches!(&e, crate::Error::WrongWorkload("process")), "{e}");
    }

    #[test]
    fn a_container_workload_keeps_the_instance_id_as_name_and_the_pinned_digest() {
        let labels = BTreeMap::from([
            (LABEL_DEPLOYMENT.to_owned(), "12".to_owned()),
            (LABEL_DIGEST.to_owned(), "sha256:feed".to_owned()),
        ]);
        let workload = crate::Workload::Container {
            image: "slipway-demo".into(),
            port: 8080,
            labels,
            pull: PullPolicy::Never,
            memory: Some(64 << 20),
            cpus: Some(0.5),
            restart: Restart::Always,
            args: vec!["--error-rate".into(), "0.5".into()],
        };
        let (c, digest) = container_spec(&instance(workload.clone())).unwrap();
        assert_eq!(c.container_name(), "slipway-web-staging-v1-3");
        assert_eq!((c.ordinal, c.deployment.as_str()), (3, "12"));
        assert_eq!(c.env["A"], "1");
        assert_eq!(
            (c.pull, c.memory, c.cpus, c.restart),
            (
                PullPolicy::Never,
                Some(64 << 20),
                Some(0.5),
                Restart::Always
            )
        );
        assert_eq!(c.args, ["--error-rate", "0.5"]);
        assert_eq!(digest.as_deref(), Some("sha256:feed"));

        let mut other = instance(workload);
        other.instance_id = "web-1".into();
        let e = container_spec(&other).unwrap_err();
        assert!(e.to_string().contains("`web-1`"), "{e}");
    }

    #[test]
    fn handles_are_docker_and_a_hex_id() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(container_id(&format!("docker:{id}")).unwrap(), id);
        for bad in [
            "",
            "docker:",
            "pid:1:2",
            "docker:../images/json",
            &format!("docker:{id}0"),
        ] {
            assert!(
                matches!(container_id(bad), Err(DockerError::BadHandle(h)) if h == bad),
                "{bad}"
            );
        }
    }
}
