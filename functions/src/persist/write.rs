//! The writes of the `persist` event function: each event's effect on the `positions`,
//! `position_partial_closes` and `orders` tables, idempotent by the event's key (see the
//! parent module): a row keeps the key of the event that last wrote it and only a later one
//! overwrites it; a partial close's row is keyed by its event and written once.

use bus::events::{EventKey, LoggedEvent};
use bus::{CancelReason, ClosedPosition, Event, Order, Position, PositionId, Side, TimestampMs};
use sqlx::PgPool;

/// Writes events in one transaction (all or nothing).
pub async fn write_all<'a>(
    db: &PgPool,
    events: impl Iterator<Item = (EventKey, &'a Event)>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    for (key, event) in events {
        write_one(&mut tx, key, event).await?;
    }
    tx.commit().await
}

/// Applies one event to PostgreSQL (all its writes or none); a no-op for events older than
/// what a row already holds.
pub async fn write_event(db: &PgPool, key: EventKey, event: &Event) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    write_one(&mut tx, key, event).await?;
    tx.commit().await
}

async fn write_one(
    db: &mut sqlx::PgConnection,
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
        Event::PositionPartiallyClosed {
            closed, remaining, ..
        } => {
            insert_partial_close(&mut *db, key, closed).await?;
            upsert(db, key, remaining, None).await
        }
        Event::OrderPlaced { order } | Event::OrderModified { order, .. } => {
            upsert_order(db, key, order, OrderEnd::Pending).await
        }
        Event::OrderCancelled { order, reason, at } => {
            upsert_order(db, key, order, OrderEnd::Cancelled(*reason, *at)).await
        }
        Event::OrderFilled { order, position } => {
            upsert_order(
                &mut *db,
                key,
                order,
                OrderEnd::Filled(position.id, position.opened_at),
            )
            .await?;
            upsert(db, key, position, None).await
        }
    }
}

fn side(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn encode<T, U: TryFrom<T>>(value: T) -> Result<U, sqlx::Error>
where
    U::Error: std::error::Error + Send + Sync + 'static,
{
    U::try_from(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

async fn upsert(
    db: &mut sqlx::PgConnection,
    key: EventKey,
    p: &Position,
    closed: Option<&ClosedPosition>,
) -> Result<(), sqlx::Error> {
    let id: i64 = encode(p.id.0)?;
    let seq: i64 = encode(key.seq)?;
    let index: i32 = encode(key.index)?;
    let leverage: i32 = encode(p.leverage.value())?;
    // Quantity, margin and liquidation price change with a partial close, the stop-loss with
    // a trailing stop: every event carries the position's latest state.
    sqlx::query(
        "INSERT INTO positions (id, user_id, asset, side, quantity, leverage, open_price, margin, \
            liquidation_price, stop_loss, take_profit, opened_at, status, close_price, realized_pnl, \
            close_reason, closed_at, absorbed_loss, event_seq, event_index, trailing_distance) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21) \
         ON CONFLICT (id) DO UPDATE SET \
            quantity = EXCLUDED.quantity, margin = EXCLUDED.margin, \
            liquidation_price = EXCLUDED.liquidation_price, \
            trailing_distance = EXCLUDED.trailing_distance, \
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
    .bind(side(p.side))
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
    .bind(p.trailing_distance.map(|v| v.value()))
    .execute(db)
    .await?;
    Ok(())
}

/// The closed part of a partially closed position: one row per event, written once.
async fn insert_partial_close(
    db: &mut sqlx::PgConnection,
    key: EventKey,
    c: &ClosedPosition,
) -> Result<(), sqlx::Error> {
    let p = &c.position;
    let id: i64 = encode(p.id.0)?;
    let seq: i64 = encode(key.seq)?;
    let index: i32 = encode(key.index)?;
    let leverage: i32 = encode(p.leverage.value())?;
    sqlx::query(
        "INSERT INTO position_partial_closes (event_seq, event_index, position_id, user_id, \
            asset, side, quantity, leverage, open_price, margin, opened_at, close_price, \
            realized_pnl, close_reason, closed_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) \
         ON CONFLICT (event_seq, event_index) DO NOTHING",
    )
    .bind(seq)
    .bind(index)
    .bind(id)
    .bind(p.user_id.0)
    .bind(p.asset.symbol())
    .bind(side(p.side))
    .bind(p.quantity.value())
    .bind(leverage)
    .bind(p.open_price.value())
    .bind(p.margin.value())
    .bind(p.opened_at)
    .bind(c.close_price.value())
    .bind(c.realized_pnl.value())
    .bind(c.close_reason.as_str())
    .bind(c.closed_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Where an order's row stands after an event.
#[derive(Debug, Clone, Copy)]
enum OrderEnd {
    Pending,
    Cancelled(CancelReason, TimestampMs),
    Filled(PositionId, TimestampMs),
}

async fn upsert_order(
    db: &mut sqlx::PgConnection,
    key: EventKey,
    o: &Order,
    end: OrderEnd,
) -> Result<(), sqlx::Error> {
    let (status, reason, position, finished_at) = match end {
        OrderEnd::Pending => ("pending", None, None, None),
        OrderEnd::Cancelled(reason, at) => ("cancelled", Some(reason.as_str()), None, Some(at)),
        OrderEnd::Filled(position, at) => (
            "filled",
            None,
            Some(encode::<u64, i64>(position.0)?),
            Some(at),
        ),
    };
    sqlx::query(
        "INSERT INTO orders (id, user_id, asset, side, order_type, price, quantity, leverage, \
            stop_loss, take_profit, expires_at, created_at, status, cancel_reason, position_id, \
            finished_at, event_seq, event_index) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18) \
         ON CONFLICT (id) DO UPDATE SET \
            price = EXCLUDED.price, stop_loss = EXCLUDED.stop_loss, \
            take_profit = EXCLUDED.take_profit, expires_at = EXCLUDED.expires_at, \
            status = EXCLUDED.status, cancel_reason = EXCLUDED.cancel_reason, \
            position_id = EXCLUDED.position_id, finished_at = EXCLUDED.finished_at, \
            event_seq = EXCLUDED.event_seq, event_index = EXCLUDED.event_index \
         WHERE (orders.event_seq, orders.event_index) \
             < (EXCLUDED.event_seq, EXCLUDED.event_index)",
    )
    .bind(encode::<u64, i64>(o.id.0)?)
    .bind(o.user_id.0)
    .bind(o.asset.symbol())
    .bind(side(o.side))
    .bind(o.order_type.as_str())
    .bind(o.price.value())
    .bind(o.quantity.value())
    .bind(encode::<u32, i32>(o.leverage.value())?)
    .bind(o.stop_loss.map(|v| v.value()))
    .bind(o.take_profit.map(|v| v.value()))
    .bind(o.expires_at)
    .bind(o.created_at)
    .bind(status)
    .bind(reason)
    .bind(position)
    .bind(finished_at)
    .bind(encode::<u64, i64>(key.seq)?)
    .bind(encode::<u32, i32>(key.index)?)
    .execute(db)
    .await?;
    Ok(())
}

/// The line that follows a request into history: logged for an event that carries the
/// request id the engine put on it (from the command's headers).
pub(super) fn log_written(logged: &LoggedEvent) {
    if let Some(request_id) = &logged.request_id {
        tracing::info!(
            request_id,
            seq = logged.seq,
            kind = logged.event.kind(),
            "persist: event written"
        );
    }
}
