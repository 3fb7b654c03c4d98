//! Talking to Redis: the connection (one managed connection, or a Cluster
//! connection made on first use), every call's error mapping, and the
//! breaker that makes calls fail closed at once while Redis is known
//! unusable. Every other part of the store goes through [`Inner::query`],
//! [`Inner::invoke`] and friends, so a secret never reaches an error message
//! and every failure feeds the breaker.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, RedisError, Script, ScriptInvocation, Value};

use super::{
    text, Inner, AUTH_FAILURE, COMMIT, FEEDBACK, LAYOUT, LEASE, READ_HASHES, REPLACE_POLICY,
    RETURN_TO_POOL,
};
use crate::store::StoreError;

/// How often an open breaker probes Redis. A probe must answer within the
/// call budget: a Redis slower than that is no use to a decision.
const PROBE_EVERY: Duration = Duration::from_millis(100);

pub(super) enum Connection {
    Single(ConnectionManager),
    Cluster(Box<ClusterState>),
}

/// What one call is sent on: a clone of the managed connection or of the
/// Cluster connection.
pub(super) enum Handle {
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
pub(super) struct ClusterState {
    client: ClusterClient,
    conn: ArcSwapOption<ClusterConnection>,
    connecting: tokio::sync::Mutex<()>,
}

impl ClusterState {
    pub(super) fn new(client: ClusterClient) -> Self {
        Self {
            client,
            conn: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// The Cluster connection, made on first use, by one caller at a time.
    async fn connection(&self) -> Result<ClusterConnection, RedisError> {
        if let Some(c) = self.conn.load_full() {
            return Ok((*c).clone());
        }
        let _guard = self.connecting.lock().await;
        if let Some(c) = self.conn.load_full() {
            return Ok((*c).clone());
        }
        let c = self.client.get_async_connection().await?;
        self.conn.store(Some(Arc::new(c.clone())));
        Ok(c)
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

    pub(super) fn unavailable(&self, e: RedisError) -> StoreError {
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
    pub(super) fn check_breaker(&self) -> Result<(), StoreError> {
        match &*self.breaker.lock() {
            Some(why) => Err(StoreError::Unavailable(format!(
                "Redis unusable ({why}); waiting for it to answer again"
            ))),
            None => Ok(()),
        }
    }

    /// Opens the breaker and starts the probe that closes it: a `PING`
    /// answered within the call budget, tried every [`PROBE_EVERY`].
    pub(super) fn trip(&self, why: &str) {
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
    pub(super) fn suspect(&self, why: String) {
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
            Connection::Cluster(cs) => cmd
                .query_async::<Value>(&mut cs.connection().await?)
                .await
                .map(|_| ()),
        }
    }

    pub(super) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.raw_query(cmd).await?.map_err(|e| self.unavailable(e))
    }

    /// `cmd`, with Redis's own error inside (the caller tells a missing
    /// script from an unusable Redis); outside, a cluster connection that
    /// could not be made.
    pub(super) async fn raw_query<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
    ) -> Result<Result<T, RedisError>, StoreError> {
        Ok(cmd.query_async(&mut self.handle().await?).await)
    }

    /// `pipe`'s replies; outside, as for [`Self::raw_query`].
    pub(super) async fn pipeline<T: FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<Result<T, RedisError>, StoreError> {
        Ok(pipe.query_async(&mut self.handle().await?).await)
    }

    /// Loads `script` (after Redis lost it: restarted or flushed).
    pub(super) async fn load(&self, script: &Script) -> Result<(), StoreError> {
        script
            .load_async(&mut self.handle().await?)
            .await
            .map(drop)
            .map_err(|e| self.unavailable(e))
    }

    pub(super) async fn invoke(&self, inv: &ScriptInvocation<'_>) -> Result<Value, StoreError> {
        inv.invoke_async(&mut self.handle().await?)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// A connection to send calls on (a Cluster connection is made on
    /// first use).
    pub(super) async fn handle(&self) -> Result<Handle, StoreError> {
        match &self.conn {
            Connection::Single(m) => Ok(Handle::Single(m.clone())),
            Connection::Cluster(cs) => Ok(Handle::Cluster(
                cs.connection().await.map_err(|e| self.unavailable(e))?,
            )),
        }
    }

    /// Checks once per process that every replica agrees on the layout.
    pub(super) async fn gate(&self) -> Result<(), StoreError> {
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
            &*AUTH_FAILURE,
        ] {
            self.load(script).await?;
        }
        self.layout_ok.store(true, Ordering::Release);
        Ok(())
    }
}
