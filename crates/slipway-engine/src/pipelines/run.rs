//! The task that drives one run: it waits for the run's concurrency group, prepares its
//! workspace (a clean checkout of the commit) and secrets, then starts, skips and
//! finishes jobs as the scheduler decides until every job has ended. A cancel (by hand,
//! or a newer run of the group) cancels the jobs, except a deploy job whose rollout is
//! under way. When the server stops, the task ends and leaves the run as persisted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use slipway_pipeline::concurrency::{self, Member};
use slipway_pipeline::schedule::{self, Decision, Live, Needs};
use slipway_pipeline::{Dag, Pipeline, Status, Work};
use slipway_store::{JobKind, Run, RunId};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::context::{JobContext, Values};
use super::job::{self, Attempt, DeployPlan, Outcome, StepPlan, StepsPlan, Update};
use super::{Shared, git};
use crate::DeployRequest;
use crate::error::{Error, Result};

/// Starts the task that drives run `id`.
pub(super) fn spawn(shared: Arc<Shared>, id: RunId) {
    let (cancel, cancelled) = watch::channel(None);
    shared
        .runs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, cancel);
    tokio::spawn(async move {
        let engine = shared.engine.clone();
        tokio::select! {
            driven = drive(&shared, id, cancelled) => {
                if let Err(e) = driven {
                    tracing::error!(run = id, error = %e, "a pipeline run could not go on");
                    fail_unfinished(&shared, id, &format!("slipway could not go on: {e}")).await;
                }
            }
            // The server stops: the run stays as persisted, for the next start.
            () = engine.stopping() => {}
        }
        shared
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        shared.bump();
    });
}

/// A run the last server left unfinished: a steps job that was running is retried when
/// its `retries` allow, else failed with the reason; a deploy job follows its deployment
/// again. Then its task starts again.
pub(super) async fn recover(shared: &Arc<Shared>, run: &Run) -> Result<()> {
    let pipeline = shared.engine.config().pipelines.get(&run.pipeline);
    let marker = shared.marker(run.id);
    let ended = slipway_drivers::shell::end_groups_marked(super::RUN_MARKER, &marker);
    if !ended.is_empty() {
        shared
            .note(
                run.id,
                &format!(
                    "ended {} process(es) that the last server's steps left running (pid {})",
                    ended.len(),
                    ended
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .await;
    }
    for job in &run.jobs {
        if !matches!(job.status, Status::InProgress | Status::Waiting)
            || (job.kind == JobKind::Deploy && job.deployment_id.is_some())
        {
            continue;
        }
        let retries = pipeline
            .and_then(|p| p.job(&job.name))
            .map_or(0, |j| match &j.work {
                Work::Steps(s) => s.retries,
                Work::Deploy(_) => 0,
            });
        let why = format!("the server stopped while attempt {} ran", job.attempt);
        let (to, reason) = if job.kind == JobKind::Steps && job.attempt <= retries {
            (
                Status::Queued,
                format!(
                    "{why}; retrying (attempt {} of {})",
                    job.attempt + 1,
                    retries + 1
                ),
            )
        } else {
            (Status::Failure, format!("{why}; its steps were ended"))
        };
        shared
            .transition(run.id, Some(&job.name), job.status, to, &reason, None)
            .await?;
    }
    spawn(shared.clone(), run.id);
    Ok(())
}

async fn drive(
    shared: &Arc<Shared>,
    id: RunId,
    mut cancel: watch::Receiver<Option<String>>,
) -> Result<()> {
    let run = shared.store.get_run(id).await?;
    let Some(pipeline) = shared.engine.config().pipelines.get(&run.pipeline).cloned() else {
        let why = format!(
            "pipeline `{}` is no longer in the configuration",
            run.pipeline
        );
        fail_unfinished(shared, id, &why).await;
        return Ok(());
    };
    if run.status == Status::Queued && !wait_for_turn(shared, &run, &pipeline, &mut cancel).await? {
        return Ok(());
    }
    let run = shared.store.get_run(id).await?;
    let mut runner = Runner::new(shared, run, pipeline, cancel)?;
    runner.go().await
}

/// Waits until the run may start (its concurrency group is free) and starts it; false
/// when it was cancelled first.
async fn wait_for_turn(
    shared: &Arc<Shared>,
    run: &Run,
    pipeline: &Pipeline,
    cancel: &mut watch::Receiver<Option<String>>,
) -> Result<bool> {
    let mut said = None;
    loop {
        let cancelled = cancel.borrow().clone();
        if let Some(reason) = cancelled {
            end_pending(shared, run, &reason).await?;
            return Ok(false);
        }
        // Subscribed before looking, so a change made meanwhile wakes this loop.
        let mut changed = shared.changed.subscribe();
        let Some(group) = &pipeline.concurrency else {
            shared
                .transition(
                    run.id,
                    None,
                    Status::Queued,
                    Status::InProgress,
                    "started",
                    None,
                )
                .await?;
            return Ok(true);
        };
        {
            let _deciding = shared.groups.lock().await;
            let members: Vec<Run> = shared
                .store
                .unfinished_runs()
                .await?
                .into_iter()
                .filter(|r| r.group.as_deref() == Some(group.group.as_str()))
                .collect();
            let states: Vec<Member> = members
                .iter()
                .map(|r| match r.status {
                    Status::Queued => Member::Pending,
                    Status::Waiting => Member::Waiting,
                    _ => Member::Active,
                })
                .collect();
            let resolution = concurrency::resolve(&states, group.cancel_in_progress);
            if let Some(newest) = members.last() {
                for &i in &resolution.cancel {
                    shared.signal_cancel(
                        members[i].id,
                        &format!(
                            "superseded by run {} of concurrency group {}",
                            newest.id, group.group
                        ),
                    );
                }
            }
            let me = members.iter().position(|r| r.id == run.id);
            if me.is_some() && resolution.start == me {
                shared
                    .transition(
                        run.id,
                        None,
                        Status::Queued,
                        Status::InProgress,
                        &format!("started (concurrency group {})", group.group),
                        None,
                    )
                    .await?;
                return Ok(true);
            }
            let ahead = members
                .iter()
                .find(|r| r.id != run.id && r.status != Status::Queued)
                .map(|r| r.id);
            if ahead.is_some() && ahead != said {
                said = ahead;
                if let Some(ahead) = ahead {
                    shared
                        .note(
                            run.id,
                            &format!(
                                "waiting for run {ahead} of concurrency group {} to end",
                                group.group
                            ),
                        )
                        .await;
                }
            }
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = cancel.changed() => {}
        }
    }
}

/// A run cancelled before it started: it and its jobs end `cancelled`.
async fn end_pending(shared: &Shared, run: &Run, reason: &str) -> Result<()> {
    for job in &run.jobs {
        shared
            .transition(
                run.id,
                Some(&job.name),
                Status::Queued,
                Status::Cancelled,
                reason,
                None,
            )
            .await?;
    }
    shared
        .transition(
            run.id,
            None,
            Status::Queued,
            Status::Cancelled,
            reason,
            None,
        )
        .await
}

/// Ends a run that cannot go on: its unfinished jobs are skipped (or failed, when they
/// had started) and the run fails with `why`. Best effort: what cannot be written stays
/// for the next start.
async fn fail_unfinished(shared: &Shared, id: RunId, why: &str) {
    let Ok(run) = shared.store.get_run(id).await else {
        return;
    };
    for job in run.jobs.iter().filter(|j| !j.status.is_finished()) {
        let to = if job.status == Status::Queued {
            Status::Skipped
        } else {
            Status::Failure
        };
        let _ = shared
            .transition(id, Some(&job.name), job.status, to, why, None)
            .await;
    }
    if !run.status.is_finished() {
        let _ = shared
            .transition(id, None, run.status, Status::Failure, why, None)
            .await;
    }
}

// === impl Runner ===

/// The run under way, as its task knows it (the store has the same, written first).
struct Runner<'s> {
    shared: &'s Arc<Shared>,
    run: Run,
    pipeline: Pipeline,
    dag: Dag,
    /// Per job, in the run's order.
    statuses: Vec<Status>,
    outputs: Vec<BTreeMap<String, String>>,
    attempts: Vec<u32>,
    rolling_out: Vec<bool>,
    job_cancel: Vec<Option<watch::Sender<bool>>>,
    status: Status,
    cancel: watch::Receiver<Option<String>>,
    /// Why the run is being cancelled, once it is.
    cancelling: Option<String>,
    tasks: JoinSet<(usize, Outcome)>,
    /// What deploy jobs tell while they follow their deployments, by job.
    updates_tx: mpsc::UnboundedSender<(usize, Update)>,
    updates: mpsc::UnboundedReceiver<(usize, Update)>,
}

impl<'s> Runner<'s> {
    fn new(
        shared: &'s Arc<Shared>,
        run: Run,
        pipeline: Pipeline,
        cancel: watch::Receiver<Option<String>>,
    ) -> Result<Runner<'s>> {
        // The run's own jobs and needs, as they were when it was created.
        let dag = Dag::of(
            run.jobs
                .iter()
                .map(|j| (j.name.as_str(), j.needs.as_slice())),
        )
        .map_err(|errors| {
            Error::conflict(
                "invalid_run",
                format!("run {}: its jobs do not form a graph: {errors:?}", run.id),
            )
        })?;
        let n = run.jobs.len();
        let (updates_tx, updates) = mpsc::unbounded_channel();
        Ok(Runner {
            statuses: run.jobs.iter().map(|j| j.status).collect(),
            outputs: run.jobs.iter().map(|j| j.outputs.clone()).collect(),
            attempts: run.jobs.iter().map(|j| j.attempt).collect(),
            rolling_out: vec![false; n],
            job_cancel: (0..n).map(|_| None).collect(),
            status: run.status,
            shared,
            pipeline,
            dag,
            run,
            cancel,
            cancelling: None,
            tasks: JoinSet::new(),
            updates_tx,
            updates,
        })
    }

    fn dir(&self) -> PathBuf {
        self.shared.dir.join(self.run.id.to_string())
    }

    async fn go(&mut self) -> Result<()> {
        let values = match self.prepare().await {
            Ok(values) => Arc::new(values),
            Err(why) => {
                fail_unfinished(self.shared, self.run.id, &why).await;
                self.clean_up();
                return Ok(());
            }
        };
        // Jobs a previous server left under way (deploys following their deployment).
        for i in 0..self.statuses.len() {
            if matches!(self.statuses[i], Status::InProgress | Status::Waiting) {
                self.spawn_job(i, &values).await?;
            }
        }
        loop {
            if self.cancelling.is_none() {
                self.schedule(&values).await?;
            }
            self.live_status().await?;
            if let Some(end) = schedule::outcome(&self.statuses) {
                self.finish(end).await?;
                return Ok(());
            }
            tokio::select! {
                Some(done) = self.tasks.join_next() => {
                    match done {
                        Ok((i, outcome)) => self.ended(i, outcome).await?,
                        Err(e) => return Err(Error::Io(std::io::Error::other(format!("a job's task failed: {e}")))),
                    }
                }
                Some((i, update)) = self.updates.recv() => self.update(i, update).await?,
                Ok(()) = self.cancel.changed(), if self.cancelling.is_none() => {
                    let reason = self.cancel.borrow().clone();
                    if let Some(reason) = reason {
                        self.start_cancel(reason).await?;
                    }
                }
            }
        }
    }

    /// The run's values (secrets read) and its workspace (a checkout of the commit, kept
    /// when a previous server made it). `Err` is why the run cannot start.
    async fn prepare(&mut self) -> Result<Values, String> {
        let masker = self
            .shared
            .engine
            .inner
            .masker
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let workspace = self.dir().join("workspace");
        if let (Some(repository), Some(sha)) = (self.pipeline.repository(), &self.run.commit)
            && !workspace.join(".git").is_dir()
        {
            let _ = std::fs::remove_dir_all(&workspace);
            std::fs::create_dir_all(self.dir())
                .map_err(|e| format!("cannot create {}: {e}", self.dir().display()))?;
            self.shared
                .note(self.run.id, &format!("checking out {sha} of {repository}"))
                .await;
            git::checkout(repository, sha, &workspace).await?;
            let at = git::commit_time(&workspace, sha).await?;
            self.shared
                .store
                .set_committed_at(self.run.id, at)
                .await
                .map_err(|e| e.to_string())?;
            self.run.committed_at = Some(at);
        }
        std::fs::create_dir_all(&workspace)
            .and_then(|()| std::fs::create_dir_all(self.dir().join("outputs")))
            .map_err(|e| format!("cannot create {}: {e}", workspace.display()))?;
        let environments = self.shared.engine.inner.environment_secrets.clone();
        let values = Values::of(&self.pipeline, &self.run, environments, masker, &|name| {
            std::env::var(name).ok()
        })?;
        for secret in values.secrets.values() {
            self.shared.engine.add_secret(secret);
        }
        Ok(values)
    }

    /// Starts, skips or fails the jobs the scheduler picks.
    async fn schedule(&mut self, values: &Arc<Values>) -> Result<()> {
        let decisions = {
            let statuses = &self.statuses;
            let jobs = &self.run.jobs;
            let outputs = &self.outputs;
            let pipeline = &self.pipeline;
            schedule::next(
                &self.dag,
                statuses,
                self.pipeline.max_parallel as usize,
                |i, needs| {
                    let Some(job) = pipeline.job(&jobs[i].name) else {
                        return Err(format!(
                            "job `{}` is no longer in the pipeline's configuration",
                            jobs[i].name
                        ));
                    };
                    match &job.condition {
                        None => Ok(needs.success),
                        Some(c) => c
                            .holds(&job_context(
                                values,
                                jobs,
                                outputs,
                                statuses,
                                needs,
                                job.environment.as_deref(),
                            ))
                            .map_err(|e| format!("`if: {}`: {e}", c.text)),
                    }
                },
            )
        };
        for decision in decisions {
            match decision {
                Decision::Start(i) => self.spawn_job(i, values).await?,
                Decision::Skip(i) => {
                    let has_if = self
                        .pipeline
                        .job(&self.run.jobs[i].name)
                        .is_some_and(|j| j.condition.is_some());
                    let why = if has_if {
                        "its `if:` does not hold"
                    } else {
                        "a job it needs did not succeed"
                    };
                    self.set(i, Status::Skipped, why, None).await?;
                }
                Decision::Fail(i, why) => self.set(i, Status::Failure, &why, None).await?,
            }
        }
        Ok(())
    }

    /// Starts attempt of job `i` (or follows a deploy job's deployment again).
    async fn spawn_job(&mut self, i: usize, values: &Arc<Values>) -> Result<()> {
        let name = self.run.jobs[i].name.clone();
        let Some(job) = self.pipeline.job(&name).cloned() else {
            let why = format!("job `{name}` is no longer in the pipeline's configuration");
            return self.set(i, Status::Failure, &why, None).await;
        };
        if self.statuses[i] == Status::Queued {
            self.attempts[i] += 1;
            let reason = match &job.work {
                Work::Steps(s) => format!("attempt {} of {}", self.attempts[i], s.retries + 1),
                Work::Deploy(d) => format!("deploying to {}", d.environment),
            };
            self.set(i, Status::InProgress, &reason, None).await?;
        }
        let needs = Needs {
            success: true,
            failure: false,
        };
        let environment = job.environment.as_deref();
        let cx = job_context(
            values,
            &self.run.jobs,
            &self.outputs,
            &self.statuses,
            needs,
            environment,
        );
        let (cancel, cancelled) = watch::channel(false);
        self.job_cancel[i] = Some(cancel);
        let attempt = Attempt {
            shared: self.shared.clone(),
            run: self.run.id,
            job: name.clone(),
            masker: Arc::new(values.masker.clone()),
            cancel: cancelled,
        };
        match &job.work {
            Work::Steps(steps) => {
                let plan = match self.steps_plan(&name, steps, environment, values, &cx, i) {
                    Ok(plan) => plan,
                    Err(why) => {
                        drop(cx);
                        return self.set(i, Status::Failure, &why, None).await;
                    }
                };
                self.tasks
                    .spawn(async move { (i, job::run_steps(attempt, plan).await) });
            }
            Work::Deploy(deploy) => {
                let version = match deploy.version.render(&cx) {
                    Ok(v) => v,
                    Err(e) => {
                        drop(cx);
                        let why = format!("`version: {}`: {e}", deploy.version.text);
                        return self.set(i, Status::Failure, &why, None).await;
                    }
                };
                let plan = DeployPlan {
                    request: DeployRequest {
                        app: deploy.app.clone(),
                        environment: deploy.environment.clone(),
                        version,
                        git_ref: self
                            .run
                            .git_ref
                            .as_deref()
                            .map(|r| git::short_ref(r).to_owned()),
                        commit: self.run.commit.clone(),
                        committed_at: self.run.committed_at,
                        force: false,
                        reason: None,
                    },
                    existing: self.run.jobs[i].deployment_id,
                    actor: Shared::actor(&self.run),
                };
                let tx = self.updates_tx.clone();
                let (updates, mut relay) = mpsc::unbounded_channel();
                self.tasks.spawn(async move {
                    let follow = job::run_deploy(attempt, plan, updates);
                    let forward = async {
                        while let Some(u) = relay.recv().await {
                            let _ = tx.send((i, u));
                        }
                    };
                    let (outcome, ()) = tokio::join!(follow, forward);
                    (i, outcome)
                });
            }
        }
        Ok(())
    }

    /// Every step of a job rendered: its command and environment (with the secrets of the
    /// job's `environment:`).
    fn steps_plan(
        &self,
        name: &str,
        steps: &slipway_pipeline::Steps,
        environment: Option<&str>,
        values: &Values,
        cx: &JobContext,
        i: usize,
    ) -> Result<StepsPlan, String> {
        let output_file = self
            .dir()
            .join("outputs")
            .join(format!("{name}.{}", self.attempts[i]));
        let mut base = values.vars.clone();
        if let Some(secrets) = environment.and_then(|e| values.environments.of(e)) {
            base.extend(secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for (key, template) in &steps.env {
            let value = template.render(cx).map_err(|e| format!("env {key}: {e}"))?;
            base.insert(key.clone(), value);
        }
        let slipway_vars = [
            ("CI", "true".to_owned()),
            ("SLIPWAY_PIPELINE", self.run.pipeline.clone()),
            ("SLIPWAY_RUN", self.run.id.to_string()),
            ("SLIPWAY_JOB", name.to_owned()),
            (
                "SLIPWAY_COMMIT",
                self.run.commit.clone().unwrap_or_default(),
            ),
            (
                "SLIPWAY_REF",
                self.run
                    .git_ref
                    .as_deref()
                    .map(|r| git::short_ref(r).to_owned())
                    .unwrap_or_default(),
            ),
            ("SLIPWAY_OUTPUT", output_file.display().to_string()),
            (super::RUN_MARKER, self.shared.marker(self.run.id)),
        ];
        let mut plans = Vec::with_capacity(steps.steps.len());
        for (n, step) in steps.steps.iter().enumerate() {
            let command = step
                .run
                .render(cx)
                .map_err(|e| format!("step {}: {e}", n + 1))?;
            let mut env = base.clone();
            for (key, template) in &step.env {
                let value = template
                    .render(cx)
                    .map_err(|e| format!("step {} env {key}: {e}", n + 1))?;
                env.insert(key.clone(), value);
            }
            env.extend(
                slipway_vars
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone())),
            );
            plans.push(StepPlan {
                label: step.name.clone().unwrap_or_else(|| step.run.text.clone()),
                command,
                env,
            });
        }
        let workspace = self.dir().join("workspace");
        Ok(StepsPlan {
            steps: plans,
            workdir: match &steps.working_directory {
                Some(dir) => workspace.join(dir),
                None => workspace,
            },
            timeout: steps.timeout,
            output_file,
        })
    }

    /// An attempt ended: the job succeeds, is retried, fails or is cancelled.
    async fn ended(&mut self, i: usize, outcome: Outcome) -> Result<()> {
        self.job_cancel[i] = None;
        self.rolling_out[i] = false;
        match outcome {
            Outcome::Success(outputs, why) => {
                self.outputs[i] = outputs.clone();
                self.set(i, Status::Success, &why, Some(outputs)).await
            }
            Outcome::Failure(why) => {
                let retries = match self.pipeline.job(&self.run.jobs[i].name).map(|j| &j.work) {
                    Some(Work::Steps(s)) => s.retries,
                    _ => 0,
                };
                if self.attempts[i] <= retries && self.cancelling.is_none() {
                    let reason = format!(
                        "attempt {} failed: {why}; retrying (attempt {} of {})",
                        self.attempts[i],
                        self.attempts[i] + 1,
                        retries + 1
                    );
                    self.set(i, Status::Queued, &reason, None).await
                } else {
                    self.set(i, Status::Failure, &why, None).await
                }
            }
            Outcome::Cancelled(why) => self.set(i, Status::Cancelled, &why, None).await,
        }
    }

    async fn update(&mut self, i: usize, update: Update) -> Result<()> {
        match update {
            Update::Waiting(why) if self.statuses[i] == Status::InProgress => {
                self.set(i, Status::Waiting, &why, None).await
            }
            Update::RollingOut => {
                self.rolling_out[i] = true;
                if self.statuses[i] == Status::Waiting {
                    self.set(i, Status::InProgress, "the deployment is rolling out", None)
                        .await?;
                }
                Ok(())
            }
            Update::Waiting(_) => Ok(()),
        }
    }

    /// Cancels every job not finished, except a deploy job whose rollout is under way.
    async fn start_cancel(&mut self, reason: String) -> Result<()> {
        self.shared
            .note(self.run.id, &format!("cancelling: {reason}"))
            .await;
        let live: Vec<Live> = self
            .statuses
            .iter()
            .zip(&self.rolling_out)
            .map(|(&status, &rolling_out)| Live {
                status,
                rolling_out,
            })
            .collect();
        for i in schedule::to_cancel(&live) {
            match &self.job_cancel[i] {
                Some(cancel) => {
                    cancel.send_replace(true);
                }
                None => self.set(i, Status::Cancelled, &reason, None).await?,
            }
        }
        // A deploy job rolling out is told too: its deployment is not interrupted, but
        // the job says so in the log.
        for cancel in self.job_cancel.iter().flatten() {
            cancel.send_replace(true);
        }
        self.cancelling = Some(reason);
        Ok(())
    }

    /// Moves job `i` to `to`.
    async fn set(
        &mut self,
        i: usize,
        to: Status,
        reason: &str,
        outputs: Option<BTreeMap<String, String>>,
    ) -> Result<()> {
        let name = self.run.jobs[i].name.clone();
        self.shared
            .transition(
                self.run.id,
                Some(&name),
                self.statuses[i],
                to,
                reason,
                outputs,
            )
            .await?;
        self.statuses[i] = to;
        Ok(())
    }

    /// The run is `waiting` while only deployments waiting on their gates are left.
    async fn live_status(&mut self) -> Result<()> {
        if schedule::outcome(&self.statuses).is_some() {
            return Ok(());
        }
        let live = schedule::live_status(&self.statuses);
        if live != self.status {
            let reason = match live {
                Status::Waiting => "every job left waits for its deployment's gates",
                _ => "jobs are running",
            };
            self.shared
                .transition(self.run.id, None, self.status, live, reason, None)
                .await?;
            self.status = live;
        }
        Ok(())
    }

    async fn finish(&mut self, end: Status) -> Result<()> {
        let names = |status: Status| -> Vec<&str> {
            self.run
                .jobs
                .iter()
                .zip(&self.statuses)
                .filter(|(_, s)| **s == status)
                .map(|(j, _)| j.name.as_str())
                .collect()
        };
        let reason = match end {
            Status::Failure => format!("failed: {}", names(Status::Failure).join(", ")),
            Status::Cancelled => match &self.cancelling {
                Some(why) => why.clone(),
                None => format!("cancelled: {}", names(Status::Cancelled).join(", ")),
            },
            _ => {
                let skipped = names(Status::Skipped).len();
                if skipped == 0 {
                    "every job succeeded".to_owned()
                } else {
                    format!("succeeded ({skipped} job(s) skipped)")
                }
            }
        };
        // A cancel that came while the last jobs were finishing still ends the run so.
        let end = if self.cancelling.is_some() && end == Status::Success {
            Status::Cancelled
        } else {
            end
        };
        self.shared
            .transition(self.run.id, None, self.status, end, &reason, None)
            .await?;
        self.status = end;
        self.clean_up();
        Ok(())
    }

    /// The workspace and outputs go with the run; its log and outputs stay in the store.
    fn clean_up(&self) {
        if let Err(e) = std::fs::remove_dir_all(self.dir())
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(run = self.run.id, error = %e, "could not remove a run's workspace");
        }
    }
}

/// What job expressions read, from the run's jobs as they stand.
fn job_context<'v>(
    values: &'v Values,
    jobs: &'v [slipway_store::RunJob],
    outputs: &'v [BTreeMap<String, String>],
    statuses: &[Status],
    needs: Needs,
    environment: Option<&str>,
) -> JobContext<'v> {
    JobContext::new(
        values,
        jobs.iter()
            .zip(outputs)
            .zip(statuses.iter().copied())
            .map(|((j, o), s)| (j.name.as_str(), o, s)),
        needs,
        environment,
    )
}
