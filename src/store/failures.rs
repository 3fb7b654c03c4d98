//! Windows of failed admin authentication per client, the state behind the
//! throttle in `http::throttle` (TESTPLAN §4.5 S1).
//!
//! A client's window opens at its first failure and lasts a fixed time;
//! every failure inside it adds to its count, and a failure after it opens
//! a new one. The window is kept as the time it ends, so a reader needs
//! only `now` to tell what is left of it.
//!
//! This module is the rule and an in-memory table of it, with time passed
//! in. The throttle keeps one table per replica as a pre-filter; the
//! stores keep the count every replica shares ([`super::Store::count_auth_failure`]):
//! the embedded store with a table of its own, Redis with a record per
//! client whose script (`redis/lua/auth_failure.lua`) applies the same
//! rule, as TESTPLAN §5 (item 4) asks of rate limits: global, in Redis,
//! with a per-process limiter only as a local pre-filter.
//!
//! A client is its address, but an IPv6 client is its /64 ([`client_of`]):
//! one host usually holds a whole /64, and counting its addresses one by
//! one would give it 2^64 windows, and a shared store as many records.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use time::OffsetDateTime;

/// Clients tracked at most by one table.
pub const MAX_TRACKED: usize = 65_536;

/// A client's failures in its current window and the time left in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindow {
    pub count: u32,
    pub left: Duration,
}

/// The client an address is counted as: itself for IPv4 (an IPv4-mapped
/// IPv6 address counts as its IPv4 address), its /64 for IPv6.
pub fn client_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// What is left of a window ending at `ends`, seen at `now`; `None` once it
/// has ended.
pub fn left_of(ends: OffsetDateTime, now: OffsetDateTime) -> Option<Duration> {
    let left = ends - now;
    (left.is_positive()).then(|| left.unsigned_abs())
}

#[derive(Debug, Clone, Copy)]
struct Window {
    ends: OffsetDateTime,
    count: u32,
}

/// Failure windows by client, bounded: at most [`MAX_TRACKED`] clients;
/// when it is full, ended windows go first, then the one that ends first.
#[derive(Debug, Default)]
pub struct FailureTable {
    windows: HashMap<IpAddr, Window>,
}

impl FailureTable {
    /// Counts a failure of `client` at `now` and returns its window: the
    /// open one, or a new one of length `window` if none is open.
    pub fn count(
        &mut self,
        client: IpAddr,
        now: OffsetDateTime,
        window: Duration,
    ) -> FailureWindow {
        let client = client_of(client);
        self.make_room(client, now);
        let w = self.windows.entry(client).or_insert(Window {
            ends: now,
            count: 0,
        });
        if left_of(w.ends, now).is_none() {
            *w = Window {
                ends: now + window,
                count: 0,
            };
        }
        w.count = w.count.saturating_add(1);
        FailureWindow {
            count: w.count,
            // A zero-length window ends as it opens.
            left: left_of(w.ends, now).unwrap_or_default(),
        }
    }

    /// `client`'s open window at `now`, if it has one.
    pub fn get(&self, client: IpAddr, now: OffsetDateTime) -> Option<FailureWindow> {
        let w = self.windows.get(&client_of(client))?;
        Some(FailureWindow {
            count: w.count,
            left: left_of(w.ends, now)?,
        })
    }

    /// Takes `seen` (read from another table at `now`) as `client`'s window
    /// when it counts more failures than this table's: the pre-filter then
    /// refuses a client that other replicas saw fail without asking again.
    pub fn merge(&mut self, client: IpAddr, now: OffsetDateTime, seen: FailureWindow) {
        if seen.left.is_zero() {
            return;
        }
        let client = client_of(client);
        if self
            .get(client, now)
            .is_some_and(|mine| mine.count >= seen.count)
        {
            return;
        }
        self.make_room(client, now);
        self.windows.insert(
            client,
            Window {
                ends: now + seen.left,
                count: seen.count,
            },
        );
    }

    /// Clients tracked now (for tests of the bound).
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Before `client` is added: drops ended windows, then the one ending
    /// first, while the table is full.
    fn make_room(&mut self, client: IpAddr, now: OffsetDateTime) {
        if self.windows.contains_key(&client) || self.windows.len() < MAX_TRACKED {
            return;
        }
        self.windows.retain(|_, w| left_of(w.ends, now).is_some());
        if self.windows.len() >= MAX_TRACKED {
            if let Some(first) = self
                .windows
                .iter()
                .min_by_key(|(_, w)| w.ends)
                .map(|(c, _)| *c)
            {
                self.windows.remove(&first);
            }
        }
    }
}

/// Clients and times the throttle's tests share with these.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use time::macros::datetime;
    use time::OffsetDateTime;

    pub const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    pub const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    pub const MINUTE: Duration = Duration::from_secs(60);
    pub const T0: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    /// `ms` milliseconds after [`T0`].
    pub fn at(ms: u64) -> OffsetDateTime {
        T0 + Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{at, A, B, MINUTE, T0};
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_window_runs_from_the_first_failure_and_counts_every_failure_in_it() {
        let mut t = FailureTable::default();
        assert_eq!(t.get(A, at(0)), None);
        let first = t.count(A, at(0), MINUTE);
        assert_eq!(
            first,
            FailureWindow {
                count: 1,
                left: MINUTE
            }
        );
        let second = t.count(A, at(20_000), MINUTE);
        assert_eq!(
            second,
            FailureWindow {
                count: 2,
                left: Duration::from_secs(40)
            }
        );
        assert_eq!(
            t.get(A, at(59_999)).map(|w| w.left),
            Some(Duration::from_millis(1))
        );
        assert_eq!(
            t.get(A, at(60_000)),
            None,
            "it ends 60 s after the first failure"
        );
        assert_eq!(t.get(B, at(20_000)), None, "other clients have no window");
        assert_eq!(
            t.count(A, at(60_000), MINUTE),
            FailureWindow {
                count: 1,
                left: MINUTE
            },
            "a failure after it opens a new one"
        );
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_an_ipv4_mapped_address_its_ipv4_address() {
        let cases: [(&str, &str); 4] = [
            ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
            ("192.0.2.1", "192.0.2.1"),
        ];
        for (addr, client) in cases {
            assert_eq!(
                client_of(addr.parse().unwrap()),
                client.parse::<IpAddr>().unwrap(),
                "{addr}"
            );
        }
        let mut t = FailureTable::default();
        t.count("2001:db8:1:2::1".parse().unwrap(), at(0), MINUTE);
        let w = t.count("2001:db8:1:2::2".parse().unwrap(), at(1), MINUTE);
        assert_eq!(w.count, 2, "two addresses of one /64 share a window");
        let other = t.count("2001:db8:1:3::1".parse().unwrap(), at(2), MINUTE);
        assert_eq!(other.count, 1, "the next /64 is another client");
    }

    #[test]
    fn a_merged_window_is_kept_only_when_it_counts_more() {
        let mut t = FailureTable::default();
        t.count(A, at(0), MINUTE);
        t.count(A, at(0), MINUTE);
        let fewer = FailureWindow {
            count: 1,
            left: Duration::from_secs(5),
        };
        t.merge(A, at(0), fewer);
        assert_eq!(
            t.get(A, at(0)),
            Some(FailureWindow {
                count: 2,
                left: MINUTE
            })
        );
        let more = FailureWindow {
            count: 10,
            left: Duration::from_secs(30),
        };
        t.merge(A, at(0), more);
        assert_eq!(t.get(A, at(0)), Some(more));
        t.merge(
            B,
            at(0),
            FailureWindow {
                count: 10,
                left: Duration::ZERO,
            },
        );
        assert_eq!(t.get(B, at(0)), None, "an ended window is not kept");
    }

    #[test]
    fn the_table_stays_bounded_dropping_ended_windows_then_the_first_to_end() {
        let mut t = FailureTable::default();
        let addr = |i: usize| IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i as u32));
        for i in 0..MAX_TRACKED {
            t.count(addr(i), T0 + Duration::from_micros(i as u64), MINUTE);
        }
        assert_eq!(t.len(), MAX_TRACKED);
        // Every window still open: the first to end (address 0's) goes.
        let late = T0 + Duration::from_secs(30);
        t.count(addr(MAX_TRACKED), late, MINUTE);
        assert_eq!(t.len(), MAX_TRACKED);
        assert_eq!(t.get(addr(0), late), None, "the first to end was dropped");
        assert!(t.get(addr(1), late).is_some(), "the others are kept");
        // Once they have ended, a new client sweeps them all out.
        let later = T0 + Duration::from_secs(61);
        t.count(addr(MAX_TRACKED + 1), later, MINUTE);
        assert_eq!(t.len(), 2, "the two windows still open remain");
    }
}
