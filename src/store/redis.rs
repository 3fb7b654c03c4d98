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

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use futures_util::future::join_all;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{
    Cmd, ErrorKind, FromRedisValue, RedisError, Script, ScriptInvocation, ServerErrorKind, Value,
};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{
    write_recorded_json, Commit, CommitOutcome, FeedbackOutcome, LoggedDecision, RefusedBy,
    ShadowChoice, Spend, Store, StoreError, DECISION_LOG_KEPT, FEEDBACK_HORIZON, IDEMPOTENCY_TTL,
    POLICY_HISTORY_KEPT, RECENT_INTERACTIONS_KEPT,
};
use crate::domain::decision::Decision;
use crate::domain::feedback::Feedback;
use crate::domain::interaction::InteractionInput;
use crate::domain::policy::{diff, Policy, PolicyChange};
use crate::domain::validation::{CustomerId, InteractionId};
use crate::domain::window::{bucket_of, Cell, Counts, WindowStats};

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

/// Version of the key layout, recorded in the layout marker.
const LAYOUT_VERSION: &str = "fairtreat-redis-1";
/// Days of per-shard spend and of pools kept for reporting.
const SPEND_TTL: Duration = Duration::from_secs(8 * 86_400);
/// Retention of the grant log in Redis: export it to the system of record
/// before then.
pub const GRANT_LOG_TTL: Duration = Duration::from_secs(35 * 86_400);
/// Retention of the decision and feedback streams after their last write
/// (they are also bounded by length).
pub const DECISION_LOG_TTL: Duration = Duration::from_secs(30 * 86_400);
/// Upper bound on reading the whole decision log (export), which may be
/// many round trips.
const LOG_READ_LIMIT: Duration = Duration::from_secs(60);
/// Stream entries read per `XRANGE` call.
const LOG_PAGE: usize = 1000;
/// Page of a backwards read of the decision log for recent interactions
/// (entries are a few KiB: smaller pages than a full export's).
const RECENT_PAGE: usize = 200;
/// Rounds of commit → reserve → commit before a commit settles for a refusal.
const COMMIT_ROUNDS: usize = 3;
/// A stale window snapshot is still served for this long while a refresh
/// runs (peer norms only shape the justice cost; they need not be fresh).
const MAX_SNAPSHOT_AGE: Duration = Duration::from_secs(30);
/// Longest a commit may run once its caller stopped waiting. Redis's own
/// timeouts end it sooner: 50 ms per command, or the reconnect attempts.
const COMMIT_TASK_LIMIT: Duration = Duration::from_secs(5);
/// How often an open breaker probes Redis. A probe must answer within the
/// call budget: a Redis slower than that is no use to a decision.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Commits in a row that miss the call budget before Redis is probed.
const SLOW_COMMITS_TO_TRIP: u32 = 4;
/// How long a decision waits for the first window snapshot of a replica.
const FIRST_SNAPSHOT_WAIT: Duration = Duration::from_millis(10);
/// Most keys read by one window script call.
const KEYS_PER_READ: usize = 256;

/// A Redis URL, which may hold a password: never printed. `Debug` is
/// redacted, there is no `Display`, and parsing never fails (so command-line
/// errors cannot echo it); it is checked when the store is built, with
/// messages that do not quote it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for the connection only.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(<redacted>)")
    }
}

impl FromStr for RedisUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

/// How to reach Redis and how the store behaves.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` for one Redis;
    /// `redis+cluster://[user:password@]host:port[,host:port…]` or several
    /// comma-separated `redis://` URLs for a Cluster.
    pub url: RedisUrl,
    /// First part of every key (`[A-Za-z0-9_.-]+`), so an ACL can be limited
    /// to `~<prefix>:*`.
    pub prefix: String,
    /// Number of customer shards (hash tags). Fixed for the life of the data:
    /// replicas with another count refuse to run.
    pub shards: u16,
    /// Per-command response timeout: how long before redis-rs abandons a
    /// command (callers stop waiting much sooner; see the module docs).
    pub response_timeout: Duration,
    /// Per-connection-attempt timeout.
    pub connect_timeout: Duration,
    /// Upper bound on any store call, including waiting for a reconnect.
    pub op_timeout: Duration,
    /// How long a decision waits for its commit before failing closed: below
    /// the service's 50 ms store deadline, so the degraded answer is still
    /// rendered in time. The commit itself then finishes in the background.
    pub call_budget: Duration,
    /// Age at which a cached window snapshot is refreshed; zero: exact reads.
    pub window_snapshot_ttl: Duration,
    /// How long a replica remembers that today's budget pool ran dry, and
    /// refuses by budget without asking the pool again (zero: always ask).
    pub dry_pool_memory: Duration,
}

impl RedisConfig {
    pub fn new(url: RedisUrl) -> Self {
        Self {
            url,
            prefix: "ft".into(),
            shards: 16,
            response_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            op_timeout: Duration::from_millis(250),
            call_budget: Duration::from_millis(35),
            window_snapshot_ttl: Duration::from_millis(500),
            dry_pool_memory: Duration::from_millis(250),
        }
    }

    /// Scales the waits to the service's store deadline (the defaults
    /// above suit the default 50 ms): a commit is waited for 70 % of it, so
    /// the degraded answer is still rendered in time; a store call and a
    /// command may take a few deadlines before they are given up (never
    /// less than the defaults, which ride out a CPU stall). Raising the
    /// deadline is how a replica whose Redis is a long round trip away
    /// still grants: one round trip per decision on one Redis, three for a
    /// grant on a Cluster.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.call_budget = deadline.mul_f64(0.7);
        self.op_timeout = Duration::from_millis(250).max(deadline * 2);
        self.response_timeout = Duration::from_secs(1).max(deadline * 4);
        self
    }
}

/// Why a store could not be built (never quotes the URL).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

enum Target {
    Single(String),
    Cluster(Vec<String>),
}

/// Splits the URL into one node or cluster seed nodes.
fn parse_target(url: &str) -> Result<Target, ConfigError> {
    let bad = |why: &str| ConfigError(format!("REDIS_URL is not usable: {why} (value not shown)"));
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("redis+cluster://") {
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((a, h)) => (format!("{a}@"), h),
            None => (String::new(), rest),
        };
        let hosts = hosts.trim_end_matches('/');
        if hosts.is_empty() || hosts.contains('/') {
            return Err(bad("a cluster URL is redis+cluster://[user:password@]host:port[,host:port…] without a database"));
        }
        let nodes: Vec<String> = hosts
            .split(',')
            .map(|h| format!("redis://{auth}{}", h.trim()))
            .collect();
        return Ok(Target::Cluster(nodes));
    }
    let parts: Vec<&str> = url.split(',').map(str::trim).collect();
    for p in &parts {
        if p.starts_with("rediss://") {
            return Err(bad("TLS (rediss://) is not compiled into this build"));
        }
        if !p.starts_with("redis://") {
            return Err(bad("expected redis:// or redis+cluster://"));
        }
    }
    if parts.len() == 1 {
        Ok(Target::Single(parts[0].to_string()))
    } else {
        Ok(Target::Cluster(
            parts.into_iter().map(String::from).collect(),
        ))
    }
}

enum Connection {
    Single(ConnectionManager),
    Cluster(Box<ClusterState>),
}

/// What one call is sent on: a clone of the managed connection or of the
/// Cluster connection.
enum Handle {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Handle::Single(c) => c.req_packed_command(cmd),
            Handle::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Handle::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Handle::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Handle::Single(c) => c.get_db(),
            Handle::Cluster(c) => c.get_db(),
        }
    }
}

/// A Cluster connection, made on first use (redis-rs connects eagerly).
struct ClusterState {
    client: ClusterClient,
    conn: ArcSwapOption<ClusterConnection>,
    connecting: tokio::sync::Mutex<()>,
}

/// Key names (see the module documentation). A commit names seven keys,
/// so they are built by appending to each shard's precomputed head
/// (`<prefix>:{s<k>}:`) rather than with `format!`: nested formatting,
/// and `Date`'s padded `Display` above all, were ≈ 6 % of a Redis batch
/// item's instructions on the server.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
    shards: u16,
    /// `<prefix>:{s<k>}:` for every shard `k`.
    heads: Vec<String>,
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's hasher).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Keys {
    fn new(prefix: &str, shards: u16) -> Self {
        Self {
            prefix: prefix.to_owned(),
            shards,
            heads: (0..shards.max(1))
                .map(|k| format!("{prefix}:{{s{k}}}:"))
                .collect(),
        }
    }
    fn shard_of(&self, customer: &CustomerId) -> u16 {
        (fnv1a64(customer.as_str().as_bytes()) % u64::from(self.shards)) as u16
    }
    /// `<prefix>:{s<k>}:` followed by `parts`.
    fn shard(&self, k: u16, parts: &[&str]) -> String {
        // Every shard the store uses has a head; an operator's
        // `shard_key` may name another, which is formatted.
        let formatted;
        let head = match self.heads.get(usize::from(k)) {
            Some(head) => head,
            None => {
                formatted = format!("{}:{{s{k}}}:", self.prefix);
                &formatted
            }
        };
        let mut key =
            String::with_capacity(head.len() + parts.iter().map(|p| p.len()).sum::<usize>());
        key.push_str(head);
        parts.iter().for_each(|p| key.push_str(p));
        key
    }
    /// Scoped to the customer: the record must sit in the customer's
    /// shard, and keying it by the pair keeps the scope the same whatever
    /// shard two customers hash to.
    fn idem(&self, k: u16, c: &CustomerId, id: &InteractionId) -> String {
        self.shard(k, &["idem:", c.as_str(), ":", id.as_str()])
    }
    fn dec(&self, k: u16, id: Uuid) -> String {
        self.shard(
            k,
            &[
                "dec:",
                id.hyphenated().encode_lower(&mut Uuid::encode_buffer()),
            ],
        )
    }
    fn ledger(&self, k: u16, c: &CustomerId) -> String {
        self.shard(k, &["led:", c.as_str()])
    }
    fn spent(&self, k: u16, day: Date) -> String {
        self.shard(k, &["spent:", &day_name(day)])
    }
    fn grants(&self, k: u16, day: Date) -> String {
        self.shard(k, &["grants:", &day_name(day)])
    }
    fn window(&self, k: u16, bucket: i64) -> String {
        self.shard(k, &["w:", &bucket.to_string()])
    }
    fn feedback(&self, k: u16, id: Uuid) -> String {
        self.shard(
            k,
            &[
                "fb:",
                id.hyphenated().encode_lower(&mut Uuid::encode_buffer()),
            ],
        )
    }
    fn log(&self, k: u16) -> String {
        self.shard(k, &["log"])
    }
    fn feedback_log(&self, k: u16) -> String {
        self.shard(k, &["fblog"])
    }
    fn meta(&self, rest: &str) -> String {
        format!("{}:{{meta}}:{rest}", self.prefix)
    }
    fn pool(&self, day: Date) -> String {
        self.meta(&["pool:", &day_name(day)].concat())
    }
    fn policy(&self) -> String {
        self.meta("policy")
    }
    fn policy_log(&self) -> String {
        self.meta("policy:log")
    }
    fn layout(&self) -> String {
        self.meta("layout")
    }
    fn layout_value(&self) -> String {
        format!(
            "{LAYOUT_VERSION} prefix={} shards={}",
            self.prefix, self.shards
        )
    }
}

/// `day` as `Date`'s `Display` writes it (`2026-11-24`), without the
/// formatting machinery for the years a key will ever carry.
fn day_name(day: Date) -> String {
    let year = day.year();
    if !(1000..=9999).contains(&year) {
        return day.to_string();
    }
    let mut out = String::with_capacity(10);
    let digits = |out: &mut String, n: u32, width: u32| {
        for p in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u32.pow(p) % 10) as u8));
        }
    };
    digits(&mut out, year as u32, 4);
    out.push('-');
    digits(&mut out, u32::from(u8::from(day.month())), 2);
    out.push('-');
    digits(&mut out, u32::from(day.day()), 2);
    out
}

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

/// What a recent-interactions read needs of a decision-log entry (the rest
/// of the entry is skipped unparsed).
#[derive(Deserialize)]
struct RecentEntry {
    input: InteractionInput,
    decision: DecidedAt,
}

#[derive(Deserialize)]
struct DecidedAt {
    #[serde(with = "time::serde::rfc3339")]
    decided_at: OffsetDateTime,
}

/// A decision-log entry without its answer (field `d`); the commit script
/// writes the chosen answer beside it (field `a`), and [`log_entry`] joins
/// the two into a [`LoggedDecision`] without feedback.
#[derive(Serialize)]
struct LogHead<'a> {
    input: &'a InteractionInput,
    #[serde(skip_serializing_if = "Option::is_none")]
    shadow: Option<&'a ShadowChoice>,
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

type Bucket = HashMap<Cell, Counts>;

#[derive(Default)]
struct WindowCache {
    /// Merged buckets older than the previous hour: they no longer change.
    closed: BTreeMap<i64, Bucket>,
    /// (hours, last bucket, taken at, snapshot).
    snapshot: Option<(u32, i64, Instant, Arc<WindowStats>)>,
    /// Whether the last refresh failed (then callers do not wait for one).
    failing: bool,
}

struct DryPool {
    day: Date,
    version: u32,
    since: Instant,
}

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

enum Reply {
    Mismatch,
    Replay(String),
    /// The answer chosen, and the part of the reservation not spent.
    Recorded(String, i64),
    Short,
    /// One Redis: the day's pool cannot be opened (no shared policy).
    Uninitialised,
}

impl Reply {
    /// Reads the commit script's reply for one commit (see `lua/commit.lua`).
    fn parse(reply: Value) -> Result<Self, StoreError> {
        let reply = array(reply)?;
        let field = |i: usize| reply.get(i).and_then(text);
        match (field(0).as_deref(), field(1), field(2)) {
            (Some("mismatch"), _, _) => Ok(Reply::Mismatch),
            (Some("replay"), Some(j), _) => Ok(Reply::Replay(j)),
            (Some("short"), _, _) => Ok(Reply::Short),
            (Some("uninit"), _, _) => Ok(Reply::Uninitialised),
            // The script checked the commit's writes against the ACL
            // before the first one: nothing of it was recorded.
            (Some("noperm"), Some(why), _) => {
                Err(StoreError::Unavailable(format!("redis: NOPERM {why}")))
            }
            (Some("rec"), Some(choice), Some(unused)) => Ok(Reply::Recorded(
                choice,
                unused
                    .parse()
                    .map_err(|e| corrupt("unused reservation", e))?,
            )),
            _ => Err(StoreError::Corrupt(format!(
                "unexpected commit reply {reply:?}"
            ))),
        }
    }
}

enum Lease {
    Got,
    Short,
    Uninitialised,
}

/// A grant found no pool for `day` and could not open one: fail closed.
fn pool_uninitialised(day: Date) -> StoreError {
    StoreError::Unavailable(format!(
        "the budget pool for {day} cannot be opened: the store holds no shared policy (emptied?); perks are refused until a replica re-seeds it"
    ))
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

/// [`LogHead`]'s JSON, the same bytes serde writes, around the request's
/// JSON the service already made (`input_json`, see
/// [`write_recorded_json`]), in one buffer: the request is not serialised
/// a second time. `None` when it cannot be made that way.
fn log_head(
    input_json: &[u8],
    input: &InteractionInput,
    shadow: Option<&ShadowChoice>,
) -> Option<serde_json::Result<String>> {
    let mut head = Vec::with_capacity(input_json.len() + 48);
    head.extend_from_slice(b"{\"input\":");
    if !write_recorded_json(input_json, input, &mut head) {
        return None;
    }
    if let Some(shadow) = shadow {
        head.extend_from_slice(b",\"shadow\":");
        if let Err(e) = serde_json::to_writer(&mut head, shadow) {
            return Some(Err(e));
        }
    }
    head.push(b'}');
    String::from_utf8(head).ok().map(Ok)
}

/// `value` as JSON, in a buffer sized for it up front (the commit's
/// strings are a few KiB: growing them by doubling was measurable).
fn json_string<T: Serialize>(value: &T, capacity: usize) -> serde_json::Result<String> {
    let mut buf = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut buf, value)?;
    // serde_json writes valid UTF-8 only.
    Ok(String::from_utf8(buf).expect("serde_json writes UTF-8"))
}

fn is_noscript(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// One entry of an `XRANGE`/`XREVRANGE` reply: its id and its (field,
/// value) pairs.
fn stream_entry(entry: Value, key: &str) -> Result<(String, Vec<(String, String)>), StoreError> {
    let mut parts = array(entry)?.into_iter();
    let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
        return Err(StoreError::Corrupt(format!("stream entry of {key}")));
    };
    let id = text(&id).ok_or_else(|| StoreError::Corrupt("stream id".into()))?;
    let pairs = array(fields)?
        .chunks(2)
        .filter_map(|p| Some((text(p.first()?)?, text(p.get(1)?)?)))
        .collect();
    Ok((id, pairs))
}

/// A decision-log entry's time (`t`, Unix milliseconds).
fn log_time(fields: &[(String, String)]) -> Result<i64, StoreError> {
    field(fields, "t")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| StoreError::Corrupt("decision log entry time".into()))
}

/// A decision-log entry's JSON: request, answer and shadow choice. The
/// commit writes the answer as field `a` beside the rest (`d`,
/// `{"input":…,"shadow":…}`) and this joins them as
/// `{"input":…,"shadow":…,"decision":<a>}`; entries written before the
/// split hold the whole document in `d`.
fn log_entry(fields: &[(String, String)]) -> Result<Cow<'_, str>, StoreError> {
    let corrupt = || StoreError::Corrupt("decision log entry".into());
    let d = field(fields, "d").ok_or_else(corrupt)?;
    let Some(answer) = field(fields, "a") else {
        return Ok(Cow::Borrowed(d));
    };
    let head = d
        .strip_suffix('}')
        .filter(|h| h.starts_with('{') && h.len() > 1)
        .ok_or_else(corrupt)?;
    Ok(Cow::Owned(format!("{head},\"decision\":{answer}}}")))
}

/// The value of field `name` of a stream entry.
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_str())
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
                    Connection::Cluster(Box::new(ClusterState {
                        client,
                        conn: ArcSwapOption::empty(),
                        connecting: tokio::sync::Mutex::new(()),
                    })),
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

impl Inner {
    /// Never lets a secret through in an error message.
    fn scrub(&self, mut msg: String) -> String {
        for s in &self.secrets {
            if msg.contains(s.as_str()) {
                msg = msg.replace(s.as_str(), "<redacted>");
            }
        }
        msg
    }

    fn unavailable(&self, e: RedisError) -> StoreError {
        let msg = self.scrub(format!("redis: {e}"));
        if e.is_timeout() || e.is_connection_refusal() {
            self.trip(&msg);
        } else if e.is_io_error() || e.is_connection_dropped() {
            // A connection Redis closed (its idle `timeout`, `CLIENT KILL`,
            // a proxy's idle cut) fails the one call that finds it, and the
            // connection manager reconnects for the next: only a `PING`
            // failing too means Redis is unusable (TESTPLAN F10: one
            // degraded answer, not a breaker's 100 ms of them).
            self.suspect(msg.clone());
        }
        StoreError::Unavailable(msg)
    }

    /// Fails at once while Redis is known unusable.
    fn check_breaker(&self) -> Result<(), StoreError> {
        match &*self.breaker.lock() {
            Some(why) => Err(StoreError::Unavailable(format!(
                "Redis unusable ({why}); waiting for it to answer again"
            ))),
            None => Ok(()),
        }
    }

    /// Opens the breaker and starts the probe that closes it: a `PING`
    /// answered within the call budget, tried every [`PROBE_EVERY`].
    fn trip(&self, why: &str) {
        {
            let mut b = self.breaker.lock();
            if b.is_none() {
                tracing::warn!(reason = %why, "Redis unusable: decisions fail closed until it answers again");
            }
            *b = Some(why.to_string());
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (Some(me), Ok(rt)) = (self.me.upgrade(), tokio::runtime::Handle::try_current()) else {
            self.probing.store(false, Ordering::Release);
            return;
        };
        rt.spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                let ping = tokio::time::timeout(me.cfg.call_budget, me.probe()).await;
                if matches!(ping, Ok(Ok(()))) {
                    *me.breaker.lock() = None;
                    me.slow_commits.store(0, Ordering::Relaxed);
                    me.probing.store(false, Ordering::Release);
                    tracing::info!("Redis answers again");
                    return;
                }
                if Arc::strong_count(&me) == 1 {
                    // The store was dropped: nobody needs the answer.
                    me.probing.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }

    /// Slow commits may mean a slow Redis or a busy replica, and a dropped
    /// connection a Redis that went away or one that closed an idle
    /// connection: a `PING` within the call budget tells them apart, and
    /// only a failed one opens the breaker (a CPU-starved replica gains
    /// nothing from failing fast).
    fn suspect(&self, why: String) {
        if self.breaker.lock().is_some() || self.suspecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (Some(me), Ok(rt)) = (self.me.upgrade(), tokio::runtime::Handle::try_current()) else {
            self.suspecting.store(false, Ordering::Release);
            return;
        };
        rt.spawn(async move {
            let ping = tokio::time::timeout(me.cfg.call_budget, me.probe()).await;
            if matches!(ping, Ok(Ok(()))) {
                me.slow_commits.store(0, Ordering::Relaxed);
            } else {
                me.trip(&why);
            }
            me.suspecting.store(false, Ordering::Release);
        });
    }

    /// A `PING` that does not trip the breaker again.
    async fn probe(&self) -> Result<(), RedisError> {
        let cmd = redis::cmd("PING");
        match &self.conn {
            Connection::Single(m) => cmd.query_async::<Value>(&mut m.clone()).await.map(|_| ()),
            Connection::Cluster(cs) => {
                let ClusterState {
                    client,
                    conn,
                    connecting,
                } = &**cs;
                let c = match conn.load_full() {
                    Some(c) => (*c).clone(),
                    None => {
                        let _guard = connecting.lock().await;
                        let c = client.get_async_connection().await?;
                        conn.store(Some(Arc::new(c.clone())));
                        c
                    }
                };
                cmd.query_async::<Value>(&mut c.clone()).await.map(|_| ())
            }
        }
    }

    async fn cluster_conn(
        &self,
        client: &ClusterClient,
        conn: &ArcSwapOption<ClusterConnection>,
        connecting: &tokio::sync::Mutex<()>,
    ) -> Result<ClusterConnection, StoreError> {
        if let Some(c) = conn.load_full() {
            return Ok((*c).clone());
        }
        let _guard = connecting.lock().await;
        if let Some(c) = conn.load_full() {
            return Ok((*c).clone());
        }
        let c = client
            .get_async_connection()
            .await
            .map_err(|e| self.unavailable(e))?;
        conn.store(Some(Arc::new(c.clone())));
        Ok(c)
    }

    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.raw_query(cmd).await?.map_err(|e| self.unavailable(e))
    }

    /// `cmd`, with Redis's own error inside (the caller tells a missing
    /// script from an unusable Redis); outside, a cluster connection that
    /// could not be made.
    async fn raw_query<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
    ) -> Result<Result<T, RedisError>, StoreError> {
        Ok(cmd.query_async(&mut self.handle().await?).await)
    }

    /// `pipe`'s replies; outside, as for [`Self::raw_query`].
    async fn pipeline<T: FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<Result<T, RedisError>, StoreError> {
        Ok(pipe.query_async(&mut self.handle().await?).await)
    }

    /// Loads `script` (after Redis lost it: restarted or flushed).
    async fn load(&self, script: &Script) -> Result<(), StoreError> {
        script
            .load_async(&mut self.handle().await?)
            .await
            .map(drop)
            .map_err(|e| self.unavailable(e))
    }

    async fn invoke(&self, inv: &ScriptInvocation<'_>) -> Result<Value, StoreError> {
        inv.invoke_async(&mut self.handle().await?)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// A connection to send calls on (a Cluster connection is made on
    /// first use).
    async fn handle(&self) -> Result<Handle, StoreError> {
        match &self.conn {
            Connection::Single(m) => Ok(Handle::Single(m.clone())),
            Connection::Cluster(cs) => {
                let ClusterState {
                    client,
                    conn,
                    connecting,
                } = &**cs;
                Ok(Handle::Cluster(
                    self.cluster_conn(client, conn, connecting).await?,
                ))
            }
        }
    }

    /// Checks once per process that every replica agrees on the layout.
    async fn gate(&self) -> Result<(), StoreError> {
        if self.layout_ok.load(Ordering::Acquire) {
            return Ok(());
        }
        let mine = self.keys.layout_value();
        let mut inv = LAYOUT.prepare_invoke();
        inv.key(self.keys.layout()).arg(&mine);
        let stored = text(&self.invoke(&inv).await?).unwrap_or_default();
        if stored != mine {
            tracing::error!(
                stored = %stored,
                mine = %mine,
                "Redis key layout differs from this replica's: refusing to use the store"
            );
            return Err(StoreError::Corrupt(format!(
                "Redis key layout is {stored:?}, this replica uses {mine:?}"
            )));
        }
        // Load every script now, so the first decisions do not pay the
        // NOSCRIPT → SCRIPT LOAD → EVALSHA round trips (a restarted Redis has
        // none loaded; `invoke` then falls back the same way).
        for script in [
            &*COMMIT,
            &*LEASE,
            &*RETURN_TO_POOL,
            &*READ_HASHES,
            &*REPLACE_POLICY,
            &*FEEDBACK,
        ] {
            self.load(script).await?;
        }
        self.layout_ok.store(true, Ordering::Release);
        Ok(())
    }

    /// The `EVALSHA` of one commit script call for `rounds` (one commit, or
    /// a batch's commits of one day, and of one shard on a Cluster): each
    /// with the reservation it holds and whether the pool is known dry. On
    /// one Redis the day's pool and the policy go along, so a grant takes
    /// its value in the same call.
    fn commit_cmd(&self, rounds: &[Round<'_>]) -> Cmd {
        let pool_here = !self.cluster;
        let bytes = rounds
            .iter()
            .map(|r| {
                let p = r.prepared;
                p.keys.iter().map(String::len).sum::<usize>()
                    + p.answers.iter().map(String::len).sum::<usize>()
                    + p.log_head.len()
                    + p.grant_entry.len()
                    + p.cells.iter().map(String::len).sum::<usize>()
                    + 400
            })
            .sum::<usize>()
            + 300;
        let args = rounds
            .iter()
            .map(|r| KEYS_PER_COMMIT + ARGS_PER_COMMIT + r.prepared.cells.len())
            .sum::<usize>();
        let mut cmd = Cmd::with_capacity(12 + args, bytes);
        cmd.arg("EVALSHA")
            .arg(COMMIT.get_hash())
            .arg(KEYS_PER_COMMIT * rounds.len() + if pool_here { 2 } else { 0 });
        for r in rounds {
            for k in &r.prepared.keys {
                cmd.arg(k);
            }
        }
        if pool_here {
            // Callers group commits by day, so the first one's pool is every one's.
            let day = rounds
                .first()
                .map_or(OffsetDateTime::UNIX_EPOCH.date(), |r| r.prepared.day);
            cmd.arg(self.keys.pool(day)).arg(self.keys.policy());
        }
        cmd.arg(rounds.len())
            .arg(ms(IDEMPOTENCY_TTL.unsigned_abs()))
            .arg(ms(SPEND_TTL))
            .arg(ms(GRANT_LOG_TTL))
            .arg(ms(FEEDBACK_HORIZON.unsigned_abs()) + 86_400_000)
            .arg(DECISION_LOG_KEPT)
            .arg(ms(DECISION_LOG_TTL));
        for r in rounds {
            let p = r.prepared;
            cmd.arg(p.cells.len())
                .arg(&p.hash)
                .arg(p.now_ms)
                .arg(p.value)
                .arg(p.perks_cap)
                .arg(p.value_cap)
                .arg(p.cutoff_ms)
                .arg(p.ledger_ttl)
                .arg(r.reserved)
                .arg(if r.pool_dry { "1" } else { "0" })
                .arg(p.window_ttl)
                .arg(&p.decision_id)
                .arg(&p.idem_ref)
                .arg(&p.grant_entry)
                .arg(&p.answers[0])
                .arg(&p.answers[1])
                .arg(&p.answers[2])
                .arg(&p.log_head)
                .arg(p.daily)
                .arg(p.version);
            for c in &p.cells {
                cmd.arg(c);
            }
        }
        cmd
    }

    /// One commit script call for `rounds`: one reply per commit, in order.
    /// A call that fails as a whole fails every commit of it; some of them
    /// may still have been recorded (a timeout, or an error the script
    /// raised after its first commits), and a replay returns what was.
    async fn commit_call(
        &self,
        rounds: &[Round<'_>],
    ) -> Result<Vec<Result<Reply, StoreError>>, StoreError> {
        let cmd = self.commit_cmd(rounds);
        let reply = match self.raw_query::<Value>(&cmd).await? {
            Err(e) if is_noscript(&e) => {
                // A restarted Redis: load the script and call again (the
                // refused call ran nothing).
                self.load(&COMMIT).await?;
                self.raw_query::<Value>(&cmd).await?
            }
            r => r,
        }
        .map_err(|e| self.unavailable(e))?;
        let replies = array(reply)?;
        if replies.len() != rounds.len() {
            return Err(StoreError::Corrupt(format!(
                "the commit script answered {} replies for {} commits",
                replies.len(),
                rounds.len()
            )));
        }
        Ok(replies.into_iter().map(Reply::parse).collect())
    }

    /// One commit script call for one commit.
    async fn commit_once(
        &self,
        p: &Prepared,
        reserved: i64,
        pool_dry: bool,
    ) -> Result<Reply, StoreError> {
        let round = Round {
            prepared: p,
            reserved,
            pool_dry,
        };
        self.commit_call(std::slice::from_ref(&round))
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Corrupt("no commit reply".into())))
    }

    /// Reserves `amount` from the day's pool.
    async fn reserve(
        &self,
        day: Date,
        daily: i64,
        version: u32,
        amount: i64,
    ) -> Result<Lease, StoreError> {
        let mut inv = LEASE.prepare_invoke();
        inv.key(self.keys.pool(day))
            .key(self.keys.policy())
            .arg(daily)
            .arg(version)
            .arg(amount)
            .arg(ms(SPEND_TTL));
        let reply = array(self.invoke(&inv).await?)?;
        match reply.first().and_then(text).as_deref() {
            Some("ok") => Ok(Lease::Got),
            Some("short") => Ok(Lease::Short),
            Some("uninit") => Ok(Lease::Uninitialised),
            _ => Err(StoreError::Corrupt(format!(
                "unexpected reservation reply {reply:?}"
            ))),
        }
    }

    /// Hands an unused reservation back to the day's pool. Failing to is
    /// under-spend, never over-spend, so it is logged, not raised.
    async fn hand_back(&self, day: Date, amount: i64) {
        if amount <= 0 {
            return;
        }
        let mut inv = RETURN_TO_POOL.prepare_invoke();
        inv.key(self.keys.pool(day)).arg(amount);
        if let Err(e) = self.invoke(&inv).await {
            tracing::warn!(error = %e, amount_milli = amount, "could not hand an unused budget reservation back: the day under-spends by it");
        }
    }

    fn pool_known_dry(&self, day: Date, version: u32) -> bool {
        let memory = self.cfg.dry_pool_memory;
        self.dry
            .lock()
            .as_ref()
            .is_some_and(|d| d.day == day && d.version == version && d.since.elapsed() < memory)
    }

    fn mark_dry(&self, day: Date, version: u32) {
        *self.dry.lock() = Some(DryPool {
            day,
            version,
            since: Instant::now(),
        });
    }

    async fn commit(&self, c: Commit) -> Result<CommitOutcome, StoreError> {
        self.gate().await?;
        let mut p = Prepared::new(&c, &self.keys)?;
        // A pool known to be dry refuses at once: no `short` round trip.
        let dry = self.pool_known_dry(p.day, p.version);
        let first = self.commit_once(&p, 0, dry).await?;
        self.settle(c, &mut p, first, dry).await
    }

    /// Commits in order, their first calls sent together: in one pipeline on
    /// one Redis (where each call settles itself, grants included), in one
    /// per shard on a Cluster (a pipeline must stay in one slot there). On a
    /// Cluster the later rounds of those that need a reservation (`short`)
    /// then run one commit at a time, in input order. That keeps every
    /// outcome one of a sequential order: a Cluster's first call never
    /// grants (it holds no reservation), a refusal by the cap it makes
    /// stands (a grant an earlier `short` commit gets later only adds to the
    /// ledger), and commits of one customer keep their order in its shard.
    async fn commit_all(&self, commits: Vec<Commit>) -> Vec<Result<CommitOutcome, StoreError>> {
        if let Err(e) = self.gate().await {
            return vec![Err(e); commits.len()];
        }
        let prepared: Vec<Result<Prepared, StoreError>> = commits
            .iter()
            .map(|c| Prepared::new(c, &self.keys))
            .collect();
        // One call per day's pool, and per shard on a Cluster (a script's
        // keys must stay in one slot there).
        let mut groups: BTreeMap<(u16, Date), Vec<usize>> = BTreeMap::new();
        for (i, p) in prepared.iter().enumerate() {
            if let Ok(p) = p {
                let shard = if self.cluster { p.shard } else { 0 };
                groups.entry((shard, p.day)).or_default().push(i);
            }
        }
        let mut firsts: Vec<Option<Result<(Reply, bool), StoreError>>> =
            (0..commits.len()).map(|_| None).collect();
        let calls = groups
            .into_values()
            .map(|group| self.first_calls(&prepared, group));
        for replies in join_all(calls).await {
            for (i, reply) in replies {
                firsts[i] = Some(reply);
            }
        }
        let mut out = Vec::with_capacity(commits.len());
        for ((c, p), first) in commits.into_iter().zip(prepared).zip(firsts) {
            out.push(match (p, first) {
                (Ok(mut p), Some(Ok((first, dry)))) => self.settle(c, &mut p, first, dry).await,
                (Err(e), _) | (_, Some(Err(e))) => Err(e),
                (Ok(_), None) => Err(StoreError::Corrupt(
                    "a commit of the batch was not sent".into(),
                )),
            });
        }
        out
    }

    /// The first calls (no reservation) of the commits `group` of
    /// `prepared`, in one script call.
    async fn first_calls(
        &self,
        prepared: &[Result<Prepared, StoreError>],
        group: Vec<usize>,
    ) -> Vec<(usize, Result<(Reply, bool), StoreError>)> {
        // A pool known to be dry refuses at once, as in `commit`.
        let (index, rounds): (Vec<usize>, Vec<Round<'_>>) = group
            .iter()
            .filter_map(|&i| {
                let p = prepared[i].as_ref().ok()?;
                Some((
                    i,
                    Round {
                        prepared: p,
                        reserved: 0,
                        pool_dry: self.pool_known_dry(p.day, p.version),
                    },
                ))
            })
            .unzip();
        match self.commit_call(&rounds).await {
            Ok(replies) => index
                .into_iter()
                .zip(rounds.iter().zip(replies))
                .map(|(i, (r, reply))| (i, reply.map(|reply| (reply, r.pool_dry))))
                .collect(),
            Err(e) => index.into_iter().map(|i| (i, Err(e.clone()))).collect(),
        }
    }

    /// The rounds of a commit, from the reply of its first call (made
    /// without a reservation, `pool_dry` as given): reserve and call again
    /// on `short`, hand back what a call did not spend.
    async fn settle(
        &self,
        c: Commit,
        p: &mut Prepared,
        first: Reply,
        pool_dry: bool,
    ) -> Result<CommitOutcome, StoreError> {
        let day = p.day;
        let mut reserved = 0;
        let mut pool_dry = pool_dry;
        let mut next = Some(first);
        for round in 0..COMMIT_ROUNDS {
            let reply = match next.take() {
                Some(reply) => reply,
                None => self.commit_once(p, reserved, pool_dry).await?,
            };
            let unused = match &reply {
                Reply::Recorded(_, unused) => *unused,
                Reply::Short | Reply::Uninitialised => 0,
                Reply::Mismatch | Reply::Replay(_) => reserved,
            };
            self.hand_back(day, unused).await;
            match reply {
                Reply::Mismatch => return Ok(CommitOutcome::Mismatch),
                Reply::Replay(j) => {
                    let d: Decision =
                        serde_json::from_str(&j).map_err(|e| corrupt("stored decision", e))?;
                    return Ok(CommitOutcome::Replayed(d));
                }
                Reply::Recorded(choice, _) => {
                    let d = match choice.as_str() {
                        "granted" => c.granted,
                        "cap" => p.refused[0]
                            .take()
                            .unwrap_or_else(|| c.refusals.render(RefusedBy::Cap)),
                        "budget" => p.refused[1]
                            .take()
                            .unwrap_or_else(|| c.refusals.render(RefusedBy::Budget)),
                        other => {
                            return Err(StoreError::Corrupt(format!(
                                "unknown commit choice {other:?}"
                            )))
                        }
                    };
                    return Ok(CommitOutcome::Recorded(d));
                }
                Reply::Short => {
                    // The last round settles for a refusal (it never says short).
                    reserved = 0;
                    if round + 2 >= COMMIT_ROUNDS || self.pool_known_dry(day, p.version) {
                        pool_dry = true;
                        continue;
                    }
                    match self.reserve(day, p.daily, p.version, p.value).await? {
                        Lease::Got => reserved = p.value,
                        Lease::Short => {
                            self.mark_dry(day, p.version);
                            pool_dry = true;
                        }
                        Lease::Uninitialised => return Err(pool_uninitialised(day)),
                    }
                }
                Reply::Uninitialised => return Err(pool_uninitialised(day)),
            }
        }
        Err(StoreError::Unavailable(
            "the commit did not settle within its rounds".into(),
        ))
    }

    /// The newest decisions of shard `k`'s log made at or after `since`,
    /// newest first, at most `limit`: read backwards, stopping at the first
    /// entry older than `since`.
    async fn recent_of_shard(
        &self,
        k: u16,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<RecentEntry>, StoreError> {
        // `t` is the decision time in whole milliseconds: entries of the
        // millisecond of `since` are parsed and compared exactly.
        let since_ms = unix_ms(since);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let page = limit.min(RECENT_PAGE);
        self.scan_stream(&self.keys.log(k), true, page, |fields| {
            if log_time(&fields)? < since_ms {
                return Ok(ControlFlow::Break(()));
            }
            let e: RecentEntry = serde_json::from_str(&log_entry(&fields)?)
                .map_err(|e| corrupt("decision log entry", e))?;
            if e.decision.decided_at >= since {
                out.push(e);
            }
            Ok(if out.len() < limit {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            })
        })
        .await?;
        Ok(out)
    }

    /// Every entry of a stream, oldest first, as (field, value) pairs.
    async fn read_stream(&self, key: String) -> Result<Vec<Vec<(String, String)>>, StoreError> {
        let mut out = Vec::new();
        self.scan_stream(&key, false, LOG_PAGE, |fields| {
            out.push(fields);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(out)
    }

    /// Hands the entries of stream `key` to `visit`, oldest first
    /// (`XRANGE`) or newest first (`XREVRANGE`), read in pages of `page` so
    /// no single reply is huge, until `visit` breaks or the stream ends.
    async fn scan_stream(
        &self,
        key: &str,
        newest_first: bool,
        page: usize,
        mut visit: impl FnMut(Vec<(String, String)>) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        let (command, mut from, to) = if newest_first {
            ("XREVRANGE", "+".to_string(), "-")
        } else {
            ("XRANGE", "-".to_string(), "+")
        };
        loop {
            let cmd = redis::cmd(command)
                .arg(key)
                .arg(&from)
                .arg(to)
                .arg("COUNT")
                .arg(page)
                .to_owned();
            let entries = array(self.query::<Value>(&cmd).await?)?;
            let n = entries.len();
            for entry in entries {
                let (id, fields) = stream_entry(entry, key)?;
                // Exclusive: the next page starts after this entry.
                from = format!("({id}");
                if visit(fields)?.is_break() {
                    return Ok(());
                }
            }
            if n < page {
                return Ok(());
            }
        }
    }

    /// The decision log of one shard since `since_ms`, and its feedback.
    async fn shard_log(
        &self,
        k: u16,
        since_ms: i64,
    ) -> Result<(Vec<LoggedDecision>, Vec<Feedback>), StoreError> {
        let mut log = Vec::new();
        for entry in self.read_stream(self.keys.log(k)).await? {
            if log_time(&entry)? < since_ms {
                continue;
            }
            log.push(
                serde_json::from_str(&log_entry(&entry)?)
                    .map_err(|e| corrupt("decision log entry", e))?,
            );
        }
        let mut feedback = Vec::new();
        for entry in self.read_stream(self.keys.feedback_log(k)).await? {
            let f = field(&entry, "f")
                .ok_or_else(|| StoreError::Corrupt("feedback log entry".into()))?;
            feedback.push(serde_json::from_str(f).map_err(|e| corrupt("feedback log entry", e))?);
        }
        Ok((log, feedback))
    }

    /// Reads hour buckets of every shard and merges them per bucket.
    async fn read_buckets(&self, buckets: &[i64]) -> Result<HashMap<i64, Bucket>, StoreError> {
        let mut calls = Vec::new();
        for k in 0..self.keys.shards {
            for chunk in buckets.chunks(KEYS_PER_READ) {
                calls.push(async move {
                    let mut inv = READ_HASHES.prepare_invoke();
                    for b in chunk {
                        inv.key(self.keys.window(k, *b));
                    }
                    let hashes = array(self.invoke(&inv).await?)?;
                    Ok::<_, StoreError>(chunk.iter().copied().zip(hashes).collect::<Vec<_>>())
                });
            }
        }
        let mut merged: HashMap<i64, Bucket> = HashMap::new();
        for r in join_all(calls).await {
            for (b, hash) in r? {
                let into = merged.entry(b).or_default();
                let flat = array(hash)?;
                for pair in flat.chunks(2) {
                    let (Some(f), Some(n)) =
                        (pair.first().and_then(text), pair.get(1).and_then(text))
                    else {
                        continue;
                    };
                    let n: i64 = n.parse().map_err(|e| corrupt("window counter", e))?;
                    let (kind, cell) = f
                        .split_once('|')
                        .ok_or_else(|| StoreError::Corrupt(format!("window field {f:?}")))?;
                    let cell: Cell =
                        serde_json::from_str(cell).map_err(|e| corrupt("window cell", e))?;
                    let e = into.entry(cell).or_default();
                    match kind {
                        "d" => e.decisions += n.max(0) as u64,
                        "p" => e.perks += n.max(0) as u64,
                        "v" => e.value += from_milli(n),
                        _ => {}
                    }
                }
            }
        }
        Ok(merged)
    }

    /// A window snapshot. With `cache`, buckets older than the previous hour
    /// are read once and kept.
    async fn read_window(
        &self,
        now: OffsetDateTime,
        hours: u32,
        cache: bool,
    ) -> Result<WindowStats, StoreError> {
        let last = bucket_of(now);
        let first = last - i64::from(hours.max(1)) + 1;
        let need: Vec<i64> = {
            let w = self.window.lock();
            (first..=last)
                .filter(|b| !cache || *b >= last - 1 || !w.closed.contains_key(b))
                .collect()
        };
        let fresh = self.read_buckets(&need).await?;
        let mut totals: BTreeMap<Cell, Counts> = BTreeMap::new();
        let mut add = |bucket: &Bucket| {
            for (cell, c) in bucket {
                totals.entry(cell.clone()).or_default().add(*c);
            }
        };
        if cache {
            let mut w = self.window.lock();
            for (b, bucket) in &fresh {
                if *b < last - 1 {
                    w.closed.insert(*b, bucket.clone());
                }
            }
            w.closed = w.closed.split_off(&first);
            for b in first..=last {
                if let Some(bucket) = fresh.get(&b).or_else(|| w.closed.get(&b)) {
                    add(bucket);
                }
            }
        } else {
            for bucket in fresh.values() {
                add(bucket);
            }
        }
        totals.retain(|_, c| c.decisions > 0);
        Ok(WindowStats { cells: totals })
    }
}

/// Keys of one commit in a commit script call (see `lua/commit.lua`).
const KEYS_PER_COMMIT: usize = 7;
/// Arguments of one commit in a commit script call, before its cells.
const ARGS_PER_COMMIT: usize = 20;

/// One commit in a commit script call: what it sends, the reservation it
/// holds and whether the day's pool is known dry.
struct Round<'a> {
    prepared: &'a Prepared,
    reserved: i64,
    pool_dry: bool,
}

/// Everything a commit sends, built once for all its rounds.
struct Prepared {
    shard: u16,
    /// The UTC day of the decision (its budget pool).
    day: Date,
    keys: [String; KEYS_PER_COMMIT],
    hash: String,
    now_ms: i64,
    value: i64,
    perks_cap: u32,
    value_cap: i64,
    cutoff_ms: i64,
    ledger_ttl: i64,
    daily: i64,
    version: u32,
    window_ttl: i64,
    decision_id: String,
    /// `<customer>:<interaction>`: what the decision id finds (field `r`
    /// of the feedback record).
    idem_ref: String,
    grant_entry: String,
    /// Granted, refused by the cap, refused by the budget; the refusals are
    /// empty when no gesture was requested (the script cannot choose them),
    /// which keeps a third of the bytes out of most commits.
    answers: [String; 3],
    /// A gesture's refusals by the cap and by the budget, rendered for
    /// `answers` and handed out when recorded. Sending fewer answers and
    /// letting the script ask for a missing one was tried (BENCHMARKS.md,
    /// session 15): the likely answer alone took 2.5 µs of server and
    /// 1.4 µs of Redis CPU off a batch item, but made every cap refusal two
    /// round trips, past the call budget when Redis is a network hop away;
    /// with the cap's refusal sent too, the gain was within the noise.
    refused: [Option<Decision>; 2],
    /// The decision-log entry without the answer (field `d`; see
    /// [`log_entry`]).
    log_head: String,
    cells: Vec<String>,
}

impl Prepared {
    fn new(c: &Commit, keys: &Keys) -> Result<Self, StoreError> {
        let shard = keys.shard_of(&c.customer_id);
        let day = utc_day(c.now);
        let bucket = bucket_of(c.now);
        let now_ms = unix_ms(c.now);
        let hours = i64::from(c.window_hours.max(1));
        let json = |d: &Decision| json_string(d, 1536).map_err(|e| corrupt("decision", e));
        let (value, perks_cap, value_cap, cap_ms, daily) = match &c.grant {
            Some(g) => (
                milli(g.value).max(0),
                g.caps.perks_per_customer,
                milli(g.caps.max_value_per_customer),
                i64::from(g.caps.window_days) * 86_400_000,
                milli(g.daily_budget),
            ),
            None => (-1, 0, 0, 0, 0),
        };
        // The bucket leaves the window at (bucket + hours) h; keep one more hour.
        let window_ttl = ((bucket + hours + 1) * 3_600_000 - now_ms).max(3_600_000);
        let grant_entry = match &c.grant {
            Some(_) => serde_json::to_string(&GrantRecord {
                decision_id: c.granted.decision_id,
                interaction_id: c.interaction_id.to_string(),
                customer_id: c.customer_id.to_string(),
                value_milli: value,
                at: c.now,
            })
            .map_err(|e| corrupt("grant entry", e))?,
            None => String::new(),
        };
        let log_head = match log_head(&c.input_json, &c.input, c.shadow.as_ref()) {
            Some(head) => head,
            None => json_string(
                &LogHead {
                    input: &c.input,
                    shadow: c.shadow.as_ref(),
                },
                1024,
            ),
        }
        .map_err(|e| corrupt("decision log entry", e))?;
        let cells = c
            .cells
            .iter()
            .map(|cell| serde_json::to_string(cell).map_err(|e| corrupt("cell", e)))
            .collect::<Result<Vec<_>, _>>()?;
        // The script picks the answer inside Redis, so a gesture's refusals
        // are all rendered and sent (sending one and asking for the others
        // was tried: see `Prepared::refused`).
        let refused = match c.grant {
            Some(_) => [
                Some(c.refusals.render(RefusedBy::Cap)),
                Some(c.refusals.render(RefusedBy::Budget)),
            ],
            None => [None, None],
        };
        Ok(Self {
            shard,
            day,
            keys: [
                keys.idem(shard, &c.customer_id, &c.interaction_id),
                keys.ledger(shard, &c.customer_id),
                keys.spent(shard, day),
                keys.grants(shard, day),
                keys.window(shard, bucket),
                keys.feedback(shard, c.granted.decision_id),
                keys.log(shard),
            ],
            hash: hex::encode(c.body_hash),
            now_ms,
            value,
            perks_cap,
            value_cap,
            cutoff_ms: now_ms - cap_ms,
            ledger_ttl: cap_ms + 86_400_000,
            daily,
            version: c.granted.policy_version,
            window_ttl,
            decision_id: c
                .granted
                .decision_id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .to_owned(),
            idem_ref: [c.customer_id.as_str(), ":", c.interaction_id.as_str()].concat(),
            grant_entry,
            answers: match &refused {
                [Some(cap), Some(budget)] => [json(&c.granted)?, json(cap)?, json(budget)?],
                _ => [json(&c.granted)?, String::new(), String::new()],
            },
            refused,
            log_head,
            cells,
        })
    }
}

/// Recent interactions kept per shard: twice the fair share of
/// [`RECENT_INTERACTIONS_KEPT`] read from each shard's decision log, so the
/// merged newest entries are exact when customers spread over shards, and a
/// what-if read stays bounded.
fn recent_per_shard(shards: u16) -> usize {
    (2 * RECENT_INTERACTIONS_KEPT).div_ceil(usize::from(shards.max(1)))
}

/// A future that, when dropped before completion (its caller's deadline
/// passed), is spawned to run to completion instead of being cancelled.
struct FinishOnDrop<T: Send + 'static> {
    fut: Option<std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>>,
}

impl<T: Send + 'static> FinishOnDrop<T> {
    fn new(fut: impl std::future::Future<Output = T> + Send + 'static) -> Self {
        Self {
            fut: Some(Box::pin(fut)),
        }
    }
}

impl<T: Send + 'static> std::future::Future for FinishOnDrop<T> {
    type Output = T;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        let Some(fut) = self.fut.as_mut() else {
            return std::task::Poll::Pending;
        };
        let out = fut.as_mut().poll(cx);
        if out.is_ready() {
            self.fut = None;
        }
        out
    }
}

impl<T: Send + 'static> Drop for FinishOnDrop<T> {
    fn drop(&mut self) {
        if let (Some(fut), Ok(rt)) = (self.fut.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let _ = fut.await;
            });
        }
    }
}

impl RedisStore {
    /// Runs `work` (one commit or several), waiting for it at most
    /// `budget`. If the caller gives up (its deadline passed) or the budget
    /// runs out, the work is finished in the background instead of being
    /// dropped, so a reservation taken from the pool is spent or handed
    /// back, and the unknown outcome settles quickly for a replay.
    async fn run_commits<T, F, Fut>(&self, budget: Duration, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let inner = self.inner.clone();
        let work = work(inner.clone());
        let finishing = FinishOnDrop::new(async move {
            match tokio::time::timeout(COMMIT_TASK_LIMIT, work).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Unavailable(format!(
                    "the commit did not finish within {} s",
                    COMMIT_TASK_LIMIT.as_secs()
                ))),
            }
        });
        match tokio::time::timeout(budget, finishing).await {
            Ok(r) => {
                inner.slow_commits.store(0, Ordering::Relaxed);
                r
            }
            Err(_) => {
                // Several in a row: Redis may hang or be too slow to be useful.
                if inner.slow_commits.fetch_add(1, Ordering::Relaxed) + 1 >= SLOW_COMMITS_TO_TRIP {
                    inner.suspect(format!("commits slower than {} ms", budget.as_millis()));
                }
                Err(StoreError::Unavailable(format!(
                    "no commit within {} ms (it may still be recorded: replay the interaction id)",
                    budget.as_millis()
                )))
            }
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
        let inner = &self.inner;
        let ttl = inner.cfg.window_snapshot_ttl;
        if ttl.is_zero() {
            return self
                .bounded(async {
                    inner.gate().await?;
                    inner.read_window(now, hours, false).await.map(Arc::new)
                })
                .await;
        }
        let last = bucket_of(now);
        let (cached, failing) = {
            let w = inner.window.lock();
            let cached = w
                .snapshot
                .as_ref()
                .filter(|(h, _, _, _)| *h == hours)
                .map(|(_, l, at, s)| (*l == last && at.elapsed() < ttl, at.elapsed(), s.clone()));
            (cached, w.failing)
        };
        if let Some((true, _, stats)) = &cached {
            return Ok(stats.clone());
        }
        if let Err(e) = inner.check_breaker() {
            // Serve what there is; do not pile refreshes on a dead Redis.
            return match cached {
                Some((_, age, stats)) if age < MAX_SNAPSHOT_AGE => Ok(stats),
                _ => Err(e),
            };
        }
        // Refresh in the background, single flight; it completes even if
        // this caller's deadline passes.
        let handle = if !inner.refreshing.swap(true, Ordering::AcqRel) {
            let bg = inner.clone();
            Some(tokio::spawn(async move {
                let limit = bg.cfg.op_timeout.max(Duration::from_secs(2));
                let r = tokio::time::timeout(limit, async {
                    bg.gate().await?;
                    bg.read_window(now, hours, true).await.map(Arc::new)
                })
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable("window refresh timed out".into()))
                });
                {
                    let mut w = bg.window.lock();
                    match &r {
                        Ok(s) => {
                            w.snapshot = Some((hours, last, Instant::now(), s.clone()));
                            w.failing = false;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "window refresh failed");
                            w.failing = true;
                        }
                    }
                }
                bg.refreshing.store(false, Ordering::Release);
                r
            }))
        } else {
            None
        };
        match (cached, handle) {
            (Some((_, age, stats)), _) if age < MAX_SNAPSHOT_AGE => Ok(stats),
            // A replica's first snapshot: worth a short wait, not the
            // decision's whole deadline (the rule's norms stand in).
            (_, Some(h)) if !failing && inner.layout_ok.load(Ordering::Acquire) => {
                match tokio::time::timeout(FIRST_SNAPSHOT_WAIT, h).await {
                    Ok(r) => {
                        r.map_err(|e| StoreError::Unavailable(format!("window refresh: {e}")))?
                    }
                    Err(_) => Err(StoreError::Unavailable(
                        "the first window snapshot is still being read".into(),
                    )),
                }
            }
            _ => Err(StoreError::Unavailable(
                "no recent window snapshot (Redis unavailable)".into(),
            )),
        }
    }

    async fn recent_interactions(
        &self,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<InteractionInput>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let inner = self.inner.clone();
        let per_shard = limit.min(recent_per_shard(inner.keys.shards));
        self.bounded(async move {
            inner.gate().await?;
            let reads = (0..inner.keys.shards).map(|k| inner.recent_of_shard(k, since, per_shard));
            let mut all: Vec<RecentEntry> = Vec::new();
            for r in join_all(reads).await {
                all.extend(r?);
            }
            // Stable: entries of one shard decided in the same instant keep
            // their log order.
            all.sort_by_key(|e| std::cmp::Reverse(e.decision.decided_at));
            Ok(all.into_iter().take(limit).map(|e| e.input).collect())
        })
        .await
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
                let change = PolicyChange {
                    version: policy.version,
                    previous_version: stored.as_ref().map(|p| p.version).unwrap_or(0),
                    actor: "startup".into(),
                    at,
                    changes: stored.as_ref().map(|s| diff(s, policy)).unwrap_or_default(),
                    policy: policy.clone(),
                };
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
        let last = bucket_of(now);
        let first = last - i64::from(hours.max(1)) + 1;
        let inner = self.inner.clone();
        self.bounded(async move {
            inner.gate().await?;
            let need: Vec<i64> = (first..=last).collect();
            let buckets = inner.read_buckets(&need).await?;
            let mut series: Vec<(i64, Counts)> = buckets
                .into_iter()
                .filter_map(|(b, bucket)| {
                    let mut sum = Counts::default();
                    for (cell, c) in &bucket {
                        if matches!(cell, Cell::Peer { .. }) {
                            sum.add(*c);
                        }
                    }
                    (sum.decisions > 0).then_some((b, sum))
                })
                .collect();
            series.sort_by_key(|(b, _)| *b);
            Ok(series)
        })
        .await
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
        if limit == 0 {
            return Ok(Vec::new());
        }
        let inner = self.inner.clone();
        inner.check_breaker()?;
        let since_ms = unix_ms(since);
        let read = async move {
            inner.gate().await?;
            let reads = (0..inner.keys.shards).map(|k| inner.shard_log(k, since_ms));
            let mut log = Vec::new();
            let mut feedback: HashMap<Uuid, Feedback> = HashMap::new();
            for r in join_all(reads).await {
                let (l, f) = r?;
                log.extend(l);
                for f in f {
                    // Recorded once per decision; the first is the one kept.
                    feedback.entry(f.decision_id).or_insert(f);
                }
            }
            let mut log: Vec<LoggedDecision> = log
                .into_iter()
                .filter(|l: &LoggedDecision| l.decision.decided_at >= since)
                .map(|mut l| {
                    l.feedback = feedback.remove(&l.decision.decision_id);
                    l
                })
                .collect();
            log.sort_by_key(|l| l.decision.decided_at);
            log.truncate(limit);
            Ok(log)
        };
        // The whole log is many round trips: a longer bound than one call.
        tokio::time::timeout(LOG_READ_LIMIT, read)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "the decision log was not read within {} s",
                    LOG_READ_LIMIT.as_secs()
                )))
            })
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
    fn the_log_head_around_the_services_input_json_is_serdes_log_head() {
        let input = crate::domain::interaction::tests::sample_input();
        let shadow = ShadowChoice {
            model_version: "shadow-1".into(),
            action: "apologise_private".into(),
            gesture: None,
            propensity: 0.9,
            probabilities: vec![super::super::ActionProbability {
                action: "apologise_private".into(),
                probability: 0.9,
            }],
        };
        let json = serde_json::to_vec(&input).unwrap();
        for shadow in [None, Some(&shadow)] {
            let expected = json_string(
                &LogHead {
                    input: &input,
                    shadow,
                },
                0,
            )
            .unwrap();
            assert_eq!(log_head(&json, &input, shadow).unwrap().unwrap(), expected);
        }
    }

    #[test]
    fn the_shard_hash_is_stable_across_builds() {
        // FNV-1a test vectors: changing the hash would move every customer.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn every_key_of_a_commit_shares_one_hash_tag_and_keys_hold_no_stray_braces() {
        let keys = Keys::new("ft", 16);
        let c = CustomerId::parse("c", "c-42").unwrap();
        let i = InteractionId::parse("i", "crm-8812").unwrap();
        let k = keys.shard_of(&c);
        let day = Date::from_calendar_date(2026, time::Month::November, 20).unwrap();
        let all = [
            keys.idem(k, &c, &i),
            keys.dec(k, Uuid::nil()),
            keys.ledger(k, &c),
            keys.spent(k, day),
            keys.grants(k, day),
            keys.window(k, -3),
            keys.feedback(k, Uuid::nil()),
            keys.log(k),
            keys.feedback_log(k),
        ];
        let tag = format!("{{s{k}}}");
        for key in &all {
            assert!(key.starts_with("ft:"), "{key}");
            assert_eq!(key.matches('{').count(), 1, "{key}");
            assert!(key.contains(&tag), "{key}");
        }
    }

    #[test]
    fn key_names_are_the_stored_layouts_names() {
        // The names are data already in Redis: built without `format!`,
        // they must still be these, byte for byte.
        let keys = Keys::new("ft", 16);
        let c = CustomerId::parse("c", "c-42").unwrap();
        let i = InteractionId::parse("i", "crm-8812").unwrap();
        let id = Uuid::parse_str("5466C28C-9EDD-4BCD-AA6C-B22F9D4ACCE5").unwrap();
        let day = Date::from_calendar_date(2026, time::Month::March, 7).unwrap();
        let k = 9;
        assert_eq!(keys.idem(k, &c, &i), "ft:{s9}:idem:c-42:crm-8812");
        assert_eq!(
            keys.dec(k, id),
            "ft:{s9}:dec:5466c28c-9edd-4bcd-aa6c-b22f9d4acce5"
        );
        assert_eq!(
            keys.feedback(k, id),
            "ft:{s9}:fb:5466c28c-9edd-4bcd-aa6c-b22f9d4acce5"
        );
        assert_eq!(keys.ledger(k, &c), "ft:{s9}:led:c-42");
        assert_eq!(keys.spent(k, day), "ft:{s9}:spent:2026-03-07");
        assert_eq!(keys.grants(15, day), "ft:{s15}:grants:2026-03-07");
        assert_eq!(keys.window(0, 498_756), "ft:{s0}:w:498756");
        assert_eq!(keys.window(0, -3), "ft:{s0}:w:-3");
        assert_eq!(keys.log(k), "ft:{s9}:log");
        assert_eq!(keys.feedback_log(k), "ft:{s9}:fblog");
        assert_eq!(keys.pool(day), "ft:{meta}:pool:2026-03-07");
        assert_eq!(keys.shard(16, &["log"]), "ft:{s16}:log");
        for (y, m, d) in [
            (1000, 1, 1),
            (2026, 12, 31),
            (9999, 12, 31),
            (999, 6, 5),
            (-44, 3, 15),
        ] {
            let day = Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
            assert_eq!(day_name(day), day.to_string());
        }
    }

    #[test]
    fn cluster_urls_become_seed_nodes_with_their_credentials() {
        match parse_target("redis+cluster://u:p@127.0.0.1:7000,127.0.0.1:7001").unwrap() {
            Target::Cluster(nodes) => assert_eq!(
                nodes,
                ["redis://u:p@127.0.0.1:7000", "redis://u:p@127.0.0.1:7001"]
            ),
            Target::Single(_) => panic!("expected a cluster"),
        }
        assert!(matches!(
            parse_target("redis://a:1,redis://b:2").unwrap(),
            Target::Cluster(n) if n.len() == 2
        ));
        assert!(matches!(
            parse_target("redis://127.0.0.1:6379/0").unwrap(),
            Target::Single(_)
        ));
    }

    #[test]
    fn url_errors_and_debug_output_never_quote_the_url() {
        let secret = "redis+cluster://u:CANARY-REDIS-x@h:1/0";
        let e = parse_target(secret).err().expect("a database is refused");
        assert!(!e.to_string().contains("CANARY"), "{e}");
        let e = parse_target("http://u:CANARY-REDIS-x@h:1").err().unwrap();
        assert!(!e.to_string().contains("CANARY"), "{e}");
        let url = RedisUrl::new("redis://u:CANARY-REDIS-x@h:1");
        assert!(!format!("{url:?}").contains("CANARY"));
        let cfg = RedisConfig::new(url);
        assert!(!format!("{cfg:?}").contains("CANARY"));
    }

    #[test]
    fn a_decision_log_entry_joins_its_request_and_answer_fields_and_reads_older_entries_whole() {
        type Fields = [(String, String)];
        let pair = |f: &str, v: &str| (f.to_string(), v.to_string());
        let cases: [(&Fields, Option<&str>); 5] = [
            (
                &[
                    pair("t", "1"),
                    pair("d", r#"{"input":{"x":1}}"#),
                    pair("a", r#"{"y":2}"#),
                ],
                Some(r#"{"input":{"x":1},"decision":{"y":2}}"#),
            ),
            (
                &[pair("d", r#"{"input":{"x":1},"decision":{"y":2}}"#)],
                Some(r#"{"input":{"x":1},"decision":{"y":2}}"#),
            ),
            (&[pair("d", "{}"), pair("a", "{}")], None),
            (&[pair("d", r#""input""#), pair("a", "{}")], None),
            (&[pair("a", "{}")], None),
        ];
        for (fields, expected) in cases {
            match (log_entry(fields), expected) {
                (Ok(doc), Some(e)) => {
                    assert_eq!(doc, e);
                    serde_json::from_str::<serde_json::Value>(&doc).expect("valid JSON");
                }
                (Err(StoreError::Corrupt(_)), None) => {}
                (got, _) => panic!("{fields:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn amounts_round_to_thousandths() {
        assert_eq!(milli(33.0), 33_000);
        assert_eq!(milli(0.1) + milli(0.2), milli(0.3));
        assert_eq!(from_milli(12_500), 12.5);
    }
}
