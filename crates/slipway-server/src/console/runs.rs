//! `GET /runs` (every pipeline run, filtered by pipeline and status, a page at a time,
//! newest first) and `GET /runs/{id}` (one run: its jobs in the order of their needs, its
//! log) with the Cancel form, which posts to `/runs/{id}/cancel`. The engine checks the
//! role again on post, as it does for the API's cancel.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use slipway_config::Role;
use slipway_core::Millis;
use slipway_engine::short_ref;
use slipway_pipeline::{Dag, Status};
use slipway_store::{JobKind, Run, RunId, RunJob, RunPageQuery, Trigger};

use super::board::words;
use super::deployment::{LOG_LINES, LogEntry};
use super::history::{Choice, PAGE_SIZE, PageLinks, choices, cursor, known, param, status_param};
use super::page::{self, Chrome, ConsoleError, When, path_id, render, see_other};
use super::session::{self, Form, SignedIn};
use crate::AppState;

const PATH: &str = "/runs";

/// Status names as the pages show them, and the tone each is shown in (the deployments'
/// tones: the style sheet knows no others).
fn status_text(s: Status) -> String {
    words(s.as_str())
}

fn status_tone(s: Status) -> &'static str {
    match s {
        Status::Success => "ok",
        Status::Failure => "bad",
        Status::Queued | Status::Waiting => "wait",
        Status::InProgress => "busy",
        Status::Cancelled | Status::Skipped => "none",
    }
}

/// How long from `start` to `end`, or to now while it goes on.
fn took(start: Option<Millis>, end: Option<Millis>, now: Millis) -> Option<String> {
    start.map(|s| page::duration(end.unwrap_or(now) - s))
}

/// A run as a page names it (a row of the list, its page's heading and facts).
struct Summary {
    id: RunId,
    pipeline: String,
    status: String,
    tone: &'static str,
    trigger: String,
    reason: String,
    commit: Option<String>,
    short_sha: Option<String>,
    git_ref: Option<String>,
    committed: Option<When>,
    created: When,
    started: Option<When>,
    finished: Option<When>,
    duration: Option<String>,
}

fn summary(r: &Run, now: Millis) -> Summary {
    Summary {
        id: r.id,
        pipeline: r.pipeline.clone(),
        status: status_text(r.status),
        tone: status_tone(r.status),
        trigger: match r.trigger {
            Trigger::Push => format!("push ({})", r.created_by),
            Trigger::Dispatch => format!("dispatched by {}", r.created_by),
        },
        reason: r.reason.clone(),
        short_sha: r
            .commit
            .as_deref()
            .map(|c| c.get(..7).unwrap_or(c).to_owned()),
        commit: r.commit.clone(),
        git_ref: r.git_ref.as_deref().map(|g| short_ref(g).to_owned()),
        committed: r.committed_at.map(|at| When::at(at, now)),
        created: When::at(r.created_at, now),
        started: r.started_at.map(|at| When::at(at, now)),
        finished: r.finished_at.map(|at| When::at(at, now)),
        duration: took(r.started_at, r.finished_at, now),
    }
}

#[derive(Template)]
#[template(path = "console/runs.html")]
struct RunsPage {
    chrome: Chrome,
    pipelines: Vec<Choice>,
    statuses: Vec<Choice>,
    rows: Vec<Summary>,
    total: i64,
    filtered: bool,
    pages: PageLinks,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    let q = Form::parse(raw.unwrap_or_default().as_bytes());
    let config = state.engine.config();
    let pipeline = known(
        param(&q, "pipeline")?,
        "pipeline",
        &mut config.pipelines.keys(),
        PATH,
    )?;
    let status = status_param(&q, &Status::ALL, Status::as_str, PATH)?;
    let cursor = cursor(&q, "run", PATH)?;
    let page = state
        .console
        .history
        .run_page(&RunPageQuery {
            pipeline: pipeline.map(str::to_owned),
            status,
            cursor,
            limit: PAGE_SIZE,
        })
        .await?;
    let mut filters: Vec<(&str, &str)> = Vec::new();
    filters.extend(pipeline.map(|p| ("pipeline", p)));
    filters.extend(status.map(|s| ("status", s.as_str())));
    let now = state.engine.now();
    let mut chrome = Chrome::new(
        "Pipeline runs",
        PATH,
        Some((&signed_in.actor, &signed_in.csrf)),
    );
    chrome.runs = Some("*".to_owned());
    let view = RunsPage {
        chrome,
        pipelines: choices(
            "any pipeline",
            config.pipelines.keys().map(|p| (p.as_str(), p.clone())),
            pipeline,
        ),
        statuses: choices(
            "any status",
            Status::ALL.iter().map(|s| (s.as_str(), status_text(*s))),
            status.map(Status::as_str),
        ),
        total: page.total,
        filtered: !filters.is_empty(),
        pages: PageLinks::new(
            PATH,
            &filters,
            cursor,
            (page.newer, page.older),
            (
                page.runs.first().map(|r| r.id),
                page.runs.last().map(|r| r.id),
            ),
        ),
        rows: page.runs.iter().map(|r| summary(r, now)).collect(),
    };
    Ok(render(StatusCode::OK, &view))
}

#[derive(Template)]
#[template(path = "console/run.html")]
struct RunPageView {
    chrome: Chrome,
    csrf: String,
    r: Summary,
    cancel: bool,
    inputs: Vec<(String, String)>,
    jobs: Vec<JobView>,
    log: Vec<LogEntry>,
    log_cut: bool,
}

struct JobView {
    name: String,
    kind: &'static str,
    needs: Vec<String>,
    status: String,
    tone: &'static str,
    attempt: u32,
    started: Option<When>,
    finished: Option<When>,
    duration: Option<String>,
    outputs: Vec<(String, String)>,
    deployment_id: Option<i64>,
    reason: String,
}

fn job_view(j: &RunJob, now: Millis) -> JobView {
    JobView {
        name: j.name.clone(),
        kind: j.kind.as_str(),
        needs: j.needs.clone(),
        status: status_text(j.status),
        tone: status_tone(j.status),
        attempt: j.attempt,
        started: j.started_at.map(|at| When::at(at, now)),
        finished: j.finished_at.map(|at| When::at(at, now)),
        duration: took(j.started_at, j.finished_at, now),
        outputs: j
            .outputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        deployment_id: j.deployment_id,
        reason: j.reason.clone(),
    }
}

/// The jobs in the order of their needs (each after every job it needs; otherwise the
/// pipeline's order). A graph that does not check out keeps the stored order.
fn in_dag_order(jobs: &[RunJob]) -> Vec<&RunJob> {
    match Dag::of(jobs.iter().map(|j| (j.name.as_str(), j.needs.as_slice()))) {
        Ok(dag) => dag.order().into_iter().map(|i| &jobs[i]).collect(),
        Err(_) => jobs.iter().collect(),
    }
}

fn parse_id(raw: &str) -> Result<RunId, ConsoleError> {
    path_id(raw, "run", "/runs/12")
}

async fn found(state: &AppState, id: RunId) -> Result<Run, ConsoleError> {
    state.pipelines.run(id).await.map_err(|e| {
        if e.kind() == slipway_engine::ErrorKind::NotFound {
            ConsoleError::not_found(format!(
                "There is no run {id}. The runs page lists every run there is."
            ))
            .back_to(PATH.to_owned())
        } else {
            e.into()
        }
    })
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(raw): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&raw)?;
    let r = found(&state, id).await?;
    let mut lines = state.pipelines.logs(id, None, 0, LOG_LINES + 1).await?;
    let log_cut = lines.len() > LOG_LINES as usize;
    lines.truncate(LOG_LINES as usize);
    let now = state.engine.now();
    let mut chrome = Chrome::new(
        format!("Run {id} of {}", r.pipeline),
        "",
        Some((&signed_in.actor, &signed_in.csrf)),
    );
    // A step's output grows between status changes.
    chrome.moving = r
        .jobs
        .iter()
        .any(|j| j.kind == JobKind::Steps && j.status == Status::InProgress);
    chrome.runs = Some(id.to_string());
    let view = RunPageView {
        chrome,
        csrf: signed_in.csrf.clone(),
        // The rule `Pipelines::cancel` applies, which the API's cancel goes through too.
        cancel: signed_in.actor.role >= Role::Deployer && !r.status.is_finished(),
        inputs: r
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        jobs: in_dag_order(&r.jobs)
            .into_iter()
            .map(|j| job_view(j, now))
            .collect(),
        log: lines
            .into_iter()
            .map(|l| {
                let source = match (l.job, l.stream.as_str()) {
                    (Some(job), "stderr") => format!("{job} (stderr)"),
                    (Some(job), _) => job,
                    (None, _) => "run".to_owned(),
                };
                LogEntry::new(l.at, source, l.message)
            })
            .collect(),
        log_cut,
        r: summary(&r, now),
    };
    Ok(render(StatusCode::OK, &view))
}

/// `POST /runs/{id}/cancel`: 303 back to the run's page, where its jobs end `cancelled`
/// shortly (a deploy job rolling out finishes first).
pub async fn cancel(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    session::verified(&signed_in, &headers, &body)?;
    let id = parse_id(&raw)?;
    state
        .pipelines
        .cancel(id, &signed_in.actor)
        .await
        .map_err(|e| {
            ConsoleError::from(e)
                .nothing_changed()
                .back_to(format!("/runs/{id}"))
        })?;
    Ok(see_other(&format!("/runs/{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, needs: &[&str]) -> RunJob {
        RunJob {
            name: name.into(),
            needs: needs.iter().map(|n| (*n).into()).collect(),
            kind: JobKind::Steps,
            status: Status::Queued,
            attempt: 0,
            started_at: None,
            finished_at: None,
            outputs: Default::default(),
            deployment_id: None,
            reason: String::new(),
        }
    }

    #[test]
    fn jobs_show_after_the_jobs_they_need() {
        let jobs = [
            job("deploy", &["test", "build"]),
            job("test", &["build"]),
            job("build", &[]),
            job("lint", &[]),
        ];
        let names: Vec<&str> = in_dag_order(&jobs)
            .iter()
            .map(|j| j.name.as_str())
            .collect();
        assert_eq!(names, ["build", "lint", "test", "deploy"]);
        let broken = [job("a", &["b"]), job("b", &["a"])];
        let names: Vec<&str> = in_dag_order(&broken)
            .iter()
            .map(|j| j.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"], "a cycle keeps the stored order");
        assert_eq!(took(Some(1_000), None, 43_000).as_deref(), Some("42 s"));
        assert_eq!(took(None, None, 43_000), None);
    }
}
