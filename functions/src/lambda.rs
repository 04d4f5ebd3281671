//! What every Lambda main shares: JSON logs, settings from the environment (secrets from
//! Secrets Manager, `secrets`), the state built once per container, and `lambda_http::run` over the function's router.

use axum::Router;

use crate::settings::{Env, Settings};
use crate::state::AppState;

/// Runs one function's router on the Lambda runtime until the container is stopped.
pub async fn serve(app: fn(AppState) -> Router) -> Result<(), lambda_http::Error> {
    init_json_tracing();
    let secrets = crate::secrets::overrides()
        .await
        .inspect_err(|e| tracing::error!("{e}"))?;
    let env = Env::from_process().overlaid(secrets);
    let settings = Settings::from_vars(&env).inspect_err(|e| tracing::error!("{e}"))?;
    let state = AppState::connect(&settings).await?;
    lambda_http::run(app(state)).await
}

/// JSON logs (what CloudWatch wants); the level from `RUST_LOG`, `info` by default.
pub fn init_json_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second init (tests) fails harmlessly: the first subscriber stays.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .without_time()
        .try_init();
}
