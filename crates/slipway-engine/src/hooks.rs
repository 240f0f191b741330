//! Deployment hooks (`pre_deploy`, `post_deploy`, `pre_rollback`) on this machine: short
//! shell commands such as migrations, run by the drivers' shell runner (own process group,
//! built environment, the hook's `timeout:`), their output handed on line by line as it
//! comes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use slipway_config::Hook;
use slipway_drivers::{ShellCommand, Stream, run_shell};
use tokio::sync::mpsc;

use crate::ports::{HookOutput, HookRun, HookRunner};

/// The real hooks: `/bin/sh -c` on this machine.
pub struct ShellHooks;

#[async_trait]
impl HookRunner for ShellHooks {
    async fn run(
        &self,
        hook: &Hook,
        env: BTreeMap<String, String>,
        output: mpsc::UnboundedSender<HookOutput>,
    ) -> HookRun {
        let mut cmd = ShellCommand::new(hook.run.clone(), hook.timeout);
        cmd.env = env;
        let run = run_shell(&cmd, move |line| {
            let _ = output.send(HookOutput {
                text: line.text,
                from_runner: line.stream == Stream::Runner,
            });
        })
        .await;
        HookRun {
            success: run.outcome.success(),
            outcome: run.outcome.to_string(),
        }
    }
}
