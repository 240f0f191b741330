//! What every console page shares: the frame around it (title, navigation, who is signed
//! in), rendering a template into a response, times as people read them, and the error
//! pages — HTML for people, never a stack trace.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use slipway_core::Millis;
use slipway_engine::Actor;

use super::assets;
use super::session;
use crate::error::ApiError;

/// One entry of the navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
}

/// The console's pages, in the order the navigation shows them. A page that joins the
/// console adds its entry here and its route in `console::routes`; nothing else changes.
pub const NAV: &[NavItem] = &[
    NavItem {
        href: "/",
        label: "Environments",
    },
    NavItem {
        href: "/history",
        label: "History",
    },
    NavItem {
        href: "/runs",
        label: "Pipeline runs",
    },
    NavItem {
        href: "/dora",
        label: "DORA metrics",
    },
];

/// The frame of a page: its title, the navigation with the current entry, and the
/// signed-in user with the CSRF token of the sign-out form.
pub struct Chrome {
    pub title: String,
    pub current: &'static str,
    pub nav: &'static [NavItem],
    pub user: Option<UserView>,
    pub css: &'static str,
    pub js: &'static str,
    /// Set while something on the page moves without a status change (a rollout's split):
    /// the script then refreshes the live parts every few seconds too.
    pub moving: bool,
    /// The pipeline runs whose status changes refresh the page: one run's id, or `*` for
    /// any. Other pages (the board) ignore runs.
    pub runs: Option<String>,
}

pub struct UserView {
    pub name: String,
    pub role: &'static str,
    pub csrf: String,
}

impl Chrome {
    pub fn new(
        title: impl Into<String>,
        current: &'static str,
        who: Option<(&Actor, &str)>,
    ) -> Chrome {
        Chrome {
            title: title.into(),
            current,
            nav: NAV,
            user: who.map(|(actor, csrf)| UserView {
                name: actor.name.clone(),
                role: actor.role.as_str(),
                csrf: csrf.to_owned(),
            }),
            css: assets::css_url(),
            js: assets::js_url(),
            moving: false,
            runs: None,
        }
    }

    /// The frame of a page for someone not signed in (sign-in and error pages).
    pub fn anonymous(title: impl Into<String>) -> Chrome {
        Chrome::new(title, "", None)
    }
}

/// A moment as a page shows it: exact (in UTC, and machine-readable for `<time>`) and
/// how long ago.
pub struct When {
    pub iso: String,
    pub text: String,
    pub ago: String,
}

impl When {
    pub fn at(ms: Millis, now: Millis) -> When {
        let iso = crate::views::rfc3339(ms);
        // `2026-11-24T10:00:03.123Z` → `2026-11-24 10:00:03 UTC`
        let text = format!(
            "{} UTC",
            iso.get(..19).unwrap_or(&iso).replacen('T', " ", 1)
        );
        When {
            ago: ago(now.saturating_sub(ms)),
            iso,
            text,
        }
    }
}

/// `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 days ago`.
pub fn ago(ms: Millis) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=4 => "just now".to_owned(),
        5..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        86_400..=172_799 => "1 day ago".to_owned(),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// A duration in words, for figures (`850 ms`, `42 s`, `5.2 min`, `3.1 h`, `2.0 days`).
pub fn duration(ms: Millis) -> String {
    let ms = ms.max(0) as f64;
    if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.0} s", ms / 1e3)
    } else if ms < 3_600_000.0 {
        format!("{:.1} min", ms / 6e4)
    } else if ms < 86_400_000.0 {
        format!("{:.1} h", ms / 3.6e6)
    } else {
        format!("{:.1} days", ms / 8.64e7)
    }
}

/// The id in a page's path (`/deployments/12`): a positive number, or a page saying it
/// is none, naming `what` it should be and an `example` path.
pub fn path_id(raw: &str, what: &str, example: &str) -> Result<i64, ConsoleError> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => {
            let shown: String = raw.chars().take(40).collect();
            Err(ConsoleError::not_found(format!(
                "`{shown}` is not a {what} id: ids are whole numbers, like {example}."
            )))
        }
    }
}

/// A rendered page with its status.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The page could not be shown; the server's log says why.",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    heading: String,
    message: String,
    back: Option<String>,
}

#[derive(Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub message: Option<String>,
    /// `error` or `info`: how the message is shown.
    pub tone: &'static str,
    pub next: String,
}

impl LoginPage {
    pub fn new(message: Option<String>, tone: &'static str, next: &str) -> LoginPage {
        LoginPage {
            chrome: Chrome::anonymous("Sign in"),
            message,
            tone,
            next: next.to_owned(),
        }
    }
}

/// Loads `path` again as a navigation from this site (`<meta http-equiv="refresh">`,
/// which needs no script), so the browser sends its session cookie this time.
#[derive(Template)]
#[template(path = "console/reload.html")]
struct Reload {
    chrome: Chrome,
    path: String,
}

impl Reload {
    fn new(path: String) -> Reload {
        Reload {
            chrome: Chrome::anonymous("Opening slipway"),
            path,
        }
    }
}

/// Why a console request got no page of its own.
#[derive(Debug)]
pub enum ConsoleError {
    /// A page asked for without a live session: to the sign-in page, then back.
    SignIn {
        next: String,
        ended: bool,
        secure: bool,
    },
    /// A page asked for from a link on another site, which the browser sends without the
    /// `SameSite=Strict` cookie: the page asks for itself again from here, with it.
    FromElsewhere { path: String },
    /// A form posted without a live session: refused, the sign-in page instead.
    NotSignedIn { ended: bool, secure: bool },
    /// The form's `csrf` field is missing or is not the session's.
    Csrf,
    /// The browser says the form came from another site.
    CrossSite,
    Page {
        status: StatusCode,
        heading: String,
        message: String,
        back: Option<String>,
    },
}

impl ConsoleError {
    pub fn page(status: StatusCode, heading: &str, message: impl Into<String>) -> ConsoleError {
        ConsoleError::Page {
            status,
            heading: heading.to_owned(),
            message: message.into(),
            back: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ConsoleError {
        ConsoleError::page(StatusCode::BAD_REQUEST, "That did not work", message)
    }

    pub fn not_found(message: impl Into<String>) -> ConsoleError {
        ConsoleError::page(StatusCode::NOT_FOUND, "Not found", message)
    }

    /// The same error, saying that the form it answers changed nothing.
    pub fn nothing_changed(self) -> ConsoleError {
        match self {
            ConsoleError::Page {
                status,
                heading,
                message,
                back,
            } => ConsoleError::Page {
                status,
                heading,
                message: format!("{message} Nothing was changed."),
                back,
            },
            other => other,
        }
    }

    /// The same error, with a link back to where the user came from.
    pub fn back_to(self, href: String) -> ConsoleError {
        match self {
            ConsoleError::Page {
                status,
                heading,
                message,
                ..
            } => ConsoleError::Page {
                status,
                heading,
                message,
                back: Some(href),
            },
            other => other,
        }
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> ConsoleError {
        let heading = match e.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::CONFLICT => "Not possible now",
            StatusCode::UNPROCESSABLE_ENTITY => "Refused",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        // The API's messages are written for people; a server error's is for the log,
        // where `ApiError` put it.
        let message = if e.status.is_server_error() {
            "The server could not do this; its log says why.".to_owned()
        } else {
            e.message
        };
        ConsoleError::page(e.status, heading, message)
    }
}

impl From<slipway_engine::Error> for ConsoleError {
    fn from(e: slipway_engine::Error) -> ConsoleError {
        ApiError::from(e).into()
    }
}

impl From<slipway_store::Error> for ConsoleError {
    fn from(e: slipway_store::Error) -> ConsoleError {
        ApiError::from(e).into()
    }
}

fn login_path(next: &str, ended: bool) -> String {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if next != "/" {
        query.push(("next", next));
    }
    if ended {
        query.push(("ended", "1"));
    }
    match serde_urlencoded::to_string(&query) {
        Ok(q) if !q.is_empty() => format!("/login?{q}"),
        _ => "/login".to_owned(),
    }
}

pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

pub const ENDED: &str = "Your session has ended (it expired, you signed out, or your token was replaced). Sign in again.";

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, heading, message, back) = match self {
            ConsoleError::SignIn {
                next,
                ended,
                secure,
            } => {
                let mut resp = see_other(&login_path(&next, ended));
                if ended && let Ok(v) = session::clear_cookie(secure).parse() {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
                return resp;
            }
            ConsoleError::FromElsewhere { path } => {
                return render(StatusCode::OK, &Reload::new(path));
            }
            ConsoleError::NotSignedIn { ended, secure } => {
                let message = if ended {
                    format!("{ENDED} Nothing was changed.")
                } else {
                    "You are not signed in, so nothing was changed. Sign in first.".to_owned()
                };
                let mut resp = render(
                    StatusCode::FORBIDDEN,
                    &LoginPage::new(Some(message), "error", "/"),
                );
                if ended && let Ok(v) = session::clear_cookie(secure).parse() {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
                return resp;
            }
            ConsoleError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form refused".to_owned(),
                "This form's security token is missing or is not the one of your session, so nothing was changed. Go back, reload the page, and try again.".to_owned(),
                None,
            ),
            ConsoleError::CrossSite => (
                StatusCode::FORBIDDEN,
                "Form refused".to_owned(),
                "This form was sent from another site, so nothing was changed.".to_owned(),
                None,
            ),
            ConsoleError::Page {
                status,
                heading,
                message,
                back,
            } => (status, heading, message, back),
        };
        render(
            status,
            &ErrorPage {
                chrome: Chrome::anonymous(heading.clone()),
                status: status.as_u16(),
                heading,
                message,
                back,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let w = When::at(1_764_000_003_123, 1_764_000_003_123 + 300_000);
        assert_eq!(w.iso, "2025-11-24T16:00:03.123Z");
        assert_eq!(w.text, "2025-11-24 16:00:03 UTC");
        assert_eq!(w.ago, "5 min ago");
        let cases = [
            (0, "just now"),
            (42_000, "42 s ago"),
            (3 * 3_600_000, "3 h ago"),
            (86_400_000, "1 day ago"),
            (3 * 86_400_000, "3 days ago"),
            (-5_000, "just now"),
        ];
        for (ms, text) in cases {
            assert_eq!(ago(ms), text);
        }
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(312_000), "5.2 min");
    }

    #[test]
    fn the_sign_in_link_keeps_where_to_go_back_to() {
        assert_eq!(login_path("/", false), "/login");
        assert_eq!(login_path("/", true), "/login?ended=1");
        assert_eq!(
            login_path("/history?app=web&page=2", false),
            "/login?next=%2Fhistory%3Fapp%3Dweb%26page%3D2"
        );
    }
}
