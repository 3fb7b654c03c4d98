//! The interaction: what a CRM sends for one review, post, complaint or chat.
//!
//! [`InteractionInput`] is the wire shape (what serde accepts); [`Interaction`]
//! is the validated domain value built from it with `TryFrom`. Only the latter
//! reaches scoring, so scoring never sees a negative amount, an unknown
//! channel or an 80 kB "text".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::validation::{Amount, CustomerId, InteractionId, ValidationError};

/// Longest text accepted, in characters (Unicode scalar values).
pub const MAX_TEXT_CHARS: usize = 8000;
/// Most attributes a customer may carry.
pub const MAX_ATTRIBUTES: usize = 16;
/// Largest audience accepted: more people than there are.
pub const MAX_AUDIENCE: u64 = 10_000_000_000;
/// Longest tenure accepted (about 270 years).
pub const MAX_TENURE_DAYS: u32 = 100_000;

/// Where the interaction happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    ReviewSite,
    Social,
    Email,
    Chat,
    Phone,
    InApp,
    Survey,
}

impl Channel {
    pub const ALL: [Channel; 7] = [
        Channel::ReviewSite,
        Channel::Social,
        Channel::Email,
        Channel::Chat,
        Channel::Phone,
        Channel::InApp,
        Channel::Survey,
    ];
}

/// What kind of interaction it is, as the CRM classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Complaint,
    Review,
    Praise,
    Question,
    Mention,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Complaint,
        Kind::Review,
        Kind::Praise,
        Kind::Question,
        Kind::Mention,
    ];
}

/// The customer as the CRM knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct CustomerInput {
    /// `[A-Za-z0-9_.-]{1,128}`
    #[schema(
        example = "c-42",
        pattern = "^[A-Za-z0-9_.-]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub id: String,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100000)]
    pub tenure_days: u32,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0e9)]
    pub lifetime_value: f64,
    /// Group attributes audited for parity (e.g. tier, region). Never used to
    /// decide who deserves a gesture. At most 16; names
    /// `[A-Za-z0-9_.-]{1,32}`, values `[A-Za-z0-9_.-]{1,64}`.
    #[serde(default)]
    #[schema(schema_with = attributes_schema)]
    pub attributes: BTreeMap<String, String>,
}

/// One customer interaction, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct InteractionInput {
    /// The CRM's id; the idempotency key. `[A-Za-z0-9_.-]{1,128}`
    #[schema(
        example = "crm-8812",
        pattern = "^[A-Za-z0-9_.-]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub interaction_id: String,
    pub customer: CustomerInput,
    pub channel: Channel,
    /// Whether others can see the interaction (a public review or post).
    #[serde(default)]
    pub public: bool,
    /// How many people can see it (followers, page views).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1.0e10)]
    pub audience: u64,
    pub kind: Kind,
    /// Star rating, 1–5, when the interaction has one.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 5)]
    pub rating: Option<u8>,
    /// What the customer wrote, at most 8000 characters; no control
    /// characters other than line breaks and tabs.
    #[schema(
        example = "Order arrived broken and nobody answers my emails",
        max_length = 8000,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub text: String,
    /// Value of the order concerned, if any.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0e9)]
    pub order_value: Option<f64>,
    /// When it happened (RFC 3339); defaults to now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub occurred_at: Option<OffsetDateTime>,
}

/// The schema of `customer.attributes`: what validation accepts, so
/// generated clients and schema-driven tests know the bounds.
fn attributes_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let string = |pattern: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(MAX_ATTRIBUTES))
        .property_names(Some(string("^[A-Za-z0-9_.-]{1,32}$")))
        .additional_properties(Some(string("^[A-Za-z0-9_.-]{1,64}$")))
        .build()
}

/// A validated customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: CustomerId,
    pub tenure_days: u32,
    pub lifetime_value: Amount,
    pub attributes: BTreeMap<String, String>,
}

/// A validated interaction: every field is within the documented bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub id: InteractionId,
    pub customer: Customer,
    pub channel: Channel,
    pub public: bool,
    pub audience: u64,
    pub kind: Kind,
    pub rating: Option<u8>,
    pub text: String,
    pub order_value: Option<Amount>,
    pub occurred_at: Option<OffsetDateTime>,
}

fn check_attribute_part(field: &str, raw: &str, max: usize) -> Result<(), ValidationError> {
    if raw.is_empty() || raw.len() > max {
        return Err(ValidationError::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ValidationError::new(
            field,
            "may only contain ASCII letters, digits, '_', '-' and '.'",
        ));
    }
    Ok(())
}

impl TryFrom<CustomerInput> for Customer {
    type Error = ValidationError;

    fn try_from(input: CustomerInput) -> Result<Self, Self::Error> {
        let id = CustomerId::parse("id", input.id)?;
        if input.tenure_days > MAX_TENURE_DAYS {
            return Err(ValidationError::new(
                "tenure_days",
                format!("must be at most {MAX_TENURE_DAYS}"),
            ));
        }
        let lifetime_value = Amount::parse("lifetime_value", input.lifetime_value)?;
        if input.attributes.len() > MAX_ATTRIBUTES {
            return Err(ValidationError::new(
                "attributes",
                format!("at most {MAX_ATTRIBUTES} attributes"),
            ));
        }
        for (k, v) in &input.attributes {
            check_attribute_part("attributes", k, 32)?;
            check_attribute_part(&format!("attributes.{k}"), v, 64)?;
        }
        Ok(Customer {
            id,
            tenure_days: input.tenure_days,
            lifetime_value,
            attributes: input.attributes,
        })
    }
}

impl TryFrom<InteractionInput> for Interaction {
    type Error = ValidationError;

    fn try_from(input: InteractionInput) -> Result<Self, Self::Error> {
        let id = InteractionId::parse("interaction_id", input.interaction_id)?;
        let customer = Customer::try_from(input.customer).map_err(|e| e.within("customer"))?;
        if input.audience > MAX_AUDIENCE {
            return Err(ValidationError::new(
                "audience",
                format!("must be at most {MAX_AUDIENCE}"),
            ));
        }
        if let Some(r) = input.rating {
            if !(1..=5).contains(&r) {
                return Err(ValidationError::new("rating", "must be between 1 and 5"));
            }
        }
        if input.text.chars().count() > MAX_TEXT_CHARS {
            return Err(ValidationError::new(
                "text",
                format!("must be at most {MAX_TEXT_CHARS} characters"),
            ));
        }
        // Line breaks and tabs are ordinary in reviews; other control
        // characters (NUL, escape sequences) only ever mean broken input.
        if input
            .text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ValidationError::new(
                "text",
                "must not contain control characters other than line breaks and tabs",
            ));
        }
        let order_value = input
            .order_value
            .map(|v| Amount::parse("order_value", v))
            .transpose()?;
        Ok(Interaction {
            id,
            customer,
            channel: input.channel,
            public: input.public,
            audience: input.audience,
            kind: input.kind,
            rating: input.rating,
            text: input.text,
            order_value,
            occurred_at: input.occurred_at,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_input() -> InteractionInput {
        serde_json::from_value(serde_json::json!({
            "interaction_id": "crm-8812",
            "customer": {"id": "c-42", "tenure_days": 800, "lifetime_value": 1250.0,
                         "attributes": {"tier": "gold", "region": "EU"}},
            "channel": "social", "public": true, "audience": 5400,
            "kind": "complaint", "rating": 2,
            "text": "Order arrived broken and nobody answers my emails",
            "order_value": 89.9, "occurred_at": "2026-11-20T10:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn the_contract_example_parses_and_validates() {
        let i = Interaction::try_from(sample_input()).unwrap();
        assert_eq!(i.id.as_str(), "crm-8812");
        assert_eq!(i.customer.attributes["tier"], "gold");
        assert_eq!(i.order_value.unwrap().get(), 89.9);
    }

    #[test]
    fn each_invalid_field_is_reported_by_its_path() {
        type Mutate = fn(&mut InteractionInput);
        let cases: &[(&str, Mutate)] = &[
            ("interaction_id", |i| i.interaction_id = String::new()),
            ("interaction_id", |i| i.interaction_id = "a{b}".into()),
            ("customer.id", |i| i.customer.id = "x".repeat(129)),
            ("customer.lifetime_value", |i| {
                i.customer.lifetime_value = -1.0
            }),
            ("customer.tenure_days", |i| i.customer.tenure_days = 200_000),
            ("customer.attributes.tier", |i| {
                i.customer.attributes.insert("tier".into(), "a b".into());
            }),
            ("rating", |i| i.rating = Some(0)),
            ("rating", |i| i.rating = Some(6)),
            ("text", |i| i.text = "x".repeat(MAX_TEXT_CHARS + 1)),
            ("text", |i| i.text = "nul\u{0}byte".into()),
            ("order_value", |i| i.order_value = Some(-5.0)),
            ("audience", |i| i.audience = MAX_AUDIENCE + 1),
        ];
        for (field, mutate) in cases {
            let mut input = sample_input();
            mutate(&mut input);
            let err = Interaction::try_from(input).unwrap_err();
            assert_eq!(&err.field, field, "{err}");
        }
    }

    #[test]
    fn text_of_exactly_the_limit_in_multibyte_characters_is_accepted() {
        let mut input = sample_input();
        input.text = "é".repeat(MAX_TEXT_CHARS);
        assert!(Interaction::try_from(input).is_ok());
    }
}

// Objects only: serde would also read these from arrays (see `domain::wire`).
crate::domain::wire::objects_only!(CustomerInput, InteractionInput);
