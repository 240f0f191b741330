//! Push triggers by polling: every `poll`, the branch heads of the watched repository;
//! each head not seen yet on a watched branch starts one run (the store remembers the
//! heads, so a restart or a `slipway trigger` of the same commit starts no second one).

use std::sync::Arc;

use slipway_config::Role;
use slipway_pipeline::PushTrigger;

use super::{Shared, git};
use crate::Actor;

pub(super) async fn watch(shared: Arc<Shared>, name: String, push: PushTrigger) {
    let actor = Actor {
        name: format!("pipeline:{name}"),
        role: Role::Deployer,
    };
    let engine = shared.engine.clone();
    let mut last_error: Option<String> = None;
    loop {
        match git::heads(&push.repository).await {
            Ok(heads) => {
                last_error = None;
                if let Some(pipeline) = engine.config().pipelines.get(&name) {
                    for (branch, sha) in heads {
                        if let Err(e) = shared
                            .start_push(&name, pipeline, &branch, &sha, &actor)
                            .await
                        {
                            tracing::warn!(pipeline = %name, %branch, error = %e, "cannot start a run for a push");
                        }
                    }
                }
            }
            // Said once until it changes: an unreachable remote should not flood the log.
            Err(e) if last_error.as_ref() != Some(&e) => {
                tracing::warn!(pipeline = %name, repository = %push.repository, error = %e, "cannot read the watched repository");
                last_error = Some(e);
            }
            Err(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(push.poll) => {}
            () = engine.stopping() => return,
        }
    }
}

/// How two names of one repository compare: a local path by where it really is (so
/// `./repo`, `/srv/repo/` and a symlink to it match), a URL as written.
pub(super) fn same_repository_key(repository: &str) -> String {
    std::fs::canonicalize(repository)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| repository.trim_end_matches('/').to_owned())
}
