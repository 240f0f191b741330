//! The standalone router's control API, driven through `ControlClient`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use slipway_router::{ControlClient, Error, Router, serve_control};
use tokio::net::TcpListener;
use util::*;

struct ControlServer {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<slipway_router::Result<()>>,
}

impl ControlServer {
    async fn start(token: &str) -> ControlServer {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", socket.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_control(
            socket,
            token.into(),
            Router::new(),
            async move {
                let _ = stopped.await;
            },
        ));
        ControlServer {
            url,
            stop: Some(stop),
            task,
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

#[tokio::test]
async fn a_remote_router_is_configured_and_reports_stats() {
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    let server = ControlServer::start("s3cret").await;
    let control = ControlClient::new(&server.url, "s3cret").unwrap();

    let addr = control
        .configure_listener(
            "staging",
            "127.0.0.1:0".parse().unwrap(),
            &split(&v1, &v2, 0.0),
        )
        .await
        .unwrap();
    let client = TestClient::new(addr);
    assert_eq!(client.get("/", &[]).await.body, "v1");

    // Reconfiguring keeps the bound address; port 0 means "wherever it is".
    let again = control
        .configure_listener(
            "staging",
            "127.0.0.1:0".parse().unwrap(),
            &split(&v1, &v2, 100.0),
        )
        .await
        .unwrap();
    assert_eq!(again, addr);
    assert_eq!(client.get("/", &[]).await.body, "v2");

    let stats = control.stats("staging").await.unwrap();
    let requests: Vec<(String, u64)> = stats
        .iter()
        .map(|s| (s.release.clone(), s.requests))
        .collect();
    assert_eq!(requests, vec![("v1".to_owned(), 1), ("v2".to_owned(), 1)]);
    assert!(
        control
            .metrics()
            .await
            .unwrap()
            .contains(r#"environment="staging",release="v2"} 1"#)
    );

    control.remove_listener("staging").await.unwrap();
    let missing = control.stats("staging").await.unwrap_err();
    assert!(
        matches!(missing, Error::ControlStatus { status: 404, .. }),
        "{missing}"
    );
}

#[tokio::test]
async fn the_control_api_refuses_wrong_tokens_and_bad_configs() {
    let server = ControlServer::start("s3cret").await;
    let intruder = ControlClient::new(&server.url, "guess").unwrap();
    let refused = intruder.stats("staging").await.unwrap_err();
    assert!(
        matches!(refused, Error::ControlStatus { status: 401, .. }),
        "{refused}"
    );

    let control = ControlClient::new(&server.url, "s3cret").unwrap();
    let mut bad = listener(vec![service("web", vec![release("v1", 150.0, false, &[])])]);
    let error = control
        .configure_listener("staging", "127.0.0.1:0".parse().unwrap(), &bad)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::ControlStatus { status: 400, body } if body.contains("weight 150")),
        "{error}"
    );
    bad.services[0].releases[0].weight = 100.0;
    let error = control
        .configure_listener("bad/name", "127.0.0.1:0".parse().unwrap(), &bad)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::ControlStatus {
                status: 404 | 400,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn an_empty_token_is_refused() {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = serve_control(socket, String::new(), Router::new(), std::future::pending())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("must not be empty"), "{error}");
}
