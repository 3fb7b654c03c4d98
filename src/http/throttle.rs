//! Throttling of failed admin authentication, per client address
//! (TESTPLAN §4.5 S1).
//!
//! Admin keys are long random secrets and are compared in constant time,
//! but an endpoint that answers every guess at once still invites guessing.
//! So an address whose admin calls failed authentication `limit` times
//! (a missing or wrong key, or a key in the query string) within `window`
//! of the first failure is refused with `429 too_many_auth_failures` and
//! `Retry-After` until that window ends — *before* its credentials are
//! looked at, so a guess made while refused tells nothing, right or wrong.
//! A refused call does not count as a failure, so the refusal ends when the
//! window does. A key that is valid but lacks the scope (403) is not a
//! failure: it guessed nothing.
//!
//! The address is the TCP peer's. Behind a reverse proxy every client has
//! the proxy's address, and one client's failures refuse all of them;
//! `X-Forwarded-For` is not trusted, because any client can write it. The
//! limit is per replica (state in memory): a guesser spread over `n`
//! replicas gets `n` times the attempts, still a handful a minute.
//!
//! The table is bounded: at most [`MAX_TRACKED`] addresses; when it is
//! full, expired entries go first, then the oldest window. Time is passed
//! in, so windows are tested at their edges.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures an address may make within a window (`serve
/// --auth-failure-limit`).
pub const DEFAULT_LIMIT: u32 = 10;
/// How long a window lasts, from an address's first failure (`serve
/// --auth-failure-window-secs`).
pub const DEFAULT_WINDOW_SECS: u64 = 60;
/// Addresses tracked at most.
pub const MAX_TRACKED: usize = 65_536;

/// An address's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

/// The throttle. Off (never refuses, tracks nothing) with a limit of 0.
#[derive(Debug)]
pub struct AuthThrottle {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl Default for AuthThrottle {
    fn default() -> Self {
        Self::off()
    }
}

impl AuthThrottle {
    /// Refuses nothing.
    pub fn off() -> Self {
        Self::new(0, Duration::ZERO)
    }

    /// At most `limit` failures per address within `window` of the first;
    /// a `limit` of 0 turns the throttle off.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_off(&self) -> bool {
        self.limit == 0
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        // The table holds counts only; a panic elsewhere cannot leave it
        // half-updated, so a poisoned lock is still usable.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(retry_after)` while `addr` is refused: it failed `limit` times
    /// in a window that has not ended at `now`.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.is_off() {
            return Ok(());
        }
        match self.table().get(&addr) {
            Some(f) if f.count >= self.limit => {
                let ends = f.since + self.window;
                match ends.checked_duration_since(now) {
                    Some(left) if !left.is_zero() => Err(left),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `addr` at `now`. True when this failure reached
    /// the limit (the address is refused from now on until its window ends),
    /// so the caller can log it once.
    pub fn failed(&self, addr: IpAddr, now: Instant) -> bool {
        if self.is_off() {
            return false;
        }
        let mut table = self.table();
        if !table.contains_key(&addr) && table.len() >= MAX_TRACKED {
            let window = self.window;
            table.retain(|_, f| now < f.since + window);
            if table.len() >= MAX_TRACKED {
                if let Some(oldest) = table.iter().min_by_key(|(_, f)| f.since).map(|(a, _)| *a) {
                    table.remove(&oldest);
                }
            }
        }
        let f = table.entry(addr).or_insert(Failures {
            since: now,
            count: 0,
        });
        if now >= f.since + self.window {
            *f = Failures {
                since: now,
                count: 0,
            };
        }
        f.count = f.count.saturating_add(1);
        f.count == self.limit
    }

    /// Addresses tracked now (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.table().len()
    }
}

/// Whole seconds to put in `Retry-After` for `left`: rounded up, at least 1.
pub fn retry_after_secs(left: Duration) -> u64 {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn an_address_is_refused_from_its_limit_th_failure_until_the_window_ends() {
        let t = AuthThrottle::new(3, MINUTE);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(!t.failed(A, at(0)));
        assert!(!t.failed(A, at(10_000)));
        assert_eq!(t.check(A, at(10_000)), Ok(()), "two failures of three");
        assert!(t.failed(A, at(20_000)), "the third reaches the limit");
        assert_eq!(t.check(A, at(20_000)), Err(Duration::from_secs(40)));
        assert_eq!(
            t.check(A, at(59_999)),
            Err(Duration::from_millis(1)),
            "the window runs from the first failure"
        );
        assert_eq!(t.check(A, at(60_000)), Ok(()), "and ends 60 s after it");
        assert_eq!(
            t.check(B, at(20_000)),
            Ok(()),
            "other addresses are not refused"
        );
    }

    #[test]
    fn a_failure_after_the_window_starts_a_new_one() {
        let t = AuthThrottle::new(2, MINUTE);
        let t0 = Instant::now();
        t.failed(A, t0);
        assert!(!t.failed(A, t0 + MINUTE), "the old count is gone");
        assert_eq!(t.check(A, t0 + MINUTE), Ok(()));
        assert!(t.failed(A, t0 + MINUTE + Duration::from_secs(1)));
        assert_eq!(
            t.check(A, t0 + MINUTE + Duration::from_secs(1)),
            Err(MINUTE - Duration::from_secs(1))
        );
    }

    #[test]
    fn the_limit_is_reported_once() {
        let t = AuthThrottle::new(2, MINUTE);
        let t0 = Instant::now();
        let reached: Vec<bool> = (0..5)
            .map(|i| t.failed(A, t0 + Duration::from_secs(i)))
            .collect();
        assert_eq!(reached, [false, true, false, false, false]);
    }

    #[test]
    fn a_limit_of_zero_refuses_nothing_and_tracks_nothing() {
        let t = AuthThrottle::new(0, MINUTE);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(!t.failed(A, t0));
        }
        assert_eq!(t.check(A, t0), Ok(()));
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn the_table_stays_bounded_dropping_expired_windows_then_the_oldest() {
        let t = AuthThrottle::new(1, MINUTE);
        let t0 = Instant::now();
        let addr = |i: usize| IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i as u32));
        for i in 0..MAX_TRACKED {
            t.failed(addr(i), t0 + Duration::from_micros(i as u64));
        }
        assert_eq!(t.tracked(), MAX_TRACKED);
        // All windows still open: the oldest one (address 0, at t0) goes.
        let late = t0 + Duration::from_secs(30);
        t.failed(addr(MAX_TRACKED), late);
        assert_eq!(t.tracked(), MAX_TRACKED);
        assert_eq!(
            t.check(addr(0), late),
            Ok(()),
            "the oldest window was dropped"
        );
        assert!(t.check(addr(1), late).is_err(), "the others are kept");
        assert!(t.check(addr(MAX_TRACKED), late).is_err());
        // Once they have expired, a new address sweeps them all out.
        let later = t0 + Duration::from_secs(61);
        t.failed(addr(MAX_TRACKED + 1), later);
        assert_eq!(t.tracked(), 2, "the two windows still open remain");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_never_zero() {
        let cases = [
            (Duration::from_millis(1), 1),
            (Duration::from_secs(1), 1),
            (Duration::from_millis(1_001), 2),
            (Duration::from_secs(40), 40),
            (Duration::ZERO, 1),
        ];
        for (left, secs) in cases {
            assert_eq!(retry_after_secs(left), secs, "{left:?}");
        }
    }
}
