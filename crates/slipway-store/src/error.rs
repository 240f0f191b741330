use slipway_core::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} not found")]
    NotFound { what: String },
    /// A transition expected another status; nothing was written.
    #[error("the deployment is {current}")]
    Conflict { current: Status },
    /// A run's or job's transition expected another status; nothing was written.
    #[error("{what} is {current}")]
    RunConflict {
        what: String,
        current: slipway_pipeline::Status,
    },
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make {path} private to this user: {source}")]
    Permissions {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// Giving `name` another role would leave no admin: nobody could add users or force
    /// a deployment any more. Nothing was written.
    #[error("{name} is the last admin; it cannot become a {role}")]
    LastAdmin { name: String, role: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not parse, e.g. a status this version does not know (a newer
    /// slipway wrote it, or someone edited the database by hand).
    #[error("corrupt value in the database: {message}")]
    Corrupt { message: String },
}
