//! `candle_ingest`: the candle event function as its own process: consumes `TRADES` into the
//! `candles` table until SIGINT/SIGTERM. Settings as the HTTP functions (`NATS_URL`,
//! `DATABASE_URL`, `ENGINE_PREFIX`, `DB_MAX_CONNECTIONS`; no `JWT_SECRET`: it handles no
//! tokens); metrics and `/readyz` on `METRICS_ADDR` (`bus::process`). The migrations must
//! have run (the local runner does).

use functions::Settings;
use functions::candles::ingest::{self, IngestSettings};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    bus::process::init_tracing();
    let shutdown = bus::process::shutdown_signal();
    let settings = Settings::from_env_without_secret().inspect_err(|e| tracing::error!("{e}"))?;
    let db = functions::state::pool_options(&settings)
        .connect(&settings.database_url)
        .await?;
    let nats = async_nats::connect(&settings.nats_url).await?;
    let ready = functions::observe::worker_readiness(nats.clone(), db.clone());
    bus::process::start_ops(ready).await?;
    let js = async_nats::jetstream::new(nats);
    let names = bus::Names::new(settings.bus_prefix.clone());
    ingest::run(js, names, db, IngestSettings::default(), shutdown).await?;
    Ok(())
}
