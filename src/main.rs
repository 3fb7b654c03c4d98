//! The `fairtreat` binary: everything lives in the library; see `cli`.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    fairtreat::cli::run().await
}
