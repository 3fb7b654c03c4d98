//! Load shedding (TESTPLAN S5, `src/http/overload.rs`): while a worker is
//! far behind, the decisions it reads are answered `503 overloaded` with
//! `Retry-After`, at once and with nothing stored, and the other worker's
//! are decided as usual; without shedding the same burst is all decided.
//!
//! The worker is put behind on purpose: the service reads the time through
//! a [`Stall`] clock that blocks the thread of the one decision that reads
//! it after arming, as a descheduled or overloaded worker's thread stops.
//! A burst big enough to put a worker behind on its own depends on the
//! build and the machine (an optimised build decides 400 at once without
//! falling 20 ms behind), and a test that can only fail on a slow machine
//! tests nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fairtreat::clock::{Clock, ManualClock};
use serde_json::Value;
use time::OffsetDateTime;

use crate::helpers::{interaction_for, raise_open_files_limit, TestApp};

const BURST: usize = 400;

/// How long the stalled worker stops: far past the 20 ms limit, and long
/// enough for the burst to reach it meanwhile.
const STALL: Duration = Duration::from_millis(400);

/// The app's manual clock, except that the first read after [`Stall::arm`]
/// blocks its thread for [`STALL`].
struct Stall {
    clock: ManualClock,
    armed: AtomicU64,
    started: AtomicBool,
}

impl Stall {
    fn arm(&self) {
        self.armed.store(STALL.as_millis() as u64, Ordering::SeqCst);
    }

    /// Waits until a worker thread is blocked in the clock.
    async fn started(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.started.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "no decision read the clock");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Clock for Stall {
    fn now(&self) -> OffsetDateTime {
        let ms = self.armed.swap(0, Ordering::SeqCst);
        if ms > 0 {
            self.started.store(true, Ordering::SeqCst);
            // Blocks the worker's thread, which is the point.
            std::thread::sleep(Duration::from_millis(ms));
        }
        self.clock.now()
    }
}

/// An app (shedding after `limit`, if any) whose service reads the time
/// through a [`Stall`].
async fn stallable_app(limit: Option<Duration>) -> (TestApp, Arc<Stall>) {
    let mut stall = None;
    let app = TestApp::with_service_clock(limit, |clock| {
        let s = Arc::new(Stall {
            clock,
            armed: AtomicU64::new(0),
            started: AtomicBool::new(false),
        });
        stall = Some(s.clone());
        s
    })
    .await;
    (app, stall.expect("the app was built with the clock"))
}

/// Stalls one worker with a decision of its own (interaction `BURST`,
/// answered 200 once the stall ends: it was read before the worker fell
/// behind), then sends `BURST` different decisions at once while that
/// worker is stopped; (status, Retry-After, body) of each.
async fn burst_at_a_stalled_worker(
    app: &TestApp,
    stall: &Stall,
) -> Vec<(u16, Option<String>, Value)> {
    raise_open_files_limit(4 * BURST as u64);
    stall.arm();
    let stalled = tokio::spawn(decide(app.client.clone(), app.url("/v1/decisions"), BURST));
    stall.started().await;
    let calls = (0..BURST).map(|n| decide(app.client.clone(), app.url("/v1/decisions"), n));
    let answers = futures_util::future::join_all(calls).await;
    let (status, _, d) = stalled.await.unwrap();
    assert_eq!(status, 200, "the stalling decision: {d}");
    answers
}

/// Posts interaction `n` to `url`: (status, Retry-After, body).
async fn decide(client: reqwest::Client, url: String, n: usize) -> (u16, Option<String>, Value) {
    let resp = client
        .post(url)
        .json(&interaction_for(n))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, resp.json::<Value>().await.unwrap())
}

#[actix_web::test]
async fn a_burst_at_a_worker_left_behind_is_partly_shed_with_503_and_retry_after() {
    let (app, stall) = stallable_app(Some(Duration::from_millis(20))).await;
    let answers = burst_at_a_stalled_worker(&app, &stall).await;
    let decided = answers.iter().filter(|(s, _, _)| *s == 200).count();
    let shed: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert_eq!(
        decided + shed.len(),
        BURST,
        "only 200 and 503: {:?}",
        answers.iter().map(|(s, _, _)| s).collect::<Vec<_>>()
    );
    assert!(!shed.is_empty(), "nothing shed");
    assert!(decided > 0, "nothing decided");
    for (_, retry, body) in &shed {
        assert_eq!(retry.as_deref(), Some("1"), "{body}");
        assert_eq!(body["error"]["code"], "overloaded", "{body}");
    }
    assert_eq!(
        app.store.idempotency_records(),
        decided + 1,
        "a shed decision stores nothing (the stalling one is stored)"
    );
    let metrics = app.get("/metrics").await.1;
    let counted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fairtreat_shed_requests_total{route=\"/v1/decisions\"} "))
        .unwrap_or_else(|| panic!("no shed counter in {metrics}"))
        .parse()
        .unwrap();
    assert_eq!(counted, shed.len() as f64, "shed requests counted");
    eprintln!("{} of {BURST} shed, {decided} decided", shed.len());
    // Caught up, the replica decides again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, d) = app.post("/v1/decisions", &interaction_for(BURST + 1)).await;
    assert_eq!(status, 200, "{d}");
    assert!(d["decision_id"].is_string(), "{d}");
    app.stop().await;
}

#[actix_web::test]
async fn without_shedding_the_same_burst_is_all_decided() {
    let (app, stall) = stallable_app(None).await;
    let answers = burst_at_a_stalled_worker(&app, &stall).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _, _)| *s).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.store.idempotency_records(), BURST + 1);
    app.stop().await;
}
