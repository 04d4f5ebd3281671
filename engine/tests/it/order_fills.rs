//! Pending orders on ticks, with exact numbers (see `engine::trading`): trigger edges at
//! exactly the price and gaps past it, fills as market opens, cancellation by margin, the
//! order of work within a tick, and expiry at exactly `expiresAt` from the log's time.

use crate::support;

use bus::{
    Accepted, Asset, CancelReason, CloseReason, Command, Event, OrderId, OrderType, Reply, Side,
};
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

fn order(side: Side, order_type: OrderType, at: &str, q: &str) -> bus::PlaceOrder {
    place_cmd(user(ALICE), Asset::Btc, side, order_type, at, q, 10)
}

/// 0.01 BTC at 10x: the margin is fill / 1000, the liquidation level 10% from the fill.
#[rstest]
#[case::buy_limit_at_the_price(Side::Buy, OrderType::Limit, "64000.00", ("63999.00", "64000.00"), Some(("64000.00", "64.00", "57600.00")))]
#[case::buy_limit_a_cent_short(Side::Buy, OrderType::Limit, "64000.00", ("63999.01", "64000.01"), None)]
#[case::buy_limit_gapped(Side::Buy, OrderType::Limit, "64000.00", ("62999.00", "63000.00"), Some(("63000.00", "63.00", "56700.00")))]
#[case::buy_limit_ignores_the_bid(Side::Buy, OrderType::Limit, "64000.00", ("63000.00", "64000.01"), None)]
#[case::buy_stop_at_the_price(Side::Buy, OrderType::Stop, "66000.00", ("65999.00", "66000.00"), Some(("66000.00", "66.00", "59400.00")))]
#[case::buy_stop_a_cent_short(Side::Buy, OrderType::Stop, "66000.00", ("65998.99", "65999.99"), None)]
#[case::buy_stop_gapped(Side::Buy, OrderType::Stop, "66000.00", ("66999.00", "67000.00"), Some(("67000.00", "67.00", "60300.00")))]
#[case::sell_limit_at_the_price(Side::Sell, OrderType::Limit, "66000.00", ("66000.00", "66001.00"), Some(("66000.00", "66.00", "72600.00")))]
#[case::sell_limit_a_cent_short(Side::Sell, OrderType::Limit, "66000.00", ("65999.99", "66000.99"), None)]
#[case::sell_limit_gapped(Side::Sell, OrderType::Limit, "66000.00", ("67000.00", "67001.00"), Some(("67000.00", "67.00", "73700.00")))]
#[case::sell_limit_ignores_the_ask(Side::Sell, OrderType::Limit, "66000.00", ("65999.99", "66100.00"), None)]
#[case::sell_stop_at_the_price(Side::Sell, OrderType::Stop, "64000.00", ("64000.00", "64001.00"), Some(("64000.00", "64.00", "70400.00")))]
#[case::sell_stop_a_cent_short(Side::Sell, OrderType::Stop, "64000.00", ("64000.01", "64001.01"), None)]
#[case::sell_stop_gapped(Side::Sell, OrderType::Stop, "64000.00", ("63000.00", "63001.00"), Some(("63000.00", "63.00", "69300.00")))]
fn orders_fill_at_the_ticks_price_when_it_reaches_theirs(
    #[case] side: Side,
    #[case] order_type: OrderType,
    #[case] at: &str,
    #[case] quote: (&str, &str),
    #[case] filled: Option<(&str, &str, &str)>,
) {
    let mut w = btc_world();
    let placed = w.placed(order(side, order_type, at, "0.01"));
    let events = w.tick(Asset::Btc, quote.0, quote.1);
    let Some((fill, margin, liquidation)) = filled else {
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(w.pending(user(ALICE)), vec![placed]);
        return;
    };
    let [Event::OrderFilled { order, position }] = &events[..] else {
        panic!("{events:?}");
    };
    assert_eq!(order, &placed);
    assert_eq!(position.open_price, price(fill));
    assert_eq!(position.margin.value(), dec(margin));
    assert_eq!(position.liquidation_price, Some(price(liquidation)));
    assert_eq!((position.side, position.opened_at), (side, w.now));
    assert!(w.pending(user(ALICE)).is_empty());
    assert_eq!(w.engine.positions().next(), Some(position));
    assert_eq!(w.summary(user(ALICE)).used_margin.value(), dec(margin));
}

/// The position a fill opens is the one a market open at the same quote opens.
#[test]
fn a_fill_opens_exactly_what_a_market_open_would() {
    let mut cmd = order(Side::Buy, OrderType::Limit, "64000.00", "0.0007");
    cmd.leverage = bus::Leverage::new(3).expect("3x");
    cmd.stop_loss = Some(price("60000.00"));
    cmd.take_profit = Some(price("70000.00"));
    let mut by_order = btc_world();
    by_order.placed(cmd);
    let filled = fills(&by_order.tick(Asset::Btc, "63999.00", "64000.00"));

    let mut by_market = btc_world();
    by_market.tick(Asset::Btc, "63999.00", "64000.00");
    let mut open = open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.0007", 3);
    open.stop_loss = Some(price("60000.00"));
    open.take_profit = Some(price("70000.00"));
    let mut expected = by_market.opened(open);
    expected.opened_at = by_order.now;
    assert_eq!(filled[0].1, expected);
    assert_eq!(expected.margin.value(), dec("14.94")); // 0.0007 * 64000 / 3 = 14.9333.. up
}

#[rstest]
#[case::margin_exactly_the_free_margin("1.5625", true)] // 1.5625 * 64000 / 10 = 10000.00
#[case::a_step_more("1.5626", false)] // 10000.64 > 10000.00
fn a_fill_that_does_not_fit_the_free_margin_is_cancelled(#[case] q: &str, #[case] fits: bool) {
    let mut w = btc_world();
    let placed = w.placed(order(Side::Buy, OrderType::Limit, "64000.00", q));
    let events = w.tick(Asset::Btc, "63999.00", "64000.00");
    assert!(w.pending(user(ALICE)).is_empty());
    if fits {
        assert_eq!(fills(&events).len(), 1);
        assert_eq!(w.summary(user(ALICE)).free_margin.value(), dec("0.00"));
    } else {
        assert_eq!(
            events,
            vec![Event::OrderCancelled {
                order: placed,
                reason: CancelReason::InsufficientMargin,
                at: w.now
            }]
        );
        assert_eq!(w.summary(user(ALICE)).used_margin.value(), dec("0"));
        assert_eq!(w.engine.open_positions(), 0);
    }
}

/// At 100x a 0.01 buy filled at 64000.00 has margin 6.40 and its exact level at 63360.00: a
/// bid of 63000.00 would liquidate it at once.
#[test]
fn a_fill_born_past_its_liquidation_level_is_cancelled() {
    let mut w = btc_world();
    let mut cmd = order(Side::Buy, OrderType::Limit, "64000.00", "0.01");
    cmd.leverage = bus::Leverage::new(100).expect("100x");
    w.placed(cmd);
    let events = w.tick(Asset::Btc, "63000.00", "64000.00");
    assert_eq!(
        cancellations(&events),
        vec![(OrderId(1), CancelReason::InsufficientMargin)]
    );
    assert_eq!(w.engine.open_positions(), 0);
}

/// Two orders of 6400.00 margin each reach their price on one tick with 10000.00 free: the
/// lower id fills, the other no longer fits.
#[test]
fn orders_fill_in_id_order_within_a_tick() {
    let mut w = btc_world();
    w.placed(order(Side::Buy, OrderType::Limit, "64000.00", "1"));
    w.placed(order(Side::Buy, OrderType::Limit, "64500.00", "1"));
    let events = w.tick(Asset::Btc, "63999.00", "64000.00");
    assert!(matches!(&events[0], Event::OrderFilled { order, .. } if order.id == OrderId(1)));
    assert_eq!(
        cancellations(&events),
        vec![(OrderId(2), CancelReason::InsufficientMargin)]
    );
    assert_eq!(events.len(), 2);
}

/// A buy of 0.06 at 1x (margin 3900.03) leaves 6099.97 free, short of the order's 6400.00;
/// its stop-loss closes first on the same tick (PnL -60.09), and the order then fits.
#[test]
fn the_ticks_closes_come_before_its_fills() {
    let mut w = btc_world();
    let mut open = open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.06", 1);
    open.stop_loss = Some(price("64500.00"));
    w.opened(open);
    w.placed(order(Side::Buy, OrderType::Limit, "64000.00", "1"));
    let events = w.tick(Asset::Btc, "63999.00", "64000.00");
    let [
        Event::PositionClosed { position },
        Event::OrderFilled { .. },
    ] = &events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(position.close_reason, CloseReason::StopLoss);
    assert_eq!(position.realized_pnl.value(), dec("-60.09"));
    assert_eq!(w.summary(user(ALICE)).used_margin.value(), dec("6400.00"));
}

/// A gap past the order's take-profit (or stop-loss) closes the new position on the same
/// tick at the same quote: the fill at the ask, the close at the bid.
#[rstest]
#[case::take_profit(Side::Buy, OrderType::Stop, "65500.00", None, Some("66000.00"), ("66500.00", "66501.00"), CloseReason::TakeProfit)]
#[case::stop_loss(Side::Buy, OrderType::Limit, "64000.00", Some("63500.00"), None, ("62999.00", "63000.00"), CloseReason::StopLoss)]
fn a_gap_past_the_orders_levels_closes_at_once(
    #[case] side: Side,
    #[case] order_type: OrderType,
    #[case] at: &str,
    #[case] sl: Option<&str>,
    #[case] tp: Option<&str>,
    #[case] quote: (&str, &str),
    #[case] reason: CloseReason,
) {
    let mut w = btc_world();
    let mut cmd = order(side, order_type, at, "0.01");
    cmd.stop_loss = sl.map(price);
    cmd.take_profit = tp.map(price);
    w.placed(cmd);
    let events = w.tick(Asset::Btc, quote.0, quote.1);
    let [
        Event::OrderFilled { position, .. },
        Event::PositionClosed { position: closed },
    ] = &events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(position.open_price, price(quote.1));
    assert_eq!(closed.close_reason, reason);
    assert_eq!(closed.close_price, price(quote.0));
    assert_eq!(closed.realized_pnl.value(), dec("-0.01")); // one dollar of spread on 0.01
    assert_eq!(w.engine.open_positions(), 0);
}

/// An order expiring at `t`: the input at `t - 1` leaves it, the input at `t` cancels it
/// before it is applied, so a tick at `t` that reaches its price does not fill it.
#[test]
fn an_order_expires_at_exactly_its_expiry_before_the_input_is_applied() {
    let mut w = btc_world();
    let t = w.now + 100;
    let mut cmd = order(Side::Buy, OrderType::Limit, "64000.00", "0.01");
    cmd.expires_at = Some(t);
    let placed = w.placed(cmd);
    w.now = t - 2;
    assert!(w.tick(Asset::Btc, "64500.00", "64501.00").is_empty());
    assert_eq!(w.pending(user(ALICE)).len(), 1);
    let events = w.tick(Asset::Btc, "63999.00", "64000.00");
    assert_eq!(w.now, t);
    assert_eq!(
        events,
        vec![Event::OrderCancelled {
            order: placed,
            reason: CancelReason::Expired,
            at: t
        }]
    );
    assert!(w.pending(user(ALICE)).is_empty());
    assert_eq!(w.engine.open_positions(), 0);
}

/// Any input expires orders, commands of other users and retries included; the cancellation
/// comes first in that input's events, with the input's time.
#[test]
fn a_command_expires_orders_first_even_a_retry() {
    let mut w = btc_world();
    let t = w.now + 100;
    let first = w.command_with_id("bob", Command::CreateAccount { user_id: user(BOB) });
    for (n, expires) in [(1, t + 5), (2, t)] {
        let mut cmd = order(Side::Buy, OrderType::Limit, "64000.00", "0.01");
        cmd.expires_at = Some(expires);
        assert_eq!(w.placed(cmd).id, OrderId(n));
    }
    w.now = t + 999;
    let retry = w.command_with_id("bob", Command::CreateAccount { user_id: user(BOB) });
    assert_eq!(retry.reply, first.reply);
    assert_eq!(
        cancellations(&retry.events),
        vec![
            (OrderId(2), CancelReason::Expired), // the earlier expiry first
            (OrderId(1), CancelReason::Expired)
        ]
    );
    assert!(matches!(&retry.events[0], Event::OrderCancelled { at, .. } if *at == t + 1000));
    assert_eq!(retry.events.len(), 2, "a retry changes nothing else");

    let mut cmd = order(Side::Buy, OrderType::Limit, "64000.00", "0.01");
    cmd.expires_at = Some(w.now + 2);
    w.placed(cmd);
    w.now += 1;
    let outcome = w.command_with_id("carol", Command::CreateAccount { user_id: user(3) });
    assert_eq!(
        cancellations(&outcome.events),
        vec![(OrderId(3), CancelReason::Expired)]
    );
    assert!(matches!(outcome.events[1], Event::AccountCreated { .. }));
    assert!(matches!(
        outcome.reply,
        Some(Reply::Accepted(Accepted::AccountCreated { .. }))
    ));
}
