//! `price-feed`: the price feed as its own process (settings from the environment, see
//! `FeedSettings::from_env`; health as JSON over HTTP on `FEED_HEALTH_ADDR`, default
//! 127.0.0.1:7071). Stops cleanly on SIGINT/SIGTERM.

use bus::feed::{self, FeedHealth, FeedSettings};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = match FeedSettings::from_env() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let health = FeedHealth::default();
    let addr = settings.health_addr.clone();
    match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => {
            let addr = listener.local_addr().map_or(addr, |a| a.to_string());
            tracing::info!(%addr, "feed health endpoint");
            tokio::spawn(feed::health::serve_http(listener, health.clone()));
        }
        Err(e) => tracing::warn!(%addr, error = %e, "no health endpoint"),
    }
    match feed::run_with_health(settings, health, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("price feed failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
