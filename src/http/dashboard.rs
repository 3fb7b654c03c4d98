//! The marketer dashboard: a static page (HTML, CSS, JS compiled into the
//! binary, nothing fetched from elsewhere) and the one read-only summary it
//! needs besides the policy, fairness and what-if endpoints.
//!
//! The page is served with a strict Content-Security-Policy
//! (`default-src 'self'`): no inline script or style, no third-party origin.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::metrics;
use super::AppState;
use crate::domain::window::{first_bucket, Counts};

const INDEX_HTML: &str = include_str!("../../assets/dashboard/index.html");
const APP_JS: &str = include_str!("../../assets/dashboard/app.js");
const STYLE_CSS: &str = include_str!("../../assets/dashboard/style.css");
const ICON_SVG: &str = include_str!("../../assets/dashboard/icon.svg");

/// The policy every dashboard response carries.
pub const CSP: &str = "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("content-security-policy", CSP))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "no-referrer"))
        .insert_header(("cache-control", "no-cache"))
        .body(body)
}

/// The dashboard page.
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "The dashboard (HTML)", content_type = "text/html")))]
pub async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// A dashboard asset (`app.js`, `style.css`, `icon.svg`), compiled into the binary.
#[utoipa::path(get, path = "/assets/{file}", tag = "dashboard",
    params(("file" = String, Path, description = "Asset name")),
    responses(
        (status = 200, description = "The asset", content_type = "text/plain"),
        (status = 404, body = ErrorBody),
    ))]
pub async fn asset_file(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    match file.as_str() {
        "app.js" => Ok(asset("text/javascript; charset=utf-8", APP_JS)),
        "style.css" => Ok(asset("text/css; charset=utf-8", STYLE_CSS)),
        "icon.svg" => Ok(asset("image/svg+xml", ICON_SVG)),
        other => Err(ApiError::NotFound(format!("no asset named {other:?}"))),
    }
}

/// Today's spend against the daily budget.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetFigures {
    pub daily: f64,
    pub currency: String,
    /// UTC day the spend is for (`YYYY-MM-DD`).
    pub day: String,
    pub spent_today: f64,
    pub grants_today: u64,
}

/// One hour of the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct HourFigures {
    /// Start of the hour (RFC 3339, UTC).
    pub hour: String,
    pub decisions: u64,
    pub perks: u64,
    /// Gesture value granted.
    pub value: f64,
}

/// How often a constraint bound.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConstraintCount {
    pub name: String,
    pub count: u64,
}

/// What the dashboard shows besides the policy and fairness reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardSummary {
    /// Now, on the service's clock (RFC 3339).
    pub now: String,
    pub window_hours: u32,
    pub policy_version: u32,
    pub model_version: String,
    pub budget: BudgetFigures,
    /// Every hour of the current window, oldest first (hours without
    /// decisions are zero).
    pub series: Vec<HourFigures>,
    /// Constraints that bound, most frequent first. Counted per process
    /// since it started (from the Prometheus registry,
    /// `fairtreat_constraints_total`), not across replicas.
    pub constraints: Vec<ConstraintCount>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Reads `fairtreat_constraints_total{constraint="…"} N` lines.
fn constraint_counts(text: &str) -> Vec<ConstraintCount> {
    let prefix = format!("{}{{", metrics::CONSTRAINTS);
    let mut out: Vec<ConstraintCount> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (labels, value) = rest.rsplit_once('}')?;
            let name = labels
                .split(',')
                .find_map(|l| l.trim().strip_prefix("constraint="))?
                .trim_matches('"')
                .to_string();
            let count = value.trim().parse::<f64>().ok()? as u64;
            Some(ConstraintCount { name, count })
        })
        .filter(|c| c.count > 0)
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    out
}

/// Decisions and perks per hour over the current window, today's spend
/// against the budget, the constraints that bound most, and the versions in
/// force. Read-only.
#[utoipa::path(get, path = "/v1/dashboard/summary", tag = "dashboard",
    responses((status = 200, body = DashboardSummary), (status = 503, body = ErrorBody)))]
pub async fn summary(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let policy = state.service.policy();
    let now = state.service.clock().now();
    let hours = policy.fairness.window_hours.max(1);
    let store = state.service.store();
    let unavailable = |e: crate::store::StoreError| ApiError::Unavailable(e.to_string());
    let spend = store.spend(now).await.map_err(unavailable)?;
    let buckets = store.window_series(now, hours).await.map_err(unavailable)?;
    let first = first_bucket(now, hours);
    let series = (0..i64::from(hours))
        .map(|i| {
            let b = first + i;
            let c = buckets
                .iter()
                .find(|(k, _)| *k == b)
                .map(|(_, c)| *c)
                .unwrap_or(Counts::default());
            let start =
                OffsetDateTime::from_unix_timestamp(b * 3600).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            HourFigures {
                hour: rfc3339(start),
                decisions: c.decisions,
                perks: c.perks,
                value: (c.value * 100.0).round() / 100.0,
            }
        })
        .collect();
    let body = DashboardSummary {
        now: rfc3339(now),
        window_hours: hours,
        policy_version: policy.version,
        model_version: state.service.models().version(),
        budget: BudgetFigures {
            daily: policy.budget.daily,
            currency: policy.budget.currency.clone(),
            day: spend.day.to_string(),
            spent_today: (spend.spent * 100.0).round() / 100.0,
            grants_today: spend.grants,
        },
        series,
        constraints: constraint_counts(&metrics::handle().render()),
    };
    Ok(HttpResponse::Ok().json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_lines_are_read_and_sorted() {
        let text = "# TYPE fairtreat_constraints_total counter\n\
            fairtreat_constraints_total{constraint=\"visibility\"} 3\n\
            fairtreat_constraints_total{constraint=\"budget\"} 7\n\
            fairtreat_decisions_total{action=\"x\",degraded=\"false\"} 9\n";
        let c = constraint_counts(text);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].name.as_str(), c[0].count), ("budget", 7));
        assert_eq!((c[1].name.as_str(), c[1].count), ("visibility", 3));
    }
}
