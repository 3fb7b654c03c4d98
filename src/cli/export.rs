//! `fairtreat export`: the decision log joined with its feedback, as JSONL
//! (the [`LogRecord`] lines `train outcome --logs` and `evaluate policy
//! --logs` read) or as flat CSV for spreadsheets and notebooks.
//!
//! It reads the embedded store's journal directory (`--data-dir`, the same
//! directory `serve` writes; reading needs no lock, so it works while the
//! service runs) or, with `--redis-url`, the Redis decision and feedback
//! streams (same prefix and shard flags as `serve`). By default only decisions
//! with feedback are written, since a training row needs a reward;
//! `--include-pending` adds the others to CSV exports (empty reward cells).
//! JSONL has no such rows: a [`LogRecord`] without a reward would be a
//! training row with a made-up outcome, so that combination is refused.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::feedback::Feedback;
use crate::domain::policy::{Intent, Policy};
use crate::sim::logs::LogRecord;
use crate::store::journal::{read_entries, Entry};
use crate::store::redis::{RedisConfig, RedisStore, RedisUrl};
use crate::store::{LoggedDecision, Store};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One `LogRecord` JSON object per line.
    Jsonl,
    /// One flat row per decision, with a header.
    Csv,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The embedded store's data directory (its journal).
    #[arg(long, env = "FAIRTREAT_DATA_DIR", default_value = super::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Read the Redis decision log instead of a journal (as for `serve`).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<RedisUrl>,
    /// First part of every Redis key.
    #[arg(long, env = "FAIRTREAT_REDIS_PREFIX", default_value = "ft")]
    pub redis_prefix: String,
    /// Customer shards (Redis hash tags), as the service was run with.
    #[arg(long, env = "FAIRTREAT_REDIS_SHARDS", default_value_t = 16)]
    pub redis_shards: u16,
    /// Only decisions made at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<OffsetDateTime>,
    /// Only decisions made before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<OffsetDateTime>,
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write decisions without feedback (CSV only).
    #[arg(long)]
    pub include_pending: bool,
    /// The policy whose actions name each record's `intent` (default as for
    /// `serve`: config/policy.toml, or the bundled policy).
    #[arg(long, env = "FAIRTREAT_POLICY")]
    pub policy: Option<PathBuf>,
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time (2026-11-20T12:00:00Z): {e}"))
}

/// A serde enum as its wire name.
fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// One CSV row: the decision, its feedback and the shadow's choice, flat.
#[derive(Debug, Serialize)]
struct CsvRow {
    decision_id: Uuid,
    interaction_id: String,
    customer_id: String,
    decided_at: String,
    channel: String,
    kind: String,
    public: bool,
    audience: u64,
    rating: Option<u8>,
    order_value: Option<f64>,
    action: String,
    intent: String,
    gesture_kind: Option<String>,
    gesture_value: Option<f64>,
    propensity: f64,
    explored: bool,
    degraded: bool,
    sentiment: f64,
    severity: f64,
    deservingness: f64,
    policy_version: u32,
    model_version: String,
    reward: Option<f64>,
    feedback_received_at: Option<String>,
    replied: Option<bool>,
    sentiment_after: Option<f64>,
    repurchased: Option<bool>,
    churned: Option<bool>,
    shadow_model_version: Option<String>,
    shadow_action: Option<String>,
    shadow_propensity: Option<f64>,
}

impl CsvRow {
    fn new(l: &LoggedDecision, policy: &Policy) -> Self {
        let d = &l.decision;
        let f = l.feedback.as_ref();
        let outcome = f.map(|f| &f.outcome);
        Self {
            decision_id: d.decision_id,
            interaction_id: d.interaction_id.clone(),
            customer_id: l.input.customer.id.clone(),
            decided_at: rfc3339(d.decided_at),
            channel: name(&l.input.channel),
            kind: name(&l.input.kind),
            public: l.input.public,
            audience: l.input.audience,
            rating: l.input.rating,
            order_value: l.input.order_value,
            action: d.action.clone(),
            intent: name(
                &policy
                    .action(&d.action)
                    .map(|a| a.intent)
                    .unwrap_or(Intent::Ignore),
            ),
            gesture_kind: d.gesture.as_ref().map(|g| name(&g.kind)),
            gesture_value: d.gesture.as_ref().map(|g| g.value),
            propensity: d.propensity,
            explored: d.explored,
            degraded: d.degraded,
            sentiment: d.scores.sentiment,
            severity: d.scores.severity,
            deservingness: d.scores.deservingness,
            policy_version: d.policy_version,
            model_version: d.model_version.clone(),
            reward: f.map(|f| f.reward),
            feedback_received_at: f.map(|f| rfc3339(f.received_at)),
            replied: outcome.and_then(|o| o.replied),
            sentiment_after: outcome.and_then(|o| o.sentiment_after),
            repurchased: outcome.and_then(|o| o.repurchased),
            churned: outcome.and_then(|o| o.churned),
            shadow_model_version: l.shadow.as_ref().map(|s| s.model_version.clone()),
            shadow_action: l.shadow.as_ref().map(|s| s.action.clone()),
            shadow_propensity: l.shadow.as_ref().map(|s| s.propensity),
        }
    }
}

/// Which decisions are written.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub include_pending: bool,
}

impl Filter {
    fn in_range(&self, at: OffsetDateTime) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }
}

enum Writer<W: Write> {
    Jsonl(W),
    Csv(Box<csv::Writer<W>>),
}

/// Writes records in one format and counts them.
pub struct Sink<'p, W: Write> {
    writer: Writer<W>,
    policy: &'p Policy,
    filter: Filter,
    pub written: u64,
    pub pending_skipped: u64,
}

impl<'p, W: Write> Sink<'p, W> {
    pub fn new(format: Format, out: W, policy: &'p Policy, filter: Filter) -> Self {
        let writer = match format {
            Format::Jsonl => Writer::Jsonl(out),
            Format::Csv => Writer::Csv(Box::new(csv::Writer::from_writer(out))),
        };
        Self {
            writer,
            policy,
            filter,
            written: 0,
            pending_skipped: 0,
        }
    }

    /// Writes `l` if the filter lets it through.
    pub fn push(&mut self, l: &LoggedDecision) -> anyhow::Result<()> {
        if !self.filter.in_range(l.decision.decided_at) {
            return Ok(());
        }
        if l.feedback.is_none() && !self.filter.include_pending {
            self.pending_skipped += 1;
            return Ok(());
        }
        match &mut self.writer {
            Writer::Jsonl(w) => {
                // Pending decisions never reach here in JSONL (refused up front).
                let Some(r) = LogRecord::from_logged(l, self.policy) else {
                    self.pending_skipped += 1;
                    return Ok(());
                };
                serde_json::to_writer(&mut *w, &r)?;
                w.write_all(b"\n")?;
            }
            Writer::Csv(w) => w.serialize(CsvRow::new(l, self.policy))?,
        }
        self.written += 1;
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<(u64, u64)> {
        match self.writer {
            Writer::Jsonl(mut w) => w.flush()?,
            Writer::Csv(mut w) => w.flush()?,
        }
        Ok((self.written, self.pending_skipped))
    }
}

/// Streams the journal in `dir` through `sink`, in commit order: a first
/// pass collects the feedback (small), the second joins each decision.
pub fn export_journal<W: Write>(dir: &Path, sink: &mut Sink<'_, W>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!(
            "no data directory {} (set --data-dir to where `fairtreat serve` keeps its journal)",
            dir.display()
        );
    }
    let mut feedback: HashMap<Uuid, Feedback> = HashMap::new();
    read_entries(dir, |e| {
        if let Entry::Feedback(f) = e {
            // The store journals a report only once; the first one counts.
            feedback.entry(f.decision_id).or_insert(f);
        }
    })?;
    let mut failed = None;
    read_entries(dir, |e| {
        let Entry::Decision(d) = e else {
            return;
        };
        if failed.is_some() {
            return;
        }
        let d = *d;
        let logged = LoggedDecision {
            feedback: feedback.remove(&d.decision.decision_id),
            input: d.input,
            decision: d.decision,
            shadow: d.shadow,
        };
        if let Err(e) = sink.push(&logged) {
            failed = Some(e);
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// `fairtreat export`.
pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    if args.include_pending && args.format == Format::Jsonl {
        anyhow::bail!(
            "--include-pending needs --format csv: a JSONL LogRecord is a training row and needs a reward"
        );
    }
    let policy = super::load_policy(args.policy.as_deref())?;
    let filter = Filter {
        since: args.since,
        until: args.until,
        include_pending: args.include_pending,
    };
    let out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut sink = Sink::new(args.format, out, &policy, filter);
    let source = match &args.redis_url {
        Some(url) => {
            let mut cfg = RedisConfig::new(url.clone());
            cfg.prefix = args.redis_prefix.clone();
            cfg.shards = args.redis_shards;
            let store = RedisStore::connect(cfg)?;
            let since = args.since.unwrap_or(OffsetDateTime::UNIX_EPOCH);
            for l in store.logged_decisions(since, usize::MAX).await? {
                sink.push(&l)?;
            }
            "redis".to_string()
        }
        None => {
            export_journal(&args.data_dir, &mut sink)?;
            args.data_dir.display().to_string()
        }
    };
    let (written, pending) = sink.finish()?;
    tracing::info!(%source, written, pending_skipped = pending, "export done");
    Ok(())
}
