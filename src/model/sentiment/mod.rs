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

use std::path::{Path, PathBuf};

use linfa_logistic::FittedLogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::domain::sentiment::SentimentModel;
use crate::model::metrics::MetricError;

mod data;
mod evaluate;
mod features;
mod lexicon;
mod naive_bayes;
mod tokens;
mod train;

pub use data::{is_test_line, load_corpus, load_vader_reference, parse_ground_truth, Example};
pub use evaluate::{evaluate, evaluate_rows, Evaluation, SetMetrics};
pub use features::feature_names;
pub use lexicon::LEXICON_FEATURES;
pub use train::{
    is_validation, lexicon_fingerprint, train, training_rows, FitReport, HyperParameters, Progress,
    TrainReport,
};

use features::{standardised_len, Featurizer};
use naive_bayes::{CountTable, NaiveBayes};
use train::bundled_vader;

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
        super::true_class_probabilities(&self.logistic, x)
            .map_err(|(got, want)| SentimentError::Shape { got, want })
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

#[cfg(test)]
mod tests {
    use super::*;
    use super::{data::*, features::*, naive_bayes::*, tokens::*, train::*};
    use crate::model::artefact_tests::{refuses, Case, COMMON};

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
        assert!(TrainedSentiment::from_json(&json[..json.len() / 2]).is_err());
        assert!(TrainedSentiment::from_json("").is_err());
        refuses(&value, &COMMON, TrainedSentiment::from_json);
        let cases: [Case; 5] = [
            ("format 2", |v| v["format"] = serde_json::json!(2)),
            ("VADER lexicons", |v| {
                v["vader_lexicon_sha256"] = serde_json::json!("00")
            }),
            ("standardisation", |v| {
                v["scale"][0] = serde_json::json!(0.0)
            }),
            ("sorted", |v| {
                v["term_counts"]["terms"].as_array_mut().unwrap().reverse()
            }),
            ("nb_smoothing", |v| {
                v["hyper_parameters"]["nb_smoothing"] = serde_json::json!(0.0)
            }),
        ];
        refuses(&value, &cases, TrainedSentiment::from_json);
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
