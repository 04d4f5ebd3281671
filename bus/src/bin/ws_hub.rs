//! `ws-hub`: the WebSocket hub as its own process (settings from the environment, see
//! `HubSettings::from_env`; `WS_HEALTH_ADDR` adds the load balancer's liveness probe,
//! `hub::probe`). Stops cleanly on SIGINT/SIGTERM.

use bus::hub::{self, HubSettings};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
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
    match hub::run(settings, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("WebSocket hub failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = ctrl_c.await;
        return;
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
