//! `migrate`: applies every pending migration to `DATABASE_URL` and exits (0 when the schema
//! is current). The one-shot job in front of the long-lived services in compose and on ECS;
//! the engine and the local runner also migrate at start, so it only makes the order explicit.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| migrations::DEFAULT_DATABASE_URL.to_string());
    match migrations::connect_and_migrate(&url, 1).await {
        Ok(pool) => {
            pool.close().await;
            println!("migrations applied");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migrate: DATABASE_URL: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
