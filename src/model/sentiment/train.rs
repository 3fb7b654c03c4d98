//! Training: the hyper-parameters, the seeded folds and validation rows,
//! and the logistic-regression fit in reported chunks.

use linfa::prelude::*;
use linfa_logistic::{FittedLogisticRegression, LogisticRegression};
use ndarray::{s, Array1, Array2};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::data::Example;
use super::evaluate::{evaluate_rows, Evaluation};
use super::features::{standardised_len, unscaled, Featurizer};
use super::lexicon::lexicon_features;
use super::naive_bayes::{text_terms, CountTable, Doc, NaiveBayes};
use super::tokens::tokenize;
use super::{SentimentError, TrainedSentiment};
use crate::domain::sentiment::vader::Vader;
use crate::domain::sentiment::{VADER_EMOJI_LEXICON, VADER_LEXICON};

/// Everything that shapes the model; recorded in the artefact and the card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HyperParameters {
    /// Keep n-grams seen in at least this many training texts.
    pub min_df: usize,
    /// Add bigrams to the unigrams.
    pub bigrams: bool,
    /// Additive smoothing of the naive-Bayes counts.
    pub nb_smoothing: f64,
    /// Folds of the cross-fitted naive-Bayes features.
    pub nb_folds: usize,
    /// Gate the features by the domain posteriors (see the docs of the
    /// `sentiment` module).
    pub domain_gating: bool,
    /// L2 penalty of linfa's logistic regression (1/C in scikit-learn).
    pub alpha: f64,
    /// L-BFGS iteration budget.
    pub max_iterations: u64,
    /// L-BFGS restarts from the current weights every this many iterations
    /// (so progress can be reported); also the convergence check interval.
    pub chunk_iterations: u64,
    /// Stop when the L2 norm of the gradient of linfa's objective (summed,
    /// not averaged, over texts) falls below this.
    pub gradient_tolerance: f64,
    /// Share of the training rows held out to report validation AUCs
    /// (0 = none). The final model is then refitted on all training rows.
    pub validation_fraction: f64,
    /// Picks the naive-Bayes folds and the validation rows.
    pub seed: u64,
}

impl Default for HyperParameters {
    fn default() -> Self {
        Self {
            min_df: 2,
            bigrams: true,
            nb_smoothing: 1.0,
            nb_folds: 5,
            domain_gating: true,
            alpha: 100.0,
            max_iterations: 1000,
            chunk_iterations: 100,
            gradient_tolerance: 1e-3,
            validation_fraction: 0.0,
            seed: 0,
        }
    }
}

impl HyperParameters {
    /// Refuses values that would make training fail or features non-finite.
    pub fn check(&self) -> Result<(), SentimentError> {
        let bad = |m: &str| Err(SentimentError::Training(m.into()));
        if self.min_df == 0 {
            return bad("min_df must be at least 1");
        }
        if !(self.nb_smoothing.is_finite() && self.nb_smoothing > 0.0) {
            return bad("nb_smoothing must be finite and > 0");
        }
        if !(2..=100).contains(&self.nb_folds) {
            return bad("nb_folds must be in 2..=100");
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return bad("alpha must be finite and >= 0");
        }
        if self.max_iterations == 0 || self.chunk_iterations == 0 {
            return bad("max_iterations and chunk_iterations must be at least 1");
        }
        if !(self.gradient_tolerance.is_finite() && self.gradient_tolerance > 0.0) {
            return bad("gradient_tolerance must be finite and > 0");
        }
        if !(0.0..0.5).contains(&self.validation_fraction) {
            return bad("validation_fraction must be in [0, 0.5)");
        }
        Ok(())
    }
}

// -------------------------------------------------------------- training ----

/// Progress of [`train`], for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress<'a> {
    /// A new stage begins with `total` steps.
    Stage { name: &'a str, total: u64 },
    /// `n` more steps of the current stage are done.
    Advance(u64),
}

pub(super) fn bundled_vader() -> Vader {
    Vader::from_lexicons(VADER_LEXICON, VADER_EMOJI_LEXICON)
        .expect("the bundled VADER lexicons parse (checked by a unit test)")
}

/// SHA-256 of the VADER lexicons the features are computed with.
pub fn lexicon_fingerprint() -> String {
    let mut h = Sha256::new();
    h.update(VADER_LEXICON.as_bytes());
    h.update([0u8]);
    h.update(VADER_EMOJI_LEXICON.as_bytes());
    hex::encode(h.finalize())
}

/// SplitMix64: a small, well-mixed hash, so seeded draws are reproducible
/// without a random-number crate.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded uniform draw in [0, 1) for a row, keyed by its set and line so
/// it does not depend on row order; `salt` separates independent draws.
fn row_draw(example: &Example, seed: u64, salt: u64) -> f64 {
    let key = ((example.set as u64) << 40) ^ (example.line as u64) ^ (salt << 56);
    let u = splitmix64(splitmix64(seed) ^ splitmix64(key)) >> 11;
    u as f64 / (1u64 << 53) as f64
}

/// Whether a training row is held out for validation.
pub fn is_validation(example: &Example, hp: &HyperParameters) -> bool {
    hp.validation_fraction > 0.0 && row_draw(example, hp.seed, 1) < hp.validation_fraction
}

/// The naive-Bayes fold of a training row.
fn nb_fold(example: &Example, hp: &HyperParameters) -> usize {
    ((row_draw(example, hp.seed, 2) * hp.nb_folds as f64) as usize).min(hp.nb_folds - 1)
}

/// Training rows: not test, with a sign.
pub fn training_rows(corpus: &[Example]) -> Vec<&Example> {
    corpus
        .iter()
        .filter(|e| !e.is_test() && e.label().is_some())
        .collect()
}

/// L2 norm of the gradient of linfa's objective (sum of log losses plus
/// `alpha/2·|w|²`, intercept unpenalised) at `params` (weights, intercept).
fn gradient_norm(x: &Array2<f64>, y: &[bool], alpha: f64, params: &Array1<f64>) -> f64 {
    let d = x.ncols();
    let w = params.slice(s![..d]);
    let z = x.dot(&w) + params[d];
    // d/dz of −ln σ(±z) is σ(z) − [y].
    let r: Array1<f64> = z
        .iter()
        .zip(y)
        .map(|(&z, &y)| 1.0 / (1.0 + (-z).exp()) - f64::from(u8::from(y)))
        .collect();
    let gw = x.t().dot(&r) + &w * alpha;
    let gb = r.sum();
    (gw.dot(&gw) + gb * gb).sqrt()
}

/// How the optimiser ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// L-BFGS iterations run (in whole chunks).
    pub iterations: u64,
    /// Gradient norm at the returned weights.
    pub gradient_norm: f64,
    pub converged: bool,
}

/// Fits linfa's logistic regression in chunks of `chunk_iterations`
/// L-BFGS iterations, warm-starting each chunk from the last weights, until
/// the gradient norm is below the tolerance or the budget is spent.
fn fit_logistic(
    x: &Array2<f64>,
    y: &[bool],
    hp: &HyperParameters,
    stage: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<(FittedLogisticRegression<f64, bool>, FitReport), SentimentError> {
    let d = x.ncols();
    progress(Progress::Stage {
        name: stage,
        total: hp.max_iterations,
    });
    let dataset = DatasetBase::new(x.view(), Array1::from(y.to_vec()));
    let mut params: Option<Array1<f64>> = None;
    let mut fitted = None;
    let mut iterations = 0;
    let mut norm = f64::INFINITY;
    while iterations < hp.max_iterations && norm >= hp.gradient_tolerance {
        let n = hp.chunk_iterations.min(hp.max_iterations - iterations);
        let mut lr = LogisticRegression::default()
            .alpha(hp.alpha)
            .max_iterations(n)
            .gradient_tolerance(hp.gradient_tolerance);
        if let Some(p) = params.take() {
            lr = lr.initial_params(p);
        }
        let f = lr
            .fit(&dataset)
            .map_err(|e| SentimentError::Training(e.to_string()))?;
        let mut p = Array1::zeros(d + 1);
        p.slice_mut(s![..d]).assign(f.params());
        p[d] = f.intercept();
        iterations += n;
        norm = gradient_norm(x, y, hp.alpha, &p);
        progress(Progress::Advance(n));
        params = Some(p);
        fitted = Some(f);
    }
    progress(Progress::Advance(hp.max_iterations - iterations));
    let fitted = fitted.ok_or_else(|| SentimentError::Training("no iterations".into()))?;
    Ok((
        fitted,
        FitReport {
            iterations,
            gradient_norm: norm,
            converged: norm < hp.gradient_tolerance,
        },
    ))
}

/// What [`train`] returns besides the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub training_rows: usize,
    /// Held out for the validation metrics (then used in the final fit).
    pub validation_rows: usize,
    /// Terms in the naive-Bayes tables.
    pub terms: usize,
    pub features: usize,
    pub fit: FitReport,
    /// Metrics on the validation rows of a model fitted without them (VADER
    /// computed by the bundled port); `None` without validation.
    pub validation: Option<Evaluation>,
}

/// Trains the model on the training rows of `corpus` (never the test rows).
pub fn train(
    corpus: &[Example],
    version: &str,
    hp: &HyperParameters,
    progress: &mut dyn FnMut(Progress),
) -> Result<(TrainedSentiment, TrainReport), SentimentError> {
    hp.check()?;
    let rows = training_rows(corpus);
    let validation = if hp.validation_fraction > 0.0 {
        let (fit_rows, val_rows): (Vec<&Example>, Vec<&Example>) =
            rows.iter().partition(|e| !is_validation(e, hp));
        let (model, _) = fit(&fit_rows, version, hp, "validation ", progress)?;
        let vader = bundled_vader();
        let compound: Vec<f64> = val_rows
            .iter()
            .map(|e| vader.polarity(&e.text).compound)
            .collect();
        Some(evaluate_rows(&model, &val_rows, &compound)?)
    } else {
        None
    };
    let (model, fit_report) = fit(&rows, version, hp, "", progress)?;
    let report = TrainReport {
        training_rows: rows.len(),
        validation_rows: rows.iter().filter(|e| is_validation(e, hp)).count(),
        terms: model.table.terms.len(),
        features: model.featurizer.dim(),
        fit: fit_report,
        validation,
    };
    Ok((model, report))
}

/// Fits the featuriser and the regression on `rows`.
pub(super) fn fit(
    rows: &[&Example],
    version: &str,
    hp: &HyperParameters,
    stage_prefix: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<(TrainedSentiment, FitReport), SentimentError> {
    let vader = bundled_vader();
    progress(Progress::Stage {
        name: &format!("{stage_prefix}features"),
        total: rows.len() as u64,
    });
    let mut docs = Vec::with_capacity(rows.len());
    let mut lexicon = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let tokens = tokenize(&row.text, &vader);
        lexicon.push(lexicon_features(&row.text, &tokens, &vader));
        docs.push(Doc {
            terms: text_terms(&row.text, &tokens, hp.bigrams),
            domain: row.set,
            positive: row.label() == Some(true),
        });
        if i % 512 == 511 {
            progress(Progress::Advance(512));
        }
    }
    progress(Progress::Advance(rows.len() as u64 % 512));

    // Cross-fitting: a training text's naive-Bayes features come from the
    // tables of the other folds; the model's tables count every text.
    progress(Progress::Stage {
        name: &format!("{stage_prefix}naive Bayes"),
        total: hp.nb_folds as u64 + 1,
    });
    let folds: Vec<usize> = rows.iter().map(|e| nb_fold(e, hp)).collect();
    let mut raws = vec![Vec::new(); rows.len()];
    for k in 0..hp.nb_folds {
        let others = docs.iter().zip(&folds).filter(|(_, &f)| f != k);
        let table = CountTable::build(others.map(|(d, _)| d), hp.min_df);
        let nb = NaiveBayes::from_counts(&table, hp.min_df, hp.nb_smoothing);
        for i in (0..rows.len()).filter(|&i| folds[i] == k) {
            raws[i] = unscaled(&nb, &nb.ids(&docs[i].terms), &lexicon[i], hp.domain_gating);
        }
        progress(Progress::Advance(1));
    }
    let table = CountTable::build(docs.iter(), hp.min_df);
    let nb = NaiveBayes::from_counts(&table, hp.min_df, hp.nb_smoothing);
    progress(Progress::Advance(1));

    let n = rows.len() as f64;
    let width = standardised_len(hp.domain_gating);
    let mut mean = vec![0.0; width];
    let mut scale = vec![1.0; width];
    for k in 0..width {
        let m = raws.iter().map(|r| r[k]).sum::<f64>() / n;
        let var = raws.iter().map(|r| (r[k] - m).powi(2)).sum::<f64>() / n;
        mean[k] = m;
        if var > 1e-12 {
            scale[k] = var.sqrt();
        }
    }
    let featurizer = Featurizer {
        bigrams: hp.bigrams,
        domain_gating: hp.domain_gating,
        nb,
        mean,
        scale,
        vader,
    };
    // Column-major: linfa's gradient computes Xᵀr, a run of contiguous dot
    // products in this layout and a cache-hostile strided walk in row-major.
    let x = featurizer.matrix(&raws, true);
    let labels: Vec<bool> = docs.iter().map(|d| d.positive).collect();
    let (logistic, report) =
        fit_logistic(&x, &labels, hp, &format!("{stage_prefix}fit"), progress)?;
    Ok((
        TrainedSentiment {
            version: version.to_owned(),
            hyper_parameters: hp.clone(),
            table,
            featurizer,
            logistic,
        },
        report,
    ))
}
