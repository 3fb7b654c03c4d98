//! Real replicas against real Redis: `fairtreat serve` processes sharing a
//! `redis-server`, under concurrency (TESTPLAN §4.3), faults (§4.2) and with
//! canary secrets (§4.5).
//!
//! A test binary of its own, because these tests measure latency: cargo runs
//! test binaries one after another, so they never share the two cores with
//! the CPU-heavy reference tests of `tests/it`, and within this binary they
//! run one at a time ([`redis_harness::heavy`]).

#[path = "../it/redis_harness.rs"]
mod redis_harness;

mod concurrency;
mod faults;
mod security;

use serde_json::{json, Value};

/// The contract's example interaction (DESIGN.md), which earns a gesture.
pub fn interaction() -> Value {
    json!({
        "interaction_id": "crm-8812",
        "customer": {"id": "c-42", "tenure_days": 800, "lifetime_value": 1250.0,
                     "attributes": {"tier": "gold", "region": "EU"}},
        "channel": "social", "public": true, "audience": 5400,
        "kind": "complaint", "rating": 2,
        "text": "Order arrived broken and nobody answers my emails",
        "order_value": 89.9, "occurred_at": "2026-11-20T10:00:00Z"
    })
}
