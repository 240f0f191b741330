//! Checks made when a deployment is created (docs/concepts.md, gate order): branch/tag policy,
//! required config, required environments, mutable tags. Each failure is a 422 refusal;
//! all of them are reported at once so the user fixes everything in one go.

use std::fmt;

use slipway_config::Environment;

use crate::model::{Kind, Release};

/// Everything admission needs to know about one requested deployment.
pub struct Admission<'a> {
    /// Name of the target environment, for messages.
    pub env_name: &'a str,
    pub env: &'a Environment,
    pub release: &'a Release,
    pub kind: Kind,
    /// For a required environment's name: did a deployment of this same release (same
    /// version and digest) succeed there? The caller answers from its store.
    pub succeeded_in: &'a dyn Fn(&str) -> bool,
}

/// Why a deployment may not be created. Every refusal is an HTTP 422.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The release's ref matches none of the environment's branch patterns, or it has no
    /// ref while the environment restricts branches.
    BranchNotAllowed {
        git_ref: Option<String>,
        patterns: Vec<String>,
    },
    /// Keys of `require_config` absent from the environment's variables and secrets, in
    /// config order.
    MissingConfig { keys: Vec<String> },
    /// Required environments where this release has not succeeded, in config order.
    RequiresNotMet {
        version: String,
        environment: String,
        environments: Vec<String>,
    },
    /// A mutable version (`latest`, `main`, …) for a protected environment.
    MutableTag {
        version: String,
        environment: String,
    },
}

impl Refusal {
    /// Stable machine-readable code for the API's error object.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::BranchNotAllowed { .. } => "branch_not_allowed",
            Refusal::MissingConfig { .. } => "missing_config",
            Refusal::RequiresNotMet { .. } => "requires_not_met",
            Refusal::MutableTag { .. } => "mutable_tag",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BranchNotAllowed {
                git_ref: Some(r),
                patterns,
            } => write!(
                f,
                "ref \"{r}\" matches none of the allowed branches: {}",
                patterns.join(", ")
            ),
            Refusal::BranchNotAllowed {
                git_ref: None,
                patterns,
            } => write!(
                f,
                "the release names no ref, and only these branches are allowed: {}",
                patterns.join(", ")
            ),
            Refusal::MissingConfig { keys } => {
                write!(f, "missing required config: {}", keys.join(", "))
            }
            Refusal::RequiresNotMet {
                version,
                environment,
                environments,
            } => write!(
                f,
                "release {version} has not succeeded in {} (required by {environment})",
                environments.join(", ")
            ),
            Refusal::MutableTag {
                version,
                environment,
            } => {
                if version.trim().is_empty() {
                    f.write_str("the version is empty")?;
                } else {
                    write!(f, "version \"{version}\" is a mutable tag")?;
                }
                write!(
                    f,
                    "; {environment} is protected and takes only immutable versions \
                     (a commit SHA or a release number) unless it sets allow_mutable_tags: true"
                )
            }
        }
    }
}

impl std::error::Error for Refusal {}

/// Runs every admission check and returns all refusals, in gate order.
///
/// Rollbacks restore a release that already ran here, so branch rules and `requires` do
/// not apply to them; required config does (the environment must still be able to run it),
/// and so does the mutable-tag rule.
pub fn admit(input: &Admission<'_>) -> Result<(), Vec<Refusal>> {
    let env = input.env;
    let release = input.release;
    let mut refusals = Vec::new();

    let patterns = &env.protection.branches;
    if input.kind == Kind::Deploy && !patterns.is_empty() {
        let allowed = release
            .git_ref
            .as_deref()
            .is_some_and(|r| ref_allowed(patterns, r));
        if !allowed {
            refusals.push(Refusal::BranchNotAllowed {
                git_ref: release.git_ref.clone(),
                patterns: patterns.clone(),
            });
        }
    }

    let missing: Vec<String> = env
        .require_config
        .iter()
        .filter(|key| {
            !env.variables.contains_key(key.as_str()) && !env.secrets.contains_key(key.as_str())
        })
        .cloned()
        .collect();
    if !missing.is_empty() {
        refusals.push(Refusal::MissingConfig { keys: missing });
    }

    if input.kind == Kind::Deploy {
        let unmet: Vec<String> = env
            .requires
            .iter()
            .filter(|name| !(input.succeeded_in)(name))
            .cloned()
            .collect();
        if !unmet.is_empty() {
            refusals.push(Refusal::RequiresNotMet {
                version: release.version.clone(),
                environment: input.env_name.to_owned(),
                environments: unmet,
            });
        }
    }

    if env.protection.is_protected() && !env.allow_mutable_tags && is_mutable_tag(&release.version)
    {
        refusals.push(Refusal::MutableTag {
            version: release.version.clone(),
            environment: input.env_name.to_owned(),
        });
    }

    if refusals.is_empty() {
        Ok(())
    } else {
        Err(refusals)
    }
}

/// A ref passes when a pattern matches it as given or without its `refs/heads/` or
/// `refs/tags/` prefix, so CI systems that send full ref names work with short patterns.
fn ref_allowed(patterns: &[String], git_ref: &str) -> bool {
    let short = git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(git_ref);
    patterns
        .iter()
        .any(|p| glob_match(p, git_ref) || glob_match(p, short))
}

/// Glob match of a whole string: `*` matches any run of characters (including `/`, so
/// `release/*` takes `release/1.2/hotfix`), `?` exactly one character; everything else
/// matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where to resume after the latest `*`: the pattern index after it, and the text
    // index it has swallowed up to. Backtracking to the latest star only is enough for
    // `*`/`?` globs and keeps this linear in practice, quadratic at worst.
    let mut resume: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                pi += 1;
                resume = Some((pi, ti));
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match resume {
                Some((after_star, swallowed)) => {
                    pi = after_star;
                    ti = swallowed + 1;
                    resume = Some((after_star, ti));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Versions that name a moving target rather than one build: deploying them twice may
/// deploy two different things, so protected environments refuse them.
pub fn is_mutable_tag(version: &str) -> bool {
    const MUTABLE: [&str; 10] = [
        "latest", "main", "master", "stable", "dev", "develop", "edge", "nightly", "head", "canary",
    ];
    let v = version.trim();
    v.is_empty() || MUTABLE.iter().any(|m| m.eq_ignore_ascii_case(v))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::time::Duration;

    use proptest::prelude::*;
    use slipway_config::{Protection, Strategy};

    use super::*;

    fn env() -> Environment {
        Environment {
            listen: "127.0.0.1:8082".parse().unwrap(),
            strategy: Strategy::Recreate,
            variables: BTreeMap::new(),
            secrets: BTreeMap::new(),
            require_config: vec![],
            requires: vec![],
            protection: Protection::default(),
            allow_mutable_tags: false,
            keep_releases: 3,
            rollback_requires_approval: false,
            drain_timeout: Duration::from_secs(30),
            watch: None,
        }
    }

    fn release(version: &str, git_ref: Option<&str>) -> Release {
        Release {
            version: version.into(),
            commit: None,
            git_ref: git_ref.map(Into::into),
            committed_at: None,
            digest: None,
        }
    }

    fn protected_env() -> Environment {
        let mut e = env();
        e.protection.branches = vec!["main".into(), "release/*".into()];
        e
    }

    fn admit_with(
        env: &Environment,
        rel: &Release,
        kind: Kind,
        ok_in: &[&str],
    ) -> Result<(), Vec<Refusal>> {
        let succeeded = |name: &str| ok_in.contains(&name);
        admit(&Admission {
            env_name: "production",
            env,
            release: rel,
            kind,
            succeeded_in: &succeeded,
        })
    }

    #[test]
    fn unprotected_environment_admits_anything_configured() {
        assert_eq!(
            admit_with(&env(), &release("latest", None), Kind::Deploy, &[]),
            Ok(())
        );
    }

    #[test]
    fn branch_outside_the_patterns_is_refused_with_a_message() {
        let err = admit_with(
            &protected_env(),
            &release("v2", Some("feature/x")),
            Kind::Deploy,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].code(), "branch_not_allowed");
        assert_eq!(
            err[0].to_string(),
            r#"ref "feature/x" matches none of the allowed branches: main, release/*"#
        );
    }

    #[test]
    fn matching_branches_pass_including_full_ref_names() {
        for r in [
            "main",
            "release/1.4",
            "release/1.4/hotfix",
            "refs/heads/main",
        ] {
            assert_eq!(
                admit_with(&protected_env(), &release("v2", Some(r)), Kind::Deploy, &[]),
                Ok(()),
                "{r}"
            );
        }
        for r in ["mainline", "release", "refs/heads/feature"] {
            assert!(
                admit_with(&protected_env(), &release("v2", Some(r)), Kind::Deploy, &[]).is_err(),
                "{r}"
            );
        }
    }

    #[test]
    fn no_ref_is_refused_when_branches_are_restricted() {
        let err =
            admit_with(&protected_env(), &release("v2", None), Kind::Deploy, &[]).unwrap_err();
        assert_eq!(
            err,
            vec![Refusal::BranchNotAllowed {
                git_ref: None,
                patterns: vec!["main".into(), "release/*".into()],
            }]
        );
        assert!(err[0].to_string().contains("main, release/*"));
    }

    #[test]
    fn every_missing_config_key_is_listed_in_config_order() {
        let mut e = env();
        e.require_config = vec!["DATABASE_URL".into(), "LOG_LEVEL".into(), "API_KEY".into()];
        e.variables.insert("LOG_LEVEL".into(), "debug".into());
        let err = admit_with(&e, &release("v2", None), Kind::Deploy, &[]).unwrap_err();
        assert_eq!(err[0].code(), "missing_config");
        assert_eq!(
            err[0].to_string(),
            "missing required config: DATABASE_URL, API_KEY"
        );
        // A present key with an empty value is present: the app decides what empty means.
        e.variables.insert("DATABASE_URL".into(), String::new());
        // A secret is given to the workload as a variable is.
        e.secrets.insert(
            "API_KEY".into(),
            slipway_config::Secret {
                source: slipway_config::SecretSource::Env("PROD_API_KEY".into()),
                at: slipway_config::Place {
                    path: "environments.production.secrets.API_KEY.env".into(),
                    line: 1,
                    column: 1,
                },
            },
        );
        assert_eq!(
            admit_with(&e, &release("v2", None), Kind::Deploy, &[]),
            Ok(())
        );
    }

    #[test]
    fn requires_lists_every_environment_where_the_release_did_not_succeed() {
        let mut e = env();
        e.requires = vec!["staging".into(), "qa".into(), "perf".into()];
        let err = admit_with(&e, &release("v2", None), Kind::Deploy, &["qa"]).unwrap_err();
        assert_eq!(err[0].code(), "requires_not_met");
        assert_eq!(
            err[0].to_string(),
            "release v2 has not succeeded in staging, perf (required by production)"
        );
        e.requires = vec!["staging".into()];
        let err = admit_with(&e, &release("v2", None), Kind::Deploy, &[]).unwrap_err();
        assert_eq!(
            err[0].to_string(),
            "release v2 has not succeeded in staging (required by production)"
        );
        assert_eq!(
            admit_with(&e, &release("v2", None), Kind::Deploy, &["staging"]),
            Ok(())
        );
    }

    #[test]
    fn requires_asks_about_each_required_environment() {
        let mut e = env();
        e.requires = vec!["staging".into(), "qa".into()];
        let asked = RefCell::new(Vec::new());
        let succeeded = |name: &str| {
            asked.borrow_mut().push(name.to_owned());
            true
        };
        let rel = release("v2", None);
        let res = admit(&Admission {
            env_name: "production",
            env: &e,
            release: &rel,
            kind: Kind::Deploy,
            succeeded_in: &succeeded,
        });
        assert_eq!(res, Ok(()));
        assert_eq!(*asked.borrow(), vec!["staging", "qa"]);
    }

    #[test]
    fn mutable_tags_are_refused_only_in_protected_environments() {
        let err = admit_with(
            &protected_env(),
            &release("latest", Some("main")),
            Kind::Deploy,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].code(), "mutable_tag");
        assert!(
            err[0]
                .to_string()
                .starts_with(r#"version "latest" is a mutable tag; production is protected"#),
            "{}",
            err[0]
        );

        let mut allowed = protected_env();
        allowed.allow_mutable_tags = true;
        assert_eq!(
            admit_with(
                &allowed,
                &release("latest", Some("main")),
                Kind::Deploy,
                &[]
            ),
            Ok(())
        );
        assert_eq!(
            admit_with(&env(), &release("main", None), Kind::Deploy, &[]),
            Ok(())
        );
    }

    #[test]
    fn any_protection_rule_makes_mutable_tags_refused() {
        let rules: [fn(&mut Protection); 4] = [
            |p| p.reviewers = vec!["alice".into()],
            |p| p.required_approvals = 1,
            |p| p.wait_timer = Some(Duration::from_secs(60)),
            |p| {
                p.windows = vec![slipway_config::Window {
                    text: "Mon 09:00-10:00 UTC".into(),
                    days: [true, false, false, false, false, false, false],
                    start_minute: 540,
                    end_minute: 600,
                }]
            },
        ];
        for rule in rules {
            let mut e = env();
            rule(&mut e.protection);
            let err = admit_with(&e, &release("Nightly", None), Kind::Deploy, &[]).unwrap_err();
            assert_eq!(err[0].code(), "mutable_tag");
        }
    }

    #[test]
    fn empty_version_reads_as_empty() {
        let err = admit_with(
            &protected_env(),
            &release("", Some("main")),
            Kind::Deploy,
            &[],
        )
        .unwrap_err();
        assert!(err[0].to_string().starts_with("the version is empty;"));
    }

    #[test]
    fn all_refusals_are_collected_in_gate_order() {
        let mut e = protected_env();
        e.require_config = vec!["DATABASE_URL".into()];
        e.requires = vec!["staging".into()];
        let err = admit_with(&e, &release("latest", Some("wip")), Kind::Deploy, &[]).unwrap_err();
        let codes: Vec<&str> = err.iter().map(Refusal::code).collect();
        assert_eq!(
            codes,
            [
                "branch_not_allowed",
                "missing_config",
                "requires_not_met",
                "mutable_tag"
            ]
        );
    }

    #[test]
    fn rollback_skips_branch_and_requires_but_not_config() {
        let mut e = protected_env();
        e.requires = vec!["staging".into()];
        assert_eq!(
            admit_with(&e, &release("v1", Some("feature/x")), Kind::Rollback, &[]),
            Ok(())
        );
        e.require_config = vec!["DATABASE_URL".into()];
        let err = admit_with(&e, &release("v1", None), Kind::Rollback, &[]).unwrap_err();
        assert_eq!(
            err,
            vec![Refusal::MissingConfig {
                keys: vec!["DATABASE_URL".into()]
            }]
        );
    }

    #[test]
    fn mutable_tag_list() {
        for v in [
            "latest", "LATEST", "Main", "master", "stable", "dev", "develop", "edge", "nightly",
            "HEAD", "canary", "", "  ",
        ] {
            assert!(is_mutable_tag(v), "{v:?}");
        }
        for v in [
            "v1",
            "sha-3f2a9c1",
            "1.4.2",
            "latest-1",
            "mainline",
            "stable-2024",
        ] {
            assert!(!is_mutable_tag(v), "{v:?}");
        }
    }

    #[test]
    fn glob_examples() {
        let cases = [
            ("main", "main", true),
            ("main", "mai", false),
            ("main", "mainx", false),
            ("release/*", "release/1.2", true),
            ("release/*", "release/", true),
            ("release/*", "release", false),
            ("release/*", "release/1.2/hotfix", true),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("?", "", false),
            ("?", "é", true),
            ("v?.*", "v1.4.2", true),
            ("v?.*", "v10.4", false),
            ("*-rc*", "1.0-rc2", true),
            ("a*b*c", "abbbbbbbc", true),
            ("a*b*c", "abbbbbbb", false),
            ("*a", "bab", false),
            ("**", "x/y", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob_match(p, t), want, "{p:?} vs {t:?}");
        }
    }

    /// Obviously-correct (exponential) reference for the property test.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some((&c, rest)) => match t.split_first() {
                Some((&tc, trest)) => (c == '?' || c == tc) && reference(rest, trest),
                None => false,
            },
        }
    }

    proptest! {
        #[test]
        fn glob_agrees_with_reference(p in "[ab/*?]{0,8}", t in "[ab/]{0,10}") {
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            prop_assert_eq!(glob_match(&p, &t), reference(&pc, &tc));
        }

        #[test]
        fn glob_without_wildcards_is_equality(p in "[a-c/.]{0,6}", t in "[a-c/.]{0,6}") {
            prop_assert_eq!(glob_match(&p, &t), p == t);
        }
    }
}
