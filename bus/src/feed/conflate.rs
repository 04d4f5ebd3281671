//! Conflation of price ticks into the `ENGINE` log: at most one tick per asset per interval,
//! always the newest. Each asset has a `watch` slot (a newer quote overwrites an unsent one)
//! and a task that publishes the slot's content, then rests for the interval. The first tick
//! after a quiet spell goes out at once; a burst costs one tick per interval.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::health::FeedHealth;
use crate::messages::PriceTick;
use crate::nats::{BusError, EngineClient};
use crate::types::Asset;

/// Where conflated ticks go (the engine client; a recorder in unit tests).
pub trait TickSink: Clone + Send + Sync + 'static {
    fn publish_tick(&self, tick: &PriceTick) -> impl Future<Output = Result<(), BusError>> + Send;
}

impl TickSink for EngineClient {
    fn publish_tick(&self, tick: &PriceTick) -> impl Future<Output = Result<(), BusError>> + Send {
        EngineClient::publish_tick(self, tick)
    }
}

/// The write side: one slot per asset. Dropping it ends the tasks (after a last publish).
pub struct TickSlots {
    slots: [watch::Sender<Option<PriceTick>>; 3],
}

impl TickSlots {
    /// Replaces the asset's pending tick with `tick`.
    pub fn offer(&self, tick: PriceTick) {
        self.slots[tick.asset.index()].send_replace(Some(tick));
    }
}

/// Starts one conflating task per asset.
pub fn spawn<S: TickSink>(
    sink: S,
    every: Duration,
    health: FeedHealth,
) -> (TickSlots, Vec<JoinHandle<()>>) {
    let mut tasks = Vec::with_capacity(Asset::ALL.len());
    let slots = Asset::ALL.map(|_| {
        let (tx, rx) = watch::channel(None);
        tasks.push(tokio::spawn(conflate(
            sink.clone(),
            rx,
            every,
            health.clone(),
        )));
        tx
    });
    (TickSlots { slots }, tasks)
}

async fn conflate<S: TickSink>(
    sink: S,
    mut slot: watch::Receiver<Option<PriceTick>>,
    every: Duration,
    health: FeedHealth,
) {
    let mut failing = false;
    while slot.changed().await.is_ok() {
        let Some(tick) = slot.borrow_and_update().clone() else {
            continue;
        };
        let started = Instant::now();
        match sink.publish_tick(&tick).await {
            Ok(()) => {
                health.count_tick();
                if failing {
                    tracing::info!(asset = %tick.asset, "ticks reach the engine log again");
                    failing = false;
                }
            }
            Err(e) if !failing => {
                tracing::warn!(asset = %tick.asset, error = %e, "cannot log price tick");
                failing = true;
            }
            Err(_) => {}
        }
        sleep_until(started + every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Price;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<(Instant, PriceTick)>>>);

    impl TickSink for Recorder {
        fn publish_tick(
            &self,
            tick: &PriceTick,
        ) -> impl Future<Output = Result<(), BusError>> + Send {
            self.0
                .lock()
                .expect("lock")
                .push((Instant::now(), tick.clone()));
            async { Ok(()) }
        }
    }

    fn tick(asset: Asset, bid: i64) -> PriceTick {
        let p = |v: i64| Price::new(v.into()).expect("price");
        PriceTick {
            asset,
            bid: p(bid),
            ask: p(bid + 1),
            ts: bid,
            simulated: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_one_tick_per_interval_and_always_the_newest() {
        let rec = Recorder::default();
        let every = Duration::from_millis(100);
        let (slots, tasks) = spawn(rec.clone(), every, FeedHealth::default());
        let t0 = Instant::now();
        // 50 BTC quotes and 1 ETH quote within 50 ms, then 30 more BTC quotes by 290 ms.
        for i in 1..=50 {
            slots.offer(tick(Asset::Btc, i));
            if i == 10 {
                slots.offer(tick(Asset::Eth, 7));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for i in 51..=80 {
            slots.offer(tick(Asset::Btc, i));
            tokio::time::sleep(Duration::from_millis(8)).await;
        }
        drop(slots);
        for t in tasks {
            t.await.expect("task ends");
        }
        let got = rec.0.lock().expect("lock").clone();
        let btc: Vec<_> = got.iter().filter(|(_, t)| t.asset == Asset::Btc).collect();
        let eth: Vec<_> = got.iter().filter(|(_, t)| t.asset == Asset::Eth).collect();
        assert_eq!(eth.len(), 1);
        assert_eq!(eth[0].1.ts, 7);
        // The first goes out at once; later ones no sooner than 100 ms after the previous.
        assert_eq!(btc[0].1.ts, 1);
        assert_eq!(btc[0].0, t0);
        for pair in btc.windows(2) {
            assert!(
                pair[1].0 - pair[0].0 >= every,
                "too close: {:?}",
                pair[1].0 - pair[0].0
            );
        }
        // The last published is the newest offered, and no more than one per interval.
        assert_eq!(btc.last().expect("some").1.ts, 80);
        assert!(btc.len() <= 5, "{} ticks for ~370 ms", btc.len());
    }
}
