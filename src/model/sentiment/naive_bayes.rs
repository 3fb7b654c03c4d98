//! The naive-Bayes evidence: n-gram counts per class and domain, their
//! log-count ratios (cross-fitted in training), the domain posterior, and
//! the term index that finds a text's terms in the tables.

use std::collections::HashMap;
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

use super::tokens::{terms, visit_terms, Tokens};
use super::SETS;

pub(super) const N_DOMAINS: usize = SETS.len();

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
pub(super) fn text_terms(text: &str, tokens: &Tokens, bigrams: bool) -> Vec<String> {
    let mut t = terms(tokens, bigrams);
    t.extend(style_terms(text).into_iter().flatten().map(String::from));
    t.sort_unstable();
    t.dedup();
    t
}

/// The rows in `nb` of [`text_terms`]'s terms, in the same order, found
/// without building the list: ids follow the term table's sort order, so
/// sorting ids sorts terms, and unknown terms drop out either way.
pub(super) fn known_term_ids(
    text: &str,
    tokens: &Tokens,
    bigrams: bool,
    nb: &NaiveBayes,
) -> Vec<u32> {
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

pub(super) fn total(c: &DomainCounts) -> u32 {
    c.iter().flatten().sum()
}

/// The sufficient statistics of the naive-Bayes models: for every term in
/// at least `min_df` texts, how many texts of each domain and label contain
/// it. Stored in the artefact; the ratios are recomputed from it on load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CountTable {
    /// Number of texts per domain and label.
    texts: DomainCounts,
    /// Strictly increasing.
    pub(super) terms: Vec<String>,
    pub(super) counts: Vec<DomainCounts>,
}

/// A training text as the naive-Bayes models see it.
pub(super) struct Doc {
    pub(super) terms: Vec<String>,
    pub(super) domain: usize,
    pub(super) positive: bool,
}

impl CountTable {
    pub(super) fn build<'a>(docs: impl Iterator<Item = &'a Doc>, min_df: usize) -> Self {
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
pub(super) struct NaiveBayes {
    /// Each term's row in `stats` (the term table's order).
    pub(super) index: TermIndex,
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
pub(super) struct TermIndex {
    rows: hashbrown::HashTable<u32>,
    /// Every term's text, in row order.
    text: String,
    /// Where row `i`'s text ends in `text` (it starts where row `i - 1`'s ends).
    ends: Vec<usize>,
    hasher: foldhash::fast::RandomState,
}

impl TermIndex {
    pub(super) fn new(terms: &[String]) -> Self {
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

    pub(super) fn get(&self, term: &str) -> Option<u32> {
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
pub(super) const NB_FEATURES: [&str; N_NB] =
    ["nb_sum", "nb_mean", "nb_sum_sqrt", "nb_max", "nb_min"];
pub(super) const N_NB: usize = 5;
/// Domain posteriors, then `[sum/√n, mean]` of each domain's own ratios.
pub(super) const N_DOMAIN_DENSE: usize = 3 * N_DOMAINS;

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
    pub(super) fn from_counts(table: &CountTable, min_df: usize, smoothing: f64) -> Self {
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
    pub(super) fn ids(&self, terms: &[String]) -> Vec<u32> {
        terms.iter().filter_map(|t| self.index.get(t)).collect()
    }

    /// The naive-Bayes features of a text's distinct known terms, given as
    /// increasing rows: the sums below run in that order, so the result
    /// does not depend on how the rows were found.
    pub(super) fn features(&self, ids: &[u32]) -> ([f64; N_NB], [f64; N_DOMAIN_DENSE]) {
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
