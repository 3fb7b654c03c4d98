//! `POST /v1/feedback`: the CRM reports what happened after a decision.
//!
//! CRM-facing like `POST /v1/decisions` (no admin key). The body is parsed
//! at the edge into a validated [`Feedback`] stamped with the service clock;
//! the store records it once. Status codes carry the idempotency contract:
//! 201 for the first report, 200 with the same body for an identical retry,
//! 409 `feedback_conflict` when another report is already recorded, 404 for
//! a decision that is unknown or past the feedback horizon.

use actix_web::{web, HttpResponse};

use super::error::{ApiError, ErrorBody};
use super::extract::JsonBody;
use super::AppState;
use crate::domain::feedback::{Feedback, FeedbackInput};
use crate::store::{FeedbackOutcome, FEEDBACK_HORIZON};

/// Feedback reports, by `result` (`recorded`, `replayed`, `conflict`, `unknown_decision`).
pub const FEEDBACK_METRIC: &str = "fairtreat_feedback_total";

fn count(result: &'static str) {
    ::metrics::counter!(FEEDBACK_METRIC, "result" => result).increment(1);
}

/// Report the outcome of a decision.
#[utoipa::path(
    post, path = "/v1/feedback", tag = "feedback",
    request_body = FeedbackInput,
    responses(
        (status = 201, description = "Recorded (first report for this decision)", body = Feedback),
        (status = 200, description = "The same report was recorded before: the stored record, unchanged", body = Feedback),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such decision, or it is older than the feedback horizon (7 days)", body = ErrorBody),
        (status = 409, description = "feedback_conflict: another report is recorded for this decision", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Content type is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field (reward outside [0, 1], sentiment_after outside [-1, 1], decision_id not a UUID, unknown field)", body = ErrorBody),
        (status = 503, description = "The store cannot record it now: retry (retries are idempotent)", body = ErrorBody),
    )
)]
pub async fn record_feedback(
    state: web::Data<AppState>,
    JsonBody(input): JsonBody<FeedbackInput>,
) -> Result<HttpResponse, ApiError> {
    let service = &state.service;
    let feedback = Feedback::parse(input, service.clock().now())?;
    let id = feedback.decision_id;
    match service.record_feedback(&feedback).await? {
        FeedbackOutcome::Recorded => {
            count("recorded");
            Ok(HttpResponse::Created().json(feedback))
        }
        FeedbackOutcome::Replayed(stored) => {
            count("replayed");
            Ok(HttpResponse::Ok().json(stored))
        }
        FeedbackOutcome::Conflict(stored) => {
            count("conflict");
            Err(ApiError::FeedbackConflict(format!(
                "decision {id} already has a different report (received {}); feedback is recorded once",
                stored
                    .received_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            )))
        }
        FeedbackOutcome::UnknownDecision => {
            count("unknown_decision");
            Err(ApiError::NotFound(format!(
                "no decision {id} accepts feedback (unknown, or older than {} days)",
                FEEDBACK_HORIZON.whole_days()
            )))
        }
    }
}
