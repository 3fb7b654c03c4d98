//! `fairtreat train sentiment` and `fairtreat evaluate sentiment`: fit the
//! text sentiment model on the VADER ground truth, write its artefact and
//! card, and compare it with VADER on the fixed test split.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{ArgAction, Args};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::model::sentiment::{
    self, evaluate as evaluate_model, load_corpus, load_vader_reference, Evaluation,
    HyperParameters, Progress, TrainedSentiment, SETS, TARGET_OVERALL_AUC, TEST_EVERY,
};

/// Where the data and the models live by default, relative to the working
/// directory (the repository root).
const DEFAULT_DATA: &str = "data/vader";
const DEFAULT_VADER_REFERENCE: &str = "data/oracle_reference/vader_scores_icwsm2014.tsv";
const DEFAULT_VERSION: &str = "sentiment-logreg-1";

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Directory with the four `*_GroundTruth.txt` files.
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// vaderSentiment 3.3.2 scores of every ground-truth row, for the
    /// side-by-side evaluation.
    #[arg(long, default_value = DEFAULT_VADER_REFERENCE)]
    pub vader_reference: PathBuf,
    /// Models directory; the model is written to `<out>/<version>/`.
    #[arg(long, default_value = crate::cli::DEFAULT_MODELS)]
    pub out: PathBuf,
    /// Model version (also the folder name).
    #[arg(long, default_value = DEFAULT_VERSION)]
    pub version: String,
    /// Seed of the naive-Bayes folds and the validation rows.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep n-grams seen in at least this many training texts.
    #[arg(long, default_value_t = 2)]
    pub min_df: usize,
    /// Use bigrams as well as unigrams (`--bigrams false` to turn off).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub bigrams: bool,
    /// Additive smoothing of the naive-Bayes counts.
    #[arg(long, default_value_t = 1.0)]
    pub nb_smoothing: f64,
    /// Folds of the cross-fitted naive-Bayes features.
    #[arg(long, default_value_t = 5)]
    pub nb_folds: usize,
    /// Gate the features by the domain posteriors (`--domain-gating false`
    /// to turn off).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub domain_gating: bool,
    /// L2 penalty of the logistic regression (1/C in scikit-learn).
    #[arg(long, default_value_t = 100.0)]
    pub alpha: f64,
    /// L-BFGS iteration budget.
    #[arg(long, default_value_t = 1000)]
    pub max_iterations: u64,
    /// L-BFGS iterations between progress reports (and convergence checks).
    #[arg(long, default_value_t = 100)]
    pub chunk_iterations: u64,
    /// Stop when the gradient norm falls below this.
    #[arg(long, default_value_t = 1e-3)]
    pub gradient_tolerance: f64,
    /// Share of the training rows held out first to report validation AUCs
    /// (0 = none); the final model is fitted on all training rows.
    #[arg(long, default_value_t = 0.0)]
    pub validation_fraction: f64,
    /// Replace an existing `<out>/<version>/`.
    #[arg(long)]
    pub force: bool,
    /// Print the card as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl TrainArgs {
    pub fn hyper_parameters(&self) -> HyperParameters {
        HyperParameters {
            min_df: self.min_df,
            bigrams: self.bigrams,
            nb_smoothing: self.nb_smoothing,
            nb_folds: self.nb_folds,
            domain_gating: self.domain_gating,
            alpha: self.alpha,
            max_iterations: self.max_iterations,
            chunk_iterations: self.chunk_iterations,
            gradient_tolerance: self.gradient_tolerance,
            validation_fraction: self.validation_fraction,
            seed: self.seed,
        }
    }

    /// The command line that reproduces this run (flags that differ from
    /// the defaults only).
    fn command_line(&self) -> String {
        let d = HyperParameters::default();
        let hp = self.hyper_parameters();
        let mut cmd = format!(
            "cargo run --release -- train sentiment --version {} --seed {}",
            self.version, hp.seed
        );
        let mut flag = |name: &str, differs: bool, value: String| {
            if differs {
                cmd.push_str(&format!(" --{name} {value}"));
            }
        };
        flag("min-df", hp.min_df != d.min_df, hp.min_df.to_string());
        flag("bigrams", hp.bigrams != d.bigrams, hp.bigrams.to_string());
        flag(
            "nb-smoothing",
            hp.nb_smoothing != d.nb_smoothing,
            hp.nb_smoothing.to_string(),
        );
        flag(
            "nb-folds",
            hp.nb_folds != d.nb_folds,
            hp.nb_folds.to_string(),
        );
        flag(
            "domain-gating",
            hp.domain_gating != d.domain_gating,
            hp.domain_gating.to_string(),
        );
        flag("alpha", hp.alpha != d.alpha, hp.alpha.to_string());
        flag(
            "max-iterations",
            hp.max_iterations != d.max_iterations,
            hp.max_iterations.to_string(),
        );
        flag(
            "chunk-iterations",
            hp.chunk_iterations != d.chunk_iterations,
            hp.chunk_iterations.to_string(),
        );
        flag(
            "gradient-tolerance",
            hp.gradient_tolerance != d.gradient_tolerance,
            hp.gradient_tolerance.to_string(),
        );
        flag(
            "validation-fraction",
            hp.validation_fraction != d.validation_fraction,
            hp.validation_fraction.to_string(),
        );
        if self.data != Path::new(DEFAULT_DATA) {
            cmd.push_str(&format!(" --data {}", self.data.display()));
        }
        cmd
    }
}

#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// A model directory (holding `model.json`), a `model.json`, or a
    /// version in `--models`. Default: the active sentiment model.
    #[arg(long)]
    pub model: Option<String>,
    /// Models directory.
    #[arg(long, default_value = crate::cli::DEFAULT_MODELS)]
    pub models: PathBuf,
    /// Directory with the four `*_GroundTruth.txt` files.
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// vaderSentiment 3.3.2 scores of every ground-truth row.
    #[arg(long, default_value = DEFAULT_VADER_REFERENCE)]
    pub vader_reference: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A progress bar per training stage.
fn progress_bars() -> impl FnMut(Progress) {
    let style =
        ProgressStyle::with_template("{msg:>22} [{bar:32}] {pos:>6}/{len:6} {elapsed_precise}")
            .expect("a valid template")
            .progress_chars("=> ");
    let mut bar: Option<ProgressBar> = None;
    move |p| match p {
        Progress::Stage { name, total } => {
            if let Some(b) = bar.take() {
                b.finish();
            }
            let b = ProgressBar::new(total)
                .with_style(style.clone())
                .with_message(name.to_owned());
            bar = Some(b);
        }
        Progress::Advance(n) => {
            if let Some(b) = &bar {
                b.inc(n);
                if b.position() >= b.length().unwrap_or(0) {
                    b.finish();
                }
            }
        }
    }
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// `<crate version>+<git commit>[-dirty]`, or `<crate version>+unknown`
/// outside a git checkout.
pub fn code_version() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).filter(|c| !c.is_empty());
    let suffix = match commit {
        Some(c) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        None => "unknown".to_owned(),
    };
    format!("{}+{suffix}", env!("CARGO_PKG_VERSION"))
}

/// The per-set metrics as the card stores them.
fn metrics_json(ev: &Evaluation) -> serde_json::Value {
    let sets: serde_json::Map<String, serde_json::Value> = ev
        .sets
        .iter()
        .map(|s| {
            (
                s.set.clone(),
                json!({
                    "rows": s.rows,
                    "positives": s.positives,
                    "model_auc": s.model_auc,
                    "vader_auc": s.vader_auc,
                    "model_log_loss": s.model_log_loss,
                }),
            )
        })
        .collect();
    json!({
        "test": sets,
        "targets": {
            "overall_auc_at_least": TARGET_OVERALL_AUC,
            "each_set_auc_at_least_vader": true,
        },
        "unmet_targets": ev.unmet_targets(),
        "calibration": ev.calibration,
    })
}

fn print_evaluation(ev: &Evaluation) {
    print!("{}", ev.table());
    let unmet = ev.unmet_targets();
    if unmet.is_empty() {
        println!("targets: met (overall AUC >= {TARGET_OVERALL_AUC}, and >= VADER on every set)");
    } else {
        println!("targets NOT met: {}", unmet.join("; "));
    }
}

/// `fairtreat train sentiment`.
pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let hp = args.hyper_parameters();
    hp.check()?;
    // The version becomes a folder name: the rule model loading enforces.
    if args.version.is_empty()
        || !args
            .version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || args.version.contains("..")
    {
        anyhow::bail!("model versions are [A-Za-z0-9._-]+");
    }
    let dir = args.out.join(&args.version);
    if dir.exists() && !args.force {
        anyhow::bail!("{} exists; pass --force to replace it", dir.display());
    }

    let corpus = load_corpus(&args.data)?;
    let vader = load_vader_reference(&args.vader_reference, &corpus)?;
    let mut progress = progress_bars();
    let (model, report) = sentiment::train(&corpus, &args.version, &hp, &mut progress)?;
    let evaluation = evaluate_model(&model, &corpus, &vader)?;
    let seconds = started.elapsed().as_secs_f64();

    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let model_path = dir.join("model.json");
    model.save(&model_path)?;
    let artefact_bytes = std::fs::metadata(&model_path)?.len();

    let mut files = Vec::new();
    for name in SETS {
        let path = args.data.join(format!("{name}_GroundTruth.txt"));
        files.push(json!({
            "file": path.display().to_string(),
            "rows": corpus.iter().filter(|e| SETS[e.set] == name).count(),
            "sha256": sha256_file(&path)?,
        }));
    }
    let test_rows = corpus
        .iter()
        .filter(|e| e.is_test() && e.label().is_some())
        .count();
    let zero = corpus.iter().filter(|e| e.label().is_none()).count();
    let command = args.command_line();
    let card = json!({
        "version": args.version,
        "task": "sentiment",
        "kind": sentiment::KIND,
        "schema": crate::model::SCHEMA,
        "description": "Text sentiment in [-1, 1] as 2·P(human mean rating > 0) − 1: a linfa logistic regression over cross-fitted naive-Bayes n-gram evidence, VADER 3.3.2 and lexicon features, gated by a naive-Bayes posterior over the four text domains. See src/model/sentiment.rs.",
        "data": {
            "source": "VADER ICWSM-2014 human-rated ground truth (tweets, Amazon review sentences, movie review sentences, NYT editorial sentences), MIT, C.J. Hutto; see data/vader/NOTICE.md",
            "files": files,
            "vader_reference": {
                "file": args.vader_reference.display().to_string(),
                "sha256": sha256_file(&args.vader_reference)?,
            },
            "label": "human mean rating > 0; rows with a mean of exactly 0 are left out of training and evaluation",
        },
        "split": {
            "rule": format!("in each file, every {TEST_EVERY}th non-empty line (1-based line number divisible by {TEST_EVERY}) is a test row; the rest are training rows"),
            "training_rows": report.training_rows,
            "validation_rows": report.validation_rows,
            "test_rows": test_rows,
            "zero_mean_rows_excluded": zero,
        },
        "features": {
            "count": report.features,
            "naive_bayes_terms": report.terms,
            "groups": [
                "naive-Bayes log-count ratios of negation-marked unigrams and bigrams (5 summaries, cross-fitted)",
                "VADER 3.3.2 neg/neu/pos/compound and raw valence, VADER lexicon sums by polarity and negation scope, style cues (28)",
                "domain posteriors (tweets/amazon/movie/nyt) and each domain's own naive-Bayes summaries (12)",
                "every feature above times each domain posterior (140)",
            ],
            "names": sentiment::feature_names(hp.domain_gating),
        },
        "hyper_parameters": hp,
        "fit": report.fit,
        "metrics": metrics_json(&evaluation),
        "validation": report.validation.as_ref().map(|v| v.sets.clone()),
        "trained_at": time::OffsetDateTime::now_utc().date().to_string(),
        "training_seconds": (seconds * 10.0).round() / 10.0,
        "code_version": code_version(),
        "artefact": {
            "file": "model.json",
            "bytes": artefact_bytes,
            "sha256": sha256_file(&model_path)?,
        },
        "reproduce": command,
        "license": "MIT (trained on MIT-licensed data)",
    });
    let card_path = dir.join("card.json");
    let mut text = serde_json::to_string_pretty(&card)?;
    text.push('\n');
    std::fs::write(&card_path, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", card_path.display()))?;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&card)?);
    } else {
        println!(
            "trained {} in {seconds:.1}s: {} training rows, {} features, {} L-BFGS iterations{}",
            args.version,
            report.training_rows,
            report.features,
            report.fit.iterations,
            if report.fit.converged {
                ""
            } else {
                " (budget spent before convergence)"
            }
        );
        if let Some(v) = &report.validation {
            println!("validation rows ({}):", report.validation_rows);
            print!("{}", v.table());
        }
        println!("test rows:");
        print_evaluation(&evaluation);
        println!(
            "wrote {} ({artefact_bytes} bytes) and {}",
            model_path.display(),
            card_path.display()
        );
        println!("reproduce: {command}");
    }
    Ok(())
}

/// Finds the `model.json` that `--model` names.
fn model_path(args: &EvaluateArgs) -> anyhow::Result<PathBuf> {
    let version = match &args.model {
        Some(m) => {
            let p = PathBuf::from(m);
            if p.is_file() {
                return Ok(p);
            }
            if p.join("model.json").is_file() {
                return Ok(p.join("model.json"));
            }
            m.clone()
        }
        None => {
            let path = args.models.join("active.toml");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let active: crate::model::Active =
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            active.sentiment
        }
    };
    let card = crate::model::card(&args.models, &version)?;
    if card.kind != sentiment::KIND {
        anyhow::bail!(
            "model {version} is a {:?} model, not a trained {:?} one: name a trained sentiment model with --model",
            card.kind,
            sentiment::KIND
        );
    }
    Ok(args.models.join(&version).join("model.json"))
}

/// `fairtreat evaluate sentiment`.
pub fn evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    let path = model_path(&args)?;
    let model = TrainedSentiment::load(&path)?;
    let corpus = load_corpus(&args.data)?;
    let vader = load_vader_reference(&args.vader_reference, &corpus)?;
    let evaluation = evaluate_model(&model, &corpus, &vader)?;
    if args.json {
        let out = json!({
            "model": model.version(),
            "artefact": path.display().to_string(),
            "metrics": metrics_json(&evaluation),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{} ({}) on the test rows:", model.version(), path.display());
        print_evaluation(&evaluation);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: TrainArgs,
    }

    #[test]
    fn the_flag_defaults_are_the_library_defaults() {
        let w = Wrapper::try_parse_from(["x"]).unwrap();
        assert_eq!(w.args.hyper_parameters(), HyperParameters::default());
        assert_eq!(
            w.args.command_line(),
            "cargo run --release -- train sentiment --version sentiment-logreg-1 --seed 0"
        );
        let w = Wrapper::try_parse_from(["x", "--alpha", "3", "--bigrams", "false"]).unwrap();
        assert!(w.args.command_line().ends_with("--bigrams false --alpha 3"));
    }

    #[test]
    fn the_code_version_names_the_crate_version() {
        assert!(code_version().starts_with(concat!(env!("CARGO_PKG_VERSION"), "+")));
    }
}
