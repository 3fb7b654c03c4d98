//! The instruction-count regression guard (TESTPLAN P5): CPU instructions
//! per `POST /v1/decisions`, counted by valgrind's callgrind, which is
//! deterministic where timings on this shared machine are not.
//!
//! The requests go through the whole HTTP app in process (actix-web's test
//! service: routing, middleware, body parsing, validation, the decision,
//! the commit, the JSON answer) on the embedded store without a journal, so
//! no network or disk I/O is counted. Bodies are built before the measured
//! part; `scripts/instructions.sh` runs this under callgrind with
//! collection on only inside [`counted`], divides by the number
//! of requests and compares the figure with `benches/instructions.baseline`.
//!
//! Models are those `models/active.toml` names, as served; time is a manual
//! clock, so the run is the same every time.
//!
//! `cargo bench --bench instructions` prints the wall time too (under
//! valgrind it means nothing); under `cargo test` (no `--bench` argument)
//! 50 requests on the compiled-in models check that every one is answered.

#[path = "common/traffic.rs"]
mod traffic;

use std::path::Path;
use std::sync::Arc;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web};
use fairtreat::clock::ManualClock;
use fairtreat::domain::policy::Policy;
use fairtreat::http::auth::AdminKeys;
use fairtreat::http::{app, AppState};
use fairtreat::service::{DecisionService, Models};
use fairtreat::store::memory::MemoryStore;
use rand::rngs::StdRng;
use rand::SeedableRng;
use time::macros::datetime;

/// The server's allocator (see `src/main.rs`): its instructions count.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Sends `requests` in order; how many were answered 200.
#[inline(never)]
fn run_requests<S, R, B, E>(
    system: &actix_web::rt::SystemRunner,
    service: &S,
    requests: Vec<R>,
) -> usize
where
    S: Service<R, Response = ServiceResponse<B>, Error = E>,
    E: std::fmt::Debug,
{
    system.block_on(async {
        let mut ok = 0;
        for req in requests {
            let res = test::call_service(service, req).await;
            ok += usize::from(res.status() == actix_web::http::StatusCode::OK);
        }
        ok
    })
}

/// The work the callgrind toggle counts: the script collects only while
/// this function runs (never inlined, called once).
#[inline(never)]
fn counted<T>(work: impl FnOnce() -> T) -> T {
    work()
}

/// A `POST /v1/decisions` of `interaction` as a test request.
fn request(interaction: &fairtreat::domain::interaction::InteractionInput) -> actix_http::Request {
    test::TestRequest::post()
        .uri("/v1/decisions")
        .insert_header(("content-type", "application/json"))
        .set_payload(serde_json::to_vec(interaction).expect("serialisable"))
        .to_request()
}

fn main() {
    let (full, requests) = traffic::run_size("FAIRTREAT_INSTRUCTION_REQUESTS", 2_000, 50);
    // The smoke run is a debug build, where the trained models are slow.
    let models = if full {
        fairtreat::model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
            .expect("the trained models in models/")
    } else {
        Models::bundled()
    };
    let model_version = models.version();
    let clock = ManualClock::new(datetime!(2026-11-02 09:00 UTC));
    let service = DecisionService::new(
        Policy::bundled(),
        models,
        Arc::new(MemoryStore::new()),
        Arc::new(clock),
    );
    // The counts the app records go to the recorder the server installs.
    fairtreat::http::metrics::handle();
    let state = web::Data::new(AppState {
        service: Arc::new(service),
        admin: AdminKeys::none(),
        // As `serve` runs: the shedding check is on the measured path (no
        // probe runs in a test service, so it never sheds).
        shed_after: Some(std::time::Duration::from_millis(
            fairtreat::http::overload::DEFAULT_SHED_AFTER_MS,
        )),
        auth_throttle: fairtreat::http::throttle::AuthThrottle::new(
            fairtreat::http::throttle::DEFAULT_LIMIT,
            std::time::Duration::from_secs(fairtreat::http::throttle::DEFAULT_WINDOW_SECS),
        ),
    });
    let mut rng = StdRng::seed_from_u64(11);
    let system = actix_web::rt::System::new();
    let http = system.block_on(test::init_service(app(state)));
    // One request first, outside the count: lazy statics and first-use
    // allocations are not per-request costs.
    let warm = request(&traffic::interaction(requests, &mut rng));
    assert_eq!(
        run_requests(&system, &http, vec![warm]),
        1,
        "the warm-up request failed"
    );
    let batch: Vec<_> = (0..requests)
        .map(|n| request(&traffic::interaction(n, &mut rng)))
        .collect();
    let began = std::time::Instant::now();
    let ok = counted(|| run_requests(&system, &http, batch));
    let took = began.elapsed();
    println!(
        "instructions: {requests} requests, {ok} answered 200, models {model_version}, {:.1} µs each (wall, meaningless under valgrind)",
        took.as_secs_f64() * 1e6 / requests as f64
    );
    if ok != requests {
        eprintln!(
            "instructions: FAILED: {} requests were not answered 200",
            requests - ok
        );
        std::process::exit(1);
    }
}
