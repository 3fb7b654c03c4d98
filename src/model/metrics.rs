//! Evaluation metrics for scored binary outcomes: ROC AUC, log loss and a
//! calibration table.
//!
//! They follow scikit-learn's definitions so numbers can be compared with
//! the Python ecosystem: [`roc_auc`] equals `roc_auc_score` (tied scores
//! count one half, i.e. the Mann–Whitney U statistic with average ranks) and
//! [`log_loss`] equals `log_loss` with probabilities clipped away from 0 and 1.

use serde::{Deserialize, Serialize};

/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    #[error("{scores} scores but {labels} labels")]
    LengthMismatch { scores: usize, labels: usize },
    #[error("the labels hold only one class ({positives} positive of {total})")]
    OneClass { positives: usize, total: usize },
    #[error("score {index} is not a finite number")]
    NonFinite { index: usize },
    #[error("a calibration table needs at least one bin")]
    NoBins,
}

fn check(scores: &[f64], labels: &[bool]) -> Result<(), MetricError> {
    if scores.len() != labels.len() {
        return Err(MetricError::LengthMismatch {
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    match scores.iter().position(|s| !s.is_finite()) {
        Some(index) => Err(MetricError::NonFinite { index }),
        None => Ok(()),
    }
}

/// Area under the ROC curve of `scores` (higher = more likely positive)
/// against `labels`.
///
/// Computed as the Mann–Whitney U statistic: rank all scores (tied scores
/// share their average rank), sum the ranks of the positives, and
/// normalise. This is the probability that a random positive outscores a
/// random negative, ties counting one half, and equals scikit-learn's
/// `roc_auc_score`. Needs both classes and finite scores.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Result<f64, MetricError> {
    check(scores, labels)?;
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(MetricError::OneClass {
            positives,
            total: labels.len(),
        });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        // -0.0 and 0.0 are one score, as in every other comparison.
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start+1 ..= end share their mean.
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| labels[i]).count();
        rank_sum += average_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    let u = rank_sum - p * (p + 1.0) / 2.0;
    Ok(u / (p * n))
}

/// Probabilities are clipped to [EPS, 1 − EPS] before taking logs, so a
/// confident mistake costs about 34.5 nats instead of infinity.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Mean negative log-likelihood of `labels` under predicted probabilities
/// `probabilities` (of the positive class), in nats.
pub fn log_loss(probabilities: &[f64], labels: &[bool]) -> Result<f64, MetricError> {
    check(probabilities, labels)?;
    if labels.is_empty() {
        return Err(MetricError::OneClass {
            positives: 0,
            total: 0,
        });
    }
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            if y {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    Ok(total / labels.len() as f64)
}

/// One bin of a calibration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// The bin holds predictions in [lower, upper) (the last bin includes 1).
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Mean predicted probability in the bin; `None` when the bin is empty.
    pub mean_predicted: Option<f64>,
    /// Share of positives in the bin; `None` when the bin is empty.
    pub observed_rate: Option<f64>,
}

/// Reliability table: `bins` equal-width bins over [0, 1] of the predicted
/// probability, each with its count, mean prediction and observed positive
/// rate. A calibrated model has `mean_predicted ≈ observed_rate` in every
/// well-populated bin. Probabilities outside [0, 1] land in the end bins.
pub fn calibration(
    probabilities: &[f64],
    labels: &[bool],
    bins: usize,
) -> Result<Vec<CalibrationBin>, MetricError> {
    check(probabilities, labels)?;
    if bins == 0 {
        return Err(MetricError::NoBins);
    }
    let mut count = vec![0usize; bins];
    let mut predicted = vec![0.0f64; bins];
    let mut positives = vec![0usize; bins];
    for (&p, &y) in probabilities.iter().zip(labels) {
        // Truncation is the binning; the clamp keeps p = 1 in the last bin.
        let b = ((p * bins as f64).floor().max(0.0) as usize).min(bins - 1);
        count[b] += 1;
        predicted[b] += p;
        positives[b] += usize::from(y);
    }
    Ok((0..bins)
        .map(|b| CalibrationBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            count: count[b],
            mean_predicted: (count[b] > 0).then(|| predicted[b] / count[b] as f64),
            observed_rate: (count[b] > 0).then(|| positives[b] as f64 / count[b] as f64),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auc_of_the_scikit_learn_doc_example() {
        // roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!(close(auc, 0.75), "{auc}");
    }

    #[test]
    fn auc_counts_ties_as_one_half() {
        // Pairs (pos, neg): (0.5, 0.5) tie = 1/2, (0.5, 0.2) win, (0.9, *) wins
        // -> (0.5 + 1 + 1 + 1) / 4.
        let auc = roc_auc(&[0.5, 0.9, 0.5, 0.2], &[true, true, false, false]).unwrap();
        assert!(close(auc, 0.875), "{auc}");
        // All scores equal: no information.
        let auc = roc_auc(&[1.0; 5], &[true, false, true, false, false]).unwrap();
        assert!(close(auc, 0.5), "{auc}");
        // -0.0 and 0.0 are the same score.
        let auc = roc_auc(&[-0.0, 0.0], &[true, false]).unwrap();
        assert!(close(auc, 0.5), "{auc}");
    }

    #[test]
    fn auc_is_one_for_perfect_and_zero_for_inverted_rankings() {
        let labels = [false, false, true, true, true];
        let scores = [-3.0, 0.1, 0.2, 7.0, 9.0];
        assert!(close(roc_auc(&scores, &labels).unwrap(), 1.0));
        let inverted: Vec<f64> = scores.iter().map(|s| -s).collect();
        assert!(close(roc_auc(&inverted, &labels).unwrap(), 0.0));
        // Only the order matters.
        let squashed: Vec<f64> = scores.iter().map(|s: &f64| s.tanh()).collect();
        assert!(close(roc_auc(&squashed, &labels).unwrap(), 1.0));
    }

    #[test]
    fn auc_refuses_degenerate_input() {
        assert!(matches!(
            roc_auc(&[0.1, 0.2], &[true, true]),
            Err(MetricError::OneClass { positives: 2, .. })
        ));
        assert!(matches!(
            roc_auc(&[0.1], &[true, false]),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert!(matches!(
            roc_auc(&[0.1, f64::NAN], &[true, false]),
            Err(MetricError::NonFinite { index: 1 })
        ));
        assert!(roc_auc(&[], &[]).is_err());
    }

    #[test]
    fn log_loss_by_hand() {
        // -(ln 0.8 + ln(1 - 0.3)) / 2
        let got = log_loss(&[0.8, 0.3], &[true, false]).unwrap();
        let want = -(0.8f64.ln() + 0.7f64.ln()) / 2.0;
        assert!(close(got, want), "{got} vs {want}");
        // A certain mistake is clipped, not infinite.
        let got = log_loss(&[0.0], &[true]).unwrap();
        assert!(close(got, -(1e-15f64).ln()), "{got}");
        assert!(log_loss(&[], &[]).is_err());
    }

    #[test]
    fn calibration_table_by_hand() {
        let p = [0.05, 0.15, 0.95, 1.0, 0.9];
        let y = [false, true, true, true, false];
        let t = calibration(&p, &y, 2).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].count, t[1].count), (2, 3));
        assert!(close(t[0].mean_predicted.unwrap(), 0.1));
        assert!(close(t[0].observed_rate.unwrap(), 0.5));
        assert!(close(
            t[1].mean_predicted.unwrap(),
            (0.95 + 1.0 + 0.9) / 3.0
        ));
        assert!(close(t[1].observed_rate.unwrap(), 2.0 / 3.0));
        let t = calibration(&[0.1], &[true], 10).unwrap();
        assert_eq!(t[5].count, 0);
        assert_eq!(t[5].mean_predicted, None);
        assert!(calibration(&p, &y, 0).is_err());
    }
}
