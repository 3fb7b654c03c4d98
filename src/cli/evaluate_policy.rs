//! `fairtreat evaluate policy`: the off-policy value of a candidate policy
//! (a policy document with models) from logged decisions, next to the
//! logging policy's observed value, and the parity the candidate would show.
//!
//! A thin adapter: it reads the JSONL log (`fairtreat simulate --out` or
//! `fairtreat export`), loads the candidate, and prints what
//! [`crate::sim::evaluate::evaluate_policy`] computes. Errors in the log
//! name the line.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::domain::outcome::OutcomeModel;
use crate::model::Loaded;
use crate::sim::evaluate::{evaluate_policy, EvaluateError, EvaluateOptions, PolicyEvaluation};
use crate::sim::logs::LogRecord;

#[derive(Debug, Clone, Args)]
pub struct EvaluatePolicyArgs {
    /// Logged decisions with rewards (JSONL `LogRecord`s, as `fairtreat
    /// simulate --out` or `fairtreat export` write them).
    #[arg(long)]
    pub logs: PathBuf,
    /// Models directory of the candidate (its active models). Default:
    /// ./models, or the models compiled into the binary, as `serve`.
    #[arg(long, visible_alias = "model")]
    pub models: Option<PathBuf>,
    /// Policy file (TOML) of the candidate. Default: config/policy.toml, or
    /// the bundled policy, as `serve`.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// The outcome model DM and DR use as reward model: a version in the
    /// models directory. Default: the candidate's own outcome model.
    #[arg(long)]
    pub reward_model: Option<String>,
    /// Bootstrap resamples per 95 % interval.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The log's records, each with its 1-based line number.
pub fn read_log_lines(path: &Path) -> anyhow::Result<Vec<(usize, LogRecord)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(k, l)| {
            serde_json::from_str(l)
                .map(|r| (k + 1, r))
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), k + 1))
        })
        .collect()
}

fn models_dir(args: &EvaluatePolicyArgs) -> PathBuf {
    args.models
        .clone()
        .unwrap_or_else(|| PathBuf::from(super::DEFAULT_MODELS))
}

fn reward_model(
    args: &EvaluatePolicyArgs,
    candidate: &crate::service::Models,
) -> anyhow::Result<std::sync::Arc<dyn OutcomeModel>> {
    let Some(version) = &args.reward_model else {
        return Ok(candidate.outcome.clone());
    };
    let dir = models_dir(args);
    match crate::model::load_version(&dir, version)? {
        (_, Loaded::Outcome(m)) => Ok(m),
        (card, Loaded::Sentiment(_)) => anyhow::bail!(
            "--reward-model {version} is a {} model, not an outcome model",
            card.task
        ),
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

fn print_table(e: &PolicyEvaluation) {
    println!(
        "{} logged decisions; candidate: policy version {}, models {}; reward model (DM/DR): {}{}",
        e.records,
        e.policy_version,
        e.model_version,
        e.reward_model,
        if e.budget_lifted {
            "; budget lifted (simulated logs)"
        } else {
            ""
        }
    );
    println!(
        "support: the candidate may take the logged action in {:.1} % of records; it took it in {:.1} %",
        100.0 * e.support,
        100.0 * e.same_action
    );
    println!(
        "{:<16} {:>8}   {:<19} {:>9}",
        "estimator",
        "value",
        format!("{:.0} % CI", 100.0 * e.confidence),
        "ESS"
    );
    let l = &e.logging_policy;
    println!(
        "{:<16} {:>8.4}   [{:.4}, {:.4}]   {:>9}",
        "logging (mean)", l.value, l.lower, l.upper, "-"
    );
    for r in &e.estimates {
        let ci = match (r.lower, r.upper) {
            (Some(lo), Some(hi)) => format!("[{lo:.4}, {hi:.4}]"),
            _ => "-".into(),
        };
        println!(
            "{:<16} {:>8}   {:<19} {:>9}",
            r.estimator,
            opt(r.value, 4),
            ci,
            opt(r.effective_sample_size, 0)
        );
        if let Some(err) = &r.error {
            println!("  {}: {err}", r.estimator);
        }
    }
    println!(
        "(bootstrap: {} resamples, seed {})",
        e.bootstrap_resamples, e.seed
    );
    println!("parity the candidate would show over the log (worst / best group perk rate):");
    for p in &e.fairness {
        let bands: Vec<String> = p
            .bands
            .iter()
            .map(|b| {
                format!(
                    "{} {:.3}{}",
                    b.band.as_str(),
                    b.parity_ratio,
                    if b.enforced { "" } else { " (not enforced)" }
                )
            })
            .collect();
        println!(
            "  {:<8} overall {:.3}; {}",
            p.attribute,
            p.overall,
            bands.join(", ")
        );
    }
}

/// `fairtreat evaluate policy`.
pub async fn run(args: EvaluatePolicyArgs) -> anyhow::Result<()> {
    if args.bootstrap == 0 {
        anyhow::bail!("--bootstrap must be at least 1");
    }
    let lines = read_log_lines(&args.logs)?;
    let policy = super::load_policy(args.policy.as_deref())?;
    let models = super::load_models(args.models.as_deref())?;
    let reward = reward_model(&args, &models)?;
    let (line_numbers, logs): (Vec<usize>, Vec<LogRecord>) = lines.into_iter().unzip();
    let options = EvaluateOptions {
        bootstrap: args.bootstrap,
        seed: args.seed,
        // Simulated logs (every record knows the truth) are decided with the
        // budget lifted; replay the candidate the same way.
        lift_budget: !logs.is_empty() && logs.iter().all(|r| r.p_true.is_some()),
        ..EvaluateOptions::default()
    };
    let evaluation = evaluate_policy(&logs, &policy, &models, reward.as_ref(), &options)
        .await
        .map_err(|e| match e {
            EvaluateError::Empty => {
                anyhow::anyhow!("{}: no logged decisions", args.logs.display())
            }
            EvaluateError::Record { index, problem } => anyhow::anyhow!(
                "{} line {}: {problem}",
                args.logs.display(),
                line_numbers[index]
            ),
            other => other.into(),
        })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
    } else {
        print_table(&evaluation);
    }
    Ok(())
}
