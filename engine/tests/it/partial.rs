//! Partial close with exact numbers (see `engine::trading`): the closed part's PnL and
//! released margin are rounded half-even to the cent, the rest keeps the remaining margin and
//! a recomputed liquidation level. Expected values computed independently with python3's
//! decimal.

use crate::support;

use bus::{
    Accepted, Asset, CloseReason, Command, Event, PartialClose, PositionId, RejectCode, Reply, Side,
};
use engine::EngineConfig;
use rstest::rstest;
use support::*;

const ALICE: u128 = 1;
const BOB: u128 = 2;

fn partial(n: u128, id: PositionId, q: &str) -> Command {
    Command::PartialClose(PartialClose {
        user_id: user(n),
        position_id: id,
        quantity: qty(q),
    })
}

struct Case {
    asset: Asset,
    side: Side,
    q: &'static str,
    lev: u32,
    open: (&'static str, &'static str),
    close: (&'static str, &'static str),
    part: &'static str,
    margin: &'static str,
    pnl: &'static str,
    released: &'static str,
    left_margin: &'static str,
    left_liquidation: &'static str,
}

#[rstest]
// 195.01 * 0.01 / 0.03 = 65.0033.. -> 65.00; pnl 99.50 * 0.01 = 0.995 -> even 1.00.
#[case(Case { asset: Asset::Btc, side: Side::Buy, q: "0.0300", lev: 10, open: ("64999.50", "65000.50"), close: ("65100.00", "65101.00"), part: "0.0100", margin: "195.01", pnl: "1.00", released: "65.00", left_margin: "130.01", left_liquidation: "58500.00" })]
// 130.0066.. -> 130.01; the rest's level 65000.50 - 65.00 / 0.01 = 58500.50 (was 58500.1666..).
#[case(Case { asset: Asset::Btc, side: Side::Buy, q: "0.0300", lev: 10, open: ("64999.50", "65000.50"), close: ("65100.00", "65101.00"), part: "0.0200", margin: "195.01", pnl: "1.99", released: "130.01", left_margin: "65.00", left_liquidation: "58500.50" })]
#[case(Case { asset: Asset::Btc, side: Side::Sell, q: "0.0300", lev: 10, open: ("64999.50", "65000.50"), close: ("64899.50", "64900.50"), part: "0.0100", margin: "195.00", pnl: "0.99", released: "65.00", left_margin: "130.00", left_liquidation: "71499.50" })]
// 30.01 / 2 = 15.005 -> even 15.00; pnl -0.25 * 0.5 = -0.125 -> even -0.12.
#[case(Case { asset: Asset::Eth, side: Side::Buy, q: "1", lev: 100, open: ("3000.00", "3000.25"), close: ("3000.00", "3000.25"), part: "0.5", margin: "30.01", pnl: "-0.12", released: "15.00", left_margin: "15.01", left_liquidation: "2970.23" })]
// 30.03 / 2 = 15.015 -> even 15.02.
#[case(Case { asset: Asset::Eth, side: Side::Buy, q: "1", lev: 100, open: ("3002.00", "3002.50"), close: ("3002.00", "3002.50"), part: "0.5", margin: "30.03", pnl: "-0.25", released: "15.02", left_margin: "15.01", left_liquidation: "2972.48" })]
fn a_partial_close_realises_pnl_and_releases_margin_in_proportion(#[case] c: Case) {
    let mut w = World::new();
    w.account(user(ALICE));
    w.tick(c.asset, c.open.0, c.open.1);
    let position = w.opened(open_cmd(user(ALICE), c.asset, c.side, c.q, c.lev));
    assert_eq!(position.margin.value(), dec(c.margin));
    w.tick(c.asset, c.close.0, c.close.1);
    let outcome = w.command_with_id("partial", partial(ALICE, position.id, c.part));
    let Some(Reply::Accepted(Accepted::PositionPartiallyClosed { closed, remaining })) =
        outcome.reply
    else {
        panic!("{:?}", outcome.reply);
    };
    assert_eq!(closed.position.quantity, qty(c.part));
    assert_eq!(closed.position.margin.value(), dec(c.released));
    assert_eq!(closed.realized_pnl.value(), dec(c.pnl));
    assert_eq!(closed.close_reason, CloseReason::Manual);
    let fill = match c.side {
        Side::Buy => c.close.0,
        Side::Sell => c.close.1,
    };
    assert_eq!(closed.close_price, price(fill));
    assert_eq!(remaining.id, position.id);
    assert_eq!(remaining.quantity.value(), dec(c.q) - dec(c.part));
    assert_eq!(remaining.margin.value(), dec(c.left_margin));
    assert_eq!(remaining.liquidation_price, Some(price(c.left_liquidation)));
    assert_eq!(
        outcome.events,
        vec![Event::PositionPartiallyClosed {
            closed: closed.clone(),
            remaining: remaining.clone(),
            at: w.now
        }]
    );
    let account = w.summary(user(ALICE));
    assert_eq!(account.used_margin.value(), dec(c.left_margin));
    assert_eq!(account.balance.value(), dec("10000.00") + dec(c.pnl));
    assert_eq!(w.engine.positions().next(), Some(&remaining));
    assert_eq!(
        w.engine.indexed_levels(),
        1,
        "the rest's liquidation level only"
    );
}

/// The rest's liquidation entry is re-keyed: after closing 0.0200 of 0.0300 its level rose
/// from 58500.1666.. to 58500.50, and a bid of 58500.50 liquidates it for -65.00.
#[test]
fn the_rest_is_liquidated_at_its_new_level() {
    let mut w = World::new();
    w.account(user(ALICE));
    w.tick(Asset::Btc, "64999.50", "65000.50");
    let position = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.0300", 10));
    assert_eq!(position.liquidation_price, Some(price("58500.16")));
    assert!(matches!(
        w.command(partial(ALICE, position.id, "0.0200")),
        Reply::Accepted(_)
    ));
    assert!(closes(&w.tick(Asset::Btc, "58500.51", "58501.51")).is_empty());
    let closed = closes(&w.tick(Asset::Btc, "58500.50", "58501.50"));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].close_reason, CloseReason::Liquidation);
    assert_eq!(closed[0].realized_pnl.value(), dec("-65.00"));
}

#[rstest]
#[case::off_the_step("0.00015", RejectCode::InvalidQuantity)]
#[case::the_whole_position("0.0300", RejectCode::InvalidQuantity)]
#[case::more_than_the_position("0.0400", RejectCode::InvalidQuantity)]
fn invalid_partial_closes_change_nothing(#[case] part: &str, #[case] code: RejectCode) {
    let mut w = World::new();
    w.account(user(ALICE));
    w.tick(Asset::Btc, "64999.50", "65000.50");
    let position = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.0300", 10));
    let reply = w.command(partial(ALICE, position.id, part));
    assert_eq!(rejection_code(&reply), Some(code), "{reply:?}");
    assert_eq!(w.engine.positions().next(), Some(&position));
}

#[rstest]
#[case("0.0025", Some(RejectCode::InvalidQuantity))] // leaves 0.0005 < 0.0010
#[case("0.0020", None)] // leaves exactly the minimum
fn a_partial_close_leaves_at_least_the_minimum(
    #[case] part: &str,
    #[case] code: Option<RejectCode>,
) {
    let mut config = EngineConfig::default();
    config.assets.get_mut(Asset::Btc).min_quantity = dec("0.0010");
    let mut w = World::with_config(config);
    w.account(user(ALICE));
    w.tick(Asset::Btc, "64999.50", "65000.50");
    let position = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.0030", 10));
    assert_eq!(
        rejection_code(&w.command(partial(ALICE, position.id, part))),
        code
    );
}

#[test]
fn someone_elses_position_is_not_found() {
    let mut w = World::new();
    w.account(user(ALICE));
    w.account(user(BOB));
    w.tick(Asset::Btc, "64999.50", "65000.50");
    let position = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.0300", 10));
    let reply = w.command(partial(BOB, position.id, "0.0100"));
    assert_eq!(rejection_code(&reply), Some(RejectCode::PositionNotFound));
}

/// Closing 0.0007 BTC (margin 15.17 at 3x) in three parts and then the rest: every cent of
/// margin comes back and the balance moves by exactly the realised PnL.
#[test]
fn money_is_conserved_across_partial_closes() {
    let mut w = World::new();
    w.account(user(ALICE));
    w.tick(Asset::Btc, "64999.50", "65000.50");
    let position = w.opened(open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.0007", 3));
    assert_eq!(position.margin.value(), dec("15.17"));
    let mut realised = dec("0");
    let mut released = dec("0");
    for (bid, part) in [
        ("65010.33", "0.0002"),
        ("64990.07", "0.0001"),
        ("65123.45", "0.0003"),
    ] {
        w.tick(Asset::Btc, bid, "65200.00");
        let Reply::Accepted(Accepted::PositionPartiallyClosed { closed, .. }) =
            w.command(partial(ALICE, position.id, part))
        else {
            panic!("partial close refused");
        };
        realised += closed.realized_pnl.value();
        released += closed.position.margin.value();
    }
    let last = w.closed(user(ALICE), position.id);
    assert_eq!(last.position.quantity, qty("0.0001"));
    realised += last.realized_pnl.value();
    released += last.position.margin.value();
    assert_eq!(released, dec("15.17"));
    let account = w.summary(user(ALICE));
    assert_eq!(account.used_margin.value(), dec("0"));
    assert_eq!(account.balance.value(), dec("10000.00") + realised);
    assert_eq!(w.engine.ledger(user(ALICE)).map(|l| l.1), Some(realised));
}
