//! A decision's commit: the arguments of the commit script, built once per
//! commit ([`Prepared`]); one script call for one commit or for a batch
//! chunk's commits; the rounds a grant needs on a Cluster (reserve from the
//! pool, call again, hand back what was not spent); and running commits to
//! completion when their caller stops waiting. The module documentation of
//! [`super`] says why it is shaped so.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::{Cmd, ErrorKind, RedisError, ServerErrorKind, Value};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::keys::Keys;
use super::log::commit_log_head;
use super::{
    array, corrupt, json_string, milli, ms, text, unix_ms, utc_day, DryPool, GrantRecord, Inner,
    RedisStore, COMMIT, DECISION_LOG_TTL, GRANT_LOG_TTL, LEASE, RETURN_TO_POOL, SPEND_TTL,
};
use crate::domain::decision::Decision;
use crate::domain::window::bucket_of;
use crate::store::{
    Commit, CommitOutcome, RefusedBy, StoreError, DECISION_LOG_KEPT, FEEDBACK_HORIZON,
    IDEMPOTENCY_TTL,
};

/// Rounds of commit → reserve → commit before a commit settles for a refusal.
const COMMIT_ROUNDS: usize = 3;

/// Longest a commit may run once its caller stopped waiting. Redis's own
/// timeouts end it sooner: 50 ms per command, or the reconnect attempts.
const COMMIT_TASK_LIMIT: Duration = Duration::from_secs(5);

/// Commits in a row that miss the call budget before Redis is probed.
const SLOW_COMMITS_TO_TRIP: u32 = 4;

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

fn is_noscript(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// A grant found no pool for `day` and could not open one: fail closed.
fn pool_uninitialised(day: Date) -> StoreError {
    StoreError::Unavailable(format!(
        "the budget pool for {day} cannot be opened: the store holds no shared policy (emptied?); perks are refused until a replica re-seeds it"
    ))
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
    /// The decision-log entry without the answer (field `d`, made by
    /// [`commit_log_head`]).
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
        let log_head = commit_log_head(&c.input_json, &c.input, c.shadow.as_ref())
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
    pub(super) async fn run_commits<T, F, Fut>(
        &self,
        budget: Duration,
        work: F,
    ) -> Result<T, StoreError>
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

impl Inner {
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

    pub(super) async fn commit(&self, c: Commit) -> Result<CommitOutcome, StoreError> {
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
    pub(super) async fn commit_all(
        &self,
        commits: Vec<Commit>,
    ) -> Vec<Result<CommitOutcome, StoreError>> {
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
}
