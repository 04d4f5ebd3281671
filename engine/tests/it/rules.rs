//! Table tests for every trading rule, with exact numbers (see `engine::trading`).

use crate::support;

use bus::{
    Accepted, AccountSummary, Asset, CloseReason, Command, Event, Fingerprint, Query, QueryReply,
    RejectCode, Reply, Side,
};
use engine::math;
use rstest::rstest;
use support::*;

const ALICE: u128 = 1;
const BOB: u128 = 2;

/// Alice has an account and BTC trades at 64999.50 / 65000.50.
fn btc_world() -> World {
    let mut w = World::new();
    w.account(user(ALICE));
    w.tick(Asset::Btc, "64999.50", "65000.50");
    w
}

fn summary(w: &World, n: u128) -> AccountSummary {
    match w.engine.query(&Query::GetAccount { user_id: user(n) }) {
        QueryReply::Account { account } => account,
        other => panic!("expected an account, got {other:?}"),
    }
}

// ---- arithmetic ----

#[rstest]
#[case("0.01", "65000.50", 10, "65.01")] // 65.0005 rounds up
#[case("0.0007", "65000.50", 3, "15.17")] // 15.1667.. rounds up
#[case("1", "3000.25", 100, "30.01")] // 30.0025 rounds up
#[case("0.0003", "65000.50", 7, "2.79")]
#[case("2", "150.00", 1, "300.00")] // exact stays exact
fn margin_is_rounded_up_to_the_cent(
    #[case] q: &str,
    #[case] p: &str,
    #[case] lev: u32,
    #[case] expected: &str,
) {
    assert_eq!(math::margin(dec(q), dec(p), lev), dec(expected));
}

// The liquidation rule itself and issue 8's examples: `tests/liquidation.rs`.
// Expected values computed independently with python3's decimal (60 digits):
// level = open -/+ margin / quantity, then quantize(0.01, ROUND_FLOOR / ROUND_CEILING).
#[rstest]
#[case(Side::Buy, "65000.50", "65.01", "0.01", Some("58499.50"))] // exact level on the grid
#[case(Side::Sell, "65000.50", "65.01", "0.01", Some("71501.50"))]
#[case(Side::Buy, "65000.50", "15.17", "0.0007", Some("43329.07"))] // 43329.0714.. down
#[case(Side::Sell, "64999.50", "15.17", "0.0007", Some("86670.93"))] // 86670.9285.. up
#[case(Side::Buy, "3000.25", "30.01", "1", Some("2970.24"))]
#[case(Side::Buy, "3145.67", "3610.92", "11.479", Some("2831.10"))] // 2831.102528.. (issue 8)
#[case(Side::Buy, "150.00", "0.05", "0.03", Some("148.33"))] // 148.3333.. (issue 8)
#[case(Side::Sell, "150.00", "0.05", "0.03", Some("151.67"))] // 151.6666..
#[case(Side::Buy, "150.00", "300.00", "2", None)] // 1x buy: level 0, cannot be liquidated
#[case(Side::Buy, "0.01", "0.02", "3", None)] // level 0.0033.. rounds down to 0: none
fn liquidation_price_rounds_away_from_the_open(
    #[case] side: Side,
    #[case] open: &str,
    #[case] margin: &str,
    #[case] q: &str,
    #[case] expected: Option<&str>,
) {
    assert_eq!(
        math::liquidation_price(side, dec(open), dec(margin), dec(q), 2),
        expected.map(dec)
    );
}

#[rstest]
#[case(Side::Buy, "3000.00", "3000.01", "0.5", "0.00")] // 0.005 -> even 0.00
#[case(Side::Buy, "3000.00", "3000.03", "0.5", "0.02")] // 0.015 -> even 0.02
#[case(Side::Buy, "3000.00", "3000.05", "0.5", "0.02")] // 0.025 -> even 0.02
#[case(Side::Sell, "3000.00", "2999.95", "0.5", "0.02")] // 0.025 -> even 0.02
#[case(Side::Sell, "3000.00", "3000.07", "0.5", "-0.04")] // -0.035 -> even -0.04
#[case(Side::Buy, "65000.50", "66000.00", "0.01", "10.00")] // 9.995 -> even 10.00
fn pnl_is_rounded_half_even(
    #[case] side: Side,
    #[case] open: &str,
    #[case] close: &str,
    #[case] q: &str,
    #[case] expected: &str,
) {
    let exact = match side {
        Side::Buy => (dec(close) - dec(open)) * dec(q),
        Side::Sell => (dec(open) - dec(close)) * dec(q),
    };
    let got = math::pnl(side, dec(open), dec(close), dec(q));
    // Cross-check against the rounding rule itself so a mistyped case cannot hide a bug.
    assert_eq!(
        got,
        exact.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointNearestEven)
    );
    assert_eq!(got, dec(expected));
}

#[rstest]
#[case("100.10", "100.00", 10, false)] // exactly 10 bps away: allowed
#[case("100.11", "100.00", 10, true)]
#[case("99.89", "100.00", 10, true)] // either direction counts
#[case("100.00", "100.00", 0, false)]
#[case("100.01", "100.00", 0, true)]
fn slippage_is_measured_in_basis_points_of_the_expected_price(
    #[case] fill: &str,
    #[case] expected: &str,
    #[case] bps: u32,
    #[case] exceeded: bool,
) {
    assert_eq!(
        math::slippage_exceeded(dec(fill), dec(expected), bps),
        exceeded
    );
}

// ---- accounts ----

#[test]
fn a_new_account_has_the_demo_balance_and_no_margin_level() {
    let mut w = World::new();
    w.account(user(ALICE));
    let s = summary(&w, ALICE);
    assert_eq!(s.balance.value(), dec("10000.00"));
    assert_eq!(s.equity.value(), dec("10000.00"));
    assert_eq!(s.free_margin.value(), dec("10000.00"));
    assert_eq!(s.used_margin.to_string(), "0.00", "money is shown in cents");
    assert_eq!(s.margin_level, None);
}

#[test]
fn creating_an_account_twice_is_refused() {
    let mut w = World::new();
    w.account(user(ALICE));
    let reply = w.command(Command::CreateAccount {
        user_id: user(ALICE),
    });
    assert_eq!(rejection_code(&reply), Some(RejectCode::AccountExists));
}

#[test]
fn equity_free_margin_and_margin_level_follow_the_bid() {
    let mut w = btc_world();
    w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    w.tick(Asset::Btc, "64000.00", "64001.00");
    let s = summary(&w, ALICE);
    assert_eq!(s.balance.value(), dec("10000.00"));
    assert_eq!(s.used_margin.value(), dec("65.01"));
    assert_eq!(s.unrealized_pnl.value(), dec("-10.00")); // (64000.00 - 65000.50) * 0.01
    assert_eq!(s.equity.value(), dec("9990.00"));
    assert_eq!(s.free_margin.value(), dec("9934.99")); // floating loss doesn't touch it
    assert_eq!(s.margin_level.map(|m| m.value()), Some(dec("15366.87")));
}

#[test]
fn floating_profit_never_funds_new_margin() {
    let mut config = engine::EngineConfig {
        initial_balance: dec("100.00"),
        ..Default::default()
    };
    config.assets.get_mut(Asset::Btc).max_leverage = 100;
    let mut w = World::with_config(config);
    w.account(user(ALICE));
    w.tick(Asset::Btc, "64999.50", "65000.50");
    w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.1", 100)); // margin 65.01
    w.tick(Asset::Btc, "70000.00", "70001.00"); // +500 floating
    let reply = w.open(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.1", 100)); // 70.01 > 34.99
    assert_eq!(rejection_code(&reply), Some(RejectCode::InsufficientMargin));
}

// ---- opening ----

#[test]
fn a_buy_fills_at_the_ask_and_a_sell_at_the_bid() {
    let mut w = btc_world();
    let buy = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    assert_eq!(buy.open_price, price("65000.50"));
    assert_eq!(buy.margin.value(), dec("65.01"));
    assert_eq!(buy.liquidation_price, Some(price("58499.50")));
    let sell = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Sell, "0.0007", 3));
    assert_eq!(sell.open_price, price("64999.50"));
    assert_eq!(sell.margin.value(), dec("15.17"));
    assert_eq!(sell.liquidation_price, Some(price("86670.93")));
    assert_eq!(summary(&w, ALICE).used_margin.value(), dec("80.18"));
}

#[test]
fn opening_emits_position_opened_with_the_same_position_as_the_reply() {
    let mut w = btc_world();
    let out = w.command_with_id(
        "open-1",
        Command::OpenPosition(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10)),
    );
    let Some(Reply::Accepted(Accepted::PositionOpened { position })) = out.reply else {
        panic!("not opened: {out:?}");
    };
    assert_eq!(out.events, vec![Event::PositionOpened { position }]);
}

#[rstest]
#[case::leverage_above_the_asset_maximum("0.01", 101, RejectCode::InvalidLeverage)]
#[case::quantity_off_the_step("0.00015", 10, RejectCode::InvalidQuantity)]
#[case::quantity_below_the_minimum("0.00001", 10, RejectCode::InvalidQuantity)]
#[case::quantity_above_the_maximum("100.0001", 10, RejectCode::InvalidQuantity)]
#[case::margin_above_free_margin("2", 10, RejectCode::InsufficientMargin)] // 13000.10 > 10000
fn invalid_opens_are_rejected_and_change_nothing(
    #[case] q: &str,
    #[case] lev: u32,
    #[case] code: RejectCode,
) {
    let mut w = btc_world();
    let out = w.command_with_id(
        "bad-open",
        Command::OpenPosition(open_cmd(user(ALICE), Asset::Btc, Side::Buy, q, lev)),
    );
    assert_eq!(out.reply.as_ref().and_then(rejection_code), Some(code));
    assert!(out.events.is_empty());
    assert_eq!(w.engine.open_positions(), 0);
    assert_eq!(summary(&w, ALICE).free_margin.value(), dec("10000.00"));
}

#[test]
fn a_margin_that_does_not_cover_the_spread_is_insufficient() {
    let mut w = World::new();
    w.account(user(ALICE));
    w.tick(Asset::Sol, "130.00", "131.72"); // a 1.72 spread
    // Buy 1.11 at 131.72 with 77x: margin 1.90, exact level 130.0082.., above the bid 130.00.
    let reply = w.open(open_cmd(user(ALICE), Asset::Sol, Side::Buy, "1.11", 77));
    assert_eq!(rejection_code(&reply), Some(RejectCode::InsufficientMargin));
    // At 50x the margin (2.93) covers the spread: level 129.0803.. (shown 129.08) is below.
    let p = w.opened(open_cmd(user(ALICE), Asset::Sol, Side::Buy, "1.11", 50));
    assert_eq!(p.liquidation_price, Some(price("129.08")));
}

#[test]
fn margin_exactly_equal_to_free_margin_is_allowed() {
    let config = engine::EngineConfig {
        initial_balance: dec("65.01"),
        ..Default::default()
    };
    let mut w = World::with_config(config);
    w.account(user(ALICE));
    w.tick(Asset::Btc, "64999.50", "65000.50");
    w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    assert_eq!(summary(&w, ALICE).free_margin.value(), dec("0.00"));
}

#[test]
fn no_price_yet_is_rejected() {
    let mut w = World::new();
    w.account(user(ALICE));
    let reply = w.open(open_cmd(user(ALICE), Asset::Eth, Side::Buy, "1", 10));
    assert_eq!(rejection_code(&reply), Some(RejectCode::NoPrice));
}

#[test]
fn an_unknown_account_is_rejected() {
    let mut w = btc_world();
    let reply = w.open(open_cmd(user(BOB), Asset::Btc, Side::Buy, "0.01", 10));
    assert_eq!(rejection_code(&reply), Some(RejectCode::AccountNotFound));
}

#[rstest]
#[case(Side::Buy, "65000.00", 0, true)] // ask 65000.50 vs expected 65000.00, 0 bps
#[case(Side::Buy, "65000.00", 1, false)] // 0.50 is 0.077 bps
#[case(Side::Sell, "65100.00", 10, true)] // bid 64999.50: 15.4 bps away
#[case(Side::Sell, "65000.00", 1, false)]
fn slippage_beyond_the_tolerance_is_rejected(
    #[case] side: Side,
    #[case] expected: &str,
    #[case] bps: u32,
    #[case] rejected: bool,
) {
    let mut w = btc_world();
    let mut cmd = open_cmd(user(ALICE), Asset::Btc, side, "0.01", 10);
    cmd.expected_price = Some(price(expected));
    cmd.max_slippage_bps = Some(bps);
    let code = rejection_code(&w.open(cmd));
    assert_eq!(code, rejected.then_some(RejectCode::SlippageExceeded));
}

#[rstest]
#[case(Side::Buy, Some("64999.50"), None, Some(RejectCode::InvalidStopLoss))] // not below the bid
#[case(Side::Buy, Some("64999.49"), None, None)]
#[case(Side::Buy, None, Some("64999.50"), Some(RejectCode::InvalidTakeProfit))] // not above the bid
#[case(Side::Buy, None, Some("64999.51"), None)]
#[case(Side::Sell, Some("65000.50"), None, Some(RejectCode::InvalidStopLoss))] // not above the ask
#[case(Side::Sell, Some("65000.51"), None, None)]
#[case(
    Side::Sell,
    None,
    Some("65000.50"),
    Some(RejectCode::InvalidTakeProfit)
)] // not below the ask
#[case(Side::Sell, None, Some("65000.49"), None)]
#[case(Side::Buy, Some("60000.001"), None, Some(RejectCode::InvalidStopLoss))] // too many decimals
fn stop_loss_and_take_profit_must_sit_on_the_right_side(
    #[case] side: Side,
    #[case] sl: Option<&str>,
    #[case] tp: Option<&str>,
    #[case] code: Option<RejectCode>,
) {
    let mut w = btc_world();
    let mut cmd = open_cmd(user(ALICE), Asset::Btc, side, "0.01", 10);
    cmd.stop_loss = sl.map(price);
    cmd.take_profit = tp.map(price);
    assert_eq!(rejection_code(&w.open(cmd)), code);
}

// ---- closing ----

#[rstest]
#[case(Side::Buy, "66000.00", "66001.00", "10.00")] // (66000.00 - 65000.50) * 0.01 = 9.995 -> 10.00
#[case(Side::Sell, "64000.00", "64000.50", "9.99")] // (64999.50 - 64000.50) * 0.01 = 9.99
#[case(Side::Buy, "64000.00", "64001.00", "-10.00")] // (64000.00 - 65000.50) * 0.01 = -10.005 -> -10.00
fn a_manual_close_settles_pnl_at_the_close_side_price(
    #[case] side: Side,
    #[case] bid: &str,
    #[case] ask: &str,
    #[case] expected_pnl: &str,
) {
    let mut w = btc_world();
    let p = w.opened(open_cmd(user(ALICE), Asset::Btc, side, "0.01", 10));
    w.tick(Asset::Btc, bid, ask);
    let closed = w.closed(user(ALICE), p.id);
    let fill = if side == Side::Buy { bid } else { ask };
    assert_eq!(closed.close_price, price(fill));
    assert_eq!(closed.close_reason, CloseReason::Manual);
    assert_eq!(closed.realized_pnl.value(), dec(expected_pnl));
    let s = summary(&w, ALICE);
    assert_eq!(s.balance.value(), dec("10000.00") + dec(expected_pnl));
    assert_eq!(s.used_margin.value(), dec("0"));
    assert_eq!(s.free_margin.value(), s.balance.value());
}

#[test]
fn only_the_owner_can_close_and_only_once() {
    let mut w = btc_world();
    w.account(user(BOB));
    let p = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    assert_eq!(
        rejection_code(&w.close(user(BOB), p.id)),
        Some(RejectCode::PositionNotFound)
    );
    w.closed(user(ALICE), p.id);
    assert_eq!(
        rejection_code(&w.close(user(ALICE), p.id)),
        Some(RejectCode::PositionNotFound)
    );
}

// ---- modify ----

#[test]
fn modify_replaces_and_clears_levels() {
    let mut w = btc_world();
    w.account(user(BOB));
    let p = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    let reply = w.modify(user(ALICE), p.id, Some("60000.00"), Some("70000.00"));
    let Reply::Accepted(Accepted::PositionModified { position }) = reply else {
        panic!("not modified: {reply:?}");
    };
    assert_eq!(position.stop_loss, Some(price("60000.00")));
    assert_eq!(position.take_profit, Some(price("70000.00")));
    assert_eq!(
        rejection_code(&w.modify(user(ALICE), p.id, Some("65000.00"), None)),
        Some(RejectCode::InvalidStopLoss)
    );
    assert_eq!(
        rejection_code(&w.modify(user(BOB), p.id, None, None)),
        Some(RejectCode::PositionNotFound)
    );
    assert!(matches!(
        w.modify(user(ALICE), p.id, None, None),
        Reply::Accepted(_)
    ));
    // Cleared: a tick far beyond the old levels closes nothing (liquidation is at 58499.50).
    assert!(closes(&w.tick(Asset::Btc, "59000.00", "59001.00")).is_empty());
    assert!(closes(&w.tick(Asset::Btc, "80000.00", "80001.00")).is_empty());
}

// ---- triggers ----

struct TriggerCase {
    side: Side,
    sl: Option<&'static str>,
    tp: Option<&'static str>,
    bid: &'static str,
    ask: &'static str,
    reason: Option<CloseReason>,
    fill: &'static str,
    pnl: &'static str,
}

#[rstest]
#[case::buy_stop_loss_at_the_level(TriggerCase { side: Side::Buy, sl: Some("64000.00"), tp: None, bid: "64000.00", ask: "64001.00", reason: Some(CloseReason::StopLoss), fill: "64000.00", pnl: "-10.00" })]
#[case::buy_stop_loss_gapped_fills_at_the_bid(TriggerCase { side: Side::Buy, sl: Some("64000.00"), tp: None, bid: "63000.00", ask: "63001.00", reason: Some(CloseReason::StopLoss), fill: "63000.00", pnl: "-20.00" })]
#[case::buy_stop_loss_not_reached(TriggerCase { side: Side::Buy, sl: Some("64000.00"), tp: None, bid: "64000.01", ask: "64000.02", reason: None, fill: "", pnl: "" })]
#[case::buy_take_profit(TriggerCase { side: Side::Buy, sl: None, tp: Some("66000.00"), bid: "66000.00", ask: "66001.00", reason: Some(CloseReason::TakeProfit), fill: "66000.00", pnl: "10.00" })]
#[case::buy_take_profit_ignores_the_ask(TriggerCase { side: Side::Buy, sl: None, tp: Some("66000.00"), bid: "65999.99", ask: "66100.00", reason: None, fill: "", pnl: "" })]
#[case::sell_stop_loss(TriggerCase { side: Side::Sell, sl: Some("66000.00"), tp: None, bid: "65999.00", ask: "66000.00", reason: Some(CloseReason::StopLoss), fill: "66000.00", pnl: "-10.00" })]
#[case::sell_take_profit_fills_at_the_ask(TriggerCase { side: Side::Sell, sl: None, tp: Some("64000.00"), bid: "63900.00", ask: "63950.00", reason: Some(CloseReason::TakeProfit), fill: "63950.00", pnl: "10.50" })]
#[case::sell_take_profit_ignores_the_bid(TriggerCase { side: Side::Sell, sl: None, tp: Some("64000.00"), bid: "63000.00", ask: "64000.01", reason: None, fill: "", pnl: "" })]
#[case::buy_liquidation(TriggerCase { side: Side::Buy, sl: None, tp: None, bid: "58499.50", ask: "58500.50", reason: Some(CloseReason::Liquidation), fill: "58499.50", pnl: "-65.01" })]
#[case::buy_just_above_liquidation(TriggerCase { side: Side::Buy, sl: None, tp: None, bid: "58499.51", ask: "58500.50", reason: None, fill: "", pnl: "" })]
#[case::sell_liquidation(TriggerCase { side: Side::Sell, sl: None, tp: None, bid: "71499.00", ask: "71499.50", reason: Some(CloseReason::Liquidation), fill: "71499.50", pnl: "-65.00" })]
#[case::liquidation_wins_over_stop_loss(TriggerCase { side: Side::Buy, sl: Some("60000.00"), tp: None, bid: "50000.00", ask: "50001.00", reason: Some(CloseReason::Liquidation), fill: "50000.00", pnl: "-65.01" })]
fn ticks_trigger_stops_targets_and_liquidations(#[case] c: TriggerCase) {
    let mut w = btc_world();
    let mut cmd = open_cmd(user(ALICE), Asset::Btc, c.side, "0.01", 10);
    cmd.stop_loss = c.sl.map(price);
    cmd.take_profit = c.tp.map(price);
    let p = w.opened(cmd);
    // A sell opens at the bid 64999.50, margin 65.00: liquidation at 71499.50.
    let events = w.tick(Asset::Btc, c.bid, c.ask);
    let closed = closes(&events);
    match c.reason {
        None => {
            assert!(closed.is_empty(), "{closed:?}");
            assert_eq!(w.engine.open_positions(), 1);
        }
        Some(reason) => {
            assert_eq!(closed.len(), 1, "{events:?}");
            let cp = &closed[0];
            assert_eq!(cp.position.id, p.id);
            assert_eq!(cp.close_reason, reason);
            assert_eq!(cp.close_price, price(c.fill));
            assert_eq!(cp.realized_pnl.value(), dec(c.pnl));
            assert_eq!(w.engine.open_positions(), 0);
            let (deposit, realized) = w.engine.ledger(user(ALICE)).expect("account");
            assert_eq!(realized, dec(c.pnl));
            assert_eq!(summary(&w, ALICE).balance.value(), deposit + dec(c.pnl));
        }
    }
}

#[test]
fn a_liquidation_realises_exactly_minus_the_margin_and_records_the_absorbed_loss() {
    let mut w = btc_world();
    let p = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    let closed = closes(&w.tick(Asset::Btc, "50000.00", "50001.00"));
    assert_eq!(closed[0].position.id, p.id);
    assert_eq!(closed[0].realized_pnl.value(), dec("-65.01"));
    // Market loss (65000.50 - 50000.00) * 0.01 = 150.005 -> 150.00 (half-even); 84.99 absorbed.
    assert_eq!(closed[0].absorbed_loss.value(), dec("84.99"));
    assert_eq!(summary(&w, ALICE).balance.value(), dec("9934.99"));
}

#[test]
fn a_tick_closes_every_triggered_position_in_id_order_and_leaves_the_rest() {
    let mut w = btc_world();
    w.account(user(BOB));
    let a = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 100)); // margin 6.51, liq 64349.50
    let mut with_tp = open_cmd(user(BOB), Asset::Btc, Side::Sell, "0.01", 10);
    with_tp.take_profit = Some(price("64000.00"));
    let b = w.opened(with_tp);
    let c = w.opened(open_cmd(user(BOB), Asset::Btc, Side::Buy, "0.01", 2));
    let eth = {
        w.tick(Asset::Eth, "3000.00", "3000.50");
        w.opened(open_cmd(user(ALICE), Asset::Eth, Side::Buy, "1", 100)) // margin 30.01, liq 2970.49
    };
    let closed = closes(&w.tick(Asset::Btc, "63900.00", "63950.00"));
    let ids: Vec<_> = closed.iter().map(|c| c.position.id).collect();
    assert_eq!(ids, vec![a.id, b.id]);
    assert_eq!(closed[0].close_reason, CloseReason::Liquidation);
    assert_eq!(closed[1].close_reason, CloseReason::TakeProfit);
    let open: Vec<_> = w.engine.positions().map(|p| p.id).collect();
    assert_eq!(open, vec![c.id, eth.id]);
}

#[test]
fn a_crossed_tick_is_ignored() {
    let mut w = btc_world();
    let events = w.tick(Asset::Btc, "65001.00", "65000.00");
    assert!(events.is_empty());
    let QueryReply::Prices { quotes } = w.engine.query(&Query::GetPrices) else {
        panic!("prices");
    };
    assert_eq!(quotes[0].bid, price("64999.50"));
}

// ---- idempotency ----

#[test]
fn replaying_a_command_id_changes_nothing_and_returns_the_first_reply() {
    let mut w = btc_world();
    let cmd = Command::OpenPosition(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    let first = w.command_with_id("same-id", cmd.clone());
    let state = w.engine.snapshot();
    w.tick(Asset::Btc, "64000.00", "64001.00"); // prices move; the retry must not refill
    let state_after_tick = w.engine.snapshot();
    let second = w.command_with_id("same-id", cmd);
    assert_eq!(second.reply, first.reply);
    assert!(second.events.is_empty());
    assert_eq!(w.engine.snapshot(), state_after_tick);
    assert_ne!(state, state_after_tick);
    assert_eq!(w.engine.open_positions(), 1);
}

#[test]
fn a_command_id_reused_for_a_different_command_is_refused() {
    let mut w = btc_world();
    let buy = Command::OpenPosition(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    let sell = Command::OpenPosition(open_cmd(user(ALICE), Asset::Btc, Side::Sell, "0.01", 10));
    w.command_with_id("k1", buy);
    let out = w.command_with_id("k1", sell);
    assert_eq!(
        out.reply.as_ref().and_then(rejection_code),
        Some(RejectCode::CommandIdReused)
    );
    assert_eq!(w.engine.open_positions(), 1);
}

#[test]
fn a_rejected_command_is_remembered_too() {
    let mut w = World::new();
    w.account(user(ALICE));
    let cmd = Command::OpenPosition(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    let first = w.command_with_id("early", cmd.clone());
    assert_eq!(
        first.reply.as_ref().and_then(rejection_code),
        Some(RejectCode::NoPrice)
    );
    w.tick(Asset::Btc, "64999.50", "65000.50");
    assert_eq!(w.command_with_id("early", cmd).reply, first.reply);
    assert_eq!(w.engine.open_positions(), 0);
}

#[test]
fn the_idempotency_window_is_bounded_per_user() {
    let config = engine::EngineConfig {
        idempotency_window: 2,
        ..Default::default()
    };
    let mut w = World::with_config(config);
    let create = |n| Command::CreateAccount { user_id: user(n) };
    let first = w.command_with_id("a", create(1)).reply;
    w.command_with_id("b", create(1));
    // Other users' commands never evict user 1's ids.
    for n in 0..10 {
        w.command_with_id(&format!("other-{n}"), create(2 + n));
    }
    assert_eq!(w.command_with_id("a", create(1)).reply, first);
    w.command_with_id("c", create(1));
    // Past user 1's newest two, "a" is forgotten: the same command is applied afresh (and
    // refused as a duplicate account by the rules, not by the window).
    let again = w.command_with_id("a", create(1));
    assert_eq!(
        again.reply.as_ref().and_then(rejection_code),
        Some(RejectCode::AccountExists)
    );
    let QueryReply::CommandReply { reply } = w.engine.query(&Query::GetCommandReply {
        command_id: bus::CommandId::new("other-0").expect("id"),
        fingerprint: Fingerprint::of(&create(2)),
        logged_seq: None,
    }) else {
        panic!("command reply");
    };
    assert!(matches!(reply, Some(Reply::Accepted(_))));
}

/// An id is remembered for the ttl of log time (whatever else happens), then forgotten.
#[test]
fn an_id_is_remembered_for_the_ttl() {
    let mut w = btc_world();
    let ttl = w.engine.config().idempotency_ttl_ms;
    let open = Command::OpenPosition(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    let first = w.command_with_id("k", open.clone()).reply;
    // Each input is 1 ms after the previous: the retry comes 1 ms before the ttl is up ...
    w.now += ttl - 3;
    w.tick(Asset::Btc, "64999.50", "65000.50");
    assert_eq!(w.command_with_id("k", open.clone()).reply, first);
    assert_eq!(w.engine.open_positions(), 1);
    // ... and this one as it is up.
    let again = w.command_with_id("k", open).reply;
    assert_ne!(again, first, "forgotten after the ttl: a new command");
    assert_eq!(w.engine.open_positions(), 2);
}

/// The service's answer to a duplicate's lookup: `command_id_expired` once the engine has
/// applied the logged command and does not remember it; none while it has not applied it.
#[test]
fn a_forgotten_duplicate_is_answered_expired() {
    let w = btc_world();
    let lookup = |seq| Query::GetCommandReply {
        command_id: bus::CommandId::new("gone").expect("id"),
        fingerprint: Fingerprint::of(&Command::CreateAccount { user_id: user(9) }),
        logged_seq: seq,
    };
    let answer = |q: &Query, applied| match w.engine.answer(q, applied) {
        QueryReply::CommandReply { reply } => reply,
        other => panic!("{other:?}"),
    };
    assert_eq!(answer(&lookup(Some(10)), 9), None, "not applied yet");
    assert_eq!(answer(&lookup(None), 10), None, "an older caller");
    let expired = answer(&lookup(Some(10)), 10).expect("an answer");
    assert_eq!(rejection_code(&expired), Some(RejectCode::CommandIdExpired));
}

/// The duplicate path's lookup names the command: the reply to that command, the reused-id
/// refusal for another command under the same id (never the other command's reply), nothing
/// for an id not applied.
#[rstest]
#[case::the_same_command("k1", "0.01", Some(None))]
#[case::another_command_under_the_id("k1", "0.02", Some(Some(RejectCode::CommandIdReused)))]
#[case::an_id_not_applied("k2", "0.01", None)]
fn the_reply_lookup_checks_the_fingerprint(
    #[case] id: &str,
    #[case] quantity: &str,
    #[case] expected: Option<Option<RejectCode>>,
) {
    let mut w = btc_world();
    let open = |q| Command::OpenPosition(open_cmd(user(ALICE), Asset::Btc, Side::Buy, q, 10));
    let first = w.command_with_id("k1", open("0.01")).reply;
    let QueryReply::CommandReply { reply } = w.engine.query(&Query::GetCommandReply {
        command_id: bus::CommandId::new(id).expect("id"),
        fingerprint: Fingerprint::of(&open(quantity)),
        logged_seq: None,
    }) else {
        panic!("command reply");
    };
    assert_eq!(reply.as_ref().map(rejection_code), expected);
    if expected == Some(None) {
        assert_eq!(reply, first);
    }
}

// ---- queries ----

#[test]
fn open_positions_are_listed_with_their_floating_pnl() {
    let mut w = btc_world();
    w.account(user(BOB));
    let p = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Sell, "0.01", 10));
    w.opened(open_cmd(user(BOB), Asset::Btc, Side::Buy, "0.01", 10));
    w.tick(Asset::Btc, "64000.00", "64000.50");
    let QueryReply::OpenPositions { positions, next } = w.engine.query(&Query::ListOpenPositions {
        user_id: user(ALICE),
        page: bus::Page::default(),
    }) else {
        panic!("positions");
    };
    assert_eq!((positions.len(), next), (1, None), "only Alice's own");
    assert_eq!(positions[0].position.id, p.id);
    assert_eq!(positions[0].current_price, Some(price("64000.50")));
    assert_eq!(positions[0].unrealized_pnl.value(), dec("9.99"));
}
