//! The data plane: weighted, sticky HTTP reverse proxy with counters and drain.
//!
//! A [`Router`] serves named listeners (one per environment). Each listener routes by an
//! immutable [`ListenerConfig`] snapshot swapped atomically; requests pick a service by
//! host, a release by a sticky hash bucket, and an instance by least outstanding requests.
//!
//! Plain HTTP/1.1 requests take a hand-written path (`fast_path`, `head`): most traffic,
//! served with little work per request. HTTP/2, upgrades, chunked uploads and malformed
//! heads take hyper's (`hyper_path`). Both make their choices in `proxy`.
#![forbid(unsafe_code)]

mod config;
mod control;
mod error;
mod fast_path;
mod head;
#[cfg(test)]
mod head_props;
mod hyper_path;
mod listener;
mod proxy;
mod router;
mod routing;
mod static_mode;
mod stats;
mod upstream;

use std::time::Duration;

pub use config::{ListenerConfig, ReleaseConfig, ServiceConfig};
pub use control::{ControlClient, run_control, serve_control};
pub use error::{Error, Result};
pub use router::Router;
pub use static_mode::{StaticBackend, StaticOptions, run_static, runtime};
pub use stats::{Histogram, ReleaseStats};

/// Limits and timings of the data plane that are not part of a listener's config.
#[derive(Clone, Debug)]
pub struct RouterOptions {
    /// A client must send a whole request head within this time (slow-loris guard); it
    /// also closes keep-alive connections idle that long.
    pub header_read_timeout: Duration,
    /// Largest request head accepted; larger ones get 431. It also bounds the head
    /// buffer of each client connection.
    pub max_header_bytes: usize,
    /// Client connections one listener holds at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Bound on opening a TCP connection to an instance.
    pub connect_timeout: Duration,
    /// How long an instance that refused or broke a connection gets no new requests.
    pub eject_duration: Duration,
    /// Pooled upstream connections idle longer are not reused: kept below the usual
    /// keep-alive timeouts of app servers (5 s in Node, uvicorn) so the app does not close
    /// them under us.
    pub pool_idle_timeout: Duration,
    /// Idle upstream connections kept per instance.
    pub max_idle_per_instance: usize,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            header_read_timeout: Duration::from_secs(15),
            max_header_bytes: 32 * 1024,
            max_connections: 10_000,
            connect_timeout: Duration::from_secs(2),
            eject_duration: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(4),
            max_idle_per_instance: 256,
        }
    }
}
