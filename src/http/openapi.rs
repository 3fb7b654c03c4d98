//! The OpenAPI document, generated from the handlers' annotations and the
//! types' schemas, so it cannot drift from the code.

use utoipa::OpenApi;

use super::handlers;

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
    )
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
