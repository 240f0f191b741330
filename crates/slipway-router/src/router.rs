//! The public handle: listeners by name, each with its atomically swapped config.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ListenerConfig;
use crate::proxy::Shared;
use crate::routing::{CounterRegistry, Snapshot};
use crate::stats::{self, ReleaseStats};
use crate::upstream::Instance;
use crate::{Error, Result, RouterOptions, listener};

/// The data plane. Cheap to clone; all clones drive the same listeners.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    opts: Arc<RouterOptions>,
    listeners: Mutex<BTreeMap<String, Listener>>,
}

struct Listener {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Control-path only (configure, stats); the request path holds `Arc<Counters>`.
    counters: Arc<Mutex<CounterRegistry>>,
    config: ListenerConfig,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    runtime: Handle,
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

// === impl Router ===

impl Router {
    pub fn new() -> Router {
        Router::with_options(RouterOptions::default())
    }

    pub fn with_options(opts: RouterOptions) -> Router {
        Router {
            inner: Arc::new(Inner {
                opts: Arc::new(opts),
                listeners: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Binds and starts serving a listener (name = environment, e.g. "staging"); returns
    /// the bound address (addr may use port 0). It answers 404 until configured.
    pub async fn add_listener(&self, name: &str, addr: SocketAddr) -> Result<SocketAddr> {
        self.bind(name, addr, ListenerConfig::default()).await
    }

    /// Binds a listener that starts with `config` already in place, so its first request
    /// is routed (a restarted server opens its listeners this way, never with a 404 gap).
    pub async fn bind(
        &self,
        name: &str,
        addr: SocketAddr,
        config: ListenerConfig,
    ) -> Result<SocketAddr> {
        config.validate()?;
        if self.listeners().contains_key(name) {
            return Err(Error::ListenerExists(name.to_owned()));
        }
        let socket = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let bound = socket.local_addr()?;
        let mut counters = CounterRegistry::new();
        let (snapshot, _) = Snapshot::build(
            &config,
            &Snapshot::default(),
            &mut counters,
            &self.inner.opts,
        );
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            opts: Arc::clone(&self.inner.opts),
        });
        let (stop, stopped) = watch::channel(false);
        let mut listeners = self.listeners();
        if listeners.contains_key(name) {
            return Err(Error::ListenerExists(name.to_owned()));
        }
        let task = tokio::spawn(listener::serve(socket, Arc::clone(&shared), stopped));
        listeners.insert(
            name.to_owned(),
            Listener {
                addr: bound,
                shared,
                counters: Arc::new(Mutex::new(counters)),
                config,
                stop,
                task,
                runtime: Handle::current(),
            },
        );
        tracing::info!(listener = name, addr = %bound, "router listening");
        Ok(bound)
    }

    /// Stops accepting on a listener, lets in-flight requests finish (bounded by the
    /// longest `drain_timeout`), and forgets it.
    pub async fn remove_listener(&self, name: &str) -> Result<()> {
        let listener = self
            .listeners()
            .remove(name)
            .ok_or_else(|| Error::UnknownListener(name.to_owned()))?;
        listener.stop.send_replace(true);
        if let Err(error) = listener.task.await {
            tracing::warn!(%error, listener = name, "listener task failed");
        }
        for instance in listener.shared.snapshot.load().instances() {
            instance.remove();
        }
        Ok(())
    }

    /// Atomically replaces the listener's routing config. Instances no longer listed get
    /// no new requests; their in-flight ones may finish within the service's
    /// `drain_timeout`.
    pub fn configure(&self, listener: &str, config: ListenerConfig) -> Result<()> {
        config.validate()?;
        let mut listeners = self.listeners();
        let entry = listeners
            .get_mut(listener)
            .ok_or_else(|| Error::UnknownListener(listener.to_owned()))?;
        let old = entry.shared.snapshot.load_full();
        let (snapshot, removed) = {
            let mut counters = lock(&entry.counters);
            Snapshot::build(&config, &old, &mut counters, &self.inner.opts)
        };
        entry.shared.snapshot.store(Arc::new(snapshot));
        entry.config = config;
        for (instance, drain) in removed {
            entry.runtime.spawn(drain_instance(instance, drain));
        }
        Ok(())
    }

    /// The address and last configuration of a listener.
    pub fn listener(&self, name: &str) -> Option<(SocketAddr, ListenerConfig)> {
        self.listeners()
            .get(name)
            .map(|l| (l.addr, l.config.clone()))
    }

    /// Cumulative counters per service and release of a listener, sorted by both.
    pub fn stats(&self, listener: &str) -> Result<Vec<ReleaseStats>> {
        let counters = self
            .listeners()
            .get(listener)
            .map(|l| Arc::clone(&l.counters))
            .ok_or_else(|| Error::UnknownListener(listener.to_owned()))?;
        let counters = lock(&counters);
        Ok(counters
            .iter()
            .map(|((service, release), c)| c.snapshot(service, release))
            .collect())
    }

    /// Prometheus text exposition of all counters (labels app, environment, release).
    pub fn render_metrics(&self, out: &mut String) {
        out.push_str(stats::PROMETHEUS_HEADER);
        let listeners: Vec<(String, Arc<Mutex<CounterRegistry>>)> = self
            .listeners()
            .iter()
            .map(|(name, l)| (name.clone(), Arc::clone(&l.counters)))
            .collect();
        for (name, counters) in listeners {
            let snapshot: Vec<ReleaseStats> = lock(&counters)
                .iter()
                .map(|((service, release), c)| c.snapshot(service, release))
                .collect();
            stats::render_prometheus(out, &name, &snapshot);
        }
    }

    /// Stops accepting on every listener, drains them, and returns.
    pub async fn shutdown(&self) {
        let names: Vec<String> = self.listeners().keys().cloned().collect();
        let removals: Vec<_> = names
            .into_iter()
            .map(|name| {
                let router = self.clone();
                tokio::spawn(async move { router.remove_listener(&name).await })
            })
            .collect();
        for removal in removals {
            let _ = removal.await;
        }
    }

    fn listeners(&self) -> MutexGuard<'_, BTreeMap<String, Listener>> {
        lock(&self.inner.listeners)
    }
}

/// The maps behind these locks stay consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Lets a removed instance finish what it has in flight, then cuts the rest.
async fn drain_instance(instance: Arc<Instance>, drain: Duration) {
    instance.remove();
    let deadline = tokio::time::Instant::now() + drain;
    // Sleep first: a request that picked the instance from the old snapshot takes its
    // lease just after, and must not find it retired with nothing outstanding.
    loop {
        tokio::time::sleep(Duration::from_millis(20).min(drain)).await;
        if instance.outstanding() == 0 || tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    if instance.outstanding() > 0 {
        tracing::info!(addr = %instance.addr, "drain timeout reached; cutting in-flight requests");
    }
    instance.retire();
}
