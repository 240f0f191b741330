use std::net::SocketAddr;

/// Errors of the router's control surface (configuration, listeners, control API).
///
/// Request-level failures never surface here: they become 502/503/504 responses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no listener named {0:?}")]
    UnknownListener(String),
    #[error("a listener named {0:?} already exists")]
    ListenerExists(String),
    #[error("listener {name:?} is bound to {bound}, not {requested}; remove it first")]
    AddressConflict {
        name: String,
        bound: SocketAddr,
        requested: SocketAddr,
    },
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A command-line argument that failed validation; names the argument as given.
    #[error("{arg}: {reason}")]
    InvalidArgument { arg: String, reason: String },
    #[error("control API: {0}")]
    Control(String),
    #[error("control API answered {status}: {body}")]
    ControlStatus { status: u16, body: String },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
