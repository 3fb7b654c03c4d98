//! The decision returned to the CRM: the contract's response object.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::policy::GestureKind;
use super::scoring::Scores;

/// Where the reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyChannel {
    /// In the public thread where the customer posted.
    Public,
    /// By private message, email or in the customer's account.
    Private,
    /// No reply (spam-like or empty input).
    None,
}

/// The reply to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reply {
    pub channel: ReplyChannel,
    /// Template id from the policy.
    pub template: String,
    /// The rendered text. A public message never names an amount or a tier.
    pub message: String,
}

/// How a gesture reaches the customer. Monetary gestures are never announced
/// in public, so this is always `private`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    Private,
}

/// A perk granted with the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Gesture {
    pub kind: GestureKind,
    pub value: f64,
    pub currency: String,
    pub delivery: Delivery,
}

/// Another action that was considered, with its utility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alternative {
    pub action: String,
    pub utility: f64,
}

/// The fairness constraints that can change a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintName {
    Visibility,
    Consistency,
    PerCustomerCap,
    Budget,
    Parity,
    /// The shared store could not be used, so no perk was granted.
    FailClosed,
}

/// A constraint that bound, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConstraintEffect {
    pub name: ConstraintName,
    pub effect: String,
}

/// The recommendation for one interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    pub decision_id: Uuid,
    pub interaction_id: String,
    pub action: String,
    pub response: Reply,
    /// `null` when no perk is given.
    pub gesture: Option<Gesture>,
    pub scores: Scores,
    /// Probability with which the policy chose this action (for off-policy evaluation).
    pub propensity: f64,
    /// Whether exploration picked this action instead of the best one.
    pub explored: bool,
    pub alternatives: Vec<Alternative>,
    pub constraints: Vec<ConstraintEffect>,
    /// Why, in plain language.
    pub explanation: String,
    pub model_version: String,
    pub policy_version: u32,
    /// True when shared state was unusable and the decision failed closed.
    pub degraded: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
}

impl Decision {
    /// True when every number in the decision is finite (serde_json would
    /// silently write NaN or infinity as `null`).
    pub fn all_numbers_finite(&self) -> bool {
        let s = &self.scores;
        [s.sentiment, s.severity, s.deservingness, self.propensity]
            .iter()
            .chain(self.gesture.iter().map(|g| &g.value))
            .chain(self.alternatives.iter().map(|a| &a.utility))
            .all(|v| v.is_finite())
    }
}
