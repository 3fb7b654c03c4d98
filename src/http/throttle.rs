//! Throttling of failed admin authentication, per client (TESTPLAN §4.5
//! S1).
//!
//! Admin keys are long random secrets and are compared in constant time,
//! but an endpoint that answers every guess at once still invites guessing.
//! So a client whose admin calls failed authentication `limit` times (a
//! missing or wrong key, or a key in the query string) within `window` of
//! the first failure is refused with `429 too_many_auth_failures` and
//! `Retry-After` until that window ends — *before* its credentials are
//! looked at, so a guess made while refused tells nothing, right or wrong.
//! A refused call does not count as a failure, so the refusal ends when the
//! window does. A key that is valid but lacks the scope (403) is not a
//! failure: it guessed nothing.
//!
//! A client is the TCP peer's address, an IPv6 one counted by its /64
//! ([`crate::store::failures::client_of`]). Behind a reverse proxy every
//! client has the proxy's address, and one client's failures refuse all of
//! them; `X-Forwarded-For` is not trusted, because any client can write it.
//!
//! **Counted once for all replicas.** The count lives in the store
//! ([`crate::store::Store::count_auth_failure`]), so a guesser spread over
//! `n` replicas on one Redis gets the same `limit` attempts as on one, as
//! TESTPLAN §5 (item 4) asks of rate limits. (Guesses sent to several
//! replicas at the same instant are checked before any of them is counted;
//! each replica still lets at most `limit` of them through: see
//! [`AuthThrottle::admit`].) Each replica also keeps a
//! table of its own as a pre-filter: it refuses a client it saw fail (or
//! was told by the store had failed) without asking the store again, and
//! it keeps the throttle working, per replica, while the store cannot be
//! reached (a store error is logged and the call goes on to the key check:
//! an outage must not lock the operators out). The local table is bounded
//! ([`crate::store::failures::MAX_TRACKED`] clients).

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use crate::service::DecisionService;
use crate::store::failures::FailureTable;

/// Failures a client may make within a window (`serve
/// --auth-failure-limit`).
pub const DEFAULT_LIMIT: u32 = 10;
/// How long a window lasts, from a client's first failure (`serve
/// --auth-failure-window-secs`).
pub const DEFAULT_WINDOW_SECS: u64 = 60;

/// The throttle. Off (never refuses, counts nothing) with a limit of 0.
#[derive(Debug)]
pub struct AuthThrottle {
    limit: u32,
    window: Duration,
    local: Mutex<FailureTable>,
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

    /// At most `limit` failures per client within `window` of the first;
    /// a `limit` of 0 turns the throttle off.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            local: Mutex::new(FailureTable::default()),
        }
    }

    pub fn is_off(&self) -> bool {
        self.limit == 0
    }

    fn table(&self) -> std::sync::MutexGuard<'_, FailureTable> {
        // The table holds counts only; a panic elsewhere cannot leave it
        // half-updated, so a poisoned lock is still usable.
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(retry_after)` while this replica's table refuses `addr` at `now`.
    pub fn check(&self, addr: IpAddr, now: OffsetDateTime) -> Result<(), Duration> {
        if self.is_off() {
            return Ok(());
        }
        match self.table().get(addr, now) {
            Some(w) if w.count >= self.limit && !w.left.is_zero() => Err(w.left),
            _ => Ok(()),
        }
    }

    /// Counts a failure of `addr` at `now` in this replica's table. True
    /// when this failure reached the limit there.
    pub fn failed(&self, addr: IpAddr, now: OffsetDateTime) -> bool {
        if self.is_off() {
            return false;
        }
        self.table().count(addr, now, self.window).count == self.limit
    }

    /// `Err(retry_after)` while `addr` is refused: by this replica's table
    /// or by the count every replica shares in the store (which the table
    /// then keeps, so the next call is refused here).
    ///
    /// The table is read again after the store has answered, and the
    /// caller counts a failure in it ([`AuthThrottle::count_failure`])
    /// before it next yields: a burst of parallel guesses that all passed
    /// the first check while the store was asked still gets at most `limit`
    /// of them past this replica (give or take one per worker thread).
    pub async fn admit(&self, service: &DecisionService, addr: IpAddr) -> Result<(), Duration> {
        if self.is_off() {
            return Ok(());
        }
        let now = service.clock().now();
        self.check(addr, now)?;
        match service.auth_failures(addr).await {
            Ok(Some(shared)) => self.table().merge(addr, now, shared),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(client = %addr, error = %e,
                    "the store did not say how often this client failed admin authentication: only this replica's count applies");
            }
        }
        self.check(addr, now)
    }

    /// Counts a failed authentication of `addr`, here (before the first
    /// await, see [`AuthThrottle::admit`]) and in the store. True when this
    /// failure reached the limit (the client is refused from now on until
    /// its window ends), so the caller logs it once: by the store's count,
    /// or by this replica's when the store cannot say.
    pub async fn count_failure(&self, service: &DecisionService, addr: IpAddr) -> bool {
        if self.is_off() {
            return false;
        }
        let now = service.clock().now();
        let here = self.failed(addr, now);
        match service.count_auth_failure(addr, self.window).await {
            Ok(shared) => {
                self.table().merge(addr, now, shared);
                shared.count == self.limit
            }
            Err(e) => {
                tracing::warn!(client = %addr, error = %e,
                    "the store did not count this failed admin authentication: only this replica counted it");
                here
            }
        }
    }

    /// Clients this replica tracks now (for tests of the bound).
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
    use crate::store::failures::fixtures::{at, A, B, MINUTE, T0};

    #[test]
    fn an_address_is_refused_from_its_limit_th_failure_until_the_window_ends() {
        let t = AuthThrottle::new(3, MINUTE);
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
        t.failed(A, T0);
        assert!(!t.failed(A, T0 + MINUTE), "the old count is gone");
        assert_eq!(t.check(A, T0 + MINUTE), Ok(()));
        assert!(t.failed(A, T0 + MINUTE + Duration::from_secs(1)));
        assert_eq!(
            t.check(A, T0 + MINUTE + Duration::from_secs(1)),
            Err(MINUTE - Duration::from_secs(1))
        );
    }

    #[test]
    fn the_limit_is_reported_once() {
        let t = AuthThrottle::new(2, MINUTE);
        let reached: Vec<bool> = (0..5).map(|i| t.failed(A, at(i * 1_000))).collect();
        assert_eq!(reached, [false, true, false, false, false]);
    }

    #[test]
    fn a_limit_of_zero_refuses_nothing_and_tracks_nothing() {
        let t = AuthThrottle::new(0, MINUTE);
        for _ in 0..100 {
            assert!(!t.failed(A, T0));
        }
        assert_eq!(t.check(A, T0), Ok(()));
        assert_eq!(t.tracked(), 0);
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
