//! The environment of a workload (an instance or a shell command such as a hook). It is
//! built, never inherited: the server's environment holds its own secrets
//! (`SLIPWAY_ROUTER_TOKEN`, `SLIPWAY_TOKEN`, cloud credentials), and anything a process
//! inherits can be read from `/proc/<pid>/environ` by its user or printed into a log.

use std::collections::BTreeMap;
use std::ffi::OsString;

/// The only variables taken over from the server's own environment.
pub const INHERITED: &[&str] = &["PATH", "HOME", "LANG", "TZ"];

/// What a workload runs with: [`INHERITED`] from the server's environment where set, and
/// `given` (the config's variables and the `SLIPWAY_*` variables slipway sets on purpose)
/// over them. Start the process with `env_clear()` before applying it.
pub fn workload_env(given: &BTreeMap<String, String>) -> BTreeMap<OsString, OsString> {
    build(|name| std::env::var_os(name), given)
}

fn build(
    server: impl Fn(&str) -> Option<OsString>,
    given: &BTreeMap<String, String>,
) -> BTreeMap<OsString, OsString> {
    let mut env: BTreeMap<OsString, OsString> = INHERITED
        .iter()
        .filter_map(|name| Some((OsString::from(name), server(name)?)))
        .collect();
    env.extend(given.iter().map(|(k, v)| (k.into(), v.into())));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowlist_comes_from_the_server_and_the_config_wins() {
        let server: BTreeMap<&str, &str> = BTreeMap::from([
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/home/slipway"),
            ("TZ", "UTC"),
            ("SLIPWAY_ROUTER_TOKEN", "router-secret"),
            ("SLIPWAY_TOKEN", "slw_abc"),
            ("AWS_SECRET_ACCESS_KEY", "aws"),
            ("RUST_LOG", "debug"),
        ]);
        let given = BTreeMap::from([
            ("TZ".to_owned(), "Europe/Paris".to_owned()),
            ("PORT".to_owned(), "20001".to_owned()),
            ("DATABASE_URL".to_owned(), "sqlite://x".to_owned()),
        ]);
        let env = build(|name| server.get(name).map(OsString::from), &given);
        let pairs: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("DATABASE_URL", "sqlite://x"),
                ("HOME", "/home/slipway"),
                ("PATH", "/usr/bin:/bin"),
                ("PORT", "20001"),
                ("TZ", "Europe/Paris"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }
}
