//! Speed of one decision: the pure core (features → scores → arbitration →
//! constraints, then rendering the answer), model inference alone, and the
//! whole service call on the embedded store for reference.
//!
//! `cargo bench --bench decision` measures; under `cargo test` criterion
//! runs every benchmark once, so this stays a quick smoke test there.
//!
//! The interactions are realistic (a ~300-character complaint, a praise
//! review) and the window snapshot is not empty: every deservingness band
//! and several groups of both audited attributes in every severity band
//! hold counts, so peer norms and parity are really computed. The trained
//! models are the ones `models/active.toml` names (what `fairtreat serve`
//! loads); the compiled-in VADER + rules models are measured too.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use fairtreat::clock::ManualClock;
use fairtreat::domain::decide::{self, Inputs, Stamp};
use fairtreat::domain::interaction::{Interaction, InteractionInput};
use fairtreat::domain::outcome::{OutcomeAction, OutcomeContext};
use fairtreat::domain::policy::{GestureKind, Intent, Policy};
use fairtreat::domain::window::{Cell, Counts, SeverityBand, WindowStats, DESERVINGNESS_BANDS};
use fairtreat::service::{DecisionService, Models};
use fairtreat::store::memory::MemoryStore;
use serde_json::json;
use time::macros::datetime;
use uuid::Uuid;

/// 300 characters of an unhappy customer, public, with an order at stake.
const COMPLAINT: &str = "I ordered the blue kettle three weeks ago and it arrived with a cracked lid and a dented base. \
I sent two emails and waited forty minutes on the phone, but nobody has answered or offered a replacement. \
Honestly this is the worst service I've had from you, and I'm not going to order again unless someone fixes it!";

/// A happy review of similar length.
const PRAISE: &str = "Absolutely love the new espresso machine! Delivery was a day early, the courier was friendly, \
and the setup guide was clear enough that I had my first coffee in ten minutes. Customer support answered my \
question about descaling within the hour. Great value for the price, and I've already recommended you to my sister.";

fn input(id: &str, kind: &str, text: &str, rating: u8, public: bool) -> InteractionInput {
    serde_json::from_value(json!({
        "interaction_id": id,
        "customer": {"id": "c-42", "tenure_days": 800, "lifetime_value": 1250.0,
                     "attributes": {"tier": "gold", "region": "EU"}},
        "channel": "social", "public": public, "audience": 5400,
        "kind": kind, "rating": rating,
        "text": text,
        "order_value": 89.9, "occurred_at": "2026-11-20T10:00:00Z"
    }))
    .expect("a valid interaction")
}

/// A week of traffic: every peer band and three groups of each audited
/// attribute in every severity band have counts (above the parity minimum).
fn busy_window() -> WindowStats {
    let mut w = WindowStats::default();
    for band in 0..DESERVINGNESS_BANDS {
        w.cells.insert(
            Cell::Peer { band: band as u8 },
            Counts {
                decisions: 900 + 100 * band as u64,
                perks: 40 * band as u64,
                value: 600.0 * band as f64,
            },
        );
    }
    for (attribute, groups) in [
        ("tier", ["gold", "silver", "bronze"]),
        ("region", ["EU", "US", "APAC"]),
    ] {
        for (g, group) in groups.iter().enumerate() {
            for (b, band) in SeverityBand::ALL.iter().enumerate() {
                w.cells.insert(
                    Cell::Group {
                        attribute: attribute.into(),
                        group: (*group).into(),
                        band: *band,
                    },
                    Counts {
                        decisions: 300 + 50 * g as u64,
                        perks: (10 + 5 * g as u64) * b as u64,
                        value: 120.0 * (g + b) as f64,
                    },
                );
            }
        }
    }
    w
}

fn trained_models() -> Option<Models> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    match fairtreat::model::load(&dir) {
        Ok(m) => Some(m),
        Err(e) => {
            eprintln!("trained models not measured: {e}");
            None
        }
    }
}

fn stamp() -> Stamp {
    Stamp {
        decision_id: Uuid::nil(),
        interaction_id: "bench-1".into(),
        model_version: "bench".into(),
        policy_version: 1,
        decided_at: datetime!(2026-11-20 12:00 UTC),
    }
}

fn core(c: &mut Criterion) {
    let policy = Policy::bundled();
    let window = busy_window();
    let cases = [
        (
            "complaint",
            input("bench-1", "complaint", COMPLAINT, 2, true),
        ),
        ("praise", input("bench-2", "review", PRAISE, 5, true)),
    ];
    let mut models = vec![("bundled", Models::bundled())];
    if let Some(m) = trained_models() {
        models.push(("trained", m));
    }
    let stamp = stamp();
    let mut group = c.benchmark_group("core/decide");
    for (model_name, m) in &models {
        for (case, raw) in &cases {
            let interaction = Interaction::try_from(raw.clone()).expect("valid");
            group.bench_function(format!("{model_name}/{case}"), |b| {
                b.iter(|| {
                    let plan = decide::plan(&Inputs {
                        interaction: black_box(&interaction),
                        policy: &policy,
                        sentiment: m.sentiment.as_ref(),
                        outcome: m.outcome.as_ref(),
                        window: &window,
                        draws: (0.5, 0.5),
                    });
                    plan.render(&policy, &stamp, None)
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("inference/sentiment");
    for (model_name, m) in &models {
        for (case, text) in [("complaint", COMPLAINT), ("praise", PRAISE)] {
            group.bench_function(format!("{model_name}/{case}"), |b| {
                b.iter(|| m.sentiment.score(black_box(text)))
            });
        }
    }
    group.finish();

    let ctx = OutcomeContext {
        sentiment: -0.8,
        severity: 0.74,
        loyalty: 0.6,
        kind: fairtreat::domain::interaction::Kind::Complaint,
        public: true,
        audience: 5400,
        stake: 89.9,
    };
    let action = OutcomeAction {
        intent: Intent::Apologise,
        gesture: Some((GestureKind::Credit, 15.0)),
    };
    let mut group = c.benchmark_group("inference/outcome");
    for (model_name, m) in &models {
        group.bench_function(*model_name, |b| {
            b.iter(|| m.outcome.p_good(black_box(&ctx), black_box(&action)))
        });
    }
    group.finish();
}

fn service(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let mut models = vec![("bundled", Models::bundled())];
    if let Some(m) = trained_models() {
        models.push(("trained", m));
    }
    let mut group = c.benchmark_group("service/decide");
    for (model_name, m) in models {
        let clock = ManualClock::new(datetime!(2026-11-20 12:00 UTC));
        let service = DecisionService::new(
            Policy::bundled(),
            m,
            Arc::new(MemoryStore::new()),
            Arc::new(clock.clone()),
        );
        let base = input("bench-0", "complaint", COMPLAINT, 2, true);
        let mut n = 0u64;
        group.bench_function(model_name, |b| {
            b.iter(|| {
                // A new interaction and customer every time (a replay would
                // only measure the idempotency lookup); one simulated second
                // apart, so the store keeps a realistic, bounded state.
                n += 1;
                let mut raw = base.clone();
                raw.interaction_id = format!("bench-{n}");
                raw.customer.id = format!("c-{}", n % 10_000);
                raw.occurred_at = None;
                clock.advance(time::Duration::seconds(1));
                let interaction = Interaction::try_from(raw.clone()).expect("valid");
                rt.block_on(service.decide(&raw, interaction))
                    .expect("decided")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, core, service);
criterion_main!(benches);
