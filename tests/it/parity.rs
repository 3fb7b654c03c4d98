//! Conditional parity over a stream of interactions whose groups differ in
//! loyalty mix (issue 4, criterion 1).

use std::sync::Arc;

use fairtreat::clock::ManualClock;
use fairtreat::domain::interaction::{Interaction, InteractionInput};
use fairtreat::domain::policy::Policy;
use fairtreat::domain::report::{fairness_report, FairnessReport};
use fairtreat::service::{DecisionService, Models};
use fairtreat::store::memory::MemoryStore;
use rand::{Rng, SeedableRng};
use serde_json::json;
use time::macros::datetime;
use time::Duration;

const TEXTS: &[&str] = &[
    "Order arrived broken and nobody answers my emails",
    "The delivery was three days late and the box was damaged.",
    "Terrible experience, the product stopped working after a week. I want a refund!",
    "Not happy, the size was wrong and the return is a hassle",
    "Disappointed. Support never called back.",
    "It's ok but the app keeps crashing",
];

/// Gold customers are loyal and valuable, bronze ones new; the grievances
/// are drawn from the same distribution for everyone.
fn stream(n: usize, seed: u64) -> Vec<InteractionInput> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let (tier, tenure, ltv) = match i % 3 {
                0 => ("gold", rng.gen_range(700..3000), rng.gen_range(1500.0..6000.0)),
                1 => ("silver", rng.gen_range(200..900), rng.gen_range(300.0..1500.0)),
                _ => ("bronze", rng.gen_range(0..120), rng.gen_range(0.0..120.0)),
            };
            let region = ["EU", "US", "APAC"][rng.gen_range(0..3)];
            serde_json::from_value(json!({
                "interaction_id": format!("s-{i}"),
                "customer": {"id": format!("sc-{i}"), "tenure_days": tenure, "lifetime_value": ltv,
                             "attributes": {"tier": tier, "region": region}},
                "channel": "review_site", "public": rng.gen_bool(0.5), "audience": rng.gen_range(0..5000),
                "kind": if rng.gen_bool(0.8) { "complaint" } else { "review" },
                "rating": rng.gen_range(1..=3),
                "text": TEXTS[rng.gen_range(0..TEXTS.len())],
                "order_value": rng.gen_range(15.0..250.0)
            }))
            .unwrap()
        })
        .collect()
}

fn run(enforce: bool) -> Vec<FairnessReport> {
    let mut policy = Policy::bundled();
    policy.fairness.enforce_parity = enforce;
    policy.budget.daily = 1.0e9;
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(datetime!(2026-11-16 00:00 UTC));
    let svc = DecisionService::new(
        policy.clone(),
        Models::bundled(),
        store,
        Arc::new(clock.clone()),
    );
    actix_web::rt::System::new().block_on(async {
        for input in stream(5000, 7) {
            clock.advance(Duration::minutes(1));
            svc.decide(&input, Interaction::try_from(input.clone()).unwrap())
                .await
                .unwrap();
        }
        let stats = svc.window_stats().await.unwrap();
        policy
            .fairness
            .group_attributes
            .iter()
            .map(|a| fairness_report(&policy, &stats, a))
            .collect()
    })
}

fn summary(reports: &[FairnessReport]) -> String {
    let mut out = String::new();
    for r in reports {
        for b in &r.bands {
            let rates: Vec<String> = b
                .groups
                .iter()
                .map(|g| format!("{}={:.3}({})", g.group, g.perk_rate, g.decisions))
                .collect();
            out.push_str(&format!(
                "{} {:?}: ratio {:.3} enforced {} [{}]\n",
                r.attribute,
                b.band,
                b.parity_ratio,
                b.enforced,
                rates.join(" ")
            ));
        }
    }
    out
}

#[test]
fn enforcement_keeps_every_sufficiently_sampled_band_at_or_above_the_parity_threshold() {
    let without = run(false);
    let with = run(true);
    eprintln!(
        "without enforcement:\n{}with enforcement:\n{}",
        summary(&without),
        summary(&with)
    );
    let threshold = Policy::bundled().fairness.min_parity_ratio;
    let tier = |reports: &[FairnessReport]| {
        reports
            .iter()
            .find(|r| r.attribute == "tier")
            .unwrap()
            .clone()
    };
    // Without enforcement the loyalty mix shows up as unequal treatment.
    let worst_without = tier(&without)
        .bands
        .iter()
        .filter(|b| b.groups.len() >= 2 && b.groups.iter().all(|g| g.decisions >= 30))
        .map(|b| b.parity_ratio)
        .fold(1.0, f64::min);
    assert!(
        worst_without < threshold,
        "the stream must be unfair without enforcement: {worst_without}"
    );
    // With it, every band with enough samples meets the threshold.
    let mut checked = 0;
    for r in &with {
        for b in &r.bands {
            if b.enforced {
                checked += 1;
                assert!(
                    b.parity_ratio >= threshold,
                    "{} {:?}: {} < {threshold}\n{}",
                    r.attribute,
                    b.band,
                    b.parity_ratio,
                    summary(&with)
                );
            }
        }
    }
    assert!(
        checked >= 2,
        "at least two bands must have enough samples to be enforced"
    );
}
