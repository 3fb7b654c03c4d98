//! The embedded store: all state in process memory, one mutex.
//!
//! One lock around the whole commit is the simplest way to make the commit
//! atomic, and it is fast enough: a commit is a few hash-map operations (the
//! scoring happens outside the lock). State is bounded: idempotency records
//! expire after [`IDEMPOTENCY_TTL`], ledgers keep only the cap window, window
//! events only the rolling window, and budget days only the last few.

use std::collections::{BTreeMap, HashMap, VecDeque};

use async_trait::async_trait;
use parking_lot::Mutex;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use super::{band_of, BodyHash, Commit, CommitOutcome, Spend, Store, StoreError, IDEMPOTENCY_TTL};
use crate::domain::decision::Decision;
use crate::domain::validation::{CustomerId, InteractionId};
use crate::domain::window::{WindowStats, DESERVINGNESS_BANDS};

struct Record {
    hash: BodyHash,
    decision_id: Uuid,
    expires: OffsetDateTime,
}

struct Event {
    at: OffsetDateTime,
    band: usize,
    value: f64,
}

#[derive(Default)]
struct Inner {
    idempotency: HashMap<InteractionId, Record>,
    /// Expiry order of idempotency records, for cheap pruning.
    expiry: VecDeque<(OffsetDateTime, InteractionId)>,
    decisions: HashMap<Uuid, Decision>,
    ledgers: HashMap<CustomerId, VecDeque<(OffsetDateTime, f64)>>,
    spend: BTreeMap<Date, (f64, u64)>,
    events: VecDeque<Event>,
    /// Longest window any commit asked for; events older than it are dropped.
    max_window: Duration,
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
            if let Some(rec) = self.idempotency.get(&id) {
                if rec.expires <= now {
                    let rec = self.idempotency.remove(&id).expect("present");
                    self.decisions.remove(&rec.decision_id);
                }
            }
        }
        let horizon = now - self.max_window;
        while self.events.front().is_some_and(|e| e.at < horizon) {
            self.events.pop_front();
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

    /// Sum of all ledger entries (for invariant checks in tests).
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
        inner.max_window = inner.max_window.max(c.window);
        if let Some(g) = &c.grant {
            let cap_window = Duration::days(i64::from(g.caps.window_days));
            inner.max_cap_window = inner.max_cap_window.max(cap_window);
        }
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
        let band = band_of(&c);
        let (decision, granted_value) = match &c.grant {
            None => (c.granted, None),
            Some(g) => {
                let since = c.now - Duration::days(i64::from(g.caps.window_days));
                let ledger = inner.ledgers.entry(c.customer_id.clone()).or_default();
                while ledger.front().is_some_and(|(at, _)| *at <= since) {
                    ledger.pop_front();
                }
                let (count, value) = ledger
                    .iter()
                    .fold((0u32, 0.0), |(n, s), (_, v)| (n + 1, s + v));
                let (spent, _) = inner.spend.get(&day).copied().unwrap_or((0.0, 0));
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
        inner.events.push_back(Event {
            at: c.now,
            band,
            value: granted_value.unwrap_or(0.0),
        });
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
        window: Duration,
    ) -> Result<WindowStats, StoreError> {
        let inner = self.inner.lock();
        let horizon = now - window;
        let mut peers = [(0u64, 0.0f64); DESERVINGNESS_BANDS];
        for e in inner.events.iter().rev() {
            if e.at < horizon {
                break;
            }
            if e.at > now {
                continue;
            }
            peers[e.band].0 += 1;
            peers[e.band].1 += e.value;
        }
        Ok(WindowStats { peers })
    }

    async fn decision(&self, id: Uuid) -> Result<Option<Decision>, StoreError> {
        Ok(self.inner.lock().decisions.get(&id).cloned())
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
