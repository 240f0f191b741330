//! HTTP/1.1 message heads on the plain-request path: what a head says about its body and
//! its connection, and the rewritten head the router sends on. Pure byte work, no I/O.
//!
//! Only requests this module calls [`Parsed::Plain`] take that path; anything else
//! (HTTP/2, upgrades, chunked uploads, `Expect`, HTTP/1.0, malformed heads) is served by
//! hyper, which answers the errors.

use httparse::{EMPTY_HEADER, Header, Status};

/// Headers per message on the plain path; a head with more goes to hyper, which refuses
/// more than 100.
pub(crate) const MAX_HEADERS: usize = 100;

pub(crate) type HeaderSlots<'b> = [Header<'b>; MAX_HEADERS];

pub(crate) fn header_slots<'b>() -> HeaderSlots<'b> {
    [EMPTY_HEADER; MAX_HEADERS]
}

/// Connection-scoped headers (RFC 9110 §7.6.1): never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Whether a header stays on its hop: a hop-by-hop one, or one the message's
/// `Connection` header values (`connection`) name. `Connection` never removes a framing
/// header: the body after the head is framed by it, and a length dropped while its body
/// goes on would make that body the next request (smuggling).
pub(crate) fn is_hop_by_hop(name: &str, connection: &[&[u8]]) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
        || (!name.eq_ignore_ascii_case("content-length")
            && connection
                .iter()
                .any(|value| has_token(value, name.as_bytes())))
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
pub(crate) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    Length(u64),
    Chunked,
    /// Everything until the upstream closes (responses only).
    UntilClose,
}

/// A request head the plain path serves.
pub(crate) struct RequestHead<'h, 'b> {
    pub(crate) method: &'b str,
    pub(crate) path: &'b str,
    pub(crate) headers: &'h [Header<'b>],
    /// Bytes of the head, up to and including its blank line.
    pub(crate) len: usize,
    /// Bytes of body that follow the head.
    pub(crate) body: u64,
    /// The client asked to close the connection after this exchange.
    pub(crate) close: bool,
}

pub(crate) enum Parsed<'h, 'b> {
    /// The head is not complete yet.
    Partial,
    Plain(RequestHead<'h, 'b>),
    /// Not for the plain path: hand the connection to hyper.
    Other,
    /// A request no path serves (RFC 9112): answered 400, then the connection closes.
    Bad(Malformed),
}

/// Why a request is refused before it is routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Two `Host` headers: which one routes is ambiguous.
    TwoHosts,
    /// An absolute-form target whose authority is not the `Host` header.
    HostMismatch,
    /// A target that is neither origin-form (`/…`), absolute-form nor `*` for OPTIONS.
    Target,
    /// `CONNECT`: the router does not open tunnels to arbitrary ports.
    Connect,
    /// A `Transfer-Encoding` other than one `chunked`, or beside a `Content-Length`.
    TransferEncoding,
    /// A `Content-Length` that is not one decimal number.
    ContentLength,
}

impl Malformed {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Malformed::TwoHosts => "more than one Host header\n",
            Malformed::HostMismatch => "the request target's authority is not the Host header\n",
            Malformed::Target => "the request target must start with /\n",
            Malformed::Connect => "CONNECT is not supported\n",
            Malformed::TransferEncoding => {
                "Transfer-Encoding must be chunked alone, without Content-Length\n"
            }
            Malformed::ContentLength => "Content-Length must be one decimal number\n",
        }
    }
}

/// What a `Transfer-Encoding` value (all of a request's such headers, in order) allows:
/// only `chunked`, once and last (RFC 9112 §6.3); any other coding would be decoded by
/// the router as chunked and forwarded without it.
pub(crate) fn is_plain_chunked<'v>(values: impl IntoIterator<Item = &'v [u8]>) -> bool {
    let mut codings = values
        .into_iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty());
    codings
        .next()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
        && codings.next().is_none()
}

/// The authority of an absolute-form target (`http://authority/…`); `None` for any
/// other form.
pub(crate) fn authority_of(target: &str) -> Option<&str> {
    let rest = target
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &target[7..])
        .or_else(|| {
            target
                .get(..8)
                .filter(|s| s.eq_ignore_ascii_case("https://"))
                .map(|_| &target[8..])
        })?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Reads a request head from the start of `buf`.
pub(crate) fn parse_request<'h, 'b>(
    buf: &'b [u8],
    slots: &'h mut HeaderSlots<'b>,
) -> Parsed<'h, 'b> {
    let mut req = httparse::Request::new(slots);
    let len = match req.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Parsed::Other;
    };
    if method == "CONNECT" {
        return Parsed::Bad(Malformed::Connect);
    }
    let headers: &'h [Header<'b>] = req.headers;
    let mut body = None;
    let mut close = false;
    let mut host = None;
    let mut encoded = false;
    // Set for what hyper serves; a malformed head is refused first, whichever path.
    let mut other = version != 1;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            match (parse_length(h.value), body) {
                (Some(n), None) => body = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Parsed::Bad(Malformed::ContentLength),
            }
        } else if name.eq_ignore_ascii_case("host") {
            if host.replace(h.value).is_some() {
                return Parsed::Bad(Malformed::TwoHosts);
            }
        } else if name.eq_ignore_ascii_case("connection") {
            other |= has_token(h.value, b"upgrade");
            close |= has_token(h.value, b"close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
        } else if name.eq_ignore_ascii_case("upgrade") || name.eq_ignore_ascii_case("expect") {
            other = true;
        }
    }
    if encoded {
        let codings = headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
            .map(|h| h.value);
        if body.is_some() || !is_plain_chunked(codings) {
            return Parsed::Bad(Malformed::TransferEncoding);
        }
        other = true;
    }
    // Origin-form targets only; absolute-form takes hyper's path, which routes by its
    // authority once it is the Host header.
    if !(path.starts_with('/') || path == "*" && method == "OPTIONS") {
        let Some(authority) = authority_of(path) else {
            return Parsed::Bad(Malformed::Target);
        };
        if host.is_some_and(|h| !h.eq_ignore_ascii_case(authority.as_bytes())) {
            return Parsed::Bad(Malformed::HostMismatch);
        }
        other = true;
    }
    if other {
        return Parsed::Other;
    }
    Parsed::Plain(RequestHead {
        method,
        path,
        headers,
        len,
        body: body.unwrap_or(0),
        close,
    })
}

fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Whether a method may be sent again after a failed attempt.
pub(crate) fn is_idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
}

/// Writes the head the router sends upstream for `head`: HTTP/1.1, hop-by-hop headers
/// dropped, `X-Forwarded-For` extended with `peer`, `-Proto` and `-Host` set.
pub(crate) fn write_request(out: &mut Vec<u8>, head: &RequestHead<'_, '_>, peer: &[u8]) {
    let connection = connection_values(head.headers);
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut forwarded_for: Option<Vec<u8>> = None;
    let mut host = None;
    for h in head.headers {
        if h.name.eq_ignore_ascii_case("x-forwarded-for") {
            let joined = forwarded_for.get_or_insert_with(Vec::new);
            if !joined.is_empty() {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(h.value);
            continue;
        }
        if h.name.eq_ignore_ascii_case("x-forwarded-proto")
            || h.name.eq_ignore_ascii_case("x-forwarded-host")
            || is_hop_by_hop(h.name, &connection)
        {
            continue;
        }
        if h.name.eq_ignore_ascii_case("host") {
            host.get_or_insert(h.value);
        }
        write_header(out, h.name.as_bytes(), h.value);
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(earlier) = forwarded_for {
        out.extend_from_slice(&earlier);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(peer);
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
    if let Some(host) = host {
        write_header(out, b"x-forwarded-host", host);
    }
    out.extend_from_slice(b"\r\n");
}

fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn connection_values<'b>(headers: &[Header<'b>]) -> Vec<&'b [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .map(|h| h.value)
        .collect()
}

/// What an upstream's response head says, once rewritten for the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    pub(crate) status: http::StatusCode,
    /// Bytes of the upstream's head.
    pub(crate) len: usize,
    pub(crate) framing: Framing,
    /// The upstream connection can carry another request after this body.
    pub(crate) reusable: bool,
}

/// The response head at the start of `buf` is malformed or not one the router forwards.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadResponse;

/// What to add to a response head for the client.
pub(crate) struct ClientHead<'a> {
    /// A `Set-Cookie` value for a user who had no sticky key.
    pub(crate) cookie: Option<&'a [u8]>,
    /// The router closes the client connection after this response.
    pub(crate) close: bool,
    /// The request was `HEAD`: the response has no body whatever its headers say.
    pub(crate) head_request: bool,
}

pub(crate) enum ParsedResponse {
    Partial,
    /// An interim (1xx) response of `len` bytes: dropped, the final one follows.
    Interim(usize),
    Final(ResponseHead),
}

/// Reads the upstream response head at the start of `buf` and, for a final response,
/// writes the client's head to `out`. A body read until the upstream closes also closes
/// the client connection (`ResponseHead::framing` says so; `out` has `Connection: close`).
pub(crate) fn rewrite_response(
    buf: &[u8],
    client: &ClientHead<'_>,
    out: &mut Vec<u8>,
) -> Result<ParsedResponse, BadResponse> {
    let mut slots = header_slots();
    let mut res = httparse::Response::new(&mut slots);
    let len = match res.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(ParsedResponse::Partial),
        Err(_) => return Err(BadResponse),
    };
    let (Some(version), Some(code)) = (res.version, res.code) else {
        return Err(BadResponse);
    };
    let status = http::StatusCode::from_u16(code).map_err(|_| BadResponse)?;
    match code {
        // No upgrade was asked for on this path.
        101 => return Err(BadResponse),
        100..=199 => return Ok(ParsedResponse::Interim(len)),
        _ => {}
    }
    let headers: &[Header<'_>] = res.headers;
    let mut length = None;
    let mut chunked = false;
    let mut encoded = false;
    let mut keep_alive = version == 1;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            match (parse_length(h.value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err(BadResponse),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            // Chunked must be the last coding for the body to be framed by it.
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            if has_token(h.value, b"close") {
                keep_alive = false;
            } else if has_token(h.value, b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    let framing = if client.head_request || code == 204 || code == 304 {
        Framing::Empty
    } else if encoded {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    let reusable = keep_alive && framing != Framing::UntilClose;
    let close = client.close || framing == Framing::UntilClose;

    let connection = connection_values(headers);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(res.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in headers {
        // An encoded body passes through as it came, so its coding header stays, and a
        // length beside it is wrong (RFC 9112 §6.3).
        let is_coding = h.name.eq_ignore_ascii_case("transfer-encoding");
        if encoded && h.name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        if is_coding || !is_hop_by_hop(h.name, &connection) {
            write_header(out, h.name.as_bytes(), h.value);
        }
    }
    if let Some(cookie) = client.cookie {
        write_header(out, b"set-cookie", cookie);
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(ParsedResponse::Final(ResponseHead {
        status,
        len,
        framing,
        reusable,
    }))
}

/// A router-made response with a short text body.
pub(crate) fn write_text(out: &mut Vec<u8>, status: http::StatusCode, body: &str, close: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
}

/// Finds the end of a chunked body passed through byte for byte.
#[derive(Debug, Default)]
pub(crate) struct ChunkedEnd {
    state: Chunk,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// At the start of a chunk-size line.
    #[default]
    Size,
    /// Within the hex digits of a chunk size; `digits` counts them.
    SizeDigits {
        size: u64,
        digits: u8,
    },
    /// Chunk extensions, up to the line's end.
    Extension {
        size: u64,
    },
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final blank line).
    TrailerStart,
    TrailerLine,
    EndLf,
    Done,
}

impl ChunkedEnd {
    /// Scans `data`, the next bytes of the body. Returns how many of them belong to the
    /// body once its end is among them, `None` while it goes on.
    pub(crate) fn scan(&mut self, data: &[u8]) -> Result<Option<usize>, BadResponse> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            self.state = match self.state {
                Chunk::Size => match hex(b) {
                    Some(d) => Chunk::SizeDigits { size: d, digits: 1 },
                    None => return Err(BadResponse),
                },
                Chunk::SizeDigits { size, digits } => match hex(b) {
                    Some(d) if digits < 15 => Chunk::SizeDigits {
                        size: size << 4 | d,
                        digits: digits + 1,
                    },
                    Some(_) => return Err(BadResponse),
                    None => match b {
                        b'\r' => Chunk::SizeLf { size },
                        b';' | b' ' | b'\t' => Chunk::Extension { size },
                        _ => return Err(BadResponse),
                    },
                },
                Chunk::Extension { size } => match b {
                    b'\r' => Chunk::SizeLf { size },
                    b'\n' => return Err(BadResponse),
                    _ => Chunk::Extension { size },
                },
                Chunk::SizeLf { size } => match (b, size) {
                    (b'\n', 0) => Chunk::TrailerStart,
                    (b'\n', left) => Chunk::Data { left },
                    _ => return Err(BadResponse),
                },
                Chunk::Data { left } => {
                    // Skip the chunk's bytes in one step.
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(data.len() - i);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data { left }
                    };
                    continue;
                }
                Chunk::DataCr if b == b'\r' => Chunk::DataLf,
                Chunk::DataLf if b == b'\n' => Chunk::Size,
                Chunk::TrailerStart => match b {
                    b'\r' => Chunk::EndLf,
                    _ => Chunk::TrailerLine,
                },
                Chunk::TrailerLine => match b {
                    b'\n' => Chunk::TrailerStart,
                    _ => Chunk::TrailerLine,
                },
                Chunk::EndLf if b == b'\n' => Chunk::Done,
                Chunk::DataCr | Chunk::DataLf | Chunk::EndLf | Chunk::Done => {
                    return Err(BadResponse);
                }
            };
            i += 1;
            if self.state == Chunk::Done {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(raw: &[u8]) -> (String, String, usize, u64, bool) {
        let mut slots = header_slots();
        match parse_request(raw, &mut slots) {
            Parsed::Plain(h) => (h.method.into(), h.path.into(), h.len, h.body, h.close),
            Parsed::Partial => panic!("partial"),
            Parsed::Other => panic!("other"),
            Parsed::Bad(why) => panic!("bad: {why:?}"),
        }
    }

    fn bad(raw: &[u8]) -> Option<Malformed> {
        let mut slots = header_slots();
        match parse_request(raw, &mut slots) {
            Parsed::Bad(m) => Some(m),
            _ => None,
        }
    }

    fn is_other(raw: &[u8]) -> bool {
        let mut slots = header_slots();
        matches!(parse_request(raw, &mut slots), Parsed::Other)
    }

    #[test]
    fn plain_requests_give_their_body_length_and_close_wish() {
        let raw = b"POST /a?b=1 HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(
            plain(raw),
            ("POST".into(), "/a?b=1".into(), raw.len() - 5, 5, false)
        );
        let raw = b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n";
        assert!(plain(raw).4);
        let mut slots = header_slots();
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nHost: w", &mut slots),
            Parsed::Partial
        ));
    }

    #[test]
    fn unusual_requests_go_to_hyper() {
        for raw in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET http://web/ HTTP/1.1\r\n\r\n",
            b"GET http://WEB:80/x HTTP/1.1\r\nHost: web:80\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked \r\n\r\n",
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
        ] {
            assert!(is_other(raw), "{}", String::from_utf8_lossy(raw));
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        assert!(is_other(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()));
    }

    #[test]
    fn requests_no_path_serves_are_refused_with_the_reason() {
        use Malformed::*;
        for (raw, why) in [
            (&b"CONNECT web:22 HTTP/1.1\r\nHost: web:22\r\n\r\n"[..], Connect),
            (b"GET abc HTTP/1.1\r\nHost: web\r\n\r\n", Target),
            (b"GET * HTTP/1.1\r\nHost: web\r\n\r\n", Target),
            (b"GET http://api/ HTTP/1.1\r\nHost: web\r\n\r\n", HostMismatch),
            (b"GET / HTTP/1.1\r\nHost: web\r\nhost: api\r\n\r\n", TwoHosts),
            (b"GET / HTTP/1.0\r\nHost: web\r\nHost: web\r\n\r\n", TwoHosts),
            (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", ContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", ContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", ContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", ContentLength),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: identity, chunked\r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", TransferEncoding),
        ] {
            assert_eq!(bad(raw), Some(why), "{}", String::from_utf8_lossy(raw));
        }
        assert_eq!(bad(b"OPTIONS * HTTP/1.1\r\nHost: web\r\n\r\n"), None);
    }

    #[test]
    fn connection_never_drops_a_framing_header() {
        let raw = b"POST / HTTP/1.1\r\nHost: web\r\nConnection: keep-alive, Content-Length\r\n\
Content-Length: 4\r\n\r\nbody";
        let mut slots = header_slots();
        let Parsed::Plain(head) = parse_request(raw, &mut slots) else {
            panic!("not plain");
        };
        assert_eq!(head.body, 4);
        let mut out = Vec::new();
        write_request(&mut out, &head, b"127.0.0.1");
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Content-Length: 4\r\n"),
            "the length went missing"
        );
        let (head, out) = response(
            b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\nok",
            PLAIN,
        );
        assert_eq!(head.framing, Framing::Length(2));
        assert!(out.contains("Content-Length: 2\r\n"), "{out}");
    }

    #[test]
    fn the_forwarded_request_drops_hop_by_hop_headers_and_adds_forwarded_ones() {
        let raw = b"GET /p HTTP/1.1\r\nHost: web.example\r\nConnection: keep-alive, X-Private\r\n\
X-Private: s\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\n\
X-Forwarded-Proto: https\r\nX-Kept: yes\r\n\r\n";
        let mut slots = header_slots();
        let Parsed::Plain(head) = parse_request(raw, &mut slots) else {
            panic!("not plain");
        };
        let mut out = Vec::new();
        write_request(&mut out, &head, b"127.0.0.1");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /p HTTP/1.1\r\nHost: web.example\r\nX-Kept: yes\r\n\
x-forwarded-for: 10.0.0.1, 127.0.0.1\r\nx-forwarded-proto: http\r\n\
x-forwarded-host: web.example\r\n\r\n"
        );
    }

    fn response(raw: &[u8], client: ClientHead<'_>) -> (ResponseHead, String) {
        let mut out = Vec::new();
        match rewrite_response(raw, &client, &mut out) {
            Ok(ParsedResponse::Final(head)) => (head, String::from_utf8(out).unwrap()),
            _ => panic!("no final head"),
        }
    }

    const PLAIN: ClientHead<'static> = ClientHead {
        cookie: None,
        close: false,
        head_request: false,
    };

    #[test]
    fn response_heads_say_how_the_body_ends_and_whether_the_connection_lives_on() {
        let raw =
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\n\r\nv1\n";
        let (head, out) = response(
            raw,
            ClientHead {
                cookie: Some(b"k=1"),
                ..PLAIN
            },
        );
        assert_eq!(
            head,
            ResponseHead {
                status: http::StatusCode::OK,
                len: raw.len() - 3,
                framing: Framing::Length(3),
                reusable: true
            }
        );
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nset-cookie: k=1\r\n\r\n"
        );

        let (head, out) = response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            PLAIN,
        );
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let (head, out) = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", PLAIN);
        assert_eq!(head.framing, Framing::UntilClose);
        assert!(out.contains("Transfer-Encoding: gzip\r\n"), "{out}");

        // No length: the body runs to the upstream's close, so both connections end.
        let (head, out) = response(b"HTTP/1.0 200 OK\r\n\r\n", PLAIN);
        assert_eq!((head.framing, head.reusable), (Framing::UntilClose, false));
        assert!(out.ends_with("connection: close\r\n\r\n"), "{out}");

        let (head, _) = response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n",
            PLAIN,
        );
        assert_eq!((head.framing, head.reusable), (Framing::Length(9), false));

        let (head, _) = response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            ClientHead {
                head_request: true,
                ..PLAIN
            },
        );
        assert_eq!((head.framing, head.reusable), (Framing::Empty, true));
        let (head, _) = response(b"HTTP/1.1 304 Not Modified\r\n\r\n", PLAIN);
        assert_eq!(head.framing, Framing::Empty);
    }

    #[test]
    fn interim_and_malformed_responses() {
        let mut out = Vec::new();
        let raw = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n";
        assert!(matches!(
            rewrite_response(raw, &PLAIN, &mut out),
            Ok(ParsedResponse::Interim(40))
        ));
        for raw in [
            &b"HTTP/1.1 101 Switching Protocols\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert_eq!(
                rewrite_response(raw, &PLAIN, &mut out).err(),
                Some(BadResponse),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn chunked_end_is_found_across_any_split() {
        let body = b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";
        let mut with_next = body.to_vec();
        with_next.extend_from_slice(b"HTTP/1.1 200 OK");
        for split in 0..body.len() {
            let mut end = ChunkedEnd::default();
            let first = end.scan(&with_next[..split]).unwrap();
            assert_eq!(first, None, "ended early at split {split}");
            let rest = end.scan(&with_next[split..]).unwrap();
            assert_eq!(rest, Some(body.len() - split), "split {split}");
        }
        let mut end = ChunkedEnd::default();
        assert_eq!(end.scan(b"0\r\n\r\n"), Ok(Some(5)));
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for raw in [
            &b"x\r\n"[..],
            b"5\r\nhelloXX",
            b"5\n",
            b"12345678123456781\r\n",
        ] {
            let mut end = ChunkedEnd::default();
            assert_eq!(
                end.scan(raw),
                Err(BadResponse),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
