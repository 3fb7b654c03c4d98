//! Text → feature vector: the base block (naive-Bayes summaries and the
//! lexicon block), the domain block, standardising and the gated products.

use ndarray::{Array2, ArrayViewMut1, ShapeBuilder};

use super::lexicon::{lexicon_features, LEXICON_FEATURES, N_LEXICON};
use super::naive_bayes::{
    known_term_ids, NaiveBayes, NB_FEATURES, N_DOMAINS, N_DOMAIN_DENSE, N_NB,
};
use super::tokens::tokenize;
use super::SET_NAMES;
use crate::domain::sentiment::vader::Vader;

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
pub(super) fn feature_dim(domain_gating: bool) -> usize {
    N_BASE
        + if domain_gating {
            N_DOMAIN_DENSE + N_DOMAINS * (N_BASE + 2)
        } else {
            0
        }
}

/// How many leading features are standardised (the rest are products).
pub(super) fn standardised_len(domain_gating: bool) -> usize {
    N_BASE + if domain_gating { N_DOMAIN_DENSE } else { 0 }
}

/// The features of a text before standardising: the base block, then the
/// domain block with gating.
pub(super) fn unscaled(
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
pub(super) struct Featurizer {
    pub(super) bigrams: bool,
    pub(super) domain_gating: bool,
    pub(super) nb: NaiveBayes,
    pub(super) mean: Vec<f64>,
    pub(super) scale: Vec<f64>,
    pub(super) vader: Vader,
}

impl Featurizer {
    /// The number of columns: as [`feature_names`] lists them, counted
    /// without building the names (this runs on every prediction).
    pub(super) fn dim(&self) -> usize {
        feature_dim(self.domain_gating)
    }

    pub(super) fn unscaled(&self, text: &str) -> Vec<f64> {
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
    pub(super) fn matrix(&self, raws: &[Vec<f64>], column_major: bool) -> Array2<f64> {
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
