//! Validation errors and the small value types every request is parsed into.
//!
//! The edge (HTTP, CLI, log readers) turns untrusted input into these types
//! once; the rest of the core takes them as proof that the input is sane and
//! never re-checks. Identifiers are restricted to a conservative alphabet
//! because they end up inside store keys: braces would change a Redis Cluster
//! hash slot and colons would collide key namespaces.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A field of the input that failed validation, with a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Dotted path of the offending field, e.g. `customer.tenure_days`.
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefixes the field path, so nested validators can report full paths.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_string()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// Longest identifier accepted anywhere (interaction, customer, action ids).
pub const MAX_ID_LEN: usize = 128;

fn check_id(field: &str, raw: &str) -> Result<(), ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if raw.chars().count() > MAX_ID_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_ID_LEN} characters"),
        ));
    }
    if let Some(bad) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(ValidationError::new(
            field,
            format!(
                "may only contain ASCII letters, digits, '_', '-' and '.'; found {:?}",
                bad
            ),
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an identifier, reporting failures against `field`.
            pub fn parse(field: &str, raw: impl Into<String>) -> Result<Self, ValidationError> {
                let raw = raw.into();
                check_id(field, &raw)?;
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse("", raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The CRM's id of one interaction; the idempotency key of a decision.
    InteractionId
);
id_type!(
    /// The CRM's id of a customer; per-customer caps are kept under it.
    CustomerId
);
id_type!(
    /// An action of the policy's catalogue.
    ActionId
);

/// A non-negative, finite amount of money (or any non-negative quantity).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Amount(f64);

/// Largest amount accepted: far above any real order, far below where f64
/// sums lose cents.
pub const MAX_AMOUNT: f64 = 1.0e9;

impl Amount {
    pub const ZERO: Amount = Amount(0.0);

    pub fn parse(field: &str, raw: f64) -> Result<Self, ValidationError> {
        if !raw.is_finite() {
            return Err(ValidationError::new(field, "must be a finite number"));
        }
        if raw < 0.0 {
            return Err(ValidationError::new(field, "must not be negative"));
        }
        if raw > MAX_AMOUNT {
            return Err(ValidationError::new(
                field,
                format!("must be at most {MAX_AMOUNT}"),
            ));
        }
        Ok(Self(raw))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Amount {
    type Error = ValidationError;
    fn try_from(raw: f64) -> Result<Self, Self::Error> {
        Self::parse("", raw)
    }
}

impl From<Amount> for f64 {
    fn from(a: Amount) -> f64 {
        a.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_every_character_that_could_change_a_store_key() {
        for bad in ["", "a{b", "a}b", "a:b", "a b", "a\u{0}b", "a\u{202e}b", "é"] {
            assert!(
                InteractionId::parse("interaction_id", bad).is_err(),
                "{bad:?}"
            );
        }
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert!(CustomerId::parse("customer.id", long).is_err());
        let ok = "x".repeat(MAX_ID_LEN);
        assert!(CustomerId::parse("customer.id", ok).is_ok());
        assert_eq!(
            InteractionId::parse("interaction_id", "crm-8812.v2_a")
                .unwrap()
                .as_str(),
            "crm-8812.v2_a"
        );
    }

    #[test]
    fn amounts_must_be_finite_and_non_negative() {
        assert!(Amount::parse("x", -0.01).is_err());
        assert!(Amount::parse("x", f64::NAN).is_err());
        assert!(Amount::parse("x", f64::INFINITY).is_err());
        assert!(Amount::parse("x", MAX_AMOUNT * 2.0).is_err());
        assert_eq!(Amount::parse("x", 12.5).unwrap().get(), 12.5);
    }

    #[test]
    fn nested_errors_carry_the_full_field_path() {
        let e = ValidationError::new("tenure_days", "bad").within("customer");
        assert_eq!(e.field, "customer.tenure_days");
    }
}
