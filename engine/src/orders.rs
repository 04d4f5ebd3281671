//! Pending limit and stop orders: placing, changing and cancelling them, their expiry, and
//! their fills on ticks (the rules are in [`crate::trading`]'s doc).

use bus::{
    Accepted, CancelReason, Event, ModifyOrder, OpenPosition, Order, OrderId, OrderType,
    PlaceOrder, Price, PriceTick, RejectCode, Rejection, Side, TimestampMs, UserId,
};

use crate::checks::{check_levels, check_leverage, check_quantity, has_price_decimals};
use crate::config::AssetSpec;
use crate::index::QuoteKeys;
use crate::order_index::fills_at;
use crate::trading::{Engine, close_side_price, reject, trigger_reason};

/// The order price must be on its type's side of the market: a buy limit below the ask, a
/// buy stop above it, a sell limit above the bid, a sell stop below it; with at most the
/// asset's price decimals.
fn check_order_price(
    spec: &AssetSpec,
    side: Side,
    order_type: OrderType,
    price: Price,
    quote: &PriceTick,
) -> Result<(), Rejection> {
    let (p, bid, ask) = (price.value(), quote.bid.value(), quote.ask.value());
    let (ok, rule) = match (side, order_type) {
        (Side::Buy, OrderType::Limit) => (p < ask, format!("below the ask ({ask})")),
        (Side::Buy, OrderType::Stop) => (p > ask, format!("above the ask ({ask})")),
        (Side::Sell, OrderType::Limit) => (p > bid, format!("above the bid ({bid})")),
        (Side::Sell, OrderType::Stop) => (p < bid, format!("below the bid ({bid})")),
    };
    if ok && has_price_decimals(spec, price) {
        return Ok(());
    }
    reject(
        RejectCode::InvalidOrderPrice,
        format!(
            "a {} {} order's price must be {rule} with at most {} decimals",
            side.as_str(),
            order_type.as_str(),
            spec.price_decimals
        ),
    )
}

fn check_expiry(expires_at: Option<TimestampMs>, now: TimestampMs) -> Result<(), Rejection> {
    match expires_at {
        Some(at) if at <= now => reject(
            RejectCode::InvalidExpiry,
            format!("expiresAt {at} is not after the time of the command ({now})"),
        ),
        _ => Ok(()),
    }
}

impl Engine {
    pub(crate) fn place_order(
        &mut self,
        cmd: PlaceOrder,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        let Some(account) = self.accounts.get(&cmd.user_id) else {
            return reject(RejectCode::AccountNotFound, "no account for this user");
        };
        let most = self.config.max_pending_orders;
        if account.orders.len() >= most {
            return reject(
                RejectCode::TooManyOrders,
                format!("an account has at most {most} pending orders: cancel one first"),
            );
        }
        let spec = self.config.assets.get(cmd.asset);
        check_leverage(spec, cmd.leverage.value())?;
        check_quantity(spec, cmd.quantity.value())?;
        let Some(quote) = self.quote(cmd.asset) else {
            return reject(
                RejectCode::NoPrice,
                format!("no price for {} yet", cmd.asset),
            );
        };
        check_order_price(spec, cmd.side, cmd.order_type, cmd.price, quote)?;
        let reference = (cmd.price.value(), "order price");
        check_levels(spec, cmd.side, reference, cmd.stop_loss, cmd.take_profit)?;
        check_expiry(cmd.expires_at, now)?;
        let order = Order {
            id: OrderId(self.next_order_id),
            user_id: cmd.user_id,
            asset: cmd.asset,
            side: cmd.side,
            order_type: cmd.order_type,
            price: cmd.price,
            quantity: cmd.quantity,
            leverage: cmd.leverage,
            stop_loss: cmd.stop_loss,
            take_profit: cmd.take_profit,
            expires_at: cmd.expires_at,
            created_at: now,
        };
        self.next_order_id += 1;
        self.insert_order(order.clone());
        events.push(Event::OrderPlaced {
            order: order.clone(),
        });
        Ok(Accepted::OrderPlaced { order })
    }

    /// The caller's pending order, or `order_not_found`.
    fn owned_order(&self, user_id: UserId, id: OrderId) -> Result<&Order, Rejection> {
        self.orders
            .get(&id)
            .filter(|o| o.user_id == user_id)
            .ok_or_else(|| {
                Rejection::new(
                    RejectCode::OrderNotFound,
                    format!("no pending order {id} for this user"),
                )
            })
    }

    pub(crate) fn cancel_order(
        &mut self,
        user_id: UserId,
        id: OrderId,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        self.owned_order(user_id, id)?;
        let order = self.remove_order(id);
        events.push(Event::OrderCancelled {
            order: order.clone(),
            reason: CancelReason::User,
            at: now,
        });
        Ok(Accepted::OrderCancelled { order })
    }

    pub(crate) fn modify_order(
        &mut self,
        cmd: ModifyOrder,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        let order = self.owned_order(cmd.user_id, cmd.order_id)?;
        let price = cmd.price.unwrap_or(order.price);
        let spec = self.config.assets.get(order.asset);
        let Some(quote) = self.quote(order.asset) else {
            return reject(
                RejectCode::NoPrice,
                format!("no price for {} yet", order.asset),
            );
        };
        check_order_price(spec, order.side, order.order_type, price, quote)?;
        let reference = (price.value(), "order price");
        check_levels(spec, order.side, reference, cmd.stop_loss, cmd.take_profit)?;
        check_expiry(cmd.expires_at, now)?;
        let mut order = self.remove_order(cmd.order_id);
        order.price = price;
        order.stop_loss = cmd.stop_loss;
        order.take_profit = cmd.take_profit;
        order.expires_at = cmd.expires_at;
        self.insert_order(order.clone());
        events.push(Event::OrderModified {
            order: order.clone(),
            at: now,
        });
        Ok(Accepted::OrderModified { order })
    }

    fn insert_order(&mut self, order: Order) {
        self.order_index.insert(&order);
        if let Some(account) = self.accounts.get_mut(&order.user_id) {
            account.orders.insert(order.id);
        }
        self.orders.insert(order.id, order);
    }

    /// Takes a pending order out of the book and its indexes.
    fn remove_order(&mut self, id: OrderId) -> Order {
        let order = self.orders.remove(&id).expect("caller checked the id");
        self.order_index.remove(&order);
        if let Some(account) = self.accounts.get_mut(&order.user_id) {
            account.orders.remove(&id);
        }
        order
    }

    /// Cancels (`expired`) every order whose `expires_at` is at or before `now`, earliest
    /// expiry first, into `events`.
    pub(crate) fn expire_orders(&mut self, now: TimestampMs, events: &mut Vec<Event>) {
        for id in self.order_index.expired(now) {
            events.push(Event::OrderCancelled {
                order: self.remove_order(id),
                reason: CancelReason::Expired,
                at: now,
            });
        }
    }

    /// Fills, in id order, the orders `tick` reaches (after the tick's closes and trailing
    /// moves): each opens a position as a market open would at the tick's price, or is
    /// cancelled `insufficient_margin` (or `too_many_positions` when its account is at the
    /// open-position limit). A position whose stop-loss or take-profit the fill
    /// already crossed (a gap past the order's levels) closes on the same tick.
    pub(crate) fn fill_orders(
        &mut self,
        tick: &PriceTick,
        keys: QuoteKeys,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) {
        let (bid, ask) = (tick.bid.value(), tick.ask.value());
        for id in self.order_index.candidates(tick.asset, keys) {
            if !fills_at(&self.orders[&id], bid, ask) {
                continue;
            }
            let order = self.remove_order(id);
            let fill = match order.side {
                Side::Buy => tick.ask,
                Side::Sell => tick.bid,
            };
            let open = OpenPosition {
                user_id: order.user_id,
                asset: order.asset,
                side: order.side,
                quantity: order.quantity,
                leverage: order.leverage,
                stop_loss: order.stop_loss,
                take_profit: order.take_profit,
                expected_price: None,
                max_slippage_bps: None,
                trailing_distance: None,
            };
            let opened = if self.at_position_limit(order.user_id) {
                Err(CancelReason::TooManyPositions)
            } else {
                self.open_at(&open, fill, tick, now)
                    .map_err(|_| CancelReason::InsufficientMargin)
            };
            let position = match opened {
                Ok(position) => position,
                Err(reason) => {
                    events.push(Event::OrderCancelled {
                        order,
                        reason,
                        at: now,
                    });
                    continue;
                }
            };
            let valued_at = close_side_price(position.side, tick);
            let crossed = trigger_reason(&position, valued_at.value());
            events.push(Event::OrderFilled {
                order,
                position: position.clone(),
            });
            if let Some(reason) = crossed {
                let closed = self.close(position.id, valued_at, reason, now);
                events.push(Event::PositionClosed { position: closed });
            }
        }
    }
}
