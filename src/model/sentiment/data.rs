//! The ground truth: the four VADER ICWSM-2014 files, their fixed
//! train/test split, and the VADER reference scores the bundled port must
//! reproduce.

use std::path::Path;

use super::{read, SentimentError, SETS, TEST_EVERY};

/// One human-rated snippet.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Index into [`SETS`].
    pub set: usize,
    pub id: String,
    /// 1-based position among the non-empty lines of its file.
    pub line: usize,
    /// Mean human rating in [-4, 4].
    pub mean: f64,
    pub text: String,
}

impl Example {
    pub fn is_test(&self) -> bool {
        is_test_line(self.line)
    }

    /// `Some(mean > 0)`, or `None` for a mean of exactly 0.
    pub fn label(&self) -> Option<bool> {
        if self.mean > 0.0 {
            Some(true)
        } else if self.mean < 0.0 {
            Some(false)
        } else {
            None
        }
    }
}

/// The split rule of the issue: line 5, 10, 15, … of each file is a test row.
pub fn is_test_line(line: usize) -> bool {
    line.is_multiple_of(TEST_EVERY)
}

/// Parses one `*_GroundTruth.txt` (`id<TAB>mean<TAB>text`, CRLF, no header).
pub fn parse_ground_truth(set: usize, content: &str) -> Result<Vec<Example>, String> {
    let mut rows = Vec::new();
    for raw in content.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let n = rows.len() + 1;
        let mut fields = line.splitn(3, '\t');
        let (Some(id), Some(mean), Some(text)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("non-empty line {n}: expected id, mean and text"));
        };
        let mean: f64 = mean
            .trim()
            .parse()
            .ok()
            .filter(|m: &f64| m.is_finite())
            .ok_or_else(|| format!("non-empty line {n}: mean {mean:?} is not a number"))?;
        rows.push(Example {
            set,
            id: id.trim().to_owned(),
            line: n,
            mean,
            text: text.to_owned(),
        });
    }
    Ok(rows)
}

/// All rows of the four ground-truth files in `dir`, in file order.
pub fn load_corpus(dir: &Path) -> Result<Vec<Example>, SentimentError> {
    let mut rows = Vec::new();
    for (set, name) in SETS.iter().enumerate() {
        let path = dir.join(format!("{name}_GroundTruth.txt"));
        let parsed = parse_ground_truth(set, &read(&path)?)
            .map_err(|message| SentimentError::Data { path, message })?;
        rows.extend(parsed);
    }
    Ok(rows)
}

/// VADER's compound score for every row of `corpus`, from the reference
/// TSV of vaderSentiment 3.3.2 (`set id human_mean neg neu pos compound`),
/// checked to be in the same order as the corpus.
pub fn load_vader_reference(path: &Path, corpus: &[Example]) -> Result<Vec<f64>, SentimentError> {
    let content = read(path)?;
    let bad = |message: String| SentimentError::Data {
        path: path.to_path_buf(),
        message,
    };
    let mut lines = content
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty());
    match lines.next() {
        Some(h) if h.split('\t').nth(6) == Some("compound") => {}
        _ => return Err(bad("expected a header ending in `compound`".into())),
    }
    let mut out = Vec::with_capacity(corpus.len());
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let row = corpus
            .get(i)
            .ok_or_else(|| bad(format!("more rows than the corpus ({})", corpus.len())))?;
        if f.len() != 7 || f[0] != SETS[row.set] || f[1] != row.id {
            return Err(bad(format!(
                "row {} is {:?}, expected {}/{}",
                i + 1,
                f.get(..2),
                SETS[row.set],
                row.id
            )));
        }
        let c: f64 = f[6]
            .parse()
            .ok()
            .filter(|c: &f64| c.is_finite())
            .ok_or_else(|| bad(format!("row {}: compound {:?}", i + 1, f[6])))?;
        out.push(c);
    }
    if out.len() != corpus.len() {
        return Err(bad(format!(
            "{} rows, the corpus has {}",
            out.len(),
            corpus.len()
        )));
    }
    Ok(out)
}
