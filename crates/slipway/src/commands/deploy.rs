//! Commands that change what runs: deploy, rollback, and decisions on a deployment.

use std::time::{Duration, Instant};

use crate::cli::{DeployArgs, RollbackArgs, WaitArgs};
use crate::client::{Action, Client, CreateDeployment, Deployment, Fetched};
use crate::commands::follow::{self, FollowOptions, Live, Observer as _};
use crate::commands::print_json;
use crate::error::{Error, Result};
use slipway_api::Kind;

pub async fn deploy(client: &Client, args: DeployArgs) -> Result<u8> {
    if let Some(at) = &args.committed_at
        && humantime::parse_rfc3339_weak(at).is_err()
    {
        return Err(Error::Usage(format!(
            "--committed-at {at:?} is not an RFC 3339 time (e.g. 2026-11-24T10:00:00Z)"
        )));
    }
    let new = CreateDeployment {
        app: args.app,
        environment: args.env,
        version: args.version,
        git_ref: args.git_ref,
        commit: args.commit,
        committed_at: args.committed_at,
        force: args.force,
        reason: args.reason,
    };
    let created = client.create_deployment(&new).await?;
    report_created(client, created, &args.wait, args.json).await
}

pub async fn rollback(client: &Client, args: RollbackArgs) -> Result<u8> {
    let created = client
        .rollback(
            &args.app,
            &args.env,
            args.to.as_deref(),
            args.reason.as_deref(),
        )
        .await?;
    report_created(client, created, &args.wait, args.json).await
}

/// Says what was created, then follows it if asked to.
async fn report_created(
    client: &Client,
    created: Fetched<Deployment>,
    wait: &WaitArgs,
    json: bool,
) -> Result<u8> {
    let d = &created.data;
    let noun = if d.kind == Kind::Rollback {
        "rollback"
    } else {
        "deployment"
    };
    let mut line = format!(
        "{noun} {} created: {} {} → {} ({})",
        d.id, d.app, d.version, d.environment, d.status
    );
    if let Some(from) = &d.rolled_back_from {
        line.push_str(&format!(", replacing {from}"));
    }
    if !wait.wait {
        if json {
            print_json(&created.raw);
        } else {
            outln!("{line}");
        }
        return Ok(0);
    }
    let mut live = Live::new(json);
    live.line(&line);
    live.progress(d);
    let opts = FollowOptions {
        follow_waits: wait.follow_waits,
        shown: 0,
    };
    let followed = follow::follow(client, d.id, &opts, &mut live).await;
    let followed = match followed {
        Ok(followed) => followed,
        Err(e) => {
            live.finish();
            return Err(e.into());
        }
    };
    let last = &followed.last;
    live.line(&follow::summary(&last.data, followed.stand));
    live.finish();
    if json {
        print_json(&last.raw);
    }
    Ok(follow::exit_code(&last.data))
}

/// How long a decision waits to show what the engine made of it.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn decide(
    client: &Client,
    id: i64,
    action: Action,
    comment: Option<String>,
) -> Result<u8> {
    let decided = client.decide(id, action, comment.as_deref()).await?.data;
    let done = match action {
        Action::Approve => "approved",
        Action::Reject => "rejected",
        Action::Promote => "promoted",
        Action::Cancel => "cancelled",
    };
    outln!(
        "deployment {id} {done}: {} {} → {}",
        decided.app,
        decided.version,
        decided.environment
    );
    // A promotion changes no status; the next canary steps show in the log.
    if action == Action::Promote {
        outln!("  the canary continues; follow it with `slipway logs {id} --follow`");
        return Ok(0);
    }
    // The engine acts on a decision at its next step: show the change it makes, if any
    // comes soon, else where the deployment stands.
    let known = decided.statuses.len();
    let deadline = Instant::now() + SETTLE;
    let mut now = decided;
    while now.statuses.len() <= known && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = client.deployment(id).await?.data;
    }
    outln!("  now {}: {}", now.status, now.last_reason());
    Ok(0)
}
