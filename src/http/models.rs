//! The models API: list the model folders with their cards, activate a
//! model without a restart, and attach or detach a shadow model.
//!
//! Activation loads and validates the model (card, schema, artefact) before
//! swapping it into the service atomically; in-flight decisions keep the
//! models they started with, later ones report the new `model_version`. The
//! swap lives in memory: `models/active.toml` is not rewritten, so a restart
//! comes back to the models it names.
//!
//! A shadow (see `model::shadow`) is loaded the same way; it only adds its
//! choice to the decision log. `GET /v1/models` evaluates it on that log
//! (agreement, off-policy value), read from the store on each call.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::Scope;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::model::shadow::{self, Shadow, ShadowValue};
use crate::model::{self, Card, Loaded, ModelError};
use crate::store::DECISION_LOG_KEPT;

/// Longest `GET /v1/models` waits for the decision log before reporting the
/// shadow without its evaluation.
const LOG_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// One model folder.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    pub version: String,
    /// `sentiment` or `outcome` (from the card; null when the card is unreadable).
    pub task: Option<String>,
    /// Whether the service decides with this model now.
    pub active: bool,
    /// Whether this model is attached as the shadow.
    pub shadow: bool,
    /// The card as stored (`card.json`), or null.
    #[schema(value_type = Object)]
    pub card: Option<serde_json::Value>,
    /// Why the card cannot be read, if it cannot.
    pub error: Option<String>,
}

/// The active model of each task.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveModels {
    pub sentiment: String,
    pub outcome: String,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub active: ActiveModels,
    /// The `model_version` decisions report.
    pub model_version: String,
    pub models: Vec<ModelEntry>,
    /// The shadow model, if one is attached.
    pub shadow: Option<ShadowReport>,
}

/// The attached shadow and how it compares with the active models.
///
/// Computed from the decision log (across replicas on Redis) on the
/// decisions since attachment that the store still serves (at most
/// 10 000): a decision counts when its logged shadow choice carries this
/// shadow's `model_version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShadowReport {
    /// The model folder attached as shadow.
    pub version: String,
    /// The `model_version` the shadow decides as (the active models with
    /// the shadow in place of its task's model).
    pub model_version: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub attached_at: OffsetDateTime,
    pub decisions_scored: usize,
    /// Share of scored decisions where the shadow's action and gesture equal
    /// what the client received; null before the first one.
    pub agreement_rate: Option<f64>,
    /// Off-policy (SNIPS) estimate of the shadow's mean reward, next to the
    /// active decisions' observed mean reward on the same records.
    pub estimated_value: ShadowValue,
    /// Why the decision log could not be read (the figures are then empty).
    pub error: Option<String>,
}

/// The response of attaching a shadow.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShadowAttached {
    pub version: String,
    pub task: String,
    pub model_version: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub attached_at: OffsetDateTime,
    /// The active models' `model_version`: what clients still receive.
    pub active_model_version: String,
}

/// The response of detaching the shadow.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShadowDetached {
    /// The model folder that was the shadow; null when none was attached.
    pub detached: Option<String>,
}

/// The response of an activation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Activated {
    pub version: String,
    pub task: String,
    pub kind: String,
    pub active: ActiveModels,
    pub model_version: String,
}

fn active(state: &AppState) -> (ActiveModels, String) {
    let m = state.service.models();
    (
        ActiveModels {
            sentiment: m.sentiment.version().to_owned(),
            outcome: m.outcome.version().to_owned(),
        },
        m.version(),
    )
}

/// Every model folder in the models directory with its card, and which
/// model is active for each task.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, body = ModelList)))]
pub async fn list_models(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (act, model_version) = active(&state);
    let attached = state.service.shadow();
    let mut models = Vec::new();
    if let Some(dir) = state.service.models_dir() {
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            ApiError::Internal(format!("cannot list models in {}: {e}", dir.display()))
        })?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for version in names {
            let path = dir.join(&version).join("card.json");
            let card: Result<serde_json::Value, String> = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
            let (card, error) = match card {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(format!("card.json: {e}"))),
            };
            let task = card
                .as_ref()
                .and_then(|c| c.get("task"))
                .and_then(|t| t.as_str())
                .map(str::to_owned);
            let is_active = match task.as_deref() {
                Some("sentiment") => act.sentiment == version,
                Some("outcome") => act.outcome == version,
                _ => false,
            };
            models.push(ModelEntry {
                shadow: attached.as_ref().is_some_and(|s| s.version == version),
                version,
                task,
                active: is_active,
                card,
                error,
            });
        }
    }
    let shadow = match attached {
        Some(s) => Some(shadow_report(&state, &s).await),
        None => None,
    };
    Ok(HttpResponse::Ok().json(ModelList {
        active: act,
        model_version,
        models,
        shadow,
    }))
}

async fn shadow_report(state: &AppState, s: &Shadow) -> ShadowReport {
    let model_version = s.model_version();
    let log = tokio::time::timeout(
        LOG_DEADLINE,
        state
            .service
            .store()
            .logged_decisions(s.attached_at, DECISION_LOG_KEPT),
    )
    .await;
    let (records, error) = match log {
        Ok(Ok(records)) => (records, None),
        Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
        Err(_) => (
            Vec::new(),
            Some(format!(
                "the decision log did not answer within {} s",
                LOG_DEADLINE.as_secs()
            )),
        ),
    };
    if let Some(e) = &error {
        tracing::warn!(error = %e, "shadow not evaluated: decision log unavailable");
    }
    let evaluation = shadow::evaluate(&records, &model_version);
    ShadowReport {
        version: s.version.clone(),
        model_version,
        attached_at: s.attached_at,
        decisions_scored: evaluation.decisions_scored,
        agreement_rate: evaluation.agreement_rate,
        estimated_value: evaluation.value,
        error,
    }
}

/// Loads model `version` from the service's models directory: 404 when
/// there is no such model, 422 `model_refused` when it cannot be used.
async fn load_model(state: &AppState, version: &str) -> Result<(Card, Loaded), ApiError> {
    let Some(dir) = state.service.models_dir() else {
        return Err(ApiError::NotFound(format!(
            "no models directory: model {version:?} cannot be loaded"
        )));
    };
    let loaded = {
        let dir = dir.clone();
        let version = version.to_string();
        web::block(move || model::load_version(&dir, &version))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
    };
    match loaded {
        Ok(x) => Ok(x),
        Err(ModelError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound
                && !dir.join(version).join("card.json").exists() =>
        {
            Err(ApiError::NotFound(format!("no model {version:?}")))
        }
        Err(e) => Err(ApiError::ModelRefused(e.to_string())),
    }
}

/// Activate a model (admin key with `models:write`): it is loaded and
/// validated, then swapped in atomically for its task, without a restart.
#[utoipa::path(post, path = "/v1/models/{version}/activate", tag = "models",
    params(("version" = String, Path, description = "The model folder", pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active; decisions now report it", body = Activated),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
        (status = 422, description = "The model cannot be loaded (corrupt, another feature schema, unknown kind)", body = ErrorBody),
    ))]
pub async fn activate_model(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = state.admin.authorize(&req, Scope::ModelsWrite)?;
    let version = path.into_inner();
    let (card, loaded) = load_model(&state, &version).await?;
    state.service.update_models(|m| loaded.replace_in(m));
    let (act, model_version) = active(&state);
    tracing::info!(actor = %actor.0, %version, task = %card.task, %model_version, "model activated");
    Ok(HttpResponse::Ok().json(Activated {
        version: card.version,
        task: card.task,
        kind: card.kind,
        active: act,
        model_version,
    }))
}

/// Attach a model as shadow (admin key with `models:write`): it is loaded
/// and validated as for activation, then scores every later interaction
/// beside the active models. Its choices are logged, never served.
#[utoipa::path(post, path = "/v1/models/{version}/shadow", tag = "models",
    params(("version" = String, Path, description = "The model folder", pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Attached (replacing any other shadow)", body = ShadowAttached),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
        (status = 422, description = "The model cannot be loaded (corrupt, another feature schema, unknown kind)", body = ErrorBody),
    ))]
pub async fn attach_shadow(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = state.admin.authorize(&req, Scope::ModelsWrite)?;
    let version = path.into_inner();
    let (card, loaded) = load_model(&state, &version).await?;
    let active = state.service.models();
    let shadow = Shadow {
        version: card.version.clone(),
        models: loaded.replace_in(&active),
        attached_at: state.service.clock().now(),
    };
    let attached = ShadowAttached {
        version: card.version,
        task: card.task,
        model_version: shadow.model_version(),
        attached_at: shadow.attached_at,
        active_model_version: active.version(),
    };
    state.service.attach_shadow(shadow);
    tracing::info!(actor = %actor.0, version = %attached.version, model_version = %attached.model_version, "shadow model attached");
    Ok(HttpResponse::Ok().json(attached))
}

/// Detach the shadow model (admin key with `models:write`); idempotent.
#[utoipa::path(delete, path = "/v1/models/shadow", tag = "models",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "No shadow attached any more", body = ShadowDetached),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub async fn detach_shadow(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let actor = state.admin.authorize(&req, Scope::ModelsWrite)?;
    let detached = state.service.detach_shadow().map(|s| s.version.clone());
    tracing::info!(actor = %actor.0, detached = ?detached, "shadow model detached");
    Ok(HttpResponse::Ok().json(ShadowDetached { detached }))
}
