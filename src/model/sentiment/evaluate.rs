//! Evaluation on the test rows: AUC, accuracy and calibration per set and
//! overall, against the VADER reference.

use serde::{Deserialize, Serialize};

use super::data::Example;
use super::{SentimentError, TrainedSentiment, SET_NAMES, TARGET_OVERALL_AUC};
use crate::model::metrics::{self, CalibrationBin};

/// AUCs of the model and of VADER on one group of test rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetMetrics {
    pub set: String,
    /// Test rows with a non-zero mean.
    pub rows: usize,
    pub positives: usize,
    pub model_auc: f64,
    pub vader_auc: f64,
    pub model_log_loss: f64,
}

/// The evaluation of a model on the test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The four sets, then `all`.
    pub sets: Vec<SetMetrics>,
    /// Reliability of `p` over all test rows, 10 bins.
    pub calibration: Vec<CalibrationBin>,
}

impl Evaluation {
    pub fn overall(&self) -> &SetMetrics {
        self.sets.last().expect("evaluate always adds `all`")
    }

    /// The acceptance targets that are not met (empty = all met).
    pub fn unmet_targets(&self) -> Vec<String> {
        let mut unmet = Vec::new();
        let all = self.overall();
        if all.model_auc < TARGET_OVERALL_AUC {
            unmet.push(format!(
                "overall AUC {:.4} < {TARGET_OVERALL_AUC}",
                all.model_auc
            ));
        }
        for s in &self.sets {
            if s.model_auc < s.vader_auc {
                unmet.push(format!(
                    "{}: AUC {:.4} < VADER's {:.4}",
                    s.set, s.model_auc, s.vader_auc
                ));
            }
        }
        unmet
    }

    /// Side-by-side table of model and VADER AUCs.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<8} {:>6} {:>6} {:>10} {:>10} {:>8} {:>9}\n",
            "set", "rows", "pos", "model AUC", "VADER AUC", "delta", "log loss"
        );
        for s in &self.sets {
            out.push_str(&format!(
                "{:<8} {:>6} {:>6} {:>10.4} {:>10.4} {:>+8.4} {:>9.4}\n",
                s.set,
                s.rows,
                s.positives,
                s.model_auc,
                s.vader_auc,
                s.model_auc - s.vader_auc,
                s.model_log_loss
            ));
        }
        out
    }
}

/// Evaluates `model` on the test rows of `corpus`; `vader_compound` is
/// VADER's compound score for every corpus row (see
/// [`load_vader_reference`](super::load_vader_reference)).
pub fn evaluate(
    model: &TrainedSentiment,
    corpus: &[Example],
    vader_compound: &[f64],
) -> Result<Evaluation, SentimentError> {
    if vader_compound.len() != corpus.len() {
        return Err(SentimentError::Training(format!(
            "{} VADER scores for {} rows",
            vader_compound.len(),
            corpus.len()
        )));
    }
    let (rows, vader): (Vec<&Example>, Vec<f64>) = corpus
        .iter()
        .zip(vader_compound)
        .filter(|(e, _)| e.is_test() && e.label().is_some())
        .unzip();
    evaluate_rows(model, &rows, &vader)
}

/// Model and VADER (`vader_compound[i]` for `rows[i]`) AUCs on `rows`, per
/// set and all together; rows without a sign are skipped.
pub fn evaluate_rows(
    model: &TrainedSentiment,
    rows: &[&Example],
    vader_compound: &[f64],
) -> Result<Evaluation, SentimentError> {
    let (rows, vader): (Vec<&Example>, Vec<f64>) = rows
        .iter()
        .zip(vader_compound)
        .filter(|(e, _)| e.label().is_some())
        .map(|(e, v)| (*e, *v))
        .unzip();
    let texts: Vec<&str> = rows.iter().map(|e| e.text.as_str()).collect();
    let p = model.probabilities(&texts)?;
    let labels: Vec<bool> = rows.iter().map(|e| e.label() == Some(true)).collect();

    let group = |name: &str, members: &[usize]| -> Result<SetMetrics, SentimentError> {
        let pick = |xs: &[f64]| members.iter().map(|&k| xs[k]).collect::<Vec<f64>>();
        let l: Vec<bool> = members.iter().map(|&k| labels[k]).collect();
        let pm = pick(&p);
        Ok(SetMetrics {
            set: name.to_owned(),
            rows: members.len(),
            positives: l.iter().filter(|&&y| y).count(),
            model_auc: metrics::roc_auc(&pm, &l)?,
            vader_auc: metrics::roc_auc(&pick(&vader), &l)?,
            model_log_loss: metrics::log_loss(&pm, &l)?,
        })
    };
    let mut sets = Vec::new();
    for (s, name) in SET_NAMES.iter().enumerate() {
        let members: Vec<usize> = (0..rows.len()).filter(|&k| rows[k].set == s).collect();
        sets.push(group(name, &members)?);
    }
    let everyone: Vec<usize> = (0..rows.len()).collect();
    sets.push(group("all", &everyone)?);
    Ok(Evaluation {
        sets,
        calibration: metrics::calibration(&p, &labels, 10)?,
    })
}
