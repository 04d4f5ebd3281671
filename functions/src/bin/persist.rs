//! `persist`: the event function that writes positions to PostgreSQL, as its own process
//! (the local runner runs it as a task): a durable consumer of `EVENTS` until SIGINT/SIGTERM.
//! Settings as the HTTP functions (`NATS_URL`, `DATABASE_URL`, `ENGINE_PREFIX`; no
//! `JWT_SECRET`: it handles no tokens); metrics and `/readyz` on `METRICS_ADDR`
//! (`bus::process`). The migrations must have run (the `migrate` job, the engine or the
//! local runner do).

use functions::Settings;

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
    functions::persist::run(js, names, db, shutdown).await?;
    Ok(())
}
