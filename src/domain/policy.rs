//! The fairness policy: thresholds, caps, budget, exploration and the action
//! catalogue, as published to everyone (procedural justice: the rules are
//! data, not code).
//!
//! The same structure is read from TOML on disk and from JSON over the API.
//! [`Policy::validate`] reports *every* bad field at once, so a marketer fixes
//! a document in one round instead of one error at a time; a [`Policy`] that
//! passed it is what the decision core relies on (no NaN ratio, no unknown
//! template, no duplicate action).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::interaction::Kind;
use super::validation::ValidationError;

/// The whole policy document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Policy {
    /// Bumped on every change; decisions name the version they used.
    pub version: u32,
    pub fairness: Fairness,
    pub caps: Caps,
    pub budget: Budget,
    #[serde(default)]
    pub exploration: Exploration,
    #[serde(default)]
    pub scoring: Scoring,
    /// Reply texts by template id. Public templates never mention amounts or tiers.
    pub templates: BTreeMap<String, String>,
    /// The catalogue of actions the service may recommend.
    pub actions: Vec<ActionSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Fairness {
    /// `customer.attributes` keys audited for parity.
    pub group_attributes: Vec<String>,
    /// Worst group perk rate / best group perk rate, per severity band; in (0, 1].
    pub min_parity_ratio: f64,
    /// Rolling window for parity, peer norms and reports.
    pub window_hours: u32,
    /// No parity enforcement below this many decisions per group and band.
    pub min_group_samples: u32,
    /// Weight of the visible-inequity cost in the utility.
    pub justice_weight: f64,
    /// Severity edges of the low / medium / high bands parity is compared
    /// within. Align the low band with where the catalogue's gestures start
    /// (their lowest `min_severity`): a band that mixes cases no perk is
    /// eligible for with a sliver of eligible ones has rates made of a
    /// handful of perks, which no rule can even out.
    #[serde(default = "default_bands")]
    #[schema(min_items = 2, max_items = 2)]
    pub severity_bands: [f64; 2],
    /// Whether conditional parity changes decisions (`false`: only reported).
    #[serde(default = "yes")]
    pub enforce_parity: bool,
}

fn yes() -> bool {
    true
}

fn default_bands() -> [f64; 2] {
    [0.35, 0.7]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Caps {
    /// Perks one customer may receive per `window_days`.
    pub perks_per_customer: u32,
    pub window_days: u32,
    /// Total gesture value one customer may receive per `window_days`.
    pub max_value_per_customer: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Budget {
    /// Gesture value granted per UTC day, across all replicas; never overspent.
    pub daily: f64,
    /// ISO 4217 code used for every gesture.
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Exploration {
    /// Probability of taking another eligible action that keeps the same
    /// gesture (only the reply varies), so new policies can be evaluated offline.
    pub epsilon: f64,
    /// Opt-in gesture exploration: probability of moving the gesture one
    /// step from the consistent gesture (the adjacent gesture value among
    /// those this case is eligible for, "no gesture" being the bottom step).
    /// 0 (the default) never varies the gesture; at most
    /// [`MAX_GESTURE_EPSILON`]. Such decisions are flagged `explored`.
    #[serde(default)]
    pub gesture_epsilon: f64,
}

/// Highest allowed `exploration.gesture_epsilon`: exploring gestures treats
/// equal cases unequally on purpose, so it must stay rare.
pub const MAX_GESTURE_EPSILON: f64 = 0.2;

impl Default for Exploration {
    fn default() -> Self {
        Self {
            epsilon: 0.0,
            gesture_epsilon: 0.0,
        }
    }
}

/// How customer value and visibility enter the utility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default, remote = "Self")]
pub struct Scoring {
    /// Value of keeping any customer, in currency units.
    pub base_customer_value: f64,
    /// Share of lifetime value added to the customer's value.
    pub lifetime_value_share: f64,
    /// Upper bound on a customer's value, so the biggest spender cannot buy
    /// a different treatment.
    pub max_customer_value: f64,
    /// Visibility of a private interaction (private perks still get talked about).
    pub private_visibility: f64,
    /// Audience at which a public interaction counts as fully visible.
    pub full_visibility_audience: u64,
    /// Gestures never exceed this multiple of the order value (Haesevoets et
    /// al., 2017: over-compensation beyond ~150 % buys nothing).
    pub max_order_multiple: f64,
    /// Loyalty in [0, 1] at which the outcome model is asked whether a
    /// gesture is worth giving. The gain is then valued at the customer's own
    /// value, so worth only grows with deservingness (see `decide`).
    pub reference_loyalty: f64,
}

impl Default for Scoring {
    fn default() -> Self {
        Self {
            base_customer_value: 60.0,
            lifetime_value_share: 0.1,
            max_customer_value: 400.0,
            private_visibility: 0.1,
            full_visibility_audience: 100_000,
            max_order_multiple: 1.5,
            reference_loyalty: 0.5,
        }
    }
}

/// Where the reply of an action goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Say nothing (spam, empty input).
    Ignore,
    Thank,
    Inform,
    Apologise,
    /// Hand over to a person.
    Escalate,
}

/// Which interactions (public or private) an action may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Eligibility {
    #[default]
    Any,
    Public,
    Private,
}

impl Eligibility {
    pub fn admits(self, public: bool) -> bool {
        match self {
            Eligibility::Any => true,
            Eligibility::Public => public,
            Eligibility::Private => !public,
        }
    }
}

/// The kind of a gesture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GestureKind {
    Credit,
    Discount,
    Gift,
    FreeShipping,
    Replacement,
}

impl GestureKind {
    /// Monetary gestures are the ones observers compare and budgets count.
    /// All gestures here cost money, so all are budgeted.
    pub fn is_monetary(self) -> bool {
        true
    }
}

/// A gesture an action carries, and how its value is set.
///
/// `value = clamp(fraction_of_order × deservingness × order_value, min, max)`,
/// rounded to whole currency units, and never above `max_order_multiple` × order
/// value. Only deservingness and the order enter it, so two customers in the
/// same situation get the same gesture however loud they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct GestureSpec {
    pub kind: GestureKind,
    pub fraction_of_order: f64,
    /// Order value assumed when the interaction names none.
    pub default_order_value: f64,
    pub min: f64,
    pub max: f64,
    /// What granting one unit of value costs the firm (a discount is only
    /// used sometimes, a replacement costs goods).
    pub cost_ratio: f64,
}

/// One action of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ActionSpec {
    pub id: String,
    pub intent: Intent,
    /// Reply template used on private channels.
    pub template: String,
    /// Reply template used when the interaction is public.
    pub public_template: String,
    #[serde(default)]
    pub gesture: Option<GestureSpec>,
    /// Interaction kinds this action may answer.
    pub kinds: Vec<Kind>,
    /// Whether the action answers public interactions, private ones, or both.
    #[serde(default)]
    pub visibility: Eligibility,
    #[serde(default)]
    pub min_severity: f64,
    #[serde(default = "one")]
    pub max_severity: f64,
    /// Handling cost (agent time), in currency units.
    #[serde(default)]
    pub handling_cost: f64,
}

fn one() -> f64 {
    1.0
}

/// The template a public reply uses when a gesture must move private.
pub const MOVE_PRIVATE_TEMPLATE: &str = "apology_move_private";
/// The action chosen for spam-like or empty input.
pub const NO_ACTION: &str = "no_action";

struct Errors(Vec<ValidationError>);

impl Errors {
    fn check(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.0.push(ValidationError::new(field, message));
        }
    }

    fn finite_non_negative(&mut self, field: &str, v: f64) {
        self.check(
            v.is_finite() && v >= 0.0,
            field,
            "must be a finite, non-negative number",
        );
    }

    fn unit(&mut self, field: &str, v: f64) {
        self.check(
            v.is_finite() && (0.0..=1.0).contains(&v),
            field,
            "must be between 0 and 1",
        );
    }
}

impl Policy {
    /// The bundled default policy (`config/policy.toml`).
    pub fn bundled() -> Policy {
        Policy::from_toml(include_str!("../../config/policy.toml"))
            .expect("the bundled policy is valid (checked by a unit test)")
    }

    /// Parses and validates a TOML document.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        policy.validate().map_err(PolicyError::Invalid)?;
        Ok(policy)
    }

    /// Checks the whole document and returns every problem found.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut e = Errors(Vec::new());
        let f = &self.fairness;
        e.check(
            f.min_parity_ratio.is_finite() && f.min_parity_ratio > 0.0 && f.min_parity_ratio <= 1.0,
            "fairness.min_parity_ratio",
            "must be in (0, 1]",
        );
        e.check(
            (1..=24 * 366).contains(&f.window_hours),
            "fairness.window_hours",
            "must be between 1 and 8784",
        );
        e.finite_non_negative("fairness.justice_weight", f.justice_weight);
        let [lo, hi] = f.severity_bands;
        e.check(
            lo.is_finite() && hi.is_finite() && 0.0 < lo && lo < hi && hi < 1.0,
            "fairness.severity_bands",
            "must be two increasing edges strictly between 0 and 1",
        );
        let mut seen = HashSet::new();
        for (i, a) in f.group_attributes.iter().enumerate() {
            e.check(
                !a.is_empty()
                    && a.len() <= 32
                    && a.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')),
                format!("fairness.group_attributes[{i}]"),
                "must be an attribute key: 1-32 of [A-Za-z0-9_.-]",
            );
            e.check(
                seen.insert(a),
                format!("fairness.group_attributes[{i}]"),
                format!("duplicate attribute {a:?}"),
            );
        }
        e.check(
            self.caps.window_days >= 1 && self.caps.window_days <= 366,
            "caps.window_days",
            "must be between 1 and 366",
        );
        e.finite_non_negative(
            "caps.max_value_per_customer",
            self.caps.max_value_per_customer,
        );
        e.finite_non_negative("budget.daily", self.budget.daily);
        e.check(
            self.budget.currency.len() == 3
                && self.budget.currency.chars().all(|c| c.is_ascii_uppercase()),
            "budget.currency",
            "must be an ISO 4217 code such as EUR",
        );
        e.unit("exploration.epsilon", self.exploration.epsilon);
        let g = self.exploration.gesture_epsilon;
        e.check(
            g.is_finite() && (0.0..=MAX_GESTURE_EPSILON).contains(&g),
            "exploration.gesture_epsilon",
            format!("must be between 0 and {MAX_GESTURE_EPSILON}"),
        );
        let s = &self.scoring;
        e.finite_non_negative("scoring.base_customer_value", s.base_customer_value);
        e.finite_non_negative("scoring.lifetime_value_share", s.lifetime_value_share);
        e.finite_non_negative("scoring.max_customer_value", s.max_customer_value);
        e.unit("scoring.private_visibility", s.private_visibility);
        e.unit("scoring.reference_loyalty", s.reference_loyalty);
        e.check(
            s.full_visibility_audience >= 1,
            "scoring.full_visibility_audience",
            "must be at least 1",
        );
        e.check(
            s.max_order_multiple.is_finite() && s.max_order_multiple > 0.0,
            "scoring.max_order_multiple",
            "must be a positive number",
        );
        for (id, text) in &self.templates {
            e.check(
                !text.trim().is_empty() && text.len() <= 2000,
                format!("templates.{id}"),
                "must be a non-empty text of at most 2000 bytes",
            );
        }
        e.check(
            self.templates.contains_key(MOVE_PRIVATE_TEMPLATE),
            "templates",
            format!("must define {MOVE_PRIVATE_TEMPLATE:?} (used when a gesture moves private)"),
        );
        let mut ids = HashSet::new();
        for (i, a) in self.actions.iter().enumerate() {
            let p = format!("actions[{i}]");
            if let Err(err) = super::validation::ActionId::parse("id", a.id.clone()) {
                e.0.push(err.within(&p));
            }
            e.check(
                ids.insert(&a.id),
                format!("{p}.id"),
                format!("duplicate action id {:?}", a.id),
            );
            for (field, t) in [
                ("template", &a.template),
                ("public_template", &a.public_template),
            ] {
                e.check(
                    self.templates.contains_key(t),
                    format!("{p}.{field}"),
                    format!("unknown template {t:?}"),
                );
            }
            e.unit(&format!("{p}.min_severity"), a.min_severity);
            e.unit(&format!("{p}.max_severity"), a.max_severity);
            e.check(
                a.min_severity <= a.max_severity,
                format!("{p}.max_severity"),
                "must not be below min_severity",
            );
            e.finite_non_negative(&format!("{p}.handling_cost"), a.handling_cost);
            e.check(
                !a.kinds.is_empty(),
                format!("{p}.kinds"),
                "must list at least one kind",
            );
            if let Some(g) = &a.gesture {
                let gp = format!("{p}.gesture");
                e.finite_non_negative(&format!("{gp}.fraction_of_order"), g.fraction_of_order);
                e.finite_non_negative(&format!("{gp}.default_order_value"), g.default_order_value);
                e.finite_non_negative(&format!("{gp}.min"), g.min);
                e.finite_non_negative(&format!("{gp}.max"), g.max);
                e.finite_non_negative(&format!("{gp}.cost_ratio"), g.cost_ratio);
                e.check(g.min <= g.max, format!("{gp}.max"), "must not be below min");
                e.check(
                    a.intent == Intent::Apologise,
                    format!("{p}.intent"),
                    "a gesture always comes with an apology",
                );
            }
        }
        e.check(
            self.actions.iter().any(|a| a.id == NO_ACTION),
            "actions",
            format!("must define {NO_ACTION:?} (chosen for spam-like or empty input)"),
        );
        for kind in Kind::ALL {
            for public in [true, false] {
                e.check(
                    self.actions.iter().any(|a| {
                        a.kinds.contains(&kind)
                            && a.visibility.admits(public)
                            && a.gesture.is_none()
                            && a.intent != Intent::Ignore
                    }),
                    "actions",
                    format!(
                        "no non-gesture action answers a {} {kind:?}: every customer must get an answer",
                        if public { "public" } else { "private" }
                    ),
                );
            }
        }
        if e.0.is_empty() {
            Ok(())
        } else {
            Err(e.0)
        }
    }

    pub fn action(&self, id: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.id == id)
    }

    pub fn template(&self, id: &str) -> &str {
        self.templates
            .get(id)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// One field that changed between two policy versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldChange {
    /// Dotted path, e.g. `fairness.min_parity_ratio` or `actions[3].gesture.max`.
    pub field: String,
    #[schema(value_type = Object)]
    pub old: serde_json::Value,
    #[schema(value_type = Object)]
    pub new: serde_json::Value,
}

/// An entry of the policy audit log: who changed what, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyChange {
    pub version: u32,
    pub previous_version: u32,
    /// Who made the change (the admin key's name, or `startup`).
    pub actor: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    pub changes: Vec<FieldChange>,
    /// The whole new document.
    pub policy: Policy,
}

impl PolicyChange {
    /// The change from `previous` (`None`: no policy was stored) to
    /// `policy`, by `actor` at `at`, with the fields that differ.
    pub fn new(
        previous: Option<&Policy>,
        policy: Policy,
        actor: impl Into<String>,
        at: time::OffsetDateTime,
    ) -> Self {
        Self {
            version: policy.version,
            previous_version: previous.map_or(0, |p| p.version),
            actor: actor.into(),
            at,
            changes: previous.map(|p| diff(p, &policy)).unwrap_or_default(),
            policy,
        }
    }
}

/// The fields that differ between two policies, as dotted paths.
pub fn diff(old: &Policy, new: &Policy) -> Vec<FieldChange> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<FieldChange>) {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &p,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (u, v)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}[{i}]"), u, v, out);
                }
            }
            _ if a != b => out.push(FieldChange {
                field: path.to_string(),
                old: a.clone(),
                new: b.clone(),
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let a = serde_json::to_value(old).expect("a policy serialises");
    let b = serde_json::to_value(new).expect("a policy serialises");
    walk("", &a, &b, &mut out);
    out
}

/// Why a policy document could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is not valid TOML/JSON: {0}")]
    Parse(String),
    #[error("the policy has {} invalid field(s): {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ValidationError>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_policy_is_valid() {
        let p = Policy::bundled();
        assert!(p.actions.len() >= 8);
        assert!(p.action(NO_ACTION).is_some());
    }

    #[test]
    fn validation_reports_every_bad_field_at_once() {
        let mut p = Policy::bundled();
        p.fairness.min_parity_ratio = 1.5;
        p.budget.daily = -1.0;
        p.actions[1].id = p.actions[0].id.clone();
        p.actions[2].template = "nope".into();
        let errors = p.validate().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"fairness.min_parity_ratio"), "{fields:?}");
        assert!(fields.contains(&"budget.daily"), "{fields:?}");
        assert!(fields.contains(&"actions[1].id"), "{fields:?}");
        assert!(fields.contains(&"actions[2].template"), "{fields:?}");
    }

    #[test]
    fn diff_names_each_changed_field_by_path() {
        let old = Policy::bundled();
        let mut new = old.clone();
        new.version += 1;
        new.fairness.min_parity_ratio = 0.9;
        new.actions[2].handling_cost = 9.0;
        let fields: Vec<String> = diff(&old, &new).into_iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            vec![
                "actions[2].handling_cost",
                "fairness.min_parity_ratio",
                "version"
            ]
        );
    }

    #[test]
    fn a_change_from_nothing_has_no_previous_version_and_no_field_changes() {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let first = PolicyChange::new(None, Policy::bundled(), "startup", at);
        assert_eq!((first.version, first.previous_version), (1, 0));
        assert!(first.changes.is_empty());
        let mut next = Policy::bundled();
        next.version = 2;
        next.budget.daily = 12.0;
        let change = PolicyChange::new(Some(&first.policy), next, "alice", at);
        assert_eq!((change.version, change.previous_version), (2, 1));
        assert_eq!(change.actor, "alice");
        let fields: Vec<&str> = change.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["budget.daily", "version"]);
    }

    #[test]
    fn gesture_exploration_is_off_by_default_and_bounded() {
        let p = Policy::bundled();
        assert_eq!(p.exploration.gesture_epsilon, 0.0);
        // A document written before the setting existed still reads.
        let e: Exploration = toml::from_str("epsilon = 0.05").unwrap();
        assert_eq!(e.gesture_epsilon, 0.0);
        for (value, ok) in [
            (0.0, true),
            (0.05, true),
            (MAX_GESTURE_EPSILON, true),
            (MAX_GESTURE_EPSILON + 1e-9, false),
            (0.5, false),
            (-0.01, false),
            (f64::NAN, false),
            (f64::INFINITY, false),
        ] {
            let mut p = Policy::bundled();
            p.exploration.gesture_epsilon = value;
            p.exploration.epsilon = 2.0;
            let fields: Vec<String> = p
                .validate()
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect();
            // Reported together with the other fields' errors.
            assert!(fields.contains(&"exploration.epsilon".to_string()));
            assert_eq!(
                fields.contains(&"exploration.gesture_epsilon".to_string()),
                !ok,
                "{value}: {fields:?}"
            );
        }
    }

    #[test]
    fn a_zero_parity_ratio_is_refused() {
        let mut p = Policy::bundled();
        p.fairness.min_parity_ratio = 0.0;
        assert!(p.validate().is_err());
    }
}

// Objects only: serde would also read these from arrays (see `domain::wire`).
crate::domain::wire::objects_only!(
    Policy,
    Fairness,
    Caps,
    Budget,
    Exploration,
    Scoring,
    GestureSpec,
    ActionSpec,
);
