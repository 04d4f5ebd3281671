//! Start-up shared by every long-lived main (engine, price feed, WebSocket hub, persist,
//! candle consumer, the local runner) and the Lambda mains: logs, the shutdown signal and the
//! operations endpoint. A new worker's main is five lines:
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     bus::process::init_tracing();                 // LOG_FORMAT=json|human, RUST_LOG
//!     let shutdown = bus::process::shutdown_signal(); // SIGTERM or Ctrl-C
//!     let ready = bus::process::ready_fn(|| async { Readiness::of(vec![/* checks */]) });
//!     bus::process::start_ops(ready).await?;          // /metrics, /healthz, /readyz on METRICS_ADDR
//!     // … run until `shutdown` …
//! }
//! ```
//!
//! Metrics go through the `metrics` facade: register handles once at start-up
//! (`metrics::counter!("name", "label" => "value")` returns a handle to keep), after
//! [`install_metrics`] (which [`start_ops`] calls; registering earlier goes nowhere), and
//! record through the handles in hot loops.

pub mod cpu;
mod export;
mod ops;

use std::future::Future;

pub use export::{install_metrics, on_scrape, render_metrics};
pub use ops::{ReadyFn, ready_fn, serve_ops, start_ops};

/// The variable that chooses the log format.
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line: what CloudWatch and container log collectors want.
    Json,
    /// Human-readable lines with colours off when not a terminal.
    Human,
}

impl LogFormat {
    /// `LOG_FORMAT` (`json` or `human`) when set; otherwise human with `APP_ENV=local` and
    /// JSON everywhere else (Lambda, containers). An unknown value is JSON, with a warning
    /// once tracing is up.
    pub fn from_env() -> (Self, Option<String>) {
        let var = |name: &str| std::env::var(name).ok();
        Self::choose(var(LOG_FORMAT).as_deref(), var("APP_ENV").as_deref())
    }

    fn choose(log_format: Option<&str>, app_env: Option<&str>) -> (Self, Option<String>) {
        match log_format.map(str::trim) {
            Some("json") => (Self::Json, None),
            Some("human") => (Self::Human, None),
            Some(other) if !other.is_empty() => (
                Self::Json,
                Some(format!(
                    "LOG_FORMAT={other} is neither json nor human; using json"
                )),
            ),
            _ if app_env == Some("local") => (Self::Human, None),
            _ => (Self::Json, None),
        }
    }
}

/// Sets up logging for this process once: the format from [`LogFormat::from_env`], the
/// level from `RUST_LOG` (`info` by default). A second call (tests) changes nothing.
pub fn init_tracing() {
    let (format, warning) = LogFormat::from_env();
    init_tracing_as(format);
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
}

/// [`init_tracing`] with a given format.
pub fn init_tracing_as(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // Lambda's log lines are stamped by CloudWatch already.
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    // An error means a subscriber is set already (a test's): that one stays.
    let _ = match (format, on_lambda) {
        (LogFormat::Json, true) => builder.json().without_time().try_init(),
        (LogFormat::Json, false) => builder.json().try_init(),
        (LogFormat::Human, _) => builder.try_init(),
    };
}

/// Completes on SIGTERM or Ctrl-C. The handlers are installed at once (not when first
/// polled), so a SIGTERM during start-up also ends the process cleanly.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down");
    }
}

#[cfg(test)]
mod tests {
    use super::LogFormat;

    #[test]
    fn one_setting_chooses_the_log_format() {
        let cases = [
            (Some("json"), Some("local"), LogFormat::Json),
            (Some("human"), None, LogFormat::Human),
            (None, Some("local"), LogFormat::Human),
            (None, None, LogFormat::Json),
            (None, Some("production"), LogFormat::Json),
            (Some(""), Some("local"), LogFormat::Human),
        ];
        for (log_format, app_env, want) in cases {
            let (got, warning) = LogFormat::choose(log_format, app_env);
            assert_eq!((got, warning), (want, None), "{log_format:?} {app_env:?}");
        }
        let (got, warning) = LogFormat::choose(Some("xml"), Some("local"));
        assert_eq!(got, LogFormat::Json);
        assert!(warning.is_some_and(|w| w.contains("xml")));
    }
}
