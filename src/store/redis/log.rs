//! The decision log: what a commit writes to a shard's stream beside the
//! answer (the request and shadow choice, `d`), and the reads of it — recent
//! interactions for what-if (newest first, stopping early) and the whole
//! log with feedback for export.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Duration;

use futures_util::future::join_all;
use redis::Value;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{array, corrupt, json_string, text, unix_ms, Inner, RedisStore};
use crate::domain::feedback::Feedback;
use crate::domain::interaction::InteractionInput;
use crate::store::{
    write_recorded_json, LoggedDecision, ShadowChoice, StoreError, RECENT_INTERACTIONS_KEPT,
};

/// Upper bound on reading the whole decision log (export), which may be
/// many round trips.
const LOG_READ_LIMIT: Duration = Duration::from_secs(60);
/// Stream entries read per `XRANGE` call.
const LOG_PAGE: usize = 1000;
/// Page of a backwards read of the decision log for recent interactions
/// (entries are a few KiB: smaller pages than a full export's).
const RECENT_PAGE: usize = 200;

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

/// Field `d` of a commit's decision-log entry: [`log_head`]'s bytes, or
/// serde's when the request's JSON cannot be reused.
pub(super) fn commit_log_head(
    input_json: &[u8],
    input: &InteractionInput,
    shadow: Option<&ShadowChoice>,
) -> serde_json::Result<String> {
    log_head(input_json, input, shadow)
        .unwrap_or_else(|| json_string(&LogHead { input, shadow }, 1024))
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

/// Recent interactions kept per shard: twice the fair share of
/// [`RECENT_INTERACTIONS_KEPT`] read from each shard's decision log, so the
/// merged newest entries are exact when customers spread over shards, and a
/// what-if read stays bounded.
fn recent_per_shard(shards: u16) -> usize {
    (2 * RECENT_INTERACTIONS_KEPT).div_ceil(usize::from(shards.max(1)))
}

impl Inner {
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
}

impl RedisStore {
    /// [`Store::recent_interactions`](crate::store::Store::recent_interactions):
    /// every shard's newest entries, merged.
    pub(super) async fn read_recent(
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

    /// [`Store::logged_decisions`](crate::store::Store::logged_decisions):
    /// every shard's log since `since`, with its feedback, oldest first.
    pub(super) async fn read_logged(
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
            probabilities: vec![crate::store::ActionProbability {
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
}
