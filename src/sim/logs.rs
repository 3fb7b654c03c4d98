//! Logged decisions with outcomes: the format `fairtreat simulate --out`
//! writes and `fairtreat train outcome --logs` / `fairtreat evaluate policy`
//! read.
//!
//! One JSON object per line (JSONL):
//!
//! ```json
//! {"interaction": {…the request…}, "decision_id": "…", "action": "apologise_private_credit",
//!  "intent": "apologise", "gesture": {"kind": "credit", "value": 18.0} | null,
//!  "propensity": 0.95, "explored": false, "reward": 1.0,
//!  "p_true": 0.71, "policy_version": 1, "model_version": "…"}
//! ```
//!
//! `reward` is the outcome in [0, 1] (1: the customer stayed and the
//! follow-up was positive). `p_true` exists only in simulated logs: the
//! simulator's true probability of a good outcome, for evaluating models and
//! estimators against the truth.
//!
//! `fairtreat export` writes the same records from the service's decision
//! log joined with `POST /v1/feedback`: there `reward` is the reported
//! reward, and two optional fields may follow: `outcome` (the reported
//! details: replied, sentiment_after, repurchased, churned) and `shadow`
//! (what a shadow model would have chosen, with its action probabilities).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::world::TrueOutcome;
use crate::domain::feedback::OutcomeDetails;
use crate::domain::interaction::{Interaction, InteractionInput};
use crate::domain::outcome::{OutcomeAction, OutcomeContext, OutcomeModel};
use crate::domain::policy::{GestureKind, Intent, Policy};
use crate::domain::scoring::{self, LoyaltyInputs};
use crate::service::{Models, ServiceError};
use crate::store::ShadowChoice;
use crate::whatif::{replay_decisions, replay_inputs};

/// A gesture as logged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoggedGesture {
    pub kind: GestureKind,
    pub value: f64,
}

/// One logged decision and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub interaction: InteractionInput,
    pub decision_id: Uuid,
    pub action: String,
    pub intent: Intent,
    pub gesture: Option<LoggedGesture>,
    pub propensity: f64,
    #[serde(default)]
    pub explored: bool,
    pub reward: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_true: Option<f64>,
    pub policy_version: u32,
    pub model_version: String,
    /// The outcome details reported with the feedback (exported logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OutcomeDetails>,
    /// What the shadow model would have chosen (exported logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowChoice>,
}

/// Order value assumed for interactions that name none (the bundled
/// catalogue's `default_order_value`).
pub const DEFAULT_STAKE: f64 = 40.0;

/// The outcome-model context of an interaction, as the decision core sees it.
pub fn context(models: &Models, interaction: &Interaction, default_stake: f64) -> OutcomeContext {
    let (scores, _) = scoring::score(interaction, models.sentiment.as_ref());
    OutcomeContext {
        sentiment: scores.sentiment,
        severity: scores.severity,
        loyalty: scoring::loyalty(LoyaltyInputs {
            tenure_days: interaction.customer.tenure_days,
            lifetime_value: interaction.customer.lifetime_value.get(),
        }),
        kind: interaction.kind,
        public: interaction.public,
        audience: interaction.audience,
        stake: interaction
            .order_value
            .map(|v| v.get())
            .unwrap_or(default_stake),
    }
}

/// Decides every interaction with `policy` through the real decision path,
/// and draws each outcome from the simulator's truth (seeded).
pub async fn simulate_logs(
    policy: &Policy,
    models: &Models,
    inputs: &[InteractionInput],
    seed: u64,
) -> Result<Vec<LogRecord>, ServiceError> {
    let mut p = policy.clone();
    // The log is about outcomes, not money: lift the budget so every
    // interaction is decided on its merits.
    p.budget.daily = 1.0e12;
    let parsed = replay_inputs(inputs, time::OffsetDateTime::UNIX_EPOCH)
        .map_err(ServiceError::InvalidInteraction)?;
    let replay = replay_decisions(&p, models, &parsed).await?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED_0F10);
    let mut out = Vec::with_capacity(inputs.len());
    for ((_, input, interaction), decided) in parsed.iter().zip(replay.decided) {
        let d = decided.decision;
        let intent = p
            .action(&d.action)
            .map(|a| a.intent)
            .unwrap_or(Intent::Ignore);
        let gesture = d.gesture.as_ref().map(|g| (g.kind, g.value));
        let ctx = context(models, interaction, DEFAULT_STAKE);
        let p_true = TrueOutcome.p_good(&ctx, &OutcomeAction { intent, gesture });
        let reward = if rng.gen::<f64>() < p_true { 1.0 } else { 0.0 };
        out.push(LogRecord {
            interaction: input.clone(),
            decision_id: d.decision_id,
            action: d.action,
            intent,
            gesture: gesture.map(|(kind, value)| LoggedGesture { kind, value }),
            propensity: d.propensity,
            explored: d.explored,
            reward,
            p_true: Some(p_true),
            policy_version: d.policy_version,
            model_version: d.model_version,
            outcome: None,
            shadow: None,
        });
    }
    Ok(out)
}

impl LogRecord {
    /// The record of a logged decision that has feedback (`None` while it
    /// is pending). `intent` is the policy's intent for the action taken
    /// (`ignore` for an action `policy` does not know).
    pub fn from_logged(logged: &crate::store::LoggedDecision, policy: &Policy) -> Option<Self> {
        let feedback = logged.feedback.as_ref()?;
        let d = &logged.decision;
        Some(Self {
            interaction: logged.input.clone(),
            decision_id: d.decision_id,
            action: d.action.clone(),
            intent: policy
                .action(&d.action)
                .map(|a| a.intent)
                .unwrap_or(Intent::Ignore),
            gesture: d.gesture.as_ref().map(|g| LoggedGesture {
                kind: g.kind,
                value: g.value,
            }),
            propensity: d.propensity,
            explored: d.explored,
            reward: feedback.reward,
            p_true: None,
            policy_version: d.policy_version,
            model_version: d.model_version.clone(),
            outcome: (feedback.outcome != OutcomeDetails::default())
                .then(|| feedback.outcome.clone()),
            shadow: logged.shadow.clone(),
        })
    }
}
