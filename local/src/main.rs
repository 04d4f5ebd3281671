//! `exness-local`: the whole platform in one process (see the crate doc). Settings from the
//! environment with local defaults; logs as `LOG_FORMAT` says (`bus::process`); Ctrl-C or
//! SIGTERM stops it cleanly.

use local::{RunnerSettings, start};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    bus::process::init_tracing();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the local runner failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), local::RunError> {
    let shutdown = bus::process::shutdown_signal();
    let settings = RunnerSettings::from_env()?;
    let running = start(settings, shutdown).await?;
    tracing::info!(
        "HTTP API on http://{}/api/v1 (OpenAPI at /api/v1/openapi.json, health at /healthz, /readyz, metrics at /metrics)",
        running.http_addr
    );
    if let Some((web, docs)) = running.web_addrs {
        tracing::info!("web page on http://{web}/, API reference on http://{docs}/");
    }
    running.wait().await
}
