//! `ws-hub`: the WebSocket hub as its own process (settings from the environment, see
//! `HubSettings::from_env`; `WS_HEALTH_ADDR` adds the load balancer's liveness probe,
//! `hub::probe`; metrics and `/readyz` on `METRICS_ADDR`, see `bus::process`). Stops cleanly
//! on SIGINT/SIGTERM.

use bus::hub::{self, HubSettings, HubStats};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    bus::process::init_tracing();
    let shutdown = bus::process::shutdown_signal();
    let settings = match HubSettings::from_env() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if settings.jwt_secret == hub::DEV_JWT_SECRET {
        tracing::warn!(
            "APP_ENV=local and JWT_SECRET is not set: verifying tokens with the public development key"
        );
    }
    // The load balancer's health check (infra/): plain HTTP on WS_HEALTH_ADDR, when set.
    let probe_addr = bus::settings::Env::from_process()
        .parse::<std::net::SocketAddr>("WS_HEALTH_ADDR", "an address such as 0.0.0.0:7071");
    match probe_addr {
        Ok(None) => {}
        Ok(Some(addr)) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                tokio::spawn(hub::probe::serve(listener));
            }
            Err(e) => {
                tracing::error!("WS_HEALTH_ADDR={addr}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        },
        Err(e) => {
            tracing::error!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    let stats = HubStats::default();
    stats.export_metrics();
    let probe = stats.clone();
    let ready = bus::process::ready_fn(move || std::future::ready(probe.readiness()));
    if let Err(e) = bus::process::start_ops(ready).await {
        tracing::error!("{e}");
        return std::process::ExitCode::FAILURE;
    }
    match hub::run_with_stats(settings, stats, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("WebSocket hub failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
