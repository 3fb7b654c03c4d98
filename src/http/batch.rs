//! `POST /v1/decisions/batch`: up to [`BATCH_MAX`] interactions in one
//! request, each decided exactly as `POST /v1/decisions` would decide it.
//!
//! The body is a JSON array of interactions, or `{"interactions": [...]}`
//! (the object form leaves room for options later). The envelope is parsed
//! first, keeping every item as raw JSON, so one malformed item costs only
//! its own result: each item is then parsed by the same code as the single
//! endpoint ([`parse_json`], [`Interaction::try_from`]) and gets the same
//! error code and field. Items are decided **in input order**, in chunks,
//! through [`DecisionService::decide_all`](crate::service::DecisionService::decide_all):
//! two items for one customer see each other's caps, budget use and
//! idempotency records, and a store failure fails closed per item. A chunk
//! is planned on one window snapshot, as if its items had arrived at once
//! (on Redis the cached snapshot single decisions use too), then committed
//! together: on the embedded store under one lock, on Redis in one script
//! call.
//!
//! The answer is 200 with one result per item, in input order:
//! `{"index", "status": 200, "decision"}` or `{"index", "status": 4xx,
//! "error": {"code", "message", "field"?}}`. Only an unusable request as a
//! whole (not JSON, too large, not a list, empty, over the limit) is an
//! error response.
//!
//! Why it is faster per interaction than single calls: one HTTP exchange,
//! one body read and one response write for many decisions, one window
//! snapshot per chunk, and one lock (embedded) or one round trip (Redis)
//! per chunk instead of one per decision.

use std::fmt;

use actix_web::{web, HttpResponse, ResponseError};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::extract::{parse_json, JsonBody};
use super::handlers::observe_decision;
use super::AppState;
use crate::domain::decision::Decision;
use crate::domain::interaction::{Interaction, InteractionInput};
use crate::domain::validation::ValidationError;

/// Most interactions in one batch.
pub const BATCH_MAX: usize = 1000;

/// Body limit of a batch: room for [`BATCH_MAX`] interactions of a few KiB.
pub const BATCH_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Items decided together (one window snapshot, one
/// [`decide_all`](crate::service::DecisionService::decide_all): one round
/// trip to Redis) and between two yields to the worker's other requests, so
/// a large batch does not hold a worker for its whole duration.
const CHUNK: usize = 32;

/// The request: the interactions, each kept as raw JSON until it is parsed
/// on its own.
#[derive(Debug)]
pub struct BatchRequest {
    pub interactions: Vec<Box<RawValue>>,
}

/// The documented shape of a batch request (the bare array is accepted too).
#[derive(ToSchema)]
pub struct BatchRequestDoc {
    /// 1 to 1000 interactions, decided in this order.
    #[schema(min_items = 1, max_items = 1000)]
    pub interactions: Vec<InteractionInput>,
}

impl<'de> Deserialize<'de> for BatchRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> Visitor<'de> for Items {
            type Value = BatchRequest;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of interactions or {\"interactions\": [...]}")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BatchRequest, A::Error> {
                let mut interactions = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element()? {
                    interactions.push(item);
                }
                Ok(BatchRequest { interactions })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BatchRequest, A::Error> {
                let mut interactions = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "interactions" {
                        return Err(de::Error::unknown_field(&key, &["interactions"]));
                    }
                    if interactions.is_some() {
                        return Err(de::Error::duplicate_field("interactions"));
                    }
                    interactions = Some(map.next_value()?);
                }
                interactions
                    .map(|interactions| BatchRequest { interactions })
                    .ok_or_else(|| de::Error::missing_field("interactions"))
            }
        }
        d.deserialize_any(Items)
    }
}

/// One item's result: a decision or an error, never both.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    /// Position of the interaction in the request (0-based).
    pub index: usize,
    /// The status the single endpoint would have answered: 200, or the
    /// error's status (400, 422, …).
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Whether the decision is the stored one of an earlier request with
    /// the same interaction id and body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// The answer: one result per interaction, in input order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}

impl BatchResult {
    fn failed(index: usize, e: &ApiError) -> Self {
        Self {
            index,
            status: e.status_code().as_u16(),
            decision: None,
            replayed: None,
            error: Some(e.body().error),
        }
    }
}

/// Decide many interactions, in order, each as `POST /v1/decisions` would.
#[utoipa::path(
    post, path = "/v1/decisions/batch", tag = "decisions",
    request_body(content = BatchRequestDoc, description = "`{\"interactions\": [...]}` or a bare array of 1 to 1000 interactions"),
    responses(
        (status = 200, description = "One result per interaction, in input order: a decision (status 200) or the error the single endpoint would have answered", body = BatchResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over 8 MiB", body = ErrorBody),
        (status = 415, description = "Content type is not JSON", body = ErrorBody),
        (status = 422, description = "Not a list of interactions, an empty list, or more than 1000 (`field`: `interactions`)", body = ErrorBody),
        (status = 503, description = "`overloaded`: the replica is too far behind to decide in time (`serve --shed-after-ms`); nothing was decided or stored, retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn create_decisions(
    state: web::Data<AppState>,
    JsonBody(req): JsonBody<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let n = req.interactions.len();
    if n == 0 {
        return Err(ApiError::InvalidField(ValidationError::new(
            "interactions",
            "at least one interaction is required",
        )));
    }
    if n > BATCH_MAX {
        return Err(ApiError::InvalidField(ValidationError::new(
            "interactions",
            format!("at most {BATCH_MAX} interactions per batch, got {n}"),
        )));
    }
    let mut results = Vec::with_capacity(n);
    for (chunk, raws) in req.interactions.chunks(CHUNK).enumerate() {
        if chunk > 0 {
            tokio::task::yield_now().await;
        }
        let first = chunk * CHUNK;
        results.extend(decide_chunk(&state, first, raws).await);
    }
    Ok(HttpResponse::Ok().json(BatchResponse { results }))
}

/// Items `first..first + raws.len()`, through exactly the single endpoint's
/// steps: parsed and validated one by one (an invalid item costs only its
/// own result), then decided together.
async fn decide_chunk(state: &AppState, first: usize, raws: &[Box<RawValue>]) -> Vec<BatchResult> {
    let mut interactions = Vec::with_capacity(raws.len());
    let inputs: Vec<Result<InteractionInput, ApiError>> = raws
        .iter()
        .map(|raw| {
            let input: InteractionInput = parse_json(raw.get().as_bytes())?;
            interactions.push(Interaction::try_from(input.clone())?);
            Ok(input)
        })
        .collect();
    let valid = inputs
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .zip(interactions)
        .collect();
    let started = std::time::Instant::now();
    let decided = state.service.decide_all(valid).await;
    let took = started.elapsed() / u32::try_from(decided.len().max(1)).unwrap_or(u32::MAX);
    let mut decided = decided.into_iter();
    inputs
        .into_iter()
        .enumerate()
        .map(|(k, input)| {
            let index = first + k;
            let outcome = match input {
                Err(e) => Err(e),
                Ok(_) => match decided.next() {
                    Some(d) => d.map_err(ApiError::from).and_then(|d| {
                        observe_decision(&d, took)?;
                        Ok(d)
                    }),
                    None => Err(ApiError::Internal(
                        "the service returned fewer outcomes than items".into(),
                    )),
                },
            };
            match outcome {
                Ok(d) => BatchResult {
                    index,
                    status: 200,
                    decision: Some(d.decision),
                    replayed: Some(d.replayed),
                    error: None,
                },
                Err(e) => {
                    if e.status_code().is_server_error() {
                        tracing::error!(error = %e, index, "batch item failed");
                    }
                    BatchResult::failed(index, &e)
                }
            }
        })
        .collect()
}
