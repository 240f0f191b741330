//! The `Driver` trait the engine starts and stops app instances through, the process
//! driver that runs them as local processes, and the docker driver that runs them as
//! containers (its handle is `docker:<container id>`). Also the runner of one-off shell
//! commands (hooks), which shares the process-group handling and the built environment of
//! instances.
#![forbid(unsafe_code)]

mod docker;
mod env;
mod process;
mod procfs;
pub mod shell;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use docker::{
    ContainerInfo, ContainerSpec, DockerDriver, DockerError, DockerHost, ImageHealth, LABEL_APP,
    LABEL_DEPLOYMENT, LABEL_ENVIRONMENT, LABEL_RELEASE, PullPolicy, Restart, StartedContainer,
};
pub use env::{INHERITED, workload_env};
pub use process::{ProcessDriver, ProcessHandle, render_command};
pub use shell::{Outcome, OutputLine, ShellCommand, ShellRun, Stream, run_shell};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad instance handle `{0}`: expected `pid:<pid>:<start time>`")]
    BadHandle(String),
    #[error("no free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    #[error("cannot open log file {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create work directory {path}: {source}")]
    Workdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("this driver cannot run a {0} workload")]
    WrongWorkload(&'static str),
    #[error("process {0} is gone or unreadable in /proc")]
    NoSuchProcess(u32),
    #[error("cannot signal process group {pgid}: {source}")]
    Signal { pgid: u32, source: std::io::Error },
    #[error("process group {pgid} still runs {waited:?} after SIGKILL")]
    Unkillable { pgid: u32, waited: Duration },
    #[error(transparent)]
    Docker(#[from] DockerError),
}

/// Runs app instances. Implementations are shared by the engine's tasks, hence `Sync`.
#[async_trait::async_trait]
pub trait Driver: Send + Sync {
    /// Starts one instance; returns once the process/container is started (not necessarily healthy).
    async fn start(&self, spec: &InstanceSpec) -> Result<Started>;
    /// Stops it: SIGTERM to its process group, SIGKILL after `grace`. Stopping an instance
    /// that is already gone is Ok.
    async fn stop(&self, handle: &str, grace: Duration) -> Result<()>;
    /// True only if the instance identified by `handle` still runs (not a zombie, and not a
    /// different process that reused the pid). Works for instances started by an earlier
    /// server process too (re-adoption), and is false for a malformed handle.
    async fn is_running(&self, handle: &str) -> bool;
    /// Every instance this driver runs for `scope` (see [`InstanceSpec::scope`]), as
    /// (instance id, handle), whether or not anyone recorded it: a server that died
    /// between starting an instance and recording it finds it here.
    async fn instances(&self, scope: &str) -> Vec<(String, String)>;

    /// What `version` of `workload` stands for now, immutably (a container image's
    /// digest), checked before anything is stopped: a missing image or an unreachable
    /// daemon shows here. `None` when the driver has no such identity.
    async fn pin(&self, _workload: &Workload, _version: &str) -> Result<Option<String>> {
        Ok(None)
    }

    /// Removes what a stopped instance leaves behind (a container), so its name can be
    /// reused. Removing one that is gone is Ok.
    async fn remove(&self, _handle: &str) -> Result<()> {
        Ok(())
    }

    /// Starts a kept, stopped instance again at its address; `None` when the driver
    /// cannot (a process that exited is gone).
    async fn start_again(&self, _handle: &str) -> Result<Option<Started>> {
        Ok(None)
    }

    /// The last `lines` lines the instance printed, when the driver keeps them (a
    /// container's log); `None` when it does not (a process writes its log file).
    async fn output(&self, _handle: &str, _lines: usize) -> Option<Vec<String>> {
        None
    }

    /// Whether the instance runs, is being restarted by the driver's own policy (Docker's
    /// `restart:`), or is gone and why, in words for the deployment log.
    async fn liveness(&self, handle: &str) -> Liveness {
        if self.is_running(handle).await {
            Liveness::Running
        } else {
            Liveness::Gone("it is no longer running".into())
        }
    }

    /// The verdict of the workload's own health check (a container image's
    /// `HEALTHCHECK`); `None` when it has none or the driver cannot say.
    async fn own_health(&self, _handle: &str) -> Option<OwnHealth> {
        None
    }

    /// Every instance this driver holds for `scope`, running or not (a stopped container
    /// stays until it is removed): what a server's records are compared with to find
    /// leftovers. By default the running ones of [`Driver::instances`].
    async fn found(&self, scope: &str) -> Result<Vec<Found>> {
        Ok(self
            .instances(scope)
            .await
            .into_iter()
            .map(|(instance_id, handle)| Found {
                instance_id,
                handle,
                running: true,
                labels: BTreeMap::new(),
            })
            .collect())
    }
}

/// See [`Driver::liveness`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Running,
    /// The driver brings it back by itself (a container crashed under `restart: always`).
    Restarting,
    /// Why it is gone: `exited with code 137`, `its container was removed`, …
    Gone(String),
    /// The driver cannot tell now (the daemon does not answer): neither alive nor dead.
    Unknown(String),
}

/// See [`Driver::own_health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnHealth {
    pub status: ImageHealth,
    /// What the check's last run printed, trimmed (empty when it printed nothing).
    pub last_output: String,
}

/// An instance a driver holds (see [`Driver::found`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The engine's instance id it carries (`slipway-<app>-<env>-<version>-<n>`); empty
    /// when it carries none.
    pub instance_id: String,
    pub handle: String,
    pub running: bool,
    /// Its `slipway.*` labels (none for a process).
    pub labels: BTreeMap<String, String>,
}

/// What to start, whatever runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    /// Unique name of the instance, `slipway-<app>-<env>-<version>-<n>` (a container's
    /// name); a process carries it as `SLIPWAY_INSTANCE`.
    pub instance_id: String,
    /// Whose instance it is (a server's data dir): [`Driver::instances`] lists by it. The
    /// process carries it as `SLIPWAY_SCOPE`.
    pub scope: String,
    pub app: String,
    pub environment: String,
    pub version: String,
    /// Environment (variables, secrets) over the allowlist of [`workload_env`]; nothing
    /// else of the server's environment reaches the instance.
    pub env: BTreeMap<String, String>,
    pub workload: Workload,
}

/// What a driver runs: the part of a spec that depends on the kind of driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// A local process (`driver: process`).
    Process {
        /// `run:` template with `{port}` and `{version}` placeholders
        command: String,
        /// File the instance's stdout and stderr are appended to.
        log_path: PathBuf,
        /// Working directory; created when missing.
        workdir: PathBuf,
    },
    /// A container (`driver: docker`): the release version is the image's tag.
    Container {
        image: String,
        /// The port the app listens on inside the container.
        port: u16,
        /// `slipway.app`, `slipway.environment`, `slipway.release`, `slipway.deployment`, …
        labels: BTreeMap<String, String>,
        pull: PullPolicy,
        /// Memory limit in bytes.
        memory: Option<u64>,
        /// CPU limit in cores.
        cpus: Option<f64>,
        restart: Restart,
        /// Replaces the image's `CMD` when not empty.
        args: Vec<String>,
    },
}

impl Workload {
    /// The kind of driver that runs it, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Workload::Process { .. } => "process",
            Workload::Container { .. } => "container",
        }
    }
}

/// A started instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Driver-specific identity to persist: `pid:<pid>:<start time>` for a process.
    pub handle: String,
    /// Where the router reaches it.
    pub addr: SocketAddr,
    pub pid: u32,
}
