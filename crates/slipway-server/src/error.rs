//! One error type for the API: every failure becomes `{"error": {code, message, details?}}`
//! with the status its kind calls for.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use slipway_api::{ErrorBody, ErrorDetail};
use slipway_engine::ErrorKind;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl From<slipway_engine::Error> for ApiError {
    fn from(e: slipway_engine::Error) -> ApiError {
        let status = match e.kind() {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Refused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "internal error");
        }
        let details = match &e {
            slipway_engine::Error::Refused {
                reasons,
                deployment_id,
                ..
            } => Some(serde_json::json!({ "reasons": reasons, "deployment_id": deployment_id })),
            _ => None,
        };
        ApiError {
            status,
            code: e.code().to_string(),
            message: e.to_string(),
            details,
        }
    }
}

impl From<slipway_store::Error> for ApiError {
    fn from(e: slipway_store::Error) -> ApiError {
        slipway_engine::Error::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// Errors of starting and running the server (the binary's edge turns them into messages).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] slipway_config::ConfigError),
    #[error("store: {0}")]
    Store(#[from] slipway_store::Error),
    #[error("{0}")]
    Engine(#[from] slipway_engine::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server.data_dir {}: {source}", path.display())]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The configuration or environment asks for something this server cannot set up: a
    /// store not built yet, a router token that is missing.
    #[error("{0}")]
    Setup(String),
}

impl Error {
    /// Whether the config (or what it names on this machine: a port in use, a data_dir
    /// that is a file) is at fault, rather than the server failing: `slipway server` then
    /// exits 2, bad input.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Config(_) | Error::Listen { .. } | Error::DataDir { .. } | Error::Setup(_)
        )
    }
}
