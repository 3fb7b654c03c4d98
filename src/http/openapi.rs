//! The OpenAPI document, generated from the handlers' annotations and the
//! types' schemas, so it cannot drift from the code.

use utoipa::OpenApi;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::Modify;

use super::{dashboard, handlers, models, policy};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fairtreat",
        description = "Recommends how to answer each customer interaction, and keeps the treatment fair for everyone watching."
    ),
    paths(
        handlers::create_decision,
        handlers::get_decision,
        handlers::healthz,
        handlers::readyz,
        handlers::metrics_text,
        handlers::openapi_json,
        policy::get_policy,
        policy::put_policy,
        policy::policy_history,
        policy::simulate_policy,
        policy::report,
        dashboard::summary,
        dashboard::index,
        dashboard::asset_file,
        models::list_models,
        models::activate_model,
    ),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
