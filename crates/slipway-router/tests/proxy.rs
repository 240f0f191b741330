//! The router over real loopback HTTP, against small hyper backends.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use slipway_router::RouterOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use util::*;

#[tokio::test]
async fn weighted_split_follows_the_weights_over_many_keys() {
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    let (_router, addr) = start_router(split(&v1, &v2, 10.0)).await;
    let client = TestClient::new(addr);
    let mut canary = 0;
    for i in 0..2000 {
        let key = format!("user-{i}");
        let reply = client.get("/", &[("x-slipway-key", &key)]).await;
        assert_eq!(reply.status, 200);
        canary += usize::from(reply.body == "v2");
    }
    let share = canary as f64 / 2000.0;
    assert!((0.08..=0.12).contains(&share), "canary share {share}");
}

#[tokio::test]
async fn sticky_users_stay_on_canary_when_its_weight_rises() {
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    let (router, addr) = start_router(split(&v1, &v2, 10.0)).await;
    let client = TestClient::new(addr);
    let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    let mut on_canary = HashSet::new();
    for key in &keys {
        let first = client.get("/", &[("x-slipway-key", key)]).await.body;
        let again = client.get("/", &[("x-slipway-key", key)]).await.body;
        assert_eq!(first, again, "key {key} moved between two requests");
        if first == "v2" {
            on_canary.insert(key.clone());
        }
    }
    assert!(!on_canary.is_empty());

    router.configure("test", split(&v1, &v2, 50.0)).unwrap();
    let mut now_canary = 0;
    for key in &keys {
        let body = client.get("/", &[("x-slipway-key", key)]).await.body;
        if on_canary.contains(key) {
            assert_eq!(body, "v2", "key {key} left the canary when its weight rose");
        }
        now_canary += usize::from(body == "v2");
    }
    assert!(
        (400..=600).contains(&now_canary),
        "{now_canary} of 1000 on canary at 50%"
    );
}

#[tokio::test]
async fn release_header_forces_a_side_even_at_zero_weight() {
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    let (_router, addr) = start_router(split(&v1, &v2, 0.0)).await;
    let client = TestClient::new(addr);
    for i in 0..50 {
        let key = format!("u{i}");
        assert_eq!(client.get("/", &[("x-slipway-key", &key)]).await.body, "v1");
        let forced = [
            ("x-slipway-key", key.as_str()),
            ("x-slipway-release", "canary"),
        ];
        assert_eq!(client.get("/", &forced).await.body, "v2");
    }
    assert_eq!(
        client
            .get("/", &[("x-slipway-release", "stable")])
            .await
            .body,
        "v1"
    );
}

#[tokio::test]
async fn a_user_without_key_gets_a_cookie_that_keeps_them_on_one_release() {
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    let (_router, addr) = start_router(split(&v1, &v2, 50.0)).await;
    let client = TestClient::new(addr);
    for _ in 0..20 {
        let first = client.get("/", &[]).await;
        let set_cookie = first
            .headers
            .get("set-cookie")
            .expect("cookie set")
            .to_str()
            .unwrap();
        assert!(set_cookie.starts_with("slipway_key="), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        for _ in 0..5 {
            let again = client
                .get("/", &[("cookie", &format!("theme=dark; {cookie}"))])
                .await;
            assert_eq!(again.body, first.body);
            assert!(again.headers.get("set-cookie").is_none());
        }
    }
    let keyed = client.get("/", &[("x-slipway-key", "alice")]).await;
    assert!(keyed.headers.get("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfiguring_under_load_fails_no_request() {
    let backends = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let config = |i: usize| {
        let (x, y) = (&backends[i % 3], &backends[(i + 1) % 3]);
        listener(vec![service(
            "web",
            vec![
                release(
                    "stable",
                    100.0 - (i % 10) as f64 * 10.0,
                    false,
                    &[x.addr, y.addr],
                ),
                release("canary", (i % 10) as f64 * 10.0, true, &[y.addr]),
            ],
        )])
    };
    let (router, addr) = start_router(config(0)).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (client, stop) = (TestClient::new(addr), stop.clone());
            tokio::spawn(async move {
                let mut done = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let reply = client
                        .get("/", &[("x-slipway-key", &format!("w{w}-{done}"))])
                        .await;
                    assert_eq!(
                        reply.status, 200,
                        "failed during reconfiguration: {}",
                        reply.body
                    );
                    done += 1;
                }
                done
            })
        })
        .collect();
    for i in 1..60 {
        router.configure("test", config(i)).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for worker in workers {
        total += worker.await.expect("a request failed");
    }
    assert!(total > 100, "only {total} requests ran");
    let stats = router.stats("test").unwrap();
    assert_eq!(
        stats
            .iter()
            .map(|s| s.router_errors + s.errors)
            .sum::<u64>(),
        0
    );
}

#[tokio::test]
async fn in_flight_requests_of_a_removed_release_complete() {
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    let (router, addr) = start_router(split(&v1, &v2, 0.0)).await;
    let client = TestClient::new(addr);
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.get("/slow?ms=400", &[]).await }
    });
    eventually("the slow request to reach v1", || async {
        v1.received() == 1
    })
    .await;
    // Switch everything to v2: v1 is no longer in the config at all.
    let only_v2 = listener(vec![service(
        "web",
        vec![release("v2", 100.0, false, &[v2.addr])],
    )]);
    router.configure("test", only_v2).unwrap();
    assert_eq!(client.get("/", &[]).await.body, "v2");
    let slow = slow.await.unwrap();
    assert_eq!((slow.status.as_u16(), slow.body.as_str()), (200, "v1"));
}

#[tokio::test]
async fn drain_is_bounded_by_drain_timeout() {
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    let mut config = split(&v1, &v2, 0.0);
    config.services[0].drain_timeout = Duration::from_millis(100);
    let (router, addr) = start_router(config.clone()).await;
    let client = TestClient::new(addr);
    let started = Instant::now();
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.get("/slow?ms=3000", &[]).await }
    });
    eventually("the slow request to reach v1", || async {
        v1.received() == 1
    })
    .await;
    config.services[0].releases.retain(|r| r.name == "v2");
    config.services[0].releases[0].weight = 100.0;
    router.configure("test", config).unwrap();
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, 504, "{}", slow.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drain took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn refused_instance_is_ejected_and_get_retried_elsewhere() {
    let good = Backend::start("good").await;
    let dead = refusing_addr().await;
    let config = listener(vec![service(
        "web",
        vec![release("v1", 100.0, false, &[dead, good.addr])],
    )]);
    let (router, addr) = start_router(config).await;
    let client = TestClient::new(addr);
    for _ in 0..20 {
        let reply = client.get("/", &[]).await;
        assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "good"));
    }
    // A POST with a body is not retried; the dead instance is ejected by now so it goes
    // to the good one.
    let post = client
        .send("POST", "/", &[], Bytes::from_static(b"data"))
        .await;
    assert_eq!(post.status, 200);

    let only_dead = listener(vec![service(
        "web",
        vec![release("v1", 100.0, false, &[dead])],
    )]);
    router.configure("test", only_dead).unwrap();
    let reply = client.get("/", &[]).await;
    assert_eq!(reply.status, 502);
    assert!(reply.body.contains("could not connect"), "{}", reply.body);
    let stats = router.stats("test").unwrap();
    assert_eq!((stats[0].router_errors, stats[0].errors), (1, 0));
}

#[tokio::test]
async fn router_answers_503_without_instances_and_504_on_timeout() {
    let slow = Backend::start("slow").await;
    let mut config = listener(vec![
        service("empty", vec![release("v1", 100.0, false, &[])]),
        service("slow", vec![release("v1", 100.0, false, &[slow.addr])]),
    ]);
    config.services[1].request_timeout = Duration::from_millis(100);
    let (router, addr) = start_router(config).await;
    let client = TestClient::new(addr);
    let empty = client.get("/", &[("host", "empty.example.com")]).await;
    assert_eq!(empty.status, 503);
    let timeout = client
        .get("/slow?ms=2000", &[("x-slipway-app", "slow")])
        .await;
    assert_eq!(timeout.status, 504);
    assert!(!timeout.body.is_empty());
    let unknown = client.get("/", &[("host", "nope.example.com")]).await;
    assert_eq!(unknown.status, 404);
    let stats = router.stats("test").unwrap();
    assert!(
        stats.iter().all(|s| s.router_errors == 1 && s.errors == 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn host_label_or_app_header_selects_the_service() {
    let (web, api) = (Backend::start("web").await, Backend::start("api").await);
    let config = listener(vec![
        service("web", vec![release("v1", 100.0, false, &[web.addr])]),
        service("api", vec![release("v1", 100.0, false, &[api.addr])]),
    ]);
    let (_router, addr) = start_router(config).await;
    let client = TestClient::new(addr);
    assert_eq!(
        client
            .get("/", &[("host", "api.example.com:8080")])
            .await
            .body,
        "api"
    );
    assert_eq!(
        client.get("/", &[("host", "WEB.example.com")]).await.body,
        "web"
    );
    assert_eq!(
        client.get("/", &[("x-slipway-app", "api")]).await.body,
        "api"
    );
}

#[tokio::test]
async fn upgrade_tunnels_bytes_both_ways() {
    let backend = Backend::start("ws").await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    let mut stream = connect_and_send(
        addr,
        b"GET /upgrade HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await;
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: echo"),
        "{head}"
    );
    for message in [&b"hello"[..], b"through the router"] {
        stream.write_all(message).await.unwrap();
        let mut buf = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buf, message);
    }
}

#[tokio::test]
async fn huge_headers_get_431_and_others_are_served() {
    let backend = Backend::start("v1").await;
    let opts = RouterOptions {
        max_header_bytes: 16 * 1024,
        ..RouterOptions::default()
    };
    let (_router, addr) = start_router_with(opts, single(backend.addr)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let huge = "a".repeat(64 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: web\r\nX-Huge: {huge}\r\n\r\n");
    // The router may close before reading it all; only its answer matters.
    let _ = stream.write_all(request.as_bytes()).await;
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    assert_eq!(TestClient::new(addr).get("/", &[]).await.body, "v1");
}

#[tokio::test]
async fn slow_loris_is_cut_by_the_header_timeout_while_others_are_served() {
    let backend = Backend::start("v1").await;
    let opts = RouterOptions {
        header_read_timeout: Duration::from_millis(300),
        ..RouterOptions::default()
    };
    let (_router, addr) = start_router_with(opts, single(backend.addr)).await;
    let mut loris = connect_and_send(addr, b"GET / HTTP/1.1\r\nHost: web\r\nX-Slow: ").await;
    let client = TestClient::new(addr);
    let started = Instant::now();
    assert_eq!(client.get("/", &[]).await.body, "v1");
    assert!(started.elapsed() < Duration::from_millis(250));
    // The router closes the stalled connection: reads end (EOF or error, maybe after a 408).
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        let mut buf = [0u8; 512];
        loop {
            match loris.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "slow-loris connection still open");
}

#[tokio::test]
async fn forwarded_headers_are_set_and_hop_by_hop_ones_stripped() {
    let backend = Backend::start("v1").await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    let client = TestClient::new(addr);
    let reply = client
        .get(
            "/headers",
            &[
                ("host", "web.example.com"),
                ("connection", "keep-alive, x-private"),
                ("x-private", "secret"),
                ("keep-alive", "timeout=5"),
                ("proxy-authorization", "Basic eA=="),
                ("x-forwarded-for", "10.0.0.1"),
                ("x-kept", "yes"),
            ],
        )
        .await;
    let seen = reply.body;
    assert!(
        seen.contains("x-forwarded-for: 10.0.0.1, 127.0.0.1\n"),
        "{seen}"
    );
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(
        seen.contains("x-forwarded-host: web.example.com\n"),
        "{seen}"
    );
    assert!(seen.contains("host: web.example.com\n"), "{seen}");
    assert!(seen.contains("x-kept: yes\n"), "{seen}");
    for stripped in ["x-private", "keep-alive", "proxy-authorization"] {
        assert!(
            !seen.contains(&format!("{stripped}:")),
            "{stripped} reached the app: {seen}"
        );
    }
    // The backend's own `keep-alive` response header does not reach the client.
    assert!(reply.headers.get("keep-alive").is_none());
}

#[tokio::test]
async fn http2_clients_are_proxied_to_http1_apps() {
    let backend = Backend::start("v1").await;
    let (_router, addr) = start_router(single(backend.addr)).await;
    let client = TestClient::http2(addr);
    let reply = client.get("/headers", &[]).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.contains(&format!("host: {addr}")),
        "{}",
        reply.body
    );
    let post = client
        .send("POST", "/", &[], Bytes::from(vec![b'x'; 100_000]))
        .await;
    assert_eq!(post.body, "v1");
}

#[tokio::test]
async fn counters_split_app_and_router_errors_and_give_quantiles() {
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    let (router, addr) = start_router(split(&v1, &v2, 50.0)).await;
    let client = TestClient::new(addr);
    for _ in 0..30 {
        client.get("/", &[("x-slipway-release", "stable")]).await;
    }
    for _ in 0..10 {
        assert_eq!(
            client
                .get("/status/503", &[("x-slipway-release", "canary")])
                .await
                .status,
            503
        );
    }
    for _ in 0..10 {
        client
            .get("/slow?ms=30", &[("x-slipway-release", "canary")])
            .await;
    }
    let stats = router.stats("test").unwrap();
    let by = |name: &str| stats.iter().find(|s| s.release == name).unwrap().clone();
    let (stable, canary) = (by("v1"), by("v2"));
    assert_eq!(
        (
            stable.service.as_str(),
            stable.requests,
            stable.errors,
            stable.router_errors
        ),
        ("web", 30, 0, 0)
    );
    assert_eq!(
        (canary.requests, canary.errors, canary.router_errors),
        (20, 10, 0)
    );
    let p99 = canary.latency.quantile(0.99).unwrap();
    assert!(
        p99 >= Duration::from_millis(25) && p99 < Duration::from_millis(200),
        "p99 {p99:?}"
    );
    assert!(canary.latency.quantile(0.5).unwrap() <= p99);
    assert_eq!(canary.latency.count(), 20);

    // Counters survive a reconfiguration that drops the release and brings it back.
    let only_v1 = listener(vec![service(
        "web",
        vec![release("v1", 100.0, false, &[v1.addr])],
    )]);
    router.configure("test", only_v1).unwrap();
    router.configure("test", split(&v1, &v2, 50.0)).unwrap();
    client.get("/", &[("x-slipway-release", "canary")]).await;
    let after = router.stats("test").unwrap();
    let canary_after = after.iter().find(|s| s.release == "v2").unwrap();
    assert_eq!(canary_after.requests, 21);
    assert_eq!(canary_after.latency.delta(&canary.latency).count(), 1);

    let mut metrics = String::new();
    router.render_metrics(&mut metrics);
    assert!(
        metrics.contains(
            r#"slipway_router_requests_total{app="web",environment="test",release="v2"} 21"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"slipway_router_errors_total{app="web",environment="test",release="v2"} 10"#
        )
    );
    assert!(metrics.contains(r#"slipway_router_request_duration_seconds_count{app="web",environment="test",release="v1"} 30"#));
}

#[tokio::test]
async fn removed_listener_stops_accepting() {
    let backend = Backend::start("v1").await;
    let (router, addr) = start_router(single(backend.addr)).await;
    assert_eq!(TestClient::new(addr).get("/", &[]).await.body, "v1");
    router.remove_listener("test").await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
    assert!(router.stats("test").is_err());
    assert!(router.remove_listener("test").await.is_err());
}
