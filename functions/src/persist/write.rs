//! The writes of the `persist` event function: each event's effect on the `positions`,
//! `position_partial_closes` and `orders` tables, idempotent by the event's key (see the
//! parent module): a row keeps the key of the event that last wrote it and only a later one
//! overwrites it; a partial close's row is keyed by its event and written once.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use bus::events::{EventKey, LoggedEvent};
use bus::{
    CancelReason, ClosedPosition, Event, Order, OrderId, Position, PositionId, Side, TimestampMs,
};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

/// Writes events in one transaction (all or nothing), in at most three statements whatever
/// their number: one upsert of positions, one insert of partial closes, one upsert of orders
/// (a round trip per event cost PostgreSQL more than the writes themselves).
///
/// Each event carries its row's whole state and a row only takes a later key, so writing the
/// latest state of each position and order in the batch leaves exactly the rows that writing
/// the events one by one would (`functions/tests/persist.rs` compares the two); a partial
/// close's row is its event's and written once.
pub async fn write_all<'a>(
    db: &PgPool,
    events: impl Iterator<Item = (EventKey, &'a Event)>,
) -> Result<(), sqlx::Error> {
    let mut rows = Rows::default();
    for (key, event) in events {
        rows.add(key, event);
    }
    let mut tx = db.begin().await?;
    rows.write(&mut tx).await?;
    tx.commit().await
}

/// Applies one event to PostgreSQL (all its writes or none); a no-op for events older than
/// what a row already holds.
pub async fn write_event(db: &PgPool, key: EventKey, event: &Event) -> Result<(), sqlx::Error> {
    write_all(db, std::iter::once((key, event))).await
}

/// The rows a batch of events writes: the latest state of each position and order it
/// touches, and its partial closes.
#[derive(Default)]
struct Rows<'a> {
    positions: HashMap<PositionId, (EventKey, PositionState<'a>)>,
    partial_closes: Vec<(EventKey, &'a ClosedPosition)>,
    orders: HashMap<OrderId, (EventKey, (&'a Order, OrderEnd))>,
}

/// A position and, once it is closed, how.
type PositionState<'a> = (&'a Position, Option<&'a ClosedPosition>);

impl<'a> Rows<'a> {
    fn add(&mut self, key: EventKey, event: &'a Event) {
        match event {
            // The user row is written by signup; the engine account has nothing to persist.
            Event::AccountCreated { .. } => {}
            Event::PositionOpened { position } | Event::PositionModified { position, .. } => {
                self.position(key, position, None);
            }
            Event::PositionClosed { position } => {
                self.position(key, &position.position, Some(position));
            }
            Event::PositionPartiallyClosed {
                closed, remaining, ..
            } => {
                self.partial_closes.push((key, closed));
                self.position(key, remaining, None);
            }
            Event::OrderPlaced { order } | Event::OrderModified { order, .. } => {
                self.order(key, order, OrderEnd::Pending);
            }
            Event::OrderCancelled { order, reason, at } => {
                self.order(key, order, OrderEnd::Cancelled(*reason, *at));
            }
            Event::OrderFilled { order, position } => {
                self.order(
                    key,
                    order,
                    OrderEnd::Filled(position.id, position.opened_at),
                );
                self.position(key, position, None);
            }
        }
    }

    fn position(&mut self, key: EventKey, p: &'a Position, closed: Option<&'a ClosedPosition>) {
        latest(&mut self.positions, p.id, (key, (p, closed)));
    }

    fn order(&mut self, key: EventKey, o: &'a Order, end: OrderEnd) {
        latest(&mut self.orders, o.id, (key, (o, end)));
    }

    async fn write(&self, db: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        if !self.positions.is_empty() {
            upsert_positions(&mut *db, self.positions.values()).await?;
        }
        if !self.partial_closes.is_empty() {
            insert_partial_closes(&mut *db, &self.partial_closes).await?;
        }
        if !self.orders.is_empty() {
            upsert_orders(db, self.orders.values()).await?;
        }
        Ok(())
    }
}

/// Keeps `row` for `id` unless the batch already holds a later state of it.
fn latest<K: std::hash::Hash + Eq, T>(
    rows: &mut HashMap<K, (EventKey, T)>,
    id: K,
    row: (EventKey, T),
) {
    match rows.entry(id) {
        Entry::Occupied(held) if held.get().0 >= row.0 => {}
        Entry::Occupied(mut held) => {
            held.insert(row);
        }
        Entry::Vacant(free) => {
            free.insert(row);
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

/// The positions' latest states, one row each (a statement may not update a row twice).
async fn upsert_positions<'a>(
    db: &mut sqlx::PgConnection,
    rows: impl Iterator<Item = &'a (EventKey, PositionState<'a>)>,
) -> Result<(), sqlx::Error> {
    let mut c = PositionColumns::default();
    for (key, (p, closed)) in rows {
        c.base.push(p, *key)?;
        c.liquidation_price
            .push(p.liquidation_price.map(|v| v.value()));
        c.stop_loss.push(p.stop_loss.map(|v| v.value()));
        c.take_profit.push(p.take_profit.map(|v| v.value()));
        c.status
            .push(if closed.is_some() { "closed" } else { "open" });
        c.close_price.push(closed.map(|c| c.close_price.value()));
        c.realized_pnl.push(closed.map(|c| c.realized_pnl.value()));
        c.close_reason.push(closed.map(|c| c.close_reason.as_str()));
        c.closed_at.push(closed.map(|c| c.closed_at));
        c.absorbed_loss
            .push(closed.map(|c| c.absorbed_loss.value()));
        c.trailing_distance
            .push(p.trailing_distance.map(|v| v.value()));
    }
    // Quantity, margin and liquidation price change with a partial close, the stop-loss with
    // a trailing stop: every event carries the position's latest state.
    let query = sqlx::query(
        "INSERT INTO positions (id, user_id, asset, side, quantity, leverage, open_price, margin, \
            opened_at, event_seq, event_index, liquidation_price, stop_loss, take_profit, \
            status, close_price, realized_pnl, close_reason, closed_at, absorbed_loss, \
            trailing_distance) \
         SELECT * FROM UNNEST($1::int8[], $2::uuid[], $3::text[], $4::text[], $5::numeric[], \
            $6::int4[], $7::numeric[], $8::numeric[], $9::int8[], $10::int8[], $11::int4[], \
            $12::numeric[], $13::numeric[], $14::numeric[], $15::text[], $16::numeric[], \
            $17::numeric[], $18::text[], $19::int8[], $20::numeric[], $21::numeric[]) \
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
    );
    c.base
        .bind(query)
        .bind(c.liquidation_price)
        .bind(c.stop_loss)
        .bind(c.take_profit)
        .bind(c.status)
        .bind(c.close_price)
        .bind(c.realized_pnl)
        .bind(c.close_reason)
        .bind(c.closed_at)
        .bind(c.absorbed_loss)
        .bind(c.trailing_distance)
        .execute(db)
        .await?;
    Ok(())
}

/// What a `positions` row and a `position_partial_closes` row both hold of a position, and
/// the event's key: the first eleven parameters of either statement, a column each.
#[derive(Default)]
struct PositionBase {
    id: Vec<i64>,
    user_id: Vec<Uuid>,
    asset: Vec<&'static str>,
    side: Vec<&'static str>,
    quantity: Vec<Decimal>,
    leverage: Vec<i32>,
    open_price: Vec<Decimal>,
    margin: Vec<Decimal>,
    opened_at: Vec<i64>,
    event_seq: Vec<i64>,
    event_index: Vec<i32>,
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl PositionBase {
    fn push(&mut self, p: &Position, key: EventKey) -> Result<(), sqlx::Error> {
        self.id.push(encode(p.id.0)?);
        self.user_id.push(p.user_id.0);
        self.asset.push(p.asset.symbol());
        self.side.push(side(p.side));
        self.quantity.push(p.quantity.value());
        self.leverage.push(encode(p.leverage.value())?);
        self.open_price.push(p.open_price.value());
        self.margin.push(p.margin.value());
        self.opened_at.push(p.opened_at);
        self.event_seq.push(encode(key.seq)?);
        self.event_index.push(encode(key.index)?);
        Ok(())
    }

    fn bind(self, query: Query<'_>) -> Query<'_> {
        query
            .bind(self.id)
            .bind(self.user_id)
            .bind(self.asset)
            .bind(self.side)
            .bind(self.quantity)
            .bind(self.leverage)
            .bind(self.open_price)
            .bind(self.margin)
            .bind(self.opened_at)
            .bind(self.event_seq)
            .bind(self.event_index)
    }
}

/// A `positions` upsert's parameters after the [`PositionBase`] ones.
#[derive(Default)]
struct PositionColumns {
    base: PositionBase,
    liquidation_price: Vec<Option<Decimal>>,
    stop_loss: Vec<Option<Decimal>>,
    take_profit: Vec<Option<Decimal>>,
    status: Vec<&'static str>,
    close_price: Vec<Option<Decimal>>,
    realized_pnl: Vec<Option<Decimal>>,
    close_reason: Vec<Option<&'static str>>,
    closed_at: Vec<Option<i64>>,
    absorbed_loss: Vec<Option<Decimal>>,
    trailing_distance: Vec<Option<Decimal>>,
}

/// The closed parts of partially closed positions: one row per event, written once.
async fn insert_partial_closes(
    db: &mut sqlx::PgConnection,
    rows: &[(EventKey, &ClosedPosition)],
) -> Result<(), sqlx::Error> {
    let mut base = PositionBase::default();
    let (mut close_price, mut realized_pnl) = (Vec::new(), Vec::new());
    let (mut close_reason, mut closed_at) = (Vec::new(), Vec::new());
    for (key, closed) in rows {
        base.push(&closed.position, *key)?;
        close_price.push(closed.close_price.value());
        realized_pnl.push(closed.realized_pnl.value());
        close_reason.push(closed.close_reason.as_str());
        closed_at.push(closed.closed_at);
    }
    let query = sqlx::query(
        "INSERT INTO position_partial_closes (position_id, user_id, asset, side, quantity, \
            leverage, open_price, margin, opened_at, event_seq, event_index, close_price, \
            realized_pnl, close_reason, closed_at) \
         SELECT * FROM UNNEST($1::int8[], $2::uuid[], $3::text[], $4::text[], $5::numeric[], \
            $6::int4[], $7::numeric[], $8::numeric[], $9::int8[], $10::int8[], $11::int4[], \
            $12::numeric[], $13::numeric[], $14::text[], $15::int8[]) \
         ON CONFLICT (event_seq, event_index) DO NOTHING",
    );
    base.bind(query)
        .bind(close_price)
        .bind(realized_pnl)
        .bind(close_reason)
        .bind(closed_at)
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

/// The orders' latest states, one row each.
async fn upsert_orders<'a>(
    db: &mut sqlx::PgConnection,
    rows: impl Iterator<Item = &'a (EventKey, (&'a Order, OrderEnd))>,
) -> Result<(), sqlx::Error> {
    let mut c = OrderColumns::default();
    for (key, (o, end)) in rows {
        let (status, reason, position, finished_at) = match *end {
            OrderEnd::Pending => ("pending", None, None, None),
            OrderEnd::Cancelled(reason, at) => ("cancelled", Some(reason.as_str()), None, Some(at)),
            OrderEnd::Filled(position, at) => (
                "filled",
                None,
                Some(encode::<u64, i64>(position.0)?),
                Some(at),
            ),
        };
        c.id.push(encode(o.id.0)?);
        c.user_id.push(o.user_id.0);
        c.asset.push(o.asset.symbol());
        c.side.push(side(o.side));
        c.order_type.push(o.order_type.as_str());
        c.price.push(o.price.value());
        c.quantity.push(o.quantity.value());
        c.leverage.push(encode(o.leverage.value())?);
        c.stop_loss.push(o.stop_loss.map(|v| v.value()));
        c.take_profit.push(o.take_profit.map(|v| v.value()));
        c.expires_at.push(o.expires_at);
        c.created_at.push(o.created_at);
        c.status.push(status);
        c.cancel_reason.push(reason);
        c.position_id.push(position);
        c.finished_at.push(finished_at);
        c.event_seq.push(encode(key.seq)?);
        c.event_index.push(encode(key.index)?);
    }
    sqlx::query(
        "INSERT INTO orders (id, user_id, asset, side, order_type, price, quantity, leverage, \
            stop_loss, take_profit, expires_at, created_at, status, cancel_reason, position_id, \
            finished_at, event_seq, event_index) \
         SELECT * FROM UNNEST($1::int8[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
            $6::numeric[], $7::numeric[], $8::int4[], $9::numeric[], $10::numeric[], \
            $11::int8[], $12::int8[], $13::text[], $14::text[], $15::int8[], $16::int8[], \
            $17::int8[], $18::int4[]) \
         ON CONFLICT (id) DO UPDATE SET \
            price = EXCLUDED.price, stop_loss = EXCLUDED.stop_loss, \
            take_profit = EXCLUDED.take_profit, expires_at = EXCLUDED.expires_at, \
            status = EXCLUDED.status, cancel_reason = EXCLUDED.cancel_reason, \
            position_id = EXCLUDED.position_id, finished_at = EXCLUDED.finished_at, \
            event_seq = EXCLUDED.event_seq, event_index = EXCLUDED.event_index \
         WHERE (orders.event_seq, orders.event_index) \
             < (EXCLUDED.event_seq, EXCLUDED.event_index)",
    )
    .bind(c.id)
    .bind(c.user_id)
    .bind(c.asset)
    .bind(c.side)
    .bind(c.order_type)
    .bind(c.price)
    .bind(c.quantity)
    .bind(c.leverage)
    .bind(c.stop_loss)
    .bind(c.take_profit)
    .bind(c.expires_at)
    .bind(c.created_at)
    .bind(c.status)
    .bind(c.cancel_reason)
    .bind(c.position_id)
    .bind(c.finished_at)
    .bind(c.event_seq)
    .bind(c.event_index)
    .execute(db)
    .await?;
    Ok(())
}

/// An `orders` upsert's parameters, a column each.
#[derive(Default)]
struct OrderColumns {
    id: Vec<i64>,
    user_id: Vec<Uuid>,
    asset: Vec<&'static str>,
    side: Vec<&'static str>,
    order_type: Vec<&'static str>,
    price: Vec<Decimal>,
    quantity: Vec<Decimal>,
    leverage: Vec<i32>,
    stop_loss: Vec<Option<Decimal>>,
    take_profit: Vec<Option<Decimal>>,
    expires_at: Vec<Option<i64>>,
    created_at: Vec<i64>,
    status: Vec<&'static str>,
    cancel_reason: Vec<Option<&'static str>>,
    position_id: Vec<Option<i64>>,
    finished_at: Vec<Option<i64>>,
    event_seq: Vec<i64>,
    event_index: Vec<i32>,
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
