//! Resident memory of the embedded store after a long run: 1,000,000
//! decisions through `DecisionService::decide` on `MemoryStore`, journaled
//! to a temporary data directory as `fairtreat serve` does, with a
//! simulated clock, printing VmRSS at checkpoints and failing (exit 1) when
//! it goes over 100 MB.
//!
//! State in the embedded store is bounded by time, not by count:
//! idempotency records live 48 h, window counters the policy's window
//! (168 h), ledgers the cap window (30 days), feedback slots 7 days, and
//! recent interactions / the decision log a fixed number. So the run spans
//! simulated time at a realistic rate — 1,000,000 decisions over 20 days
//! (50,000 a day, one every 1.728 s) — long enough for every TTL and window
//! to expire many times over and memory to reach its steady state.
//!
//! Interactions vary the way real traffic does: 10,000 customers in three
//! tiers and four regions, five kinds, public and private, texts built from
//! complaint and praise fragments (60 to 300 characters), with and without
//! ratings and orders, and 1 % retries of a recent interaction (idempotent
//! replays). The models are those `models/active.toml` names, as served.
//!
//! `cargo bench --bench memory` runs the full million; under `cargo test`
//! (no `--bench` argument) a 10,000-decision version, on the compiled-in
//! models, checks the same limit.

#[path = "common/traffic.rs"]
mod traffic;

use std::path::Path;
use std::sync::Arc;

use fairtreat::clock::ManualClock;
use fairtreat::domain::interaction::{Interaction, InteractionInput};
use fairtreat::domain::policy::Policy;
use fairtreat::service::{DecisionService, Models};
use fairtreat::store::journal::JournalConfig;
use fairtreat::store::memory::MemoryStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::macros::datetime;
use traffic::{interaction, CUSTOMERS};

/// The server's allocator (see `src/main.rs`), so the figure is the
/// server's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The acceptance limit.
const LIMIT_MB: f64 = 100.0;
/// Simulated time for the whole run, whatever its length.
const SPAN_DAYS: f64 = 20.0;

/// Resident and peak resident memory of this process, in MB.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let (full, total) = traffic::run_size("FAIRTREAT_MEMORY_DECISIONS", 1_000_000, 10_000);
    let checkpoint = (total / 10).max(1);
    // The smoke run is a debug build, where the trained models are slow:
    // it uses the compiled-in ones (the store's memory does not depend on
    // which models decided).
    let models = if full {
        fairtreat::model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
            .unwrap_or_else(|e| {
                eprintln!("trained models unavailable ({e}); using the bundled ones");
                Models::bundled()
            })
    } else {
        Models::bundled()
    };
    let model_version = models.version();
    let start = datetime!(2026-11-01 00:00 UTC);
    let clock = ManualClock::new(start);
    // The embedded store as `fairtreat serve` runs it: journaled to a data
    // directory (here a temporary one, removed at the end), fsync once a
    // second. The journal is on disk, not in the resident set.
    let data_dir =
        std::env::temp_dir().join(format!("fairtreat-memory-bench-{}", std::process::id()));
    let store = Arc::new(
        MemoryStore::open(&JournalConfig::new(&data_dir), start)
            .expect("a journal in a temporary directory"),
    );
    let service = DecisionService::new(
        Policy::bundled(),
        models,
        store.clone(),
        Arc::new(clock.clone()),
    );
    let step = time::Duration::seconds_f64(SPAN_DAYS * 86_400.0 / total as f64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let mut rng = StdRng::seed_from_u64(7);
    let (rss0, _) = rss_mb();
    println!(
        "memory: {total} decisions over {SPAN_DAYS} simulated days, {CUSTOMERS} customers, models {model_version}"
    );
    println!("memory: start            VmRSS {rss0:7.1} MB");
    let began = std::time::Instant::now();
    let mut worst: f64 = 0.0;
    let (mut granted, mut replays) = (0u64, 0u64);
    rt.block_on(async {
        let mut recent: Vec<InteractionInput> = Vec::new();
        for n in 0..total {
            clock.advance(step);
            let input = if n > 100 && rng.gen_bool(0.01) {
                // A retry of a recent interaction, body unchanged.
                recent[rng.gen_range(0..recent.len())].clone()
            } else {
                interaction(n, &mut rng)
            };
            let parsed = Interaction::try_from(input.clone()).expect("valid");
            let decided = service.decide(&input, parsed).await.expect("decided");
            granted += u64::from(decided.decision.gesture.is_some() && !decided.replayed);
            replays += u64::from(decided.replayed);
            if recent.len() < 256 {
                recent.push(input);
            } else {
                let slot = n % 256;
                recent[slot] = input;
            }
            if (n + 1) % checkpoint == 0 {
                let (rss, _) = rss_mb();
                worst = worst.max(rss);
                println!(
                    "memory: {:>9} decided  day {:5.1}  VmRSS {rss:7.1} MB  idempotency records {:>7}",
                    n + 1,
                    (clock_now(&clock) - start).as_seconds_f64() / 86_400.0,
                    store.idempotency_records(),
                );
            }
        }
    });
    let (rss, peak) = rss_mb();
    worst = worst.max(rss);
    let secs = began.elapsed().as_secs_f64();
    println!(
        "memory: end              VmRSS {rss:7.1} MB  peak (VmHWM) {peak:7.1} MB  limit {LIMIT_MB} MB"
    );
    println!(
        "memory: {granted} gestures granted, {replays} replays; {:.0} decisions/s ({secs:.1} s)",
        total as f64 / secs
    );
    drop(service);
    drop(store);
    let _ = std::fs::remove_dir_all(&data_dir);
    if worst > LIMIT_MB {
        eprintln!("memory: FAILED: resident memory reached {worst:.1} MB (> {LIMIT_MB} MB)");
        std::process::exit(1);
    }
}

fn clock_now(clock: &ManualClock) -> time::OffsetDateTime {
    use fairtreat::clock::Clock;
    clock.now()
}
