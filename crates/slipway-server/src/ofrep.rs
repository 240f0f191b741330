//! OFREP, the OpenFeature Remote Evaluation Protocol, so OpenFeature SDKs evaluate
//! slipway's flags unchanged: `POST /ofrep/v1/evaluate/flags/{key}` and the bulk
//! `POST /ofrep/v1/evaluate/flags` (with `ETag` / `If-None-Match` → 304).
//!
//! Authentication: a slipway API token of any role as `Authorization: Bearer <token>`
//! (the providers' `headers` option); one the store accepted in the last second is
//! trusted without asking it again. The environment is named by the
//! `X-Slipway-Environment` header. Bodies, reasons, error codes and statuses are the
//! protocol's: 400 with `PARSE_ERROR`, `INVALID_CONTEXT`, `TARGETING_KEY_MISSING` or
//! `GENERAL`, 404 with `FLAG_NOT_FOUND`, 401 without a valid token.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use slipway_store::StoredFlag;

use crate::AppState;
use crate::auth::{Auth, hash_token};
use crate::error::ApiError;
use crate::flags::EnvFlags;

/// The header that names the environment whose flags are evaluated.
pub const ENVIRONMENT_HEADER: &str = "x-slipway-environment";

/// An authenticated evaluator: [`Auth`], with a token the store accepted within the last
/// second taken on trust.
pub struct Evaluator;

impl FromRequestParts<AppState> for Evaluator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let hash = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(hash_token);
        if let Some(hash) = &hash
            && state.flags.token_trusted(hash)
        {
            return Ok(Evaluator);
        }
        Auth::from_request_parts(parts, state).await?;
        if let Some(hash) = hash {
            state.flags.trust_token(hash);
        }
        Ok(Evaluator)
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Success<'a> {
    key: &'a str,
    value: &'a Value,
    reason: &'static str,
    variant: &'a str,
    metadata: Metadata<'a>,
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    environment: &'a str,
    version: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    error_code: &'static str,
    error_details: String,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Outcome<'a> {
    Success(Success<'a>),
    Failure(Failure<'a>),
}

#[derive(Debug, Serialize)]
struct Bulk<'a> {
    flags: Vec<Outcome<'a>>,
}

fn json(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => general(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            format!("cannot encode: {e}"),
        ),
    }
}

fn failure(status: StatusCode, key: Option<&str>, code: &'static str, details: String) -> Response {
    json(
        status,
        &Failure {
            key,
            error_code: code,
            error_details: details,
        },
    )
}

fn general(status: StatusCode, key: Option<&str>, details: String) -> Response {
    failure(status, key, "GENERAL", details)
}

/// A request's evaluation context: the body's `context` object; no body, or no
/// `context`, is an empty one.
fn context(body: &[u8]) -> Result<Map<String, Value>, (&'static str, String)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ("PARSE_ERROR", format!("the body is not JSON: {e}")))?;
    let Value::Object(mut request) = value else {
        return Err(("PARSE_ERROR", "the body must be a JSON object".into()));
    };
    match request.remove("context") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(context)) => Ok(context),
        Some(other) => Err((
            "INVALID_CONTEXT",
            format!("context must be a JSON object, not {other}"),
        )),
    }
}

/// The environment named by the request, with its flags (an environment without any has
/// none); `Err` says what is wrong with the request.
fn environment<'s>(
    state: &AppState,
    headers: &HeaderMap,
    snapshot: &'s crate::flags::Snapshot,
) -> Result<(String, Option<&'s EnvFlags>), String> {
    let env = headers
        .get(ENVIRONMENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or("name the environment in the X-Slipway-Environment header")?;
    if !state.engine.config().environments.contains_key(env) {
        return Err(format!("no environment {env:?} in the configuration"));
    }
    Ok((env.to_owned(), snapshot.envs.get(env)))
}

fn evaluate<'a>(env: &'a str, stored: &'a StoredFlag, context: &Map<String, Value>) -> Outcome<'a> {
    match stored.flag.evaluate(context) {
        Ok(e) => Outcome::Success(Success {
            key: &stored.flag.key,
            value: &e.variant.value,
            reason: e.reason.as_str(),
            variant: &e.variant.name,
            metadata: Metadata {
                environment: env,
                version: stored.version,
            },
        }),
        Err(e) => Outcome::Failure(Failure {
            key: Some(&stored.flag.key),
            error_code: e.code(),
            error_details: e.to_string(),
        }),
    }
}

/// `POST /ofrep/v1/evaluate/flags/{key}`
pub async fn evaluate_one(
    State(state): State<AppState>,
    _evaluator: Evaluator,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let snapshot = state.flags.snapshot();
    let (env, flags) = match environment(&state, &headers, &snapshot) {
        Ok(found) => found,
        Err(details) => return general(StatusCode::BAD_REQUEST, Some(&key), details),
    };
    let context = match context(&body) {
        Ok(c) => c,
        Err((code, details)) => return failure(StatusCode::BAD_REQUEST, Some(&key), code, details),
    };
    let Some(stored) = flags.and_then(|f| f.flags.get(&key)) else {
        return failure(
            StatusCode::NOT_FOUND,
            Some(&key),
            "FLAG_NOT_FOUND",
            format!("no flag {key:?} in {env}"),
        );
    };
    match evaluate(&env, stored, &context) {
        outcome @ Outcome::Success(_) => json(StatusCode::OK, &outcome),
        outcome @ Outcome::Failure(_) => json(StatusCode::BAD_REQUEST, &outcome),
    }
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of the environment; a flag that cannot be
/// evaluated for this context is listed with its error.
pub async fn evaluate_all(
    State(state): State<AppState>,
    _evaluator: Evaluator,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let snapshot = state.flags.snapshot();
    let (env, flags) = match environment(&state, &headers, &snapshot) {
        Ok(found) => found,
        Err(details) => return general(StatusCode::BAD_REQUEST, None, details),
    };
    let context = match context(&body) {
        Ok(c) => c,
        Err((code, details)) => return failure(StatusCode::BAD_REQUEST, None, code, details),
    };
    let outcomes = flags
        .map(|f| {
            f.flags
                .values()
                .map(|stored| evaluate(&env, stored, &context))
                .collect()
        })
        .unwrap_or_default();
    let bytes = match serde_json::to_vec(&Bulk { flags: outcomes }) {
        Ok(b) => b,
        Err(e) => {
            return general(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                format!("cannot encode: {e}"),
            );
        }
    };
    // The answer depends on the flags and on the context, so the tag is of the answer.
    let digest = Sha256::digest(&bytes);
    let etag = format!(
        "\"{}\"",
        digest[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if matches(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag_value),
        ],
        bytes,
    )
        .into_response()
}

/// `If-None-Match` holds this tag (or `*`); weak tags compare by their opaque part.
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_the_body_s_context_object() {
        assert!(context(b"").unwrap().is_empty());
        assert!(context(b"{}").unwrap().is_empty());
        let c = context(br#"{"context":{"targetingKey":"u1"}}"#).unwrap();
        assert_eq!(c["targetingKey"], "u1");
        assert_eq!(context(b"{nope").unwrap_err().0, "PARSE_ERROR");
        assert_eq!(context(b"[1]").unwrap_err().0, "PARSE_ERROR");
        assert_eq!(
            context(br#"{"context":"u1"}"#).unwrap_err().0,
            "INVALID_CONTEXT"
        );
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let mut h = HeaderMap::new();
        assert!(!matches(&h, "\"abc\""));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(matches(&h, "\"abc\""));
        assert!(!matches(&h, "\"abd\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches(&h, "\"abd\""));
    }
}
