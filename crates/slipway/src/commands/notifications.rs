//! `slipway notifications log`: the webhook delivery attempts, newest first, from
//! `/api/v1/notifications`.

use std::time::{Duration, SystemTime};

use clap::Subcommand;
use slipway_api::{AttemptOutcome, NotificationAttempt};

use crate::client::Client;
use crate::error::Result;
use crate::output::{self, Table};

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Every attempt to deliver a notification: target, event, answer, time taken.
    Log {
        /// At most this many attempts, newest first.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, command: NotificationsCommand) -> Result<u8> {
    let NotificationsCommand::Log { limit, json } = command;
    let fetched = client.notification_attempts(limit).await?;
    if json {
        super::print_json(&fetched.raw);
        return Ok(0);
    }
    if fetched.data.attempts.is_empty() {
        errln!("no notification was sent yet");
        return Ok(0);
    }
    out!("{}", table(&fetched.data.attempts, SystemTime::now()));
    Ok(0)
}

fn table(attempts: &[NotificationAttempt], now: SystemTime) -> String {
    let mut table = Table::new(&[
        "at", "target", "event", "about", "attempt", "result", "took", "error",
    ]);
    for a in attempts {
        let about = match (a.deployment_id, a.run_id) {
            (Some(id), _) => format!("deployment {id}"),
            (None, Some(id)) => format!("run {id}"),
            (None, None) => "-".to_owned(),
        };
        let answer = a.http_status.map(|s| format!(" ({s})")).unwrap_or_default();
        let result = match a.outcome {
            AttemptOutcome::Delivered => format!("delivered{answer}"),
            AttemptOutcome::Retrying => format!("retrying{answer}"),
            AttemptOutcome::Failed => format!("gave up{answer}"),
        };
        table.row(vec![
            output::when(&a.at, now),
            a.target.clone(),
            a.event.to_string(),
            about,
            a.attempt.to_string(),
            result,
            output::short_duration(Duration::from_millis(a.duration_ms)),
            a.error.clone().unwrap_or_default(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_attempt_is_a_row_that_says_how_it_ended() {
        let attempts: Vec<NotificationAttempt> = serde_json::from_value(serde_json::json!([
            { "id": 2, "target": "hooks", "seq": 5, "event": "deployment.succeeded",
              "deployment_id": 12, "run_id": null, "attempt": 2,
              "at": "2026-06-02T10:00:01.000Z", "http_status": 200, "error": null,
              "duration_ms": 4, "outcome": "delivered" },
            { "id": 1, "target": "hooks", "seq": 5, "event": "deployment.succeeded",
              "deployment_id": 12, "run_id": null, "attempt": 1,
              "at": "2026-06-02T10:00:00.000Z", "http_status": 500,
              "error": "the receiver answered 500 Internal Server Error",
              "duration_ms": 1500, "outcome": "retrying" }
        ]))
        .unwrap();
        let now = output::parse_time("2026-06-02T10:00:02.000Z").unwrap();
        let text = table(&attempts, now);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("AT"), "{text}");
        assert!(
            lines[1].contains("deployment.succeeded") && lines[1].contains("delivered (200)"),
            "{text}"
        );
        assert!(lines[2].contains("retrying (500)"), "{text}");
        assert!(lines[2].contains("answered 500"), "{text}");
        assert!(lines[2].contains("deployment 12"), "{text}");
    }
}
