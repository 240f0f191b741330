//! `slipway router --listen ADDR --backend URL=WEIGHT …`: fixed weighted backends, for
//! trials and benchmarks.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::config::{ListenerConfig, ReleaseConfig, ServiceConfig};
use crate::{Error, Result, Router, RouterOptions};

/// Listener and service name used in static mode (and in its metrics).
const STATIC_NAME: &str = "static";

/// Validated settings of a static router.
#[derive(Clone, Debug, PartialEq)]
pub struct StaticOptions {
    pub listen: SocketAddr,
    pub backends: Vec<StaticBackend>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StaticBackend {
    /// The URL as given.
    pub url: String,
    pub addr: SocketAddr,
    /// Relative weight as given (any non-negative number; normalised to percent).
    pub weight: f64,
}

// === impl StaticOptions ===

impl StaticOptions {
    /// Parses `--listen` and each `--backend URL=WEIGHT`; errors name the bad argument.
    pub fn parse(listen: &str, backends: &[String]) -> Result<StaticOptions> {
        let listen_addr = listen
            .parse::<SocketAddr>()
            .map_err(|_| Error::InvalidArgument {
                arg: format!("--listen {listen:?}"),
                reason: "expected IP:PORT, e.g. 127.0.0.1:8080".into(),
            })?;
        if backends.is_empty() {
            return Err(Error::InvalidArgument {
                arg: "--backend".into(),
                reason: "at least one --backend URL=WEIGHT is required".into(),
            });
        }
        let backends = backends
            .iter()
            .map(|b| parse_backend(b))
            .collect::<Result<Vec<_>>>()?;
        if backends.iter().all(|b| b.weight == 0.0) {
            return Err(Error::InvalidArgument {
                arg: "--backend".into(),
                reason: "all weights are 0; at least one backend must take traffic".into(),
            });
        }
        Ok(StaticOptions {
            listen: listen_addr,
            backends,
        })
    }

    /// One service with one release per backend. The backend with the smallest weight is
    /// the canary (the last one listed on a tie; none when all weights are equal).
    pub fn listener_config(&self) -> ListenerConfig {
        let total: f64 = self.backends.iter().map(|b| b.weight).sum();
        let min = self
            .backends
            .iter()
            .map(|b| b.weight)
            .fold(f64::INFINITY, f64::min);
        let all_equal = self.backends.iter().all(|b| b.weight == min);
        let canary = if all_equal {
            None
        } else {
            self.backends.iter().rposition(|b| b.weight == min)
        };
        let stable_count = self.backends.len() - usize::from(canary.is_some());
        let mut stable_seen = 0;
        let releases = self
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let is_canary = canary == Some(i);
                let name = if is_canary {
                    "canary".to_owned()
                } else {
                    stable_seen += 1;
                    if stable_count == 1 {
                        "stable".to_owned()
                    } else {
                        format!("stable-{stable_seen}")
                    }
                };
                ReleaseConfig {
                    name,
                    weight: b.weight / total * 100.0,
                    canary: is_canary,
                    instances: vec![b.addr],
                }
            })
            .collect();
        ListenerConfig {
            services: vec![ServiceConfig {
                name: STATIC_NAME.into(),
                releases,
                drain_timeout: Duration::from_secs(5),
                request_timeout: Duration::from_secs(30),
            }],
        }
    }
}

fn parse_backend(arg: &str) -> Result<StaticBackend> {
    let bad = |reason: &str| Error::InvalidArgument {
        arg: format!("--backend {arg:?}"),
        reason: reason.to_owned(),
    };
    let (url, weight) = arg
        .rsplit_once('=')
        .ok_or_else(|| bad("expected URL=WEIGHT"))?;
    let weight: f64 = weight
        .trim()
        .parse()
        .map_err(|_| bad("weight must be a number"))?;
    if !weight.is_finite() || weight < 0.0 {
        return Err(bad("weight must be a non-negative number"));
    }
    // `get`: the URL may hold any character, and a byte index into it must not panic.
    let rest = if let Some(rest) = url
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
        .and_then(|_| url.get(7..))
        .filter(|rest| !rest.is_empty())
    {
        rest
    } else if url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    {
        return Err(bad("https backends are not supported; use http://"));
    } else {
        return Err(bad("URL must start with http://"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains('/') {
        return Err(bad("URL must be http://HOST:PORT without a path"));
    }
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| {
            bad(&format!(
                "cannot resolve {authority:?} (HOST:PORT with a port): {e}"
            ))
        })?
        .next()
        .ok_or_else(|| bad(&format!("{authority:?} resolves to no address")))?;
    Ok(StaticBackend {
        url: url.to_owned(),
        addr,
        weight,
    })
}

/// Runs a static router until ctrl-c or SIGTERM, then drains it. Run it on [`runtime`],
/// which gives one worker a current-thread runtime.
pub async fn run_static(opts: StaticOptions, limits: RouterOptions) -> Result<()> {
    let router = Router::with_options(limits);
    let addr = router
        .bind(STATIC_NAME, opts.listen, opts.listener_config())
        .await?;
    tracing::info!(%addr, backends = opts.backends.len(), "static router ready");
    terminated().await;
    router.shutdown().await;
    Ok(())
}

/// A runtime for the router binary: `threads` workers, else `TOKIO_WORKER_THREADS`, else
/// one per core. With one worker it is a current-thread runtime: the proxy then pays no
/// cross-thread wake-ups, which is where a single-worker proxy spends its time.
pub fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = threads.or_else(|| {
        std::env::var("TOKIO_WORKER_THREADS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
    });
    match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
}

/// Resolves on ctrl-c or (on Unix) SIGTERM.
pub(crate) async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(listen: &str, backends: &[&str]) -> Result<StaticOptions> {
        let backends: Vec<String> = backends.iter().map(|s| s.to_string()).collect();
        StaticOptions::parse(listen, &backends)
    }

    #[test]
    fn bad_arguments_are_named_with_the_reason() {
        let cases = [
            (
                "127.0.0.1:80",
                vec!["http://x=abc"],
                r#"--backend "http://x=abc": weight must be a number"#,
            ),
            (
                "nowhere",
                vec!["http://127.0.0.1:1=1"],
                r#"--listen "nowhere": expected IP:PORT"#,
            ),
            (
                "127.0.0.1:80",
                vec!["127.0.0.1:1=1"],
                "URL must start with http://",
            ),
            (
                "127.0.0.1:80",
                vec!["https://127.0.0.1:1=1"],
                "https backends are not supported",
            ),
            (
                "127.0.0.1:80",
                vec!["http://127.0.0.1:1"],
                "expected URL=WEIGHT",
            ),
            (
                "127.0.0.1:80",
                vec!["http://127.0.0.1:1=-5"],
                "non-negative",
            ),
            (
                "127.0.0.1:80",
                vec!["http://127.0.0.1:1/app=5"],
                "without a path",
            ),
            ("127.0.0.1:80", vec!["http://127.0.0.1=5"], "cannot resolve"),
            (
                "127.0.0.1:80",
                vec!["http://127.0.0.1:1=0"],
                "all weights are 0",
            ),
            ("127.0.0.1:80", vec![], "at least one --backend"),
            // Regression: a byte index inside a multi-byte character panicked.
            (
                "127.0.0.1:80",
                vec!["abcdeféx=1"],
                "URL must start with http://",
            ),
            (
                "127.0.0.1:80",
                vec!["http:/é=1"],
                "URL must start with http://",
            ),
            (
                "127.0.0.1:80",
                vec!["httpsé://x=1"],
                "URL must start with http://",
            ),
            (
                "127.0.0.1:80",
                vec!["http://=1"],
                "URL must start with http://",
            ),
        ];
        for (listen, backends, expected) in cases {
            let error = parse(listen, &backends).unwrap_err().to_string();
            assert!(error.contains(expected), "{listen} {backends:?}: {error}");
        }
    }

    #[test]
    fn the_smaller_weight_is_the_canary() {
        let opts = parse(
            "127.0.0.1:0",
            &["http://127.0.0.1:1001=90", "http://127.0.0.1:1002/=10"],
        )
        .unwrap();
        let config = opts.listener_config();
        let releases = &config.services[0].releases;
        assert_eq!(releases[0].name, "stable");
        assert!(!releases[0].canary);
        assert_eq!(releases[1].name, "canary");
        assert!(releases[1].canary);
        assert_eq!(releases[1].instances[0].port(), 1002);

        let opts = parse(
            "127.0.0.1:0",
            &["http://127.0.0.1:1=9", "http://127.0.0.1:2=1"],
        )
        .unwrap();
        let weights: Vec<f64> = opts.listener_config().services[0]
            .releases
            .iter()
            .map(|r| r.weight)
            .collect();
        assert_eq!(weights, vec![90.0, 10.0]);
    }
}
