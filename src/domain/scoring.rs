//! From a validated interaction to the three scores of a decision.
//!
//! * **sentiment** comes from the text (a [`SentimentModel`]);
//! * **severity** is how badly the customer was let down: negative text, a low
//!   rating, the kind of interaction and how much money was at stake;
//! * **deservingness** is severity tempered by loyalty (tenure and lifetime
//!   value).
//!
//! Distributive justice is the rule here: neither score may depend on who is
//! watching (`audience`, `public`, `channel`) or on the groups the customer
//! belongs to (`customer.attributes`). The functions below take only the
//! fields they are allowed to use, so that rule holds by construction rather
//! than by care.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::interaction::{Interaction, Kind};
use super::sentiment::SentimentModel;

/// The scores reported in every decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Scores {
    /// Text sentiment in [-1, 1].
    pub sentiment: f64,
    /// How badly the customer was let down, in [0, 1].
    pub severity: f64,
    /// What the customer has earned, in [0, 1]: severity and loyalty.
    pub deservingness: f64,
}

/// What the content looks like before any scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ordinary text worth an answer.
    Content,
    /// Empty, or spam-like (links, no words, one token repeated).
    NoContent,
}

/// The facts severity may use: nothing about the audience or groups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeverityInputs {
    pub sentiment: f64,
    pub rating: Option<u8>,
    pub kind: Kind,
    pub order_value: Option<f64>,
}

/// The facts loyalty may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoyaltyInputs {
    pub tenure_days: u32,
    pub lifetime_value: f64,
}

fn kind_base(kind: Kind) -> f64 {
    match kind {
        Kind::Complaint => 0.3,
        Kind::Review => 0.1,
        Kind::Question | Kind::Mention => 0.05,
        Kind::Praise => 0.0,
    }
}

/// Severity in [0, 1].
pub fn severity(i: SeverityInputs) -> f64 {
    let negativity = (-i.sentiment).max(0.0);
    // Without a rating the text is the only evidence of how bad it was.
    let rating_badness = i
        .rating
        .map(|r| f64::from(5 - r.clamp(1, 5)) / 4.0)
        .unwrap_or(negativity);
    let stake = i
        .order_value
        .map(|v| 1.0 - (-v / 150.0).exp())
        .unwrap_or(0.0);
    let raw = kind_base(i.kind) + 0.4 * negativity + 0.25 * rating_badness + 0.15 * stake;
    // Praise is never severe, whatever words it used.
    let cap = if i.kind == Kind::Praise { 0.2 } else { 1.0 };
    raw.clamp(0.0, cap)
}

/// Loyalty in [0, 1]: saturating in tenure (two years ≈ 0.63) and in
/// lifetime value.
pub fn loyalty(l: LoyaltyInputs) -> f64 {
    let tenure = 1.0 - (-f64::from(l.tenure_days) / 730.0).exp();
    let value = 1.0 - (-l.lifetime_value / 1000.0).exp();
    (0.5 * tenure + 0.5 * value).clamp(0.0, 1.0)
}

/// Deservingness in [0, 1]: mostly what happened, some of who it happened to.
/// A loyal customer with no grievance deserves no compensation.
pub fn deservingness(severity: f64, loyalty: f64) -> f64 {
    (severity * (0.75 + 0.25 * loyalty) + 0.1 * severity * loyalty).clamp(0.0, 1.0)
}

/// Spam-like or empty text gets no answer at all.
pub fn signal(text: &str) -> Signal {
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.chars().any(char::is_alphabetic) {
        return Signal::NoContent;
    }
    let tokens: Vec<&str> = trimmed.split_whitespace().collect();
    let starts = |t: &str, prefix: &str| {
        t.as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    let links = tokens
        .iter()
        .filter(|t| starts(t, "http://") || starts(t, "https://") || starts(t, "www."))
        .count();
    if links >= 2 || (links >= 1 && tokens.len() <= 3) {
        return Signal::NoContent;
    }
    if tokens.len() >= 4 {
        let first = tokens[0].to_lowercase();
        if tokens.iter().all(|t| t.to_lowercase() == first) {
            return Signal::NoContent;
        }
    }
    Signal::Content
}

/// Scores an interaction.
pub fn score(interaction: &Interaction, sentiment: &dyn SentimentModel) -> (Scores, Signal) {
    let signal = signal(&interaction.text);
    let s = if signal == Signal::Content {
        sentiment.score(&interaction.text)
    } else {
        0.0
    };
    let sentiment = if s.is_finite() {
        s.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let sev = severity(SeverityInputs {
        sentiment,
        rating: interaction.rating,
        kind: interaction.kind,
        order_value: interaction.order_value.map(|v| v.get()),
    });
    let loy = loyalty(LoyaltyInputs {
        tenure_days: interaction.customer.tenure_days,
        lifetime_value: interaction.customer.lifetime_value.get(),
    });
    let scores = Scores {
        sentiment,
        severity: sev,
        deservingness: deservingness(sev, loy),
    };
    (scores, signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sev(sentiment: f64, rating: Option<u8>, kind: Kind, ov: Option<f64>) -> f64 {
        severity(SeverityInputs {
            sentiment,
            rating,
            kind,
            order_value: ov,
        })
    }

    #[test]
    fn severity_rises_with_negativity_low_ratings_and_money_at_stake() {
        let base = sev(-0.2, Some(3), Kind::Complaint, Some(20.0));
        assert!(sev(-0.9, Some(3), Kind::Complaint, Some(20.0)) > base);
        assert!(sev(-0.2, Some(1), Kind::Complaint, Some(20.0)) > base);
        assert!(sev(-0.2, Some(3), Kind::Complaint, Some(500.0)) > base);
        assert!(sev(-0.2, Some(3), Kind::Review, Some(20.0)) < base);
    }

    #[test]
    fn praise_is_never_severe() {
        assert!(sev(-1.0, Some(1), Kind::Praise, Some(1000.0)) <= 0.2);
        assert_eq!(sev(0.9, Some(5), Kind::Praise, None), 0.0);
    }

    #[test]
    fn scores_stay_in_their_ranges_at_the_extremes() {
        for s in [-1.0, 0.0, 1.0] {
            for r in [None, Some(1), Some(5)] {
                for k in Kind::ALL {
                    for ov in [None, Some(0.0), Some(1e9)] {
                        let v = sev(s, r, k, ov);
                        assert!((0.0..=1.0).contains(&v));
                        for l in [0.0, 1.0] {
                            assert!((0.0..=1.0).contains(&deservingness(v, l)));
                        }
                    }
                }
            }
        }
        let l = loyalty(LoyaltyInputs {
            tenure_days: u32::MAX,
            lifetime_value: 1e9,
        });
        assert!((0.0..=1.0).contains(&l));
    }

    #[test]
    fn deservingness_needs_a_grievance_and_grows_with_loyalty() {
        assert_eq!(deservingness(0.0, 1.0), 0.0);
        assert!(deservingness(0.7, 0.9) > deservingness(0.7, 0.1));
        assert!(deservingness(0.8, 0.5) > deservingness(0.4, 0.5));
    }

    #[test]
    fn empty_and_spam_like_text_is_recognised() {
        let cases = [
            ("", Signal::NoContent),
            ("   \n\t", Signal::NoContent),
            ("!!!! ???", Signal::NoContent),
            (
                "http://x.example/a https://y.example/b cheap pills",
                Signal::NoContent,
            ),
            ("buy http://x.example", Signal::NoContent),
            ("win win win win win", Signal::NoContent),
            ("The parcel was late again", Signal::Content),
            ("Great :)", Signal::Content),
        ];
        for (text, expected) in cases {
            assert_eq!(signal(text), expected, "{text:?}");
        }
    }
}
