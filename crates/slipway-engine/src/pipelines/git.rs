//! What pipelines ask of git, through the git CLI: the branch heads of a repository, a
//! ref resolved to its commit, a clean checkout of one commit, the commit's time. Git
//! runs with the built environment of workloads (nothing of the server's own) and never
//! prompts for credentials.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use slipway_core::Millis;

/// How long one git command may take (a clone of a large remote repository included).
const GIT_TIMEOUT: Duration = Duration::from_secs(600);
/// What a failed command's message keeps of its standard error.
const MAX_ERROR_CHARS: usize = 500;

/// A ref as a run records it: the full name (`refs/heads/main`, `refs/tags/v1.4.2`) and
/// the commit it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub full_ref: String,
    pub sha: String,
}

/// `main` of `refs/heads/main`, `v1.4.2` of `refs/tags/v1.4.2`.
pub fn short_ref(full: &str) -> &str {
    full.strip_prefix("refs/heads/")
        .or_else(|| full.strip_prefix("refs/tags/"))
        .unwrap_or(full)
}

/// The branch of a full ref; `None` for a tag.
pub(crate) fn branch_of(full: &str) -> Option<&str> {
    full.strip_prefix("refs/heads/")
}

/// Runs `git args…` (in `dir` when given) and returns its standard output, or a sentence
/// with what it printed on standard error.
async fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let mut env = BTreeMap::new();
    env.insert("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned());
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(args)
        .env_clear()
        .envs(slipway_drivers::workload_env(&env))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let shown = args.join(" ");
    let out = match tokio::time::timeout(GIT_TIMEOUT, cmd.output()).await {
        Err(_) => return Err(format!("`git {shown}` took longer than {GIT_TIMEOUT:?}")),
        Ok(Err(e)) => return Err(format!("cannot run `git {shown}`: {e}")),
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: String = stderr.trim().chars().take(MAX_ERROR_CHARS).collect();
    Err(format!("`git {shown}` failed: {said}"))
}

/// `sha<TAB>ref` lines of `git ls-remote`.
fn parse_ls_remote(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (sha, name) = line.split_once('\t')?;
            Some((name.trim().to_owned(), sha.trim().to_owned()))
        })
        .collect()
}

/// Every branch of `repository` and the commit it points at.
pub(crate) async fn heads(repository: &str) -> Result<Vec<(String, String)>, String> {
    let out = git(None, &["ls-remote", "--heads", "--", repository]).await?;
    Ok(parse_ls_remote(&out)
        .into_iter()
        .filter_map(|(name, sha)| Some((branch_of(&name)?.to_owned(), sha)))
        .collect())
}

/// `git_ref` (a branch or tag name, or a full ref) of `repository`, or the branch its
/// `HEAD` names when `None`. `Ok(None)` when the repository has no such ref.
pub(crate) async fn resolve(
    repository: &str,
    git_ref: Option<&str>,
) -> Result<Option<Resolved>, String> {
    let Some(wanted) = git_ref else {
        let out = git(None, &["ls-remote", "--symref", "--", repository, "HEAD"]).await?;
        let head = out.lines().find_map(|l| {
            let target = l.strip_prefix("ref: ")?.split('\t').next()?;
            Some(target.to_owned())
        });
        return match head {
            Some(full) => Box::pin(resolve(repository, Some(&full))).await,
            None => Ok(None),
        };
    };
    let candidates = if wanted.starts_with("refs/") {
        vec![wanted.to_owned()]
    } else {
        vec![
            format!("refs/heads/{wanted}"),
            format!("refs/tags/{wanted}"),
        ]
    };
    let out = git(None, &["ls-remote", "--", repository]).await?;
    let refs = parse_ls_remote(&out);
    for full in candidates {
        // An annotated tag's commit is its peeled `^{}` entry.
        let peeled = format!("{full}^{{}}");
        let sha = refs
            .iter()
            .find(|(name, _)| *name == peeled)
            .or_else(|| refs.iter().find(|(name, _)| *name == full));
        if let Some((_, sha)) = sha {
            return Ok(Some(Resolved {
                full_ref: full,
                sha: sha.clone(),
            }));
        }
    }
    Ok(None)
}

/// A clean checkout of `sha` of `repository` in `dir` (which must not exist yet).
pub(crate) async fn checkout(repository: &str, sha: &str, dir: &Path) -> Result<(), String> {
    let target = dir.display().to_string();
    git(
        None,
        &[
            "clone",
            "--quiet",
            "--no-checkout",
            "--",
            repository,
            &target,
        ],
    )
    .await?;
    git(Some(dir), &["checkout", "--quiet", "--detach", sha, "--"]).await?;
    Ok(())
}

/// When `sha` was committed, from a checkout that has it.
pub(crate) async fn commit_time(dir: &Path, sha: &str) -> Result<Millis, String> {
    let out = git(Some(dir), &["log", "-1", "--format=%ct", sha, "--"]).await?;
    out.trim()
        .parse::<i64>()
        .map(|secs| secs * 1000)
        .map_err(|_| format!("git gave no commit time for {sha}: {:?}", out.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_remote_lines_and_ref_names() {
        let refs = parse_ls_remote("3f2a\trefs/heads/main\nabcd\trefs/tags/v1\n\nbad line\n");
        assert_eq!(
            refs,
            [
                ("refs/heads/main".to_owned(), "3f2a".to_owned()),
                ("refs/tags/v1".to_owned(), "abcd".to_owned())
            ]
        );
        assert_eq!(short_ref("refs/heads/release/1.2"), "release/1.2");
        assert_eq!(short_ref("refs/tags/v1"), "v1");
        assert_eq!(branch_of("refs/tags/v1"), None);
        assert_eq!(branch_of("refs/heads/main"), Some("main"));
    }
}
