//! The Redis ceiling of the load benchmark (TESTPLAN P0's `C_redis`): the
//! most an HTTP route doing one `EVALSHA` can serve on this machine.
//!
//! `scripts/load.sh` measures `GET /healthz` as the static ceiling and this
//! server's `GET /redis` as the ceiling of one Redis round trip, and prints
//! the Redis decisions as a ratio of both. It is a separate program, not a
//! route of the service, so the product carries no benchmark-only surface;
//! it is built on the same stack as the service's Redis store (actix-web
//! with one worker per core, one redis-rs `ConnectionManager` shared by the
//! workers, NODELAY, the same pipeline buffer) and does the least a
//! decision must: parse a request, run one script, answer JSON.
//!
//! The script is redis-benchmark's `INCR` script with a TTL, on one of
//! 100,000 keys under `ceiling:`, so the keys expire a minute after the run.
//!
//! ```text
//! cargo run --release --example ceiling -- --bind 127.0.0.1:8081 --redis redis://127.0.0.1:6379
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
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
    /// The Redis to run the script on.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// HTTP worker threads (default: one per core, as the service).
    #[arg(long)]
    workers: Option<usize>,
}

struct State {
    conn: ConnectionManager,
    // Spreads the calls over keys as `redis-benchmark -r` does; a counter,
    // not a random source, so no worker contends on an RNG.
    next: AtomicU64,
}

async fn one_script(state: web::Data<State>) -> HttpResponse {
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
    let client = redis::Client::open(args.redis.as_str())?;
    let info = client
        .get_connection_info()
        .clone()
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_pipeline_buffer_size(1024);
    let conn = ConnectionManager::new_lazy_with_config(redis::Client::open(info)?, config)?;
    let state = web::Data::new(State {
        conn,
        next: AtomicU64::new(0),
    });
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/redis", web::get().to(one_script))
    })
    .workers(workers)
    .bind(&args.bind)?
    .run()
    .await?;
    Ok(())
}
