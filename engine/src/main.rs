//! The engine process: settings from the environment, logs as `LOG_FORMAT` says, the
//! operations endpoint on `METRICS_ADDR` (metrics; `/readyz`: writer lease held and serving),
//! and [`engine::service::run_with_status`] until SIGTERM or Ctrl-C.

use engine::service::{EngineStatus, Settings, run_with_status};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    bus::process::init_tracing();
    let shutdown = bus::process::shutdown_signal();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let status = EngineStatus::default();
    let probe = status.clone();
    let ready = bus::process::ready_fn(move || std::future::ready(probe.readiness()));
    if let Err(e) = bus::process::start_ops(ready).await {
        tracing::error!("{e}");
        return std::process::ExitCode::from(2);
    }
    match run_with_status(settings, status, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("engine stopped: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
