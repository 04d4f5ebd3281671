//! The writes of the `persist` event function: each event's effect on the `positions` table,
//! idempotent by the event's key (see the parent module).

use bus::{ClosedPosition, Event, Position};
use sqlx::PgPool;

/// The key that makes a write idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventKey {
    pub seq: u64,
    pub index: u32,
}

impl EventKey {
    /// Reads `"<seq>-<index>"`.
    pub fn parse(msg_id: &str) -> Option<Self> {
        let (seq, index) = msg_id.split_once('-')?;
        Some(Self {
            seq: seq.parse().ok()?,
            index: index.parse().ok()?,
        })
    }
}

/// Writes events in one transaction (all or nothing).
pub async fn write_all<'a>(
    db: &PgPool,
    events: impl Iterator<Item = (EventKey, &'a Event)>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    for (key, event) in events {
        write_event(&mut *tx, key, event).await?;
    }
    tx.commit().await
}

/// Applies one event to PostgreSQL; a no-op for events older than what a row already holds.
pub async fn write_event<'c>(
    db: impl sqlx::PgExecutor<'c>,
    key: EventKey,
    event: &Event,
) -> Result<(), sqlx::Error> {
    match event {
        // The user row is written by signup; the engine account has nothing to persist.
        Event::AccountCreated { .. } => Ok(()),
        Event::PositionOpened { position } | Event::PositionModified { position, .. } => {
            upsert(db, key, position, None).await
        }
        Event::PositionClosed { position } => {
            upsert(db, key, &position.position, Some(position)).await
        }
    }
}

async fn upsert<'c>(
    db: impl sqlx::PgExecutor<'c>,
    key: EventKey,
    p: &Position,
    closed: Option<&ClosedPosition>,
) -> Result<(), sqlx::Error> {
    let id = i64::try_from(p.id.0).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let seq = i64::try_from(key.seq).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let index = i32::try_from(key.index).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let leverage =
        i32::try_from(p.leverage.value()).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO positions (id, user_id, asset, side, quantity, leverage, open_price, margin, \
            liquidation_price, stop_loss, take_profit, opened_at, status, close_price, realized_pnl, \
            close_reason, closed_at, absorbed_loss, event_seq, event_index) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20) \
         ON CONFLICT (id) DO UPDATE SET \
            stop_loss = EXCLUDED.stop_loss, take_profit = EXCLUDED.take_profit, \
            status = EXCLUDED.status, close_price = EXCLUDED.close_price, \
            realized_pnl = EXCLUDED.realized_pnl, close_reason = EXCLUDED.close_reason, \
            closed_at = EXCLUDED.closed_at, absorbed_loss = EXCLUDED.absorbed_loss, \
            event_seq = EXCLUDED.event_seq, event_index = EXCLUDED.event_index \
         WHERE (positions.event_seq, positions.event_index) \
             < (EXCLUDED.event_seq, EXCLUDED.event_index)",
    )
    .bind(id)
    .bind(p.user_id.0)
    .bind(p.asset.symbol())
    .bind(match p.side {
        bus::Side::Buy => "buy",
        bus::Side::Sell => "sell",
    })
    .bind(p.quantity.value())
    .bind(leverage)
    .bind(p.open_price.value())
    .bind(p.margin.value())
    .bind(p.liquidation_price.map(|v| v.value()))
    .bind(p.stop_loss.map(|v| v.value()))
    .bind(p.take_profit.map(|v| v.value()))
    .bind(p.opened_at)
    .bind(if closed.is_some() { "closed" } else { "open" })
    .bind(closed.map(|c| c.close_price.value()))
    .bind(closed.map(|c| c.realized_pnl.value()))
    .bind(closed.map(|c| c.close_reason.as_str()))
    .bind(closed.map(|c| c.closed_at))
    .bind(closed.map(|c| c.absorbed_loss.value()))
    .bind(seq)
    .bind(index)
    .execute(db)
    .await?;
    Ok(())
}

/// The line that follows a request into history: logged for an event that carries the
/// request id the engine put on it (from the command's headers).
pub(super) fn log_written(msg: &async_nats::jetstream::Message, key: EventKey, event: &Event) {
    if let Some(request_id) = bus::request_id::of_headers(msg.headers.as_ref()) {
        tracing::info!(
            request_id,
            seq = key.seq,
            kind = event.kind(),
            "persist: event written"
        );
    }
}
