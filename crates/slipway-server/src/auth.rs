//! API tokens: random, shown once, stored only as a SHA-256 hash (a 256-bit random token
//! needs no slow hash), and the extractor that turns a bearer token into an `Actor`.

use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use slipway_config::Role;
use slipway_engine::Actor;
use slipway_store::Store;

use crate::AppState;
use crate::error::{ApiError, Error};

pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("slw_{}", hex(&bytes))
}

pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// On the first start (no users), creates `admin` and writes its token to
/// `<data_dir>/admin.token` with mode 0600. Returns the admin token when this start made it.
pub async fn bootstrap(
    store: &dyn Store,
    data_dir: &Path,
    now: i64,
) -> Result<Option<String>, Error> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let token = new_token();
    let path = data_dir.join("admin.token");
    write_private(&path, &format!("{token}\n")).map_err(|source| Error::Io {
        what: format!("cannot write {}", path.display()),
        source,
    })?;
    store
        .set_user_token("admin", Role::Admin, &hash_token(&token), now)
        .await?;
    tracing::info!(path = %path.display(), "first start: created user admin; its token is in this file");
    Ok(Some(token))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a file this call creates: an older token file is made
    // private too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents.as_bytes())
}

/// The token of an `Authorization: Bearer <token>` header. The scheme's name is
/// case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` are the same scheme.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The authenticated caller of a handler.
pub struct Auth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized("missing token: send `Authorization: Bearer <token>`")
            })?;
        let token = bearer_token(header).ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
        })?;
        let user = state
            .engine
            .store()
            .user_by_token_hash(&hash_token(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown token"))?;
        Ok(Auth(Actor {
            name: user.name,
            role: user.role,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for header in ["Bearer t1", "bearer t1", "BEARER t1", "BeArEr   t1 "] {
            assert_eq!(bearer_token(header), Some("t1"), "{header}");
        }
        for header in ["Bearer", "Bearer ", "Basic t1", "Bearert1", "Token t1"] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("slw_") && a.len() == 68);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
