//! What a run's expressions read: the commit, the inputs, the pipeline's variables, the
//! secrets, and the outputs and results of the jobs before. The pipeline's secrets are
//! read when the run starts, from the server's environment or a file; a job with an
//! `environment:` also reads that environment's (read when the server started). Both are
//! masked in everything the run logs.

use std::collections::BTreeMap;

use slipway_config::{EnvironmentSecrets, read_secret};
use slipway_core::Masker;
use slipway_pipeline::expr::{Context, Func, GitField, Ref, Value};
use slipway_pipeline::schedule::Needs;
use slipway_pipeline::{Pipeline, Status};
use slipway_store::Run;

use super::git;

/// The commit a run builds, as `git.*` reads it.
#[derive(Debug, Clone, Default)]
pub(crate) struct GitValues {
    pub sha: String,
    pub full_ref: String,
    pub commit_time: String,
}

/// Everything a run's expressions can name, and the masker of its secrets.
pub(crate) struct Values {
    pub git: Option<GitValues>,
    pub inputs: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    /// The environments' secrets, for the jobs that name an `environment:`.
    pub environments: EnvironmentSecrets,
    pub masker: Masker,
}

/// Every value a masker hides for `secret`: the whole of it, and each of its lines
/// (output is masked line by line, so a key file's lines are hidden one by one).
pub(crate) fn mask_secret(masker: &mut Masker, secret: &str) {
    masker.add(secret);
    for line in secret.lines() {
        masker.add(line);
    }
}

impl Values {
    /// The values of `run`: its secrets read (the first one missing is the error), and
    /// the pipeline's `env` rendered, which `vars.*` reads.
    pub fn of(
        pipeline: &Pipeline,
        run: &Run,
        environments: EnvironmentSecrets,
        mut masker: Masker,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Values, String> {
        let mut secrets = BTreeMap::new();
        for (name, secret) in &pipeline.secrets {
            let value = read_secret(name, &secret.source, env)?;
            mask_secret(&mut masker, &value);
            secrets.insert(name.clone(), value);
        }
        let git = run.commit.as_ref().map(|sha| GitValues {
            sha: sha.clone(),
            full_ref: run.git_ref.clone().unwrap_or_default(),
            commit_time: run
                .committed_at
                .map(slipway_core::civil::format_rfc3339)
                .unwrap_or_default(),
        });
        let mut values = Values {
            git,
            inputs: run.inputs.clone(),
            vars: BTreeMap::new(),
            secrets,
            environments,
            masker,
        };
        let cx = JobContext::outside_jobs(&values);
        let mut vars = BTreeMap::new();
        for (name, template) in &pipeline.env {
            vars.insert(name.clone(), template.render(&cx).map_err(|e| e.0)?);
        }
        values.vars = vars;
        Ok(values)
    }
}

/// What one job's expressions read.
pub(crate) struct JobContext<'v> {
    values: &'v Values,
    /// Outputs and statuses of the run's jobs, by name.
    jobs: BTreeMap<&'v str, (&'v BTreeMap<String, String>, Status)>,
    needs: Needs,
    /// The secrets of the job's `environment:`, over the pipeline's of the same name.
    environment: Option<&'v BTreeMap<String, String>>,
}

impl<'v> JobContext<'v> {
    /// For the pipeline's own `env`: no jobs.
    pub fn outside_jobs(values: &'v Values) -> JobContext<'v> {
        JobContext {
            values,
            jobs: BTreeMap::new(),
            needs: Needs {
                success: true,
                failure: false,
            },
            environment: None,
        }
    }

    /// For a job in `environment` (its `environment:`, if any).
    pub fn new(
        values: &'v Values,
        jobs: impl Iterator<Item = (&'v str, &'v BTreeMap<String, String>, Status)>,
        needs: Needs,
        environment: Option<&str>,
    ) -> JobContext<'v> {
        JobContext {
            values,
            jobs: jobs
                .map(|(name, out, status)| (name, (out, status)))
                .collect(),
            needs,
            environment: environment.and_then(|e| values.environments.of(e)),
        }
    }
}

impl Context for JobContext<'_> {
    fn lookup(&self, name: &Ref) -> Result<Value, String> {
        let text = match name {
            Ref::Git(field) => {
                let g = self
                    .values
                    .git
                    .as_ref()
                    .ok_or_else(|| "this run has no commit".to_owned())?;
                match field {
                    GitField::Sha => g.sha.clone(),
                    GitField::ShortSha => g.sha.chars().take(7).collect(),
                    GitField::Ref => git::short_ref(&g.full_ref).to_owned(),
                    GitField::Branch => git::branch_of(&g.full_ref).unwrap_or("").to_owned(),
                    GitField::CommitTime => g.commit_time.clone(),
                }
            }
            Ref::Input(n) => self.values.inputs.get(n).cloned().unwrap_or_default(),
            Ref::Var(n) => self
                .values
                .vars
                .get(n)
                .cloned()
                .ok_or_else(|| format!("vars.{n} is not set"))?,
            Ref::Secret(n) => self
                .environment
                .and_then(|e| e.get(n))
                .or_else(|| self.values.secrets.get(n))
                .cloned()
                .ok_or_else(|| format!("secrets.{n} is not set"))?,
            Ref::Output { job, key } => {
                let (outputs, _) = self
                    .jobs
                    .get(job.as_str())
                    .ok_or_else(|| format!("needs.{job}: no such job in this run"))?;
                outputs.get(key).cloned().ok_or_else(|| {
                    format!(
                        "needs.{job}.outputs.{key} is not set: job {job} wrote no `{key}=…` line to $SLIPWAY_OUTPUT"
                    )
                })?
            }
            Ref::Result(job) => {
                let (_, status) = self
                    .jobs
                    .get(job.as_str())
                    .ok_or_else(|| format!("needs.{job}: no such job in this run"))?;
                status.as_str().to_owned()
            }
        };
        Ok(Value::Str(text))
    }

    fn status(&self, func: Func) -> bool {
        self.needs.status(func)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_of_a_secret_is_masked_on_its_own() {
        let mut masker = Masker::default();
        mask_secret(&mut masker, "line-one-key\nline-two-key");
        assert_eq!(masker.mask("got line-two-key here"), "got *** here");
    }
}
