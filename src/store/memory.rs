//! The embedded store: all state in process memory, one mutex.
//!
//! One lock around the whole commit is the simplest way to make the commit
//! atomic, and it is fast enough: a commit is a few hash-map operations (the
//! scoring happens outside the lock). State is bounded: idempotency records
//! expire after [`IDEMPOTENCY_TTL`], ledgers keep only the cap window, window
//! counters only the longest window asked for, recent interactions and the
//! policy history a fixed number of entries, budget days the last eight.

use std::collections::{BTreeMap, HashMap, VecDeque};

use async_trait::async_trait;
use parking_lot::Mutex;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use super::{
    BodyHash, Commit, CommitOutcome, Spend, Store, StoreError, IDEMPOTENCY_TTL,
    POLICY_HISTORY_KEPT, RECENT_INTERACTIONS_KEPT,
};
use crate::domain::decision::Decision;
use crate::domain::interaction::InteractionInput;
use crate::domain::policy::{diff, Policy, PolicyChange};
use crate::domain::validation::{CustomerId, InteractionId};
use crate::domain::window::{bucket_of, first_bucket, Cell, Counts, WindowStats};

struct Record {
    hash: BodyHash,
    decision_id: Uuid,
    expires: OffsetDateTime,
}

type Bucket = HashMap<Cell, Counts>;

/// Hourly counters, with the sum over the last window asked for kept up to
/// date incrementally so a snapshot does not re-add every bucket.
#[derive(Default)]
struct Window {
    buckets: BTreeMap<i64, Bucket>,
    /// (hours, first bucket, last bucket, totals) of the last snapshot.
    cache: Option<(u32, i64, i64, Bucket)>,
    keep_hours: u32,
}

fn add_bucket(into: &mut Bucket, from: &Bucket, sign: f64) {
    for (cell, c) in from {
        let e = into.entry(cell.clone()).or_default();
        if sign > 0.0 {
            e.add(*c);
        } else {
            e.decisions -= c.decisions;
            e.perks -= c.perks;
            e.value -= c.value;
        }
    }
}

impl Window {
    fn record(&mut self, at: OffsetDateTime, hours: u32, cells: &[Cell], granted: Option<f64>) {
        self.keep_hours = self.keep_hours.max(hours);
        let b = bucket_of(at);
        let one = Counts {
            decisions: 1,
            perks: u64::from(granted.is_some()),
            value: granted.unwrap_or(0.0),
        };
        let bucket = self.buckets.entry(b).or_default();
        for cell in cells {
            bucket.entry(cell.clone()).or_default().add(one);
        }
        if let Some((_, first, last, totals)) = &mut self.cache {
            if (*first..=*last).contains(&b) {
                for cell in cells {
                    totals.entry(cell.clone()).or_default().add(one);
                }
            }
        }
        let horizon = b - i64::from(self.keep_hours);
        while self
            .buckets
            .first_key_value()
            .is_some_and(|(k, _)| *k <= horizon)
        {
            self.buckets.pop_first();
            // The cached totals may include the dropped bucket, which could
            // then no longer be subtracted: start over at the next snapshot.
            self.cache = None;
        }
    }

    fn snapshot(&mut self, now: OffsetDateTime, hours: u32) -> WindowStats {
        let (first, last) = (first_bucket(now, hours), bucket_of(now));
        let totals = match self.cache.take() {
            Some((h, f, l, mut totals))
                if h == hours && f <= first && l <= last && first <= l + 1 =>
            {
                // BTreeMap::range panics on an inverted range, so only ask
                // for the buckets that moved in or out.
                if f < first {
                    for (_, b) in self.buckets.range(f..first) {
                        add_bucket(&mut totals, b, -1.0);
                    }
                }
                if l < last {
                    for (_, b) in self.buckets.range(l + 1..=last) {
                        add_bucket(&mut totals, b, 1.0);
                    }
                }
                totals.retain(|_, c| c.decisions > 0);
                totals
            }
            _ => {
                let mut totals = Bucket::new();
                for (_, b) in self.buckets.range(first..=last) {
                    add_bucket(&mut totals, b, 1.0);
                }
                totals
            }
        };
        let stats = WindowStats {
            cells: totals.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        };
        self.cache = Some((hours, first, last, totals));
        stats
    }
}

#[derive(Default)]
struct Inner {
    idempotency: HashMap<InteractionId, Record>,
    /// Expiry order of idempotency records, for cheap pruning.
    expiry: VecDeque<(OffsetDateTime, InteractionId)>,
    decisions: HashMap<Uuid, Decision>,
    ledgers: HashMap<CustomerId, VecDeque<(OffsetDateTime, f64)>>,
    spend: BTreeMap<Date, (f64, u64)>,
    window: Window,
    recent: VecDeque<(OffsetDateTime, InteractionInput)>,
    policy: Option<Policy>,
    history: VecDeque<PolicyChange>,
    /// Longest per-customer cap window seen; older ledger entries are dropped.
    max_cap_window: Duration,
    commits: u64,
}

/// Every this many commits, ledgers of customers not seen for a whole cap
/// window are dropped, so memory stays bounded by recent activity.
const LEDGER_SWEEP_EVERY: u64 = 4096;

/// Budget days kept for reporting.
const SPEND_DAYS_KEPT: usize = 8;

impl Inner {
    fn prune(&mut self, now: OffsetDateTime) {
        while let Some((exp, _)) = self.expiry.front() {
            if *exp > now {
                break;
            }
            let (_, id) = self.expiry.pop_front().expect("front exists");
            if self.idempotency.get(&id).is_some_and(|r| r.expires <= now) {
                let rec = self.idempotency.remove(&id).expect("present");
                self.decisions.remove(&rec.decision_id);
            }
        }
        while self.spend.len() > SPEND_DAYS_KEPT {
            self.spend.pop_first();
        }
        self.commits += 1;
        if self.commits.is_multiple_of(LEDGER_SWEEP_EVERY) {
            let since = now - self.max_cap_window;
            self.ledgers
                .retain(|_, l| l.back().is_some_and(|(at, _)| *at > since));
        }
    }

    fn record_change(&mut self, change: &PolicyChange) {
        self.policy = Some(change.policy.clone());
        self.history.push_front(change.clone());
        self.history.truncate(POLICY_HISTORY_KEPT);
    }
}

/// In-memory [`Store`].
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of idempotency records held (for memory tests).
    pub fn idempotency_records(&self) -> usize {
        self.inner.lock().idempotency.len()
    }

    /// Count and sum of the ledger entries held (for invariant checks).
    pub fn ledger_total(&self) -> (u64, f64) {
        let inner = self.inner.lock();
        inner
            .ledgers
            .values()
            .flatten()
            .fold((0, 0.0), |(n, s), (_, v)| (n + 1, s + v))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn commit(&self, c: Commit) -> Result<CommitOutcome, StoreError> {
        let mut inner = self.inner.lock();
        inner.prune(c.now);

        if let Some(rec) = inner.idempotency.get(&c.interaction_id) {
            if rec.hash != c.body_hash {
                return Ok(CommitOutcome::Mismatch);
            }
            let stored = inner
                .decisions
                .get(&rec.decision_id)
                .cloned()
                .ok_or_else(|| StoreError::Corrupt("idempotency record without decision".into()))?;
            return Ok(CommitOutcome::Replayed(stored));
        }

        let day = c.now.date();
        let (decision, granted_value) = match &c.grant {
            None => (c.granted, None),
            Some(g) => {
                let cap_window = Duration::days(i64::from(g.caps.window_days));
                inner.max_cap_window = inner.max_cap_window.max(cap_window);
                let since = c.now - cap_window;
                let (spent, _) = inner.spend.get(&day).copied().unwrap_or((0.0, 0));
                let ledger = inner.ledgers.entry(c.customer_id.clone()).or_default();
                while ledger.front().is_some_and(|(at, _)| *at <= since) {
                    ledger.pop_front();
                }
                let (count, value) = ledger
                    .iter()
                    .fold((0u32, 0.0), |(n, s), (_, v)| (n + 1, s + v));
                if count >= g.caps.perks_per_customer
                    || value + g.value > g.caps.max_value_per_customer
                {
                    (c.refused_by_cap, None)
                } else if spent + g.value > g.daily_budget {
                    (c.refused_by_budget, None)
                } else {
                    (c.granted, Some(g.value))
                }
            }
        };

        if let Some(v) = granted_value {
            inner
                .ledgers
                .entry(c.customer_id.clone())
                .or_default()
                .push_back((c.now, v));
            let e = inner.spend.entry(day).or_insert((0.0, 0));
            e.0 += v;
            e.1 += 1;
        } else if inner
            .ledgers
            .get(&c.customer_id)
            .is_some_and(VecDeque::is_empty)
        {
            inner.ledgers.remove(&c.customer_id);
        }
        inner
            .window
            .record(c.now, c.window_hours, &c.cells, granted_value);
        inner.recent.push_front((c.now, c.input));
        inner.recent.truncate(RECENT_INTERACTIONS_KEPT);
        let expires = c.now + IDEMPOTENCY_TTL;
        inner.idempotency.insert(
            c.interaction_id.clone(),
            Record {
                hash: c.body_hash,
                decision_id: decision.decision_id,
                expires,
            },
        );
        inner.expiry.push_back((expires, c.interaction_id));
        inner
            .decisions
            .insert(decision.decision_id, decision.clone());
        Ok(CommitOutcome::Recorded(decision))
    }

    async fn window_stats(
        &self,
        now: OffsetDateTime,
        hours: u32,
    ) -> Result<WindowStats, StoreError> {
        Ok(self.inner.lock().window.snapshot(now, hours))
    }

    async fn recent_interactions(
        &self,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<InteractionInput>, StoreError> {
        let inner = self.inner.lock();
        Ok(inner
            .recent
            .iter()
            .take_while(|(at, _)| *at >= since)
            .take(limit)
            .map(|(_, i)| i.clone())
            .collect())
    }

    async fn seed_policy(&self, policy: &Policy, at: OffsetDateTime) -> Result<Policy, StoreError> {
        let mut inner = self.inner.lock();
        match &inner.policy {
            Some(stored) if stored.version >= policy.version => Ok(stored.clone()),
            stored => {
                let change = PolicyChange {
                    version: policy.version,
                    previous_version: stored.as_ref().map(|p| p.version).unwrap_or(0),
                    actor: "startup".into(),
                    at,
                    changes: stored.as_ref().map(|s| diff(s, policy)).unwrap_or_default(),
                    policy: policy.clone(),
                };
                inner.record_change(&change);
                Ok(policy.clone())
            }
        }
    }

    async fn replace_policy(&self, change: &PolicyChange) -> Result<bool, StoreError> {
        let mut inner = self.inner.lock();
        // Nothing stored yet: nothing to conflict with.
        let current = inner
            .policy
            .as_ref()
            .map(|p| p.version)
            .unwrap_or(change.previous_version);
        if current != change.previous_version {
            return Ok(false);
        }
        inner.record_change(change);
        Ok(true)
    }

    async fn stored_policy(&self) -> Result<Option<Policy>, StoreError> {
        Ok(self.inner.lock().policy.clone())
    }

    async fn policy_history(&self, limit: usize) -> Result<Vec<PolicyChange>, StoreError> {
        Ok(self
            .inner
            .lock()
            .history
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn decision(&self, id: Uuid) -> Result<Option<Decision>, StoreError> {
        Ok(self.inner.lock().decisions.get(&id).cloned())
    }

    async fn window_series(
        &self,
        now: OffsetDateTime,
        hours: u32,
    ) -> Result<Vec<(i64, Counts)>, StoreError> {
        let (first, last) = (first_bucket(now, hours.max(1)), bucket_of(now));
        let inner = self.inner.lock();
        Ok(inner
            .window
            .buckets
            .range(first..=last)
            .filter_map(|(b, bucket)| {
                let mut sum = Counts::default();
                for (cell, c) in bucket {
                    if matches!(cell, Cell::Peer { .. }) {
                        sum.add(*c);
                    }
                }
                (sum.decisions > 0).then_some((*b, sum))
            })
            .collect())
    }

    async fn spend(&self, now: OffsetDateTime) -> Result<Spend, StoreError> {
        let day = now.date();
        let (spent, grants) = self
            .inner
            .lock()
            .spend
            .get(&day)
            .copied()
            .unwrap_or((0.0, 0));
        Ok(Spend { day, spent, grants })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
