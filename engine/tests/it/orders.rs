//! Table tests for pending orders with exact numbers (see `engine::trading`): placement
//! checks, listing, cancel and modify (fills and expiry: `order_fills.rs`).

use crate::support;

use bus::{
    Accepted, Asset, CancelReason, Command, Event, ModifyOrder, OrderId, OrderType, RejectCode,
    Reply, Side,
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

fn order(side: Side, order_type: OrderType, at: &str) -> bus::PlaceOrder {
    place_cmd(user(ALICE), Asset::Btc, side, order_type, at, "0.01", 10)
}

#[rstest]
#[case::buy_limit_below_the_ask(Side::Buy, OrderType::Limit, "65000.49", None)]
#[case::buy_limit_at_the_ask(
    Side::Buy,
    OrderType::Limit,
    "65000.50",
    Some(RejectCode::InvalidOrderPrice)
)]
#[case::buy_stop_above_the_ask(Side::Buy, OrderType::Stop, "65000.51", None)]
#[case::buy_stop_at_the_ask(
    Side::Buy,
    OrderType::Stop,
    "65000.50",
    Some(RejectCode::InvalidOrderPrice)
)]
#[case::sell_limit_above_the_bid(Side::Sell, OrderType::Limit, "64999.51", None)]
#[case::sell_limit_at_the_bid(
    Side::Sell,
    OrderType::Limit,
    "64999.50",
    Some(RejectCode::InvalidOrderPrice)
)]
#[case::sell_stop_below_the_bid(Side::Sell, OrderType::Stop, "64999.49", None)]
#[case::sell_stop_at_the_bid(
    Side::Sell,
    OrderType::Stop,
    "64999.50",
    Some(RejectCode::InvalidOrderPrice)
)]
#[case::too_many_decimals(
    Side::Buy,
    OrderType::Limit,
    "64000.001",
    Some(RejectCode::InvalidOrderPrice)
)]
fn an_order_price_must_be_on_its_side_of_the_market(
    #[case] side: Side,
    #[case] order_type: OrderType,
    #[case] at: &str,
    #[case] code: Option<RejectCode>,
) {
    let mut w = btc_world();
    let reply = w.place(order(side, order_type, at));
    assert_eq!(rejection_code(&reply), code, "{reply:?}");
    assert_eq!(w.pending(user(ALICE)).len(), usize::from(code.is_none()));
}

#[rstest]
#[case::leverage(|o: &mut bus::PlaceOrder| o.leverage = bus::Leverage::new(101).expect("lev"), RejectCode::InvalidLeverage)]
#[case::quantity_off_the_step(|o: &mut bus::PlaceOrder| o.quantity = qty("0.00015"), RejectCode::InvalidQuantity)]
#[case::quantity_above_the_maximum(|o: &mut bus::PlaceOrder| o.quantity = qty("100.0001"), RejectCode::InvalidQuantity)]
#[case::buy_stop_loss_at_the_order_price(|o: &mut bus::PlaceOrder| o.stop_loss = Some(price("64000.00")), RejectCode::InvalidStopLoss)]
#[case::buy_take_profit_at_the_order_price(|o: &mut bus::PlaceOrder| o.take_profit = Some(price("64000.00")), RejectCode::InvalidTakeProfit)]
#[case::stop_loss_decimals(|o: &mut bus::PlaceOrder| o.stop_loss = Some(price("63000.001")), RejectCode::InvalidStopLoss)]
#[case::unknown_account(|o: &mut bus::PlaceOrder| o.user_id = user(BOB), RejectCode::AccountNotFound)]
fn invalid_orders_are_rejected_and_change_nothing(
    #[case] change: fn(&mut bus::PlaceOrder),
    #[case] code: RejectCode,
) {
    let mut w = btc_world();
    let mut cmd = order(Side::Buy, OrderType::Limit, "64000.00");
    change(&mut cmd);
    let reply = w.place(cmd);
    assert_eq!(rejection_code(&reply), Some(code), "{reply:?}");
    assert!(w.pending(user(ALICE)).is_empty());
    assert_eq!(w.engine.orders().count(), 0);
}

/// Levels are checked against the order price, not the market: a buy limit at 64000.00 may
/// take profit at 64000.01 (below today's bid); a sell stop's stop-loss sits above its price.
#[rstest]
#[case(
    Side::Buy,
    OrderType::Limit,
    "64000.00",
    Some("63999.99"),
    Some("64000.01"),
    None
)]
#[case(
    Side::Sell,
    OrderType::Stop,
    "64000.00",
    Some("64000.01"),
    Some("63999.99"),
    None
)]
#[case(
    Side::Sell,
    OrderType::Stop,
    "64000.00",
    Some("64000.00"),
    None,
    Some(RejectCode::InvalidStopLoss)
)]
#[case(
    Side::Sell,
    OrderType::Limit,
    "66000.00",
    None,
    Some("66000.00"),
    Some(RejectCode::InvalidTakeProfit)
)]
fn levels_are_checked_against_the_order_price(
    #[case] side: Side,
    #[case] order_type: OrderType,
    #[case] at: &str,
    #[case] sl: Option<&str>,
    #[case] tp: Option<&str>,
    #[case] code: Option<RejectCode>,
) {
    let mut w = btc_world();
    let mut cmd = order(side, order_type, at);
    cmd.stop_loss = sl.map(price);
    cmd.take_profit = tp.map(price);
    assert_eq!(rejection_code(&w.place(cmd)), code);
}

#[test]
fn no_price_yet_is_rejected() {
    let mut w = World::new();
    w.account(user(ALICE));
    let reply = w.place(order(Side::Buy, OrderType::Limit, "64000.00"));
    assert_eq!(rejection_code(&reply), Some(RejectCode::NoPrice));
}

#[test]
fn an_expiry_must_be_after_the_time_of_the_command() {
    let mut w = btc_world();
    let mut cmd = order(Side::Buy, OrderType::Limit, "64000.00");
    cmd.expires_at = Some(w.now + 1); // the next input is logged at now + 1
    let reply = w.place(cmd.clone());
    assert_eq!(rejection_code(&reply), Some(RejectCode::InvalidExpiry));
    cmd.expires_at = Some(w.now + 2);
    let placed = w.placed(cmd);
    assert_eq!(placed.expires_at, Some(w.now + 1));
}

#[test]
fn placing_answers_and_emits_the_order_and_lists_it() {
    let mut w = btc_world();
    let mut cmd = order(Side::Buy, OrderType::Limit, "64000.00");
    cmd.stop_loss = Some(price("63000.00"));
    cmd.expires_at = Some(w.now + 60_000);
    let outcome = w.command_with_id("place-1", Command::PlaceOrder(cmd));
    let Some(Reply::Accepted(Accepted::OrderPlaced { order })) = outcome.reply else {
        panic!("{:?}", outcome.reply);
    };
    assert_eq!(order.id, OrderId(1));
    assert_eq!(order.price, price("64000.00"));
    assert_eq!(order.stop_loss, Some(price("63000.00")));
    assert_eq!(order.created_at, w.now);
    assert_eq!(
        outcome.events,
        vec![Event::OrderPlaced {
            order: order.clone()
        }]
    );
    let second = w.placed(order_for(ALICE, Side::Sell, OrderType::Stop, "64000.00"));
    assert_eq!(second.id, OrderId(2));
    assert_eq!(w.pending(user(ALICE)), vec![order, second]);
    // Placing reserves nothing: margin is checked when the order fills.
    assert_eq!(w.summary(user(ALICE)).used_margin.value(), dec("0"));
}

fn order_for(n: u128, side: Side, order_type: OrderType, at: &str) -> bus::PlaceOrder {
    place_cmd(user(n), Asset::Btc, side, order_type, at, "0.01", 10)
}

#[test]
fn only_the_owner_cancels_and_only_once() {
    let mut w = btc_world();
    w.account(user(BOB));
    let placed = w.placed(order(Side::Buy, OrderType::Limit, "64000.00"));
    let cancel = |n: u128| Command::CancelOrder {
        user_id: user(n),
        order_id: placed.id,
    };
    assert_eq!(
        rejection_code(&w.command(cancel(BOB))),
        Some(RejectCode::OrderNotFound)
    );
    let outcome = w.command_with_id("cancel", cancel(ALICE));
    assert_eq!(
        outcome.reply,
        Some(Reply::Accepted(Accepted::OrderCancelled {
            order: placed.clone()
        }))
    );
    assert_eq!(
        cancellations(&outcome.events),
        vec![(placed.id, CancelReason::User)]
    );
    assert!(w.pending(user(ALICE)).is_empty());
    assert_eq!(
        rejection_code(&w.command(cancel(ALICE))),
        Some(RejectCode::OrderNotFound)
    );
    // A cancelled order never fills.
    assert!(fills(&w.tick(Asset::Btc, "63000.00", "63001.00")).is_empty());
}

fn modify(order_id: OrderId, at: Option<&str>, sl: Option<&str>, tp: Option<&str>) -> Command {
    Command::ModifyOrder(ModifyOrder {
        user_id: user(ALICE),
        order_id,
        price: at.map(price),
        stop_loss: sl.map(price),
        take_profit: tp.map(price),
        expires_at: None,
    })
}

#[test]
fn modify_changes_the_price_and_replaces_levels_and_expiry() {
    let mut w = btc_world();
    let mut cmd = order(Side::Buy, OrderType::Limit, "64000.00");
    cmd.stop_loss = Some(price("63000.00"));
    cmd.expires_at = Some(w.now + 60_000);
    let placed = w.placed(cmd);
    let reply = w.command(modify(placed.id, Some("64100.00"), None, Some("64600.00")));
    let Reply::Accepted(Accepted::OrderModified { order }) = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(order.id, placed.id);
    assert_eq!(order.created_at, placed.created_at);
    assert_eq!(order.price, price("64100.00"));
    assert_eq!((order.stop_loss, order.expires_at), (None, None));
    assert_eq!(order.take_profit, Some(price("64600.00")));
    assert_eq!(w.pending(user(ALICE)), vec![order.clone()]);

    // No price given keeps the current one.
    let reply = w.command(modify(placed.id, None, Some("64000.00"), None));
    let Reply::Accepted(Accepted::OrderModified { order: kept }) = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(kept.price, price("64100.00"));

    // The index follows the new price: 64050.00 fills it, the old 64000.00 would not have.
    let events = w.tick(Asset::Btc, "64049.00", "64050.00");
    assert_eq!(fills(&events).len(), 1, "{events:?}");
    assert_eq!(fills(&events)[0].1.open_price, price("64050.00"));
}

#[rstest]
#[case::price_on_the_wrong_side(Some("65000.50"), None, RejectCode::InvalidOrderPrice)]
#[case::stop_loss_above_the_new_price(
    Some("63000.00"),
    Some("63000.00"),
    RejectCode::InvalidStopLoss
)]
fn an_invalid_modify_changes_nothing(
    #[case] at: Option<&str>,
    #[case] sl: Option<&str>,
    #[case] code: RejectCode,
) {
    let mut w = btc_world();
    let placed = w.placed(order(Side::Buy, OrderType::Limit, "64000.00"));
    let reply = w.command(modify(placed.id, at, sl, None));
    assert_eq!(rejection_code(&reply), Some(code));
    assert_eq!(w.pending(user(ALICE)), vec![placed]);
}

#[test]
fn someone_elses_order_cannot_be_modified() {
    let mut w = btc_world();
    w.account(user(BOB));
    let bobs = w.placed(order_for(BOB, Side::Buy, OrderType::Limit, "64000.00"));
    let reply = w.command(modify(bobs.id, Some("63000.00"), None, None));
    assert_eq!(rejection_code(&reply), Some(RejectCode::OrderNotFound));
    let unknown = w.command(modify(OrderId(99), Some("63000.00"), None, None));
    assert_eq!(rejection_code(&unknown), Some(RejectCode::OrderNotFound));
}
