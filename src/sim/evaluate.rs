//! Off-policy evaluation of a candidate policy from logged decisions: what
//! would the candidate (a policy document plus models) have earned on the
//! interactions in the log, judged only from what the logging policy did?
//!
//! This is the product-facing side of [`super::ope`], which holds the
//! estimators (IPS, SNIPS, DM, DR, SNDR as Open Bandit Pipeline defines
//! them), the bootstrap and the effective sample size. Here we only turn a
//! log of [`LogRecord`]s and a candidate into the rounds those estimators
//! read:
//!
//! 1. **The candidate's action distribution** `π_e(·|x)`: the logged
//!    interactions are replayed in time order through the real decision path
//!    with the candidate, on a scratch store, so window-dependent constraints
//!    (parity, peer norms, caps, budget) see the candidate's own earlier
//!    decisions, as they would have live. For each interaction we take the
//!    [`Choice::probabilities`](crate::domain::decide::Choice::probabilities) of the plan the decision came from: the
//!    primary choice, or the fallback when the store refused the gesture (a
//!    per-customer cap, the budget). The budget is lifted when the logs were
//!    simulated, as `simulate_logs` lifts it.
//! 2. **The action space**: the candidate's catalogue, one index per action id
//!    in catalogue order, at slate position 0, plus one last index,
//!    [`ActionSpace::other`], for a logged treatment the candidate never gives
//!    here: the logged action carried a gesture (or an intent) other than the
//!    one the candidate attaches to that action id for this interaction (a
//!    different sentiment model or gesture rule changes the value). Treating
//!    "credit 18" and "credit 20" as the same action would credit the
//!    candidate with outcomes of a treatment it does not give.
//! 3. **The reward model** `q̂(x, a)`: an [`OutcomeModel`]'s `p_good` on the
//!    context the decision core sees ([`context`]) and the action's intent
//!    and gesture. By default the CLI uses the candidate's own outcome model:
//!    it is the reward regression the candidate already trusts, the way OBP
//!    users fit one reward model and share it between DM and DR. DR stays
//!    unbiased when the propensities are right, whatever `q̂` is; DM does not.
//!
//! Logged propensities are the logging policy's exact probabilities (the
//! service publishes them), so the importance weights are exact too.

use serde::Serialize;
use time::OffsetDateTime;

use super::logs::{context, LogRecord, DEFAULT_STAKE};
use super::ope::{
    bootstrap_confidence_interval, effective_sample_size, importance_weights, Estimator,
    LoggedData, LoggedRound, OpeError,
};
use crate::domain::decide::gesture_value;
use crate::domain::interaction::Interaction;
use crate::domain::outcome::{OutcomeAction, OutcomeContext, OutcomeModel};
use crate::domain::policy::Policy;
use crate::domain::report::fairness_report;
use crate::domain::scoring;
use crate::domain::validation::ValidationError;
use crate::domain::window::{cells_for, WindowStats};
use crate::service::{Models, ServiceError};
use crate::whatif::{replay_decisions, ParityFigures};

/// The action index space the estimators work in: the candidate's catalogue
/// in order, then [`ActionSpace::other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSpace {
    ids: Vec<String>,
}

impl ActionSpace {
    /// The space of `policy`'s catalogue.
    pub fn of(policy: &Policy) -> Self {
        Self {
            ids: policy.actions.iter().map(|a| a.id.clone()).collect(),
        }
    }

    /// Number of indices, [`Self::other`] included.
    pub fn len(&self) -> usize {
        self.ids.len() + 1
    }

    /// Never empty: [`Self::other`] is always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The index of a catalogue action id.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|a| a == id)
    }

    /// The index of a logged treatment the candidate never gives for that
    /// interaction (a catalogue action with another gesture or intent).
    pub fn other(&self) -> usize {
        self.ids.len()
    }

    /// The action id of an index (`"other"` for [`Self::other`]).
    pub fn name(&self, index: usize) -> &str {
        self.ids.get(index).map(String::as_str).unwrap_or("other")
    }

    /// The index a logged action maps to, given the treatment the candidate
    /// attaches to that action id for this interaction (`None`: not in the
    /// catalogue).
    pub fn logged_index(
        &self,
        logged_action: &str,
        logged: &OutcomeAction,
        candidate: &OutcomeAction,
    ) -> Option<usize> {
        let index = self.index(logged_action)?;
        Some(if same_treatment(logged, candidate) {
            index
        } else {
            self.other()
        })
    }
}

fn same_treatment(a: &OutcomeAction, b: &OutcomeAction) -> bool {
    // Gesture values are whole currency units; the tolerance only absorbs
    // a JSON round trip.
    a.intent == b.intent
        && match (a.gesture, b.gesture) {
            (None, None) => true,
            (Some((ka, va)), Some((kb, vb))) => ka == kb && (va - vb).abs() < 1e-9,
            _ => false,
        }
}

/// One action the candidate may take for a logged interaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arm {
    /// Index in the [`ActionSpace`].
    pub action: usize,
    /// `π_e(action | x)`, > 0.
    pub probability: f64,
    /// What the action does (intent and gesture) for this interaction.
    pub treatment: OutcomeAction,
    /// The reward model's expected reward of this action.
    pub q_hat: f64,
}

/// One logged decision, seen by the candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    /// The logged action's index in the [`ActionSpace`].
    pub logged: usize,
    /// The logging policy's probability of the logged action.
    pub pscore: f64,
    pub reward: f64,
    /// The reward model's expected reward of the logged treatment.
    pub q_logged: f64,
    /// The outcome-model context, as the candidate's models see it.
    pub context: OutcomeContext,
    /// The candidate's distribution (actions with non-zero probability).
    pub arms: Vec<Arm>,
    /// The action the candidate's replay actually took.
    pub decided: usize,
}

impl Round {
    /// `π_e(action | x)`.
    pub fn probability(&self, action: usize) -> f64 {
        self.arms
            .iter()
            .find(|a| a.action == action)
            .map_or(0.0, |a| a.probability)
    }

    /// `q̂(x, action)`; NaN for an action that is neither the candidate's nor
    /// the logged one (the estimators never ask for those).
    pub fn q_hat(&self, action: usize) -> f64 {
        match self.arms.iter().find(|a| a.action == action) {
            Some(a) => a.q_hat,
            None if action == self.logged => self.q_logged,
            None => f64::NAN,
        }
    }
}

/// The candidate's view of a whole log, ready for the estimators.
#[derive(Debug, Clone)]
pub struct CandidateRounds {
    pub space: ActionSpace,
    /// One per log record, in the log's order.
    pub rounds: Vec<Round>,
    logged: Vec<LoggedRound>,
    /// What the candidate's decisions add up to, over the whole log.
    pub stats: WindowStats,
}

/// What the candidate would have done with one estimator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimateFigures {
    /// `IPS`, `SNIPS`, `DM`, `DR` or `SNDR` (obp's `ipw`, `snipw`, `dm`, `dr`, `sndr`).
    pub estimator: &'static str,
    /// `None` when undefined (see `error`).
    pub value: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// Kish's effective sample size of the importance weights (`None` for
    /// DM, which does not weigh rounds).
    pub effective_sample_size: Option<f64>,
    /// Why the estimate is undefined (e.g. the candidate never takes a
    /// logged action, so self-normalised estimates divide by zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A value with its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
}

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateOptions {
    /// Bootstrap resamples per interval.
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
    /// 1 − the interval's coverage (0.05 for 95 %).
    pub alpha: f64,
    /// Replay with the daily budget lifted (how simulated logs are made).
    pub lift_budget: bool,
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        Self {
            bootstrap: 1000,
            seed: 1,
            alpha: 0.05,
            lift_budget: false,
        }
    }
}

/// The whole evaluation: what `fairtreat evaluate policy` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyEvaluation {
    pub records: usize,
    pub policy_version: u32,
    pub model_version: String,
    /// Version of the outcome model used as `q̂` by DM, DR and SNDR.
    pub reward_model: String,
    pub budget_lifted: bool,
    pub bootstrap_resamples: usize,
    pub seed: u64,
    pub confidence: f64,
    /// The logging policy's observed mean reward.
    pub logging_policy: Interval,
    pub estimates: Vec<EstimateFigures>,
    /// Share of records where the candidate gives the logged action a
    /// non-zero probability (the records the weighted estimators learn from).
    pub support: f64,
    /// Share of records where the candidate's replay took the logged action.
    pub same_action: f64,
    /// The parity the candidate's decisions would show over the whole log,
    /// per audited attribute (overall and per severity band).
    pub fairness: Vec<ParityFigures>,
}

/// Why a log could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("the log has no decisions to evaluate")]
    Empty,
    /// `index` is 0-based in the slice given; callers name lines.
    #[error("record {}: {problem}", .index + 1)]
    Record {
        index: usize,
        problem: RecordProblem,
    },
    #[error("replaying the log: {0}")]
    Replay(#[from] ServiceError),
    #[error(transparent)]
    Estimate(#[from] OpeError),
}

/// What is wrong with one log record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordProblem {
    #[error("propensity {0} is not in (0, 1]")]
    Propensity(f64),
    #[error("reward {0} is not in [0, 1]")]
    Reward(f64),
    #[error("action {0:?} is not in the candidate policy's catalogue")]
    UnknownAction(String),
    #[error("invalid interaction: {0}")]
    Interaction(ValidationError),
}

fn record_error(index: usize, problem: RecordProblem) -> EvaluateError {
    EvaluateError::Record { index, problem }
}

/// Checks every record before any replay, so a bad line fails fast.
fn check_records(
    logs: &[LogRecord],
    space: &ActionSpace,
) -> Result<Vec<Interaction>, EvaluateError> {
    if logs.is_empty() {
        return Err(EvaluateError::Empty);
    }
    logs.iter()
        .enumerate()
        .map(|(k, r)| {
            // `!(p > 0)` also rejects NaN.
            if !(r.propensity > 0.0 && r.propensity <= 1.0) {
                return Err(record_error(k, RecordProblem::Propensity(r.propensity)));
            }
            if !(0.0..=1.0).contains(&r.reward) {
                return Err(record_error(k, RecordProblem::Reward(r.reward)));
            }
            if space.index(&r.action).is_none() {
                return Err(record_error(
                    k,
                    RecordProblem::UnknownAction(r.action.clone()),
                ));
            }
            Interaction::try_from(r.interaction.clone())
                .map_err(|e| record_error(k, RecordProblem::Interaction(e)))
        })
        .collect()
}

/// Replays the log through the candidate (`policy` with `models`) and maps
/// every record to a [`Round`], with `reward_model` as `q̂`.
pub async fn candidate_rounds(
    logs: &[LogRecord],
    policy: &Policy,
    models: &Models,
    reward_model: &dyn OutcomeModel,
    lift_budget: bool,
) -> Result<CandidateRounds, EvaluateError> {
    let space = ActionSpace::of(policy);
    let interactions = check_records(logs, &space)?;
    let mut p = policy.clone();
    if lift_budget {
        p.budget.daily = 1.0e12;
    }
    // Time order, as decided live; records without a time keep their place
    // at the start (the sort is stable).
    let mut order: Vec<usize> = (0..logs.len()).collect();
    order.sort_by_key(|&k| {
        logs[k]
            .interaction
            .occurred_at
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    });
    let inputs: Vec<_> = order
        .iter()
        .map(|&k| {
            (
                logs[k]
                    .interaction
                    .occurred_at
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                logs[k].interaction.clone(),
                interactions[k].clone(),
            )
        })
        .collect();
    // The real decision path, in time order on a scratch store: each
    // decision carries the candidate's exact distribution for the answer
    // it served (the fallback's when a cap or the budget refused a gesture).
    let replayed = replay_decisions(&p, models, &inputs)
        .await?
        .decided
        .into_iter()
        .map(|d| (d.decision, d.probabilities));

    let mut stats = WindowStats::default();
    let mut rounds: Vec<Option<Round>> = vec![None; logs.len()];
    for (&k, (decision, probabilities)) in order.iter().zip(replayed) {
        let (record, interaction) = (&logs[k], &interactions[k]);
        let (scores, _) = scoring::score(interaction, models.sentiment.as_ref());
        let order_value = interaction.order_value.map(|v| v.get());
        let treatment = |id: &str| {
            let spec = p.action(id)?;
            Some(OutcomeAction {
                intent: spec.intent,
                gesture: gesture_value(&p, spec, scores.deservingness, order_value),
            })
        };
        let ctx = context(models, interaction, DEFAULT_STAKE);
        let arms = probabilities
            .iter()
            .filter(|(_, prob)| *prob > 0.0)
            .filter_map(|(id, prob)| {
                let treatment = treatment(id)?;
                Some(Arm {
                    action: space.index(id)?,
                    probability: *prob,
                    treatment,
                    q_hat: reward_model.p_good(&ctx, &treatment),
                })
            })
            .collect();
        let logged_treatment = OutcomeAction {
            intent: record.intent,
            gesture: record.gesture.map(|g| (g.kind, g.value)),
        };
        let candidate_treatment = treatment(&record.action)
            .ok_or_else(|| record_error(k, RecordProblem::UnknownAction(record.action.clone())))?;
        let logged = space
            .logged_index(&record.action, &logged_treatment, &candidate_treatment)
            .ok_or_else(|| record_error(k, RecordProblem::UnknownAction(record.action.clone())))?;
        let granted = decision.gesture.as_ref().map(|g| g.value);
        stats.record(
            &cells_for(
                &interaction.customer.attributes,
                &p.fairness.group_attributes,
                p.fairness.severity_bands,
                decision.scores.severity,
                decision.scores.deservingness,
            ),
            granted,
        );
        rounds[k] = Some(Round {
            logged,
            pscore: record.propensity,
            reward: record.reward,
            q_logged: reward_model.p_good(&ctx, &logged_treatment),
            context: ctx,
            arms,
            decided: space.index(&decision.action).unwrap_or(space.other()),
        });
    }
    let rounds: Vec<Round> = rounds
        .into_iter()
        .map(|r| r.expect("every record was replayed once"))
        .collect();
    Ok(CandidateRounds::new(space, rounds, stats))
}

impl CandidateRounds {
    /// Rounds built by hand (tests) or by [`candidate_rounds`].
    pub fn new(space: ActionSpace, rounds: Vec<Round>, stats: WindowStats) -> Self {
        let logged = rounds
            .iter()
            .map(|r| LoggedRound {
                action: r.logged,
                position: 0,
                reward: r.reward,
                pscore: r.pscore,
            })
            .collect();
        Self {
            space,
            rounds,
            logged,
            stats,
        }
    }

    fn data(&self) -> Result<LoggedData<'_>, OpeError> {
        LoggedData::new(&self.logged, self.space.len(), 1)
    }

    fn policy(&self) -> impl Fn(usize, usize, usize) -> f64 + '_ {
        move |round, action, _| self.rounds[round].probability(action)
    }

    fn model(&self) -> impl Fn(usize, usize, usize) -> f64 + '_ {
        move |round, action, _| self.rounds[round].q_hat(action)
    }

    /// The per-round values of `estimator` (their mean is the estimate).
    pub fn round_values(&self, estimator: Estimator) -> Result<Vec<f64>, OpeError> {
        estimator.round_rewards(&self.data()?, &self.policy(), &self.model())
    }

    /// The importance weights `π_e(a_i|x_i) / π_0(a_i|x_i)`.
    pub fn weights(&self) -> Result<Vec<f64>, OpeError> {
        importance_weights(&self.data()?, &self.policy())
    }

    /// One estimator's value and bootstrap interval.
    pub fn estimate(
        &self,
        estimator: Estimator,
        options: &EvaluateOptions,
    ) -> Result<Interval, OpeError> {
        let values = self.round_values(estimator)?;
        interval(&values, options)
    }

    /// Share of rounds where the candidate may take the logged action.
    pub fn support(&self) -> f64 {
        share(&self.rounds, |r| r.probability(r.logged) > 0.0)
    }

    /// Share of rounds where the candidate's replay took the logged action.
    pub fn same_action(&self) -> f64 {
        share(&self.rounds, |r| r.decided == r.logged)
    }

    /// The candidate's expected reward under `model`, averaged over the
    /// rounds: the exact value when `model` is the truth (the simulator's).
    pub fn value_under(&self, model: &dyn OutcomeModel) -> f64 {
        let total: f64 = self
            .rounds
            .iter()
            .map(|r| {
                r.arms
                    .iter()
                    .map(|a| a.probability * model.p_good(&r.context, &a.treatment))
                    .sum::<f64>()
            })
            .sum();
        total / self.rounds.len().max(1) as f64
    }

    /// The logging policy's observed mean reward, with its interval.
    pub fn logging_value(&self, options: &EvaluateOptions) -> Result<Interval, OpeError> {
        let rewards: Vec<f64> = self.rounds.iter().map(|r| r.reward).collect();
        interval(&rewards, options)
    }
}

fn share(rounds: &[Round], f: impl Fn(&Round) -> bool) -> f64 {
    rounds.iter().filter(|r| f(r)).count() as f64 / rounds.len().max(1) as f64
}

fn interval(values: &[f64], options: &EvaluateOptions) -> Result<Interval, OpeError> {
    let ci = bootstrap_confidence_interval(values, options.alpha, options.bootstrap, options.seed)?;
    Ok(Interval {
        value: ci.estimate,
        lower: ci.lower,
        upper: ci.upper,
    })
}

/// The estimator's name as the issue and the table spell it.
pub fn display_name(e: Estimator) -> &'static str {
    match e {
        Estimator::Ipw => "IPS",
        Estimator::Snipw => "SNIPS",
        Estimator::Dm => "DM",
        Estimator::Dr => "DR",
        Estimator::Sndr => "SNDR",
    }
}

/// Every estimator on the rounds; an undefined one is reported, not fatal.
pub fn estimates(rounds: &CandidateRounds, options: &EvaluateOptions) -> Vec<EstimateFigures> {
    let ess = rounds.weights().ok().map(|w| effective_sample_size(&w));
    Estimator::ALL
        .iter()
        .map(|&e| {
            let ess = if e == Estimator::Dm { None } else { ess };
            match rounds.estimate(e, options) {
                Ok(i) => EstimateFigures {
                    estimator: display_name(e),
                    value: Some(i.value),
                    lower: Some(i.lower),
                    upper: Some(i.upper),
                    effective_sample_size: ess,
                    error: None,
                },
                Err(err) => EstimateFigures {
                    estimator: display_name(e),
                    value: None,
                    lower: None,
                    upper: None,
                    effective_sample_size: ess,
                    error: Some(err.to_string()),
                },
            }
        })
        .collect()
}

/// Parity per audited attribute over `stats` (the what-if figures' shape).
pub fn parity_figures(policy: &Policy, stats: &WindowStats) -> Vec<ParityFigures> {
    policy
        .fairness
        .group_attributes
        .iter()
        .map(|attribute| ParityFigures::from(&fairness_report(policy, stats, attribute)))
        .collect()
}

/// Evaluates the candidate (`policy` with `models`) on `logs`, with
/// `reward_model` as `q̂`.
pub async fn evaluate_policy(
    logs: &[LogRecord],
    policy: &Policy,
    models: &Models,
    reward_model: &dyn OutcomeModel,
    options: &EvaluateOptions,
) -> Result<PolicyEvaluation, EvaluateError> {
    let rounds = candidate_rounds(logs, policy, models, reward_model, options.lift_budget).await?;
    Ok(PolicyEvaluation {
        records: rounds.rounds.len(),
        policy_version: policy.version,
        model_version: models.version(),
        reward_model: reward_model.version().to_string(),
        budget_lifted: options.lift_budget,
        bootstrap_resamples: options.bootstrap,
        seed: options.seed,
        confidence: 1.0 - options.alpha,
        logging_policy: rounds.logging_value(options)?,
        estimates: estimates(&rounds, options),
        support: rounds.support(),
        same_action: rounds.same_action(),
        fairness: parity_figures(policy, &rounds.stats),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::interaction::Kind;
    use crate::domain::policy::{GestureKind, Intent};
    use crate::sim::logs::simulate_logs;
    use crate::sim::world::generate;
    use time::macros::datetime;

    const APOLOGISE: OutcomeAction = OutcomeAction {
        intent: Intent::Apologise,
        gesture: None,
    };

    fn credit(value: f64) -> OutcomeAction {
        OutcomeAction {
            intent: Intent::Apologise,
            gesture: Some((GestureKind::Credit, value)),
        }
    }

    #[test]
    fn the_action_space_is_the_catalogue_in_order_plus_one_slot_for_other_treatments() {
        let p = Policy::bundled();
        let space = ActionSpace::of(&p);
        assert_eq!(space.len(), p.actions.len() + 1);
        for (k, a) in p.actions.iter().enumerate() {
            assert_eq!(space.index(&a.id), Some(k));
            assert_eq!(space.name(k), a.id);
        }
        assert_eq!(space.other(), p.actions.len());
        assert_eq!(space.name(space.other()), "other");
        assert_eq!(space.index("no_such_action"), None);
    }

    #[test]
    fn a_logged_action_maps_to_its_index_only_when_the_candidate_gives_the_same_treatment() {
        let space = ActionSpace::of(&Policy::bundled());
        let id = "apologise_private_credit";
        let own = space.index(id).unwrap();
        let escalate = OutcomeAction {
            intent: Intent::Escalate,
            ..APOLOGISE
        };
        let cases = [
            (credit(18.0), credit(18.0), Some(own)),
            (credit(18.0), credit(20.0), Some(space.other())),
            (credit(18.0), APOLOGISE, Some(space.other())),
            (APOLOGISE, escalate, Some(space.other())),
            (APOLOGISE, APOLOGISE, Some(own)),
        ];
        for (logged, candidate, want) in cases {
            assert_eq!(
                space.logged_index(id, &logged, &candidate),
                want,
                "{logged:?} vs {candidate:?}"
            );
        }
        assert_eq!(space.logged_index("nope", &APOLOGISE, &APOLOGISE), None);
    }

    fn ctx() -> OutcomeContext {
        OutcomeContext {
            sentiment: 0.0,
            severity: 0.5,
            loyalty: 0.5,
            kind: Kind::Complaint,
            public: false,
            audience: 0,
            stake: 40.0,
        }
    }

    fn arm(action: usize, probability: f64, q_hat: f64) -> Arm {
        Arm {
            action,
            probability,
            treatment: APOLOGISE,
            q_hat,
        }
    }

    fn round(logged: usize, pscore: f64, reward: f64, q_logged: f64, arms: Vec<Arm>) -> Round {
        Round {
            logged,
            pscore,
            reward,
            q_logged,
            context: ctx(),
            decided: arms[0].action,
            arms,
        }
    }

    /// Two actions and the "other" slot (index 2), four rounds.
    fn tiny() -> CandidateRounds {
        let space = ActionSpace {
            ids: vec!["a".into(), "b".into()],
        };
        CandidateRounds::new(
            space,
            vec![
                round(0, 0.5, 1.0, 0.6, vec![arm(0, 1.0, 0.6)]),
                round(1, 0.5, 0.0, 0.2, vec![arm(0, 1.0, 0.4)]),
                round(0, 0.8, 0.0, 0.5, vec![arm(0, 0.5, 0.5), arm(1, 0.5, 0.3)]),
                round(2, 1.0, 1.0, 0.9, vec![arm(1, 1.0, 0.7)]),
            ],
            WindowStats::default(),
        )
    }

    #[test]
    fn a_tiny_log_gives_the_hand_computed_estimates() {
        let r = tiny();
        // Weights: 1/0.5, 0/0.5, 0.5/0.8, 0 ("other" is never the candidate's).
        assert_eq!(r.weights().unwrap(), vec![2.0, 0.0, 0.625, 0.0]);
        let value = |e| r.round_values(e).unwrap().iter().sum::<f64>() / 4.0;
        let cases = [
            // (2·1 + 0 + 0.625·0 + 0) / 4
            (Estimator::Ipw, 0.5),
            // IPS / mean weight = 0.5 / (2.625 / 4)
            (Estimator::Snipw, 0.5 / 0.65625),
            // (0.6 + 0.4 + (0.5·0.5 + 0.5·0.3) + 0.7) / 4
            (Estimator::Dm, 0.525),
            // DM + (2·(1 − 0.6) + 0 + 0.625·(0 − 0.5) + 0) / 4
            (Estimator::Dr, 0.525 + 0.121875),
        ];
        for (e, want) in cases {
            assert!(
                (value(e) - want).abs() < 1e-12,
                "{e:?}: {} vs {want}",
                value(e)
            );
        }
        let ess = effective_sample_size(&r.weights().unwrap());
        assert!((ess - 2.625 * 2.625 / 4.390625).abs() < 1e-12);
        assert_eq!(r.support(), 0.5);
        assert_eq!(r.same_action(), 0.5);
        let logging = r.logging_value(&EvaluateOptions::default()).unwrap();
        assert_eq!(logging.value, 0.5);
        assert!(logging.lower <= 0.5 && 0.5 <= logging.upper);
    }

    #[test]
    fn the_table_reports_every_estimator_and_dm_has_no_effective_sample_size() {
        let rows = estimates(&tiny(), &EvaluateOptions::default());
        let names: Vec<_> = rows.iter().map(|r| r.estimator).collect();
        assert_eq!(names, ["IPS", "SNIPS", "DM", "DR", "SNDR"]);
        for r in &rows {
            let (v, lo, hi) = (r.value.unwrap(), r.lower.unwrap(), r.upper.unwrap());
            assert!(lo <= v && v <= hi, "{r:?}");
            assert_eq!(r.effective_sample_size.is_none(), r.estimator == "DM");
        }
        assert!((rows[2].value.unwrap() - 0.525).abs() < 1e-12);
    }

    #[test]
    fn a_candidate_that_never_takes_a_logged_action_reports_undefined_self_normalised_estimates() {
        let space = ActionSpace {
            ids: vec!["a".into(), "b".into()],
        };
        let r = CandidateRounds::new(
            space,
            vec![round(0, 0.5, 1.0, 0.5, vec![arm(1, 1.0, 0.25)])],
            WindowStats::default(),
        );
        let rows = estimates(&r, &EvaluateOptions::default());
        let snips = rows.iter().find(|r| r.estimator == "SNIPS").unwrap();
        assert_eq!(snips.value, None);
        assert!(snips.error.as_deref().unwrap().contains("sum to 0"));
        let dm = rows.iter().find(|r| r.estimator == "DM").unwrap();
        assert_eq!(dm.value, Some(0.25));
    }

    fn simulated(n: usize, epsilon: f64) -> (Policy, Vec<LogRecord>) {
        let mut p = Policy::bundled();
        p.exploration.epsilon = epsilon;
        let inputs = generate(5, n, datetime!(2026-11-20 00:00 UTC), 2);
        let logs = actix_web::rt::System::new()
            .block_on(simulate_logs(&p, &Models::bundled(), &inputs, 5))
            .unwrap();
        (p, logs)
    }

    fn rounds_of(logs: &[LogRecord], p: &Policy) -> Result<CandidateRounds, EvaluateError> {
        let models = Models::bundled();
        actix_web::rt::System::new().block_on(candidate_rounds(
            logs,
            p,
            &models,
            models.outcome.as_ref(),
            true,
        ))
    }

    #[test]
    fn the_logging_policy_evaluated_on_its_own_log_has_unit_weights_and_ips_is_the_observed_mean() {
        let (p, logs) = simulated(400, 0.3);
        assert!(
            logs.iter().any(|r| r.propensity < 1.0),
            "exploration happened"
        );
        let r = rounds_of(&logs, &p).unwrap();
        // The replay reproduces every logged decision and its exact
        // distribution, so π_e(a_i|x_i) = π_0(a_i|x_i) on every round.
        assert_eq!(r.same_action(), 1.0);
        assert_eq!(r.support(), 1.0);
        for w in r.weights().unwrap() {
            assert!((w - 1.0).abs() < 1e-12, "{w}");
        }
        let observed = logs.iter().map(|l| l.reward).sum::<f64>() / logs.len() as f64;
        let ips = r.round_values(Estimator::Ipw).unwrap();
        assert!((ips.iter().sum::<f64>() / ips.len() as f64 - observed).abs() < 1e-12);
        // Every candidate distribution sums to one.
        for round in &r.rounds {
            let total: f64 = round.arms.iter().map(|a| a.probability).sum();
            assert!((total - 1.0).abs() < 1e-12, "{total}");
        }
        // The parity report covers every audited attribute and every decision.
        let figures = parity_figures(&p, &r.stats);
        assert_eq!(figures.len(), p.fairness.group_attributes.len());
    }

    #[test]
    fn bad_records_are_refused_naming_the_record() {
        let (p, logs) = simulated(5, 0.1);
        let with = |k: usize, f: &dyn Fn(&mut LogRecord)| {
            let mut l = logs.clone();
            f(&mut l[k]);
            l
        };
        let cases: Vec<(Vec<LogRecord>, usize, &str)> = vec![
            (with(1, &|r| r.propensity = 0.0), 1, "propensity 0 "),
            (with(2, &|r| r.propensity = 1.5), 2, "propensity 1.5"),
            (with(3, &|r| r.propensity = f64::NAN), 3, "propensity NaN"),
            (with(0, &|r| r.reward = 2.0), 0, "reward 2"),
            (
                with(4, &|r| r.action = "teleport".into()),
                4,
                "\"teleport\"",
            ),
            (
                with(2, &|r| r.interaction.customer.tenure_days = u32::MAX),
                2,
                "invalid interaction",
            ),
        ];
        for (bad, index, says) in cases {
            let err = rounds_of(&bad, &p).expect_err("refused");
            let text = err.to_string();
            assert!(
                matches!(err, EvaluateError::Record { index: i, .. } if i == index),
                "{text}"
            );
            assert!(
                text.starts_with(&format!("record {}:", index + 1)),
                "{text}"
            );
            assert!(text.contains(says), "{text} should say {says}");
        }
        assert!(matches!(rounds_of(&[], &p), Err(EvaluateError::Empty)));
    }
}
