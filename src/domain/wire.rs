//! Request types read JSON objects only.
//!
//! serde's derive also reads a struct from a JSON array of its fields in
//! order (`["crm-1", {…}, "email", …]`): the contract does not allow that,
//! and a CRM sending an array by mistake would get a decision with its
//! values assigned by position. On a type whose derives
//! `#[serde(remote = "Self")]` turned into inherent functions,
//! [`objects_only!`] writes the trait impls: they read a map only, through
//! the derived code, so every other error (unknown, missing or mistyped
//! fields, with their nested path) is unchanged.

/// Implements `Serialize` and `Deserialize` for each type named, from its
/// inherent derived functions (`#[serde(remote = "Self")]`), reading a map
/// only.
macro_rules! objects_only {
    ($($t:ident),+ $(,)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $t::serialize(self, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct ObjectOnly;
                impl<'de> serde::de::Visitor<'de> for ObjectOnly {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$t, A::Error> {
                        $t::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                d.deserialize_map(ObjectOnly)
            }
        }
    )+};
}

pub(crate) use objects_only;
