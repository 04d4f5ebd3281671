//! Input checks shared by market opens, pending orders and partial closes: leverage,
//! quantity, price decimals and stop-loss/take-profit sides.

use bus::{Price, RejectCode, Rejection, Side};
use rust_decimal::Decimal;

use crate::config::AssetSpec;

pub(crate) fn check_leverage(spec: &AssetSpec, leverage: u32) -> Result<(), Rejection> {
    if (1..=spec.max_leverage).contains(&leverage) {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectCode::InvalidLeverage,
            format!(
                "leverage must be a whole number from 1 to {}",
                spec.max_leverage
            ),
        ))
    }
}

fn on_step(spec: &AssetSpec, quantity: Decimal) -> bool {
    (quantity % spec.quantity_step).is_zero()
}

pub(crate) fn check_quantity(spec: &AssetSpec, quantity: Decimal) -> Result<(), Rejection> {
    if on_step(spec, quantity) && quantity >= spec.min_quantity && quantity <= spec.max_quantity {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectCode::InvalidQuantity,
            format!(
                "quantity must be a multiple of {} from {} to {}",
                spec.quantity_step, spec.min_quantity, spec.max_quantity
            ),
        ))
    }
}

/// A partial close's quantity: a multiple of the step, less than the position's `held`
/// quantity, and leaving at least the asset's minimum open.
pub(crate) fn check_partial_quantity(
    spec: &AssetSpec,
    closed: Decimal,
    held: Decimal,
) -> Result<(), Rejection> {
    if on_step(spec, closed) && closed < held && held - closed >= spec.min_quantity {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectCode::InvalidQuantity,
            format!(
                "a partial close must be a multiple of {} below {held}, leaving at least {} open",
                spec.quantity_step, spec.min_quantity
            ),
        ))
    }
}

/// Whether a price or distance has at most the asset's price decimals.
pub(crate) fn has_price_decimals(spec: &AssetSpec, p: Price) -> bool {
    p.value().normalize().scale() <= spec.price_decimals
}

/// Stop-loss and take-profit must sit on the losing and winning side of `reference` (the
/// current close-side price for a position, the order price for a pending order), with at
/// most the asset's price decimals. `what` names the reference in the message.
pub(crate) fn check_levels(
    spec: &AssetSpec,
    side: Side,
    reference: (Decimal, &str),
    stop_loss: Option<Price>,
    take_profit: Option<Price>,
) -> Result<(), Rejection> {
    let (current, what) = reference;
    if let Some(sl) = stop_loss {
        let ok = match side {
            Side::Buy => sl.value() < current,
            Side::Sell => sl.value() > current,
        };
        if !ok || !has_price_decimals(spec, sl) {
            let rel = if side == Side::Buy { "below" } else { "above" };
            return Err(Rejection::new(
                RejectCode::InvalidStopLoss,
                format!(
                    "a {side:?} stop-loss must be {rel} the {what} ({current}) with at most {} decimals",
                    spec.price_decimals
                )
                .to_lowercase(),
            ));
        }
    }
    if let Some(tp) = take_profit {
        let ok = match side {
            Side::Buy => tp.value() > current,
            Side::Sell => tp.value() < current,
        };
        if !ok || !has_price_decimals(spec, tp) {
            let rel = if side == Side::Buy { "above" } else { "below" };
            return Err(Rejection::new(
                RejectCode::InvalidTakeProfit,
                format!(
                    "a {side:?} take-profit must be {rel} the {what} ({current}) with at most {} decimals",
                    spec.price_decimals
                )
                .to_lowercase(),
            ));
        }
    }
    Ok(())
}
