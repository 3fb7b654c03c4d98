//! Outcome feedback: what the CRM reports after applying a decision.
//!
//! The wire shape [`FeedbackInput`] becomes a validated [`Feedback`] at the
//! edge (`TryFrom`), like interactions. The reward is the single number
//! off-policy estimators and retraining use; the optional outcome details
//! are kept for analysis and exported with it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::validation::ValidationError;

/// Optional details of what happened after the decision was applied.
// `remote = "Self"`: the derives become inherent functions, wrapped by
// `objects_only!` (at the end) so that only a JSON object is read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct OutcomeDetails {
    /// The customer answered the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replied: Option<bool>,
    /// Sentiment of the customer's next message, in [-1, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -1.0, maximum = 1.0)]
    pub sentiment_after: Option<f64>,
    /// The customer bought again within the follow-up period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repurchased: Option<bool>,
    /// The customer left (cancelled, closed the account, stopped buying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churned: Option<bool>,
}

/// `POST /v1/feedback` as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct FeedbackInput {
    /// The `decision_id` of the decision this outcome follows.
    #[schema(format = Uuid)]
    pub decision_id: String,
    /// The outcome as one number in [0, 1] (1: the best outcome).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub reward: f64,
    #[serde(default)]
    pub outcome: Option<OutcomeDetails>,
}

/// Validated feedback, stamped with the time it was received: what the
/// store records and `POST /v1/feedback` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Feedback {
    pub decision_id: Uuid,
    /// The outcome as one number in [0, 1].
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub reward: f64,
    #[serde(default)]
    pub outcome: OutcomeDetails,
    /// When the first report was received (service clock, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

impl Feedback {
    /// Validates `input`; `received_at` comes from the caller's clock.
    pub fn parse(
        input: FeedbackInput,
        received_at: OffsetDateTime,
    ) -> Result<Self, ValidationError> {
        let decision_id = Uuid::parse_str(&input.decision_id)
            .map_err(|_| ValidationError::new("decision_id", "must be a UUID"))?;
        if !(0.0..=1.0).contains(&input.reward) {
            return Err(ValidationError::new("reward", "must be between 0 and 1"));
        }
        let outcome = input.outcome.unwrap_or_default();
        if let Some(s) = outcome.sentiment_after {
            if !(-1.0..=1.0).contains(&s) {
                return Err(ValidationError::new(
                    "outcome.sentiment_after",
                    "must be between -1 and 1",
                ));
            }
        }
        Ok(Self {
            decision_id,
            reward: input.reward,
            outcome,
            received_at,
        })
    }

    /// Whether `other` reports the same outcome (a retry), whenever it was received.
    pub fn same_report(&self, other: &Feedback) -> bool {
        self.decision_id == other.decision_id
            && self.reward == other.reward
            && self.outcome == other.outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(reward: f64, sentiment_after: Option<f64>) -> FeedbackInput {
        FeedbackInput {
            decision_id: Uuid::nil().to_string(),
            reward,
            outcome: Some(OutcomeDetails {
                sentiment_after,
                ..OutcomeDetails::default()
            }),
        }
    }

    #[test]
    fn feedback_is_validated_field_by_field() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let cases: &[(FeedbackInput, Option<&str>)] = &[
            (input(0.0, None), None),
            (input(1.0, Some(-1.0)), None),
            (input(1.01, None), Some("reward")),
            (input(-0.0001, None), Some("reward")),
            (input(0.5, Some(1.5)), Some("outcome.sentiment_after")),
            (
                FeedbackInput {
                    decision_id: "not-a-uuid".into(),
                    reward: 0.5,
                    outcome: None,
                },
                Some("decision_id"),
            ),
        ];
        for (case, field) in cases {
            let got = Feedback::parse(case.clone(), now);
            match field {
                None => assert_eq!(got.expect("valid").reward, case.reward),
                Some(f) => assert_eq!(got.expect_err("invalid").field, *f, "{case:?}"),
            }
        }
    }
}

// Objects only: serde would also read these from arrays (see `domain::wire`).
crate::domain::wire::objects_only!(OutcomeDetails, FeedbackInput);
