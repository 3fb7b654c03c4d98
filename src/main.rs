//! The `fairtreat` binary: everything lives in the library; see `cli`.

/// jemalloc instead of glibc's allocator: a decision makes many small,
/// short-lived allocations on two or more worker threads, where glibc spent
/// a fifth of the server's CPU (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    fairtreat::cli::run().await
}
