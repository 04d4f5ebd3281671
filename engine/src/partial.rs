//! Partial close: part of an open position is closed at the close-side price, the rest stays
//! open with the remaining margin (the rule is in [`crate::trading`]'s doc).

use bus::{
    Accepted, CloseReason, ClosedPosition, Event, PartialClose, Quantity, RejectCode, Rejection,
};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::checks::check_partial_quantity;
use crate::math;
use crate::trading::{Engine, close_side_price, money, price, reject};

/// The margin a partial close releases: `margin * closed / quantity`, half-even to the cent.
pub fn released_margin(margin: Decimal, closed: Decimal, quantity: Decimal) -> Decimal {
    (margin * closed / quantity)
        .round_dp_with_strategy(math::MONEY_DECIMALS, RoundingStrategy::MidpointNearestEven)
}

impl Engine {
    pub(crate) fn close_partially(
        &mut self,
        cmd: PartialClose,
        now: i64,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, Rejection> {
        let position = self.owned(cmd.user_id, cmd.position_id)?;
        let spec = self.config.assets.get(position.asset);
        let (closed_qty, held) = (cmd.quantity.value(), position.quantity.value());
        check_partial_quantity(spec, closed_qty, held)?;
        let Some(quote) = self.quote(position.asset) else {
            return reject(
                RejectCode::NoPrice,
                format!("no price for {} yet", position.asset),
            );
        };
        self.check_price_fresh(position.asset, now)?;
        let fill = close_side_price(position.side, quote);
        let decimals = spec.price_decimals;
        let mut remaining = *self
            .positions
            .remove(&cmd.position_id)
            .expect("position checked above");
        self.triggers.remove(&remaining);
        let open = remaining.open_price.value();
        let pnl = math::pnl(remaining.side, open, fill.value(), closed_qty);
        let margin = remaining.margin.value();
        let released = released_margin(margin, closed_qty, held);
        let mut part = remaining.clone();
        part.quantity = cmd.quantity;
        part.margin = money(released);

        let (left_qty, left_margin) = (held - closed_qty, margin - released);
        remaining.quantity = Quantity::new(left_qty).expect("checked: a partial close leaves some");
        remaining.margin = money(left_margin);
        remaining.liquidation_price =
            math::liquidation_price(remaining.side, open, left_margin, left_qty, decimals)
                .and_then(price);
        self.triggers.insert(&remaining);
        self.positions
            .insert(remaining.id, Box::new(remaining.clone()));
        let account = self
            .accounts
            .get_mut(&remaining.user_id)
            .expect("every position has an account");
        account.used_margin -= released;
        account.balance += pnl;
        account.realized_pnl += pnl;

        let closed = ClosedPosition {
            position: part,
            close_price: fill,
            realized_pnl: money(pnl),
            close_reason: CloseReason::Manual,
            closed_at: now,
            absorbed_loss: money(Decimal::ZERO),
        };
        events.push(Event::PositionPartiallyClosed {
            closed: closed.clone(),
            remaining: remaining.clone(),
            at: now,
        });
        Ok(Accepted::PositionPartiallyClosed { closed, remaining })
    }
}
