//! The command line: `fairtreat [serve]` and, later, the offline tools.
//!
//! Every flag of `serve` has an environment variable (DESIGN.md, "Running
//! it"); flags win over the environment, which wins over the defaults.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::clock::SystemClock;
use crate::domain::policy::Policy;
use crate::service::{DecisionService, Models};
use crate::store::memory::MemoryStore;

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
    /// Redis URL; switches the store to Redis. Not available yet in this build.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
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
            redis_url: std::env::var("REDIS_URL").ok(),
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
    if args.redis_url.is_some() {
        anyhow::bail!("REDIS_URL is set, but this build has no Redis store yet: unset it to run on the embedded store");
    }
    let policy = load_policy(args.policy.as_deref())?;
    let models = load_models(args.models.as_deref())?;
    let service = Arc::new(DecisionService::new(
        policy,
        models,
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
    ));
    service.sync_policy().await?;
    let (server, addr) = crate::http::start(service.clone(), &args.bind, args.workers)?;
    tracing::info!(
        %addr,
        store = "memory",
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
