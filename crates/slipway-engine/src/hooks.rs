//! Deployment hooks (`pre_deploy`, `post_deploy`, `pre_rollback`): short shell commands
//! such as migrations, run to completion with their output kept in the deployment log.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

/// A hook that runs longer than this is killed and counts as failed.
const HOOK_TIMEOUT: Duration = Duration::from_secs(300);

pub struct HookRun {
    pub success: bool,
    pub output: Vec<String>,
    pub summary: String,
}

pub async fn run_hook(name: &str, command: &str, env: &BTreeMap<String, String>) -> HookRun {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return HookRun {
                success: false,
                output: Vec::new(),
                summary: format!("{name} hook could not start: {e}"),
            };
        }
    };
    match tokio::time::timeout(HOOK_TIMEOUT, child.wait_with_output()).await {
        Err(_) => HookRun {
            success: false,
            output: Vec::new(),
            summary: format!("{name} hook ran longer than {HOOK_TIMEOUT:?} and was killed"),
        },
        Ok(Err(e)) => HookRun {
            success: false,
            output: Vec::new(),
            summary: format!("{name} hook failed: {e}"),
        },
        Ok(Ok(out)) => {
            let output: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&out.stderr).lines())
                .map(str::to_string)
                .collect();
            let success = out.status.success();
            let summary = if success {
                format!("{name} hook succeeded")
            } else {
                let last = output.last().map(String::as_str).unwrap_or("");
                format!("{name} hook exited with {}: {last}", out.status)
            };
            HookRun {
                success,
                output,
                summary,
            }
        }
    }
}
