//! The simulated source, for machines that cannot reach Binance: a mean-reverting random walk
//! around realistic prices, with a 1 bp raw spread and random small trades. Every quote and
//! trade it makes carries `simulated: true`, and the feed logs that it is simulated.

use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::{mpsc, watch};
use tokio::time::{MissedTickBehavior, interval};

use super::health::FeedHealth;
use super::{Rng, SourceEvent, now_ms};
use crate::market::Trade;
use crate::types::{Asset, Price, Quantity};

/// Where each asset's walk starts and keeps returning to (USD).
pub fn default_start_prices() -> [Decimal; 3] {
    [
        Decimal::from(65_000),
        Decimal::from(3_200),
        Decimal::from(150),
    ]
}

/// One asset's walk.
struct Walk {
    anchor: Decimal,
    mid: Decimal,
}

impl Walk {
    /// Moves the mid by up to ±1 bp, pulled back towards the anchor by 0.1 % of the gap.
    fn step(&mut self, rng: &mut Rng) {
        let bp = Decimal::new(rng.below(201) as i64 - 100, 6);
        let pull = (self.anchor - self.mid) * Decimal::new(1, 3);
        self.mid = (self.mid * (Decimal::ONE + bp) + pull).round_dp(8);
    }

    fn bid_ask(&self) -> (Decimal, Decimal) {
        let half = (self.mid * Decimal::new(5, 5)).round_dp(8);
        (self.mid - half, self.mid + half)
    }
}

/// Emits one quote per asset every `every`, and a trade with probability ½, until stopped.
pub async fn run(
    start: [Decimal; 3],
    every: Duration,
    tx: mpsc::Sender<SourceEvent>,
    health: FeedHealth,
    mut stop: watch::Receiver<bool>,
) {
    tracing::warn!("price feed is SIMULATED (random walk); quotes carry simulated=true");
    health.set_simulated();
    let mut rng = Rng::seeded();
    let mut walks = start.map(|p| Walk { anchor: p, mid: p });
    let mut timer = interval(every);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut trade_id = 0u64;
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            _ = stop.changed() => return,
        }
        health.mark_fresh();
        for asset in Asset::ALL {
            let walk = &mut walks[asset.index()];
            walk.step(&mut rng);
            let (bid, ask) = walk.bid_ask();
            let ts = now_ms();
            let quote = SourceEvent::Quote {
                asset,
                bid,
                ask,
                ts,
                simulated: true,
            };
            if tx.send(quote).await.is_err() {
                return;
            }
            if rng.below(2) == 0 {
                trade_id += 1;
                if let Some(trade) = make_trade(asset, walk.mid, &mut rng, trade_id, ts)
                    && tx.send(SourceEvent::Trade(trade)).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

fn make_trade(asset: Asset, mid: Decimal, rng: &mut Rng, id: u64, ts: i64) -> Option<Trade> {
    let quantity = Decimal::new(1 + rng.below(1000) as i64, 4); // 0.0001 ..= 0.1
    Some(Trade {
        asset,
        price: Price::new(mid.round_dp(2)).ok()?,
        quantity: Quantity::new(quantity).ok()?,
        ts,
        id,
        simulated: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_stays_near_its_anchor_with_a_positive_spread() {
        let mut rng = Rng::new(42);
        let anchor = Decimal::from(65_000);
        let mut walk = Walk {
            anchor,
            mid: anchor,
        };
        for _ in 0..100_000 {
            walk.step(&mut rng);
            let (bid, ask) = walk.bid_ask();
            assert!(bid < ask);
        }
        let drift = ((walk.mid - anchor) / anchor).abs();
        assert!(drift < Decimal::new(5, 2), "drifted {drift}");
    }
}
