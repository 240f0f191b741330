//! Commands that run or check something on this machine: validate, server, router.

use std::net::SocketAddr;
use std::path::Path;

use crate::cli::RouterArgs;
use crate::error::{Error, Result};

pub fn validate(config: &Path) -> Result<u8> {
    let cfg = slipway_config::load(config)?;
    // What the file asks of this machine: free ports, a usable data_dir.
    slipway_server::preflight(&cfg, &config.display().to_string())?;
    outln!(
        "ok: {} is valid ({} apps, {} environments)",
        config.display(),
        cfg.apps.len(),
        cfg.environments.len()
    );
    Ok(0)
}

pub async fn server(config: &Path) -> Result<u8> {
    init_logging();
    // A bad file, a port in use or a data_dir that is a file: bad input (exit 2), with
    // the full report, before anything starts.
    slipway_server::run(config).await?;
    Ok(0)
}

/// Which router the arguments ask for, checked before the runtime starts.
pub struct Router {
    mode: Mode,
    limits: slipway_router::RouterOptions,
}

enum Mode {
    Static(slipway_router::StaticOptions),
    Control { addr: SocketAddr, token: String },
}

impl Router {
    /// `token` is the global `--token` only when it was typed for this command: the API
    /// token from SLIPWAY_TOKEN is not the router's.
    pub fn from_args(args: &RouterArgs, typed_token: Option<String>) -> Result<Router> {
        let limits = slipway_router::RouterOptions {
            max_header_bytes: args.max_header_bytes as usize,
            max_connections: args.max_connections as usize,
            header_read_timeout: args.header_timeout,
            ..slipway_router::RouterOptions::default()
        };
        if args.header_timeout.is_zero() {
            return Err(Error::Usage("--header-timeout must be positive".into()));
        }
        let mode = Self::mode(args, typed_token)?;
        Ok(Router { mode, limits })
    }

    fn mode(args: &RouterArgs, typed_token: Option<String>) -> Result<Mode> {
        if let Some(control) = &args.control {
            let addr = control.parse().map_err(|e| {
                Error::Usage(format!(
                    "--control {control:?} is not an address like 127.0.0.1:7701: {e}"
                ))
            })?;
            let token = typed_token
                .or_else(|| std::env::var("SLIPWAY_ROUTER_TOKEN").ok())
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Error::Usage(
                        "a control router needs a token: --token T or SLIPWAY_ROUTER_TOKEN".into(),
                    )
                })?;
            return Ok(Mode::Control { addr, token });
        }
        let listen = args.listen.as_deref().unwrap_or_default();
        if args.backends.is_empty() {
            return Err(Error::Usage(
                "a static router needs at least one --backend URL=WEIGHT".into(),
            ));
        }
        let opts = slipway_router::StaticOptions::parse(listen, &args.backends)
            .map_err(|e| Error::Usage(e.to_string()))?;
        Ok(Mode::Static(opts))
    }

    pub async fn run(self) -> Result<u8> {
        init_logging();
        match self.mode {
            Mode::Static(opts) => slipway_router::run_static(opts, self.limits).await?,
            Mode::Control { addr, token } => {
                slipway_router::run_control(addr, token, self.limits).await?
            }
        }
        Ok(0)
    }
}

/// Server and router log to stderr; `RUST_LOG` overrides the default `info`. Colours
/// only on a terminal, so a log file stays plain text.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
