//! Compares policies on the simulator: what recipients gain, what it costs,
//! how evenly perks are spread across groups, and what observers lose.
//!
//! The four policies of the comparison:
//!
//! * **no perks** — the best reply without any gesture;
//! * **perks by rule** — a typical fixed rule: a 20 % credit for any
//!   complaint or review of severity ≥ 0.6, announced where it was asked;
//! * **greedy** — maximises expected value as the firm believes it (the
//!   bundled prior), counting the word of mouth of big audiences as value,
//!   with no justice cost, no parity, no consistency, and gestures announced
//!   in public replies;
//! * **fairtreat** — the policy under test, through the real decision path
//!   (scratch in-memory store, budget lifted so every policy is compared on
//!   need alone).
//!
//! Recipient uplift is measured with the simulator's *true* outcome model,
//! as the mean gain in the probability of a good outcome over the no-perks
//! answer to the same interaction.

use serde::Serialize;

use super::world::{observer_loss, TrueOutcome};
use crate::domain::decide::{valued_candidates, Inputs};
use crate::domain::interaction::{Interaction, InteractionInput, Kind};
use crate::domain::outcome::{OutcomeAction, OutcomeContext, OutcomeModel};
use crate::domain::policy::{GestureKind, Intent, Policy};
use crate::domain::report::fairness_report;
use crate::domain::scoring;
use crate::domain::window::{cells_for, deservingness_band, WindowStats, DESERVINGNESS_BANDS};
use crate::service::{Models, ServiceError};
use crate::whatif::replay_decisions;
use time::OffsetDateTime;

use super::logs::{context, DEFAULT_STAKE};

/// What one policy did with one interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Treatment {
    pub intent: Intent,
    pub gesture: Option<(GestureKind, f64)>,
    /// Whether the gesture was announced in a public reply.
    pub announced: bool,
}

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRow {
    pub policy: String,
    pub perks: u64,
    pub perk_rate: f64,
    /// Mean gain in P(good outcome) over the no-perks answer, true model.
    pub recipient_uplift: f64,
    /// Total gesture value granted.
    pub cost: f64,
    /// Per audited attribute: the worst parity ratio over severity bands
    /// with enough samples.
    pub parity: Vec<(String, f64)>,
    /// Observers' justice loss per interaction.
    pub justice_loss: f64,
    /// Mean true P(good outcome).
    pub p_good: f64,
}

/// Word-of-mouth value the greedy policy sees in an audience.
fn word_of_mouth(audience: u64) -> f64 {
    20.0 * (audience as f64).ln_1p()
}

struct Case {
    interaction: Interaction,
    input: InteractionInput,
    ctx: OutcomeContext,
    deservingness: f64,
}

fn cases(models: &Models, inputs: &[InteractionInput]) -> Vec<Case> {
    inputs
        .iter()
        .map(|input| {
            let interaction =
                Interaction::try_from(input.clone()).expect("simulated interactions are valid");
            let ctx = context(models, &interaction, DEFAULT_STAKE);
            let deservingness = scoring::score(&interaction, models.sentiment.as_ref())
                .0
                .deservingness;
            Case {
                ctx,
                deservingness,
                input: input.clone(),
                interaction,
            }
        })
        .collect()
}

fn no_perks(policy: &Policy, models: &Models, c: &Case) -> Treatment {
    let window = WindowStats::default();
    let inp = Inputs {
        interaction: &c.interaction,
        policy,
        sentiment: models.sentiment.as_ref(),
        outcome: models.outcome.as_ref(),
        window: &window,
        draws: (1.0, 0.0),
    };
    let (_, cands) = valued_candidates(&inp, c.interaction.public, c.interaction.audience);
    let best = cands
        .iter()
        .find(|x| x.gesture.is_none())
        .map(|x| x.spec.intent)
        .unwrap_or(Intent::Ignore);
    Treatment {
        intent: best,
        gesture: None,
        announced: false,
    }
}

fn by_rule(c: &Case) -> Treatment {
    let eligible = matches!(c.ctx.kind, Kind::Complaint | Kind::Review) && c.ctx.severity >= 0.6;
    let gesture = eligible.then(|| (GestureKind::Credit, (0.2 * c.ctx.stake).max(5.0).round()));
    Treatment {
        intent: if c.ctx.severity >= 0.15 {
            Intent::Apologise
        } else {
            Intent::Thank
        },
        gesture,
        announced: c.ctx.public,
    }
}

fn greedy(policy: &Policy, models: &Models, c: &Case) -> Treatment {
    let mut p = policy.clone();
    p.fairness.justice_weight = 0.0;
    let window = WindowStats::default();
    let inp = Inputs {
        interaction: &c.interaction,
        policy: &p,
        sentiment: models.sentiment.as_ref(),
        outcome: models.outcome.as_ref(),
        window: &window,
        draws: (1.0, 0.0),
    };
    let (_, cands) = valued_candidates(&inp, c.interaction.public, c.interaction.audience);
    let wom = word_of_mouth(c.interaction.audience);
    let best = cands
        .iter()
        .max_by(|a, b| {
            let u = |x: &crate::domain::decide::Candidate| x.utility + x.p_good * wom;
            u(a).partial_cmp(&u(b)).unwrap_or(std::cmp::Ordering::Equal)
        })
        .expect("every interaction has an eligible answer");
    Treatment {
        intent: best.spec.intent,
        gesture: best.gesture,
        announced: c.interaction.public && best.gesture.is_some(),
    }
}

async fn fairtreat(
    policy: &Policy,
    models: &Models,
    cases: &[Case],
) -> Result<Vec<Treatment>, ServiceError> {
    let mut p = policy.clone();
    p.budget.daily = 1.0e12;
    let inputs: Vec<_> = cases
        .iter()
        .map(|c| {
            (
                c.input.occurred_at.unwrap_or(OffsetDateTime::UNIX_EPOCH),
                c.input.clone(),
                c.interaction.clone(),
            )
        })
        .collect();
    let replay = replay_decisions(&p, models, &inputs).await?;
    Ok(replay
        .decided
        .into_iter()
        .map(|d| Treatment {
            intent: p
                .action(&d.decision.action)
                .map(|a| a.intent)
                .unwrap_or(Intent::Ignore),
            gesture: d.decision.gesture.map(|g| (g.kind, g.value)),
            announced: false,
        })
        .collect())
}

fn row(
    name: &str,
    policy: &Policy,
    cases: &[Case],
    treatments: &[Treatment],
    baseline: &[Treatment],
) -> PolicyRow {
    let n = cases.len().max(1) as f64;
    let p_true = |c: &Case, t: &Treatment| {
        TrueOutcome.p_good(
            &c.ctx,
            &OutcomeAction {
                intent: t.intent,
                gesture: t.gesture,
            },
        )
    };
    // What customers in the same situation got from this policy: the norm
    // observers compare a visible gesture with.
    let mut norms = [(0.0f64, 0u64); DESERVINGNESS_BANDS];
    let mut stats = WindowStats::default();
    for (c, t) in cases.iter().zip(treatments) {
        let b = deservingness_band(c.deservingness);
        norms[b].0 += t.gesture.map(|g| g.1).unwrap_or(0.0);
        norms[b].1 += 1;
        let cells = cells_for(
            &c.interaction.customer.attributes,
            &policy.fairness.group_attributes,
            policy.fairness.severity_bands,
            c.ctx.severity,
            c.deservingness,
        );
        stats.record(&cells, t.gesture.map(|g| g.1));
    }
    let norm = |d: f64| {
        let (sum, count) = norms[deservingness_band(d)];
        if count == 0 {
            0.0
        } else {
            sum / count as f64
        }
    };
    let mut uplift = 0.0;
    let mut cost = 0.0;
    let mut loss = 0.0;
    let mut p_sum = 0.0;
    let mut perks = 0;
    for ((c, t), b) in cases.iter().zip(treatments).zip(baseline) {
        let p = p_true(c, t);
        p_sum += p;
        uplift += p - p_true(c, b);
        if let Some((_, v)) = t.gesture {
            perks += 1;
            cost += v;
            loss += observer_loss(
                c.ctx.public,
                c.ctx.audience,
                t.announced,
                v,
                norm(c.deservingness),
            );
        }
    }
    let parity = policy
        .fairness
        .group_attributes
        .iter()
        .map(|a| {
            let r = fairness_report(policy, &stats, a);
            let worst = r
                .bands
                .iter()
                .filter(|b| {
                    b.groups.len() >= 2
                        && b.groups
                            .iter()
                            .all(|g| g.decisions >= u64::from(policy.fairness.min_group_samples))
                })
                .map(|b| b.parity_ratio)
                .fold(1.0, f64::min);
            (a.clone(), worst)
        })
        .collect();
    PolicyRow {
        policy: name.to_string(),
        perks,
        perk_rate: perks as f64 / n,
        recipient_uplift: uplift / n,
        cost,
        parity,
        justice_loss: loss / n,
        p_good: p_sum / n,
    }
}

/// Runs the four policies on `inputs` and returns one row each.
pub async fn compare(
    policy: &Policy,
    models: &Models,
    inputs: &[InteractionInput],
) -> Result<Vec<PolicyRow>, ServiceError> {
    let cases = cases(models, inputs);
    let none: Vec<Treatment> = cases.iter().map(|c| no_perks(policy, models, c)).collect();
    let rule: Vec<Treatment> = cases.iter().map(by_rule).collect();
    let greedy_t: Vec<Treatment> = cases.iter().map(|c| greedy(policy, models, c)).collect();
    let ours = fairtreat(policy, models, &cases).await?;
    Ok(vec![
        row("no perks", policy, &cases, &none, &none),
        row("perks by rule", policy, &cases, &rule, &none),
        row("greedy", policy, &cases, &greedy_t, &none),
        row("fairtreat", policy, &cases, &ours, &none),
    ])
}
