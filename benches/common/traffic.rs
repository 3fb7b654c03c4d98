//! Varied, realistic interactions for the benches that drive the service
//! with traffic (`memory`, `instructions`): 10,000 customers in three tiers
//! and four regions, five kinds, public and private, texts built from
//! complaint and praise fragments (60 to 300 characters), with and without
//! ratings and orders. Seeded, so a run is repeatable.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;

use fairtreat::domain::interaction::InteractionInput;

/// Whether this is a full run, and how many decisions to drive: `var` from
/// the environment, else `full` under `cargo bench` (which passes
/// `--bench`), else `smoke` (`cargo test` runs benches without it).
pub fn run_size(var: &str, full: usize, smoke: usize) -> (bool, usize) {
    let is_full = std::env::args().any(|a| a == "--bench");
    let n = std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if is_full { full } else { smoke });
    (is_full, n)
}

/// Distinct customers.
pub const CUSTOMERS: usize = 10_000;

const OPENINGS: &[&str] = &[
    "My order arrived broken",
    "The parcel was two weeks late",
    "I was charged twice for the same order",
    "Absolutely love the new kettle",
    "Quick question about my delivery",
    "The replacement you sent is also faulty",
    "Great service as always",
    "Nobody answers my emails",
    "The app keeps logging me out",
    "Thanks for the fast refund",
];
const MIDDLES: &[&str] = &[
    " and the box was soaked through.",
    ", which is really disappointing after years of ordering from you.",
    "! The courier was friendly and it came a day early.",
    " and I waited forty minutes on the phone before giving up.",
    ". Can you tell me when it will be shipped?",
    ", and the support chat closed on me twice.",
    " - honestly the best purchase I've made this year.",
    "",
];
const ENDINGS: &[&str] = &[
    " Please fix this.",
    " I want my money back!!!",
    " Keep it up :)",
    " Not happy at all.",
    " Will order again.",
    " This is the worst experience I have had with any shop, and I have told my friends.",
    "",
];

pub fn text(rng: &mut StdRng) -> String {
    let mut t = String::new();
    for _ in 0..rng.gen_range(1..=3) {
        t.push_str(OPENINGS[rng.gen_range(0..OPENINGS.len())]);
        t.push_str(MIDDLES[rng.gen_range(0..MIDDLES.len())]);
        t.push_str(ENDINGS[rng.gen_range(0..ENDINGS.len())]);
        t.push(' ');
    }
    t.trim_end().to_string()
}

/// Interaction number `n` (its id is `mem-<n>`).
pub fn interaction(n: usize, rng: &mut StdRng) -> InteractionInput {
    let c = rng.gen_range(0..CUSTOMERS);
    let kinds = ["complaint", "review", "praise", "question", "mention"];
    let channels = ["review_site", "social", "email", "chat", "in_app"];
    let public = rng.gen_bool(0.4);
    let tier = ["gold", "silver", "bronze"][c % 3];
    let region = ["EU", "US", "APAC", "LATAM"][c % 4];
    let channel = channels[rng.gen_range(0..channels.len())];
    let kind = kinds[rng.gen_range(0..kinds.len())];
    let audience = if public {
        rng.gen_range(10..200_000u64)
    } else {
        0
    };
    let rating = rng.gen_bool(0.6).then(|| rng.gen_range(1..=5u8));
    let order_value = rng
        .gen_bool(0.7)
        .then(|| rng.gen_range(5.0..400.0f64).round());
    serde_json::from_value(json!({
        "interaction_id": format!("mem-{n}"),
        "customer": {
            "id": format!("c-{c}"),
            "tenure_days": (c * 37) % 3000,
            "lifetime_value": ((c * 53) % 5000) as f64,
            "attributes": {"tier": tier, "region": region}
        },
        "channel": channel,
        "public": public,
        "audience": audience,
        "kind": kind,
        "rating": rating,
        "text": text(rng),
        "order_value": order_value,
    }))
    .expect("a valid interaction")
}
