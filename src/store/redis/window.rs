//! Fairness-window counters: reading the hourly buckets of every shard and
//! merging them into one snapshot, keeping the buckets that can no longer
//! change so a refresh reads only the last two hours.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use time::OffsetDateTime;

use super::{array, corrupt, from_milli, text, Inner, RedisStore, READ_HASHES};
use crate::domain::window::{bucket_of, Cell, Counts, WindowStats};
use crate::store::StoreError;

/// A stale window snapshot is still served for this long while a refresh
/// runs (peer norms only shape the justice cost; they need not be fresh).
const MAX_SNAPSHOT_AGE: Duration = Duration::from_secs(30);
/// How long a decision waits for the first window snapshot of a replica.
const FIRST_SNAPSHOT_WAIT: Duration = Duration::from_millis(10);
/// Most keys read by one window script call.
const KEYS_PER_READ: usize = 256;

type Bucket = HashMap<Cell, Counts>;

#[derive(Default)]
pub(super) struct WindowCache {
    /// Merged buckets older than the previous hour: they no longer change.
    closed: BTreeMap<i64, Bucket>,
    /// (hours, last bucket, taken at, snapshot).
    snapshot: Option<(u32, i64, Instant, Arc<WindowStats>)>,
    /// Whether the last refresh failed (then callers do not wait for one).
    failing: bool,
}

impl Inner {
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

impl RedisStore {
    /// [`Store::window_stats`](crate::store::Store::window_stats): the
    /// replica's cached snapshot, refreshed in the background, single flight
    /// (exact reads when the TTL is zero).
    pub(super) async fn cached_window_stats(
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

    /// [`Store::window_series`](crate::store::Store::window_series): peers'
    /// totals per hour bucket, exact.
    pub(super) async fn read_window_series(
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
}
