//! Property tests over random input sequences (market opens and closes, partial closes,
//! pending orders placed, changed, cancelled, filled and expired, trailing stops): money is
//! conserved, nothing goes negative, no position outlives its liquidation price, and
//! snapshot/restore + replay equals the straight run bit for bit.

use crate::logs;
use crate::support;

use std::collections::HashMap;

use bus::{
    CancelReason, CloseReason, EngineInput, Event, PriceTick, Query, QueryReply, Side, UserId,
};
use engine::{Engine, math};
use logs::{USERS, config, inputs};
use proptest::prelude::*;
use rust_decimal::Decimal;
use support::user;

fn free_margin(engine: &Engine, user_id: UserId) -> Decimal {
    match engine.query(&Query::GetAccount { user_id }) {
        QueryReply::Account { account } => account.free_margin.value(),
        other => panic!("no account: {other:?}"),
    }
}

/// Checks every invariant after the input logged at `now`; `realized` accumulates closes
/// per user.
fn check_invariants(
    engine: &Engine,
    (input, now): (&EngineInput, i64),
    events: &[Event],
    realized: &mut HashMap<UserId, Decimal>,
) -> Result<(), TestCaseError> {
    for event in events {
        check_event(event, realized)?;
    }
    check_accounts(engine, realized)?;
    for p in engine.positions() {
        check_shown_level(p)?;
    }
    // A refused (simulated) tick moved nothing, so nothing is judged at its prices.
    if let EngineInput::PriceTick(t) = input
        && t.bid <= t.ask
        && !engine.refuses(t)
    {
        check_after_tick(engine, t)?;
    }
    check_orders(engine, now)
}

/// Closes and partial closes realise PnL; a liquidation happens exactly at or beyond the
/// exact level, any other close before it, so it never charges more than the market loss.
fn check_event(
    event: &Event,
    realized: &mut HashMap<UserId, Decimal>,
) -> Result<(), TestCaseError> {
    match event {
        Event::PositionClosed { position } => {
            let pnl = position.realized_pnl.value();
            *realized.entry(position.position.user_id).or_default() += pnl;
            prop_assert!(position.absorbed_loss.value() >= Decimal::ZERO);
            let p = &position.position;
            let beyond = math::is_liquidated(
                p.side,
                p.open_price.value(),
                p.margin.value(),
                p.quantity.value(),
                position.close_price.value(),
            );
            let is_liquidation = position.close_reason == CloseReason::Liquidation;
            prop_assert_eq!(beyond, is_liquidation, "{:?}", position);
            if is_liquidation {
                prop_assert_eq!(pnl, -position.position.margin.value());
            } else {
                prop_assert_eq!(position.absorbed_loss.value(), Decimal::ZERO);
                prop_assert!(pnl >= -position.position.margin.value(), "{position:?}");
            }
        }
        Event::PositionPartiallyClosed {
            closed, remaining, ..
        } => {
            let pnl = closed.realized_pnl.value();
            *realized.entry(remaining.user_id).or_default() += pnl;
            // Rounding is monotone, so the part's loss never exceeds the margin it releases.
            prop_assert!(pnl >= -closed.position.margin.value(), "{closed:?}");
            prop_assert!(remaining.margin.value() >= Decimal::ZERO);
            prop_assert_eq!(
                closed.position.quantity.value() + remaining.quantity.value() > Decimal::ZERO,
                true
            );
        }
        _ => {}
    }
    Ok(())
}

/// Money is conserved: balance = deposit + realised PnL (the sum of the close events), the
/// locked margin is the sum of the open positions' margins, and nothing is negative.
fn check_accounts(
    engine: &Engine,
    realized: &HashMap<UserId, Decimal>,
) -> Result<(), TestCaseError> {
    for u in 0..USERS {
        let Some((deposit, total)) = engine.ledger(user(u)) else {
            continue;
        };
        let seen = realized.get(&user(u)).copied().unwrap_or_default();
        prop_assert_eq!(total, seen, "realised PnL equals the sum of close events");
        let account = match engine.query(&Query::GetAccount { user_id: user(u) }) {
            QueryReply::Account { account } => account,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        let balance = account.balance.value();
        prop_assert_eq!(balance, deposit + total, "balance = deposit + realised PnL");
        let locked: Decimal = engine
            .positions()
            .filter(|p| p.user_id == user(u))
            .map(|p| p.margin.value())
            .sum();
        prop_assert_eq!(
            account.used_margin.value(),
            locked,
            "used margin = open margins"
        );
        prop_assert!(balance >= Decimal::ZERO);
        prop_assert!(free_margin(engine, user(u)) >= Decimal::ZERO);
        let limits = engine.config();
        let positions = engine.positions().filter(|p| p.user_id == user(u)).count();
        let orders = engine.orders().filter(|o| o.user_id == user(u)).count();
        prop_assert!(
            positions <= limits.max_open_positions,
            "{positions} positions"
        );
        prop_assert!(orders <= limits.max_pending_orders, "{orders} orders");
    }
    Ok(())
}

/// After a tick no position of its asset is at or beyond its liquidation level, and every
/// trailing stop is at least as tight as its trail level at the tick.
fn check_after_tick(engine: &Engine, t: &PriceTick) -> Result<(), TestCaseError> {
    for p in engine.positions().filter(|p| p.asset == t.asset) {
        let valued_at = match p.side {
            Side::Buy => t.bid,
            Side::Sell => t.ask,
        };
        if let Some(liq) = p.liquidation_price {
            match p.side {
                Side::Buy => prop_assert!(t.bid > liq, "{p:?} survived bid {}", t.bid),
                Side::Sell => prop_assert!(t.ask < liq, "{p:?} survived ask {}", t.ask),
            }
        }
        let exact = math::is_liquidated(
            p.side,
            p.open_price.value(),
            p.margin.value(),
            p.quantity.value(),
            valued_at.value(),
        );
        prop_assert!(!exact, "{p:?} survived its exact level at {valued_at}");
        if let Some(d) = p.trailing_distance {
            match p.side {
                Side::Buy if t.bid.value() > d.value() => {
                    let sl = p.stop_loss.map(|s| s.value());
                    prop_assert!(sl >= Some(t.bid.value() - d.value()), "{p:?} at {t:?}");
                }
                Side::Sell => {
                    let sl = p.stop_loss.map(|s| s.value());
                    prop_assert!(
                        sl.is_some_and(|sl| sl <= t.ask.value() + d.value()),
                        "{p:?}"
                    );
                }
                Side::Buy => {}
            }
        }
    }
    Ok(())
}

/// No pending order outlives its expiry, every one belongs to an account, and the indexes
/// hold exactly the orders, their expiries and the trailing positions.
fn check_orders(engine: &Engine, now: i64) -> Result<(), TestCaseError> {
    let mut expiries = 0;
    for o in engine.orders() {
        prop_assert!(o.expires_at.is_none_or(|at| at > now), "{o:?} at {now}");
        prop_assert!(engine.ledger(o.user_id).is_some());
        expiries += usize::from(o.expires_at.is_some());
    }
    let trailing = engine
        .positions()
        .filter(|p| p.trailing_distance.is_some())
        .count();
    prop_assert_eq!(
        engine.indexed_orders_and_trails(),
        (engine.orders().count() + expiries, trailing)
    );
    Ok(())
}

/// The shown liquidation price is the grid price nearest the exact level at or beyond it:
/// it liquidates, the next price towards the open does not (every asset has 2 decimals here).
fn check_shown_level(p: &bus::Position) -> Result<(), TestCaseError> {
    let Some(shown) = p.liquidation_price else {
        return Ok(());
    };
    let liquidated = |at: Decimal| {
        math::is_liquidated(
            p.side,
            p.open_price.value(),
            p.margin.value(),
            p.quantity.value(),
            at,
        )
    };
    let cent = Decimal::new(1, 2);
    let inside = match p.side {
        Side::Buy => shown.value() + cent,
        Side::Sell => shown.value() - cent,
    };
    prop_assert!(
        liquidated(shown.value()),
        "{p:?}: the shown level does not liquidate"
    );
    prop_assert!(
        !liquidated(inside),
        "{p:?}: {inside} liquidates before the shown level"
    );
    Ok(())
}

fn levels_of_open_positions(engine: &Engine) -> usize {
    engine
        .positions()
        .map(|p| {
            usize::from(p.liquidation_price.is_some())
                + usize::from(p.stop_loss.is_some())
                + usize::from(p.take_profit.is_some())
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 192,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn money_is_conserved_and_nothing_goes_negative(inputs in inputs()) {
        let mut engine = Engine::new(config());
        let mut realized = HashMap::new();
        for (i, input) in inputs.into_iter().enumerate() {
            let outcome = engine.apply(input.clone(), i as i64);
            check_invariants(&engine, (&input, i as i64), &outcome.events, &mut realized)?;
            prop_assert_eq!(engine.indexed_levels(), levels_of_open_positions(&engine));
        }
    }

    #[test]
    fn snapshot_restore_and_replay_equals_the_straight_run(
        inputs in inputs(),
        cut in 0.0f64..=1.0,
    ) {
        let cut = (inputs.len() as f64 * cut) as usize;
        let mut straight = Engine::new(config());
        let mut straight_outcomes = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            straight_outcomes.push(straight.apply(input.clone(), i as i64));
        }

        let mut first = Engine::new(config());
        for (i, input) in inputs[..cut].iter().enumerate() {
            first.apply(input.clone(), i as i64);
        }
        let mut restored = Engine::restore(&first.snapshot()).expect("snapshot reads back");
        prop_assert_eq!(&restored, &first);
        for (i, input) in inputs.iter().enumerate().skip(cut) {
            let outcome = restored.apply(input.clone(), i as i64);
            prop_assert_eq!(&outcome, &straight_outcomes[i]);
        }
        prop_assert_eq!(&restored, &straight);
        prop_assert_eq!(restored.snapshot(), straight.snapshot());
        prop_assert_eq!(restored.indexed_levels(), straight.indexed_levels());
    }

    #[test]
    fn applying_the_same_log_twice_gives_the_same_bytes(inputs in inputs()) {
        let run = || {
            let mut engine = Engine::new(config());
            for (i, input) in inputs.iter().enumerate() {
                engine.apply(input.clone(), i as i64);
            }
            engine.snapshot()
        };
        prop_assert_eq!(run(), run());
    }
}

/// The properties above mean something only if the generated logs reach every kind of close,
/// fill, cancellation and partial close.
#[test]
fn the_generated_logs_reach_every_close_reason() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = HashMap::new();
    let mut cancelled = HashMap::new();
    let (mut filled, mut partial, mut stale, mut refused) = (0, 0, 0, 0);
    for _ in 0..100 {
        let inputs = inputs().new_tree(&mut runner).expect("tree").current();
        let mut engine = Engine::new(config());
        for (i, input) in inputs.into_iter().enumerate() {
            if let EngineInput::PriceTick(t) = &input
                && engine.refuses(t)
            {
                refused += 1;
            }
            let outcome = engine.apply(input, i as i64);
            if let Some(bus::Reply::Rejected(r)) = &outcome.reply
                && r.code == bus::RejectCode::PriceStale
            {
                stale += 1;
            }
            for event in outcome.events {
                match event {
                    Event::PositionClosed { position } => {
                        *seen.entry(position.close_reason).or_insert(0) += 1;
                    }
                    Event::OrderCancelled { reason, .. } => {
                        *cancelled.entry(reason).or_insert(0) += 1;
                    }
                    Event::OrderFilled { .. } => filled += 1,
                    Event::PositionPartiallyClosed { .. } => partial += 1,
                    _ => {}
                }
            }
        }
    }
    eprintln!(
        "{seen:?} {cancelled:?} {filled} fills, {partial} partial closes, {stale} stale \
         refusals, {refused} refused ticks"
    );
    for reason in [
        CloseReason::Manual,
        CloseReason::StopLoss,
        CloseReason::TakeProfit,
        CloseReason::Liquidation,
        CloseReason::TrailingStop,
    ] {
        assert!(
            seen.get(&reason).copied().unwrap_or(0) > 5,
            "{reason:?}: {seen:?}"
        );
    }
    for reason in [
        CancelReason::User,
        CancelReason::Expired,
        CancelReason::InsufficientMargin,
    ] {
        assert!(
            cancelled.get(&reason).copied().unwrap_or(0) > 5,
            "{reason:?}: {cancelled:?}"
        );
    }
    assert!(filled > 20, "{filled} fills");
    assert!(partial > 5, "{partial} partial closes");
    assert!(stale > 5, "{stale} price_stale refusals");
    assert!(refused > 20, "{refused} refused simulated ticks");
}
