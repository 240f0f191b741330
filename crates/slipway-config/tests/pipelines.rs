//! `pipelines:` in slipway.yaml: a valid pipeline parses to its model with the documented
//! defaults, and each mistake (cycles, unknown needs, unknown expression names, a secret
//! written in the config…) is reported with its line, column and key path.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::path::{Path, PathBuf};
use std::time::Duration;

use slipway_config::parse;
use slipway_pipeline::{SecretSource, Work};

/// The apps and environments the deploy jobs of these pipelines name.
const HEAD: &str = "version: 1
apps:
  web: { run: 'app --port {port}' }
environments:
  staging: { listen: 127.0.0.1:8081 }
  production: { listen: 127.0.0.1:8082 }
";

/// The example of docs/config.md#pipelines.
const RELEASE: &str = r#"pipelines:
  release:
    on:
      push: { repository: ./repo, branches: [main], poll: 5s }
      dispatch: { inputs: { version: { required: false, description: "a version to redeploy" } } }
    concurrency: { group: release, cancel_in_progress: false }
    secrets: { DEPLOY_TOKEN: { env: RELEASE_DEPLOY_TOKEN }, SIGNING_KEY: { file: keys/sign } }
    env: { REGISTRY: registry.example.com }
    jobs:
      build:
        steps:
          - run: make image TAG=sha-${{ git.short_sha }}
          - name: version
            run: echo "version=sha-${{ git.short_sha }}" >> "$SLIPWAY_OUTPUT"
            env: { TOKEN: "${{ secrets.DEPLOY_TOKEN }}" }
      test:
        needs: [build]
        timeout: 20m
        retries: 2
        working_directory: tests
        steps: [{ run: cargo test }]
      deploy-staging:
        needs: [test]
        if: git.branch == 'main' || inputs.version != ''
        deploy: { app: web, env: staging, version: "${{ needs.build.outputs.version }}" }
      deploy-production:
        needs: [deploy-staging]
        deploy: { app: web, env: production, version: "${{ needs.build.outputs.version }}" }
"#;

fn errors(pipelines: &str) -> String {
    match parse(
        &format!("{HEAD}{pipelines}"),
        "slipway.yaml",
        Path::new("/srv"),
    ) {
        Ok(_) => panic!("parsed without error:\n{pipelines}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_release_pipeline_parses_to_its_model() {
    let config = parse(
        &format!("{HEAD}{RELEASE}"),
        "slipway.yaml",
        Path::new("/srv"),
    )
    .unwrap();
    let p = &config.pipelines["release"];
    let push = p.push.as_ref().unwrap();
    assert_eq!(push.repository, "/srv/./repo");
    assert_eq!(push.branches, ["main"]);
    assert_eq!(push.poll, Duration::from_secs(5));
    let input = &p.dispatch.as_ref().unwrap().inputs["version"];
    assert!(!input.required);
    assert_eq!(input.description.as_deref(), Some("a version to redeploy"));
    let group = p.concurrency.as_ref().unwrap();
    assert_eq!(
        (group.group.as_str(), group.cancel_in_progress),
        ("release", false)
    );
    assert_eq!(
        p.secrets["DEPLOY_TOKEN"].source,
        SecretSource::Env("RELEASE_DEPLOY_TOKEN".into())
    );
    assert_eq!(
        p.secrets["SIGNING_KEY"].source,
        SecretSource::File(PathBuf::from("/srv/keys/sign"))
    );
    assert_eq!(p.env["REGISTRY"].text, "registry.example.com");
    assert_eq!(p.max_parallel, 4);
    let names: Vec<&str> = p.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        ["build", "test", "deploy-staging", "deploy-production"]
    );

    let Work::Steps(build) = &p.jobs[0].work else {
        panic!("build is a job of steps")
    };
    assert_eq!(build.timeout, Duration::from_secs(3600));
    assert_eq!(build.retries, 0);
    assert_eq!(build.steps.len(), 2);
    assert_eq!(build.steps[1].name.as_deref(), Some("version"));
    assert_eq!(
        build.steps[1].env["TOKEN"].text,
        "${{ secrets.DEPLOY_TOKEN }}"
    );

    let Work::Steps(test) = &p.jobs[1].work else {
        panic!("test is a job of steps")
    };
    assert_eq!(p.jobs[1].needs, ["build"]);
    assert_eq!(test.timeout, Duration::from_secs(20 * 60));
    assert_eq!(test.retries, 2);
    assert_eq!(test.working_directory.as_deref(), Some(Path::new("tests")));

    let staging = &p.jobs[2];
    assert!(staging.condition.is_some());
    let Work::Deploy(deploy) = &staging.work else {
        panic!("deploy-staging deploys")
    };
    assert_eq!(
        (deploy.app.as_str(), deploy.environment.as_str()),
        ("web", "staging")
    );
    assert_eq!(deploy.version.text, "${{ needs.build.outputs.version }}");
    assert!(p.dag().is_ok());
}

#[test]
fn cycles_unknown_and_repeated_needs_point_at_the_entry() {
    let e = errors(
        "pipelines:
  ci:
    on: { dispatch: {} }
    jobs:
      a: { needs: [c], steps: [{ run: 'true' }] }
      b: { needs: [a, b, a, tset], steps: [{ run: 'true' }] }
      c: { needs: [b], steps: [{ run: 'true' }] }
",
    );
    assert_eq!(
        e,
        "slipway.yaml:12:20: pipelines.ci.jobs.b.needs[0]: `needs` forms a cycle: a -> c -> b -> a
  hint: remove one of these needs
slipway.yaml:12:23: pipelines.ci.jobs.b.needs[1]: job `b` needs itself
  hint: list the jobs that must finish first
slipway.yaml:12:26: pipelines.ci.jobs.b.needs[2]: `a` is listed twice
slipway.yaml:12:29: pipelines.ci.jobs.b.needs[3]: unknown job `tset`
  expected: one of a, c"
    );
}

#[test]
fn an_unknown_name_in_an_expression_is_an_error_at_its_column() {
    let e = errors(
        r#"pipelines:
  ci:
    on: { push: { repository: /srv/repo } }
    jobs:
      build:
        steps:
          - run: echo ${{ git.short_sha }} ${{ gti.sha }}
          - run: "echo ${{ inputs.version }}"
      deploy:
        needs: [build]
        if: needs.biuld.result == 'success'
        deploy: { app: web, env: staging, version: "${{ needs.build.outputs.version }}-${{ secrets.NOPE }}" }
"#,
    );
    assert_eq!(
        e,
        "slipway.yaml:13:48: pipelines.ci.jobs.build.steps[0].run: unknown name `gti.sha`
  expected: one of git, inputs, needs, vars, secrets
  hint: did you mean `git`?
slipway.yaml:14:28: pipelines.ci.jobs.build.steps[1].run: unknown input `version`
slipway.yaml:17:13: pipelines.ci.jobs.deploy.if: `needs.biuld`: `biuld` is not a job this one needs (directly or through others)
  expected: one of build
  hint: did you mean `build`?
slipway.yaml:18:92: pipelines.ci.jobs.deploy.deploy.version: unknown secret `NOPE`: the pipeline's `secrets` do not define it"
    );
}

#[test]
fn expressions_are_checked_for_what_their_place_allows() {
    let e = errors(
        r#"pipelines:
  ci:
    on: { dispatch: { inputs: { mode: {} } } }
    env: { A: "${{ vars.B }}", B: "${{ git.sha }}" }
    jobs:
      build:
        steps: [{ run: "echo ${{ always() }} ${{ inputs.mode == }}" }]
"#,
    );
    assert_eq!(
        e,
        "slipway.yaml:10:20: pipelines.ci.env.A: unknown variable `vars.B`: the pipeline's `env` does not set it
slipway.yaml:10:40: pipelines.ci.env.B: `git` has no value here: the pipeline names no repository (`on.push.repository`)
slipway.yaml:13:65: pipelines.ci.jobs.build.steps[0].run: expected a name, a literal or `(`, got `}}`"
    );
}

#[test]
fn a_secret_is_never_written_in_the_config() {
    let e = errors(
        "pipelines:
  ci:
    on: { dispatch: {} }
    secrets: { TOKEN: hunter2hunter2, KEY: { env: A, file: /k }, EMPTY: {} }
    jobs: { a: { steps: [{ run: 'true' }] } }
",
    );
    assert_eq!(
        e,
        "slipway.yaml:10:16: pipelines.ci.secrets.TOKEN: a secret's value is never written in the config
  expected: `{ env: VARIABLE }` or `{ file: PATH }`
  hint: put the value in the server's environment and write `TOKEN: { env: TOKEN }`
slipway.yaml:10:54: pipelines.ci.secrets.KEY.file: a secret has one source
  expected: `env` or `file`, not both
slipway.yaml:10:66: pipelines.ci.secrets.EMPTY: missing key `env`
  expected: `env`: the server's variable that holds it (or `file`)"
    );
}

#[test]
fn jobs_and_triggers_say_what_is_missing_or_wrong() {
    let e = errors(
        "pipelines:
  ci:
    on: {}
    jobs:
      both: { steps: [{ run: a }], deploy: { app: web, env: staging, version: v1 } }
      neither: { needs: [both] }
      deploy: { deploy: { app: wbe, env: qa, version: v1 }, timeout: 5m }
      step: { steps: [make], working_directory: ../out }
      empty: { steps: [] }
",
    );
    assert_eq!(
        e,
        "slipway.yaml:9:5: pipelines.ci.on: a pipeline needs a trigger
  expected: `push`, `dispatch` or both
slipway.yaml:11:36: pipelines.ci.jobs.both.deploy: a job has `steps` or `deploy`, not both
  hint: make the deploy a job of its own that needs this one
slipway.yaml:12:7: pipelines.ci.jobs.neither: missing key `steps`
  expected: `steps`: a list of steps (or `deploy`)
slipway.yaml:13:27: pipelines.ci.jobs.deploy.deploy.app: unknown app `wbe`
  expected: one of web
  hint: did you mean `web`?
slipway.yaml:13:37: pipelines.ci.jobs.deploy.deploy.env: unknown environment `qa`
  expected: one of production, staging
slipway.yaml:13:61: pipelines.ci.jobs.deploy.timeout: a deploy job has no `timeout`
  hint: the deployment follows its environment's rules and gets its secrets; give `environment`, `env`, `timeout`, `retries` and `working_directory` to jobs of steps
slipway.yaml:14:23: pipelines.ci.jobs.step.steps[0]: expected a step: a mapping with keys run, env, name, got `make`
  hint: write `- run: make`
slipway.yaml:14:30: pipelines.ci.jobs.step.working_directory: `../out` leaves the workspace
  expected: a relative path inside the checked-out repository, without `..`
slipway.yaml:15:16: pipelines.ci.jobs.empty.steps: a job needs at least one step"
    );
}

#[test]
fn a_name_in_a_block_scalar_is_found_on_its_own_line() {
    let e = errors(
        "pipelines:
  ci:
    on: { push: { repository: /srv/repo } }
    jobs:
      build:
        steps:
          - run: |
              make
              echo \"${{ git.nope }}\"
",
    );
    assert_eq!(
        e,
        "slipway.yaml:15:25: pipelines.ci.jobs.build.steps[0].run: unknown name `git.nope`
  expected: one of sha, short_sha, ref, branch, commit_time"
    );
}

/// Environments with secrets, for the jobs that name one.
const SECRET_HEAD: &str = "version: 1
apps:
  web: { run: 'app --port {port}' }
environments:
  staging: { listen: 127.0.0.1:8081 }
  production:
    listen: 127.0.0.1:8082
    secrets: { DB_PASSWORD: { env: PROD_DB_PASSWORD }, TLS_KEY: { file: keys/tls } }
";

#[test]
fn a_job_in_an_environment_reads_its_secrets() {
    let yaml = format!(
        r#"{SECRET_HEAD}pipelines:
  ci:
    on: {{ dispatch: {{}} }}
    jobs:
      migrate:
        environment: production
        steps: [{{ run: "echo ${{{{ secrets.DB_PASSWORD }}}} ${{{{ secrets.TLS_KEY }}}}" }}]
"#
    );
    let config = parse(&yaml, "slipway.yaml", Path::new("/srv")).unwrap();
    let production = &config.environments["production"];
    assert_eq!(
        production.secrets["TLS_KEY"].source,
        SecretSource::File(PathBuf::from("/srv/keys/tls"))
    );
    assert_eq!(
        (
            production.secrets["DB_PASSWORD"].at.line,
            production.secrets["DB_PASSWORD"].at.column
        ),
        (8, 31)
    );
    let job = config.pipelines["ci"].job("migrate").unwrap();
    assert_eq!(job.environment.as_deref(), Some("production"));
}

#[test]
fn a_job_names_a_known_environment_and_only_its_secrets() {
    let yaml = format!(
        r#"{SECRET_HEAD}pipelines:
  ci:
    on: {{ dispatch: {{}} }}
    jobs:
      a:
        environment: prodution
        steps: [{{ run: 'true' }}]
      b:
        environment: staging
        steps: [{{ run: "echo ${{{{ secrets.DB_PASSWORD }}}}" }}]
      c:
        steps: [{{ run: "echo ${{{{ secrets.DB_PASSWORD }}}}" }}]
      d:
        environment: production
        deploy: {{ app: web, env: production, version: v1 }}
"#
    );
    let e = match parse(&yaml, "slipway.yaml", Path::new("/srv")) {
        Ok(_) => panic!("parsed without error"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        e,
        "slipway.yaml:14:9: pipelines.ci.jobs.a.environment: unknown environment `prodution`
  expected: one of production, staging
  hint: did you mean `production`?
slipway.yaml:18:34: pipelines.ci.jobs.b.steps[0].run: unknown secret `DB_PASSWORD`: neither the pipeline's `secrets` nor environment `staging`'s define it
slipway.yaml:20:34: pipelines.ci.jobs.c.steps[0].run: unknown secret `DB_PASSWORD`: the pipeline's `secrets` do not define it
slipway.yaml:22:9: pipelines.ci.jobs.d.environment: a deploy job has no `environment`
  hint: the deployment follows its environment's rules and gets its secrets; give `environment`, `env`, `timeout`, `retries` and `working_directory` to jobs of steps"
    );
}

#[test]
fn an_environment_secret_is_never_written_in_the_config_nor_a_variable_nor_the_servers() {
    let yaml = "version: 1
environments:
  production:
    listen: 127.0.0.1:8082
    variables: { DB_PASSWORD: x }
    secrets:
      API_KEY: hunter2hunter2
      DB_PASSWORD: { env: PROD_DB_PASSWORD }
      ROUTER: { env: SLIPWAY_ROUTER_TOKEN }
      SIGNING: { env: HOOK_KEY }
notifications:
  - { url: 'https://hooks.example.com/x', events: ['*'], secret: { env: HOOK_KEY } }
";
    let e = match parse(yaml, "slipway.yaml", Path::new("/srv")) {
        Ok(_) => panic!("parsed without error"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        e,
        "slipway.yaml:7:7: environments.production.secrets.API_KEY: a secret's value is never written in the config
  expected: `{ env: VARIABLE }` or `{ file: PATH }`
  hint: put the value in the server's environment and write `API_KEY: { env: API_KEY }`
slipway.yaml:8:7: environments.production.secrets.DB_PASSWORD: `DB_PASSWORD` is both a variable and a secret
  hint: remove `DB_PASSWORD` from `variables`: the secret is given to the workload under that name
slipway.yaml:9:17: environments.production.secrets.ROUTER.env: `SLIPWAY_ROUTER_TOKEN` holds the server's own token, which never reaches a workload
  hint: give the workload a credential of its own, in another variable
slipway.yaml:10:18: environments.production.secrets.SIGNING.env: `HOOK_KEY` holds a webhook's signing key, which never reaches a workload
  hint: give the workload a credential of its own, in another variable"
    );
}
