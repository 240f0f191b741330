//! Reading secrets where the server runs: from its environment or a file the config
//! names. An environment's are read once, when the server starts
//! ([`EnvironmentSecrets::read`]); a pipeline's when each run starts, after a check at
//! start ([`unreadable_pipeline_secrets`]). Either way one that cannot be read stops the
//! start (and fails `slipway validate`) with the place the config names it.

use std::collections::BTreeMap;
use std::path::Path;

use slipway_pipeline::SecretSource;

use crate::model::{Config, Place};

/// The largest secret file read; a bigger one is refused rather than cut.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// A secret's value, or why it has none. `env` reads the server's environment.
pub fn read_secret(
    name: &str,
    source: &SecretSource,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    match source {
        SecretSource::Env(var) => env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
            format!("secret {name}: the server's environment has no {var} (or it is empty)")
        }),
        SecretSource::File(path) => read_secret_file(path)
            .map_err(|e| format!("secret {name}: cannot read {}: {e}", path.display())),
    }
}

fn read_secret_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SECRET_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SECRET_BYTES {
        return Err(std::io::Error::other(format!(
            "the file is larger than {} KiB",
            MAX_SECRET_BYTES / 1024
        )));
    }
    // A file ends with a newline that is no part of the secret.
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(std::io::Error::other("the file is empty"));
    }
    Ok(value.to_owned())
}

/// Every pipeline secret of `config` that cannot be read here, with where the config names
/// its source. The values are read again when a run starts (a rotated secret is used from
/// its next run); this is the check at start, so a name no run could read is an error at
/// once rather than at the first run.
pub fn unreadable_pipeline_secrets(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(Place, String)> {
    config
        .pipelines
        .values()
        .flat_map(|p| &p.secrets)
        .filter_map(|(name, secret)| {
            let why = read_secret(name, &secret.source, env).err()?;
            Some((secret.at.clone(), why))
        })
        .collect()
}

/// The values of every environment's `secrets:`, by environment and name. Kept in
/// memory only; `Debug` shows the names, never a value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvironmentSecrets {
    by_environment: BTreeMap<String, BTreeMap<String, String>>,
}

impl EnvironmentSecrets {
    /// Every environment secret of `config` read; `Err` lists each one that cannot be,
    /// with where the config names its source.
    pub fn read(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<EnvironmentSecrets, Vec<(Place, String)>> {
        let mut by_environment = BTreeMap::new();
        let mut problems = Vec::new();
        for (environment, e) in &config.environments {
            let mut values = BTreeMap::new();
            for (name, secret) in &e.secrets {
                match read_secret(name, &secret.source, env) {
                    Ok(value) => {
                        values.insert(name.clone(), value);
                    }
                    Err(why) => problems.push((secret.at.clone(), why)),
                }
            }
            by_environment.insert(environment.clone(), values);
        }
        if problems.is_empty() {
            Ok(EnvironmentSecrets { by_environment })
        } else {
            Err(problems)
        }
    }

    /// The secrets of `environment` by name (none for an environment without any).
    pub fn of(&self, environment: &str) -> Option<&BTreeMap<String, String>> {
        self.by_environment.get(environment)
    }

    /// Every value, to mask.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.by_environment
            .values()
            .flat_map(|m| m.values().map(String::as_str))
    }
}

impl std::fmt::Debug for EnvironmentSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: BTreeMap<&str, Vec<&str>> = self
            .by_environment
            .iter()
            .map(|(e, m)| (e.as_str(), m.keys().map(String::as_str).collect()))
            .collect();
        f.debug_struct("EnvironmentSecrets")
            .field("names", &names)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn secrets_come_from_the_environment_or_a_file_and_a_missing_one_says_which() {
        let env = |name: &str| (name == "TOKEN_VAR").then(|| "s3cr3t-value".to_owned());
        assert_eq!(
            read_secret("T", &SecretSource::Env("TOKEN_VAR".into()), &env).unwrap(),
            "s3cr3t-value"
        );
        assert_eq!(
            read_secret("T", &SecretSource::Env("NOPE".into()), &env).unwrap_err(),
            "secret T: the server's environment has no NOPE (or it is empty)"
        );
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"line-one-key\nline-two-key\n").unwrap();
        let value = read_secret("K", &SecretSource::File(file.path().into()), &env).unwrap();
        assert_eq!(value, "line-one-key\nline-two-key");
        let missing = read_secret("K", &SecretSource::File("/nonexistent/k".into()), &env);
        assert!(
            missing
                .unwrap_err()
                .starts_with("secret K: cannot read /nonexistent/k: ")
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_not_cut() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&vec![b'k'; MAX_SECRET_BYTES as usize + 1])
            .unwrap();
        let err = read_secret("K", &SecretSource::File(file.path().into()), &|_| None);
        assert!(err.unwrap_err().ends_with("the file is larger than 64 KiB"));
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&vec![b'k'; MAX_SECRET_BYTES as usize])
            .unwrap();
        let ok = read_secret("K", &SecretSource::File(file.path().into()), &|_| None);
        assert_eq!(ok.unwrap().len(), MAX_SECRET_BYTES as usize);
    }

    #[test]
    fn environment_secrets_name_each_unreadable_source_and_debug_hides_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "from-a-file-value\n").unwrap();
        let yaml = "version: 1\nenvironments:\n  production:\n    listen: 127.0.0.1:0\n    secrets:\n      API_KEY: { env: PROD_API_KEY }\n      SIGNING: { file: key }\n      GONE: { file: missing }\n";
        let config = crate::parse(yaml, "slipway.yaml", dir.path()).unwrap();
        let env = |name: &str| (name == "PROD_API_KEY").then(|| "from-the-env-value".to_owned());
        let problems = EnvironmentSecrets::read(&config, &env).unwrap_err();
        assert_eq!(problems.len(), 1);
        let (at, why) = &problems[0];
        assert_eq!((at.line, at.column), (8, 15));
        assert_eq!(at.path, "environments.production.secrets.GONE.file");
        assert!(why.starts_with("secret GONE: cannot read "), "{why}");

        std::fs::write(dir.path().join("missing"), "third-value").unwrap();
        let read = EnvironmentSecrets::read(&config, &env).unwrap();
        let production = read.of("production").unwrap();
        assert_eq!(production["API_KEY"], "from-the-env-value");
        assert_eq!(production["SIGNING"], "from-a-file-value");
        let debug = format!("{read:?}");
        assert!(
            debug.contains("API_KEY") && !debug.contains("value"),
            "{debug}"
        );
    }
}
