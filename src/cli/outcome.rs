//! `fairtreat train outcome` and `fairtreat evaluate outcome`: fit the
//! outcome model P(good | context, action) on logged decisions and check it
//! against the simulator's truth.
//!
//! # Data
//!
//! By default the training logs are simulated in-process: `generate(seed,
//! n)` interactions decided by the policy (`--policy`, default
//! config/policy.toml or the bundled one) through the real decision path,
//! with the loaded sentiment model and the bundled rules prior as the
//! *logging* outcome model (so the data, and the artefact, do not depend on
//! which outcome model happens to be active), and with
//! `exploration.epsilon` raised to `--epsilon` (default 0.3) so several
//! replies are observed for similar contexts. Outcomes are drawn from the
//! simulator's [`TrueOutcome`]. With `--logs FILE.jsonl` the model is
//! trained on your own logs instead, in the [`LogRecord`] format of
//! `src/sim/logs.rs`: only `interaction`, `intent`, `gesture` and `reward`
//! are read.
//!
//! Evaluation draws held-out logs the same way from another seed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::domain::interaction::Interaction;
use crate::domain::outcome::RulesOutcome;
use crate::domain::policy::Policy;
use crate::model::outcome::{
    self, evaluate as evaluate_model, greedy_check, rows_from_logs, Evaluation, GreedyCheck,
    HyperParameters, FEATURES, TARGET_GREEDY_RATIO,
};
use crate::service::Models;
use crate::sim::logs::{simulate_logs, LogRecord};
use crate::sim::world::{generate, TrueOutcome};

const DEFAULT_VERSION: &str = "outcome-logreg-1";
/// Simulated interactions end here (fixed, so logs are a pure function of
/// the seed).
const SIM_END_UNIX: i64 = 1_790_000_000;
const SIM_DAYS: i64 = 30;

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Train on these logs (JSONL `LogRecord`s) instead of simulated ones.
    #[arg(long)]
    pub logs: Option<PathBuf>,
    /// Simulated interactions to log.
    #[arg(long, default_value_t = 20_000)]
    pub n: usize,
    /// Seed of the simulated logs.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Exploration rate of the logging policy.
    #[arg(long, default_value_t = 0.3)]
    pub epsilon: f64,
    /// Policy file of the logging policy (default: config/policy.toml or the bundled one).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Models directory (the sentiment model that scores the texts); the
    /// model is written to `<out>/<version>/`.
    #[arg(long, default_value = crate::cli::DEFAULT_MODELS)]
    pub out: PathBuf,
    /// Model version (also the folder name).
    #[arg(long, default_value = DEFAULT_VERSION)]
    pub version: String,
    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    /// L-BFGS iteration budget.
    #[arg(long, default_value_t = 300)]
    pub max_iterations: u64,
    /// Held-out interactions for the metrics written to the card.
    #[arg(long, default_value_t = 5_000)]
    pub eval_n: usize,
    /// Seed of the held-out logs (must differ from --seed).
    #[arg(long, default_value_t = 1_007)]
    pub eval_seed: u64,
    /// Replace an existing `<out>/<version>/`.
    #[arg(long)]
    pub force: bool,
    /// Print the card as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// Model version in the models directory (default: the active outcome model).
    #[arg(long)]
    pub model: Option<String>,
    /// Models directory.
    #[arg(long, default_value = crate::cli::DEFAULT_MODELS)]
    pub models: PathBuf,
    /// Held-out simulated interactions.
    #[arg(long, default_value_t = 20_000)]
    pub n: usize,
    /// Seed of the held-out logs (training uses 7 by default).
    #[arg(long, default_value_t = 1_007)]
    pub seed: u64,
    /// Exploration rate of the logging policy.
    #[arg(long, default_value_t = 0.3)]
    pub epsilon: f64,
    /// Policy file (default: config/policy.toml or the bundled one).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A progress bar over the named stages of a run (collecting logs, training,
/// evaluating), advanced by [`next_stage`].
fn stages(total: u64, first: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg:>28} [{bar:24}] {pos}/{len} stages {elapsed_precise}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_message(first.to_owned());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

fn next_stage(pb: &ProgressBar, msg: &str) {
    pb.inc(1);
    pb.set_message(msg.to_owned());
}

/// The models the logging policy decides with: the directory's sentiment
/// model, the bundled rules prior as outcome model.
fn logging_models(dir: &Path) -> anyhow::Result<Models> {
    // Training into a fresh directory: log with the default models instead.
    let loaded = if dir.join("active.toml").exists() {
        crate::model::load(dir)?
    } else {
        crate::cli::load_models(None)?
    };
    Ok(Models {
        sentiment: loaded.sentiment,
        outcome: std::sync::Arc::new(RulesOutcome),
    })
}

/// Simulated logs: `generate(seed, n)` decided by `policy` with exploration
/// `epsilon`, outcomes drawn from the truth.
pub async fn simulated_logs(
    policy: &Policy,
    models: &Models,
    n: usize,
    seed: u64,
    epsilon: f64,
) -> anyhow::Result<(Vec<LogRecord>, Vec<Interaction>)> {
    let end = time::OffsetDateTime::from_unix_timestamp(SIM_END_UNIX)?;
    let inputs = generate(seed, n, end, SIM_DAYS);
    let mut p = policy.clone();
    p.exploration.epsilon = epsilon;
    let logs = simulate_logs(&p, models, &inputs, seed).await?;
    let interactions = inputs
        .into_iter()
        .map(Interaction::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((logs, interactions))
}

/// The records of a JSONL log; a bad line is named (`<file> line <n>: …`).
/// Only `interaction`, `intent`, `gesture` and `reward` matter here:
/// exported logs without `p_true`, with propensities below 1 or without a
/// gesture train the same way.
fn read_logs(path: &Path) -> anyhow::Result<Vec<LogRecord>> {
    Ok(super::evaluate_policy::read_log_lines(path)?
        .into_iter()
        .map(|(_, record)| record)
        .collect())
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// The evaluation of one model: predictive metrics and the greedy check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub model: String,
    pub heldout: Evaluation,
    pub greedy: GreedyCheck,
    /// The same check for the bundled rules prior, for comparison.
    pub greedy_rules_prior: GreedyCheck,
    pub target_greedy_ratio: f64,
    pub target_met: bool,
}

pub fn report(
    name: &str,
    model: &dyn crate::domain::outcome::OutcomeModel,
    policy: &Policy,
    models: &Models,
    logs: &[LogRecord],
    interactions: &[Interaction],
) -> anyhow::Result<Report> {
    let rows = rows_from_logs(models, logs)?;
    let heldout = evaluate_model(model, &rows)?;
    let greedy = greedy_check(policy, models.sentiment.as_ref(), model, interactions);
    let greedy_rules_prior = greedy_check(
        policy,
        models.sentiment.as_ref(),
        &RulesOutcome,
        interactions,
    );
    Ok(Report {
        model: name.to_owned(),
        target_met: greedy.ratio >= TARGET_GREEDY_RATIO,
        heldout,
        greedy,
        greedy_rules_prior,
        target_greedy_ratio: TARGET_GREEDY_RATIO,
    })
}

fn print_report(r: &Report) {
    let h = &r.heldout;
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
    println!(
        "held-out logs: {} rows, good rate {:.3}",
        h.rows, h.good_rate
    );
    println!("{:<34} {:>10}", "metric", r.model);
    println!("{:<34} {:>10.4}", "log loss vs rewards", h.log_loss);
    println!("{:<34} {:>10.4}", "ROC AUC vs rewards", h.roc_auc);
    println!(
        "{:<34} {:>10}",
        "ROC AUC of p_true (ceiling)",
        opt(h.roc_auc_of_p_true)
    );
    println!(
        "{:<34} {:>10}",
        "log loss vs p_true (soft)",
        opt(h.soft_log_loss)
    );
    println!(
        "{:<34} {:>10}",
        "  floor (p_true itself)",
        opt(h.soft_log_loss_floor)
    );
    println!("{:<34} {:>10}", "mean |p - p_true|", opt(h.mae_vs_p_true));
    println!("calibration (vs rewards):");
    println!(
        "{:>11} {:>7} {:>10} {:>9}",
        "bin", "rows", "predicted", "observed"
    );
    for b in &h.calibration {
        let f = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
        println!(
            "{:>5.1}-{:<5.1} {:>7} {:>10} {:>9}",
            b.lower,
            b.upper,
            b.count,
            f(b.mean_predicted),
            f(b.observed_rate)
        );
    }
    println!(
        "greedy policy check ({} interactions):",
        r.greedy.interactions
    );
    println!(
        "{:<14} {:>12} {:>12} {:>8} {:>10}",
        "greedy on", "true value", "truth-greedy", "ratio", "agreement"
    );
    for (name, g) in [
        (r.model.as_str(), &r.greedy),
        ("rules prior", &r.greedy_rules_prior),
    ] {
        println!(
            "{:<14} {:>12.4} {:>12.4} {:>8.4} {:>10.3}",
            name, g.model_value, g.truth_value, g.ratio, g.agreement
        );
    }
    println!(
        "target: greedy ratio >= {TARGET_GREEDY_RATIO}: {}",
        if r.target_met { "met" } else { "NOT met" }
    );
}

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !v.contains("..")
}

/// `fairtreat train outcome`.
pub async fn train(args: TrainArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if !valid_version(&args.version) {
        anyhow::bail!("model versions are [A-Za-z0-9._-]+");
    }
    if !(0.0..=1.0).contains(&args.epsilon) {
        anyhow::bail!("--epsilon must be in [0, 1]");
    }
    if args.logs.is_none() && args.eval_seed == args.seed {
        anyhow::bail!("--eval-seed must differ from --seed");
    }
    let dir = args.out.join(&args.version);
    if dir.exists() && !args.force {
        anyhow::bail!("{} exists; pass --force to replace it", dir.display());
    }
    let policy = crate::cli::load_policy(args.policy.as_deref())?;
    let models = logging_models(&args.out)?;

    let pb = stages(3, "collecting logs");
    let (logs, data) = match &args.logs {
        Some(path) => {
            let logs = read_logs(path)?;
            let data = json!({
                "source": "logs",
                "file": path.display().to_string(),
                "sha256": sha256_file(path)?,
                "records": logs.len(),
            });
            (logs, data)
        }
        None => {
            let (logs, _) =
                simulated_logs(&policy, &models, args.n, args.seed, args.epsilon).await?;
            let data = json!({
                "source": "simulator (src/sim/world.rs generate + src/sim/logs.rs simulate_logs)",
                "interactions": args.n,
                "seed": args.seed,
                "logging_policy": format!("policy version {} with exploration.epsilon = {} (budget lifted)", policy.version, args.epsilon),
                "logging_models": models.version(),
                "explored_share": logs.iter().filter(|r| r.explored).count() as f64 / logs.len().max(1) as f64,
                "outcomes": "drawn from the simulator's TrueOutcome (simulator-truth-1)",
            });
            (logs, data)
        }
    };
    next_stage(&pb, "training");
    let rows = rows_from_logs(&models, &logs)?;
    let hp = HyperParameters {
        alpha: args.alpha,
        max_iterations: args.max_iterations,
        ..HyperParameters::default()
    };
    let model = outcome::train(&rows, &args.version, &hp)?;
    next_stage(&pb, "evaluating on held-out logs");
    let (heldout, interactions) =
        simulated_logs(&policy, &models, args.eval_n, args.eval_seed, args.epsilon).await?;
    let rep = report(
        &args.version,
        &model,
        &policy,
        &models,
        &heldout,
        &interactions,
    )?;
    pb.inc(1);
    pb.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let model_path = dir.join("model.json");
    std::fs::write(&model_path, model.to_json())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", model_path.display()))?;
    let artefact_bytes = std::fs::metadata(&model_path)?.len();
    let command = command_line(&args);
    let card = json!({
        "version": args.version,
        "task": "outcome",
        "kind": outcome::KIND,
        "schema": crate::model::SCHEMA,
        "description": "P(good outcome | context, action): a linfa logistic regression over a fixed, named feature schema (context, intent, gesture and their interactions). See src/model/outcome.rs.",
        "data": data,
        "split": {
            "training_rows": rows.len(),
            "label": "reward >= 0.5",
            "heldout": format!("simulated logs from seed {} ({} interactions), never seen in training", args.eval_seed, args.eval_n),
        },
        "features": {"count": FEATURES.len(), "names": FEATURES.to_vec()},
        "hyper_parameters": hp,
        "weights": model.weights(),
        "metrics": rep,
        "trained_at": time::OffsetDateTime::now_utc().date().to_string(),
        "training_seconds": (seconds * 10.0).round() / 10.0,
        "code_version": crate::cli::sentiment::code_version(),
        "artefact": {"file": "model.json", "bytes": artefact_bytes, "sha256": sha256_file(&model_path)?},
        "reproduce": command,
    });
    let card_path = dir.join("card.json");
    let mut text = serde_json::to_string_pretty(&card)?;
    text.push('\n');
    std::fs::write(&card_path, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", card_path.display()))?;
    let readme = format!(
        "# {v}\n\nThe outcome model: P(good outcome | context, action), a linfa logistic \
regression over {n} named features (see `card.json` and `src/model/outcome.rs`).\n\n\
Trained on simulated logs: the logging policy with `exploration.epsilon = {eps}`, the \
loaded sentiment model and the rules prior as logging outcome model; outcomes drawn \
from the simulator's truth.\n\n\
Held-out (seed {es}): log loss {ll:.4}, ROC AUC {auc:.4}, mean |p − p_true| {mae}; \
greedy policy check ratio {ratio:.4} (target ≥ {TARGET_GREEDY_RATIO}).\n\n\
Reproduce (from the repository root):\n\n```sh\n{command}\ncargo run --release -- evaluate outcome --model {v}\n```\n",
        v = args.version,
        n = FEATURES.len(),
        eps = args.epsilon,
        es = args.eval_seed,
        ll = rep.heldout.log_loss,
        auc = rep.heldout.roc_auc,
        mae = rep
            .heldout
            .mae_vs_p_true
            .map(|m| format!("{m:.4}"))
            .unwrap_or_else(|| "-".into()),
        ratio = rep.greedy.ratio,
    );
    std::fs::write(dir.join("README.md"), readme)?;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&card)?);
    } else {
        println!(
            "trained {} in {seconds:.1}s on {} rows, {} features",
            args.version,
            rows.len(),
            FEATURES.len()
        );
        print_report(&rep);
        println!(
            "wrote {} ({artefact_bytes} bytes), {} and README.md",
            model_path.display(),
            card_path.display()
        );
        println!("reproduce: {command}");
    }
    Ok(())
}

fn command_line(args: &TrainArgs) -> String {
    let mut c = String::from("cargo run --release -- train outcome");
    match &args.logs {
        Some(l) => c.push_str(&format!(" --logs {}", l.display())),
        None => c.push_str(&format!(
            " --n {} --seed {} --epsilon {}",
            args.n, args.seed, args.epsilon
        )),
    }
    if let Some(p) = &args.policy {
        c.push_str(&format!(" --policy {}", p.display()));
    }
    c.push_str(&format!(
        " --alpha {} --max-iterations {} --eval-n {} --eval-seed {} --out {} --version {} --force",
        args.alpha,
        args.max_iterations,
        args.eval_n,
        args.eval_seed,
        args.out.display(),
        args.version
    ));
    c
}

/// `fairtreat evaluate outcome`.
pub async fn evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    let version = match &args.model {
        Some(v) => v.clone(),
        None => crate::model::active(&args.models)?.outcome,
    };
    let (card, loaded) = crate::model::load_version(&args.models, &version)?;
    let crate::model::Loaded::Outcome(model) = loaded else {
        anyhow::bail!(
            "model {version} is a {} model, not an outcome model",
            card.task
        );
    };
    let policy = crate::cli::load_policy(args.policy.as_deref())?;
    let models = logging_models(&args.models)?;
    let pb = stages(2, "simulating held-out logs");
    let (logs, interactions) =
        simulated_logs(&policy, &models, args.n, args.seed, args.epsilon).await?;
    next_stage(&pb, "evaluating");
    let rep = report(
        &version,
        model.as_ref(),
        &policy,
        &models,
        &logs,
        &interactions,
    )?;
    let truth = report(
        "truth",
        &TrueOutcome,
        &policy,
        &models,
        &logs,
        &interactions,
    )?;
    pb.inc(1);
    pb.finish_and_clear();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"model": rep, "truth": truth.heldout, "seed": args.seed, "n": args.n})
            )?
        );
    } else {
        print_report(&rep);
        println!(
            "for reference, the truth itself: log loss {:.4}, ROC AUC {:.4}",
            truth.heldout.log_loss, truth.heldout.roc_auc
        );
    }
    Ok(())
}
