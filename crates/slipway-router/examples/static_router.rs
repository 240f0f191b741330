//! `static_router --listen ADDR --backend URL=WEIGHT …`: the static router, for benches
//! until the `slipway router` subcommand exists. Honours `TOKIO_WORKER_THREADS`.

use std::process::ExitCode;

use slipway_router::{StaticOptions, run_static, runtime};

fn main() -> ExitCode {
    let mut listen = None;
    let mut backends = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => listen = Some(value),
            ("--backend", Some(value)) => backends.push(value),
            _ => {
                eprintln!("usage: static_router --listen ADDR --backend URL=WEIGHT ...");
                return ExitCode::from(2);
            }
        }
    }
    let opts = match StaticOptions::parse(listen.as_deref().unwrap_or(""), &backends) {
        Ok(opts) => opts,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime(None)
        .map_err(slipway_router::Error::from)
        .and_then(|rt| rt.block_on(run_static(opts)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
