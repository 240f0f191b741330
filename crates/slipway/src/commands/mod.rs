//! One module per group of commands. Each takes the parsed arguments and returns the exit
//! code it earned; errors go back to `main`, which reports them.

pub mod deploy;
pub mod flags;
pub mod follow;
pub mod gc;
pub mod local;
pub mod metrics;
pub mod notifications;
pub mod pipelines;
pub mod read;
pub mod user;

use std::path::Path;

use serde_json::Value;

use crate::cli::{ClientCommand, GlobalArgs, UserCommand};
use crate::client::{Action, Client};
use crate::error::Result;

/// Runs a command that talks to a server's API.
pub async fn run_client(global: &GlobalArgs, command: ClientCommand) -> Result<u8> {
    let client = client(global)?;
    match command {
        ClientCommand::Deploy(args) => deploy::deploy(&client, args).await,
        ClientCommand::Rollback(args) => deploy::rollback(&client, args).await,
        ClientCommand::Approve(args) => {
            deploy::decide(&client, args.id, Action::Approve, args.comment).await
        }
        ClientCommand::Reject(args) => {
            deploy::decide(&client, args.id, Action::Reject, args.comment).await
        }
        ClientCommand::Promote { id } => deploy::decide(&client, id, Action::Promote, None).await,
        ClientCommand::Cancel { id } => deploy::decide(&client, id, Action::Cancel, None).await,
        ClientCommand::Status { app, env, json } => read::status(&client, app, env, json).await,
        ClientCommand::History {
            app,
            env,
            limit,
            json,
        } => read::history(&client, &app, &env, limit, json).await,
        ClientCommand::Logs { id, follow, json } => read::logs(&client, id, follow, json).await,
        ClientCommand::User {
            command: UserCommand::Add { name, role },
        } => user::add(&client, &name, &role).await,
        ClientCommand::Gc { dry_run, json } => gc::run(&client, dry_run, json).await,
        ClientCommand::Flags { command } => flags::run(&client, command).await,
        ClientCommand::Metrics { command } => metrics::run(&client, command).await,
        ClientCommand::Notifications { command } => notifications::run(&client, command).await,
        ClientCommand::Run(args) => pipelines::run(&client, args).await,
        ClientCommand::Runs(args) => pipelines::runs(&client, args).await,
        ClientCommand::Trigger(args) => pipelines::trigger(&client, args).await,
    }
}

fn client(global: &GlobalArgs) -> Result<Client> {
    let token = global
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| local_admin_token(Path::new("slipway.yaml")));
    Ok(Client::new(&global.server, token)?)
}

/// The quick-start convenience: the admin token the server configured by `config` wrote
/// into its data dir. Anything missing or unreadable just means "no token".
fn local_admin_token(config: &Path) -> Option<String> {
    if !config.is_file() {
        return None;
    }
    // `load` resolves a relative data_dir against the file's directory.
    let cfg = slipway_config::load(config).ok()?;
    let dir = cfg.server.data_dir;
    let token = std::fs::read_to_string(dir.join("admin.token")).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// `--json`: standard output holds the API's object and nothing else.
fn print_json(raw: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(raw).unwrap_or_else(|_| raw.to_string())
    );
}
