//! `slipway flags list|set|rollout|kill`: the feature flags of an environment, through
//! `/api/v1/flags`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, ClientError, segment};
use crate::error::{Error, Result};
use crate::output::Table;

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// The flags of an environment (or of all).
    List {
        #[arg(long)]
        env: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Create or replace a flag: from a JSON definition, or a boolean flag on or off.
    Set(SetArgs),
    /// Give the flag's variants to this share of users (sticky per targeting key).
    Rollout {
        key: String,
        #[arg(long)]
        env: String,
        /// 0–100, with or without `%`.
        percent: String,
        #[arg(long)]
        json: bool,
    },
    /// The kill switch: everyone gets the default variant at once (--undo lifts it).
    Kill {
        key: String,
        #[arg(long)]
        env: String,
        #[arg(long)]
        undo: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["file", "on", "off"]))]
pub struct SetArgs {
    pub key: String,
    #[arg(long)]
    pub env: String,
    /// The flag's definition as JSON (variants, default_variant, rollout, constraints…).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Switch the flag on (a new flag is a boolean one, true for everyone).
    #[arg(long)]
    pub on: bool,
    /// Switch the flag off (everyone gets its default variant).
    #[arg(long)]
    pub off: bool,
    #[arg(long)]
    pub json: bool,
}

fn path(env: &str, key: &str) -> String {
    format!("api/v1/flags/{}/{}", segment(env), segment(key))
}

pub async fn run(client: &Client, command: FlagsCommand) -> Result<u8> {
    match command {
        FlagsCommand::List { env, json } => {
            let query: Vec<(&str, String)> = env.map(|e| ("environment", e)).into_iter().collect();
            let raw = client
                .send(Method::GET, "api/v1/flags", &query, None)
                .await?;
            if json {
                super::print_json(&raw);
            } else {
                print_list(&raw);
            }
        }
        FlagsCommand::Set(args) => {
            let body = match &args.file {
                Some(file) => {
                    let text = std::fs::read_to_string(file)
                        .map_err(Error::io(format!("cannot read {}", file.display())))?;
                    serde_json::from_str::<Value>(&text)
                        .map_err(|e| Error::Usage(format!("{}: not JSON: {e}", file.display())))?
                }
                None => {
                    let current = client
                        .send(Method::GET, &path(&args.env, &args.key), &(), None)
                        .await;
                    let mut flag = match current {
                        Ok(mut found) => {
                            let obj = found.as_object_mut().ok_or_else(|| {
                                Error::Failed("the server sent a flag that is not an object".into())
                            })?;
                            for k in [
                                "environment",
                                "version",
                                "updated_at",
                                "updated_by",
                                "history",
                            ] {
                                obj.remove(k);
                            }
                            found
                        }
                        Err(ClientError::Api { code, .. }) if code == "flag_not_found" => json!({
                            "variants": [
                                {"name": "on", "value": true, "weight": 100},
                                {"name": "off", "value": false}
                            ],
                            "default_variant": "off"
                        }),
                        Err(e) => return Err(e.into()),
                    };
                    flag["enabled"] = Value::Bool(args.on);
                    flag
                }
            };
            let raw = client
                .send(Method::PUT, &path(&args.env, &args.key), &(), Some(&body))
                .await?;
            done(&raw, args.json);
        }
        FlagsCommand::Rollout {
            key,
            env,
            percent,
            json,
        } => {
            let n: u32 = percent
                .trim()
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|n| *n <= 100)
                .ok_or_else(|| {
                    Error::Usage(format!("rollout {percent:?}: a percentage from 0 to 100"))
                })?;
            let raw = client
                .send(
                    Method::POST,
                    &format!("{}/rollout", path(&env, &key)),
                    &(),
                    Some(&json!({ "percent": n })),
                )
                .await?;
            done(&raw, json);
        }
        FlagsCommand::Kill {
            key,
            env,
            undo,
            json,
        } => {
            let raw = client
                .send(
                    Method::POST,
                    &format!("{}/kill", path(&env, &key)),
                    &(),
                    Some(&json!({ "killed": !undo })),
                )
                .await?;
            done(&raw, json);
        }
    }
    Ok(0)
}

fn state(flag: &Value) -> &'static str {
    if flag["killed"] == true {
        "killed"
    } else if flag["enabled"] == false {
        "off"
    } else {
        "on"
    }
}

fn variants(flag: &Value) -> String {
    flag["variants"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    format!(
                        "{}={} {}%",
                        v["name"].as_str().unwrap_or("?"),
                        v["value"],
                        v["weight"].as_u64().unwrap_or(0)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

fn print_list(raw: &Value) {
    let flags = raw["flags"].as_array().cloned().unwrap_or_default();
    if flags.is_empty() {
        errln!("no flags");
        return;
    }
    let mut table = Table::new(&[
        "environment",
        "key",
        "state",
        "rollout",
        "variants",
        "default",
        "version",
        "by",
    ]);
    for f in &flags {
        table.row(vec![
            text(&f["environment"]),
            text(&f["key"]),
            state(f).to_owned(),
            format!("{}%", f["rollout"]),
            variants(f),
            text(&f["default_variant"]),
            text(&f["version"]),
            text(&f["updated_by"]),
        ]);
    }
    out!("{}", table.render());
}

fn done(raw: &Value, json: bool) {
    if json {
        super::print_json(raw);
        return;
    }
    outln!(
        "{} in {}: {}, rollout {}%, version {} (by {})",
        text(&raw["key"]),
        text(&raw["environment"]),
        state(raw),
        raw["rollout"],
        raw["version"],
        text(&raw["updated_by"])
    );
}
