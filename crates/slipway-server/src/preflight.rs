//! What a config asks of this machine, checked before anything starts: every address the
//! server would listen on is free, `data_dir` is (or can become) a directory, every
//! webhook's signing key is in its environment variable, and every environment or
//! pipeline secret can be read from its variable or file. Both
//! `slipway validate` and `slipway server` report these as config errors with the key
//! path, so a port in use is bad input (exit 2) rather than a crash half-way through.

use std::net::SocketAddr;
use std::path::Path;

use slipway_config::{Config, ConfigError, Diagnostic, Strategy};

/// Every problem of `config` on this machine; `file` names the config in the diagnostics.
pub fn preflight(config: &Config, file: &str) -> Result<(), ConfigError> {
    let mut diagnostics = Vec::new();
    let mut problem = |path: String, message: String, hint: &str| {
        diagnostics.push(Diagnostic {
            file: file.to_string(),
            line: 0,
            column: 0,
            path,
            message,
            expected: None,
            hint: Some(hint.to_string()),
        });
    };
    if config.server.database.is_none()
        && let Some(message) = data_dir_problem(&config.server.data_dir)
    {
        problem(
            "server.data_dir".into(),
            message,
            "point data_dir at a directory (it is created if missing)",
        );
    }
    for (path, addr) in listeners(config) {
        if let Some(message) = bind_problem(addr) {
            problem(
                path,
                message,
                "choose a free port (0 picks one), or stop what listens there (a slipway server already running on this config?)",
            );
        }
    }
    let env = |name: &str| std::env::var(name).ok();
    let mut unreadable = slipway_config::EnvironmentSecrets::read(config, &env)
        .err()
        .unwrap_or_default();
    unreadable.extend(slipway_config::unreadable_pipeline_secrets(config, &env));
    let keys = crate::webhook::missing_keys(config)
        .into_iter()
        .map(|p| (p, "set it in the environment the server starts in"));
    let secrets = unreadable.into_iter().map(|p| {
        (
            p,
            "set the variable where the server starts, or put the file where the config says",
        )
    });
    for ((place, message), hint) in keys.chain(secrets) {
        diagnostics.push(Diagnostic {
            file: file.to_string(),
            line: place.line,
            column: place.column,
            path: place.path,
            message,
            expected: None,
            hint: Some(hint.to_string()),
        });
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(ConfigError { diagnostics })
    }
}

/// The addresses `slipway server` binds, with the key that sets each one. A standalone
/// router's `router_control` is another process's address, so it is not among them.
fn listeners(config: &Config) -> Vec<(String, SocketAddr)> {
    let mut out = vec![("server.listen".to_string(), config.server.listen)];
    if config.server.router_control.is_none() {
        for (name, env) in &config.environments {
            out.push((format!("environments.{name}.listen"), env.listen));
            if let Strategy::BlueGreen {
                preview: Some(addr),
                ..
            } = env.strategy
            {
                out.push((
                    format!("environments.{name}.strategy.blue-green.preview"),
                    addr,
                ));
            }
        }
    }
    out
}

/// Why `addr` cannot be bound now, if it cannot. Port 0 is always free. The probe socket is
/// closed at once; the server binds again with SO_REUSEADDR, so the probe never holds it up.
fn bind_problem(addr: SocketAddr) -> Option<String> {
    if addr.port() == 0 {
        return None;
    }
    match std::net::TcpListener::bind(addr) {
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Some(format!("{addr} is already in use by another process"))
        }
        Err(e) => Some(format!("cannot listen on {addr}: {e}")),
    }
}

/// Why `dir` cannot serve as the data directory, if it cannot: it exists and is not a
/// directory, or the nearest existing ancestor is not one.
fn data_dir_problem(dir: &Path) -> Option<String> {
    let mut probe = Some(dir);
    while let Some(path) = probe {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => return None,
            Ok(_) if path == dir => {
                return Some(format!("{} exists and is not a directory", dir.display()));
            }
            Ok(_) => {
                return Some(format!(
                    "{} cannot be created: {} is not a directory",
                    dir.display(),
                    path.display()
                ));
            }
            // Not there, or below a file: look at what is above.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                probe = path.parent()
            }
            Err(e) => return Some(format!("cannot use {}: {e}", dir.display())),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_where_the_data_dir_should_be_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, "").unwrap();
        assert!(
            data_dir_problem(&file)
                .unwrap()
                .contains("is not a directory")
        );
        assert!(
            data_dir_problem(&file.join("below"))
                .unwrap()
                .contains("cannot be created")
        );
        assert_eq!(data_dir_problem(&dir.path().join("new/deeper")), None);
        assert_eq!(data_dir_problem(dir.path()), None);
    }

    #[test]
    fn a_port_in_use_is_named_and_port_zero_is_free() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        assert!(bind_problem(addr).unwrap().contains("already in use"));
        assert_eq!(bind_problem("127.0.0.1:0".parse().unwrap()), None);
    }
}
