//! Fuzz target `decide`: the whole pure path of one decision, from untrusted
//! bytes to the JSON a client receives.
//!
//! bytes → `InteractionInput` (serde) → `Interaction` (validation) →
//! `plan` (bundled policy; both the compiled-in and the trained models; a
//! window that already holds decisions) → `Plan::render` (granted and every
//! refusal) → JSON. It checks what no unit test can cover exhaustively: no
//! panic anywhere, every number finite (serde_json would write NaN as
//! `null`), the JSON reads back to the same decision, and the validated ids
//! carry no character that would change a Redis key (`{`, `}`, `:`).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use fairtreat::domain::decide::{self, Inputs, Refusal, Stamp};
use fairtreat::domain::decision::Decision;
use fairtreat::domain::interaction::{Interaction, InteractionInput};
use fairtreat::domain::policy::Policy;
use fairtreat::domain::window::{cells_for, WindowStats};
use fairtreat::service::Models;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    policy: Policy,
    /// The compiled-in VADER + rules models, then the trained ones.
    models: [Models; 2],
    window: WindowStats,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let policy = Policy::bundled();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let trained = fairtreat::model::load(&dir).expect("the trained models in models/ load");
        Fixture {
            window: window(&policy),
            policy,
            models: [Models::bundled(), trained],
        }
    })
}

/// A window that already holds decisions in every peer band and in several
/// groups of each audited attribute, so peer norms and parity have data
/// (an empty window only exercises the prior).
fn window(policy: &Policy) -> WindowStats {
    let audited = &policy.fairness.group_attributes;
    let edges = policy.fairness.severity_bands;
    let mut stats = WindowStats::default();
    let groups = ["gold", "silver", "bronze", "EU", "US", "APAC"];
    for n in 0..240u32 {
        let attributes = audited
            .iter()
            .enumerate()
            .map(|(k, a)| (a.clone(), groups[(n as usize + k * 3) % groups.len()].to_string()))
            .collect();
        let severity = f64::from(n % 11) / 10.0;
        let deservingness = f64::from((n * 7) % 13) / 12.0;
        let cells = cells_for(&attributes, audited, edges, severity, deservingness);
        // Some groups are granted more often and more generously, so parity
        // has something to correct.
        let granted = (n % 3 == 0 || n % 6 < 2).then(|| f64::from(5 + n % 40));
        stats.record(&cells, granted);
    }
    stats
}

/// Two draws in [0, 1) from the input, so exploration is exercised and
/// runs are reproducible.
fn draws(data: &[u8]) -> (f64, f64) {
    // FNV-1a; the quality of the hash does not matter, only determinism.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let unit = |x: u64| (x >> 11) as f64 / (1u64 << 53) as f64;
    (unit(h), unit(h.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

fn key_safe(id: &str) -> bool {
    !id.contains(['{', '}', ':'])
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<InteractionInput>(data) else {
        return;
    };
    let Ok(interaction) = Interaction::try_from(input) else {
        return;
    };
    assert!(key_safe(interaction.id.as_str()), "interaction id {:?}", interaction.id);
    assert!(
        key_safe(interaction.customer.id.as_str()),
        "customer id {:?}",
        interaction.customer.id
    );
    let fx = fixture();
    for models in &fx.models {
        let plan = decide::plan(&Inputs {
            interaction: &interaction,
            policy: &fx.policy,
            sentiment: models.sentiment.as_ref(),
            outcome: models.outcome.as_ref(),
            window: &fx.window,
            draws: draws(data),
        });
        let stamp = Stamp {
            decision_id: uuid::Uuid::from_u128(0x5eed),
            interaction_id: interaction.id.to_string(),
            model_version: models.version(),
            policy_version: fx.policy.version,
            decided_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        for refusal in [
            None,
            Some(Refusal::PerCustomerCap),
            Some(Refusal::Budget),
            Some(Refusal::Unavailable),
        ] {
            let decision = plan.render(&fx.policy, &stamp, refusal);
            assert!(decision.all_numbers_finite(), "non-finite number in {decision:?}");
            assert!(key_safe(&decision.interaction_id));
            let json = serde_json::to_vec(&decision).expect("a decision serialises");
            let back: Decision = serde_json::from_slice(&json).unwrap_or_else(|e| {
                panic!("the JSON of a decision does not read back ({e}): {}", String::from_utf8_lossy(&json))
            });
            assert_eq!(back, decision, "the decision changed through JSON");
        }
    }
});
