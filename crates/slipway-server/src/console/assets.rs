//! The console's style sheet and script, compiled into the binary. Their URLs carry a
//! hash of their content, so a browser may keep them for good and still gets the new
//! ones after an upgrade.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/live.js");

fn versioned(name: &str, content: &str) -> String {
    let hash = crate::auth::hex(&Sha256::digest(content.as_bytes()));
    format!("/assets/{name}?v={}", hash.get(..12).unwrap_or(&hash))
}

static CSS_URL: LazyLock<String> = LazyLock::new(|| versioned("console.css", CSS));
static JS_URL: LazyLock<String> = LazyLock::new(|| versioned("live.js", JS));

pub fn css_url() -> &'static str {
    &CSS_URL
}

pub fn js_url() -> &'static str {
    &JS_URL
}

/// `GET /assets/{name}`
pub async fn serve(Path(name): Path<String>) -> Response {
    let (content_type, body) = match name.as_str() {
        "console.css" => ("text/css; charset=utf-8", CSS),
        "live.js" => ("text/javascript; charset=utf-8", JS),
        _ => {
            return super::page::ConsoleError::not_found(format!("There is no asset `{name}`."))
                .into_response();
        }
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
