//! A typed client of the server's HTTP API (`/api/v1`). Errors keep what the user needs to
//! decide what to do next: unreachable server, refused token, or the API's own answer.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "cannot reach the slipway server at {url} ({reason})\n\
         hint: start one with `slipway server`, or point --server / SLIPWAY_SERVER at it"
    )]
    Unreachable { url: String, reason: String },
    #[error("{}", api_message(status, code, message, details))]
    Api {
        status: StatusCode,
        code: String,
        message: String,
        details: Option<Value>,
    },
    #[error("unexpected answer from the server at {url}: {reason}")]
    Protocol { url: String, reason: String },
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

fn api_message(status: &StatusCode, code: &str, message: &str, details: &Option<Value>) -> String {
    let mut out = format!("{message} ({code})");
    match details {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.push_str(&format!("\n  {s}")),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => out.push_str(&format!("\n  - {s}")),
                    other => out.push_str(&format!("\n  - {other}")),
                }
            }
        }
        Some(Value::Object(map)) => {
            for (k, v) in map {
                match v {
                    Value::String(s) => out.push_str(&format!("\n  {k}: {s}")),
                    Value::Array(items) => {
                        let items: Vec<String> = items
                            .iter()
                            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                            .collect();
                        out.push_str(&format!("\n  {k}: {}", items.join("; ")));
                    }
                    other => out.push_str(&format!("\n  {k}: {other}")),
                }
            }
        }
        Some(other) => out.push_str(&format!("\n  {other}")),
    }
    match *status {
        StatusCode::UNAUTHORIZED => out.push_str(
            "\nhint: the server did not accept the token; pass --token or set SLIPWAY_TOKEN \
             (the admin token is in <data_dir>/admin.token on the server)",
        ),
        StatusCode::FORBIDDEN => {
            out.push_str("\nhint: your user's role does not allow this; ask an admin")
        }
        _ => {}
    }
    out
}

impl ClientError {
    /// The exit code of docs/cli.md: 2 for bad input (400, 404, 422), 3 when the server
    /// cannot be reached, 1 for everything that is an operation failing (409, 401, 403…).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::BadUrl { .. } => 2,
            ClientError::Unreachable { .. } => 3,
            ClientError::Api { status, .. } => match *status {
                StatusCode::BAD_REQUEST
                | StatusCode::NOT_FOUND
                | StatusCode::UNPROCESSABLE_ENTITY => 2,
                _ => 1,
            },
            ClientError::Protocol { .. } => 1,
        }
    }
}

// === API objects ===
// The server's own wire types; `--json` prints the server's object untouched.

pub use slipway_api::{
    CreateDeployment, CreatedUser, Deployment, DeploymentList, DeploymentQuery, EnvStatus, LogLine,
    LogLines, LogQuery, Role, RollbackRequest, StatusEntry, StatusList, StatusQuery, TrafficEntry,
};

/// An API answer both as the server sent it (for `--json`) and typed.
#[derive(Debug)]
pub struct Fetched<T> {
    pub raw: Value,
    pub data: T,
}

/// A decision on a deployment: `POST /api/v1/deployments/{id}/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Approve,
    Reject,
    Promote,
    Cancel,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Promote => "promote",
            Action::Cancel => "cancel",
        }
    }
}

// === impl Client ===

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> Result<Client> {
        let bad = |reason: String| ClientError::BadUrl {
            url: server.to_string(),
            reason,
        };
        let mut base = Url::parse(server).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad("expected http://HOST:PORT".into()));
        }
        // `join` replaces the last path segment unless the base ends with a slash.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Client { http, base, token })
    }

    /// A client of the same server acting as another user.
    pub fn with_token(&self, token: String) -> Client {
        Client {
            token: Some(token),
            ..self.clone()
        }
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).map_err(|e| ClientError::BadUrl {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &impl Serialize,
        body: Option<&Value>,
    ) -> Result<Value> {
        let url = self.url(path)?;
        let mut req = self.http.request(method, url.clone()).query(query);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
                url: url.to_string(),
                reason: format!("{status} with a body that is not JSON: {e}"),
            });
        }
        Err(api_error(status, &bytes))
    }

    fn transport_error(&self, e: &reqwest::Error) -> ClientError {
        if e.is_connect() || e.is_timeout() {
            ClientError::Unreachable {
                url: self.base.to_string(),
                reason: root_cause(e),
            }
        } else {
            ClientError::Protocol {
                url: self.base.to_string(),
                reason: root_cause(e),
            }
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &impl Serialize,
    ) -> Result<Fetched<T>> {
        let raw = self.send(Method::GET, path, query, None).await?;
        self.typed(raw)
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<Fetched<T>> {
        let raw = self.send(Method::POST, path, &(), Some(body)).await?;
        self.typed(raw)
    }

    fn typed<T: DeserializeOwned>(&self, raw: Value) -> Result<Fetched<T>> {
        let data = T::deserialize(&raw).map_err(|e| ClientError::Protocol {
            url: self.base.to_string(),
            reason: format!("unexpected JSON: {e}"),
        })?;
        Ok(Fetched { raw, data })
    }

    /// `body` as JSON: the wire types always serialise.
    fn json(&self, body: &impl Serialize) -> Result<Value> {
        serde_json::to_value(body).map_err(|e| ClientError::Protocol {
            url: self.base.to_string(),
            reason: e.to_string(),
        })
    }

    pub async fn create_deployment(&self, new: &CreateDeployment) -> Result<Fetched<Deployment>> {
        self.post("api/v1/deployments", &self.json(new)?).await
    }

    pub async fn deployment(&self, id: i64) -> Result<Fetched<Deployment>> {
        self.get(&format!("api/v1/deployments/{id}"), &()).await
    }

    pub async fn deployments(
        &self,
        app: &str,
        env: &str,
        limit: u32,
    ) -> Result<Fetched<DeploymentList>> {
        let query = DeploymentQuery {
            app: Some(app.to_string()),
            environment: Some(env.to_string()),
            limit: Some(limit),
            ..DeploymentQuery::default()
        };
        self.get("api/v1/deployments", &query).await
    }

    pub async fn logs(&self, id: i64, after: Option<i64>) -> Result<Fetched<Vec<LogLine>>> {
        let query = LogQuery { after, limit: None };
        let fetched: Fetched<LogLines> = self
            .get(&format!("api/v1/deployments/{id}/logs"), &query)
            .await?;
        Ok(Fetched {
            raw: fetched.raw,
            data: fetched.data.lines,
        })
    }

    pub async fn decide(
        &self,
        id: i64,
        action: Action,
        comment: Option<&str>,
    ) -> Result<Fetched<Deployment>> {
        let body = slipway_api::Decision {
            comment: comment.map(str::to_string),
        };
        self.post(
            &format!("api/v1/deployments/{id}/{}", action.as_str()),
            &self.json(&body)?,
        )
        .await
    }

    pub async fn rollback(
        &self,
        app: &str,
        env: &str,
        to: Option<&str>,
        force_reason: Option<&str>,
    ) -> Result<Fetched<Deployment>> {
        let body = RollbackRequest {
            to_version: to.map(str::to_string),
            force: force_reason.is_some(),
            reason: force_reason.map(str::to_string),
        };
        let path = format!(
            "api/v1/apps/{}/environments/{}/rollback",
            segment(app),
            segment(env)
        );
        self.post(&path, &self.json(&body)?).await
    }

    pub async fn status(
        &self,
        app: Option<&str>,
        env: Option<&str>,
    ) -> Result<Fetched<StatusList>> {
        let query = StatusQuery {
            app: app.map(str::to_string),
            environment: env.map(str::to_string),
        };
        self.get("api/v1/status", &query).await
    }

    pub async fn add_user(&self, name: &str, role: Role) -> Result<Fetched<CreatedUser>> {
        let body = slipway_api::CreateUser {
            name: name.to_string(),
            role,
        };
        self.post("api/v1/users", &self.json(&body)?).await
    }

    pub async fn notification_attempts(
        &self,
        limit: u32,
    ) -> Result<Fetched<slipway_api::NotificationAttempts>> {
        let query = slipway_api::NotificationQuery { limit: Some(limit) };
        self.get("api/v1/notifications", &query).await
    }

    /// The instances this server holds that no deployment owns.
    pub async fn leftovers(&self) -> Result<Fetched<slipway_api::Leftovers>> {
        self.get("api/v1/gc", &()).await
    }

    /// Removes them (admin).
    pub async fn gc(&self) -> Result<Fetched<slipway_api::GcResult>> {
        self.post("api/v1/gc", &Value::Null).await
    }
}

/// Names come from the user: keep them one path segment even if they hold `/` or `?`.
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<slipway_api::ErrorBody>(body) {
        Ok(slipway_api::ErrorBody { error }) => ClientError::Api {
            status,
            code: error.code,
            message: error.message,
            details: error.details,
        },
        Err(_) => ClientError::Api {
            status,
            code: status.as_str().to_string(),
            message: format!(
                "the server answered {status}: {}",
                String::from_utf8_lossy(body).trim()
            ),
            details: None,
        },
    }
}

/// reqwest's Display stops at "error sending request"; the cause is what the user needs.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A deployment as the server would send it, with the fields of `overrides` replaced: for
/// tests of what the CLI makes of one.
#[cfg(test)]
pub fn test_deployment(overrides: Value) -> Deployment {
    let mut d = serde_json::json!({
        "id": 7, "app": "web", "environment": "production", "version": "v2",
        "ref": null, "commit": null, "committed_at": null, "kind": "deploy",
        "status": "in_progress", "phase": "pending", "waiting_on": null,
        "created_by": "bob", "created_at": "2026-11-24T10:00:00.000Z",
        "updated_at": "2026-11-24T10:00:00.000Z", "rolled_back_from": null, "force": null,
        "statuses": [], "approvals": [], "traffic": [], "analysis": null, "paused": null
    });
    if let (Some(d), Value::Object(fields)) = (d.as_object_mut(), overrides) {
        d.extend(fields);
    }
    serde_json::from_value(d).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_map_to_the_documented_exit_codes() {
        let code =
            |status| api_error(status, br#"{"error":{"code":"x","message":"m"}}"#).exit_code();
        assert_eq!(code(StatusCode::BAD_REQUEST), 2);
        assert_eq!(code(StatusCode::NOT_FOUND), 2);
        assert_eq!(code(StatusCode::UNPROCESSABLE_ENTITY), 2);
        assert_eq!(code(StatusCode::CONFLICT), 1);
        assert_eq!(code(StatusCode::UNAUTHORIZED), 1);
        assert_eq!(code(StatusCode::FORBIDDEN), 1);
    }

    #[test]
    fn api_error_shows_message_code_and_details() {
        let e = api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"error":{"code":"gate_refused","message":"ref not allowed","details":["branches: main"]}}"#,
        );
        assert_eq!(
            e.to_string(),
            "ref not allowed (gate_refused)\n  - branches: main"
        );
    }

    #[test]
    fn detail_lists_read_as_text() {
        let e = api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"error":{"code":"requires_not_met","message":"refused","details":{"deployment_id":4,"reasons":["a","b"]}}}"#,
        );
        assert_eq!(
            e.to_string(),
            "refused (requires_not_met)\n  deployment_id: 4\n  reasons: a; b"
        );
    }

    #[test]
    fn a_non_json_error_body_is_still_reported() {
        let e = api_error(StatusCode::BAD_GATEWAY, b"upstream down");
        assert!(e.to_string().contains("upstream down"), "{e}");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("web"), "web");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(Client::new("http://127.0.0.1:7700", None).is_ok());
        assert_eq!(
            Client::new("127.0.0.1:7700", None).unwrap_err().exit_code(),
            2
        );
    }
}
