//! Text sentiment: the trait the decision core scores text with, and the
//! VADER lexicon scorer that is the embedded default.
//!
//! The trait keeps the core independent of how sentiment is produced: a
//! lexicon, a trained linfa model, or a test double with fixed answers.

pub mod vader;

/// Scores the sentiment of a text in [-1, 1] (negative to positive).
pub trait SentimentModel: Send + Sync {
    /// Stable name of the model and its version, reported in every decision.
    fn version(&self) -> &str;
    /// Sentiment of `text` in [-1, 1]; 0 for empty or neutral text. Never NaN.
    fn score(&self, text: &str) -> f64;
}

/// The bundled VADER lexicon (MIT, C.J. Hutto; see `data/vader/LICENSE`).
pub const VADER_LEXICON: &str = include_str!("../../../data/vader/vader_lexicon.txt");
/// The bundled VADER emoji lexicon.
pub const VADER_EMOJI_LEXICON: &str = include_str!("../../../data/vader/emoji_utf8_lexicon.txt");

/// VADER's compound score as a sentiment model.
pub struct VaderScorer {
    vader: vader::Vader,
}

impl VaderScorer {
    pub const VERSION: &'static str = "vader-lexicon-3.3.2";

    /// The scorer built from the lexicons compiled into the binary.
    pub fn bundled() -> Self {
        let vader = vader::Vader::from_lexicons(VADER_LEXICON, VADER_EMOJI_LEXICON)
            .expect("the bundled VADER lexicons parse (checked by a unit test)");
        Self { vader }
    }

    pub fn vader(&self) -> &vader::Vader {
        &self.vader
    }
}

impl SentimentModel for VaderScorer {
    fn version(&self) -> &str {
        Self::VERSION
    }

    fn score(&self, text: &str) -> f64 {
        let c = self.vader.polarity(text).compound;
        if c.is_finite() {
            c.clamp(-1.0, 1.0)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_scorer_separates_praise_from_complaints() {
        let s = VaderScorer::bundled();
        assert!(s.score("I love this, great service!") > 0.5);
        assert!(s.score("Terrible. The order arrived broken and nobody answers.") < -0.3);
        assert_eq!(s.score(""), 0.0);
    }
}
