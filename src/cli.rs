//! The `reel` command line.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::auth::Keys;
use crate::config::{Config, HumanDuration, Settings};
use crate::domain::{Role, Timestamp, UserId};
use crate::recorders::Recorders;
use crate::secret::redact_url;
use crate::server::Server;
use crate::store::{DeliveryState, Store};

/// reel: a self-hosted recording service for real-time calls and broadcasts.
#[derive(Debug, Parser)]
#[command(name = "reel", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (API, recorders, uploads, webhooks).
    ///
    /// Settings come from flags, then REEL_* environment variables, then the --config TOML file,
    /// then the embedded defaults (SQLite and recordings under ./data, API on 127.0.0.1:3000).
    /// Logs go to stderr, filtered by REEL_LOG (default info; e.g. reel=debug).
    Serve(ConfigArgs),
    /// Print a signed user token (for tests, demos and the join page).
    Token(TokenArgs),
    /// Inspect and retry webhook deliveries.
    Webhooks {
        /// What to do.
        #[command(subcommand)]
        command: WebhooksCommand,
    },
}

/// Where the configuration comes from.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// A TOML file with any of the settings below (keys are the setting names with underscores).
    #[arg(long, env = "REEL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub settings: Settings,
}

impl ConfigArgs {
    /// The resolved configuration.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(p) => Settings::from_file(p)?,
            None => Settings::default(),
        };
        Ok(Config::resolve(file.overlay(self.settings))?)
    }
}

/// `reel token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user the token acts as.
    #[arg(long)]
    pub user: String,
    /// A role for the token, overriding the user's stored role (e.g. admin).
    #[arg(long)]
    pub role: Option<String>,
    /// Lifetime, e.g. 1h or 7d; without it the token does not expire.
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<HumanDuration>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArgs,
}

/// `reel webhooks ...`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List deliveries that failed: still retrying, or given up after the retry period.
    Failed {
        /// At most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        #[allow(missing_docs)]
        config: ConfigArgs,
    },
    /// Queue given-up deliveries again (a running server sends them within 5 s).
    Retry {
        /// The delivery to retry.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Retry every given-up delivery.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        #[allow(missing_docs)]
        config: ConfigArgs,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args.resolve()?).await,
        Command::Token(args) => token(args).await,
        Command::Webhooks { command } => webhooks(command).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init(config.log_format);
    // Listen for signals before serving, so that one sent as soon as reel says it serves
    // stops it gracefully.
    let signal = shutdown_signal()?;
    let server = Server::start(config, Recorders::default())
        .await
        .context("reel could not start")?;
    server.run_until(signal).await;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url.expose();
    Store::open(url)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(url)))
}

async fn token(args: TokenArgs) -> anyhow::Result<()> {
    let user = UserId::parse(args.user)?;
    let role = args.role.map(Role::parse).transpose()?;
    let config = args.config.resolve()?;
    let keys = match &config.credentials {
        Some(c) => Keys::new(c.api_key.clone(), c.api_secret.expose()),
        None => match open_store(&config).await?.credentials().await? {
            Some((k, s)) => Keys::new(k, s),
            None => bail!(
                "this installation has no API credentials yet: start `reel serve` once, \
                 or set REEL_API_KEY and REEL_API_SECRET"
            ),
        },
    };
    println!(
        "{}",
        keys.user_token(&user, role.as_ref(), args.ttl.map(|d| d.0))
    );
    Ok(())
}

async fn webhooks(command: WebhooksCommand) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Failed { limit, config } => {
            let store = open_store(&config.resolve()?).await?;
            let failed = store.failed_deliveries(limit).await?;
            if failed.is_empty() {
                println!("no failed webhook deliveries");
            }
            for d in failed {
                let state = if d.state == DeliveryState::Dead {
                    "given up"
                } else {
                    "retrying"
                };
                println!(
                    "{id}\t{state}\t{event}\t{cid}\t{endpoint}\tattempts={attempts}\tqueued={queued}\t{error}",
                    id = d.id,
                    event = d.event_type,
                    cid = d.ordering_key,
                    endpoint = d.endpoint,
                    attempts = d.attempts,
                    queued = d.created_at.to_rfc3339(),
                    error = d.last_error.unwrap_or_default(),
                );
            }
        }
        WebhooksCommand::Retry { id, all: _, config } => {
            let store = open_store(&config.resolve()?).await?;
            let n = store.requeue_dead(id, Timestamp::now()).await?;
            println!("queued {n} delivery(ies) again");
        }
    }
    Ok(())
}
