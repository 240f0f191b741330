//! The command line as clap sees it: low-level arguments only. Checks that need more than
//! one argument or a file (token lookup, router backends) happen after parsing.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Default address of the control plane's API.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7700";

#[derive(Debug, Parser)]
#[command(
    name = "slipway",
    version,
    about = "Self-hosted continuous delivery: move immutable releases through environments \
             behind gates, roll them out safely, roll them back on their own.",
    after_help = "Exit codes: 0 success, 1 the operation failed, 2 bad usage or bad input, \
                  3 cannot reach the server."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// URL of the slipway server's API.
    #[arg(long, global = true, env = "SLIPWAY_SERVER", default_value = DEFAULT_SERVER, value_name = "URL")]
    pub server: String,
    /// API token (see --help for where it is looked up otherwise).
    ///
    /// Without it (and without SLIPWAY_TOKEN), the admin token of the server configured by
    /// ./slipway.yaml is used if that file and `<data_dir>/admin.token` exist: handy for
    /// the quick start on the server's own machine. For `router --control`: the token its
    /// control API requires (else SLIPWAY_ROUTER_TOKEN).
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane: API, engine and, by default, the routers.
    Server {
        #[arg(long, short, default_value = "slipway.yaml", value_name = "FILE")]
        config: PathBuf,
    },
    /// Run a router: a static one with fixed backends, or one driven by a control API.
    Router(RouterArgs),
    /// Zero-setup story: a server with two environments, four releases, approvals, a
    /// failed health check, a manual rollback and a faulty canary rolled back by its
    /// analysis, printed as a timeline; then, when a Docker daemon answers, a docker app
    /// through staging into production and a removed container replaced.
    Demo {
        /// Keep the demo's temporary directory (config, database, logs) and print its path.
        #[arg(long)]
        keep: bool,
    },
    /// Check a config file without starting anything.
    Validate {
        #[arg(long, short, default_value = "slipway.yaml", value_name = "FILE")]
        config: PathBuf,
    },
    #[command(flatten)]
    Client(ClientCommand),
}

/// The commands that talk to a server's API.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a deployment of a release to an environment.
    Deploy(DeployArgs),
    /// Approve a waiting deployment.
    Approve(DecideArgs),
    /// Reject a waiting deployment: it ends `rejected`.
    Reject(DecideArgs),
    /// Continue a canary paused with `pause: manual`.
    Promote {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Withdraw a deployment that has not started yet.
    Cancel {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Redeploy the previous (or named) successful release of an app in an environment.
    Rollback(RollbackArgs),
    /// What runs where: release, since when, traffic split, what is in progress or waiting.
    Status {
        /// Only this app.
        app: Option<String>,
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Past deployments of an app in an environment, newest first.
    History {
        app: String,
        #[arg(long)]
        env: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// A deployment's events and log.
    Logs {
        #[arg(value_name = "ID")]
        id: i64,
        /// Keep printing new lines until the deployment ends or waits.
        #[arg(long, short)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove the instances (containers) labelled for this server that no deployment
    /// owns; `--dry-run` only lists them. Removing needs the admin role.
    Gc {
        /// List what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Feature flags: list, set, roll out, kill.
    Flags {
        #[command(subcommand)]
        command: crate::commands::flags::FlagsCommand,
    },
    /// Delivery metrics.
    Metrics {
        #[command(subcommand)]
        command: crate::commands::metrics::MetricsCommand,
    },
    /// Webhook notifications: every delivery attempt and how it ended.
    Notifications {
        #[command(subcommand)]
        command: crate::commands::notifications::NotificationsCommand,
    },
    /// Start a run of a pipeline by hand (`on.dispatch`).
    Run(crate::commands::pipelines::RunArgs),
    /// Runs of pipelines, newest first; `runs show|logs|cancel ID` for one.
    Runs(crate::commands::pipelines::RunsArgs),
    /// Tell the server a branch moved (from a git `post-receive` hook): each pipeline
    /// watching it starts a run.
    Trigger(crate::commands::pipelines::TriggerArgs),
    /// Manage API users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Args)]
pub struct RouterArgs {
    /// Static router: the public address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        required_unless_present = "control",
        conflicts_with = "control"
    )]
    pub listen: Option<String>,
    /// Static router: a backend and its share of traffic in percent, e.g.
    /// `http://127.0.0.1:9001=90`. Repeat for each backend; the smaller weight is the canary.
    #[arg(long = "backend", value_name = "URL=WEIGHT", requires = "listen")]
    pub backends: Vec<String>,
    /// Standalone router driven by the server over a control API on this address
    /// (its token: --token, else SLIPWAY_ROUTER_TOKEN).
    #[arg(long, value_name = "ADDR")]
    pub control: Option<String>,
    /// Worker threads (default: TOKIO_WORKER_THREADS, else one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Largest request head in bytes; a larger one gets 431. It also bounds what each
    /// client connection buffers.
    #[arg(long, value_name = "BYTES", default_value_t = 32 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=1 << 20))]
    pub max_header_bytes: u32,
    /// Client connections each listener holds at once; more are closed as they arrive.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Time a client has to send a whole request head, or between two reads of its
    /// body, e.g. 15s.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub header_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    pub app: String,
    #[arg(long)]
    pub version: String,
    #[arg(long)]
    pub env: String,
    /// Branch or tag the release was built from.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Commit time, RFC 3339 (for lead-time metrics).
    #[arg(long, value_name = "RFC3339")]
    pub committed_at: Option<String>,
    /// Deploy outside the deployment windows (admin only); needs --reason.
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why the deployment is forced; recorded with it.
    #[arg(long, requires = "force", value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Follow the deployment live until it ends, or until it waits for a person.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: keep following through a wait timer or a deployment window.
    #[arg(long, requires = "wait")]
    pub follow_waits: bool,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    #[arg(value_name = "ID")]
    pub id: i64,
    #[arg(long)]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub app: String,
    #[arg(long)]
    pub env: String,
    /// The release to restore (default: the previous successful one).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Roll back past a migration marked `reversible: false`, without its `down`
    /// (admin only); needs --reason.
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why the rollback is forced; recorded with it.
    #[arg(long, requires = "force", value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (or a new token for a user named in the config); prints the token
    /// alone on standard output.
    Add {
        name: String,
        /// viewer | deployer | approver | admin
        #[arg(long, value_parser = ["viewer", "deployer", "approver", "admin"])]
        role: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn router_needs_listen_or_control_but_not_both() {
        assert!(Cli::try_parse_from(["slipway", "router"]).is_err());
        assert!(
            Cli::try_parse_from(["slipway", "router", "--listen", "a", "--control", "b"]).is_err()
        );
        assert!(Cli::try_parse_from(["slipway", "router", "--control", "127.0.0.1:1"]).is_ok());
    }

    #[test]
    fn force_needs_a_reason() {
        let base = [
            "slipway",
            "deploy",
            "web",
            "--version",
            "v1",
            "--env",
            "prod",
        ];
        assert!(Cli::try_parse_from(base.iter().chain(&["--force"])).is_err());
        assert!(Cli::try_parse_from(base.iter().chain(&["--force", "--reason", "fire"])).is_ok());
        let rollback = ["slipway", "rollback", "web", "--env", "prod"];
        assert!(Cli::try_parse_from(rollback.iter().chain(&["--force"])).is_err());
        assert!(Cli::try_parse_from(rollback.iter().chain(&["--reason", "x"])).is_err());
        assert!(
            Cli::try_parse_from(rollback.iter().chain(&["--force", "--reason", "schema"])).is_ok()
        );
    }
}
