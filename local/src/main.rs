//! `exness-local`: the whole platform in one process (see the crate doc). Settings from the
//! environment with local defaults; Ctrl-C or SIGTERM stops it cleanly.

use local::{RunnerSettings, start};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the local runner failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), local::RunError> {
    let settings = RunnerSettings::from_env()?;
    let running = start(settings, shutdown_signal()).await?;
    tracing::info!(
        "HTTP API on http://{}/api/v1 (OpenAPI at /api/v1/openapi.json, health at /healthz, /readyz)",
        running.http_addr
    );
    if let Some((web, docs)) = running.web_addrs {
        tracing::info!("web page on http://{web}/, API reference on http://{docs}/");
    }
    running.wait().await
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
