//! The routing configuration of one listener, as the engine (or the control API) gives it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Everything one listener routes; swapped in as a whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenerConfig {
    pub services: Vec<ServiceConfig>,
}

/// One app behind a listener.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfig {
    /// The app name; also the first Host label (or `X-Slipway-App`) that selects it.
    pub name: String,
    pub releases: Vec<ReleaseConfig>,
    /// How long in-flight requests of a removed instance may still run.
    #[serde(with = "duration", default = "default_drain_timeout")]
    pub drain_timeout: Duration,
    /// Bound on connecting, sending and receiving the response head from an instance.
    #[serde(with = "duration", default = "default_request_timeout")]
    pub request_timeout: Duration,
}

/// One release (version) of an app and where its instances listen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseConfig {
    /// The version, e.g. `v1.4.2`.
    pub name: String,
    /// Percent of new traffic (0.0..=100.0, steps of 0.1).
    pub weight: f64,
    /// Whether this is the canary side: it owns the lowest hash buckets.
    #[serde(default)]
    pub canary: bool,
    pub instances: Vec<SocketAddr>,
}

fn default_drain_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

// === impl ListenerConfig ===

impl ListenerConfig {
    /// Rejects configurations the data plane could not route unambiguously.
    pub fn validate(&self) -> Result<()> {
        let mut names = HashSet::new();
        for service in &self.services {
            if service.name.is_empty() {
                return Err(invalid("a service has an empty name"));
            }
            if !names.insert(service.name.to_ascii_lowercase()) {
                return Err(invalid(format!("service {:?} appears twice", service.name)));
            }
            if service.request_timeout.is_zero() {
                return Err(invalid(format!(
                    "service {:?}: request_timeout must be positive",
                    service.name
                )));
            }
            let mut releases = HashSet::new();
            for release in &service.releases {
                if !releases.insert(release.name.as_str()) {
                    return Err(invalid(format!(
                        "service {:?}: release {:?} appears twice",
                        service.name, release.name
                    )));
                }
                if !release.weight.is_finite() || !(0.0..=100.0).contains(&release.weight) {
                    return Err(invalid(format!(
                        "service {:?}, release {:?}: weight {} is not a percentage in 0..=100",
                        service.name, release.name, release.weight
                    )));
                }
            }
        }
        Ok(())
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidConfig(message.into())
}

/// Durations travel as human-readable strings (`"30s"`, `"250ms"`); plain numbers are
/// read as milliseconds so hand-written JSON stays short.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(deserializer)? {
            Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
            Raw::Text(text) => humantime::parse_duration(&text)
                .map_err(|e| D::Error::custom(format!("bad duration {text:?}: {e}"))),
        }
    }
}
