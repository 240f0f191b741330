//! Instances of a release: passive health, outstanding-request counts and a lock-free
//! pool of HTTP/1.1 keep-alive connections.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::RouterOptions;

/// Milliseconds since the first use of the router clock: cheap to store in an atomic.
pub(crate) fn now_millis() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One running copy of a release, shared by every snapshot that routes to its address.
pub(crate) struct Instance {
    pub(crate) addr: SocketAddr,
    outstanding: AtomicUsize,
    /// Router clock (ms) until which this instance gets no new requests; 0 = healthy.
    ejected_until: AtomicU64,
    idle: ArrayQueue<IdleConn>,
    /// Taken out of the configuration: no new requests, no connection reuse.
    removed: AtomicBool,
    /// Past its drain deadline: in-flight requests are cut.
    retired: AtomicBool,
    retire: Notify,
}

struct IdleConn {
    sender: SendRequest<Incoming>,
    since: Instant,
}

/// A connection ready to carry one request.
pub(crate) struct Conn {
    pub(crate) sender: SendRequest<Incoming>,
    /// Came from the pool, so it may have been closed by the upstream meanwhile.
    pub(crate) reused: bool,
}

// === impl Instance ===

impl Instance {
    pub(crate) fn new(addr: SocketAddr, opts: &RouterOptions) -> Instance {
        Instance {
            addr,
            outstanding: AtomicUsize::new(0),
            ejected_until: AtomicU64::new(0),
            idle: ArrayQueue::new(opts.max_idle_per_instance.max(1)),
            removed: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            retire: Notify::new(),
        }
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Relaxed)
    }

    pub(crate) fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until.load(Relaxed) > now_ms
    }

    /// Passive health: a connection failure keeps new requests away for a while.
    pub(crate) fn eject(&self, duration: Duration) {
        let until = now_millis().saturating_add(duration.as_millis() as u64);
        self.ejected_until.store(until, Relaxed);
        while self.idle.pop().is_some() {}
    }

    /// Counts a request against this instance until the lease drops.
    pub(crate) fn lease(self: &std::sync::Arc<Self>) -> Lease {
        self.outstanding.fetch_add(1, Relaxed);
        Lease {
            instance: self.clone(),
        }
    }

    /// A pooled connection, or a new one.
    pub(crate) async fn checkout(&self, opts: &RouterOptions) -> std::io::Result<Conn> {
        while let Some(idle) = self.idle.pop() {
            if !idle.sender.is_closed() && idle.since.elapsed() < opts.pool_idle_timeout {
                return Ok(Conn {
                    sender: idle.sender,
                    reused: true,
                });
            }
        }
        self.connect(opts).await.map(|sender| Conn {
            sender,
            reused: false,
        })
    }

    async fn connect(&self, opts: &RouterOptions) -> std::io::Result<SendRequest<Incoming>> {
        let stream = tokio::time::timeout(opts.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            if let Err(error) = conn.with_upgrades().await {
                tracing::debug!(%error, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Returns a connection whose last response was read to the end.
    pub(crate) fn put_back(&self, sender: SendRequest<Incoming>) {
        if !self.removed.load(Relaxed) && !sender.is_closed() {
            // A full pool drops the connection, which closes it.
            let _ = self.idle.push(IdleConn {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Taken out of the configuration: stop reusing its connections now.
    pub(crate) fn remove(&self) {
        self.removed.store(true, Relaxed);
        while self.idle.pop().is_some() {}
    }

    /// The drain deadline passed: cut what is still in flight.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Relaxed);
        self.retire.notify_waiters();
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Relaxed)
    }

    /// Resolves once the instance is retired.
    pub(crate) async fn retired(&self) {
        // Created before the flag check so a concurrent `retire` cannot be missed.
        let notified = self.retire.notified();
        if self.is_retired() {
            return;
        }
        notified.await;
    }
}

/// An outstanding request on an instance (for least-outstanding balancing and drain).
pub(crate) struct Lease {
    pub(crate) instance: std::sync::Arc<Instance>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.instance.outstanding.fetch_sub(1, Relaxed);
    }
}
