//! Read commands: status, history, logs. Each prints a table or, with `--json`, the API's object.

use std::time::{Duration, SystemTime};

use slipway_api::WatchState;

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
        "watch",
    ]);
    for e in envs {
        let (current, since) = match &e.current {
            Some(c) => (
                format!("{} (#{})", c.version, c.deployment_id),
                output::when(&c.since, now),
            ),
            None => ("-".into(), "-".into()),
        };
        let in_progress = e.in_progress.as_ref().map_or("-".into(), |d| {
            let cell = format!("#{} {} {}", d.id, d.version, d.phase.as_str());
            match &d.analysis {
                Some(verdict) => format!("{cell} ({verdict})"),
                None => cell,
            }
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
            watch_cell(e),
        ]);
    }
    table.render()
}

/// `v2 under watch, 4m 12s left`; once over, how it ended, while that release is current
/// (or when it failed: the rollback that followed is current then).
fn watch_cell(e: &EnvStatus) -> String {
    let Some(w) = &e.watch else {
        return "-".into();
    };
    let current = e.current.as_ref().map(|c| c.deployment_id);
    match w.state {
        WatchState::Watching => {
            let left = Duration::from_secs(w.left_ms.div_ceil(1000));
            format!(
                "{} under watch, {} left",
                w.version,
                humantime::format_duration(left)
            )
        }
        WatchState::Failed => format!("{} failed its watch", w.version),
        state if current == Some(w.deployment_id) => {
            format!("{} watch {}", w.version, state.as_str())
        }
        _ => "-".into(),
    }
}

/// What a deployment did to the schema: `up`, and what became of its `down`.
fn migration_cell(d: &Deployment) -> String {
    let Some(m) = &d.migration else {
        return "-".into();
    };
    let up = if m.reversible {
        "up"
    } else {
        "up (irreversible)"
    };
    match &m.undo {
        None => up.to_string(),
        Some(u) => format!("{up}, down {} by #{}", u.state.as_str(), u.by_deployment),
    }
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
        "migration",
        "last reason",
    ]);
    for d in deployments {
        table.row(vec![
            d.id.to_string(),
            d.version.clone(),
            d.kind.as_str().to_string(),
            d.status.to_string(),
            d.created_by.clone(),
            output::when(&d.created_at, now),
            migration_cell(d),
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
        follow_waits: true,
        shown: 0,
    };
    let followed = follow::follow(client, id, &opts, &mut Printer { json }).await?;
    if !json {
        outln!("{}", follow::summary(&followed.last.data, followed.stand));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_a_canarys_split_and_its_latest_verdict() {
        let envs: Vec<EnvStatus> = serde_json::from_value(serde_json::json!([{
            "app": "web", "environment": "production",
            "current": {"version": "v1", "deployment_id": 4, "since": "2026-11-24T10:00:00.000Z"},
            "traffic": [
                {"version": "v1", "weight": 90.0, "requests": 900, "errors": 0, "p99_ms": 2.0},
                {"version": "v2", "weight": 10.0, "requests": 100, "errors": 1, "p99_ms": 3.0}
            ],
            "kept": [], "instances": [], "waiting": []
        }]))
        .unwrap();
        let mut envs = envs;
        envs[0].in_progress = Some(crate::client::test_deployment(serde_json::json!({
            "id": 5, "version": "v2", "phase": "shifting",
            "analysis": {"kind": "pass", "text": "pass: 100 requests, 1 errors, p99 3ms"}
        })));
        let now = output::parse_time("2026-11-24T10:05:00.000Z").unwrap();
        let table = status_table(&envs, now);
        let row = table.lines().nth(1).unwrap();
        assert!(row.contains("v1 90% · v2 10%"), "{table}");
        assert!(
            row.contains("#5 v2 shifting (pass: 100 requests, 1 errors, p99 3ms)"),
            "{table}"
        );
    }

    #[test]
    fn status_shows_a_release_under_watch_and_how_long_is_left() {
        let mut envs: Vec<EnvStatus> = serde_json::from_value(serde_json::json!([{
            "app": "web", "environment": "production",
            "current": {"version": "v2", "deployment_id": 5, "since": "2026-11-24T10:00:00.000Z"},
            "traffic": [], "kept": [], "instances": [], "waiting": [],
            "watch": {"deployment_id": 5, "version": "v2", "state": "watching",
                      "started_at": "2026-11-24T10:00:00.000Z", "ends_at": "2026-11-24T10:05:00.000Z",
                      "left_ms": 251_200, "ended_at": null, "reason": null}
        }]))
        .unwrap();
        let now = output::parse_time("2026-11-24T10:00:49.000Z").unwrap();
        assert!(
            status_table(&envs, now).contains("v2 under watch, 4m 12s left"),
            "{}",
            status_table(&envs, now)
        );
        let w = envs[0].watch.as_mut().unwrap();
        w.state = WatchState::Inconclusive;
        w.left_ms = 0;
        assert!(status_table(&envs, now).contains("v2 watch inconclusive"));
        envs[0].current.as_mut().unwrap().deployment_id = 7;
        assert!(!status_table(&envs, now).contains("inconclusive"));
    }

    #[test]
    fn history_says_which_migration_ran_and_whether_its_down_did() {
        let plain = crate::client::test_deployment(serde_json::json!({"id": 3}));
        let migrated = crate::client::test_deployment(serde_json::json!({
            "id": 4,
            "migration": {"version": "v2", "up": "./m up", "ran_at": "2026-11-24T10:00:00.000Z",
                          "reversible": true, "down": "./m down",
                          "undo": {"state": "ran", "by_deployment": 6,
                                   "at": "2026-11-24T10:01:00.000Z", "note": "ok"}}
        }));
        let now = output::parse_time("2026-11-24T10:05:00.000Z").unwrap();
        let table = history_table(&[migrated, plain], now);
        let rows: Vec<&str> = table.lines().collect();
        assert!(rows[0].contains("MIGRATION"), "{table}");
        assert!(rows[1].contains("up, down ran by #6"), "{table}");
    }
}
