//! Tokenising for the n-gram evidence: words, negation scopes (`not_word`
//! up to the next punctuation), and the unigram and bigram terms of a text.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use crate::domain::sentiment::vader::Vader;

/// Negators: upstream VADER's `NEGATE` plus "no", spelled as the tokeniser
/// leaves them (apostrophes dropped, so "don't" is "dont").
const NEGATORS: &[&str] = &[
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "dont", "hadnt",
    "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither", "neednt", "never", "none", "nope",
    "nor", "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
    "without", "wont", "wouldnt", "rarely", "seldom", "despite", "no",
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Piece {
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
pub(super) struct Span {
    start: usize,
    end: usize,
}

/// What the tokeniser sees of a text. The pieces' texts are kept back to
/// back in one string: this runs on every scored text, and a `String` per
/// word was a third of the featuriser's time.
#[derive(Debug, Default)]
pub(super) struct Tokens {
    text: String,
    pub(super) pieces: Vec<Piece>,
    /// Words with 3+ equal letters in a row before normalising ("sooo").
    pub(super) elongated: usize,
    /// Words of 2+ letters, all upper case.
    pub(super) all_caps: usize,
    pub(super) words: usize,
    pub(super) urls: usize,
    pub(super) users: usize,
}

impl Tokens {
    pub(super) fn str(&self, span: Span) -> &str {
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

pub(super) fn tokenize(text: &str, vader: &Vader) -> Tokens {
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
pub(super) fn visit_terms(tokens: &Tokens, bigrams: bool, mut f: impl FnMut(&str)) {
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
pub(super) fn join<'b>(buf: &'b mut String, a: &str, b: &str, c: &str) -> &'b str {
    buf.clear();
    buf.push_str(a);
    buf.push_str(b);
    buf.push_str(c);
    buf
}

/// The n-gram terms of a text as strings (see [`visit_terms`]).
pub(super) fn terms(tokens: &Tokens, bigrams: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(tokens.pieces.len() * 2);
    visit_terms(tokens, bigrams, |t| out.push(t.to_owned()));
    out
}
