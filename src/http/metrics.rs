//! Prometheus metrics: one process-wide recorder, a per-request middleware
//! and the names of the metrics the service reports.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_DURATION: &str = "fairtreat_http_request_duration_seconds";
pub const DECISIONS: &str = "fairtreat_decisions_total";
pub const DECISION_DURATION: &str = "fairtreat_decision_duration_seconds";
pub const GESTURE_VALUE: &str = "fairtreat_gesture_value_total";
pub const CONSTRAINTS: &str = "fairtreat_constraints_total";
/// Decisions that explored at random, labelled `part="reply"` (the reply
/// varied, the gesture did not) or `part="gesture"` (opt-in gesture
/// exploration moved the gesture one step).
pub const EXPLORED: &str = "fairtreat_explored_decisions_total";
/// Admin calls refused before any scope check, labelled `reason`:
/// `unauthorized` (no key or a wrong one), `credentials_in_query`, or
/// `throttled` (the address failed too often; [`super::throttle`]).
pub const ADMIN_AUTH_REFUSED: &str = "fairtreat_admin_auth_refused_total";

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The process-wide recorder. Metrics are global in the `metrics` crate, so
/// several apps in one process (tests) share one registry.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("buckets are non-empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program);
        // then this handle still renders, just without that program's metrics.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts an explored decision by what it varied; a gesture exploration is
/// also logged, so each one can be found and reported.
pub fn record_exploration(decided: &crate::service::Decided) {
    use crate::domain::decide::ExploredPart;
    let Some(part) = decided.exploration else {
        return;
    };
    metrics::counter!(EXPLORED, "part" => part.as_str()).increment(1);
    if part == ExploredPart::Gesture {
        let d = &decided.decision;
        tracing::info!(
            decision_id = %d.decision_id,
            interaction_id = %d.interaction_id,
            action = %d.action,
            gesture_value = d.gesture.as_ref().map_or(0.0, |g| g.value),
            propensity = d.propensity,
            explored = true,
            "gesture explored"
        );
    }
}

/// Records the latency of every request by route pattern (never by raw path,
/// so ids in paths cannot explode the label set) and logs one access line.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let res = next.call(req).await;
    let status = match &res {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    let elapsed = start.elapsed();
    metrics::histogram!(HTTP_DURATION, "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .record(elapsed.as_secs_f64());
    tracing::info!(%method, %route, status, latency_us = elapsed.as_micros() as u64, "request");
    res
}
