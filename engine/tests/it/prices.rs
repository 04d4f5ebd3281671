//! Real, fresh prices only (see `engine::trading`, **Prices**): a simulated tick is refused by
//! an engine that does not allow them and changes nothing; a market open, close or partial
//! close of an asset whose quote was applied `price_stale_after_ms` or more before the
//! command's log time is refused `price_stale`, to the millisecond; ticks keep triggering
//! stops and fills whatever the age of the previous one.

use crate::support;

use bus::{
    Accepted, Asset, Command, EngineInput, OrderType, PartialClose, PositionId, PriceTick, Query,
    QueryReply, RejectCode, Reply, Side,
};
use engine::EngineConfig;
use rstest::rstest;
use support::*;

const ALICE: u128 = 1;
const LIMIT: u64 = 30_000;

fn world(allow_simulated_prices: bool) -> World {
    World::with_config(EngineConfig {
        allow_simulated_prices,
        price_stale_after_ms: LIMIT,
        ..Default::default()
    })
}

/// A tick flagged as coming from the simulated random walk.
fn simulated_tick(w: &mut World, asset: Asset, bid: &str, ask: &str) -> engine::Outcome {
    let ts = w.now;
    w.input(EngineInput::PriceTick(PriceTick {
        asset,
        bid: price(bid),
        ask: price(ask),
        ts,
        simulated: true,
    }))
}

/// Alice with a BTC buy (stop-loss 64,000, trailing 500) and a BTC buy limit at 64,500.
fn trading_world(allow_simulated_prices: bool) -> (World, PositionId) {
    let mut w = world(allow_simulated_prices);
    w.account(user(ALICE));
    w.tick(Asset::Btc, "65000.00", "65000.50");
    let mut open = open_cmd(user(ALICE), Asset::Btc, Side::Buy, "0.0100", 10);
    open.stop_loss = Some(price("64000.00"));
    open.trailing_distance = Some(price("1500.00"));
    let position = w.opened(open);
    let order = place_cmd(
        user(ALICE),
        Asset::Btc,
        Side::Buy,
        OrderType::Limit,
        "64500.00",
        "0.0100",
        10,
    );
    w.placed(order);
    (w, position.id)
}

fn prices(w: &World) -> Vec<PriceTick> {
    match w.engine.query(&Query::GetPrices) {
        QueryReply::Prices { quotes } => quotes,
        other => panic!("{other:?}"),
    }
}

#[rstest]
// Refused: nothing moves although the tick crosses the stop-loss and the order's price.
#[case::production(false, 0)]
// Allowed (local mode): the stop-loss closes, the limit order fills.
#[case::local(true, 2)]
fn a_simulated_tick_is_applied_only_where_simulated_prices_are_allowed(
    #[case] allow: bool,
    #[case] events: usize,
) {
    let (mut w, _) = trading_world(allow);
    let before = w.engine.clone();
    let outcome = simulated_tick(&mut w, Asset::Btc, "63000.00", "63000.50");
    assert_eq!(outcome.events.len(), events, "{:?}", outcome.events);
    assert_eq!(outcome.reply, None);
    if allow {
        assert_eq!(prices(&w)[0].bid, price("63000.00"));
        assert!(prices(&w)[0].simulated);
        assert_eq!(w.engine.quote_applied_at(Asset::Btc), Some(w.now));
    } else {
        // Nothing changed: no quote, no close, no fill, no trail moved, the clock of the
        // quote untouched.
        assert_eq!(w.engine, before);
        assert_eq!(w.engine.open_positions(), 1);
        assert_eq!(w.pending(user(ALICE)).len(), 1);
        assert_eq!(prices(&w)[0].bid, price("65000.00"));
        assert!(w.engine.refuses(&PriceTick {
            simulated: true,
            ..prices(&w)[0].clone()
        }));
    }
}

#[test]
fn a_refused_simulated_tick_is_no_price_for_a_first_open() {
    let mut w = world(false);
    w.account(user(ALICE));
    assert!(
        simulated_tick(&mut w, Asset::Eth, "3000.00", "3000.25")
            .events
            .is_empty()
    );
    let reply = w.open(open_cmd(user(ALICE), Asset::Eth, Side::Buy, "1", 10));
    assert_eq!(rejection_code(&reply), Some(RejectCode::NoPrice));
    assert_eq!(w.engine.quote_applied_at(Asset::Eth), None);
}

/// What a command logged `offset` ms after the last BTC tick gets.
fn command_at(w: &mut World, tick_at: i64, offset: i64, command: Command) -> Reply {
    // `World::command` logs the next input at `now + 1`.
    w.now = tick_at + offset - 1;
    w.command(command)
}

#[rstest]
#[case::fresh(0, None)]
#[case::last_fresh_millisecond(LIMIT as i64 - 1, None)]
#[case::stale_at_the_limit(LIMIT as i64, Some(RejectCode::PriceStale))]
#[case::long_stale(10 * LIMIT as i64, Some(RejectCode::PriceStale))]
fn opens_and_closes_need_a_tick_younger_than_the_limit(
    #[case] offset: i64,
    #[case] refused: Option<RejectCode>,
) {
    let (mut w, id) = trading_world(false);
    w.tick(Asset::Btc, "65010.00", "65010.50");
    let tick_at = w.now;
    assert_eq!(w.engine.quote_applied_at(Asset::Btc), Some(tick_at));
    let open = Command::OpenPosition(open_cmd(user(ALICE), Asset::Btc, Side::Sell, "0.0100", 5));
    let partial = Command::PartialClose(PartialClose {
        user_id: user(ALICE),
        position_id: id,
        quantity: qty("0.0050"),
    });
    let close = Command::ClosePosition {
        user_id: user(ALICE),
        position_id: id,
    };
    for command in [open, partial, close] {
        let before = w.engine.positions().cloned().collect::<Vec<_>>();
        let reply = command_at(&mut w, tick_at, offset, command);
        assert_eq!(rejection_code(&reply), refused, "{reply:?}");
        if let Reply::Rejected(r) = &reply {
            assert_eq!(
                r.message,
                format!(
                    "the last BTC price is {offset} ms old (the limit is {LIMIT} ms): waiting \
                     for a fresh price"
                )
            );
            assert_eq!(w.engine.positions().cloned().collect::<Vec<_>>(), before);
        }
    }
}

#[test]
fn a_fresh_tick_ends_the_refusal_and_other_assets_are_judged_alone() {
    let (mut w, id) = trading_world(false);
    let btc_at = w.now - 2; // the BTC tick came before the open and the order
    w.now = btc_at + LIMIT as i64 - 2;
    w.tick(Asset::Eth, "3000.00", "3000.25");
    // ETH is fresh, BTC is not: only BTC is refused.
    let eth = w.open(open_cmd(user(ALICE), Asset::Eth, Side::Buy, "1", 10));
    assert!(matches!(eth, Reply::Accepted(_)), "{eth:?}");
    let btc = w.close(user(ALICE), id);
    assert_eq!(rejection_code(&btc), Some(RejectCode::PriceStale));
    // Orders and levels are not market fills: placing and modifying still work on the old price.
    let order = place_cmd(
        user(ALICE),
        Asset::Btc,
        Side::Sell,
        OrderType::Limit,
        "66000.00",
        "0.0100",
        10,
    );
    assert!(matches!(w.place(order), Reply::Accepted(_)));
    let modified = w.modify(user(ALICE), id, Some("63900.00"), None);
    assert!(matches!(modified, Reply::Accepted(_)), "{modified:?}");
    // The next tick, however late, triggers as always (here the buy limit at 64,500) and
    // makes the price fresh again.
    w.now += 10 * LIMIT as i64;
    let filled = fills(&w.tick(Asset::Btc, "64400.00", "64400.50"));
    assert_eq!(filled.len(), 1);
    let closed = w.close(user(ALICE), id);
    assert!(
        matches!(closed, Reply::Accepted(Accepted::PositionClosed { .. })),
        "{closed:?}"
    );
}

#[test]
fn a_zero_limit_turns_the_check_off() {
    let mut w = World::with_config(EngineConfig {
        price_stale_after_ms: 0,
        ..Default::default()
    });
    w.account(user(ALICE));
    w.tick(Asset::Sol, "150.00", "150.10");
    w.now += 365 * 24 * 3_600_000;
    let reply = w.open(open_cmd(user(ALICE), Asset::Sol, Side::Buy, "1", 10));
    assert!(matches!(reply, Reply::Accepted(_)), "{reply:?}");
}

#[test]
fn the_price_rules_follow_the_settings_and_the_quote_times_survive_a_snapshot() {
    let (mut w, id) = trading_world(false);
    let restored = engine::Engine::restore(&w.engine.snapshot()).expect("restores");
    assert_eq!(restored, w.engine);
    assert_eq!(
        restored.quote_applied_at(Asset::Btc),
        w.engine.quote_applied_at(Asset::Btc)
    );
    let local = EngineConfig {
        allow_simulated_prices: true,
        price_stale_after_ms: 5,
        ..Default::default()
    };
    assert!(w.engine.set_price_rules(&local));
    assert!(!w.engine.set_price_rules(&local), "nothing changes twice");
    w.now += 5;
    assert_eq!(
        rejection_code(&w.close(user(ALICE), id)),
        Some(RejectCode::PriceStale)
    );
    assert_eq!(
        simulated_tick(&mut w, Asset::Btc, "65100.00", "65100.50")
            .events
            .len(),
        0
    );
    let reply = w.close(user(ALICE), id);
    assert!(matches!(reply, Reply::Accepted(_)), "{reply:?}");
}
