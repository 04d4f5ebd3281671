//! Market positions: open (and the shared end of an order fill), close, and modify with the
//! trailing stop (the rules are in [`crate::trading`]'s doc).

use bus::{
    Accepted, CloseReason, Event, ModifyPosition, OpenPosition, Position, PositionId, Price,
    PriceTick, RejectCode, Rejection, Side, TimestampMs, UserId,
};
use rust_decimal::Decimal;

use crate::checks::{check_levels, check_leverage, check_quantity, has_price_decimals};
use crate::config::AssetSpec;
use crate::math;
use crate::trading::{Engine, close_side_price, money, price, reject};
use crate::trailing::trailed_stop;

impl Engine {
    pub(crate) fn open(
        &mut self,
        cmd: OpenPosition,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        if !self.accounts.contains_key(&cmd.user_id) {
            return reject(RejectCode::AccountNotFound, "no account for this user");
        }
        if self.at_position_limit(cmd.user_id) {
            let most = self.config.max_open_positions;
            return reject(
                RejectCode::TooManyPositions,
                format!("an account has at most {most} open positions: close one first"),
            );
        }
        let spec = self.config.assets.get(cmd.asset);
        check_leverage(spec, cmd.leverage.value())?;
        check_quantity(spec, cmd.quantity.value())?;
        let Some(quote) = self.quote(cmd.asset).cloned() else {
            return reject(
                RejectCode::NoPrice,
                format!("no price for {} yet", cmd.asset),
            );
        };
        self.check_price_fresh(cmd.asset, now)?;
        let fill = match cmd.side {
            Side::Buy => quote.ask,
            Side::Sell => quote.bid,
        };
        if let Some(expected) = cmd.expected_price {
            let bps = cmd.max_slippage_bps.unwrap_or(0);
            if math::slippage_exceeded(fill.value(), expected.value(), bps) {
                return reject(
                    RejectCode::SlippageExceeded,
                    format!("fill {fill} is more than {bps} bps from the expected {expected}"),
                );
            }
        }
        check_levels(
            spec,
            cmd.side,
            close_side_reference(cmd.side, &quote),
            cmd.stop_loss,
            cmd.take_profit,
        )?;
        check_trailing(spec, cmd.trailing_distance)?;
        let (stop_loss, trailed) =
            trailed_stop(cmd.side, &quote, cmd.stop_loss, cmd.trailing_distance);
        let position = self.open_at(&OpenPosition { stop_loss, ..cmd }, fill, &quote, now)?;
        if trailed {
            self.trailed.insert(position.id);
        }
        events.push(Event::PositionOpened {
            position: position.clone(),
        });
        Ok(Accepted::PositionOpened { position })
    }

    /// The shared end of a market open and an order fill: the margin at `fill` must fit the
    /// free margin and cover the spread (`insufficient_margin`); then the position is numbered,
    /// booked and indexed. Everything else is checked by the caller.
    pub(crate) fn open_at(
        &mut self,
        cmd: &OpenPosition,
        fill: Price,
        quote: &PriceTick,
        now: TimestampMs,
    ) -> Result<Position, Rejection> {
        let spec = self.config.assets.get(cmd.asset);
        let Some(account) = self.accounts.get(&cmd.user_id) else {
            return reject(RejectCode::AccountNotFound, "no account for this user");
        };
        let quantity = cmd.quantity.value();
        let margin = math::margin(quantity, fill.value(), cmd.leverage.value());
        let free = account.balance - account.used_margin;
        if margin > free {
            return reject(
                RejectCode::InsufficientMargin,
                format!("margin {margin} exceeds free margin {free}"),
            );
        }
        let liquidation = math::liquidation_price(
            cmd.side,
            fill.value(),
            margin,
            quantity,
            spec.price_decimals,
        );
        let valued_at = close_side_price(cmd.side, quote).value();
        let born_liquidated = liquidation.is_some()
            && math::is_liquidated(cmd.side, fill.value(), margin, quantity, valued_at);
        if born_liquidated {
            return reject(
                RejectCode::InsufficientMargin,
                format!(
                    "margin {margin} does not cover the spread: the position would be liquidated at once"
                ),
            );
        }
        let id = PositionId(self.next_position_id);
        self.next_position_id += 1;
        let position = Position {
            id,
            user_id: cmd.user_id,
            asset: cmd.asset,
            side: cmd.side,
            quantity: cmd.quantity,
            leverage: cmd.leverage,
            open_price: fill,
            margin: money(margin),
            liquidation_price: liquidation.and_then(price),
            stop_loss: cmd.stop_loss,
            take_profit: cmd.take_profit,
            opened_at: now,
            trailing_distance: cmd.trailing_distance,
        };
        let account = self
            .accounts
            .get_mut(&cmd.user_id)
            .expect("account checked above");
        account.used_margin += margin;
        account.open.insert(id);
        self.triggers.insert(&position);
        self.trails.insert(&position);
        self.positions.insert(id, Box::new(position.clone()));
        Ok(position)
    }

    /// The caller's open position, or `position_not_found`.
    pub(crate) fn owned(&self, user_id: UserId, id: PositionId) -> Result<&Position, Rejection> {
        self.positions
            .get(&id)
            .map(|p| &**p)
            .filter(|p| p.user_id == user_id)
            .ok_or_else(|| {
                Rejection::new(
                    RejectCode::PositionNotFound,
                    format!("no open position {id} for this user"),
                )
            })
    }

    pub(crate) fn close_manually(
        &mut self,
        user_id: UserId,
        id: PositionId,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        let position = self.owned(user_id, id)?;
        let Some(quote) = self.quote(position.asset) else {
            return reject(
                RejectCode::NoPrice,
                format!("no price for {} yet", position.asset),
            );
        };
        self.check_price_fresh(position.asset, now)?;
        let fill = close_side_price(position.side, quote);
        let closed = self.close(id, fill, CloseReason::Manual, now);
        events.push(Event::PositionClosed {
            position: closed.clone(),
        });
        Ok(Accepted::PositionClosed { position: closed })
    }

    pub(crate) fn modify(
        &mut self,
        cmd: ModifyPosition,
        now: TimestampMs,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        let position = self.owned(cmd.user_id, cmd.position_id)?;
        let (mut stop_loss, mut trailed) = (cmd.stop_loss, false);
        let changes_levels =
            cmd.stop_loss.is_some() || cmd.take_profit.is_some() || cmd.trailing_distance.is_some();
        if changes_levels {
            let Some(quote) = self.quote(position.asset) else {
                return reject(
                    RejectCode::NoPrice,
                    format!("no price for {} yet", position.asset),
                );
            };
            let spec = self.config.assets.get(position.asset);
            let reference = close_side_reference(position.side, quote);
            check_levels(
                spec,
                position.side,
                reference,
                cmd.stop_loss,
                cmd.take_profit,
            )?;
            check_trailing(spec, cmd.trailing_distance)?;
            (stop_loss, trailed) =
                trailed_stop(position.side, quote, cmd.stop_loss, cmd.trailing_distance);
        }
        let mut position = *self
            .positions
            .remove(&cmd.position_id)
            .expect("position checked above");
        self.triggers.remove(&position);
        self.trails.remove(&position);
        position.stop_loss = stop_loss;
        position.take_profit = cmd.take_profit;
        position.trailing_distance = cmd.trailing_distance;
        self.triggers.insert(&position);
        self.trails.insert(&position);
        if trailed {
            self.trailed.insert(position.id);
        } else {
            self.trailed.remove(&position.id);
        }
        self.positions
            .insert(position.id, Box::new(position.clone()));
        events.push(Event::PositionModified {
            position: position.clone(),
            at: now,
        });
        Ok(Accepted::PositionModified { position })
    }
}

/// The close-side price with its name, as the reference of a position's levels.
fn close_side_reference(side: Side, quote: &PriceTick) -> (Decimal, &'static str) {
    match side {
        Side::Buy => (quote.bid.value(), "bid"),
        Side::Sell => (quote.ask.value(), "ask"),
    }
}

/// A trailing distance has at most the asset's price decimals.
fn check_trailing(spec: &AssetSpec, distance: Option<Price>) -> Result<(), Rejection> {
    match distance {
        Some(d) if !has_price_decimals(spec, d) => reject(
            RejectCode::InvalidTrailingDistance,
            format!(
                "a trailing distance has at most {} decimals",
                spec.price_decimals
            ),
        ),
        _ => Ok(()),
    }
}
