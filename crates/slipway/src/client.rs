//! A typed client of the server's HTTP API (`/api/v1`). Errors keep what the user needs to
//! decide what to do next: unreachable server, refused token, or the API's own answer.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slipway_core::Status;

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
    /// The exit code of DESIGN §5: 2 for bad input (400, 404, 422), 3 when the server
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
// Only the fields the CLI reads; `--json` prints the server's object untouched.

#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub id: i64,
    pub app: String,
    pub environment: String,
    pub version: String,
    #[serde(default)]
    pub kind: String,
    pub status: Status,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub rolled_back_from: Option<String>,
    #[serde(default)]
    pub statuses: Vec<StatusEntry>,
    #[serde(default)]
    pub traffic: Vec<TrafficEntry>,
    /// The canary analysis's latest verdict (`pass: …`, `fail: …`) while the rollout runs.
    #[serde(default)]
    pub analysis: Option<String>,
    /// The canary pause the rollout waits at: `manual` (for `slipway promote`) or a duration.
    #[serde(default)]
    pub paused: Option<String>,
}

impl Deployment {
    /// The reason of the latest status change (e.g. what a waiting deployment waits for).
    pub fn last_reason(&self) -> &str {
        self.statuses.last().map_or("", |s| s.reason.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusEntry {
    pub status: Status,
    pub at: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TrafficEntry {
    pub version: String,
    pub weight: f64,
    /// The router's counters for this release, cumulative since the router started.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub errors: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogLine {
    pub seq: i64,
    pub at: String,
    #[serde(default)]
    pub source: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
struct LogLines {
    lines: Vec<LogLine>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnvStatus {
    pub app: String,
    pub environment: String,
    pub current: Option<Current>,
    #[serde(default)]
    pub traffic: Vec<TrafficEntry>,
    #[serde(default)]
    pub in_progress: Option<Deployment>,
    #[serde(default)]
    pub waiting: Vec<Deployment>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Current {
    pub version: String,
    #[serde(default)]
    pub deployment_id: Option<i64>,
    #[serde(default)]
    pub since: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StatusList {
    pub environments: Vec<EnvStatus>,
}

#[derive(Debug, Deserialize)]
pub struct DeploymentList {
    pub deployments: Vec<Deployment>,
}

#[derive(Debug, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub role: String,
    pub token: String,
}

#[derive(Debug, Default, Serialize)]
pub struct NewDeployment {
    pub app: String,
    pub environment: String,
    pub version: String,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

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
        query: &[(&str, String)],
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
        query: &[(&str, String)],
    ) -> Result<Fetched<T>> {
        let raw = self.send(Method::GET, path, query, None).await?;
        self.typed(raw)
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<Fetched<T>> {
        let raw = self.send(Method::POST, path, &[], Some(body)).await?;
        self.typed(raw)
    }

    fn typed<T: DeserializeOwned>(&self, raw: Value) -> Result<Fetched<T>> {
        let data = T::deserialize(&raw).map_err(|e| ClientError::Protocol {
            url: self.base.to_string(),
            reason: format!("unexpected JSON: {e}"),
        })?;
        Ok(Fetched { raw, data })
    }

    pub async fn create_deployment(&self, new: &NewDeployment) -> Result<Fetched<Deployment>> {
        let body = serde_json::to_value(new).map_err(|e| ClientError::Protocol {
            url: self.base.to_string(),
            reason: e.to_string(),
        })?;
        self.post("api/v1/deployments", &body).await
    }

    pub async fn deployment(&self, id: i64) -> Result<Fetched<Deployment>> {
        self.get(&format!("api/v1/deployments/{id}"), &[]).await
    }

    pub async fn deployments(
        &self,
        app: &str,
        env: &str,
        limit: u32,
    ) -> Result<Fetched<DeploymentList>> {
        let query = [
            ("app", app.to_string()),
            ("environment", env.to_string()),
            ("limit", limit.to_string()),
        ];
        self.get("api/v1/deployments", &query).await
    }

    pub async fn logs(&self, id: i64, after: Option<i64>) -> Result<Fetched<Vec<LogLine>>> {
        let query: Vec<(&str, String)> = after
            .map(|a| ("after", a.to_string()))
            .into_iter()
            .collect();
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
        let body = match comment {
            Some(c) => serde_json::json!({ "comment": c }),
            None => serde_json::json!({}),
        };
        self.post(
            &format!("api/v1/deployments/{id}/{}", action.as_str()),
            &body,
        )
        .await
    }

    pub async fn rollback(
        &self,
        app: &str,
        env: &str,
        to: Option<&str>,
    ) -> Result<Fetched<Deployment>> {
        let body = match to {
            Some(v) => serde_json::json!({ "to_version": v }),
            None => serde_json::json!({}),
        };
        let path = format!(
            "api/v1/apps/{}/environments/{}/rollback",
            segment(app),
            segment(env)
        );
        self.post(&path, &body).await
    }

    pub async fn status(
        &self,
        app: Option<&str>,
        env: Option<&str>,
    ) -> Result<Fetched<StatusList>> {
        let mut query = Vec::new();
        if let Some(app) = app {
            query.push(("app", app.to_string()));
        }
        if let Some(env) = env {
            query.push(("environment", env.to_string()));
        }
        self.get("api/v1/status", &query).await
    }

    pub async fn add_user(&self, name: &str, role: &str) -> Result<Fetched<NewUser>> {
        self.post(
            "api/v1/users",
            &serde_json::json!({ "name": name, "role": role }),
        )
        .await
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
    #[derive(Deserialize)]
    struct Envelope {
        error: Body,
    }
    #[derive(Deserialize)]
    struct Body {
        code: String,
        message: String,
        #[serde(default)]
        details: Option<Value>,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) => ClientError::Api {
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

    #[test]
    fn new_deployment_leaves_out_what_was_not_given() {
        let body = serde_json::to_value(NewDeployment {
            app: "web".into(),
            environment: "staging".into(),
            version: "v1".into(),
            ..NewDeployment::default()
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"app":"web","environment":"staging","version":"v1"})
        );
    }
}
