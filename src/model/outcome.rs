//! The trained outcome model: P(good outcome | context, action), a linfa
//! logistic regression over a fixed, named feature schema, fitted on logged
//! decisions with outcomes (simulated by default, see `fairtreat train
//! outcome`).
//!
//! # Features ([`FEATURES`], schema [`crate::model::SCHEMA`])
//!
//! Context: sentiment, severity, severity², loyalty, kind one-hot, public,
//! ln(1+audience)/10, ln(1+stake)/5. Action: intent one-hot, gesture kind
//! one-hot, the gesture's saturating effect `e = 1 − exp(−v / (0.4 ·
//! max(stake, 10)))` and `min(v / stake, 5)`. Interactions: severity ×
//! intent, a low-severity thank-you, a very-severe escalation, question ×
//! inform, public × answered, severity × e, loyalty × e, severity × loyalty
//! × e and severity × e × gesture kind. These are enough for a linear logit
//! to follow the service-recovery story (diminishing returns of a gesture,
//! apologies that help the let-down, …); no feature reads group attributes.
//!
//! # Safety
//!
//! [`TrainedOutcome::from_json`] validates the artefact (format, kind,
//! schema, the feature names, weight count, finiteness) and
//! [`TrainedOutcome::probabilities`] checks the shape before calling
//! linfa's `predict`, which would assert (panic) on a mismatch.

use linfa::prelude::*;
use linfa_logistic::{FittedLogisticRegression, LogisticRegression};
use ndarray::{Array1, Array2, ArrayBase, ArrayView1, Axis, Data, Ix2};
use serde::{Deserialize, Serialize};

use crate::domain::decide::{valued_candidates, Inputs};
use crate::domain::interaction::{Interaction, Kind};
use crate::domain::outcome::{OutcomeAction, OutcomeContext, OutcomeModel};
use crate::domain::policy::{GestureKind, Intent, Policy};
use crate::domain::sentiment::SentimentModel;
use crate::domain::window::WindowStats;
use crate::model::metrics::{self, CalibrationBin};
use crate::service::Models;
use crate::sim::logs::{context, LogRecord, DEFAULT_STAKE};
use crate::sim::world::TrueOutcome;

/// The card's and the artefact's `kind`.
pub const KIND: &str = "linfa_logistic_outcome";
/// Version of the `model.json` layout.
pub const FORMAT: u32 = 1;
/// The greedy policy check's target: value of acting greedily on the model
/// over acting greedily on the truth.
pub const TARGET_GREEDY_RATIO: f64 = 0.90;

/// The feature columns, in order.
pub const FEATURES: [&str; 41] = [
    "sentiment",
    "severity",
    "severity_sq",
    "loyalty",
    "kind_complaint",
    "kind_review",
    "kind_praise",
    "kind_question",
    "kind_mention",
    "public",
    "ln1p_audience_div10",
    "ln1p_stake_div5",
    "intent_ignore",
    "intent_thank",
    "intent_inform",
    "intent_apologise",
    "intent_escalate",
    "gesture_credit",
    "gesture_discount",
    "gesture_gift",
    "gesture_free_shipping",
    "gesture_replacement",
    "gesture_effect",
    "gesture_value_over_stake",
    "severity_x_ignore",
    "severity_x_thank",
    "severity_x_inform",
    "severity_x_apologise",
    "severity_x_escalate",
    "low_severity_x_thank",
    "severe_excess_x_escalate",
    "question_x_inform",
    "public_x_answered",
    "severity_x_effect",
    "loyalty_x_effect",
    "severity_x_loyalty_x_effect",
    "severity_x_effect_x_credit",
    "severity_x_effect_x_discount",
    "severity_x_effect_x_gift",
    "severity_x_effect_x_free_shipping",
    "severity_x_effect_x_replacement",
];

const INTENTS: [Intent; 5] = [
    Intent::Ignore,
    Intent::Thank,
    Intent::Inform,
    Intent::Apologise,
    Intent::Escalate,
];
const KINDS: [Kind; 5] = [
    Kind::Complaint,
    Kind::Review,
    Kind::Praise,
    Kind::Question,
    Kind::Mention,
];
const GESTURES: [GestureKind; 5] = [
    GestureKind::Credit,
    GestureKind::Discount,
    GestureKind::Gift,
    GestureKind::FreeShipping,
    GestureKind::Replacement,
];

fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// The feature row of one (context, action).
pub fn features(ctx: &OutcomeContext, action: &OutcomeAction) -> [f64; FEATURES.len()] {
    let sev = finite(ctx.severity).clamp(0.0, 1.0);
    let loy = finite(ctx.loyalty).clamp(0.0, 1.0);
    let stake = finite(ctx.stake).max(10.0);
    let (gkind, value) = match action.gesture {
        Some((k, v)) => (Some(k), finite(v).max(0.0)),
        None => (None, 0.0),
    };
    let effect = 1.0 - (-value / (0.4 * stake)).exp();
    let onehot = |b: bool| if b { 1.0 } else { 0.0 };
    let mut f = [0.0; FEATURES.len()];
    f[0] = finite(ctx.sentiment).clamp(-1.0, 1.0);
    f[1] = sev;
    f[2] = sev * sev;
    f[3] = loy;
    for (k, kind) in KINDS.iter().enumerate() {
        f[4 + k] = onehot(ctx.kind == *kind);
    }
    f[9] = onehot(ctx.public);
    f[10] = (ctx.audience as f64).ln_1p() / 10.0;
    f[11] = stake.ln_1p() / 5.0;
    for (k, intent) in INTENTS.iter().enumerate() {
        f[12 + k] = onehot(action.intent == *intent);
        f[24 + k] = sev * onehot(action.intent == *intent);
    }
    for (k, g) in GESTURES.iter().enumerate() {
        f[17 + k] = onehot(gkind == Some(*g));
        f[36 + k] = sev * effect * onehot(gkind == Some(*g));
    }
    f[22] = effect;
    f[23] = (value / stake).min(5.0);
    f[29] = onehot(sev < 0.3 && action.intent == Intent::Thank);
    f[30] = (sev - 0.75).max(0.0) * onehot(action.intent == Intent::Escalate);
    f[31] = onehot(ctx.kind == Kind::Question && action.intent == Intent::Inform);
    f[32] = onehot(ctx.public && action.intent != Intent::Ignore);
    f[33] = sev * effect;
    f[34] = loy * effect;
    f[35] = sev * loy * effect;
    f
}

/// One training or evaluation row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub ctx: OutcomeContext,
    pub action: OutcomeAction,
    /// Observed outcome in [0, 1]; good when ≥ 0.5.
    pub reward: f64,
    /// The simulator's true probability (simulated logs only).
    pub p_true: Option<f64>,
}

/// Turns logged records into rows, computing each context the way the
/// decision core does (the given models' sentiment; a missing order value
/// counts as [`DEFAULT_STAKE`]).
pub fn rows_from_logs(models: &Models, records: &[LogRecord]) -> Result<Vec<Row>, OutcomeError> {
    records
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let i = Interaction::try_from(r.interaction.clone())
                .map_err(|e| OutcomeError::Data(format!("record {}: {e}", k + 1)))?;
            if !(r.reward.is_finite() && (0.0..=1.0).contains(&r.reward)) {
                return Err(OutcomeError::Data(format!(
                    "record {}: reward {} is not in [0, 1]",
                    k + 1,
                    r.reward
                )));
            }
            Ok(Row {
                ctx: context(models, &i, DEFAULT_STAKE),
                action: OutcomeAction {
                    intent: r.intent,
                    gesture: r.gesture.map(|g| (g.kind, g.value)),
                },
                reward: r.reward,
                p_true: r.p_true,
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    #[error("invalid outcome artefact: {0}")]
    Artefact(String),
    #[error("invalid data: {0}")]
    Data(String),
    #[error("training failed: {0}")]
    Training(String),
    #[error("feature dimension mismatch: got {got} columns, the model has {want}")]
    Shape { got: usize, want: usize },
    #[error(transparent)]
    Metric(#[from] metrics::MetricError),
}

/// How the logistic regression is fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HyperParameters {
    /// L2 penalty (1/C in scikit-learn terms).
    pub alpha: f64,
    pub max_iterations: u64,
    pub gradient_tolerance: f64,
}

impl Default for HyperParameters {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            max_iterations: 300,
            gradient_tolerance: 1e-4,
        }
    }
}

/// The trained outcome model.
#[derive(Debug, Clone)]
pub struct TrainedOutcome {
    version: String,
    hyper_parameters: HyperParameters,
    logistic: FittedLogisticRegression<f64, bool>,
}

/// `model.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Artefact {
    format: u32,
    kind: String,
    schema: u32,
    version: String,
    hyper_parameters: HyperParameters,
    features: Vec<String>,
    logistic: FittedLogisticRegression<f64, bool>,
}

/// Fits the model on `rows` (labels: reward ≥ 0.5).
pub fn train(
    rows: &[Row],
    version: &str,
    hp: &HyperParameters,
) -> Result<TrainedOutcome, OutcomeError> {
    if rows.is_empty() {
        return Err(OutcomeError::Training("no rows".into()));
    }
    let x = matrix(rows.iter().map(|r| (&r.ctx, &r.action)));
    let y: Array1<bool> = rows.iter().map(|r| r.reward >= 0.5).collect();
    if y.iter().all(|&b| b) || y.iter().all(|&b| !b) {
        return Err(OutcomeError::Training(
            "every outcome is the same: nothing to learn".into(),
        ));
    }
    let dataset = DatasetBase::new(x, y);
    let logistic = LogisticRegression::default()
        .alpha(hp.alpha)
        .max_iterations(hp.max_iterations)
        .gradient_tolerance(hp.gradient_tolerance)
        .fit(&dataset)
        .map_err(|e| OutcomeError::Training(e.to_string()))?;
    Ok(TrainedOutcome {
        version: version.to_owned(),
        hyper_parameters: hp.clone(),
        logistic,
    })
}

fn matrix<'a>(rows: impl Iterator<Item = (&'a OutcomeContext, &'a OutcomeAction)>) -> Array2<f64> {
    let data: Vec<f64> = rows.flat_map(|(c, a)| features(c, a)).collect();
    let n = data.len() / FEATURES.len();
    Array2::from_shape_vec((n, FEATURES.len()), data).expect("rows of FEATURES.len() columns")
}

impl TrainedOutcome {
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn hyper_parameters(&self) -> &HyperParameters {
        &self.hyper_parameters
    }

    /// The weights by feature name, then the intercept.
    pub fn weights(&self) -> Vec<(String, f64)> {
        let mut w: Vec<(String, f64)> = FEATURES
            .iter()
            .zip(self.logistic.params().iter())
            .map(|(n, w)| (n.to_string(), *w))
            .collect();
        w.push(("intercept".into(), self.logistic.intercept()));
        w
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&Artefact {
            format: FORMAT,
            kind: KIND.into(),
            schema: crate::model::SCHEMA,
            version: self.version.clone(),
            hyper_parameters: self.hyper_parameters.clone(),
            features: FEATURES.iter().map(|s| s.to_string()).collect(),
            logistic: self.logistic.clone(),
        })
        .expect("the artefact serialises")
    }

    pub fn from_json(json: &str) -> Result<Self, OutcomeError> {
        let bad = |m: String| Err(OutcomeError::Artefact(m));
        let de = &mut serde_json::Deserializer::from_str(json);
        let a: Artefact = serde_path_to_error::deserialize(de)
            .map_err(|e| OutcomeError::Artefact(e.to_string()))?;
        if let Err(m) = crate::model::check_header((a.format, FORMAT), (&a.kind, KIND), a.schema) {
            return bad(m);
        }
        if a.features.len() != FEATURES.len()
            || a.features.iter().zip(FEATURES).any(|(a, b)| a != b)
        {
            return bad(format!(
                "feature dimension mismatch: its {} features differ from this build's {}",
                a.features.len(),
                FEATURES.len()
            ));
        }
        let weights = a.logistic.params().len();
        if weights != FEATURES.len() {
            return bad(format!(
                "feature dimension mismatch: {weights} weights for {} features",
                FEATURES.len()
            ));
        }
        if !a.logistic.params().iter().all(|w| w.is_finite()) || !a.logistic.intercept().is_finite()
        {
            return bad("a weight is not finite".into());
        }
        Ok(Self {
            version: a.version,
            hyper_parameters: a.hyper_parameters,
            logistic: a.logistic,
        })
    }

    /// P(good) of each row of a feature matrix; refuses a wrong shape
    /// instead of letting linfa panic.
    pub fn predict<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<Array1<f64>, OutcomeError> {
        super::true_class_probabilities(&self.logistic, x)
            .map_err(|(got, want)| OutcomeError::Shape { got, want })
    }

    /// P(good) of each row.
    pub fn probabilities(&self, rows: &[Row]) -> Result<Vec<f64>, OutcomeError> {
        let x = matrix(rows.iter().map(|r| (&r.ctx, &r.action)));
        Ok(self.predict(&x)?.to_vec())
    }
}

impl OutcomeModel for TrainedOutcome {
    fn version(&self) -> &str {
        &self.version
    }

    fn p_good(&self, ctx: &OutcomeContext, action: &OutcomeAction) -> f64 {
        // A view of the one row on the stack: this runs for every candidate
        // of every decision, several times, so no matrix is allocated.
        let row = features(ctx, action);
        let x = ArrayView1::from(&row).insert_axis(Axis(0));
        match self.predict(&x) {
            Ok(p) if p[0].is_finite() => p[0].clamp(1e-6, 1.0 - 1e-6),
            // Unreachable for a validated artefact: uninformative, not a panic.
            _ => 0.5,
        }
    }
}

// ------------------------------------------------------------ evaluation ----

/// The greedy policy check: the true value of acting greedily on a model
/// against acting greedily on the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GreedyCheck {
    pub interactions: usize,
    /// Mean true P(good) of the actions chosen greedily on the model.
    pub model_value: f64,
    /// Mean true P(good) of the actions chosen greedily on the truth.
    pub truth_value: f64,
    pub ratio: f64,
    /// Share of interactions where both choose the same action.
    pub agreement: f64,
}

/// For each interaction, the policy's eligible candidates valued by
/// `model` and by [`TrueOutcome`] (empty window, real view); the argmax of
/// utility of each; the true P(good) of both choices.
pub fn greedy_check(
    policy: &Policy,
    sentiment: &dyn SentimentModel,
    model: &dyn OutcomeModel,
    interactions: &[Interaction],
) -> GreedyCheck {
    let window = WindowStats::default();
    let (mut model_value, mut truth_value, mut agree, mut n) = (0.0, 0.0, 0usize, 0usize);
    for i in interactions {
        let inputs = |outcome: &'_ dyn OutcomeModel| {
            let inp = Inputs {
                interaction: i,
                policy,
                sentiment,
                outcome,
                window: &window,
                draws: (0.5, 0.5),
            };
            valued_candidates(&inp, i.public, i.audience)
                .1
                .into_iter()
                .map(|c| (c.spec.id.clone(), c.gesture, c.p_good))
                .collect::<Vec<_>>()
        };
        let by_model = inputs(model);
        let by_truth = inputs(&TrueOutcome);
        let (Some(m), Some(t)) = (by_model.first(), by_truth.first()) else {
            continue;
        };
        // The true value of the model's choice: the same candidate in the
        // truth's valuation.
        let Some(mt) = by_truth.iter().find(|c| c.0 == m.0 && c.1 == m.1) else {
            continue;
        };
        n += 1;
        model_value += mt.2;
        truth_value += t.2;
        if m.0 == t.0 && m.1 == t.1 {
            agree += 1;
        }
    }
    let d = n.max(1) as f64;
    GreedyCheck {
        interactions: n,
        model_value: model_value / d,
        truth_value: truth_value / d,
        ratio: if truth_value > 0.0 {
            model_value / truth_value
        } else {
            0.0
        },
        agreement: agree as f64 / d,
    }
}

/// Predictive metrics of a model on held-out rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rows: usize,
    pub good_rate: f64,
    /// Against the observed rewards.
    pub log_loss: f64,
    pub roc_auc: f64,
    /// Against the simulator's true probabilities (when logged): the
    /// cross-entropy with p_true as soft labels, the same for p_true itself
    /// (its floor), and the mean absolute error.
    pub soft_log_loss: Option<f64>,
    pub soft_log_loss_floor: Option<f64>,
    pub mae_vs_p_true: Option<f64>,
    /// ROC AUC of p_true against the observed rewards (the best possible).
    pub roc_auc_of_p_true: Option<f64>,
    pub calibration: Vec<CalibrationBin>,
}

/// Cross-entropy of `p` against soft labels `q`.
pub fn soft_log_loss(p: &[f64], q: &[f64]) -> f64 {
    let eps = 1e-15;
    let s: f64 = p
        .iter()
        .zip(q)
        .map(|(p, q)| {
            let p = p.clamp(eps, 1.0 - eps);
            -(q * p.ln() + (1.0 - q) * (1.0 - p).ln())
        })
        .sum();
    s / p.len().max(1) as f64
}

/// Evaluates `model` on `rows`.
pub fn evaluate(model: &dyn OutcomeModel, rows: &[Row]) -> Result<Evaluation, OutcomeError> {
    let p: Vec<f64> = rows
        .iter()
        .map(|r| model.p_good(&r.ctx, &r.action))
        .collect();
    let y: Vec<bool> = rows.iter().map(|r| r.reward >= 0.5).collect();
    let truth: Option<Vec<f64>> = rows.iter().map(|r| r.p_true).collect();
    Ok(Evaluation {
        rows: rows.len(),
        good_rate: y.iter().filter(|&&b| b).count() as f64 / rows.len().max(1) as f64,
        log_loss: metrics::log_loss(&p, &y)?,
        roc_auc: metrics::roc_auc(&p, &y)?,
        soft_log_loss: truth.as_ref().map(|q| soft_log_loss(&p, q)),
        soft_log_loss_floor: truth.as_ref().map(|q| soft_log_loss(q, q)),
        mae_vs_p_true: truth.as_ref().map(|q| {
            p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>() / p.len().max(1) as f64
        }),
        roc_auc_of_p_true: match &truth {
            Some(q) => Some(metrics::roc_auc(q, &y)?),
            None => None,
        },
        calibration: metrics::calibration(&p, &y, 10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::artefact_tests::{refuses, COMMON};

    fn ctx(sev: f64, loyalty: f64, stake: f64) -> OutcomeContext {
        OutcomeContext {
            sentiment: 0.5 - sev,
            severity: sev,
            loyalty,
            kind: Kind::Complaint,
            public: sev > 0.5,
            audience: 200,
            stake,
        }
    }

    /// Rows with labels drawn from the truth on a grid (deterministic).
    fn rows() -> Vec<Row> {
        let mut out = Vec::new();
        let mut k = 0u64;
        for s in 0..10 {
            for l in 0..4 {
                for (intent, gesture) in [
                    (Intent::Apologise, None),
                    (Intent::Thank, None),
                    (Intent::Ignore, None),
                    (Intent::Apologise, Some((GestureKind::Credit, 30.0))),
                    (Intent::Escalate, Some((GestureKind::Discount, 10.0))),
                ] {
                    let c = ctx(s as f64 / 9.0, l as f64 / 3.0, 60.0);
                    let a = OutcomeAction { intent, gesture };
                    let p = TrueOutcome.p_good(&c, &a);
                    for r in 0..4 {
                        k += 1;
                        // A low-discrepancy draw in [0, 1).
                        let u = ((k as f64 * 0.618_033_988_75) + r as f64 * 0.25).fract();
                        out.push(Row {
                            ctx: c,
                            action: a,
                            reward: if u < p { 1.0 } else { 0.0 },
                            p_true: Some(p),
                        });
                    }
                }
            }
        }
        out
    }

    fn model() -> TrainedOutcome {
        train(&rows(), "outcome-test-1", &HyperParameters::default()).unwrap()
    }

    #[test]
    fn the_artefact_round_trips_with_identical_predictions() {
        let m = model();
        let json = m.to_json();
        assert_eq!(json, model().to_json(), "training is deterministic");
        let loaded = TrainedOutcome::from_json(&json).unwrap();
        assert_eq!(loaded.to_json(), json);
        assert_eq!(OutcomeModel::version(&loaded), "outcome-test-1");
        for r in rows().iter().step_by(7) {
            assert_eq!(
                m.p_good(&r.ctx, &r.action).to_bits(),
                loaded.p_good(&r.ctx, &r.action).to_bits()
            );
        }
        // It learnt the story: an apology beats ignoring an unhappy customer.
        let c = ctx(0.8, 0.5, 60.0);
        let p = |intent| {
            loaded.p_good(
                &c,
                &OutcomeAction {
                    intent,
                    gesture: None,
                },
            )
        };
        assert!(p(Intent::Apologise) > p(Intent::Ignore));
    }

    #[test]
    fn corrupt_or_mismatched_artefacts_are_refused_and_shapes_checked() {
        let m = model();
        let json = m.to_json();
        assert!(TrainedOutcome::from_json(&json[..json.len() / 2]).is_err());
        assert!(TrainedOutcome::from_json("").is_err());
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        refuses(&value, &COMMON, TrainedOutcome::from_json);
        refuses(
            &value,
            &[("kind", |v| v["kind"] = serde_json::json!("linfa_logistic"))],
            TrainedOutcome::from_json,
        );

        let x = Array2::zeros((2, FEATURES.len() + 1));
        assert!(matches!(
            m.predict(&x),
            Err(OutcomeError::Shape { got, want }) if got == want + 1
        ));
    }

    #[test]
    fn evaluation_metrics_on_a_tiny_hand_case() {
        assert!((soft_log_loss(&[0.5, 0.5], &[1.0, 0.0]) - 2f64.ln()).abs() < 1e-12);
        assert!(soft_log_loss(&[0.9], &[0.9]) < soft_log_loss(&[0.5], &[0.9]));
        let ev = evaluate(&model(), &rows()).unwrap();
        assert_eq!(ev.rows, rows().len());
        assert!(ev.roc_auc > 0.7, "{ev:?}");
        assert!(ev.soft_log_loss.unwrap() >= ev.soft_log_loss_floor.unwrap() - 1e-9);
        assert!(ev.mae_vs_p_true.unwrap() < 0.15, "{ev:?}");
        // The truth evaluates against itself with zero error.
        let truth = evaluate(&TrueOutcome, &rows()).unwrap();
        assert!(truth.mae_vs_p_true.unwrap() < 1e-12);
    }
}
