//! Shadow models: a second set of models that decides every interaction
//! beside the active one, without ever changing what the client receives.
//!
//! A data scientist attaches a model folder as shadow; the shadow set is the
//! active models with that one model in place of its task's model (as an
//! activation would make it), fixed at attachment. For each decision the
//! service plans a second time with the shadow set and the same inputs
//! (window snapshot, draws, policy) and logs the shadow's choice and its
//! exact probabilities beside the decision ([`ShadowChoice`]).
//!
//! [`evaluate`] reads that log back: how often the shadow agreed with what the
//! client received, and what the shadow *would have earned*, estimated
//! off-policy from the rewards the active policy's decisions got (SNIPS: self-normalised
//! inverse propensity scoring, as Open Bandit Pipeline's `SNIPW`). It is pure:
//! the caller reads the log.

use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{load_version, ModelError};
use crate::domain::decide::Plan;
use crate::domain::decision::{Delivery, Gesture};
use crate::service::Models;
use crate::sim::ope::effective_sample_size;
use crate::store::{ActionProbability, LoggedDecision, ShadowChoice};

/// An attached shadow.
#[derive(Clone)]
pub struct Shadow {
    /// The model folder that was attached.
    pub version: String,
    /// The models the shadow decides with.
    pub models: Models,
    pub attached_at: OffsetDateTime,
}

impl Shadow {
    /// The `model_version` the shadow's choices are logged under.
    pub fn model_version(&self) -> String {
        self.models.version()
    }

    /// What the shadow chose in its plan, as logged beside the decision.
    /// The primary choice: the shadow does not go through caps or budget.
    pub fn choice(&self, plan: &Plan) -> ShadowChoice {
        let c = &plan.primary;
        ShadowChoice {
            model_version: self.model_version(),
            action: c.action.clone(),
            gesture: c.gesture.map(|(kind, value)| Gesture {
                kind,
                value,
                currency: plan.currency.clone(),
                delivery: Delivery::Private,
            }),
            propensity: c.propensity,
            probabilities: c
                .probabilities
                .iter()
                .map(|(action, probability)| ActionProbability {
                    action: action.clone(),
                    probability: *probability,
                })
                .collect(),
        }
    }
}

/// Loads model `version` from `dir` as a shadow of the `active` models.
/// Errors as activation's (unknown version, corrupt artefact, other schema).
pub fn load(
    dir: &Path,
    version: &str,
    active: &Models,
    at: OffsetDateTime,
) -> Result<Shadow, ModelError> {
    let (card, loaded) = load_version(dir, version)?;
    Ok(Shadow {
        version: card.version,
        models: loaded.replace_in(active),
        attached_at: at,
    })
}

/// The off-policy value estimate of a shadow.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ShadowValue {
    /// Always `snips`.
    pub estimator: &'static str,
    /// Σ wᵢ·rᵢ / Σ wᵢ with wᵢ = the shadow's probability of the logged action
    /// ÷ its logged propensity; null without feedback, or when the shadow
    /// would never take any logged action (Σ w = 0).
    pub estimate: Option<f64>,
    /// Shadow-scored decisions that have feedback.
    pub records_with_feedback: usize,
    /// Kish's effective sample size of the weights: how many records the
    /// estimate is really worth (0 without feedback).
    pub effective_sample_size: f64,
    /// The mean reward the decisions clients received got, on the same records.
    pub active_mean_reward: Option<f64>,
}

/// How a shadow compares with the active models on the decision log.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ShadowEvaluation {
    /// Logged decisions the shadow scored (since it was attached, within the
    /// part of the log the store serves).
    pub decisions_scored: usize,
    /// Share of those where the shadow's action and gesture equal what the
    /// client received; null before the first one.
    pub agreement_rate: Option<f64>,
    pub value: ShadowValue,
}

/// Evaluates the shadow logged as `model_version` on `log` (records of other
/// shadows, or without one, are ignored).
pub fn evaluate(log: &[LoggedDecision], model_version: &str) -> ShadowEvaluation {
    let scored: Vec<(&LoggedDecision, &ShadowChoice)> = log
        .iter()
        .filter_map(|r| Some((r, r.shadow.as_ref()?)))
        .filter(|(_, s)| s.model_version == model_version)
        .collect();
    let gesture = |g: &Option<Gesture>| g.as_ref().map(|g| (g.kind, g.value));
    let agreed = scored
        .iter()
        .filter(|(r, s)| {
            s.action == r.decision.action && gesture(&s.gesture) == gesture(&r.decision.gesture)
        })
        .count();
    let mut weights = Vec::new();
    let mut rewards = Vec::new();
    for (r, s) in &scored {
        let (Some(f), p) = (&r.feedback, r.decision.propensity) else {
            continue;
        };
        // A logged propensity of 0 cannot happen (the action was taken);
        // skip rather than divide by it if a store ever returns one.
        if !(p > 0.0 && f.reward.is_finite()) {
            continue;
        }
        let shadow_p = s
            .probabilities
            .iter()
            .find(|a| a.action == r.decision.action)
            .map_or(0.0, |a| a.probability);
        weights.push(shadow_p / p);
        rewards.push(f.reward);
    }
    let n = rewards.len();
    let sum_w: f64 = weights.iter().sum();
    let estimate = (sum_w > 0.0).then(|| {
        weights
            .iter()
            .zip(&rewards)
            .map(|(w, r)| w * r)
            .sum::<f64>()
            / sum_w
    });
    ShadowEvaluation {
        decisions_scored: scored.len(),
        agreement_rate: (!scored.is_empty()).then(|| agreed as f64 / scored.len() as f64),
        value: ShadowValue {
            estimator: "snips",
            estimate,
            records_with_feedback: n,
            effective_sample_size: effective_sample_size(&weights),
            active_mean_reward: (n > 0).then(|| rewards.iter().sum::<f64>() / n as f64),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::decision::{Decision, Reply, ReplyChannel};
    use crate::domain::feedback::Feedback;
    use crate::domain::interaction::InteractionInput;
    use crate::domain::policy::GestureKind;
    use crate::domain::scoring::Scores;
    use time::macros::datetime;
    use uuid::Uuid;

    fn record(
        action: &str,
        propensity: f64,
        shadow: Option<(&str, Vec<(&str, f64)>)>,
        reward: Option<f64>,
    ) -> LoggedDecision {
        let input: InteractionInput = serde_json::from_value(serde_json::json!({
            "interaction_id": "i", "customer": {"id": "c", "tenure_days": 1, "lifetime_value": 1.0},
            "channel": "chat", "public": false, "audience": 0, "kind": "complaint", "text": "x"
        }))
        .unwrap();
        let decision = Decision {
            decision_id: Uuid::new_v4(),
            interaction_id: "i".into(),
            action: action.into(),
            response: Reply {
                channel: ReplyChannel::Private,
                template: "t".into(),
                message: "m".into(),
            },
            gesture: None,
            scores: Scores {
                sentiment: 0.0,
                severity: 0.5,
                deservingness: 0.5,
            },
            propensity,
            explored: false,
            alternatives: vec![],
            constraints: vec![],
            explanation: String::new(),
            model_version: "active".into(),
            policy_version: 1,
            degraded: false,
            decided_at: datetime!(2026-11-20 12:00 UTC),
        };
        LoggedDecision {
            input,
            feedback: reward.map(|reward| Feedback {
                decision_id: decision.decision_id,
                reward,
                outcome: Default::default(),
                received_at: datetime!(2026-11-20 13:00 UTC),
            }),
            shadow: shadow.map(|(chosen, probabilities)| ShadowChoice {
                model_version: "shadow-1".into(),
                action: chosen.into(),
                gesture: None,
                propensity: probabilities
                    .iter()
                    .find(|(a, _)| *a == chosen)
                    .map_or(0.0, |x| x.1),
                probabilities: probabilities
                    .into_iter()
                    .map(|(a, p)| ActionProbability {
                        action: a.into(),
                        probability: p,
                    })
                    .collect(),
            }),
            decision,
        }
    }

    #[test]
    fn the_estimate_is_the_self_normalised_ips_of_the_shadow_probabilities() {
        let log = vec![
            // w = 0.9 / 0.8, r = 1
            record(
                "a",
                0.8,
                Some(("a", vec![("a", 0.9), ("b", 0.1)])),
                Some(1.0),
            ),
            // w = 0.1 / 0.2, r = 0
            record(
                "b",
                0.2,
                Some(("a", vec![("a", 0.9), ("b", 0.1)])),
                Some(0.0),
            ),
            // w = 0 / 1, r = 0.5
            record("c", 1.0, Some(("b", vec![("b", 1.0)])), Some(0.5)),
            // no feedback: agreement only
            record("b", 1.0, Some(("b", vec![("b", 1.0)])), None),
            // another shadow, and no shadow: ignored
            record("a", 1.0, None, Some(1.0)),
        ];
        let mut other = record("a", 1.0, Some(("a", vec![("a", 1.0)])), Some(0.0));
        other.shadow.as_mut().unwrap().model_version = "shadow-2".into();
        let mut log = log;
        log.push(other);
        let e = evaluate(&log, "shadow-1");
        assert_eq!(e.decisions_scored, 4);
        assert_eq!(e.agreement_rate, Some(0.5));
        let w = [0.9 / 0.8, 0.1 / 0.2, 0.0];
        let r = [1.0, 0.0, 0.5];
        let snips = (w[0] * r[0] + w[1] * r[1] + w[2] * r[2]) / (w[0] + w[1] + w[2]);
        assert_eq!(e.value.estimate, Some(snips));
        assert_eq!(e.value.records_with_feedback, 3);
        let ess = (w.iter().sum::<f64>()).powi(2) / w.iter().map(|x| x * x).sum::<f64>();
        assert!((e.value.effective_sample_size - ess).abs() < 1e-12);
        assert_eq!(e.value.active_mean_reward, Some(0.5));
    }

    #[test]
    fn without_feedback_the_estimate_is_null_not_nan() {
        let log = vec![record("a", 1.0, Some(("a", vec![("a", 1.0)])), None)];
        let e = evaluate(&log, "shadow-1");
        assert_eq!(e.decisions_scored, 1);
        assert_eq!(e.agreement_rate, Some(1.0));
        assert_eq!(e.value.estimate, None);
        assert_eq!(e.value.records_with_feedback, 0);
        assert_eq!(e.value.effective_sample_size, 0.0);
        assert_eq!(e.value.active_mean_reward, None);
        let empty = evaluate(&[], "shadow-1");
        assert_eq!(empty.agreement_rate, None);
        assert!(serde_json::to_string(&empty)
            .unwrap()
            .contains("\"estimate\":null"));
    }

    #[test]
    fn a_shadow_that_never_takes_a_logged_action_has_no_estimate() {
        let log = vec![record("a", 0.5, Some(("b", vec![("b", 1.0)])), Some(1.0))];
        let e = evaluate(&log, "shadow-1");
        assert_eq!(e.value.estimate, None);
        assert_eq!(e.value.records_with_feedback, 1);
        assert_eq!(e.value.active_mean_reward, Some(1.0));
        assert_eq!(e.agreement_rate, Some(0.0));
        // A gesture difference alone is a disagreement.
        let mut g = record("a", 1.0, Some(("a", vec![("a", 1.0)])), None);
        g.shadow.as_mut().unwrap().gesture = Some(Gesture {
            kind: GestureKind::Credit,
            value: 5.0,
            currency: "EUR".into(),
            delivery: Delivery::Private,
        });
        assert_eq!(evaluate(&[g], "shadow-1").agreement_rate, Some(0.0));
    }
}
