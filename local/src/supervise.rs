//! Keeps the runner's long-lived parts alive: a part that fails (an outage it could not ride
//! out by itself) is logged and started again with backoff, instead of taking the whole
//! runner down; only the shutdown signal ends it.

use std::future::Future;
use std::time::Duration;

use bus::backoff::Backoff;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::RunError;

/// A part that ran this long before failing starts again without waiting.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs `start(stop)` again after each failure until `stop` is given. A part that ends
/// cleanly (only ever on the stop signal) ends the loop.
pub async fn restarting<F, Fut>(
    name: &'static str,
    stop: watch::Receiver<bool>,
    mut start: F,
) -> (&'static str, Result<(), RunError>)
where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = Result<(), RunError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let started = Instant::now();
        let error = match start(stop.clone()).await {
            Ok(()) => return (name, Ok(())),
            Err(e) => e,
        };
        if *stop.borrow() {
            return (name, Ok(()));
        }
        if started.elapsed() > HEALTHY_RUN {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::error!(part = name, error = %error, retry_in_ms = delay.as_millis() as u64, "failed; starting it again");
        let mut rx = stop.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = rx.wait_for(|stop| *stop) => return (name, Ok(())),
        }
    }
}
