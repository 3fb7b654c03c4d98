//! Marketer controls: the policy, its history, the what-if preview and the
//! fairness report.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admin, PolicyWrite};
use super::error::{ApiError, ErrorBody};
use super::extract::JsonBody;
use super::AppState;
use crate::domain::interaction::InteractionInput;
use crate::domain::policy::{Policy, PolicyChange};
use crate::domain::report::{fairness_report, FairnessReport};
use crate::domain::validation::ValidationError;
use crate::service::ServiceError;
use crate::whatif::WhatIf;

/// The policy in force.
#[utoipa::path(get, path = "/v1/policy", tag = "policy", responses((status = 200, body = Policy)))]
pub async fn get_policy(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.service.policy().as_ref())
}

/// Replace the policy (admin key with `policy:write`).
///
/// The body is the whole document, edited from the version in force (its
/// `version` must be that version); the new document gets the next version.
#[utoipa::path(put, path = "/v1/policy", tag = "policy",
    request_body = Policy,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Applied; the audit entry", body = PolicyChange),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "Edited from an outdated version", body = ErrorBody),
        (status = 422, description = "Invalid fields, all listed in `details`", body = ErrorBody),
    ))]
pub async fn put_policy(
    // First, so an unauthorised caller is refused before the body is read.
    admin: Admin<PolicyWrite>,
    state: web::Data<AppState>,
    JsonBody(policy): JsonBody<Policy>,
) -> Result<HttpResponse, ApiError> {
    let change = state.service.replace_policy(policy, &admin.actor.0).await?;
    Ok(HttpResponse::Ok().json(change))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Most entries to return (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Most policy history entries one call returns.
pub const HISTORY_MAX: u32 = 1000;

/// The policy audit log, most recent first: who changed what, when.
#[utoipa::path(get, path = "/v1/policy/history", tag = "policy", params(HistoryQuery),
    responses((status = 200, body = [PolicyChange])))]
pub async fn policy_history(
    state: web::Data<AppState>,
    q: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=HISTORY_MAX).contains(&limit) {
        return Err(ApiError::InvalidField(ValidationError::new(
            "limit",
            format!("must be between 1 and {HISTORY_MAX}"),
        )));
    }
    let limit = limit as usize;
    Ok(HttpResponse::Ok().json(state.service.policy_history(limit).await?))
}

/// A what-if request.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct SimulateRequest {
    /// The proposed policy (its `version` is not checked).
    pub policy: Policy,
    /// Interactions to replay; default: those of the current window.
    #[serde(default)]
    pub interactions: Option<Vec<InteractionInput>>,
}

/// Preview a policy: replay interactions under the policy in force and under
/// the proposed one. Changes nothing.
#[utoipa::path(post, path = "/v1/policy/simulate", tag = "policy",
    request_body = SimulateRequest,
    responses((status = 200, body = WhatIf), (status = 422, body = ErrorBody)))]
pub async fn simulate_policy(
    state: web::Data<AppState>,
    JsonBody(req): JsonBody<SimulateRequest>,
) -> Result<HttpResponse, ApiError> {
    req.policy.validate().map_err(|errors| {
        ApiError::InvalidDocument(errors.into_iter().map(|e| e.within("policy")).collect())
    })?;
    let result = state.service.what_if(&req.policy, req.interactions).await?;
    Ok(HttpResponse::Ok().json(result))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportQuery {
    /// An audited attribute (`fairness.group_attributes`), e.g. `tier`.
    pub attribute: String,
}

/// The fairness report for one audited attribute over the current window.
#[utoipa::path(get, path = "/v1/fairness/report", tag = "fairness", params(ReportQuery),
    responses((status = 200, body = FairnessReport), (status = 422, body = ErrorBody)))]
pub async fn report(
    state: web::Data<AppState>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let policy = state.service.policy();
    if !policy.fairness.group_attributes.contains(&q.attribute) {
        return Err(ServiceError::UnknownAttribute(q.attribute.clone()).into());
    }
    let stats = state.service.window_stats().await?;
    Ok(HttpResponse::Ok().json(fairness_report(&policy, &stats, &q.attribute)))
}

// Objects only: serde would also read it from an array (see `domain::wire`).
crate::domain::wire::objects_only!(SimulateRequest);
