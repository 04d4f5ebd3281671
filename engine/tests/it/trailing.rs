//! Trailing stops with exact numbers (see `engine::trading`): the stop follows the bid (a
//! buy) or the ask (a sell) at the distance, only in the trader's favour, never back; a close
//! on a stop the trail set is `trailing_stop`, on one the trader set `stop_loss`.

use crate::support;

use bus::{
    Accepted, Asset, CloseReason, Command, ModifyPosition, Position, RejectCode, Reply, Side,
};
use rstest::rstest;
use support::*;

const ALICE: u128 = 1;

/// Alice has an account and BTC trades at 64999.50 / 65000.50.
fn btc_world() -> World {
    let mut w = World::new();
    w.account(user(ALICE));
    w.tick(Asset::Btc, "64999.50", "65000.50");
    w
}

fn trailing(w: &mut World, side: Side, sl: Option<&str>, distance: &str) -> Position {
    let mut cmd = open_cmd(user(ALICE), Asset::Btc, side, "0.01", 10);
    cmd.stop_loss = sl.map(price);
    cmd.trailing_distance = Some(price(distance));
    w.opened(cmd)
}

fn stop_loss(w: &World) -> Option<bus::Price> {
    w.engine.positions().next().and_then(|p| p.stop_loss)
}

/// Each step: a quote, then the stop-loss after it (or the close it causes).
#[rstest]
// Buy at 65000.50, distance 100.00: the stop starts at 64999.50 - 100.00.
#[case::buy(Side::Buy, "64899.50", &[
    (("65100.00", "65101.00"), "65000.00"),
    (("65050.00", "65051.00"), "65000.00"), // never back
    (("65200.50", "65201.50"), "65100.50"),
    (("65100.51", "65101.51"), "65100.50"),
], ("65100.50", "65101.50"), "65100.50", "1.00")]
// (65100.50 - 65000.50) * 0.01
// Sell at 64999.50: the stop starts at 65000.50 + 100.00 and follows the ask down.
#[case::sell(Side::Sell, "65100.50", &[
    (("64899.00", "64900.00"), "65000.00"),
    (("64949.00", "64950.00"), "65000.00"),
    (("64799.00", "64800.00"), "64900.00"),
    (("64898.99", "64899.99"), "64900.00"),
], ("64899.00", "64900.00"), "64900.00", "1.00")] // (64999.50 - 64900.00) * 0.01 = 0.995
fn the_stop_follows_the_market_and_closes_as_a_trailing_stop(
    #[case] side: Side,
    #[case] start: &str,
    #[case] steps: &[((&str, &str), &str)],
    #[case] last: (&str, &str),
    #[case] close_price: &str,
    #[case] pnl: &str,
) {
    let mut w = btc_world();
    let position = trailing(&mut w, side, None, "100.00");
    assert_eq!(position.stop_loss, Some(price(start)));
    assert_eq!(position.trailing_distance, Some(price("100.00")));
    assert!(w.engine.is_trailed(position.id));
    for ((bid, ask), expected) in steps {
        assert!(
            w.tick(Asset::Btc, bid, ask).is_empty(),
            "a move emits nothing"
        );
        assert_eq!(stop_loss(&w), Some(price(expected)), "after {bid}/{ask}");
    }
    let closed = closes(&w.tick(Asset::Btc, last.0, last.1));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].close_reason, CloseReason::TrailingStop);
    assert_eq!(closed[0].close_price, price(close_price));
    assert_eq!(closed[0].position.stop_loss, Some(price(close_price)));
    assert_eq!(closed[0].realized_pnl.value(), dec(pnl));
    assert_eq!(w.engine.indexed_orders_and_trails(), (0, 0));
}

/// A stop-loss tighter than the trail stays the trader's until the trail passes it.
#[test]
fn a_tighter_stop_loss_is_kept_until_the_trail_passes_it() {
    let mut w = btc_world();
    let position = trailing(&mut w, Side::Buy, Some("64950.00"), "100.00");
    assert_eq!(position.stop_loss, Some(price("64950.00")));
    assert!(!w.engine.is_trailed(position.id));
    w.tick(Asset::Btc, "65049.99", "65050.99"); // trail 64949.99: not tighter
    assert_eq!(stop_loss(&w), Some(price("64950.00")));
    w.tick(Asset::Btc, "65050.01", "65051.01");
    assert_eq!(stop_loss(&w), Some(price("64950.01")));
    assert!(w.engine.is_trailed(position.id));
}

#[test]
fn a_stop_loss_the_trader_set_closes_as_a_stop_loss() {
    let mut w = btc_world();
    trailing(&mut w, Side::Buy, Some("64950.00"), "100.00");
    let closed = closes(&w.tick(Asset::Btc, "64950.00", "64951.00"));
    assert_eq!(closed[0].close_reason, CloseReason::StopLoss);
}

fn modify(w: &mut World, id: bus::PositionId, sl: Option<&str>, d: Option<&str>) -> Reply {
    w.command(Command::ModifyPosition(ModifyPosition {
        user_id: user(ALICE),
        position_id: id,
        stop_loss: sl.map(price),
        take_profit: None,
        trailing_distance: d.map(price),
    }))
}

#[test]
fn modify_sets_replaces_and_clears_the_trail() {
    let mut w = btc_world();
    let position = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    let Reply::Accepted(Accepted::PositionModified { position: set }) =
        modify(&mut w, position.id, None, Some("50.00"))
    else {
        panic!("trail refused");
    };
    assert_eq!(set.stop_loss, Some(price("64949.50")));
    assert!(w.engine.is_trailed(position.id));

    // A given stop-loss tighter than the trail is the trader's again.
    modify(&mut w, position.id, Some("64980.00"), Some("50.00"));
    assert_eq!(stop_loss(&w), Some(price("64980.00")));
    assert!(!w.engine.is_trailed(position.id));

    // Cleared: the stop stays where it is given and no longer moves.
    modify(&mut w, position.id, Some("64949.50"), None);
    assert_eq!(w.engine.indexed_orders_and_trails(), (0, 0));
    w.tick(Asset::Btc, "66000.00", "66001.00");
    assert_eq!(stop_loss(&w), Some(price("64949.50")));
    assert!(!w.engine.is_trailed(position.id));
}

#[test]
fn a_distance_with_too_many_decimals_is_refused() {
    let mut w = btc_world();
    let mut cmd = open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10);
    cmd.trailing_distance = Some(price("100.001"));
    let reply = w.open(cmd);
    assert_eq!(
        rejection_code(&reply),
        Some(RejectCode::InvalidTrailingDistance)
    );
    let position = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.01", 10));
    let reply = modify(&mut w, position.id, None, Some("0.001"));
    assert_eq!(
        rejection_code(&reply),
        Some(RejectCode::InvalidTrailingDistance)
    );
    assert_eq!(stop_loss(&w), None);
}

/// A buy's trail level below zero sets no stop until the bid passes the distance.
#[test]
fn a_buy_trail_wider_than_the_price_waits() {
    let mut w = btc_world();
    let position = trailing(&mut w, Side::Buy, None, "65000.00");
    assert_eq!(position.stop_loss, None);
    w.tick(Asset::Btc, "65000.00", "65001.00");
    assert_eq!(stop_loss(&w), None);
    w.tick(Asset::Btc, "65000.01", "65001.01");
    assert_eq!(stop_loss(&w), Some(price("0.01")));
}

/// A partial close keeps the trail and who set the stop.
#[test]
fn a_partial_close_keeps_the_trail() {
    let mut w = btc_world();
    let mut cmd = open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.02", 10);
    cmd.trailing_distance = Some(price("100.00"));
    let position = w.opened(cmd);
    w.command(Command::PartialClose(bus::PartialClose {
        user_id: user(ALICE),
        position_id: position.id,
        quantity: qty("0.01"),
    }));
    w.tick(Asset::Btc, "65100.00", "65101.00");
    assert_eq!(stop_loss(&w), Some(price("65000.00")));
    let closed = closes(&w.tick(Asset::Btc, "65000.00", "65001.00"));
    assert_eq!(closed[0].close_reason, CloseReason::TrailingStop);
    assert_eq!(closed[0].position.quantity, qty("0.01"));
}
