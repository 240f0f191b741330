//! `slipway run`, `slipway runs [PIPELINE]`, `runs show|logs|cancel` and `slipway trigger`:
//! pipeline runs through `/api/v1/pipelines/…`, `/api/v1/runs/…` and
//! `/api/v1/triggers/push`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use slipway_api::pipelines::{
    DispatchRun, PushEvent, Run, RunList, RunLogLine, RunLogLines, RunStatus, RunStream,
};

use crate::client::{Client, segment};
use crate::commands::print_json;
use crate::error::{Error, Result};
use crate::output::{self, Table};

/// How often a followed run is looked at.
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Args)]
pub struct RunArgs {
    pub pipeline: String,
    /// A value of one of the pipeline's `on.dispatch.inputs`; repeat for each.
    #[arg(long = "input", value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// The branch or tag to run (default: the branch the repository's HEAD names).
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// Print the run's log until it ends (or only waits on approvals); exit 1 unless it
    /// succeeded.
    #[arg(long)]
    pub wait: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    /// Only this pipeline's runs.
    pub pipeline: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: its jobs as a DAG, with status and duration.
    Show {
        #[arg(value_name = "ID")]
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// A run's log (secrets masked).
    Logs {
        #[arg(value_name = "ID")]
        id: i64,
        /// Only this job's lines.
        #[arg(long)]
        job: Option<String>,
        /// Keep printing new lines until the run ends.
        #[arg(long, short)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run (a deploy job rolling out finishes first).
    Cancel {
        #[arg(value_name = "ID")]
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The repository pushed to: a path (as in a `post-receive` hook: "$PWD") or URL.
    #[arg(long, value_name = "PATH")]
    pub repository: String,
    /// The branch pushed, as `main` or `refs/heads/main`.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: String,
    /// The commit it now points at.
    #[arg(long, value_name = "SHA")]
    pub sha: String,
    #[arg(long)]
    pub json: bool,
}

fn typed<T: DeserializeOwned>(raw: &Value) -> Result<T> {
    T::deserialize(raw)
        .map_err(|e| Error::Failed(format!("unexpected answer from the server: {e}")))
}

fn to_body(value: &impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Failed(e.to_string()))
}

async fn get_run(client: &Client, id: i64) -> Result<(Value, Run)> {
    let raw = client
        .send(Method::GET, &format!("api/v1/runs/{id}"), &(), None)
        .await?;
    let run = typed(&raw)?;
    Ok((raw, run))
}

async fn log_page(
    client: &Client,
    id: i64,
    job: Option<&str>,
    after: i64,
) -> Result<Vec<RunLogLine>> {
    let mut query = vec![("after", after.to_string())];
    if let Some(job) = job {
        query.push(("job", job.to_owned()));
    }
    let raw = client
        .send(Method::GET, &format!("api/v1/runs/{id}/logs"), &query, None)
        .await?;
    Ok(typed::<RunLogLines>(&raw)?.lines)
}

// === slipway run ===

pub async fn run(client: &Client, args: RunArgs) -> Result<u8> {
    let mut inputs = BTreeMap::new();
    for pair in &args.inputs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::Usage(format!(
                "--input {pair:?}: expected KEY=VALUE"
            )));
        };
        inputs.insert(key.to_owned(), value.to_owned());
    }
    let body = to_body(&DispatchRun {
        inputs,
        git_ref: args.git_ref,
    })?;
    let path = format!("api/v1/pipelines/{}/runs", segment(&args.pipeline));
    let raw = client.send(Method::POST, &path, &(), Some(&body)).await?;
    let created: Run = typed(&raw)?;
    let line = format!(
        "run {} of {} created{}",
        created.id,
        created.pipeline,
        commit_of(&created)
    );
    if !args.wait {
        if args.json {
            print_json(&raw);
        } else {
            outln!("{line}");
        }
        return Ok(0);
    }
    errln!("{line}");
    let (raw, last) = follow(client, created.id, None, true, args.json).await?;
    if args.json {
        print_json(&raw);
    }
    Ok(ended_code(&last))
}

/// ` at 3f2a9c1 (main)` when the run has a commit.
fn commit_of(run: &Run) -> String {
    match (&run.commit, &run.git_ref) {
        (Some(sha), Some(r)) => format!(" at {} ({r})", short(sha)),
        (Some(sha), None) => format!(" at {}", short(sha)),
        _ => String::new(),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// 0 for a run that succeeded or waits on approvals, 1 otherwise.
fn ended_code(run: &Run) -> u8 {
    match run.status {
        RunStatus::Success | RunStatus::Waiting => 0,
        _ => 1,
    }
}

/// Prints the run's log as it grows until the run ends (or, with `stop_at_wait`, only
/// waits on its deployments' gates); returns the run as it was then. With `json` the
/// lines go to standard error, which keeps standard output for the run's object.
async fn follow(
    client: &Client,
    id: i64,
    job: Option<&str>,
    stop_at_wait: bool,
    json: bool,
) -> Result<(Value, Run)> {
    let mut after = 0;
    loop {
        // The run first: a run seen ended has all its lines stored already.
        let (raw, run) = get_run(client, id).await?;
        let lines = log_page(client, id, job, after).await?;
        for line in &lines {
            let text = log_text(line);
            if json {
                errln!("{text}");
            } else {
                outln!("{text}");
            }
            after = line.seq;
        }
        if !lines.is_empty() {
            continue;
        }
        if run.status.is_finished() || (stop_at_wait && run.status == RunStatus::Waiting) {
            if run.status == RunStatus::Waiting {
                errln!("run {id} waits: {}", run.reason);
            }
            return Ok((raw, run));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn log_text(line: &RunLogLine) -> String {
    let job = line.job.as_deref().unwrap_or("run");
    let marker = match line.stream {
        RunStream::Stderr => "!",
        RunStream::Status | RunStream::Runner => "·",
        RunStream::Stdout | RunStream::Other => "|",
    };
    format!(
        "{} {job} {marker} {}",
        output::time_of_day(&line.at),
        line.message
    )
}

// === slipway runs ===

pub async fn runs(client: &Client, args: RunsArgs) -> Result<u8> {
    match args.command {
        Some(RunsCommand::Show { id, json }) => show(client, id, json).await,
        Some(RunsCommand::Logs {
            id,
            job,
            follow: keep,
            json,
        }) => logs(client, id, job.as_deref(), keep, json).await,
        Some(RunsCommand::Cancel { id, json }) => {
            let raw = client
                .send(Method::POST, &format!("api/v1/runs/{id}/cancel"), &(), None)
                .await?;
            if json {
                print_json(&raw);
            } else {
                outln!(
                    "run {id}: cancel asked; its jobs are cancelled (a deploy job rolling out finishes first)"
                );
            }
            Ok(0)
        }
        None => list(client, args.pipeline.as_deref(), args.limit, args.json).await,
    }
}

async fn list(client: &Client, pipeline: Option<&str>, limit: u32, json: bool) -> Result<u8> {
    let query = [("limit", limit.to_string())];
    let path = match pipeline {
        Some(p) => format!("api/v1/pipelines/{}/runs", segment(p)),
        None => "api/v1/runs".to_owned(),
    };
    let raw = client.send(Method::GET, &path, &query, None).await?;
    if json {
        print_json(&raw);
        return Ok(0);
    }
    let list: RunList = typed(&raw)?;
    if list.runs.is_empty() {
        errln!("no runs yet");
        return Ok(0);
    }
    let now = SystemTime::now();
    let mut table = Table::new(&[
        "id", "pipeline", "status", "trigger", "commit", "created", "duration", "reason",
    ]);
    for r in &list.runs {
        table.row(vec![
            r.id.to_string(),
            r.pipeline.clone(),
            r.status.to_string(),
            format!("{:?}", r.trigger).to_lowercase(),
            commit_of(r).trim_start_matches(" at ").to_owned(),
            output::when(&r.created_at, now),
            duration(r.started_at.as_deref(), r.finished_at.as_deref(), now),
            r.reason.clone(),
        ]);
    }
    out!("{}", table.render());
    Ok(0)
}

async fn show(client: &Client, id: i64, json: bool) -> Result<u8> {
    let (raw, run) = get_run(client, id).await?;
    if json {
        print_json(&raw);
        return Ok(0);
    }
    out!("{}", dag_table(&run, SystemTime::now()));
    Ok(0)
}

/// The run's heading, then its jobs in the pipeline's order with what each needs, so the
/// DAG reads top to bottom.
fn dag_table(run: &Run, now: SystemTime) -> String {
    let mut out = format!(
        "run {} · {} · {}{} · {}\n  {}\n",
        run.id,
        run.pipeline,
        run.status,
        commit_of(run),
        duration(run.started_at.as_deref(), run.finished_at.as_deref(), now),
        run.reason
    );
    let mut table = Table::new(&["job", "status", "duration", "needs", "deployment", "reason"]);
    for j in &run.jobs {
        let attempt = if j.attempt > 1 {
            format!(" (attempt {})", j.attempt)
        } else {
            String::new()
        };
        table.row(vec![
            format!("  {}", j.name),
            format!("{}{attempt}", j.status),
            duration(j.started_at.as_deref(), j.finished_at.as_deref(), now),
            if j.needs.is_empty() {
                "-".to_owned()
            } else {
                j.needs.join(", ")
            },
            j.deployment_id.map_or("-".to_owned(), |d| format!("#{d}")),
            j.reason.clone(),
        ]);
    }
    out.push_str(&table.render());
    out
}

/// From start to end (or to now while it runs): `850ms`, `12.3s`, `4m05s`; `-` before
/// it started.
fn duration(started: Option<&str>, finished: Option<&str>, now: SystemTime) -> String {
    let Some(start) = started.and_then(output::parse_time) else {
        return "-".to_owned();
    };
    let end = finished.and_then(output::parse_time).unwrap_or(now);
    let d = end.duration_since(start).unwrap_or_default();
    let ms = d.as_millis();
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", d.as_secs_f64()),
        _ => format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60),
    }
}

async fn logs(client: &Client, id: i64, job: Option<&str>, keep: bool, json: bool) -> Result<u8> {
    if keep {
        let (_, last) = follow(client, id, job, false, false).await?;
        return Ok(ended_code(&last));
    }
    if json {
        let mut query = vec![("limit", "10000".to_owned())];
        if let Some(job) = job {
            query.push(("job", job.to_owned()));
        }
        let raw = client
            .send(Method::GET, &format!("api/v1/runs/{id}/logs"), &query, None)
            .await?;
        print_json(&raw);
        return Ok(0);
    }
    let mut after = 0;
    loop {
        let lines = log_page(client, id, job, after).await?;
        let Some(last) = lines.last() else {
            return Ok(0);
        };
        after = last.seq;
        for line in &lines {
            outln!("{}", log_text(line));
        }
    }
}

// === slipway trigger ===

pub async fn trigger(client: &Client, args: TriggerArgs) -> Result<u8> {
    // A hook runs on the server's machine: the path the server compares is where the
    // repository really is.
    let repository = std::fs::canonicalize(&args.repository)
        .map(|p| p.display().to_string())
        .unwrap_or(args.repository);
    let body = to_body(&PushEvent {
        repository: repository.clone(),
        git_ref: args.git_ref.clone(),
        sha: args.sha,
    })?;
    let raw = client
        .send(Method::POST, "api/v1/triggers/push", &(), Some(&body))
        .await?;
    if args.json {
        print_json(&raw);
        return Ok(0);
    }
    let list: RunList = typed(&raw)?;
    if list.runs.is_empty() {
        errln!(
            "no run started: no pipeline watches {} of {repository}, or it already ran this commit",
            args.git_ref
        );
    }
    for r in &list.runs {
        outln!("run {} of {} created{}", r.id, r.pipeline, commit_of(r));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        let now = SystemTime::now();
        let d = |a: &str, b: &str| duration(Some(a), Some(b), now);
        assert_eq!(
            d("2026-01-01T10:00:00.000Z", "2026-01-01T10:00:00.850Z"),
            "850ms"
        );
        assert_eq!(
            d("2026-01-01T10:00:00.000Z", "2026-01-01T10:00:12.340Z"),
            "12.3s"
        );
        assert_eq!(
            d("2026-01-01T10:00:00.000Z", "2026-01-01T10:04:05.000Z"),
            "4m05s"
        );
        assert_eq!(duration(None, None, now), "-");
    }
}
