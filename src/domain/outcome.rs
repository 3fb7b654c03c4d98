//! Probability that answering an interaction with an action ends well (the
//! customer stays and the follow-up is positive).
//!
//! [`OutcomeModel`] is what arbitration asks; [`RulesOutcome`] is the bundled
//! prior, a hand-set logistic model that encodes the service-recovery findings
//! the product is built on (apologise to the let-down, thank the happy, a
//! gesture helps the recipient with diminishing returns, over-compensation
//! buys nothing, ignoring hurts). A trained model replaces it when one is
//! loaded; the features are the same, so both are compared like for like.

use super::interaction::Kind;
use super::policy::{GestureKind, Intent};

/// What the outcome model may know about the interaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutcomeContext {
    pub sentiment: f64,
    pub severity: f64,
    pub loyalty: f64,
    pub kind: Kind,
    pub public: bool,
    pub audience: u64,
    /// Order value, or the policy's default when none was given.
    pub stake: f64,
}

/// What the outcome model may know about a candidate action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutcomeAction {
    pub intent: Intent,
    pub gesture: Option<(GestureKind, f64)>,
}

pub trait OutcomeModel: Send + Sync {
    fn version(&self) -> &str;
    /// Probability of a good outcome, in (0, 1).
    fn p_good(&self, ctx: &OutcomeContext, action: &OutcomeAction) -> f64;
}

/// The bundled prior.
#[derive(Debug, Default, Clone, Copy)]
pub struct RulesOutcome;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl RulesOutcome {
    pub const VERSION: &'static str = "outcome-rules-1";

    /// The logit of a good outcome; public so the simulator can reuse the
    /// same story.
    pub fn logit(ctx: &OutcomeContext, action: &OutcomeAction) -> f64 {
        let sev = ctx.severity;
        let mut x = 0.3 + 1.2 * ctx.sentiment - 1.6 * sev + 0.8 * ctx.loyalty;
        x += match action.intent {
            Intent::Ignore => -1.0 - 2.0 * sev,
            Intent::Thank => {
                if sev < 0.35 {
                    0.7
                } else {
                    -0.5 - sev
                }
            }
            Intent::Inform => {
                let fit = if ctx.kind == Kind::Question { 0.8 } else { 0.3 };
                fit - 0.6 * sev
            }
            Intent::Apologise => 0.3 + 1.2 * sev,
            // A person helps most when it is very bad; below that it is slow.
            Intent::Escalate => 0.1 + 1.2 * sev + 2.5 * (sev - 0.8).max(0.0),
        };
        if let Some((kind, value)) = action.gesture {
            // Saturating in value relative to what was at stake: beyond about
            // 150 % of the loss, more money buys (almost) nothing.
            let reference = 0.5 * ctx.stake.max(10.0);
            let effect = 1.0 - (-value / reference).exp();
            let fit = match kind {
                GestureKind::Credit | GestureKind::Replacement => 1.0,
                GestureKind::Discount => 0.8,
                GestureKind::Gift | GestureKind::FreeShipping => 0.6,
            };
            x += 3.0 * sev * effect * fit;
        }
        x
    }
}

impl OutcomeModel for RulesOutcome {
    fn version(&self) -> &str {
        Self::VERSION
    }

    fn p_good(&self, ctx: &OutcomeContext, action: &OutcomeAction) -> f64 {
        sigmoid(Self::logit(ctx, action)).clamp(1e-6, 1.0 - 1e-6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(severity: f64) -> OutcomeContext {
        OutcomeContext {
            sentiment: -severity,
            severity,
            loyalty: 0.5,
            kind: Kind::Complaint,
            public: true,
            audience: 100,
            stake: 80.0,
        }
    }

    fn p(c: &OutcomeContext, intent: Intent, gesture: Option<(GestureKind, f64)>) -> f64 {
        RulesOutcome.p_good(c, &OutcomeAction { intent, gesture })
    }

    #[test]
    fn apologising_beats_thanking_or_ignoring_an_unhappy_customer() {
        let c = ctx(0.7);
        let apology = p(&c, Intent::Apologise, None);
        assert!(apology > p(&c, Intent::Thank, None));
        assert!(apology > p(&c, Intent::Ignore, None));
    }

    #[test]
    fn gestures_help_with_diminishing_returns() {
        let c = ctx(0.7);
        let none = p(&c, Intent::Apologise, None);
        let small = p(&c, Intent::Apologise, Some((GestureKind::Credit, 20.0)));
        let big = p(&c, Intent::Apologise, Some((GestureKind::Credit, 120.0)));
        let huge = p(&c, Intent::Apologise, Some((GestureKind::Credit, 1000.0)));
        assert!(small > none && big > small);
        assert!(
            big - small > huge - big,
            "over-compensation must buy little"
        );
    }
}
