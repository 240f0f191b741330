use slipway_core::{DeploymentId, Status};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when a user asks the engine for something. Each variant maps to one
/// HTTP status in the API (see `Error::kind`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that is wrong on its face: a malformed version, an unknown app.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// The user's role or identity does not allow it.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The deployment is not in a state where this makes sense.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A gate refused the release. The refused attempt is recorded as deployment
    /// `deployment_id` so the refusal shows in the history.
    #[error("{message}")]
    Refused {
        code: &'static str,
        message: String,
        reasons: Vec<String>,
        deployment_id: Option<DeploymentId>,
    },
    #[error("store: {0}")]
    Store(#[from] slipway_store::Error),
    #[error("router: {0}")]
    Router(String),
    #[error("driver: {0}")]
    Driver(#[from] slipway_drivers::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not supported yet: {0}")]
    Unsupported(String),
}

/// The class of an error, which decides its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    NotFound,
    Forbidden,
    Conflict,
    Refused,
    Internal,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::BadRequest { .. } => ErrorKind::BadRequest,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Refused { .. } => ErrorKind::Refused,
            Error::Store(slipway_store::Error::NotFound { .. }) => ErrorKind::NotFound,
            Error::Store(
                slipway_store::Error::Conflict { .. } | slipway_store::Error::RunConflict { .. },
            ) => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }

    /// A stable, machine-readable code for the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Forbidden { code, .. }
            | Error::Conflict { code, .. }
            | Error::Refused { code, .. } => code,
            Error::NotFound { .. } | Error::Store(slipway_store::Error::NotFound { .. }) => {
                "not_found"
            }
            Error::Store(
                slipway_store::Error::Conflict { .. } | slipway_store::Error::RunConflict { .. },
            ) => "conflict",
            _ => "internal",
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Error {
        Error::NotFound { what: what.into() }
    }

    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> Error {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn forbidden(code: &'static str, message: impl Into<String>) -> Error {
        Error::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn not_pending(id: DeploymentId, status: Status) -> Error {
        Error::conflict(
            "not_pending",
            format!(
                "deployment {id} is {status}; only a queued or waiting deployment can be decided"
            ),
        )
    }
}

/// Why a rollout step did not go on.
pub(crate) enum Stop {
    /// A check failed (health, smoke, analysis, a hook): the deployment ends `failure`.
    Failed(String),
    /// slipway itself could not go on (store, driver, router): it ends `error`.
    Internal(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Internal(e)
    }
}

impl From<slipway_store::Error> for Stop {
    fn from(e: slipway_store::Error) -> Stop {
        Stop::Internal(e.into())
    }
}
