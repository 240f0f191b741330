//! The accept loop of one listener: HTTP/1.1 and HTTP/2 from clients, with header limits
//! and timeouts so one misbehaving client cannot hold others up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::proxy::{self, Shared};

/// Bound on finishing in-flight requests when a listener with no services stops.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);

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
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Reap finished connection tasks so the set does not grow.
                    while connections.try_join_next().is_some() {}
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    let peer = peer_header(peer);
                    let service = service_fn(move |req| proxy::handle(Arc::clone(&shared), peer.clone(), req));
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn.into_owned());
                    connections.spawn(async move {
                        if let Err(error) = conn.await {
                            tracing::debug!(%error, "client connection ended");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let grace = shared
        .snapshot
        .load()
        .max_drain_timeout()
        .unwrap_or(DEFAULT_GRACE);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {grace:?}; closing them");
    }
    connections.shutdown().await;
}

fn peer_header(peer: SocketAddr) -> HeaderValue {
    let ip = peer.ip().to_canonical().to_string();
    HeaderValue::try_from(ip).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}
