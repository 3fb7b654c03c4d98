//! Route handlers: parse at the edge, call the service, map errors once.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use tracing_actix_web::RootSpan;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::JsonBody;
use super::metrics;
use super::AppState;
use crate::domain::decision::{ConstraintName, Decision};
use crate::domain::interaction::{Interaction, InteractionInput};
use crate::service::Decided;

/// Decide one interaction.
#[utoipa::path(
    post, path = "/v1/decisions", tag = "decisions",
    request_body = InteractionInput,
    responses(
        (status = 200, description = "The decision (a replay of the stored one for a known interaction id with the same body)", body = Decision),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Content type is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field, or idempotency_mismatch", body = ErrorBody),
        (status = 503, description = "`overloaded`: the replica is too far behind to decide in time (`serve --shed-after-ms`); nothing was decided or stored, retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn create_decision(
    state: web::Data<AppState>,
    span: RootSpan,
    JsonBody(input): JsonBody<InteractionInput>,
) -> Result<HttpResponse, ApiError> {
    let interaction = Interaction::try_from(input.clone())?;
    span.record("interaction_id", interaction.id.as_str());
    let started = std::time::Instant::now();
    let decided = state.service.decide(&input, interaction).await?;
    let d = &decided.decision;
    span.record("decision_id", d.decision_id.to_string().as_str());
    observe_decision(&decided, started.elapsed())?;
    Ok(HttpResponse::Ok().json(d))
}

/// What every decided interaction reports, on the single and the batch
/// path alike: the decision metrics (once per new decision, not for
/// replays), and a refusal to hand out a non-finite number. `took` is the
/// time the decision took (a batch item's share of its chunk's time).
pub(super) fn observe_decision(
    decided: &Decided,
    took: std::time::Duration,
) -> Result<(), ApiError> {
    let d = &decided.decision;
    if !decided.replayed {
        // Static label values where possible: the registry lookup then
        // allocates nothing for them.
        let degraded = if d.degraded { "true" } else { "false" };
        ::metrics::counter!(metrics::DECISIONS, "action" => d.action.clone(), "degraded" => degraded).increment(1);
        ::metrics::histogram!(metrics::DECISION_DURATION).record(took.as_secs_f64());
        metrics::record_exploration(decided);
        if let Some(g) = &d.gesture {
            ::metrics::counter!(metrics::GESTURE_VALUE, "currency" => g.currency.clone())
                .increment(g.value.round() as u64);
        }
        for c in &d.constraints {
            ::metrics::counter!(metrics::CONSTRAINTS, "constraint" => constraint_label(c.name))
                .increment(1);
        }
    }
    if !d.all_numbers_finite() {
        return Err(ApiError::Internal(format!(
            "decision {} has a non-finite number",
            d.decision_id
        )));
    }
    Ok(())
}

/// The wire name of a constraint (as serde writes it), as a metric label.
fn constraint_label(name: ConstraintName) -> &'static str {
    match name {
        ConstraintName::Visibility => "visibility",
        ConstraintName::Consistency => "consistency",
        ConstraintName::PerCustomerCap => "per_customer_cap",
        ConstraintName::Budget => "budget",
        ConstraintName::Parity => "parity",
        ConstraintName::FailClosed => "fail_closed",
    }
}

/// A recorded decision.
#[utoipa::path(
    get, path = "/v1/decisions/{decision_id}", tag = "decisions",
    params(("decision_id" = Uuid, Path, description = "The decision's id")),
    responses((status = 200, body = Decision), (status = 404, body = ErrorBody))
)]
pub async fn get_decision(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&path)
        .map_err(|_| ApiError::NotFound(format!("no decision {:?}", path.as_str())))?;
    let found = state
        .service
        .store()
        .decision(id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    match found {
        Some(d) => Ok(HttpResponse::Ok().json(d)),
        None => Err(ApiError::NotFound(format!("no decision {id}"))),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `degraded` when the store cannot be used (decisions then fail closed).
    pub status: &'static str,
    pub store: &'static str,
    pub store_ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
    pub policy_version: u32,
    pub model_version: String,
}

/// Readiness: whether decisions can grant perks right now.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Readiness), (status = 503, description = "Store unusable: decisions fail closed", body = Readiness)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.service.store();
    let ping = tokio::time::timeout(std::time::Duration::from_millis(200), store.ping()).await;
    let err = match ping {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("no answer within 200 ms".to_string()),
    };
    let body = Readiness {
        status: if err.is_none() { "ready" } else { "degraded" },
        store: store.kind(),
        store_ok: err.is_none(),
        store_error: err,
        policy_version: state.service.policy().version,
        model_version: state.service.models().version(),
    };
    if body.store_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics in text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics_text() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics::handle().render())
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(super::openapi::document())
}

/// 405 for a method the resource does not serve, with the `Allow` header
/// RFC 9110 §15.5.6 requires (the methods come from the route table).
pub async fn method_not_allowed(req: actix_web::HttpRequest) -> HttpResponse {
    let pattern = req.match_pattern().unwrap_or_default();
    let allow: Vec<&str> = super::ROUTES
        .iter()
        .filter(|(_, path)| *path == pattern)
        .map(|(method, _)| *method)
        .collect();
    let mut resp = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow.join(", ")) {
        resp.headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    resp
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}
