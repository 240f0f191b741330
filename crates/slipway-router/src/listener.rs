//! The accept loop of one listener. Each connection starts on the plain path
//! ([`fast_path`]); the first request that needs more (HTTP/2, an upgrade, a chunked
//! upload, HTTP/1.0) hands it to hyper, with header limits and timeouts so one
//! misbehaving client cannot hold others up. A listener holds at most
//! `RouterOptions::max_connections` connections.

use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::fast_path::{self, Ending};
use crate::hyper_path;
use crate::proxy::Shared;

/// Bound on finishing in-flight requests when a listener with no services stops.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);

type Builder = auto::Builder<TokioExecutor>;

pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.opts.header_read_timeout)
        .writev(false)
        .max_buf_size(shared.opts.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(shared.opts.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    let max_connections = shared.opts.max_connections.max(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if connections.len() >= max_connections {
                        // Closed at once rather than left waiting in the backlog: the
                        // client learns now, and holds nothing of ours.
                        tracing::debug!(%peer, max_connections, "connection limit reached; closing");
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(
                        stream,
                        peer_header(peer),
                        Arc::clone(&shared),
                        Arc::clone(&builder),
                        stop.clone(),
                    ));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // A finished connection's task is freed now, not at the next accept: its
            // memory goes back, and the count above stays true.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let grace = shared
        .snapshot
        .load()
        .max_drain_timeout()
        .unwrap_or(DEFAULT_GRACE);
    // Connections see `stop` too: idle ones close, busy ones finish their request.
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::warn!("connections still open after {grace:?}; closing them");
    }
    connections.shutdown().await;
}

/// Serves one client connection until it closes or the listener stops.
async fn connection(
    mut stream: TcpStream,
    peer: HeaderValue,
    shared: Arc<Shared>,
    builder: Arc<Builder>,
    mut stop: watch::Receiver<bool>,
) {
    let read = match fast_path::serve(&mut stream, &shared, peer.as_bytes(), &mut stop).await {
        Ending::Closed => return,
        Ending::HandOff(read) => read.freeze(),
    };
    let service = service_fn(move |req| hyper_path::handle(Arc::clone(&shared), peer.clone(), req));
    let io = TokioIo::new(Replayed { read, stream });
    let mut conn = pin!(builder.serve_connection_with_upgrades(io, service));
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "client connection ended");
    }
}

fn peer_header(peer: SocketAddr) -> HeaderValue {
    let ip = peer.ip().to_canonical().to_string();
    HeaderValue::try_from(ip).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// A client connection whose first bytes were already read by the plain path: reads
/// give those bytes first.
struct Replayed {
    read: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Replayed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.read.is_empty() {
            return Pin::new(&mut self.stream).poll_read(cx, buf);
        }
        let n = self.read.len().min(buf.remaining());
        buf.put_slice(&self.read[..n]);
        self.read.advance(n);
        if self.read.is_empty() {
            // Frees the plain path's buffer for the rest of the connection's life.
            self.read = Bytes::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replayed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
