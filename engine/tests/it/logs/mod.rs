//! Generators of random engine input logs for the property tests: account creation, then
//! ticks (wide and narrow) mixed with every command, command ids repeating sometimes.

use bus::{
    Asset, Command, CommandEnvelope, CommandId, EngineInput, Leverage, ModifyOrder, ModifyPosition,
    OpenPosition, OrderId, OrderType, PartialClose, PlaceOrder, PositionId, Price, PriceTick,
    Quantity, Side,
};
use engine::EngineConfig;
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::support::user;

pub const USERS: u128 = 4;

pub fn cents(c: i64) -> Price {
    Price::new(Decimal::new(c, 2)).expect("positive price")
}

/// Per asset: the range of mid prices in cents and the quantity step's exponent.
pub fn market(asset: Asset) -> (std::ops::Range<i64>, u32) {
    match asset {
        Asset::Btc => (5_800_000..7_200_000, 4),
        Asset::Eth => (290_000..360_000, 3),
        Asset::Sol => (13_000..17_000, 2),
    }
}

pub fn asset() -> impl Strategy<Value = Asset> {
    prop_oneof![Just(Asset::Btc), Just(Asset::Eth), Just(Asset::Sol)]
}

pub fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

/// A quote anywhere in the asset's range (`narrow`: within 1% around its middle, where
/// positions live long enough to be partially closed and orders to be cancelled); one in ten
/// is simulated, which the [`config`] refuses.
pub fn tick() -> impl Strategy<Value = EngineInput> {
    let simulated = proptest::bool::weighted(0.1);
    (
        asset(),
        0.0f64..1.0,
        0i64..300,
        proptest::bool::ANY,
        simulated,
    )
        .prop_map(|(asset, at, spread, narrow, simulated)| {
            let (range, _) = market(asset);
            let (start, width) = if narrow {
                let mid = (range.start + range.end) / 2;
                (mid - mid / 200, mid / 100)
            } else {
                (range.start, range.end - range.start)
            };
            // Position within the band; a float only picks a point, it never becomes money.
            let mid = start + (width as f64 * at) as i64;
            EngineInput::PriceTick(PriceTick {
                asset,
                bid: cents(mid),
                ask: cents(mid + spread),
                ts: 0,
                simulated,
            })
        })
}

/// Optional level, `offset` percent away from a typical price of the asset.
pub fn level(asset: Asset, offset: Option<i64>) -> Option<Price> {
    let (range, _) = market(asset);
    let mid = (range.start + range.end) / 2;
    offset.map(|pct| cents(mid + mid * pct / 100))
}

/// Optional trailing distance, `permille` thousandths of a typical price of the asset.
pub fn distance(asset: Asset, permille: Option<i64>) -> Option<Price> {
    let (range, _) = market(asset);
    let mid = (range.start + range.end) / 2;
    permille.map(|p| cents(mid * p / 1000))
}

pub fn quantity(asset: Asset, steps: i64) -> Quantity {
    let (_, exp) = market(asset);
    Quantity::new(Decimal::new(steps, exp)).expect("positive")
}

pub fn order_type() -> impl Strategy<Value = OrderType> {
    prop_oneof![Just(OrderType::Limit), Just(OrderType::Stop)]
}

/// A pending order `pct` percent from a typical price, expiring at an input index (the
/// tests log input `i` at time `i`), so some expiries are already past and some come later.
pub fn place() -> impl Strategy<Value = Command> {
    (
        (0..USERS, asset(), side(), order_type(), -10i64..10),
        (1i64..3_000, 1u32..=120),
        proptest::option::weighted(0.3, -12i64..12),
        proptest::option::weighted(0.3, -12i64..12),
        proptest::option::of(0i64..300),
    )
        .prop_map(
            |((u, asset, side, order_type, pct), (steps, lev), sl, tp, expires_at)| {
                Command::PlaceOrder(PlaceOrder {
                    user_id: user(u),
                    asset,
                    side,
                    order_type,
                    price: level(asset, Some(pct)).expect("a level"),
                    quantity: quantity(asset, steps),
                    leverage: Leverage::new(lev).expect("1..=120"),
                    stop_loss: level(asset, sl),
                    take_profit: level(asset, tp),
                    expires_at,
                })
            },
        )
}

pub fn order_commands() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => place(),
        2 => (0..USERS, 1u64..5).prop_map(|(u, id)| Command::CancelOrder {
            user_id: user(u),
            order_id: OrderId(id),
        }),
        1 => (
            (0..USERS, 1u64..8, asset()),
            proptest::option::of(-10i64..10),
            proptest::option::of(-12i64..12),
            proptest::option::of(-12i64..12),
            proptest::option::of(0i64..300),
        )
            .prop_map(|((u, id, asset), at, sl, tp, expires_at)| {
                Command::ModifyOrder(ModifyOrder {
                    user_id: user(u),
                    order_id: OrderId(id),
                    price: level(asset, at),
                    stop_loss: level(asset, sl),
                    take_profit: level(asset, tp),
                    expires_at,
                })
            }),
    ]
}

pub fn open() -> impl Strategy<Value = Command> {
    (
        (0..USERS, asset(), side(), 1i64..3_000, 1u32..=120),
        proptest::option::of(-12i64..12),
        proptest::option::of(-12i64..12),
        proptest::option::of(5i64..50),
    )
        .prop_map(|((u, asset, side, steps, lev), sl, tp, trail)| {
            let (_, exp) = market(asset);
            Command::OpenPosition(OpenPosition {
                trailing_distance: distance(asset, trail),
                user_id: user(u),
                asset,
                side,
                quantity: Quantity::new(Decimal::new(steps, exp)).expect("positive"),
                leverage: Leverage::new(lev).expect("1..=120"),
                stop_loss: level(asset, sl),
                take_profit: level(asset, tp),
                expected_price: None,
                max_slippage_bps: None,
            })
        })
}

pub fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => open(),
        4 => (0..USERS, 1u64..16).prop_map(|(u, id)| Command::ClosePosition {
            user_id: user(u),
            position_id: PositionId(id),
        }),
        1 => (
            (0..USERS, 1u64..40, asset()),
            proptest::option::of(-12i64..12),
            proptest::option::of(-12i64..12),
            proptest::option::of(5i64..50),
        )
            .prop_map(|((u, id, asset), sl, tp, trail)| Command::ModifyPosition(ModifyPosition {
                trailing_distance: distance(asset, trail),
                user_id: user(u),
                position_id: PositionId(id),
                stop_loss: level(asset, sl),
                take_profit: level(asset, tp),
            })),
        // 0.01 to 0.30: on every asset's step, and less than many positions' quantities.
        2 => (0..USERS, 1u64..10, 1i64..30).prop_map(|(u, id, cents)| {
            Command::PartialClose(PartialClose {
                user_id: user(u),
                position_id: PositionId(id),
                quantity: Quantity::new(Decimal::new(cents, 2)).expect("positive"),
            })
        }),
        5 => order_commands(),
    ]
}

/// Account creation first, then a random mix of ticks and commands; command ids repeat
/// sometimes, so retries are part of the mix.
pub fn inputs() -> impl Strategy<Value = Vec<EngineInput>> {
    let step = prop_oneof![
        3 => tick(),
        2 => (command(), 0u32..400).prop_map(|(command, id)| EngineInput::command(CommandEnvelope {
            id: CommandId::new(format!("c{id}")).expect("id"),
            command,
        })),
    ];
    proptest::collection::vec(step, 1..250).prop_map(|mut steps| {
        let mut all: Vec<EngineInput> = (0..USERS)
            .map(|u| {
                EngineInput::command(CommandEnvelope {
                    id: CommandId::new(format!("create-{u}")).expect("id"),
                    command: Command::CreateAccount { user_id: user(u) },
                })
            })
            .collect();
        all.append(&mut steps);
        all
    })
}

pub fn config() -> EngineConfig {
    let mut config = EngineConfig {
        initial_balance: Decimal::new(500_000, 2), // 5,000.00
        // Small limits (the tests log input `i` at time `i`), so the logs reach the per-user
        // window, its expiry and the per-account caps.
        idempotency_window: 8,
        idempotency_ttl_ms: 40,
        max_open_positions: 4,
        max_pending_orders: 3,
        // Inputs are logged 1 ms apart: an asset without a tick for 16 inputs is stale, which
        // happens now and then (and replay must refuse the same commands).
        price_stale_after_ms: 16,
        ..Default::default()
    };
    for asset in Asset::ALL {
        config.assets.get_mut(asset).max_leverage = 100;
    }
    config
}
