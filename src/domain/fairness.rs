//! Group fairness metrics for binary decisions, and the product's perk parity
//! ratio.
//!
//! [`MetricFrame`] is the equivalent of fairlearn 0.15's `MetricFrame` over
//! `selection_rate`, `true_positive_rate`, `false_positive_rate` and
//! `accuracy_score`, for binary labels and predictions with one group per
//! row. On top of it:
//!
//! - demographic parity difference / ratio: max − min and min / max of the
//!   groups' selection rates (fairlearn's `demographic_parity_difference` /
//!   `_ratio`, `method="between_groups"`);
//! - equalized odds difference / ratio (fairlearn's `agg="worst_case"`):
//!   the difference is the larger of the TPR spread and the FPR spread
//!   (max − min across groups), the ratio the smaller of the TPR ratio and
//!   the FPR ratio (min / max across groups).
//!
//! These reproduce fairlearn to 1e-6 on the VADER ICWSM-2014 reference
//! (`tests/it/fairlearn_reference.rs`).
//!
//! # Edge cases: no NaN, ever
//!
//! fairlearn divides by zero and carries NaN around; a fairness constraint
//! that compares against NaN silently passes, so here:
//!
//! - A group's TPR is `None` when the group has no positive labels, and its
//!   FPR is `None` when it has no negative labels: the rate is undefined, not
//!   0 or 1, and a report should say so.
//! - The aggregates compare only the groups for which the rate is defined.
//!   This is what fairlearn does too (pandas' `max` / `min` skip NaN), so a
//!   group with no positives does not change the equalized-odds numbers.
//! - With fewer than two comparable groups there is nothing to compare: the
//!   difference is 0 and the ratio 1.
//! - A ratio whose best (maximum) rate is 0 is 1: every group is at 0, which
//!   is parity (fairlearn would give 0 / 0 = NaN).
//!
//! Selection rate and accuracy are always defined: a group exists only once
//! a row for it was recorded.

use std::collections::BTreeMap;

/// Confusion counts of one group (or of all rows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
}

impl Confusion {
    /// Counts one row.
    pub fn record(&mut self, label: bool, prediction: bool) {
        match (label, prediction) {
            (true, true) => self.true_positives += 1,
            (false, true) => self.false_positives += 1,
            (false, false) => self.true_negatives += 1,
            (true, false) => self.false_negatives += 1,
        }
    }

    /// Number of rows.
    pub fn count(&self) -> u64 {
        self.true_positives + self.false_positives + self.true_negatives + self.false_negatives
    }

    /// Rows whose label is positive.
    pub fn label_positives(&self) -> u64 {
        self.true_positives + self.false_negatives
    }

    /// Rows whose label is negative.
    pub fn label_negatives(&self) -> u64 {
        self.false_positives + self.true_negatives
    }

    /// Rows predicted positive (selected).
    pub fn selected(&self) -> u64 {
        self.true_positives + self.false_positives
    }

    /// The metrics of these rows; `None` when there are none.
    pub fn metrics(&self) -> Option<GroupMetrics> {
        let count = self.count();
        Some(GroupMetrics {
            count,
            selection_rate: rate(self.selected(), count)?,
            true_positive_rate: rate(self.true_positives, self.label_positives()),
            false_positive_rate: rate(self.false_positives, self.label_negatives()),
            accuracy: rate(self.true_positives + self.true_negatives, count)?,
            confusion: *self,
        })
    }
}

/// `part / whole`, or `None` when `whole` is 0 (instead of NaN).
fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The metrics of one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupMetrics {
    /// Rows in the group (always at least 1).
    pub count: u64,
    /// Share of rows predicted positive.
    pub selection_rate: f64,
    /// Share of positive labels predicted positive; `None` when the group has
    /// no positive labels.
    pub true_positive_rate: Option<f64>,
    /// Share of negative labels predicted positive; `None` when the group has
    /// no negative labels.
    pub false_positive_rate: Option<f64>,
    /// Share of rows whose prediction equals the label.
    pub accuracy: f64,
    /// The counts the rates come from.
    pub confusion: Confusion,
}

/// Binary-classification metrics per group, like fairlearn's `MetricFrame`.
///
/// Groups are kept in their `Ord` order so reports are stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricFrame<G> {
    groups: BTreeMap<G, Confusion>,
}

impl<G: Ord> Default for MetricFrame<G> {
    fn default() -> Self {
        Self {
            groups: BTreeMap::new(),
        }
    }
}

impl<G: Ord> FromIterator<(G, bool, bool)> for MetricFrame<G> {
    /// Builds a frame from `(group, label, prediction)` rows.
    fn from_iter<I: IntoIterator<Item = (G, bool, bool)>>(rows: I) -> Self {
        let mut frame = Self::default();
        for (group, label, prediction) in rows {
            frame.record(group, label, prediction);
        }
        frame
    }
}

impl<G: Ord> MetricFrame<G> {
    /// An empty frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one row.
    pub fn record(&mut self, group: G, label: bool, prediction: bool) {
        self.groups
            .entry(group)
            .or_default()
            .record(label, prediction);
    }

    /// Number of groups seen.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The metrics of each group, in group order.
    pub fn by_group(&self) -> impl Iterator<Item = (&G, GroupMetrics)> + '_ {
        self.groups
            .iter()
            .filter_map(|(g, c)| c.metrics().map(|m| (g, m)))
    }

    /// The metrics of one group; `None` when no row had that group.
    pub fn group(&self, group: &G) -> Option<GroupMetrics> {
        self.groups.get(group).and_then(Confusion::metrics)
    }

    /// The metrics of all rows together; `None` when there are no rows.
    pub fn overall(&self) -> Option<GroupMetrics> {
        let mut all = Confusion::default();
        for c in self.groups.values() {
            all.true_positives += c.true_positives;
            all.false_positives += c.false_positives;
            all.true_negatives += c.true_negatives;
            all.false_negatives += c.false_negatives;
        }
        all.metrics()
    }

    /// Max − min of the groups' selection rates.
    pub fn demographic_parity_difference(&self) -> f64 {
        self.spread(|m| Some(m.selection_rate)).difference()
    }

    /// Min / max of the groups' selection rates.
    pub fn demographic_parity_ratio(&self) -> f64 {
        self.spread(|m| Some(m.selection_rate)).ratio()
    }

    /// The larger of the TPR and FPR differences across groups.
    pub fn equalized_odds_difference(&self) -> f64 {
        let tpr = self.spread(|m| m.true_positive_rate).difference();
        let fpr = self.spread(|m| m.false_positive_rate).difference();
        tpr.max(fpr)
    }

    /// The smaller of the TPR and FPR ratios across groups.
    pub fn equalized_odds_ratio(&self) -> f64 {
        let tpr = self.spread(|m| m.true_positive_rate).ratio();
        let fpr = self.spread(|m| m.false_positive_rate).ratio();
        tpr.min(fpr)
    }

    /// Min and max of one metric over the groups where it is defined.
    fn spread(&self, metric: impl Fn(&GroupMetrics) -> Option<f64>) -> Spread {
        Spread::of(self.by_group().filter_map(|(_, m)| metric(&m)))
    }
}

/// The range of one metric across groups; `None` when no group has it.
#[derive(Debug, Clone, Copy)]
struct Spread(Option<(f64, f64)>);

impl Spread {
    fn of(values: impl Iterator<Item = f64>) -> Self {
        Spread(values.fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        }))
    }

    fn difference(self) -> f64 {
        self.0.map_or(0.0, |(lo, hi)| hi - lo)
    }

    fn ratio(self) -> f64 {
        match self.0 {
            Some((lo, hi)) if hi > 0.0 => lo / hi,
            // No group, or every group at 0: nothing is unequal.
            _ => 1.0,
        }
    }
}

/// Decisions and perks granted to one group over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerkTally {
    pub decisions: u64,
    pub perks: u64,
}

impl From<(u64, u64)> for PerkTally {
    /// From `(decisions, perks)`.
    fn from((decisions, perks): (u64, u64)) -> Self {
        Self { decisions, perks }
    }
}

impl PerkTally {
    /// Perks per decision; `None` without decisions. Perks above decisions
    /// (inconsistent counters) read as a rate of 1, so the parity ratio
    /// stays in [0, 1].
    pub fn rate(&self) -> Option<f64> {
        rate(self.perks.min(self.decisions), self.decisions)
    }
}

/// The product's parity ratio: worst group perk rate / best group perk rate.
///
/// Groups with fewer than `min_decisions` decisions are left out: their rate
/// is mostly noise, and enforcing parity on it would whipsaw decisions. The
/// ratio is 1 when the best rate is 0 (nobody got a perk, which is parity)
/// and when no group is large enough to compare.
pub fn perk_parity_ratio<I>(groups: I, min_decisions: u64) -> f64
where
    I: IntoIterator,
    I::Item: Into<PerkTally>,
{
    Spread::of(
        groups
            .into_iter()
            .map(Into::into)
            .filter(|t: &PerkTally| t.decisions >= min_decisions)
            .filter_map(|t| t.rate()),
    )
    .ratio()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rows: &[(&'static str, bool, bool)]) -> MetricFrame<&'static str> {
        rows.iter().copied().collect()
    }

    #[test]
    fn per_group_rates_follow_the_confusion_counts() {
        let f = frame(&[
            ("a", true, true),
            ("a", true, false),
            ("a", false, true),
            ("a", false, false),
            ("a", false, false),
        ]);
        let m = f.group(&"a").unwrap();
        assert_eq!(m.count, 5);
        assert_eq!(m.selection_rate, 2.0 / 5.0);
        assert_eq!(m.true_positive_rate, Some(0.5));
        assert_eq!(m.false_positive_rate, Some(1.0 / 3.0));
        assert_eq!(m.accuracy, 3.0 / 5.0);
        assert_eq!(f.group(&"b"), None);
    }

    #[test]
    fn a_group_without_positive_labels_has_no_tpr_and_is_left_out_of_equalized_odds() {
        let f = frame(&[
            ("a", true, true),
            ("a", true, false),
            ("a", false, false),
            ("b", true, true),
            ("b", false, true),
            ("b", false, false),
            ("c", false, true),
        ]);
        assert_eq!(f.group(&"c").unwrap().true_positive_rate, None);
        // TPR: a 0.5, b 1.0 (c undefined); FPR: a 0, b 0.5, c 1.
        assert_eq!(f.equalized_odds_difference(), 1.0);
        assert_eq!(f.equalized_odds_ratio(), 0.0);
        for v in [f.equalized_odds_difference(), f.equalized_odds_ratio()] {
            assert!(v.is_finite());
        }
    }

    #[test]
    fn demographic_parity_compares_selection_rates() {
        let f = frame(&[
            ("a", true, true),
            ("a", false, false),
            ("b", true, true),
            ("b", false, true),
            ("b", false, false),
            ("b", false, false),
        ]);
        assert_eq!(f.demographic_parity_difference(), 0.0);
        assert_eq!(f.demographic_parity_ratio(), 1.0);
        let f = frame(&[("a", true, true), ("b", true, false), ("b", true, true)]);
        assert_eq!(f.demographic_parity_difference(), 0.5);
        assert_eq!(f.demographic_parity_ratio(), 0.5);
    }

    #[test]
    fn nobody_selected_is_parity_not_nan() {
        let f = frame(&[("a", true, false), ("b", false, false)]);
        assert_eq!(f.demographic_parity_ratio(), 1.0);
        assert_eq!(f.demographic_parity_difference(), 0.0);
        // TPR defined only for a, FPR only for b: one group each, nothing to compare.
        assert_eq!(f.equalized_odds_ratio(), 1.0);
        assert_eq!(f.equalized_odds_difference(), 0.0);
    }

    #[test]
    fn an_empty_frame_reports_no_disparity_and_no_overall_metrics() {
        let f = MetricFrame::<u8>::new();
        assert_eq!(f.group_count(), 0);
        assert_eq!(f.overall(), None);
        assert_eq!(f.demographic_parity_difference(), 0.0);
        assert_eq!(f.demographic_parity_ratio(), 1.0);
        assert_eq!(f.equalized_odds_difference(), 0.0);
        assert_eq!(f.equalized_odds_ratio(), 1.0);
    }

    #[test]
    fn overall_pools_every_group() {
        let f = frame(&[("a", true, true), ("b", false, true), ("b", true, false)]);
        let m = f.overall().unwrap();
        assert_eq!(m.count, 3);
        assert_eq!(m.accuracy, 1.0 / 3.0);
        assert_eq!(m.true_positive_rate, Some(0.5));
    }

    #[test]
    fn perk_parity_is_worst_rate_over_best_rate() {
        let groups = [(100, 20), (200, 30), (50, 10)];
        assert!((perk_parity_ratio(groups, 0) - 0.15 / 0.2).abs() < 1e-12);
    }

    #[test]
    fn perk_parity_ignores_groups_below_the_minimum_sample() {
        // The 5-decision group with no perk would otherwise drive the ratio to 0.
        let groups = [(100, 20), (200, 30), (5, 0)];
        assert!((perk_parity_ratio(groups, 30) - 0.75).abs() < 1e-12);
        assert_eq!(perk_parity_ratio(groups, 0), 0.0);
    }

    #[test]
    fn perk_parity_is_one_when_nobody_got_a_perk_or_nobody_qualifies() {
        assert_eq!(perk_parity_ratio([(100, 0), (80, 0)], 30), 1.0);
        assert_eq!(perk_parity_ratio([(10, 3), (8, 0)], 30), 1.0);
        assert_eq!(perk_parity_ratio(Vec::<PerkTally>::new(), 0), 1.0);
        // A group without decisions has no rate, even with no minimum.
        assert_eq!(perk_parity_ratio([(0, 0), (10, 5)], 0), 1.0);
    }

    #[test]
    fn perk_counts_above_decisions_cannot_push_the_ratio_out_of_range() {
        let r = perk_parity_ratio([(10, 50), (10, 5)], 0);
        assert_eq!(r, 0.5);
    }
}
