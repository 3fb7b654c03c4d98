//! The command line: `fairtreat [serve]` and, later, the offline tools.
//!
//! Every flag of `serve` has an environment variable (DESIGN.md, "Running
//! it"); flags win over the environment, which wins over the defaults.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

pub mod outcome;
pub mod sentiment;
pub mod simulate;

use crate::clock::SystemClock;
use crate::domain::policy::Policy;
use crate::service::{DecisionService, Models};
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisConfig, RedisStore, RedisUrl};
use crate::store::Store;

/// Default policy path, relative to the working directory.
pub const DEFAULT_POLICY: &str = "config/policy.toml";
/// Default models directory, relative to the working directory.
pub const DEFAULT_MODELS: &str = "models";

#[derive(Debug, Parser)]
#[command(
    name = "fairtreat",
    version,
    about = "Recommends how to answer each customer interaction, fairly for everyone watching."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default when no command is given).
    Serve(ServeArgs),
    /// Run the customer-and-observer simulator: compare policies, write logs.
    Simulate(simulate::SimulateArgs),
    /// Train a model and write its artefact and card to the models directory.
    Train {
        #[command(subcommand)]
        what: TrainWhat,
    },
    /// Evaluate a trained model on its held-out test rows.
    Evaluate {
        #[command(subcommand)]
        what: EvaluateWhat,
    },
}

/// What `fairtreat train` trains.
#[derive(Debug, Subcommand)]
pub enum TrainWhat {
    /// The text sentiment model, on the VADER ground truth.
    Sentiment(sentiment::TrainArgs),
    /// The outcome model P(good | context, action), on simulated or given logs.
    Outcome(outcome::TrainArgs),
}

/// What `fairtreat evaluate` evaluates.
#[derive(Debug, Subcommand)]
pub enum EvaluateWhat {
    /// A trained text sentiment model, side by side with VADER.
    Sentiment(sentiment::EvaluateArgs),
    /// A trained outcome model on held-out simulated logs, with the greedy
    /// policy check against the simulator's truth.
    Outcome(outcome::EvaluateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FAIRTREAT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Policy file (TOML). Default: config/policy.toml, or the copy compiled
    /// into the binary when that file does not exist.
    #[arg(long, env = "FAIRTREAT_POLICY")]
    pub policy: Option<PathBuf>,
    /// Models directory. Default: ./models, or the models compiled into the
    /// binary when that directory does not exist.
    #[arg(long, env = "FAIRTREAT_MODELS")]
    pub models: Option<PathBuf>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "FAIRTREAT_WORKERS")]
    pub workers: Option<usize>,
    /// Redis URL; switches the store to Redis: `redis://[user:password@]host:port`,
    /// or `redis+cluster://host:port[,host:port…]` (or several comma-separated
    /// URLs) for a Redis Cluster. Never logged.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<RedisUrl>,
    /// First part of every Redis key (an ACL can then be limited to `~<prefix>:*`).
    #[arg(long, env = "FAIRTREAT_REDIS_PREFIX", default_value = "ft")]
    pub redis_prefix: String,
    /// Customer shards (Redis hash tags). Fixed for the life of the data.
    #[arg(long, env = "FAIRTREAT_REDIS_SHARDS", default_value_t = 16)]
    pub redis_shards: u16,
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            bind: std::env::var("FAIRTREAT_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into()),
            policy: std::env::var_os("FAIRTREAT_POLICY").map(PathBuf::from),
            models: std::env::var_os("FAIRTREAT_MODELS").map(PathBuf::from),
            workers: std::env::var("FAIRTREAT_WORKERS")
                .ok()
                .and_then(|w| w.parse().ok()),
            redis_url: std::env::var("REDIS_URL").ok().map(RedisUrl::new),
            redis_prefix: std::env::var("FAIRTREAT_REDIS_PREFIX").unwrap_or_else(|_| "ft".into()),
            redis_shards: std::env::var("FAIRTREAT_REDIS_SHARDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(16),
        }
    }
}

/// Loads the policy: an explicit path must exist; the default path falls
/// back to the compiled-in copy.
pub fn load_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    let (path, explicit) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_POLICY), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!("no {DEFAULT_POLICY} here; using the bundled policy");
            Ok(Policy::bundled())
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot read policy {}: {e}",
            path.display()
        )),
    }
}

/// Loads the models: an explicit directory must exist; the default one falls
/// back to the compiled-in models.
pub fn load_models(dir: Option<&Path>) -> anyhow::Result<Models> {
    match dir {
        Some(d) => Ok(crate::model::load(d)?),
        None if Path::new(DEFAULT_MODELS).join("active.toml").exists() => {
            Ok(crate::model::load(Path::new(DEFAULT_MODELS))?)
        }
        None => {
            tracing::info!("no {DEFAULT_MODELS}/active.toml here; using the bundled models");
            Ok(Models::bundled())
        }
    }
}

/// `fairtreat serve`.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let policy = load_policy(args.policy.as_deref())?;
    let models = load_models(args.models.as_deref())?;
    let store: Arc<dyn Store> = match &args.redis_url {
        Some(url) => {
            let mut cfg = RedisConfig::new(url.clone());
            cfg.prefix = args.redis_prefix.clone();
            cfg.shards = args.redis_shards;
            // Lazy: no connection yet, so a replica starts even while Redis is down.
            Arc::new(RedisStore::connect(cfg)?)
        }
        None => Arc::new(MemoryStore::new()),
    };
    let shared = args.redis_url.is_some();
    let service = DecisionService::new(policy, models, store.clone(), Arc::new(SystemClock));
    // The models API lists and activates from the directory the models came from.
    let service = match &args.models {
        Some(d) => service.with_models_dir(d),
        None if Path::new(DEFAULT_MODELS).join("active.toml").exists() => {
            service.with_models_dir(DEFAULT_MODELS)
        }
        None => service,
    };
    let service = Arc::new(service);
    let seeded = match service.sync_policy().await {
        Ok(()) => true,
        Err(e) if shared => {
            tracing::warn!(error = %e, "the shared store is unavailable at start: decisions fail closed (no perks) until it answers");
            false
        }
        Err(e) => return Err(e.into()),
    };
    if shared {
        tokio::spawn(crate::service::follow_shared_policy(
            service.clone(),
            seeded,
            std::time::Duration::from_secs(1),
        ));
    }
    let admin = crate::http::auth::AdminKeys::from_env()?;
    if admin.is_empty() {
        tracing::warn!(
            "no FAIRTREAT_ADMIN_KEY configured: admin calls (policy and model changes) are refused"
        );
    }
    let (server, addr) = crate::http::start_with(service.clone(), admin, &args.bind, args.workers)?;
    tracing::info!(
        %addr,
        store = store.kind(),
        policy_version = service.policy().version,
        model_version = %service.models().version(),
        "fairtreat listening"
    );
    server.await?;
    Ok(())
}

/// Entry point of the binary.
pub async fn run() -> ExitCode {
    crate::telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(ServeArgs::default()).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Simulate(args)) => simulate::run(args).await,
        Some(Command::Train {
            what: TrainWhat::Sentiment(args),
        }) => sentiment::train(args),
        Some(Command::Evaluate {
            what: EvaluateWhat::Sentiment(args),
        }) => sentiment::evaluate(args),
        Some(Command::Train {
            what: TrainWhat::Outcome(args),
        }) => outcome::train(args).await,
        Some(Command::Evaluate {
            what: EvaluateWhat::Outcome(args),
        }) => outcome::evaluate(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("fairtreat: {e:#}");
            ExitCode::FAILURE
        }
    }
}
