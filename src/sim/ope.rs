//! Off-policy evaluation (OPE): how would an evaluation policy have done, judged
//! only from rounds logged while another policy (the behaviour policy) was
//! acting? Semantics follow Open Bandit Pipeline 0.5.7 (`obp.ope`) for
//! slate-position data, and reproduce its estimates on the Open Bandit
//! Dataset sample to 1e-9 (`tests/it/obp_reference.rs`).
//!
//! # Data
//!
//! Round `i` of the log ([`LoggedRound`]) shows action `a_i` at position
//! `k_i` (0-based), observes reward `r_i`, and records the propensity
//! `p_i = π_b(a_i | i, k_i)` with which the behaviour policy chose it.
//! The evaluation policy is `π_e(a | i, k)` ([`ActionDist`]); the reward
//! model is `q̂(i, a, k)` ([`RewardModel`]). Both are traits (implemented by
//! closures and by [`PositionTable`]) so the product can plug in its own
//! policies without materialising a dense rounds × actions × positions array.
//!
//! The importance weight of a round is `w_i = π_e(a_i | i, k_i) / p_i`, and
//! the model's value of the evaluation policy at a round is
//!
//! ```text
//! q̂(i, π_e) = Σ_a π_e(a | i, k_i) · q̂(i, a, k_i) / Σ_a π_e(a | i, k_i)
//! ```
//!
//! (obp uses `np.average(q̂, weights=π_e)`, which divides by the policy's
//! mass at that position; for a proper distribution the divisor is 1).
//!
//! # Estimators (`E_n` is the mean over the `n` logged rounds)
//!
//! | estimator | value | per round |
//! |---|---|---|
//! | IPW (inverse propensity weighting) | `E_n[w·r]` | `w_i·r_i` |
//! | SNIPW (self-normalised IPW) | `E_n[w·r] / E_n[w]` | `w_i·r_i / E_n[w]` |
//! | DM (direct method) | `E_n[q̂(i, π_e)]` | `q̂(i, π_e)` |
//! | DR (doubly robust) | `E_n[q̂(i, π_e) + w·(r − q̂(i, a_i, k_i))]` | the bracket |
//! | SNDR (self-normalised DR) | `E_n[q̂(i, π_e)] + Σ w·(r − q̂(i, a_i, k_i)) / Σ w` | `q̂(i, π_e) + w_i·(r_i − q̂_i) / E_n[w]` |
//!
//! IPW is unbiased when the propensities are right but has high variance when
//! the policies differ; SNIPW trades a small bias for stability; DM has low
//! variance but inherits the reward model's bias; DR is unbiased if either the
//! propensities or the model are right and uses the model as a control
//! variate; SNDR self-normalises DR's correction term like SNIPW.
//!
//! The per-round values of the self-normalised estimators use the
//! full-sample `E_n[w]`, as obp does, so their mean is the estimate and a
//! bootstrap over them resamples with the normaliser held fixed.
//!
//! # Uncertainty and overlap
//!
//! [`bootstrap_confidence_interval`] is obp's nonparametric percentile
//! bootstrap of the mean of the per-round values (seeded and deterministic,
//! but with its own generator: the numbers differ from obp's numpy ones).
//! [`effective_sample_size`] `(Σw)² / Σw²` says how many rounds the weighted
//! estimate is really worth; far below `n` means the evaluation policy goes
//! where the log rarely went.
//!
//! Nothing here does I/O; callers load the logs.

use thiserror::Error;

/// One logged round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedRound {
    /// The action (item) shown, in `0..n_actions`.
    pub action: usize,
    /// The 0-based position it was shown at, in `0..len_list`.
    pub position: usize,
    /// The observed reward (a click is 1, no click 0).
    pub reward: f64,
    /// The behaviour policy's probability of this action at this position.
    pub pscore: f64,
}

/// The evaluation policy: `π_e(action | round, position)`.
pub trait ActionDist {
    /// Probability that the policy puts `action` at `position` in `round`.
    fn prob(&self, round: usize, action: usize, position: usize) -> f64;
}

impl<F> ActionDist for F
where
    F: Fn(usize, usize, usize) -> f64,
{
    fn prob(&self, round: usize, action: usize, position: usize) -> f64 {
        self(round, action, position)
    }
}

/// The reward model: `q̂(round, action, position)`, the expected reward.
pub trait RewardModel {
    /// Expected reward of `action` at `position` in `round`.
    fn predict(&self, round: usize, action: usize, position: usize) -> f64;
}

impl<F> RewardModel for F
where
    F: Fn(usize, usize, usize) -> f64,
{
    fn predict(&self, round: usize, action: usize, position: usize) -> f64 {
        self(round, action, position)
    }
}

/// A context-free action × position table: a policy that ignores the round,
/// or a reward model such as the click rate per (item, position).
#[derive(Debug, Clone, PartialEq)]
pub struct PositionTable {
    n_actions: usize,
    len_list: usize,
    /// Row-major: `values[action * len_list + position]`.
    values: Vec<f64>,
}

impl PositionTable {
    /// A table from row-major values (`values[action * len_list + position]`).
    pub fn new(n_actions: usize, len_list: usize, values: Vec<f64>) -> Result<Self, OpeError> {
        if values.len() != n_actions * len_list {
            return Err(OpeError::TableShape {
                got: values.len(),
                n_actions,
                len_list,
            });
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(OpeError::TableValue {
                action: i / len_list,
                position: i % len_list,
                value: values[i],
            });
        }
        Ok(Self {
            n_actions,
            len_list,
            values,
        })
    }

    /// The uniform policy: every action with probability `1 / n_actions` at
    /// every position.
    pub fn uniform(n_actions: usize, len_list: usize) -> Self {
        let p = 1.0 / n_actions as f64;
        Self {
            n_actions,
            len_list,
            values: vec![p; n_actions * len_list],
        }
    }

    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    pub fn len_list(&self) -> usize {
        self.len_list
    }

    /// The value at (`action`, `position`); `None` outside the table.
    pub fn get(&self, action: usize, position: usize) -> Option<f64> {
        (action < self.n_actions && position < self.len_list)
            .then(|| self.values[action * self.len_list + position])
    }
}

// Outside the table reads as NaN rather than panicking: the estimators reject
// it as an error naming the round, action and position (a table smaller than
// the log is a caller's mistake a service should report, not crash on).

impl ActionDist for PositionTable {
    fn prob(&self, _round: usize, action: usize, position: usize) -> f64 {
        self.get(action, position).unwrap_or(f64::NAN)
    }
}

impl RewardModel for PositionTable {
    fn predict(&self, _round: usize, action: usize, position: usize) -> f64 {
        self.get(action, position).unwrap_or(f64::NAN)
    }
}

/// Why an estimate could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OpeError {
    #[error("no logged rounds")]
    NoRounds,
    #[error("round {round}: action {action} is not below n_actions = {n_actions}")]
    ActionOutOfRange {
        round: usize,
        action: usize,
        n_actions: usize,
    },
    #[error("round {round}: position {position} is not below len_list = {len_list}")]
    PositionOutOfRange {
        round: usize,
        position: usize,
        len_list: usize,
    },
    #[error("round {round}: propensity score {pscore} is not in (0, 1]")]
    BadPscore { round: usize, pscore: f64 },
    #[error("round {round}: reward {reward} is not finite")]
    BadReward { round: usize, reward: f64 },
    #[error(
        "round {round}: the evaluation policy gives {value} to action {action} at position \
         {position}; a probability must be in [0, 1]"
    )]
    BadProbability {
        round: usize,
        action: usize,
        position: usize,
        value: f64,
    },
    #[error(
        "round {round}: the reward model gives {value} for action {action} at position \
         {position}; it must be finite"
    )]
    BadPrediction {
        round: usize,
        action: usize,
        position: usize,
        value: f64,
    },
    #[error(
        "round {round}: the evaluation policy puts no probability on any action at position \
         {position}, so its expected reward there is undefined"
    )]
    NoPolicyMass { round: usize, position: usize },
    #[error(
        "the importance weights sum to 0 (the evaluation policy never takes a logged action), \
         so self-normalised estimates are undefined"
    )]
    ZeroWeights,
    #[error("a table of {got} values cannot be {n_actions} actions × {len_list} positions")]
    TableShape {
        got: usize,
        n_actions: usize,
        len_list: usize,
    },
    #[error("table value {value} at action {action}, position {position} is not finite")]
    TableValue {
        action: usize,
        position: usize,
        value: f64,
    },
    #[error("bootstrap: {0}")]
    Bootstrap(&'static str),
}

/// A validated log: non-empty, every action and position in range, every
/// propensity in (0, 1], every reward finite.
#[derive(Debug, Clone, Copy)]
pub struct LoggedData<'a> {
    rounds: &'a [LoggedRound],
    n_actions: usize,
    len_list: usize,
}

impl<'a> LoggedData<'a> {
    /// Checks `rounds` against the action and position counts.
    pub fn new(
        rounds: &'a [LoggedRound],
        n_actions: usize,
        len_list: usize,
    ) -> Result<Self, OpeError> {
        if rounds.is_empty() {
            return Err(OpeError::NoRounds);
        }
        for (round, r) in rounds.iter().enumerate() {
            if r.action >= n_actions {
                return Err(OpeError::ActionOutOfRange {
                    round,
                    action: r.action,
                    n_actions,
                });
            }
            if r.position >= len_list {
                return Err(OpeError::PositionOutOfRange {
                    round,
                    position: r.position,
                    len_list,
                });
            }
            // `!(p > 0)` also rejects NaN.
            if !(r.pscore > 0.0 && r.pscore <= 1.0) {
                return Err(OpeError::BadPscore {
                    round,
                    pscore: r.pscore,
                });
            }
            if !r.reward.is_finite() {
                return Err(OpeError::BadReward {
                    round,
                    reward: r.reward,
                });
            }
        }
        Ok(Self {
            rounds,
            n_actions,
            len_list,
        })
    }

    pub fn rounds(&self) -> &'a [LoggedRound] {
        self.rounds
    }

    pub fn n_rounds(&self) -> usize {
        self.rounds.len()
    }

    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    pub fn len_list(&self) -> usize {
        self.len_list
    }

    /// The mean logged reward: the behaviour policy's own (on-policy) value.
    pub fn on_policy_value(&self) -> f64 {
        mean(self.rounds.iter().map(|r| r.reward))
    }
}

/// The estimators obp 0.5.7 calls `ipw`, `snipw`, `dm`, `dr` and `sndr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Estimator {
    Ipw,
    Snipw,
    Dm,
    Dr,
    Sndr,
}

impl Estimator {
    pub const ALL: [Estimator; 5] = [
        Estimator::Ipw,
        Estimator::Snipw,
        Estimator::Dm,
        Estimator::Dr,
        Estimator::Sndr,
    ];

    /// obp's `estimator_name`.
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Ipw => "ipw",
            Estimator::Snipw => "snipw",
            Estimator::Dm => "dm",
            Estimator::Dr => "dr",
            Estimator::Sndr => "sndr",
        }
    }

    /// Whether the estimate depends on the reward model.
    pub fn uses_reward_model(self) -> bool {
        matches!(self, Estimator::Dm | Estimator::Dr | Estimator::Sndr)
    }

    /// The per-round values whose mean is the estimate (see the module
    /// docs). IPW and SNIPW never call `model`.
    pub fn round_rewards<P, Q>(
        self,
        data: &LoggedData<'_>,
        policy: &P,
        model: &Q,
    ) -> Result<Vec<f64>, OpeError>
    where
        P: ActionDist + ?Sized,
        Q: RewardModel + ?Sized,
    {
        match self {
            Estimator::Ipw => ipw_round_rewards(data, policy),
            Estimator::Snipw => snipw_round_rewards(data, policy),
            Estimator::Dm => dm_round_rewards(data, policy, model),
            Estimator::Dr => dr_round_rewards(data, policy, model),
            Estimator::Sndr => sndr_round_rewards(data, policy, model),
        }
    }

    /// The estimated value of `policy`.
    pub fn estimate<P, Q>(
        self,
        data: &LoggedData<'_>,
        policy: &P,
        model: &Q,
    ) -> Result<f64, OpeError>
    where
        P: ActionDist + ?Sized,
        Q: RewardModel + ?Sized,
    {
        Ok(mean(self.round_rewards(data, policy, model)?))
    }
}

/// `w_i = π_e(a_i | i, k_i) / p_i` for every round.
pub fn importance_weights<P>(data: &LoggedData<'_>, policy: &P) -> Result<Vec<f64>, OpeError>
where
    P: ActionDist + ?Sized,
{
    data.rounds
        .iter()
        .enumerate()
        .map(|(i, r)| Ok(prob(policy, i, r.action, r.position)? / r.pscore))
        .collect()
}

/// IPW per round: `w_i·r_i`.
pub fn ipw_round_rewards<P>(data: &LoggedData<'_>, policy: &P) -> Result<Vec<f64>, OpeError>
where
    P: ActionDist + ?Sized,
{
    let w = importance_weights(data, policy)?;
    Ok(data
        .rounds
        .iter()
        .zip(&w)
        .map(|(r, w)| w * r.reward)
        .collect())
}

/// SNIPW per round: `w_i·r_i / E_n[w]`.
pub fn snipw_round_rewards<P>(data: &LoggedData<'_>, policy: &P) -> Result<Vec<f64>, OpeError>
where
    P: ActionDist + ?Sized,
{
    let w = importance_weights(data, policy)?;
    let mean_w = mean_weight(&w)?;
    Ok(data
        .rounds
        .iter()
        .zip(&w)
        .map(|(r, w)| w * r.reward / mean_w)
        .collect())
}

/// DM per round: `q̂(i, π_e)`.
pub fn dm_round_rewards<P, Q>(
    data: &LoggedData<'_>,
    policy: &P,
    model: &Q,
) -> Result<Vec<f64>, OpeError>
where
    P: ActionDist + ?Sized,
    Q: RewardModel + ?Sized,
{
    data.rounds
        .iter()
        .enumerate()
        .map(|(i, r)| policy_q_hat(data, policy, model, i, r.position))
        .collect()
}

/// DR per round: `q̂(i, π_e) + w_i·(r_i − q̂(i, a_i, k_i))`.
pub fn dr_round_rewards<P, Q>(
    data: &LoggedData<'_>,
    policy: &P,
    model: &Q,
) -> Result<Vec<f64>, OpeError>
where
    P: ActionDist + ?Sized,
    Q: RewardModel + ?Sized,
{
    let parts = DrParts::new(data, policy, model)?;
    Ok(parts.combine(1.0))
}

/// SNDR per round: `q̂(i, π_e) + w_i·(r_i − q̂(i, a_i, k_i)) / E_n[w]`.
pub fn sndr_round_rewards<P, Q>(
    data: &LoggedData<'_>,
    policy: &P,
    model: &Q,
) -> Result<Vec<f64>, OpeError>
where
    P: ActionDist + ?Sized,
    Q: RewardModel + ?Sized,
{
    let parts = DrParts::new(data, policy, model)?;
    let mean_w = mean_weight(&parts.weights)?;
    Ok(parts.combine(mean_w))
}

/// The pieces DR and SNDR share.
struct DrParts {
    dm: Vec<f64>,
    weights: Vec<f64>,
    residuals: Vec<f64>,
}

impl DrParts {
    fn new<P, Q>(data: &LoggedData<'_>, policy: &P, model: &Q) -> Result<Self, OpeError>
    where
        P: ActionDist + ?Sized,
        Q: RewardModel + ?Sized,
    {
        let dm = dm_round_rewards(data, policy, model)?;
        let weights = importance_weights(data, policy)?;
        let residuals = data
            .rounds
            .iter()
            .enumerate()
            .map(|(i, r)| Ok(r.reward - predict(model, i, r.action, r.position)?))
            .collect::<Result<Vec<_>, OpeError>>()?;
        Ok(Self {
            dm,
            weights,
            residuals,
        })
    }

    /// `dm_i + w_i·residual_i / normaliser`.
    fn combine(&self, normaliser: f64) -> Vec<f64> {
        self.dm
            .iter()
            .zip(&self.weights)
            .zip(&self.residuals)
            .map(|((dm, w), res)| dm + w * res / normaliser)
            .collect()
    }
}

/// `q̂(i, π_e)`: the model's expected reward under the policy at `position`,
/// normalised by the policy's mass there (obp's `np.average`).
fn policy_q_hat<P, Q>(
    data: &LoggedData<'_>,
    policy: &P,
    model: &Q,
    round: usize,
    position: usize,
) -> Result<f64, OpeError>
where
    P: ActionDist + ?Sized,
    Q: RewardModel + ?Sized,
{
    let (mut weighted, mut mass) = (0.0, 0.0);
    for action in 0..data.n_actions {
        let p = prob(policy, round, action, position)?;
        // Actions the policy never takes add nothing; skipping them also
        // spares the model calls for deterministic policies.
        if p > 0.0 {
            weighted += p * predict(model, round, action, position)?;
            mass += p;
        }
    }
    if mass > 0.0 {
        Ok(weighted / mass)
    } else {
        Err(OpeError::NoPolicyMass { round, position })
    }
}

fn prob<P: ActionDist + ?Sized>(
    policy: &P,
    round: usize,
    action: usize,
    position: usize,
) -> Result<f64, OpeError> {
    let value = policy.prob(round, action, position);
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(OpeError::BadProbability {
            round,
            action,
            position,
            value,
        })
    }
}

fn predict<Q: RewardModel + ?Sized>(
    model: &Q,
    round: usize,
    action: usize,
    position: usize,
) -> Result<f64, OpeError> {
    let value = model.predict(round, action, position);
    if value.is_finite() {
        Ok(value)
    } else {
        Err(OpeError::BadPrediction {
            round,
            action,
            position,
            value,
        })
    }
}

fn mean_weight(weights: &[f64]) -> Result<f64, OpeError> {
    let m = mean(weights.iter().copied());
    if m > 0.0 {
        Ok(m)
    } else {
        Err(OpeError::ZeroWeights)
    }
}

/// Mean with Neumaier-compensated summation, so an estimate does not drift
/// with the order or the number of rounds. NaN for no values (callers
/// guarantee at least one).
fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut compensation, mut n) = (0.0_f64, 0.0_f64, 0_usize);
    for v in values {
        let t = sum + v;
        compensation += if sum.abs() >= v.abs() {
            (sum - t) + v
        } else {
            (v - t) + sum
        };
        sum = t;
        n += 1;
    }
    (sum + compensation) / n as f64
}

/// Kish's effective sample size of importance weights, `(Σw)² / Σw²`: `n`
/// when every weight is equal, down to 1 when one round carries all the
/// weight; 0 when every weight is 0.
pub fn effective_sample_size(weights: &[f64]) -> f64 {
    let sum: f64 = weights.iter().sum();
    let sum_sq: f64 = weights.iter().map(|w| w * w).sum();
    if sum_sq > 0.0 {
        sum * sum / sum_sq
    } else {
        0.0
    }
}

/// A bootstrap confidence interval of a mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceInterval {
    /// The mean of the samples themselves: the point estimate.
    pub estimate: f64,
    /// The mean of the resampled means (what obp reports as `mean`).
    pub bootstrap_mean: f64,
    /// The `alpha / 2` percentile of the resampled means.
    pub lower: f64,
    /// The `1 − alpha / 2` percentile of the resampled means.
    pub upper: f64,
}

/// Percentile bootstrap of the mean of `samples` (per-round estimates), as
/// obp's `estimate_confidence_interval_by_bootstrap`: `n_resamples` means of
/// resamples with replacement of the same size, and their `alpha / 2` and
/// `1 − alpha / 2` percentiles (linear interpolation, numpy's default).
///
/// Deterministic for a given `seed`, but not numpy's generator, so the bounds
/// differ from obp's by sampling noise.
pub fn bootstrap_confidence_interval(
    samples: &[f64],
    alpha: f64,
    n_resamples: usize,
    seed: u64,
) -> Result<ConfidenceInterval, OpeError> {
    if samples.is_empty() {
        return Err(OpeError::Bootstrap("no samples"));
    }
    if samples.iter().any(|s| !s.is_finite()) {
        return Err(OpeError::Bootstrap("samples must be finite"));
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(OpeError::Bootstrap("alpha must be in (0, 1)"));
    }
    if n_resamples == 0 {
        return Err(OpeError::Bootstrap("at least one resample is needed"));
    }
    let mut rng = SplitMix64(seed);
    let n = samples.len();
    let mut means: Vec<f64> = (0..n_resamples)
        .map(|_| mean((0..n).map(|_| samples[rng.below(n)])))
        .collect();
    means.sort_by(f64::total_cmp);
    Ok(ConfidenceInterval {
        estimate: mean(samples.iter().copied()),
        bootstrap_mean: mean(means.iter().copied()),
        lower: percentile(&means, alpha / 2.0),
        upper: percentile(&means, 1.0 - alpha / 2.0),
    })
}

/// The `q`-quantile (q in [0, 1]) of sorted, non-empty values, interpolating
/// linearly between neighbours like `np.percentile`.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, seedable, and plenty for
/// drawing bootstrap indices; the crate has no RNG dependency to lean on.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0) without modulo bias (Lemire 2019).
    fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as usize;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(action: usize, position: usize, reward: f64, pscore: f64) -> LoggedRound {
        LoggedRound {
            action,
            position,
            reward,
            pscore,
        }
    }

    /// Uniform logging over 2 actions at 1 position: action 1 always clicks.
    fn uniform_log() -> Vec<LoggedRound> {
        vec![
            round(0, 0, 0.0, 0.5),
            round(1, 0, 1.0, 0.5),
            round(0, 0, 0.0, 0.5),
            round(1, 0, 1.0, 0.5),
        ]
    }

    fn always_action_1(_: usize, a: usize, _: usize) -> f64 {
        if a == 1 {
            1.0
        } else {
            0.0
        }
    }

    fn zero_model(_: usize, _: usize, _: usize) -> f64 {
        0.0
    }

    #[test]
    fn ipw_recovers_the_value_of_a_deterministic_policy_under_uniform_logging() {
        let log = uniform_log();
        let data = LoggedData::new(&log, 2, 1).unwrap();
        let v = Estimator::Ipw
            .estimate(&data, &always_action_1, &zero_model)
            .unwrap();
        assert_eq!(v, 1.0);
        let v = Estimator::Snipw
            .estimate(&data, &always_action_1, &zero_model)
            .unwrap();
        assert_eq!(v, 1.0);
    }

    #[test]
    fn snipw_divides_ipw_by_the_mean_weight() {
        let log = vec![round(0, 0, 1.0, 0.25), round(1, 0, 0.0, 0.5)];
        let data = LoggedData::new(&log, 2, 1).unwrap();
        let policy = |_: usize, _: usize, _: usize| 0.5;
        let ipw = Estimator::Ipw
            .estimate(&data, &policy, &zero_model)
            .unwrap();
        let snipw = Estimator::Snipw
            .estimate(&data, &policy, &zero_model)
            .unwrap();
        // w = [2, 1]: IPW = (2·1 + 0) / 2 = 1, mean w = 1.5.
        assert_eq!(ipw, 1.0);
        assert!((snipw - 1.0 / 1.5).abs() < 1e-15);
    }

    #[test]
    fn dr_with_a_zero_model_is_ipw_and_sndr_is_snipw() {
        let log = vec![
            round(0, 0, 1.0, 0.25),
            round(1, 1, 0.0, 0.5),
            round(2, 0, 1.0, 0.1),
        ];
        let data = LoggedData::new(&log, 3, 2).unwrap();
        let policy = PositionTable::new(3, 2, vec![0.2, 0.5, 0.3, 0.25, 0.5, 0.25]).unwrap();
        let zero = PositionTable::new(3, 2, vec![0.0; 6]).unwrap();
        let est = |e: Estimator| e.estimate(&data, &policy, &zero).unwrap();
        assert!((est(Estimator::Dr) - est(Estimator::Ipw)).abs() < 1e-15);
        assert!((est(Estimator::Sndr) - est(Estimator::Snipw)).abs() < 1e-15);
        assert_eq!(est(Estimator::Dm), 0.0);
    }

    #[test]
    fn dr_with_a_model_that_predicts_every_reward_is_dm() {
        let log = uniform_log();
        let data = LoggedData::new(&log, 2, 1).unwrap();
        let perfect = |_: usize, a: usize, _: usize| a as f64;
        let policy = |_: usize, _: usize, _: usize| 0.5;
        for e in [Estimator::Dm, Estimator::Dr, Estimator::Sndr] {
            assert_eq!(e.estimate(&data, &policy, &perfect).unwrap(), 0.5);
        }
    }

    #[test]
    fn dm_normalises_by_the_policy_mass_at_the_position_like_np_average() {
        let log = vec![round(0, 0, 0.0, 0.5)];
        let data = LoggedData::new(&log, 2, 1).unwrap();
        // Mass 0.5 in total: the average of q̂ under it is 0.2·1/0.5 + 0.3·3/0.5.
        let policy = |_: usize, a: usize, _: usize| if a == 0 { 0.2 } else { 0.3 };
        let model = |_: usize, a: usize, _: usize| if a == 0 { 1.0 } else { 3.0 };
        let v = Estimator::Dm.estimate(&data, &policy, &model).unwrap();
        assert!((v - 2.2).abs() < 1e-15);
    }

    #[test]
    fn per_round_values_average_to_the_estimate() {
        let log = vec![
            round(0, 0, 1.0, 0.25),
            round(1, 1, 0.0, 0.5),
            round(2, 0, 1.0, 0.1),
        ];
        let data = LoggedData::new(&log, 3, 2).unwrap();
        let policy = PositionTable::uniform(3, 2);
        let model = PositionTable::new(3, 2, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
        for e in Estimator::ALL {
            let rounds = e.round_rewards(&data, &policy, &model).unwrap();
            assert_eq!(rounds.len(), 3);
            let m = rounds.iter().sum::<f64>() / 3.0;
            assert!((m - e.estimate(&data, &policy, &model).unwrap()).abs() < 1e-15);
        }
    }

    #[test]
    fn malformed_logs_are_rejected_with_the_round_that_is_wrong() {
        let ok = round(0, 0, 1.0, 0.5);
        assert_eq!(LoggedData::new(&[], 2, 1).unwrap_err(), OpeError::NoRounds);
        let cases = [
            (round(2, 0, 1.0, 0.5), "action"),
            (round(0, 1, 1.0, 0.5), "position"),
            (round(0, 0, 1.0, 0.0), "propensity"),
            (round(0, 0, 1.0, f64::NAN), "propensity"),
            (round(0, 0, 1.0, 1.5), "propensity"),
            (round(0, 0, f64::INFINITY, 0.5), "reward"),
        ];
        for (bad, what) in cases {
            let err = LoggedData::new(&[ok, bad], 2, 1).unwrap_err().to_string();
            assert!(err.starts_with("round 1:") && err.contains(what), "{err}");
        }
    }

    #[test]
    fn a_policy_that_never_takes_a_logged_action_cannot_be_self_normalised() {
        let log = vec![round(0, 0, 1.0, 0.5)];
        let data = LoggedData::new(&log, 2, 1).unwrap();
        let never_0 = |_: usize, a: usize, _: usize| if a == 0 { 0.0 } else { 1.0 };
        assert_eq!(
            Estimator::Ipw.estimate(&data, &never_0, &zero_model),
            Ok(0.0)
        );
        for e in [Estimator::Snipw, Estimator::Sndr] {
            assert_eq!(
                e.estimate(&data, &never_0, &zero_model),
                Err(OpeError::ZeroWeights)
            );
        }
    }

    #[test]
    fn bad_policy_or_model_values_are_errors_not_nan() {
        let log = vec![round(0, 0, 1.0, 0.5)];
        let data = LoggedData::new(&log, 2, 1).unwrap();
        let nowhere = |_: usize, _: usize, _: usize| 0.0;
        assert_eq!(
            Estimator::Dm.estimate(&data, &nowhere, &zero_model),
            Err(OpeError::NoPolicyMass {
                round: 0,
                position: 0
            })
        );
        let nan = |_: usize, _: usize, _: usize| f64::NAN;
        let half = |_: usize, _: usize, _: usize| 0.5;
        assert!(matches!(
            Estimator::Ipw.estimate(&data, &nan, &zero_model),
            Err(OpeError::BadProbability { .. })
        ));
        assert!(matches!(
            Estimator::Dr.estimate(&data, &half, &nan),
            Err(OpeError::BadPrediction { .. })
        ));
    }

    #[test]
    fn tables_must_have_one_finite_value_per_action_and_position() {
        assert!(matches!(
            PositionTable::new(2, 3, vec![0.0; 5]),
            Err(OpeError::TableShape { got: 5, .. })
        ));
        assert!(matches!(
            PositionTable::new(2, 2, vec![0.0, 0.0, f64::NAN, 0.0]),
            Err(OpeError::TableValue {
                action: 1,
                position: 0,
                value
            }) if value.is_nan()
        ));
    }

    #[test]
    fn a_table_smaller_than_the_log_is_an_error_not_a_panic() {
        let log = vec![round(2, 0, 1.0, 0.5)];
        let data = LoggedData::new(&log, 3, 1).unwrap();
        let small = PositionTable::uniform(2, 1);
        assert!(matches!(
            Estimator::Ipw.estimate(&data, &small, &small),
            Err(OpeError::BadProbability {
                round: 0,
                action: 2,
                ..
            })
        ));
        assert_eq!(small.get(1, 0), Some(0.5));
        assert_eq!(small.get(0, 1), None);
    }

    #[test]
    fn effective_sample_size_runs_from_one_to_n() {
        assert_eq!(effective_sample_size(&[2.0; 10]), 10.0);
        assert_eq!(effective_sample_size(&[0.0, 5.0, 0.0]), 1.0);
        assert_eq!(effective_sample_size(&[0.0, 0.0]), 0.0);
        assert_eq!(effective_sample_size(&[]), 0.0);
    }

    #[test]
    fn the_bootstrap_is_deterministic_per_seed_and_brackets_the_mean() {
        let samples: Vec<f64> = (0..500).map(|i| f64::from(i % 7 == 0)).collect();
        let a = bootstrap_confidence_interval(&samples, 0.05, 400, 7).unwrap();
        let b = bootstrap_confidence_interval(&samples, 0.05, 400, 7).unwrap();
        let c = bootstrap_confidence_interval(&samples, 0.05, 400, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.lower < a.estimate && a.estimate < a.upper, "{a:?}");
        assert!((a.bootstrap_mean - a.estimate).abs() < 0.01);
        // The standard error of a 1/7 rate over 500 rounds is about 0.016.
        assert!(
            a.upper - a.lower > 0.03 && a.upper - a.lower < 0.09,
            "{a:?}"
        );
    }

    #[test]
    fn a_constant_sample_has_a_zero_width_interval() {
        let ci = bootstrap_confidence_interval(&[0.25; 50], 0.1, 20, 1).unwrap();
        assert_eq!((ci.lower, ci.estimate, ci.upper), (0.25, 0.25, 0.25));
    }

    #[test]
    fn bootstrap_arguments_are_checked() {
        assert!(bootstrap_confidence_interval(&[], 0.05, 10, 0).is_err());
        assert!(bootstrap_confidence_interval(&[1.0], 0.0, 10, 0).is_err());
        assert!(bootstrap_confidence_interval(&[1.0], 0.05, 0, 0).is_err());
        assert!(bootstrap_confidence_interval(&[f64::NAN], 0.05, 10, 0).is_err());
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert_eq!(percentile(&v, 0.5), 2.5);
        assert!((percentile(&v, 0.025) - 1.075).abs() < 1e-15);
    }

    #[test]
    fn bounded_draws_cover_the_range_evenly() {
        let mut rng = SplitMix64(42);
        let mut counts = [0_u32; 5];
        for _ in 0..50_000 {
            counts[rng.below(5)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn compensated_mean_keeps_small_values_next_to_large_ones() {
        let v = [1e16, 1.0, -1e16, 1.0];
        assert_eq!(mean(v), 0.5);
    }
}
