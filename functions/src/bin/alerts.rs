//! `alerts`: the price-alerts worker as its own process (the local runner runs it as a task):
//! fires alerts from the Redis price stream until SIGINT/SIGTERM (see
//! `functions::alerts::worker`). Settings as the HTTP functions (`NATS_URL`, `DATABASE_URL`,
//! `ENGINE_PREFIX`, `REDIS_URL`, `REDIS_PREFIX`; no `JWT_SECRET`); metrics and `/readyz` on
//! `METRICS_ADDR` (`bus::process`); the migrations must have run.
//! A worker that fails (Redis, NATS or PostgreSQL lost) starts again after a backoff, reloading
//! everything, as the runner's supervisor does.

use std::time::Duration;

use bus::backoff::Backoff;
use functions::Settings;
use functions::alerts::worker::Worker;
use tokio::sync::watch;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    bus::process::init_tracing();
    let shutdown = bus::process::shutdown_signal();
    let settings = Settings::from_env_without_secret().inspect_err(|e| tracing::error!("{e}"))?;
    let db = functions::state::lazy_pool(&settings)?;
    let nats = functions::state::connect_nats(&settings.nats_url).await?;
    let worker = Worker {
        nats,
        names: bus::Names::new(settings.bus_prefix.clone()),
        db,
        redis_url: settings.redis_url.clone(),
        keys: bus::PriceKeys::new(settings.redis_prefix.clone()),
    };
    let ready = functions::observe::worker_readiness(worker.nats.clone(), worker.db.clone());
    bus::process::start_ops(ready).await?;
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stop_tx.send_replace(true);
    });
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let mut rx = stop.clone();
        let stopped = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let started = std::time::Instant::now();
        match worker.run(stopped).await {
            Ok(()) => return Ok(()),
            Err(e) => tracing::error!(error = %e, "alerts worker failed; starting it again"),
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff.reset();
        }
        let mut rx = stop.clone();
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            _ = rx.wait_for(|s| *s) => return Ok(()),
        }
    }
}
