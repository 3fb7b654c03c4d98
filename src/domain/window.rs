//! What the rolling window says about how peers and groups were treated.
//!
//! The store keeps counters in hourly buckets; the core only reads this
//! snapshot, so it stays free of I/O and the same snapshot can be replayed
//! in tests and in the what-if simulator.
//!
//! **Window semantics** (the same for every store, so they can be checked
//! against one reference model): time is cut into UTC hours; a decision made
//! at `t` counts in bucket `floor(t / 1 h)`; the window of `H` hours at time
//! `now` is the `H` buckets ending with the current one,
//! `(bucket(now) − H, bucket(now)]`. A decision therefore leaves the window
//! between `H − 1` and `H` hours after it was made, on the hour.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Number of deservingness bands peer norms are kept for.
pub const DESERVINGNESS_BANDS: usize = 5;

/// The band of a deservingness score: [0, 0.2), [0.2, 0.4), … [0.8, 1].
pub fn deservingness_band(d: f64) -> usize {
    ((d * DESERVINGNESS_BANDS as f64) as usize).min(DESERVINGNESS_BANDS - 1)
}

/// Severity bands parity is enforced within: treat like cases alike, so a
/// group is compared with other groups only among equally severe cases.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SeverityBand {
    Low,
    Medium,
    High,
}

impl SeverityBand {
    pub const ALL: [SeverityBand; 3] =
        [SeverityBand::Low, SeverityBand::Medium, SeverityBand::High];

    /// Low below `edges[0]`, medium below `edges[1]`, high from `edges[1]`
    /// (`fairness.severity_bands` of the policy).
    pub fn of(severity: f64, edges: [f64; 2]) -> Self {
        if severity < edges[0] {
            SeverityBand::Low
        } else if severity < edges[1] {
            SeverityBand::Medium
        } else {
            SeverityBand::High
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SeverityBand::Low => "low",
            SeverityBand::Medium => "medium",
            SeverityBand::High => "high",
        }
    }
}

/// The group a customer without the attribute is counted in.
pub const UNKNOWN_GROUP: &str = "unknown";

/// One counter of the window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "cell", rename_all = "snake_case")]
pub enum Cell {
    /// Decisions in a deservingness band (peer norms for the justice cost).
    Peer { band: u8 },
    /// Decisions of one group of an audited attribute, in a severity band.
    Group {
        attribute: String,
        group: String,
        band: SeverityBand,
    },
}

/// What a cell counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub decisions: u64,
    pub perks: u64,
    /// Total gesture value granted.
    pub value: f64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.decisions += other.decisions;
        self.perks += other.perks;
        self.value += other.value;
    }

    pub fn perk_rate(&self) -> f64 {
        if self.decisions == 0 {
            0.0
        } else {
            self.perks as f64 / self.decisions as f64
        }
    }
}

/// Hour bucket of a time.
pub fn bucket_of(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(3600)
}

/// First bucket inside a window of `hours` ending at `now`.
pub fn first_bucket(now: OffsetDateTime, hours: u32) -> i64 {
    bucket_of(now) - i64::from(hours) + 1
}

/// The cells a decision counts in.
pub fn cells_for(
    attributes: &BTreeMap<String, String>,
    audited: &[String],
    edges: [f64; 2],
    severity: f64,
    deservingness: f64,
) -> Vec<Cell> {
    let band = SeverityBand::of(severity, edges);
    let mut cells = vec![Cell::Peer {
        band: deservingness_band(deservingness) as u8,
    }];
    for attribute in audited {
        let group = attributes
            .get(attribute)
            .cloned()
            .unwrap_or_else(|| UNKNOWN_GROUP.to_string());
        cells.push(Cell::Group {
            attribute: attribute.clone(),
            group,
            band,
        });
    }
    cells
}

/// Counters over the rolling window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowStats {
    pub cells: BTreeMap<Cell, Counts>,
}

/// Pseudo-decisions of prior weight given to the policy's own rule, so the
/// first few decisions of a window do not swing the peer norm.
const PRIOR_WEIGHT: f64 = 10.0;

impl WindowStats {
    pub fn get(&self, cell: &Cell) -> Counts {
        self.cells.get(cell).copied().unwrap_or_default()
    }

    /// Adds one decision (what a commit does), for replays and tests.
    pub fn record(&mut self, cells: &[Cell], granted: Option<f64>) {
        for c in cells {
            self.cells.entry(c.clone()).or_default().add(Counts {
                decisions: 1,
                perks: u64::from(granted.is_some()),
                value: granted.unwrap_or(0.0),
            });
        }
    }

    /// The value peers with this deservingness received on average, shrunk
    /// towards `rule_value` (what the published rule gives) when the window
    /// has few decisions in that band.
    pub fn peer_norm(&self, deservingness: f64, rule_value: f64) -> f64 {
        let c = self.get(&Cell::Peer {
            band: deservingness_band(deservingness) as u8,
        });
        (c.value + PRIOR_WEIGHT * rule_value) / (c.decisions as f64 + PRIOR_WEIGHT)
    }

    /// Counts of every group of `attribute` in `band`.
    pub fn groups(&self, attribute: &str, band: SeverityBand) -> Vec<(String, Counts)> {
        self.cells
            .iter()
            .filter_map(|(cell, counts)| match cell {
                Cell::Group {
                    attribute: a,
                    group,
                    band: b,
                } if a == attribute && *b == band => Some((group.clone(), *counts)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn bands_cover_the_unit_interval() {
        assert_eq!(deservingness_band(0.0), 0);
        assert_eq!(deservingness_band(0.199), 0);
        assert_eq!(deservingness_band(0.2), 1);
        assert_eq!(deservingness_band(1.0), DESERVINGNESS_BANDS - 1);
        let edges = [0.35, 0.7];
        assert_eq!(SeverityBand::of(0.3499, edges), SeverityBand::Low);
        assert_eq!(SeverityBand::of(0.35, edges), SeverityBand::Medium);
        assert_eq!(SeverityBand::of(0.7, edges), SeverityBand::High);
    }

    #[test]
    fn an_empty_window_defers_to_the_rule() {
        assert_eq!(WindowStats::default().peer_norm(0.7, 18.0), 18.0);
    }

    #[test]
    fn a_full_window_pulls_the_norm_towards_what_peers_got() {
        let mut w = WindowStats::default();
        for _ in 0..1000 {
            w.record(&[Cell::Peer { band: 3 }], None);
        }
        assert!(w.peer_norm(0.7, 18.0) < 0.2);
    }

    #[test]
    fn the_window_is_the_last_h_hour_buckets_including_the_current_one() {
        let now = datetime!(2026-11-20 12:30 UTC);
        assert_eq!(bucket_of(now) - first_bucket(now, 168), 167);
        assert_eq!(
            bucket_of(datetime!(2026-11-20 12:00 UTC)),
            bucket_of(datetime!(2026-11-20 12:59:59 UTC))
        );
        assert_eq!(
            bucket_of(datetime!(1969-12-31 23:59 UTC)),
            -1,
            "floor, not truncation"
        );
    }

    #[test]
    fn customers_without_an_audited_attribute_count_as_unknown() {
        let cells = cells_for(
            &BTreeMap::new(),
            &["tier".to_string()],
            [0.35, 0.7],
            0.8,
            0.5,
        );
        assert!(cells.contains(&Cell::Group {
            attribute: "tier".into(),
            group: UNKNOWN_GROUP.into(),
            band: SeverityBand::High
        }));
    }
}
