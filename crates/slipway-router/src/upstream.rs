//! Instances of a release: passive health, outstanding-request counts and pools of
//! HTTP/1.1 keep-alive connections.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::hyper_path::ClientBody;
use bytes::BytesMut;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::RouterOptions;

/// Read buffer of a plain-path upstream connection: room for typical response heads.
const RAW_BUF: usize = 8 * 1024;

/// Opens a TCP connection to an instance, bounded by the connect timeout.
async fn dial(addr: SocketAddr, opts: &RouterOptions) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(opts.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

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
    /// Idle connections of the plain path.
    raw: Pool<RawConn>,
    /// Idle connections of hyper's path (HTTP/2 clients, upgrades, chunked uploads).
    hyper: Pool<Conn>,
    /// Taken out of the configuration: no new requests, no connection reuse.
    removed: AtomicBool,
    /// Past its drain deadline: in-flight requests are cut.
    retired: AtomicBool,
    retire: Notify,
}

/// Idle keep-alive connections, most recently used at the back: reusing the warmest one
/// keeps few sockets busy and lets the rest expire.
struct Pool<C> {
    idle: Mutex<VecDeque<C>>,
    max_idle: usize,
    idle_timeout: Duration,
}

/// A connection a [`Pool`] can hold.
trait Pooled {
    /// When the last request on it started: its idle age is measured from there, which
    /// errs on the side of retiring it early (no extra clock read per request).
    fn used_at(&self) -> Instant;
    fn is_open(&self) -> bool;
}

/// A plain-path connection to an instance: the socket and what was read past the last
/// response (kept with it, so its buffer is reused too).
pub(crate) struct RawConn {
    pub(crate) stream: TcpStream,
    pub(crate) buf: BytesMut,
    /// Came from the pool, so it may have been closed by the upstream meanwhile.
    pub(crate) reused: bool,
    used_at: Instant,
}

/// Drives one upstream connection: reads and writes its socket, hands out upgrades.
///
/// It is polled by the request that uses the connection (see [`Conn::poll_driver`])
/// instead of running as a task of its own: a task per connection costs two task
/// wake-ups and a channel hop per request, which is most of a proxy's user time.
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// An HTTP/1.1 connection to an instance, with its driver.
pub(crate) struct Conn {
    pub(crate) sender: SendRequest<ClientBody>,
    /// `None` once the connection has ended.
    driver: Option<Driver>,
    /// Came from the pool, so it may have been closed by the upstream meanwhile.
    pub(crate) reused: bool,
    used_at: Instant,
}

// === impl Conn ===

impl Conn {
    /// Lets the connection read and write what it can. Call it before polling anything
    /// that waits on the connection (readiness, response, body).
    pub(crate) fn poll_driver(&mut self, cx: &mut Context<'_>) {
        if let Some(driver) = &mut self.driver
            && let Poll::Ready(result) = driver.as_mut().poll(cx)
        {
            if let Err(error) = result {
                tracing::debug!(%error, "upstream connection ended");
            }
            self.driver = None;
        }
    }

    /// Waits until the connection can take a request (a pooled one must first see the
    /// end of its previous exchange).
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        self.poll_driver(cx);
        self.sender.poll_ready(cx)
    }

    /// Hands the rest of the connection's life to a task of its own: for upgraded
    /// (tunnelled) connections, whose bytes no request body drives any more.
    pub(crate) fn detach(mut self) {
        if let Some(driver) = self.driver.take() {
            tokio::spawn(async move {
                if let Err(error) = driver.await {
                    tracing::debug!(%error, "upstream connection ended");
                }
            });
        }
    }
}

impl Pooled for Conn {
    fn used_at(&self) -> Instant {
        self.used_at
    }

    fn is_open(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }
}

impl Pooled for RawConn {
    fn used_at(&self) -> Instant {
        self.used_at
    }

    /// Whether the upstream closed it is only learnt by using it (see
    /// [`Instance::checkout_raw`]).
    fn is_open(&self) -> bool {
        true
    }
}

// === impl Pool ===

impl<C: Pooled> Pool<C> {
    fn new(opts: &RouterOptions) -> Pool<C> {
        Pool {
            idle: Mutex::new(VecDeque::new()),
            max_idle: opts.max_idle_per_instance.max(1),
            idle_timeout: opts.pool_idle_timeout,
        }
    }

    /// The most recently used open connection not idle too long, as of `now`.
    fn take(&self, now: Instant) -> Option<C> {
        loop {
            // The lock is released before a stale connection is dropped.
            let conn = self.lock().pop_back()?;
            if conn.is_open() && now.saturating_duration_since(conn.used_at()) < self.idle_timeout {
                return Some(conn);
            }
        }
    }

    fn put(&self, conn: C) {
        if !conn.is_open() {
            return;
        }
        let now = conn.used_at();
        let mut idle = self.lock();
        // The oldest connections sit at the front; drop those past the idle timeout
        // (the app may be closing them) and those beyond the pool size.
        while idle.len() >= self.max_idle
            || idle.front().is_some_and(|oldest| {
                now.saturating_duration_since(oldest.used_at()) >= self.idle_timeout
            })
        {
            idle.pop_front();
        }
        idle.push_back(conn);
    }

    fn clear(&self) {
        // Dropped outside the lock: closing sockets need not hold up other requests.
        let dropped = std::mem::take(&mut *self.lock());
        drop(dropped);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<C>> {
        // The queue stays consistent even if a holder panicked.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// === impl Instance ===

impl Instance {
    pub(crate) fn new(addr: SocketAddr, opts: &RouterOptions) -> Instance {
        Instance {
            addr,
            outstanding: AtomicUsize::new(0),
            ejected_until: AtomicU64::new(0),
            raw: Pool::new(opts),
            hyper: Pool::new(opts),
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
        self.clear_idle();
    }

    /// Counts a request against this instance until the lease drops.
    pub(crate) fn lease(self: &std::sync::Arc<Self>) -> Lease {
        self.outstanding.fetch_add(1, Relaxed);
        Lease {
            instance: self.clone(),
        }
    }

    /// A pooled or new plain-path connection for a request that started at `now`. A
    /// pooled one that has something to read (the upstream closed it, or sent junk) is
    /// dropped: no syscall is spent on that check.
    pub(crate) async fn checkout_raw(
        &self,
        opts: &RouterOptions,
        now: Instant,
    ) -> std::io::Result<RawConn> {
        while let Some(mut conn) = self.raw.take(now) {
            let quiet =
                poll_fn(|cx| Poll::Ready(conn.stream.poll_read_ready(cx).is_pending())).await;
            if quiet {
                conn.reused = true;
                conn.used_at = now;
                return Ok(conn);
            }
        }
        Ok(RawConn {
            stream: dial(self.addr, opts).await?,
            buf: BytesMut::with_capacity(RAW_BUF),
            reused: false,
            used_at: now,
        })
    }

    /// Returns a plain-path connection whose last response was read to the end. One
    /// holding bytes past that end is spoilt (they are nobody's) and is dropped.
    pub(crate) fn put_back_raw(&self, mut conn: RawConn) {
        if !self.removed.load(Relaxed) && conn.buf.is_empty() {
            conn.buf.reserve(RAW_BUF);
            self.raw.put(conn);
        }
    }

    /// A pooled or new hyper connection for a request that started at `now`.
    pub(crate) async fn checkout(
        &self,
        opts: &RouterOptions,
        now: Instant,
    ) -> std::io::Result<Conn> {
        if let Some(mut conn) = self.hyper.take(now) {
            conn.reused = true;
            conn.used_at = now;
            return Ok(conn);
        }
        let (sender, conn) = http1::Builder::new()
            // Heads and small bodies go out in one `send` instead of a `writev`.
            .writev(false)
            .handshake(TokioIo::new(dial(self.addr, opts).await?))
            .await
            .map_err(std::io::Error::other)?;
        Ok(Conn {
            sender,
            driver: Some(Box::pin(conn.with_upgrades())),
            reused: false,
            used_at: now,
        })
    }

    /// Returns a hyper connection whose last response was read to the end.
    pub(crate) fn put_back(&self, conn: Conn) {
        if !self.removed.load(Relaxed) {
            self.hyper.put(conn);
        }
    }

    /// Taken out of the configuration: stop reusing its connections now.
    pub(crate) fn remove(&self) {
        self.removed.store(true, Relaxed);
        self.clear_idle();
    }

    fn clear_idle(&self) {
        self.raw.clear();
        self.hyper.clear();
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
