//! The control API of a standalone router (`slipway router --control ADDR`) and the
//! client the engine uses to drive it like an in-process [`Router`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::config::ListenerConfig;
use crate::stats::ReleaseStats;
use crate::{Error, Result, Router, RouterOptions};

/// Largest control request body accepted.
const MAX_BODY: usize = 1 << 20;

/// Body of `PUT /listeners/{name}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PutListener {
    pub addr: SocketAddr,
    pub config: ListenerConfig,
}

/// Answer of `PUT` and `GET /listeners/{name}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListenerInfo {
    pub name: String,
    pub addr: SocketAddr,
    pub config: ListenerConfig,
}

/// Runs a standalone router configured over an HTTP control API on `addr` (bearer
/// `token`), until ctrl-c or SIGTERM; then drains every listener.
pub async fn run_control(addr: SocketAddr, token: String, limits: RouterOptions) -> Result<()> {
    let socket = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    tracing::info!(addr = %socket.local_addr()?, "router control API listening");
    serve_control(
        socket,
        token,
        Router::with_options(limits),
        crate::static_mode::terminated(),
    )
    .await
}

/// Serves the control API for `router` on an already bound socket until `shutdown`
/// resolves, then shuts the router down.
pub async fn serve_control(
    socket: TcpListener,
    token: String,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    if token.is_empty() {
        return Err(Error::InvalidArgument {
            arg: "--control token".into(),
            reason: "must not be empty".into(),
        });
    }
    let token: Arc<str> = Arc::from(format!("Bearer {token}"));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = socket.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (router, token) = (router.clone(), Arc::clone(&token));
                let service = service_fn(move |req| {
                    let (router, token) = (router.clone(), Arc::clone(&token));
                    async move { Ok::<_, Infallible>(handle(&router, &token, req).await) }
                });
                tokio::spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = conn.await {
                        tracing::debug!(%error, "control connection ended");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    router.shutdown().await;
    Ok(())
}

async fn handle(router: &Router, token: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if req.method() == Method::GET && segments == ["health"] {
        return reply(StatusCode::OK, "text/plain", "ok\n".into());
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if !presented.is_some_and(|p| constant_time_eq(p, token.as_bytes())) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        );
    }
    let method = req.method().clone();
    match (method, segments.as_slice()) {
        (Method::GET, ["metrics"]) => {
            let mut out = String::new();
            router.render_metrics(&mut out);
            reply(StatusCode::OK, "text/plain; version=0.0.4", out.into())
        }
        (Method::PUT, ["listeners", name]) => {
            let body = match read_json::<PutListener>(req).await {
                Ok(body) => body,
                Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", &message),
            };
            match put_listener(router, name, body).await {
                Ok(info) => json(StatusCode::OK, &info),
                Err(e) => from_error(&e),
            }
        }
        (Method::GET, ["listeners", name]) => match router.listener(name) {
            Some((addr, config)) => json(
                StatusCode::OK,
                &ListenerInfo {
                    name: (*name).to_owned(),
                    addr,
                    config,
                },
            ),
            None => from_error(&Error::UnknownListener((*name).to_owned())),
        },
        (Method::DELETE, ["listeners", name]) => match router.remove_listener(name).await {
            Ok(()) => reply(StatusCode::NO_CONTENT, "text/plain", Bytes::new()),
            Err(e) => from_error(&e),
        },
        (Method::GET, ["listeners", name, "stats"]) => match router.stats(name) {
            Ok(stats) => json(StatusCode::OK, &stats),
            Err(e) => from_error(&e),
        },
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
    }
}

async fn put_listener(router: &Router, name: &str, body: PutListener) -> Result<ListenerInfo> {
    if !valid_name(name) {
        return Err(Error::InvalidConfig(format!(
            "listener name {name:?} must be letters, digits, '-', '_' or '.'"
        )));
    }
    let addr = match router.listener(name) {
        Some((bound, _)) => {
            if body.addr.port() != 0 && body.addr != bound {
                return Err(Error::AddressConflict {
                    name: name.to_owned(),
                    bound,
                    requested: body.addr,
                });
            }
            router.configure(name, body.config.clone())?;
            bound
        }
        None => router.bind(name, body.addr, body.config.clone()).await?,
    };
    Ok(ListenerInfo {
        name: name.to_owned(),
        addr,
        config: body.config,
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, String> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("cannot read body: {e}"))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("invalid JSON body: {e}"))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    res
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => reply(status, "application/json", body.into()),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    reply(status, "application/json", body.to_string().into())
}

fn from_error(e: &Error) -> Response<Full<Bytes>> {
    let (status, code) = match e {
        Error::UnknownListener(_) => (StatusCode::NOT_FOUND, "not_found"),
        Error::ListenerExists(_) | Error::AddressConflict { .. } => {
            (StatusCode::CONFLICT, "conflict")
        }
        Error::InvalidConfig(_) | Error::InvalidArgument { .. } => {
            (StatusCode::BAD_REQUEST, "bad_request")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    error(status, code, &e.to_string())
}

/// Drives a standalone router's control API; mirrors [`Router`]'s configure and stats.
#[derive(Clone)]
pub struct ControlClient {
    base: String,
    authorization: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

// === impl ControlClient ===

impl ControlClient {
    /// `base` is `http://HOST:PORT` (or just `HOST:PORT`) of the control API.
    pub fn new(base: &str, token: &str) -> Result<ControlClient> {
        let base = base.trim_end_matches('/');
        let base = if base.contains("://") {
            base.to_owned()
        } else {
            format!("http://{base}")
        };
        if !base.starts_with("http://") || base.parse::<http::Uri>().is_err() {
            return Err(Error::Control(format!(
                "bad control URL {base:?}: expected http://HOST:PORT"
            )));
        }
        Ok(ControlClient {
            base,
            authorization: format!("Bearer {token}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Binds the listener if needed and swaps in `config`; returns the bound address.
    pub async fn configure_listener(
        &self,
        name: &str,
        addr: SocketAddr,
        config: &ListenerConfig,
    ) -> Result<SocketAddr> {
        let body = serde_json::to_vec(&PutListener {
            addr,
            config: config.clone(),
        })?;
        let info: ListenerInfo = serde_json::from_slice(
            &self
                .call(Method::PUT, &format!("/listeners/{name}"), body)
                .await?,
        )?;
        Ok(info.addr)
    }

    pub async fn remove_listener(&self, name: &str) -> Result<()> {
        self.call(Method::DELETE, &format!("/listeners/{name}"), Vec::new())
            .await
            .map(drop)
    }

    pub async fn stats(&self, name: &str) -> Result<Vec<ReleaseStats>> {
        let body = self
            .call(Method::GET, &format!("/listeners/{name}/stats"), Vec::new())
            .await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// The router's Prometheus text exposition.
    pub async fn metrics(&self) -> Result<String> {
        let body = self.call(Method::GET, "/metrics", Vec::new()).await?;
        String::from_utf8(body.to_vec()).map_err(|e| Error::Control(e.to_string()))
    }

    async fn call(&self, method: Method, path: &str, body: Vec<u8>) -> Result<Bytes> {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, &self.authorization)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Error::Control(e.to_string()))?;
        let res = self
            .client
            .request(req)
            .await
            .map_err(|e| Error::Control(e.to_string()))?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Control(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(Error::ControlStatus {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(body)
    }
}
