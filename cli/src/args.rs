//! The command line: global client options and one subcommand per verb.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Sluice: self-service data provisioning from event streams.
///
/// Describe the data you need (sources, joins, filter, shape, target); Sluice provisions the
/// Kafka topics, stream job and target store, backfills it and keeps it live.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How the client verbs reach the API.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Base URL of the Sluice API.
    #[arg(
        long,
        global = true,
        env = "SLUICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Bearer token for the API.
    #[arg(long, global = true, env = "SLUICE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Output format of the read verbs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// The documents as YAML.
    Yaml,
    /// The documents as JSON.
    Json,
}

/// A product or other object addressed as `NAME` (with `--team`) or `TEAM/NAME`.
#[derive(Debug, Args)]
pub struct ProductRef {
    /// The product: `NAME` or `TEAM/NAME`.
    pub name: String,
    /// The owning team (default: the caller's team).
    #[arg(long)]
    pub team: Option<String>,
}

/// Options of `sluice serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A YAML configuration file (same settings as the SLUICE_* variables, in camelCase).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address; overrides SLUICE_LISTEN.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Also run the Kubernetes front door: custom resources sync into Sluice, worker
    /// Deployments run the jobs (same as SLUICE_KUBERNETES=true).
    #[arg(long)]
    pub kubernetes: bool,
}

/// Options of `sluice worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// A YAML configuration file (same settings as the SLUICE_* variables, in camelCase).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run only this product's jobs (`TEAM/NAME`), as the worker Deployment of one product
    /// does in Kubernetes mode.
    #[arg(long, value_name = "TEAM/NAME")]
    pub product: Option<String>,
    /// Serve `/healthz` on this address (for the probes of a worker Deployment).
    #[arg(long, value_name = "ADDR")]
    pub health_listen: Option<SocketAddr>,
}

/// Options of `sluice demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many orders to place (each is several events: PLACED, PAID, SHIPPED or CANCELLED).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub orders: u64,
    /// How many customers to create.
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    pub customers: u64,
    /// Share of paid orders that get a payment event (0 to 1).
    #[arg(long, default_value_t = 0.8, value_name = "RATIO")]
    pub payments_ratio: f64,
    /// Spread the orders' event times over this many days back from now.
    #[arg(long, default_value_t = 90, value_name = "DAYS")]
    pub days: u32,
    /// Kafka bootstrap servers.
    #[arg(long, env = "SLUICE_KAFKA_BOOTSTRAP", value_name = "HOST:PORT")]
    pub bootstrap: Option<String>,
    /// Seed of the generator: the same seed gives the same records (event times are
    /// relative to now).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Prefix for the topic and dataset names (e.g. `demo1.` gives `demo1.shop.orders`).
    #[arg(long, default_value = "", value_name = "PREFIX")]
    pub topic_prefix: String,
    /// Only produce the data; do not register the datasets through the API.
    #[arg(long)]
    pub no_register: bool,
}

/// The verbs of `sluice`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, controller, stream jobs and console in one process.
    Serve(ServeArgs),
    /// Run stream jobs only; scale out by running more workers.
    Worker(WorkerArgs),
    /// Create or update resources from YAML/JSON files or a directory.
    Apply {
        /// A file or directory of specs (multi-document YAML allowed); `-` for stdin.
        #[arg(
            short = 'f',
            long = "filename",
            value_name = "FILE|DIR",
            required = true
        )]
        files: Vec<PathBuf>,
        /// Wait until every applied product is Live (or fails).
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits, in seconds.
        #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Show what applying a spec would do, without storing anything.
    Plan {
        /// A file or directory of specs.
        #[arg(
            short = 'f',
            long = "filename",
            value_name = "FILE|DIR",
            required = true
        )]
        files: Vec<PathBuf>,
    },
    /// List resources of a kind, or show one.
    Get {
        /// dataset, targetcluster or product.
        kind: String,
        /// The resource name.
        name: Option<String>,
        /// The owning team, for products.
        #[arg(long)]
        team: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Show a resource in detail, with status, conditions and recent events.
    Describe {
        /// dataset, targetcluster or product.
        kind: String,
        /// The resource name.
        name: String,
        /// The owning team, for products.
        #[arg(long)]
        team: Option<String>,
    },
    /// Approve a pending product.
    Approve {
        #[command(flatten)]
        product: ProductRef,
        /// Why it is approved.
        #[arg(long, short = 'm')]
        comment: Option<String>,
    },
    /// Reject a pending product.
    Reject {
        #[command(flatten)]
        product: ProductRef,
        /// Why it is rejected.
        #[arg(long, short = 'm', required = true)]
        comment: String,
    },
    /// Delete a resource (a product's target per its deletionPolicy).
    Delete {
        /// dataset, targetcluster or product.
        kind: String,
        /// The resource name.
        name: String,
        /// The owning team, for products.
        #[arg(long)]
        team: Option<String>,
    },
    /// Compare a product's target with what its sources say it must hold.
    Verify {
        #[command(flatten)]
        product: ProductRef,
    },
    /// Query, export or verify the audit log.
    Audit {
        #[command(subcommand)]
        action: Option<AuditCommand>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Produce the retail example's data (customers, orders, payments) into Kafka and
    /// register its datasets.
    Demo(DemoArgs),
    /// Print the Kubernetes CustomResourceDefinitions, or write one file per kind.
    Crd {
        /// Write `<plural>.sluice.dev.yaml` files into this directory instead of printing.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `sluice audit` actions.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Re-walk the hash chain and report the first broken link (exit 1 if broken).
    Verify,
    /// List entries, oldest first.
    List(AuditFilter),
    /// Print entries as JSON lines.
    Export(AuditFilter),
}

/// Filters of `sluice audit list|export`.
#[derive(Debug, Args)]
pub struct AuditFilter {
    /// Object kind, e.g. DataProduct.
    #[arg(long)]
    pub kind: Option<String>,
    /// Object team.
    #[arg(long)]
    pub team: Option<String>,
    /// Object name.
    #[arg(long)]
    pub name: Option<String>,
    /// Actor as recorded.
    #[arg(long)]
    pub actor: Option<String>,
    /// From this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
}

/// `sluice token` actions.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token (shown once).
    Create {
        /// A unique name for the token (default: ROLE-TEAM).
        #[arg(long)]
        name: Option<String>,
        /// Seconds until it expires (default: never).
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<u64>,
        /// The team the token acts for.
        #[arg(long)]
        team: String,
        /// viewer, requester, owner, approver, admin or auditor.
        #[arg(long)]
        role: String,
        /// `json` prints `{"token": …}`.
        #[arg(short = 'o', long, value_enum)]
        output: Option<OutputFormat>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// The token's id or name.
        id: String,
    },
}

impl Command {
    /// The verb as typed, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Serve(_) => "serve",
            Command::Worker(_) => "worker",
            Command::Apply { .. } => "apply",
            Command::Plan { .. } => "plan",
            Command::Get { .. } => "get",
            Command::Describe { .. } => "describe",
            Command::Approve { .. } => "approve",
            Command::Reject { .. } => "reject",
            Command::Delete { .. } => "delete",
            Command::Verify { .. } => "verify",
            Command::Audit { .. } => "audit",
            Command::Token { .. } => "token",
            Command::Demo(_) => "demo",
            Command::Crd { .. } => "crd",
            Command::Completion { .. } => "completion",
        }
    }
}
