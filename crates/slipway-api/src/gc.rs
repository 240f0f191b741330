//! `GET /api/v1/gc` (what `slipway gc --dry-run` lists) and `POST /api/v1/gc` (what
//! `slipway gc` removed): the instances this server's drivers hold that no deployment
//! owns.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An instance no deployment owns (a container labelled for this server, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeftoverView {
    /// The `driver:` kind that holds it: `docker` or `process`.
    pub driver: String,
    /// Its instance id (a container's name, `slipway-<app>-<env>-<version>-<n>`); empty
    /// when it carries none.
    pub name: String,
    /// The driver's identity of it: `docker:<container id>`, `pid:<pid>:<start time>`.
    pub handle: String,
    pub running: bool,
    /// From its labels, when it has them.
    pub app: Option<String>,
    pub environment: Option<String>,
    pub release: Option<String>,
    /// The deployment that started it (`slipway.deployment`), which no longer owns it.
    pub deployment: Option<String>,
}

/// `GET /api/v1/gc`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Leftovers {
    pub leftovers: Vec<LeftoverView>,
}

/// One leftover `POST /api/v1/gc` left alone this time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SkippedLeftover {
    pub leftover: LeftoverView,
    pub reason: String,
}

/// `POST /api/v1/gc`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GcResult {
    pub removed: Vec<LeftoverView>,
    pub skipped: Vec<SkippedLeftover>,
}
