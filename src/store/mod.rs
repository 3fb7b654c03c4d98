//! Shared state behind one trait, so the embedded default and Redis give the
//! same guarantees and are tested by the same contract suite.
//!
//! The trait is shaped for atomicity: a decision's whole state change
//! (idempotency check, per-customer cap, daily budget, ledger, window
//! counters, stored response) is **one** call, [`Store::commit`], never a read
//! followed by a write. The caller hands over every possible answer (the
//! granted one rendered, the refusals by the cap and by the budget as
//! [`Refusals`], rendered on demand), and the store picks one under its lock
//! (or inside one Lua script), records it and returns it. That is what
//! makes "never a second grant" and "never overspent" hold under
//! concurrency and across replicas.
//!
//! Refusals are rendered on demand because most commits never record one:
//! the embedded store renders a refusal only when it picks it, and no store
//! renders one for a commit without a gesture (about 1.2 % of a decision's
//! instructions, counted with callgrind: BENCHMARKS.md, session 15). The
//! Redis store's script picks inside Redis, so it renders both refusals of
//! a gesture up front and sends all three answers.

pub mod failures;
pub mod journal;
pub mod memory;
pub mod redis;

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use serde::{Deserialize, Serialize};

use crate::domain::decision::{Decision, Gesture};
use crate::domain::feedback::Feedback;
use crate::domain::interaction::InteractionInput;
use crate::domain::policy::{Caps, Policy, PolicyChange};
use crate::domain::validation::{CustomerId, InteractionId};
use crate::domain::window::{Cell, Counts, WindowStats};

/// SHA-256 of the canonical request body, compared on idempotent replays.
pub type BodyHash = [u8; 32];

/// Hashes bytes (a canonical serialisation of the request).
pub fn body_hash(bytes: &[u8]) -> BodyHash {
    Sha256::digest(bytes).into()
}

/// A gesture the store must check against caps and budget before granting.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRequest {
    pub value: f64,
    pub caps: Caps,
    /// Today's budget (UTC day of `now`).
    pub daily_budget: f64,
}

/// Everything one decision changes, with every answer it may record.
#[derive(Debug, Clone)]
pub struct Commit {
    pub interaction_id: InteractionId,
    pub customer_id: CustomerId,
    pub body_hash: BodyHash,
    pub now: OffsetDateTime,
    /// The window counters this decision counts in (one hour bucket of `now`).
    pub cells: Vec<Cell>,
    /// How long the counters must be kept: the policy's window.
    pub window_hours: u32,
    /// The request, kept for what-if replays of the recent window.
    pub input: InteractionInput,
    /// The request's JSON as serde writes it, before `occurred_at` was
    /// filled in: what `body_hash` hashed. A store that logs the request as
    /// JSON (Redis) makes `input`'s from it ([`write_recorded_json`])
    /// instead of serialising the request a second time.
    pub input_json: Vec<u8>,
    /// `None`: no gesture requested, `granted` is the only answer.
    pub grant: Option<GrantRequest>,
    /// The answer when the gesture is granted (or none was requested).
    pub granted: Decision,
    /// The answers when the per-customer cap or the daily budget refuses
    /// the gesture, rendered when a store picks one (never without a
    /// gesture: nothing can be refused then).
    pub refusals: Refusals,
    /// What the shadow model would have done, if one is attached: logged
    /// beside the decision, never part of what the client receives.
    pub shadow: Option<ShadowChoice>,
}

/// Why a store refused a commit's gesture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedBy {
    /// The per-customer cap (perks or value in the cap window).
    Cap,
    /// The daily budget.
    Budget,
}

/// Renders a commit's answer for a refusal. A store calls it at most once
/// per refusal: the embedded store for the one it records, the Redis store
/// for both of a gesture (its script picks among the answers it is sent).
#[derive(Clone)]
pub struct Refusals(Arc<dyn Fn(RefusedBy) -> Decision + Send + Sync>);

impl Refusals {
    pub fn new(render: impl Fn(RefusedBy) -> Decision + Send + Sync + 'static) -> Self {
        Self(Arc::new(render))
    }

    pub fn render(&self, why: RefusedBy) -> Decision {
        (self.0)(why)
    }
}

impl std::fmt::Debug for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Refusals(rendered on demand)")
    }
}

/// Appends to `out` the JSON of `input`, made from `json`, the JSON of the
/// request `input` was made from by filling in `occurred_at` (a
/// [`Commit`]'s `input_json` and `input`): serde writes `occurred_at`
/// last, as `null` when the request had none, so only that value changes.
/// False, with `out` unchanged, when there is no time to write (`input`
/// has no `occurred_at`, or its year cannot be written); the caller then
/// serialises `input` itself.
pub(crate) fn write_recorded_json(
    json: &[u8],
    input: &InteractionInput,
    out: &mut Vec<u8>,
) -> bool {
    const ABSENT: &[u8] = b"\"occurred_at\":null}";
    match json.strip_suffix(ABSENT) {
        Some(head) => {
            let Some(at) = input.occurred_at else {
                return false;
            };
            let start = out.len();
            out.extend_from_slice(head);
            out.extend_from_slice(b"\"occurred_at\":");
            let mut ser = serde_json::Serializer::new(&mut *out);
            if time::serde::rfc3339::serialize(&at, &mut ser).is_err() {
                out.truncate(start);
                return false;
            }
            out.push(b'}');
        }
        None if input.occurred_at.is_none() => return false,
        None => out.extend_from_slice(json),
    }
    true
}

/// One action's probability under a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionProbability {
    pub action: String,
    pub probability: f64,
}

/// What a shadow model would have chosen for an interaction, logged beside
/// the active model's decision so it can be evaluated off-policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowChoice {
    pub model_version: String,
    pub action: String,
    pub gesture: Option<Gesture>,
    /// Probability with which the shadow policy chooses `action`.
    pub propensity: f64,
    /// The shadow policy's probability of every action it could take (the
    /// others have probability 0), so an off-policy estimate can weigh the
    /// action that was actually logged.
    pub probabilities: Vec<ActionProbability>,
}

/// A recorded decision as the decision log keeps it: the request, the
/// answer, the shadow's choice and, once reported, the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedDecision {
    pub input: InteractionInput,
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq)]
pub enum CommitOutcome {
    /// A new decision was recorded (and its gesture granted, if any).
    Recorded(Decision),
    /// The same interaction with the same body was decided before: the stored
    /// decision, unchanged.
    Replayed(Decision),
    /// The interaction id was used before with a different body.
    Mismatch,
}

/// What recording feedback did.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackOutcome {
    /// First report for this decision: recorded.
    Recorded,
    /// The same report was recorded before: nothing changed. The stored
    /// report (with its original `received_at`).
    Replayed(Feedback),
    /// Another report was recorded before for this decision (kept, unchanged).
    Conflict(Feedback),
    /// No decision with this id is known (never made, or expired).
    UnknownDecision,
}

/// Today's spend against the budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    pub day: time::Date,
    pub spent: f64,
    pub grants: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or did not answer in time. The outcome of
    /// a commit is then unknown: replaying the interaction id resolves it.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered something this code cannot read.
    #[error("store corrupt: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Atomically: replay or refuse on a known interaction id; otherwise check
    /// the gesture against the customer's caps and today's budget, record the
    /// chosen answer, the ledger entry and window counters, and return it.
    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError>;

    /// Commits many decisions, in order: the outcome of each is what
    /// [`Store::commit`] would return had they been committed one after the
    /// other (a commit sees the caps, budget and idempotency records of the
    /// ones before it). A store whose commits are round trips overrides this
    /// to send them together; the default commits one at a time.
    async fn commit_all(&self, commits: Vec<Commit>) -> Vec<Result<CommitOutcome, StoreError>> {
        let mut out = Vec::with_capacity(commits.len());
        for c in commits {
            out.push(self.commit(c).await);
        }
        out
    }

    /// Whether [`Store::commit_all`] is cheaper than one commit at a time,
    /// so a batch is worth planning ahead on one window snapshot (Redis:
    /// one script call; the embedded store: one lock). A store that answers false
    /// gets batch items one at a time, each seeing the window counts of the
    /// ones before.
    fn batches_commits(&self) -> bool {
        false
    }

    /// Counters over the window of `hours` ending at `now` (see
    /// `domain::window` for the bucket semantics every store shares).
    /// Shared, because every decision reads one: a store that keeps a
    /// snapshot hands out references to it instead of copies.
    async fn window_stats(
        &self,
        now: OffsetDateTime,
        hours: u32,
    ) -> Result<Arc<WindowStats>, StoreError>;

    /// Decisions per hour over the window of `hours` ending at `now`: one
    /// `(bucket, counts)` per hour bucket that holds decisions, oldest first,
    /// summed over the `Cell::Peer` cells (every decision counts in exactly
    /// one). Read-only; for the dashboard.
    async fn window_series(
        &self,
        now: OffsetDateTime,
        hours: u32,
    ) -> Result<Vec<(i64, Counts)>, StoreError>;

    /// The interactions decided since `since`, most recent first, at most `limit`.
    async fn recent_interactions(
        &self,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<InteractionInput>, StoreError>;

    /// Makes `policy` the shared policy unless a policy with the same or a
    /// higher version is already stored; returns the policy in force. This is
    /// how a replica starting with a policy file joins the others.
    async fn seed_policy(&self, policy: &Policy, at: OffsetDateTime) -> Result<Policy, StoreError>;

    /// Compare-and-set: replaces the stored policy with `change.policy` only
    /// if the stored version is still `change.previous_version`, appending
    /// `change` to the audit log in the same step. When no policy is stored
    /// yet the change is accepted. `Ok(false)`: another writer got there first.
    async fn replace_policy(&self, change: &PolicyChange) -> Result<bool, StoreError>;

    /// The policy in force (as stored), if any.
    async fn stored_policy(&self) -> Result<Option<Policy>, StoreError>;

    /// The audit log, most recent first, at most `limit` entries.
    async fn policy_history(&self, limit: usize) -> Result<Vec<PolicyChange>, StoreError>;

    /// A recorded decision by its id.
    async fn decision(&self, id: Uuid) -> Result<Option<Decision>, StoreError>;

    /// Today's spend.
    async fn spend(&self, now: OffsetDateTime) -> Result<Spend, StoreError>;

    /// Records the outcome of a decision, once: a retry with the same report
    /// is [`FeedbackOutcome::Replayed`], a different report for a decision
    /// that already has one is [`FeedbackOutcome::Conflict`]. A decision
    /// accepts feedback for [`FEEDBACK_HORIZON`] after it was made (measured
    /// with `feedback.received_at`); after that, or for an id never decided,
    /// the answer is [`FeedbackOutcome::UnknownDecision`].
    async fn record_feedback(&self, feedback: &Feedback) -> Result<FeedbackOutcome, StoreError>;

    /// The decision log from `since` (decision time, inclusive; oldest
    /// first), at most `limit` entries, each joined with its feedback if any
    /// arrived. Stores keep a bounded recent part of the log here (see
    /// [`DECISION_LOG_KEPT`]); the full log is the embedded journal or the
    /// Redis streams, read by `fairtreat export`.
    async fn logged_decisions(
        &self,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<LoggedDecision>, StoreError>;

    /// Whether the store is usable right now (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Counts a failed admin authentication of `client` at `now` in the
    /// client's window of failures (one opened, of length `window`, if none
    /// is open; the rule is [`failures`]'s) and returns that window. Every
    /// replica on the store counts into the same window.
    async fn count_auth_failure(
        &self,
        client: IpAddr,
        now: OffsetDateTime,
        window: std::time::Duration,
    ) -> Result<failures::FailureWindow, StoreError>;

    /// `client`'s open window of failed admin authentication at `now`, if
    /// it has one.
    async fn auth_failures(
        &self,
        client: IpAddr,
        now: OffsetDateTime,
    ) -> Result<Option<failures::FailureWindow>, StoreError>;

    /// A short name for logs and `/readyz` ("memory", "redis").
    fn kind(&self) -> &'static str;
}

/// How many recent interactions are kept for what-if replays.
pub const RECENT_INTERACTIONS_KEPT: usize = 10_000;

/// How many policy changes the audit log keeps.
pub const POLICY_HISTORY_KEPT: usize = 1000;

/// How long idempotency records are kept (Stripe keeps keys at least 24 h).
pub const IDEMPOTENCY_TTL: time::Duration = time::Duration::hours(48);

/// How long after a decision its outcome may be reported. A week covers the
/// follow-ups a CRM tracks (a reply, the next purchase); later reports are
/// refused as for an unknown decision (404), so per-decision state stays
/// bounded.
pub const FEEDBACK_HORIZON: time::Duration = time::Duration::days(7);

/// How many recent logged decisions a store serves from
/// [`Store::logged_decisions`]: the in-memory store keeps this many in a
/// ring, Redis this many per shard in its decision-log stream.
pub const DECISION_LOG_KEPT: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::interaction::tests::sample_input;

    #[test]
    fn the_recorded_input_json_is_what_serde_writes_for_the_recorded_input() {
        let now = time::macros::datetime!(2026-11-24 20:51:07.123456789 UTC);
        let mut absent = sample_input();
        absent.occurred_at = None;
        let mut escaped = absent.clone();
        escaped.text = "\"Quoted\", a tab\tand a line\nbreak, ünïcödé and 🙂 \\ slash".into();
        escaped.order_value = None;
        escaped.rating = None;
        let cases = [
            ("occurred_at given", sample_input()),
            ("occurred_at absent", absent),
            ("escapes and nulls before it", escaped),
        ];
        for (name, request) in cases {
            let json = serde_json::to_vec(&request).unwrap();
            let mut recorded = request.clone();
            recorded.occurred_at.get_or_insert(now);
            let mut out = b"before:".to_vec();
            assert!(write_recorded_json(&json, &recorded, &mut out), "{name}");
            let expected = [
                b"before:".as_slice(),
                &serde_json::to_vec(&recorded).unwrap(),
            ]
            .concat();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(expected).unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn json_that_is_not_the_recorded_inputs_request_is_left_to_the_caller() {
        let mut request = sample_input();
        request.occurred_at = None;
        let json = serde_json::to_vec(&request).unwrap();
        let mut out = b"before".to_vec();
        // A request without occurred_at, recorded without one either.
        assert!(!write_recorded_json(&json, &request, &mut out));
        // Nothing to write in place of null, whatever the JSON.
        assert!(!write_recorded_json(b"{}", &request, &mut out));
        assert_eq!(out, b"before", "nothing was written");
    }
}
