//! Hostile clients, byte for byte: each test sends raw requests through the router to a
//! backend that records what it receives, and checks both what the client got and what
//! the backend saw — never two requests made of one, never one user's bytes in another's
//! request. Tests are named after the hole they keep shut (issue 14) or the attack that
//! must keep failing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::time::Duration;

use slipway_router::RouterOptions;
use tokio::io::AsyncWriteExt;
use util::*;

/// A router with one service `web` in front of a recorder.
async fn guarded_recorder(
    opts: RouterOptions,
) -> (Recorder, slipway_router::Router, std::net::SocketAddr) {
    let recorder = Recorder::start().await;
    let (router, addr) = start_router_with(opts, single(recorder.addr)).await;
    (recorder, router, addr)
}

/// Sends `bytes` on a new connection and reads until the router closes it.
async fn refused(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = connect_and_send(addr, bytes).await;
    read_to_close(&mut stream).await
}

/// A victim's request on its own connection, after the attack: it must get its own
/// answer, and its secret must reach the backend only in its own request.
async fn victim_is_unharmed(addr: std::net::SocketAddr, recorder: &Recorder) {
    let mut stream = connect_and_send(
        addr,
        b"GET /victim HTTP/1.1\r\nHost: web\r\nCookie: session=victim-secret\r\nAuthorization: Bearer victim-token\r\n\r\n",
    )
    .await;
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        body.ends_with("GET /victim HTTP/1.1"),
        "the victim got {body:?}"
    );
    let seen = recorder.seen();
    let holders: Vec<_> = seen
        .iter()
        .filter(|s| {
            s.head.contains("victim-secret")
                || String::from_utf8_lossy(&s.body).contains("victim-secret")
        })
        .collect();
    assert_eq!(holders.len(), 1, "{seen:#?}");
    assert_eq!(holders[0].request_line(), "GET /victim HTTP/1.1");
    assert!(holders[0].body.is_empty(), "{seen:#?}");
}

// === item 1: framing headers named by Connection ===

#[tokio::test]
async fn connection_content_length_does_not_smuggle_a_request() {
    let smuggled = "GET /health?smuggled HTTP/1.1\r\nHost: web\r\nX-Ignore: ";
    assert_eq!(smuggled.len(), 52);
    for (method, connection) in [
        ("POST", "content-length"),
        ("POST", "keep-alive, Content-Length"),
        ("GET", "Content-Length"),
    ] {
        let (recorder, _router, addr) = guarded_recorder(RouterOptions::default()).await;
        let attack = format!(
            "{method} / HTTP/1.1\r\nHost: web\r\nConnection: {connection}\r\nContent-Length: 52\r\n\r\n{smuggled}"
        );
        let mut stream = connect_and_send(addr, attack.as_bytes()).await;
        let (head, body) = read_response(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, format!("seen 0: {method} / HTTP/1.1"));
        victim_is_unharmed(addr, &recorder).await;
        let seen = recorder.seen();
        assert_eq!(seen.len(), 2, "{connection}: {seen:#?}");
        assert_eq!(
            seen[0].body,
            smuggled.as_bytes(),
            "the body went on as a body"
        );
        assert_eq!(seen[0].headers("content-length"), ["52"]);
    }
}

#[tokio::test]
async fn a_smuggled_post_cannot_swallow_the_next_users_request() {
    let (recorder, _router, addr) = guarded_recorder(RouterOptions::default()).await;
    let smuggled = "POST /steal HTTP/1.1\r\nHost: web\r\nContent-Length: 120\r\n\r\n";
    let attack = format!(
        "POST / HTTP/1.1\r\nHost: web\r\nConnection: content-length\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let mut stream = connect_and_send(addr, attack.as_bytes()).await;
    let (_, body) = read_response(&mut stream).await;
    assert_eq!(body, "seen 0: POST / HTTP/1.1");
    victim_is_unharmed(addr, &recorder).await;
    assert!(
        recorder
            .seen()
            .iter()
            .all(|s| s.request_line() != "POST /steal HTTP/1.1"),
        "{:#?}",
        recorder.seen()
    );
}

#[tokio::test]
async fn connection_content_length_on_the_hyper_path_keeps_the_length() {
    // HTTP/1.0 and `Expect` take hyper's path; the length must survive there too.
    let (recorder, _router, addr) = guarded_recorder(RouterOptions::default()).await;
    let smuggled = "GET /health?smuggled HTTP/1.1\r\nHost: web\r\nX-Ignore: ";
    let attack = format!(
        "POST / HTTP/1.0\r\nHost: web\r\nConnection: keep-alive, content-length\r\nContent-Length: 52\r\n\r\n{smuggled}"
    );
    let mut stream = connect_and_send(addr, attack.as_bytes()).await;
    let (head, body) = read_response(&mut stream).await;
    assert!(head.contains(" 200 "), "{head}");
    assert_eq!(body, "seen 0: POST / HTTP/1.1");
    victim_is_unharmed(addr, &recorder).await;
    let seen = recorder.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(seen[0].body, smuggled.as_bytes());
}

#[tokio::test]
async fn a_response_whose_connection_names_content_length_keeps_its_length() {
    let backend = RawBackend::start(
        vec![b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\nok"],
        false,
    )
    .await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    // Plain path twice, then a chunked upload (hyper's path), on one connection.
    let mut stream = connect_and_send(
        addr,
        b"GET / HTTP/1.1\r\nHost: web\r\n\r\nGET / HTTP/1.1\r\nHost: web\r\n\r\n",
    )
    .await;
    for _ in 0..2 {
        let (head, body) = read_response(&mut stream).await;
        assert!(head.contains("Content-Length: 2\r\n"), "{head}");
        assert_eq!(body, "ok");
    }
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "ok");
}

// === item 2: malformed and stalled request bodies are the client's fault ===

#[tokio::test]
async fn malformed_chunked_bodies_get_400_and_never_count_against_the_canary() {
    let stable = Recorder::start().await;
    let canary = [Recorder::start().await, Recorder::start().await];
    let config = listener(vec![service(
        "web",
        vec![
            release("v1", 90.0, false, &[stable.addr]),
            release("v2", 10.0, true, &[canary[0].addr, canary[1].addr]),
        ],
    )]);
    let (router, addr) = start_router(config).await;
    let bodies: [&[u8]; 6] = [
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"-1\r\nhello\r\n0\r\n\r\n",
        b"5\nhello\n0\n\n",
        b"5\r\nhelloXX\r\n0\r\n\r\n",
        b"10000000000000000\r\nhello\r\n0\r\n\r\n",
        b"3\r\nabc\r\n5\r\nab",
    ];
    for body in bodies {
        let mut attack = b"POST /upload HTTP/1.1\r\nHost: web\r\nX-Slipway-Release: canary\r\n\
Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        attack.extend_from_slice(body);
        let mut stream = connect_and_send(addr, &attack).await;
        if body.ends_with(b"ab") {
            // A body cut short: the client leaves.
            stream.shutdown().await.unwrap();
        }
        let answer = read_to_close(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{}: {answer}",
            String::from_utf8_lossy(body)
        );
    }
    let stats = router.stats("test").unwrap();
    let v2 = stats.iter().find(|s| s.release == "v2").unwrap();
    assert_eq!(
        (v2.requests, v2.errors, v2.router_errors),
        (0, 0, 0),
        "{v2:?}"
    );
    assert_eq!(v2.client_errors, bodies.len() as u64, "{v2:?}");
    // No complete request reached the app; no instance was ejected: both still serve.
    assert!(canary.iter().all(|c| c.seen().is_empty()));
    let client = TestClient::new(addr);
    for _ in 0..4 {
        let reply = client.get("/", &[("x-slipway-release", "canary")]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert!(
        canary.iter().all(|c| !c.seen().is_empty()),
        "an instance was ejected"
    );
}

#[tokio::test]
async fn a_stalled_chunked_upload_gets_408_and_no_ejection() {
    let opts = RouterOptions {
        header_read_timeout: Duration::from_millis(300),
        ..RouterOptions::default()
    };
    let (recorder, router, addr) = guarded_recorder(opts).await;
    let started = std::time::Instant::now();
    let mut stream = connect_and_send(
        addr,
        b"POST /upload HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    )
    .await;
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let stats = router.stats("test").unwrap();
    assert_eq!(
        (stats[0].router_errors, stats[0].client_errors),
        (0, 1),
        "{stats:?}"
    );
    assert!(recorder.seen().is_empty());
    assert_eq!(TestClient::new(addr).get("/", &[]).await.status, 200);
}

#[tokio::test]
async fn a_stalled_content_length_upload_gets_408() {
    let opts = RouterOptions {
        header_read_timeout: Duration::from_millis(300),
        ..RouterOptions::default()
    };
    let (recorder, router, addr) = guarded_recorder(opts).await;
    let answer = refused(
        addr,
        b"POST /upload HTTP/1.1\r\nHost: web\r\nContent-Length: 10\r\n\r\nhel",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let stats = router.stats("test").unwrap();
    assert_eq!(
        (stats[0].router_errors, stats[0].client_errors),
        (0, 1),
        "{stats:?}"
    );
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn an_upload_trickling_past_the_request_deadline_is_the_clients_fault() {
    // Each byte comes within the read timeout, but the whole takes longer than the
    // request timeout: the deadline passes while the router waits on the client.
    let recorder = Recorder::start().await;
    let mut config = single(recorder.addr);
    config.services[0].request_timeout = Duration::from_millis(400);
    let opts = RouterOptions {
        header_read_timeout: Duration::from_secs(5),
        ..RouterOptions::default()
    };
    let (router, addr) = start_router_with(opts, config).await;
    for head in [
        &b"POST /upload HTTP/1.1\r\nHost: web\r\nContent-Length: 100\r\n\r\n"[..],
        b"POST /upload HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let mut stream = connect_and_send(addr, head).await;
        let trickle = async {
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if stream.write_all(b"1\r\nx\r\n").await.is_err() {
                    break;
                }
            }
        };
        trickle.await;
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let stats = router.stats("test").unwrap();
    assert_eq!(
        (stats[0].router_errors, stats[0].client_errors),
        (0, 2),
        "{stats:?}"
    );
}

// === item 3: bounded memory ===

#[tokio::test]
async fn an_unfinished_head_gets_431_at_the_limit_not_after() {
    let opts = RouterOptions {
        max_header_bytes: 8 * 1024,
        ..RouterOptions::default()
    };
    let (recorder, _router, addr) = guarded_recorder(opts).await;
    let mut head = b"GET / HTTP/1.1\r\nHost: web\r\nX-Big: ".to_vec();
    head.resize(60 * 1024, b'a');
    // No end of head is ever sent: the answer comes at 8 KiB, without waiting.
    let answer = refused(addr, &head).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(recorder.raw().is_empty());
    assert_eq!(TestClient::new(addr).get("/", &[]).await.status, 200);
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_at_once() {
    let opts = RouterOptions {
        max_connections: 3,
        ..RouterOptions::default()
    };
    let (_recorder, _router, addr) = guarded_recorder(opts).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_and_send(addr, b"GET / HTTP/1.1\r\nHost: web\r\n\r\n").await;
        read_response(&mut stream).await;
        held.push(stream);
    }
    let mut extra = connect_and_send(addr, b"GET / HTTP/1.1\r\nHost: web\r\n\r\n").await;
    assert_eq!(read_to_close(&mut extra).await, "", "the fourth was served");
    drop(held.pop());
    eventually("a freed slot takes a new connection", || async {
        let mut stream = connect_and_send(addr, b"GET / HTTP/1.1\r\nHost: web\r\n\r\n").await;
        read_head(&mut stream).await.starts_with("HTTP/1.1 200")
    })
    .await;
}

// === item 7: what HAProxy answers 400 to ===

#[tokio::test]
async fn requests_rfc_9112_refuses_get_400_and_reach_no_app() {
    let (recorder, _router, addr) = guarded_recorder(RouterOptions::default()).await;
    for (attack, why) in [
        (&b"GET / HTTP/1.1\r\nHost: web\r\nHost: evil\r\n\r\n"[..], "two Host headers"),
        (b"GET http://evil/ HTTP/1.1\r\nHost: web\r\n\r\n", "authority is not Host"),
        (b"GET abc HTTP/1.1\r\nHost: web\r\n\r\n", "a target without /"),
        (b"GET abc HTTP/1.0\r\nHost: web\r\n\r\n", "a target without / (1.0)"),
        (b"CONNECT web:22 HTTP/1.1\r\nHost: web:22\r\n\r\n", "CONNECT"),
        (
            b"POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n",
            "a coding before chunked",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            "chunked not last",
        ),
    ] {
        let answer = refused(addr, attack).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{why}: {answer}");
        assert!(answer.contains("connection: close"), "{why}: {answer}");
    }
    assert!(recorder.raw().is_empty(), "{}", recorder.raw());
}

#[tokio::test]
async fn an_absolute_form_target_routes_by_its_authority() {
    let recorder = Recorder::start().await;
    let other = Recorder::start().await;
    let config = listener(vec![
        service("web", vec![release("v1", 100.0, false, &[recorder.addr])]),
        service("api", vec![release("v1", 100.0, false, &[other.addr])]),
    ]);
    let (_router, addr) = start_router(config).await;
    for attack in [
        &b"GET http://api/x?y=1 HTTP/1.1\r\nHost: api\r\n\r\n"[..],
        b"GET http://api/x?y=1 HTTP/1.1\r\n\r\n",
    ] {
        let mut stream = connect_and_send(addr, attack).await;
        let (head, body) = read_response(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(body.ends_with("GET /x?y=1 HTTP/1.1"), "{body}");
    }
    assert!(recorder.seen().is_empty());
    let seen = other.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter().all(|s| s.headers("host") == ["api"]),
        "{seen:#?}"
    );
}

// === what held and must keep holding ===

#[tokio::test]
async fn cl_te_te_cl_and_te_te_never_make_two_requests() {
    let (recorder, _router, addr) = guarded_recorder(RouterOptions::default()).await;
    let inner = "GET /smuggled HTTP/1.1\r\nHost: web\r\n\r\n";
    let attacks = [
        format!(
            "POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{inner}"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n0\r\n\r\n{inner}"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n{inner}"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{inner}"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{inner}"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n bogus\r\n\r\n0\r\n\r\n{inner}"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\nContent-Length: 41\r\n\r\n{inner}"
        ),
        format!("POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 0x29\r\n\r\n{inner}"),
        format!("POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 4 1\r\n\r\n{inner}"),
    ];
    for attack in &attacks {
        let answer = refused(addr, attack.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{attack}: {answer}");
        assert!(!answer.contains("smuggled"), "{attack}: {answer}");
    }
    assert!(recorder.seen().is_empty(), "{:#?}", recorder.seen());
    // Two equal lengths are one length; tab before chunked is whitespace.
    let mut stream = connect_and_send(
        addr,
        b"POST /a HTTP/1.1\r\nHost: web\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc\
POST /b HTTP/1.1\r\nHost: web\r\nTransfer-Encoding:\tchunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(
        read_response(&mut stream).await.1,
        "seen 0: POST /a HTTP/1.1"
    );
    assert_eq!(
        read_response(&mut stream).await.1,
        "seen 1: POST /b HTTP/1.1"
    );
    let seen = recorder.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(
        (&seen[0].body[..], &seen[1].body[..]),
        (&b"abc"[..], &b"xyz"[..])
    );
}

#[tokio::test]
async fn obs_fold_nul_and_bare_cr_are_refused() {
    let (recorder, _router, addr) = guarded_recorder(RouterOptions::default()).await;
    for attack in [
        &b"GET / HTTP/1.1\r\nHost: web\r\nX-A: 1\r\n folded\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: web\r\nX-A: a\0b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: web\r\nX-A: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\rHost: web\r\n\r\n",
        b"GET /\0 HTTP/1.1\r\nHost: web\r\n\r\n",
    ] {
        let answer = refused(addr, attack).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{attack:?}: {answer}");
    }
    assert!(recorder.raw().is_empty(), "{}", recorder.raw());
}

#[tokio::test]
async fn heads_of_64_kib_and_10000_headers_are_refused() {
    let (recorder, _router, addr) = guarded_recorder(RouterOptions::default()).await;
    let mut big = b"GET / HTTP/1.1\r\nHost: web\r\nX-Big: ".to_vec();
    big.resize(65 * 1024, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    let many: String = (0..10_000).map(|i| format!("x{i}:1\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: web\r\n{many}\r\n");
    let few_many: String = (0..150).map(|i| format!("x{i}:1\r\n")).collect();
    let few_many = format!("GET / HTTP/1.1\r\nHost: web\r\n{few_many}\r\n");
    for attack in [&big[..], many.as_bytes(), few_many.as_bytes()] {
        let answer = refused(addr, attack).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    }
    assert!(recorder.raw().is_empty());
}

#[tokio::test]
async fn a_slowloris_head_is_cut_at_the_head_timeout() {
    let opts = RouterOptions {
        header_read_timeout: Duration::from_millis(300),
        ..RouterOptions::default()
    };
    let (recorder, _router, addr) = guarded_recorder(opts).await;
    let started = std::time::Instant::now();
    let mut stream = connect_and_send(addr, b"GET / HTTP/1.1\r\n").await;
    // A header byte every 50 ms: each read is in time, the head is not.
    let mut cut = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if stream.write_all(b"X").await.is_err() {
            cut = true;
            break;
        }
        if started.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let rest = read_to_close(&mut stream).await;
    assert!(cut || rest.is_empty(), "{rest}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(recorder.raw().is_empty());
}

#[tokio::test]
async fn pipelining_across_the_plain_and_hyper_paths_keeps_requests_apart() {
    let (recorder, _router, addr) = guarded_recorder(RouterOptions::default()).await;
    let mut stream = connect_and_send(
        addr,
        b"GET /1 HTTP/1.1\r\nHost: web\r\n\r\n\
POST /2 HTTP/1.1\r\nHost: web\r\nContent-Length: 4\r\n\r\ntwo.\
POST /3 HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n\
GET /4 HTTP/1.1\r\nHost: web\r\n\r\n\
POST /5 HTTP/1.1\r\nHost: web\r\nContent-Length: 4\r\n\r\nfive",
    )
    .await;
    for (i, line) in ["GET /1", "POST /2", "POST /3", "GET /4", "POST /5"]
        .iter()
        .enumerate()
    {
        let (_, body) = read_response(&mut stream).await;
        assert_eq!(body, format!("seen {i}: {line} HTTP/1.1"));
    }
    let bodies: Vec<Vec<u8>> = recorder.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(
        bodies,
        [&b""[..], b"two.", b"three", b"", b"five"].map(<[u8]>::to_vec)
    );
}

#[tokio::test]
async fn expect_100_continue_gets_its_interim_answer_then_the_body_goes_through() {
    let (recorder, _router, addr) = guarded_recorder(RouterOptions::default()).await;
    let mut stream = connect_and_send(
        addr,
        b"PUT /up HTTP/1.1\r\nHost: web\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .await;
    let interim = read_head(&mut stream).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    stream.write_all(b"hello").await.unwrap();
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "seen 0: PUT /up HTTP/1.1");
    let seen = recorder.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, b"hello");
}

#[tokio::test]
async fn an_upgrade_answered_without_101_opens_no_tunnel() {
    let (recorder, _router, addr) = guarded_recorder(RouterOptions::default()).await;
    let mut stream = connect_and_send(
        addr,
        b"GET /ws HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Frame bytes sent as if a tunnel were open are not passed to the app raw.
    stream
        .write_all(b"\x81\x05hello GET /tunnelled HTTP/1.1\r\nHost: web\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!recorder.raw().contains("hello"), "{}", recorder.raw());
    assert_eq!(recorder.seen().len(), 1);
}
