//! The OpenAPI document, generated from the handlers' annotations and the
//! types' schemas, so it cannot drift from the code.
//!
//! The errors every operation of a kind can answer (a JSON body: 400, 413,
//! 415, 422; a query string: 422; a path parameter: 404; an admin key: 400,
//! 401, 403) come from the shared extractors, not from the handler, so they
//! are added here once ([`StandardErrors`]) rather than repeated, and
//! possibly forgotten, in each annotation. Schema-driven tests
//! (`scripts/schemathesis.sh`) fail on any status the document omits.

use utoipa::OpenApi;

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::Modify;

use super::{batch, dashboard, feedback, handlers, models, policy};

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

/// Adds the errors the shared extractors can answer to every operation
/// that uses them, unless the handler documents that status itself.
struct StandardErrors;

fn add_error(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        });
}

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                let params = op.parameters.as_deref().unwrap_or_default();
                let in_path = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let in_query = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                if op.request_body.is_some() {
                    add_error(op, "400", "Malformed JSON (`invalid_json`)");
                    add_error(op, "413", "Body over the route's size limit");
                    add_error(op, "415", "Content type is not JSON");
                    add_error(op, "422", "Invalid field (`invalid_field`)");
                }
                if in_query {
                    add_error(op, "422", "Invalid query parameter (`invalid_field`)");
                }
                if in_path {
                    add_error(op, "404", "No such resource");
                }
                if secured {
                    add_error(
                        op,
                        "400",
                        "Credentials in the query string (`credentials_in_query`)",
                    );
                    add_error(op, "401", "Missing or invalid admin key");
                    add_error(op, "403", "The key lacks the scope");
                    add_error(
                        op,
                        "429",
                        "Too many failed authentications from this address (`too_many_auth_failures`); retry after `Retry-After` seconds",
                    );
                }
            }
        }
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
        batch::create_decisions,
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
        models::attach_shadow,
        models::detach_shadow,
        feedback::record_feedback,
    ),
    modifiers(&Bearer, &StandardErrors)
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
