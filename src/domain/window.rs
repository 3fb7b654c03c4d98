//! What the rolling window says about how peers were treated.
//!
//! The store keeps the counters; the core only reads this snapshot, so it
//! stays free of I/O and the same snapshot can be replayed in tests and in
//! the what-if simulator.

/// Number of deservingness bands peer norms are kept for.
pub const DESERVINGNESS_BANDS: usize = 5;

/// The band of a deservingness score: [0, 0.2), [0.2, 0.4), … [0.8, 1].
pub fn deservingness_band(d: f64) -> usize {
    ((d * DESERVINGNESS_BANDS as f64) as usize).min(DESERVINGNESS_BANDS - 1)
}

/// Peer statistics over the rolling window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowStats {
    /// Per deservingness band: (decisions, total gesture value granted).
    pub peers: [(u64, f64); DESERVINGNESS_BANDS],
}

/// Pseudo-decisions of prior weight given to the policy's own rule, so the
/// first few decisions of a window do not swing the peer norm.
const PRIOR_WEIGHT: f64 = 10.0;

impl WindowStats {
    /// The value peers with this deservingness received on average, shrunk
    /// towards `rule_value` (what the published rule gives) when the window
    /// has few decisions in that band.
    pub fn peer_norm(&self, deservingness: f64, rule_value: f64) -> f64 {
        let (n, total) = self.peers[deservingness_band(deservingness)];
        (total + PRIOR_WEIGHT * rule_value) / (n as f64 + PRIOR_WEIGHT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_the_unit_interval() {
        assert_eq!(deservingness_band(0.0), 0);
        assert_eq!(deservingness_band(0.199), 0);
        assert_eq!(deservingness_band(0.2), 1);
        assert_eq!(deservingness_band(1.0), DESERVINGNESS_BANDS - 1);
    }

    #[test]
    fn an_empty_window_defers_to_the_rule() {
        assert_eq!(WindowStats::default().peer_norm(0.7, 18.0), 18.0);
    }

    #[test]
    fn a_full_window_pulls_the_norm_towards_what_peers_got() {
        let mut w = WindowStats::default();
        w.peers[deservingness_band(0.7)] = (1000, 0.0);
        assert!(w.peer_norm(0.7, 18.0) < 0.2);
    }
}
