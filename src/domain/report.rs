//! The fairness report: per audited attribute, per severity band and per
//! group, how many decisions and perks there were in the window, the perk
//! rate, the mean gesture value, and the parity ratio against its threshold.
//!
//! A pure function of the window snapshot and the policy, so the HTTP report,
//! the what-if preview and the CLI all compute the same numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::fairness::perk_parity_ratio;
use super::policy::Policy;
use super::window::{Counts, SeverityBand, WindowStats};

/// One group's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupFigures {
    pub group: String,
    pub decisions: u64,
    pub perks: u64,
    pub perk_rate: f64,
    /// Mean value of the gestures granted (0 without perks).
    pub mean_value: f64,
    /// Total value granted.
    pub total_value: f64,
}

/// One severity band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BandFigures {
    pub band: SeverityBand,
    /// Worst group perk rate / best group perk rate, over groups with at
    /// least `min_group_samples` decisions (1 when fewer than two).
    pub parity_ratio: f64,
    /// Whether parity is enforced in this band: every group has at least
    /// `min_group_samples` decisions (and enforcement is on).
    pub enforced: bool,
    /// Whether the band is below the threshold while enforced.
    pub failing: bool,
    pub groups: Vec<GroupFigures>,
}

/// All bands together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OverallFigures {
    pub parity_ratio: f64,
    pub groups: Vec<GroupFigures>,
}

/// The report for one attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FairnessReport {
    pub attribute: String,
    pub window_hours: u32,
    pub threshold: f64,
    pub min_group_samples: u32,
    pub bands: Vec<BandFigures>,
    pub overall: OverallFigures,
}

fn figures(group: &str, c: Counts) -> GroupFigures {
    GroupFigures {
        group: group.to_string(),
        decisions: c.decisions,
        perks: c.perks,
        perk_rate: round6(c.perk_rate()),
        mean_value: if c.perks == 0 {
            0.0
        } else {
            round6(c.value / c.perks as f64)
        },
        total_value: round6(c.value),
    }
}

fn round6(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1e6).round() / 1e6
    } else {
        0.0
    }
}

/// The report for `attribute` (which the caller checked is audited).
pub fn fairness_report(policy: &Policy, window: &WindowStats, attribute: &str) -> FairnessReport {
    let f = &policy.fairness;
    let min = u64::from(f.min_group_samples);
    let mut overall: BTreeMap<String, Counts> = BTreeMap::new();
    let bands = SeverityBand::ALL
        .iter()
        .map(|&band| {
            let groups = window.groups(attribute, band);
            for (g, c) in &groups {
                overall.entry(g.clone()).or_default().add(*c);
            }
            let ratio = perk_parity_ratio(groups.iter().map(|(_, c)| (c.decisions, c.perks)), min);
            let enforced = f.enforce_parity
                && groups.len() >= 2
                && groups.iter().all(|(_, c)| c.decisions >= min);
            BandFigures {
                band,
                parity_ratio: round6(ratio),
                enforced,
                failing: enforced && ratio < f.min_parity_ratio,
                groups: groups.iter().map(|(g, c)| figures(g, *c)).collect(),
            }
        })
        .collect();
    let overall_ratio = perk_parity_ratio(overall.values().map(|c| (c.decisions, c.perks)), min);
    FairnessReport {
        attribute: attribute.to_string(),
        window_hours: f.window_hours,
        threshold: f.min_parity_ratio,
        min_group_samples: f.min_group_samples,
        bands,
        overall: OverallFigures {
            parity_ratio: round6(overall_ratio),
            groups: overall.iter().map(|(g, c)| figures(g, *c)).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::window::Cell;

    fn cell(group: &str, band: SeverityBand) -> Cell {
        Cell::Group {
            attribute: "tier".into(),
            group: group.into(),
            band,
        }
    }

    #[test]
    fn the_report_computes_rates_means_and_ratios_per_band_and_overall() {
        let mut p = Policy::bundled();
        p.fairness.min_group_samples = 2;
        let mut w = WindowStats::default();
        w.cells.insert(
            cell("gold", SeverityBand::High),
            Counts {
                decisions: 10,
                perks: 5,
                value: 100.0,
            },
        );
        w.cells.insert(
            cell("bronze", SeverityBand::High),
            Counts {
                decisions: 10,
                perks: 2,
                value: 30.0,
            },
        );
        w.cells.insert(
            cell("gold", SeverityBand::Low),
            Counts {
                decisions: 1,
                perks: 0,
                value: 0.0,
            },
        );
        let r = fairness_report(&p, &w, "tier");
        let high = r
            .bands
            .iter()
            .find(|b| b.band == SeverityBand::High)
            .unwrap();
        assert!((high.parity_ratio - 0.4).abs() < 1e-12);
        assert!(high.enforced && high.failing);
        let gold = high.groups.iter().find(|g| g.group == "gold").unwrap();
        assert_eq!(
            (gold.decisions, gold.perks, gold.perk_rate, gold.mean_value),
            (10, 5, 0.5, 20.0)
        );
        let low = r
            .bands
            .iter()
            .find(|b| b.band == SeverityBand::Low)
            .unwrap();
        assert!(!low.enforced, "one group only");
        assert_eq!(low.parity_ratio, 1.0);
        let og = r.overall.groups.iter().find(|g| g.group == "gold").unwrap();
        assert_eq!((og.decisions, og.perks), (11, 5));
        assert!((r.overall.parity_ratio - (2.0 / 10.0) / (5.0 / 11.0)).abs() < 1e-6);
    }
}
