//! The pipeline handlers of `/api/v1` (docs/api.md#pipelines): runs started by hand or by
//! a push hook, listed, shown, cancelled, and their logs, as JSON or streamed as
//! server-sent events. Reading needs a viewer, starting and cancelling a deployer.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use slipway_api::ErrorBody;
use slipway_api::pipelines::{
    DispatchRun, JobKind as JobKindView, PushEvent, Run as RunView, RunJob as RunJobView, RunList,
    RunLogLine as RunLogLineView, RunLogLines, RunLogQuery, RunQuery, RunStatus, RunStream,
    RunTrigger,
};
use slipway_engine::{RunEvent, short_ref};
use slipway_pipeline::Status;
use slipway_store::{JobKind, Run, RunFilter, RunId, RunLogLine, Trigger};
use tokio::sync::broadcast;

use crate::AppState;
use crate::api::{ApiJson, check_commit, check_ref, invalid_status, limit, log_window, query_map};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::views::rfc3339;

/// Lines one page of a log answer holds, when the query does not say.
const DEFAULT_LOG_PAGE: u32 = 1000;

// === views ===

pub fn status(s: Status) -> RunStatus {
    match s {
        Status::Queued => RunStatus::Queued,
        Status::Waiting => RunStatus::Waiting,
        Status::InProgress => RunStatus::InProgress,
        Status::Success => RunStatus::Success,
        Status::Failure => RunStatus::Failure,
        Status::Cancelled => RunStatus::Cancelled,
        Status::Skipped => RunStatus::Skipped,
    }
}

pub fn run_view(r: Run) -> RunView {
    RunView {
        id: r.id,
        pipeline: r.pipeline,
        status: status(r.status),
        trigger: match r.trigger {
            Trigger::Push => RunTrigger::Push,
            Trigger::Dispatch => RunTrigger::Dispatch,
        },
        commit: r.commit,
        git_ref: r.git_ref.as_deref().map(|full| short_ref(full).to_owned()),
        committed_at: r.committed_at.map(rfc3339),
        inputs: r.inputs,
        created_by: r.created_by,
        created_at: rfc3339(r.created_at),
        started_at: r.started_at.map(rfc3339),
        finished_at: r.finished_at.map(rfc3339),
        reason: r.reason,
        jobs: r
            .jobs
            .into_iter()
            .map(|j| RunJobView {
                name: j.name,
                status: status(j.status),
                kind: match j.kind {
                    JobKind::Steps => JobKindView::Steps,
                    JobKind::Deploy => JobKindView::Deploy,
                },
                needs: j.needs,
                attempt: j.attempt,
                started_at: j.started_at.map(rfc3339),
                finished_at: j.finished_at.map(rfc3339),
                outputs: j.outputs,
                deployment_id: j.deployment_id,
                reason: j.reason,
            })
            .collect(),
    }
}

fn log_line(l: RunLogLine) -> RunLogLineView {
    RunLogLineView {
        seq: l.seq,
        at: rfc3339(l.at),
        job: l.job,
        stream: match l.stream.as_str() {
            "status" => RunStream::Status,
            "runner" => RunStream::Runner,
            "stdout" => RunStream::Stdout,
            "stderr" => RunStream::Stderr,
            _ => RunStream::Other,
        },
        message: l.message,
    }
}

// === queries ===

fn parse_run_id(raw: &str) -> Result<RunId, ApiError> {
    raw.parse()
        .ok()
        .filter(|id: &RunId| *id > 0)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_id",
                format!("run id must be a number, got `{raw}`"),
            )
        })
}

fn run_filter(
    q: &HashMap<String, String>,
    pipeline: Option<String>,
) -> Result<RunFilter, ApiError> {
    let status = q
        .get("status")
        .map(|s| {
            Status::parse(s)
                .ok_or_else(|| invalid_status(s, Status::ALL.iter().map(|s| s.as_str())))
        })
        .transpose()?;
    let limit = limit(q)?;
    Ok(RunFilter {
        pipeline: pipeline.or_else(|| q.get("pipeline").cloned()),
        status,
        limit,
    })
}

// === handlers ===

#[utoipa::path(post, path = "/api/v1/pipelines/{name}/runs", params(("name" = String, Path, description = "a pipeline")), request_body = Option<DispatchRun>,
    responses((status = 201, description = "the run, queued", body = RunView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such pipeline", body = ErrorBody), (status = 409, description = "the pipeline has no `on.dispatch`, or its repository cannot be read", body = ErrorBody), (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody)))]
pub async fn dispatch(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(name): Path<String>,
    req: axum::extract::Request,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let body: DispatchRun = crate::api::optional_body(req).await?;
    if let Some(git_ref) = &body.git_ref {
        check_ref(git_ref)?;
    }
    let r = state
        .pipelines
        .dispatch(&name, body.inputs, body.git_ref.as_deref(), &actor)
        .await?;
    Ok((StatusCode::CREATED, Json(run_view(r))))
}

#[utoipa::path(get, path = "/api/v1/pipelines/{name}/runs", params(("name" = String, Path, description = "a pipeline"), RunQuery),
    responses((status = 200, description = "newest first", body = RunList), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such pipeline", body = ErrorBody)))]
pub async fn pipeline_runs(
    State(state): State<AppState>,
    Auth(_): Auth,
    Path(name): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<RunList>, ApiError> {
    let filter = run_filter(&query_map(q)?, Some(name))?;
    list(&state, &filter).await
}

#[utoipa::path(get, path = "/api/v1/runs", params(RunQuery),
    responses((status = 200, description = "newest first", body = RunList), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such pipeline", body = ErrorBody)))]
pub async fn runs(
    State(state): State<AppState>,
    Auth(_): Auth,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<RunList>, ApiError> {
    let filter = run_filter(&query_map(q)?, None)?;
    list(&state, &filter).await
}

async fn list(state: &AppState, filter: &RunFilter) -> Result<Json<RunList>, ApiError> {
    let runs = state.pipelines.runs(filter).await?;
    Ok(Json(RunList {
        runs: runs.into_iter().map(run_view).collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}", params(("id" = i64, Path, minimum = 1, description = "a run id")),
    responses((status = 200, description = "the run and its jobs", body = RunView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such run", body = ErrorBody)))]
pub async fn get_run(
    State(state): State<AppState>,
    Auth(_): Auth,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(run_view(
        state.pipelines.run(parse_run_id(&id)?).await?,
    )))
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", params(("id" = i64, Path, minimum = 1, description = "a run id")),
    responses((status = 200, description = "the run, as it was when the cancel was asked; its jobs end `cancelled` shortly (a deploy job rolling out finishes first)", body = RunView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such run", body = ErrorBody), (status = 409, description = "the run has ended", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let r = state.pipelines.cancel(parse_run_id(&id)?, &actor).await?;
    Ok(Json(run_view(r)))
}

#[utoipa::path(post, path = "/api/v1/triggers/push", request_body = PushEvent,
    responses((status = 200, description = "the runs this push started: none when no pipeline watches that repository and branch, or each already ran this commit", body = RunList), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody)))]
pub async fn push(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<PushEvent>,
) -> Result<Json<RunList>, ApiError> {
    check_ref(&body.git_ref)?;
    check_commit(&body.sha)?;
    if body.repository.trim().is_empty() || body.repository.len() > 4096 {
        return Err(ApiError::bad_request(
            "invalid_repository",
            "repository must be a path or URL of 1 to 4096 characters",
        ));
    }
    let runs = state
        .pipelines
        .push(&body.repository, &body.git_ref, &body.sha, &actor)
        .await?;
    Ok(Json(RunList {
        runs: runs.into_iter().map(run_view).collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/logs", params(("id" = i64, Path, minimum = 1, description = "a run id"), RunLogQuery),
    responses((status = 200, description = "oldest first; with `Accept: text/event-stream`, server-sent events `log` (data: a RunLogLine) as lines come, then one `end` (data: the Run) when the run has ended", body = RunLogLines), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such run or job", body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    Auth(_): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let id = parse_run_id(&id)?;
    let q = query_map(q)?;
    let (after, limit) = log_window(&q)?;
    let job = q.get("job").cloned();
    // Checks the run and the job exist before anything is streamed.
    let first = state
        .pipelines
        .logs(id, job.as_deref(), after, limit)
        .await?;
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !streaming {
        return Ok(Json(RunLogLines {
            lines: first.into_iter().map(log_line).collect(),
        })
        .into_response());
    }
    Ok(stream_logs(state, id, job, after).into_response())
}

/// What a log stream holds between two events.
struct Follow {
    state: AppState,
    events: broadcast::Receiver<RunEvent>,
    run: RunId,
    job: Option<String>,
    /// The last line sent.
    after: i64,
    /// Lines read from the store, not sent yet.
    backlog: std::collections::VecDeque<RunLogLine>,
    ended: bool,
}

/// The log as server-sent events: what is stored after `after`, then each new line as it
/// is stored, then `end` with the run once it has ended.
fn stream_logs(
    state: AppState,
    run: RunId,
    job: Option<String>,
    after: i64,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribed before the first read, so nothing stored meanwhile is missed.
    let follow = Follow {
        events: state.pipelines.subscribe(),
        state,
        run,
        job,
        after,
        backlog: Default::default(),
        ended: false,
    };
    let hello = futures_util::stream::once(async { Ok(Event::default().comment("connected")) });
    let events = futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            if let Some(line) = f.backlog.pop_front() {
                f.after = line.seq;
                let data = serde_json::to_string(&log_line(line)).unwrap_or_default();
                return Some((Ok(Event::default().event("log").data(data)), f));
            }
            if f.ended {
                return None;
            }
            // Whether the run has ended, then what is stored: its last status line is
            // written with its end, so an ended run's log is whole once read after.
            let finished = match f.state.pipelines.run(f.run).await {
                Ok(r) => r.status.is_finished().then_some(r),
                Err(_) => return None,
            };
            let stored = f
                .state
                .pipelines
                .logs(f.run, f.job.as_deref(), f.after, DEFAULT_LOG_PAGE)
                .await
                .unwrap_or_default();
            if !stored.is_empty() {
                f.backlog.extend(stored);
                continue;
            }
            if let Some(r) = finished {
                f.ended = true;
                let data = serde_json::to_string(&run_view(r)).unwrap_or_default();
                return Some((Ok(Event::default().event("end").data(data)), f));
            }
            // Until something happens to this run.
            loop {
                let woke = tokio::select! {
                    event = f.events.recv() => event,
                    () = f.state.engine.stopping() => return None,
                };
                match woke {
                    Ok(RunEvent::Log { run, .. } | RunEvent::Status { run, .. })
                        if run == f.run =>
                    {
                        break;
                    }
                    Ok(_) => {}
                    // Missed some: the store has them.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Sse::new(futures_util::StreamExt::chain(hello, events)).keep_alive(KeepAlive::default())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(dispatch, pipeline_runs, runs, get_run, cancel, push, logs),
    components(schemas(
        RunView,
        RunJobView,
        RunList,
        RunLogLineView,
        RunLogLines,
        DispatchRun,
        PushEvent
    ))
)]
pub struct PipelinesDoc;
