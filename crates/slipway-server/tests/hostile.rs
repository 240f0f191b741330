//! The control plane against hostile or careless input (issue 14, item 8): oversized
//! bodies and fields, the bearer scheme in any case, the last admin, private files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::os::unix::fs::PermissionsExt as _;

use serde_json::json;
use util::TestServer;

const ENVS: &str = "    staging:\n      listen: 127.0.0.1:0\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_413_in_the_api_error_format() {
    let s = TestServer::start(ENVS).await;
    let huge = "x".repeat(10 * 1024 * 1024);
    for (path, body) in [
        (
            "/api/v1/deployments",
            format!(r#"{{"app":"web","environment":"staging","version":"{huge}"}}"#),
        ),
        // A decision's optional body is read by hand; the same limit holds.
        (
            "/api/v1/deployments/1/approve",
            format!(r#"{{"comment":"{huge}"}}"#),
        ),
    ] {
        let (status, body) = post_raw(&s, path, body).await;
        assert_eq!(status, 413, "{path}: {body}");
        let err: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(err["error"]["code"], "body_too_large", "{path}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().contains("KiB"));
    }
    s.stop().await;
}

/// POSTs `body` over a raw connection and reads the answer while the body is still being
/// written: the server answers 413 and closes without reading it all, which an ordinary
/// client reports as a broken pipe instead of the answer.
async fn post_raw(s: &TestServer, path: &str, body: String) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.admin,
        body.len()
    );
    write.write_all(head.as_bytes()).await.unwrap();
    // Refused writes are the point: the answer is what counts.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(body.as_bytes()).await;
    });
    let mut answer = Vec::new();
    let _ = read.read_to_end(&mut answer).await;
    writer.abort();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ref_and_commit_are_capped_and_named_in_the_error() {
    let s = TestServer::start(ENVS).await;
    // Under the body limit, so the field's own cap answers.
    let long = "a".repeat(32 * 1024);
    let cases = [
        (json!({"ref": long}), "invalid_ref", "ref"),
        (json!({"ref": "main branch"}), "invalid_ref", "ref"),
        (json!({"commit": long}), "invalid_commit", "commit"),
        (json!({"commit": "xyz1234"}), "invalid_commit", "commit"),
        (json!({"commit": "3f2a9c"}), "invalid_commit", "commit"),
        (
            json!({"version": "v".repeat(129)}),
            "invalid_version",
            "version",
        ),
    ];
    for (extra, code, field) in cases {
        let mut body = json!({"app": "web", "environment": "staging", "version": "v1"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, err) = s
            .call("POST", "/api/v1/deployments", &s.admin, Some(body))
            .await;
        assert_eq!(status, 400, "{code}: {err}");
        assert_eq!(err["error"]["code"], code);
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
        assert!(
            message.len() < 300,
            "the message does not echo the value back"
        );
    }
    // The longest accepted values go through.
    let (status, d) = s
        .call(
            "POST",
            "/api/v1/deployments",
            &s.admin,
            Some(
                json!({"app": "web", "environment": "staging", "version": "v1",
                        "ref": format!("release/{}", "r".repeat(247)), "commit": "f".repeat(64)}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    let s = TestServer::start(ENVS).await;
    let http = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let resp = http
            .get(format!("{}/api/v1/status", s.base))
            .header("authorization", format!("{scheme} {}", s.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{scheme}");
    }
    let resp = http
        .get(format!("{}/api/v1/status", s.base))
        .header("authorization", format!("Basic {}", s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_cannot_be_demoted() {
    let s = TestServer::start(ENVS).await;
    let (status, err) = s
        .call(
            "POST",
            "/api/v1/users",
            &s.admin,
            Some(json!({"name": "admin", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "last_admin");
    // Nothing changed: the bootstrap token still works, as an admin.
    s.user("carol", "deployer").await;
    // A second admin lets the first step down; its new token says it replaced the old.
    s.user("root", "admin").await;
    let (status, user) = s
        .call(
            "POST",
            "/api/v1/users",
            &s.admin,
            Some(json!({"name": "admin", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["replaced_token"], true);
    let (status, _) = s.call("GET", "/api/v1/status", &s.admin, None).await;
    assert_eq!(status, 401, "the replaced token no longer works");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_database_and_token_are_private() {
    let s = TestServer::start(ENVS).await;
    // A write makes SQLite create its WAL files.
    s.deploy_and_wait("staging", "v1", "success").await;
    let data = s.dir.path().join("data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for file in [
        "admin.token",
        "slipway.db",
        "slipway.db-wal",
        "slipway.db-shm",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    s.stop().await;
}

/// The served OpenAPI document declares its bearer scheme, documents 400 and 401 on every
/// operation, and states the enums and formats a schema-driven client needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_states_auth_errors_enums_and_formats() {
    let s = TestServer::start(ENVS).await;
    let doc: serde_json::Value = reqwest::get(format!("{}/api/v1/openapi.json", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["scheme"].as_str()),
        (Some("http"), Some("bearer")),
        "{scheme}"
    );
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            for code in ["400", "401"] {
                assert!(
                    op["responses"][code].is_object(),
                    "{method} {path} does not document {code}"
                );
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["name"] == "id" {
                    assert_eq!(param["schema"]["format"], "int64", "{method} {path}");
                    assert_eq!(param["schema"]["minimum"], 1, "{method} {path}");
                }
            }
        }
    }
    // 13 of deployments, environments, users and events; 1 of notifications; 2 of gc;
    // 7 of pipeline runs; 5 of feature flags; 1 of DORA metrics.
    assert_eq!(operations, 29);
    let list = &doc["paths"]["/api/v1/deployments"]["get"]["parameters"];
    let param = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
            .clone()
    };
    assert_eq!(param("limit")["schema"]["minimum"], 1);
    assert_eq!(param("app")["schema"]["enum"], json!(["web"]));
    assert_eq!(param("environment")["schema"]["enum"], json!(["staging"]));
    let schemas = &doc["components"]["schemas"];
    let names = |schema: &serde_json::Value| schema["enum"].as_array().map(Vec::len);
    assert_eq!(names(&schemas["Status"]), Some(10), "{}", schemas["Status"]);
    assert_eq!(schemas["Kind"]["enum"], json!(["deploy", "rollback"]));
    assert_eq!(
        schemas["WaitingOn"]["enum"],
        json!(["approval", "wait_timer", "window", "concurrency"])
    );
    assert_eq!(
        schemas["Role"]["enum"],
        json!(["viewer", "deployer", "approver", "admin"])
    );
    assert!(
        schemas["DeploymentView"]["properties"]["waiting_on"].is_object(),
        "{}",
        schemas["DeploymentView"]
    );
    s.stop().await;
}
