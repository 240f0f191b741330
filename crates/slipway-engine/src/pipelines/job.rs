//! One attempt of one job, as a task of its own: the steps of a job run one after the
//! other as shell commands (own process group, streamed output, the job's timeout across
//! them, `$SLIPWAY_OUTPUT` read at the end); a deploy job creates its deployment through
//! the engine's commands and follows it to its end. The run's task hands each attempt
//! a plan with every expression already rendered, and decides what its outcome means.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use slipway_core::{DeploymentId, Masker, Status as DeploymentStatus};
use slipway_drivers::{Outcome as ShellOutcome, ShellCommand, Stream, run_shell};
use slipway_store::RunId;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Shared;
use crate::{Actor, DeployRequest};

/// The most of `$SLIPWAY_OUTPUT` read.
const MAX_OUTPUT_BYTES: u64 = 1024 * 1024;
/// How often a deployment is looked at when no event about it arrives.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Success(BTreeMap<String, String>, String),
    Failure(String),
    Cancelled(String),
}

/// What a deploy job tells the run while it follows its deployment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Update {
    /// The deployment waits on its gates.
    Waiting(String),
    /// Its rollout is under way: it is never interrupted.
    RollingOut,
}

/// One step, rendered.
pub(crate) struct StepPlan {
    pub label: String,
    pub command: String,
    pub env: BTreeMap<String, String>,
}

pub(crate) struct StepsPlan {
    pub steps: Vec<StepPlan>,
    pub workdir: PathBuf,
    pub timeout: Duration,
    pub output_file: PathBuf,
}

pub(crate) struct DeployPlan {
    pub request: DeployRequest,
    /// The deployment an earlier server created for this job, to follow again.
    pub existing: Option<DeploymentId>,
    pub actor: Actor,
}

/// Where an attempt writes, and what stops it.
pub(crate) struct Attempt {
    pub shared: Arc<Shared>,
    pub run: RunId,
    pub job: String,
    pub masker: Arc<Masker>,
    /// Becomes true when the run is cancelled.
    pub cancel: watch::Receiver<bool>,
}

impl Attempt {
    async fn log(&self, stream: &str, message: &str) {
        self.shared
            .log(
                self.run,
                Some(&self.job),
                stream,
                message,
                Some(&self.masker),
            )
            .await;
    }

    async fn cancelled(&mut self) {
        let _ = self.cancel.wait_for(|c| *c).await;
    }
}

// === steps ===

pub(crate) async fn run_steps(attempt: Attempt, plan: StepsPlan) -> Outcome {
    if let Err(e) =
        std::fs::create_dir_all(&plan.workdir).and_then(|()| std::fs::write(&plan.output_file, b""))
    {
        return Outcome::Failure(format!("cannot prepare the job's directory: {e}"));
    }
    let deadline = Instant::now() + plan.timeout;
    let count = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return timed_out(plan.timeout);
        }
        attempt
            .log("runner", &format!("step {}/{count}: {}", i + 1, step.label))
            .await;
        let mut cmd = ShellCommand::new(step.command.clone(), left);
        cmd.env = step.env.clone();
        cmd.workdir = Some(plan.workdir.clone());
        // The runner cannot wait for the store; a channel lets lines be stored as they
        // come while the step still runs.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let shell = run_shell(&cmd, move |line| {
            let _ = tx.send(line);
        });
        let store = async {
            let mut last = None;
            while let Some(line) = rx.recv().await {
                let stream = match line.stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                    Stream::Runner => "runner",
                };
                attempt.log(stream, &line.text).await;
                if line.stream != Stream::Runner {
                    last = Some(line.text);
                }
            }
            last
        };
        let both = async { tokio::join!(shell, store) };
        let mut cancel = attempt.cancel.clone();
        // Dropping the step (a cancel) ends its whole process group.
        let (ran, last) = tokio::select! {
            both = both => both,
            _ = cancel.wait_for(|c| *c) => {
                return Outcome::Cancelled("cancelled with the run; its processes were ended".to_owned());
            }
        };
        match ran.outcome {
            ShellOutcome::Exited(_) if ran.outcome.success() => {}
            // The step's own timeout is what is left of the job's.
            ShellOutcome::TimedOut(_) => return timed_out(plan.timeout),
            other => {
                let last = last
                    .map(|l| format!(": {}", attempt.masker.mask(&l)))
                    .unwrap_or_default();
                return Outcome::Failure(format!("step {}/{count} {other}{last}", i + 1));
            }
        }
    }
    match read_outputs(&plan.output_file) {
        Ok(outputs) => {
            let outputs = outputs
                .into_iter()
                .map(|(k, v)| (k, attempt.masker.mask(&v).into_owned()))
                .collect();
            Outcome::Success(outputs, format!("{count} step(s) succeeded"))
        }
        Err(e) => Outcome::Failure(e),
    }
}

fn timed_out(timeout: Duration) -> Outcome {
    Outcome::Failure(format!(
        "timed out after {} (the job's timeout); its processes were ended",
        slipway_core::civil::format_duration(timeout)
    ))
}

fn read_outputs(path: &std::path::Path) -> Result<BTreeMap<String, String>, String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_OUTPUT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read $SLIPWAY_OUTPUT: {e}"))?;
    if bytes.len() as u64 > MAX_OUTPUT_BYTES {
        return Err(format!(
            "$SLIPWAY_OUTPUT is larger than {} MiB",
            MAX_OUTPUT_BYTES >> 20
        ));
    }
    slipway_pipeline::outputs::parse(&String::from_utf8_lossy(&bytes)).map_err(|e| e.to_string())
}

// === deploy ===

pub(crate) async fn run_deploy(
    mut attempt: Attempt,
    plan: DeployPlan,
    updates: mpsc::UnboundedSender<Update>,
) -> Outcome {
    let engine = attempt.shared.engine.clone();
    // Subscribed before the deployment exists, so no change of it is missed.
    let mut events = engine.subscribe();
    let id = match plan.existing {
        Some(id) => {
            attempt
                .log("runner", &format!("following deployment {id} again"))
                .await;
            id
        }
        None => {
            let req = &plan.request;
            match engine.deploy(req.clone(), &plan.actor).await {
                Ok(d) => {
                    attempt
                        .log(
                            "runner",
                            &format!(
                                "deployment {}: {} {} to {}",
                                d.id, req.app, req.version, req.environment
                            ),
                        )
                        .await;
                    d.id
                }
                Err(e) => {
                    if let crate::Error::Refused {
                        deployment_id: Some(id),
                        ..
                    } = &e
                    {
                        let _ = attempt
                            .shared
                            .store
                            .set_job_deployment(attempt.run, &attempt.job, *id)
                            .await;
                    }
                    return Outcome::Failure(format!("the deployment was not created: {e}"));
                }
            }
        }
    };
    if let Err(e) = attempt
        .shared
        .store
        .set_job_deployment(attempt.run, &attempt.job, id)
        .await
    {
        return Outcome::Failure(format!("cannot record deployment {id}: {e}"));
    }
    let mut told: Option<DeploymentStatus> = None;
    let mut cancel_asked = false;
    loop {
        let d = match engine.deployment(id).await {
            Ok(d) => d,
            Err(e) => return Outcome::Failure(format!("cannot read deployment {id}: {e}")),
        };
        let reason = d
            .statuses
            .last()
            .map(|s| s.reason.clone())
            .unwrap_or_default();
        match d.status {
            DeploymentStatus::Success | DeploymentStatus::Inactive => {
                let outputs = BTreeMap::from([
                    ("deployment_id".to_owned(), id.to_string()),
                    ("version".to_owned(), d.release.version.clone()),
                ]);
                return Outcome::Success(outputs, format!("deployment {id} succeeded"));
            }
            DeploymentStatus::Cancelled => {
                return Outcome::Cancelled(format!("deployment {id} was cancelled: {reason}"));
            }
            s if s.is_finished() => {
                return Outcome::Failure(format!("deployment {id} ended {s}: {reason}"));
            }
            s if told != Some(s) => {
                told = Some(s);
                match s {
                    DeploymentStatus::Waiting => {
                        let _ = updates.send(Update::Waiting(format!(
                            "deployment {id} is waiting: {reason}"
                        )));
                    }
                    DeploymentStatus::InProgress => {
                        let _ = updates.send(Update::RollingOut);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        tokio::select! {
            event = events.recv() => {
                // Any event (or a lag) is a reason to look again; a closed stream (the
                // engine is going away) leaves the poll.
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = event {
                    tokio::time::sleep(FOLLOW_POLL).await;
                }
            }
            () = tokio::time::sleep(FOLLOW_POLL) => {}
            () = attempt.cancelled(), if !cancel_asked => {
                cancel_asked = true;
                if d.status == DeploymentStatus::InProgress {
                    attempt.log("runner", &format!("deployment {id} is rolling out; it is not interrupted and the run ends when it does")).await;
                } else if let Err(e) = engine.cancel(id, &plan.actor).await {
                    attempt.log("runner", &format!("deployment {id} was not cancelled: {e}")).await;
                }
            }
        }
    }
}
