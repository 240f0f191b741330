//! Properties of the plain path's head parser and chunked scanner, over arbitrary and
//! hostile input (the fuzz targets of issue 14, as proptests that run in CI): nothing
//! panics, and a request the parser accepts is sent on framed exactly as it was read.

use proptest::prelude::*;

use crate::head::{
    ChunkedEnd, ClientHead, Framing, Parsed, ParsedResponse, header_slots, parse_request,
    rewrite_response, write_request,
};

const PLAIN: ClientHead<'static> = ClientHead {
    cookie: None,
    close: false,
    head_request: false,
};

/// Header lines a hostile client would try, framing and routing ones most of all.
fn header_line() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("content-length"),
        Just("Content-Length"),
        Just("transfer-encoding"),
        Just("keep-alive"),
        Just("close"),
        Just("upgrade"),
        Just("host"),
        Just("x-a"),
    ];
    prop_oneof![
        3 => (0u64..200).prop_map(|n| format!("Content-Length: {n}")),
        1 => "[0-9a-zA-Z+ -]{0,6}".prop_map(|v| format!("Content-Length: {v}")),
        3 => prop::collection::vec(token, 1..4).prop_map(|t| format!("Connection: {}", t.join(", "))),
        1 => prop_oneof![
            Just("chunked"),
            Just("identity, chunked"),
            Just("chunked, gzip"),
            Just("Chunked")
        ]
        .prop_map(|v| format!("Transfer-Encoding: {v}")),
        1 => "[a-z]{1,8}(:[0-9]{1,5})?".prop_map(|h| format!("Host: {h}")),
        1 => "[0-9.]{1,15}".prop_map(|v| format!("X-Forwarded-For: {v}")),
        1 => Just("Expect: 100-continue".to_owned()),
        1 => Just("Keep-Alive: timeout=5".to_owned()),
        1 => Just("TE: trailers".to_owned()),
        1 => "[A-Za-z-]{1,12}: [ -~]{0,20}",
    ]
}

/// A request head built from plausible parts, then its body bytes and what follows.
fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just("GET"),
            Just("POST"),
            Just("PUT"),
            Just("HEAD"),
            Just("OPTIONS"),
            Just("CONNECT")
        ],
        prop_oneof![
            6 => "/[a-z0-9/?=&]{0,20}",
            1 => Just("*".to_owned()),
            1 => "http://[a-z]{1,5}/[a-z]{0,5}",
            1 => "[a-z]{1,5}"
        ],
        prop_oneof![3 => Just("HTTP/1.1"), 1 => Just("HTTP/1.0")],
        prop::collection::vec(header_line(), 0..8),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(method, target, version, headers, rest)| {
            let mut raw = format!("{method} {target} {version}\r\n");
            for h in headers {
                raw.push_str(&h);
                raw.push_str("\r\n");
            }
            raw.push_str("\r\n");
            let mut raw = raw.into_bytes();
            raw.extend_from_slice(&rest);
            raw
        })
}

/// A chunked body: (chunks, with extensions and trailers), encoded.
fn chunked_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(
            (
                prop::collection::vec(any::<u8>(), 1..70),
                prop::option::of("[a-z]{1,4}(=[a-z0-9]{1,4})?"),
                any::<bool>(),
            ),
            0..6,
        ),
        prop::collection::vec("[A-Za-z-]{1,8}: [a-z]{0,8}", 0..3),
    )
        .prop_map(|(chunks, trailers)| {
            let mut body = Vec::new();
            for (data, ext, upper) in chunks {
                let size = if upper {
                    format!("{:X}", data.len())
                } else {
                    format!("{:x}", data.len())
                };
                body.extend_from_slice(size.as_bytes());
                if let Some(ext) = ext {
                    body.extend_from_slice(format!(";{ext}").as_bytes());
                }
                body.extend_from_slice(b"\r\n");
                body.extend_from_slice(&data);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n");
            for t in trailers {
                body.extend_from_slice(t.as_bytes());
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"\r\n");
            body
        })
}

proptest! {
    #[test]
    fn the_head_parser_never_panics_on_arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut slots = header_slots();
        let _ = parse_request(&raw, &mut slots);
    }

    #[test]
    fn the_head_parser_never_panics_on_a_mangled_request(
        raw in request(),
        at in any::<prop::sample::Index>(),
        junk in prop::collection::vec(any::<u8>(), 1..4),
    ) {
        let mut raw = raw;
        let at = at.index(raw.len() + 1);
        raw.splice(at..at, junk);
        let mut slots = header_slots();
        let _ = parse_request(&raw, &mut slots);
    }

    /// What the upstream reads from the forwarded head and body is exactly the request
    /// the router read: same method and target, same body length, and the head ends
    /// where the router's rewrite ends (so the body is not taken for a request).
    #[test]
    fn an_accepted_request_is_reframed_to_exactly_the_bytes_it_read(raw in request()) {
        let mut slots = header_slots();
        let Parsed::Plain(head) = parse_request(&raw, &mut slots) else {
            return Ok(());
        };
        prop_assert!(head.len <= raw.len());
        let mut out = Vec::new();
        write_request(&mut out, &head, b"127.0.0.1");
        let rewritten = out.len();
        let body = usize::try_from(head.body).unwrap_or(usize::MAX).min(raw.len() - head.len);
        out.extend_from_slice(&raw[head.len..head.len + body]);
        let mut again = header_slots();
        let Parsed::Plain(forwarded) = parse_request(&out, &mut again) else {
            panic!("the router's own head is not plain: {}", String::from_utf8_lossy(&out));
        };
        prop_assert_eq!(forwarded.len, rewritten);
        prop_assert_eq!(forwarded.body, head.body);
        prop_assert_eq!(forwarded.method, head.method);
        prop_assert_eq!(forwarded.path, head.path);
        prop_assert!(
            !forwarded.headers.iter().any(|h| h.name.eq_ignore_ascii_case("transfer-encoding")),
            "a coding header went upstream"
        );
    }

    #[test]
    fn the_chunked_scanner_never_panics_on_arbitrary_bytes(
        raw in prop::collection::vec(any::<u8>(), 0..1024),
        split in any::<prop::sample::Index>(),
    ) {
        let at = split.index(raw.len() + 1);
        let mut end = ChunkedEnd::default();
        if let Ok(None) = end.scan(&raw[..at]) {
            let _ = end.scan(&raw[at..]);
        }
    }

    /// A well-formed chunked body ends exactly at its last byte, wherever the reads
    /// split it, and what follows it (the next message) is never taken as part of it.
    #[test]
    fn the_chunked_scanner_finds_exactly_the_end(
        body in chunked_body(),
        next in prop::collection::vec(any::<u8>(), 0..40),
        split in any::<prop::sample::Index>(),
    ) {
        let mut stream = body.clone();
        stream.extend_from_slice(&next);
        let at = split.index(body.len());
        let mut end = ChunkedEnd::default();
        prop_assert_eq!(end.scan(&stream[..at]), Ok(None));
        prop_assert_eq!(end.scan(&stream[at..]), Ok(Some(body.len() - at)));
    }

    #[test]
    fn a_response_head_is_forwarded_with_the_framing_it_was_read_with(
        raw in prop::collection::vec(any::<u8>(), 0..1024),
        length in prop::option::of(0u64..100_000),
        connection in prop::option::of(prop_oneof![Just("content-length"), Just("close"), Just("transfer-encoding")]),
    ) {
        let mut out = Vec::new();
        let _ = rewrite_response(&raw, &PLAIN, &mut out);
        let mut head = String::from("HTTP/1.1 200 OK\r\n");
        if let Some(c) = connection {
            head.push_str(&format!("Connection: {c}\r\n"));
        }
        if let Some(n) = length {
            head.push_str(&format!("Content-Length: {n}\r\n"));
        }
        head.push_str("\r\n");
        out.clear();
        let Ok(ParsedResponse::Final(first)) = rewrite_response(head.as_bytes(), &PLAIN, &mut out) else {
            panic!("not a final response");
        };
        let mut again = Vec::new();
        let Ok(ParsedResponse::Final(second)) = rewrite_response(&out, &PLAIN, &mut again) else {
            panic!("the router's own head does not parse: {}", String::from_utf8_lossy(&out));
        };
        prop_assert_eq!(first.framing, second.framing);
        if let Some(n) = length.filter(|&n| n > 0) {
            prop_assert_eq!(first.framing, Framing::Length(n));
        }
    }
}
