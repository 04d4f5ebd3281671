//! The money arithmetic of the trading rules, as small pure functions (table-tested).

use bus::Side;
use rust_decimal::{Decimal, RoundingStrategy};

/// Cents: every amount of money is kept to two decimals.
pub const MONEY_DECIMALS: u32 = 2;

/// `quantity * price / leverage`, rounded up to the cent.
pub fn margin(quantity: Decimal, price: Decimal, leverage: u32) -> Decimal {
    (quantity * price / Decimal::from(leverage))
        .round_dp_with_strategy(MONEY_DECIMALS, RoundingStrategy::ToPositiveInfinity)
}

/// The exact level at which a position's market loss equals its margin: buy
/// `open - margin / quantity`, sell `open + margin / quantity`, unrounded (28 significant
/// digits; [`is_liquidated`] decides the rule itself without dividing).
pub fn liquidation_level(side: Side, open: Decimal, margin: Decimal, quantity: Decimal) -> Decimal {
    let distance = margin / quantity;
    match side {
        Side::Buy => open - distance,
        Side::Sell => open + distance,
    }
}

/// The liquidation price shown for a position: [`liquidation_level`] rounded to the asset's
/// price decimals *away* from the open price (down for a buy, up for a sell), so every price
/// on the grid at or beyond it liquidates and none before it does. `None` when that is at or
/// below zero: such a buy (e.g. at 1x leverage) cannot lose more than its margin.
pub fn liquidation_price(
    side: Side,
    open: Decimal,
    margin: Decimal,
    quantity: Decimal,
    price_decimals: u32,
) -> Option<Decimal> {
    let level = liquidation_level(side, open, margin, quantity);
    let away = match side {
        Side::Buy => RoundingStrategy::ToNegativeInfinity,
        Side::Sell => RoundingStrategy::ToPositiveInfinity,
    };
    let shown = level.round_dp_with_strategy(price_decimals, away);
    (shown > Decimal::ZERO).then_some(shown)
}

/// Whether a position valued at `price` (its close-side price) is at or beyond its exact
/// liquidation level, i.e. its unrounded market loss at `price` is at least its margin:
/// `(open - price) * quantity >= margin` for a buy, `(price - open) * quantity >= margin` for
/// a sell. Multiplying instead of dividing keeps the comparison exact.
pub fn is_liquidated(
    side: Side,
    open: Decimal,
    margin: Decimal,
    quantity: Decimal,
    price: Decimal,
) -> bool {
    let loss_per_unit = match side {
        Side::Buy => open - price,
        Side::Sell => price - open,
    };
    // An overflowing product is a loss beyond any margin (or a gain beyond any loss).
    loss_per_unit
        .checked_mul(quantity)
        .map_or(loss_per_unit > Decimal::ZERO, |loss| loss >= margin)
}

/// buy: `(close - open) * quantity`; sell: `(open - close) * quantity`; half-even to the cent.
pub fn pnl(side: Side, open: Decimal, close: Decimal, quantity: Decimal) -> Decimal {
    let per_unit = match side {
        Side::Buy => close - open,
        Side::Sell => open - close,
    };
    (per_unit * quantity)
        .round_dp_with_strategy(MONEY_DECIMALS, RoundingStrategy::MidpointNearestEven)
}

/// Whether `fill` is further than `max_bps` basis points from `expected`.
pub fn slippage_exceeded(fill: Decimal, expected: Decimal, max_bps: u32) -> bool {
    (fill - expected).abs() * Decimal::from(10_000) > expected * Decimal::from(max_bps)
}

/// `equity / used_margin * 100` to the cent; none without used margin.
pub fn margin_level(equity: Decimal, used_margin: Decimal) -> Option<Decimal> {
    (!used_margin.is_zero()).then(|| {
        (equity / used_margin * Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(MONEY_DECIMALS, RoundingStrategy::MidpointNearestEven)
    })
}
