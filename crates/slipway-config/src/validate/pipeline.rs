//! Pipelines (`pipelines:`): triggers, concurrency, secrets (`secrets.rs`), env, and jobs
//! with their needs, environment, conditions, steps or deploys. The jobs must form a DAG, and every `${{ … }}`
//! may name only what exists where it is written; each error points at the line and
//! column of the offending entry or name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use slipway_pipeline::expr::{self, Condition, ExprError, Scope, Template};
use slipway_pipeline::{
    Concurrency, Dag, DagError, Deploy, Dispatch, Input, Job, Pipeline, PushTrigger, Step, Steps,
    Work, model,
};

use super::{Checker, Fields, Item, one_of};
use crate::scalar::did_you_mean;
use crate::tree::{Node, Pos, quote, raw_at, scalar_text};

const PIPELINE_KEYS: &[&str] = &[
    "on",
    "concurrency",
    "secrets",
    "env",
    "max_parallel",
    "jobs",
];
const ON_KEYS: &[&str] = &["push", "dispatch"];
const PUSH_KEYS: &[&str] = &["repository", "branches", "poll"];
const DISPATCH_KEYS: &[&str] = &["inputs"];
const INPUT_KEYS: &[&str] = &["required", "default", "description"];
const CONCURRENCY_KEYS: &[&str] = &["group", "cancel_in_progress"];
const JOB_KEYS: &[&str] = &[
    "needs",
    "if",
    "environment",
    "env",
    "timeout",
    "retries",
    "working_directory",
    "steps",
    "deploy",
];
/// Keys only a job of steps has.
const STEPS_ONLY: &[&str] = &[
    "environment",
    "env",
    "timeout",
    "retries",
    "working_directory",
];
const STEP_KEYS: &[&str] = &["run", "env", "name"];
const DEPLOY_KEYS: &[&str] = &["app", "env", "version"];
const MAX_PARALLEL: u64 = 256;
const MAX_RETRIES: u64 = 100;

/// The names a pipeline's expressions may use, beside those of each job.
struct Names<'n> {
    git: bool,
    inputs: BTreeSet<&'n str>,
    vars: BTreeSet<&'n str>,
    secrets: BTreeSet<&'n str>,
    /// A job's `environment:`, whose secrets are among `secrets`.
    environment: Option<&'n str>,
}

impl<'n> Names<'n> {
    fn scope(&self, needs: &'n [String], status_functions: bool) -> Scope<'n> {
        Scope {
            git: self.git,
            inputs: self.inputs.clone(),
            needs: needs.iter().map(String::as_str).collect(),
            vars: self.vars.clone(),
            secrets: self.secrets.clone(),
            environment: self.environment,
            status_functions,
        }
    }

    /// The names of a job in `environment` (its `environment:`), which also reads that
    /// environment's `secrets`.
    fn in_environment<'m>(
        &self,
        environment: Option<&'m str>,
        secrets: impl Iterator<Item = &'m &'m str>,
    ) -> Names<'m>
    where
        'n: 'm,
    {
        let mut names = Names {
            git: self.git,
            inputs: self.inputs.clone(),
            vars: self.vars.clone(),
            secrets: self.secrets.clone(),
            environment,
        };
        names.secrets.extend(secrets.copied());
        names
    }
}

/// A job's name, its fields, and the entries of its `needs` with their items.
type NeededBy<'a> = (String, Fields<'a>, Vec<(String, Item<'a>)>);

/// What a pipeline's jobs may name: apps and environments to deploy to, and each
/// environment's secrets (for a job of steps that names its `environment:`).
pub(super) struct Targets<'t> {
    pub apps: Vec<&'t str>,
    pub environments: Vec<&'t str>,
    pub secrets: BTreeMap<&'t str, Vec<&'t str>>,
}

impl<'a> Checker<'a> {
    pub(super) fn pipeline(
        &mut self,
        item: &Item<'a>,
        targets: &Targets,
        base_dir: &Path,
    ) -> Pipeline {
        let f = self.fields(item, PIPELINE_KEYS);
        let (push, dispatch) = match f.get("on") {
            Some(i) => self.triggers(&i, base_dir),
            None => {
                self.missing(
                    &f,
                    "on",
                    "a mapping with push, dispatch or both",
                    Some("to run it by hand only, write `on: { dispatch: {} }`".to_owned()),
                );
                (None, None)
            }
        };
        let secrets = match f.get("secrets") {
            Some(i) => self.secrets(&i, base_dir, |_| false),
            None => BTreeMap::new(),
        };
        let concurrency = f.get("concurrency").and_then(|i| self.concurrency(&i));
        let max_parallel = f
            .get("max_parallel")
            .and_then(|i| self.uint(&i, 1, MAX_PARALLEL))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(model::DEFAULT_MAX_PARALLEL);
        let input_names: Vec<String> = dispatch
            .iter()
            .flat_map(|d: &Dispatch| d.inputs.keys().cloned())
            .collect();
        let secret_names: Vec<String> = secrets.keys().cloned().collect();
        let env_entries = match f.get("env") {
            Some(i) => self.variable_entries(&i),
            None => Vec::new(),
        };
        let var_names: Vec<String> = env_entries.iter().map(|(n, _, _)| n.clone()).collect();
        let names = Names {
            git: push.is_some(),
            inputs: input_names.iter().map(String::as_str).collect(),
            vars: var_names.iter().map(String::as_str).collect(),
            secrets: secret_names.iter().map(String::as_str).collect(),
            environment: None,
        };
        // The pipeline's own env is what `vars.*` reads, so it cannot use `vars.*`.
        let env_scope = Scope {
            vars: BTreeSet::new(),
            ..names.scope(&[], false)
        };
        let env = self.templates(env_entries, &env_scope);
        let jobs = match f.get("jobs") {
            Some(i) => self.jobs(&i, &names, targets),
            None => {
                self.missing(&f, "jobs", "a mapping of job names to jobs", None);
                Vec::new()
            }
        };
        Pipeline {
            push,
            dispatch,
            concurrency,
            secrets,
            env,
            max_parallel,
            jobs,
        }
    }

    // === triggers, concurrency, secrets ===

    fn triggers(
        &mut self,
        item: &Item<'a>,
        base_dir: &Path,
    ) -> (Option<PushTrigger>, Option<Dispatch>) {
        let f = self.fields(item, ON_KEYS);
        let push = f.get("push").and_then(|i| self.push_trigger(&i, base_dir));
        let dispatch = f.get("dispatch").map(|i| self.dispatch(&i));
        if f.get("push").is_none() && f.get("dispatch").is_none() {
            let d = self
                .diag(f.pos, &f.path, "a pipeline needs a trigger")
                .with_expected("`push`, `dispatch` or both");
            self.push(d);
        }
        (push, dispatch)
    }

    fn push_trigger(&mut self, item: &Item<'a>, base_dir: &Path) -> Option<PushTrigger> {
        let f = self.fields(item, PUSH_KEYS);
        let repository = match f.get("repository") {
            Some(i) => self.nonempty_string(&i).map(|r| repository(&r, base_dir)),
            None => {
                self.missing(
                    &f,
                    "repository",
                    "a git repository's path or URL",
                    Some("a relative path is taken from the config file's directory".to_owned()),
                );
                None
            }
        };
        let branches = match f.get("branches") {
            Some(i) => self
                .list(&i, "branch names or patterns")
                .iter()
                .filter_map(|b| self.nonempty_string(b))
                .collect(),
            None => Vec::new(),
        };
        let poll = f
            .get("poll")
            .and_then(|i| self.positive_duration(&i))
            .unwrap_or(model::DEFAULT_POLL);
        Some(PushTrigger {
            repository: repository?,
            branches,
            poll,
        })
    }

    fn dispatch(&mut self, item: &Item<'a>) -> Dispatch {
        let f = self.fields(item, DISPATCH_KEYS);
        let mut inputs = BTreeMap::new();
        let Some(list) = f.get("inputs") else {
            return Dispatch { inputs };
        };
        for (name, input) in self.entries(&list, "a mapping of input names to inputs") {
            if !slipway_pipeline::outputs::is_output_name(&name) {
                let d = self
                    .diag(
                        input.pos,
                        &input.path,
                        format!("invalid input name {}", quote(&name)),
                    )
                    .with_expected("letters, digits, `_` and `-`, starting with a letter or `_`");
                self.push(d);
                continue;
            }
            let f = self.fields(&input, INPUT_KEYS);
            let required = f
                .get("required")
                .and_then(|i| self.boolean(&i))
                .unwrap_or(false);
            let default = f.get("default").and_then(|i| self.string(&i));
            let description = f.get("description").and_then(|i| self.string(&i));
            inputs.insert(
                name,
                Input {
                    required,
                    default,
                    description,
                },
            );
        }
        Dispatch { inputs }
    }

    fn concurrency(&mut self, item: &Item<'a>) -> Option<Concurrency> {
        let f = self.fields(item, CONCURRENCY_KEYS);
        let group = match f.get("group") {
            Some(i) => self.nonempty_string(&i),
            None => {
                self.missing(&f, "group", "a name; runs of one group never overlap", None);
                None
            }
        };
        let cancel_in_progress = f
            .get("cancel_in_progress")
            .and_then(|i| self.boolean(&i))
            .unwrap_or(false);
        Some(Concurrency {
            group: group?,
            cancel_in_progress,
        })
    }

    // === jobs ===

    fn jobs(&mut self, item: &Item<'a>, names: &Names, targets: &Targets) -> Vec<Job> {
        let entries = self.named(item, "job");
        if entries.is_empty() {
            let d = self
                .diag(item.pos, &item.path, "a pipeline needs at least one job")
                .with_expected("a mapping of job names to jobs");
            self.push(d);
        }
        // `needs` first: each job's expressions may name the jobs it needs.
        let mut parsed = Vec::with_capacity(entries.len());
        for (name, job) in &entries {
            let f = self.fields(job, JOB_KEYS);
            let needs: Vec<(String, Item<'a>)> = match f.get("needs") {
                Some(i) => self
                    .list(&i, "job names")
                    .into_iter()
                    .filter_map(|n| Some((self.nonempty_string(&n)?, n)))
                    .collect(),
                None => Vec::new(),
            };
            parsed.push((name.clone(), f, needs));
        }
        let dag = self.check_needs(&parsed);
        parsed
            .into_iter()
            .enumerate()
            .filter_map(|(i, (name, f, needs))| {
                let needs: Vec<String> = needs.into_iter().map(|(n, _)| n).collect();
                // `needs.<job>` may name every job this one waits for, directly or not.
                let before: Vec<String> = match &dag {
                    Some(dag) => dag
                        .ancestors(i)
                        .into_iter()
                        .map(|a| dag.name(a).to_owned())
                        .collect(),
                    None => needs.clone(),
                };
                self.job(name, &f, needs, &before, names, targets)
            })
            .collect()
    }

    /// The jobs' graph, or `None` after reporting why they do not form one.
    fn check_needs(&mut self, jobs: &[NeededBy<'a>]) -> Option<Dag> {
        let graph: Vec<(&str, Vec<&str>)> = jobs
            .iter()
            .map(|(name, _, needs)| {
                (
                    name.as_str(),
                    needs.iter().map(|(n, _)| n.as_str()).collect(),
                )
            })
            .collect();
        let errors = match Dag::new(&graph) {
            Ok(dag) => return Some(dag),
            Err(errors) => errors,
        };
        let job_names: Vec<&str> = graph.iter().map(|(n, _)| *n).collect();
        for error in errors {
            let (job, need) = match &error {
                DagError::Unknown { job, need, .. }
                | DagError::Itself { job, need }
                | DagError::Repeated { job, need, .. }
                | DagError::Cycle { job, need, .. } => (*job, *need),
            };
            let (name, _, needs) = &jobs[job];
            let entry = &needs[need].1;
            let d = match error {
                DagError::Unknown { name: target, .. } => {
                    let others: Vec<&str> =
                        job_names.iter().copied().filter(|n| n != name).collect();
                    self.diag(
                        entry.pos,
                        &entry.path,
                        format!("unknown job {}", quote(&target)),
                    )
                    .with_expected(if others.is_empty() {
                        "another job of this pipeline".to_owned()
                    } else {
                        one_of(&others)
                    })
                    .with_hint(did_you_mean(&target, others.iter().copied()))
                }
                DagError::Itself { .. } => self
                    .diag(
                        entry.pos,
                        &entry.path,
                        format!("job {} needs itself", quote(name)),
                    )
                    .with_hint(Some("list the jobs that must finish first".to_owned())),
                DagError::Repeated { name: target, .. } => self.diag(
                    entry.pos,
                    &entry.path,
                    format!("{} is listed twice", quote(&target)),
                ),
                DagError::Cycle { path, .. } => self
                    .diag(
                        entry.pos,
                        &entry.path,
                        format!("`needs` forms a cycle: {}", path.join(" -> ")),
                    )
                    .with_hint(Some("remove one of these needs".to_owned())),
            };
            self.push(d);
        }
        None
    }

    fn job(
        &mut self,
        name: String,
        f: &Fields<'a>,
        needs: Vec<String>,
        before: &[String],
        names: &Names,
        targets: &Targets,
    ) -> Option<Job> {
        let environment = match f.get("environment") {
            Some(i) if f.get("deploy").is_none() => {
                self.known_name(&i, "environment", &targets.environments)
            }
            _ => None,
        };
        let secrets = environment.as_deref().and_then(|e| targets.secrets.get(e));
        let names = &names.in_environment(environment.as_deref(), secrets.into_iter().flatten());
        let condition = f.get("if").and_then(|i| {
            let text = self.string(&i)?;
            let scope = names.scope(before, true);
            match Condition::parse(&text) {
                Ok(c) => {
                    for e in expr::check(&c.expr, &scope) {
                        self.expr_error(&i, &text, e);
                    }
                    Some(c)
                }
                Err(e) => {
                    self.expr_error(&i, &text, e);
                    None
                }
            }
        });
        let scope = names.scope(before, false);
        let work = match (f.get("steps"), f.get("deploy")) {
            (Some(steps), None) => Work::Steps(self.steps_job(f, &steps, &scope)),
            (None, Some(deploy)) => {
                for key in STEPS_ONLY {
                    if let Some(i) = f.get(key) {
                        let d = self
                            .diag(i.pos, &i.path, format!("a deploy job has no `{key}`"))
                            .with_hint(Some(
                                "the deployment follows its environment's rules and gets its secrets; give `environment`, `env`, `timeout`, `retries` and `working_directory` to jobs of steps".to_owned(),
                            ));
                        self.push(d);
                    }
                }
                Work::Deploy(self.deploy(&deploy, &scope, targets)?)
            }
            (Some(_), Some(deploy)) => {
                let d = self
                    .diag(
                        deploy.pos,
                        &deploy.path,
                        "a job has `steps` or `deploy`, not both",
                    )
                    .with_hint(Some(
                        "make the deploy a job of its own that needs this one".to_owned(),
                    ));
                self.push(d);
                return None;
            }
            (None, None) => {
                self.missing(f, "steps", "a list of steps (or `deploy`)", None);
                return None;
            }
        };
        Some(Job {
            name,
            needs,
            condition,
            environment,
            work,
        })
    }

    fn steps_job(&mut self, f: &Fields<'a>, steps: &Item<'a>, scope: &Scope) -> Steps {
        let env = match f.get("env") {
            Some(i) => {
                let entries = self.variable_entries(&i);
                self.templates(entries, scope)
            }
            None => BTreeMap::new(),
        };
        let timeout = f
            .get("timeout")
            .and_then(|i| self.positive_duration(&i))
            .unwrap_or(model::DEFAULT_JOB_TIMEOUT);
        let retries = f
            .get("retries")
            .and_then(|i| self.uint(&i, 0, MAX_RETRIES))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0);
        let working_directory = f
            .get("working_directory")
            .and_then(|i| self.working_directory(&i));
        let items = self.list(steps, "steps");
        if items.is_empty() && matches!(steps.node.value, Node::Seq(_) | Node::Null) {
            let d = self.diag(steps.pos, &steps.path, "a job needs at least one step");
            self.push(d);
        }
        let steps = items.iter().filter_map(|s| self.step(s, scope)).collect();
        Steps {
            env,
            timeout,
            retries,
            working_directory,
            steps,
        }
    }

    fn step(&mut self, item: &Item<'a>, scope: &Scope) -> Option<Step> {
        if let Some(text) =
            scalar_text(self.source, item.node).filter(|_| !matches!(item.node.value, Node::Null))
        {
            self.wrong_type(
                item,
                "a step: a mapping with keys run, env, name",
                None,
                Some(format!("write `- run: {text}`")),
            );
            return None;
        }
        let f = self.fields(item, STEP_KEYS);
        let run = match f.get("run") {
            Some(i) => self.template(&i, scope),
            None => {
                self.missing(&f, "run", "the shell command of the step", None);
                None
            }
        };
        let env = match f.get("env") {
            Some(i) => {
                let entries = self.variable_entries(&i);
                self.templates(entries, scope)
            }
            None => BTreeMap::new(),
        };
        let name = f.get("name").and_then(|i| self.nonempty_string(&i));
        Some(Step {
            name,
            run: run?,
            env,
        })
    }

    fn deploy(&mut self, item: &Item<'a>, scope: &Scope, targets: &Targets) -> Option<Deploy> {
        let f = self.fields(item, DEPLOY_KEYS);
        let mut name = |key: &str, what: &str, known: &[&str]| match f.get(key) {
            Some(i) => self.known_name(&i, what, known),
            None => {
                self.missing(&f, key, &format!("the name of an {what}"), None);
                None
            }
        };
        let app = name("app", "app", &targets.apps);
        let environment = name("env", "environment", &targets.environments);
        let version = match f.get("version") {
            Some(i) => self.template(&i, scope),
            None => {
                self.missing(
                    &f,
                    "version",
                    "the release to deploy",
                    Some(
                        "a job's output, like `\"${{ needs.build.outputs.version }}\"`".to_owned(),
                    ),
                );
                None
            }
        };
        Some(Deploy {
            app: app?,
            environment: environment?,
            version: version?,
        })
    }

    /// The name at `item` when it is one of `known` (apps or environments); else the
    /// error, with the names there are.
    fn known_name(&mut self, item: &Item, what: &str, known: &[&str]) -> Option<String> {
        let name = self.nonempty_string(item)?;
        if known.contains(&name.as_str()) {
            return Some(name);
        }
        let expected = if known.is_empty() {
            format!("an {what} defined under `{what}s:`")
        } else {
            one_of(known)
        };
        let d = self
            .diag(
                item.pos,
                &item.path,
                format!("unknown {what} {}", quote(&name)),
            )
            .with_expected(expected)
            .with_hint(did_you_mean(&name, known.iter().copied()));
        self.push(d);
        None
    }

    /// A path inside the run's workspace: relative, without `..`.
    fn working_directory(&mut self, item: &Item) -> Option<PathBuf> {
        let text = self.nonempty_string(item)?;
        let path = PathBuf::from(&text);
        let inside = path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if inside {
            return Some(path);
        }
        let d = self
            .diag(
                item.pos,
                &item.path,
                format!("{} leaves the workspace", quote(&text)),
            )
            .with_expected("a relative path inside the checked-out repository, without `..`");
        self.push(d);
        None
    }

    // === expressions ===

    fn template(&mut self, item: &Item, scope: &Scope) -> Option<Template> {
        let text = self.nonempty_string(item)?;
        self.parse_template(item, &text, scope)
    }

    fn parse_template(&mut self, item: &Item, text: &str, scope: &Scope) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => {
                let errors: Vec<ExprError> =
                    t.exprs().flat_map(|e| expr::check(e, scope)).collect();
                for e in errors {
                    self.expr_error(item, text, e);
                }
                Some(t)
            }
            Err(e) => {
                self.expr_error(item, text, e);
                None
            }
        }
    }

    fn templates(
        &mut self,
        entries: Vec<(String, Item<'a>, String)>,
        scope: &Scope,
    ) -> BTreeMap<String, Template> {
        entries
            .into_iter()
            .filter_map(|(name, item, text)| {
                Some((name, self.parse_template(&item, &text, scope)?))
            })
            .collect()
    }

    fn expr_error(&mut self, item: &Item, text: &str, e: ExprError) {
        let at = self.pos_in(item, text, e.offset);
        let mut d = self.diag(at, &item.path, e.message);
        if let Some((name, known)) = e.unknown {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            d = d.with_hint(did_you_mean(&name, known.iter().copied()));
            d = if known.is_empty() {
                d
            } else {
                d.with_expected(one_of(&known))
            };
        }
        self.push(d);
    }

    /// Where byte `offset` of a string value's text is in the file. The text and what
    /// the file holds differ by quotes, escapes and a block scalar's indentation, so the
    /// text is matched against the source character by character; when that fails, the
    /// value's own place.
    fn pos_in(&self, item: &Item, text: &str, offset: usize) -> Pos {
        let fallback = Pos::of(item.node).unwrap_or(item.pos);
        let Some((start, raw)) = raw_at(self.source, item.node) else {
            return fallback;
        };
        let mut source = raw.char_indices();
        let mut found = None;
        for wanted in text[..offset.min(text.len())]
            .chars()
            .chain(text[offset.min(text.len())..].chars().take(1))
        {
            let Some((i, _)) = source.by_ref().find(|(_, c)| *c == wanted) else {
                return fallback;
            };
            found = Some(i);
        }
        let Some(at) = found else {
            return fallback;
        };
        let before = &self.source[..start + at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        Pos { line, column }
    }
}

/// A local path is taken from the config file's directory; a URL (`https://…`,
/// `ssh://…`, `git@host:path`) as written.
fn repository(text: &str, base_dir: &Path) -> String {
    let scp_like = text
        .split_once(':')
        .is_some_and(|(host, _)| host.contains('@') && !host.contains('/'));
    if text.contains("://") || scp_like {
        text.to_owned()
    } else {
        base_dir.join(text).display().to_string()
    }
}
