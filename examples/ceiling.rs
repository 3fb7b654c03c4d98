//! The ceilings of the load benchmark that the service's own `GET /healthz`
//! cannot give: what the least a decision must do can serve on this
//! machine, on the service's stack.
//!
//! - `GET /redis`, TESTPLAN P0's `C_redis`: one `EVALSHA` per request. It is
//!   built as the service's Redis store is (one redis-rs
//!   `ConnectionManager` shared by the workers, NODELAY, the same pipeline
//!   buffer). The script is redis-benchmark's `INCR` script with a TTL, on
//!   one of 100,000 keys under `ceiling:`, so the keys expire a minute
//!   after the run.
//! - `POST /exchange`, `C_exchange`: a decision's HTTP exchange and nothing
//!   else. The body is parsed and validated into an `Interaction` exactly
//!   as `POST /v1/decisions` does, and the answer is a decision of the
//!   usual size rendered once at start.
//! - `POST /decide`, `C_core`: `/exchange` plus the pure decision core
//!   with the models `serve` loads (`models/active.toml`, else the bundled
//!   ones): features, scores, arbitration, constraints, the rendered and
//!   serialised answer. No store, idempotency, decision log, journal,
//!   metrics or tracing, and an empty fairness window, so it is an upper
//!   bound for any decision the service can make.
//!
//! `scripts/load.sh` prints the service's decisions as a ratio of each:
//! against `C_core` the ratio is what the service's own plumbing costs;
//! `C_core` against `GET /healthz` is the most any decision could reach on
//! this machine. It is a separate program, not routes of the service, so
//! the product carries no benchmark-only surface; it runs as the service
//! does (actix-web with one worker per core, jemalloc).
//!
//! ```text
//! cargo run --release --example ceiling -- --bind 127.0.0.1:8081 --redis redis://127.0.0.1:6379
//! ```
//!
//! Without `--redis` the Redis route is not served.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use fairtreat::domain::decide::{self, Inputs, Stamp};
use fairtreat::domain::interaction::{Interaction, InteractionInput};
use fairtreat::domain::policy::Policy;
use fairtreat::domain::window::WindowStats;
use fairtreat::http::error::ApiError;
use fairtreat::http::extract::parse_json;
use fairtreat::service::Models;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::Script;

static INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local n = redis.call('INCR', KEYS[1]) \
         if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
         return n",
    )
});

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    bind: String,
    /// The Redis to run the script on (`GET /redis`).
    #[arg(long)]
    redis: Option<String>,
    /// HTTP worker threads (default: one per core, as the service).
    #[arg(long)]
    workers: Option<usize>,
}

struct RedisState {
    conn: ConnectionManager,
    // Spreads the calls over keys as `redis-benchmark -r` does; a counter,
    // not a random source, so no worker contends on an RNG.
    next: AtomicU64,
}

async fn one_script(state: web::Data<RedisState>) -> HttpResponse {
    let key = format!(
        "ceiling:{}",
        state.next.fetch_add(7919, Ordering::Relaxed) % 100_000
    );
    let mut conn = state.conn.clone();
    let result: redis::RedisResult<i64> = INCR.key(key).arg(60_000).invoke_async(&mut conn).await;
    match result {
        Ok(n) => HttpResponse::Ok().json(serde_json::json!({ "n": n })),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "code": "store_unavailable", "message": e.to_string() })),
    }
}

/// What the decision routes share: the models and policy `serve` starts
/// with (run from the repository's root, as `load.sh` does), and the fixed
/// answer of `/exchange`.
struct Core {
    models: Models,
    policy: Policy,
    window: WindowStats,
    answer: web::Bytes,
}

/// The body as `POST /v1/decisions` takes it: parsed, then validated.
fn interaction(body: &[u8]) -> Result<Interaction, ApiError> {
    let input: InteractionInput = parse_json(body)?;
    Ok(Interaction::try_from(input)?)
}

impl Core {
    fn decide(&self, interaction: &Interaction) -> fairtreat::domain::decision::Decision {
        let plan = decide::plan(&Inputs {
            interaction,
            policy: &self.policy,
            sentiment: self.models.sentiment.as_ref(),
            outcome: self.models.outcome.as_ref(),
            window: &self.window,
            draws: (0.5, 0.5),
        });
        let stamp = Stamp {
            decision_id: uuid::Uuid::new_v4(),
            interaction_id: interaction.id.as_str().to_string(),
            model_version: self.models.version(),
            policy_version: self.policy.version,
            decided_at: time::OffsetDateTime::now_utc(),
        };
        plan.render(&self.policy, &stamp, None)
    }
}

async fn exchange(core: web::Data<Core>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    interaction(&body)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(core.answer.clone()))
}

async fn decide_only(core: web::Data<Core>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let interaction = interaction(&body)?;
    Ok(HttpResponse::Ok().json(core.decide(&interaction)))
}

/// A typical complaint, to render `/exchange`'s answer once.
const SAMPLE: &str = r#"{"interaction_id": "ceiling-1", "customer": {"id": "c-1", "tenure_days": 800,
  "lifetime_value": 1250.0, "attributes": {"tier": "gold", "region": "EU"}}, "channel": "social",
  "public": true, "audience": 5400, "kind": "complaint", "rating": 1, "order_value": 89.9,
  "text": "My order arrived two weeks late and the box was crushed, the glass inside was broken into pieces. I wrote to support three times and nobody answered any of my emails. This is the second time this happens and I am really disappointed, I expected much better from a shop I have been loyal to for years."}"#;

/// As the service's binary: jemalloc, and the Redis connection made lazily
/// inside the actix system, where the service's store makes it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let redis = match &args.redis {
        Some(url) => {
            let info = redis::Client::open(url.as_str())?
                .get_connection_info()
                .clone()
                .set_tcp_settings(TcpSettings::default().set_nodelay(true));
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(Duration::from_secs(1)))
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_pipeline_buffer_size(1024);
            let conn = ConnectionManager::new_lazy_with_config(redis::Client::open(info)?, config)?;
            Some(web::Data::new(RedisState {
                conn,
                next: AtomicU64::new(0),
            }))
        }
        None => None,
    };
    let mut core = Core {
        models: fairtreat::cli::load_models(None)?,
        policy: fairtreat::cli::load_policy(None)?,
        window: WindowStats::default(),
        answer: web::Bytes::new(),
    };
    let sample = interaction(SAMPLE.as_bytes()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    core.answer = serde_json::to_vec(&core.decide(&sample))?.into();
    let core = web::Data::new(core);
    HttpServer::new(move || {
        let app = App::new()
            .app_data(core.clone())
            .route("/exchange", web::post().to(exchange))
            .route("/decide", web::post().to(decide_only));
        match &redis {
            Some(state) => app
                .app_data(state.clone())
                .route("/redis", web::get().to(one_script)),
            None => app,
        }
    })
    .workers(workers)
    .bind(&args.bind)?
    .run()
    .await?;
    Ok(())
}
