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

/// buy: `open - margin / quantity`; sell: `open + margin / quantity`, rounded to the asset's
/// price decimals towards the open price (so a position is liquidated no later than the point
/// where its loss equals its margin). `None` when the level is at or below zero: a buy at 1x
/// leverage cannot lose more than its margin.
pub fn liquidation_price(
    side: Side,
    open: Decimal,
    margin: Decimal,
    quantity: Decimal,
    price_decimals: u32,
) -> Option<Decimal> {
    let distance = margin / quantity;
    let level = match side {
        Side::Buy => (open - distance)
            .round_dp_with_strategy(price_decimals, RoundingStrategy::ToPositiveInfinity),
        Side::Sell => (open + distance)
            .round_dp_with_strategy(price_decimals, RoundingStrategy::ToNegativeInfinity),
    };
    (level > Decimal::ZERO).then_some(level)
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
