//! Load shedding for decisions (TESTPLAN S5): a decision request that
//! reaches the service while its worker is more than `shed_after` behind is
//! answered `503 overloaded` with `Retry-After: 1` at once, before anything
//! is parsed, decided or stored (its body is read and dropped, so the
//! connection stays open for the client's retry).
//!
//! Why a lag probe: each actix worker is one thread, and the requests
//! waiting for it are bytes in sockets and tasks in its queue, which nothing
//! in the service can count. A timer task on each worker, due every few
//! milliseconds, measures how far behind the worker is: while the probe is
//! due and has not run, whatever became ready with it has waited as long.
//! Past the machine's capacity that wait grows without bound and every
//! answer comes late; shedding what arrives while the worker is behind
//! keeps the answers it gives within the bound and tells the other clients
//! when to come back, instead of letting them time out.
//!
//! What it cannot see: a client that holds few connections (a load
//! generator at 64) queues inside itself, not in the server, which then
//! stays a few milliseconds behind and answers every request, late by the
//! client's own queue.

use std::cell::Cell;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use super::error::ApiError;
use super::AppState;

/// Default of `serve --shed-after-ms`: a decision that has already waited
/// this long cannot meet TESTPLAN G5's 100 ms end to end.
pub const DEFAULT_SHED_AFTER_MS: u64 = 100;

/// Decisions answered `503 overloaded`, labelled by route.
pub const SHED_METRIC: &str = "fairtreat_shed_requests_total";

/// How often the probe is due; its resolution.
const PERIOD: Duration = Duration::from_millis(5);

thread_local! {
    /// When this thread's probe is next due; `None` while no probe runs on
    /// this thread (then nothing is shed).
    static DUE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Clears the thread's due time when its probe task ends (its worker's
/// runtime stopped), so a stale time never reads as an ever-growing lag and
/// the next [`start_probe`] on the thread starts a new probe.
struct ProbeGuard;

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        DUE.set(None);
    }
}

/// Starts this thread's probe unless one runs. Called from the app factory,
/// which actix runs on every worker thread, inside the worker's runtime.
pub fn start_probe() {
    if DUE.get().is_some() {
        return;
    }
    DUE.set(Some(Instant::now() + PERIOD));
    // Made here, not in the task: a task dropped before its first poll
    // clears the due time too.
    let guard = ProbeGuard;
    actix_web::rt::spawn(async move {
        let _guard = guard;
        loop {
            let due = Instant::now() + PERIOD;
            DUE.set(Some(due));
            actix_web::rt::time::sleep_until(due.into()).await;
        }
    });
}

/// How far behind this thread's worker is at `now`: zero while its probe
/// is not yet due, or when no probe runs on this thread.
pub fn behind(now: Instant) -> Duration {
    DUE.get()
        .map_or(Duration::ZERO, |due| now.saturating_duration_since(due))
}

/// Middleware of the decision routes: sheds when the worker is behind by
/// more than [`AppState::shed_after`] (never when that is `None`).
pub async fn shed(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.shed_after);
    if let Some(limit) = limit {
        let late = behind(Instant::now());
        if late > limit {
            let route = req.match_pattern().unwrap_or_default();
            ::metrics::counter!(SHED_METRIC, "route" => route).increment(1);
            drain(&mut req.take_payload()).await;
            let err = ApiError::Overloaded {
                behind_ms: late.as_millis(),
            };
            return Ok(req.error_response(err));
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// Reads and drops up to [`DRAIN_LIMIT`] of a shed request's body: a
/// body left unread makes the server close the connection after the
/// answer, and a client reconnecting costs more than the few kilobytes a
/// decision's body takes to read.
async fn drain(payload: &mut actix_web::dev::Payload) {
    use futures_util::StreamExt;
    let mut read = 0;
    while read <= DRAIN_LIMIT {
        match payload.next().await {
            Some(Ok(chunk)) => read += chunk.len(),
            _ => return,
        }
    }
}

/// Most of a shed request's body read to keep its connection open: a
/// single decision's limit.
const DRAIN_LIMIT: usize = super::extract::BODY_LIMIT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_probe_on_the_thread_nothing_is_behind() {
        std::thread::spawn(|| {
            assert_eq!(
                behind(Instant::now() + Duration::from_secs(60)),
                Duration::ZERO
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_due_probe_that_has_not_run_measures_the_lag_and_its_end_clears_it() {
        std::thread::spawn(|| {
            let due = Instant::now();
            DUE.set(Some(due));
            assert_eq!(behind(due), Duration::ZERO);
            assert_eq!(
                behind(due + Duration::from_millis(30)),
                Duration::from_millis(30)
            );
            drop(ProbeGuard);
            assert_eq!(behind(due + Duration::from_millis(30)), Duration::ZERO);
        })
        .join()
        .unwrap();
    }
}
