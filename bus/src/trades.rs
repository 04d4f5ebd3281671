//! The `TRADES` JetStream stream: exchange trades from the price feed, consumed durably by the
//! candle store. Market data, not engine input: kept for a day, then dropped.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::market::Trade;
use crate::nats::BusError;
use crate::subjects::Names;
use crate::{Envelope, TimestampMs};

/// Creates `TRADES` when missing (safe to call from every process at start-up).
pub async fn ensure_trades_stream(
    js: &jetstream::Context,
    names: &Names,
    max_age: Duration,
) -> Result<(), BusError> {
    let config = stream::Config {
        name: names.trades_stream(),
        subjects: vec![names.trades()],
        max_age,
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(60),
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .map(|_| ())
        .map_err(|e| BusError::Unavailable(format!("stream {}: {e}", names.trades_stream())))
}

/// Logs one trade into `TRADES` and waits for the JetStream ack.
pub async fn publish_trade(
    js: &jetstream::Context,
    names: &Names,
    trade: &Trade,
    now: TimestampMs,
) -> Result<(), BusError> {
    let payload = Envelope::new(0, now, trade.clone()).encode();
    let ack = js
        .publish(names.trade(trade.asset), payload.into())
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
    ack.await
        .map(|_| ())
        .map_err(|e| BusError::Unavailable(e.to_string()))
}
