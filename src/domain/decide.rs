//! Arbitration and the constraints that can be applied without shared state.
//!
//! For every eligible action: `utility = p(good) × customer value − cost −
//! justice cost`, where the justice cost is `justice_weight × visibility ×
//! gap` and the gap is how far the gesture sits above what peers with the
//! same deservingness received in the window.
//!
//! Consistency is enforced by construction: the gesture is chosen on the
//! *canonical* view of the interaction (private, no audience, no group
//! attributes: only what the customer experienced and who they are as a
//! customer). The reply is then chosen on the real view among the actions
//! that carry that same gesture. When the real view alone would have picked
//! a different gesture (more visibility raises the justice cost), the
//! consistency constraint is reported.
//!
//! Exploration varies the reply among the actions carrying that gesture. An
//! opt-in rate (`exploration.gesture_epsilon`) may also move the gesture one
//! step ([`gesture_steps`]); every branch of the randomisation is settled
//! with parity, so the published probabilities ([`Choice::probabilities`])
//! stay exact.
//!
//! The result is a [`Plan`]: the decision to record if the gesture can be
//! granted, and the best answer without a gesture if a per-customer cap or
//! the daily budget refuses it. The store picks between them atomically.

use std::cmp::Ordering;

use time::OffsetDateTime;
use uuid::Uuid;

use super::decision::{
    Alternative, ConstraintEffect, ConstraintName, Decision, Delivery, Gesture, Reply, ReplyChannel,
};
use super::interaction::Interaction;
use super::outcome::{OutcomeAction, OutcomeContext, OutcomeModel};
use super::policy::{ActionSpec, GestureKind, Intent, Policy, MOVE_PRIVATE_TEMPLATE, NO_ACTION};
use super::scoring::{self, LoyaltyInputs, Scores, Signal};
use super::sentiment::SentimentModel;
use super::window::{Counts, SeverityBand, WindowStats, UNKNOWN_GROUP};

/// Everything a decision depends on besides shared state.
pub struct Inputs<'a> {
    pub interaction: &'a Interaction,
    pub policy: &'a Policy,
    pub sentiment: &'a dyn SentimentModel,
    pub outcome: &'a dyn OutcomeModel,
    pub window: &'a WindowStats,
    /// Two uniform draws in [0, 1) for exploration (whether, and which).
    pub draws: (f64, f64),
}

/// One candidate action, valued.
#[derive(Debug, Clone)]
pub struct Candidate<'p> {
    pub spec: &'p ActionSpec,
    pub gesture: Option<(GestureKind, f64)>,
    pub p_good: f64,
    pub cost: f64,
    pub justice_cost: f64,
    pub utility: f64,
    /// For a gesture: whether the gesture is worth giving at all, judged on
    /// its entry-level value (`min`) against the same reply without it, with
    /// the outcome model asked at the policy's reference loyalty
    /// (`scoring.reference_loyalty`) and the gain valued at this customer's
    /// (bounded) value. Both only grow with deservingness. Judging worth
    /// this way, rather than at the full value, is what keeps gestures
    /// monotone in deservingness: the full value grows with deservingness,
    /// and so would its cost, until the most deserving no longer "paid off".
    pub worth: f64,
}

/// A chosen action with how it was chosen.
#[derive(Debug, Clone)]
pub struct Choice {
    pub action: String,
    pub gesture: Option<(GestureKind, f64)>,
    pub propensity: f64,
    /// The policy's probability of every action it could have taken here
    /// (action id, probability; absent actions have probability 0). The
    /// chosen action's entry equals `propensity`.
    pub probabilities: Vec<(String, f64)>,
    /// Whether the choice departs at random from the best one (the reply,
    /// the gesture or both).
    pub explored: bool,
    /// Whether the gesture itself was explored (opt-in
    /// `exploration.gesture_epsilon`): one step from the consistent gesture.
    pub gesture_explored: bool,
    pub utility: f64,
    /// The justice cost inside `utility` (visible inequity, currency units).
    pub justice_cost: f64,
}

/// What an explored decision varied, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExploredPart {
    Reply,
    Gesture,
}

impl ExploredPart {
    pub fn as_str(self) -> &'static str {
        match self {
            ExploredPart::Reply => "reply",
            ExploredPart::Gesture => "gesture",
        }
    }
}

impl Choice {
    /// What this choice explored, if anything.
    pub fn exploration(&self) -> Option<ExploredPart> {
        if self.gesture_explored {
            Some(ExploredPart::Gesture)
        } else if self.explored {
            Some(ExploredPart::Reply)
        } else {
            None
        }
    }
}

/// The outcome of arbitration, before the store applies caps and budget.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scores: Scores,
    pub public: bool,
    /// The choice if its gesture (if any) can be granted.
    pub primary: Choice,
    /// The best answer without a gesture; used when caps or budget refuse.
    pub fallback: Choice,
    pub alternatives: Vec<Alternative>,
    pub constraints: Vec<ConstraintEffect>,
    pub reasons: Vec<String>,
    pub currency: String,
}

/// Why the store refused a gesture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerCustomerCap,
    Budget,
    /// Shared state could not be reached or trusted.
    Unavailable,
}

/// Versions and ids stamped on a rendered decision.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub decision_id: Uuid,
    pub interaction_id: String,
    pub model_version: String,
    pub policy_version: u32,
    pub decided_at: OffsetDateTime,
}

/// How visible a gesture would be: in [private_visibility, 1].
pub fn visibility(policy: &Policy, public: bool, audience: u64) -> f64 {
    let floor = policy.scoring.private_visibility;
    if !public {
        return floor;
    }
    let full = policy.scoring.full_visibility_audience.max(1) as f64;
    let reach = ((audience as f64).ln_1p() / full.ln_1p()).clamp(0.0, 1.0);
    floor + (1.0 - floor) * (0.3 + 0.7 * reach)
}

/// Value of keeping this customer, bounded so no spender buys a different
/// treatment.
pub fn customer_value(policy: &Policy, lifetime_value: f64) -> f64 {
    let s = &policy.scoring;
    (s.base_customer_value + s.lifetime_value_share * lifetime_value).min(s.max_customer_value)
}

/// The gesture value the published rule gives: proportional to
/// deservingness and the order, clamped, never above `max_order_multiple` ×
/// the order, rounded to whole units so equal cases get equal values.
pub fn gesture_value(
    policy: &Policy,
    spec: &ActionSpec,
    deservingness: f64,
    order: Option<f64>,
) -> Option<(GestureKind, f64)> {
    let g = spec.gesture.as_ref()?;
    let stake = order.unwrap_or(g.default_order_value);
    let mut value = (g.fraction_of_order * deservingness * stake).clamp(g.min, g.max);
    if let Some(order) = order {
        value = value.min(policy.scoring.max_order_multiple * order);
    }
    let value = value.round();
    (value > 0.0).then_some((g.kind, value))
}

fn eligible(
    spec: &ActionSpec,
    i: &Interaction,
    public: bool,
    scores: &Scores,
    signal: Signal,
) -> bool {
    if signal == Signal::NoContent {
        return spec.id == NO_ACTION;
    }
    spec.intent != Intent::Ignore
        && spec.kinds.contains(&i.kind)
        && spec.visibility.admits(public)
        && scores.severity >= spec.min_severity
        && scores.severity <= spec.max_severity
}

struct View {
    public: bool,
    audience: u64,
}

fn candidates<'p>(
    inp: &Inputs<'p>,
    scores: &Scores,
    signal: Signal,
    loyalty: f64,
    view: &View,
) -> Vec<Candidate<'p>> {
    let i = inp.interaction;
    let p = inp.policy;
    let order = i.order_value.map(|v| v.get());
    let cv = customer_value(p, i.customer.lifetime_value.get());
    let vis = visibility(p, view.public, view.audience);
    p.actions
        .iter()
        .filter(|a| eligible(a, i, view.public, scores, signal))
        .filter_map(|spec| {
            let gesture = gesture_value(p, spec, scores.deservingness, order);
            if spec.gesture.is_some() && gesture.is_none() {
                return None;
            }
            let stake = order
                .or(spec.gesture.as_ref().map(|g| g.default_order_value))
                .unwrap_or(0.0);
            let ctx = OutcomeContext {
                sentiment: scores.sentiment,
                severity: scores.severity,
                loyalty,
                kind: i.kind,
                public: view.public,
                audience: view.audience,
                stake,
            };
            let p_good = inp.outcome.p_good(
                &ctx,
                &OutcomeAction {
                    intent: spec.intent,
                    gesture,
                },
            );
            let p_good = if p_good.is_finite() {
                p_good.clamp(0.0, 1.0)
            } else {
                0.0
            };
            let gesture_cost = match (gesture, &spec.gesture) {
                (Some((_, v)), Some(g)) => v * g.cost_ratio,
                _ => 0.0,
            };
            let cost = spec.handling_cost + gesture_cost;
            let justice_cost = gesture
                .map(|(_, v)| {
                    let gap = (v - inp.window.peer_norm(scores.deservingness, v)).max(0.0);
                    p.fairness.justice_weight * vis * gap
                })
                .unwrap_or(0.0);
            let utility = p_good * cv - cost - justice_cost;
            let worth = match (gesture, &spec.gesture) {
                (Some((kind, _)), Some(g)) => {
                    let entry =
                        order.map_or(g.min, |o| g.min.min(p.scoring.max_order_multiple * o));
                    let reference = OutcomeContext {
                        loyalty: inp.policy.scoring.reference_loyalty,
                        ..ctx
                    };
                    let p = |gesture| {
                        let v = inp.outcome.p_good(
                            &reference,
                            &OutcomeAction {
                                intent: spec.intent,
                                gesture,
                            },
                        );
                        if v.is_finite() {
                            v.clamp(0.0, 1.0)
                        } else {
                            0.0
                        }
                    };
                    let gain = (p(Some((kind, entry))) - p(None)) * cv;
                    let gap = (entry - inp.window.peer_norm(scores.deservingness, entry)).max(0.0);
                    gain - entry * g.cost_ratio - inp.policy.fairness.justice_weight * vis * gap
                }
                _ => 0.0,
            };
            Some(Candidate {
                spec,
                gesture,
                p_good,
                cost,
                justice_cost,
                utility,
                worth,
            })
        })
        .collect()
}

fn by_utility(a: &Candidate, b: &Candidate) -> Ordering {
    // Ties go to the cheaper action, then to catalogue order (stable sort).
    b.utility
        .partial_cmp(&a.utility)
        .unwrap_or(Ordering::Equal)
        .then(a.cost.partial_cmp(&b.cost).unwrap_or(Ordering::Equal))
}

/// The gesture a valued view calls for: among the gestures worth giving
/// (see [`Candidate::worth`]), the most generous; ties go to the higher
/// utility.
///
/// Choosing by value, not by utility alone, keeps gestures monotone in
/// deservingness: a customer who deserves more is never moved to a smaller
/// gesture because a cheaper one became marginally more profitable.
pub fn gesture_choice(cands: &[Candidate]) -> Option<(GestureKind, f64)> {
    cands
        .iter()
        .filter(|c| c.gesture.is_some() && c.worth >= 0.0)
        .max_by(|a, b| {
            let value = |c: &Candidate| c.gesture.map(|g| g.1).unwrap_or(0.0);
            value(a)
                .partial_cmp(&value(b))
                .unwrap_or(Ordering::Equal)
                .then(a.utility.partial_cmp(&b.utility).unwrap_or(Ordering::Equal))
        })
        .and_then(|c| c.gesture)
}

fn same_gesture(a: Option<(GestureKind, f64)>, b: Option<(GestureKind, f64)>) -> bool {
    a == b
}

/// The gestures one step from `consistent`, smaller first: the next smaller
/// and the next larger gesture *value* among the gestures `canon` (the
/// canonical view, so who is watching cannot change the steps) offers this
/// case, "no gesture" being the step below the smallest. A value several
/// kinds share is represented by its best action on that view (`canon` is
/// sorted best first). Every value already respects the action's bounds and
/// the order cap ([`gesture_value`]).
pub fn gesture_steps(
    canon: &[Candidate],
    consistent: Option<(GestureKind, f64)>,
) -> Vec<Option<(GestureKind, f64)>> {
    let at = consistent.map_or(0.0, |(_, v)| v);
    let gestures = || canon.iter().filter_map(|c| c.gesture);
    let first_of = |value: f64| gestures().find(|g| g.1 == value);
    let below = gestures().map(|g| g.1).filter(|v| *v < at).reduce(f64::max);
    let above = gestures().map(|g| g.1).filter(|v| *v > at).reduce(f64::min);
    let mut steps = Vec::with_capacity(2);
    match below {
        Some(v) => steps.push(first_of(v)),
        None if consistent.is_some() => steps.push(None),
        None => {}
    }
    if let Some(v) = above {
        steps.push(first_of(v));
    }
    steps
}

/// The actions of a view that carry `gesture` (for `None`: no gesture).
fn carriers<'a, 'p>(
    cands: &'a [Candidate<'p>],
    gesture: Option<(GestureKind, f64)>,
) -> Vec<&'a Candidate<'p>> {
    cands.iter().filter(|c| c.gesture == gesture).collect()
}

/// Picks the best of `pool` and, with probability epsilon, another action of
/// the same pool instead. Every action in `pool` carries the same gesture, so
/// exploration varies only the reply. Returns the exact propensity.
fn explore(pool: &[&Candidate], epsilon: f64, draws: (f64, f64)) -> Choice {
    let best = pool[0];
    let k = pool.len();
    let (pick, explored) = if k > 1 && draws.0 < epsilon {
        let j = ((draws.1 * k as f64) as usize).min(k - 1);
        (pool[j], j != 0)
    } else {
        (best, false)
    };
    let eps = if k > 1 { epsilon } else { 0.0 };
    let probability = |c: &Candidate| {
        if std::ptr::eq(c, best) {
            (1.0 - eps) + eps / k as f64
        } else {
            eps / k as f64
        }
    };
    Choice {
        action: pick.spec.id.clone(),
        gesture: pick.gesture,
        propensity: probability(pick),
        probabilities: pool
            .iter()
            .map(|c| (c.spec.id.clone(), probability(c)))
            .collect(),
        explored,
        gesture_explored: false,
        utility: pick.utility,
        justice_cost: pick.justice_cost,
    }
}

/// Every eligible action valued on one view, best first: what simulators and
/// baseline policies compare against. `public`/`audience` choose the view.
pub fn valued_candidates<'p>(
    inp: &Inputs<'p>,
    public: bool,
    audience: u64,
) -> (Scores, Vec<Candidate<'p>>) {
    let i = inp.interaction;
    let (scores, signal) = scoring::score(i, inp.sentiment);
    let loyalty = scoring::loyalty(LoyaltyInputs {
        tenure_days: i.customer.tenure_days,
        lifetime_value: i.customer.lifetime_value.get(),
    });
    let mut cands = candidates(inp, &scores, signal, loyalty, &View { public, audience });
    cands.sort_by(by_utility);
    (scores, cands)
}

/// What conditional parity asks of one decision.
#[derive(Debug, Clone, PartialEq)]
pub enum ParityVerdict {
    /// No audited attribute is affected either way.
    Neutral,
    /// Granting would push this customer's (best-served) group past the
    /// ratio: withhold the perk.
    Withhold {
        attribute: String,
        group: String,
        ratio_after: f64,
    },
    /// This customer's group is under-served: grant an eligible perk.
    Boost {
        attribute: String,
        group: String,
        ratio: f64,
    },
}

/// Checks conditional parity for a customer in a severity band: for each
/// audited attribute, among the groups of that band, the worst perk rate must
/// stay at least `min_parity_ratio` × the best. Enforced only once every group
/// of the band has `min_group_samples` decisions (small groups' rates are
/// noise), and only with two or more groups.
pub fn parity(
    policy: &Policy,
    window: &WindowStats,
    attributes: &std::collections::BTreeMap<String, String>,
    severity: f64,
) -> ParityVerdict {
    let f = &policy.fairness;
    if !f.enforce_parity {
        return ParityVerdict::Neutral;
    }
    let band = SeverityBand::of(severity, f.severity_bands);
    let mut boost = None;
    for attribute in &f.group_attributes {
        let mine = attributes
            .get(attribute)
            .map(String::as_str)
            .unwrap_or(UNKNOWN_GROUP);
        let groups = window.groups(attribute, band);
        if groups.len() < 2
            || groups
                .iter()
                .any(|(_, c)| c.decisions < u64::from(f.min_group_samples))
            || !groups.iter().any(|(g, _)| g == mine)
        {
            continue;
        }
        let rate_of = |g: &str, c: &Counts, grant: Option<bool>| -> f64 {
            match grant {
                Some(true) if g == mine => (c.perks + 1) as f64 / (c.decisions + 1) as f64,
                Some(false) if g == mine => c.perks as f64 / (c.decisions + 1) as f64,
                _ => c.perk_rate(),
            }
        };
        let ratio = |grant: bool| {
            let rates: Vec<f64> = groups
                .iter()
                .map(|(g, c)| rate_of(g, c, Some(grant)))
                .collect();
            let max = rates.iter().cloned().fold(0.0, f64::max);
            let min = rates.iter().cloned().fold(1.0, f64::min);
            let mine_rate = groups
                .iter()
                .find(|(g, _)| g == mine)
                .map(|(g, c)| rate_of(g, c, Some(grant)))
                .unwrap_or(0.0);
            (
                if max > 0.0 { min / max } else { 1.0 },
                mine_rate >= max,
                mine_rate <= min,
            )
        };
        let (after_grant, best_after_grant, _) = ratio(true);
        if best_after_grant && after_grant < f.min_parity_ratio {
            return ParityVerdict::Withhold {
                attribute: attribute.clone(),
                group: mine.to_string(),
                ratio_after: after_grant,
            };
        }
        let (after_none, _, worst_after_none) = ratio(false);
        if worst_after_none && after_none < f.min_parity_ratio && boost.is_none() {
            boost = Some(ParityVerdict::Boost {
                attribute: attribute.clone(),
                group: mine.to_string(),
                ratio: after_none,
            });
        }
    }
    boost.unwrap_or(ParityVerdict::Neutral)
}

/// Scores the interaction and arbitrates among the policy's actions.
pub fn plan(inp: &Inputs) -> Plan {
    let i = inp.interaction;
    let policy = inp.policy;
    let (scores, signal) = scoring::score(i, inp.sentiment);
    let loyalty = scoring::loyalty(LoyaltyInputs {
        tenure_days: i.customer.tenure_days,
        lifetime_value: i.customer.lifetime_value.get(),
    });
    let real = View {
        public: i.public,
        audience: i.audience,
    };
    let canonical = View {
        public: false,
        audience: 0,
    };

    let mut cands = candidates(inp, &scores, signal, loyalty, &real);
    cands.sort_by(by_utility);
    // The canonical view uses private-only actions; only its gesture matters.
    let mut canon = candidates(inp, &scores, signal, loyalty, &canonical);
    canon.sort_by(by_utility);

    let mut constraints = Vec::new();
    let mut reasons = Vec::new();
    let consistent_gesture = gesture_choice(&canon);
    let real_best_gesture = gesture_choice(&cands);

    let mut pool: Vec<&Candidate> = cands
        .iter()
        .filter(|c| same_gesture(c.gesture, consistent_gesture))
        .collect();
    if pool.is_empty() {
        // The consistent gesture has no carrier on this view; the closest
        // honest answer is the best reply without any gesture.
        pool = cands.iter().filter(|c| c.gesture.is_none()).collect();
    }
    if !same_gesture(real_best_gesture, consistent_gesture) {
        constraints.push(ConstraintEffect {
            name: ConstraintName::Consistency,
            effect: format!(
                "gesture set to {} (what the same case gets when nobody is watching) instead of {}",
                describe(consistent_gesture, &policy.budget.currency),
                describe(real_best_gesture, &policy.budget.currency)
            ),
        });
    }
    let epsilon = policy.exploration.epsilon;
    let no_gesture: Vec<&Candidate> = cands.iter().filter(|c| c.gesture.is_none()).collect();
    let verdict = if signal == Signal::Content {
        parity(policy, inp.window, &i.customer.attributes, scores.severity)
    } else {
        ParityVerdict::Neutral
    };
    // Resolves one pool (all carrying one gesture) into the primary and
    // fallback choices, with parity applied. Parity depends on the window,
    // not on the draws, so every branch of the randomisation is settled the
    // same way and the published probabilities stay exact.
    let settle = |pool: &[&Candidate], draws: (f64, f64)| {
        let mut primary = explore(pool, epsilon, draws);
        let fallback = if no_gesture.is_empty() {
            // Validation guarantees a non-gesture answer for every kind and
            // visibility, so this only happens for a hand-made policy in tests.
            primary.clone()
        } else {
            explore(&no_gesture, epsilon, draws)
        };
        let mut effect = None;
        match &verdict {
            ParityVerdict::Withhold {
                attribute,
                group,
                ratio_after,
            } if primary.gesture.is_some() => {
                effect = Some(ConstraintEffect {
                    name: ConstraintName::Parity,
                    effect: format!(
                        "perk withheld: {attribute}={group} is the best-served group in this severity band and a perk would drop the parity ratio to {ratio_after:.2} (threshold {:.2})",
                        policy.fairness.min_parity_ratio
                    ),
                });
                primary = fallback.clone();
            }
            ParityVerdict::Boost {
                attribute,
                group,
                ratio,
            } if primary.gesture.is_none() => {
                let with_gesture: Vec<&Candidate> =
                    cands.iter().filter(|c| c.gesture.is_some()).collect();
                if let Some(best) = with_gesture.first() {
                    let same: Vec<&Candidate> = with_gesture
                        .iter()
                        .copied()
                        .filter(|c| c.gesture == best.gesture)
                        .collect();
                    primary = explore(&same, epsilon, draws);
                    effect = Some(ConstraintEffect {
                        name: ConstraintName::Parity,
                        effect: format!(
                            "perk granted: {attribute}={group} is under-served in this severity band (parity ratio {ratio:.2}, threshold {:.2}) and this case is eligible",
                            policy.fairness.min_parity_ratio
                        ),
                    });
                }
            }
            _ => {}
        }
        (primary, fallback, effect)
    };

    // Opt-in gesture exploration: the gestures one step away that this view
    // can carry. Never for spam or empty input.
    let gesture_epsilon = policy.exploration.gesture_epsilon;
    let steps: Vec<_> = if signal == Signal::Content && gesture_epsilon > 0.0 {
        gesture_steps(&canon, consistent_gesture)
            .into_iter()
            .map(|g| (g, carriers(&cands, g)))
            .filter(|(_, pool)| !pool.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    let (primary, fallback) = if steps.is_empty() {
        let (primary, fallback, effect) = settle(&pool, inp.draws);
        constraints.extend(effect);
        (primary, fallback)
    } else {
        // The first draw picks the branch: below `gesture_epsilon`, one of
        // the steps (uniformly); the rest of its range, rescaled, is the
        // reply-exploration draw of the branch, so it stays uniform.
        let n = steps.len();
        let (d0, d1) = inp.draws;
        let (branch, draws) = if d0 < gesture_epsilon {
            let u = d0 / gesture_epsilon * n as f64;
            let j = (u as usize).min(n - 1);
            (Some(j), ((u - j as f64).clamp(0.0, 1.0), d1))
        } else {
            (None, ((d0 - gesture_epsilon) / (1.0 - gesture_epsilon), d1))
        };
        // The policy's distribution: the consistent branch and each step,
        // each settled (parity included), weighted by its chance.
        let mut probabilities: Vec<(String, f64)> = Vec::new();
        let branches = std::iter::once((1.0 - gesture_epsilon, pool.as_slice())).chain(
            steps
                .iter()
                .map(|(_, p)| (gesture_epsilon / n as f64, p.as_slice())),
        );
        for (weight, p) in branches {
            for (action, prob) in settle(p, draws).0.probabilities {
                match probabilities.iter_mut().find(|(a, _)| *a == action) {
                    Some((_, total)) => *total += weight * prob,
                    None => probabilities.push((action, weight * prob)),
                }
            }
        }
        let realised = branch.map_or(pool.as_slice(), |j| steps[j].1.as_slice());
        let (mut primary, fallback, effect) = settle(realised, draws);
        if branch.is_some() && effect.is_none() {
            primary.explored = true;
            primary.gesture_explored = true;
        }
        constraints.extend(effect);
        primary.propensity = probabilities
            .iter()
            .find(|(a, _)| *a == primary.action)
            .map_or(0.0, |(_, p)| *p);
        primary.probabilities = probabilities;
        (primary, fallback)
    };

    if signal == Signal::NoContent {
        reasons.push("The text is empty or looks like spam, so no reply is recommended.".into());
    } else {
        reasons.push(format!(
            "{:?} with sentiment {:.2}, severity {:.2} and deservingness {:.2}.",
            i.kind, scores.sentiment, scores.severity, scores.deservingness
        ));
        reasons.push(format!(
            "{} is the best answer{}: a {:.0}% chance of a good outcome.",
            primary.action,
            if primary.gesture_explored {
                " carrying the explored gesture"
            } else if primary.gesture.is_some() {
                " carrying the gesture this case is due"
            } else {
                ""
            },
            100.0
                * cands
                    .iter()
                    .find(|c| c.spec.id == primary.action)
                    .map(|c| c.p_good)
                    .unwrap_or(0.0)
        ));
        match primary.gesture {
            _ if primary.gesture_explored => reasons.push(format!(
                "Gesture exploration: {} was tried at random instead of {}, one step from what the published rule gives this case, so its effect can be measured; caps, budget and parity still apply.",
                describe(primary.gesture, &policy.budget.currency),
                describe(consistent_gesture, &policy.budget.currency)
            )),
            Some((kind, value)) => reasons.push(format!(
                "The {} of {value:.0} {} follows the published rule: proportional to deservingness and the order, the same for everyone in this situation.",
                kind_name(kind),
                policy.budget.currency
            )),
            None => {}
        }
    }
    if primary.explored && !primary.gesture_explored {
        reasons.push(
            "Another reply wording was tried at random (exploration); the gesture is unchanged."
                .into(),
        );
    }

    let alternatives = cands
        .iter()
        .filter(|c| c.spec.id != primary.action)
        .take(5)
        .map(|c| Alternative {
            action: c.spec.id.clone(),
            utility: round4(c.utility),
        })
        .collect();

    Plan {
        scores: Scores {
            sentiment: round4(scores.sentiment),
            severity: round4(scores.severity),
            deservingness: round4(scores.deservingness),
        },
        public: i.public,
        primary,
        fallback,
        alternatives,
        constraints,
        reasons,
        currency: policy.budget.currency.clone(),
    }
}

fn round4(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1e4).round() / 1e4
    } else {
        0.0
    }
}

fn kind_name(kind: GestureKind) -> &'static str {
    match kind {
        GestureKind::Credit => "credit",
        GestureKind::Discount => "discount",
        GestureKind::Gift => "gift",
        GestureKind::FreeShipping => "free shipping",
        GestureKind::Replacement => "replacement",
    }
}

fn describe(g: Option<(GestureKind, f64)>, currency: &str) -> String {
    match g {
        Some((k, v)) => format!("{} {v:.0} {currency}", kind_name(k)),
        None => "no gesture".into(),
    }
}

impl Plan {
    /// The gesture the store is asked to grant, if any.
    pub fn requested_gesture(&self) -> Option<(GestureKind, f64)> {
        self.primary.gesture
    }

    /// The choice a rendered decision carries out (the primary one, or the
    /// fallback when a gesture was refused).
    pub fn choice_of(&self, decision: &Decision) -> &Choice {
        let gesture = decision.gesture.as_ref().map(|g| (g.kind, g.value));
        if decision.action == self.primary.action && gesture == self.primary.gesture {
            &self.primary
        } else {
            &self.fallback
        }
    }

    /// Renders the decision the client receives, given what the store
    /// allowed: `None` when the gesture (if any) was granted.
    pub fn render(&self, policy: &Policy, stamp: &Stamp, refusal: Option<Refusal>) -> Decision {
        let mut constraints = self.constraints.clone();
        let mut reasons = self.reasons.clone();
        let choice = match (refusal, self.primary.gesture) {
            (Some(r), Some((kind, value))) => {
                let (name, effect) = match r {
                    Refusal::PerCustomerCap => (
                        ConstraintName::PerCustomerCap,
                        format!(
                            "no {}: this customer reached the perk cap for the last {} days",
                            kind_name(kind),
                            policy.caps.window_days
                        ),
                    ),
                    Refusal::Budget => (
                        ConstraintName::Budget,
                        format!(
                            "no {}: today's budget cannot cover {value:.0} {}",
                            kind_name(kind),
                            self.currency
                        ),
                    ),
                    Refusal::Unavailable => (
                        ConstraintName::FailClosed,
                        "no perk: shared state is unavailable, so the decision failed closed"
                            .to_string(),
                    ),
                };
                reasons.push(format!(
                    "The gesture was withheld ({effect}); {} is the best answer without one.",
                    self.fallback.action
                ));
                constraints.push(ConstraintEffect { name, effect });
                &self.fallback
            }
            _ => &self.primary,
        };
        let spec = policy.action(&choice.action);
        let intent = spec.map(|s| s.intent).unwrap_or(Intent::Ignore);
        let gesture = choice.gesture.map(|(kind, value)| Gesture {
            kind,
            value,
            currency: self.currency.clone(),
            delivery: Delivery::Private,
        });
        let (channel, template) = if intent == Intent::Ignore {
            (
                ReplyChannel::None,
                spec.map(|s| s.template.clone()).unwrap_or_default(),
            )
        } else if self.public {
            let t = spec.map(|s| s.public_template.clone()).unwrap_or_default();
            if gesture.is_some() {
                constraints.push(ConstraintEffect {
                    name: ConstraintName::Visibility,
                    effect: "gesture delivered privately; the public reply moves the conversation private and names no amount".into(),
                });
                (ReplyChannel::Public, MOVE_PRIVATE_TEMPLATE.to_string())
            } else {
                (ReplyChannel::Public, t)
            }
        } else {
            (
                ReplyChannel::Private,
                spec.map(|s| s.template.clone()).unwrap_or_default(),
            )
        };
        let message = if channel == ReplyChannel::None {
            String::new()
        } else {
            let text = policy.template(&template);
            // Amounts only ever appear in private messages.
            let filled = match (&gesture, channel) {
                (Some(g), ReplyChannel::Private) => {
                    format!("a {:.0} {} {}", g.value, g.currency, kind_name(g.kind))
                }
                _ => "a gesture".to_string(),
            };
            text.replace("{gesture}", &filled)
        };
        // Canonical order: the order constraints apply in.
        constraints.sort_by_key(|c| c.name as u8);
        let degraded = refusal == Some(Refusal::Unavailable);
        Decision {
            decision_id: stamp.decision_id,
            interaction_id: stamp.interaction_id.clone(),
            action: choice.action.clone(),
            response: Reply {
                channel,
                template,
                message,
            },
            gesture,
            scores: self.scores,
            propensity: choice.propensity,
            explored: choice.explored,
            alternatives: self.alternatives.clone(),
            constraints,
            explanation: reasons.join(" "),
            model_version: stamp.model_version.clone(),
            policy_version: stamp.policy_version,
            degraded,
            decided_at: stamp.decided_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::interaction::{Channel, Customer, Kind};
    use crate::domain::outcome::RulesOutcome;
    use crate::domain::sentiment::VaderScorer;
    use crate::domain::validation::{Amount, CustomerId, InteractionId};
    use crate::domain::window::{deservingness_band, Cell, SeverityBand, DESERVINGNESS_BANDS};
    use proptest::prelude::*;
    use std::sync::OnceLock;
    use time::macros::datetime;

    fn vader() -> &'static VaderScorer {
        static V: OnceLock<VaderScorer> = OnceLock::new();
        V.get_or_init(VaderScorer::bundled)
    }

    fn complaint() -> Interaction {
        Interaction {
            id: InteractionId::parse("i", "crm-1").unwrap(),
            customer: Customer {
                id: CustomerId::parse("c", "c-1").unwrap(),
                tenure_days: 800,
                lifetime_value: Amount::parse("l", 1250.0).unwrap(),
                attributes: [("tier".to_string(), "gold".to_string())].into(),
            },
            channel: Channel::Social,
            public: true,
            audience: 5400,
            kind: Kind::Complaint,
            rating: Some(2),
            text: "Order arrived broken and nobody answers my emails".into(),
            order_value: Some(Amount::parse("o", 89.9).unwrap()),
            occurred_at: None,
        }
    }

    fn plan_with(
        i: &Interaction,
        policy: &Policy,
        window: &WindowStats,
        draws: (f64, f64),
    ) -> Plan {
        plan(&Inputs {
            interaction: i,
            policy,
            sentiment: vader(),
            outcome: &RulesOutcome,
            window,
            draws,
        })
    }

    fn stamp() -> Stamp {
        Stamp {
            decision_id: Uuid::nil(),
            interaction_id: "crm-1".into(),
            model_version: "m".into(),
            policy_version: 1,
            decided_at: datetime!(2026-11-20 12:00 UTC),
        }
    }

    fn names(d: &Decision) -> Vec<ConstraintName> {
        d.constraints.iter().map(|c| c.name).collect()
    }

    #[test]
    fn a_public_gesture_is_delivered_privately_and_the_visibility_constraint_says_so() {
        let p = Policy::bundled();
        let d = plan_with(&complaint(), &p, &WindowStats::default(), (0.9, 0.0)).render(
            &p,
            &stamp(),
            None,
        );
        assert!(d.gesture.is_some());
        assert_eq!(d.response.channel, ReplyChannel::Public);
        assert_eq!(d.response.template, MOVE_PRIVATE_TEMPLATE);
        assert_eq!(names(&d), vec![ConstraintName::Visibility]);
    }

    #[test]
    fn a_private_gesture_needs_no_visibility_constraint() {
        let p = Policy::bundled();
        let mut i = complaint();
        i.public = false;
        let d = plan_with(&i, &p, &WindowStats::default(), (0.9, 0.0)).render(&p, &stamp(), None);
        assert!(d.gesture.is_some());
        assert!(names(&d).is_empty());
        assert_eq!(d.response.channel, ReplyChannel::Private);
    }

    #[test]
    fn when_visibility_alone_would_withhold_the_gesture_consistency_restores_it_and_says_so() {
        // A marketer who weighs visible inequity heavily: the public view
        // then finds no gesture worth its justice cost, the private one does.
        let mut p = Policy::bundled();
        p.fairness.justice_weight = 10.0;
        let i = complaint();
        // Peers in this band got nothing: a visible gesture now sits far above
        // the norm, which the public view prices in and the canonical view
        // (private, no audience) barely does.
        let base = plan_with(&i, &p, &WindowStats::default(), (0.9, 0.0));
        let mut w = WindowStats::default();
        w.cells.insert(
            Cell::Peer {
                band: deservingness_band(base.scores.deservingness) as u8,
            },
            Counts {
                decisions: 5000,
                perks: 0,
                value: 0.0,
            },
        );
        let mut public = i.clone();
        public.audience = 10_000_000;
        let d = plan_with(&public, &p, &w, (0.9, 0.0)).render(&p, &stamp(), None);
        let mut private = i.clone();
        private.public = false;
        private.audience = 0;
        let reference = plan_with(&private, &p, &w, (0.9, 0.0)).render(&p, &stamp(), None);
        assert_eq!(
            d.gesture.as_ref().map(|g| (g.kind, g.value)),
            reference.gesture.as_ref().map(|g| (g.kind, g.value))
        );
        assert!(
            names(&d).contains(&ConstraintName::Consistency),
            "{:?}",
            d.constraints
        );
    }

    #[test]
    fn refusals_fall_back_to_the_best_answer_without_a_gesture_and_name_the_constraint() {
        let p = Policy::bundled();
        let plan = plan_with(&complaint(), &p, &WindowStats::default(), (0.9, 0.0));
        for (refusal, name) in [
            (Refusal::PerCustomerCap, ConstraintName::PerCustomerCap),
            (Refusal::Budget, ConstraintName::Budget),
            (Refusal::Unavailable, ConstraintName::FailClosed),
        ] {
            let d = plan.render(&p, &stamp(), Some(refusal));
            assert!(d.gesture.is_none());
            assert_eq!(d.action, plan.fallback.action);
            assert!(names(&d).contains(&name));
            assert!(
                !names(&d).contains(&ConstraintName::Visibility),
                "nothing to hide"
            );
            assert_eq!(d.degraded, refusal == Refusal::Unavailable);
            assert!(p.action(&d.action).unwrap().gesture.is_none());
        }
    }

    #[test]
    fn gestures_never_exceed_150_percent_of_the_order() {
        let p = Policy::bundled();
        let credit = p
            .actions
            .iter()
            .find(|a| a.id == "apologise_private_credit")
            .unwrap();
        for order in [0.5, 3.0, 10.0, 40.0, 500.0] {
            if let Some((_, v)) = gesture_value(&p, credit, 1.0, Some(order)) {
                assert!(v <= (1.5 * order).round() + 1e-9, "{v} for order {order}");
            }
        }
        assert_eq!(
            gesture_value(&p, credit, 1.0, Some(1000.0)).unwrap().1,
            credit.gesture.as_ref().unwrap().max,
            "the action's max"
        );
    }

    #[test]
    fn exploration_varies_only_the_reply_and_reports_exact_propensities() {
        let mut p = Policy::bundled();
        p.exploration.epsilon = 0.5;
        let mut i = complaint();
        i.kind = Kind::Question;
        i.rating = None;
        i.text = "How do I return this?".into();
        let greedy = plan_with(&i, &p, &WindowStats::default(), (0.99, 0.0));
        assert!(!greedy.primary.explored);
        let pool = greedy.alternatives.len() + 1;
        let mut total = 0.0;
        let mut seen = std::collections::HashMap::new();
        for j in 0..pool * 4 {
            let draw = (j as f64 + 0.5) / (pool * 4) as f64;
            let e = plan_with(&i, &p, &WindowStats::default(), (0.0, draw));
            assert_eq!(
                e.primary.gesture, greedy.primary.gesture,
                "never the gesture"
            );
            seen.insert(e.primary.action.clone(), e.primary.propensity);
        }
        for (action, prop) in &seen {
            assert!(*prop > 0.0 && *prop <= 1.0);
            if *action == greedy.primary.action {
                assert!(*prop > 0.5);
            }
            total += prop;
        }
        // Every action of the pool was reachable and the propensities of a
        // same-gesture pool sum to one.
        assert_eq!(seen.len(), pool, "{seen:?}");
        assert!((total - 1.0).abs() < 1e-12, "{seen:?}");
        assert_eq!(greedy.primary.propensity, seen[&greedy.primary.action]);
        // The published distribution is the one the draws realise.
        let published: std::collections::HashMap<_, _> =
            greedy.primary.probabilities.iter().cloned().collect();
        assert_eq!(published.len(), pool);
        for (action, prop) in &seen {
            assert_eq!(published[action], *prop, "{action}");
        }
    }

    fn gesture_exploring() -> Policy {
        let mut p = Policy::bundled();
        p.exploration.epsilon = 0.3;
        p.exploration.gesture_epsilon = 0.2;
        p
    }

    #[test]
    fn gesture_steps_are_the_adjacent_values_with_no_gesture_at_the_bottom() {
        let p = gesture_exploring();
        let i = complaint();
        let inputs = Inputs {
            interaction: &i,
            policy: &p,
            sentiment: vader(),
            outcome: &RulesOutcome,
            window: &WindowStats::default(),
            draws: (0.99, 0.0),
        };
        let (_, canon) = valued_candidates(&inputs, false, 0);
        let mut values: Vec<f64> = canon
            .iter()
            .filter_map(|c| c.gesture.map(|g| g.1))
            .collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        assert!(values.len() >= 3, "{values:?}");
        let at = |v: f64| canon.iter().find_map(|c| c.gesture.filter(|g| g.1 == v));
        let value = |steps: Vec<Option<(GestureKind, f64)>>| -> Vec<Option<f64>> {
            steps.into_iter().map(|g| g.map(|g| g.1)).collect()
        };
        // From no gesture: only up, to the smallest.
        assert_eq!(value(gesture_steps(&canon, None)), vec![Some(values[0])]);
        // From the smallest: down to no gesture, up to the next value.
        assert_eq!(
            value(gesture_steps(&canon, at(values[0]))),
            vec![None, Some(values[1])]
        );
        // In the middle: both neighbours.
        assert_eq!(
            value(gesture_steps(&canon, at(values[1]))),
            vec![Some(values[0]), Some(values[2])]
        );
        // From the largest: only down.
        let top = *values.last().unwrap();
        assert_eq!(
            value(gesture_steps(&canon, at(top))),
            vec![Some(values[values.len() - 2])]
        );
    }

    /// Plans `i` over a grid of draws and checks gesture exploration against
    /// the published distribution: every draw publishes the same one, the
    /// propensity is the chosen action's entry, the gesture moves only when
    /// explored and then by one step, and the draw frequencies match.
    /// Returns how many draws explored the gesture.
    fn check_gesture_exploration_grid(i: &Interaction, p: &Policy, w: &WindowStats) -> usize {
        let greedy = plan_with(i, p, w, (0.99, 0.0));
        let consistent = greedy.primary.gesture;
        assert!(!greedy.primary.explored);
        let inputs = Inputs {
            interaction: i,
            policy: p,
            sentiment: vader(),
            outcome: &RulesOutcome,
            window: w,
            draws: (0.99, 0.0),
        };
        let (_, canon) = valued_candidates(&inputs, false, 0);
        let steps = gesture_steps(&canon, gesture_choice(&canon));
        assert!(!steps.is_empty());
        let published: std::collections::HashMap<String, f64> =
            greedy.primary.probabilities.iter().cloned().collect();
        let total: f64 = published.values().sum();
        assert!((total - 1.0).abs() < 1e-12, "{published:?}");

        let (n0, n1) = (500, 24);
        let mut freq: std::collections::HashMap<String, f64> = Default::default();
        let mut gesture_explored = 0;
        for a in 0..n0 {
            for b in 0..n1 {
                let draws = ((a as f64 + 0.5) / n0 as f64, (b as f64 + 0.5) / n1 as f64);
                let plan = plan_with(i, p, w, draws);
                let c = &plan.primary;
                assert_eq!(c.probabilities, greedy.primary.probabilities);
                assert_eq!(c.propensity, published[&c.action]);
                if c.gesture_explored {
                    gesture_explored += 1;
                    assert!(c.explored);
                    assert!(steps.contains(&c.gesture), "{:?} not a step", c.gesture);
                    assert!(plan
                        .reasons
                        .iter()
                        .any(|r| r.starts_with("Gesture exploration")));
                    let d = plan.render(p, &stamp(), None);
                    assert!(d.explored);
                    if let Some(g) = &d.gesture {
                        assert_eq!(g.delivery, Delivery::Private);
                        if i.public {
                            assert!(!d.response.message.chars().any(|c| c.is_ascii_digit()));
                        }
                    }
                } else {
                    assert_eq!(
                        c.gesture, consistent,
                        "the gesture moves only when explored"
                    );
                }
                *freq.entry(c.action.clone()).or_default() += 1.0 / (n0 * n1) as f64;
            }
        }
        assert_eq!(
            freq.keys().collect::<std::collections::BTreeSet<_>>(),
            published.keys().filter(|a| published[*a] > 0.0).collect(),
            "every published action is reachable, nothing else is"
        );
        for (action, f) in &freq {
            assert!(
                (f - published[action]).abs() < 0.005,
                "{action}: drawn {f}, published {}",
                published[action]
            );
        }
        gesture_explored
    }

    #[test]
    fn gesture_exploration_moves_one_step_and_publishes_the_distribution_the_draws_realise() {
        let p = gesture_exploring();
        for public in [false, true] {
            let mut i = complaint();
            i.public = public;
            let explored = check_gesture_exploration_grid(&i, &p, &WindowStats::default());
            assert_eq!(explored, 500 * 24 / 5, "a fifth of the draws");
        }
    }

    #[test]
    fn parity_still_binds_explored_gestures_and_the_propensities_stay_exact() {
        let p = gesture_exploring();
        let i = complaint();
        // This customer's group (tier=gold) is the best served in every
        // band: parity withholds any perk, explored or not.
        let mut w = WindowStats::default();
        for band in SeverityBand::ALL {
            for (group, perks) in [("gold", 900), ("silver", 500)] {
                w.cells.insert(
                    Cell::Group {
                        attribute: "tier".into(),
                        group: group.into(),
                        band,
                    },
                    Counts {
                        decisions: 1000,
                        perks,
                        value: 0.0,
                    },
                );
            }
        }
        let greedy = plan_with(&i, &p, &w, (0.99, 0.0));
        assert!(greedy
            .constraints
            .iter()
            .any(|c| c.name == ConstraintName::Parity));
        check_gesture_exploration_grid(&i, &p, &w);
        for a in 0..100 {
            let plan = plan_with(&i, &p, &w, ((a as f64 + 0.5) / 500.0, 0.3));
            assert_eq!(plan.primary.gesture, None, "parity withholds every perk");
        }
    }

    #[test]
    fn spam_is_never_gesture_explored() {
        let p = gesture_exploring();
        let mut i = complaint();
        i.text = "".into();
        for d0 in [0.0, 0.05, 0.1, 0.19] {
            let plan = plan_with(&i, &p, &WindowStats::default(), (d0, 0.5));
            assert_eq!(plan.primary.action, NO_ACTION);
            assert_eq!(plan.primary.gesture, None);
            assert!(!plan.primary.explored);
            assert_eq!(plan.primary.propensity, 1.0);
        }
    }

    #[test]
    fn without_exploration_the_propensity_is_one() {
        let mut p = Policy::bundled();
        p.exploration.epsilon = 0.0;
        let plan = plan_with(&complaint(), &p, &WindowStats::default(), (0.0, 0.7));
        assert_eq!(plan.primary.propensity, 1.0);
        assert!(!plan.primary.explored);
    }

    #[test]
    fn spam_gets_no_action_whatever_else_is_true() {
        let p = Policy::bundled();
        let mut i = complaint();
        i.text = "".into();
        let d = plan_with(&i, &p, &WindowStats::default(), (0.9, 0.0)).render(&p, &stamp(), None);
        assert_eq!(d.action, NO_ACTION);
        assert_eq!(d.response.channel, ReplyChannel::None);
        assert!(d.response.message.is_empty());
        assert!(d.gesture.is_none());
    }

    #[test]
    fn every_rendered_decision_has_finite_numbers() {
        let p = Policy::bundled();
        let d = plan_with(&complaint(), &p, &WindowStats::default(), (0.01, 0.99)).render(
            &p,
            &stamp(),
            None,
        );
        assert!(d.all_numbers_finite());
    }

    fn arb_interaction() -> impl Strategy<Value = (Interaction, Interaction)> {
        let kinds = prop::sample::select(Kind::ALL.to_vec());
        let channels = prop::sample::select(Channel::ALL.to_vec());
        (
            (
                kinds,
                prop::option::of(1u8..=5),
                0u32..5000,
                0.0f64..10_000.0,
                prop::option::of(0.0f64..2000.0),
            ),
            prop::sample::select(vec![
                "Order arrived broken and nobody answers my emails",
                "The delivery was late and the box was damaged",
                "Meh.",
                "Absolutely love it, thanks!",
                "Worst service ever. I want my money back!!!",
                "",
            ]),
            (
                any::<bool>(),
                0u64..100_000_000,
                channels.clone(),
                "[a-z]{1,8}",
            ),
            (any::<bool>(), 0u64..100_000_000, channels, "[a-z]{1,8}"),
        )
            .prop_map(|((kind, rating, tenure, ltv, order), text, a, b)| {
                let mut x = complaint();
                x.kind = kind;
                x.rating = rating;
                x.customer.tenure_days = tenure;
                x.customer.lifetime_value = Amount::parse("l", ltv).unwrap();
                x.order_value = order.map(|o| Amount::parse("o", o).unwrap());
                x.text = text.to_string();
                let mut y = x.clone();
                (x.public, x.audience, x.channel) = (a.0, a.1, a.2);
                x.customer.attributes = [("tier".to_string(), a.3)].into();
                (y.public, y.audience, y.channel) = (b.0, b.1, b.2);
                y.customer.attributes =
                    [("tier".to_string(), b.3), ("region".into(), "EU".into())].into();
                (x, y)
            })
    }

    proptest! {
        #[test]
        fn views_that_differ_only_in_who_is_watching_get_the_same_gesture_and_scores(
            (x, y) in arb_interaction(),
            peers in prop::collection::vec((0u64..2000, 0.0f64..50_000.0), DESERVINGNESS_BANDS),
            draws in (0.0f64..1.0, 0.0f64..1.0),
        ) {
            let p = Policy::bundled();
            let mut w = WindowStats::default();
            for (b, (n, v)) in peers.into_iter().enumerate() {
                w.cells.insert(Cell::Peer { band: b as u8 }, Counts { decisions: n, perks: n / 2, value: v });
            }
            let a = plan_with(&x, &p, &w, draws);
            let b = plan_with(&y, &p, &w, draws);
            prop_assert_eq!(a.primary.gesture, b.primary.gesture);
            prop_assert_eq!(a.scores, b.scores);
            for plan in [&a, &b] {
                let d = plan.render(&p, &stamp(), None);
                prop_assert!(d.all_numbers_finite());
                if d.gesture.is_some() {
                    prop_assert_eq!(d.gesture.as_ref().unwrap().delivery, Delivery::Private);
                    if plan.public {
                        prop_assert!(!d.response.message.chars().any(|c| c.is_ascii_digit()));
                        prop_assert!(names(&d).contains(&ConstraintName::Visibility));
                    }
                }
            }
        }
    }
}
