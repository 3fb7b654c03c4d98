//! Key names, built once per shard head rather than with `format!` (they are
//! on every commit's path), and the layout marker every replica checks.
//! The names are data already in Redis: the tests pin them byte for byte.

use std::net::IpAddr;

use time::Date;
use uuid::Uuid;

use crate::domain::validation::{CustomerId, InteractionId};

/// Version of the key layout, recorded in the layout marker.
const LAYOUT_VERSION: &str = "fairtreat-redis-1";

/// Key names (the layout is in the docs of the `redis` module). A commit
/// names seven keys, so they are built by appending to each shard's
/// precomputed head (`<prefix>:{s<k>}:`) rather than with `format!`: nested
/// formatting, and `Date`'s padded `Display` above all, were ≈ 6 % of a
/// Redis batch item's instructions on the server.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
    pub(super) shards: u16,
    /// `<prefix>:{s<k>}:` for every shard `k`.
    heads: Vec<String>,
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's hasher).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Keys {
    pub(super) fn new(prefix: &str, shards: u16) -> Self {
        Self {
            prefix: prefix.to_owned(),
            shards,
            heads: (0..shards.max(1))
                .map(|k| format!("{prefix}:{{s{k}}}:"))
                .collect(),
        }
    }
    pub(super) fn shard_of(&self, customer: &CustomerId) -> u16 {
        (fnv1a64(customer.as_str().as_bytes()) % u64::from(self.shards)) as u16
    }
    /// `<prefix>:{s<k>}:` followed by `parts`.
    pub(super) fn shard(&self, k: u16, parts: &[&str]) -> String {
        // Every shard the store uses has a head; an operator's
        // `shard_key` may name another, which is formatted.
        let formatted;
        let head = match self.heads.get(usize::from(k)) {
            Some(head) => head,
            None => {
                formatted = format!("{}:{{s{k}}}:", self.prefix);
                &formatted
            }
        };
        let mut key =
            String::with_capacity(head.len() + parts.iter().map(|p| p.len()).sum::<usize>());
        key.push_str(head);
        parts.iter().for_each(|p| key.push_str(p));
        key
    }
    /// Scoped to the customer: the record must sit in the customer's
    /// shard, and keying it by the pair keeps the scope the same whatever
    /// shard two customers hash to.
    pub(super) fn idem(&self, k: u16, c: &CustomerId, id: &InteractionId) -> String {
        self.shard(k, &["idem:", c.as_str(), ":", id.as_str()])
    }
    pub(super) fn dec(&self, k: u16, id: Uuid) -> String {
        self.shard(
            k,
            &[
                "dec:",
                id.hyphenated().encode_lower(&mut Uuid::encode_buffer()),
            ],
        )
    }
    pub(super) fn ledger(&self, k: u16, c: &CustomerId) -> String {
        self.shard(k, &["led:", c.as_str()])
    }
    pub(super) fn spent(&self, k: u16, day: Date) -> String {
        self.shard(k, &["spent:", &day_name(day)])
    }
    pub(super) fn grants(&self, k: u16, day: Date) -> String {
        self.shard(k, &["grants:", &day_name(day)])
    }
    pub(super) fn window(&self, k: u16, bucket: i64) -> String {
        self.shard(k, &["w:", &bucket.to_string()])
    }
    pub(super) fn feedback(&self, k: u16, id: Uuid) -> String {
        self.shard(
            k,
            &[
                "fb:",
                id.hyphenated().encode_lower(&mut Uuid::encode_buffer()),
            ],
        )
    }
    pub(super) fn log(&self, k: u16) -> String {
        self.shard(k, &["log"])
    }
    pub(super) fn feedback_log(&self, k: u16) -> String {
        self.shard(k, &["fblog"])
    }
    /// A client's failed admin authentication (`client` is already its
    /// /64 for IPv6): a hash tag of its own, so clients spread over a
    /// Cluster's slots and none lands on the hot `{meta}` slot.
    pub(super) fn auth_failures(&self, client: IpAddr) -> String {
        format!("{}:{{auth:{client}}}:fail", self.prefix)
    }
    pub(super) fn meta(&self, rest: &str) -> String {
        format!("{}:{{meta}}:{rest}", self.prefix)
    }
    pub(super) fn pool(&self, day: Date) -> String {
        self.meta(&["pool:", &day_name(day)].concat())
    }
    pub(super) fn policy(&self) -> String {
        self.meta("policy")
    }
    pub(super) fn policy_log(&self) -> String {
        self.meta("policy:log")
    }
    pub(super) fn layout(&self) -> String {
        self.meta("layout")
    }
    pub(super) fn layout_value(&self) -> String {
        format!(
            "{LAYOUT_VERSION} prefix={} shards={}",
            self.prefix, self.shards
        )
    }
}

/// `day` as `Date`'s `Display` writes it (`2026-11-24`), without the
/// formatting machinery for the years a key will ever carry.
fn day_name(day: Date) -> String {
    let year = day.year();
    if !(1000..=9999).contains(&year) {
        return day.to_string();
    }
    let mut out = String::with_capacity(10);
    let digits = |out: &mut String, n: u32, width: u32| {
        for p in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u32.pow(p) % 10) as u8));
        }
    };
    digits(&mut out, year as u32, 4);
    out.push('-');
    digits(&mut out, u32::from(u8::from(day.month())), 2);
    out.push('-');
    digits(&mut out, u32::from(day.day()), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_hash_is_stable_across_builds() {
        // FNV-1a test vectors: changing the hash would move every customer.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn every_key_of_a_commit_shares_one_hash_tag_and_keys_hold_no_stray_braces() {
        let keys = Keys::new("ft", 16);
        let c = CustomerId::parse("c", "c-42").unwrap();
        let i = InteractionId::parse("i", "crm-8812").unwrap();
        let k = keys.shard_of(&c);
        let day = Date::from_calendar_date(2026, time::Month::November, 20).unwrap();
        let all = [
            keys.idem(k, &c, &i),
            keys.dec(k, Uuid::nil()),
            keys.ledger(k, &c),
            keys.spent(k, day),
            keys.grants(k, day),
            keys.window(k, -3),
            keys.feedback(k, Uuid::nil()),
            keys.log(k),
            keys.feedback_log(k),
        ];
        let tag = format!("{{s{k}}}");
        for key in &all {
            assert!(key.starts_with("ft:"), "{key}");
            assert_eq!(key.matches('{').count(), 1, "{key}");
            assert!(key.contains(&tag), "{key}");
        }
    }

    #[test]
    fn key_names_are_the_stored_layouts_names() {
        // The names are data already in Redis: built without `format!`,
        // they must still be these, byte for byte.
        let keys = Keys::new("ft", 16);
        let c = CustomerId::parse("c", "c-42").unwrap();
        let i = InteractionId::parse("i", "crm-8812").unwrap();
        let id = Uuid::parse_str("5466C28C-9EDD-4BCD-AA6C-B22F9D4ACCE5").unwrap();
        let day = Date::from_calendar_date(2026, time::Month::March, 7).unwrap();
        let k = 9;
        assert_eq!(keys.idem(k, &c, &i), "ft:{s9}:idem:c-42:crm-8812");
        assert_eq!(
            keys.dec(k, id),
            "ft:{s9}:dec:5466c28c-9edd-4bcd-aa6c-b22f9d4acce5"
        );
        assert_eq!(
            keys.feedback(k, id),
            "ft:{s9}:fb:5466c28c-9edd-4bcd-aa6c-b22f9d4acce5"
        );
        assert_eq!(keys.ledger(k, &c), "ft:{s9}:led:c-42");
        assert_eq!(keys.spent(k, day), "ft:{s9}:spent:2026-03-07");
        assert_eq!(keys.grants(15, day), "ft:{s15}:grants:2026-03-07");
        assert_eq!(keys.window(0, 498_756), "ft:{s0}:w:498756");
        assert_eq!(keys.window(0, -3), "ft:{s0}:w:-3");
        assert_eq!(keys.log(k), "ft:{s9}:log");
        assert_eq!(keys.feedback_log(k), "ft:{s9}:fblog");
        assert_eq!(keys.pool(day), "ft:{meta}:pool:2026-03-07");
        assert_eq!(keys.shard(16, &["log"]), "ft:{s16}:log");
        let client = |a: &str| a.parse::<IpAddr>().unwrap();
        assert_eq!(
            keys.auth_failures(client("192.0.2.1")),
            "ft:{auth:192.0.2.1}:fail"
        );
        assert_eq!(
            keys.auth_failures(client("2001:db8:1:2::")),
            "ft:{auth:2001:db8:1:2::}:fail"
        );
        for (y, m, d) in [
            (1000, 1, 1),
            (2026, 12, 31),
            (9999, 12, 31),
            (999, 6, 5),
            (-44, 3, 15),
        ] {
            let day = Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
            assert_eq!(day_name(day), day.to_string());
        }
    }
}
