//! The binary's error type. Every failure ends here and becomes one exit code (docs/cli.md):
//! 1 the operation failed, 2 bad usage or bad input, 3 cannot reach the server.

use crate::client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A complete report: file, line, column, key path, expectation, hint.
    #[error("{0}")]
    Config(#[from] slipway_config::ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    #[error("server: {0}")]
    Server(#[from] slipway_server::Error),
    #[error("router: {0}")]
    Router(#[from] slipway_router::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Client(e) => e.exit_code(),
            Error::Config(_) | Error::Usage(_) => 2,
            Error::Server(e) if e.is_bad_input() => 2,
            Error::Failed(_) | Error::Server(_) | Error::Router(_) | Error::Io { .. } => 1,
        }
    }

    /// What `main` prints on stderr: one `error:` heading per problem.
    pub fn report(&self) -> String {
        match self {
            Error::Config(e) | Error::Server(slipway_server::Error::Config(e)) => e
                .diagnostics
                .iter()
                .map(|d| format!("error: {d}"))
                .collect::<Vec<_>>()
                .join("\n"),
            other => format!("error: {other}"),
        }
    }
}
