//! The liquidation rule with exact numbers (issue 8): a position is liquidated at or beyond
//! its exact level `open -/+ margin / quantity`; the shown price is that level rounded away
//! from the open price. Expected values computed independently with python3's decimal.

use crate::support;

use bus::{Asset, CloseReason, Query, QueryReply, Side};
use engine::math;
use rstest::rstest;
use support::*;

const ALICE: u128 = 1;

fn balance(w: &World) -> rust_decimal::Decimal {
    match w.engine.query(&Query::GetAccount {
        user_id: user(ALICE),
    }) {
        QueryReply::Account { account } => account.balance.value(),
        other => panic!("expected an account, got {other:?}"),
    }
}

/// The rule itself: at or beyond the exact level liquidates, one cent before it does not.
#[rstest]
#[case(Side::Buy, "3145.67", "3610.92", "11.479", "2831.11", false)] // above 2831.1025..
#[case(Side::Buy, "3145.67", "3610.92", "11.479", "2831.10", true)]
#[case(Side::Buy, "150.00", "0.05", "0.03", "148.34", false)] // above 148.3333..
#[case(Side::Buy, "150.00", "0.05", "0.03", "148.33", true)]
#[case(Side::Buy, "65000.50", "65.01", "0.01", "58499.50", true)] // exactly at the level
#[case(Side::Buy, "65000.50", "65.01", "0.01", "58499.51", false)]
#[case(Side::Sell, "150.00", "0.05", "0.03", "151.66", false)] // below 151.6666..
#[case(Side::Sell, "150.00", "0.05", "0.03", "151.67", true)]
#[case(Side::Sell, "65000.50", "65.01", "0.01", "71501.50", true)]
#[case(Side::Sell, "65000.50", "65.01", "0.01", "71501.49", false)]
#[case(Side::Buy, "150.00", "300.00", "2", "0.01", false)] // a 1x buy never is
fn a_position_is_liquidated_at_or_beyond_its_exact_level(
    #[case] side: Side,
    #[case] open: &str,
    #[case] margin: &str,
    #[case] q: &str,
    #[case] at: &str,
    #[case] liquidated: bool,
) {
    assert_eq!(
        math::is_liquidated(side, dec(open), dec(margin), dec(q), dec(at)),
        liquidated
    );
}

/// Issue 8: SOL 148.34/150.00, buy 0.03 at 100x: margin 0.05, exact level 148.3333.. is
/// below the bid, so it opens (rounding the level towards the open, 148.34, refused it).
#[test]
fn the_spread_check_uses_the_exact_level() {
    let mut w = World::new();
    w.account(user(ALICE));
    w.tick(Asset::Sol, "148.34", "150.00");
    let p = w.opened(open_cmd(user(ALICE), Asset::Sol, Side::Buy, "0.03", 100));
    assert_eq!(p.margin.value(), dec("0.05"));
    assert_eq!(p.liquidation_price, Some(price("148.33")));
    // A cent above the shown level nothing happens; the shown level itself liquidates.
    assert!(closes(&w.tick(Asset::Sol, "148.34", "150.00")).is_empty());
    let closed = closes(&w.tick(Asset::Sol, "148.33", "149.99"));
    assert_eq!(closed[0].close_reason, CloseReason::Liquidation);
    assert_eq!(closed[0].realized_pnl.value(), dec("-0.05"));
    assert_eq!(closed[0].absorbed_loss.value(), dec("0.00")); // market loss 0.0501 -> 0.05
}

/// Issue 8: ETH 3145.57/3145.67, buy 11.479 at 10x with stop-loss 3082.65: margin 3610.92,
/// exact level 2831.1025.. (shown 2831.10). The bid 2831.11 is above it: the stop-loss closes
/// the position at 2831.11 for the market loss -3610.83, not a liquidation for -3610.92.
#[test]
fn a_bid_above_the_exact_level_is_a_stop_not_a_liquidation() {
    let mut w = World::new();
    w.account(user(ALICE));
    w.tick(Asset::Eth, "3145.57", "3145.67");
    let mut cmd = open_cmd(user(ALICE), Asset::Eth, Side::Buy, "11.479", 10);
    cmd.stop_loss = Some(price("3082.65"));
    let p = w.opened(cmd);
    assert_eq!(p.margin.value(), dec("3610.92"));
    assert_eq!(p.liquidation_price, Some(price("2831.10")));
    let closed = closes(&w.tick(Asset::Eth, "2831.11", "2831.12"));
    assert_eq!(closed[0].close_reason, CloseReason::StopLoss);
    assert_eq!(closed[0].close_price, price("2831.11"));
    assert_eq!(closed[0].realized_pnl.value(), dec("-3610.83"));
    assert_eq!(balance(&w), dec("6389.17"));
}

/// The same position without a stop-loss: the shown level 2831.10 liquidates for exactly
/// -margin; the market loss there, 3610.95, exceeds it by the absorbed 0.03.
#[test]
fn the_shown_liquidation_price_liquidates() {
    let mut w = World::new();
    w.account(user(ALICE));
    w.tick(Asset::Eth, "3145.57", "3145.67");
    w.opened(open_cmd(user(ALICE), Asset::Eth, Side::Buy, "11.479", 10));
    assert!(closes(&w.tick(Asset::Eth, "2831.11", "2831.12")).is_empty());
    let closed = closes(&w.tick(Asset::Eth, "2831.10", "2831.11"));
    assert_eq!(closed[0].close_reason, CloseReason::Liquidation);
    assert_eq!(closed[0].realized_pnl.value(), dec("-3610.92"));
    assert_eq!(closed[0].absorbed_loss.value(), dec("0.03"));
}
