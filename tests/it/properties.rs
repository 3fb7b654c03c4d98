//! Properties of the decision core (issue 4, criterion 6), checked on random
//! interactions and random window states.

use std::sync::OnceLock;

use fairtreat::domain::decide::{
    gesture_choice, gesture_steps, plan, valued_candidates, Inputs, Stamp,
};
use fairtreat::domain::decision::{ConstraintName, Decision, Delivery};
use fairtreat::domain::interaction::{Interaction, InteractionInput};
use fairtreat::domain::outcome::RulesOutcome;
use fairtreat::domain::policy::{Policy, NO_ACTION};
use fairtreat::domain::sentiment::VaderScorer;
use fairtreat::domain::window::{Cell, Counts, SeverityBand, WindowStats};
use proptest::prelude::*;
use serde_json::json;
use time::macros::datetime;
use uuid::Uuid;

fn vader() -> &'static VaderScorer {
    static V: OnceLock<VaderScorer> = OnceLock::new();
    V.get_or_init(VaderScorer::bundled)
}

const TEXTS: &[&str] = &[
    "Order arrived broken and nobody answers my emails",
    "The delivery was late and the box was damaged.",
    "Worst service ever. I want my money back!!!",
    "It's ok I guess",
    "Love it, thank you so much!",
    "How do I return this?",
];

#[derive(Debug, Clone)]
struct Case {
    kind: &'static str,
    rating: Option<u8>,
    text: &'static str,
    order: Option<f64>,
    tenure: u32,
    ltv: f64,
    public: bool,
    audience: u64,
    channel: &'static str,
    tier: &'static str,
    region: &'static str,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            prop::sample::select(vec!["complaint", "review", "praise", "question", "mention"]),
            prop::option::of(1u8..=5),
            prop::sample::select(TEXTS.to_vec()),
            prop::option::of(1.0f64..800.0),
            0u32..4000,
            0.0f64..8000.0,
        ),
        (
            any::<bool>(),
            0u64..1_000_000,
            prop::sample::select(vec!["review_site", "social", "email", "chat"]),
            prop::sample::select(vec!["gold", "silver", "bronze"]),
            prop::sample::select(vec!["EU", "US"]),
        ),
    )
        .prop_map(
            |(
                (kind, rating, text, order, tenure, ltv),
                (public, audience, channel, tier, region),
            )| Case {
                kind,
                rating,
                text,
                order,
                tenure,
                ltv,
                public,
                audience,
                channel,
                tier,
                region,
            },
        )
}

/// A window in which parity may or may not bind.
fn window() -> impl Strategy<Value = WindowStats> {
    prop::collection::vec((0u64..200, 0u64..200), 3 * 3 * 2).prop_map(|v| {
        let mut w = WindowStats::default();
        let mut it = v.into_iter();
        for band in SeverityBand::ALL {
            for (attribute, groups) in [
                ("tier", vec!["gold", "silver", "bronze"]),
                ("region", vec!["EU", "US"]),
            ] {
                for g in groups {
                    if let Some((d, p)) = it.next() {
                        w.cells.insert(
                            Cell::Group {
                                attribute: attribute.into(),
                                group: g.into(),
                                band,
                            },
                            Counts {
                                decisions: d + 30,
                                perks: p.min(d + 30),
                                value: p as f64 * 10.0,
                            },
                        );
                    }
                }
            }
        }
        w
    })
}

fn interaction(c: &Case) -> Interaction {
    let input: InteractionInput = serde_json::from_value(json!({
        "interaction_id": "p-1",
        "customer": {"id": "pc-1", "tenure_days": c.tenure, "lifetime_value": c.ltv,
                     "attributes": {"tier": c.tier, "region": c.region}},
        "channel": c.channel, "public": c.public, "audience": c.audience,
        "kind": c.kind, "rating": c.rating, "text": c.text, "order_value": c.order
    }))
    .unwrap();
    Interaction::try_from(input).unwrap()
}

fn decide(policy: &Policy, i: &Interaction, w: &WindowStats) -> Decision {
    let inputs = Inputs {
        interaction: i,
        policy,
        sentiment: vader(),
        outcome: &RulesOutcome,
        window: w,
        draws: (0.99, 0.0),
    };
    let stamp = Stamp {
        decision_id: Uuid::nil(),
        interaction_id: "p-1".into(),
        model_version: "m".into(),
        policy_version: policy.version,
        decided_at: datetime!(2026-11-20 12:00 UTC),
    };
    plan(&inputs).render(policy, &stamp, None)
}

fn listed(d: &Decision, name: ConstraintName) -> bool {
    d.constraints.iter().any(|c| c.name == name)
}

fn gesture_value(d: &Decision) -> f64 {
    d.gesture.as_ref().map(|g| g.value).unwrap_or(0.0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn higher_deservingness_never_gets_a_smaller_gesture_unless_parity_says_so(
        c in case(), w in window(), more_tenure in 0u32..3000, more_ltv in 0.0f64..5000.0, worse in 0u8..3,
    ) {
        let policy = Policy::bundled();
        let low = interaction(&c);
        let mut better = c.clone();
        better.tenure = c.tenure + more_tenure;
        better.ltv = c.ltv + more_ltv;
        better.rating = c.rating.map(|r| r.saturating_sub(worse).max(1));
        let high = interaction(&better);
        let (dl, dh) = (decide(&policy, &low, &w), decide(&policy, &high, &w));
        prop_assert!(dh.scores.deservingness >= dl.scores.deservingness);
        if !listed(&dl, ConstraintName::Parity) && !listed(&dh, ConstraintName::Parity) {
            prop_assert!(
                gesture_value(&dh) >= gesture_value(&dl),
                "d {} -> {:?} but d {} -> {:?}", dl.scores.deservingness, dl.gesture, dh.scores.deservingness, dh.gesture
            );
        }
    }

    #[test]
    fn audience_channel_visibility_and_attributes_never_change_the_gesture_unless_parity_says_so(
        c in case(), w in window(), public in any::<bool>(), audience in 0u64..10_000_000,
        channel in prop::sample::select(vec!["review_site", "social", "email", "chat", "phone", "in_app", "survey"]),
        tier in prop::sample::select(vec!["gold", "silver", "bronze"]), region in prop::sample::select(vec!["EU", "US"]),
    ) {
        let policy = Policy::bundled();
        let mut other = c.clone();
        (other.public, other.audience, other.channel, other.tier, other.region) = (public, audience, channel, tier, region);
        let (a, b) = (decide(&policy, &interaction(&c), &w), decide(&policy, &interaction(&other), &w));
        prop_assert_eq!(a.scores, b.scores);
        if !listed(&a, ConstraintName::Parity) && !listed(&b, ConstraintName::Parity) {
            prop_assert_eq!(a.gesture.as_ref().map(|g| (g.kind, g.value)), b.gesture.as_ref().map(|g| (g.kind, g.value)));
        }
    }

    #[test]
    fn every_decision_a_constraint_changed_lists_that_constraint(c in case(), w in window()) {
        let policy = Policy::bundled();
        let i = interaction(&c);
        let d = decide(&policy, &i, &w);
        // What arbitration alone would pick on the real view, and how it
        // would deliver it.
        let inputs = Inputs { interaction: &i, policy: &policy, sentiment: vader(), outcome: &RulesOutcome, window: &w, draws: (0.99, 0.0) };
        let (_, cands) = valued_candidates(&inputs, i.public, i.audience);
        let unconstrained = gesture_choice(&cands);
        let chosen = d.gesture.as_ref().map(|g| (g.kind, g.value));
        if chosen != unconstrained {
            prop_assert!(
                listed(&d, ConstraintName::Consistency) || listed(&d, ConstraintName::Parity),
                "gesture {:?} instead of {:?} without a constraint: {:?}", chosen, unconstrained, d.constraints
            );
        }
        if d.gesture.is_some() && i.public {
            prop_assert!(listed(&d, ConstraintName::Visibility));
        }
        let best_action = cands.iter().find(|x| x.gesture == unconstrained).map(|x| x.spec.id.clone()).unwrap_or_default();
        if d.action != best_action && chosen == unconstrained {
            prop_assert!(d.explored || !d.constraints.is_empty(), "{} instead of {} unexplained", d.action, best_action);
        }
        prop_assert!(d.all_numbers_finite());
    }

    /// With opt-in gesture exploration (the properties above run with it
    /// off, the default): an explored gesture is one step from the
    /// consistent one, bounded like any gesture, delivered privately, never
    /// for spam; the published probabilities are a distribution and the
    /// propensity is the chosen action's entry.
    #[test]
    fn an_explored_gesture_stays_one_step_from_the_consistent_gesture_and_within_bounds(
        c in case(), w in window(), draws in (0.0f64..1.0, 0.0f64..1.0), rate in 0.01f64..=0.2,
    ) {
        let mut policy = Policy::bundled();
        policy.exploration.gesture_epsilon = rate;
        let i = interaction(&c);
        let inputs = Inputs { interaction: &i, policy: &policy, sentiment: vader(), outcome: &RulesOutcome, window: &w, draws };
        let p = plan(&inputs);
        let total: f64 = p.primary.probabilities.iter().map(|(_, x)| x).sum();
        prop_assert!((total - 1.0).abs() < 1e-9, "{:?}", p.primary.probabilities);
        let entry = p.primary.probabilities.iter().find(|(a, _)| *a == p.primary.action).map(|(_, x)| *x);
        prop_assert_eq!(entry, Some(p.primary.propensity));
        let stamp = Stamp {
            decision_id: Uuid::nil(),
            interaction_id: "p-1".into(),
            model_version: "m".into(),
            policy_version: policy.version,
            decided_at: datetime!(2026-11-20 12:00 UTC),
        };
        let d = p.render(&policy, &stamp, None);
        if d.action == NO_ACTION {
            prop_assert!(!p.primary.gesture_explored);
        }
        if p.primary.gesture_explored {
            prop_assert!(d.explored);
            let (_, canon) = valued_candidates(&inputs, false, 0);
            let steps = gesture_steps(&canon, gesture_choice(&canon));
            prop_assert!(steps.contains(&p.primary.gesture), "{:?} not in {:?}", p.primary.gesture, steps);
        }
        if let Some(g) = &d.gesture {
            prop_assert_eq!(g.delivery, Delivery::Private);
            let spec = policy.action(&d.action).unwrap().gesture.clone().unwrap();
            prop_assert!(g.value <= spec.max);
            if let Some(order) = c.order {
                prop_assert!(g.value <= (policy.scoring.max_order_multiple * order).round() + 1e-9);
            }
            if c.public {
                prop_assert!(!d.response.message.chars().any(|ch| ch.is_ascii_digit()));
            }
        }
        prop_assert!(d.all_numbers_finite());
    }
}
