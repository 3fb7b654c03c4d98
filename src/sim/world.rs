//! The customer-and-observer simulator: a population of customers writing
//! reviews, posts and complaints, the true probability that an answer ends
//! well, and what everyone watching concludes.
//!
//! No public data links treatments to outcomes, so the product is evaluated
//! (and its outcome model trained) on this explicit generative story,
//! grounded in the service-recovery literature:
//!
//! 1. **Who**: tiers with different loyalty mixes (gold: long tenure, high
//!    lifetime value; bronze: new), regions, public or private channels, and
//!    audiences with a heavy tail (a few posts reach 10⁵ people).
//! 2. **What happened**: a latent severity drives the rating, the words and
//!    the kind of interaction; the order value says what was at stake.
//! 3. **Recovery** ([`TrueOutcome`]): the chance of a good outcome (the customer
//!    stays and the follow-up is positive) rises with loyalty and falls with
//!    severity; an apology helps the let-down and a thank-you the happy; a
//!    gesture helps its recipient with diminishing returns relative to the
//!    order (over-compensation beyond ~150 % buys nothing, Haesevoets et al.
//!    2017) and more when it matches the failure; ignoring hurts.
//! 4. **Observers** ([`observer_loss`]): everyone who sees a gesture compares
//!    it with what they would get. Their loss grows with the audience that
//!    saw it and with the gap between the gesture and what customers in the
//!    same situation usually get (Söderlund et al. 2014); a gesture delivered
//!    privately is seen by few (Jiang, Hoegg & Dahl 2013 — it still leaks).
//!
//! The true outcome deliberately differs from the bundled prior
//! ([`crate::domain::outcome::RulesOutcome`]), so a model trained on
//! simulated logs has something to learn.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::domain::interaction::{InteractionInput, Kind};
use crate::domain::outcome::{OutcomeAction, OutcomeContext, OutcomeModel};
use crate::domain::policy::{GestureKind, Intent};

/// Texts by how bad things were, from real-sounding reviews.
const VERY_BAD: &[&str] = &[
    "Absolutely terrible. The order arrived broken and nobody answers my emails!",
    "Worst service ever. I was charged twice and support hung up on me.",
    "Disgusting. The product broke after one day and I want my money back now!",
    "Never again. Three weeks late, damaged, and rude staff on the phone.",
];
const BAD: &[&str] = &[
    "The delivery was late and the box was damaged.",
    "Disappointed: the size was wrong and the return is a hassle.",
    "Support never called back about my broken charger.",
    "The app keeps crashing when I try to pay. Frustrating.",
];
const MIXED: &[&str] = &[
    "It's ok, but shipping took longer than promised.",
    "Decent product, though the instructions were confusing.",
    "Not bad, not great. Packaging could be better.",
];
const GOOD: &[&str] = &[
    "Great service, the team went above and beyond. Thank you!",
    "Love it! Fast delivery and lovely quality.",
    "Very happy with my order, will buy again :)",
];
const QUESTIONS: &[&str] = &[
    "Do you ship to Norway, and how long does it take?",
    "How do I change the address on my order?",
    "Is this jacket available in a larger size?",
];

/// Draws a population of interactions, deterministically from `seed`,
/// spread over `days` days before `end`.
pub fn generate(seed: u64, n: usize, end: OffsetDateTime, days: i64) -> Vec<InteractionInput> {
    let mut rng = StdRng::seed_from_u64(seed);
    let span = Duration::days(days).whole_seconds().max(1);
    let mut out: Vec<InteractionInput> = (0..n)
        .map(|i| {
            let tier_draw: f64 = rng.gen();
            let (tier, tenure, ltv) = if tier_draw < 0.25 {
                ("gold", rng.gen_range(600..3000), rng.gen_range(1500.0..6000.0))
            } else if tier_draw < 0.6 {
                ("silver", rng.gen_range(150..1000), rng.gen_range(250.0..1500.0))
            } else {
                ("bronze", rng.gen_range(0..180), rng.gen_range(0.0..250.0))
            };
            let region = match rng.gen_range(0..10) {
                0..=3 => "EU",
                4..=7 => "US",
                _ => "APAC",
            };
            let kind_draw: f64 = rng.gen();
            let kind = if kind_draw < 0.45 {
                Kind::Complaint
            } else if kind_draw < 0.75 {
                Kind::Review
            } else if kind_draw < 0.85 {
                Kind::Praise
            } else if kind_draw < 0.95 {
                Kind::Question
            } else {
                Kind::Mention
            };
            // Latent severity: complaints skew bad, praise is never bad.
            let badness: f64 = match kind {
                Kind::Complaint => 0.35 + 0.65 * rng.gen::<f64>().powf(0.7),
                Kind::Review | Kind::Mention => rng.gen::<f64>(),
                Kind::Praise => 0.1 * rng.gen::<f64>(),
                Kind::Question => 0.3 * rng.gen::<f64>(),
            };
            let bank = match (kind, badness) {
                (Kind::Question, _) => QUESTIONS,
                (_, b) if b > 0.75 => VERY_BAD,
                (_, b) if b > 0.5 => BAD,
                (_, b) if b > 0.25 => MIXED,
                _ => GOOD,
            };
            let text = bank[rng.gen_range(0..bank.len())];
            let rating = if kind == Kind::Question {
                None
            } else {
                Some((5.0 - 4.0 * badness + rng.gen_range(-0.5..0.5)).round().clamp(1.0, 5.0) as u8)
            };
            let channel = ["review_site", "social", "email", "chat", "phone", "in_app", "survey"][rng.gen_range(0..7)];
            let public = matches!(channel, "review_site" | "social");
            // Heavy-tailed audience: most posts are seen by a few hundred
            // people, a few by a hundred thousand.
            let audience = if public { (rng.gen::<f64>().powf(4.0) * 100_000.0 + rng.gen_range(10.0..300.0)) as u64 } else { 0 };
            let order_value = (rng.gen_range(2.5f64..5.8)).exp().min(2000.0);
            let at = end - Duration::seconds(rng.gen_range(0..span));
            serde_json::from_value(json!({
                "interaction_id": format!("sim-{seed}-{i}"),
                "customer": {"id": format!("simc-{seed}-{i}"), "tenure_days": tenure, "lifetime_value": (ltv * 100.0f64).round() / 100.0,
                             "attributes": {"tier": tier, "region": region}},
                "channel": channel, "public": public, "audience": audience,
                "kind": kind, "rating": rating, "text": text,
                "order_value": (order_value * 100.0).round() / 100.0,
                "occurred_at": at.format(&time::format_description::well_known::Rfc3339).expect("formats")
            }))
            .expect("a generated interaction is valid")
        })
        .collect();
    out.sort_by_key(|i| i.occurred_at);
    out
}

/// The simulator's ground truth: the probability of a good outcome.
#[derive(Debug, Default, Clone, Copy)]
pub struct TrueOutcome;

impl TrueOutcome {
    pub const VERSION: &'static str = "simulator-truth-1";

    pub fn logit(ctx: &OutcomeContext, action: &OutcomeAction) -> f64 {
        let sev = ctx.severity;
        let mut x = -0.2 + 1.0 * ctx.sentiment - 2.0 * sev + 1.2 * ctx.loyalty;
        x += match action.intent {
            Intent::Ignore => -0.5 - 2.5 * sev,
            Intent::Thank => {
                if sev < 0.3 {
                    0.9
                } else {
                    -1.0
                }
            }
            Intent::Inform => {
                if ctx.kind == Kind::Question {
                    1.0
                } else {
                    0.2 - 0.8 * sev
                }
            }
            Intent::Apologise => 0.4 + 1.6 * sev,
            Intent::Escalate => 1.5 * sev + 3.0 * (sev - 0.75).max(0.0),
        };
        if ctx.public && action.intent != Intent::Ignore {
            // Being answered in public, where one complained, counts.
            x += 0.2;
        }
        if let Some((kind, value)) = action.gesture {
            let effect = 1.0 - (-value / (0.4 * ctx.stake.max(10.0))).exp();
            let fit = match kind {
                GestureKind::Credit | GestureKind::Replacement => 1.0,
                GestureKind::Discount => 0.75,
                GestureKind::Gift | GestureKind::FreeShipping => 0.5,
            };
            // Loyal customers value being made whole more.
            x += 2.5 * sev * effect * fit * (0.7 + 0.6 * ctx.loyalty);
        }
        x
    }
}

impl OutcomeModel for TrueOutcome {
    fn version(&self) -> &str {
        Self::VERSION
    }

    fn p_good(&self, ctx: &OutcomeContext, action: &OutcomeAction) -> f64 {
        1.0 / (1.0 + (-Self::logit(ctx, action)).exp())
    }
}

/// Share of a privately delivered gesture that observers still learn of.
pub const PRIVATE_LEAK: f64 = 0.1;

/// Observers' justice loss for one gesture: the people who saw it, times how
/// far it sits above what customers in the same situation usually get.
/// `announced`: whether the gesture was made public in the reply.
pub fn observer_loss(public: bool, audience: u64, announced: bool, value: f64, norm: f64) -> f64 {
    let seen_by =
        if public { audience as f64 } else { 0.0 } * if announced { 1.0 } else { PRIVATE_LEAK };
    // Per thousand observers, so figures stay readable.
    seen_by / 1000.0 * (value - norm).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::interaction::Interaction;
    use time::macros::datetime;

    #[test]
    fn generation_is_deterministic_valid_and_mixed() {
        let end = datetime!(2026-11-20 00:00 UTC);
        let a = generate(3, 500, end, 7);
        assert_eq!(a, generate(3, 500, end, 7));
        assert_ne!(a, generate(4, 500, end, 7));
        for i in &a {
            Interaction::try_from(i.clone()).unwrap();
        }
        let public = a.iter().filter(|i| i.public).count();
        assert!(public > 100 && public < 400, "{public}");
        assert!(a.iter().any(|i| i.audience > 20_000), "a heavy tail");
        assert!(a.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at));
    }

    #[test]
    fn a_gesture_helps_a_severe_case_with_diminishing_returns() {
        let ctx = OutcomeContext {
            sentiment: -0.7,
            severity: 0.8,
            loyalty: 0.5,
            kind: Kind::Complaint,
            public: false,
            audience: 0,
            stake: 60.0,
        };
        let p = |g: Option<(GestureKind, f64)>| {
            TrueOutcome.p_good(
                &ctx,
                &OutcomeAction {
                    intent: Intent::Apologise,
                    gesture: g,
                },
            )
        };
        let (none, small, fair, lavish) = (
            p(None),
            p(Some((GestureKind::Credit, 10.0))),
            p(Some((GestureKind::Credit, 60.0))),
            p(Some((GestureKind::Credit, 600.0))),
        );
        assert!(none < small && small < fair && fair < lavish);
        assert!(
            lavish - fair < 0.5 * (fair - none),
            "over-compensation buys little"
        );
    }

    #[test]
    fn observers_mind_announced_gestures_above_the_norm() {
        assert_eq!(observer_loss(true, 5000, true, 10.0, 10.0), 0.0);
        let announced = observer_loss(true, 5000, true, 30.0, 10.0);
        let private = observer_loss(true, 5000, false, 30.0, 10.0);
        assert!((announced - 100.0).abs() < 1e-9);
        assert!((private - 10.0).abs() < 1e-9);
        assert_eq!(observer_loss(false, 0, false, 30.0, 0.0), 0.0);
    }
}
