//! The lexicon block of features: VADER's scores and valence sums, split by
//! polarity and negation scope, and style cues.

use super::tokens::{Piece, Tokens};
use crate::domain::sentiment::vader::Vader;

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
pub(super) const N_LEXICON: usize = 28;

pub(super) fn lexicon_features(text: &str, tokens: &Tokens, vader: &Vader) -> [f64; N_LEXICON] {
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
