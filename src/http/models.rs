//! The models API: list the model folders with their cards, and activate a
//! model without a restart.
//!
//! Activation loads and validates the model (card, schema, artefact) before
//! swapping it into the service atomically; in-flight decisions keep the
//! models they started with, later ones report the new `model_version`. The
//! swap lives in memory: `models/active.toml` is not rewritten, so a restart
//! comes back to the models it names.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Scope;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::model::{self, ModelError};

/// One model folder.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    pub version: String,
    /// `sentiment` or `outcome` (from the card; null when the card is unreadable).
    pub task: Option<String>,
    /// Whether the service decides with this model now.
    pub active: bool,
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
                version,
                task,
                active: is_active,
                card,
                error,
            });
        }
    }
    Ok(HttpResponse::Ok().json(ModelList {
        active: act,
        model_version,
        models,
    }))
}

/// Activate a model (admin key with `models:write`): it is loaded and
/// validated, then swapped in atomically for its task, without a restart.
#[utoipa::path(post, path = "/v1/models/{version}/activate", tag = "models",
    params(("version" = String, Path, description = "The model folder")),
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
    let Some(dir) = state.service.models_dir() else {
        return Err(ApiError::NotFound(format!(
            "no models directory: model {version:?} cannot be activated"
        )));
    };
    let loaded = {
        let dir = dir.clone();
        let version = version.clone();
        web::block(move || model::load_version(&dir, &version))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
    };
    let (card, loaded) = match loaded {
        Ok(x) => x,
        Err(ModelError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound
                && !dir.join(&version).join("card.json").exists() =>
        {
            return Err(ApiError::NotFound(format!("no model {version:?}")));
        }
        Err(e) => return Err(ApiError::ModelRefused(e.to_string())),
    };
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
