//! `slipway`: the command line. Parses arguments, picks the runtime, runs one command and
//! turns its outcome into an exit code (0 success, 1 failed, 2 bad input, 3 unreachable).
#![forbid(unsafe_code)]

#[macro_use]
mod output;
mod cli;
mod client;
mod commands;
mod demo;
mod error;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};
use crate::commands::local;
use crate::error::{Error, Result};

fn main() -> ExitCode {
    // clap exits with 2 on a usage error and 0 for --help/--version.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(cli, &matches) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            errln!("{}", e.report());
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli, matches: &ArgMatches) -> Result<u8> {
    match cli.command {
        Command::Validate { config } => local::validate(&config),
        Command::Server { config } => multi_thread(None)?.block_on(local::server(&config)),
        Command::Router(args) => {
            let typed_token = matches
                .subcommand_matches("router")
                .filter(|m| m.value_source("token") == Some(ValueSource::CommandLine))
                .and_then(|_| cli.global.token.clone());
            let router = local::Router::from_args(&args, typed_token)?;
            // One worker means a current-thread runtime: no cross-thread wake-ups.
            slipway_router::runtime(args.threads.map(usize::from))
                .map_err(Error::io("cannot start the async runtime"))?
                .block_on(router.run())
        }
        Command::Demo { keep } => multi_thread(None)?.block_on(demo::run(keep)),
        Command::Client(command) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("cannot start the async runtime"))?
            .block_on(commands::run_client(&cli.global, command)),
    }
}

/// Without `threads`, tokio takes TOKIO_WORKER_THREADS, else one worker per core.
fn multi_thread(threads: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = threads {
        builder.worker_threads(n);
    }
    builder
        .build()
        .map_err(Error::io("cannot start the async runtime"))
}
