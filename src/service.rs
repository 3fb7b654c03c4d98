//! The decision service: one interaction in, one recorded decision out.
//!
//! This is the only place that sequences the pure core and the store: read
//! the window snapshot, plan, render the answer (the refusals on demand),
//! commit once. It knows nothing about HTTP, so the CLI, the batch endpoint
//! and tests use it directly. The active policy and models are swapped atomically (`ArcSwap`):
//! a request keeps the versions it started with.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use arc_swap::{ArcSwap, ArcSwapOption};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::decide::{self, Inputs, Refusal, Stamp};
use crate::domain::decision::Decision;
use crate::domain::interaction::{Interaction, InteractionInput};
use crate::domain::outcome::{OutcomeModel, RulesOutcome};
use crate::domain::policy::{Policy, PolicyChange};
use crate::domain::sentiment::{SentimentModel, VaderScorer};
use crate::domain::validation::{InteractionId, ValidationError};
use crate::domain::window::{cells_for, WindowStats};
use crate::model::shadow::Shadow;
use crate::store::failures::FailureWindow;
use crate::store::{
    body_hash, BodyHash, Commit, CommitOutcome, GrantRequest, Refusals, RefusedBy, ShadowChoice,
    Store, StoreError,
};

/// The models a decision uses, loaded together and versioned together.
#[derive(Clone)]
pub struct Models {
    pub sentiment: Arc<dyn SentimentModel>,
    pub outcome: Arc<dyn OutcomeModel>,
}

impl Models {
    /// The models compiled into the binary.
    pub fn bundled() -> Self {
        Self {
            sentiment: Arc::new(VaderScorer::bundled()),
            outcome: Arc::new(RulesOutcome),
        }
    }

    /// The `model_version` reported in decisions.
    pub fn version(&self) -> String {
        format!("{}+{}", self.sentiment.version(), self.outcome.version())
    }
}

/// Errors of the service layer.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("interaction {0} was already decided with a different body")]
    IdempotencyMismatch(String),
    #[error("the policy has {} invalid field(s)", .0.len())]
    InvalidPolicy(Vec<ValidationError>),
    #[error("the policy is based on version {based_on}, but {current} is in force")]
    VersionConflict { based_on: u32, current: u32 },
    #[error("{0:?} is not an audited attribute")]
    UnknownAttribute(String),
    #[error("invalid interaction: {0}")]
    InvalidInteraction(ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether a decision was new or a replay, and how it was valued.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub decision: Decision,
    pub replayed: bool,
    /// Utility and justice cost of the action taken (currency units), as
    /// valued by this request's plan.
    pub utility: f64,
    pub justice_cost: f64,
    /// What the decision explored at random, if anything (metrics, logs).
    pub exploration: Option<decide::ExploredPart>,
    /// The policy's probability of every action it could have taken, for the
    /// answer served (the fallback's when a gesture was refused); for
    /// off-policy evaluation of this policy on logged decisions.
    pub probabilities: Vec<(String, f64)>,
}

/// The decision service.
pub struct DecisionService {
    policy: ArcSwap<Policy>,
    models: ArcSwap<Models>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    store_deadline: StdDuration,
    /// Where the models live (`GET /v1/models`, activation); `None` when
    /// the service runs on the bundled models.
    models_dir: std::sync::RwLock<Option<std::path::PathBuf>>,
    /// A second model set scoring every interaction beside the active one
    /// (logged, never served); see `model::shadow`.
    shadow: ArcSwapOption<Shadow>,
    /// Batch chunks committing at once (see [`BATCHES_IN_FLIGHT`]).
    batch_slots: tokio::sync::Semaphore,
}

/// How many batch chunks ([`DecisionService::decide_all`] calls) a replica
/// has committing at once; the others, planned, wait their turn, in order.
/// A chunk's commits go to the store together, so without this bound 64
/// clients sending batches put thousands of commits in Redis's queue at
/// once: each then waits out its deadline behind the others and fails
/// closed under mere load (measured: 57 % of batch decisions degraded).
/// Bounded, the queue stays a few milliseconds deep (a chunk is one script
/// call of about a millisecond), the deadline keeps meaning "Redis is
/// unwell", and a busy replica makes batches wait instead of refusing their
/// perks. Measured with 64 clients sending batches of 100 to one Redis on 2
/// cores: 8 left a seventh of the machine idle, 16 a twelfth with no
/// degraded answer, 32 degraded a few hundred of 276,000.
pub const BATCHES_IN_FLIGHT: usize = 16;

/// Items a batch chunk plans between two yields to the worker's other
/// tasks (each is about 40 µs of CPU).
const PLAN_BETWEEN_YIELDS: usize = 4;

/// Histogram of how long a batch chunk waited for its turn (see
/// [`BATCHES_IN_FLIGHT`]): the replica's batch queue, for operators.
pub const BATCH_WAIT_METRIC: &str = "fairtreat_batch_wait_seconds";

/// Longest a store call may take before the decision fails closed
/// (`serve --store-deadline-ms` changes it).
pub const DEFAULT_STORE_DEADLINE: StdDuration = StdDuration::from_millis(DEFAULT_STORE_DEADLINE_MS);
/// [`DEFAULT_STORE_DEADLINE`] in milliseconds.
pub const DEFAULT_STORE_DEADLINE_MS: u64 = 50;

impl DecisionService {
    pub fn new(
        policy: Policy,
        models: Models,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            policy: ArcSwap::from_pointee(policy),
            models: ArcSwap::from_pointee(models),
            store,
            clock,
            store_deadline: DEFAULT_STORE_DEADLINE,
            models_dir: std::sync::RwLock::new(None),
            shadow: ArcSwapOption::empty(),
            batch_slots: tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT),
        }
    }

    /// Attaches `shadow` (replacing any other): from now on every decision
    /// also logs what it would have done.
    pub fn attach_shadow(&self, shadow: Shadow) {
        self.shadow.store(Some(Arc::new(shadow)));
    }

    /// Detaches the shadow, returning it if one was attached.
    pub fn detach_shadow(&self) -> Option<Arc<Shadow>> {
        self.shadow.swap(None)
    }

    pub fn shadow(&self) -> Option<Arc<Shadow>> {
        self.shadow.load_full()
    }

    /// What the attached shadow (if any) would have chosen with the same
    /// inputs as the decision: same policy, window snapshot and draws. Its
    /// plan is logged beside the decision and never served.
    fn shadow_choice(
        &self,
        interaction: &Interaction,
        policy: &Policy,
        window: &WindowStats,
        hash: &BodyHash,
    ) -> Option<ShadowChoice> {
        let shadow = self.shadow.load_full()?;
        let plan = decide::plan(&Inputs {
            interaction,
            policy,
            sentiment: shadow.models.sentiment.as_ref(),
            outcome: shadow.models.outcome.as_ref(),
            window,
            draws: draws(hash),
        });
        Some(shadow.choice(&plan))
    }

    /// Names the models directory the models API lists and activates from.
    pub fn with_models_dir(self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.set_models_dir(dir);
        self
    }

    /// As [`Self::with_models_dir`], on a shared service.
    pub fn set_models_dir(&self, dir: impl Into<std::path::PathBuf>) {
        *self
            .models_dir
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(dir.into());
    }

    pub fn models_dir(&self) -> Option<std::path::PathBuf> {
        self.models_dir
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the active models atomically; in-flight decisions keep the
    /// models they started with.
    pub fn set_models(&self, models: Models) {
        self.models.store(Arc::new(models));
    }

    /// Replaces the active models with `f(current)` atomically (a
    /// concurrent swap of another task's model is not lost).
    pub fn update_models(&self, f: impl Fn(&Models) -> Models) {
        self.models.rcu(|m| Arc::new(f(m)));
    }

    pub fn with_store_deadline(mut self, deadline: StdDuration) -> Self {
        self.store_deadline = deadline;
        self
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    pub fn models(&self) -> Arc<Models> {
        self.models.load_full()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Replaces the active policy (already validated) atomically.
    pub fn set_policy(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
    }

    /// Validates and applies a new policy document edited from `proposed.version`,
    /// which must be the version in force (optimistic concurrency: an edit of
    /// a stale version is refused rather than silently overwriting someone
    /// else's change). The new document gets the next version and is recorded
    /// with who changed what in the same atomic store step.
    pub async fn replace_policy(
        &self,
        mut proposed: Policy,
        actor: &str,
    ) -> Result<PolicyChange, ServiceError> {
        proposed.validate().map_err(ServiceError::InvalidPolicy)?;
        let current = self.policy.load_full();
        if proposed.version != current.version {
            return Err(ServiceError::VersionConflict {
                based_on: proposed.version,
                current: current.version,
            });
        }
        proposed.version = current.version + 1;
        let change = PolicyChange::new(Some(&current), proposed, actor, self.clock.now());
        if !self
            .with_deadline(self.store.replace_policy(&change))
            .await?
        {
            // Another replica applied a change first: adopt it, refuse ours.
            let stored = self.with_deadline(self.store.stored_policy()).await?;
            let newer = stored
                .as_ref()
                .map(|p| p.version)
                .unwrap_or(current.version);
            if let Some(p) = stored {
                self.set_policy(p);
            }
            return Err(ServiceError::VersionConflict {
                based_on: change.previous_version,
                current: newer,
            });
        }
        self.set_policy(change.policy.clone());
        tracing::info!(
            actor,
            version = change.version,
            changed = change.changes.len(),
            "policy replaced"
        );
        Ok(change)
    }

    /// The window counters of the policy in force, now.
    pub async fn window_stats(&self) -> Result<Arc<WindowStats>, ServiceError> {
        let hours = self.policy.load().fairness.window_hours;
        Ok(self
            .with_deadline(self.store.window_stats(self.clock.now(), hours))
            .await?)
    }

    /// The policy audit log, most recent first.
    pub async fn policy_history(&self, limit: usize) -> Result<Vec<PolicyChange>, ServiceError> {
        Ok(self.with_deadline(self.store.policy_history(limit)).await?)
    }

    /// Joins the shared policy: seeds the store with this replica's policy
    /// unless an equal or newer version is stored, and adopts what is in
    /// force. Called at start.
    pub async fn sync_policy(&self) -> Result<(), StoreError> {
        let mine = self.policy.load_full();
        let now = self.clock.now();
        let in_force = self
            .with_deadline(self.store.seed_policy(&mine, now))
            .await?;
        if in_force != *mine {
            tracing::info!(version = in_force.version, "adopting the shared policy");
            self.set_policy(in_force);
        }
        Ok(())
    }

    /// Follows the shared policy: adopts the stored policy when its version
    /// is newer than the active one (another replica changed it). Returns
    /// whether it changed anything.
    pub async fn refresh_policy(&self) -> Result<bool, StoreError> {
        let stored = self.with_deadline(self.store.stored_policy()).await?;
        match stored {
            Some(p) if p.version > self.policy.load().version => {
                tracing::info!(version = p.version, "adopting the shared policy");
                self.set_policy(p);
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(StoreError::Unavailable(
                "the shared store holds no policy (emptied?)".into(),
            )),
        }
    }

    /// Counts a failed admin authentication of `client` now, in the window
    /// of failures every replica on the store shares
    /// ([`Store::count_auth_failure`]).
    pub async fn count_auth_failure(
        &self,
        client: std::net::IpAddr,
        window: StdDuration,
    ) -> Result<FailureWindow, StoreError> {
        self.with_deadline(
            self.store
                .count_auth_failure(client, self.clock.now(), window),
        )
        .await
    }

    /// `client`'s open window of failed admin authentication on the store,
    /// if it has one ([`Store::auth_failures`]).
    pub async fn auth_failures(
        &self,
        client: std::net::IpAddr,
    ) -> Result<Option<FailureWindow>, StoreError> {
        self.with_deadline(self.store.auth_failures(client, self.clock.now()))
            .await
    }

    async fn with_deadline<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.store_deadline, fut).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {} ms",
                self.store_deadline.as_millis()
            ))),
        }
    }

    /// Decides one interaction. `input` is the wire form it was parsed from:
    /// its canonical serialisation is what idempotent replays are compared on.
    pub async fn decide(
        &self,
        input: &InteractionInput,
        interaction: Interaction,
    ) -> Result<Decided, ServiceError> {
        let policy = self.policy.load_full();
        let models = self.models.load_full();
        let now = self.clock.now();
        let stats = self.window_or_default(now, &policy).await;
        let (commit, pending) = self.prepare(input, interaction, &policy, &models, now, &stats);
        // Let go of the snapshot before committing: the store updates it in
        // place when no decision still holds it, and copies it otherwise.
        drop(stats);
        let outcome = self.with_deadline(self.store.commit(commit)).await;
        settle(pending, &policy, outcome)
    }

    /// Decides interactions in order, each as [`Self::decide`] would, for
    /// the batch endpoint. A store that commits a list cheaper than one at a
    /// time ([`Store::batches_commits`]: both stores here, Redis in one
    /// script call, the embedded store under one lock) gets them together:
    /// every item is planned on one window snapshot, then committed in one
    /// [`Store::commit_all`], in order (caps, budget and idempotency are
    /// still settled by the store, one commit after the other). Otherwise
    /// each item is decided on its own, so later items see the window counts
    /// of earlier ones.
    pub async fn decide_all(
        &self,
        items: Vec<(&InteractionInput, Interaction)>,
    ) -> Vec<Result<Decided, ServiceError>> {
        if !self.store.batches_commits() {
            let _turn = self.batch_turn().await;
            let mut out = Vec::with_capacity(items.len());
            for (input, interaction) in items {
                out.push(self.decide(input, interaction).await);
            }
            return out;
        }
        let policy = self.policy.load_full();
        let models = self.models.load_full();
        let now = self.clock.now();
        let stats = self.window_or_default(now, &policy).await;
        let n = items.len();
        let mut commits = Vec::with_capacity(n);
        let mut pending = Vec::with_capacity(n);
        for (k, (input, interaction)) in items.into_iter().enumerate() {
            // Planning a chunk is about a millisecond of CPU on this worker
            // thread; yielding now and then lets the worker's other chunks,
            // whose commits came back, go on meanwhile instead of holding
            // their turn (waiting out whole chunks left a tenth of the
            // machine idle under batch load).
            if k > 0 && k % PLAN_BETWEEN_YIELDS == 0 {
                tokio::task::yield_now().await;
            }
            let (commit, p) = self.prepare(input, interaction, &policy, &models, now, &stats);
            commits.push(commit);
            pending.push(p);
        }
        drop(stats);
        // Only the commits wait for a turn: planning needs no store, so
        // chunks plan while others are in Redis and the cores stay busy
        // (planning inside the turn left a tenth of the machine idle).
        let _turn = self.batch_turn().await;
        let outcomes = match tokio::time::timeout(
            batch_deadline(self.store_deadline, n),
            self.store.commit_all(commits),
        )
        .await
        {
            Ok(outcomes) => outcomes,
            Err(_) => (0..n)
                .map(|_| {
                    Err(StoreError::Unavailable(format!(
                        "{n} commits got no answer within {} ms",
                        batch_deadline(self.store_deadline, n).as_millis()
                    )))
                })
                .collect(),
        };
        pending
            .into_iter()
            .zip(outcomes)
            .map(|(pending, outcome)| settle(pending, &policy, outcome))
            .collect()
    }

    /// Waits for a batch chunk's turn (see [`BATCHES_IN_FLIGHT`]). The
    /// store deadlines start once it comes: waiting for it is this replica
    /// being busy, not the store being unwell.
    async fn batch_turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        let queued = std::time::Instant::now();
        let turn = self
            .batch_slots
            .acquire()
            .await
            .expect("the batch semaphore is never closed");
        metrics::histogram!(BATCH_WAIT_METRIC).record(queued.elapsed().as_secs_f64());
        turn
    }

    /// The window snapshot of `policy`'s window at `now`. Peer norms only
    /// shape the justice cost; without them the published rule is the norm,
    /// so an unavailable store still yields an answer.
    async fn window_or_default(&self, now: OffsetDateTime, policy: &Policy) -> Arc<WindowStats> {
        match self
            .with_deadline(self.store.window_stats(now, policy.fairness.window_hours))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "window statistics unavailable");
                Arc::default()
            }
        }
    }

    /// Plans one interaction and renders its answer, with the refusals
    /// the store may pick rendered on demand: the commit to hand to the
    /// store, and what is needed to settle its outcome.
    fn prepare(
        &self,
        input: &InteractionInput,
        interaction: Interaction,
        policy: &Arc<Policy>,
        models: &Models,
        now: OffsetDateTime,
        stats: &WindowStats,
    ) -> (Commit, Pending) {
        let hours = policy.fairness.window_hours;
        let canonical = serde_json::to_vec(input).expect("an InteractionInput always serialises");
        let hash = body_hash(&canonical);
        let plan = decide::plan(&Inputs {
            interaction: &interaction,
            policy,
            sentiment: models.sentiment.as_ref(),
            outcome: models.outcome.as_ref(),
            window: stats,
            draws: draws(&hash),
        });
        let stamp = Stamp {
            decision_id: Uuid::new_v4(),
            interaction_id: interaction.id.to_string(),
            model_version: models.version(),
            policy_version: policy.version,
            decided_at: now,
        };
        let grant = plan.requested_gesture().map(|(_, value)| GrantRequest {
            value,
            caps: policy.caps.clone(),
            daily_budget: policy.budget.daily,
        });
        let shadow = self.shadow_choice(&interaction, policy, stats, &hash);
        // What-if replays need a time for every interaction.
        let mut recorded = input.clone();
        recorded.occurred_at.get_or_insert(now);
        let granted = plan.render(policy, &stamp, None);
        // The refusals are rendered when a store may record one: never
        // without a gesture, and in the embedded store only the one it
        // picks.
        let plan = Arc::new(plan);
        let refusals = {
            let (plan, policy, stamp) = (plan.clone(), policy.clone(), stamp.clone());
            Refusals::new(move |why| {
                let refusal = match why {
                    RefusedBy::Cap => Refusal::PerCustomerCap,
                    RefusedBy::Budget => Refusal::Budget,
                };
                plan.render(&policy, &stamp, Some(refusal))
            })
        };
        let commit = Commit {
            interaction_id: interaction.id.clone(),
            customer_id: interaction.customer.id.clone(),
            body_hash: hash,
            now,
            cells: cells_for(
                &interaction.customer.attributes,
                &policy.fairness.group_attributes,
                policy.fairness.severity_bands,
                plan.scores.severity,
                plan.scores.deservingness,
            ),
            window_hours: hours,
            input: recorded,
            input_json: canonical,
            grant,
            granted,
            refusals,
            shadow,
        };
        let pending = Pending {
            plan,
            stamp,
            interaction_id: interaction.id,
        };
        (commit, pending)
    }

    /// Records the outcome of a decision. `feedback` was validated at the
    /// edge and stamped with [`Self::clock`]. Unlike a decision, nothing
    /// fails open here: a store that cannot answer is an error (the CRM
    /// retries; a retry is idempotent).
    pub async fn record_feedback(
        &self,
        feedback: &crate::domain::feedback::Feedback,
    ) -> Result<crate::store::FeedbackOutcome, ServiceError> {
        Ok(self.store.record_feedback(feedback).await?)
    }
}

/// A planned decision waiting for its commit's outcome.
struct Pending {
    plan: Arc<decide::Plan>,
    stamp: Stamp,
    interaction_id: InteractionId,
}

/// What the client receives for a commit's outcome.
fn settle(
    pending: Pending,
    policy: &Policy,
    outcome: Result<CommitOutcome, StoreError>,
) -> Result<Decided, ServiceError> {
    let Pending {
        plan,
        stamp,
        interaction_id,
    } = pending;
    let decided = |decision: Decision, replayed: bool| {
        let choice = plan.choice_of(&decision);
        Decided {
            utility: choice.utility,
            justice_cost: choice.justice_cost,
            exploration: choice.exploration(),
            probabilities: choice.probabilities.clone(),
            decision,
            replayed,
        }
    };
    match outcome {
        Ok(CommitOutcome::Recorded(decision)) => Ok(decided(decision, false)),
        Ok(CommitOutcome::Replayed(decision)) => Ok(decided(decision, true)),
        Ok(CommitOutcome::Mismatch) => Err(ServiceError::IdempotencyMismatch(
            interaction_id.to_string(),
        )),
        Err(e) => {
            // Fail closed: the outcome of the commit is unknown, so no perk
            // is promised; replaying the interaction id later returns
            // whatever was recorded, if anything was.
            tracing::warn!(error = %e, interaction_id = %interaction_id, "store unavailable: decision failed closed");
            Ok(decided(
                plan.render(policy, &stamp, Some(Refusal::Unavailable)),
                false,
            ))
        }
    }
}

/// How long `n` commits sent together may take: one decision's deadline,
/// plus an eighth of it per commit (they queue behind each other in
/// Redis, and behind every other replica's).
fn batch_deadline(single: StdDuration, n: usize) -> StdDuration {
    single + single.mul_f64(n as f64 / 8.0)
}

/// Keeps a replica on the shared policy: until the first successful seed
/// (the store was down at start) it retries [`DecisionService::sync_policy`];
/// afterwards it adopts newer stored versions every `every`. It never
/// re-seeds a store that lost its policy (Redis emptied): perks then stay
/// refused until an operator restarts a replica, after reconciling.
pub async fn follow_shared_policy(service: Arc<DecisionService>, seeded: bool, every: StdDuration) {
    let mut seeded = seeded;
    let mut missing_reported = false;
    loop {
        // Until the first seed, retry often: the first perk after Redis
        // comes back needs the shared policy (it opens the day's budget).
        tokio::time::sleep(if seeded {
            every
        } else {
            every.min(StdDuration::from_millis(200))
        })
        .await;
        if !seeded {
            match service.sync_policy().await {
                Ok(()) => {
                    tracing::info!("the shared store answers: joined the shared policy");
                    seeded = true;
                }
                Err(e) => tracing::debug!(error = %e, "shared store still unavailable"),
            }
            continue;
        }
        match service.refresh_policy().await {
            Ok(_) => missing_reported = false,
            Err(e) if !missing_reported => {
                tracing::warn!(error = %e, "cannot read the shared policy");
                missing_reported = true;
            }
            Err(_) => {}
        }
    }
}

/// Two uniform draws in [0, 1) derived from the request hash: exploration is
/// random across interactions but reproducible for one interaction.
pub fn draws(hash: &[u8; 32]) -> (f64, f64) {
    let h = Sha256::digest(hash);
    let a = u64::from_le_bytes(h[0..8].try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
    let unit = |x: u64| (x >> 11) as f64 / (1u64 << 53) as f64;
    (unit(a), unit(b))
}
