//! Deployment hooks (`pre_deploy`, `post_deploy`, `pre_rollback`): short shell commands
//! such as migrations, run by the drivers' shell runner (own process group, built
//! environment, the hook's `timeout:`), their output streamed into the deployment log
//! line by line as it comes.

use std::collections::BTreeMap;

use slipway_config::Hook;
use slipway_core::DeploymentId;
use slipway_drivers::{ShellCommand, Stream, run_shell};
use tokio::sync::mpsc;

use crate::Inner;

/// Runs `hook` for deployment `id`; `Err` holds the reason it failed, for the status.
pub(crate) async fn run_hook(
    inner: &Inner,
    id: DeploymentId,
    name: &str,
    hook: &Hook,
    env: BTreeMap<String, String>,
) -> Result<(), String> {
    inner
        .log(id, "hook", &format!("running {name}: {}", hook.run))
        .await;
    let mut cmd = ShellCommand::new(hook.run.clone(), hook.timeout);
    cmd.env = env;
    // The runner's sink cannot wait for the store; a channel lets lines be stored as they
    // come while the hook still runs.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run = run_shell(&cmd, move |line| {
        let _ = tx.send(line);
    });
    let store = async {
        let mut last = None;
        while let Some(line) = rx.recv().await {
            inner.log(id, "hook", &line.text).await;
            if line.stream != Stream::Runner {
                last = Some(line.text);
            }
        }
        last
    };
    let (run, last) = tokio::join!(run, store);
    let summary = if run.outcome.success() {
        format!("{name} hook succeeded")
    } else {
        // The last line usually says why; it ends up in the status reason too.
        let last = last
            .map(|l| format!(": {}", inner.mask(&l)))
            .unwrap_or_default();
        format!("{name} hook {}{last}", run.outcome)
    };
    inner.log(id, "hook", &summary).await;
    if run.outcome.success() {
        Ok(())
    } else {
        Err(summary)
    }
}
