//! Console sessions (docs/security.md): an API token typed into the sign-in form becomes a
//! random session id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the request
//! came over HTTPS); every form carries the session's CSRF token. The cookie is read only
//! here: the JSON API never looks at it.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use slipway_core::Millis;
use slipway_engine::Actor;
use slipway_store::{NewSession, Session};

use super::page::ConsoleError;
use crate::AppState;
use crate::auth::{hash_token, hex};

pub const COOKIE: &str = "slipway_session";

/// A signed-in browser: who it is now, and the CSRF token its forms must carry.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub actor: Actor,
    pub csrf: String,
    pub id_hash: String,
    pub expires_at: Millis,
}

/// What a request's cookie says.
#[derive(Debug)]
pub enum Presented {
    /// No session cookie.
    Nothing,
    /// A cookie whose session expired, was signed out, or whose token was replaced.
    Ended,
    Valid(SignedIn),
}

fn random_hex() -> String {
    hex(&rand::random::<[u8; 32]>())
}

/// The value of cookie `name` among the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the browser reached us over HTTPS: this server speaks plain HTTP, so only a
/// proxy in front of it can say so (`X-Forwarded-Proto`, or `Forwarded: proto=`). A client
/// that lies only changes the flags of its own cookie.
pub fn is_https(headers: &HeaderMap) -> bool {
    let first = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if let Some(proto) = first(header::HeaderName::from_static("x-forwarded-proto")) {
        return proto == "https";
    }
    first(header::FORWARDED).is_some_and(|f| {
        f.split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .any(|(k, v)| k.eq_ignore_ascii_case("proto") && v.trim_matches('"') == "https")
    })
}

fn cookie_flags(secure: bool) -> &'static str {
    if secure {
        "; Path=/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Strict"
    }
}

/// The cookie of session `id`; it lasts `lifetime` (`server.session_lifetime`), whatever
/// the browser does in between.
pub fn set_cookie(id: &str, secure: bool, lifetime: Duration) -> String {
    format!(
        "{COOKIE}={id}{}; Max-Age={}",
        cookie_flags(secure),
        lifetime.as_secs()
    )
}

pub fn clear_cookie(secure: bool) -> String {
    format!("{COOKIE}={}; Max-Age=0", cookie_flags(secure))
}

/// Compares in time that does not depend on where the strings differ, so a forger cannot
/// find the token a byte at a time.
pub fn same_secret(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A session id or CSRF token as this server makes them: 64 lower-case hex digits.
fn well_formed(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a stored session still holds at `now`.
pub fn is_live(session: &Session, now: Millis) -> bool {
    now < session.expires_at
}

/// Where to go after signing in: a path on this server only (`/…`, not `//host` or
/// `/\host`, which browsers read as another site), else the board.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 2048
                && !n.chars().any(|c| c.is_control()) =>
        {
            n
        }
        _ => "/",
    }
}

/// Makes a session for the user whose token hashes to `token_hash`; returns the cookie
/// value (the raw id, which is stored only as its hash).
pub async fn start(state: &AppState, token_hash: String) -> Result<String, ConsoleError> {
    let id = random_hex();
    let now = state.engine.now();
    let store = &state.console.sessions;
    store.delete_expired_sessions(now).await?;
    store
        .create_session(&NewSession {
            id_hash: hash_token(&id),
            token_hash,
            csrf: random_hex(),
            created_at: now,
            expires_at: now.saturating_add(lifetime_ms(state)),
        })
        .await?;
    Ok(id)
}

fn lifetime_ms(state: &AppState) -> Millis {
    let lifetime = state.engine.config().server.session_lifetime;
    Millis::try_from(lifetime.as_millis()).unwrap_or(Millis::MAX)
}

/// The session the request's cookie names, if it still holds. An expired one is removed.
pub async fn presented(state: &AppState, headers: &HeaderMap) -> Result<Presented, ConsoleError> {
    let Some(id) = cookie(headers, COOKIE) else {
        return Ok(Presented::Nothing);
    };
    if !well_formed(id) {
        return Ok(Presented::Ended);
    }
    let id_hash = hash_token(id);
    let store = &state.console.sessions;
    let Some(session) = store.session(&id_hash).await? else {
        return Ok(Presented::Ended);
    };
    if !is_live(&session, state.engine.now()) {
        store.delete_session(&id_hash).await?;
        return Ok(Presented::Ended);
    }
    Ok(Presented::Valid(SignedIn {
        actor: Actor {
            name: session.user,
            role: session.role,
        },
        csrf: session.csrf,
        id_hash,
        expires_at: session.expires_at,
    }))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ConsoleError;

    /// A page asked for without a session goes to the sign-in page (and back here after);
    /// a form posted without one is refused, and nothing changes.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = presented(state, &parts.headers).await?;
        let ended = match presented {
            Presented::Valid(signed_in) => return Ok(signed_in),
            Presented::Ended => true,
            Presented::Nothing => false,
        };
        let secure = is_https(&parts.headers);
        if parts.method == Method::GET || parts.method == Method::HEAD {
            let next = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let from_elsewhere = parts
                .headers
                .get("sec-fetch-site")
                .is_some_and(|v| v == "cross-site");
            if from_elsewhere && !ended {
                return Err(ConsoleError::FromElsewhere {
                    path: safe_next(Some(&next)).to_owned(),
                });
            }
            Err(ConsoleError::SignIn {
                next,
                ended,
                secure,
            })
        } else {
            Err(ConsoleError::NotSignedIn { ended, secure })
        }
    }
}

/// A posted console form whose `csrf` field matched the session's: the other fields.
#[derive(Debug, Default)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// A field given once; a field given twice is refused (which value would count?).
    pub fn get(&self, name: &str) -> Result<Option<&str>, ConsoleError> {
        let mut values = self.fields.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(ConsoleError::bad_request(format!(
                "the form field `{name}` was sent more than once"
            )));
        }
        Ok(first)
    }

    /// An `application/x-www-form-urlencoded` body; one that is not is no fields at all.
    pub fn parse(body: &[u8]) -> Form {
        Form {
            fields: serde_urlencoded::from_bytes(body).unwrap_or_default(),
        }
    }
}

/// Refuses a form posted from another site (the browser says so in `Sec-Fetch-Site`)
/// before anything else is looked at.
pub fn same_origin(headers: &HeaderMap) -> Result<(), ConsoleError> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("cross-site" | "same-site") => Err(ConsoleError::CrossSite),
        _ => Ok(()),
    }
}

/// The form of a signed-in browser, after the origin and CSRF checks; 403 and nothing
/// done when either fails.
pub fn verified(
    signed_in: &SignedIn,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Form, ConsoleError> {
    same_origin(headers)?;
    let form = Form::parse(body);
    let csrf = form.get("csrf").map_err(|_| ConsoleError::Csrf)?;
    match csrf {
        Some(given) if same_secret(&signed_in.csrf, given) => Ok(form),
        _ => Err(ConsoleError::Csrf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use slipway_config::Role;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_in_any_cookie_header() {
        let h = headers(&[("cookie", "a=1; slipway_session=abc ; b=2")]);
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "slipway_session=xyz")]);
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        let h = headers(&[("cookie", "xslipway_session=1; slipway_sessionx=2")]);
        assert_eq!(cookie(&h, COOKIE), None);
    }

    #[test]
    fn https_is_what_the_proxy_says_and_secure_follows_it() {
        assert!(!is_https(&headers(&[])));
        assert!(is_https(&headers(&[("x-forwarded-proto", "HTTPS")])));
        assert!(is_https(&headers(&[("x-forwarded-proto", "https, http")])));
        assert!(!is_https(&headers(&[("x-forwarded-proto", "http")])));
        assert!(is_https(&headers(&[(
            "forwarded",
            "for=10.0.0.1;proto=\"https\";host=a"
        )])));
        let day = Duration::from_secs(86_400);
        assert!(set_cookie("id", true, day).contains("; Secure"));
        let plain = set_cookie("id", false, day);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(plain.ends_with("; Max-Age=86400"), "{plain}");
        assert!(!plain.contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abcd", "abcd"));
        assert!(!same_secret("abcd", "abce"));
        assert!(!same_secret("abcd", "abc"));
        assert!(!same_secret("abcd", ""));
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        for good in ["/", "/deployments/4", "/history?app=web&page=2"] {
            assert_eq!(safe_next(Some(good)), good);
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "deployments/4",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn a_session_holds_until_its_expiry() {
        let s = Session {
            user: "alice".into(),
            role: Role::Viewer,
            csrf: "c".into(),
            created_at: 0,
            expires_at: 1_000,
        };
        assert!(is_live(&s, 999));
        assert!(!is_live(&s, 1_000));
    }

    #[test]
    fn forms_refuse_a_twice_given_field_and_read_junk_as_no_fields() {
        let f = Form::parse(b"csrf=a&comment=ok%20then&csrf=b");
        assert!(f.get("csrf").is_err());
        assert_eq!(f.get("comment").unwrap(), Some("ok then"));
        assert_eq!(f.get("nope").unwrap(), None);
        let junk = Form::parse(b"\xff\xfe=%zz");
        assert_eq!(junk.get("csrf").unwrap(), None);
        assert!(well_formed(&random_hex()));
        assert!(!well_formed("ABC"));
    }

    #[test]
    fn forms_from_another_site_are_refused() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[])).is_ok());
    }
}
