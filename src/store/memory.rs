//! The embedded store: all state in process memory, one mutex.
//!
//! One lock around the whole commit is the simplest way to make the commit
//! atomic, and it is fast enough: a commit is a few hash-map operations (the
//! scoring happens outside the lock). A batch chunk's commits take it once
//! ([`Store::commit_all`]), in order. State is bounded: idempotency records
//! expire after [`IDEMPOTENCY_TTL`], ledgers keep only the cap window, window
//! counters only the longest window asked for, recent interactions and the
//! policy history a fixed number of entries, budget days the last eight.
//!
//! Feedback state is one small record per decision (its time and, once
//! reported, the feedback), kept for [`FEEDBACK_HORIZON`]; the decision log
//! served by [`Store::logged_decisions`] is a ring of the last
//! [`DECISION_LOG_KEPT`]. Tables that expire by age are kept in time slices
//! dropped whole ([`Generations`]), never entry by entry.
//!
//! **Durability.** Built with [`MemoryStore::open`], the store writes every
//! commit and feedback to a [`Journal`] (one line, before the state changes
//! and before the call returns) and rebuilds its state from the journal at
//! start, by applying each entry exactly as the live call did. Built with
//! [`MemoryStore::new`], it is purely in memory (tests, scratch replays).
//!
//! **Memory.** With a journal, the decisions kept for idempotent replays,
//! `GET /v1/decisions/{id}` and the decision-log ring are not held in
//! memory: the store keeps each one's [`Location`] in the journal (a few
//! bytes) and reads the line back when asked, which only replays and reads
//! do. A rendered decision is about 2 KB in memory, so this is what keeps
//! the process small when 48 hours of decisions must stay replayable.
//!
//! Failed admin authentication is counted in a [`FailureTable`] of its own,
//! in memory only.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use sha2::Digest;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use super::failures::{FailureTable, FailureWindow};
use super::journal::{
    read_located_entries, DecisionEntry, Entry, Journal, JournalConfig, JournalError, Location,
};
use super::{
    BodyHash, Commit, CommitOutcome, FeedbackOutcome, LoggedDecision, RefusedBy, Spend, Store,
    StoreError, DECISION_LOG_KEPT, FEEDBACK_HORIZON, IDEMPOTENCY_TTL, POLICY_HISTORY_KEPT,
    RECENT_INTERACTIONS_KEPT,
};
use crate::domain::decision::Decision;
use crate::domain::feedback::Feedback;
use crate::domain::interaction::InteractionInput;
use crate::domain::policy::{Policy, PolicyChange};
use crate::domain::validation::{CustomerId, InteractionId};
use crate::domain::window::{bucket_of, first_bucket, Cell, Counts, WindowStats};

/// An interaction id as the idempotency table keys it: the first 128 bits
/// of its SHA-256. A fixed-size key saves the two string allocations per
/// record (table and expiry queue) that dominate the table's memory; two ids
/// collide with probability about n² / 2¹²⁹, nil for any realistic n.
type IdKey = [u8; 16];

fn id_key(id: &InteractionId) -> IdKey {
    let digest = sha2::Sha256::digest(id.as_str().as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

struct Record {
    hash: BodyHash,
    decision_id: Uuid,
    expires: OffsetDateTime,
}

/// A recorded decision: in memory, or where the journal holds it.
enum Stored {
    Here(Box<Decision>),
    Journal(Location),
}

/// An entry of the decision-log ring.
enum Logged {
    Here(Box<LoggedDecision>),
    /// In the journal; its feedback, if any, is in the decision's [`Slot`].
    Journal {
        decided_at: OffsetDateTime,
        decision_id: Uuid,
        at: Location,
    },
}

impl Logged {
    fn decided_at(&self) -> OffsetDateTime {
        match self {
            Logged::Here(l) => l.decision.decided_at,
            Logged::Journal { decided_at, .. } => *decided_at,
        }
    }
}

/// What the store keeps per decision for feedback: 16 bytes plus the
/// feedback once reported.
struct Slot {
    decided_at_ms: i64,
    feedback: Option<Box<Feedback>>,
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos().div_euclid(1_000_000)) as i64
}

type Bucket = HashMap<Cell, Counts>;

/// Hourly counters, with the sum over the last window asked for kept up to
/// date incrementally so a snapshot does not re-add every bucket.
#[derive(Default)]
struct Window {
    buckets: BTreeMap<i64, Bucket>,
    /// (hours, first bucket, last bucket, totals) of the last snapshot.
    /// Handed out shared: a commit changes it in place unless a decision
    /// still reads it, which is rare, so snapshots are not copied per
    /// decision.
    cache: Option<(u32, i64, i64, Arc<WindowStats>)>,
    keep_hours: u32,
}

/// Adds `c` to `cell`, cloning the key only when the cell is new.
fn add_counts<M: CellMap>(into: &mut M, cell: &Cell, c: Counts, sign: f64) {
    let e = into.counts(cell);
    if sign > 0.0 {
        e.add(c);
    } else {
        e.decisions -= c.decisions;
        e.perks -= c.perks;
        e.value -= c.value;
    }
}

/// The two maps window counters live in: hourly buckets and the totals.
trait CellMap {
    fn counts(&mut self, cell: &Cell) -> &mut Counts;
}

impl CellMap for Bucket {
    fn counts(&mut self, cell: &Cell) -> &mut Counts {
        if !self.contains_key(cell) {
            self.insert(cell.clone(), Counts::default());
        }
        self.get_mut(cell).expect("inserted above")
    }
}

impl CellMap for BTreeMap<Cell, Counts> {
    fn counts(&mut self, cell: &Cell) -> &mut Counts {
        if !self.contains_key(cell) {
            self.insert(cell.clone(), Counts::default());
        }
        self.get_mut(cell).expect("inserted above")
    }
}

fn add_bucket(into: &mut BTreeMap<Cell, Counts>, from: &Bucket, sign: f64) {
    for (cell, c) in from {
        add_counts(into, cell, *c, sign);
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
            add_counts(bucket, cell, one, 1.0);
        }
        if let Some((_, first, last, totals)) = &mut self.cache {
            if (*first..=*last).contains(&b) {
                let totals = &mut Arc::make_mut(totals).cells;
                for cell in cells {
                    add_counts(totals, cell, one, 1.0);
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

    fn snapshot(&mut self, now: OffsetDateTime, hours: u32) -> Arc<WindowStats> {
        let (first, last) = (first_bucket(now, hours), bucket_of(now));
        let totals = match self.cache.take() {
            Some((h, f, l, mut totals))
                if h == hours && f <= first && l <= last && first <= l + 1 =>
            {
                if f < first || l < last {
                    let cells = &mut Arc::make_mut(&mut totals).cells;
                    // BTreeMap::range panics on an inverted range, so only
                    // ask for the buckets that moved in or out.
                    if f < first {
                        for (_, b) in self.buckets.range(f..first) {
                            add_bucket(cells, b, -1.0);
                        }
                    }
                    if l < last {
                        for (_, b) in self.buckets.range(l + 1..=last) {
                            add_bucket(cells, b, 1.0);
                        }
                    }
                    cells.retain(|_, c| c.decisions > 0);
                }
                totals
            }
            _ => {
                let mut cells = BTreeMap::new();
                for (_, b) in self.buckets.range(first..=last) {
                    add_bucket(&mut cells, b, 1.0);
                }
                Arc::new(WindowStats { cells })
            }
        };
        self.cache = Some((hours, first, last, Arc::clone(&totals)));
        totals
    }
}

/// A map whose entries expire by age, kept as one hash table per time
/// slice. Entries are never removed one by one: a whole slice is dropped
/// once its newest possible entry is older than `keep`, so an entry lives at
/// least `keep` and less than `keep + slice`. The reason is memory: a hash
/// table that sees one insert and one removal per commit fills with
/// tombstones and eventually doubles although it holds no more entries (a
/// +16 MB step in the memory benchmark); tables that only grow and are
/// dropped whole stay at their live size.
struct Generations<K, V> {
    keep_ms: i64,
    slice_ms: i64,
    /// (slice index, entries decided in it), oldest first.
    slices: VecDeque<(i64, HashMap<K, V>)>,
}

impl<K: std::hash::Hash + Eq, V> Generations<K, V> {
    fn new(keep: Duration, slice: Duration) -> Self {
        Self {
            keep_ms: keep.whole_milliseconds() as i64,
            slice_ms: slice.whole_milliseconds() as i64,
            slices: VecDeque::new(),
        }
    }

    /// Inserts `value` as of `at_ms`. An entry older than the newest slice
    /// (the clock went back) joins the newest slice: kept a little longer,
    /// never dropped early.
    fn insert(&mut self, at_ms: i64, key: K, value: V) {
        let slice = at_ms.div_euclid(self.slice_ms);
        match self.slices.back_mut() {
            Some((newest, table)) if *newest >= slice => {
                table.insert(key, value);
            }
            _ => {
                let mut table = HashMap::new();
                table.insert(key, value);
                self.slices.push_back((slice, table));
            }
        }
    }

    /// The newest entry for `key`.
    fn get(&self, key: &K) -> Option<&V> {
        self.slices.iter().rev().find_map(|(_, t)| t.get(key))
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.slices
            .iter_mut()
            .rev()
            .find_map(|(_, t)| t.get_mut(key))
    }

    /// Drops the slices whose every entry is older than `keep` at `now_ms`.
    fn expire(&mut self, now_ms: i64) {
        while self
            .slices
            .front()
            .is_some_and(|(slice, _)| (slice + 1) * self.slice_ms + self.keep_ms <= now_ms)
        {
            self.slices.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.slices.iter().map(|(_, t)| t.len()).sum()
    }
}

struct Inner {
    /// Idempotency records; a record past its `expires` is ignored until its
    /// slice is dropped, so expiry is exact whatever the slice size.
    idempotency: Generations<IdKey, Record>,
    decisions: Generations<Uuid, Stored>,
    ledgers: HashMap<CustomerId, VecDeque<(OffsetDateTime, f64)>>,
    spend: BTreeMap<Date, (f64, u64)>,
    window: Window,
    recent: VecDeque<(OffsetDateTime, InteractionInput)>,
    policy: Option<Policy>,
    history: VecDeque<PolicyChange>,
    /// Longest per-customer cap window seen; older ledger entries are dropped.
    max_cap_window: Duration,
    commits: u64,
    /// Decision id → feedback slot, for [`FEEDBACK_HORIZON`] (checked
    /// exactly in [`Inner::check_feedback`]).
    slots: Generations<Uuid, Slot>,
    /// The last [`DECISION_LOG_KEPT`] logged decisions, oldest first.
    log: VecDeque<Logged>,
}

/// Time slices of the expiring tables: a twelfth of their lifetime, so at
/// most one twelfth more entries than live ones are held.
const IDEMPOTENCY_SLICE: Duration = Duration::hours(4);
const FEEDBACK_SLICE: Duration = Duration::hours(14);

impl Default for Inner {
    fn default() -> Self {
        Self {
            idempotency: Generations::new(IDEMPOTENCY_TTL, IDEMPOTENCY_SLICE),
            decisions: Generations::new(IDEMPOTENCY_TTL, IDEMPOTENCY_SLICE),
            ledgers: HashMap::new(),
            spend: BTreeMap::new(),
            window: Window::default(),
            recent: VecDeque::new(),
            policy: None,
            history: VecDeque::new(),
            max_cap_window: Duration::ZERO,
            commits: 0,
            slots: Generations::new(FEEDBACK_HORIZON, FEEDBACK_SLICE),
            log: VecDeque::new(),
        }
    }
}

/// Every this many commits, ledgers of customers not seen for a whole cap
/// window are dropped, so memory stays bounded by recent activity.
const LEDGER_SWEEP_EVERY: u64 = 4096;

/// Budget days kept for reporting.
const SPEND_DAYS_KEPT: usize = 8;

impl Inner {
    fn prune(&mut self, now: OffsetDateTime) {
        let now_ms = unix_ms(now);
        self.idempotency.expire(now_ms);
        self.decisions.expire(now_ms);
        self.slots.expire(now_ms);
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

    /// Records a decision whose outcome (`granted_value`) is already chosen:
    /// the one place both a live commit and the journal replay change state.
    /// `at`: where the journal holds the entry (`None` without a journal).
    fn apply(&mut self, e: DecisionEntry, hash: BodyHash, location: Option<Location>) {
        let DecisionEntry {
            at,
            interaction_id,
            customer_id,
            cells,
            window_hours,
            granted_value,
            cap_window_days,
            input,
            decision,
            shadow,
            ..
        } = e;
        if let Some(days) = cap_window_days {
            self.max_cap_window = self.max_cap_window.max(Duration::days(i64::from(days)));
        }
        if let Some(v) = granted_value {
            self.ledgers
                .entry(customer_id.clone())
                .or_default()
                .push_back((at, v));
            let e = self.spend.entry(at.date()).or_insert((0.0, 0));
            e.0 += v;
            e.1 += 1;
        } else if self
            .ledgers
            .get(&customer_id)
            .is_some_and(VecDeque::is_empty)
        {
            self.ledgers.remove(&customer_id);
        }
        self.window.record(at, window_hours, &cells, granted_value);
        self.recent.push_front((at, input.clone()));
        self.recent.truncate(RECENT_INTERACTIONS_KEPT);
        let expires = at + IDEMPOTENCY_TTL;
        let at_ms = unix_ms(at);
        self.idempotency.insert(
            at_ms,
            id_key(&interaction_id),
            Record {
                hash,
                decision_id: decision.decision_id,
                expires,
            },
        );
        self.slots.insert(
            at_ms,
            decision.decision_id,
            Slot {
                decided_at_ms: unix_ms(at),
                feedback: None,
            },
        );
        if self.log.len() >= DECISION_LOG_KEPT {
            self.log.pop_front();
        }
        match location {
            Some(at) => {
                self.decisions
                    .insert(at_ms, decision.decision_id, Stored::Journal(at));
                self.log.push_back(Logged::Journal {
                    decided_at: decision.decided_at,
                    decision_id: decision.decision_id,
                    at,
                });
            }
            None => {
                self.decisions.insert(
                    at_ms,
                    decision.decision_id,
                    Stored::Here(Box::new(decision.clone())),
                );
                self.log.push_back(Logged::Here(Box::new(LoggedDecision {
                    input,
                    decision,
                    shadow,
                    feedback: None,
                })));
            }
        }
    }

    /// Whether `f` may be recorded, and how it relates to what is stored.
    fn check_feedback(&self, f: &Feedback) -> Result<(), FeedbackOutcome> {
        let Some(slot) = self.slots.get(&f.decision_id) else {
            return Err(FeedbackOutcome::UnknownDecision);
        };
        if unix_ms(f.received_at)
            > slot.decided_at_ms + FEEDBACK_HORIZON.whole_milliseconds() as i64
        {
            return Err(FeedbackOutcome::UnknownDecision);
        }
        match &slot.feedback {
            Some(stored) if stored.same_report(f) => {
                Err(FeedbackOutcome::Replayed((**stored).clone()))
            }
            Some(stored) => Err(FeedbackOutcome::Conflict((**stored).clone())),
            None => Ok(()),
        }
    }

    /// Records feedback already checked with [`Inner::check_feedback`].
    fn apply_feedback(&mut self, f: Feedback) {
        // Feedback follows recent decisions: search the ring from the newest.
        // (Journaled ring entries read their feedback from the slot.)
        if let Some(Logged::Here(logged)) = self.log.iter_mut().rev().find(|l| match l {
            Logged::Here(l) => l.decision.decision_id == f.decision_id,
            Logged::Journal { decision_id, .. } => *decision_id == f.decision_id,
        }) {
            logged.feedback = Some(f.clone());
        }
        if let Some(slot) = self.slots.get_mut(&f.decision_id) {
            slot.feedback = Some(Box::new(f));
        }
    }

    fn record_change(&mut self, change: &PolicyChange) {
        self.policy = Some(change.policy.clone());
        self.history.push_front(change.clone());
        self.history.truncate(POLICY_HISTORY_KEPT);
    }
}

/// In-memory [`Store`], optionally journaled to disk.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    journal: Option<Journal>,
    /// Failed admin authentication by client: not journalled (a restart
    /// forgets it, as it forgets the throttle's own table) and under a lock
    /// of its own, so a guesser never waits on commits.
    auth_failures: Mutex<FailureTable>,
}

impl MemoryStore {
    /// A store without a journal: everything is lost when it is dropped.
    pub fn new() -> Self {
        Self::default()
    }

    /// A durable store: rebuilds the state from the journal in `cfg.dir`
    /// (decisions and feedback older than their retention are dropped as
    /// they would have been live, measured against `now`), then journals
    /// every commit and feedback.
    pub fn open(cfg: &JournalConfig, now: OffsetDateTime) -> Result<Self, JournalError> {
        // Opening first takes the directory's lock and cuts a torn last line.
        let journal = Journal::open(cfg, now)?;
        let mut inner = Inner::default();
        let mut bad_hash = 0u64;
        let stats = read_located_entries(&cfg.dir, |e, at| match e {
            Entry::Decision(d) => {
                let Some(hash) = hex::decode(&d.body_hash)
                    .ok()
                    .and_then(|h| BodyHash::try_from(h.as_slice()).ok())
                else {
                    bad_hash += 1;
                    return;
                };
                inner.prune(d.at);
                inner.apply(*d, hash, Some(at));
            }
            Entry::Feedback(f) => {
                if inner.check_feedback(&f).is_ok() {
                    inner.apply_feedback(f);
                }
            }
        })?;
        if bad_hash > 0 {
            tracing::warn!(
                entries = bad_hash,
                "skipped journal decisions with an unreadable body hash"
            );
        }
        inner.prune(now);
        tracing::info!(
            dir = %cfg.dir.display(),
            entries = stats.entries,
            skipped = stats.skipped,
            fsync = %cfg.fsync,
            "journal replayed"
        );
        Ok(Self {
            inner: Mutex::new(inner),
            journal: Some(journal),
            auth_failures: Mutex::default(),
        })
    }

    /// Writes `entry` to the journal, if there is one, and says where.
    fn journal(&self, entry: &Entry, at: OffsetDateTime) -> Result<Option<Location>, StoreError> {
        let line = self.encode(entry)?;
        self.write(line.as_deref(), at)
    }

    /// The journal line of `entry`, if there is a journal.
    fn encode(&self, entry: &Entry) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.journal {
            Some(_) => Journal::encode(entry).map(Some).map_err(journal_failed),
            None => Ok(None),
        }
    }

    /// Appends a line from [`Self::encode`].
    fn write(
        &self,
        line: Option<&[u8]>,
        at: OffsetDateTime,
    ) -> Result<Option<Location>, StoreError> {
        match (&self.journal, line) {
            (Some(j), Some(line)) => j.append_line(line, at).map(Some).map_err(journal_failed),
            _ => Ok(None),
        }
    }

    /// The stored answer for a known interaction id, if any.
    fn known(
        &self,
        inner: &Inner,
        interaction_id: &InteractionId,
        hash: BodyHash,
        now: OffsetDateTime,
    ) -> Result<Option<CommitOutcome>, StoreError> {
        let Some(rec) = inner
            .idempotency
            .get(&id_key(interaction_id))
            .filter(|r| r.expires > now)
        else {
            return Ok(None);
        };
        if rec.hash != hash {
            return Ok(Some(CommitOutcome::Mismatch));
        }
        let stored = inner
            .decisions
            .get(&rec.decision_id)
            .ok_or_else(|| StoreError::Corrupt("idempotency record without decision".into()))?;
        Ok(Some(CommitOutcome::Replayed(self.load(stored)?)))
    }

    /// A recorded decision, from memory or read back from the journal.
    fn load(&self, stored: &Stored) -> Result<Decision, StoreError> {
        match stored {
            Stored::Here(d) => Ok((**d).clone()),
            Stored::Journal(at) => Ok(self.read_logged(*at)?.decision),
        }
    }

    /// The decision-log entry the journal holds at `at`.
    fn read_logged(&self, at: Location) -> Result<LoggedDecision, StoreError> {
        let journal = self
            .journal
            .as_ref()
            .ok_or_else(|| StoreError::Corrupt("a journal location without a journal".into()))?;
        match journal.read(at) {
            Ok(Entry::Decision(d)) => Ok(LoggedDecision {
                input: d.input,
                decision: d.decision,
                shadow: d.shadow,
                feedback: None,
            }),
            Ok(Entry::Feedback(_)) => Err(StoreError::Corrupt(format!(
                "the journal holds feedback where a decision was expected ({at:?})"
            ))),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a decision back from the journal");
                Err(StoreError::Corrupt(format!("journal read failed: {e}")))
            }
        }
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

fn journal_failed(e: JournalError) -> StoreError {
    tracing::error!(error = %e, "journal write failed: nothing recorded");
    StoreError::Unavailable(format!("the journal cannot be written: {e}"))
}

/// Which of a commit's rendered answers is given.
enum Answer {
    Granted,
    RefusedByCap,
    RefusedByBudget,
}

/// The journal entry recording `answer` for `c`, and that answer. A
/// refusal is rendered here, under the lock, only when it is the answer: a
/// render is about a microsecond, and rendering both refusals of every
/// gesture beforehand always rendered at least one that was never given.
fn decision_entry(c: Commit, answer: Answer, granted_value: Option<f64>) -> (Entry, Decision) {
    let decision = match answer {
        Answer::Granted => c.granted,
        Answer::RefusedByCap => c.refusals.render(RefusedBy::Cap),
        Answer::RefusedByBudget => c.refusals.render(RefusedBy::Budget),
    };
    let entry = Entry::Decision(Box::new(DecisionEntry {
        at: c.now,
        interaction_id: c.interaction_id,
        customer_id: c.customer_id,
        body_hash: hex::encode(c.body_hash),
        cells: c.cells,
        window_hours: c.window_hours,
        granted_value,
        cap_window_days: c.grant.as_ref().map(|g| g.caps.window_days),
        input: c.input,
        decision: decision.clone(),
        shadow: c.shadow,
    }));
    (entry, decision)
}

/// A commit made ready outside the lock: without a gesture the answer does
/// not depend on caps or the budget, so its journal line is built and
/// encoded before taking the lock every commit contends for. Both variants
/// are a commit's worth of data, moved once into the chunk's list: boxing
/// the larger would add an allocation per commit and save nothing.
#[allow(clippy::large_enum_variant)]
enum Ready {
    Plain {
        hash: BodyHash,
        entry: Box<DecisionEntry>,
        line: Option<Vec<u8>>,
        decision: Decision,
    },
    Gesture(Commit),
}

impl Ready {
    fn new(store: &MemoryStore, c: Commit) -> Result<Self, StoreError> {
        if c.grant.is_some() {
            return Ok(Self::Gesture(c));
        }
        let hash = c.body_hash;
        let (entry, decision) = decision_entry(c, Answer::Granted, None);
        let line = store.encode(&entry)?;
        let Entry::Decision(entry) = entry else {
            unreachable!("decision_entry builds a decision entry")
        };
        Ok(Self::Plain {
            hash,
            entry,
            line,
            decision,
        })
    }
}

impl MemoryStore {
    /// [`Store::commit`]'s work once the lock is held.
    fn commit_locked(&self, inner: &mut Inner, ready: Ready) -> Result<CommitOutcome, StoreError> {
        let c = match ready {
            Ready::Plain {
                hash,
                entry,
                line,
                decision,
            } => {
                inner.prune(entry.at);
                if let Some(known) = self.known(inner, &entry.interaction_id, hash, entry.at)? {
                    return Ok(known);
                }
                // Journal first: if the line cannot be written, nothing changes.
                let at = self.write(line.as_deref(), entry.at)?;
                inner.apply(*entry, hash, at);
                return Ok(CommitOutcome::Recorded(decision));
            }
            Ready::Gesture(c) => c,
        };
        inner.prune(c.now);
        if let Some(known) = self.known(inner, &c.interaction_id, c.body_hash, c.now)? {
            return Ok(known);
        }
        let day = c.now.date();
        let (answer, granted_value) = match &c.grant {
            None => (Answer::Granted, None),
            Some(g) => {
                let cap_window = Duration::days(i64::from(g.caps.window_days));
                let since = c.now - cap_window;
                let (spent, _) = inner.spend.get(&day).copied().unwrap_or((0.0, 0));
                let (count, value) = match inner.ledgers.get_mut(&c.customer_id) {
                    Some(ledger) => {
                        while ledger.front().is_some_and(|(at, _)| *at <= since) {
                            ledger.pop_front();
                        }
                        ledger
                            .iter()
                            .fold((0u32, 0.0), |(n, s), (_, v)| (n + 1, s + v))
                    }
                    None => (0, 0.0),
                };
                if count >= g.caps.perks_per_customer
                    || value + g.value > g.caps.max_value_per_customer
                {
                    (Answer::RefusedByCap, None)
                } else if spent + g.value > g.daily_budget {
                    (Answer::RefusedByBudget, None)
                } else {
                    (Answer::Granted, Some(g.value))
                }
            }
        };
        let (hash, now) = (c.body_hash, c.now);
        let (entry, decision) = decision_entry(c, answer, granted_value);
        // Journal first: if the line cannot be written, nothing changes.
        let at = self.journal(&entry, now)?;
        let Entry::Decision(e) = entry else {
            unreachable!("built above")
        };
        inner.apply(*e, hash, at);
        Ok(CommitOutcome::Recorded(decision))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn commit(&self, c: Commit) -> Result<CommitOutcome, StoreError> {
        let ready = Ready::new(self, c)?;
        let mut inner = self.inner.lock();
        self.commit_locked(&mut inner, ready)
    }

    /// One lock for the whole list, taken once: the commits are the same
    /// ones [`Store::commit`] makes, in order, each journalled before it
    /// changes the state, but the two workers of a batch load no longer
    /// meet on the mutex for every item (taking it per item was a seventh
    /// of a batch item's server time in futex waits and wake-ups).
    async fn commit_all(&self, commits: Vec<Commit>) -> Vec<Result<CommitOutcome, StoreError>> {
        let ready: Vec<Result<Ready, StoreError>> =
            commits.into_iter().map(|c| Ready::new(self, c)).collect();
        let mut inner = self.inner.lock();
        ready
            .into_iter()
            .map(|r| r.and_then(|r| self.commit_locked(&mut inner, r)))
            .collect()
    }

    /// Planning a batch on one snapshot and committing it under one lock
    /// is what keeps a batch item cheaper than a single call here too.
    fn batches_commits(&self) -> bool {
        true
    }

    async fn record_feedback(&self, feedback: &Feedback) -> Result<FeedbackOutcome, StoreError> {
        let mut inner = self.inner.lock();
        if let Err(outcome) = inner.check_feedback(feedback) {
            return Ok(outcome);
        }
        let entry = Entry::Feedback(feedback.clone());
        self.journal(&entry, feedback.received_at)?;
        inner.apply_feedback(feedback.clone());
        Ok(FeedbackOutcome::Recorded)
    }

    async fn logged_decisions(
        &self,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<LoggedDecision>, StoreError> {
        // Copy what is needed under the lock; read the journal without it.
        let wanted: Vec<Result<LoggedDecision, (Location, Option<Feedback>)>> = {
            let inner = self.inner.lock();
            inner
                .log
                .iter()
                .filter(|l| l.decided_at() >= since)
                .take(limit)
                .map(|l| match l {
                    Logged::Here(l) => Ok((**l).clone()),
                    Logged::Journal {
                        decision_id, at, ..
                    } => Err((
                        *at,
                        inner
                            .slots
                            .get(decision_id)
                            .and_then(|s| s.feedback.as_deref().cloned()),
                    )),
                })
                .collect()
        };
        wanted
            .into_iter()
            .map(|w| match w {
                Ok(l) => Ok(l),
                Err((at, feedback)) => Ok(LoggedDecision {
                    feedback,
                    ..self.read_logged(at)?
                }),
            })
            .collect()
    }

    async fn window_stats(
        &self,
        now: OffsetDateTime,
        hours: u32,
    ) -> Result<Arc<WindowStats>, StoreError> {
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
                let change = PolicyChange::new(stored.as_ref(), policy.clone(), "startup", at);
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
        let stored = match self.inner.lock().decisions.get(&id) {
            None => return Ok(None),
            Some(Stored::Here(d)) => return Ok(Some((**d).clone())),
            Some(Stored::Journal(at)) => *at,
        };
        self.load(&Stored::Journal(stored)).map(Some)
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

    async fn count_auth_failure(
        &self,
        client: IpAddr,
        now: OffsetDateTime,
        window: std::time::Duration,
    ) -> Result<FailureWindow, StoreError> {
        Ok(self.auth_failures.lock().count(client, now, window))
    }

    async fn auth_failures(
        &self,
        client: IpAddr,
        now: OffsetDateTime,
    ) -> Result<Option<FailureWindow>, StoreError> {
        Ok(self.auth_failures.lock().get(client, now))
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
