//! The trained text sentiment model: n-gram naive-Bayes evidence, VADER and
//! lexicon features, gated by the kind of text, fitted with a linfa logistic
//! regression on the VADER ICWSM-2014 ground truth.
//!
//! # What it predicts
//!
//! `p = P(human mean rating > 0 | text)`, reported as the sentiment score
//! `2p − 1` in [-1, 1] (empty text scores 0). The four ground-truth sets
//! (tweets, Amazon review sentences, movie review sentences, NYT editorial
//! sentences) give each snippet the mean of 20+ human ratings on [-4, 4];
//! rows with a mean of exactly 0 have no sign and are left out of training
//! and of the AUC evaluation.
//!
//! # Split
//!
//! Fixed by the issue and independent of any seed: in each file, every 5th
//! non-empty line (1-based, line 5, 10, 15, …) is a test row, the rest are
//! training rows ([`is_test_line`]). The files have no blank lines, so the
//! n-th non-empty line is also line n. Nothing in training reads a test row.
//!
//! # Features (185 columns, all dense)
//!
//! 1. **Word evidence as naive-Bayes log-count ratios** (Wang & Manning
//!    2012, the "NB" of NBSVM) over unigrams and bigrams with negation
//!    marking: after "not", "never", "don't", … every word up to the next
//!    punctuation becomes `not_word`, so "not good" counts against. A text's
//!    ratios are summarised as sum, mean, sum/√n, max and min. The ratios of
//!    a training text come from the other 4 of 5 folds (cross-fitting), so
//!    the regression learns how far word evidence can be trusted on unseen
//!    text rather than on text it has memorised.
//! 2. **Lexicon knowledge**: VADER's neg/neu/pos/compound (the bundled,
//!    bit-exact port) and its un-normalised valence sum, sums of VADER
//!    lexicon valences split by polarity and by negation scope, the valence
//!    after a contrastive "but", and style cues (`!`, `?`, ALL CAPS,
//!    elongation, emoticons, links, mentions, length).
//! 3. **Domain gating**: a second naive-Bayes model (over the same terms
//!    plus a few style pseudo-terms) gives the posterior that the text reads
//!    like a tweet, a product review, a film review or an editorial, and
//!    every feature above is also multiplied by each posterior, next to
//!    word ratios fitted on that domain alone ("unpredictable" is praise
//!    for a plot and a complaint about steering). This lets one linear
//!    model lean on VADER for tweets, where VADER is excellent (AUC ≈ 0.97)
//!    and words from 3,400 tweets are not, and on words for reviews and
//!    editorials, where VADER is weak (≈ 0.72).
//!
//! Features of the first two groups and the domain block are standardised
//! with the training mean and deviation (clipped at ±5σ); the products are
//! taken after standardising, so a rare feature cannot explode.
//!
//! # Why not TF-IDF columns
//!
//! linfa-logistic only takes dense `ndarray` matrices. A TF-IDF model over
//! 6,000 n-grams needs a 19k × 6k matrix (0.9 GB of f64) and took 250 s for
//! 300 L-BFGS iterations here without converging, far over the 2-minute
//! training budget; 1,000 TF-IDF columns on top of the features below
//! added 0.0003 validation AUC at 3× the training time. The naive-Bayes
//! ratios keep every n-gram seen twice (≈ 45k) as evidence in a few dense
//! columns.
//!
//! # The fit
//!
//! linfa's L2-penalised logistic regression (L-BFGS; `alpha` = 1/C in
//! scikit-learn terms), run in chunks of iterations so progress can be
//! reported, warm-starting each chunk, until the gradient norm is below
//! the tolerance or the iteration budget is spent. The hyper-parameters
//! were chosen on validation rows carved out of the training rows
//! (`validation_fraction`), never on the test rows.
//!
//! # Determinism
//!
//! Training is a pure function of the data and the [`HyperParameters`]:
//! folds and validation rows are a seeded hash of (set, line), sums run in a
//! fixed order (hash maps are only looked up, never iterated into results),
//! and linfa's L-BFGS starts from zeros on one thread. The artefact stores
//! the n-gram *counts*, and the ratios are recomputed from them on load by
//! the same code that computed them in training, so a loaded model scores
//! exactly like the trained one; weights round-trip bit for bit through
//! JSON (`serde_json`'s `float_roundtrip`).
//!
//! # Safety at inference
//!
//! linfa's `predict` asserts the feature count and would panic a worker.
//! [`TrainedSentiment::from_json`] validates the artefact (format, schema,
//! feature names and dimension, table shapes, finiteness, the VADER lexicon
//! fingerprint) and [`TrainedSentiment::probabilities`] checks the shape
//! again before calling linfa; scoring never panics and never returns NaN.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use linfa::prelude::*;
use linfa_logistic::{FittedLogisticRegression, LogisticRegression};
use ndarray::{s, Array1, Array2, ArrayViewMut1, ShapeBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::sentiment::vader::Vader;
use crate::domain::sentiment::{SentimentModel, VADER_EMOJI_LEXICON, VADER_LEXICON};
use crate::model::metrics::{self, CalibrationBin, MetricError};

/// The `kind` in the model card of this model.
pub const KIND: &str = "linfa_logistic";
/// Version of the `model.json` layout.
pub const FORMAT: u32 = 1;
/// The ground-truth files, in the order of the VADER reference TSV.
pub const SETS: [&str; 4] = [
    "tweets",
    "amazonReviewSnippets",
    "movieReviewSnippets",
    "nytEditorialSnippets",
];
/// Short names of [`SETS`], for tables and feature names.
pub const SET_NAMES: [&str; 4] = ["tweets", "amazon", "movie", "nyt"];
/// Every `TEST_EVERY`-th line of each file is a test row.
pub const TEST_EVERY: usize = 5;
/// Acceptance target: ROC AUC over the four test sets together.
pub const TARGET_OVERALL_AUC: f64 = 0.88;

#[derive(Debug, thiserror::Error)]
pub enum SentimentError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    #[error("invalid sentiment artefact: {0}")]
    Artefact(String),
    #[error("training failed: {0}")]
    Training(String),
    #[error("feature matrix has {got} columns, the model expects {want}")]
    Shape { got: usize, want: usize },
    #[error(transparent)]
    Metric(#[from] MetricError),
}

fn read(path: &Path) -> Result<String, SentimentError> {
    std::fs::read_to_string(path).map_err(|source| SentimentError::Io {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------- data ----

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

// ----------------------------------------------------------- tokenising ----

/// Negators: upstream VADER's `NEGATE` plus "no", spelled as the tokeniser
/// leaves them (apostrophes dropped, so "don't" is "dont").
const NEGATORS: &[&str] = &[
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "dont", "hadnt",
    "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither", "neednt", "never", "none", "nope",
    "nor", "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
    "without", "wont", "wouldnt", "rarely", "seldom", "despite", "no",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    /// A normalised word: lower case, no apostrophes, runs of 3+ equal
    /// letters cut to 2; `<url>` and `<user>` for links and mentions.
    Word { span: Span, negator: bool },
    /// An emoticon VADER knows, e.g. ":)" or "</3".
    Emoticon(Span),
    /// `!` or `?`: a feature of its own, and the end of a negation scope.
    Mark(char),
    /// Other clause punctuation: ends a negation scope and an n-gram run.
    Break,
}

/// Where a word or emoticon's text sits in [`Tokens::text`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start: usize,
    end: usize,
}

/// What the tokeniser sees of a text. The pieces' texts are kept back to
/// back in one string: this runs on every scored text, and a `String` per
/// word was a third of the featuriser's time.
#[derive(Debug, Default)]
struct Tokens {
    text: String,
    pieces: Vec<Piece>,
    /// Words with 3+ equal letters in a row before normalising ("sooo").
    elongated: usize,
    /// Words of 2+ letters, all upper case.
    all_caps: usize,
    words: usize,
    urls: usize,
    users: usize,
}

impl Tokens {
    fn str(&self, span: Span) -> &str {
        &self.text[span.start..span.end]
    }

    /// Appends `text` and returns where it went.
    fn push_text(&mut self, text: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(text);
        Span {
            start,
            end: self.text.len(),
        }
    }

    fn push_word(&mut self, span: Span) {
        let negator = is_negator(self.str(span));
        self.pieces.push(Piece::Word { span, negator });
    }
}

fn is_negator(word: &str) -> bool {
    // Asked for every word of every scored text: a hash lookup, not a scan
    // of the list.
    static SET: LazyLock<HashSet<&str, foldhash::fast::RandomState>> =
        LazyLock::new(|| NEGATORS.iter().copied().collect());
    SET.contains(word)
}

fn unescape_html(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#39;", "'"),
    )
}

fn tokenize(text: &str, vader: &Vader) -> Tokens {
    let text = unescape_html(text);
    let mut t = Tokens {
        text: String::with_capacity(text.len()),
        pieces: Vec::with_capacity(text.len() / 4),
        ..Tokens::default()
    };
    // Reused for every chunk and word rather than allocated for each.
    let (mut ascii_lower, mut current, mut raw_word) =
        (String::new(), String::new(), String::new());
    for chunk in text.split_whitespace() {
        // `str::to_lowercase` (which lowers a final sigma as such) unless
        // the chunk is ASCII, where lowering is per byte.
        let owned_lower;
        let lower: &str = if chunk.is_ascii() {
            ascii_lower.clear();
            ascii_lower.push_str(chunk);
            ascii_lower.make_ascii_lowercase();
            &ascii_lower
        } else {
            owned_lower = chunk.to_lowercase();
            &owned_lower
        };
        if lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("www.")
        {
            t.urls += 1;
            let span = t.push_text("<url>");
            t.push_word(span);
            continue;
        }
        if lower.len() > 1 && lower.starts_with('@') {
            t.users += 1;
            let span = t.push_text("<user>");
            t.push_word(span);
            continue;
        }
        let symbolic = lower
            .chars()
            .any(|c| !(c.is_alphanumeric() || c == '\'' || c == '’'));
        if symbolic {
            // Unlike VADER's scorer, also try the original case, so ":D"
            // and ":P" are found.
            if vader.valence(lower).is_some() {
                let span = t.push_text(lower);
                t.pieces.push(Piece::Emoticon(span));
                continue;
            }
            if vader.valence(chunk).is_some() {
                let span = t.push_text(chunk);
                t.pieces.push(Piece::Emoticon(span));
                continue;
            }
        }
        for c in chunk.chars() {
            if c.is_alphanumeric() {
                if c.is_ascii() {
                    current.push(c.to_ascii_lowercase());
                } else {
                    current.extend(c.to_lowercase());
                }
                raw_word.push(c);
            } else if c == '\'' || c == '’' {
                // Apostrophes vanish: "don't" is "dont", "it's" is "its".
            } else {
                flush(&mut t, &mut current, &mut raw_word);
                match c {
                    '!' | '?' => t.pieces.push(Piece::Mark(c)),
                    '.' | ',' | ';' | ':' | '(' | ')' | '"' | '[' | ']'
                        if t.pieces.last() != Some(&Piece::Break) =>
                    {
                        t.pieces.push(Piece::Break);
                    }
                    _ => {}
                }
            }
        }
        flush(&mut t, &mut current, &mut raw_word);
    }
    t
}

fn flush(t: &mut Tokens, current: &mut String, raw: &mut String) {
    if current.is_empty() {
        return;
    }
    t.words += 1;
    let letters = raw.chars().filter(|c| c.is_alphabetic()).count();
    if letters >= 2 && raw.chars().all(|c| !c.is_lowercase()) {
        t.all_caps += 1;
    }
    let start = t.text.len();
    let (mut last, mut run, mut elongated) = ('\0', 0, false);
    for c in current.chars() {
        run = if c == last { run + 1 } else { 1 };
        last = c;
        if run <= 2 {
            t.text.push(c);
        } else if c.is_alphabetic() {
            elongated = true;
        } else {
            t.text.push(c);
        }
    }
    t.elongated += usize::from(elongated);
    let span = Span {
        start,
        end: t.text.len(),
    };
    t.push_word(span);
    current.clear();
    raw.clear();
}

/// Calls `f` with each n-gram term of a text, in order: unigrams
/// (negation-marked) and, if wanted, bigrams of adjacent pieces within a
/// clause. Terms that are not a piece's own text are built in one reused
/// buffer, so scoring a text allocates no string per term.
fn visit_terms(tokens: &Tokens, bigrams: bool, mut f: impl FnMut(&str)) {
    let mut buf = String::new();
    let mut negated = false;
    let mut prev: Option<&str> = None;
    for piece in &tokens.pieces {
        match *piece {
            Piece::Word { span, negator } => {
                let text = tokens.str(span);
                if negated && !negator {
                    f(join(&mut buf, "not_", "", text));
                } else {
                    f(text);
                }
                if text == "but" {
                    negated = false;
                }
                if negator {
                    negated = true;
                }
                if let (true, Some(p)) = (bigrams, prev) {
                    f(join(&mut buf, p, " ", text));
                }
                prev = Some(text);
            }
            Piece::Emoticon(span) => {
                let e = tokens.str(span);
                f(e);
                if let (true, Some(p)) = (bigrams, prev) {
                    f(join(&mut buf, p, " ", e));
                }
                prev = Some(e);
            }
            Piece::Mark(c) => {
                f(c.encode_utf8(&mut [0; 4]));
                negated = false;
                prev = None;
            }
            Piece::Break => {
                negated = false;
                prev = None;
            }
        }
    }
}

/// `a + b + c`, written over `buf`.
fn join<'b>(buf: &'b mut String, a: &str, b: &str, c: &str) -> &'b str {
    buf.clear();
    buf.push_str(a);
    buf.push_str(b);
    buf.push_str(c);
    buf
}

/// The n-gram terms of a text as strings (see [`visit_terms`]).
fn terms(tokens: &Tokens, bigrams: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(tokens.pieces.len() * 2);
    visit_terms(tokens, bigrams, |t| out.push(t.to_owned()));
    out
}

// ------------------------------------------------------ lexicon features ----

/// Names of the lexicon and style features, in column order.
pub const LEXICON_FEATURES: [&str; N_LEXICON] = [
    "vader_compound",
    "vader_pos",
    "vader_neg",
    "vader_neu",
    "vader_raw_log",
    "lex_pos_sum",
    "lex_neg_sum",
    "lex_negated_pos_sum",
    "lex_negated_neg_sum",
    "lex_pos_count",
    "lex_neg_count",
    "lex_max",
    "lex_min",
    "lex_mean",
    "lex_last",
    "lex_after_but",
    "log_words",
    "exclamations",
    "questions",
    "caps_ratio",
    "has_url",
    "has_user",
    "elongated",
    "emoticon_sum",
    "negators",
    "vader_compound_signed_square",
    "vader_positive",
    "vader_negative",
];
const N_LEXICON: usize = 28;

fn lexicon_features(text: &str, tokens: &Tokens, vader: &Vader) -> [f64; N_LEXICON] {
    let p = vader.polarity(text);
    // compound = raw / sqrt(raw² + 15), inverted; compound is rounded to
    // 4 decimals, so ±1 is kept away from the pole.
    let c = p.compound.clamp(-0.9999, 0.9999);
    let raw = c * 15f64.sqrt() / (1.0 - c * c).sqrt();

    let (mut pos_sum, mut neg_sum, mut npos_sum, mut nneg_sum) = (0.0, 0.0, 0.0, 0.0);
    let (mut pos_n, mut neg_n, mut negators) = (0.0, 0.0, 0.0);
    let (mut max, mut min, mut total, mut hits, mut last) = (0.0f64, 0.0f64, 0.0, 0.0, 0.0);
    let (mut after_but, mut emoticons) = (0.0, 0.0);
    let (mut exclaim, mut question) = (0.0f64, 0.0f64);
    let mut negated = false;
    for piece in &tokens.pieces {
        let valence = match *piece {
            Piece::Word { span, negator } => {
                let text = tokens.str(span);
                if text == "but" {
                    after_but = 0.0;
                    negated = false;
                }
                if negator {
                    negators += 1.0;
                    negated = true;
                    continue;
                }
                vader.valence(text)
            }
            Piece::Emoticon(span) => {
                let v = vader.valence(tokens.str(span));
                emoticons += v.unwrap_or(0.0);
                v
            }
            Piece::Mark(m) => {
                if m == '!' {
                    exclaim += 1.0;
                } else {
                    question += 1.0;
                }
                negated = false;
                None
            }
            Piece::Break => {
                negated = false;
                None
            }
        };
        let Some(v) = valence else { continue };
        let signed = if negated {
            if v > 0.0 {
                npos_sum += v;
            } else {
                nneg_sum += v;
            }
            -0.74 * v
        } else {
            if v > 0.0 {
                pos_sum += v;
                pos_n += 1.0;
            } else if v < 0.0 {
                neg_sum += v;
                neg_n += 1.0;
            }
            v
        };
        max = max.max(signed);
        min = min.min(signed);
        total += signed;
        hits += 1.0;
        last = signed;
        after_but += signed;
    }
    let words = tokens.words as f64;
    [
        p.compound,
        p.pos,
        p.neg,
        p.neu,
        raw.signum() * raw.abs().ln_1p(),
        pos_sum,
        neg_sum,
        npos_sum,
        nneg_sum,
        pos_n,
        neg_n,
        max,
        min,
        if hits > 0.0 { total / hits } else { 0.0 },
        last,
        after_but,
        words.ln_1p(),
        exclaim.min(5.0),
        question.min(5.0),
        if words > 0.0 {
            tokens.all_caps as f64 / words
        } else {
            0.0
        },
        f64::from(u8::from(tokens.urls > 0)),
        f64::from(u8::from(tokens.users > 0)),
        (tokens.elongated as f64).min(3.0),
        emoticons,
        negators,
        p.compound * p.compound.abs(),
        f64::from(u8::from(p.compound >= 0.05)),
        f64::from(u8::from(p.compound <= -0.05)),
    ]
}

// ---------------------------------------------------------- naive Bayes ----

const N_DOMAINS: usize = SETS.len();

/// Pseudo-terms about the look of a text; they help tell the domains apart.
fn style_terms(text: &str) -> [Option<&'static str>; 10] {
    // One pass over the words for the three word-level terms.
    let (mut words, mut hashtag, mut lowercase_i) = (0, false, false);
    for w in text.split_whitespace() {
        words += 1;
        hashtag |= w.starts_with('#') && w.len() > 1;
        lowercase_i |= w == "i";
    }
    let first = text.trim_start().chars().next();
    [
        (!text.chars().any(char::is_uppercase)).then_some("<style:no-upper>"),
        (text.contains(" ,") || text.contains(" .") || text.contains("   "))
            .then_some("<style:spaced-punctuation>"),
        (text.contains("&amp;") || text.contains("&quot;") || text.contains("&gt;"))
            .then_some("<style:html-entity>"),
        first
            .is_some_and(char::is_lowercase)
            .then_some("<style:starts-lower>"),
        (!text.trim_end().ends_with(['.', '!', '?', '"', '\''])).then_some("<style:no-final-stop>"),
        (words < 8).then_some("<style:short>"),
        (words > 25).then_some("<style:long>"),
        (text.contains("..") || text.contains("!!") || text.contains("??"))
            .then_some("<style:repeated-punctuation>"),
        hashtag.then_some("<style:hashtag>"),
        lowercase_i.then_some("<style:lowercase-i>"),
    ]
}

/// The distinct terms of a text, sorted: its n-gram terms and style
/// pseudo-terms. Naive Bayes here is Bernoulli-like: a term counts once per
/// text however often it occurs.
fn text_terms(text: &str, tokens: &Tokens, bigrams: bool) -> Vec<String> {
    let mut t = terms(tokens, bigrams);
    t.extend(style_terms(text).into_iter().flatten().map(String::from));
    t.sort_unstable();
    t.dedup();
    t
}

/// The rows in `nb` of [`text_terms`]'s terms, in the same order, found
/// without building the list: ids follow the term table's sort order, so
/// sorting ids sorts terms, and unknown terms drop out either way.
fn known_term_ids(text: &str, tokens: &Tokens, bigrams: bool, nb: &NaiveBayes) -> Vec<u32> {
    let mut ids = Vec::with_capacity(tokens.pieces.len() * 2 + 10);
    let mut find = |term: &str| ids.extend(nb.index.get(term));
    visit_terms(tokens, bigrams, &mut find);
    style_terms(text).into_iter().flatten().for_each(find);
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Texts per domain and label, indexed `[domain][positive]`.
type DomainCounts = [[u32; 2]; N_DOMAINS];

fn total(c: &DomainCounts) -> u32 {
    c.iter().flatten().sum()
}

/// The sufficient statistics of the naive-Bayes models: for every term in
/// at least `min_df` texts, how many texts of each domain and label contain
/// it. Stored in the artefact; the ratios are recomputed from it on load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountTable {
    /// Number of texts per domain and label.
    texts: DomainCounts,
    /// Strictly increasing.
    terms: Vec<String>,
    counts: Vec<DomainCounts>,
}

/// A training text as the naive-Bayes models see it.
struct Doc {
    terms: Vec<String>,
    domain: usize,
    positive: bool,
}

impl CountTable {
    fn build<'a>(docs: impl Iterator<Item = &'a Doc>, min_df: usize) -> Self {
        let mut texts = [[0u32; 2]; N_DOMAINS];
        let mut map: HashMap<&str, DomainCounts> = HashMap::new();
        for doc in docs {
            let label = usize::from(doc.positive);
            texts[doc.domain][label] += 1;
            for t in &doc.terms {
                map.entry(t).or_insert([[0; 2]; N_DOMAINS])[doc.domain][label] += 1;
            }
        }
        let mut entries: Vec<(&str, DomainCounts)> = map
            .into_iter()
            .filter(|(_, c)| total(c) as usize >= min_df)
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let (terms, counts) = entries.into_iter().map(|(t, c)| (t.to_owned(), c)).unzip();
        Self {
            texts,
            terms,
            counts,
        }
    }
}

/// What the naive-Bayes models know about one term.
#[derive(Debug, Clone, PartialEq)]
struct TermStats {
    /// Log-count ratio over all training texts.
    ratio: f64,
    /// Log-count ratio within each domain (`None`: in fewer than `min_df`
    /// texts of that domain).
    domain_ratio: [Option<f64>; N_DOMAINS],
    /// `ln P(term | domain)`.
    log_likelihood: [f64; N_DOMAINS],
}

/// Naive-Bayes sentiment log-count ratios (Wang & Manning 2012)
/// `r = ln((p_t / |p|₁) / (q_t / |q|₁))`, with `p_t`, `q_t` the smoothed
/// counts of positive and negative texts containing the term, over all
/// texts and within each domain; and a multinomial naive-Bayes domain
/// classifier over the same terms.
#[derive(Debug, Clone, PartialEq)]
struct NaiveBayes {
    /// Each term's row in `stats` (the term table's order).
    index: TermIndex,
    stats: Vec<TermStats>,
    log_prior: [f64; N_DOMAINS],
}

/// Term → row of the term table. Asked for every n-gram of every scored
/// text (about 120 for a 300-character complaint, most of them unknown
/// bigrams), so it is laid out for the cache: the table holds only the
/// rows, 4 bytes each, and the terms' text sits back to back in one
/// string, read only to confirm a match. A `HashMap<String, u32>` of the
/// 45,404 terms took 32 bytes a slot and one allocation a term: 2 MB more
/// resident, and scoring long texts 4 % slower (BENCHMARKS.md, session 16).
#[derive(Debug, Clone)]
struct TermIndex {
    rows: hashbrown::HashTable<u32>,
    /// Every term's text, in row order.
    text: String,
    /// Where row `i`'s text ends in `text` (it starts where row `i - 1`'s ends).
    ends: Vec<usize>,
    hasher: foldhash::fast::RandomState,
}

impl TermIndex {
    fn new(terms: &[String]) -> Self {
        let mut index = Self {
            rows: hashbrown::HashTable::with_capacity(terms.len()),
            text: String::with_capacity(terms.iter().map(String::len).sum()),
            ends: Vec::with_capacity(terms.len()),
            hasher: foldhash::fast::RandomState::default(),
        };
        for (row, term) in (0..).zip(terms) {
            index.text.push_str(term);
            index.ends.push(index.text.len());
            let hash = index.hasher.hash_one(term.as_str());
            // Terms are strictly sorted (made so by `CountTable::build`,
            // checked on load), so none is in the table already.
            index.rows.insert_unique(hash, row, |&r| {
                index_hash(&index.hasher, &index.text, &index.ends, r)
            });
        }
        index
    }

    fn get(&self, term: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(term);
        self.rows
            .find(hash, |&row| term_text(&self.text, &self.ends, row) == term)
            .copied()
    }
}

#[inline]
fn term_text<'a>(text: &'a str, ends: &[usize], row: u32) -> &'a str {
    let row = row as usize;
    let start = if row == 0 { 0 } else { ends[row - 1] };
    &text[start..ends[row]]
}

fn index_hash(hasher: &foldhash::fast::RandomState, text: &str, ends: &[usize], row: u32) -> u64 {
    hasher.hash_one(term_text(text, ends, row))
}

/// Equal when they index the same terms in the same rows (the table is
/// made from those).
impl PartialEq for TermIndex {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.ends == other.ends
    }
}

/// `[sum, mean, sum/√n, max, min]` of the all-domain ratios of a text's
/// known terms.
const NB_FEATURES: [&str; N_NB] = ["nb_sum", "nb_mean", "nb_sum_sqrt", "nb_max", "nb_min"];
const N_NB: usize = 5;
/// Domain posteriors, then `[sum/√n, mean]` of each domain's own ratios.
const N_DOMAIN_DENSE: usize = 3 * N_DOMAINS;

/// `ln((p/|p|₁)/(q/|q|₁))` for the terms `keep` selects, summing the norms
/// in table order so the result does not depend on anything else.
fn log_count_ratios(
    table: &CountTable,
    count: impl Fn(&DomainCounts) -> [u32; 2],
    keep: impl Fn(&[u32; 2]) -> bool,
    smoothing: f64,
) -> Vec<Option<f64>> {
    let (mut p_norm, mut q_norm) = (0.0, 0.0);
    for c in table.counts.iter().map(&count).filter(&keep) {
        p_norm += f64::from(c[1]) + smoothing;
        q_norm += f64::from(c[0]) + smoothing;
    }
    table
        .counts
        .iter()
        .map(|c| {
            let c = count(c);
            keep(&c).then(|| {
                let p = (f64::from(c[1]) + smoothing) / p_norm;
                let q = (f64::from(c[0]) + smoothing) / q_norm;
                (p / q).ln()
            })
        })
        .collect()
}

impl NaiveBayes {
    fn from_counts(table: &CountTable, min_df: usize, smoothing: f64) -> Self {
        let all = |c: &DomainCounts| {
            let mut s = [0, 0];
            for d in c {
                s[0] += d[0];
                s[1] += d[1];
            }
            s
        };
        let global = log_count_ratios(table, all, |_| true, smoothing);
        let per_domain: Vec<Vec<Option<f64>>> = (0..N_DOMAINS)
            .map(|d| {
                let keep = |c: &[u32; 2]| (c[0] + c[1]) as usize >= min_df;
                log_count_ratios(table, |c| c[d], keep, smoothing)
            })
            .collect();
        let mut totals = [0.0; N_DOMAINS];
        for c in &table.counts {
            for d in 0..N_DOMAINS {
                totals[d] += f64::from(c[d][0] + c[d][1]) + smoothing;
            }
        }
        let texts: Vec<f64> = table.texts.iter().map(|c| f64::from(c[0] + c[1])).collect();
        let n: f64 = texts.iter().sum();
        let mut log_prior = [0.0; N_DOMAINS];
        for d in 0..N_DOMAINS {
            log_prior[d] = ((texts[d] + 1.0) / (n + N_DOMAINS as f64)).ln();
        }
        let stats = table
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut stats = TermStats {
                    ratio: global[i].unwrap_or(0.0),
                    domain_ratio: [None; N_DOMAINS],
                    log_likelihood: [0.0; N_DOMAINS],
                };
                for d in 0..N_DOMAINS {
                    stats.domain_ratio[d] = per_domain[d][i];
                    stats.log_likelihood[d] =
                        ((f64::from(c[d][0] + c[d][1]) + smoothing) / totals[d]).ln();
                }
                stats
            })
            .collect();
        let index = TermIndex::new(&table.terms);
        Self {
            index,
            stats,
            log_prior,
        }
    }

    /// The rows of the known ones among `terms` (distinct and sorted, as
    /// [`text_terms`] gives them), in order.
    fn ids(&self, terms: &[String]) -> Vec<u32> {
        terms.iter().filter_map(|t| self.index.get(t)).collect()
    }

    /// The naive-Bayes features of a text's distinct known terms, given as
    /// increasing rows: the sums below run in that order, so the result
    /// does not depend on how the rows were found.
    fn features(&self, ids: &[u32]) -> ([f64; N_NB], [f64; N_DOMAIN_DENSE]) {
        let (mut sum, mut n, mut max, mut min) = (0.0, 0.0, 0.0f64, 0.0f64);
        let mut domain_sum = [0.0; N_DOMAINS];
        let mut domain_n = [0.0f64; N_DOMAINS];
        let mut score = self.log_prior;
        for stats in ids.iter().map(|&i| &self.stats[i as usize]) {
            sum += stats.ratio;
            n += 1.0;
            max = max.max(stats.ratio);
            min = min.min(stats.ratio);
            for d in 0..N_DOMAINS {
                if let Some(r) = stats.domain_ratio[d] {
                    domain_sum[d] += r;
                    domain_n[d] += 1.0;
                }
                score[d] += stats.log_likelihood[d];
            }
        }
        let nb = if n > 0.0 {
            [sum, sum / n, sum / n.sqrt(), max, min]
        } else {
            [0.0; N_NB]
        };
        let mut domain = [0.0; N_DOMAIN_DENSE];
        // Softmax of the log scores.
        let top = score.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exp = score.map(|s| (s - top).exp());
        let z: f64 = exp.iter().sum();
        for d in 0..N_DOMAINS {
            domain[d] = exp[d] / z;
            if domain_n[d] > 0.0 {
                domain[N_DOMAINS + 2 * d] = domain_sum[d] / domain_n[d].sqrt();
                domain[N_DOMAINS + 2 * d + 1] = domain_sum[d] / domain_n[d];
            }
        }
        (nb, domain)
    }
}

// ------------------------------------------------------------ featuriser ----

/// Naive-Bayes plus lexicon features: the block the domain posteriors gate.
const N_BASE: usize = N_NB + N_LEXICON;

/// Standardised values are clipped to ±this many standard deviations, so
/// one freak text (a tweet of 40 question marks) cannot dominate a score.
const Z_CLIP: f64 = 5.0;

/// All feature names in column order: [`NB_FEATURES`],
/// [`LEXICON_FEATURES`], and with domain gating the domain block (the
/// posteriors `domain_*`, each domain's own ratio summaries `nb_<domain>_*`)
/// and the products of every base feature and the domain's own summaries
/// with each posterior. An artefact whose list differs was built by another
/// featuriser and is refused.
pub fn feature_names(domain_gating: bool) -> Vec<String> {
    let base: Vec<&str> = NB_FEATURES
        .iter()
        .chain(&LEXICON_FEATURES)
        .copied()
        .collect();
    let mut names: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    if domain_gating {
        names.extend(SET_NAMES.iter().map(|d| format!("domain_{d}")));
        for d in SET_NAMES {
            names.push(format!("nb_{d}_sum_sqrt"));
            names.push(format!("nb_{d}_mean"));
        }
        for d in SET_NAMES {
            names.extend(base.iter().map(|b| format!("{b}*domain_{d}")));
            names.push(format!("nb_{d}_sum_sqrt*domain_{d}"));
            names.push(format!("nb_{d}_mean*domain_{d}"));
        }
    }
    names
}

/// `feature_names(domain_gating).len()`, without the allocations: the
/// base block; with gating, the domain block and, per domain, the products
/// of the base block and the domain's own two summaries with its posterior.
fn feature_dim(domain_gating: bool) -> usize {
    N_BASE
        + if domain_gating {
            N_DOMAIN_DENSE + N_DOMAINS * (N_BASE + 2)
        } else {
            0
        }
}

/// How many leading features are standardised (the rest are products).
fn standardised_len(domain_gating: bool) -> usize {
    N_BASE + if domain_gating { N_DOMAIN_DENSE } else { 0 }
}

/// The features of a text before standardising: the base block, then the
/// domain block with gating.
fn unscaled(
    nb: &NaiveBayes,
    term_ids: &[u32],
    lexicon: &[f64; N_LEXICON],
    domain_gating: bool,
) -> Vec<f64> {
    let (base_nb, domain) = nb.features(term_ids);
    let mut out = Vec::with_capacity(standardised_len(domain_gating));
    out.extend_from_slice(&base_nb);
    out.extend_from_slice(lexicon);
    if domain_gating {
        out.extend_from_slice(&domain);
    }
    out
}

/// Text → feature vector.
#[derive(Debug, Clone)]
struct Featurizer {
    bigrams: bool,
    domain_gating: bool,
    nb: NaiveBayes,
    mean: Vec<f64>,
    scale: Vec<f64>,
    vader: Vader,
}

impl Featurizer {
    /// The number of columns: as [`feature_names`] lists them, counted
    /// without building the names (this runs on every prediction).
    fn dim(&self) -> usize {
        feature_dim(self.domain_gating)
    }

    fn unscaled(&self, text: &str) -> Vec<f64> {
        let tokens = tokenize(text, &self.vader);
        let lexicon = lexicon_features(text, &tokens, &self.vader);
        let ids = known_term_ids(text, &tokens, self.bigrams, &self.nb);
        unscaled(&self.nb, &ids, &lexicon, self.domain_gating)
    }

    /// Standardises `raw` into `row` and appends the gated products.
    fn fill(&self, raw: &[f64], mut row: ArrayViewMut1<f64>) {
        let n = self.mean.len();
        for k in 0..n {
            row[k] = ((raw[k] - self.mean[k]) / self.scale[k]).clamp(-Z_CLIP, Z_CLIP);
        }
        if self.domain_gating {
            let mut col = n;
            for d in 0..N_DOMAINS {
                // The raw posterior gates the standardised features.
                let g = raw[N_BASE + d];
                let own = N_BASE + N_DOMAINS + 2 * d;
                for k in (0..N_BASE).chain(own..own + 2) {
                    row[col] = row[k] * g;
                    col += 1;
                }
            }
        }
    }

    /// The feature matrix of `raws`; column-major on request.
    fn matrix(&self, raws: &[Vec<f64>], column_major: bool) -> Array2<f64> {
        let shape = (raws.len(), self.dim());
        let mut x = if column_major {
            Array2::zeros(shape.f())
        } else {
            Array2::zeros(shape)
        };
        for (i, raw) in raws.iter().enumerate() {
            self.fill(raw, x.row_mut(i));
        }
        x
    }
}

// ------------------------------------------------------- hyper-parameters ----

/// Everything that shapes the model; recorded in the artefact and the card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HyperParameters {
    /// Keep n-grams seen in at least this many training texts.
    pub min_df: usize,
    /// Add bigrams to the unigrams.
    pub bigrams: bool,
    /// Additive smoothing of the naive-Bayes counts.
    pub nb_smoothing: f64,
    /// Folds of the cross-fitted naive-Bayes features.
    pub nb_folds: usize,
    /// Gate the features by the domain posteriors (see the module doc).
    pub domain_gating: bool,
    /// L2 penalty of linfa's logistic regression (1/C in scikit-learn).
    pub alpha: f64,
    /// L-BFGS iteration budget.
    pub max_iterations: u64,
    /// L-BFGS restarts from the current weights every this many iterations
    /// (so progress can be reported); also the convergence check interval.
    pub chunk_iterations: u64,
    /// Stop when the L2 norm of the gradient of linfa's objective (summed,
    /// not averaged, over texts) falls below this.
    pub gradient_tolerance: f64,
    /// Share of the training rows held out to report validation AUCs
    /// (0 = none). The final model is then refitted on all training rows.
    pub validation_fraction: f64,
    /// Picks the naive-Bayes folds and the validation rows.
    pub seed: u64,
}

impl Default for HyperParameters {
    fn default() -> Self {
        Self {
            min_df: 2,
            bigrams: true,
            nb_smoothing: 1.0,
            nb_folds: 5,
            domain_gating: true,
            alpha: 100.0,
            max_iterations: 1000,
            chunk_iterations: 100,
            gradient_tolerance: 1e-3,
            validation_fraction: 0.0,
            seed: 0,
        }
    }
}

impl HyperParameters {
    /// Refuses values that would make training fail or features non-finite.
    pub fn check(&self) -> Result<(), SentimentError> {
        let bad = |m: &str| Err(SentimentError::Training(m.into()));
        if self.min_df == 0 {
            return bad("min_df must be at least 1");
        }
        if !(self.nb_smoothing.is_finite() && self.nb_smoothing > 0.0) {
            return bad("nb_smoothing must be finite and > 0");
        }
        if !(2..=100).contains(&self.nb_folds) {
            return bad("nb_folds must be in 2..=100");
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return bad("alpha must be finite and >= 0");
        }
        if self.max_iterations == 0 || self.chunk_iterations == 0 {
            return bad("max_iterations and chunk_iterations must be at least 1");
        }
        if !(self.gradient_tolerance.is_finite() && self.gradient_tolerance > 0.0) {
            return bad("gradient_tolerance must be finite and > 0");
        }
        if !(0.0..0.5).contains(&self.validation_fraction) {
            return bad("validation_fraction must be in [0, 0.5)");
        }
        Ok(())
    }
}

// -------------------------------------------------------------- training ----

/// Progress of [`train`], for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress<'a> {
    /// A new stage begins with `total` steps.
    Stage { name: &'a str, total: u64 },
    /// `n` more steps of the current stage are done.
    Advance(u64),
}

fn bundled_vader() -> Vader {
    Vader::from_lexicons(VADER_LEXICON, VADER_EMOJI_LEXICON)
        .expect("the bundled VADER lexicons parse (checked by a unit test)")
}

/// SHA-256 of the VADER lexicons the features are computed with.
pub fn lexicon_fingerprint() -> String {
    let mut h = Sha256::new();
    h.update(VADER_LEXICON.as_bytes());
    h.update([0u8]);
    h.update(VADER_EMOJI_LEXICON.as_bytes());
    hex::encode(h.finalize())
}

/// SplitMix64: a small, well-mixed hash, so seeded draws are reproducible
/// without a random-number crate.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded uniform draw in [0, 1) for a row, keyed by its set and line so
/// it does not depend on row order; `salt` separates independent draws.
fn row_draw(example: &Example, seed: u64, salt: u64) -> f64 {
    let key = ((example.set as u64) << 40) ^ (example.line as u64) ^ (salt << 56);
    let u = splitmix64(splitmix64(seed) ^ splitmix64(key)) >> 11;
    u as f64 / (1u64 << 53) as f64
}

/// Whether a training row is held out for validation.
pub fn is_validation(example: &Example, hp: &HyperParameters) -> bool {
    hp.validation_fraction > 0.0 && row_draw(example, hp.seed, 1) < hp.validation_fraction
}

/// The naive-Bayes fold of a training row.
fn nb_fold(example: &Example, hp: &HyperParameters) -> usize {
    ((row_draw(example, hp.seed, 2) * hp.nb_folds as f64) as usize).min(hp.nb_folds - 1)
}

/// Training rows: not test, with a sign.
pub fn training_rows(corpus: &[Example]) -> Vec<&Example> {
    corpus
        .iter()
        .filter(|e| !e.is_test() && e.label().is_some())
        .collect()
}

/// L2 norm of the gradient of linfa's objective (sum of log losses plus
/// `alpha/2·|w|²`, intercept unpenalised) at `params` (weights, intercept).
fn gradient_norm(x: &Array2<f64>, y: &[bool], alpha: f64, params: &Array1<f64>) -> f64 {
    let d = x.ncols();
    let w = params.slice(s![..d]);
    let z = x.dot(&w) + params[d];
    // d/dz of −ln σ(±z) is σ(z) − [y].
    let r: Array1<f64> = z
        .iter()
        .zip(y)
        .map(|(&z, &y)| 1.0 / (1.0 + (-z).exp()) - f64::from(u8::from(y)))
        .collect();
    let gw = x.t().dot(&r) + &w * alpha;
    let gb = r.sum();
    (gw.dot(&gw) + gb * gb).sqrt()
}

/// How the optimiser ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// L-BFGS iterations run (in whole chunks).
    pub iterations: u64,
    /// Gradient norm at the returned weights.
    pub gradient_norm: f64,
    pub converged: bool,
}

/// Fits linfa's logistic regression in chunks of `chunk_iterations`
/// L-BFGS iterations, warm-starting each chunk from the last weights, until
/// the gradient norm is below the tolerance or the budget is spent.
fn fit_logistic(
    x: &Array2<f64>,
    y: &[bool],
    hp: &HyperParameters,
    stage: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<(FittedLogisticRegression<f64, bool>, FitReport), SentimentError> {
    let d = x.ncols();
    progress(Progress::Stage {
        name: stage,
        total: hp.max_iterations,
    });
    let dataset = DatasetBase::new(x.view(), Array1::from(y.to_vec()));
    let mut params: Option<Array1<f64>> = None;
    let mut fitted = None;
    let mut iterations = 0;
    let mut norm = f64::INFINITY;
    while iterations < hp.max_iterations && norm >= hp.gradient_tolerance {
        let n = hp.chunk_iterations.min(hp.max_iterations - iterations);
        let mut lr = LogisticRegression::default()
            .alpha(hp.alpha)
            .max_iterations(n)
            .gradient_tolerance(hp.gradient_tolerance);
        if let Some(p) = params.take() {
            lr = lr.initial_params(p);
        }
        let f = lr
            .fit(&dataset)
            .map_err(|e| SentimentError::Training(e.to_string()))?;
        let mut p = Array1::zeros(d + 1);
        p.slice_mut(s![..d]).assign(f.params());
        p[d] = f.intercept();
        iterations += n;
        norm = gradient_norm(x, y, hp.alpha, &p);
        progress(Progress::Advance(n));
        params = Some(p);
        fitted = Some(f);
    }
    progress(Progress::Advance(hp.max_iterations - iterations));
    let fitted = fitted.ok_or_else(|| SentimentError::Training("no iterations".into()))?;
    Ok((
        fitted,
        FitReport {
            iterations,
            gradient_norm: norm,
            converged: norm < hp.gradient_tolerance,
        },
    ))
}

/// What [`train`] returns besides the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub training_rows: usize,
    /// Held out for the validation metrics (then used in the final fit).
    pub validation_rows: usize,
    /// Terms in the naive-Bayes tables.
    pub terms: usize,
    pub features: usize,
    pub fit: FitReport,
    /// Metrics on the validation rows of a model fitted without them (VADER
    /// computed by the bundled port); `None` without validation.
    pub validation: Option<Evaluation>,
}

/// Trains the model on the training rows of `corpus` (never the test rows).
pub fn train(
    corpus: &[Example],
    version: &str,
    hp: &HyperParameters,
    progress: &mut dyn FnMut(Progress),
) -> Result<(TrainedSentiment, TrainReport), SentimentError> {
    hp.check()?;
    let rows = training_rows(corpus);
    let validation = if hp.validation_fraction > 0.0 {
        let (fit_rows, val_rows): (Vec<&Example>, Vec<&Example>) =
            rows.iter().partition(|e| !is_validation(e, hp));
        let (model, _) = fit(&fit_rows, version, hp, "validation ", progress)?;
        let vader = bundled_vader();
        let compound: Vec<f64> = val_rows
            .iter()
            .map(|e| vader.polarity(&e.text).compound)
            .collect();
        Some(evaluate_rows(&model, &val_rows, &compound)?)
    } else {
        None
    };
    let (model, fit_report) = fit(&rows, version, hp, "", progress)?;
    let report = TrainReport {
        training_rows: rows.len(),
        validation_rows: rows.iter().filter(|e| is_validation(e, hp)).count(),
        terms: model.table.terms.len(),
        features: model.featurizer.dim(),
        fit: fit_report,
        validation,
    };
    Ok((model, report))
}

/// Fits the featuriser and the regression on `rows`.
fn fit(
    rows: &[&Example],
    version: &str,
    hp: &HyperParameters,
    stage_prefix: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<(TrainedSentiment, FitReport), SentimentError> {
    let vader = bundled_vader();
    progress(Progress::Stage {
        name: &format!("{stage_prefix}features"),
        total: rows.len() as u64,
    });
    let mut docs = Vec::with_capacity(rows.len());
    let mut lexicon = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let tokens = tokenize(&row.text, &vader);
        lexicon.push(lexicon_features(&row.text, &tokens, &vader));
        docs.push(Doc {
            terms: text_terms(&row.text, &tokens, hp.bigrams),
            domain: row.set,
            positive: row.label() == Some(true),
        });
        if i % 512 == 511 {
            progress(Progress::Advance(512));
        }
    }
    progress(Progress::Advance(rows.len() as u64 % 512));

    // Cross-fitting: a training text's naive-Bayes features come from the
    // tables of the other folds; the model's tables count every text.
    progress(Progress::Stage {
        name: &format!("{stage_prefix}naive Bayes"),
        total: hp.nb_folds as u64 + 1,
    });
    let folds: Vec<usize> = rows.iter().map(|e| nb_fold(e, hp)).collect();
    let mut raws = vec![Vec::new(); rows.len()];
    for k in 0..hp.nb_folds {
        let others = docs.iter().zip(&folds).filter(|(_, &f)| f != k);
        let table = CountTable::build(others.map(|(d, _)| d), hp.min_df);
        let nb = NaiveBayes::from_counts(&table, hp.min_df, hp.nb_smoothing);
        for i in (0..rows.len()).filter(|&i| folds[i] == k) {
            raws[i] = unscaled(&nb, &nb.ids(&docs[i].terms), &lexicon[i], hp.domain_gating);
        }
        progress(Progress::Advance(1));
    }
    let table = CountTable::build(docs.iter(), hp.min_df);
    let nb = NaiveBayes::from_counts(&table, hp.min_df, hp.nb_smoothing);
    progress(Progress::Advance(1));

    let n = rows.len() as f64;
    let width = standardised_len(hp.domain_gating);
    let mut mean = vec![0.0; width];
    let mut scale = vec![1.0; width];
    for k in 0..width {
        let m = raws.iter().map(|r| r[k]).sum::<f64>() / n;
        let var = raws.iter().map(|r| (r[k] - m).powi(2)).sum::<f64>() / n;
        mean[k] = m;
        if var > 1e-12 {
            scale[k] = var.sqrt();
        }
    }
    let featurizer = Featurizer {
        bigrams: hp.bigrams,
        domain_gating: hp.domain_gating,
        nb,
        mean,
        scale,
        vader,
    };
    // Column-major: linfa's gradient computes Xᵀr, a run of contiguous dot
    // products in this layout and a cache-hostile strided walk in row-major.
    let x = featurizer.matrix(&raws, true);
    let labels: Vec<bool> = docs.iter().map(|d| d.positive).collect();
    let (logistic, report) =
        fit_logistic(&x, &labels, hp, &format!("{stage_prefix}fit"), progress)?;
    Ok((
        TrainedSentiment {
            version: version.to_owned(),
            hyper_parameters: hp.clone(),
            table,
            featurizer,
            logistic,
        },
        report,
    ))
}

// ------------------------------------------------------------- the model ----

/// The trained sentiment model, ready to score texts.
#[derive(Debug, Clone)]
pub struct TrainedSentiment {
    version: String,
    hyper_parameters: HyperParameters,
    table: CountTable,
    featurizer: Featurizer,
    logistic: FittedLogisticRegression<f64, bool>,
}

/// `model.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Artefact {
    format: u32,
    kind: String,
    schema: u32,
    version: String,
    /// SHA-256 of the VADER lexicons the features were computed with.
    vader_lexicon_sha256: String,
    hyper_parameters: HyperParameters,
    /// Column names of the regression.
    features: Vec<String>,
    /// Standardisation of the leading features.
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// Naive-Bayes counts; the ratios and the domain model derive from them.
    term_counts: CountTable,
    logistic: FittedLogisticRegression<f64, bool>,
}

impl TrainedSentiment {
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn hyper_parameters(&self) -> &HyperParameters {
        &self.hyper_parameters
    }

    /// Number of regression columns.
    pub fn dim(&self) -> usize {
        self.featurizer.dim()
    }

    /// The regression's weights towards a positive rating by feature name,
    /// intercept first.
    pub fn weights(&self) -> Vec<(String, f64)> {
        let sign = if self.logistic.labels().pos.class {
            1.0
        } else {
            -1.0
        };
        let names = feature_names(self.hyper_parameters.domain_gating);
        std::iter::once(("intercept".to_string(), self.logistic.intercept()))
            .chain(
                names
                    .into_iter()
                    .zip(self.logistic.params().iter().copied()),
            )
            .map(|(n, w)| (n, sign * w))
            .collect()
    }

    /// The artefact as (compact) JSON; the weights round-trip exactly.
    pub fn to_json(&self) -> String {
        let artefact = Artefact {
            format: FORMAT,
            kind: KIND.into(),
            schema: crate::model::SCHEMA,
            version: self.version.clone(),
            vader_lexicon_sha256: lexicon_fingerprint(),
            hyper_parameters: self.hyper_parameters.clone(),
            features: feature_names(self.hyper_parameters.domain_gating),
            mean: self.featurizer.mean.clone(),
            scale: self.featurizer.scale.clone(),
            term_counts: self.table.clone(),
            logistic: self.logistic.clone(),
        };
        let mut s = serde_json::to_string(&artefact).expect("plain data serialises");
        s.push('\n');
        s
    }

    /// Parses and validates an artefact. Every inconsistency is an error,
    /// so a model that loads can score any text without tripping linfa's
    /// assertions.
    pub fn from_json(json: &str) -> Result<Self, SentimentError> {
        let bad = |m: String| Err(SentimentError::Artefact(m));
        let de = &mut serde_json::Deserializer::from_str(json);
        let a: Artefact = serde_path_to_error::deserialize(de)
            .map_err(|e| SentimentError::Artefact(e.to_string()))?;
        if let Err(m) = crate::model::check_header((a.format, FORMAT), (&a.kind, KIND), a.schema) {
            return bad(m);
        }
        let hp = a.hyper_parameters;
        hp.check()
            .map_err(|e| SentimentError::Artefact(format!("hyper_parameters: {e}")))?;
        let names = feature_names(hp.domain_gating);
        if a.features != names {
            return bad(format!(
                "feature dimension mismatch: its {} features differ from this build's {}",
                a.features.len(),
                names.len()
            ));
        }
        let weights = a.logistic.params().len();
        if weights != names.len() {
            return bad(format!(
                "feature dimension mismatch: {weights} weights for {} features",
                names.len()
            ));
        }
        let width = standardised_len(hp.domain_gating);
        if a.mean.len() != width || a.scale.len() != width {
            return bad(format!(
                "{}/{} standardisation values, expected {width}",
                a.mean.len(),
                a.scale.len()
            ));
        }
        if a.vader_lexicon_sha256 != lexicon_fingerprint() {
            return bad("it was built with other VADER lexicons than this binary's".into());
        }
        let finite = |xs: &[f64]| xs.iter().all(|x| x.is_finite());
        if !finite(&a.mean)
            || !a.scale.iter().all(|s| s.is_finite() && *s > 0.0)
            || !a.logistic.params().iter().all(|w| w.is_finite())
            || !a.logistic.intercept().is_finite()
        {
            return bad("non-finite weights or standardisation".into());
        }
        let labels = a.logistic.labels();
        if labels.pos.class == labels.neg.class || labels.pos.label <= labels.neg.label {
            return bad("its regression does not separate `mean > 0` from the rest".into());
        }
        let table = a.term_counts;
        if table.terms.len() != table.counts.len() {
            return bad(format!(
                "{} terms but {} count rows",
                table.terms.len(),
                table.counts.len()
            ));
        }
        if !table.terms.windows(2).all(|w| w[0] < w[1]) {
            return bad("the term table is not strictly sorted".into());
        }
        let nb = NaiveBayes::from_counts(&table, hp.min_df, hp.nb_smoothing);
        Ok(Self {
            version: a.version,
            featurizer: Featurizer {
                bigrams: hp.bigrams,
                domain_gating: hp.domain_gating,
                nb,
                mean: a.mean,
                scale: a.scale,
                vader: bundled_vader(),
            },
            hyper_parameters: hp,
            table,
            logistic: a.logistic,
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), SentimentError> {
        std::fs::write(path, self.to_json()).map_err(|source| SentimentError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn load(path: &Path) -> Result<Self, SentimentError> {
        Self::from_json(&read(path)?).map_err(|e| match e {
            SentimentError::Artefact(message) => SentimentError::Data {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// P(mean rating > 0) for each text.
    pub fn probabilities(&self, texts: &[&str]) -> Result<Vec<f64>, SentimentError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(256) {
            let raws: Vec<Vec<f64>> = chunk.iter().map(|t| self.featurizer.unscaled(t)).collect();
            let x = self.featurizer.matrix(&raws, false);
            out.extend(self.predict(&x)?);
        }
        Ok(out)
    }

    /// linfa's prediction, after the shape check linfa would make by
    /// panicking.
    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>, SentimentError> {
        let want = self.logistic.params().len();
        if x.ncols() != want {
            return Err(SentimentError::Shape {
                got: x.ncols(),
                want,
            });
        }
        let p = self.logistic.predict_probabilities(x);
        // linfa's positive class is the more frequent one in training.
        Ok(if self.logistic.labels().pos.class {
            p
        } else {
            p.mapv_into(|p| 1.0 - p)
        })
    }

    /// Sentiment scores `2p − 1` (see [`SentimentModel::score`]).
    pub fn scores(&self, texts: &[&str]) -> Result<Vec<f64>, SentimentError> {
        let p = self.probabilities(texts)?;
        Ok(texts.iter().zip(p).map(|(t, p)| to_score(t, p)).collect())
    }
}

fn to_score(text: &str, p: f64) -> f64 {
    if text.trim().is_empty() || !p.is_finite() {
        return 0.0;
    }
    (2.0 * p - 1.0).clamp(-1.0, 1.0)
}

impl SentimentModel for TrainedSentiment {
    fn version(&self) -> &str {
        &self.version
    }

    fn score(&self, text: &str) -> f64 {
        if text.trim().is_empty() {
            return 0.0;
        }
        match self.probabilities(&[text]) {
            Ok(p) => to_score(text, p[0]),
            // Unreachable for a validated artefact; neutral, not a panic.
            Err(_) => 0.0,
        }
    }
}

// ------------------------------------------------------------ evaluation ----

/// AUCs of the model and of VADER on one group of test rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetMetrics {
    pub set: String,
    /// Test rows with a non-zero mean.
    pub rows: usize,
    pub positives: usize,
    pub model_auc: f64,
    pub vader_auc: f64,
    pub model_log_loss: f64,
}

/// The evaluation of a model on the test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The four sets, then `all`.
    pub sets: Vec<SetMetrics>,
    /// Reliability of `p` over all test rows, 10 bins.
    pub calibration: Vec<CalibrationBin>,
}

impl Evaluation {
    pub fn overall(&self) -> &SetMetrics {
        self.sets.last().expect("evaluate always adds `all`")
    }

    /// The acceptance targets that are not met (empty = all met).
    pub fn unmet_targets(&self) -> Vec<String> {
        let mut unmet = Vec::new();
        let all = self.overall();
        if all.model_auc < TARGET_OVERALL_AUC {
            unmet.push(format!(
                "overall AUC {:.4} < {TARGET_OVERALL_AUC}",
                all.model_auc
            ));
        }
        for s in &self.sets {
            if s.model_auc < s.vader_auc {
                unmet.push(format!(
                    "{}: AUC {:.4} < VADER's {:.4}",
                    s.set, s.model_auc, s.vader_auc
                ));
            }
        }
        unmet
    }

    /// Side-by-side table of model and VADER AUCs.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<8} {:>6} {:>6} {:>10} {:>10} {:>8} {:>9}\n",
            "set", "rows", "pos", "model AUC", "VADER AUC", "delta", "log loss"
        );
        for s in &self.sets {
            out.push_str(&format!(
                "{:<8} {:>6} {:>6} {:>10.4} {:>10.4} {:>+8.4} {:>9.4}\n",
                s.set,
                s.rows,
                s.positives,
                s.model_auc,
                s.vader_auc,
                s.model_auc - s.vader_auc,
                s.model_log_loss
            ));
        }
        out
    }
}

/// Evaluates `model` on the test rows of `corpus`; `vader_compound` is
/// VADER's compound score for every corpus row (see
/// [`load_vader_reference`]).
pub fn evaluate(
    model: &TrainedSentiment,
    corpus: &[Example],
    vader_compound: &[f64],
) -> Result<Evaluation, SentimentError> {
    if vader_compound.len() != corpus.len() {
        return Err(SentimentError::Training(format!(
            "{} VADER scores for {} rows",
            vader_compound.len(),
            corpus.len()
        )));
    }
    let (rows, vader): (Vec<&Example>, Vec<f64>) = corpus
        .iter()
        .zip(vader_compound)
        .filter(|(e, _)| e.is_test() && e.label().is_some())
        .unzip();
    evaluate_rows(model, &rows, &vader)
}

/// Model and VADER (`vader_compound[i]` for `rows[i]`) AUCs on `rows`, per
/// set and all together; rows without a sign are skipped.
pub fn evaluate_rows(
    model: &TrainedSentiment,
    rows: &[&Example],
    vader_compound: &[f64],
) -> Result<Evaluation, SentimentError> {
    let (rows, vader): (Vec<&Example>, Vec<f64>) = rows
        .iter()
        .zip(vader_compound)
        .filter(|(e, _)| e.label().is_some())
        .map(|(e, v)| (*e, *v))
        .unzip();
    let texts: Vec<&str> = rows.iter().map(|e| e.text.as_str()).collect();
    let p = model.probabilities(&texts)?;
    let labels: Vec<bool> = rows.iter().map(|e| e.label() == Some(true)).collect();

    let group = |name: &str, members: &[usize]| -> Result<SetMetrics, SentimentError> {
        let pick = |xs: &[f64]| members.iter().map(|&k| xs[k]).collect::<Vec<f64>>();
        let l: Vec<bool> = members.iter().map(|&k| labels[k]).collect();
        let pm = pick(&p);
        Ok(SetMetrics {
            set: name.to_owned(),
            rows: members.len(),
            positives: l.iter().filter(|&&y| y).count(),
            model_auc: metrics::roc_auc(&pm, &l)?,
            vader_auc: metrics::roc_auc(&pick(&vader), &l)?,
            model_log_loss: metrics::log_loss(&pm, &l)?,
        })
    };
    let mut sets = Vec::new();
    for (s, name) in SET_NAMES.iter().enumerate() {
        let members: Vec<usize> = (0..rows.len()).filter(|&k| rows[k].set == s).collect();
        sets.push(group(name, &members)?);
    }
    let everyone: Vec<usize> = (0..rows.len()).collect();
    sets.push(group("all", &everyone)?);
    Ok(Evaluation {
        sets,
        calibration: metrics::calibration(&p, &labels, 10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(set: usize, line: usize, mean: f64, text: &str) -> Example {
        Example {
            set,
            id: line.to_string(),
            line,
            mean,
            text: text.to_owned(),
        }
    }

    /// A small corpus with sentiment words, negation and all four domains.
    fn tiny_corpus() -> Vec<Example> {
        let positive = [
            "I love this, great service!",
            "what a wonderful film , truly moving .",
            "the battery is excellent and the screen is good.",
            "A fine, thoughtful decision by the council.",
            "not bad at all, happy with it :)",
            "@anonymous thanks so much, you are awesome",
        ];
        let negative = [
            "Terrible. The order arrived broken.",
            "a dull , lifeless mess of a movie .",
            "the remote is awful and the buttons are bad.",
            "A reckless, shameful policy that hurts families.",
            "not good, I hate waiting :(",
            "@anonymous worst day ever, so sad",
        ];
        let mut rows = Vec::new();
        let mut line = [0usize; 4];
        for round in 0..4 {
            for (i, (p, n)) in positive.iter().zip(&negative).enumerate() {
                let set = i % 4;
                for (text, mean) in [(p, 1.5 + round as f64 / 4.0), (n, -1.5)] {
                    line[set] += 1;
                    rows.push(example(set, line[set], mean, text));
                }
            }
        }
        rows
    }

    fn tiny_hp() -> HyperParameters {
        HyperParameters {
            min_df: 1,
            nb_folds: 2,
            alpha: 1.0,
            max_iterations: 60,
            chunk_iterations: 20,
            ..HyperParameters::default()
        }
    }

    fn tiny_model() -> TrainedSentiment {
        train(&tiny_corpus(), "sentiment-test-1", &tiny_hp(), &mut |_| {})
            .unwrap()
            .0
    }

    #[test]
    fn the_counted_dimension_matches_the_listed_feature_names() {
        for gating in [false, true] {
            assert_eq!(feature_dim(gating), feature_names(gating).len(), "{gating}");
        }
    }

    #[test]
    fn every_fifth_line_is_a_test_row() {
        let file: String = (1..=12)
            .map(|i| format!("{i}\t{}.5\ttext number {i}\r\n", i % 3))
            .collect();
        let rows = parse_ground_truth(2, &file).unwrap();
        assert_eq!(rows.len(), 12);
        let test: Vec<usize> = rows
            .iter()
            .filter(|r| r.is_test())
            .map(|r| r.line)
            .collect();
        assert_eq!(test, [5, 10]);
        assert_eq!(rows[4].id, "5");
        assert_eq!(rows[4].text, "text number 5");
        assert_eq!(rows[4].set, 2);
        assert!((1..=20).filter(|&l| is_test_line(l)).eq([5, 10, 15, 20]));
        // Training never sees a test row.
        let corpus: Vec<Example> = rows;
        assert!(training_rows(&corpus).iter().all(|r| r.line % 5 != 0));
    }

    #[test]
    fn labels_and_malformed_lines() {
        assert_eq!(example(0, 1, 0.1, "").label(), Some(true));
        assert_eq!(example(0, 1, -0.1, "").label(), Some(false));
        assert_eq!(example(0, 1, 0.0, "").label(), None);
        let err = parse_ground_truth(0, "1\t0.5\tok\r\n2\tnot-a-number\ttext\r\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(parse_ground_truth(0, "1\t0.5\r\n").is_err());
    }

    #[test]
    fn negation_marks_words_up_to_the_next_punctuation() {
        let vader = bundled_vader();
        let tokens = tokenize("I don't like it. Great!! @bob http://x.y", &vader);
        let t = terms(&tokens, true);
        for want in [
            "not_like",
            "not_it",
            "dont like",
            "great",
            "!",
            "<user>",
            "<url>",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} missing from {t:?}");
        }
        assert!(!t.iter().any(|x| x == "not_great"), "{t:?}");
        // Elongation is normalised, emoticons are kept whole.
        let t = terms(&tokenize("sooooo good :) :D", &vader), false);
        assert_eq!(t, ["soo", "good", ":)", ":d"]);
    }

    #[test]
    fn the_term_index_finds_each_term_at_its_row_and_nothing_else() {
        let terms: Vec<String> = ["", "a", "ab", "b", "not_good", "good", "ünï", "😀 x"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        let index = TermIndex::new(&terms);
        for (row, term) in (0..).zip(&terms) {
            assert_eq!(index.get(term), Some(row), "{term:?}");
        }
        // Neighbours' texts run together in the index's buffer: neither a
        // join of two terms nor a part of one is a term.
        let absent = [
            "aab",
            "abb",
            "bnot_good",
            "goo",
            "ood",
            "not_",
            "ün",
            "A",
            " ",
        ];
        for absent in absent {
            assert_eq!(index.get(absent), None, "{absent:?}");
        }
        let model = tiny_model();
        let table = &model.table;
        let index = &model.featurizer.nb.index;
        for (row, term) in (0..).zip(&table.terms) {
            assert_eq!(index.get(term), Some(row), "{term:?}");
        }
        assert_eq!(index, &TermIndex::new(&table.terms));
        assert_ne!(index, &TermIndex::new(&table.terms[1..]));
    }

    #[test]
    fn scoring_finds_the_same_term_rows_as_the_training_term_lists() {
        let model = tiny_model();
        let f = &model.featurizer;
        let texts = [
            "I don't like it. Great!! @bob http://x.y",
            "sooooo good :) :D </3 but NOT great, never again?!",
            "ΟΔΟΣ Σ ΣΑΣ İstanbul ﬁne café — Don’t; WWW.EXAMPLE.COM &amp; &lt;3",
            "",
            "   !!! ??? ... ,,, ",
            "the the the good good bad bad not not but but",
            "a👍b 😀 x:)y :-( ;) 123 4ever L8R",
        ];
        for text in texts {
            let tokens = tokenize(text, &f.vader);
            let by_list = f.nb.ids(&text_terms(text, &tokens, f.bigrams));
            assert_eq!(
                known_term_ids(text, &tokens, f.bigrams, &f.nb),
                by_list,
                "{text:?}"
            );
        }
    }

    #[test]
    fn training_is_deterministic_and_the_artefact_round_trips() {
        let a = tiny_model();
        let b = tiny_model();
        let json = a.to_json();
        assert_eq!(json, b.to_json(), "same data and seed, same bytes");
        let loaded = TrainedSentiment::from_json(&json).unwrap();
        assert_eq!(loaded.to_json(), json);
        assert_eq!(loaded.version(), "sentiment-test-1");
        let texts = [
            "I love it",
            "awful, broken and late",
            "not bad",
            "",
            "@anonymous :(",
        ];
        let before = a.probabilities(&texts).unwrap();
        let after = loaded.probabilities(&texts).unwrap();
        for (x, y) in before.iter().zip(&after) {
            assert_eq!(x.to_bits(), y.to_bits());
        }
        assert!(a.score("I love this, great service!") > a.score("Terrible, I hate it."));
    }

    #[test]
    fn scores_are_finite_and_in_range_and_empty_text_is_neutral() {
        let m = tiny_model();
        assert_eq!(m.score(""), 0.0);
        assert_eq!(m.score(" \t\n"), 0.0);
        let long = "good ".repeat(5000);
        for text in [
            "!!!!!!!!!!!!!!!!!!!!????",
            "😀😀😀",
            "\u{0}\u{1c}",
            long.as_str(),
            "NOT GOOD AT ALL!!!",
        ] {
            let s = m.score(text);
            assert!(s.is_finite() && (-1.0..=1.0).contains(&s), "{text:?}: {s}");
        }
    }

    #[test]
    fn a_wrong_feature_count_is_an_error_not_a_panic() {
        let m = tiny_model();
        let x = Array2::zeros((2, m.dim() + 1));
        assert!(matches!(
            m.predict(&x),
            Err(SentimentError::Shape { got, want }) if got == want + 1
        ));
    }

    #[test]
    fn corrupt_or_mismatched_artefacts_are_refused() {
        let json = tiny_model().to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let refuse = |v: &serde_json::Value, needle: &str| {
            let err = TrainedSentiment::from_json(&v.to_string())
                .err()
                .unwrap_or_else(|| panic!("accepted an artefact that should fail on {needle}"))
                .to_string();
            assert!(err.contains(needle), "{err:?} does not mention {needle:?}");
        };

        assert!(TrainedSentiment::from_json(&json[..json.len() / 2]).is_err());
        assert!(TrainedSentiment::from_json("").is_err());

        let mut v = value.clone();
        let params = &mut v["logistic"]["params"];
        params["data"].as_array_mut().unwrap().pop();
        params["dim"][0] = serde_json::json!(params["data"].as_array().unwrap().len());
        refuse(&v, "feature dimension mismatch");

        let mut v = value.clone();
        v["features"].as_array_mut().unwrap().pop();
        refuse(&v, "feature dimension mismatch");

        let mut v = value.clone();
        v["schema"] = serde_json::json!(99);
        refuse(&v, "schema 99");

        let mut v = value.clone();
        v["format"] = serde_json::json!(2);
        refuse(&v, "format 2");

        let mut v = value.clone();
        v["vader_lexicon_sha256"] = serde_json::json!("00");
        refuse(&v, "VADER lexicons");

        let mut v = value.clone();
        v["scale"][0] = serde_json::json!(0.0);
        refuse(&v, "standardisation");

        let mut v = value.clone();
        v["term_counts"]["terms"].as_array_mut().unwrap().reverse();
        refuse(&v, "sorted");

        let mut v = value.clone();
        v["hyper_parameters"]["nb_smoothing"] = serde_json::json!(0.0);
        refuse(&v, "nb_smoothing");

        let mut v = value;
        v["surprise"] = serde_json::json!(1);
        refuse(&v, "surprise");
    }

    #[test]
    fn evaluation_compares_model_and_vader_per_set() {
        let corpus = tiny_corpus();
        let m = tiny_model();
        let vader = bundled_vader();
        let compound: Vec<f64> = corpus
            .iter()
            .map(|e| vader.polarity(&e.text).compound)
            .collect();
        let rows: Vec<&Example> = corpus.iter().collect();
        let ev = evaluate_rows(&m, &rows, &compound).unwrap();
        assert_eq!(ev.sets.len(), 5);
        assert_eq!(ev.overall().set, "all");
        assert_eq!(ev.overall().rows, corpus.len());
        assert!(ev.table().contains("VADER AUC"));
        assert!(evaluate(&m, &corpus, &compound[1..]).is_err());
    }

    #[test]
    fn validation_rows_are_a_seeded_share_of_the_training_rows() {
        let corpus: Vec<Example> = (1..=2000).map(|l| example(l % 4, l, 1.0, "x")).collect();
        let hp = HyperParameters {
            validation_fraction: 0.2,
            ..HyperParameters::default()
        };
        let picked = corpus.iter().filter(|e| is_validation(e, &hp)).count();
        assert!((330..470).contains(&picked), "{picked}");
        let other = HyperParameters {
            seed: 1,
            ..hp.clone()
        };
        assert!(corpus
            .iter()
            .any(|e| is_validation(e, &hp) != is_validation(e, &other)));
    }
}
