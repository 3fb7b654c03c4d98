//! The HTTP adapter: actix-web routes around the decision service.
//!
//! [`configure`] mounts every route and is the single source of the route
//! table (tests enumerate it); [`start`] binds a server and returns its real
//! address, so tests start the app on port 0.

pub mod auth;
pub mod batch;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod feedback;
pub mod handlers;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod overload;
pub mod policy;
pub mod throttle;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};
use futures_util::FutureExt;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder, TracingLogger};

use crate::domain::validation::ValidationError;
use crate::service::DecisionService;
use auth::{AdminKeys, Scope};
use error::ApiError;
use extract::BodyLimit;

/// Shared state of every worker.
pub struct AppState {
    pub service: Arc<DecisionService>,
    pub admin: AdminKeys,
    /// How far behind a worker may be before decisions are shed
    /// ([`overload`]); `None`: never shed.
    pub shed_after: Option<std::time::Duration>,
    /// Failed admin authentication per client, shared through the store
    /// ([`throttle`]).
    pub auth_throttle: throttle::AuthThrottle,
}

/// The routes: (method, path) pairs, for tests that must cover them all.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/decisions"),
    ("POST", "/v1/decisions/batch"),
    ("GET", "/v1/decisions/{decision_id}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/v1/policy"),
    ("PUT", "/v1/policy"),
    ("GET", "/v1/policy/history"),
    ("POST", "/v1/policy/simulate"),
    ("GET", "/v1/fairness/report"),
    ("GET", "/v1/dashboard/summary"),
    ("GET", "/"),
    ("GET", "/assets/{file}"),
    ("GET", "/v1/models"),
    ("POST", "/v1/models/{version}/activate"),
    ("POST", "/v1/models/{version}/shadow"),
    ("DELETE", "/v1/models/shadow"),
    ("POST", "/v1/feedback"),
];

/// Routes that need an admin key, with the scope each needs.
pub const ADMIN_ROUTES: &[(&str, &str, Scope)] = &[
    ("PUT", "/v1/policy", Scope::PolicyWrite),
    ("POST", "/v1/models/{version}/activate", Scope::ModelsWrite),
    ("POST", "/v1/models/{version}/shadow", Scope::ModelsWrite),
    ("DELETE", "/v1/models/shadow", Scope::ModelsWrite),
];

/// Body limit of the what-if preview, which may carry many interactions.
pub const SIMULATE_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Mounts every route. Each resource answers other methods with 405, and
/// unknown paths get 404, both as JSON error objects.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let not_allowed = || web::to(handlers::method_not_allowed);
    let resource = |path: &str| web::resource(path).default_service(not_allowed());
    cfg.service(
        resource("/v1/decisions")
            .wrap(from_fn(overload::shed))
            .route(web::post().to(handlers::create_decision)),
    )
    // Before `/v1/decisions/{decision_id}`, which would otherwise match it.
    .service(
        resource("/v1/decisions/batch")
            .app_data(web::Data::new(BodyLimit(batch::BATCH_BODY_LIMIT)))
            .wrap(from_fn(overload::shed))
            .route(web::post().to(batch::create_decisions)),
    )
    .service(resource("/v1/decisions/{decision_id}").route(web::get().to(handlers::get_decision)))
    .service(
        resource("/v1/policy")
            .route(web::get().to(policy::get_policy))
            .route(web::put().to(policy::put_policy)),
    )
    .service(resource("/v1/policy/history").route(web::get().to(policy::policy_history)))
    .service(
        resource("/v1/policy/simulate")
            .app_data(web::Data::new(BodyLimit(SIMULATE_BODY_LIMIT)))
            .route(web::post().to(policy::simulate_policy)),
    )
    .service(resource("/v1/fairness/report").route(web::get().to(policy::report)))
    .service(resource("/v1/models").route(web::get().to(models::list_models)))
    .service(
        resource("/v1/models/{version}/activate").route(web::post().to(models::activate_model)),
    )
    .service(resource("/v1/models/{version}/shadow").route(web::post().to(models::attach_shadow)))
    .service(resource("/v1/models/shadow").route(web::delete().to(models::detach_shadow)))
    .service(resource("/v1/feedback").route(web::post().to(feedback::record_feedback)))
    .service(resource("/v1/dashboard/summary").route(web::get().to(dashboard::summary)))
    .service(resource("/").route(web::get().to(dashboard::index)))
    .service(resource("/assets/{file}").route(web::get().to(dashboard::asset_file)))
    .service(resource("/healthz").route(web::get().to(handlers::healthz)))
    .service(resource("/readyz").route(web::get().to(handlers::readyz)))
    .service(resource("/metrics").route(web::get().to(handlers::metrics_text)))
    .service(resource("/openapi.json").route(web::get().to(handlers::openapi_json)));
}

/// Root span per request, with the ids handlers fill in.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(
            request,
            interaction_id = tracing::field::Empty,
            decision_id = tracing::field::Empty
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Last line of defence: a panic in a handler becomes an opaque 500 JSON
/// error (and a full log line) instead of a connection closed without reply.
async fn catch_panic(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match std::panic::AssertUnwindSafe(next.call(req))
        .catch_unwind()
        .await
    {
        Ok(res) => res,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(ApiError::Internal(format!("handler panicked: {msg}")).into())
        }
    }
}

/// Builds the app around a service.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            ApiError::InvalidField(ValidationError::new("query", err.to_string())).into()
        }))
        .app_data(
            web::PathConfig::default()
                .error_handler(|err, _| ApiError::NotFound(err.to_string()).into()),
        )
        .configure(configure)
        .default_service(web::to(handlers::not_found))
        .wrap(from_fn(catch_panic))
        .wrap(from_fn(metrics::track))
        .wrap(TracingLogger::<RequestSpan>::new())
}

/// How the HTTP server runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerOptions {
    /// Worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Shed decisions while a worker is this far behind ([`overload`]);
    /// `None`: never.
    pub shed_after: Option<std::time::Duration>,
    /// Refuse an address's admin calls after this many failed
    /// authentications within this long of the first ([`throttle`]);
    /// `None`: never.
    pub auth_failures: Option<(u32, std::time::Duration)>,
}

/// Binds the service without admin keys (admin calls refused), shedding or
/// the authentication throttle.
pub fn start(
    service: Arc<DecisionService>,
    bind: &str,
    workers: Option<usize>,
) -> std::io::Result<(Server, SocketAddr)> {
    let opts = ServerOptions {
        workers,
        ..ServerOptions::default()
    };
    start_with(service, AdminKeys::none(), bind, opts)
}

/// Binds the service and returns the server with its actual address.
pub fn start_with(
    service: Arc<DecisionService>,
    admin: AdminKeys,
    bind: &str,
    opts: ServerOptions,
) -> std::io::Result<(Server, SocketAddr)> {
    metrics::handle();
    let state = web::Data::new(AppState {
        service,
        admin,
        shed_after: opts.shed_after,
        auth_throttle: match opts.auth_failures {
            Some((limit, window)) => throttle::AuthThrottle::new(limit, window),
            None => throttle::AuthThrottle::off(),
        },
    });
    let mut server = HttpServer::new(move || {
        // Runs on every worker thread, inside its runtime.
        if state.shed_after.is_some() {
            overload::start_probe();
        }
        app(state.clone())
    })
    .client_request_timeout(std::time::Duration::from_secs(5))
    .shutdown_timeout(10);
    if let Some(w) = opts.workers {
        server = server.workers(w);
    }
    let server = server.bind(bind)?;
    let addr = *server
        .addrs()
        .first()
        .ok_or_else(|| std::io::Error::other("bound to no address"))?;
    Ok((server.run(), addr))
}
