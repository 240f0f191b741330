//! `--probe URL`: one GET, exit status 0 for a 2xx answer and 1 otherwise. It exists for
//! images built `FROM scratch`, which have no shell or curl for a `HEALTHCHECK` to run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connecting, sending and reading the answer each get this long.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Where to probe: an IP address and port (no name lookup: a static image has no
/// resolver configuration to rely on) and a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
}

/// Parses `http://IP:PORT[/PATH]`.
pub fn parse_url(url: &str) -> Option<Target> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Some(Target {
        addr: authority.parse().ok()?,
        path: path.to_owned(),
    })
}

/// The status code of `GET target`, or a description of what went wrong.
pub fn status(target: &Target) -> Result<u16, String> {
    let mut stream = TcpStream::connect_timeout(&target.addr, TIMEOUT)
        .map_err(|e| format!("cannot connect to {}: {e}", target.addr))?;
    let io = |e: std::io::Error| format!("{}: {e}", target.addr);
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.path, target.addr
    )
    .map_err(io)?;
    // The status line is all that is needed; it fits in the first read of any sane server.
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(io)?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.strip_prefix("HTTP/1.")
        .and_then(|l| l.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{} did not answer HTTP: {line:?}", target.addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_urls_only() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/health"),
            Some(Target {
                addr: "127.0.0.1:8080".parse().unwrap(),
                path: "/health".into()
            })
        );
        assert_eq!(parse_url("http://[::1]:9/").unwrap().path, "/");
        assert_eq!(parse_url("http://127.0.0.1:9").unwrap().path, "/");
        for bad in [
            "127.0.0.1:9/health",
            "https://127.0.0.1:9/",
            "http://localhost:9/",
            "http://127.0.0.1/",
            "",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }
}
