//! Read commands: status, history, logs. Each prints a table or, with `--json`, the API's object.

use std::time::SystemTime;

use crate::client::{Client, Deployment, EnvStatus, LogLine, StatusEntry};
use crate::commands::follow::{self, FollowOptions, Observer};
use crate::commands::print_json;
use crate::error::Result;
use crate::output::{self, Table};

pub async fn status(
    client: &Client,
    app: Option<String>,
    env: Option<String>,
    json: bool,
) -> Result<u8> {
    let fetched = client.status(app.as_deref(), env.as_deref()).await?;
    if json {
        print_json(&fetched.raw);
    } else {
        out!(
            "{}",
            status_table(&fetched.data.environments, SystemTime::now())
        );
    }
    Ok(0)
}

pub fn status_table(envs: &[EnvStatus], now: SystemTime) -> String {
    let mut table = Table::new(&[
        "app",
        "environment",
        "current",
        "since",
        "traffic",
        "in progress",
        "waiting",
    ]);
    for e in envs {
        let (current, since) = match &e.current {
            Some(c) => (
                match c.deployment_id {
                    Some(id) => format!("{} (#{id})", c.version),
                    None => c.version.clone(),
                },
                c.since
                    .as_deref()
                    .map_or("-".into(), |s| output::when(s, now)),
            ),
            None => ("-".into(), "-".into()),
        };
        let in_progress = e.in_progress.as_ref().map_or("-".into(), |d| {
            let phase = d.phase.as_deref().unwrap_or("");
            format!("#{} {} {phase}", d.id, d.version)
                .trim_end()
                .to_string()
        });
        let waiting = if e.waiting.is_empty() {
            "-".into()
        } else {
            e.waiting
                .iter()
                .map(|d| format!("#{} {}", d.id, d.version))
                .collect::<Vec<_>>()
                .join(", ")
        };
        table.row(vec![
            e.app.clone(),
            e.environment.clone(),
            current,
            since,
            output::traffic(&e.traffic),
            in_progress,
            waiting,
        ]);
    }
    table.render()
}

pub async fn history(client: &Client, app: &str, env: &str, limit: u32, json: bool) -> Result<u8> {
    let fetched = client.deployments(app, env, limit).await?;
    if json {
        print_json(&fetched.raw);
    } else {
        out!(
            "{}",
            history_table(&fetched.data.deployments, SystemTime::now())
        );
    }
    Ok(0)
}

fn history_table(deployments: &[Deployment], now: SystemTime) -> String {
    let mut table = Table::new(&[
        "id",
        "version",
        "kind",
        "status",
        "created by",
        "created at",
        "last reason",
    ]);
    for d in deployments {
        table.row(vec![
            d.id.to_string(),
            d.version.clone(),
            d.kind.clone(),
            d.status.to_string(),
            d.created_by.clone(),
            output::when(&d.created_at, now),
            d.last_reason().to_string(),
        ]);
    }
    table.render()
}

pub async fn logs(client: &Client, id: i64, follow_it: bool, json: bool) -> Result<u8> {
    if !follow_it {
        if json {
            print_json(&client.logs(id, None).await?.raw);
            return Ok(0);
        }
        let d = client.deployment(id).await?.data;
        let lines = client.logs(id, None).await?.data;
        follow::report_in_order(&d, &d.statuses, &lines, &mut Printer { json });
        return Ok(0);
    }
    let opts = FollowOptions {
        with_logs: true,
        follow_waits: true,
        shown: 0,
    };
    let last = follow::follow(client, id, &opts, &mut Printer { json }).await?;
    if !json {
        outln!("{}", follow::summary(&last.data));
    }
    Ok(0)
}

/// Prints lines as they come: plain, or one JSON object per log line (`--json`).
struct Printer {
    json: bool,
}

impl Observer for Printer {
    fn status(&mut self, _d: &Deployment, change: &StatusEntry) {
        if !self.json {
            outln!("{}", follow::status_line(change));
        }
    }

    fn log(&mut self, _d: &Deployment, line: &LogLine) {
        if self.json {
            let obj = serde_json::json!({
                "seq": line.seq, "at": line.at, "source": line.source, "message": line.message,
            });
            outln!("{obj}");
        } else {
            outln!("{}", follow::log_line(line));
        }
    }
}
