//! Signing in (an API token becomes a session) and out.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::page::{ConsoleError, ENDED, LoginPage, render, see_other};
use super::session::{self, Form, Presented};
use crate::AppState;
use crate::auth::hash_token;

/// `GET /login`: the form, or straight on for a browser already signed in.
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ConsoleError> {
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let next = session::safe_next(query.get("next")?);
    if let Presented::Valid(_) = session::presented(&state, &headers).await? {
        return Ok(see_other(next));
    }
    let message = if query.get("ended")?.is_some() {
        Some(ENDED.to_owned())
    } else if query.get("signed_out")?.is_some() {
        Some("You are signed out.".to_owned())
    } else {
        None
    };
    Ok(render(
        StatusCode::OK,
        &LoginPage::new(message, "info", next),
    ))
}

/// `POST /login` with the form field `token`.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    // No session yet, so no CSRF token: another site must not sign a browser in as
    // someone else, which the browser's own word on where the form came from prevents.
    session::same_origin(&headers)?;
    let form = Form::parse(&body);
    let next = session::safe_next(form.get("next")?);
    let token = form.get("token")?.map(str::trim).unwrap_or_default();
    let refuse = |status, message: &str| {
        render(
            status,
            &LoginPage::new(Some(message.to_owned()), "error", next),
        )
    };
    if token.is_empty() {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "Paste an API token: `slipway user add NAME --role ROLE` prints one, and the first start wrote the admin's to <data_dir>/admin.token.",
        ));
    }
    let token_hash = hash_token(token);
    if state
        .engine
        .store()
        .user_by_token_hash(&token_hash)
        .await?
        .is_none()
    {
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            "That token is not known to this server (or it was replaced by a newer one).",
        ));
    }
    let id = session::start(&state, token_hash).await?;
    let mut resp = see_other(next);
    if let Ok(cookie) = session::set_cookie(
        &id,
        session::is_https(&headers),
        state.engine.config().server.session_lifetime,
    )
    .parse()
    {
        resp.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(resp)
}

/// `POST /logout`: ends the session (its CSRF token required, so no other site can sign
/// a user out); a browser without one goes to the sign-in page all the same.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let secure = session::is_https(&headers);
    let location = match session::presented(&state, &headers).await? {
        Presented::Valid(signed_in) => {
            session::verified(&signed_in, &headers, &body)?;
            state
                .console
                .sessions
                .delete_session(&signed_in.id_hash)
                .await?;
            "/login?signed_out=1"
        }
        Presented::Ended | Presented::Nothing => "/login",
    };
    let mut resp = see_other(location);
    if let Ok(cookie) = session::clear_cookie(secure).parse() {
        resp.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(resp.into_response())
}
