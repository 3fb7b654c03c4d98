//! VADER (Valence Aware Dictionary and sEntiment Reasoner), ported from
//! `vaderSentiment` 3.3.2.
//!
//! VADER is a lexicon- and rule-based sentiment analyser tuned for short,
//! informal text: every token is looked up in a human-rated valence lexicon
//! and the valence is then adjusted by a handful of heuristics (negations,
//! degree adverbs such as "very"/"kind of", ALL-CAPS emphasis, the contrastive
//! "but", "least", a few idioms, and `!`/`?` emphasis).
//!
//! Original work: C.J. Hutto, <https://github.com/cjhutto/vaderSentiment>,
//! MIT licence, Copyright (c) 2016 C.J. Hutto. Please cite Hutto, C.J. &
//! Gilbert, E.E. (2014). *VADER: A Parsimonious Rule-based Model for Sentiment
//! Analysis of Social Media Text.* ICWSM-14.
//!
//! It lives in fairtreat for two reasons: it is the transparent baseline
//! scorer that learned models have to beat, and its per-token lexicon valences
//! ([`Vader::valence`]) are reused as model features.
//!
//! The port reproduces `SentimentIntensityAnalyzer().polarity_scores(text)`
//! of the Python 3.3.2 release bit for bit (checked on all 23,703 ICWSM-2014
//! ground-truth snippets), including its quirks, because the baseline is only
//! meaningful if it is the published VADER and not a "cleaned up" variant.
//! The quirks that change results are:
//!
//! * `SPECIAL_CASES` is the 3.3.2 table (`"beating heart": 3.5`, no
//!   `"broken heart"`); the upstream repository's master has since changed it.
//! * `SENTIMENT_LADEN_IDIOMS` is defined upstream but never consulted, so it is
//!   not ported.
//! * The special-case check (and the "kind of"/"sort of" dampener inside it)
//!   only runs when a third token before the sentiment word exists and is not
//!   itself a lexicon word, so "kind of good" at the start of a text is not
//!   dampened.
//! * The "but" rule looks sentiments up *by value* (`list.index`), so when two
//!   tokens share a valence the first one can be rescaled twice and a later
//!   one not at all.
//! * A "so"/"this" right before a sentiment word boosts it by 25% whenever the
//!   three-back check runs, not only after "never" (operator precedence).
//! * Tokens are lower-cased before the lexicon lookup, so upper-case lexicon
//!   entries such as ":D" or "XD" can never match.
//! * Emoji are replaced by their description without a trailing space, so an
//!   emoji glued to a following word merges with it.
//!
//! The lexicons are passed in as strings (no file I/O here) so the caller
//! decides where they come from; see [`Vader::from_lexicons`].

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::LazyLock;

/// Mean rating increase for a booster word ("very").
const B_INCR: f64 = 0.293;
/// Mean rating decrease for a dampener ("kind of").
const B_DECR: f64 = -0.293;
/// Mean rating increase for an ALL-CAPS word among mixed-case words.
const C_INCR: f64 = 0.733;
/// Negation flips and shrinks a valence rather than just flipping it.
const N_SCALAR: f64 = -0.74;

/// Upstream's `normalize` alpha: roughly the largest expected raw sum.
const NORMALIZE_ALPHA: f64 = 15.0;

/// Upstream `NEGATE`.
#[rustfmt::skip]
const NEGATE: &[&str] = &[
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "ain't",
    "aren't", "can't", "couldn't", "daren't", "didn't", "doesn't", "dont", "hadnt", "hasnt",
    "havent", "isnt", "mightnt", "mustnt", "neither", "don't", "hadn't", "hasn't", "haven't",
    "isn't", "mightn't", "mustn't", "neednt", "needn't", "never", "none", "nope", "nor",
    "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
    "oughtn't", "shan't", "shouldn't", "uh-uh", "wasn't", "weren't", "without", "wont",
    "wouldnt", "won't", "wouldn't", "rarely", "seldom", "despite",
];

/// The multi-word part of upstream `BOOSTER_DICT`; tokens never contain
/// spaces, so these only match the n-grams of the special-idiom check.
const BOOSTER_PHRASES: &[(&str, f64)] = &[
    ("just enough", B_DECR),
    ("kind of", B_DECR),
    ("sort of", B_DECR),
];

/// Python's `string.punctuation`, which `char::is_ascii_punctuation` matches.
#[cfg(test)]
const ASCII_PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The single-word part of upstream `BOOSTER_DICT`, applied to tokens.
fn booster(word: &str) -> Option<f64> {
    match word {
        "absolutely" | "amazingly" | "awfully" | "completely" | "considerable" | "considerably"
        | "decidedly" | "deeply" | "effing" | "enormous" | "enormously" | "entirely"
        | "especially" | "exceptional" | "exceptionally" | "extreme" | "extremely"
        | "fabulously" | "flipping" | "flippin" | "frackin" | "fracking" | "fricking"
        | "frickin" | "frigging" | "friggin" | "fully" | "fuckin" | "fucking" | "fuggin"
        | "fugging" | "greatly" | "hella" | "highly" | "hugely" | "incredible" | "incredibly"
        | "intensely" | "major" | "majorly" | "more" | "most" | "particularly" | "purely"
        | "quite" | "really" | "remarkably" | "so" | "substantially" | "thoroughly" | "total"
        | "totally" | "tremendous" | "tremendously" | "uber" | "unbelievably" | "unusually"
        | "utter" | "utterly" | "very" => Some(B_INCR),
        "almost" | "barely" | "hardly" | "kinda" | "kindof" | "kind-of" | "less" | "little"
        | "marginal" | "marginally" | "occasional" | "occasionally" | "partly" | "scarce"
        | "scarcely" | "slight" | "slightly" | "somewhat" | "sorta" | "sortof" | "sort-of" => {
            Some(B_DECR)
        }
        _ => None,
    }
}

/// Upstream `SPECIAL_CASES` as released in 3.3.2: phrases whose valence
/// replaces the word's. ("badass" is a single token and so never matches a
/// phrase; it is kept to mirror upstream.)
const SPECIAL_CASES: &[(&str, f64)] = &[
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("badass", 1.5),
    ("bus stop", 0.0),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.5),
];

/// Sentiment proportions and the normalised compound score of one text,
/// rounded exactly as `polarity_scores` rounds them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Polarity {
    /// Share of the text that is negative, in [0, 1], 3 decimals.
    pub neg: f64,
    /// Share of the text that is neutral, in [0, 1], 3 decimals.
    pub neu: f64,
    /// Share of the text that is positive, in [0, 1], 3 decimals.
    pub pos: f64,
    /// Normalised overall sentiment in [-1, 1], 4 decimals.
    pub compound: f64,
}

impl Polarity {
    const ZERO: Polarity = Polarity {
        neg: 0.0,
        neu: 0.0,
        pos: 0.0,
        compound: 0.0,
    };
}

/// A lexicon line that upstream's loader would have rejected (it raises
/// `ValueError` on the same lines).
#[derive(Debug)]
pub struct LexiconError {
    /// 1-based line number within the offending lexicon.
    pub line: usize,
    /// What is wrong with the line.
    pub message: String,
}

impl fmt::Display for LexiconError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lexicon line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LexiconError {}

/// A loaded VADER analyser. Immutable after construction, so one instance
/// can be shared across threads (e.g. behind an `Arc`).
#[derive(Debug, Clone)]
pub struct Vader {
    lexicon: Lexicon,
    /// Only single code-point emoji: upstream replaces text char by char, so
    /// multi-code-point entries (flags, ZWJ sequences) can never match.
    emoji: HashMap<char, String, FastHash>,
    /// Whether any emoji key is ASCII: when none is (the upstream file), an
    /// ASCII char needs no lookup, which skips most of the text.
    ascii_emoji: bool,
}

/// Lookup-only maps: a fast hasher, since these are consulted several times
/// per token of every decision, and nothing iterates them into a result.
type FastHash = foldhash::fast::RandomState;
type Lexicon = HashMap<String, f64, FastHash>;

impl Vader {
    /// Builds an analyser from the two upstream data files.
    ///
    /// `lexicon` = contents of `vader_lexicon.txt`, `emoji` = contents of
    /// `emoji_utf8_lexicon.txt`. Both are tab-separated; later duplicate keys
    /// win, as in a Python dict. Lines upstream would choke on (no tab,
    /// unparsable number, or a blank line in the emoji file) are errors, and
    /// so are non-finite valences, which would otherwise leak NaN into scores.
    pub fn from_lexicons(lexicon: &str, emoji: &str) -> Result<Vader, LexiconError> {
        let emoji = parse_emoji(emoji)?;
        Ok(Vader {
            lexicon: parse_lexicon(lexicon)?,
            ascii_emoji: emoji.keys().any(char::is_ascii),
            emoji,
        })
    }

    /// The lexicon valence of a single lower-cased token, if any.
    pub fn valence(&self, token: &str) -> Option<f64> {
        self.lexicon.get(token).copied()
    }

    /// Scores `text` like `SentimentIntensityAnalyzer().polarity_scores`.
    ///
    /// Never panics and never returns NaN or infinities.
    pub fn polarity(&self, text: &str) -> Polarity {
        let text = self.replace_emoji(text);
        let text = py_strip(&text);

        let tokens: Vec<&str> = text
            .split(is_py_space)
            .filter(|t| !t.is_empty())
            .map(strip_punc_if_word)
            .collect();
        if tokens.is_empty() {
            return Polarity::ZERO;
        }
        let (lowered, ranges) = lower_all(&tokens);
        let lower: Vec<&str> = ranges.iter().map(|r| &lowered[r.clone()]).collect();
        // One lookup per token: the rules below ask about neighbours up to
        // three times each.
        let lexicon: Vec<Option<f64>> = lower
            .iter()
            .map(|w| self.lexicon.get(*w).copied())
            .collect();
        let is_cap_diff = allcap_differential(&tokens);

        let words = Words {
            tokens: &tokens,
            lower: &lower,
            lexicon: &lexicon,
        };
        let mut sentiments = Vec::with_capacity(tokens.len());
        for i in 0..tokens.len() {
            let word = lower[i];
            let is_kind_of = word == "kind" && lower.get(i + 1).is_some_and(|w| *w == "of");
            // Modifiers carry no valence of their own; they act on the next
            // lexicon word instead.
            if booster(word).is_some() || is_kind_of {
                sentiments.push(0.0);
            } else {
                sentiments.push(sentiment_valence(&words, i, is_cap_diff));
            }
        }

        but_check(&lower, &mut sentiments);
        score_valence(&sentiments, text)
    }

    /// Upstream inserts a space before a description only when the previous
    /// char was not an ASCII space, and never after it.
    fn replace_emoji<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if text.is_ascii() && !self.ascii_emoji {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut prev_space = true;
        for ch in text.chars() {
            let found = if ch.is_ascii() && !self.ascii_emoji {
                None
            } else {
                self.emoji.get(&ch)
            };
            match found {
                Some(description) => {
                    if !prev_space {
                        out.push(' ');
                    }
                    out.push_str(description);
                    prev_space = false;
                }
                None => {
                    out.push(ch);
                    prev_space = ch == ' ';
                }
            }
        }
        Cow::Owned(out)
    }
}

/// The tokens of one text as the rules see them: as written (for the caps
/// rules), lower-cased, and each one's lexicon valence, looked up once.
struct Words<'a> {
    tokens: &'a [&'a str],
    lower: &'a [&'a str],
    lexicon: &'a [Option<f64>],
}

impl Words<'_> {
    fn in_lexicon(&self, j: usize) -> bool {
        self.lexicon[j].is_some()
    }
}

/// Every token lower-cased into one buffer (one allocation instead of one
/// per token), with each token's byte range in it. `str::to_lowercase`, not
/// a per-char mapping, so a final sigma lowers as upstream's `lower()` does.
fn lower_all(tokens: &[&str]) -> (String, Vec<std::ops::Range<usize>>) {
    let mut buf = String::with_capacity(tokens.iter().map(|t| t.len()).sum());
    let mut ranges = Vec::with_capacity(tokens.len());
    for t in tokens {
        let start = buf.len();
        if t.is_ascii() {
            buf.push_str(t);
            buf[start..].make_ascii_lowercase();
        } else {
            buf.push_str(&t.to_lowercase());
        }
        ranges.push(start..buf.len());
    }
    (buf, ranges)
}

fn sentiment_valence(w: &Words, i: usize, is_cap_diff: bool) -> f64 {
    let Some(lexicon_valence) = w.lexicon[i] else {
        return 0.0;
    };
    let (tokens, lower) = (w.tokens, w.lower);
    let mut valence = lexicon_valence;
    let last = tokens.len() - 1;

    // "no" directly before another lexicon word is a negator, not a
    // sentiment word of its own.
    if lower[i] == "no" && i != last && w.in_lexicon(i + 1) {
        valence = 0.0;
    }
    if (i > 0 && lower[i - 1] == "no")
        || (i > 1 && lower[i - 2] == "no")
        || (i > 2 && lower[i - 3] == "no" && (lower[i - 1] == "or" || lower[i - 1] == "nor"))
    {
        valence = lexicon_valence * N_SCALAR;
    }

    if is_py_upper(tokens[i]) && is_cap_diff {
        if valence > 0.0 {
            valence += C_INCR;
        } else {
            valence -= C_INCR;
        }
    }

    for start_i in 0..3 {
        if i <= start_i {
            break;
        }
        let j = i - (start_i + 1);
        if w.in_lexicon(j) {
            continue;
        }
        let mut s = scalar_inc_dec(tokens[j], lower[j], valence, is_cap_diff);
        // Modifiers further away count for less.
        if start_i == 1 && s != 0.0 {
            s *= 0.95;
        }
        if start_i == 2 && s != 0.0 {
            s *= 0.9;
        }
        valence += s;
        valence = negation_check(valence, lower, start_i, i);
        if start_i == 2 {
            valence = special_idioms_check(valence, lower, i);
        }
    }

    least_check(w, valence, i)
}

fn least_check(w: &Words, valence: f64, i: usize) -> f64 {
    let lower = w.lower;
    let prev_is_least = |i: usize| lower[i - 1] == "least" && !w.in_lexicon(i - 1);
    if i > 1 && prev_is_least(i) {
        if lower[i - 2] != "at" && lower[i - 2] != "very" {
            return valence * N_SCALAR;
        }
    } else if i > 0 && prev_is_least(i) {
        return valence * N_SCALAR;
    }
    valence
}

fn parse_lexicon(source: &str) -> Result<Lexicon, LexiconError> {
    let mut lexicon = Lexicon::default();
    for (idx, line) in source.trim_end_matches('\n').split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let (word, measure) = two_fields(line, idx + 1)?;
        let value = parse_py_float(measure).ok_or_else(|| LexiconError {
            line: idx + 1,
            message: format!("valence {measure:?} is not a finite number"),
        })?;
        lexicon.insert(word.to_owned(), value);
    }
    Ok(lexicon)
}

fn parse_emoji(source: &str) -> Result<HashMap<char, String, FastHash>, LexiconError> {
    let mut emoji = HashMap::default();
    // Unlike the valence lexicon, upstream does not skip blank lines here.
    for (idx, line) in source.trim_end_matches('\n').split('\n').enumerate() {
        let (key, description) = two_fields(line, idx + 1)?;
        let mut chars = key.chars();
        if let (Some(ch), None) = (chars.next(), chars.next()) {
            emoji.insert(ch, description.to_owned());
        }
    }
    Ok(emoji)
}

/// `line.strip().split('\t')[0:2]` unpacked into two names.
fn two_fields(line: &str, line_no: usize) -> Result<(&str, &str), LexiconError> {
    let mut fields = py_strip(line).split('\t');
    match (fields.next(), fields.next()) {
        (Some(first), Some(second)) => Ok((first, second)),
        _ => Err(LexiconError {
            line: line_no,
            message: "expected at least two tab-separated fields".to_owned(),
        }),
    }
}

/// Python's `float()` on a lexicon field, restricted to finite values.
fn parse_py_float(field: &str) -> Option<f64> {
    py_strip(field)
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// Python's `str.isspace` for one char; wider than `char::is_whitespace`
/// because it includes the ASCII information separators U+001C..U+001F.
fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python's argument-less `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Unicode general category Lt; Rust has no direct predicate for it, and
/// Python's `isupper` is false for any string containing one.
fn is_titlecase(c: char) -> bool {
    matches!(
        c,
        '\u{1c5}'
            | '\u{1c8}'
            | '\u{1cb}'
            | '\u{1f2}'
            | '\u{1f88}'..='\u{1f8f}'
            | '\u{1f98}'..='\u{1f9f}'
            | '\u{1fa8}'..='\u{1faf}'
            | '\u{1fbc}'
            | '\u{1fcc}'
            | '\u{1ffc}'
    )
}

/// Python's `str.isupper`: at least one uppercase char and no lowercase or
/// titlecase ones. Tokens without cased chars (":)", "2012") are not upper.
fn is_py_upper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// Strips leading/trailing ASCII punctuation unless that would leave two or
/// fewer chars, which upstream takes to mean the token is an emoticon.
fn strip_punc_if_word(token: &str) -> &str {
    // `is_ascii_punctuation` is exactly `string.punctuation` (a test checks).
    let stripped = token.trim_matches(|c: char| c.is_ascii_punctuation());
    if stripped.chars().nth(2).is_none() {
        token
    } else {
        stripped
    }
}

/// True when some but not all tokens are ALL CAPS; only then is caps
/// treated as emphasis.
fn allcap_differential(tokens: &[&str]) -> bool {
    let allcap = tokens.iter().filter(|t| is_py_upper(t)).count();
    let differential = tokens.len() - allcap;
    0 < differential && differential < tokens.len()
}

fn scalar_inc_dec(word: &str, word_lower: &str, valence: f64, is_cap_diff: bool) -> f64 {
    let Some(mut scalar) = booster(word_lower) else {
        return 0.0;
    };
    if valence < 0.0 {
        scalar *= -1.0;
    }
    if is_py_upper(word) && is_cap_diff {
        if valence > 0.0 {
            scalar += C_INCR;
        } else {
            scalar -= C_INCR;
        }
    }
    scalar
}

/// Upstream `negated` on a single lower-cased word: the `NEGATE` list, or any
/// contraction with "n't" (which also catches e.g. "shouldn't've").
fn negated(word: &str) -> bool {
    // Asked up to three times per lexicon word: a hash lookup, not a scan
    // of the sixty-word list.
    static SET: LazyLock<HashSet<&str, FastHash>> =
        LazyLock::new(|| NEGATE.iter().copied().collect());
    SET.contains(word) || word.contains("n't")
}

/// Upstream `_negation_check`; `start_i` is how far back (0-based) the
/// modifier being applied sits. Callers guarantee `i > start_i`.
fn negation_check(valence: f64, lower: &[&str], start_i: usize, i: usize) -> f64 {
    let w = |back: usize| lower[i - back];
    let so_or_this = |word: &str| word == "so" || word == "this";
    match start_i {
        0 if negated(w(1)) => valence * N_SCALAR,
        1 if w(2) == "never" && so_or_this(w(1)) => valence * 1.25,
        1 if w(2) == "without" && w(1) == "doubt" => valence,
        1 if negated(w(2)) => valence * N_SCALAR,
        // Upstream's `a and b or c` binds as `(a and b) or c`, so a "so" or
        // "this" right before the word boosts it even without "never".
        2 if (w(3) == "never" && so_or_this(w(2))) || so_or_this(w(1)) => valence * 1.25,
        2 if w(3) == "without" && (w(2) == "doubt" || w(1) == "doubt") => valence,
        2 if negated(w(3)) => valence * N_SCALAR,
        _ => valence,
    }
}

/// Upstream `_special_idioms_check`; only reached with `i >= 3`.
fn special_idioms_check(mut valence: f64, lower: &[&str], i: usize) -> f64 {
    let special = |words: &[&str]| phrase_value(SPECIAL_CASES, words);
    let preceding = [
        &lower[i - 1..=i],
        &lower[i - 2..=i],
        &lower[i - 2..i],
        &lower[i - 3..i],
        &lower[i - 3..i - 1],
    ];
    if let Some(v) = preceding.into_iter().find_map(special) {
        valence = v;
    }
    if let Some(v) = lower.get(i..i + 2).and_then(special) {
        valence = v;
    }
    if let Some(v) = lower.get(i..i + 3).and_then(special) {
        valence = v;
    }

    for n_gram in [&lower[i - 3..i], &lower[i - 3..i - 1], &lower[i - 2..i]] {
        if let Some(b) = phrase_value(BOOSTER_PHRASES, n_gram) {
            valence += b;
        }
    }
    valence
}

/// Looks `words` joined by single spaces up in `table`. Comparing piecewise
/// avoids building the joined string upstream builds for every lexicon word;
/// it is equivalent because tokens never contain a space.
fn phrase_value(table: &[(&str, f64)], words: &[&str]) -> Option<f64> {
    let matches = |key: &str| {
        let mut rest = key;
        for (n, word) in words.iter().enumerate() {
            if n > 0 {
                let Some(r) = rest.strip_prefix(' ') else {
                    return false;
                };
                rest = r;
            }
            let Some(r) = rest.strip_prefix(*word) else {
                return false;
            };
            rest = r;
        }
        rest.is_empty()
    };
    // Most lookups fail on the first letter: checking it first keeps a
    // string comparison per table row off every lexicon word.
    let first = words.first()?.as_bytes().first();
    table
        .iter()
        .find(|(key, _)| key.as_bytes().first() == first && matches(key))
        .map(|&(_, v)| v)
}

/// Upstream `_but_check`: sentiments before the first "but" are halved and
/// those after it are boosted by half.
///
/// Upstream iterates the list while locating each element with
/// `list.index(value)`, i.e. it rescales the *first slot holding an equal
/// value*, not the current slot. That quirk changes scores, so it is
/// replicated: with upstream's linear search for short texts, and for long
/// ones with an index of slots per value, which keeps it O(n log n) instead
/// of upstream's O(n^2).
fn but_check(lower: &[&str], sentiments: &mut [f64]) {
    let Some(bi) = lower.iter().position(|w| *w == "but") else {
        return;
    };
    // Up to this many tokens upstream's own linear `index` is cheaper than
    // building the index of slots.
    if sentiments.len() <= 96 {
        but_rescale_linear(bi, sentiments);
    } else {
        but_rescale_indexed(bi, sentiments);
    }
}

fn but_rescale_linear(bi: usize, sentiments: &mut [f64]) {
    for k in 0..sentiments.len() {
        let value = sentiments[k];
        let Some(si) = sentiments.iter().position(|&v| v == value) else {
            continue;
        };
        sentiments[si] = match si.cmp(&bi) {
            std::cmp::Ordering::Less => value * 0.5,
            std::cmp::Ordering::Greater => value * 1.5,
            std::cmp::Ordering::Equal => continue,
        };
    }
}

fn but_rescale_indexed(bi: usize, sentiments: &mut [f64]) {
    // `+ 0.0` folds -0.0 into 0.0 so the key follows `==`, as `index` does.
    let key = |v: f64| (v + 0.0).to_bits();
    let mut slots: HashMap<u64, BTreeSet<usize>> = HashMap::new();
    for (j, &v) in sentiments.iter().enumerate() {
        slots.entry(key(v)).or_default().insert(j);
    }
    for k in 0..sentiments.len() {
        let value = sentiments[k];
        let Some(si) = slots.get(&key(value)).and_then(|s| s.first().copied()) else {
            continue;
        };
        let scaled = match si.cmp(&bi) {
            std::cmp::Ordering::Less => value * 0.5,
            std::cmp::Ordering::Greater => value * 1.5,
            std::cmp::Ordering::Equal => continue,
        };
        if let Some(set) = slots.get_mut(&key(value)) {
            set.remove(&si);
        }
        slots.entry(key(scaled)).or_default().insert(si);
        sentiments[si] = scaled;
    }
}

fn punctuation_emphasis(text: &str) -> f64 {
    let exclamations = text.matches('!').count().min(4);
    let ep_amplifier = exclamations as f64 * 0.292;
    let questions = text.matches('?').count();
    let qm_amplifier = match questions {
        0 | 1 => 0.0,
        2 | 3 => questions as f64 * 0.18,
        _ => 0.96,
    };
    ep_amplifier + qm_amplifier
}

fn normalize(score: f64) -> f64 {
    (score / (score * score + NORMALIZE_ALPHA).sqrt()).clamp(-1.0, 1.0)
}

fn score_valence(sentiments: &[f64], text: &str) -> Polarity {
    if sentiments.is_empty() {
        return Polarity::ZERO;
    }
    // Plain left-to-right summation, as Python 3.11's `sum` does; the
    // reference scores were produced with it.
    let mut sum_s: f64 = sentiments.iter().fold(0.0, |acc, &s| acc + s);
    let punct = punctuation_emphasis(text);
    if sum_s > 0.0 {
        sum_s += punct;
    } else if sum_s < 0.0 {
        sum_s -= punct;
    }
    let compound = normalize(sum_s);

    let mut pos_sum = 0.0;
    let mut neg_sum = 0.0;
    let mut neu_count = 0usize;
    for &s in sentiments {
        // The +/-1 makes sentiment words outweigh neutral ones, which each
        // count 1 towards the total.
        if s > 0.0 {
            pos_sum += s + 1.0;
        }
        if s < 0.0 {
            neg_sum += s - 1.0;
        }
        if s == 0.0 {
            neu_count += 1;
        }
    }
    if pos_sum > neg_sum.abs() {
        pos_sum += punct;
    } else if pos_sum < neg_sum.abs() {
        neg_sum -= punct;
    }
    let total = pos_sum + neg_sum.abs() + neu_count as f64;

    Polarity {
        neg: finite_or_zero(py_round((neg_sum / total).abs(), 3)),
        neu: finite_or_zero(py_round((neu_count as f64 / total).abs(), 3)),
        pos: finite_or_zero(py_round((pos_sum / total).abs(), 3)),
        compound: compound_or_sign(py_round(compound, 4), sum_s),
    }
}

/// Python would report NaN once a pathological lexicon overflows the sums;
/// the contract here is finite output, so fall back to a neutral 0.
fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// An overflowing sum makes `normalize` compute inf/inf; its limit is +/-1.
fn compound_or_sign(compound: f64, sum_s: f64) -> f64 {
    if compound.is_finite() {
        compound
    } else if sum_s > 0.0 {
        1.0
    } else if sum_s < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Python's `round(x, digits)`: rounds the exact binary value half-to-even.
/// Rust's fixed-precision formatting is exact with the same tie rule, so a
/// format/parse round trip reproduces it.
fn py_round(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    round_exact(x, digits).unwrap_or_else(|| format!("{x:.digits$}").parse().unwrap_or(x))
}

/// [`py_round`] in integer arithmetic, for |x| < 10⁶ and up to 6 digits
/// (every score here): with `x = m·2^e` exactly, `x·10^d` is rounded
/// half-to-even on its exact bits, and `q / 10^d` is one correctly rounded
/// division of two exact doubles, i.e. the double nearest the decimal,
/// which is what parsing the formatted decimal gives. A formatting round
/// trip costs a few thousand instructions and runs four times per text.
fn round_exact(x: f64, digits: usize) -> Option<f64> {
    if x.abs() >= 1e6 || digits > 6 {
        return None;
    }
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    let (m, e) = if exponent == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), exponent - 1075)
    };
    let scale = 10u64.pow(digits as u32);
    let q = if e >= 0 {
        // |x| < 10⁶ with e ≥ 0 is a small integer: nothing to round.
        return Some(x);
    } else {
        let n = u128::from(m) * u128::from(scale);
        let shift = -e as u32;
        if shift >= 128 {
            0
        } else {
            let q = n >> shift;
            let rest = n - (q << shift);
            let half = 1u128 << (shift - 1);
            if rest > half || (rest == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        }
    };
    // q < 10¹² < 2⁵³: exact as a double, and so is the scale.
    let magnitude = q as f64 / scale as f64;
    Some(if x.is_sign_negative() {
        -magnitude
    } else {
        magnitude
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny lexicon in upstream's format (values copied from
    /// `vader_lexicon.txt`), enough to exercise every rule without files.
    const LEXICON: &str = "good\t1.9\t0.9434\t[2, 1, 1, 3, 2, 4, 2, 2, 1, 1]\r\n\
        bad\t-2.5\t0.67082\t[-2, -3, -3, -3, -3, -3, -2, -1, -3, -2]\r\n\
        great\t3.1\t0.7\t[3, 4, 4, 4, 3, 3, 3, 2, 2, 3]\r\n\
        horrible\t-2.5\t0.92195\t[-3, -2, -3, -2, -2, -4, -1, -3, -3, -2]\r\n\
        no\t-1.2\t0.74833\t[-1, -1, -1, -1, -2, -1, -2, -1, -3, 0]\r\n\
        love\t3.2\t0.4\t[3, 3, 3, 3, 3, 3, 3, 4, 4, 3]\r\n\
        shit\t-2.6\t1.0198\t[-2, -3, -2, -1, -3, -4, -2, -3, -3, -3]\r\n\
        kiss\t1.8\t0.6\t[2, 2, 1, 2, 1, 2, 2, 3, 2, 1]\r\n\
        :)\t2.0\t1.18322\t[2, 2, 1, 1, 1, 1, 4, 3, 4, 1]";
    const EMOJI: &str = "\u{1f618}\tface blowing a kiss\r\n\u{1f44d}\tthumbs up";

    fn vader() -> Vader {
        Vader::from_lexicons(LEXICON, EMOJI).expect("test lexicon parses")
    }

    fn assert_polarity(text: &str, neg: f64, neu: f64, pos: f64, compound: f64) {
        let got = vader().polarity(text);
        let want = Polarity {
            neg,
            neu,
            pos,
            compound,
        };
        assert_eq!(got, want, "polarity of {text:?}");
    }

    #[test]
    fn empty_and_blank_text_score_all_zeros_like_upstream() {
        for text in ["", "   ", "\t\r\n", "\u{3000}\u{1c}"] {
            assert_eq!(vader().polarity(text), Polarity::ZERO, "{text:?}");
        }
    }

    #[test]
    fn plain_lexicon_word_scores_its_normalised_valence() {
        // 1.9 / sqrt(1.9^2 + 15) = 0.44036...
        assert_polarity("good", 0.0, 0.0, 1.0, 0.4404);
    }

    #[test]
    fn negation_turns_a_positive_word_negative() {
        let p = vader().polarity("not good");
        assert!(p.compound < 0.0, "{p:?}");
        // 1.9 * -0.74 = -1.406
        assert_eq!(p.compound, py_round(normalize(1.9 * N_SCALAR), 4));
    }

    #[test]
    fn booster_strengthens_and_dampener_weakens() {
        let plain = vader().polarity("good").compound;
        assert!(vader().polarity("very good").compound > plain);
        assert!(vader().polarity("it is kind of good").compound < plain);
        // Upstream applies "kind of" only from inside the idiom check, which
        // needs a third word before the sentiment word.
        assert_eq!(vader().polarity("kind of good").compound, plain);
        assert_eq!(
            vader().polarity("very good").compound,
            py_round(normalize(1.9 + B_INCR), 4)
        );
    }

    #[test]
    fn all_caps_word_is_emphasised_only_among_mixed_case_words() {
        let mixed = vader().polarity("this is GOOD").compound;
        assert_eq!(mixed, py_round(normalize(1.9 + C_INCR), 4));
        // When everything is upper case, caps carry no extra emphasis.
        assert_eq!(
            vader().polarity("THIS IS GOOD"),
            vader().polarity("this is good")
        );
    }

    #[test]
    fn but_discounts_the_clause_before_it() {
        // bad * 0.5 + great * 1.5 = -1.25 + 4.65 = 3.4
        let p = vader().polarity("bad but great");
        assert_eq!(p.compound, py_round(normalize(3.4), 4));
    }

    #[test]
    fn but_rescales_the_first_slot_with_an_equal_value_like_list_index() {
        let lower = ["x", "but", "a", "b"];
        let mut s = vec![0.0, 0.0, 1.0, 1.5];
        but_check(&lower, &mut s);
        // Visiting slot 2 turns [.., 1.0, 1.5] into [.., 1.5, 1.5]; visiting
        // slot 3 then finds 1.5 at slot 2 first and scales that one again,
        // leaving slot 3 untouched.
        assert_eq!(s, vec![0.0, 0.0, 2.25, 1.5]);
    }

    /// A seeded xorshift64 stream, for repeatable random cases.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn the_indexed_but_rule_for_long_texts_matches_the_linear_one() {
        // Few distinct values (signed zeros among them), so the equal-value
        // quirk fires again and again.
        let values = [0.0, -0.0, 1.0, 1.5, 2.25, 0.5, -1.0, -2.0, -0.5, 3.0];
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        for _ in 0..500 {
            let n = 1 + (next() % 200) as usize;
            let bi = (next() % n as u64) as usize;
            let s: Vec<f64> = (0..n).map(|_| values[(next() % 10) as usize]).collect();
            let (mut linear, mut indexed) = (s.clone(), s);
            but_rescale_linear(bi, &mut linear);
            but_rescale_indexed(bi, &mut indexed);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&linear), bits(&indexed), "n = {n}, but at {bi}");
        }
    }

    #[test]
    fn no_before_a_lexicon_word_negates_it_instead_of_scoring_itself() {
        // "no" -> 0.0, "good" -> 1.9 * -0.74
        assert_eq!(
            vader().polarity("no good").compound,
            py_round(normalize(1.9 * N_SCALAR), 4)
        );
    }

    #[test]
    fn least_negates_unless_it_follows_at_or_very() {
        let negated = py_round(normalize(1.9 * N_SCALAR), 4);
        assert_eq!(vader().polarity("least good").compound, negated);
        assert_eq!(vader().polarity("the least good").compound, negated);
        assert_eq!(
            vader().polarity("at least good").compound,
            vader().polarity("good").compound
        );
    }

    #[test]
    fn special_case_phrase_replaces_the_word_valence_given_three_words_before() {
        // "the shit" is +3, but only when a third word precedes "shit".
        assert_eq!(
            vader().polarity("wow this is the shit").compound,
            py_round(normalize(3.0), 4)
        );
        assert_eq!(
            vader().polarity("is the shit").compound,
            py_round(normalize(-2.6), 4)
        );
    }

    #[test]
    fn rust_ascii_punctuation_is_python_string_punctuation() {
        for c in (0u8..=127).map(char::from) {
            assert_eq!(
                c.is_ascii_punctuation(),
                ASCII_PUNCTUATION.contains(c),
                "{c:?}"
            );
        }
    }

    #[test]
    fn phrase_lookup_matches_only_whole_space_joined_keys() {
        fn words(s: &str) -> Vec<&str> {
            s.split(' ').collect()
        }
        assert_eq!(
            phrase_value(SPECIAL_CASES, &words("kiss of death")),
            Some(-1.5)
        );
        assert_eq!(phrase_value(SPECIAL_CASES, &words("kiss of")), None);
        assert_eq!(phrase_value(SPECIAL_CASES, &words("the shits")), None);
        assert_eq!(
            phrase_value(BOOSTER_PHRASES, &words("sort of")),
            Some(B_DECR)
        );
    }

    #[test]
    fn emoji_are_scored_through_their_description() {
        // U+1F618 -> "face blowing a kiss"; "kiss" is 1.8.
        assert_eq!(
            vader().polarity("\u{1f618}"),
            vader().polarity("face blowing a kiss")
        );
        assert!(vader().polarity("\u{1f618}").compound > 0.0);
        // No space is inserted after a description, so a glued word merges.
        assert_eq!(
            vader().replace_emoji("a\u{1f618}x"),
            "a face blowing a kissx"
        );
    }

    #[test]
    fn exclamation_and_question_marks_add_emphasis() {
        let plain = vader().polarity("good").compound;
        assert!(vader().polarity("good!!!").compound > plain);
        assert!(vader().polarity("good??").compound > plain);
        assert_eq!(vader().polarity("good?").compound, plain);
    }

    #[test]
    fn short_punctuation_tokens_are_kept_as_emoticons() {
        assert_eq!(strip_punc_if_word(":)"), ":)");
        assert_eq!(strip_punc_if_word("good!!"), "good");
        assert_eq!(strip_punc_if_word("(ok)"), "(ok)");
        assert!(vader().polarity("fine :)").compound > 0.0);
    }

    #[test]
    fn python_isupper_needs_a_cased_char_and_rejects_titlecase() {
        assert!(is_py_upper("GOOD!"));
        assert!(!is_py_upper(":)"));
        assert!(!is_py_upper("2012"));
        assert!(!is_py_upper("GOoD"));
        assert!(!is_py_upper("\u{1c5}"));
        assert!(is_py_upper("ÉTÉ"));
    }

    #[test]
    fn python_round_is_half_even_on_the_exact_binary_value() {
        assert_eq!(py_round(0.125, 2), 0.12);
        assert_eq!(py_round(0.375, 2), 0.38);
        // 2.675 is stored as 2.67499999...
        assert_eq!(py_round(2.675, 2), 2.67);
        assert_eq!(py_round(0.44036, 4), 0.4404);
    }

    #[test]
    fn integer_rounding_matches_the_formatted_decimal_bit_for_bit() {
        let by_format = |x: f64, d: usize| -> f64 { format!("{x:.d$}").parse().unwrap() };
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        let mut xs: Vec<f64> = vec![0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 0.0625, -0.0625];
        // Exact ties at 3 and 4 digits (k / 2^n), the values VADER divides
        // out, and arbitrary doubles in (-1000, 1000).
        xs.extend((0..4000).map(|k| f64::from(k) / 16384.0 - 0.12));
        xs.extend((1..400).flat_map(|t| (0..=t).map(move |k| f64::from(k) / f64::from(t))));
        xs.extend(
            (0..20000).map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64 * 2000.0 - 1000.0),
        );
        xs.extend((0..2000).map(|_| f64::from_bits(next() >> 2) % 1.0));
        for x in xs.into_iter().filter(|x| x.is_finite()) {
            for d in [3, 4] {
                let fast = round_exact(x, d).expect("in range");
                assert_eq!(
                    fast.to_bits(),
                    by_format(x, d).to_bits(),
                    "round({x:e}, {d})"
                );
            }
        }
    }

    #[test]
    fn lookup_of_single_token_valence() {
        let v = vader();
        assert_eq!(v.valence("good"), Some(1.9));
        assert_eq!(v.valence(":)"), Some(2.0));
        assert_eq!(v.valence("Good"), None);
        assert_eq!(v.valence("table"), None);
    }

    #[test]
    fn malformed_lexicon_lines_are_reported_with_their_line_number() {
        let err = Vader::from_lexicons("good\t1.9\nbad", EMOJI).unwrap_err();
        assert_eq!(err.line, 2);
        let err = Vader::from_lexicons("good\tlots", EMOJI).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.to_string().contains("line 1"));
        assert!(Vader::from_lexicons("good\tnan", EMOJI).is_err());
        assert!(Vader::from_lexicons(LEXICON, "a\tb\n\nc\td").is_err());
        // Blank lines are fine in the valence lexicon, as upstream.
        assert!(Vader::from_lexicons("good\t1.9\n\nbad\t-2.5\n", EMOJI).is_ok());
    }

    #[test]
    fn odd_input_never_panics_and_stays_finite() {
        let v = vader();
        let long = "good but bad no not least ".repeat(20_000);
        let inputs = [
            "\u{1f618}\u{1f618}\u{1f44d}",
            "!!!!!!!!????????",
            "İSTANBUL ΣΑΣ ǅ \u{0}\u{feff}\u{200b}",
            "no",
            "least",
            "but",
            "but but but",
            "kind",
            "kind of",
            long.as_str(),
        ];
        for text in inputs {
            let p = v.polarity(text);
            for x in [p.neg, p.neu, p.pos, p.compound] {
                assert!(x.is_finite(), "{text:?} -> {p:?}");
            }
        }
    }

    #[test]
    fn overflowing_lexicon_values_still_give_finite_scores() {
        let v = Vader::from_lexicons("good\t1e308\nbad\t-1e308", "x\ty").unwrap();
        for text in ["good good good", "good bad", "bad bad bad!!"] {
            let p = v.polarity(text);
            for x in [p.neg, p.neu, p.pos, p.compound] {
                assert!(x.is_finite(), "{text:?} -> {p:?}");
            }
        }
    }
}
