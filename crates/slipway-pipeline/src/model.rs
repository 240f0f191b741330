//! A pipeline as the config defines it, already validated: names it refers to exist,
//! the jobs form a DAG, and every expression parses and names only what it may.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::dag::{Dag, DagError};
use crate::expr::{Condition, Template};

/// How long a job of steps may run when its config does not say. Default 1h.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(3600);
/// Jobs of one run in progress at once when the config does not say.
pub const DEFAULT_MAX_PARALLEL: u32 = 4;
/// How often a push trigger looks at its repository when the config does not say.
pub const DEFAULT_POLL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub push: Option<PushTrigger>,
    pub dispatch: Option<Dispatch>,
    pub concurrency: Option<Concurrency>,
    pub secrets: BTreeMap<String, Secret>,
    /// Every step's environment, and `vars.*`.
    pub env: BTreeMap<String, Template>,
    /// Jobs of one run in progress at once.
    pub max_parallel: u32,
    /// In the order the config lists them.
    pub jobs: Vec<Job>,
}

impl Pipeline {
    /// The repository the runs check out: the one `on.push` watches.
    pub fn repository(&self) -> Option<&str> {
        self.push.as_ref().map(|p| p.repository.as_str())
    }

    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The graph of the jobs by `needs` (validation has made sure it is one).
    pub fn dag(&self) -> Result<Dag, Vec<DagError>> {
        Dag::of(
            self.jobs
                .iter()
                .map(|j| (j.name.as_str(), j.needs.as_slice())),
        )
    }
}

/// `on.push`: every new commit on a watched branch starts one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTrigger {
    /// A local path (absolute, resolved against the config file's directory) or a URL
    /// git can read.
    pub repository: String,
    /// Glob patterns on branch names; empty means every branch.
    pub branches: Vec<String>,
    pub poll: Duration,
}

/// `on.dispatch`: runs started by hand (`slipway run`), with inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dispatch {
    pub inputs: BTreeMap<String, Input>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    pub required: bool,
    pub default: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrency {
    pub group: String,
    pub cancel_in_progress: bool,
}

/// A place in the config file, kept for what can only be checked where the server runs
/// (an environment variable named there), so that error still names line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// Key path, like `notifications[0].secret.env`.
    pub path: String,
    pub line: usize,
    pub column: usize,
}

/// A secret of a pipeline or an environment: where its value is read, and where the
/// config says so (an unset variable or missing file is reported there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub source: SecretSource,
    /// Where `env` or `file` is written.
    pub at: Place,
}

/// Where a secret's value is read (a pipeline's when a run starts, an environment's when
/// the server starts); never the config itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A variable of the server's own environment.
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    pub needs: Vec<String>,
    /// `if:`; none means `success()`.
    pub condition: Option<Condition>,
    /// `environment:` of a job of steps: its steps also get that environment's secrets
    /// (a deploy job's deployment gets them from its own environment).
    pub environment: Option<String>,
    pub work: Work,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    Steps(Steps),
    Deploy(Deploy),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Steps {
    pub env: BTreeMap<String, Template>,
    /// The whole job's process groups are ended when it runs longer; it then fails.
    pub timeout: Duration,
    /// How many times a failed job is run again.
    pub retries: u32,
    /// Relative to the run's workspace.
    pub working_directory: Option<PathBuf>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: Option<String>,
    /// Run with `/bin/sh -c` in the job's working directory.
    pub run: Template,
    pub env: BTreeMap<String, Template>,
}

/// A job that creates a deployment and waits for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    pub app: String,
    pub environment: String,
    pub version: Template,
}
