//! The hand-written HTTP/1.1 path over real loopback connections: bodies both ways,
//! every response framing, pipelining, and the hand-over to hyper mid-connection.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use util::*;

#[tokio::test]
async fn request_bodies_small_and_large_reach_the_app_whole() {
    let backend = Backend::start("v1").await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    let client = TestClient::new(addr);
    let small = client
        .send("POST", "/echo", &[], Bytes::from_static(b"hello"))
        .await;
    assert_eq!(small.body, "hello");
    // Larger than any buffer: streamed through in pieces.
    let large: String = (0..300_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let reply = client
        .send("PUT", "/echo", &[], Bytes::from(large.clone()))
        .await;
    assert_eq!(reply.body.len(), large.len());
    assert!(reply.body == large, "the body came back altered");
    assert_eq!(client.get("/", &[]).await.body, "v1");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let backend = Backend::start("v1").await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    let mut stream = connect_and_send(
        addr,
        b"GET /status/201 HTTP/1.1\r\nHost: web\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: 4\r\n\r\nping\
HEAD / HTTP/1.1\r\nHost: web\r\n\r\n\
GET /status/202 HTTP/1.1\r\nHost: web\r\n\r\n",
    )
    .await;
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    assert_eq!(body, "v1");
    assert_eq!(read_response(&mut stream).await.1, "ping");
    // A HEAD response announces a length but carries no body.
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 202"), "{head}");
}

#[tokio::test]
async fn chunked_responses_pass_through_and_the_connections_live_on() {
    let backend = RawBackend::start(
        vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5\r\nhello\r\n",
            b"7;ext=1\r\n, world\r\n0\r\n",
            b"\r\n",
        ],
        false,
    )
    .await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    let client = TestClient::new(addr);
    for _ in 0..3 {
        let reply = client.get("/", &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "hello, world");
    }
}

#[tokio::test]
async fn a_response_without_length_ends_with_both_connections() {
    let backend = RawBackend::start(
        vec![
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n",
            b"until ",
            b"close",
        ],
        true,
    )
    .await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    let mut stream = connect_and_send(addr, b"GET / HTTP/1.1\r\nHost: web\r\n\r\n").await;
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let mut body = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_string(&mut body),
    )
    .await
    .expect("the router closes after the body")
    .unwrap();
    assert_eq!(body, "until close");
}

#[tokio::test]
async fn interim_responses_are_dropped_and_the_final_one_forwarded() {
    let backend = RawBackend::start(
        vec![
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ],
        false,
    )
    .await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    let reply = TestClient::new(addr).get("/", &[]).await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn a_malformed_response_gets_502_and_counts_as_a_router_error() {
    let backend = RawBackend::start(vec![b"SSH-2.0-OpenSSH_9.2\r\n\r\n"], true).await;
    let (router, addr) = start_router(single(backend.addr)).await;
    let reply = TestClient::new(addr).get("/", &[]).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.body, "the app closed the connection\n");
    let stats = router.stats("test").unwrap();
    assert_eq!((stats[0].requests, stats[0].router_errors), (1, 1));
}

#[tokio::test]
async fn a_malformed_request_gets_400_and_others_are_served() {
    let backend = Backend::start("v1").await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    let mut stream = connect_and_send(
        addr,
        b"GET / HTTP/1.1\r\nHost: web\r\nBad Header: x\r\n\r\n",
    )
    .await;
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert_eq!(backend.received(), 0);
    assert_eq!(TestClient::new(addr).get("/", &[]).await.body, "v1");
}

#[tokio::test]
async fn a_connection_moves_to_hyper_for_an_upgrade_after_plain_requests() {
    let backend = Backend::start("v1").await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    let mut stream = connect_and_send(addr, b"GET / HTTP/1.1\r\nHost: web\r\n\r\n").await;
    assert_eq!(read_response(&mut stream).await.1, "v1");
    // A chunked upload, then an upgrade, on the same connection.
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n\
3\r\nabc\r\n0\r\n\r\n\
GET /upgrade HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.1, "abc");
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream.write_all(b"tunnelled").await.unwrap();
    assert_eq!(read_n(&mut stream, 9).await, "tunnelled");
}

#[tokio::test]
async fn a_client_leaving_mid_upload_disturbs_no_one() {
    let backend = Backend::start("v1").await;
    let (router, addr) = start_router(single(backend.addr)).await;
    let quitter = connect_and_send(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: 1000\r\n\r\nonly ten..",
    )
    .await;
    drop(quitter);
    let client = TestClient::new(addr);
    for _ in 0..5 {
        assert_eq!(client.get("/", &[]).await.body, "v1");
    }
    // The broken upload is neither an app error nor a router-made answer.
    eventually("the counters settle", || async {
        let stats = router.stats("test").unwrap();
        stats[0].requests == 5 && stats[0].router_errors == 0
    })
    .await;
}
