//! Pipelines (docs/concepts.md#pipelines): runs of a pipeline's jobs, from a push to a
//! watched branch or a dispatch, each in a clean checkout of its commit, with deploy jobs
//! that create deployments through the engine's own commands and wait for them.
//!
//! What runs when is decided by `slipway-pipeline` (scheduler, conditions, concurrency
//! groups); this module does the I/O: git (`git`), processes (`job`), the store, and the
//! tasks that drive each run (`run`) and watch repositories (`poll`). Every status change
//! of a run or job goes through [`Shared::transition`].

mod context;
mod git;
mod job;
mod poll;
mod run;

pub(crate) use context::mask_secret;
pub use git::short_ref;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use slipway_config::Role;
use slipway_core::Masker;
use slipway_pipeline::{Pipeline, Status, job_can_transition, run_can_transition};
use slipway_store::{
    JobKind, NewJob, NewRun, PipelineStore, Run, RunChange, RunFilter, RunId, RunLogLine, Trigger,
};
use tokio::sync::{broadcast, watch};

use crate::error::{Error, Result};
use crate::{Actor, Engine};

/// Marks every step's processes with the run they belong to (`<dir>#<run id>`), so a
/// server that starts after a crash can end what the dead one's steps left running.
pub(crate) const RUN_MARKER: &str = "SLIPWAY_RUN_SCOPE";

/// The longest value of one input.
pub const MAX_INPUT_CHARS: usize = 4096;

/// Published for live viewers of runs (the API's log stream): every stored log line and
/// every status change.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Log {
        run: RunId,
        line: RunLogLine,
    },
    Status {
        run: RunId,
        job: Option<String>,
        status: Status,
    },
}

/// The pipelines of one server.
#[derive(Clone)]
pub struct Pipelines {
    shared: Arc<Shared>,
}

/// What every task of the pipelines shares.
pub(crate) struct Shared {
    engine: Engine,
    store: Arc<dyn PipelineStore>,
    /// `<data_dir>/pipelines`: one directory per run under way.
    dir: PathBuf,
    /// The cancel signal of every run a task drives.
    runs: std::sync::Mutex<HashMap<RunId, watch::Sender<Option<String>>>>,
    /// Held while a concurrency group decides who starts.
    groups: tokio::sync::Mutex<()>,
    /// Counts run status changes, so runs waiting for their group look again.
    changed: watch::Sender<u64>,
    events: broadcast::Sender<RunEvent>,
}

impl Pipelines {
    /// Picks up the runs a previous server left unfinished (a job that was running is
    /// retried when its `retries` allow, else failed with the reason), then starts
    /// watching the repositories of push triggers.
    pub async fn start(engine: &Engine, store: Arc<dyn PipelineStore>) -> Result<Pipelines> {
        let shared = Arc::new(Shared {
            dir: engine.inner.data_dir.join("pipelines"),
            engine: engine.clone(),
            store,
            runs: std::sync::Mutex::new(HashMap::new()),
            groups: tokio::sync::Mutex::new(()),
            changed: watch::channel(0).0,
            events: broadcast::channel(4096).0,
        });
        for r in shared.store.unfinished_runs().await? {
            run::recover(&shared, &r).await?;
        }
        for (name, pipeline) in &engine.config().pipelines {
            if let Some(push) = &pipeline.push {
                tokio::spawn(poll::watch(shared.clone(), name.clone(), push.clone()));
            }
        }
        Ok(Pipelines { shared })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.shared.events.subscribe()
    }

    fn pipeline(&self, name: &str) -> Result<&Pipeline> {
        let pipelines = &self.shared.engine.inner.config.pipelines;
        pipelines.get(name).ok_or_else(|| {
            Error::not_found(format!(
                "pipeline `{name}`{}",
                crate::commands::suggestion(name, pipelines.keys())
            ))
        })
    }

    /// A run started by hand with `inputs` (defaults filled in), at `git_ref` (else the
    /// branch the repository's HEAD names).
    pub async fn dispatch(
        &self,
        name: &str,
        mut inputs: BTreeMap<String, String>,
        git_ref: Option<&str>,
        actor: &Actor,
    ) -> Result<Run> {
        crate::commands::require(actor, Role::Deployer, "running a pipeline")?;
        let pipeline = self.pipeline(name)?;
        let Some(dispatch) = &pipeline.dispatch else {
            return Err(Error::conflict(
                "no_dispatch",
                format!(
                    "pipeline `{name}` has no `on.dispatch`; add `dispatch: {{}}` under its `on` to run it by hand"
                ),
            ));
        };
        for (key, value) in &inputs {
            if !dispatch.inputs.contains_key(key) {
                let known: Vec<&String> = dispatch.inputs.keys().collect();
                return Err(Error::bad(
                    "unknown_input",
                    format!(
                        "pipeline `{name}` has no input `{key}`{}",
                        crate::commands::suggestion(key, known.into_iter())
                    ),
                ));
            }
            if value.chars().count() > MAX_INPUT_CHARS || value.contains('\0') {
                return Err(Error::bad(
                    "invalid_input",
                    format!(
                        "input `{key}` must be at most {MAX_INPUT_CHARS} characters, without NUL"
                    ),
                ));
            }
        }
        for (key, input) in &dispatch.inputs {
            if inputs.contains_key(key) {
                continue;
            }
            match &input.default {
                Some(default) => {
                    inputs.insert(key.clone(), default.clone());
                }
                None if input.required => {
                    return Err(Error::bad(
                        "missing_input",
                        format!("pipeline `{name}` needs the input `{key}` (--input {key}=VALUE)"),
                    ));
                }
                None => {}
            }
        }
        let (commit, full_ref) = match (pipeline.repository(), git_ref) {
            (None, Some(r)) => {
                return Err(Error::bad(
                    "no_repository",
                    format!("pipeline `{name}` names no repository, so it has no ref `{r}` to run"),
                ));
            }
            (None, None) => (None, None),
            (Some(repository), git_ref) => {
                let resolved = git::resolve(repository, git_ref)
                    .await
                    .map_err(|e| Error::conflict("repository_unreadable", e))?
                    .ok_or_else(|| {
                        Error::bad(
                            "unknown_ref",
                            format!(
                                "{repository} has no branch or tag `{}`",
                                git_ref.unwrap_or("HEAD")
                            ),
                        )
                    })?;
                (Some(resolved.sha), Some(resolved.full_ref))
            }
        };
        let new = self.shared.new_run(
            name,
            pipeline,
            Trigger::Dispatch,
            commit,
            full_ref,
            inputs,
            actor,
            None,
        );
        let created = self.shared.store.create_run(new).await?;
        self.shared.begin(&created).await;
        Ok(created)
    }

    /// A push to `repository` (`slipway trigger`): a run of every pipeline that watches
    /// that repository and branch, unless that commit started one already.
    pub async fn push(
        &self,
        repository: &str,
        git_ref: &str,
        sha: &str,
        actor: &Actor,
    ) -> Result<Vec<Run>> {
        crate::commands::require(actor, Role::Deployer, "triggering pipelines")?;
        let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
        if git_ref.starts_with("refs/") && !git_ref.starts_with("refs/heads/") {
            return Ok(Vec::new());
        }
        let given = poll::same_repository_key(repository);
        let mut runs = Vec::new();
        for (name, pipeline) in &self.shared.engine.inner.config.pipelines {
            let Some(push) = &pipeline.push else { continue };
            if poll::same_repository_key(&push.repository) != given {
                continue;
            }
            if let Some(run) = self
                .shared
                .start_push(name, pipeline, branch, sha, actor)
                .await?
            {
                runs.push(run);
            }
        }
        Ok(runs)
    }

    pub async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        if let Some(name) = &filter.pipeline {
            self.pipeline(name)?;
        }
        Ok(self.shared.store.list_runs(filter).await?)
    }

    pub async fn run(&self, id: RunId) -> Result<Run> {
        Ok(self.shared.store.get_run(id).await?)
    }

    /// The run, its pipeline and the deploy job that created deployment `id`, if a run did.
    pub async fn made(
        &self,
        id: slipway_core::DeploymentId,
    ) -> Result<Option<(RunId, String, String)>> {
        Ok(self.shared.store.job_of_deployment(id).await?)
    }

    pub async fn logs(
        &self,
        id: RunId,
        job: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RunLogLine>> {
        let run = self.shared.store.get_run(id).await?;
        if let Some(job) = job
            && run.job(job).is_none()
        {
            let names: Vec<&String> = run.jobs.iter().map(|j| &j.name).collect();
            return Err(Error::not_found(format!(
                "job `{job}` in run {id}{}",
                crate::commands::suggestion(job, names.into_iter())
            )));
        }
        Ok(self.shared.store.run_logs(id, job, after, limit).await?)
    }

    /// Cancels a run: its jobs are cancelled, except a deploy job whose rollout is under
    /// way, which finishes first.
    pub async fn cancel(&self, id: RunId, actor: &Actor) -> Result<Run> {
        crate::commands::require(actor, Role::Deployer, "cancelling a run")?;
        let run = self.shared.store.get_run(id).await?;
        if run.status.is_finished() {
            return Err(Error::conflict(
                "finished",
                format!(
                    "run {id} is {}; only an unfinished run can be cancelled",
                    run.status
                ),
            ));
        }
        self.shared
            .signal_cancel(id, &format!("cancelled by {}", actor.name));
        Ok(run)
    }
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    fn new_run(
        &self,
        name: &str,
        pipeline: &Pipeline,
        trigger: Trigger,
        commit: Option<String>,
        full_ref: Option<String>,
        inputs: BTreeMap<String, String>,
        actor: &Actor,
        head_of: Option<String>,
    ) -> NewRun {
        let reason = match (&trigger, &commit) {
            (Trigger::Push, Some(sha)) => format!(
                "{sha} pushed to {}",
                full_ref.as_deref().map_or("", git::short_ref)
            ),
            _ => format!("dispatched by {}", actor.name),
        };
        NewRun {
            pipeline: name.to_owned(),
            trigger,
            commit,
            git_ref: full_ref,
            inputs,
            group: pipeline.concurrency.as_ref().map(|c| c.group.clone()),
            created_by: actor.name.clone(),
            created_at: self.engine.now(),
            reason,
            jobs: pipeline
                .jobs
                .iter()
                .map(|j| NewJob {
                    name: j.name.clone(),
                    needs: j.needs.clone(),
                    kind: match j.work {
                        slipway_pipeline::Work::Steps(_) => JobKind::Steps,
                        slipway_pipeline::Work::Deploy(_) => JobKind::Deploy,
                    },
                })
                .collect(),
            head_of,
        }
    }

    /// A push run of `pipeline` for `sha` on `branch`, when the pipeline watches that
    /// branch and has not run that commit of it yet.
    async fn start_push(
        self: &Arc<Self>,
        name: &str,
        pipeline: &Pipeline,
        branch: &str,
        sha: &str,
        actor: &Actor,
    ) -> Result<Option<Run>> {
        let Some(push) = &pipeline.push else {
            return Ok(None);
        };
        let watched = push.branches.is_empty()
            || push
                .branches
                .iter()
                .any(|pattern| slipway_core::glob_match(pattern, branch));
        if !watched {
            return Ok(None);
        }
        let inputs = pipeline
            .dispatch
            .iter()
            .flat_map(|d| d.inputs.iter())
            .filter_map(|(k, i)| Some((k.clone(), i.default.clone()?)))
            .collect();
        let new = self.new_run(
            name,
            pipeline,
            Trigger::Push,
            Some(sha.to_owned()),
            Some(format!("refs/heads/{branch}")),
            inputs,
            actor,
            Some(branch.to_owned()),
        );
        match self.store.create_run(new).await {
            Ok(run) => {
                self.begin(&run).await;
                Ok(Some(run))
            }
            Err(slipway_store::Error::AlreadyExists { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Tells live viewers of a new run and starts the task that drives it.
    async fn begin(self: &Arc<Self>, run: &Run) {
        let _ = self.events.send(RunEvent::Status {
            run: run.id,
            job: None,
            status: Status::Queued,
        });
        self.bump();
        run::spawn(self.clone(), run.id);
    }

    /// Persists a status change of a run (`job: None`) or a job, only from `from`, then
    /// logs it and tells live viewers. The one way any of them changes status.
    pub(crate) async fn transition(
        &self,
        run: RunId,
        job: Option<&str>,
        from: Status,
        to: Status,
        reason: &str,
        outputs: Option<BTreeMap<String, String>>,
    ) -> Result<()> {
        let allowed = match job {
            None => run_can_transition(from, to),
            Some(_) => job_can_transition(from, to),
        };
        if !allowed {
            return Err(Error::conflict(
                "invalid_transition",
                format!(
                    "{} of run {run} cannot go from {from} to {to}",
                    job.unwrap_or("the run")
                ),
            ));
        }
        // A reason quotes output and errors: it is masked like the log it enters.
        let reason = self.engine.inner.mask(reason);
        let at = self.engine.now();
        let seq = self
            .store
            .transition_run(RunChange {
                run,
                job: job.map(str::to_owned),
                from,
                to,
                at,
                reason: reason.clone(),
                outputs,
            })
            .await?;
        let line = RunLogLine {
            seq,
            job: job.map(str::to_owned),
            at,
            stream: "status".to_owned(),
            message: format!("{to}: {reason}"),
        };
        let _ = self.events.send(RunEvent::Log { run, line });
        tracing::info!(run, job = job.unwrap_or(""), status = %to, %reason, "pipeline");
        let _ = self.events.send(RunEvent::Status {
            run,
            job: job.map(str::to_owned),
            status: to,
        });
        if job.is_none() {
            // The store wrote the run's outbox entry with the change (for a start or an end).
            self.engine.inner.outbox_written();
            self.bump();
        }
        Ok(())
    }

    /// Appends to a run's log, masked with `masker` (the run's secrets) or else the
    /// engine's. A line that cannot be stored is reported in the server's own log.
    pub(crate) async fn log(
        &self,
        run: RunId,
        job: Option<&str>,
        stream: &str,
        message: &str,
        masker: Option<&Masker>,
    ) {
        let message = match masker {
            Some(m) => m.mask(message).into_owned(),
            None => self.engine.inner.mask(message),
        };
        let at = self.engine.now();
        match self
            .store
            .append_run_log(run, job, at, stream, &message)
            .await
        {
            Ok(seq) => {
                let line = RunLogLine {
                    seq,
                    job: job.map(str::to_owned),
                    at,
                    stream: stream.to_owned(),
                    message,
                };
                let _ = self.events.send(RunEvent::Log { run, line });
            }
            Err(e) => {
                tracing::warn!(run, error = %e, "could not store a run's log line: {message}")
            }
        }
    }

    /// A line of slipway's own in a run's log (not of a job).
    pub(crate) async fn note(&self, run: RunId, message: &str) {
        self.log(run, None, "runner", message, None).await;
    }

    /// Tells a run's task to cancel it (a run not driven by a task has nothing to tell).
    fn signal_cancel(&self, run: RunId, reason: &str) {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cancel) = runs.get(&run)
            && cancel.borrow().is_none()
        {
            cancel.send_replace(Some(reason.to_owned()));
        }
    }

    /// A run's status changed: runs waiting for their concurrency group look again.
    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The value of [`RUN_MARKER`] in the steps of run `run`.
    fn marker(&self, run: RunId) -> String {
        format!("{}#{run}", self.dir.display())
    }

    /// The actor a run's deploy jobs act as: its creator, with the deployer role.
    fn actor(run: &Run) -> Actor {
        Actor {
            name: run.created_by.clone(),
            role: Role::Deployer,
        }
    }
}
