//! The command line: `fairtreat [serve]` and, later, the offline tools.
//!
//! Every flag of `serve` has an environment variable (DESIGN.md, "Running
//! it"); flags win over the environment, which wins over the defaults.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

pub mod evaluate_policy;
pub mod export;
pub mod outcome;
pub mod sentiment;
pub mod simulate;

use crate::clock::SystemClock;
use crate::domain::policy::Policy;
use crate::service::{DecisionService, Models, DEFAULT_STORE_DEADLINE_MS};
use crate::store::journal::{FsyncPolicy, JournalConfig, DEFAULT_RETENTION_DAYS};
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisConfig, RedisStore, RedisUrl};
use crate::store::Store;

/// Default policy path, relative to the working directory.
pub const DEFAULT_POLICY: &str = "config/policy.toml";
/// Default models directory, relative to the working directory.
pub const DEFAULT_MODELS: &str = "models";
/// Default data directory of the embedded store (its journal), relative to
/// the working directory; created on demand.
pub const DEFAULT_DATA_DIR: &str = "var";

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
    /// Write the decision log joined with feedback, as JSONL or CSV.
    Export(export::ExportArgs),
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
    /// A candidate policy (policy document and models), off-policy from
    /// logged decisions: IPS, SNIPS, DM, DR and SNDR with bootstrap intervals,
    /// next to the logging policy's observed value, and the candidate's parity.
    Policy(evaluate_policy::EvaluatePolicyArgs),
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
    /// A model folder (in the models directory) to attach as shadow: it
    /// scores every interaction beside the active models and its choices are
    /// logged, never served. Detach or change it over `/v1/models`.
    #[arg(long, env = "FAIRTREAT_SHADOW_MODEL")]
    pub shadow_model: Option<String>,
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
    /// Data directory of the embedded store: its decision and feedback
    /// journal, replayed at start (created on demand; unused with Redis).
    #[arg(long, env = "FAIRTREAT_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Keep the embedded store in memory only: nothing survives a restart.
    #[arg(long, env = "FAIRTREAT_NO_JOURNAL", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_journal: bool,
    /// When journal lines reach the disk: `always` (every line), `interval`
    /// (at most once per second), `never` (left to the OS).
    #[arg(long, env = "FAIRTREAT_FSYNC", default_value = "interval")]
    pub fsync: FsyncPolicy,
    /// Days of journal segments kept.
    #[arg(long, env = "FAIRTREAT_JOURNAL_RETENTION_DAYS", default_value_t = DEFAULT_RETENTION_DAYS)]
    pub journal_retention_days: u32,
    /// Longest a decision waits on the store before it fails closed (a
    /// perk-free answer, `degraded: true`), in milliseconds, 10 to 10,000.
    /// Raise it when Redis is far away: a decision needs one round trip to
    /// it (a grant on a Cluster three) plus a few milliseconds.
    #[arg(long, env = "FAIRTREAT_STORE_DEADLINE_MS", default_value_t = DEFAULT_STORE_DEADLINE_MS,
          value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub store_deadline_ms: u64,
    /// Shed decisions while a worker is this many milliseconds behind: they
    /// are answered `503 overloaded` with `Retry-After: 1` at once, before
    /// anything is decided (0: never shed).
    #[arg(long, env = "FAIRTREAT_SHED_AFTER_MS",
          default_value_t = crate::http::overload::DEFAULT_SHED_AFTER_MS,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub shed_after_ms: u64,
    /// Failed admin authentications (a missing or wrong key) a client
    /// address (an IPv6 /64) may make within the window before its admin
    /// calls are refused `429 too_many_auth_failures` until the window ends,
    /// counted once for all the replicas on one Redis (0: no limit).
    #[arg(long, env = "FAIRTREAT_AUTH_FAILURE_LIMIT",
          default_value_t = crate::http::throttle::DEFAULT_LIMIT,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub auth_failure_limit: u32,
    /// The window of `--auth-failure-limit`, in seconds from an address's
    /// first failure, 1 to 86,400.
    #[arg(long, env = "FAIRTREAT_AUTH_FAILURE_WINDOW_SECS",
          default_value_t = crate::http::throttle::DEFAULT_WINDOW_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auth_failure_window_secs: u64,
}

impl ServeArgs {
    /// `fairtreat` without a subcommand serves: the flags' environment
    /// variables and defaults, read and checked by clap exactly as for
    /// `fairtreat serve` (a bad value is refused, not silently replaced).
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(Parser)]
        struct Bare {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Bare::try_parse_from(["fairtreat"]).map(|b| b.serve)
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
    let deadline = std::time::Duration::from_millis(args.store_deadline_ms);
    let store: Arc<dyn Store> = match &args.redis_url {
        Some(url) => {
            let mut cfg = RedisConfig::new(url.clone()).with_deadline(deadline);
            cfg.prefix = args.redis_prefix.clone();
            cfg.shards = args.redis_shards;
            // Lazy: no connection yet, so a replica starts even while Redis is down.
            Arc::new(RedisStore::connect(cfg)?)
        }
        None if args.no_journal => Arc::new(MemoryStore::new()),
        None => {
            let cfg = JournalConfig {
                dir: args.data_dir.clone(),
                fsync: args.fsync,
                retention_days: args.journal_retention_days,
            };
            Arc::new(MemoryStore::open(&cfg, time::OffsetDateTime::now_utc())?)
        }
    };
    let shared = args.redis_url.is_some();
    let service = DecisionService::new(policy, models, store.clone(), Arc::new(SystemClock))
        .with_store_deadline(deadline);
    // The models API lists and activates from the directory the models came from.
    let service = match &args.models {
        Some(d) => service.with_models_dir(d),
        None if Path::new(DEFAULT_MODELS).join("active.toml").exists() => {
            service.with_models_dir(DEFAULT_MODELS)
        }
        None => service,
    };
    if let Some(version) = &args.shadow_model {
        let dir = service.models_dir().ok_or_else(|| {
            anyhow::anyhow!(
                "--shadow-model {version}: there is no models directory to load it from"
            )
        })?;
        let shadow =
            crate::model::shadow::load(&dir, version, &service.models(), service.clock().now())
                .map_err(|e| anyhow::anyhow!("--shadow-model {version}: {e}"))?;
        tracing::info!(%version, model_version = %shadow.model_version(), "shadow model attached");
        service.attach_shadow(shadow);
    }
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
    let opts = crate::http::ServerOptions {
        workers: args.workers,
        shed_after: (args.shed_after_ms > 0)
            .then(|| std::time::Duration::from_millis(args.shed_after_ms)),
        auth_failures: (args.auth_failure_limit > 0).then(|| {
            (
                args.auth_failure_limit,
                std::time::Duration::from_secs(args.auth_failure_window_secs),
            )
        }),
    };
    let (server, addr) = crate::http::start_with(service.clone(), admin, &args.bind, opts)?;
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
        None => match ServeArgs::from_env() {
            Ok(args) => serve(args).await,
            Err(e) => e.exit(),
        },
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Simulate(args)) => simulate::run(args).await,
        Some(Command::Export(args)) => export::run(args).await,
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
        Some(Command::Evaluate {
            what: EvaluateWhat::Policy(args),
        }) => evaluate_policy::run(args).await,
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
