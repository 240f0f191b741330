#![allow(dead_code)] // each test binary uses a different part of the shared helpers
//! A console client over plain HTTP, as a browser without JavaScript would be: it keeps
//! the session cookie, follows no redirect by itself (tests look at each 303), and reads
//! the CSRF token out of the pages.

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

/// Environments with a protected production (alice reviews) beside an open staging.
pub const ENVS: &str = r#"    staging:
      listen: 127.0.0.1:0
    production:
      listen: 127.0.0.1:0
      requires: [staging]
      protection:
        reviewers: [alice]
        required_approvals: 1
        prevent_self_review: true"#;

pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn set_cookie(&self) -> &str {
        self.headers
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts an HTML page (never JSON, never a trace) and returns its text.
    pub fn html(&self) -> &str {
        assert!(
            self.header("content-type").starts_with("text/html"),
            "not HTML ({}): {}",
            self.header("content-type"),
            self.body
        );
        assert!(
            !self.body.contains("panicked") && !self.body.contains("RUST_BACKTRACE"),
            "{}",
            self.body
        );
        &self.body
    }
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf_in(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("the page has a csrf field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    http: reqwest::Client,
    /// `slipway_session=…` once signed in.
    pub cookie: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    /// Signs in with `token` through the form; panics unless that works.
    pub async fn signed_in(base: &str, token: &str) -> Client {
        let mut c = Client::new(base);
        let page = c.post("/login", &[("token", token)]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let cookie = page.set_cookie().split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with("slipway_session="), "{cookie}");
        c.cookie = Some(cookie);
        c
    }

    async fn send(&self, req: reqwest::RequestBuilder, extra: &[(&str, &str)]) -> Page {
        let mut req = req.header("accept", "text/html");
        if let Some(cookie) = &self.cookie {
            req = req.header("cookie", cookie);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        Page {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base)), headers)
            .await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[]).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req, headers).await
    }

    /// The CSRF token of this session, from the board.
    pub async fn csrf(&self) -> String {
        let page = self.get("/").await;
        assert_eq!(page.status, 200, "{}", page.body);
        csrf_in(&page.body)
    }
}
