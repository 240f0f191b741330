//! `secrets:` of a pipeline or an environment: names mapped to where each value is read,
//! `{ env: VARIABLE }` or `{ file: PATH }`, never the value itself.

use std::collections::BTreeMap;
use std::path::Path;

use slipway_pipeline::SecretSource;

use super::environment::check_variable_name;
use super::{Checker, Item};
use crate::model::{Config, Secret};
use crate::tree::{Node, Pos, quote};

const SECRET_KEYS: &[&str] = &["env", "file"];
/// The server's own credentials, which no workload is given (docs/security.md).
const SERVER_TOKENS: &[&str] = &["SLIPWAY_ROUTER_TOKEN", "SLIPWAY_TOKEN"];

impl<'a> Checker<'a> {
    /// Each secret's source with the place it is written (for errors only the machine
    /// the server runs on can find: a variable unset, a file missing). A relative file is
    /// taken from the config file's directory. A name `is_variable` says is taken by a
    /// variable is refused: the workload is given one value under each name.
    pub(super) fn secrets(
        &mut self,
        item: &Item<'a>,
        base_dir: &Path,
        is_variable: impl Fn(&str) -> bool,
    ) -> BTreeMap<String, Secret> {
        let mut secrets = BTreeMap::new();
        for (name, source) in self.entries(item, "a mapping of secret names to their sources") {
            if !check_variable_name(self, &name, &source) {
                continue;
            }
            if is_variable(&name) {
                let d = self
                    .diag(
                        source.pos,
                        &source.path,
                        format!("{} is both a variable and a secret", quote(&name)),
                    )
                    .with_hint(Some(format!(
                        "remove `{name}` from `variables`: the secret is given to the workload under that name"
                    )));
                self.push(d);
                continue;
            }
            if !matches!(source.node.value, Node::Map(_)) {
                let d = self
                    .diag(
                        source.pos,
                        &source.path,
                        "a secret's value is never written in the config",
                    )
                    .with_expected("`{ env: VARIABLE }` or `{ file: PATH }`")
                    .with_hint(Some(format!(
                        "put the value in the server's environment and write `{name}: {{ env: {name} }}`"
                    )));
                self.push(d);
                continue;
            }
            let f = self.fields(&source, SECRET_KEYS);
            let found = match (f.get("env"), f.get("file")) {
                (Some(env), None) => self.nonempty_string(&env).and_then(|var| {
                    check_variable_name(self, &var, &env)
                        .then(|| (SecretSource::Env(var), env.place()))
                }),
                (None, Some(file)) => self
                    .nonempty_string(&file)
                    .map(|path| (SecretSource::File(base_dir.join(path)), file.place())),
                (Some(_), Some(file)) => {
                    let d = self
                        .diag(file.pos, &file.path, "a secret has one source")
                        .with_expected("`env` or `file`, not both");
                    self.push(d);
                    None
                }
                (None, None) => {
                    self.missing(
                        &f,
                        "env",
                        "the server's variable that holds it (or `file`)",
                        None,
                    );
                    None
                }
            };
            if let Some((source, at)) = found {
                secrets.insert(name, Secret { source, at });
            }
        }
        secrets
    }

    /// An environment's secret read from a variable that holds one of the server's own
    /// credentials (its tokens, a webhook's signing key) would hand that credential to
    /// every workload there: refused.
    pub(super) fn check_secret_sources(&mut self, config: &Config) {
        let signing: Vec<&str> = config
            .notifications
            .iter()
            .filter_map(|w| w.secret.as_ref().map(|s| s.env.as_str()))
            .collect();
        for env in config.environments.values() {
            for secret in env.secrets.values() {
                let SecretSource::Env(var) = &secret.source else {
                    continue;
                };
                let what = if SERVER_TOKENS.contains(&var.as_str()) {
                    "the server's own token"
                } else if signing.contains(&var.as_str()) {
                    "a webhook's signing key"
                } else {
                    continue;
                };
                let pos = Pos {
                    line: secret.at.line,
                    column: secret.at.column,
                };
                let d = self
                    .diag(
                        pos,
                        &secret.at.path,
                        format!(
                            "{} holds {what}, which never reaches a workload",
                            quote(var)
                        ),
                    )
                    .with_hint(Some(
                        "give the workload a credential of its own, in another variable".to_owned(),
                    ));
                self.push(d);
            }
        }
    }
}
