//! `slipway metrics dora`: the four DORA metrics per app and environment, with their
//! 2024 performance bands, from `/api/v1/metrics/dora`.

use std::time::Duration;

use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

use crate::client::Client;
use crate::error::Result;
use crate::output::short_duration;

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Deployment frequency, lead time, change fail rate and recovery time.
    Dora {
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        env: Option<String>,
        /// The window, back from now: `30d`, `12h`…
        #[arg(long, default_value = "30d")]
        since: String,
        /// A rollback by hand this soon after a success makes that deployment a failed change.
        #[arg(long, default_value = "1d")]
        rollback_within: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, command: MetricsCommand) -> Result<u8> {
    let MetricsCommand::Dora {
        app,
        env,
        since,
        rollback_within,
        json,
    } = command;
    let mut query = vec![
        ("since", since.clone()),
        ("rollback_within", rollback_within),
    ];
    if let Some(app) = app {
        query.push(("app", app));
    }
    if let Some(env) = env {
        query.push(("environment", env));
    }
    let raw = client
        .send(Method::GET, "api/v1/metrics/dora", &query, None)
        .await?;
    if json {
        super::print_json(&raw);
        return Ok(0);
    }
    let reports = raw["reports"].as_array().cloned().unwrap_or_default();
    if reports.is_empty() {
        errln!("no deployments in the last {since}");
    }
    for r in &reports {
        outln!(
            "{} / {} (last {since})",
            text(&r["app"]),
            text(&r["environment"])
        );
        let f = &r["deployment_frequency"];
        line(
            "deployment frequency",
            format!(
                "{:.2}/day ({} deployments)",
                f["per_day"].as_f64().unwrap_or(0.0),
                f["deployments"]
            ),
            &f["band"],
        );
        let l = &r["lead_time"];
        line("lead time", quantiles(l), &l["band"]);
        let c = &r["change_fail_rate"];
        let rate = match c["rate"].as_f64() {
            Some(rate) => format!("{:.0}% ({} of {})", rate * 100.0, c["failed"], c["total"]),
            None => "-".to_owned(),
        };
        line("change fail rate", rate, &c["band"]);
        let t = &r["recovery_time"];
        line("recovery time", quantiles(t), &t["band"]);
    }
    Ok(0)
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

fn ms(v: &Value) -> Option<String> {
    v.as_u64()
        .map(|ms| short_duration(Duration::from_millis(ms)))
}

fn quantiles(v: &Value) -> String {
    match (ms(&v["median_ms"]), ms(&v["p90_ms"])) {
        (Some(m), Some(p)) => format!("median {m}, p90 {p}"),
        _ => "-".to_owned(),
    }
}

fn line(name: &str, figure: String, band: &Value) {
    let band = band.as_str().unwrap_or("-");
    outln!("  {name:<22}{figure:<32}{band}");
}
