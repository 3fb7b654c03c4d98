//! The embedded store's durable decision log: an append-only JSONL journal
//! in a data directory, so decisions and feedback survive a restart.
//!
//! # What is written, and when
//!
//! Every committed decision ([`DecisionEntry`]: the logged decision plus what
//! rebuilds the store's state — customer, body hash, cells, window, granted
//! value) and every recorded feedback is one JSON line, written with a single
//! `write(2)` on a file opened for appending, *before* the store call
//! returns and before the in-memory state changes. There is no userspace
//! buffer a crash could lose. A write that fails is cut back off the file,
//! so a later line never follows half a line.
//!
//! # Fsync policy ([`FsyncPolicy`])
//!
//! - `always`: `fdatasync` after every line, before the call returns.
//!   Nothing acknowledged is lost, even on an OS crash or power loss; costs
//!   a disk flush per decision.
//! - `interval` (default): a background thread flushes at most once per
//!   second when something was written, like Redis `appendfsync everysec`.
//!   A process crash (kill -9, panic) loses nothing — the lines are in the
//!   kernel's page cache; an OS crash or power loss loses at most the last
//!   second or so.
//! - `never`: the kernel flushes when it wants (typically within 30 s).
//!   A process crash loses nothing; an OS crash may lose the last ~30 s.
//!
//! # Files
//!
//! One segment per UTC day, `journal-YYYY-MM-DD.jsonl` (the day of the
//! entry's time; an entry older than the open segment goes in the open one,
//! so segments only move forward). Segments whose day is more than the
//! retention (30 days by default) before the newest are deleted when a new
//! day opens and at start. A `LOCK` file, locked for the life of the
//! process, stops two processes from writing one directory.
//!
//! # Reading back
//!
//! [`read_entries`] reads every segment oldest first. A line that does not
//! parse (the torn last line of a crash mid-write) is skipped with a
//! warning, never fatal; at start the open segment is also cut back to its
//! last complete line, so new lines start clean.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::ShadowChoice;
use crate::domain::decision::Decision;
use crate::domain::feedback::Feedback;
use crate::domain::interaction::InteractionInput;
use crate::domain::validation::{CustomerId, InteractionId};
use crate::domain::window::Cell;

/// Default number of days segments are kept.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// How often the `interval` policy flushes (when something was written).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// When written lines are forced to disk (see the module documentation for
/// what each may lose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    Always,
    #[default]
    Interval,
    Never,
}

impl FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Self::Always),
            "interval" => Ok(Self::Interval),
            "never" => Ok(Self::Never),
            other => Err(format!(
                "{other:?} is not an fsync policy (always, interval, never)"
            )),
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Always => "always",
            Self::Interval => "interval",
            Self::Never => "never",
        })
    }
}

/// Where and how the journal is kept.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    pub dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Segments more than this many days older than the newest are deleted.
    pub retention_days: u32,
}

impl JournalConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            fsync: FsyncPolicy::default(),
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// One committed decision, with what rebuilds the store's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionEntry {
    /// The commit's time (the service clock).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub interaction_id: InteractionId,
    pub customer_id: CustomerId,
    /// Hex SHA-256 of the canonical request body.
    pub body_hash: String,
    pub cells: Vec<Cell>,
    pub window_hours: u32,
    /// The gesture value granted (ledger and spend), if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_value: Option<f64>,
    /// The cap window the gesture was checked against, if one was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_window_days: Option<u32>,
    pub input: InteractionInput,
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowChoice>,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Decision(Box<DecisionEntry>),
    Feedback(Feedback),
}

/// Errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the data directory {0} is in use by another fairtreat process")]
    Locked(PathBuf),
    #[error("journal entry cannot be written: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("journal {path} at byte {offset}: unreadable entry: {source}")]
    Decode {
        path: PathBuf,
        offset: u64,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where one line of the journal is: its segment's day, byte offset and
/// length. The embedded store keeps this instead of the decision itself, so
/// memory does not grow with the decisions it must be able to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub day: Date,
    pub offset: u64,
    pub len: u32,
}

/// What a read found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub entries: u64,
    /// Lines that did not parse (a torn last line after a crash), skipped.
    pub skipped: u64,
}

const PREFIX: &str = "journal-";
const SUFFIX: &str = ".jsonl";

fn segment_name(day: Date) -> String {
    format!("{PREFIX}{day}{SUFFIX}")
}

/// The segments in `dir`, oldest first.
fn segments(dir: &Path) -> Result<Vec<(Date, PathBuf)>, JournalError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let mut out = Vec::new();
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in read {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(day) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|d| Date::parse(d, fmt).ok())
        else {
            continue;
        };
        out.push((day, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// Reads every entry in `dir`, oldest segment first, in written order.
/// Unparseable lines are skipped with a warning.
pub fn read_entries(dir: &Path, mut f: impl FnMut(Entry)) -> Result<ReadStats, JournalError> {
    read_located_entries(dir, |e, _| f(e))
}

/// As [`read_entries`], with each entry's [`Location`].
pub fn read_located_entries(
    dir: &Path,
    mut f: impl FnMut(Entry, Location),
) -> Result<ReadStats, JournalError> {
    let mut stats = ReadStats::default();
    for (day, path) in segments(dir)? {
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        let mut number = 0u64;
        let mut offset = 0u64;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io_err(&path))?;
            if n == 0 {
                break;
            }
            let at = Location {
                day,
                offset,
                len: u32::try_from(n).unwrap_or(u32::MAX),
            };
            offset += n as u64;
            number += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Entry>(&line) {
                Ok(e) => {
                    stats.entries += 1;
                    f(e, at);
                }
                Err(e) => {
                    stats.skipped += 1;
                    tracing::warn!(file = %path.display(), line = number, error = %e, "skipping an unreadable journal line (torn by a crash?)");
                }
            }
        }
    }
    Ok(stats)
}

struct Open {
    day: Date,
    path: PathBuf,
    file: Arc<File>,
    len: u64,
}

struct Shared {
    dir: PathBuf,
    fsync: FsyncPolicy,
    retention_days: u32,
    open: Mutex<Open>,
    dirty: AtomicBool,
    /// Held (locked) for the life of the journal.
    _lock: File,
}

/// An open journal, appending to today's segment.
pub struct Journal {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.shared.dir)
            .field("fsync", &self.shared.fsync)
            .finish()
    }
}

/// Opens a segment for appending, cut back to its last complete line.
fn open_segment(dir: &Path, day: Date) -> Result<Open, JournalError> {
    let path = dir.join(segment_name(day));
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let mut len = file.metadata().map_err(io_err(&path))?.len();
    if len > 0 {
        // Find the last newline from the end (a torn line has none after it).
        let mut keep = 0u64;
        let mut pos = len;
        let mut buf = vec![0u8; 64 * 1024];
        while pos > 0 {
            let start = pos.saturating_sub(buf.len() as u64);
            let n = (pos - start) as usize;
            file.seek(SeekFrom::Start(start)).map_err(io_err(&path))?;
            file.read_exact(&mut buf[..n]).map_err(io_err(&path))?;
            if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
                keep = start + i as u64 + 1;
                break;
            }
            pos = start;
        }
        if keep < len {
            tracing::warn!(file = %path.display(), dropped_bytes = len - keep, "cutting a torn last line off the journal");
            file.set_len(keep).map_err(io_err(&path))?;
            len = keep;
        }
    }
    Ok(Open {
        day,
        path,
        file: Arc::new(file),
        len,
    })
}

impl Shared {
    fn remove_expired(&self, newest: Date) -> Result<(), JournalError> {
        let cutoff = newest - time::Duration::days(i64::from(self.retention_days));
        for (day, path) in segments(&self.dir)? {
            if day < cutoff {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                tracing::info!(file = %path.display(), "removed a journal segment past retention");
            }
        }
        Ok(())
    }

    fn flush(&self) {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let (file, path) = {
            let open = self.open.lock();
            (open.file.clone(), open.path.clone())
        };
        if let Err(e) = file.sync_data() {
            tracing::error!(file = %path.display(), error = %e, "journal fsync failed");
        }
    }
}

impl Journal {
    /// Opens (creating) the journal in `cfg.dir`, with the segment of `now`'s
    /// day open for appending. Read existing entries first with
    /// [`read_entries`] (the open cuts a torn last line off).
    pub fn open(cfg: &JournalConfig, now: OffsetDateTime) -> Result<Self, JournalError> {
        std::fs::create_dir_all(&cfg.dir).map_err(io_err(&cfg.dir))?;
        let lock_path = cfg.dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked(cfg.dir.clone()))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        // Never open a segment older than the newest one on disk.
        let today = now.to_offset(time::UtcOffset::UTC).date();
        let day = segments(&cfg.dir)?
            .last()
            .map(|(d, _)| (*d).max(today))
            .unwrap_or(today);
        let open = open_segment(&cfg.dir, day)?;
        let shared = Arc::new(Shared {
            dir: cfg.dir.clone(),
            fsync: cfg.fsync,
            retention_days: cfg.retention_days,
            open: Mutex::new(open),
            dirty: AtomicBool::new(false),
            _lock: lock,
        });
        shared.remove_expired(day)?;
        if cfg.fsync == FsyncPolicy::Interval {
            let weak: Weak<Shared> = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name("journal-fsync".into())
                .spawn(move || loop {
                    std::thread::sleep(FLUSH_EVERY);
                    match weak.upgrade() {
                        Some(s) => s.flush(),
                        None => return,
                    }
                })
                .map_err(io_err(&cfg.dir))?;
        }
        Ok(Self { shared })
    }

    /// The directory this journal writes to.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Appends one entry as one line with one `write(2)`; with
    /// [`FsyncPolicy::Always`], flushed before returning. `at` picks the
    /// day's segment.
    pub fn append(&self, entry: &Entry, at: OffsetDateTime) -> Result<Location, JournalError> {
        self.append_line(&Self::encode(entry)?, at)
    }

    /// The line [`Self::append`] writes for `entry`, newline included; so
    /// a caller can encode before taking a lock and write under it.
    pub fn encode(entry: &Entry) -> Result<Vec<u8>, JournalError> {
        // A decision line is 1.5-3 KB: start there rather than grow into it.
        let mut line = Vec::with_capacity(4096);
        serde_json::to_writer(&mut line, entry)?;
        line.push(b'\n');
        Ok(line)
    }

    /// Appends a line made by [`Self::encode`] (see [`Self::append`]).
    pub fn append_line(&self, line: &[u8], at: OffsetDateTime) -> Result<Location, JournalError> {
        let day = at.to_offset(time::UtcOffset::UTC).date();
        let s = &*self.shared;
        let mut open = s.open.lock();
        if day > open.day {
            // The old segment's unflushed lines go to disk before it is left.
            if s.fsync != FsyncPolicy::Never {
                open.file.sync_data().map_err(io_err(&open.path))?;
            }
            *open = open_segment(&s.dir, day)?;
            if let Err(e) = s.remove_expired(day) {
                tracing::warn!(error = %e, "could not remove old journal segments");
            }
        }
        // `write_all` on a regular file opened for appending is one write(2)
        // for a line this size; if it fails part-way the partial line is cut
        // off again, so the next line does not follow garbage.
        if let Err(e) = (&*open.file).write_all(line) {
            let _ = open.file.set_len(open.len);
            return Err(io_err(&open.path)(e));
        }
        let location = Location {
            day: open.day,
            offset: open.len,
            len: u32::try_from(line.len()).unwrap_or(u32::MAX),
        };
        open.len += line.len() as u64;
        match s.fsync {
            FsyncPolicy::Always => open.file.sync_data().map_err(io_err(&open.path))?,
            FsyncPolicy::Interval => s.dirty.store(true, Ordering::Release),
            FsyncPolicy::Never => {}
        }
        Ok(location)
    }

    /// Reads back the entry written at `at` (one positioned read; the line
    /// is in the OS page cache or on disk, whatever the fsync policy).
    pub fn read(&self, at: Location) -> Result<Entry, JournalError> {
        use std::os::unix::fs::FileExt;
        let path = self.shared.dir.join(segment_name(at.day));
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut line = vec![0u8; at.len as usize];
        file.read_exact_at(&mut line, at.offset)
            .map_err(io_err(&path))?;
        serde_json::from_slice(&line).map_err(|source| JournalError::Decode {
            path,
            offset: at.offset,
            source,
        })
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.shared.fsync != FsyncPolicy::Never {
            self.shared.dirty.store(true, Ordering::Release);
            self.shared.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use uuid::Uuid;

    fn feedback(reward: f64, at: OffsetDateTime) -> Entry {
        Entry::Feedback(Feedback {
            decision_id: Uuid::nil(),
            reward,
            outcome: Default::default(),
            received_at: at,
        })
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "fairtreat-journal-{tag}-{}-{}",
            std::process::id(),
            Uuid::new_v4()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn read_all(dir: &Path) -> (Vec<Entry>, ReadStats) {
        let mut v = Vec::new();
        let stats = read_entries(dir, |e| v.push(e)).unwrap();
        (v, stats)
    }

    #[test]
    fn entries_come_back_in_written_order_across_day_segments() {
        let dir = temp_dir("order");
        let t = datetime!(2026-11-20 23:59 UTC);
        let j = Journal::open(&JournalConfig::new(&dir), t).unwrap();
        j.append(&feedback(0.1, t), t).unwrap();
        j.append(
            &feedback(0.2, t + time::Duration::minutes(2)),
            t + time::Duration::minutes(2),
        )
        .unwrap();
        // An entry stamped earlier than the open segment stays in it.
        j.append(&feedback(0.3, t), t).unwrap();
        drop(j);
        let (entries, stats) = read_all(&dir);
        let rewards: Vec<f64> = entries
            .iter()
            .map(|e| match e {
                Entry::Feedback(f) => f.reward,
                Entry::Decision(_) => panic!("feedback only"),
            })
            .collect();
        assert_eq!(rewards, [0.1, 0.2, 0.3]);
        assert_eq!(
            stats,
            ReadStats {
                entries: 3,
                skipped: 0
            }
        );
        let names: Vec<_> = segments(&dir)
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_skipped_on_read_and_cut_off_before_new_lines() {
        let dir = temp_dir("torn");
        let t = datetime!(2026-11-20 12:00 UTC);
        {
            let j = Journal::open(&JournalConfig::new(&dir), t).unwrap();
            j.append(&feedback(0.5, t), t).unwrap();
        }
        let path = dir.join(segment_name(t.date()));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"type\":\"feedback\",\"decision_id\":\"000")
            .unwrap();
        drop(f);
        let (entries, stats) = read_all(&dir);
        assert_eq!(entries.len(), 1);
        assert_eq!(stats.skipped, 1);
        let j = Journal::open(&JournalConfig::new(&dir), t).unwrap();
        j.append(&feedback(0.75, t), t).unwrap();
        drop(j);
        let (entries, stats) = read_all(&dir);
        assert_eq!(entries.len(), 2);
        assert_eq!(stats.skipped, 0, "the torn bytes were cut off");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn segments_past_retention_are_removed_when_a_new_day_opens() {
        let dir = temp_dir("retention");
        let t = datetime!(2026-11-01 12:00 UTC);
        let mut cfg = JournalConfig::new(&dir);
        cfg.retention_days = 2;
        cfg.fsync = FsyncPolicy::Always;
        let j = Journal::open(&cfg, t).unwrap();
        for d in 0..5 {
            let at = t + time::Duration::days(d);
            j.append(&feedback(0.5, at), at).unwrap();
        }
        let days: Vec<Date> = segments(&dir)
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(
            days,
            [
                datetime!(2026-11-03 0:00 UTC).date(),
                datetime!(2026-11-04 0:00 UTC).date(),
                datetime!(2026-11-05 0:00 UTC).date()
            ]
        );
        drop(j);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_second_process_cannot_open_a_data_directory_in_use() {
        let dir = temp_dir("lock");
        let t = datetime!(2026-11-20 12:00 UTC);
        let j = Journal::open(&JournalConfig::new(&dir), t).unwrap();
        assert!(matches!(
            Journal::open(&JournalConfig::new(&dir), t),
            Err(JournalError::Locked(_))
        ));
        drop(j);
        assert!(Journal::open(&JournalConfig::new(&dir), t).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn fsync_policies_parse_from_their_names_only() {
        for (s, p) in [
            ("always", Some(FsyncPolicy::Always)),
            ("interval", Some(FsyncPolicy::Interval)),
            ("never", Some(FsyncPolicy::Never)),
            ("everysec", None),
        ] {
            assert_eq!(s.parse::<FsyncPolicy>().ok(), p, "{s}");
        }
    }
}
