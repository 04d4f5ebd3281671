//! `alerts`: the price-alerts worker as its own process (the local runner runs it as a task):
//! fires alerts from the Redis price stream until SIGINT/SIGTERM (see
//! `functions::alerts::worker`). Settings as the HTTP functions (`NATS_URL`, `DATABASE_URL`,
//! `ENGINE_PREFIX`, `REDIS_URL`, `REDIS_PREFIX`; no `JWT_SECRET`); the migrations must have run.

use functions::Settings;
use functions::alerts::worker::Worker;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    functions::lambda::init_json_tracing();
    let settings = Settings::from_env_without_secret().inspect_err(|e| tracing::error!("{e}"))?;
    let db = functions::state::pool_options(&settings)
        .connect(&settings.database_url)
        .await?;
    let nats = async_nats::connect(&settings.nats_url).await?;
    let worker = Worker {
        nats,
        names: bus::Names::new(settings.bus_prefix.clone()),
        db,
        redis_url: settings.redis_url.clone(),
        keys: bus::PriceKeys::new(settings.redis_prefix.clone()),
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    worker.run(shutdown).await?;
    Ok(())
}
