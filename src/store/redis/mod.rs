//! The shared store: Redis or Redis Cluster, so any number of stateless
//! replicas behave as one.
//!
//! # Why it is shaped like this
//!
//! **One script per decision.** Read-modify-write across round trips breaks
//! both invariants under concurrency (TESTPLAN §0: a naive GET→check→SET
//! granted 2.93× the budget and double-granted 16 rounds out of 20). So the
//! whole state change of a decision — idempotency check, per-customer caps,
//! budget, ledger, window counters, stored answer — is one `EVALSHA` of
//! `lua/commit.lua`, which Redis runs atomically.
//!
//! **One slot per script.** Redis Cluster refuses scripts whose keys span
//! slots, so every key a commit touches carries the same hash tag: the
//! customer's *shard*, `{s<k>}` with `k = fnv1a64(customer_id) mod S`
//! (S = [`RedisConfig::shards`], 16 by default). Sharding by customer (not
//! by segment) keeps the per-customer ledger in the same atomic unit as the
//! idempotency record. The idempotency scope is therefore (customer,
//! interaction id), as TESTPLAN G1 allows: an interaction id reused for
//! another customer is decided as a new interaction (the in-memory store,
//! with one lock, is stricter and answers 422).
//!
//! **The budget is the one global quantity.** It cannot live in every
//! customer's slot, so it lives in its own: one *pool* per UTC day
//! (`{meta}:pool:<day>`, opened with the policy's daily budget). On one
//! Redis (no slots) the commit script takes a grant's value from the pool
//! itself, in the same atomic call: a grant is one round trip, like every
//! other decision, which keeps grants inside the deadline when Redis is a
//! network hop away (TESTPLAN F3: 20 ms round trips). On a Cluster the pool
//! is in another slot than the customer's keys, so a commit that would
//! grant first finds out, inside the script, that it holds no reservation
//! (`short`: nothing is recorded); the store then reserves exactly the
//! gesture's value from the pool (`lua/lease.lua`, one atomic
//! check-and-decrement) and calls the commit again with the reservation,
//! which the script spends only if it grants. A reservation the script does
//! not use (the interaction turned out to be a replay, or the cap refused
//! it) is handed back to the pool. A reservation taken but never spent nor
//! handed back (the process died between the calls, or the second call
//! timed out) is lost: the day under-spends, it never over-spends. So on a
//! Cluster a grant costs three round trips, everything else one. Both
//! scripts apply the pool's one rule from `lua/pool.lua`. Reserving exactly
//! one gesture (not a chunk per shard) is deliberate: chunks parked in
//! shards strand budget when a burst exhausts the pool (a 300-request burst
//! on a budget for 100 granted only 50 with chunks of `daily / (4 S)`). The
//! pool is the one hot key, but only grants touch it, and grants are
//! bounded by the budget itself (daily ÷ smallest gesture: hundreds to
//! thousands a day, against the ≈ 80 k scripted operations per second one
//! Redis shard does).
//!
//! **Fail closed.** A missing pool is opened (SET-NX-like, inside the script
//! that takes from it, with the policy's daily value and the UTC date of the decision)
//! only if the store holds a shared policy. An emptied store (Redis restarted
//! without persistence) has none, so grants fail closed (degraded answers,
//! `/readyz` 503) until a replica starts and re-seeds it — never "a full
//! budget again" by accident. Any error or timeout is `Unavailable`, which
//! the service turns into a degraded, perk-free answer; since a timed-out
//! script may still have run, replaying the interaction id returns what was
//! recorded.
//!
//! **A commit always finishes.** A caller whose deadline passes stops
//! waiting, but the commit is then spawned to run to completion (bounded by
//! Redis's own timeouts and a 5 s cap), so a reservation taken from the
//! pool is spent or handed back instead of leaking when the service gives
//! up at its deadline — under load, that leak starved a budget to two
//! thirds of what it should have granted.
//!
//! **A batch's first calls are one script call.** The commit script takes
//! one commit or several, and runs them in order, each exactly as if
//! called alone. [`Store::commit_all`] sends the first call of every
//! commit of a batch chunk in one script call: one per UTC day on one
//! Redis (the call carries one day's pool), one per shard and day on a
//! Cluster (a script's keys must stay in one slot there). On one Redis each
//! commit takes its grant from the pool itself, so the batch is decided
//! exactly as a sequence of single commits. On a Cluster the few that
//! answered `short` are then settled one at a time, in input order, and
//! every outcome is still one of a sequential order: a first call there
//! holds no reservation, so it never grants; a refusal by the cap it makes
//! stands (an earlier commit's later grant only adds to the ledger); a
//! customer's commits keep their order in its shard. One call instead of a
//! pipeline of 32 saves Redis a sixth of its work per commit (counted in
//! instructions: the per-call cost of `EVALSHA` is paid once). A chunk is
//! 32 commits, so a call holds Redis for about a millisecond. A call that
//! fails as a whole (no answer in time, a dropped connection, an error the
//! script raised) fails every commit of it, though some may have been
//! recorded: as for a single commit, a replay returns what was. The
//! service bounds how many chunks are in flight, so Redis's queue stays
//! short and the deadlines keep their meaning.
//!
//! **Bounded waiting, in two layers.** Connections are lazy (boot never
//! blocks on Redis), `TCP_NODELAY` is on (redis-rs 1.8 defaults to Nagle),
//! connects time out after 1 s, and a refused reconnect fails at once
//! instead of retrying inside redis-rs (it opens the breaker, below).
//! *Callers* are bounded by Tokio timeouts: the service's store deadline
//! (50 ms by default; `serve --store-deadline-ms`, which scales the others
//! through [`RedisConfig::with_deadline`]) around every decision call, the
//! store's own call budget for a commit (35 ms, so the degraded answer is
//! rendered in time), and [`RedisConfig::op_timeout`]
//! (250 ms) around every store call — needed because commands issued while
//! the connection manager reconnects wait on the reconnect, not on the
//! response timeout. Those only stop *waiting*. The per-command response
//! timeout ([`RedisConfig::response_timeout`], 1 s) is what abandons a
//! command, and abandoning a command whose effect is unknown (a reservation
//! Redis applied but whose reply came late) loses budget; so it is not set to
//! the 50 ms deadline but long enough to ride out a CPU stall, short enough
//! to free resources on a hung server. With it at 50 ms, 64 clients on a
//! loaded 2-core box lost 5 of 100 grants to such timeouts.
//!
//! **A breaker for a Redis known to be unusable.** A refused connection or
//! a timeout opens it; a dropped connection, or four commits in a row
//! missing the call budget, open it only if a `PING` then misses the call
//! budget too (a Redis that closed an idle connection answers the `PING` on
//! a new one, and a CPU-starved replica does not mistake itself for a slow
//! Redis). Open, calls fail
//! closed at once (degraded answers in a few milliseconds instead of each
//! waiting out the deadline, and no pile-up on a hung server), `/readyz`
//! reports it, and a background probe `PING`s every 100 ms; the first answer
//! within the call budget closes it. Recovery after Redis returns is
//! therefore about 100–300 ms.
//!
//! **Window snapshots are cached.** Counters are hourly hashes per shard, so
//! an exact snapshot reads `S × window_hours` hashes. Serving does not do
//! that per decision: a replica keeps a snapshot no older than
//! [`RedisConfig::window_snapshot_ttl`] (500 ms by default), refreshed in the
//! background, and buckets older than the previous hour are read once and
//! kept (they no longer change). Peer norms are therefore up to that much
//! stale on each replica; the counters themselves are exact. A TTL of zero
//! reads exactly on every call (the contract tests use it).
//!
//! # Key layout
//!
//! `P` is [`RedisConfig::prefix`] (`ft`), `{s<k>}` the shard tag, `D` the
//! UTC date (`2026-11-20`), `B` the hour bucket (`floor(unix / 3600)`).
//! Amounts are integer thousandths of the currency unit.
//!
//! | key | type | content | TTL |
//! |---|---|---|---|
//! | `P:{s<k>}:idem:<customer>:<interaction>` | hash | `h` body SHA-256, `j` decision JSON (records before 2026-11-24 also hold `d`, the decision id) | 48 h |
//! | `P:{s<k>}:dec:<decision id>` | string | written before 2026-11-24 only: `<customer>:<interaction>`, now field `r` of `fb:<decision id>`; still read, gone 48 h after an upgrade | 48 h |
//! | `P:{s<k>}:led:<customer>` | zset | grants in the cap window: `<decision id>:<value>` scored by time (ms) | cap window + 1 day |
//! | `P:{s<k>}:spent:D` | hash | `v` value, `n` grants | 8 days |
//! | `P:{s<k>}:grants:D` | list | the grant log: one JSON entry per grant | 35 days |
//! | `P:{s<k>}:w:B` | hash | `d\|cell`, `p\|cell`, `v\|cell` counters | until the bucket leaves the window + 1 h (set when the bucket is made) |
//! | `P:{s<k>}:fb:<decision id>` | hash | `t` decision time (ms), `r` `<customer>:<interaction>` (what the decision id finds), `f` feedback JSON once reported | feedback horizon (7 days) + 1 day |
//! | `P:{s<k>}:log` | stream | the decision log: `t` time (ms), `d` request + shadow JSON (`{"input":…,"shadow":…}`), `a` the answer JSON (entries before 2026-11-24: `d` holds all three, `{…,"decision":…}`); also where recent interactions (what-if) are read from, newest first | `MAXLEN ~ 10000`; 30 days after the shard's first write of the last hour it was written in (pushed back when the shard's window bucket of an hour is made) |
//! | `P:{s<k>}:fblog` | stream | the feedback log: `f` feedback JSON | `MAXLEN ~ 10000`; 30 days after the last write |
//! | `P:{meta}:pool:D` | hash | `rem`, `total`, `ver`: the day's unleased budget | 8 days |
//! | `P:{meta}:policy` | hash | `version`, `doc` | none (the configuration) |
//! | `P:{meta}:policy:log` | list | audit log, newest first, 1000 entries | none (bounded by length) |
//! | `P:{meta}:layout` | string | prefix and shard count | none (a few bytes) |
//! | `P:{auth:<client>}:fail` | hash | `e` when the client's window of failed admin authentication ends (ms), `n` failures in it; `<client>` is an IPv4 address or an IPv6 /64 (`2001:db8:1:2::`) | until the window ends |
//!
//! **Feedback.** A commit writes the decision's feedback record and its
//! decision-log entry in the same script, in the customer's shard.
//! Feedback names only the decision id, so the store first finds the shard
//! holding `fb:<id>` (one `EXISTS` per shard, in parallel), then
//! `lua/feedback.lua` checks the record exists and is within the horizon,
//! sets `f` only if absent (once-only) and appends to the shard's feedback
//! stream, atomically. The streams are what `fairtreat export` reads:
//! export them before they are trimmed.
//!
//! Ids in keys are validated (`[A-Za-z0-9_.-]{1,128}` or a UUID), so they
//! contain no `{`, `}` or `:`.
//!
//! **Time.** Days, hour buckets and cap windows use the decision's `now`
//! (the service clock, UTC); TTLs are relative to it. Replicas must be
//! NTP-synchronised: a replica whose clock is ahead opens the next day's pool
//! early by its skew; each day's pool is still never overspent. Ledger times
//! are kept to the millisecond.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::future::join_all;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::io::tcp::TcpSettings;
use redis::{Script, Value};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::failures::{client_of, FailureWindow};
use super::{
    Commit, CommitOutcome, FeedbackOutcome, LoggedDecision, Spend, Store, StoreError,
    DECISION_LOG_KEPT, FEEDBACK_HORIZON, POLICY_HISTORY_KEPT,
};
use crate::domain::decision::Decision;
use crate::domain::feedback::Feedback;
use crate::domain::interaction::InteractionInput;
use crate::domain::policy::{Policy, PolicyChange};
use crate::domain::validation::{CustomerId, InteractionId};
use crate::domain::window::{Counts, WindowStats};

mod commit;
mod config;
mod conn;
mod keys;
mod log;
mod window;

pub use config::{ConfigError, RedisConfig, RedisUrl};

use config::{parse_target, Target};
use conn::{ClusterState, Connection};
use keys::Keys;
use window::WindowCache;

// The shebang first (so Redis refuses a script that writes up front when it
// is out of memory, instead of failing half-way), then the pool's rule the
// two scripts share.
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "#!lua\n",
        include_str!("lua/pool.lua"),
        include_str!("lua/commit.lua")
    ))
});
static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "#!lua\n",
        include_str!("lua/pool.lua"),
        include_str!("lua/lease.lua")
    ))
});
static RETURN_TO_POOL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/return_to_pool.lua")));
static READ_HASHES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/read_hashes.lua")));
static REPLACE_POLICY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/replace_policy.lua")));
static LAYOUT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/layout.lua")));
static FEEDBACK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/feedback.lua")));
static AUTH_FAILURE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/auth_failure.lua")));

/// Days of per-shard spend and of pools kept for reporting.
const SPEND_TTL: Duration = Duration::from_secs(8 * 86_400);
/// Retention of the grant log in Redis: export it to the system of record
/// before then.
pub const GRANT_LOG_TTL: Duration = Duration::from_secs(35 * 86_400);
/// Retention of the decision and feedback streams after their last write
/// (they are also bounded by length).
pub const DECISION_LOG_TTL: Duration = Duration::from_secs(30 * 86_400);

/// Amounts are integer thousandths in Redis: exact sums and comparisons.
fn milli(v: f64) -> i64 {
    (v * 1000.0).round() as i64
}

fn from_milli(m: i64) -> f64 {
    m as f64 / 1000.0
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos().div_euclid(1_000_000)) as i64
}

fn utc_day(t: OffsetDateTime) -> Date {
    t.to_offset(time::UtcOffset::UTC).date()
}

/// One line of the grant log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub decision_id: Uuid,
    pub interaction_id: String,
    pub customer_id: String,
    /// Thousandths of the currency unit.
    pub value_milli: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A day's pool this replica found dry (for a policy version), and when:
/// for [`RedisConfig::dry_pool_memory`] its grants are refused by budget
/// without asking the pool.
struct DryPool {
    day: Date,
    version: u32,
    since: Instant,
}

/// What every clone of a [`RedisStore`] shares. Its methods live with the
/// part of the store they serve: `conn.rs` (calls and the breaker),
/// `commit.rs`, `window.rs` and `log.rs`.
struct Inner {
    conn: Connection,
    keys: Keys,
    cfg: RedisConfig,
    /// Strings that must never appear in an error message (the password).
    secrets: Vec<String>,
    layout_ok: AtomicBool,
    window: Mutex<WindowCache>,
    refreshing: AtomicBool,
    dry: Mutex<Option<DryPool>>,
    cluster: bool,
    /// `Some(why)`: Redis is known unusable; calls fail closed at once while
    /// a background probe waits for it to answer again.
    breaker: Mutex<Option<String>>,
    probing: AtomicBool,
    suspecting: AtomicBool,
    slow_commits: std::sync::atomic::AtomicU32,
    me: std::sync::Weak<Inner>,
}

/// The Redis [`Store`]. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// `value` as JSON, in a buffer sized for it up front (the commit's
/// strings are a few KiB: growing them by doubling was measurable).
fn json_string<T: Serialize>(value: &T, capacity: usize) -> serde_json::Result<String> {
    let mut buf = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut buf, value)?;
    // serde_json writes valid UTF-8 only.
    Ok(String::from_utf8(buf).expect("serde_json writes UTF-8"))
}

fn array(v: Value) -> Result<Vec<Value>, StoreError> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        other => Err(StoreError::Corrupt(format!(
            "expected an array from Redis, got {other:?}"
        ))),
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl RedisStore {
    /// Builds the store without connecting: the first call connects, so a
    /// replica starts (degraded) even while Redis is down. Must be called
    /// inside a Tokio runtime.
    pub fn connect(cfg: RedisConfig) -> Result<Self, ConfigError> {
        if cfg.prefix.is_empty()
            || !cfg
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(ConfigError(
                "the Redis key prefix may only contain ASCII letters, digits, '_', '-' and '.'"
                    .into(),
            ));
        }
        if cfg.shards == 0 || cfg.shards > 4096 {
            return Err(ConfigError(
                "the Redis shard count must be in 1..=4096".into(),
            ));
        }
        let tcp = TcpSettings::default().set_nodelay(true);
        let mut secrets = vec![cfg.url.expose().to_string()];
        let bad_url =
            |_| ConfigError("REDIS_URL is not a valid Redis URL (value not shown)".into());
        let (conn, cluster) = match parse_target(cfg.url.expose())? {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(bad_url)?;
                let info = client.get_connection_info().clone();
                if let Some(p) = info.redis_settings().password() {
                    secrets.push(p.to_string());
                }
                let client = redis::Client::open(info.set_tcp_settings(tcp)).map_err(bad_url)?;
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(cfg.response_timeout))
                    .set_connection_timeout(Some(cfg.connect_timeout))
                    // No retries inside a reconnect: a refused connection
                    // must surface at once (it opens the breaker); the
                    // breaker's probe reconnects every 100 ms.
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(200))
                    .set_number_of_retries(0)
                    .set_pipeline_buffer_size(1024);
                let manager =
                    ConnectionManager::new_lazy_with_config(client, config).map_err(|_| {
                        ConfigError("cannot set up the Redis connection (value not shown)".into())
                    })?;
                (Connection::Single(manager), false)
            }
            Target::Cluster(nodes) => {
                for n in &nodes {
                    let client = redis::Client::open(n.as_str()).map_err(bad_url)?;
                    if let Some(p) = client.get_connection_info().redis_settings().password() {
                        secrets.push(p.to_string());
                    }
                }
                let client = ClusterClient::builder(nodes)
                    .connection_timeout(cfg.connect_timeout)
                    .response_timeout(cfg.response_timeout)
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(100)
                    .tcp_settings(tcp)
                    .build()
                    .map_err(bad_url)?;
                (
                    Connection::Cluster(Box::new(ClusterState::new(client))),
                    true,
                )
            }
        };
        secrets.retain(|s| s.len() >= 4);
        let keys = Keys::new(&cfg.prefix, cfg.shards);
        Ok(Self {
            inner: Arc::new_cyclic(|me| Inner {
                conn,
                keys,
                cfg,
                secrets,
                layout_ok: AtomicBool::new(false),
                window: Mutex::new(WindowCache::default()),
                refreshing: AtomicBool::new(false),
                dry: Mutex::new(None),
                cluster,
                breaker: Mutex::new(None),
                probing: AtomicBool::new(false),
                suspecting: AtomicBool::new(false),
                slow_commits: std::sync::atomic::AtomicU32::new(0),
                me: me.clone(),
            }),
        })
    }

    /// The shard a customer's state lives in.
    pub fn shard_of(&self, customer: &CustomerId) -> u16 {
        self.inner.keys.shard_of(customer)
    }

    /// The hash tag of shard `k` (for tests and operators).
    pub fn shard_key(&self, k: u16, rest: &str) -> String {
        self.inner.keys.shard(k, &[rest])
    }

    /// The grant log of a UTC day, over every shard (for reconciliation).
    pub async fn grants(&self, day: Date) -> Result<Vec<GrantRecord>, StoreError> {
        let inner = self.inner.clone();
        self.bounded(async move {
            let reads = (0..inner.keys.shards).map(|k| {
                let key = inner.keys.grants(k, day);
                let inner = inner.clone();
                async move {
                    let v: Vec<String> = inner
                        .query(redis::cmd("LRANGE").arg(key).arg(0).arg(-1))
                        .await?;
                    v.iter()
                        .map(|e| serde_json::from_str(e).map_err(|e| corrupt("grant log", e)))
                        .collect::<Result<Vec<GrantRecord>, _>>()
                }
            });
            let mut all = Vec::new();
            for r in join_all(reads).await {
                all.extend(r?);
            }
            Ok(all)
        })
        .await
    }

    /// The day's unleased budget in the pool, if the pool is open.
    pub async fn pool_remaining(&self, day: Date) -> Result<Option<f64>, StoreError> {
        let inner = self.inner.clone();
        self.bounded(async move {
            let v: Option<i64> = inner
                .query(redis::cmd("HGET").arg(inner.keys.pool(day)).arg("rem"))
                .await?;
            Ok(v.map(from_milli))
        })
        .await
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = self.inner.cfg.op_timeout;
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "Redis did not answer within {} ms",
                limit.as_millis()
            ))),
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError> {
        self.inner.check_breaker()?;
        let budget = self.inner.cfg.call_budget.min(self.inner.cfg.op_timeout);
        self.run_commits(
            budget,
            move |inner| async move { inner.commit(commit).await },
        )
        .await
    }

    async fn commit_all(&self, commits: Vec<Commit>) -> Vec<Result<CommitOutcome, StoreError>> {
        let n = commits.len();
        if let Err(e) = self.inner.check_breaker() {
            return vec![Err(e); n];
        }
        // The commits queue behind each other in Redis: the budget of one,
        // plus an eighth of it per commit (as the service's deadline).
        let one = self.inner.cfg.call_budget.min(self.inner.cfg.op_timeout);
        let budget = one + one.mul_f64(n as f64 / 8.0);
        self.run_commits(budget, move |inner| async move {
            Ok(inner.commit_all(commits).await)
        })
        .await
        .unwrap_or_else(|e| vec![Err(e); n])
    }

    fn batches_commits(&self) -> bool {
        true
    }

    async fn window_stats(
        &self,
        now: OffsetDateTime,
        hours: u32,
    ) -> Result<Arc<WindowStats>, StoreError> {
        self.cached_window_stats(now, hours).await
    }

    async fn recent_interactions(
        &self,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<InteractionInput>, StoreError> {
        self.read_recent(since, limit).await
    }

    async fn seed_policy(&self, policy: &Policy, at: OffsetDateTime) -> Result<Policy, StoreError> {
        let inner = self.inner.clone();
        self.bounded(async move {
            inner.gate().await?;
            for _ in 0..8 {
                let stored = read_policy(&inner).await?;
                if let Some(s) = &stored {
                    if s.version >= policy.version {
                        return Ok(s.clone());
                    }
                }
                let change = PolicyChange::new(stored.as_ref(), policy.clone(), "startup", at);
                if replace(&inner, &change).await? {
                    return Ok(policy.clone());
                }
            }
            Err(StoreError::Unavailable(
                "the shared policy kept changing while seeding it".into(),
            ))
        })
        .await
    }

    async fn replace_policy(&self, change: &PolicyChange) -> Result<bool, StoreError> {
        let inner = self.inner.clone();
        self.bounded(async move {
            inner.gate().await?;
            replace(&inner, change).await
        })
        .await
    }

    async fn stored_policy(&self) -> Result<Option<Policy>, StoreError> {
        let inner = self.inner.clone();
        self.bounded(async move {
            inner.gate().await?;
            read_policy(&inner).await
        })
        .await
    }

    async fn policy_history(&self, limit: usize) -> Result<Vec<PolicyChange>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let inner = self.inner.clone();
        self.bounded(async move {
            inner.gate().await?;
            let v: Vec<String> = inner
                .query(
                    redis::cmd("LRANGE")
                        .arg(inner.keys.policy_log())
                        .arg(0)
                        .arg(limit.saturating_sub(1)),
                )
                .await?;
            v.iter()
                .map(|e| serde_json::from_str(e).map_err(|e| corrupt("policy log", e)))
                .collect()
        })
        .await
    }

    async fn decision(&self, id: Uuid) -> Result<Option<Decision>, StoreError> {
        let inner = self.inner.clone();
        self.bounded(async move {
            inner.gate().await?;
            // The decision id finds `<customer>:<interaction>` in field `r`
            // of its feedback record; commits before 2026-11-24 wrote it to
            // a key of its own (`dec:<id>`, gone 48 h after the upgrade).
            let lookups = (0..inner.keys.shards).map(|k| {
                let mut pipe = redis::pipe();
                pipe.cmd("HGET")
                    .arg(inner.keys.feedback(k, id))
                    .arg("r")
                    .cmd("GET")
                    .arg(inner.keys.dec(k, id));
                let inner = &inner;
                async move {
                    let (r, legacy): (Option<String>, Option<String>) = inner
                        .pipeline(&pipe)
                        .await?
                        .map_err(|e| inner.unavailable(e))?;
                    Ok::<_, StoreError>((k, r.or(legacy)))
                }
            });
            for r in join_all(lookups).await {
                if let (k, Some(idem_ref)) = r? {
                    // Keys are built from validated ids only, even when read back.
                    let (c, i) = idem_ref
                        .split_once(':')
                        .ok_or_else(|| StoreError::Corrupt("decision index".into()))?;
                    let c = CustomerId::parse("customer.id", c)
                        .map_err(|e| corrupt("decision index", e))?;
                    let i = InteractionId::parse("interaction_id", i)
                        .map_err(|e| corrupt("decision index", e))?;
                    let j: Option<String> = inner
                        .query(redis::cmd("HGET").arg(inner.keys.idem(k, &c, &i)).arg("j"))
                        .await?;
                    return match j {
                        Some(j) => Ok(Some(
                            serde_json::from_str(&j).map_err(|e| corrupt("stored decision", e))?,
                        )),
                        None => Ok(None),
                    };
                }
            }
            Ok(None)
        })
        .await
    }

    async fn window_series(
        &self,
        now: OffsetDateTime,
        hours: u32,
    ) -> Result<Vec<(i64, Counts)>, StoreError> {
        self.read_window_series(now, hours).await
    }

    async fn spend(&self, now: OffsetDateTime) -> Result<Spend, StoreError> {
        let day = utc_day(now);
        let inner = self.inner.clone();
        self.bounded(async move {
            inner.gate().await?;
            let reads = (0..inner.keys.shards).map(|k| {
                let cmd = redis::cmd("HMGET")
                    .arg(inner.keys.spent(k, day))
                    .arg("v")
                    .arg("n")
                    .to_owned();
                let inner = &inner;
                async move { inner.query::<(Option<i64>, Option<i64>)>(&cmd).await }
            });
            let (mut spent, mut grants) = (0i64, 0i64);
            for r in join_all(reads).await {
                let (v, n) = r?;
                spent += v.unwrap_or(0);
                grants += n.unwrap_or(0);
            }
            Ok(Spend {
                day,
                spent: from_milli(spent),
                grants: grants.max(0) as u64,
            })
        })
        .await
    }

    async fn record_feedback(&self, feedback: &Feedback) -> Result<FeedbackOutcome, StoreError> {
        let inner = self.inner.clone();
        inner.check_breaker()?;
        let feedback = feedback.clone();
        let json = serde_json::to_string(&feedback).map_err(|e| corrupt("feedback", e))?;
        self.bounded(async move {
            inner.gate().await?;
            let id = feedback.decision_id;
            // The decision's shard is its customer's, which feedback does not
            // name: the shard holding the feedback record is the one.
            let lookups = (0..inner.keys.shards).map(|k| {
                let cmd = redis::cmd("EXISTS")
                    .arg(inner.keys.feedback(k, id))
                    .to_owned();
                let inner = &inner;
                async move { inner.query::<i64>(&cmd).await.map(|n| (k, n)) }
            });
            let mut shard = None;
            for r in join_all(lookups).await {
                let (k, n) = r?;
                if n > 0 {
                    shard = Some(k);
                }
            }
            let Some(k) = shard else {
                return Ok(FeedbackOutcome::UnknownDecision);
            };
            let mut inv = FEEDBACK.prepare_invoke();
            inv.key(inner.keys.feedback(k, id))
                .key(inner.keys.feedback_log(k))
                .arg(unix_ms(feedback.received_at))
                .arg(ms(FEEDBACK_HORIZON.unsigned_abs()))
                .arg(&json)
                .arg(DECISION_LOG_KEPT)
                .arg(ms(DECISION_LOG_TTL));
            let reply = array(inner.invoke(&inv).await?)?;
            match (
                reply.first().and_then(text).as_deref(),
                reply.get(1).and_then(text),
            ) {
                (Some("unknown"), _) => Ok(FeedbackOutcome::UnknownDecision),
                (Some("rec"), _) => Ok(FeedbackOutcome::Recorded),
                (Some("exists"), Some(j)) => {
                    let stored: Feedback =
                        serde_json::from_str(&j).map_err(|e| corrupt("stored feedback", e))?;
                    Ok(if stored.same_report(&feedback) {
                        FeedbackOutcome::Replayed(stored)
                    } else {
                        FeedbackOutcome::Conflict(stored)
                    })
                }
                _ => Err(StoreError::Corrupt(format!(
                    "unexpected feedback reply {reply:?}"
                ))),
            }
        })
        .await
    }

    async fn logged_decisions(
        &self,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<LoggedDecision>, StoreError> {
        self.read_logged(since, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        inner.check_breaker()?;
        self.bounded(async move {
            inner.gate().await?;
            let _: Value = inner.query(&redis::cmd("PING")).await?;
            let exists: i64 = inner
                .query(redis::cmd("EXISTS").arg(inner.keys.policy()))
                .await?;
            if exists == 0 {
                return Err(StoreError::Unavailable(
                    "the store holds no shared policy (emptied?): perks are refused until a replica re-seeds it".into(),
                ));
            }
            Ok(())
        })
        .await
    }

    async fn count_auth_failure(
        &self,
        client: IpAddr,
        now: OffsetDateTime,
        window: Duration,
    ) -> Result<FailureWindow, StoreError> {
        let inner = self.inner.clone();
        inner.check_breaker()?;
        self.bounded(async move {
            inner.gate().await?;
            let mut inv = AUTH_FAILURE.prepare_invoke();
            inv.key(inner.keys.auth_failures(client_of(client)))
                .arg(unix_ms(now))
                .arg(ms(window));
            let reply = array(inner.invoke(&inv).await?)?;
            match (reply.first(), reply.get(1)) {
                (Some(Value::Int(n)), Some(Value::Int(left))) => Ok(FailureWindow {
                    count: u32::try_from(*n).unwrap_or(u32::MAX),
                    left: Duration::from_millis(u64::try_from(*left).unwrap_or(0)),
                }),
                _ => Err(StoreError::Corrupt(format!(
                    "auth failure script answered {reply:?}"
                ))),
            }
        })
        .await
    }

    async fn auth_failures(
        &self,
        client: IpAddr,
        now: OffsetDateTime,
    ) -> Result<Option<FailureWindow>, StoreError> {
        let inner = self.inner.clone();
        inner.check_breaker()?;
        self.bounded(async move {
            inner.gate().await?;
            let (ends, n): (Option<i64>, Option<i64>) = inner
                .query(
                    redis::cmd("HMGET")
                        .arg(inner.keys.auth_failures(client_of(client)))
                        .arg("e")
                        .arg("n"),
                )
                .await?;
            let (Some(ends), Some(n)) = (ends, n) else {
                return Ok(None);
            };
            let left = ends - unix_ms(now);
            Ok((left > 0).then(|| FailureWindow {
                count: u32::try_from(n).unwrap_or(u32::MAX),
                left: Duration::from_millis(left.unsigned_abs()),
            }))
        })
        .await
    }

    fn kind(&self) -> &'static str {
        if self.inner.cluster {
            "redis-cluster"
        } else {
            "redis"
        }
    }
}

async fn read_policy(inner: &Inner) -> Result<Option<Policy>, StoreError> {
    let doc: Option<String> = inner
        .query(redis::cmd("HGET").arg(inner.keys.policy()).arg("doc"))
        .await?;
    doc.map(|d| serde_json::from_str(&d).map_err(|e| corrupt("stored policy", e)))
        .transpose()
}

async fn replace(inner: &Inner, change: &PolicyChange) -> Result<bool, StoreError> {
    let doc = serde_json::to_string(&change.policy).map_err(|e| corrupt("policy", e))?;
    let log = serde_json::to_string(change).map_err(|e| corrupt("policy change", e))?;
    let mut inv = REPLACE_POLICY.prepare_invoke();
    inv.key(inner.keys.policy())
        .key(inner.keys.policy_log())
        .arg(change.previous_version)
        .arg(change.version)
        .arg(doc)
        .arg(log)
        .arg(POLICY_HISTORY_KEPT);
    let r = inner.invoke(&inv).await?;
    Ok(matches!(r, Value::Int(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_to_thousandths() {
        assert_eq!(milli(33.0), 33_000);
        assert_eq!(milli(0.1) + milli(0.2), milli(0.3));
        assert_eq!(from_milli(12_500), 12.5);
    }
}
