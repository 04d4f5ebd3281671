//! What every Lambda main shares: logs (`bus::process`; JSON on Lambda), settings from the environment (secrets from
//! Secrets Manager, `secrets`), the state built once per container, and `lambda_http::run` over the function's router.

use axum::Router;

use crate::settings::{Env, Settings};
use crate::state::AppState;

/// Runs one function's router on the Lambda runtime until the container is stopped.
pub async fn serve(app: fn(AppState) -> Router) -> Result<(), lambda_http::Error> {
    bus::process::init_tracing();
    let secrets = crate::secrets::overrides()
        .await
        .inspect_err(|e| tracing::error!("{e}"))?;
    let env = Env::from_process().overlaid(secrets);
    let settings = Settings::from_vars(&env).inspect_err(|e| tracing::error!("{e}"))?;
    let state = AppState::connect(&settings).await?;
    lambda_http::run(app(state)).await
}
