//! `price-feed`: the price feed as its own process (settings from the environment, see
//! `FeedSettings::from_env`; health as JSON over HTTP on `FEED_HEALTH_ADDR`, default
//! 127.0.0.1:7071; metrics and `/readyz` on `METRICS_ADDR`, see `bus::process`). Stops
//! cleanly on SIGINT/SIGTERM.

use bus::feed::{self, FeedHealth, FeedSettings};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    bus::process::init_tracing();
    let shutdown = bus::process::shutdown_signal();
    let settings = match FeedSettings::from_env() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let health = FeedHealth::default();
    health.export_metrics();
    let probe = health.clone();
    let ready = bus::process::ready_fn(move || std::future::ready(probe.readiness()));
    if let Err(e) = bus::process::start_ops(ready).await {
        tracing::error!("{e}");
        return std::process::ExitCode::FAILURE;
    }
    let addr = settings.health_addr.clone();
    match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => {
            let addr = listener.local_addr().map_or(addr, |a| a.to_string());
            tracing::info!(%addr, "feed health endpoint");
            tokio::spawn(feed::health::serve_http(listener, health.clone()));
        }
        Err(e) => tracing::warn!(%addr, error = %e, "no health endpoint"),
    }
    match feed::run_with_health(settings, health, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("price feed failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
