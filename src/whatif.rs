//! What-if: replay interactions under the policy in force and under a
//! proposed one, and compare the figures a CX lead decides on.
//!
//! Both replays run through the real decision path (the same
//! [`DecisionService`], on a scratch in-memory store and a clock set to each
//! interaction's time), so caps, budget, parity and exploration behave
//! exactly as they would live. Both start from an empty window, so the two
//! columns are comparable; neither touches the live store.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::clock::{Clock, ManualClock};
use crate::domain::interaction::{Interaction, InteractionInput};
use crate::domain::policy::Policy;
use crate::domain::report::{fairness_report, FairnessReport};
use crate::domain::validation::ValidationError;
use crate::domain::window::SeverityBand;
use crate::service::{Decided, DecisionService, Models, ServiceError};
use crate::store::memory::MemoryStore;
use crate::store::Store;

/// Most interactions one preview replays.
pub const MAX_REPLAY: usize = 10_000;

/// Parity of one attribute in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParityFigures {
    pub attribute: String,
    /// Over all bands.
    pub overall: f64,
    /// Per severity band: (band, ratio, enforced).
    pub bands: Vec<BandParity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BandParity {
    pub band: SeverityBand,
    pub parity_ratio: f64,
    pub enforced: bool,
}

/// The figures of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScenarioFigures {
    pub policy_version: u32,
    pub decisions: u64,
    pub perks: u64,
    pub perk_rate: f64,
    /// Total gesture value granted.
    pub spend: f64,
    /// Mean utility of the actions taken (currency units).
    pub expected_utility: f64,
    /// Total justice cost of the actions taken (visible inequity, currency units).
    pub justice_cost: f64,
    pub parity: Vec<ParityFigures>,
}

/// Before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhatIf {
    /// `window` (recent interactions from the store) or `supplied`.
    pub source: String,
    pub replayed: usize,
    pub before: ScenarioFigures,
    pub after: ScenarioFigures,
    /// Interactions whose action or gesture would differ.
    pub changed_decisions: usize,
    /// Of those, how many would get a different gesture.
    pub changed_gestures: usize,
}

impl From<&FairnessReport> for ParityFigures {
    fn from(report: &FairnessReport) -> Self {
        ParityFigures {
            attribute: report.attribute.clone(),
            overall: report.overall.parity_ratio,
            bands: report
                .bands
                .iter()
                .map(|b| BandParity {
                    band: b.band,
                    parity_ratio: b.parity_ratio,
                    enforced: b.enforced,
                })
                .collect(),
        }
    }
}

type Outcome = (String, Option<(String, f64)>);

/// A replay: every decision, in order, and the scratch store they were
/// recorded in (for window figures).
pub struct Replay {
    pub decided: Vec<Decided>,
    pub store: Arc<MemoryStore>,
    pub end: OffsetDateTime,
}

/// Decides `inputs` (time, request, validated interaction; in time order)
/// under `policy` through the real decision path, on a scratch in-memory
/// store with the clock set to each interaction's time. The one replay the
/// what-if preview, the simulator and its logs share.
pub async fn replay_decisions(
    policy: &Policy,
    models: &Models,
    inputs: &[(OffsetDateTime, InteractionInput, Interaction)],
) -> Result<Replay, ServiceError> {
    let store = Arc::new(MemoryStore::new());
    let start = inputs
        .first()
        .map(|(t, _, _)| *t)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let clock = ManualClock::new(start);
    let svc = DecisionService::new(
        policy.clone(),
        models.clone(),
        store.clone(),
        Arc::new(clock.clone()),
    );
    let mut decided = Vec::with_capacity(inputs.len());
    for (at, input, interaction) in inputs {
        clock.set(*at);
        decided.push(svc.decide(input, interaction.clone()).await?);
    }
    Ok(Replay {
        decided,
        store,
        end: clock.now(),
    })
}

/// Validated replay inputs from simulated or logged requests (which carry
/// their time); `fallback` is used for a request without one.
pub fn replay_inputs(
    inputs: &[InteractionInput],
    fallback: OffsetDateTime,
) -> Result<Vec<(OffsetDateTime, InteractionInput, Interaction)>, ValidationError> {
    let mut parsed = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let interaction = Interaction::try_from(input.clone())
            .map_err(|e| e.within(&format!("interactions[{i}]")))?;
        parsed.push((
            input.occurred_at.unwrap_or(fallback),
            input.clone(),
            interaction,
        ));
    }
    parsed.sort_by_key(|(t, _, _)| *t);
    Ok(parsed)
}

async fn replay(
    policy: &Policy,
    models: &Models,
    inputs: &[(OffsetDateTime, InteractionInput, Interaction)],
) -> Result<(ScenarioFigures, Vec<Outcome>), ServiceError> {
    let Replay {
        decided,
        store,
        end,
    } = replay_decisions(policy, models, inputs).await?;
    let (mut perks, mut spend, mut utility, mut justice) = (0u64, 0.0, 0.0, 0.0);
    let mut outcomes = Vec::with_capacity(inputs.len());
    for d in &decided {
        if let Some(g) = &d.decision.gesture {
            perks += 1;
            spend += g.value;
        }
        utility += d.utility;
        justice += d.justice_cost;
        let gesture = d
            .decision
            .gesture
            .as_ref()
            .map(|g| (format!("{:?}", g.kind), g.value));
        outcomes.push((d.decision.action.clone(), gesture));
    }
    let n = inputs.len() as u64;
    let stats = store
        .window_stats(end, policy.fairness.window_hours)
        .await?;
    let parity = policy
        .fairness
        .group_attributes
        .iter()
        .map(|a| ParityFigures::from(&fairness_report(policy, &stats, a)))
        .collect();
    let figures = ScenarioFigures {
        policy_version: policy.version,
        decisions: n,
        perks,
        perk_rate: if n == 0 { 0.0 } else { perks as f64 / n as f64 },
        spend,
        expected_utility: if n == 0 { 0.0 } else { utility / n as f64 },
        justice_cost: justice,
        parity,
    };
    Ok((figures, outcomes))
}

impl DecisionService {
    /// Previews `proposed` (validated by the caller) against the policy in
    /// force on `supplied` interactions, or on the recent window's.
    pub async fn what_if(
        &self,
        proposed: &Policy,
        supplied: Option<Vec<InteractionInput>>,
    ) -> Result<WhatIf, ServiceError> {
        let current = self.policy();
        let now = self.clock().now();
        let (source, inputs) = match supplied {
            Some(list) => ("supplied", list),
            None => {
                let since = now - time::Duration::hours(i64::from(current.fairness.window_hours));
                let mut recent = self.store().recent_interactions(since, MAX_REPLAY).await?;
                recent.reverse();
                ("window", recent)
            }
        };
        if inputs.len() > MAX_REPLAY {
            return Err(ServiceError::InvalidInteraction(ValidationError::new(
                "interactions",
                format!("at most {MAX_REPLAY} interactions"),
            )));
        }
        let parsed = replay_inputs(&inputs, now).map_err(ServiceError::InvalidInteraction)?;
        let models = self.models();
        let (before, a) = replay(&current, &models, &parsed).await?;
        let (after, b) = replay(proposed, &models, &parsed).await?;
        let changed_decisions = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        let changed_gestures = a.iter().zip(&b).filter(|(x, y)| x.1 != y.1).count();
        Ok(WhatIf {
            source: source.to_string(),
            replayed: parsed.len(),
            before,
            after,
            changed_decisions,
            changed_gestures,
        })
    }
}
